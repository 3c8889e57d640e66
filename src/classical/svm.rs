//! Support vector machines: a linear SVM trained on the hinge loss by subgradient descent
//! (one-vs-rest for many classes), and a kernel SVM trained by coordinate ascent on its dual.
//!
//! **Linear.** For `K` classes the model keeps one weight column per class, `W` of shape
//! `[features, K]` and `b` of shape `[K]`, and scores a batch `X` of shape `[n, features]` as
//! `S = X W + b` (`[n, K]`). One-vs-rest turns the label `y_i` into `K` binary targets
//! `t_ik = +1` if `y_i = k`, else `-1`, and the loss is
//!
//! `L = (1/n) sum_i sum_k max(0, 1 - t_ik S_ik) + (lambda/2) |W|^2`.
//!
//! Away from the hinge (`t_ik S_ik != 1`) the loss is differentiable: `dL/dS_ik = -t_ik / n` where
//! the margin is violated (`t_ik S_ik < 1`) and `0` elsewhere, so `dW = X^T dS + lambda W` and
//! `db = sum_i dS_i`. At the hinge itself any value between the two one-sided slopes is a
//! valid subgradient; we take `0`.
//!
//! **Kernel.** [`KernelSvm`] solves the dual of the binary soft-margin SVM,
//! `max_a sum_i a_i - 1/2 sum_ij a_i a_j t_i t_j K'(x_i, x_j)` subject to `0 <= a_i <= C`,
//! one coordinate at a time (Hsieh et al., 2008). `K' = K + 1` folds the bias into the kernel.
//! The decision function is `f(x) = sum_i a_i t_i K'(x_i, x)`; the training points with
//! `a_i > 0` are the support vectors, and only they enter `f`.

use crate::data::batches::shuffled_batches;
use crate::float::Float;
use crate::param::{Param1, Param2};
use ndarray::{Array1, Array2, ArrayView1, Axis};
use rand::Rng;
use rand::seq::SliceRandom;

// ANCHOR: linear_svm
/// A linear one-vs-rest SVM: `scores = x W + b`, one column per class.
#[derive(Clone, Debug)]
pub struct LinearSvm<F: Float> {
    /// Weights, `[features, classes]`.
    pub w: Param2<F>,
    /// Biases, `[classes]`.
    pub b: Param1<F>,
}

/// The one-vs-rest targets: `+1` for the true class, `-1` for every other one.
pub fn targets<F: Float>(y: &[usize], classes: usize) -> Array2<F> {
    Array2::from_shape_fn((y.len(), classes), |(i, k)| {
        if y[i] == k { F::one() } else { -F::one() }
    })
}

impl<F: Float> LinearSvm<F> {
    /// All weights and biases zero (the hinge loss is convex: no symmetry to break).
    pub fn new(features: usize, classes: usize) -> Self {
        LinearSvm {
            w: Param2::new(Array2::zeros((features, classes))),
            b: Param1::new(Array1::zeros(classes)),
        }
    }

    /// The scores `x W + b`, `[n, classes]`.
    pub fn scores(&self, x: &Array2<F>) -> Array2<F> {
        assert_eq!(
            x.ncols(),
            self.w.value.nrows(),
            "LinearSvm: input has {} features, the model {}",
            x.ncols(),
            self.w.value.nrows()
        );
        x.dot(&self.w.value) + &self.b.value
    }

    /// The predicted class of each row: the largest score.
    pub fn predict(&self, x: &Array2<F>) -> Vec<usize> {
        crate::loss::argmax_rows(&self.scores(x))
    }

    /// The regularised one-vs-rest hinge loss of the batch.
    pub fn loss(&self, x: &Array2<F>, y: &[usize], lambda: F) -> F {
        let s = self.scores(x);
        let t = targets::<F>(y, s.ncols());
        let n = F::of(y.len() as f64);
        let hinge = ndarray::Zip::from(&s)
            .and(&t)
            .fold(F::zero(), |acc, &s, &t| {
                acc + (F::one() - t * s).max(F::zero())
            });
        let half = F::of(0.5);
        hinge / n + half * lambda * self.w.value.iter().map(|&w| w * w).sum::<F>()
    }

    /// Adds the subgradient of [`LinearSvm::loss`] into `w.grad` and `b.grad`, and returns the
    /// loss.
    pub fn backward(&mut self, x: &Array2<F>, y: &[usize], lambda: F) -> F {
        let s = self.scores(x);
        let t = targets::<F>(y, s.ncols());
        let n = F::of(y.len() as f64);
        let mut hinge = F::zero();
        // dS_ik = -t_ik / n where the margin is violated, 0 elsewhere.
        let ds = ndarray::Zip::from(&s).and(&t).map_collect(|&s, &t| {
            let slack = F::one() - t * s;
            if slack > F::zero() {
                hinge += slack;
                -t / n
            } else {
                F::zero()
            }
        });
        self.w.grad += &(x.t().dot(&ds) + &self.w.value.mapv(|w| w * lambda));
        self.b.grad += &ds.sum_axis(Axis(0));
        let half = F::of(0.5);
        hinge / n + half * lambda * self.w.value.iter().map(|&w| w * w).sum::<F>()
    }
}
// ANCHOR_END: linear_svm

