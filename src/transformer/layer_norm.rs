//! Layer normalisation over the last axis (Ba, Kiros and Hinton, 2016), forward and backward by
//! hand.
//!
//! For one row `x` of width `d`: `mu = mean(x)`, `var = mean((x - mu)^2)`,
//! `s = 1 / sqrt(var + eps)`, `xhat = (x - mu) s`, `y = gamma * xhat + beta`.
//!
//! Backward, given `dy` for the row: `dgamma += dy * xhat`, `dbeta += dy` (summed over rows),
//! and with `g = dy * gamma`,
//!
//! `dx = s (g - mean(g) - xhat * mean(g * xhat))`.
//!
//! Derivation: `xhat_j` depends on `x_i` through `x_i` itself, through `mu` and through `s`;
//! `d xhat_j / d x_i = s (delta_ij - 1/d - xhat_i xhat_j / d)` (the last term because
//! `ds / dx_i = -s^3 (x_i - mu) / d`). Summing `g_j` times it over `j` gives the formula.

use crate::float::Float;
use crate::matmul::split_elements;
use crate::param::Param1;
use ndarray::{Array1, Array2, ArrayRef2, ArrayView1, ArrayViewMut1, Axis, Zip};

// ANCHOR: struct
/// Layer normalisation over the last axis with a learned gain `gamma` and shift `beta`.
#[derive(Clone, Debug)]
pub struct LayerNorm<F: Float> {
    /// The gain, `[d]`, initialised to ones.
    pub gamma: Param1<F>,
    /// The shift, `[d]`, initialised to zeros.
    pub beta: Param1<F>,
    eps: F,
}

/// What [`LayerNorm::backward`] needs: the normalised rows and each row's `1 / sqrt(var + eps)`.
#[derive(Clone, Debug)]
pub struct LayerNormCache<F: Float> {
    xhat: Array2<F>,
    inv_std: Array1<F>,
}
// ANCHOR_END: struct

impl<F: Float> LayerNorm<F> {
    /// A layer norm of width `d` with `eps = 1e-5`, `gamma = 1`, `beta = 0`.
    pub fn new(d: usize) -> Self {
        Self::with_eps(d, 1e-5)
    }

    /// A layer norm of width `d` with the given `eps`.
    pub fn with_eps(d: usize, eps: f64) -> Self {
        LayerNorm {
            gamma: Param1::new(Array1::ones(d)),
            beta: Param1::new(Array1::zeros(d)),
            eps: F::of(eps),
        }
    }

    /// The width `d`.
    pub fn width(&self) -> usize {
        self.gamma.value.len()
    }

    fn check(&self, x: &ArrayRef2<F>) {
        assert_eq!(
            x.ncols(),
            self.width(),
            "LayerNorm: input is {:?} but the layer normalises rows of width {}",
            x.shape(),
            self.width()
        );
    }

    // ANCHOR: forward
    /// Normalises every row of `x` (`[rows, d]`): the output and the cache.
    pub fn forward(&self, x: &ArrayRef2<F>) -> (Array2<F>, LayerNormCache<F>) {
        self.check(x);
        let d = F::of(x.ncols() as f64);
        let (gamma, beta) = (&self.gamma.value, &self.beta.value);
        let mut xhat = Array2::zeros(x.raw_dim());
        let mut y = Array2::zeros(x.raw_dim());
        let mut inv_std = Array1::zeros(x.nrows());
        let each = Zip::from(x.rows())
            .and(xhat.rows_mut())
            .and(y.rows_mut())
            .and(&mut inv_std);
        let one_row =
            |x: ArrayView1<F>, mut xhat: ArrayViewMut1<F>, mut y: ArrayViewMut1<F>, s: &mut F| {
                let mu = x.sum() / d;
                Zip::from(&mut xhat).and(&x).for_each(|h, &v| *h = v - mu);
                let var = xhat.fold(F::zero(), |a, &v| a + v * v) / d;
                *s = F::one() / (var + self.eps).sqrt();
                let s = *s;
                xhat.mapv_inplace(|v| v * s);
                Zip::from(&mut y)
                    .and(&xhat)
                    .and(gamma)
                    .and(beta)
                    .for_each(|y, &h, &g, &b| *y = h * g + b);
            };
        // The rows are independent: shared between threads when there are several.
        if split_elements(x.len()) {
            each.par_for_each(one_row);
        } else {
            each.for_each(one_row);
        }
        (y, LayerNormCache { xhat, inv_std })
    }
    // ANCHOR_END: forward

    /// The forward pass without a cache.
    pub fn infer(&self, x: &ArrayRef2<F>) -> Array2<F> {
        self.forward(x).0
    }

    // ANCHOR: backward
    /// Adds `dgamma` and `dbeta` and returns `dx` for `dy` (`[rows, d]`).
    pub fn backward(&mut self, cache: &LayerNormCache<F>, dy: &ArrayRef2<F>) -> Array2<F> {
        assert_eq!(
            dy.dim(),
            cache.xhat.dim(),
            "LayerNorm: dy is {:?} but the forward input was {:?}",
            dy.shape(),
            cache.xhat.shape()
        );
        let mut gx = dy.to_owned();
        gx *= &cache.xhat;
        self.gamma.grad += &gx.sum_axis(Axis(0));
        self.beta.grad += &dy.sum_axis(Axis(0));
        let d = F::of(dy.ncols() as f64);
        let gamma = &self.gamma.value;
        let mut dx = Array2::zeros(dy.raw_dim());
        let each = Zip::from(dx.rows_mut())
            .and(dy.rows())
            .and(cache.xhat.rows())
            .and(&cache.inv_std);
        let one_row = |mut g: ArrayViewMut1<F>, dy: ArrayView1<F>, xhat: ArrayView1<F>, &s: &F| {
            Zip::from(&mut g)
                .and(&dy)
                .and(gamma)
                .for_each(|g, &dy, &gm| *g = dy * gm);
            let mean_g = g.sum() / d;
            let mean_gx = g.iter().zip(&xhat).fold(F::zero(), |a, (&g, &x)| a + g * x) / d;
            Zip::from(&mut g)
                .and(&xhat)
                .for_each(|g, &x| *g = s * (*g - mean_g - x * mean_gx));
        };
        if split_elements(dy.len()) {
            each.par_for_each(one_row);
        } else {
            each.for_each(one_row);
        }
        dx
    }
    // ANCHOR_END: backward
}

crate::impl_params!(LayerNorm<F> { gamma, beta });
