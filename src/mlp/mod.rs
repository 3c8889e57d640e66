//! The multilayer perceptron, and the position-wise feed-forward block with its residual
//! connection.
//!
//! An MLP with layer sizes `[d_0, d_1, ..., d_L]` alternates linear layers and ReLUs:
//!
//! `h_0 = x`, `a_l = h_{l-1} W_l + b_l`, `h_l = relu(a_l)` for `l < L`, and the logits are
//! `z = a_L` (no ReLU on the last layer; the loss applies the softmax).
//!
//! Backpropagation (Rumelhart, Hinton and Williams, 1986) walks the same chain backwards:
//! starting from `dz = dL/dz`, each linear layer turns the gradient of its output into the
//! gradient of its input (accumulating its own weight gradients on the way), and each ReLU
//! lets the gradient through where its input was positive.

pub mod experiment;

use crate::activation::{Activation, relu, relu_backward};
use crate::float::Float;
use crate::linear::{Linear, LinearCache};

use ndarray::{Array, Array2, ArrayRef2, Dimension};
use rand::Rng;

// ANCHOR: mlp
/// A stack of linear layers with ReLUs between them.
#[derive(Clone, Debug)]
pub struct Mlp<F: Float> {
    /// The layers, input first.
    pub layers: Vec<Linear<F>>,
}

/// What the backward pass needs: each layer's cache and each hidden pre-activation.
#[derive(Clone, Debug)]
pub struct MlpCache<F: Float> {
    linear: Vec<LinearCache<F>>,
    pre_activations: Vec<Array2<F>>,
}
// ANCHOR_END: mlp

impl<F: Float> Mlp<F> {
    /// An MLP with the given layer widths, `sizes = [input, hidden..., output]`, He-initialised.
    pub fn new(sizes: &[usize], rng: &mut impl Rng) -> Self {
        assert!(
            sizes.len() >= 2,
            "Mlp: need at least an input and an output size, got {sizes:?}"
        );
        let layers = sizes
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], rng))
            .collect();
        Mlp { layers }
    }

    /// The widths `[input, hidden..., output]`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.layers[0].input()];
        s.extend(self.layers.iter().map(Linear::output));
        s
    }

    // ANCHOR: forward
    /// The logits for a batch `x` (`[batch, input]`), keeping what backward needs.
    pub fn forward(&self, x: &ArrayRef2<F>) -> (Array2<F>, MlpCache<F>) {
        let mut cache = MlpCache {
            linear: Vec::with_capacity(self.layers.len()),
            pre_activations: Vec::with_capacity(self.layers.len() - 1),
        };
        let (mut h, c) = self.layers[0].forward(x);
        cache.linear.push(c);
        for layer in &self.layers[1..] {
            // The ReLU's output moves into the next layer's cache; its input stays for the
            // ReLU's backward pass.
            let (a, c) = layer.forward_owned(relu(&h));
            cache.pre_activations.push(h);
            cache.linear.push(c);
            h = a;
        }
        (h, cache)
    }
    // ANCHOR_END: forward

    /// The logits without a cache (evaluation).
    pub fn infer(&self, x: &ArrayRef2<F>) -> Array2<F> {
        let mut h = self.layers[0].infer(x);
        for layer in &self.layers[1..] {
            h = layer.infer(&relu(&h));
        }
        h
    }

    // ANCHOR: backward
    /// Backpropagates `dz = dL/dlogits`: accumulates every layer's gradients and returns
    /// `dL/dx`.
    pub fn backward(&mut self, cache: &MlpCache<F>, dz: &ArrayRef2<F>) -> Array2<F> {
        let g = self.backward_hidden(cache, dz);
        self.layers[0].backward(&cache.linear[0], &g)
    }

    /// [`Mlp::backward`] without `dL/dx`, for training on data, whose gradient nobody needs.
    pub fn backward_params(&mut self, cache: &MlpCache<F>, dz: &ArrayRef2<F>) {
        let g = self.backward_hidden(cache, dz);
        self.layers[0].backward_params(&cache.linear[0], &g);
    }

    /// Backpropagates from the logits down to the first layer's output: returns the gradient
    /// with respect to the first layer's pre-activation.
    fn backward_hidden(&mut self, cache: &MlpCache<F>, dz: &ArrayRef2<F>) -> Array2<F> {
        let last = self.layers.len() - 1;
        let mut g = dz.to_owned();
        for i in (1..=last).rev() {
            g = self.layers[i].backward(&cache.linear[i], &g);
            g = relu_backward(&cache.pre_activations[i - 1], &g);
        }
        g
    }
    // ANCHOR_END: backward
}

crate::impl_params!(Mlp<F> { layers });

