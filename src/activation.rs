//! Element-wise activations and their derivatives.
//!
//! Each activation comes as a pair: the function, and its backward rule, which turns
//! `dy = dL/dy` into `dx = dL/dx = dy * f'(x)` element by element. The backward rules take
//! whichever of `x` or `y` makes the derivative cheapest: ReLU and GELU need the input, sigmoid
//! and tanh are cheapest from their output (`s' = s (1 - s)`, `tanh' = 1 - tanh^2`).
//!
//! All functions work on arrays of any shape. Sigmoid, tanh and GELU work through whole slices
//! ([`sigmoid_all`], [`crate::vmath::tanh_all`], [`gelu_all`]): in `f32` those run the vector
//! loops of [`crate::vmath`], in `f64` the one-number formulas written here.

use crate::float::{Float, c};
use crate::matmul::split_elements;
use crate::vmath;
use ndarray::{Array, Dimension, Zip};

/// `x` with `all` applied to its elements: a copy in standard layout, changed in place.
fn map_all<F: Float, D: Dimension>(x: &Array<F, D>, all: fn(&mut [F])) -> Array<F, D> {
    let mut y = x.as_standard_layout().into_owned();
    all(y
        .as_slice_mut()
        .expect("an array in standard layout is one slice"));
    y
}

// ANCHOR: relu
/// `relu(x) = max(x, 0)`.
pub fn relu<F: Float, D: Dimension>(x: &Array<F, D>) -> Array<F, D> {
    x.mapv(|v| if v > F::zero() { v } else { F::zero() })
}

/// `dx = dy` where `x > 0`, else 0. (At exactly `x = 0` we take the derivative to be 0.)
pub fn relu_backward<F: Float, D: Dimension>(x: &Array<F, D>, dy: &Array<F, D>) -> Array<F, D> {
    Zip::from(x)
        .and(dy)
        .map_collect(|&x, &g| if x > F::zero() { g } else { F::zero() })
}
// ANCHOR_END: relu

// ANCHOR: sigmoid
/// The logistic sigmoid `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
pub fn sigmoid<F: Float, D: Dimension>(x: &Array<F, D>) -> Array<F, D> {
    map_all(x, sigmoid_all)
}

/// [`sigmoid_scalar`] of every element, in place ([`vmath::sigmoid_f32`] for `f32`).
pub fn sigmoid_all<F: Float>(xs: &mut [F]) {
    vmath::apply(xs, vmath::sigmoid_f32, sigmoid_scalar);
}

/// One sigmoid: for negative `x` it uses `e^x / (1 + e^x)`, so `exp` never sees a large
/// positive argument.
pub fn sigmoid_scalar<F: Float>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

/// `dx = dy * s (1 - s)`, from the sigmoid's output `s`.
pub fn sigmoid_backward<F: Float, D: Dimension>(s: &Array<F, D>, dy: &Array<F, D>) -> Array<F, D> {
    Zip::from(s)
        .and(dy)
        .map_collect(|&s, &g| g * s * (F::one() - s))
}
// ANCHOR_END: sigmoid

// ANCHOR: tanh
/// The hyperbolic tangent.
pub fn tanh<F: Float, D: Dimension>(x: &Array<F, D>) -> Array<F, D> {
    map_all(x, vmath::tanh_all)
}

/// `dx = dy * (1 - t^2)`, from the output `t = tanh(x)`.
pub fn tanh_backward<F: Float, D: Dimension>(t: &Array<F, D>, dy: &Array<F, D>) -> Array<F, D> {
    Zip::from(t)
        .and(dy)
        .map_collect(|&t, &g| g * (F::one() - t * t))
}
// ANCHOR_END: tanh

// ANCHOR: gelu
/// The exact GELU of Hendrycks and Gimpel (2016): `x * Phi(x)`, with `Phi` the standard normal
/// CDF, `Phi(x) = (1 + erf(x / sqrt 2)) / 2`.
pub fn gelu<F: Float, D: Dimension>(x: &Array<F, D>) -> Array<F, D> {
    map_all(x, gelu_all)
}

/// `dx = dy * (Phi(x) + x phi(x))`, with `phi` the standard normal density.
pub fn gelu_backward<F: Float, D: Dimension>(x: &Array<F, D>, dy: &Array<F, D>) -> Array<F, D> {
    let mut dx = map_all(x, gelu_grad_all);
    let each = Zip::from(&mut dx).and(dy);
    if split_elements(each.size()) {
        each.par_for_each(|d, &g| *d *= g);
    } else {
        each.for_each(|d, &g| *d *= g);
    }
    dx
}

/// [`gelu_scalar`] of every element, in place ([`vmath::gelu_f32`] for `f32`).
pub fn gelu_all<F: Float>(xs: &mut [F]) {
    vmath::apply(xs, vmath::gelu_f32, gelu_scalar);
}

/// [`gelu_grad_scalar`] of every element, in place ([`vmath::gelu_grad_f32`] for `f32`).
pub fn gelu_grad_all<F: Float>(xs: &mut [F]) {
    vmath::apply(xs, vmath::gelu_grad_f32, gelu_grad_scalar);
}

/// One GELU, `x Phi(x)`: the definition.
pub fn gelu_scalar<F: Float>(x: F) -> F {
    x * normal_cdf(x)
}

/// One GELU derivative, `Phi(x) + x phi(x)`.
pub fn gelu_grad_scalar<F: Float>(x: F) -> F {
    let inv_sqrt_2pi = c::<F>(1.0 / (2.0 * std::f64::consts::PI).sqrt());
    normal_cdf(x) + x * inv_sqrt_2pi * (-x * x * c(0.5)).exp()
}

fn normal_cdf<F: Float>(x: F) -> F {
    c::<F>(0.5) * (F::one() + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf())
}
// ANCHOR_END: gelu

/// The activations a layer can be configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// [`relu`].
    Relu,
    /// [`gelu`] (exact, with `erf`).
    Gelu,
}

impl Activation {
    /// Applies the activation.
    pub fn apply<F: Float, D: Dimension>(self, x: &Array<F, D>) -> Array<F, D> {
        match self {
            Activation::Relu => relu(x),
            Activation::Gelu => gelu(x),
        }
    }

    /// Its backward rule, from the activation's *input* `x`.
    pub fn backward<F: Float, D: Dimension>(
        self,
        x: &Array<F, D>,
        dy: &Array<F, D>,
    ) -> Array<F, D> {
        match self {
            Activation::Relu => relu_backward(x, dy),
            Activation::Gelu => gelu_backward(x, dy),
        }
    }
}
