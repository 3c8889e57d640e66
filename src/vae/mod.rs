//! The variational autoencoder of Kingma and Welling (2014), with every gradient by hand.
//!
//! A VAE is a latent-variable model `p(x, z) = p(z) p(x | z)` with a standard normal prior
//! `p(z) = N(0, I)` over `d` latent coordinates and a decoder network that turns `z` into the
//! parameters of `p(x | z)`, trained together with an encoder network that turns `x` into a
//! diagonal Gaussian `q(z | x) = N(mu(x), diag(sigma(x)^2))`. Training maximises the evidence
//! lower bound (ELBO) on `ln p(x)`,
//!
//! `ELBO(x) = E_{q(z|x)}[ln p(x | z)] - KL(q(z | x) || p(z))  <=  ln p(x)`,
//!
//! or, as a loss, minimises its negative: a reconstruction term (the expected negative
//! log-likelihood of the image) plus the KL divergence of the posterior from the prior (in
//! closed form for two Gaussians). The expectation is estimated with one sample drawn by the
//! *reparameterisation* `z = mu + sigma * eps`, `eps ~ N(0, I)`: the randomness sits in `eps`,
//! which the caller draws, and `z` is a differentiable function of the encoder's outputs.
//!
//! Shapes: a batch of images `x` is `[batch, input]`; `mu`, the log-variance `logvar = ln sigma^2`,
//! `eps` and `z` are `[batch, latent]`; the decoder's output (logits or means) is
//! `[batch, input]`. Per-example terms are `[batch]`, in nats.
//!
//! The encoder is an [`Mlp`] `[input, hidden..., 2 latent]` whose last layer's outputs are split
//! into `mu` (the first `latent` columns) and `logvar` (the rest); the decoder is an [`Mlp`]
//! `[latent, hidden..., input]`. Two decoders are offered ([`Likelihood`]): Bernoulli pixels with
//! the decoder's outputs as logits (for binarised digits), and Gaussian pixels with the
//! decoder's outputs as means and one learned log standard deviation shared by all pixels.

pub mod experiment;

use crate::activation::sigmoid;
use crate::float::{Float, c};
use crate::math::probability::kl_normal;
use crate::mlp::{Mlp, MlpCache};
use crate::param::Param1;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip, concatenate, s};
use rand::Rng;
use rand_distr::StandardNormal;

/// The smallest log-variance the encoder may output; smaller values are clamped to it.
pub const LOGVAR_MIN: f64 = -20.0;
/// The largest log-variance the encoder may output; larger values are clamped to it. (`e^20` is
/// about `5e8`: large enough never to bind in a sane model, small enough that `e^logvar` stays
/// finite in `f32`, which overflows at `e^88.7`.)
pub const LOGVAR_MAX: f64 = 20.0;

/// `ln(2 pi) / 2`, the constant of every Gaussian log-density.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

// ANCHOR: likelihood
/// The distribution `p(x | z)` the decoder's outputs parameterise, one factor per pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// `x_j ~ Bernoulli(sigmoid(o_j))`: the outputs `o` are logits; for pixels in `{0, 1}`.
    Bernoulli,
    /// `x_j ~ N(o_j, sigma^2)`: the outputs are means and `ln sigma` is one learned parameter
    /// shared by every pixel; for real-valued pixels.
    Gaussian,
}
// ANCHOR_END: likelihood

// ANCHOR: model
/// A variational autoencoder: an encoder giving `q(z | x)`, a decoder giving `p(x | z)`.
#[derive(Clone, Debug)]
pub struct Vae<F: Float> {
    /// `x -> [mu | logvar]`, sizes `[input, hidden..., 2 latent]`.
    pub encoder: Mlp<F>,
    /// `z -> logits or means`, sizes `[latent, hidden..., input]`.
    pub decoder: Mlp<F>,
    /// The Gaussian decoder's `ln sigma`, shape `[1]`; `None` for the Bernoulli decoder.
    pub log_sigma: Option<Param1<F>>,
}

