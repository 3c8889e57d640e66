//! Linear regression with an L2 penalty (ridge regression), fitted two ways: in closed form by
//! the normal equation, and iteratively by gradient descent.
//!
//! The model predicts `y_hat = x w + b` for rows `x` of `X` (`[n, d]`), `w` of shape `[d]`, `b`
//! a scalar. The loss is the halved mean squared error plus an L2 penalty on the weights (not
//! on the bias, which only shifts the predictions):
//!
//! `L(w, b) = 1/(2n) sum_i (x_i w + b - y_i)^2 + lambda/2 |w|^2`.
//!
//! With residuals `r = X w + b - y`, its gradient is
//!
//! `dL/dw = X^T r / n + lambda w`, `dL/db = sum_i r_i / n`.
//!
//! Setting both to zero gives a linear system in `(w, b)`, the *normal equation*, which
//! [`normal_equation`] solves by a Cholesky factorisation written out below.

use crate::float::Float;
use crate::param::{Param, Param1, zero_grads};
use ndarray::{Array0, Array1, Array2, Axis, arr0, s};

/// A linear model `y_hat = x w + b` with one output.
#[derive(Clone, Debug)]
pub struct LinearRegression<F: Float> {
    /// Weights, `[features]`.
    pub w: Param1<F>,
    /// Bias, a scalar.
    pub b: Param<F, ndarray::Ix0>,
}

crate::impl_params!(LinearRegression<F> { w, b });

/// The matrix of a linear system is not positive definite (to working precision), so the
/// Cholesky factorisation cannot proceed: the features are linearly dependent and the penalty
/// is zero.
#[derive(Debug, thiserror::Error)]
#[error(
    "the normal equation is singular (pivot {pivot} is {value:e}): features are linearly dependent; use lambda > 0"
)]
pub struct Singular {
    /// The row at which the factorisation failed.
    pub pivot: usize,
    /// The value that should have been positive.
    pub value: f64,
}

// ANCHOR: cholesky
/// Solves `A x = b` for a symmetric positive-definite `A` (`[m, m]`): factorises `A = L L^T`
/// with `L` lower triangular, then solves `L z = b` forwards and `L^T x = z` backwards.
///
/// Column `j` of `L` follows from the entries of `A` and the columns before it:
/// `L_jj = sqrt(A_jj - sum_{k<j} L_jk^2)`, `L_ij = (A_ij - sum_{k<j} L_ik L_jk) / L_jj`.
/// About `m^3 / 3` multiplications, half of Gaussian elimination, and stable without pivoting
/// for positive-definite matrices.
pub fn cholesky_solve<F: Float>(a: &Array2<F>, b: &Array1<F>) -> Result<Array1<F>, Singular> {
    let m = a.nrows();
    assert!(
        a.ncols() == m && b.len() == m,
        "cholesky_solve: A is {:?} and b has {} entries",
        a.dim(),
        b.len()
    );
    let mut l = Array2::<F>::zeros((m, m));
    // The scale of A's diagonal, so "not positive" means relative to the problem's size.
    let tiny = F::of(1e-12) * a.diag().fold(F::zero(), |acc, &v| acc.max(v.abs()));
    for j in 0..m {
        // The first j entries of row j of L, already computed.
        let lj = l.slice(s![j, ..j]);
        let d = a[[j, j]] - lj.dot(&lj);
        if d <= tiny {
            return Err(Singular {
                pivot: j,
                value: d.as_f64(),
            });
        }
        let ljj = d.sqrt();
        l[[j, j]] = ljj;
        for i in j + 1..m {
            let v = a[[i, j]] - l.slice(s![i, ..j]).dot(&l.slice(s![j, ..j]));
            l[[i, j]] = v / ljj;
        }
    }
    // Forward substitution: L z = b.
    let mut z = Array1::<F>::zeros(m);
    for i in 0..m {
        let mut v = b[i];
        for k in 0..i {
            v -= l[[i, k]] * z[k];
        }
        z[i] = v / l[[i, i]];
    }
    // Back substitution: L^T x = z.
    let mut x = Array1::<F>::zeros(m);
    for i in (0..m).rev() {
        let mut v = z[i];
        for k in i + 1..m {
            v -= l[[k, i]] * x[k];
        }
        x[i] = v / l[[i, i]];
    }
    Ok(x)
}
// ANCHOR_END: cholesky

impl<F: Float> LinearRegression<F> {
    /// A model with all weights and the bias zero.
    pub fn zeros(features: usize) -> Self {
        LinearRegression {
            w: Param::new(Array1::zeros(features)),
            b: Param::new(arr0(F::zero())),
        }
    }

    /// The bias as a number.
    pub fn bias(&self) -> F {
        self.b.value[()]
    }

    /// Predictions `X w + b`, `[n]`, for `x` of shape `[n, features]`.
    pub fn predict(&self, x: &Array2<F>) -> Array1<F> {
        assert_eq!(
            x.ncols(),
            self.w.value.len(),
            "LinearRegression: {} weights, input has {} features",
            self.w.value.len(),
            x.ncols()
        );
        x.dot(&self.w.value) + self.bias()
    }

