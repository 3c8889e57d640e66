//! The linear (fully connected) layer: `y = x W + b`.
//!
//! Shapes: `x` is `[batch, in]`, `W` is `[in, out]`, `b` is `[out]` (added to every row), `y` is
//! `[batch, out]`. Papers write the column form `y = W x + b`; the row form lets one matrix
//! product handle the whole batch, and is the form every derivation in the book uses.
//!
//! Backward, given `dy = dL/dy` of shape `[batch, out]`:
//!
//! * `dL/dW = x^T dy` (`[in, batch] x [batch, out]`),
//! * `dL/db = sum of dy over the batch`,
//! * `dL/dx = dy W^T` (`[batch, out] x [out, in]`).
//!
//! ```
//! use dlfs::linear::Linear;
//! use ndarray::array;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let layer = Linear::<f64>::new(3, 2, &mut rng);
//! let y = layer.infer(&array![[1.0, 2.0, 3.0]]);
//! assert_eq!(y.shape(), &[1, 2]);
//! ```

use crate::float::Float;
use crate::init::he_normal;
use crate::matmul::{matmul, matmul_into};
use crate::param::{Param1, Param2};
use ndarray::{Array1, Array2, ArrayRef2, Axis};
use rand::Rng;

// ANCHOR: struct
/// A fully connected layer `y = x W + b`.
#[derive(Clone, Debug)]
pub struct Linear<F: Float> {
    /// Weights, `[in, out]`.
    pub w: Param2<F>,
    /// Bias, `[out]`.
    pub b: Param1<F>,
}

/// What [`Linear::backward`] needs from the forward pass: the input.
#[derive(Clone, Debug)]
pub struct LinearCache<F: Float> {
    x: Array2<F>,
}
// ANCHOR_END: struct

impl<F: Float> Linear<F> {
    /// A layer with He-initialised weights (suited to a ReLU after it) and a zero bias.
    pub fn new(input: usize, output: usize, rng: &mut impl Rng) -> Self {
        Self::from_weights(he_normal(input, output, rng), Array1::zeros(output))
    }

    /// A layer with the given weights `[in, out]` and bias `[out]`.
    pub fn from_weights(w: Array2<F>, b: Array1<F>) -> Self {
        assert_eq!(
            w.ncols(),
            b.len(),
            "Linear: weight is {:?} but bias has {} entries",
            w.shape(),
            b.len()
        );
        Linear {
            w: Param2::new(w),
            b: Param1::new(b),
        }
    }

    /// Input width.
    pub fn input(&self) -> usize {
        self.w.value.nrows()
    }

    /// Output width.
    pub fn output(&self) -> usize {
        self.w.value.ncols()
    }

    // ANCHOR: forward
    /// `y = x W + b` for a batch `x` of shape `[batch, in]`, without keeping a cache. `x` may
    /// be an owned array or a view (`&ArrayRef2` accepts both).
    pub fn infer(&self, x: &ArrayRef2<F>) -> Array2<F> {
        assert_eq!(
            x.ncols(),
            self.input(),
            "Linear: input is {:?} but the layer expects [batch, {}]",
            x.shape(),
            self.input()
        );
        matmul(x, &self.w.value) + &self.b.value
    }

    /// The forward pass for training: the output and the cache backward needs (a copy of `x`).
    pub fn forward(&self, x: &ArrayRef2<F>) -> (Array2<F>, LinearCache<F>) {
        (self.infer(x), LinearCache { x: x.to_owned() })
    }

    /// [`Linear::forward`] for an input the caller no longer needs: it moves into the cache
    /// instead of being copied.
    pub fn forward_owned(&self, x: Array2<F>) -> (Array2<F>, LinearCache<F>) {
        (self.infer(&x), LinearCache { x })
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Adds `dL/dW` and `dL/db` to the gradients and returns `dL/dx`.
    pub fn backward(&mut self, cache: &LinearCache<F>, dy: &ArrayRef2<F>) -> Array2<F> {
        self.backward_params(cache, dy);
        matmul(dy, &self.w.value.t())
    }

    /// Adds `dL/dW` and `dL/db` to the gradients, and skips `dL/dx`: for a first layer, whose
    /// input is data, this saves a third of the layer's backward work.
    pub fn backward_params(&mut self, cache: &LinearCache<F>, dy: &ArrayRef2<F>) {
        assert_eq!(
            dy.dim(),
            (cache.x.nrows(), self.output()),
            "Linear: dy is {:?} but the forward output was [{}, {}]",
            dy.shape(),
            cache.x.nrows(),
            self.output()
        );
        matmul_into(F::one(), &cache.x.t(), dy, F::one(), &mut self.w.grad);
        self.b.grad += &dy.sum_axis(Axis(0));
    }
    // ANCHOR_END: backward
}

crate::impl_params!(Linear<F> { w, b });