/// The two terms of the negative ELBO of each example in a batch, in nats, both `[batch]`.
#[derive(Clone, Debug)]
pub struct Elbo<F: Float> {
    /// `-ln p(x | z)` at the sampled `z`: a one-sample estimate of the expected reconstruction
    /// negative log-likelihood.
    pub reconstruction: Array1<F>,
    /// `KL(q(z | x) || N(0, I))`, exact (closed form).
    pub kl: Array1<F>,
}

/// What [`Vae::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct VaeCache<F: Float> {
    x: Array2<F>,
    encoder: MlpCache<F>,
    mu: Array2<F>,
    logvar: Array2<F>,
    /// Whether each log-variance was inside `[LOGVAR_MIN, LOGVAR_MAX]` (else it was clamped and
    /// passes no gradient back).
    inside: Array2<bool>,
    sigma: Array2<F>,
    eps: Array2<F>,
    z: Array2<F>,
    decoder: MlpCache<F>,
    output: Array2<F>,
}
// ANCHOR_END: model

impl<F: Float> Elbo<F> {
    /// The loss of the batch: the mean over examples of `reconstruction + kl_weight * kl`
    /// (`kl_weight = 1` is the negative ELBO).
    pub fn loss(&self, kl_weight: F) -> F {
        let n = F::of(self.kl.len().max(1) as f64);
        Zip::from(&self.reconstruction)
            .and(&self.kl)
            .fold(F::zero(), |acc, &r, &k| acc + r + kl_weight * k)
            / n
    }

    /// The negative ELBO of each example, `reconstruction + kl`, `[batch]`.
    pub fn per_example(&self) -> Array1<F> {
        &self.reconstruction + &self.kl
    }
}

impl<F: Float> VaeCache<F> {
    /// The posterior means, `[batch, latent]`.
    pub fn mu(&self) -> &Array2<F> {
        &self.mu
    }
    /// The (clamped) posterior log-variances, `[batch, latent]`.
    pub fn logvar(&self) -> &Array2<F> {
        &self.logvar
    }
    /// The noise the sample was drawn with, `[batch, latent]`.
    pub fn eps(&self) -> &Array2<F> {
        &self.eps
    }
    /// The sampled latent codes `z = mu + sigma * eps`, `[batch, latent]`.
    pub fn z(&self) -> &Array2<F> {
        &self.z
    }
    /// The decoder's outputs (logits or means), `[batch, input]`.
    pub fn output(&self) -> &Array2<F> {
        &self.output
    }
}

impl<F: Float> Vae<F> {
    /// A VAE for inputs of width `input` with the given hidden widths (the decoder mirrors the
    /// encoder) and `latent` latent coordinates, He-initialised; a Gaussian decoder starts at
    /// `sigma = 1`.
    pub fn new(
        input: usize,
        hidden: &[usize],
        latent: usize,
        likelihood: Likelihood,
        rng: &mut impl Rng,
    ) -> Self {
        assert!(
            input > 0 && latent > 0,
            "Vae: input and latent sizes must be positive"
        );
        let mut enc = vec![input];
        enc.extend_from_slice(hidden);
        enc.push(2 * latent);
        let mut dec = vec![latent];
        dec.extend(hidden.iter().rev());
        dec.push(input);
        Vae {
            encoder: Mlp::new(&enc, rng),
            decoder: Mlp::new(&dec, rng),
            log_sigma: match likelihood {
                Likelihood::Bernoulli => None,
                Likelihood::Gaussian => Some(Param1::new(Array1::zeros(1))),
            },
        }
    }

    /// The width of an input image.
    pub fn input(&self) -> usize {
        self.encoder.layers[0].input()
    }

    /// The number of latent coordinates `d`.
    pub fn latent(&self) -> usize {
        self.decoder.layers[0].input()
    }

