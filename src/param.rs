//! Parameters, their gradients, and the one trait that lets code walk over a model's parameters.
//!
//! A [`Param`] is an array of values with a gradient array of the same shape beside it. Backward
//! passes *add* into `grad` (so a layer used several times in one step, such as an LSTM cell or
//! tied weights, gets the sum of its contributions); [`zero_grads`] clears them before a step.
//!
//! Models implement [`Params`], a named visitor: `visit` hands every parameter, with a dotted
//! name such as `layers.0.w`, to a closure. Optimisers, gradient checks and checkpoints are all
//! written once against that visitor.

use crate::float::Float;
use ndarray::{Array, ArrayViewMutD, Dimension, Ix1, Ix2};

// ANCHOR: param
/// A trainable array and the gradient of the loss with respect to it.
#[derive(Clone, Debug)]
pub struct Param<F, D: Dimension> {
    /// The current values.
    pub value: Array<F, D>,
    /// d loss / d value, accumulated by backward passes.
    pub grad: Array<F, D>,
}

/// A parameter vector, such as a bias.
pub type Param1<F> = Param<F, Ix1>;
/// A parameter matrix, such as a weight.
pub type Param2<F> = Param<F, Ix2>;

impl<F: Float, D: Dimension> Param<F, D> {
    /// Wraps initial values, with a zero gradient of the same shape. Both are stored in
    /// standard (row-major) layout, so code that walks parameters element by element sees values
    /// and gradients in the same order.
    pub fn new(value: Array<F, D>) -> Self {
        let value = if value.is_standard_layout() {
            value
        } else {
            value.as_standard_layout().into_owned()
        };
        let grad = Array::zeros(value.raw_dim());
        Param { value, grad }
    }

    /// Both arrays as dynamic-dimensional mutable views, for code that treats all parameters
    /// alike (optimisers, checks, checkpoints).
    pub fn view_mut(&mut self) -> ParamMut<'_, F> {
        ParamMut {
            value: self.value.view_mut().into_dyn(),
            grad: self.grad.view_mut().into_dyn(),
        }
    }
}

/// A parameter as seen by a visitor: its values and its gradient, any number of dimensions.
pub struct ParamMut<'a, F> {
    /// The values.
    pub value: ArrayViewMutD<'a, F>,
    /// The gradient, same shape as `value`.
    pub grad: ArrayViewMutD<'a, F>,
}

/// Anything that owns parameters: a layer or a whole model.
pub trait Params<F> {
    /// Calls `f` once for every parameter, in a fixed order, with its full dotted name
    /// (`prefix` followed by the parameter's own path).
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>));
}
// ANCHOR_END: param

/// Joins a prefix and a name with a dot: `join("mlp", "w") == "mlp.w"`, `join("", "w") == "w"`.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Sets every gradient of `model` to zero.
pub fn zero_grads<F: Float>(model: &mut impl Params<F>) {
    model.visit("", &mut |_, mut p| p.grad.fill(F::zero()));
}

/// The number of trainable scalars in `model`.
pub fn count<F: Float>(model: &mut impl Params<F>) -> usize {
    let mut n = 0;
    model.visit("", &mut |_, p| n += p.value.len());
    n
}

/// The names of `model`'s parameters, in visiting order.
pub fn names<F: Float>(model: &mut impl Params<F>) -> Vec<String> {
    let mut out = Vec::new();
    model.visit("", &mut |name, _| out.push(name.to_string()));
    out
}

/// The global L2 norm of all gradients: `sqrt(sum of squares)`, in f64.
pub fn grad_norm<F: Float>(model: &mut impl Params<F>) -> f64 {
    let mut s = 0.0_f64;
    model.visit("", &mut |_, p| {
        s += p.grad.iter().map(|g| g.as_f64() * g.as_f64()).sum::<f64>();
    });
    s.sqrt()
}
