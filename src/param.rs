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
use ndarray::{Array, ArrayViewD, ArrayViewMutD, Dimension, Ix1, Ix2};

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

/// A parameter as seen by a read-only visitor.
pub struct ParamRef<'a, F> {
    /// The values.
    pub value: ArrayViewD<'a, F>,
    /// The gradient, same shape as `value`.
    pub grad: ArrayViewD<'a, F>,
}

/// Anything that owns parameters: a layer or a whole model.
///
/// Most implementations list their fields with [`impl_params!`](crate::impl_params), which
/// writes both methods; a hand-written one must visit the same parameters, in the same order,
/// with the same names, in both.
pub trait Params<F> {
    /// Calls `f` once for every parameter, in a fixed order, with its full dotted name
    /// (`prefix` followed by the parameter's own path).
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>));

    /// The same walk, read-only: for counting, naming and reporting without `&mut`.
    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>));
}

/// A parameter is a model of one parameter, named by the prefix alone.
impl<F, D: Dimension> Params<F> for Param<F, D> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>)) {
        f(
            prefix,
            ParamMut {
                value: self.value.view_mut().into_dyn(),
                grad: self.grad.view_mut().into_dyn(),
            },
        );
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>)) {
        f(
            prefix,
            ParamRef {
                value: self.value.view().into_dyn(),
                grad: self.grad.view().into_dyn(),
            },
        );
    }
}

/// A list of layers or blocks: element `i` is visited under `prefix.i`, so stacked blocks get
/// distinct names (`blocks.0.w`, `blocks.1.w`, ...).
impl<F, T: Params<F>> Params<F> for Vec<T> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>)) {
        for (i, item) in self.iter_mut().enumerate() {
            item.visit(&join(prefix, &i.to_string()), f);
        }
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>)) {
        for (i, item) in self.iter().enumerate() {
            item.visit_ref(&join(prefix, &i.to_string()), f);
        }
    }
}

/// An optional part (a bias that may be switched off, a direct connection): visited when
/// present, under the same prefix.
impl<F, T: Params<F>> Params<F> for Option<T> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>)) {
        if let Some(item) = self {
            item.visit(prefix, f);
        }
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>)) {
        if let Some(item) = self {
            item.visit_ref(prefix, f);
        }
    }
}

// ANCHOR: impl_params
/// Implements [`Params`] for a struct by visiting the listed fields in order, each under its
/// own name: a field may be a [`Param`], a layer, a `Vec` of layers or an `Option` of one.
///
/// ```
/// use dlfs::float::Float;
/// use dlfs::linear::Linear;
/// use dlfs::param::{Param1, names};
///
/// struct Gate<F: Float> {
///     proj: Linear<F>,
///     scale: Param1<F>,
///     extra: Vec<Linear<F>>,
/// }
/// dlfs::impl_params!(Gate<F> { proj, scale, extra });
///
/// let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
/// let gate = Gate::<f64> {
///     proj: Linear::new(2, 3, &mut rng),
///     scale: Param1::new(ndarray::Array1::ones(3)),
///     extra: vec![Linear::new(3, 3, &mut rng)],
/// };
/// assert_eq!(names(&gate), ["proj.w", "proj.b", "scale", "extra.0.w", "extra.0.b"]);
/// ```
#[macro_export]
macro_rules! impl_params {
    ($name:ident < F > { $($field:ident),+ $(,)? }) => {
        impl<F: $crate::float::Float> $crate::param::Params<F> for $name<F> {
            fn visit(
                &mut self,
                prefix: &str,
                f: &mut dyn FnMut(&str, $crate::param::ParamMut<'_, F>),
            ) {
                $(
                    $crate::param::Params::visit(
                        &mut self.$field,
                        &$crate::param::join(prefix, stringify!($field)),
                        f,
                    );
                )+
            }

            fn visit_ref(
                &self,
                prefix: &str,
                f: &mut dyn FnMut(&str, $crate::param::ParamRef<'_, F>),
            ) {
                $(
                    $crate::param::Params::visit_ref(
                        &self.$field,
                        &$crate::param::join(prefix, stringify!($field)),
                        f,
                    );
                )+
            }
        }
    };
}
// ANCHOR_END: impl_params
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
pub fn count<F: Float>(model: &impl Params<F>) -> usize {
    let mut n = 0;
    model.visit_ref("", &mut |_, p| n += p.value.len());
    n
}

/// The names of `model`'s parameters, in visiting order.
pub fn names<F: Float>(model: &impl Params<F>) -> Vec<String> {
    let mut out = Vec::new();
    model.visit_ref("", &mut |name, _| out.push(name.to_string()));
    out
}

/// The names of `model`'s parameters with their shapes, in visiting order: what a
/// parameter-name test compares against the model's definition.
pub fn shapes<F: Float>(model: &impl Params<F>) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    model.visit_ref("", &mut |name, p| {
        out.push((name.to_string(), p.value.shape().to_vec()))
    });
    out
}

/// Whether every gradient is a finite number (neither NaN nor infinite). Unlike
/// [`grad_norm`]'s running sum, the test of one element does not wait for the previous one, so
/// the scan runs in vector registers: the check a training step makes every time.
pub fn grads_finite<F: Float>(model: &impl Params<F>) -> bool {
    let mut finite = true;
    model.visit_ref("", &mut |_, p| {
        finite &= match p.grad.as_slice_memory_order() {
            // `&` rather than `&&`: no early exit, so the loop vectorises.
            Some(all) => all.iter().fold(true, |ok, g| ok & g.is_finite()),
            None => p.grad.iter().all(|g| g.is_finite()),
        };
    });
    finite
}

/// The global L2 norm of all gradients: `sqrt(sum of squares)`, in f64.
pub fn grad_norm<F: Float>(model: &impl Params<F>) -> f64 {
    let mut s = 0.0_f64;
    model.visit_ref("", &mut |_, p| {
        s += p.grad.iter().map(|g| g.as_f64() * g.as_f64()).sum::<f64>();
    });
    s.sqrt()
}
