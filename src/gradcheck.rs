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
//!
//! A check must be able to fail, so besides a wrong gradient the checker rejects:
//!
//! * any value that is not finite (an analytic or numerical gradient, the loss, an error): it
//!   fails the check and names the parameter, instead of being folded away by a `max`;
//! * a backward pass that *assigns* `grad = ...` (or clears it) instead of adding into it:
//!   [`GradCheck::params`] runs backward a second time on gradients pre-filled with known values
//!   and demands that the gradient afterwards is the fill plus the gradient;
//! * a model with no parameter at all, and a report that checked nothing.
//!
//! [`GradCheck::layer`] checks the input gradient and every parameter of a layer in one call,
//! so a test cannot forget one of them. What the checker cannot see is a parameter that the
//! model's `visit` forgets: that is what each model's test of its parameter names and count
//! ([`crate::param::names`], [`crate::param::count`]) is for.

use crate::param::{ParamMut, Params, zero_grads};
use ndarray::{Array, Dimension};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The threshold the book's tests use for the norm-wise relative error.
pub const TOLERANCE: f64 = 1e-6;

/// The outcome of checking one array of gradients.
#[derive(Clone, Debug)]
pub struct Check {
    /// The parameter's name, or `"input"`.
    pub name: String,
    /// Norm-wise relative error between the analytic and the numerical gradient over the checked
    /// coordinates; NaN when the check has a [`problem`](Self::problems).
    pub rel_error: f64,
    /// For a parameter: the relative error between what backward *added* to gradients
    /// pre-filled with known values (the gradient afterwards minus the fill) and the gradient it
    /// computes from zero, over every coordinate. Zero up to rounding when backward adds into
    /// `grad`; about one when it assigns or clears. `None` for an input gradient, which backward
    /// returns instead of accumulating.
    pub accumulation_error: Option<f64>,
    /// Norm of the analytic gradient over the checked coordinates.
    pub analytic_norm: f64,
    /// How many coordinates were checked.
    pub checked: usize,
    /// What made the check impossible or meaningless: non-finite values, mismatched shapes, no
    /// coordinate checked. Any problem fails the check.
    pub problems: Vec<String>,
}

impl Check {
    /// Why this check fails at tolerance `tol` (empty when it passes): its problems, a relative
    /// error that is not below `tol`, or a backward pass that does not add into `grad`.
    pub fn failures(&self, tol: f64) -> Vec<String> {
        if !self.problems.is_empty() {
            return self.problems.clone();
        }
        let mut out = Vec::new();
        let fails = |e: f64| e.is_nan() || e >= tol;
        if fails(self.rel_error) {
            out.push(format!(
                "analytic and numerical gradients differ: relative error {:.2e}",
                self.rel_error
            ));
        }
        if let Some(e) = self.accumulation_error
            && fails(e)
        {
            out.push(format!(
                "backward does not add into `grad` (it assigns or clears it): on pre-filled \
                 gradients it added something else than the gradient, relative error {e:.2e}"
            ));
        }
        out
    }

    /// Panics, naming the array and saying why, unless the check passes at tolerance `tol`.
    pub fn assert_below(&self, tol: f64) {
        let failures = self.failures(tol);
        assert!(
            failures.is_empty(),
            "gradient check of `{}` failed (tolerance {tol:e}): {}",
            self.name,
            failures.join("; ")
        );
    }
}

/// The outcome of checking several arrays: every parameter of a model, and with
/// [`GradCheck::layer`] its input too.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per array, parameters in visiting order, then the input if it was checked.
    pub checks: Vec<Check>,
}

/// A failed gradient check: what failed and why, with the whole report.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The tolerance the report was held to.
    pub tolerance: f64,
    /// `(name, reason)` for every failing array (`("report", ...)` when nothing was checked).
    pub failures: Vec<(String, String)>,
    /// The report that failed.
    pub report: Report,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "gradient check failed (tolerance {:e}):", self.tolerance)?;
        for (name, why) in &self.failures {
            writeln!(f, "  `{name}`: {why}")?;
        }
        write!(f, "{}", self.report)
    }
}

impl std::error::Error for Failure {}

impl Report {
    /// The worst error of the report, relative or accumulation: NaN if any check has a problem
    /// or a non-finite error (so `max_rel_error() < tol` is false), infinite if the report is
    /// empty.
    pub fn max_rel_error(&self) -> f64 {
        if self.checks.is_empty() {
            return f64::INFINITY;
        }
        self.checks
            .iter()
            .flat_map(|c| std::iter::once(c.rel_error).chain(c.accumulation_error))
            .fold(0.0, |m: f64, e| {
                if m.is_nan() || e.is_nan() {
                    f64::NAN
                } else {
                    m.max(e)
                }
            })
    }