crate::impl_params!(LinearSvm<F> { w, b });

/// Settings of [`train_linear`].
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LinearConfig {
    /// Strength of the L2 penalty, `lambda`.
    pub lambda: f64,
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per subgradient step.
    pub batch_size: usize,
    /// The first step size, `eta_0`.
    pub lr: f64,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            lambda: 1e-4,
            epochs: 100,
            batch_size: 32,
            lr: 0.3,
        }
    }
}

// ANCHOR: train_linear
/// Trains a [`LinearSvm`] by minibatch subgradient descent with the decaying step size
/// `eta_t = eta_0 / (1 + eta_0 lambda t)`. Returns the model and the full-batch loss after each
/// epoch.
pub fn train_linear<F: Float>(
    x: &Array2<F>,
    y: &[usize],
    classes: usize,
    config: &LinearConfig,
    rng: &mut impl Rng,
) -> (LinearSvm<F>, Vec<f64>) {
    let mut svm = LinearSvm::new(x.ncols(), classes);
    let lambda = F::of(config.lambda);
    let mut t = 0usize;
    let mut losses = Vec::with_capacity(config.epochs);
    for _ in 0..config.epochs {
        for idx in shuffled_batches(y.len(), config.batch_size, rng) {
            let xb = x.select(Axis(0), &idx);
            let yb: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
            svm.w.grad.fill(F::zero());
            svm.b.grad.fill(F::zero());
            svm.backward(&xb, &yb, lambda);
            let eta = F::of(config.lr / (1.0 + config.lr * config.lambda * t as f64));
            svm.w.value.scaled_add(-eta, &svm.w.grad);
            svm.b.value.scaled_add(-eta, &svm.b.grad);
            t += 1;
        }
        losses.push(svm.loss(x, y, lambda).as_f64());
    }
    (svm, losses)
}
// ANCHOR_END: train_linear

// ANCHOR: rbf
/// The Gaussian (RBF) kernel `K(a, b) = exp(-gamma |a - b|^2)`.
pub fn rbf(a: ArrayView1<f64>, b: ArrayView1<f64>, gamma: f64) -> f64 {
    let d2: f64 = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum();
    (-gamma * d2).exp()
}
// ANCHOR_END: rbf

/// The kernel matrix `K'_ij = K(a_i, b_j) + 1`, `[rows of a, rows of b]`.
pub fn kernel_matrix(a: &Array2<f64>, b: &Array2<f64>, gamma: f64) -> Array2<f64> {
    Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| {
        rbf(a.row(i), b.row(j), gamma) + 1.0
    })
}

/// A binary kernel SVM: the support vectors and their weights `a_i t_i`.
#[derive(Clone, Debug)]
pub struct KernelSvm {
    /// The support vectors, `[m, features]`.
    pub support: Array2<f64>,
    /// `a_i t_i` for each support vector.
    pub coef: Vec<f64>,
    /// Indices of the support vectors in the training set.
    pub support_index: Vec<usize>,
    /// The RBF width `gamma`.
    pub gamma: f64,
}

// ANCHOR: dual
/// Dual coordinate ascent for the binary soft-margin SVM, given the training kernel matrix
/// `k` (`K' = K + 1`, see [`kernel_matrix`]) and targets `t_i = +-1`. Returns the dual
/// variables `a` (each in `[0, c]`) and the number of passes made.
///
/// For coordinate `i` the dual's gradient is `G_i = t_i f(x_i) - 1`, with
/// `f(x_i) = sum_j a_j t_j K'_ij` kept up to date as `a` changes; the exact maximiser along the
/// coordinate is `a_i - G_i / K'_ii`, clipped to the box. A pass visits the coordinates in a
/// random order; we stop when no coordinate moves by more than `tol`.
pub fn dual_coordinate_ascent(
    k: &Array2<f64>,
    t: &[f64],
    c: f64,
    max_passes: usize,
    tol: f64,
    rng: &mut impl Rng,
) -> (Vec<f64>, usize) {
    let n = t.len();
    assert_eq!(
        k.dim(),
        (n, n),
        "dual_coordinate_ascent: kernel matrix shape"
    );
    let mut a = vec![0.0; n];
    let mut f = vec![0.0; n];
    let mut order: Vec<usize> = (0..n).collect();
    for pass in 1..=max_passes {
        order.shuffle(rng);
        let mut largest_move: f64 = 0.0;
        for &i in &order {
            let g = t[i] * f[i] - 1.0;
            let new = (a[i] - g / k[[i, i]]).clamp(0.0, c);
            let delta = new - a[i];
            if delta != 0.0 {
                a[i] = new;
                for (fj, kij) in f.iter_mut().zip(k.row(i)) {
                    *fj += delta * t[i] * kij;
                }
                largest_move = largest_move.max(delta.abs());
            }
        }
        if largest_move < tol {
            return (a, pass);
        }
    }
    (a, max_passes)
}
// ANCHOR_END: dual

