//! The VAE chapter: gradient checks of the whole loss for both decoders, the defining
//! properties (closed-form KL, the deterministic autoencoder at eps = 0, the Gaussian
//! likelihood, the importance-sampled likelihood and its relation to the ELBO, the unbiased
//! gradient estimators), parameter names, and the chapter program's `--quick` path.

mod common;

use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::math::probability::normal_log_density;
use dlfs::param::{count, names, zero_grads};
use dlfs::vae::{
    LOGVAR_MAX, LOGVAR_MIN, Likelihood, Vae, bernoulli_nll, gaussian_nll, kl_to_standard_normal,
    log_mean_exp, standard_normal,
};
use ndarray::{Array1, Array2, Axis, array};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A tiny VAE, `7 -> 6 -> (2 x 3)` and `3 -> 6 -> 7`, with non-zero biases, so every path of the
/// model carries a gradient.
fn tiny(likelihood: Likelihood, seed: u64) -> Vae<f64> {
    let mut r = rng(seed);
    let mut model = Vae::<f64>::new(7, &[6], 3, likelihood, &mut r);
    for layer in model
        .encoder
        .layers
        .iter_mut()
        .chain(model.decoder.layers.iter_mut())
    {
        layer.b.value =
            Array1::random_using(layer.output(), Normal::new(0.0, 0.3).unwrap(), &mut r);
    }
    if let Some(p) = &mut model.log_sigma {
        p.value[0] = -0.4;
    }
    model
}

/// Inputs in (0, 1) (real-valued: the loss is defined for them with either decoder, and the
/// input gradient is checked in every direction).
fn inputs(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    Array2::random_using(
        (rows, cols),
        Uniform::new(0.05, 0.95).unwrap(),
        &mut rng(seed),
    )
}

/// The smallest distance of any ReLU input (encoder or decoder) from the kink at zero, and
/// whether every log-variance is inside the clamp: the finite differences must see a smooth
/// function.
fn smooth_at(model: &Vae<f64>, x: &Array2<f64>, eps: &Array2<f64>) -> f64 {
    let a = model.encoder.layers[0].infer(x);
    let (mu, logvar) = model.encode(x);
    assert!(
        logvar
            .iter()
            .all(|&v| v > LOGVAR_MIN + 1.0 && v < LOGVAR_MAX - 1.0)
    );
    let z = &mu + &(logvar.mapv(|v| (0.5 * v).exp()) * eps);
    let b = model.decoder.layers[0].infer(&z);
    a.iter()
        .chain(b.iter())
        .fold(f64::INFINITY, |m, v| m.min(v.abs()))
}

/// Checks the gradient of the batch loss `mean(reconstruction + kl_weight * kl)` with respect
/// to every parameter and the input, at a fixed `eps`.
fn check_whole_loss(model: &mut Vae<f64>, x: &Array2<f64>, eps: &Array2<f64>, kl_weight: f64) {
    assert!(
        smooth_at(model, x, eps) > 1e-3,
        "a ReLU input sits near its kink: pick another seed"
    );
    let check = GradCheck::default();
    let report = check.params(
        model,
        |m| m.forward(x, eps).0.loss(kl_weight),
        |m| {
            let (_, cache) = m.forward(x, eps);
            m.backward(&cache, kl_weight);
        },
    );
    let expected = 8 + usize::from(model.log_sigma.is_some());
    assert_eq!(report.checks.len(), expected, "{report}");
    assert!(
        report.checks.iter().all(|c| c.analytic_norm > 0.0),
        "every parameter gets a gradient:\n{report}"
    );
    report.assert_below(TOLERANCE);
    let (_, cache) = model.forward(x, eps);
    let dx = model.backward(&cache, kl_weight);
    let c = check.input(x, &dx, |x| model.forward(x, eps).0.loss(kl_weight));
    assert!(c.rel_error < TOLERANCE, "dx: {c:?}");
    assert!(c.analytic_norm > 0.0);
}

// ANCHOR: gradcheck
#[test]
fn gradient_check_of_the_whole_loss_bernoulli_decoder() {
    let mut model = tiny(Likelihood::Bernoulli, 1);
    let x = inputs(5, 7, 10);
    let eps = standard_normal((5, 3), &mut rng(11));
    check_whole_loss(&mut model, &x, &eps, 1.0);
    // A KL weight other than one (the pitfall of averaging the reconstruction over pixels
    // amounts to one) is differentiated correctly too.
    check_whole_loss(&mut model, &x, &eps, 7.0);
}