    /// Which decoder this model has.
    pub fn likelihood(&self) -> Likelihood {
        match self.log_sigma {
            None => Likelihood::Bernoulli,
            Some(_) => Likelihood::Gaussian,
        }
    }

    fn check_input(&self, x: &ArrayView2<F>) {
        assert_eq!(
            x.ncols(),
            self.input(),
            "Vae: input is {:?} but the model expects [batch, {}]",
            x.shape(),
            self.input()
        );
    }

    // ANCHOR: encode
    /// The parameters of `q(z | x)` for a batch `x` (`[batch, input]`): `(mu, logvar)`, both
    /// `[batch, latent]`, the log-variance clamped to `[LOGVAR_MIN, LOGVAR_MAX]`.
    pub fn encode(&self, x: &Array2<F>) -> (Array2<F>, Array2<F>) {
        self.check_input(&x.view());
        let (mu, logvar, _) = self.split(self.encoder.infer(x));
        (mu, logvar)
    }

    /// Splits the encoder's `[batch, 2 latent]` output into `mu`, the clamped `logvar`, and the
    /// mask of log-variances that were inside the clamp.
    fn split(&self, h: Array2<F>) -> (Array2<F>, Array2<F>, Array2<bool>) {
        let d = self.latent();
        let mu = h.slice(s![.., ..d]).to_owned();
        let raw = h.slice(s![.., d..]);
        let (lo, hi) = (c::<F>(LOGVAR_MIN), c::<F>(LOGVAR_MAX));
        let inside = raw.mapv(|v| v >= lo && v <= hi);
        let logvar = raw.mapv(|v| v.max(lo).min(hi));
        (mu, logvar, inside)
    }
    // ANCHOR_END: encode

    /// The decoder's outputs for latent codes `z` (`[batch, latent]`): logits (Bernoulli) or
    /// means (Gaussian), `[batch, input]`.
    pub fn decode(&self, z: &Array2<F>) -> Array2<F> {
        self.decoder.infer(z)
    }

    /// The mean of `p(x | z)`, the image to draw for a code: `sigmoid(logits)` for the
    /// Bernoulli decoder, the means themselves for the Gaussian one; `[batch, input]`.
    pub fn mean_image(&self, z: &Array2<F>) -> Array2<F> {
        let out = self.decode(z);
        match self.likelihood() {
            Likelihood::Bernoulli => sigmoid(&out),
            Likelihood::Gaussian => out,
        }
    }

    // ANCHOR: forward
    /// The forward pass with the noise `eps` (`[batch, latent]`) given: encode, sample
    /// `z = mu + exp(logvar / 2) * eps`, decode, and score. Returns both terms of the negative
    /// ELBO of every example and the cache backward needs.
    pub fn forward(&self, x: &Array2<F>, eps: &Array2<F>) -> (Elbo<F>, VaeCache<F>) {
        self.check_input(&x.view());
        assert_eq!(
            eps.dim(),
            (x.nrows(), self.latent()),
            "Vae: eps is {:?} but the batch needs [{}, {}]",
            eps.shape(),
            x.nrows(),
            self.latent()
        );
        let (h, encoder) = self.encoder.forward(x);
        let (mu, logvar, inside) = self.split(h);
        let sigma = logvar.mapv(|v| (v * c(0.5)).exp());
        let z = &mu + &(&sigma * eps);
        let (output, decoder) = self.decoder.forward(&z);
        let elbo = Elbo {
            reconstruction: self.nll(&output, &x.view()),
            kl: kl_to_standard_normal(&mu, &logvar),
        };
        let cache = VaeCache {
            x: x.clone(),
            encoder,
            mu,
            logvar,
            inside,
            sigma,
            eps: eps.clone(),
            z,
            decoder,
            output,
        };
        (elbo, cache)
    }

    /// The forward pass for training: draws `eps ~ N(0, I)` from `rng`, then [`Vae::forward`].
    pub fn forward_train(&self, x: &Array2<F>, rng: &mut impl Rng) -> (Elbo<F>, VaeCache<F>) {
        let eps = standard_normal((x.nrows(), self.latent()), rng);
        self.forward(x, &eps)
    }
    // ANCHOR_END: forward

