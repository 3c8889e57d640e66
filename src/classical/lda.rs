//! Fisher's linear discriminant analysis: the directions that separate the class means most,
//! measured against the spread within the classes.
//!
//! With class means `mu_c`, overall mean `mu` and `n_c` examples in class `c`, the within-class
//! and between-class scatter matrices (`[d, d]`) are
//!
//! `S_W = sum_c sum_{i in c} (x_i - mu_c)^T (x_i - mu_c)`,
//! `S_B = sum_c n_c (mu_c - mu)^T (mu_c - mu)`.
//!
//! A direction `w` is good when `w^T S_B w / w^T S_W w` is large. The maximisers solve the
//! generalised eigenproblem `S_B w = lambda S_W w`; with `K` classes at most `K - 1` eigenvalues
//! are non-zero. We solve it by factorising `S_W = L L^T` (Cholesky), finding the eigenvectors
//! `u` of the symmetric matrix `M = L^-1 S_B L^-T` by power iteration with deflation (as in
//! [`super::pca`]), and mapping back, `w = L^-T u`. Then `w_i^T S_W w_j = u_i^T u_j`: the
//! discriminants are uncorrelated, with unit variance, within the classes. `S_W` is singular
//! when a pixel never varies, so a small ridge `epsilon (tr S_W / d) I` is added first.

use super::pca::power_iteration;
use ndarray::{Array1, Array2, Axis};
use rand::Rng;

/// The within-class and between-class scatter matrices `(S_W, S_B)` of the rows of `x`.
pub fn scatter_matrices(
    x: &Array2<f64>,
    y: &[usize],
    classes: usize,
) -> (Array2<f64>, Array2<f64>) {
    let d = x.ncols();
    let mean = x.mean_axis(Axis(0)).expect("non-empty");
    let (mut sw, mut sb) = (Array2::zeros((d, d)), Array2::zeros((d, d)));
    for c in 0..classes {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        if idx.is_empty() {
            continue;
        }
        let xc = x.select(Axis(0), &idx);
        let mc = xc.mean_axis(Axis(0)).expect("non-empty");
        let centred = &xc - &mc;
        sw += &centred.t().dot(&centred);
        let dm = (&mc - &mean).insert_axis(Axis(1));
        sb += &(dm.dot(&dm.t()) * idx.len() as f64);
    }
    (sw, sb)
}

/// The lower-triangular `L` with `L L^T = a`, or `None` if `a` is not positive definite.
pub fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                let v = a[[i, i]] - s;
                if v <= 0.0 {
                    return None;
                }
                l[[i, j]] = v.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    Some(l)
}

/// The inverse of a lower-triangular matrix, by forward substitution on the identity.
fn lower_inverse(l: &Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    let mut inv = Array2::<f64>::zeros((n, n));
    for col in 0..n {
        for i in 0..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let s: f64 = (0..i).map(|k| l[[i, k]] * inv[[k, col]]).sum();
            inv[[i, col]] = (rhs - s) / l[[i, i]];
        }
    }
    inv
}

/// A fitted LDA: the discriminant directions and the class means in their coordinates.
#[derive(Clone, Debug)]
pub struct Lda {
    /// The overall mean of the training rows, `[d]`.
    pub mean: Array1<f64>,
    /// The discriminant directions as rows, `[k, d]`.
    pub directions: Array2<f64>,
    /// The generalised eigenvalues, largest first.
    pub eigenvalues: Vec<f64>,
    /// Each class's mean in discriminant coordinates, `[classes, k]`.
    pub class_means: Array2<f64>,
    /// The regularised within-class scatter the directions are orthonormal under.
    pub within: Array2<f64>,
}

impl Lda {
    // ANCHOR: fit
    /// Fits `k` discriminants (`k < classes`) with ridge `epsilon`.
    pub fn fit(
        x: &Array2<f64>,
        y: &[usize],
        classes: usize,
        k: usize,
        epsilon: f64,
        rng: &mut impl Rng,
    ) -> Lda {
        assert!(
            k < classes,
            "Lda::fit: {k} discriminants for {classes} classes"
        );
        let d = x.ncols();
        let (mut sw, sb) = scatter_matrices(x, y, classes);
        let ridge = epsilon * sw.diag().sum() / d as f64;
        sw.diag_mut().mapv_inplace(|v| v + ridge);
        let l = cholesky(&sw).expect("S_W plus a ridge is positive definite");
        let l_inv = lower_inverse(&l);
        let mut m = l_inv.dot(&sb).dot(&l_inv.t());
        let mut found: Vec<Array1<f64>> = Vec::new();
        let mut eigenvalues = Vec::new();
        for _ in 0..k {
            let (lambda, u) = power_iteration(&m, &found, 20_000, 1e-10, rng);
            let uu = u
                .view()
                .insert_axis(Axis(1))
                .dot(&u.view().insert_axis(Axis(0)));
            m.scaled_add(-lambda, &uu);
            eigenvalues.push(lambda);
            found.push(u);
        }
        // w = L^-T u, one row per discriminant.
        let rows: Vec<Array1<f64>> = found.iter().map(|u| l_inv.t().dot(u)).collect();
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        let directions = ndarray::stack(Axis(0), &views).expect("equal lengths");
        let mean = x.mean_axis(Axis(0)).expect("non-empty");
        let z = (x - &mean).dot(&directions.t());
        let mut class_means = Array2::zeros((classes, k));
        for c in 0..classes {
            let idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
            if let Some(mc) = z.select(Axis(0), &idx).mean_axis(Axis(0)) {
                class_means.row_mut(c).assign(&mc);
            } else {
                class_means.row_mut(c).fill(f64::INFINITY);
            }
        }
        Lda {
            mean,
            directions,
            eigenvalues,
            class_means,
            within: sw,
        }
    }
    // ANCHOR_END: fit

    /// Discriminant coordinates of the rows of `x`, `[n, k]`.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.mean).dot(&self.directions.t())
    }

    /// The class whose mean is nearest in discriminant coordinates (where the within-class
    /// spread is the same in every direction, so plain Euclidean distance is the right one).
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        let nm = super::neighbours::NearestMean {
            means: self.class_means.clone(),
        };
        nm.predict(&self.transform(x))
    }
}
