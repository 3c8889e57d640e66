//! Principal component analysis by power iteration with deflation.
//!
//! For data `X` (`[n, d]`) with column means `mu`, the covariance is
//! `C = (X - mu)^T (X - mu) / (n - 1)` (`[d, d]`, symmetric, positive semi-definite). Its unit
//! eigenvectors `v_1, v_2, ...`, ordered by eigenvalue `lambda_1 >= lambda_2 >= ...`, are the
//! principal components: `v_1` is the direction of largest variance, `v_2` the largest among
//! directions orthogonal to `v_1`, and so on; `lambda_k` is the variance along `v_k`.
//!
//! Power iteration finds the top eigenvector: repeat `v <- C v / |C v|`. Writing the start as
//! a mix of eigenvectors, each step multiplies the `v_k` part by `lambda_k`, so the largest
//! one wins, at a rate set by `lambda_2 / lambda_1`. Deflation then removes what was found,
//! `C <- C - lambda_1 v_1 v_1^T`, so the next run finds `v_2`. We also re-orthogonalise each
//! iterate against the components already found, which keeps round-off from letting them
//! creep back.

use ndarray::{Array1, Array2, Axis};
use rand::Rng;

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Column means of the training data, `[d]`.
    pub mean: Array1<f64>,
    /// The components as rows, `[k, d]`, orthonormal.
    pub components: Array2<f64>,
    /// The variance along each component, largest first.
    pub eigenvalues: Vec<f64>,
    /// The total variance, `trace(C)`.
    pub total_variance: f64,
}

/// The column means and the covariance matrix `(X - mu)^T (X - mu) / (n - 1)`.
pub fn covariance(x: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    assert!(x.nrows() > 1, "covariance: need at least two rows");
    let mean = x.mean_axis(Axis(0)).expect("non-empty");
    let centred = x - &mean;
    let c = centred.t().dot(&centred) / (x.nrows() - 1) as f64;
    (mean, c)
}

// ANCHOR: power_iteration
/// The top eigenpair of the symmetric matrix `c` by power iteration, keeping the iterate
/// orthogonal to the rows of `found`. Stops when the residual `|C v - lambda v|` is below
/// `tol` times the largest diagonal entry of `c`, or after `max_iter` steps.
pub fn power_iteration(
    c: &Array2<f64>,
    found: &[Array1<f64>],
    max_iter: usize,
    tol: f64,
    rng: &mut impl Rng,
) -> (f64, Array1<f64>) {
    let d = c.nrows();
    let scale = c
        .diag()
        .iter()
        .fold(0.0f64, |m, &v| m.max(v.abs()))
        .max(1e-300);
    let orthogonalise = |v: &mut Array1<f64>| {
        for u in found {
            let p = v.dot(u);
            v.scaled_add(-p, u);
        }
    };
    let mut v = Array1::from_shape_fn(d, |_| rng.random::<f64>() - 0.5);
    orthogonalise(&mut v);
    v /= v.dot(&v).sqrt();
    let mut lambda = 0.0;
    for _ in 0..max_iter {
        let mut w = c.dot(&v);
        lambda = v.dot(&w);
        let residual = (&w - &(lambda * &v)).dot(&(&w - &(lambda * &v))).sqrt();
        if residual < tol * scale {
            break;
        }
        orthogonalise(&mut w);
        let norm = w.dot(&w).sqrt();
        if norm < 1e-300 {
            break; // C is zero on what is left: any unit vector is an eigenvector.
        }
        v = w / norm;
    }
    (lambda, v)
}
// ANCHOR_END: power_iteration

// ANCHOR: fit
impl Pca {
    /// Fits the top `k` components of the rows of `x` (`[n, d]`, `k <= d`).
    pub fn fit(x: &Array2<f64>, k: usize, rng: &mut impl Rng) -> Pca {
        assert!(
            k <= x.ncols(),
            "Pca::fit: {k} components of {} features",
            x.ncols()
        );
        let (mean, mut c) = covariance(x);
        let total_variance = c.diag().sum();
        let mut found: Vec<Array1<f64>> = Vec::with_capacity(k);
        let mut eigenvalues = Vec::with_capacity(k);
        for _ in 0..k {
            let (lambda, v) = power_iteration(&c, &found, 20_000, 1e-10, rng);
            // Deflation: remove the component just found.
            let vv = v
                .view()
                .insert_axis(Axis(1))
                .dot(&v.view().insert_axis(Axis(0)));
            c.scaled_add(-lambda, &vv);
            eigenvalues.push(lambda.max(0.0));
            found.push(v);
        }
        let views: Vec<_> = found.iter().map(|v| v.view()).collect();
        let components = ndarray::stack(Axis(0), &views).expect("equal lengths");
        Pca {
            mean,
            components,
            eigenvalues,
            total_variance,
        }
    }

    /// Coordinates of the rows of `x` along the components: `(x - mu) V^T`, `[n, k]`.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.mean).dot(&self.components.t())
    }

    /// Back from the first `k` coordinates to the data space: `mu + z_k V_k`, `[n, d]`.
    pub fn reconstruct(&self, z: &Array2<f64>, k: usize) -> Array2<f64> {
        let zk = z.slice(ndarray::s![.., ..k]);
        let vk = self.components.slice(ndarray::s![..k, ..]);
        zk.dot(&vk) + &self.mean
    }

    /// The fraction of the total variance explained by the first `1, 2, ..., k` components.
    pub fn cumulative_explained(&self) -> Vec<f64> {
        let mut sum = 0.0;
        self.eigenvalues
            .iter()
            .map(|l| {
                sum += l;
                sum / self.total_variance
            })
            .collect()
    }
}
// ANCHOR_END: fit