    /// `-ln p(x | o)` of every row, summed over pixels: `[batch]`.
    fn nll(&self, output: &Array2<F>, x: &ArrayView2<F>) -> Array1<F> {
        match &self.log_sigma {
            None => bernoulli_nll(output, x),
            Some(p) => gaussian_nll(output, p.value[0], x),
        }
    }

    // ANCHOR: backward
    /// Backpropagates the batch loss `mean_i (reconstruction_i + kl_weight * kl_i)` through the
    /// decoder, the sampling step and the encoder: adds every parameter's gradient and returns
    /// `dL/dx` (`[batch, input]`), which has two parts, through the encoder and through the
    /// reconstruction term, where `x` is the target.
    pub fn backward(&mut self, cache: &VaeCache<F>, kl_weight: F) -> Array2<F> {
        let (dh, dx_target) = self.backward_to_encoder(cache, kl_weight);
        self.encoder.backward(&cache.encoder, &dh) + dx_target
    }

    /// [`Vae::backward`] without `dL/dx`, for training, where nobody needs it (it saves the
    /// largest matrix product of the backward pass).
    pub fn backward_params(&mut self, cache: &VaeCache<F>, kl_weight: F) {
        let (dh, _) = self.backward_to_encoder(cache, kl_weight);
        self.encoder.backward_params(&cache.encoder, &dh);
    }

    /// The backward pass down to the encoder's output: returns the gradient with respect to
    /// `[mu | raw logvar]` (`[batch, 2 latent]`) and the reconstruction term's gradient with
    /// respect to the target `x`.
    fn backward_to_encoder(&mut self, cache: &VaeCache<F>, kl_weight: F) -> (Array2<F>, Array2<F>) {
        let n = F::of(cache.x.nrows() as f64);
        let half = c::<F>(0.5);
        // The reconstruction term: its gradient with respect to the decoder's outputs, and
        // with respect to the target x itself.
        let (d_output, dx_target) = match &mut self.log_sigma {
            None => {
                // -ln p = softplus(o) - x o: d/do = sigmoid(o) - x, d/dx = -o.
                let d_out = (sigmoid(&cache.output) - &cache.x) / n;
                (d_out, cache.output.mapv(|o| -o / n))
            }
            Some(log_sigma) => {
                // -ln p = ln s + ln(2 pi) / 2 + (x - o)^2 / (2 s^2): with r = (x - o) / s^2,
                // d/do = -r, d/dx = r, and d/d(ln s) = sum over pixels of 1 - (x - o)^2 / s^2.
                let inv_var = (-(log_sigma.value[0] + log_sigma.value[0])).exp();
                let r = (&cache.x - &cache.output) * inv_var;
                let sq = Zip::from(&cache.x)
                    .and(&cache.output)
                    .fold(F::zero(), |a, &x, &o| a + (x - o) * (x - o));
                let pixels = F::of(cache.x.len() as f64);
                log_sigma.grad[0] += (pixels - sq * inv_var) / n;
                (r.mapv(|v| -v / n), r / n)
            }
        };
        let dz = self.decoder.backward(&cache.decoder, &d_output);
        // Through z = mu + sigma * eps with sigma = exp(logvar / 2): dz/dmu = 1 and
        // dz/dlogvar = eps * sigma / 2; plus the closed-form KL's own gradients, mu and
        // (sigma^2 - 1) / 2, per example, hence divided by n.
        let beta = kl_weight / n;
        let dmu = &dz + &cache.mu.mapv(|m| beta * m);
        let mut dlogvar = Zip::from(&dz)
            .and(&cache.eps)
            .and(&cache.sigma)
            .map_collect(|&g, &e, &s| g * e * s * half + beta * half * (s * s - F::one()));
        // A clamped log-variance does not move with the encoder's output: no gradient.
        Zip::from(&mut dlogvar)
            .and(&cache.inside)
            .for_each(|g, &inside| {
                if !inside {
                    *g = F::zero();
                }
            });
        (concatenate![Axis(1), dmu, dlogvar], dx_target)
    }
    // ANCHOR_END: backward