#[test]
fn gradient_check_of_the_whole_loss_gaussian_decoder() {
    let mut model = tiny(Likelihood::Gaussian, 2);
    let x = inputs(5, 7, 20);
    let eps = standard_normal((5, 3), &mut rng(21));
    check_whole_loss(&mut model, &x, &eps, 1.0);
}
// ANCHOR_END: gradcheck

#[test]
fn with_the_noise_at_zero_the_model_is_a_deterministic_autoencoder() {
    for (likelihood, seed) in [(Likelihood::Bernoulli, 3), (Likelihood::Gaussian, 4)] {
        let mut model = tiny(likelihood, seed);
        let x = inputs(4, 7, seed + 30);
        let zero = Array2::zeros((4, 3));
        let (elbo, cache) = model.forward(&x, &zero);
        // z is the mean, and the reconstruction is the decoding of the mean.
        assert_eq!(cache.z(), cache.mu());
        assert_eq!(cache.output(), &model.decode(&model.encode(&x).0));
        // The log-variance only enters through the KL: changing the log-variance head leaves
        // the reconstruction term exactly as it was.
        let mut other = model.clone();
        let head = &mut other.encoder.layers[1];
        head.w
            .value
            .slice_mut(ndarray::s![.., 3..])
            .mapv_inplace(|w| 3.0 * w + 0.1);
        let (elbo2, _) = other.forward(&x, &zero);
        assert_eq!(elbo.reconstruction, elbo2.reconstruction);
        assert_ne!(elbo.kl, elbo2.kl);
        // And the gradients of this deterministic autoencoder (plus the KL) check.
        check_whole_loss(&mut model, &x, &zero, 1.0);
    }
}

#[test]
fn a_fresh_eps_in_backward_fails_the_gradient_check() {
    // The checker is shown a broken backward: the cache of a forward pass with other noise
    // than the loss it differentiates. It must reject it.
    let mut model = tiny(Likelihood::Bernoulli, 5);
    let x = inputs(5, 7, 50);
    let eps = standard_normal((5, 3), &mut rng(51));
    let other = standard_normal((5, 3), &mut rng(52));
    let report = GradCheck::default().params(
        &mut model,
        |m| m.forward(&x, &eps).0.loss(1.0),
        |m| {
            let (_, cache) = m.forward(&x, &other);
            m.backward(&cache, 1.0);
        },
    );
    assert!(report.max_rel_error() > 0.05, "{report}");
}

#[test]
fn backward_adds_into_the_gradients() {
    let mut model = tiny(Likelihood::Gaussian, 6);
    let x = inputs(3, 7, 60);
    let eps = standard_normal((3, 3), &mut rng(61));
    let (_, cache) = model.forward(&x, &eps);
    zero_grads(&mut model);
    model.backward(&cache, 1.0);
    let once = model.clone();
    model.backward(&cache, 1.0);
    for (a, b) in model.encoder.layers.iter().zip(&once.encoder.layers) {
        assert!(
            (&a.w.grad - &(&b.w.grad * 2.0))
                .iter()
                .all(|d| d.abs() < 1e-12)
        );
    }
    let (a, b) = (
        model.log_sigma.as_ref().unwrap(),
        once.log_sigma.as_ref().unwrap(),
    );
    assert!((a.grad[0] - 2.0 * b.grad[0]).abs() < 1e-12 && b.grad[0] != 0.0);
    // Training's backward_params leaves out dL/dx but gives the same parameter gradients.
    let mut other = once.clone();
    zero_grads(&mut other);
    other.backward_params(&cache, 1.0);
    let (g1, g2) = (grads(&once), grads(&other));
    assert_eq!(g1.len(), 9);
    for (a, b) in g1.iter().zip(&g2) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12));
    }
}

fn grads(model: &Vae<f64>) -> Vec<Vec<f64>> {
    use dlfs::param::Params;
    let mut out = Vec::new();
    model.visit_ref("", &mut |_, p| out.push(p.grad.iter().copied().collect()));
    out
}

