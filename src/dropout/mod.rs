//! Dropout (Srivastava, Hinton, Krizhevsky, Sutskever and Salakhutdinov, "Dropout: A Simple Way
//! to Prevent Neural Networks from Overfitting", JMLR 15(56):1929-1958, 2014), in its *inverted*
//! form, and an MLP that uses it.
//!
//! During training every unit of the layer's input is zeroed with probability `p` (the *drop*
//! rate; the paper's `p` is the probability of *keeping* a unit, our `1 - p`), and the survivors
//! are multiplied by `1 / (1 - p)`:
//!
//! `y = x * m`, with `m_i = 0` with probability `p` and `m_i = 1 / (1 - p)` otherwise,
//!
//! so that `E[y_i] = x_i`. Because the expectation is already right during training, evaluation
//! needs nothing at all: [`Dropout::infer`] is the identity. (The paper keeps training unscaled
//! and multiplies the outgoing weights by the keep probability at test time; the two give the
//! same network.) The backward pass multiplies by the *same* mask: `dx = dy * m`.
//!
//! There is no `training: bool` flag to forget. Training is [`Dropout::forward_train`], which
//! needs a random number generator and returns the cache that [`Dropout::backward`] needs;
//! evaluation is [`Dropout::infer`], which needs neither.
//!
//! ```
//! use dlfs::dropout::Dropout;
//! use ndarray::array;
//! use rand::SeedableRng;
//!
//! let drop = Dropout::new(0.5).unwrap();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let x = array![[1.0_f64, 2.0, 3.0, 4.0]];
//! let (y, cache) = drop.forward_train(&x, &mut rng);
//! // Every entry was either dropped or doubled.
//! assert!(y.iter().zip(&x).all(|(y, x)| *y == 0.0 || *y == 2.0 * x));
//! assert_eq!(drop.infer(&x), x);
//! let dx = drop.backward(&cache, &array![[1.0, 1.0, 1.0, 1.0]]);
//! assert_eq!(&dx, cache.mask());
//! assert!(Dropout::new(1.0).is_err());
//! ```

pub mod experiment;

use crate::activation::{relu, relu_backward};
use crate::float::Float;
use crate::linear::LinearCache;
use crate::mlp::Mlp;
use crate::param::{ParamMut, ParamRef, Params};
use ndarray::{Array, Array2, Dimension, Ix2};
use rand::Rng;
use rand::distr::{Bernoulli, Distribution};

// ANCHOR: dropout
/// Inverted dropout with drop rate `p` in `[0, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f64,
}

/// A drop rate outside `[0, 1)` (or not a number).
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("the dropout rate must be in [0, 1) (the probability of dropping a unit), got {0}")]
pub struct BadRate(pub f64);

/// What [`Dropout::backward`] needs: the mask drawn by the forward pass, with entries `0` (dropped)
/// or `1 / (1 - p)` (kept).
#[derive(Clone, Debug)]
pub struct DropoutCache<F: Float, D: Dimension> {
    mask: Array<F, D>,
}
// ANCHOR_END: dropout

impl<F: Float, D: Dimension> DropoutCache<F, D> {
    /// The mask the forward pass multiplied by: `0` where a unit was dropped, `1 / (1 - p)` where
    /// it was kept.
    pub fn mask(&self) -> &Array<F, D> {
        &self.mask
    }
}

impl Dropout {
    // ANCHOR: new
    /// A dropout layer that drops each unit with probability `p`. Rejects `p` outside `[0, 1)`:
    /// `p = 1` would drop everything and scale by `1 / 0`.
    pub fn new(p: f64) -> Result<Dropout, BadRate> {
        if (0.0..1.0).contains(&p) {
            Ok(Dropout { p })
        } else {
            Err(BadRate(p))
        }
    }
    // ANCHOR_END: new

    /// The drop rate `p`.
    pub fn rate(&self) -> f64 {
        self.p
    }

    // ANCHOR: forward
    /// Training mode: draws a fresh mask from `rng` (each entry independently: `0` with
    /// probability `p`, else `1 / (1 - p)`) and returns `x * mask` and the mask. With `p = 0`
    /// the mask is all ones and nothing is drawn.
    pub fn forward_train<F: Float, D: Dimension>(
        &self,
        x: &Array<F, D>,
        rng: &mut impl Rng,
    ) -> (Array<F, D>, DropoutCache<F, D>) {
        let mask = if self.p == 0.0 {
            Array::ones(x.raw_dim())
        } else {
            let drop = Bernoulli::new(self.p).expect("checked by Dropout::new");
            let keep = F::of(1.0 / (1.0 - self.p));
            Array::from_shape_simple_fn(x.raw_dim(), || {
                if drop.sample(rng) { F::zero() } else { keep }
            })
        };
        (x * &mask, DropoutCache { mask })
    }