    // ANCHOR: log_weights
    /// The log importance weights `ln p(x, z_k) - ln q(z_k | x)` of one image `x` (`[input]`)
    /// at the codes `z_k = mu + sigma * eps_k` for the rows of `eps` (`[k, latent]`), in `f64`:
    ///
    /// `ln w_k = ln p(x | z_k) + ln N(z_k; 0, I) - ln N(z_k; mu, sigma^2)`
    /// `      = ln p(x | z_k) + sum_j (-z_kj^2 + eps_kj^2 + logvar_j) / 2`
    ///
    /// (the `ln 2 pi` terms of the two densities cancel). Their mean is a one-sample-per-row
    /// estimate of the ELBO; the log of the mean of `w_k` estimates `ln p(x)`.
    pub fn log_weights(&self, x: ArrayView1<F>, eps: &Array2<F>) -> Array1<f64> {
        let k = eps.nrows();
        let row = x.insert_axis(Axis(0));
        self.check_input(&row);
        let (mu, logvar, _) = self.split(self.encoder.infer(&row.to_owned()));
        let (mu, logvar) = (mu.row(0), logvar.row(0));
        let sigma = logvar.mapv(|v| (v * c(0.5)).exp());
        let z = eps * &sigma + mu;
        let output = self.decoder.infer(&z);
        let nll = self.nll(&output, &row.broadcast((k, x.len())).expect("one row"));
        let prior_minus_posterior = Zip::from(z.rows()).and(eps.rows()).map_collect(|z, e| {
            let mut s = 0.0;
            for ((&z, &e), &lv) in z.iter().zip(e).zip(&logvar) {
                s += 0.5 * (e.as_f64() * e.as_f64() - z.as_f64() * z.as_f64() + lv.as_f64());
            }
            s
        });
        Zip::from(&nll)
            .and(&prior_minus_posterior)
            .map_collect(|&nll, &d| -nll.as_f64() + d)
    }

    /// The importance-sampled estimate of `ln p(x)` for every row of `x` (`[batch, input]`):
    /// `ln (1/k) sum_k w_k` with `k` codes drawn from `q(z | x)`, computed with log-sum-exp.
    /// With `k = 1` it is a one-sample estimate of the ELBO; its expectation grows with `k`
    /// towards `ln p(x)` (Burda, Grosse and Salakhutdinov, 2016). Returns `[batch]`, in nats.
    pub fn importance_log_likelihood(
        &self,
        x: &Array2<F>,
        k: usize,
        rng: &mut impl Rng,
    ) -> Array1<f64> {
        assert!(
            k > 0,
            "importance_log_likelihood: needs at least one sample"
        );
        x.rows()
            .into_iter()
            .map(|row| {
                let eps = standard_normal((k, self.latent()), rng);
                log_mean_exp(self.log_weights(row, &eps).as_slice().expect("contiguous"))
            })
            .collect()
    }
    // ANCHOR_END: log_weights

