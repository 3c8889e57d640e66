//! Gradient checking: comparing a hand-written backward pass with central finite differences.
//!
//! For a scalar loss `L(theta)` and a coordinate `theta_i`, the central difference
//!
//! `(L(theta + h e_i) - L(theta - h e_i)) / 2h = dL/dtheta_i + O(h^2)`
//!
//! approximates the derivative with an error that shrinks with the *square* of `h` (the forward
//! difference `(L(theta + h e_i) - L(theta)) / h` only shrinks like `h`). In `f64` with
//! `h = 1e-5` the truncation error is around `1e-10` and the round-off error around
//! `1e-16 / 1e-5 = 1e-11`, so a correct backward pass agrees to about `1e-8` or better, and a
//! wrong one (a missing transpose, a dropped term) misses by orders of magnitude.
//!
//! We compare whole gradient arrays with the norm-wise relative error
//! `|a - n| / (|a| + |n|)` (zero when both are zero), which does not care about the scale of the
//! loss, and demand less than `1e-6`.

use crate::param::{ParamMut, Params, zero_grads};
use ndarray::{Array, Dimension};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

/// The threshold the book's tests use for the norm-wise relative error.
pub const TOLERANCE: f64 = 1e-6;

/// The outcome of checking one array of gradients.
#[derive(Clone, Debug)]
pub struct Check {
    /// The parameter's name, or `"input"`.
    pub name: String,
    /// Norm-wise relative error between the analytic and the numerical gradient.
    pub rel_error: f64,
    /// Norm of the analytic gradient over the checked coordinates.
    pub analytic_norm: f64,
    /// How many coordinates were checked.
    pub checked: usize,
}

/// The outcome of checking every parameter of a model.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per parameter, in visiting order.
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst relative error over all parameters.
    pub fn max_rel_error(&self) -> f64 {
        self.checks.iter().map(|c| c.rel_error).fold(0.0, f64::max)
    }

    /// Panics, listing every parameter and its error, if any error reaches `tol`.
    pub fn assert_below(&self, tol: f64) {
        assert!(
            self.max_rel_error() < tol && !self.checks.is_empty(),
            "gradient check failed (tolerance {tol:e}):\n{self}"
        );
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.checks {
            writeln!(
                f,
                "  {:<24} rel. error {:.2e}  |grad| {:.3e}  ({} coordinates)",
                c.name, c.rel_error, c.analytic_norm, c.checked
            )?;
        }
        Ok(())
    }
}

/// Norm-wise relative error `|a - n| / (|a| + |n|)`, zero when both are zero.
pub fn rel_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let diff = norm(&mut analytic.iter().zip(numeric).map(|(a, n)| a - n));
    let scale = norm(&mut analytic.iter().copied()) + norm(&mut numeric.iter().copied());
    if scale == 0.0 { 0.0 } else { diff / scale }
}

// ANCHOR: checker
/// How to check: the finite-difference step and, for big arrays, how many coordinates to sample.
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// The step `h` of the central difference.
    pub h: f64,
    /// Check at most this many randomly chosen coordinates of each array (all when `None`).
    pub max_per_array: Option<usize>,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            h: 1e-5,
            max_per_array: None,
        }
    }
}

impl GradCheck {
    /// Checks every parameter gradient of `model`.
    ///
    /// `loss(model)` runs the forward pass and returns the scalar loss; `backward(model)` runs
    /// forward and backward, accumulating the analytic gradients (they are zeroed first).
    pub fn params<M: Params<f64>>(
        &self,
        model: &mut M,
        loss: impl Fn(&M) -> f64,
        backward: impl FnOnce(&mut M),
    ) -> Report {
        zero_grads(model);
        backward(model);
        let mut analytic: Vec<(String, Vec<f64>)> = Vec::new();
        model.visit("", &mut |name, p| {
            analytic.push((name.to_string(), p.grad.iter().copied().collect()));
        });
        let mut report = Report::default();
        for (k, (name, grad)) in analytic.iter().enumerate() {
            let coords = self.coordinates(grad.len(), k);
            let mut numeric = Vec::with_capacity(coords.len());
            for &i in &coords {
                let original = set_coordinate(model, k, i, |v| v + self.h);
                let up = loss(model);
                set_coordinate(model, k, i, |_| original - self.h);
                let down = loss(model);
                set_coordinate(model, k, i, |_| original);
                numeric.push((up - down) / (2.0 * self.h));
            }
            let picked: Vec<f64> = coords.iter().map(|&i| grad[i]).collect();
            report.checks.push(Check {
                name: name.clone(),
                rel_error: rel_error(&picked, &numeric),
                analytic_norm: picked.iter().map(|g| g * g).sum::<f64>().sqrt(),
                checked: coords.len(),
            });
        }
        report
    }

    /// Checks the gradient `dx` of a scalar function `f` at `x`.
    pub fn input<D: Dimension>(
        &self,
        x: &Array<f64, D>,
        dx: &Array<f64, D>,
        f: impl Fn(&Array<f64, D>) -> f64,
    ) -> Check {
        assert_eq!(x.shape(), dx.shape(), "gradcheck: x and dx differ in shape");
        let coords = self.coordinates(x.len(), usize::MAX);
        let mut probe = x.as_standard_layout().into_owned();
        let analytic: Vec<f64> = dx.as_standard_layout().iter().copied().collect();
        let mut numeric = Vec::with_capacity(coords.len());
        for &i in &coords {
            let original = probe.as_slice().expect("standard layout")[i];
            probe.as_slice_mut().expect("standard layout")[i] = original + self.h;
            let up = f(&probe);
            probe.as_slice_mut().expect("standard layout")[i] = original - self.h;
            let down = f(&probe);
            probe.as_slice_mut().expect("standard layout")[i] = original;
            numeric.push((up - down) / (2.0 * self.h));
        }
        let picked: Vec<f64> = coords.iter().map(|&i| analytic[i]).collect();
        Check {
            name: "input".to_string(),
            rel_error: rel_error(&picked, &numeric),
            analytic_norm: picked.iter().map(|g| g * g).sum::<f64>().sqrt(),
            checked: coords.len(),
        }
    }

    fn coordinates(&self, len: usize, salt: usize) -> Vec<usize> {
        match self.max_per_array {
            Some(m) if m < len => {
                let mut rng = ChaCha8Rng::seed_from_u64(salt as u64);
                let mut idx = sample(&mut rng, len, m).into_vec();
                idx.sort_unstable();
                idx
            }
            _ => (0..len).collect(),
        }
    }
}
// ANCHOR_END: checker

/// Replaces coordinate `i` (in row-major order) of the `k`-th parameter by `new(old)` and returns
/// the old value.
fn set_coordinate<M: Params<f64>>(
    model: &mut M,
    k: usize,
    i: usize,
    new: impl FnOnce(f64) -> f64,
) -> f64 {
    let mut seen = 0;
    let mut new = Some(new);
    let mut old = None;
    model.visit("", &mut |_, p: ParamMut<'_, f64>| {
        if seen == k {
            let mut value = p.value;
            let slot = &mut value
                .as_slice_mut()
                .expect("parameters are in standard layout")[i];
            old = Some(*slot);
            *slot = (new.take().expect("one parameter matches"))(*slot);
        }
        seen += 1;
    });
    old.unwrap_or_else(|| panic!("gradcheck: the model has no parameter number {k}"))
}