    // ANCHOR: loss
    /// The penalised loss `1/(2n) |X w + b - y|^2 + lambda/2 |w|^2`.
    pub fn loss(&self, x: &Array2<F>, y: &Array1<F>, lambda: F) -> F {
        let r = self.predict(x) - y;
        let n = F::of(y.len() as f64);
        r.dot(&r) / (n + n) + lambda * self.w.value.dot(&self.w.value) / F::of(2.0)
    }

    /// The loss, with its gradient *added* to `w.grad` and `b.grad`:
    /// `dL/dw = X^T r / n + lambda w`, `dL/db = mean(r)`.
    pub fn loss_backward(&mut self, x: &Array2<F>, y: &Array1<F>, lambda: F) -> F {
        let r = self.predict(x) - y;
        let n = F::of(y.len() as f64);
        let dw = x.t().dot(&r) / n + &self.w.value * lambda;
        self.w.grad += &dw;
        self.b.grad[()] += r.sum() / n;
        r.dot(&r) / (n + n) + lambda * self.w.value.dot(&self.w.value) / F::of(2.0)
    }
    // ANCHOR_END: loss
}

/// Mean squared error of `model` on `(x, y)`, unpenalised: `|X w + b - y|^2 / n`.
pub fn mse<F: Float>(model: &LinearRegression<F>, x: &Array2<F>, y: &Array1<F>) -> f64 {
    let r = model.predict(x) - y;
    r.dot(&r).as_f64() / y.len().max(1) as f64
}

// ANCHOR: normal_equation
/// Fits by the normal equation. The gradient is zero when
///
/// `(X^T X / n + lambda I) w + (X^T 1 / n) b = X^T y / n` and `(1^T X / n) w + b = mean(y)`,
///
/// a symmetric positive-definite system of `d + 1` equations (when `lambda > 0`, or when the
/// columns of `X` and the constant column are linearly independent), solved by Cholesky.
pub fn normal_equation<F: Float>(
    x: &Array2<F>,
    y: &Array1<F>,
    lambda: F,
) -> Result<LinearRegression<F>, Singular> {
    let (n, d) = x.dim();
    assert_eq!(
        y.len(),
        n,
        "normal_equation: {n} rows but {} targets",
        y.len()
    );
    let nf = F::of(n as f64);
    let mut a = Array2::<F>::zeros((d + 1, d + 1));
    a.slice_mut(s![..d, ..d]).assign(&(x.t().dot(x) / nf));
    for j in 0..d {
        a[[j, j]] += lambda;
    }
    let col_means = x.sum_axis(Axis(0)) / nf;
    a.slice_mut(s![..d, d]).assign(&col_means);
    a.slice_mut(s![d, ..d]).assign(&col_means);
    a[[d, d]] = F::one();
    let mut rhs = Array1::<F>::zeros(d + 1);
    rhs.slice_mut(s![..d]).assign(&(x.t().dot(y) / nf));
    rhs[d] = y.sum() / nf;
    let theta = cholesky_solve(&a, &rhs)?;
    Ok(LinearRegression {
        w: Param::new(theta.slice(s![..d]).to_owned()),
        b: Param::new(Array0::from_elem((), theta[d])),
    })
}
// ANCHOR_END: normal_equation

// ANCHOR: gradient_descent
/// Fits by full-batch gradient descent from zero: `steps` updates
/// `w <- w - lr dL/dw`, `b <- b - lr dL/db`. Returns the model and the loss before each step.
///
/// On standardised features a learning rate near 1 / (largest eigenvalue of `X^T X / n`)
/// converges quickly; too large a rate makes the loss grow without bound.
pub fn gradient_descent<F: Float>(
    x: &Array2<F>,
    y: &Array1<F>,
    lambda: F,
    lr: F,
    steps: usize,
) -> (LinearRegression<F>, Vec<f64>) {
    let mut model = LinearRegression::zeros(x.ncols());
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        zero_grads(&mut model);
        losses.push(model.loss_backward(x, y, lambda).as_f64());
        model.w.value.scaled_add(-lr, &model.w.grad);
        model.b.value[()] -= lr * model.b.grad[()];
    }
    (model, losses)
}
// ANCHOR_END: gradient_descent

// ANCHOR: quadratic
/// Quadratic features: the `d` columns of `x` followed by every product `x_i x_j` with
/// `i <= j`, `d + d (d + 1) / 2` columns in all. A linear model on them is a quadratic function
/// of the original features: more capacity, for a model that underfits.
pub fn quadratic_features<F: Float>(x: &Array2<F>) -> Array2<F> {
    let (n, d) = x.dim();
    let mut out = Array2::<F>::zeros((n, d + d * (d + 1) / 2));
    out.slice_mut(s![.., ..d]).assign(x);
    let mut col = d;
    for i in 0..d {
        for j in i..d {
            let product = &x.column(i) * &x.column(j);
            out.column_mut(col).assign(&product);
            col += 1;
        }
    }
    out
}
// ANCHOR_END: quadratic
