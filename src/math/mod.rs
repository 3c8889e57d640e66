//! The "Brushing up on math" chapters: finite differences and their errors, the probability
//! the generative models need, and the two programs that draw the part's figures.
//!
//! * [`finite_diff`]: forward and central differences of a scalar function of an array, and the
//!   sweep over step sizes that shows truncation against round-off error;
//! * [`probability`]: log-densities, entropy, cross-entropy, KL divergence (with the closed form
//!   for two Gaussians that the VAE chapter reuses) and Monte Carlo estimates;
//! * [`gradcheck_steps`] and [`monte_carlo`]: the experiments behind
//!   `cargo run --release --example gradcheck_steps` and `--example monte_carlo`.

pub mod finite_diff;
pub mod gradcheck_steps;
pub mod monte_carlo;
pub mod probability;