#[test]
fn parameter_names_and_count() {
    let mut r = rng(7);
    let model = Vae::<f32>::new(784, &[400], 20, Likelihood::Bernoulli, &mut r);
    assert_eq!(
        names(&model),
        [
            "encoder.layers.0.w",
            "encoder.layers.0.b",
            "encoder.layers.1.w",
            "encoder.layers.1.b",
            "decoder.layers.0.w",
            "decoder.layers.0.b",
            "decoder.layers.1.w",
            "decoder.layers.1.b",
        ]
    );
    // 784*400 + 400, 400*40 + 40 (mu and logvar heads), 20*400 + 400, 400*784 + 784.
    assert_eq!(
        count(&model),
        313_600 + 400 + 16_000 + 40 + 8_000 + 400 + 313_600 + 784
    );
    let gaussian = Vae::<f32>::new(784, &[400], 20, Likelihood::Gaussian, &mut r);
    let n = names(&gaussian);
    assert_eq!(n.len(), 9);
    assert_eq!(n[8], "log_sigma");
    assert_eq!(count(&gaussian), count(&model) + 1);
    assert_eq!(gaussian.likelihood(), Likelihood::Gaussian);
    assert_eq!((model.input(), model.latent()), (784, 20));
}

// ANCHOR: kl_tests
#[test]
fn the_closed_form_kl_is_zero_at_the_prior_and_matches_monte_carlo() {
    // Exactly zero when q is the prior.
    let zero = Array2::<f64>::zeros((3, 5));
    assert_eq!(kl_to_standard_normal(&zero, &zero), Array1::<f64>::zeros(3));
    assert_eq!(
        kl_to_standard_normal(&Array2::<f32>::zeros((2, 4)), &Array2::zeros((2, 4))),
        Array1::<f32>::zeros(2)
    );
    // A Monte Carlo estimate: the mean of ln q(z) - ln N(z; 0, I) over n draws z ~ q. Its
    // standard error is the sample standard deviation over sqrt(n); the closed form must lie
    // within four of them (and a KL with the wrong sign of logvar, or missing the -1, would
    // miss by far more).
    let mut r = rng(8);
    let mu: Array2<f64> = array![[0.5, -1.2, 0.0], [2.0, 0.3, -0.7]];
    let logvar: Array2<f64> = array![[-0.5, 0.4, -2.0], [0.0, 1.1, -0.3]];
    let exact = kl_to_standard_normal(&mu, &logvar);
    let n = 200_000;
    for i in 0..2 {
        let samples: Vec<f64> = (0..n)
            .map(|_| {
                let eps = standard_normal::<f64>((1, 3), &mut r);
                (0..3)
                    .map(|j| {
                        let s = (0.5 * logvar[[i, j]]).exp();
                        let z = mu[[i, j]] + s * eps[[0, j]];
                        normal_log_density(z, mu[[i, j]], s) - normal_log_density(z, 0.0, 1.0)
                    })
                    .sum()
            })
            .collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se = (var / n as f64).sqrt();
        assert!(
            (mean - exact[i]).abs() < 4.0 * se,
            "row {i}: Monte Carlo {mean} +- {se}, closed form {}",
            exact[i]
        );
        assert!(se < 0.01 * exact[i], "the test is sharp: SE {se}");
    }
}
// ANCHOR_END: kl_tests

#[test]
fn the_gaussian_likelihood_matches_a_hand_computation() {
    // Two pixels, x = (0.2, 0.9), means (0.5, 0.4), ln sigma = -1:
    // -ln p = 2 (ln sigma + ln(2 pi) / 2) + ((0.3)^2 + (0.5)^2) / (2 e^-2)
    //       = -2 + 1.8378770664093453 + 0.34 e^2 / 2 = 1.0940166... (with e^2 = 7.38905609893065).
    let x = array![[0.2, 0.9]];
    let m = array![[0.5, 0.4]];
    let hand = -2.0 + (2.0 * std::f64::consts::PI).ln() + 0.34 * 7.389_056_098_930_65 / 2.0;
    let nll = gaussian_nll(&m, -1.0, &x.view());
    assert!((nll[0] - hand).abs() < 1e-12, "{} vs {hand}", nll[0]);
    assert!((nll[0] - 1.094_016_603_2).abs() < 1e-9, "{}", nll[0]);
    // And it is the sum of the probability chapter's log-densities, negated.
    let sigma = (-1.0f64).exp();
    let sum = normal_log_density(0.2, 0.5, sigma) + normal_log_density(0.9, 0.4, sigma);
    assert!((nll[0] + sum).abs() < 1e-12);
}