    /// `Ok` if the report checked something and every check passes at tolerance `tol`;
    /// otherwise every failing array with its reason.
    pub fn verify(&self, tol: f64) -> Result<(), Failure> {
        let mut failures: Vec<(String, String)> = self
            .checks
            .iter()
            .flat_map(|c| c.failures(tol).into_iter().map(|why| (c.name.clone(), why)))
            .collect();
        if self.checks.is_empty() {
            failures.push(("report".into(), "nothing was checked".into()));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failure {
                tolerance: tol,
                failures,
                report: self.clone(),
            })
        }
    }

    /// Panics with the message of [`verify`](Self::verify) (every failing array and why, then
    /// the whole report) unless the report passes at tolerance `tol`.
    pub fn assert_below(&self, tol: f64) {
        if let Err(failure) = self.verify(tol) {
            panic!("{failure}");
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.checks {
            write!(f, "  {:<24} rel. error {:.2e}", c.name, c.rel_error)?;
            if let Some(e) = c.accumulation_error {
                write!(f, "  accumulation {e:.1e}")?;
            }
            writeln!(
                f,
                "  |grad| {:.3e}  ({} coordinates)",
                c.analytic_norm, c.checked
            )?;
            for p in &c.problems {
                writeln!(f, "      {p}")?;
            }
        }
        Ok(())
    }
}