    // ANCHOR: estimators
    /// Per-sample estimates of the gradient of the expected reconstruction log-likelihood
    /// `E_q[ln p(x | z)]` of one image `x` (`[input]`) with respect to the posterior's
    /// parameters `(mu, logvar)`, one per row of `eps` (`[S, latent]`), by three unbiased
    /// estimators. Each is `[S, 2 latent]`: the `mu` columns, then the `logvar` columns.
    ///
    /// * reparameterisation: `f'(z) dz/dtheta`, with `f = ln p(x | .)`: `f'(z)` for `mu` and
    ///   `f'(z) eps sigma / 2` for `logvar`;
    /// * score function: `f(z) d ln q(z | x) / dtheta`: `f(z) eps / sigma` for `mu` and
    ///   `f(z) (eps^2 - 1) / 2` for `logvar`;
    /// * score function with a baseline: `(f(z) - b) d ln q / dtheta`, where `b` is the mean of
    ///   `f` over the *other* samples (so it is independent of this one and the estimate stays
    ///   unbiased). Needs `S >= 2`.
    pub fn gradient_estimates(&self, x: ArrayView1<F>, eps: &Array2<F>) -> GradientEstimates {
        let samples = eps.nrows();
        assert!(
            samples >= 2,
            "gradient_estimates: needs two samples or more"
        );
        let row = x.insert_axis(Axis(0));
        self.check_input(&row);
        let (mu, logvar, _) = self.split(self.encoder.infer(&row.to_owned()));
        let sigma = logvar.row(0).mapv(|v| (v * c(0.5)).exp());
        let z = eps * &sigma + mu.row(0);
        let xs = row
            .broadcast((samples, x.len()))
            .expect("one row")
            .to_owned();
        // The decoder's backward gives d(-ln p)/dz row by row; it runs on a copy so the
        // model's own gradients are left alone.
        let mut decoder = self.decoder.clone();
        let (output, cache) = decoder.forward(&z);
        let f = self.nll(&output, &xs.view()).mapv(|v| -v.as_f64());
        let d_output = match &self.log_sigma {
            None => sigmoid(&output) - &xs,
            Some(p) => (&output - &xs) * (-(p.value[0] + p.value[0])).exp(),
        };
        let d_nll_dz = decoder.backward(&cache, &d_output).mapv(|v| v.as_f64());
        let d = self.latent();
        let (eps, sigma) = (eps.mapv(|v| v.as_f64()), sigma.mapv(|v| v.as_f64()));
        let total: f64 = f.sum();
        let mut out = GradientEstimates {
            reparameterisation: Array2::zeros((samples, 2 * d)),
            score_function: Array2::zeros((samples, 2 * d)),
            score_function_baseline: Array2::zeros((samples, 2 * d)),
        };
        for s in 0..samples {
            let baseline = (total - f[s]) / (samples - 1) as f64;
            for j in 0..d {
                let (e, sg) = (eps[[s, j]], sigma[j]);
                let df = -d_nll_dz[[s, j]];
                let (score_mu, score_lv) = (e / sg, 0.5 * (e * e - 1.0));
                out.reparameterisation[[s, j]] = df;
                out.reparameterisation[[s, d + j]] = df * e * sg * 0.5;
                out.score_function[[s, j]] = f[s] * score_mu;
                out.score_function[[s, d + j]] = f[s] * score_lv;
                out.score_function_baseline[[s, j]] = (f[s] - baseline) * score_mu;
                out.score_function_baseline[[s, d + j]] = (f[s] - baseline) * score_lv;
            }
        }
        out
    }
    // ANCHOR_END: estimators
}

/// The per-sample gradient estimates of [`Vae::gradient_estimates`], each `[S, 2 latent]`
/// (`mu` columns first, then `logvar` columns).
#[derive(Clone, Debug)]
pub struct GradientEstimates {
    /// Through the sampling step (the reparameterisation trick).
    pub reparameterisation: Array2<f64>,
    /// The score-function (REINFORCE, likelihood-ratio) estimator.
    pub score_function: Array2<f64>,
    /// The score-function estimator with a leave-one-out baseline subtracted.
    pub score_function_baseline: Array2<f64>,
}

crate::impl_params!(Vae<F> { encoder, decoder, log_sigma });