#[test]
fn the_bernoulli_likelihood_is_binary_cross_entropy_and_stable() {
    let logits = array![[2.0, -1.0, 0.0], [5.0, -4.0, 0.5]];
    let x = array![[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]];
    let nll = bernoulli_nll(&logits, &x.view());
    let naive = |o: f64, x: f64| {
        let p = 1.0 / (1.0 + (-o).exp());
        -(x * p.ln() + (1.0 - x) * (1.0 - p).ln())
    };
    for i in 0..2 {
        let want: f64 = (0..3).map(|j| naive(logits[[i, j]], x[[i, j]])).sum();
        assert!((nll[i] - want).abs() < 1e-9, "{} vs {want}", nll[i]);
    }
    // Large logits: the confident right answers cost almost nothing, the confident wrong ones
    // cost the logit itself; beyond f32's exp range (e^89 overflows) the answer stays finite.
    let big = array![[30.0_f32, -30.0, 200.0, -200.0]];
    let nll = bernoulli_nll(&big, &array![[1.0_f32, 0.0, 0.0, 1.0]].view());
    assert!((nll[0] - 400.0).abs() < 1e-3, "{}", nll[0]);
    let right = bernoulli_nll(&array![[30.0_f64, -30.0]], &array![[1.0, 0.0]].view());
    assert!(
        (right[0] - 2.0 * (-30f64).exp()).abs() < 1e-25,
        "{}",
        right[0]
    );
}

#[test]
fn extreme_encoder_outputs_stay_finite() {
    // Huge log-variances are clamped (and then pass no gradient), so the loss and every
    // gradient stay finite in f32.
    let mut r = rng(9);
    let mut model = Vae::<f32>::new(6, &[5], 2, Likelihood::Bernoulli, &mut r);
    model.encoder.layers[1].b.value.fill(500.0);
    let x = Array2::<f32>::ones((3, 6));
    let (elbo, cache) = model.forward_train(&x, &mut r);
    assert!(cache.logvar().iter().all(|&v| v == LOGVAR_MAX as f32));
    assert!(elbo.loss(1.0).is_finite());
    zero_grads(&mut model);
    model.backward(&cache, 1.0);
    assert!(dlfs::param::grad_norm(&model).is_finite());
}

#[test]
fn log_mean_exp_is_stable() {
    assert!((log_mean_exp(&[0.0, 0.0]) - 0.0).abs() < 1e-15);
    assert!(
        (log_mean_exp(&[1.0, 2.0, 3.0]) - ((1f64.exp() + 2f64.exp() + 3f64.exp()) / 3.0).ln())
            .abs()
            < 1e-12
    );
    // Log-weights of an image are around -100 or lower: exp underflows, log-sum-exp does not.
    let v = [-1000.0, -1001.0, -1002.0];
    let want = -1000.0 + ((1.0 + (-1f64).exp() + (-2f64).exp()) / 3.0_f64).ln();
    assert!((log_mean_exp(&v) - want).abs() < 1e-12);
    assert_eq!(log_mean_exp(&[f64::NEG_INFINITY]), f64::NEG_INFINITY);
}