// ANCHOR: feed_forward
/// The position-wise feed-forward block: `FF(x) = act(x W_1 + b_1) W_2 + b_2`, widening from `d`
/// to `hidden` (usually `4d`) and back to `d`.
///
/// "Position-wise" means it treats every row on its own: it accepts `[batch, d]` or
/// `[batch, time, d]` (or any shape whose last axis is `d`) and applies the same two layers to
/// each position, by viewing the input as `[positions, d]`. The Transformer chapter uses it as
/// the second sublayer of every block.
#[derive(Clone, Debug)]
pub struct FeedForward<F: Float> {
    /// `d -> hidden`.
    pub up: Linear<F>,
    /// `hidden -> d`.
    pub down: Linear<F>,
    /// The nonlinearity between them (ReLU in the Transformer paper, GELU in GPT-style models).
    pub activation: Activation,
}

/// What [`FeedForward::backward`] needs.
#[derive(Clone, Debug)]
pub struct FeedForwardCache<F: Float> {
    up: LinearCache<F>,
    hidden: Array2<F>,
    down: LinearCache<F>,
}
// ANCHOR_END: feed_forward

impl<F: Float> FeedForward<F> {
    /// A block `d -> hidden -> d`.
    pub fn new(d: usize, hidden: usize, activation: Activation, rng: &mut impl Rng) -> Self {
        FeedForward {
            up: Linear::new(d, hidden, rng),
            down: Linear::new(hidden, d, rng),
            activation,
        }
    }

    /// The model width `d`.
    pub fn width(&self) -> usize {
        self.up.input()
    }

    // ANCHOR: feed_forward_pass
    /// `FF(x)` for `x` of any shape whose last axis is `d`; the output has the shape of `x`.
    pub fn forward<D: Dimension>(&self, x: &Array<F, D>) -> (Array<F, D>, FeedForwardCache<F>) {
        let x2 = self.as_rows(x);
        let (a, up) = self.up.forward(&x2);
        let h = self.activation.apply(&a);
        let (y, down) = self.down.forward(&h);
        let cache = FeedForwardCache {
            up,
            hidden: a,
            down,
        };
        (from_rows(y, x.raw_dim()), cache)
    }

    /// Accumulates the block's gradients and returns `dL/dx`, shaped like `dy`.
    pub fn backward<D: Dimension>(
        &mut self,
        cache: &FeedForwardCache<F>,
        dy: &Array<F, D>,
    ) -> Array<F, D> {
        let dy2 = self.as_rows(dy);
        let dh = self.down.backward(&cache.down, &dy2);
        let da = self.activation.backward(&cache.hidden, &dh);
        let dx = self.up.backward(&cache.up, &da);
        from_rows(dx, dy.raw_dim())
    }
    // ANCHOR_END: feed_forward_pass

    /// Views `x` (`[..., d]`) as `[positions, d]`.
    fn as_rows<D: Dimension>(&self, x: &Array<F, D>) -> Array2<F> {
        let d = self.width();
        assert!(
            x.ndim() >= 1 && x.shape()[x.ndim() - 1] == d,
            "FeedForward: input is {:?} but the block expects a last axis of {d}",
            x.shape()
        );
        x.to_shape((x.len() / d, d))
            .expect("a reshape of a standard-layout copy")
            .into_owned()
    }
}

fn from_rows<F: Float, D: Dimension>(y: Array2<F>, shape: D) -> Array<F, D> {
    y.into_shape_with_order(shape)
        .expect("the block keeps the number of elements")
}

crate::impl_params!(FeedForward<F> { up, down });

// ANCHOR: residual
/// A feed-forward block with a residual (skip) connection: `y = x + FF(x)`.
///
/// The gradient of a sum flows to both terms unchanged, so `dL/dx = dy + FF'(x)^T dy`: even if
/// the block's own gradient is tiny, `dy` reaches the layers below intact. This is what lets
/// deep stacks of such blocks (He et al., 2016; the Transformer) train.
#[derive(Clone, Debug)]
pub struct Residual<F: Float> {
    /// The block inside the skip connection.
    pub block: FeedForward<F>,
}

impl<F: Float> Residual<F> {
    /// `x + FF(x)`, with the block's cache.
    pub fn forward<D: Dimension>(&self, x: &Array<F, D>) -> (Array<F, D>, FeedForwardCache<F>) {
        let (f, cache) = self.block.forward(x);
        (f + x, cache)
    }

    /// `dL/dx = dy + (the block's backward of dy)`.
    pub fn backward<D: Dimension>(
        &mut self,
        cache: &FeedForwardCache<F>,
        dy: &Array<F, D>,
    ) -> Array<F, D> {
        self.block.backward(cache, dy) + dy
    }
}
// ANCHOR_END: residual

crate::impl_params!(Residual<F> { block });