/// Norm-wise relative error `|a - n| / (|a| + |n|)`, zero when both are zero (NaN when either
/// holds a NaN).
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
    /// Checks a layer or model whole: the input gradient *and* every parameter gradient, so a
    /// test cannot forget either.
    ///
    /// `loss(model, x)` runs the forward pass and returns the scalar loss; `backward(model, x)`
    /// runs forward and backward at `x`, adding the parameter gradients into `grad`, and returns
    /// `dL/dx` (shaped like `x`). The report lists the parameters in visiting order, then
    /// `"input"`; it fails if the model has no parameter (use [`input`](Self::input) for a
    /// function without any).
    pub fn layer<M: Params<f64>, D: Dimension>(
        &self,
        model: &mut M,
        x: &Array<f64, D>,
        loss: impl Fn(&M, &Array<f64, D>) -> f64,
        mut backward: impl FnMut(&mut M, &Array<f64, D>) -> Array<f64, D>,
    ) -> Report {
        let mut dx = None;
        let mut report = self.params(
            model,
            |m| loss(m, x),
            |m| {
                let d = backward(m, x);
                dx.get_or_insert(d);
            },
        );
        let dx = dx.expect("params runs backward");
        report.checks.push(self.input(x, &dx, |x| loss(&*model, x)));
        report
    }

    // ANCHOR: checker_params
    /// Checks every parameter gradient of `model`.
    ///
    /// `loss(model)` runs the forward pass and returns the scalar loss; `backward(model)` runs
    /// forward and backward, *adding* the analytic gradients into `grad`. It is called twice:
    /// once on zeroed gradients (what it computes is the analytic gradient) and once on
    /// gradients pre-filled with known values, which must come out as fill plus gradient
    /// (a backward that assigns `grad = ...` fails here). Afterwards the model holds the
    /// gradients of the first call, as after `zero_grads` and one backward.
    pub fn params<M: Params<f64>>(
        &self,
        model: &mut M,
        loss: impl Fn(&M) -> f64,
        mut backward: impl FnMut(&mut M),
    ) -> Report {
        zero_grads(model);
        backward(model);
        let (names, analytic) = grads(model);
        // Again from known values: what backward adds to them must be the same gradient.
        let fills: Vec<Vec<f64>> = analytic.iter().enumerate().map(known_fill).collect();
        set_grads(model, &fills);
        backward(model);
        let added: Vec<Vec<f64>> = (grads(model).1.iter().zip(&fills))
            .map(|(g, fill)| g.iter().zip(fill).map(|(g, f)| g - f).collect())
            .collect();
        set_grads(model, &analytic);

        let at_rest = loss(model);
        let mut report = Report::default();
        if analytic.is_empty() {
            let problem = "the model's `visit` reached no parameter".to_string();
            report
                .checks
                .push(compare("parameters", &[], &[], None, vec![problem]));
        }
        for (k, (name, grad)) in names.iter().zip(&analytic).enumerate() {
            let coords = self.coordinates(grad.len(), k);
            let mut numeric = Vec::with_capacity(coords.len());
            for &i in &coords {
                let original = set_coordinate(model, k, i, |v| v + self.h);
                let up = loss(model);
                set_coordinate(model, k, i, |_| original - self.h);
                let down = loss(model);
                set_coordinate(model, k, i, |_| original);
                numeric.push((up, down));
            }
            let picked: Vec<f64> = coords.iter().map(|&i| grad[i]).collect();
            let problems = non_finite(at_rest, &coords, &picked, &numeric);
            let numeric = self.differences(&numeric);
            let accumulation = rel_error(&added[k], grad);
            report.checks.push(compare(
                name,
                &picked,
                &numeric,
                Some(accumulation),
                problems,
            ));
        }
        report
    }
    // ANCHOR_END: checker_params

    /// Checks the gradient `dx` of a scalar function `f` at `x` (the check is named `"input"`).
    pub fn input<D: Dimension>(
        &self,
        x: &Array<f64, D>,
        dx: &Array<f64, D>,
        f: impl Fn(&Array<f64, D>) -> f64,
    ) -> Check {
        if x.shape() != dx.shape() {
            let problem = format!("dx is {:?} but x is {:?}", dx.shape(), x.shape());
            return compare("input", &[], &[], None, vec![problem]);
        }
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
            numeric.push((up, down));
        }
        let picked: Vec<f64> = coords.iter().map(|&i| analytic[i]).collect();
        let problems = non_finite(f(x), &coords, &picked, &numeric);
        compare(
            "input",
            &picked,
            &self.differences(&numeric),
            None,
            problems,
        )
    }

    /// Central differences `(L(+h) - L(-h)) / 2h` from pairs of losses.
    fn differences(&self, losses: &[(f64, f64)]) -> Vec<f64> {
        losses
            .iter()
            .map(|(up, down)| (up - down) / (2.0 * self.h))
            .collect()
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

/// One [`Check`] from the analytic and numerical values at the checked coordinates.
fn compare(
    name: &str,
    analytic: &[f64],
    numeric: &[f64],
    accumulation_error: Option<f64>,
    mut problems: Vec<String>,
) -> Check {
    if analytic.is_empty() && problems.is_empty() {
        problems.push("no coordinate was checked".to_string());
    }
    let rel = rel_error(analytic, numeric);
    if !rel.is_finite() && problems.is_empty() {
        problems.push(format!("the relative error is {rel}"));
    }
    Check {
        name: name.to_string(),
        rel_error: if problems.is_empty() { rel } else { f64::NAN },
        accumulation_error,
        analytic_norm: analytic.iter().map(|g| g * g).sum::<f64>().sqrt(),
        checked: analytic.len(),
        problems,
    }
}

/// Every non-finite value among the loss at rest, the analytic gradient and the losses at
/// `+h`/`-h`, described by its first occurrence (coordinates in row-major order).
fn non_finite(
    at_rest: f64,
    coords: &[usize],
    analytic: &[f64],
    losses: &[(f64, f64)],
) -> Vec<String> {
    let mut problems = Vec::new();
    if !at_rest.is_finite() {
        problems.push(format!("the loss is {at_rest} at the unperturbed point"));
    }
    let bad: Vec<usize> = (0..analytic.len())
        .filter(|&j| !analytic[j].is_finite())
        .collect();
    if let Some(&j) = bad.first() {
        problems.push(format!(
            "the analytic gradient is not finite at {} of {} coordinates (coordinate {} is {})",
            bad.len(),
            analytic.len(),
            coords[j],
            analytic[j]
        ));
    }
    let bad: Vec<usize> = (0..losses.len())
        .filter(|&j| {
            let (up, down) = losses[j];
            !(up.is_finite() && down.is_finite() && (up - down).is_finite())
        })
        .collect();
    if let Some(&j) = bad.first() {
        problems.push(format!(
            "the numerical gradient is not finite at {} of {} coordinates (coordinate {}: loss \
             {} at +h, {} at -h)",
            bad.len(),
            losses.len(),
            coords[j],
            losses[j].0,
            losses[j].1
        ));
    }
    problems
}

/// Known values to pre-fill the `k`-th gradient with: uniform in `[-s, s)`, with `s` the
/// root-mean-square of the gradient itself (1 when that is zero or not finite), so that
/// subtracting the fill again loses no precision whatever the gradient's scale.
fn known_fill((k, grad): (usize, &Vec<f64>)) -> Vec<f64> {
    let rms = (grad.iter().map(|g| g * g).sum::<f64>() / grad.len().max(1) as f64).sqrt();
    let scale = if rms.is_finite() && rms > 0.0 {
        rms
    } else {
        1.0
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0xacc0_0000 + k as u64);
    grad.iter()
        .map(|_| scale * rng.random_range(-1.0..1.0))
        .collect()
}

/// The names and the gradients (in row-major order) of every parameter, in visiting order.
fn grads<M: Params<f64>>(model: &mut M) -> (Vec<String>, Vec<Vec<f64>>) {
    let (mut names, mut out) = (Vec::new(), Vec::new());
    model.visit("", &mut |name, p| {
        names.push(name.to_string());
        out.push(p.grad.iter().copied().collect());
    });
    (names, out)
}

/// Overwrites the `k`-th parameter's gradient with `values[k]` (in row-major order).
fn set_grads<M: Params<f64>>(model: &mut M, values: &[Vec<f64>]) {
    let mut k = 0;
    model.visit("", &mut |_, mut p: ParamMut<'_, f64>| {
        p.grad.iter_mut().zip(&values[k]).for_each(|(g, v)| *g = *v);
        k += 1;
    });
}

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