// ANCHOR: is_tests
#[test]
fn the_importance_sampled_estimate_is_the_elbo_at_one_sample() {
    let model = tiny(Likelihood::Bernoulli, 10);
    let x = inputs(3, 7, 100);
    let mut r = rng(101);
    for i in 0..3 {
        // With one sample it is exactly the one-sample ELBO with a sampled KL,
        // ln p(x | z) + ln p(z) - ln q(z | x), at the same noise.
        let eps = standard_normal::<f64>((1, 3), &mut r);
        let w = model.log_weights(x.row(i), &eps)[0];
        let (elbo, cache) = model.forward(&x.slice(ndarray::s![i..=i, ..]).to_owned(), &eps);
        let (mu, logvar, z) = (cache.mu(), cache.logvar(), cache.z());
        let log_q: f64 = (0..3)
            .map(|j| normal_log_density(z[[0, j]], mu[[0, j]], (0.5 * logvar[[0, j]]).exp()))
            .sum();
        let log_p: f64 = (0..3)
            .map(|j| normal_log_density(z[[0, j]], 0.0, 1.0))
            .sum();
        let one_sample = -elbo.reconstruction[0] + log_p - log_q;
        assert!((w - one_sample).abs() < 1e-10, "{w} vs {one_sample}");
        // And its average over many samples is the ELBO with the closed-form KL.
        let n = 50_000;
        let eps = standard_normal::<f64>((n, 3), &mut r);
        let ws = model.log_weights(x.row(i), &eps);
        let (mean, se) = mean_and_se(ws.as_slice().unwrap());
        let xs = x
            .slice(ndarray::s![i..=i, ..])
            .broadcast((n, 7))
            .unwrap()
            .to_owned();
        let elbo = model.forward(&xs, &eps).0;
        let recon = elbo.reconstruction.mean().unwrap();
        let analytic = -recon - elbo.kl[0];
        assert!(
            (mean - analytic).abs() < 4.0 * se,
            "mean of k = 1 estimates {mean} +- {se}, ELBO {analytic}"
        );
    }
}

#[test]
fn the_importance_sampled_estimate_grows_with_k_towards_the_likelihood() {
    // A model with one latent coordinate, whose ln p(x) = ln integral p(x | z) N(z; 0, 1) dz
    // can be computed by quadrature. The mean over repeats of the k-sample estimate must not
    // decrease as k grows (up to its standard error), must rise clearly from k = 1 to 256, and
    // must stay below ln p(x), approaching it.
    let mut r = rng(12);
    let mut model = Vae::<f64>::new(5, &[4], 1, Likelihood::Bernoulli, &mut r);
    model.encoder.layers[1].b.value[1] = -1.0; // a narrow posterior, a loose bound
    let x = array![[1.0, 0.0, 1.0, 1.0, 0.0]];
    let (dz, lo) = (1e-3, -12.0);
    let zs = Array2::from_shape_fn((24_000, 1), |(i, _)| lo + (i as f64 + 0.5) * dz);
    let nll = bernoulli_nll(&model.decode(&zs), &x.broadcast((24_000, 5)).unwrap());
    let log_terms: Vec<f64> = (0..24_000)
        .map(|i| -nll[i] + normal_log_density(zs[[i, 0]], 0.0, 1.0))
        .collect();
    let log_px = log_mean_exp(&log_terms) + (24_000.0 * dz).ln();
    let repeats = 4000;
    let mut previous: Option<(f64, f64)> = None;
    let mut first = None;
    for k in [1, 4, 16, 64, 256] {
        let estimates: Vec<f64> = (0..repeats)
            .map(|_| model.importance_log_likelihood(&x, k, &mut r)[0])
            .collect();
        let (mean, se) = mean_and_se(&estimates);
        assert!(
            mean < log_px + 4.0 * se,
            "k = {k}: {mean} above ln p(x) = {log_px}"
        );
        if let Some((m, s)) = previous {
            assert!(
                mean > m - 3.0 * (s * s + se * se).sqrt(),
                "k = {k}: {mean} < {m}"
            );
        }
        previous = Some((mean, se));
        first.get_or_insert((mean, se));
    }
    let ((m1, s1), (m256, s256)) = (first.unwrap(), previous.unwrap());
    assert!(
        m256 - m1 > 10.0 * (s1 * s1 + s256 * s256).sqrt(),
        "{m1} -> {m256}"
    );
    assert!(
        log_px - m256 < 0.1 * (log_px - m1),
        "k = 256 closes most of the gap"
    );
}
// ANCHOR_END: is_tests