    /// Evaluation mode: the identity. Inverted dropout did its scaling during training.
    pub fn infer<F: Float, D: Dimension>(&self, x: &Array<F, D>) -> Array<F, D> {
        x.clone()
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// `dx = dy * mask`, with the mask of the forward pass that made `cache`.
    pub fn backward<F: Float, D: Dimension>(
        &self,
        cache: &DropoutCache<F, D>,
        dy: &Array<F, D>,
    ) -> Array<F, D> {
        assert_eq!(
            dy.shape(),
            cache.mask.shape(),
            "Dropout: dy is {:?} but the forward pass saw {:?}",
            dy.shape(),
            cache.mask.shape()
        );
        dy * &cache.mask
    }
    // ANCHOR_END: backward
}

// ANCHOR: model
/// An MLP with dropout on its input and after every hidden ReLU (never on the logits):
///
/// `h_0 = drop_in(x)`, `a_l = h_{l-1} W_l + b_l`, `h_l = drop_hidden(relu(a_l))` for `l < L`,
/// and the logits are `z = a_L`.
///
/// The weights are an ordinary [`Mlp`]; at evaluation time dropout is the identity, so
/// [`DropoutMlp::infer`] *is* [`Mlp::infer`].
#[derive(Clone, Debug)]
pub struct DropoutMlp<F: Float> {
    /// The network's weights.
    pub mlp: Mlp<F>,
    /// Dropout on the input (the paper: keep 0.8, so drop 0.2).
    pub input: Dropout,
    /// Dropout after each hidden layer (the paper: keep 0.5, so drop 0.5).
    pub hidden: Dropout,
}

/// What [`DropoutMlp::backward`] needs: every mask and every layer's cache.
#[derive(Clone, Debug)]
pub struct DropoutMlpCache<F: Float> {
    input: DropoutCache<F, Ix2>,
    linear: Vec<LinearCache<F>>,
    pre_activations: Vec<Array2<F>>,
    hidden: Vec<DropoutCache<F, Ix2>>,
}
// ANCHOR_END: model

impl<F: Float> DropoutMlpCache<F> {
    /// The mask applied to the input.
    pub fn input_mask(&self) -> &Array2<F> {
        self.input.mask()
    }

    /// The masks applied after each hidden layer, first layer first.
    pub fn hidden_masks(&self) -> Vec<&Array2<F>> {
        self.hidden.iter().map(DropoutCache::mask).collect()
    }
}

impl<F: Float> DropoutMlp<F> {
    /// A He-initialised network of widths `sizes = [input, hidden..., output]` with the given
    /// dropout layers.
    pub fn new(sizes: &[usize], input: Dropout, hidden: Dropout, rng: &mut impl Rng) -> Self {
        DropoutMlp {
            mlp: Mlp::new(sizes, rng),
            input,
            hidden,
        }
    }

    // ANCHOR: model_forward
    /// Training mode: the logits of one *thinned* network, with fresh masks drawn from `rng`,
    /// and the cache backward needs.
    pub fn forward_train(
        &self,
        x: &Array2<F>,
        rng: &mut impl Rng,
    ) -> (Array2<F>, DropoutMlpCache<F>) {
        let layers = &self.mlp.layers;
        let (mut h, input) = self.input.forward_train(x, rng);
        let mut cache = DropoutMlpCache {
            input,
            linear: Vec::with_capacity(layers.len()),
            pre_activations: Vec::with_capacity(layers.len() - 1),
            hidden: Vec::with_capacity(layers.len() - 1),
        };
        for (i, layer) in layers.iter().enumerate() {
            let (a, c) = layer.forward_owned(h);
            cache.linear.push(c);
            if i + 1 < layers.len() {
                let (dropped, d) = self.hidden.forward_train(&relu(&a), rng);
                cache.pre_activations.push(a);
                cache.hidden.push(d);
                h = dropped;
            } else {
                h = a;
            }
        }
        (h, cache)
    }

    /// Evaluation mode: the full network, no masks (dropout is the identity at test time).
    pub fn infer(&self, x: &Array2<F>) -> Array2<F> {
        self.mlp.infer(x)
    }
    // ANCHOR_END: model_forward

    // ANCHOR: model_backward
    /// Backpropagates `dz = dL/dlogits` through the thinned network of the forward pass that
    /// made `cache` (its masks, not new ones): accumulates every layer's gradients and returns
    /// `dL/dx`.
    pub fn backward(&mut self, cache: &DropoutMlpCache<F>, dz: &Array2<F>) -> Array2<F> {
        let g = self.backward_hidden(cache, dz);
        let g = self.mlp.layers[0].backward(&cache.linear[0], &g);
        self.input.backward(&cache.input, &g)
    }

    /// [`DropoutMlp::backward`] without `dL/dx` (training on data needs no input gradient).
    pub fn backward_params(&mut self, cache: &DropoutMlpCache<F>, dz: &Array2<F>) {
        let g = self.backward_hidden(cache, dz);
        self.mlp.layers[0].backward_params(&cache.linear[0], &g);
    }

    /// From the logits down to the first layer's pre-activation.
    fn backward_hidden(&mut self, cache: &DropoutMlpCache<F>, dz: &Array2<F>) -> Array2<F> {
        let layers = &mut self.mlp.layers;
        let last = layers.len() - 1;
        let mut g = dz.clone();
        for i in (1..=last).rev() {
            g = layers[i].backward(&cache.linear[i], &g);
            g = self.hidden.backward(&cache.hidden[i - 1], &g);
            g = relu_backward(&cache.pre_activations[i - 1], &g);
        }
        g
    }
    // ANCHOR_END: model_backward
}

impl<F: Float> Params<F> for DropoutMlp<F> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>)) {
        self.mlp.visit(prefix, f);
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>)) {
        self.mlp.visit_ref(prefix, f);
    }
}
