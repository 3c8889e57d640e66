//! Finite differences: estimating a gradient from function values alone.
//!
//! For a scalar function `f` of an array `x` and the unit array `e_i` (one in coordinate `i`,
//! zero elsewhere):
//!
//! * the **forward** difference `(f(x + h e_i) - f(x)) / h` has a truncation error of order `h`
//!   (the first neglected Taylor term is `h f''/2`);
//! * the **central** difference `(f(x + h e_i) - f(x - h e_i)) / 2h` has one of order `h^2`
//!   (the even terms cancel; the first left is `h^2 f'''/6`).
//!
//! Both also suffer round-off: `f` is only known to about `eps |f|`, and dividing by `h` blows
//! that up to about `eps |f| / h`. Shrinking `h` trades truncation for round-off, which is why
//! the error against `h` is V-shaped on a log-log plot ([`sweep`]).

use crate::float::Float;
use crate::gradcheck::rel_error;
use crate::loss::softmax_cross_entropy;
use ndarray::{Array, Array2, Dimension};
use ndarray_rand::RandomExt;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// Which finite difference to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scheme {
    /// `(f(x + h) - f(x)) / h`, error `O(h)`.
    Forward,
    /// `(f(x + h) - f(x - h)) / 2h`, error `O(h^2)`.
    Central,
}

// ANCHOR: difference
/// The finite-difference estimate of the gradient of `f` at `x`, one coordinate at a time, with
/// step `h` (converted to `F`, so in `f32` the step itself is rounded).
pub fn numerical_gradient<F: Float, D: Dimension>(
    scheme: Scheme,
    f: impl Fn(&Array<F, D>) -> F,
    x: &Array<F, D>,
    h: f64,
) -> Array<F, D> {
    let h = F::of(h);
    let mut probe = x.as_standard_layout().into_owned();
    let f0 = f(&probe);
    let mut grad = Array::zeros(probe.raw_dim());
    for i in 0..probe.len() {
        let original = probe.as_slice().expect("standard layout")[i];
        probe.as_slice_mut().expect("standard layout")[i] = original + h;
        let up = f(&probe);
        let estimate = match scheme {
            Scheme::Forward => (up - f0) / h,
            Scheme::Central => {
                probe.as_slice_mut().expect("standard layout")[i] = original - h;
                (up - f(&probe)) / (h + h)
            }
        };
        probe.as_slice_mut().expect("standard layout")[i] = original;
        grad.as_slice_mut().expect("standard layout")[i] = estimate;
    }
    grad
}
// ANCHOR_END: difference

/// A small softmax-regression problem whose exact gradient we know: the mean cross-entropy of
/// `X W` against `labels`, as a function of `W`. Its gradient is `X^T (P - Y) / B`, with `P`
/// the softmax probabilities and `Y` the one-hot labels.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Inputs, `[batch, in]`.
    pub x: Array2<f64>,
    /// The point where the gradient is taken, `[in, classes]`.
    pub w: Array2<f64>,
    /// One class per row of `x`.
    pub labels: Vec<usize>,
}

impl Problem {
    /// A random problem: standard normal inputs and weights, uniform labels.
    pub fn random(batch: usize, input: usize, classes: usize, rng: &mut impl Rng) -> Self {
        Problem {
            x: Array2::random_using((batch, input), StandardNormal, rng),
            w: Array2::random_using((input, classes), StandardNormal, rng),
            labels: (0..batch).map(|_| rng.random_range(0..classes)).collect(),
        }
    }

    /// The loss at `w`, computed entirely in the float type `F`.
    pub fn loss<F: Float>(&self, w: &Array2<F>) -> F {
        let x = self.x.mapv(F::of);
        softmax_cross_entropy(&x.dot(w), &self.labels).0
    }

    /// The exact gradient `dL/dW` at the problem's point, in f64.
    pub fn gradient(&self) -> Array2<f64> {
        let (_, dz) = softmax_cross_entropy(&self.x.dot(&self.w), &self.labels);
        self.x.t().dot(&dz)
    }

    /// The norm-wise relative error of the finite-difference gradient with step `h`, computed
    /// in the float type `F`, against the exact gradient.
    pub fn error<F: Float>(&self, scheme: Scheme, h: f64) -> f64 {
        let w = self.w.mapv(F::of);
        let numeric = numerical_gradient(scheme, |w| self.loss(w), &w, h);
        let numeric: Vec<f64> = numeric.iter().map(|v| v.as_f64()).collect();
        let exact: Vec<f64> = self.gradient().iter().copied().collect();
        rel_error(&exact, &numeric)
    }
}

/// The error of one scheme in one precision at one step.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepError {
    /// The step `h`.
    pub h: f64,
    /// Relative error of the forward difference in f64.
    pub forward_f64: f64,
    /// Relative error of the central difference in f64.
    pub central_f64: f64,
    /// Relative error of the forward difference in f32.
    pub forward_f32: f64,
    /// Relative error of the central difference in f32.
    pub central_f32: f64,
}

// ANCHOR: sweep
/// The relative error of both schemes, in f64 and f32, at every step in `steps`.
pub fn sweep(problem: &Problem, steps: &[f64]) -> Vec<StepError> {
    steps
        .iter()
        .map(|&h| StepError {
            h,
            forward_f64: problem.error::<f64>(Scheme::Forward, h),
            central_f64: problem.error::<f64>(Scheme::Central, h),
            forward_f32: problem.error::<f32>(Scheme::Forward, h),
            central_f32: problem.error::<f32>(Scheme::Central, h),
        })
        .collect()
}
// ANCHOR_END: sweep

/// `count` steps spaced evenly in `log10` from `10^-from` down to `10^-to`.
pub fn log_steps(from: f64, to: f64, count: usize) -> Vec<f64> {
    match count {
        0 => Vec::new(),
        1 => vec![10f64.powf(-from)],
        _ => (0..count)
            .map(|k| 10f64.powf(-(from + (to - from) * k as f64 / (count - 1) as f64)))
            .collect(),
    }
}