fn mean_and_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn the_reparameterised_and_score_function_estimators_agree_on_average() {
    // All three estimators are unbiased for the same gradient; the score function's variance
    // is much larger. (The chapter program measures the ratio on the trained model.)
    let model = tiny(Likelihood::Bernoulli, 13);
    let x = inputs(1, 7, 130);
    let s = 100_000;
    let eps = standard_normal::<f64>((s, 3), &mut rng(131));
    let g = model.gradient_estimates(x.row(0), &eps);
    for j in 0..6 {
        let col = |a: &Array2<f64>| a.column(j).to_vec();
        let (m_r, se_r) = mean_and_se(&col(&g.reparameterisation));
        let (m_s, se_s) = mean_and_se(&col(&g.score_function));
        let (m_b, se_b) = mean_and_se(&col(&g.score_function_baseline));
        let tol = |a: f64, b: f64| 4.0 * (a * a + b * b).sqrt();
        assert!((m_r - m_s).abs() < tol(se_r, se_s), "{j}: {m_r} vs {m_s}");
        assert!((m_r - m_b).abs() < tol(se_r, se_b), "{j}: {m_r} vs {m_b}");
        assert!(
            se_s > 3.0 * se_r && se_b > se_r,
            "{j}: {se_r} {se_b} {se_s}"
        );
    }
    // The reparameterised estimate for mu, averaged, is the gradient of the expected
    // reconstruction term: check it against the model's own backward pass, which computes
    // the same quantity (with the opposite sign, for the loss) for a batch of copies.
    let xs = x.broadcast((s, 7)).unwrap().to_owned();
    let mut m = model.clone();
    let (_, cache) = m.forward(&xs, &eps);
    zero_grads(&mut m);
    let dx_unused = m.backward(&cache, 0.0);
    assert_eq!(dx_unused.dim(), (s, 7));
    let d_mu_head = m.encoder.layers[1].b.grad.clone();
    let mean_r = g.reparameterisation.mean_axis(Axis(0)).unwrap();
    for j in 0..6 {
        assert!(
            (d_mu_head[j] + mean_r[j]).abs() < 1e-9 * (1.0 + mean_r[j].abs()),
            "{j}: {} vs {}",
            -d_mu_head[j],
            mean_r[j]
        );
    }
}

// The chapter program.

use dlfs::runner::parse;
use dlfs::vae::experiment::{Cli, normal_quantile, run};
use std::path::Path;

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("vae", out, seed, run);
}

fn json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

const FIGURES: [&str; 5] = [
    "elbo.svg",
    "reconstructions.svg",
    "samples.svg",
    "manifold.svg",
    "scatter.svg",
];

#[test]
fn quick_run_writes_well_formed_outputs_and_the_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in FIGURES {
        let text = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|_| panic!("{name} missing"));
        assert!(
            text.len() > 500 && text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    let json = json(dir.path());
    let report = &json["report"];
    for (run, epochs) in [(&report["main"], 3), (&report["two_d"]["run"], 3)] {
        let history = run["history"].as_array().unwrap();
        assert_eq!(history.len(), epochs + 1, "epoch 0 and the quick epochs");
        let losses: Vec<f64> = history
            .iter()
            .map(|e| e["train"]["neg_elbo"].as_f64().unwrap())
            .collect();
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]),
            "the training loss must fall: {losses:?}"
        );
        // From about 550 nats (an untrained decoder) to well below.
        assert!(losses[epochs] < 0.6 * losses[0], "{losses:?}");
    }
    // The two terms add up, and the importance-sampled NLL lies below the negative ELBO.
    let test = &report["test"];
    let sum = test["reconstruction"].as_f64().unwrap() + test["kl"].as_f64().unwrap();
    assert!((sum - test["neg_elbo"].as_f64().unwrap()).abs() < 1e-6);
    let imp = &report["importance"];
    assert_eq!(imp["images"], 100);
    assert!(imp["nll"].as_f64().unwrap() < imp["neg_elbo"].as_f64().unwrap());
    // The score function's variance is far above the reparameterised one's.
    let v = report["variance"].as_array().unwrap();
    assert_eq!(v.len(), 3);
    assert!(v[1]["mu"].as_f64().unwrap() > 100.0 * v[0]["mu"].as_f64().unwrap());
    assert_eq!(report["mean_variance"].as_array().unwrap().len(), 20);
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(table.contains("| test | 500 |"), "{table}");
    assert!(table.contains("importance-sampled NLL, k = 20"), "{table}");
    assert_eq!(json["provenance"]["seed"], 3);
    assert!(
        std::fs::read_to_string(dir.path().join("provenance.md"))
            .unwrap()
            .contains("seed 3")
    );
}

