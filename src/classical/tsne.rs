//! Exact t-SNE (van der Maaten and Hinton, 2008): a two-dimensional map of high-dimensional
//! points that keeps neighbours together.
//!
//! In the input space, point `i` picks `j` as its neighbour with probability
//! `p(j|i) ∝ exp(-beta_i |x_i - x_j|^2)`, where `beta_i` is set (by bisection) so that the
//! distribution's perplexity `2^H` equals a chosen number, the effective count of neighbours.
//! The joint probabilities are `p_ij = (p(j|i) + p(i|j)) / 2n`. In the map, the similarity of two
//! points is a Student-t kernel with one degree of freedom, `q_ij ∝ (1 + |y_i - y_j|^2)^-1`,
//! normalised over all pairs. t-SNE moves the map points `y` to minimise the Kullback-Leibler
//! divergence `KL(P || Q) = sum p_ij log(p_ij / q_ij)`, whose gradient is
//! `dC/dy_i = 4 sum_j (p_ij - q_ij) (y_i - y_j) / (1 + |y_i - y_j|^2)`.
//!
//! "Exact" means every pair is computed at every step: `O(n^2)` time and memory, fine for a few
//! thousand points (the 1,797 digits take seconds), where Barnes-Hut approximations are needed
//! beyond that.

use ndarray::{Array2, ArrayRef2, Axis};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Settings of a t-SNE run; the defaults are the paper's optimisation schedule.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct TsneConfig {
    /// The effective number of neighbours of each point.
    pub perplexity: f64,
    /// Gradient steps.
    pub iterations: usize,
    /// The step size before the per-coordinate gains.
    pub learning_rate: f64,
    /// `P` is multiplied by this for the first `exaggeration_steps` steps ("early
    /// exaggeration"), which lets clusters form and separate before the fine arrangement.
    pub exaggeration: f64,
    /// How many steps the exaggeration lasts.
    pub exaggeration_steps: usize,
}

impl Default for TsneConfig {
    fn default() -> Self {
        TsneConfig {
            perplexity: 30.0,
            iterations: 1000,
            learning_rate: 100.0,
            exaggeration: 4.0,
            exaggeration_steps: 50,
        }
    }
}

/// Squared Euclidean distances between the rows of `x`: `[n, n]`.
pub fn squared_distances(x: &ArrayRef2<f64>) -> Array2<f64> {
    let norms: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
    let gram = x.dot(&x.t());
    Array2::from_shape_fn(gram.dim(), |(i, j)| {
        if i == j {
            0.0
        } else {
            (norms[i] + norms[j] - 2.0 * gram[[i, j]]).max(0.0)
        }
    })
}

// ANCHOR: affinities
/// The conditional probabilities `p(j|i)` of row `i` for the squared distances `d` (row `i` of
/// the distance matrix), with `beta` found by bisection so that the entropy is `ln(perplexity)`
/// nats. Returns the probabilities (zero at `i`) and the entropy reached.
pub fn conditional_row(d: &[f64], i: usize, perplexity: f64) -> (Vec<f64>, f64) {
    let target = perplexity.ln();
    let (mut lo, mut hi) = (0.0_f64, f64::INFINITY);
    let mut beta = 1.0;
    let mut p = vec![0.0; d.len()];
    let mut entropy = 0.0;
    for _ in 0..100 {
        // Shift by the smallest distance so the largest weight is exp(0) = 1 (no underflow).
        let nearest = (0..d.len())
            .filter(|&j| j != i)
            .map(|j| d[j])
            .fold(f64::INFINITY, f64::min);
        let mut sum = 0.0;
        for j in 0..d.len() {
            p[j] = if j == i {
                0.0
            } else {
                (-beta * (d[j] - nearest)).exp()
            };
            sum += p[j];
        }
        // H = -sum p log p = log(sum) + beta * E[d - nearest].
        let mean: f64 = (0..d.len()).map(|j| p[j] * (d[j] - nearest)).sum::<f64>() / sum;
        entropy = sum.ln() + beta * mean;
        for v in &mut p {
            *v /= sum;
        }
        if (entropy - target).abs() < 1e-5 {
            break;
        }
        // A larger beta narrows the Gaussian and lowers the entropy.
        if entropy > target {
            lo = beta;
            beta = if hi.is_finite() {
                0.5 * (lo + hi)
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = 0.5 * (lo + hi);
        }
    }
    (p, entropy)
}

/// The symmetric joint probabilities `p_ij = (p(j|i) + p(i|j)) / 2n` of the rows of `x`; they
/// sum to one.
pub fn joint_probabilities(x: &ArrayRef2<f64>, perplexity: f64) -> Array2<f64> {
    let n = x.nrows();
    assert!(
        perplexity < (n - 1) as f64,
        "t-SNE: a perplexity of {perplexity} needs more than {n} points"
    );
    let d = squared_distances(x);
    let mut p = Array2::zeros((n, n));
    for i in 0..n {
        let row = d.row(i).to_vec();
        let (cond, _) = conditional_row(&row, i, perplexity);
        p.row_mut(i).assign(&ndarray::Array1::from(cond));
    }
    (&p + &p.t()) / (2.0 * n as f64)
}
// ANCHOR_END: affinities

// ANCHOR: gradient
/// The KL divergence `KL(P || Q)` of the map `y` (`[n, dims]`) and its gradient with respect to
/// `y`, for symmetric joint probabilities `p` (scaled by an exaggeration factor if the caller
/// wants one).
pub fn kl_and_gradient(p: &Array2<f64>, y: &Array2<f64>) -> (f64, Array2<f64>) {
    let mut w = Vec::new();
    let mut grad = Array2::zeros(y.dim());
    let z = gradient_into(p, y, &mut w, &mut grad);
    (kl_from(p, &w, z), grad)
}

/// Writes the gradient into `grad` and returns the normaliser `Z = sum over i != j of w_ij`,
/// leaving the Student-t weights `w_ij` (for `i < j`) in `w`, a buffer reused across steps.
/// Each pair is visited once: its term is added to `i`'s gradient and subtracted from `j`'s.
fn gradient_into(
    p: &Array2<f64>,
    y: &Array2<f64>,
    w: &mut Vec<f64>,
    grad: &mut Array2<f64>,
) -> f64 {
    let (n, dims) = y.dim();
    assert_eq!(p.dim(), (n, n), "t-SNE: P is {:?} for {n} points", p.dim());
    let y = y.as_standard_layout();
    let ys = y.as_slice().expect("standard layout");
    let ps = p.as_slice().expect("P is built in standard layout");
    w.resize(n * n, 0.0);
    let mut z = 0.0;
    for i in 0..n {
        let yi = &ys[i * dims..(i + 1) * dims];
        for j in i + 1..n {
            let yj = &ys[j * dims..(j + 1) * dims];
            let d2: f64 = yi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum();
            let v = 1.0 / (1.0 + d2);
            w[i * n + j] = v;
            z += 2.0 * v;
        }
    }
    grad.fill(0.0);
    let g = grad.as_slice_mut().expect("a fresh standard-layout array");
    for i in 0..n {
        for j in i + 1..n {
            let v = w[i * n + j];
            // 4 (p_ij - q_ij) w_ij (y_i - y_j), and the opposite for j.
            let m = 4.0 * (ps[i * n + j] - v / z) * v;
            for c in 0..dims {
                let t = m * (ys[i * dims + c] - ys[j * dims + c]);
                g[i * dims + c] += t;
                g[j * dims + c] -= t;
            }
        }
    }
    z
}

/// `KL(P || Q) = sum over i != j of p_ij ln(p_ij / q_ij)`, with `q_ij = w_ij / Z`.
fn kl_from(p: &Array2<f64>, w: &[f64], z: f64) -> f64 {
    let n = p.nrows();
    let mut kl = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let pij = p[[i, j]];
            if pij > 0.0 {
                kl += 2.0 * pij * (pij * z / w[i * n + j]).ln();
            }
        }
    }
    kl
}
// ANCHOR_END: gradient