impl KernelSvm {
    /// Trains on `x` (`[n, features]`) with targets `t_i = +-1`.
    pub fn fit(x: &Array2<f64>, t: &[f64], gamma: f64, c: f64, rng: &mut impl Rng) -> Self {
        let k = kernel_matrix(x, x, gamma);
        KernelSvm::fit_with_kernel(x, &k, t, gamma, c, rng)
    }

    /// Trains with a precomputed training kernel matrix (shared by the classes of
    /// one-vs-rest).
    pub fn fit_with_kernel(
        x: &Array2<f64>,
        k: &Array2<f64>,
        t: &[f64],
        gamma: f64,
        c: f64,
        rng: &mut impl Rng,
    ) -> Self {
        let (a, _) = dual_coordinate_ascent(k, t, c, 1000, 1e-6, rng);
        let support_index: Vec<usize> = (0..t.len()).filter(|&i| a[i] > 0.0).collect();
        KernelSvm {
            support: x.select(Axis(0), &support_index),
            coef: support_index.iter().map(|&i| a[i] * t[i]).collect(),
            support_index,
            gamma,
        }
    }

    /// The decision values `f(x) = sum_i a_i t_i K'(s_i, x)` for the rows of `x`.
    pub fn decision(&self, x: &Array2<f64>) -> Array1<f64> {
        let k = kernel_matrix(x, &self.support, self.gamma);
        k.dot(&Array1::from(self.coef.clone()))
    }
}

/// One-vs-rest kernel SVM for `classes` classes: one [`KernelSvm`] per class, all sharing the
/// training kernel matrix. The prediction is the class with the largest decision value.
#[derive(Clone, Debug)]
pub struct KernelOvr {
    /// One binary machine per class.
    pub machines: Vec<KernelSvm>,
}

impl KernelOvr {
    /// Trains one machine per class.
    pub fn fit(
        x: &Array2<f64>,
        y: &[usize],
        classes: usize,
        gamma: f64,
        c: f64,
        rng: &mut impl Rng,
    ) -> Self {
        let k = kernel_matrix(x, x, gamma);
        let machines = (0..classes)
            .map(|class| {
                let t: Vec<f64> = y
                    .iter()
                    .map(|&l| if l == class { 1.0 } else { -1.0 })
                    .collect();
                KernelSvm::fit_with_kernel(x, &k, &t, gamma, c, rng)
            })
            .collect();
        KernelOvr { machines }
    }

    /// The predicted class of each row of `x`.
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        let mut scores = Array2::<f64>::zeros((x.nrows(), self.machines.len()));
        for (k, m) in self.machines.iter().enumerate() {
            scores.column_mut(k).assign(&m.decision(x));
        }
        crate::loss::argmax_rows(&scores)
    }

    /// The number of distinct training points that are a support vector of some machine.
    pub fn support_vectors(&self) -> usize {
        let mut all: Vec<usize> = self
            .machines
            .iter()
            .flat_map(|m| m.support_index.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }
}

/// Two interleaving half-moons in the plane, `n` points per moon, with Gaussian noise of
/// standard deviation `noise` on each coordinate (Box-Muller). Returns the points `[2n, 2]` and
/// targets `+1` (upper moon) and `-1` (lower moon).
pub fn two_moons(n: usize, noise: f64, rng: &mut impl Rng) -> (Array2<f64>, Vec<f64>) {
    let mut x = Array2::zeros((2 * n, 2));
    let mut t = Vec::with_capacity(2 * n);
    for i in 0..2 * n {
        let angle = std::f64::consts::PI * rng.random::<f64>();
        let (px, py, target) = if i < n {
            (angle.cos(), angle.sin(), 1.0)
        } else {
            (1.0 - angle.cos(), 0.5 - angle.sin(), -1.0)
        };
        x[[i, 0]] = px + noise * gauss(rng);
        x[[i, 1]] = py + noise * gauss(rng);
        t.push(target);
    }
    (x, t)
}

/// A standard normal draw by the Box-Muller transform.
fn gauss(rng: &mut impl Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
