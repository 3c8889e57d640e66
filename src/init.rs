//! Weight initialisation: He for ReLU networks, Glorot for symmetric activations.
//!
//! A layer `y = x W` with `fan_in` inputs sums `fan_in` products. With weights drawn
//! independently with mean zero and variance `s^2`, each output has mean zero and variance
//! `fan_in * s^2 * E[x^2]`: it inherits the inputs' second moment `E[x^2]`, which equals their
//! variance only when they have mean zero. Keeping the scale at one, layer after layer, keeps
//! activations and gradients from vanishing or exploding:
//!
//! * **Glorot and Bengio (2010)** balance the forward pass (`fan_in`) and the backward pass
//!   (`fan_out`): `Var(W) = 2 / (fan_in + fan_out)`; uniform on `[-a, a]` with
//!   `a = sqrt(6 / (fan_in + fan_out))`. Suited to `tanh` and sigmoid, whose outputs are roughly
//!   zero-mean.
//! * **He et al. (2015)** start from the second moment, because ReLU outputs are not zero-mean:
//!   for a pre-activation `a` symmetric around zero, `E[relu(a)^2] = E[a^2] / 2`, so a ReLU
//!   halves the second moment (not the variance), and `Var(W) = 2 / fan_in` doubles it back,
//!   drawn from a normal distribution.

use crate::float::{Float, c};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::Rng;

// ANCHOR: init
/// He (Kaiming) normal initialisation: entries drawn from `N(0, 2 / fan_in)`, shape
/// `[fan_in, fan_out]`.
pub fn he_normal<F: Float>(fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Array2<F> {
    let std = (2.0 / fan_in as f64).sqrt();
    let normal = Normal::new(0.0, std).expect("a positive standard deviation");
    Array2::<f64>::random_using((fan_in, fan_out), normal, rng).mapv(c::<F>)
}

/// Glorot (Xavier) uniform initialisation: entries drawn from `U(-a, a)` with
/// `a = sqrt(6 / (fan_in + fan_out))`, shape `[fan_in, fan_out]`.
pub fn glorot_uniform<F: Float>(fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Array2<F> {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let uniform = Uniform::new(-a, a).expect("a non-empty range");
    Array2::<f64>::random_using((fan_in, fan_out), uniform, rng).mapv(c::<F>)
}
// ANCHOR_END: init