/// The KL divergence alone (for gradient checks).
pub fn kl(p: &Array2<f64>, y: &Array2<f64>) -> f64 {
    kl_and_gradient(p, y).0
}

// ANCHOR: optimise
/// Embeds the rows of `x` in two dimensions. Returns the map (`[n, 2]`) and the KL divergence
/// after the last step (without exaggeration).
pub fn embed(x: &ArrayRef2<f64>, config: &TsneConfig, rng: &mut impl Rng) -> (Array2<f64>, f64) {
    let n = x.nrows();
    let p = joint_probabilities(x, config.perplexity);
    let exaggerated = &p * config.exaggeration;
    let normal = Normal::new(0.0, 1e-2).expect("a valid standard deviation");
    let mut y = Array2::from_shape_simple_fn((n, 2), || normal.sample(rng));
    let mut velocity = Array2::<f64>::zeros((n, 2));
    let mut gains = Array2::<f64>::ones((n, 2));
    let (mut w, mut grad) = (Vec::new(), Array2::<f64>::zeros((n, 2)));
    for step in 0..config.iterations {
        let target = if step < config.exaggeration_steps {
            &exaggerated
        } else {
            &p
        };
        gradient_into(target, &y, &mut w, &mut grad);
        let momentum = if step < 250 { 0.5 } else { 0.8 };
        // Per-coordinate gains (Jacobs, 1988): a coordinate whose last move went against its
        // gradient (downhill) takes bigger steps; one whose move went with it (overshot) smaller.
        ndarray::Zip::from(&mut gains)
            .and(&grad)
            .and(&velocity)
            .for_each(|gain, &g, &v| {
                *gain = if (g > 0.0) != (v > 0.0) {
                    *gain + 0.2
                } else {
                    (*gain * 0.8).max(0.01)
                };
            });
        ndarray::Zip::from(&mut velocity)
            .and(&gains)
            .and(&grad)
            .for_each(|v, &gain, &g| *v = momentum * *v - config.learning_rate * gain * g);
        y += &velocity;
        // Centre the map: the objective ignores translation.
        let mean = y.mean_axis(Axis(0)).expect("at least one point");
        y -= &mean;
    }
    let kl = kl(&p, &y);
    (y, kl)
}
// ANCHOR_END: optimise

/// Leave-one-out 1-nearest-neighbour accuracy of the labels `y` in the map `z` (`[n, k]`): how
/// often a point's nearest other point has its class. A number for how well a picture keeps
/// the classes apart.
pub fn neighbour_agreement(z: &ArrayRef2<f64>, y: &[usize]) -> f64 {
    let d = squared_distances(z);
    let n = y.len();
    let hits = (0..n)
        .filter(|&i| {
            let nearest = (0..n)
                .filter(|&j| j != i)
                .min_by(|&a, &b| d[[i, a]].total_cmp(&d[[i, b]]))
                .expect("at least two points");
            y[nearest] == y[i]
        })
        .count();
    hits as f64 / n.max(1) as f64
}