#[test]
fn the_same_seed_reproduces_every_output_exactly() {
    let [a, b, c] = common::three_quick_runs(quick, "5", "6");
    for name in FIGURES.iter().chain(&["results.md"]) {
        let (x, y) = (
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    let read = |d: &tempfile::TempDir| std::fs::read(d.path().join("results.md")).unwrap();
    assert!(
        read(&a) != read(&c),
        "another seed should give other numbers"
    );
}

#[test]
fn a_saved_model_loads_and_scores_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vae.safetensors");
    let (trained, loaded) = (dir.path().join("trained"), dir.path().join("loaded"));
    let args = |extra: &[&str], out: &Path| {
        let mut v = vec![
            "vae",
            "--quick",
            "--no-2d",
            "--seed",
            "4",
            "--out",
            out.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        parse::<Cli>(v).unwrap()
    };
    run(args(&["--save", file.to_str().unwrap()], &trained)).unwrap();
    run(args(&["--load", file.to_str().unwrap()], &loaded)).unwrap();
    let test = &json(&trained)["report"]["test"];
    let table = std::fs::read_to_string(loaded.join("results.md")).unwrap();
    let row = format!(
        "| test | {:.2} | {:.2} | {:.2} |",
        test["neg_elbo"].as_f64().unwrap(),
        test["reconstruction"].as_f64().unwrap(),
        test["kl"].as_f64().unwrap()
    );
    assert!(table.contains(&row), "{row} not in:\n{table}");
    assert!(
        !trained.join("scatter.svg").exists(),
        "--no-2d skips the 2-D model"
    );
    // A model of another shape is refused with a sentence.
    let err = run(args(
        &["--load", file.to_str().unwrap(), "--latent", "5"],
        &loaded,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("this model is"), "{err}");
}

#[test]
fn the_gaussian_decoder_trains_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let cli: Cli = parse([
        "vae",
        "--quick",
        "--no-2d",
        "--decoder",
        "gaussian",
        "--out",
        out,
    ])
    .unwrap();
    run(cli).unwrap();
    let json = json(dir.path());
    let history = json["report"]["main"]["history"].as_array().unwrap();
    let losses: Vec<f64> = history
        .iter()
        .map(|e| e["train"]["neg_elbo"].as_f64().unwrap())
        .collect();
    assert!(
        losses.iter().all(|l| l.is_finite()) && losses[3] < losses[0],
        "{losses:?}"
    );
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(
        table.contains("grey levels") && !table.contains("paper"),
        "{table}"
    );
}

#[test]
fn the_normal_quantile_inverts_the_cdf() {
    assert!(normal_quantile(0.5).abs() < 1e-12);
    assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
    assert!((normal_quantile(0.025) + 1.959_963_984_540_054).abs() < 1e-9);
}

#[test]
fn bad_flags_are_errors() {
    for args in [
        vec!["vae", "--bogus"],
        vec!["vae", "--epochs", "0"],
        vec!["vae", "--latent", "0"],
        vec!["vae", "--hidden", "0"],
        vec!["vae", "--batch-size", "0"],
        vec!["vae", "--decoder", "poisson"],
        vec!["vae", "--importance-samples", "0"],
        vec!["vae", "--tune", "--save", "x"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    for (flag, value) in [("--lr", "NaN"), ("--lr", "-1"), ("--kl-weight", "-1")] {
        let cli: Cli = parse(["vae", "--quick", &format!("{flag}={value}")]).unwrap();
        assert!(
            run(cli).unwrap_err().to_string().contains(flag),
            "{flag} {value}"
        );
    }
}

#[test]
fn the_program_fails_in_one_line_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    let not_a_checkpoint = dir.path().join("garbage.safetensors");
    std::fs::write(&not_a_checkpoint, b"not a checkpoint").unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--bogus".into()], 2, "--bogus"),
        (vec!["--decoder".into(), "poisson".into()], 2, "poisson"),
        (
            vec!["--quick".into(), "--data".into(), "/no/such/dir".into()],
            1,
            "/no/such/dir",
        ),
        (
            vec![
                "--quick".into(),
                "--load".into(),
                missing.display().to_string(),
            ],
            1,
            "missing.safetensors",
        ),
        (
            vec![
                "--quick".into(),
                "--load".into(),
                not_a_checkpoint.display().to_string(),
            ],
            1,
            "not a safetensors file",
        ),
    ];
    for (args, code, needle) in cases {
        common::assert_fails_in_one_line("vae", &args, code, needle);
    }
}
