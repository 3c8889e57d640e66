//! The probability the generative chapters lean on: log-densities, entropy, cross-entropy and
//! KL divergence, the closed-form KL between two Gaussians, and Monte Carlo estimates.
//!
//! Everything is in **nats** (natural logarithms); divide by `ln 2` ([`nats_to_bits`]) for bits.

use crate::float::Float;
use ndarray::ArrayView1;
use rand::Rng;
use rand_distr::StandardNormal;

/// `ln 2`, the number of nats in one bit.
pub const NATS_PER_BIT: f64 = std::f64::consts::LN_2;

/// Converts an amount of information from nats to bits.
pub fn nats_to_bits(nats: f64) -> f64 {
    nats / NATS_PER_BIT
}

// ANCHOR: normal_log_density
/// The log-density of the normal distribution `N(mu, sigma^2)` at `x`:
/// `-ln sigma - ln(2 pi) / 2 - (x - mu)^2 / (2 sigma^2)`.
pub fn normal_log_density<F: Float>(x: F, mu: F, sigma: F) -> F {
    let half = F::of(0.5);
    let z = (x - mu) / sigma;
    -sigma.ln() - half * F::of((2.0 * std::f64::consts::PI).ln()) - half * z * z
}
// ANCHOR_END: normal_log_density

/// The entropy `H(p) = -sum_k p_k ln p_k` of a categorical distribution (terms with `p_k = 0`
/// count as zero).
pub fn entropy(p: &[f64]) -> f64 {
    cross_entropy(p, p)
}

/// The cross-entropy `H(p, q) = -sum_k p_k ln q_k`: the mean number of nats to code samples of
/// `p` with a code built for `q`. Infinite if `q_k = 0` where `p_k > 0`.
pub fn cross_entropy(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(p.len(), q.len(), "cross_entropy: p and q differ in length");
    p.iter()
        .zip(q)
        .filter(|(pk, _)| **pk > 0.0)
        .map(|(pk, qk)| -pk * qk.ln())
        .sum()
}

/// The KL divergence `KL(p || q) = sum_k p_k ln(p_k / q_k) = H(p, q) - H(p)` between two
/// categorical distributions.
pub fn kl_categorical(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(p.len(), q.len(), "kl_categorical: p and q differ in length");
    p.iter()
        .zip(q)
        .filter(|(pk, _)| **pk > 0.0)
        .map(|(pk, qk)| pk * (pk / qk).ln())
        .sum()
}

// ANCHOR: kl_normal
/// The KL divergence between two one-dimensional normal distributions, in closed form:
///
/// `KL(N(mu_q, s_q^2) || N(mu_p, s_p^2)) = ln(s_p / s_q) + (s_q^2 + (mu_q - mu_p)^2) / (2 s_p^2) - 1/2`.
pub fn kl_normal<F: Float>(mu_q: F, sigma_q: F, mu_p: F, sigma_p: F) -> F {
    let d = mu_q - mu_p;
    let half = F::of(0.5);
    (sigma_p / sigma_q).ln() + (sigma_q * sigma_q + d * d) / (F::of(2.0) * sigma_p * sigma_p) - half
}

/// The KL divergence between two Gaussians with diagonal covariances: the sum of
/// [`kl_normal`] over the coordinates, since both distributions factorise.
pub fn kl_diagonal_normal<F: Float>(
    mu_q: ArrayView1<F>,
    sigma_q: ArrayView1<F>,
    mu_p: ArrayView1<F>,
    sigma_p: ArrayView1<F>,
) -> F {
    let n = mu_q.len();
    assert!(
        sigma_q.len() == n && mu_p.len() == n && sigma_p.len() == n,
        "kl_diagonal_normal: the four vectors must have the same length"
    );
    (0..n)
        .map(|i| kl_normal(mu_q[i], sigma_q[i], mu_p[i], sigma_p[i]))
        .sum()
}
// ANCHOR_END: kl_normal

// ANCHOR: monte_carlo_kl
/// A Monte Carlo estimate of `KL(q || p)` for two one-dimensional normals: the mean of
/// `ln q(z) - ln p(z)` over `n` draws `z = mu_q + sigma_q * eps`, `eps ~ N(0, 1)`.
pub fn monte_carlo_kl(
    (mu_q, sigma_q): (f64, f64),
    (mu_p, sigma_p): (f64, f64),
    n: usize,
    rng: &mut impl Rng,
) -> f64 {
    assert!(n > 0, "monte_carlo_kl: needs at least one sample");
    let mut sum = 0.0;
    for _ in 0..n {
        let eps: f64 = rng.sample(StandardNormal);
        let z = mu_q + sigma_q * eps;
        sum += normal_log_density(z, mu_q, sigma_q) - normal_log_density(z, mu_p, sigma_p);
    }
    sum / n as f64
}
// ANCHOR_END: monte_carlo_kl

/// The standard deviation of one sample `ln q(z) - ln p(z)`, `z ~ q`, of the estimator in
/// [`monte_carlo_kl`]: with `a = (s_q^2 / s_p^2 - 1) / 2` and `b = (mu_q - mu_p) s_q / s_p^2`,
/// one sample is a constant plus `a eps^2 + b eps`, whose variance is `2 a^2 + b^2`. The mean of
/// `n` samples has standard deviation `sqrt(2 a^2 + b^2) / sqrt(n)`.
pub fn kl_sample_std((mu_q, sigma_q): (f64, f64), (mu_p, sigma_p): (f64, f64)) -> f64 {
    let ratio = sigma_q * sigma_q / (sigma_p * sigma_p);
    let a = 0.5 * (ratio - 1.0);
    let b = (mu_q - mu_p) * sigma_q / (sigma_p * sigma_p);
    (2.0 * a * a + b * b).sqrt()
}