// ANCHOR: terms
/// `KL(N(mu, exp(logvar)) || N(0, I))` of every row, the sum over coordinates of the
/// probability chapter's [`kl_normal`]: `sum_j (mu_j^2 + sigma_j^2 - 1 - logvar_j) / 2`.
/// Both inputs `[batch, latent]`; returns `[batch]`. Exactly zero where `mu = 0, logvar = 0`.
pub fn kl_to_standard_normal<F: Float>(mu: &Array2<F>, logvar: &Array2<F>) -> Array1<F> {
    assert_eq!(
        mu.dim(),
        logvar.dim(),
        "kl_to_standard_normal: mu is {:?} but logvar is {:?}",
        mu.shape(),
        logvar.shape()
    );
    Zip::from(mu.rows())
        .and(logvar.rows())
        .map_collect(|mu, logvar| {
            Zip::from(&mu).and(&logvar).fold(F::zero(), |acc, &m, &lv| {
                acc + kl_normal(m, (lv * c(0.5)).exp(), F::zero(), F::one())
            })
        })
}

/// The Bernoulli negative log-likelihood of targets `x` under logits `o`, summed over each row:
/// `sum_j softplus(o_j) - x_j o_j`, computed as `max(o, 0) - x o + ln(1 + e^-|o|)` so that no
/// exponent is positive. Both `[batch, input]`; returns `[batch]`.
pub fn bernoulli_nll<F: Float>(logits: &Array2<F>, x: &ArrayView2<F>) -> Array1<F> {
    assert_eq!(
        logits.dim(),
        x.dim(),
        "bernoulli_nll: logits are {:?} but targets are {:?}",
        logits.shape(),
        x.shape()
    );
    let mut tail = vec![F::zero(); logits.ncols()];
    Zip::from(logits.rows()).and(x.rows()).map_collect(|o, x| {
        tail.iter_mut().zip(&o).for_each(|(t, &o)| *t = o);
        crate::vmath::softplus_tail_all(&mut tail); // ln(1 + e^-|o|), a row at a time
        Zip::from(&o)
            .and(&x)
            .and(&tail[..])
            .fold(F::zero(), |acc, &o, &x, &t| {
                acc + o.max(F::zero()) - x * o + t
            })
    })
}

/// The Gaussian negative log-likelihood of targets `x` under means `m` and one standard
/// deviation `sigma = exp(log_sigma)`, summed over each row:
/// `sum_j ln sigma + ln(2 pi) / 2 + (x_j - m_j)^2 / (2 sigma^2)`. Both `[batch, input]`;
/// returns `[batch]`.
pub fn gaussian_nll<F: Float>(means: &Array2<F>, log_sigma: F, x: &ArrayView2<F>) -> Array1<F> {
    assert_eq!(
        means.dim(),
        x.dim(),
        "gaussian_nll: means are {:?} but targets are {:?}",
        means.shape(),
        x.shape()
    );
    let inv_2var = c::<F>(0.5) * (-(log_sigma + log_sigma)).exp();
    let per_pixel = log_sigma + c(HALF_LN_2PI);
    Zip::from(means.rows()).and(x.rows()).map_collect(|m, x| {
        Zip::from(&m).and(&x).fold(F::zero(), |acc, &m, &x| {
            acc + per_pixel + (x - m) * (x - m) * inv_2var
        })
    })
}
// ANCHOR_END: terms

// ANCHOR: log_mean_exp
/// `ln((1/n) sum_i e^{v_i})`, computed stably: with `m = max v`,
/// `m + ln((1/n) sum_i e^{v_i - m})`, so no exponent is positive and at least one term is 1.
/// (A log-weight of an image is around -100 nats: `e^-100` would already be `0` in `f32`.)
pub fn log_mean_exp(v: &[f64]) -> f64 {
    assert!(!v.is_empty(), "log_mean_exp: no values");
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    let s: f64 = v.iter().map(|&x| (x - m).exp()).sum();
    m + (s / v.len() as f64).ln()
}
// ANCHOR_END: log_mean_exp

/// An array of independent standard normal draws of the float type, from `rng`.
pub fn standard_normal<F: Float>(shape: (usize, usize), rng: &mut impl Rng) -> Array2<F> {
    Array2::from_shape_simple_fn(shape, || c::<F>(rng.sample::<f64, _>(StandardNormal)))
}
