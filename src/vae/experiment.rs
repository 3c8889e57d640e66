//! The VAE chapter's experiment: a 784-400-20 encoder and a 20-400-784 Bernoulli decoder
//! trained with Adam on the shipped MNIST subset binarised at 0.5, the last 1,000 training
//! images held back for validation, scored on the 2,000 test images: the negative ELBO with its
//! two terms, the importance-sampled log-likelihood, the active latent units, and the variance
//! of the reparameterised gradient against the score-function estimator. A second model with a
//! two-dimensional latent space, trained beside the first on the other core, gives the decoded
//! manifold and the scatter of the test set's posterior means.

use crate::data::batches::{ordered_batches, shuffled_batches};
use crate::data::mnist::{MnistSplits, Split};

use crate::optim::{OptimizerArgs, OptimizerConfig};
use crate::param::count;
use crate::plot::{Labels, Series, Tile, image_grid, label_scatter, line_chart};
use crate::runner::{CommonArgs, NonFinite, Run, Table, chapter_dir, train_step};
use crate::vae::{Likelihood, Vae, standard_normal};
use anyhow::Result;
use indicatif::ProgressBar;
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

// ANCHOR: config
/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Width of the encoder's and the decoder's hidden layer.
    pub hidden: usize,
    /// Latent coordinates of the main model.
    pub latent: usize,
    /// The decoder: Bernoulli on binarised pixels, or Gaussian on grey levels.
    pub likelihood: Likelihood,
    /// Pixels above this grey level become 1, the others 0 (Bernoulli decoder only).
    pub threshold: f32,
    /// Passes over the training split.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// The optimiser and its settings.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// The weight of the KL term in the training loss (1 for the ELBO).
    pub kl_weight: f32,
    /// Importance samples per test image for the log-likelihood estimate.
    pub importance_samples: usize,
    /// How many test images (from the first) the importance-sampled estimate scores.
    pub importance_images: usize,
    /// Test images the gradient-variance measurement uses.
    pub variance_images: usize,
    /// Samples of each gradient estimator per image.
    pub variance_samples: usize,
    /// Also train the model with a two-dimensional latent space (manifold and scatter).
    pub latent_2d: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hidden: 400,
            latent: 20,
            likelihood: Likelihood::Bernoulli,
            threshold: 0.5,
            epochs: 30,
            batch_size: 128,
            optimizer: OptimizerConfig::adam(1e-3),
            kl_weight: 1.0,
            importance_samples: 1000,
            importance_images: 2000,
            variance_images: 100,
            variance_samples: 1000,
            latent_2d: true,
        }
    }
}
// ANCHOR_END: config

/// The negative ELBO of a split and its two terms, mean nats per image.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Score {
    /// Reconstruction plus KL.
    pub neg_elbo: f64,
    /// `-ln p(x | z)` at one sample `z ~ q(z | x)`.
    pub reconstruction: f64,
    /// `KL(q(z | x) || p(z))`.
    pub kl: f64,
}

/// Scores after one epoch (epoch 0 is the untrained model).
#[derive(Clone, Debug, Serialize)]
pub struct Epoch {
    /// 0 before training, then 1, 2, ...
    pub epoch: usize,
    /// On the whole training split, with the weights at the end of the epoch.
    pub train: Score,
    /// On the validation split.
    pub validation: Score,
    /// Mean training loss over the epoch's steps, as the optimiser saw it.
    pub step_loss: f64,
}

/// One training run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// Latent coordinates.
    pub latent: usize,
    /// The KL weight of the training loss.
    pub kl_weight: f32,
    /// Trainable parameters.
    pub params: usize,
    /// Steps taken.
    pub steps: usize,
    /// Scores per epoch.
    pub history: Vec<Epoch>,
}

/// The importance-sampled estimate of the test log-likelihood.
#[derive(Clone, Debug, Serialize)]
pub struct Importance {
    /// Samples per image.
    pub samples: usize,
    /// Images scored (the first ones of the test split).
    pub images: usize,
    /// The negative ELBO of the same images (one sample each), for comparison.
    pub neg_elbo: f64,
    /// The estimate of `-ln p(x)`, mean nats per image.
    pub nll: f64,
    /// The standard error of that mean over images.
    pub nll_se: f64,
}

/// The variance of one gradient estimator.
#[derive(Clone, Debug, Serialize)]
pub struct Variance {
    /// Which estimator.
    pub estimator: String,
    /// Mean over images and coordinates of the variance of one sample's estimate of the
    /// gradient with respect to `mu`.
    pub mu: f64,
    /// The same for the gradient with respect to `logvar`.
    pub logvar: f64,
}

/// The two-dimensional model's results.
#[derive(Clone, Debug, Serialize)]
pub struct TwoD {
    /// Its training run.
    pub run: TrainReport,
    /// Its test scores.
    pub test: Score,
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Images in the training, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// The main model's training run.
    pub main: TrainReport,
    /// The main model on the test split.
    pub test: Score,
    /// The importance-sampled log-likelihood.
    pub importance: Importance,
    /// The variance over the test split of each latent coordinate's posterior mean.
    pub mean_variance: Vec<f64>,
    /// How many of those exceed [`ACTIVE_THRESHOLD`].
    pub active_units: usize,
    /// The gradient estimators' variances, on the trained model.
    pub variance: Vec<Variance>,
    /// The two-dimensional model, if trained.
    pub two_d: Option<TwoD>,
}

/// A latent unit is *active* when the variance of its posterior mean over the data exceeds this
/// (Burda, Grosse and Salakhutdinov, 2016).
pub const ACTIVE_THRESHOLD: f64 = 0.01;

/// The runs draw their initial weights, batch orders, training noise and evaluation noise from
/// separate streams of the one seed (the kit's `runner::stream`, re-exported here).
pub use crate::runner::stream;

/// The noise stream of evaluations: every evaluation of a split starts it afresh, so two
/// evaluations of the same weights give the same numbers and curves compare like with like.
const EVAL_STREAM: u64 = 3;

/// Mean negative ELBO and its terms of `model` on `split`, one sample of `z` per image.
pub fn evaluate(model: &Vae<f32>, split: &Split, seed: u64) -> Score {
    let mut rng = stream(seed, EVAL_STREAM);
    let (mut rec, mut kl) = (0.0, 0.0);
    for idx in ordered_batches(split.len(), 500) {
        let x = split.images.select(Axis(0), &idx);
        let (elbo, _) = model.forward_train(&x, &mut rng);
        rec += elbo
            .reconstruction
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>();
        kl += elbo.kl.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    let n = split.len().max(1) as f64;
    Score {
        neg_elbo: (rec + kl) / n,
        reconstruction: rec / n,
        kl: kl / n,
    }
}

// ANCHOR: train
/// Trains a fresh VAE with `latent` coordinates on `train`, scoring the training and
/// validation splits after every epoch. `streams` is the first of three generator streams
/// (initial weights, batch order, noise) the run draws from.
pub fn train(
    config: &Config,
    latent: usize,
    train: &Split,
    validation: &Split,
    (seed, streams): (u64, u64),
    progress: &ProgressBar,
) -> Result<(Vae<f32>, TrainReport)> {
    let (mut init, mut order, mut noise) = (
        stream(seed, streams),
        stream(seed, streams + 1),
        stream(seed, streams + 2),
    );
    let input = train.images.ncols();
    let mut model = Vae::<f32>::new(
        input,
        &[config.hidden],
        latent,
        config.likelihood,
        &mut init,
    );
    let mut optimizer = config.optimizer.build::<f32>();
    let score = |m: &Vae<f32>, epoch, step_loss| Epoch {
        epoch,
        train: evaluate(m, train, seed),
        validation: evaluate(m, validation, seed),
        step_loss,
    };
    let mut history = vec![score(&model, 0, f64::NAN)];
    let mut step = 0;
    for epoch in 1..=config.epochs {
        let batches = shuffled_batches(train.len(), config.batch_size, &mut order);
        let mut loss_sum = 0.0;
        for idx in &batches {
            step += 1;
            let x = train.images.select(Axis(0), idx);
            loss_sum += train_step(step, &mut model, &mut optimizer, |model| {
                let (elbo, cache) = model.forward_train(&x, &mut noise);
                model.backward_params(&cache, config.kl_weight);
                elbo.loss(config.kl_weight)
            })?;
        }
        history.push(score(&model, epoch, loss_sum / batches.len() as f64));
        progress.inc(1);
    }
    let report = TrainReport {
        latent,
        kl_weight: config.kl_weight,
        params: count(&model),
        steps: step,
        history,
    };
    Ok((model, report))
}
// ANCHOR_END: train

// ANCHOR: importance
/// The importance-sampled estimate of the mean test negative log-likelihood, with `k` samples
/// per image. The images are cut into two fixed halves scored on two threads, each half with
/// its own generator stream, so the result does not depend on the number of cores.
pub fn importance_nll(model: &Vae<f32>, x: &Array2<f32>, k: usize, seed: u64) -> (f64, f64) {
    let half = x.nrows().div_ceil(2);
    let (a, b) = (
        x.slice(ndarray::s![..half, ..]).to_owned(),
        x.slice(ndarray::s![half.., ..]).to_owned(),
    );
    let (la, lb) = std::thread::scope(|s| {
        let other = s.spawn(|| model.importance_log_likelihood(&b, k, &mut stream(seed, 5)));
        let mine = model.importance_log_likelihood(&a, k, &mut stream(seed, 4));
        let theirs = other
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (mine, theirs)
    });
    let all: Vec<f64> = la.iter().chain(lb.iter()).map(|v| -v).collect();
    mean_and_se(&all)
}
// ANCHOR_END: importance

fn mean_and_se(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

// ANCHOR: active
/// The variance over `x`'s rows of each latent coordinate's posterior mean `mu_u(x)`: a unit
/// whose mean does not move with the input carries no information about it.
pub fn mean_variance(model: &Vae<f32>, x: &Array2<f32>) -> Vec<f64> {
    let (mu, _) = model.encode(x);
    let mu = mu.mapv(f64::from);
    mu.var_axis(Axis(0), 0.0).to_vec()
}
// ANCHOR_END: active

/// The variance of each gradient estimator on the first `images` rows of `x`, `samples` draws
/// each: per image and coordinate the sample variance of the estimates, then the mean over
/// coordinates and images, separately for the `mu` and the `logvar` coordinates.
pub fn estimator_variance(
    model: &Vae<f32>,
    x: &Array2<f32>,
    samples: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Variance> {
    let d = model.latent();
    let mut sums = [[0.0; 2]; 3];
    for row in x.rows() {
        let eps = standard_normal::<f32>((samples, d), rng);
        let g = model.gradient_estimates(row, &eps);
        for (k, est) in [
            &g.reparameterisation,
            &g.score_function,
            &g.score_function_baseline,
        ]
        .into_iter()
        .enumerate()
        {
            let var = est.var_axis(Axis(0), 1.0);
            sums[k][0] += var.slice(ndarray::s![..d]).mean().unwrap_or(0.0);
            sums[k][1] += var.slice(ndarray::s![d..]).mean().unwrap_or(0.0);
        }
    }
    let n = x.nrows().max(1) as f64;
    [
        "reparameterisation",
        "score function",
        "score function, leave-one-out baseline",
    ]
    .iter()
    .zip(sums)
    .map(|(name, [mu, lv])| Variance {
        estimator: name.to_string(),
        mu: mu / n,
        logvar: lv / n,
    })
    .collect()
}

/// The flags of `cargo run --release --example vae`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "vae",
    about = "Train the VAE chapter's variational autoencoder on MNIST and draw its figures"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    /// The optimiser flags (default: Adam, learning rate 0.001).
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// Examples per training step.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub batch_size: u64,
    /// Latent coordinates of the main model.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub latent: u64,
    /// Width of the hidden layers.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub hidden: u64,
    /// The decoder: `bernoulli` (pixels binarised at 0.5) or `gaussian` (grey levels, one
    /// learned standard deviation).
    #[arg(long, value_enum, default_value_t = Likelihood::Bernoulli)]
    pub decoder: Likelihood,
    /// The weight of the KL term in the training loss; 784 is what averaging the
    /// reconstruction over the pixels instead of summing it amounts to.
    #[arg(long, default_value_t = 1.0)]
    pub kl_weight: f32,
    /// Importance samples per test image for the log-likelihood estimate.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub importance_samples: u64,
    /// Skip the second model, with a two-dimensional latent space.
    #[arg(long)]
    pub no_2d: bool,
    /// Instead of the experiment, compare learning rates on the validation split (the test
    /// split is not used) and write `tuning.md`.
    #[arg(long, conflicts_with_all = ["save", "load"])]
    pub tune: bool,
    /// `--save FILE`, `--load FILE`.
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
}

impl Cli {
    /// The configuration the flags describe, after checking them.
    pub fn config(&self) -> Result<Config> {
        let common = &self.common;
        anyhow::ensure!(
            self.kl_weight.is_finite() && self.kl_weight >= 0.0,
            "--kl-weight must be a number >= 0, got {}",
            self.kl_weight
        );
        let defaults = Config::default();
        let quick = common.quick;
        Ok(Config {
            hidden: self.hidden as usize,
            latent: self.latent as usize,
            likelihood: self.decoder,
            epochs: common.epochs_or(defaults.epochs, 3),
            batch_size: self.batch_size as usize,
            optimizer: self.optimizer.resolve(defaults.optimizer)?,
            kl_weight: self.kl_weight,
            importance_samples: if quick {
                (self.importance_samples as usize).min(20)
            } else {
                self.importance_samples as usize
            },
            importance_images: if quick {
                100
            } else {
                defaults.importance_images
            },
            variance_images: if quick { 10 } else { defaults.variance_images },
            variance_samples: if quick {
                100
            } else {
                defaults.variance_samples
            },
            latent_2d: !self.no_2d,
            ..defaults
        })
    }
}

/// The three MNIST splits, binarised for the Bernoulli decoder, grey levels for the Gaussian.
fn splits(common: &CommonArgs, config: &Config) -> Result<MnistSplits> {
    let splits = MnistSplits::load(&common.data_dir("mnist"), common.quick)?;
    Ok(match config.likelihood {
        Likelihood::Bernoulli => splits.binarised(config.threshold),
        Likelihood::Gaussian => splits,
    })
}

/// How a checkpoint describes the model it holds.
fn describe(config: &Config) -> String {
    format!(
        "784-{h}-{l} encoder, {l}-{h}-784 {d:?} decoder",
        h = config.hidden,
        l = config.latent,
        d = config.likelihood
    )
}

/// Scores a trained main model on the test split: negative ELBO, importance-sampled NLL, the
/// active units.
fn score_test(
    model: &Vae<f32>,
    test: &Split,
    config: &Config,
    seed: u64,
) -> (Score, Importance, Vec<f64>) {
    let score = evaluate(model, test, seed);
    let n = config.importance_images.min(test.len());
    let first: Vec<usize> = (0..n).collect();
    let subset = test.select(&first);
    let (nll, nll_se) = importance_nll(model, &subset.images, config.importance_samples, seed);
    let importance = Importance {
        samples: config.importance_samples,
        images: n,
        neg_elbo: evaluate(model, &subset, seed).neg_elbo,
        nll,
        nll_se,
    };
    (score, importance, mean_variance(model, &test.images))
}

// ANCHOR: program
/// The program: load, train the main model (and the two-dimensional one beside it), score,
/// write figures and tables.
pub fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    let common = &cli.common;
    if let Some(file) = &cli.checkpoint.load {
        return evaluate_checkpoint(common, &config, file);
    }
    let mut run = Run::new(common, &chapter_dir("vae"))?;
    let MnistSplits {
        train: train_split,
        validation,
        test,
    } = splits(common, &config)?;
    if cli.tune {
        run.set_threads(2, Some("the runs side by side"));
        return tune(&run, &config, common.seed, &train_split, &validation);
    }
    let runs = if config.latent_2d { 2 } else { 1 };
    let progress = run.progress((runs * config.epochs) as u64, "vae");
    let seed = common.seed;
    let (main, two_d) = std::thread::scope(|s| {
        let other = config.latent_2d.then(|| {
            s.spawn(|| train(&config, 2, &train_split, &validation, (seed, 10), &progress))
        });
        let main = train(
            &config,
            config.latent,
            &train_split,
            &validation,
            (seed, 0),
            &progress,
        );
        let two_d = other.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        (main, two_d)
    });
    progress.finish_and_clear();
    let (model, main) = main?;
    let two_d = two_d.transpose()?;
    cli.checkpoint
        .save_if_asked(&model, "vae", &describe(&config))?;
    let (test_score, importance, mean_var) = score_test(&model, &test, &config, seed);
    let n = config.variance_images.min(test.len());
    let first: Vec<usize> = (0..n).collect();
    let variance = estimator_variance(
        &model,
        &test.select(&first).images,
        config.variance_samples,
        &mut stream(seed, 6),
    );
    let report = Report {
        sizes: (train_split.len(), validation.len(), test.len()),
        main,
        test: test_score,
        importance,
        active_units: mean_var.iter().filter(|&&v| v > ACTIVE_THRESHOLD).count(),
        mean_variance: mean_var,
        variance,
        two_d: two_d.as_ref().map(|(m, r)| TwoD {
            run: r.clone(),
            test: evaluate(m, &test, seed),
        }),
        config,
    };
    let table = results_table(&report);
    print!("{table}");
    write_figures(
        &run,
        &report,
        &model,
        two_d.as_ref().map(|(m, _)| m),
        &test,
        seed,
    )?;
    run.write("results.md", table.as_bytes())?;
    run.set_threads(
        2,
        Some("the two models train side by side, the importance sampling runs in two halves"),
    );
    run.write_record("provenance.md", "results.json", &report)
}
// ANCHOR_END: program

/// `--load FILE`: scores a saved model instead of training one.
fn evaluate_checkpoint(common: &CommonArgs, config: &Config, file: &Path) -> Result<()> {
    let mut model = Vae::<f32>::new(
        784,
        &[config.hidden],
        config.latent,
        config.likelihood,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    crate::checkpoint::load(&mut model, "vae", &describe(config), file)?;
    let MnistSplits {
        validation, test, ..
    } = splits(common, config)?;
    let (score, importance, mean_var) = score_test(&model, &test, config, common.seed);
    let active = mean_var.iter().filter(|&&v| v > ACTIVE_THRESHOLD).count();
    let v = evaluate(&model, &validation, common.seed);
    let mut table = Table::new(&["split", "negative ELBO", "reconstruction", "KL"], "lrrr");
    for (name, s) in [("validation", v), ("test", score)] {
        table.row([
            name.to_string(),
            format!("{:.2}", s.neg_elbo),
            format!("{:.2}", s.reconstruction),
            format!("{:.2}", s.kl),
        ]);
    }
    let mut t = table.to_string();
    let _ = writeln!(
        t,
        "\nImportance-sampled test NLL (k = {}, {} images): {:.2} nats; {active} active units of {}.",
        importance.samples, importance.images, importance.nll, config.latent
    );
    crate::runner::report_loaded(common, "vae", &t)
}

/// The Markdown results table: the three splits, the importance-sampled likelihood, the
/// active units, the estimators' variances, the two-dimensional model and the paper's numbers.
pub fn results_table(report: &Report) -> String {
    let c = &report.config;
    let (n_train, n_val, n_test) = report.sizes;
    let last = report.main.history.last().expect("epoch 0 at least");
    let nats = |v: f64| format!("{v:.2}");
    let mut splits = Table::new(
        &["split", "images", "negative ELBO", "reconstruction", "KL"],
        "lrrrr",
    );
    for (name, n, s) in [
        ("train", n_train, last.train),
        ("validation", n_val, last.validation),
        ("test", n_test, report.test),
    ] {
        splits.row([
            name.to_string(),
            n.to_string(),
            nats(s.neg_elbo),
            nats(s.reconstruction),
            nats(s.kl),
        ]);
    }
    let mut t = splits.to_string();
    let data = match c.likelihood {
        Likelihood::Bernoulli => format!("binarised at {}", c.threshold),
        Likelihood::Gaussian => "grey levels in [0, 1]".to_string(),
    };
    let _ = writeln!(
        t,
        "\nNats per image, one sample of z per image, after epoch {}. Encoder 784-{h}-({l} + {l}), \
         decoder {l}-{h}-784 ({:?}), ReLU hidden layers, {} parameters; pixels {data}; {}, batch \
         {}, {} steps; KL weight {} in training.",
        last.epoch,
        c.likelihood,
        report.main.params,
        c.optimizer.describe(),
        c.batch_size,
        report.main.steps,
        c.kl_weight,
        h = c.hidden,
        l = c.latent,
    );
    let imp = &report.importance;
    let mut bound = Table::new(
        &[
            &format!("test estimate ({} images)", imp.images),
            "nats per image",
        ],
        "lr",
    );
    bound
        .row(["negative ELBO (one sample)".to_string(), nats(imp.neg_elbo)])
        .row([
            format!("importance-sampled NLL, k = {}", imp.samples),
            format!("{} (standard error {})", nats(imp.nll), nats(imp.nll_se)),
        ])
        .row([
            "gap: how loose the bound is".to_string(),
            nats(imp.neg_elbo - imp.nll),
        ]);
    let _ = write!(t, "\n{bound}");
    let _ = writeln!(
        t,
        "\nActive latent units (variance of the posterior mean over the test images above {}): \
         **{} of {}**. Variances, largest first: {}.",
        ACTIVE_THRESHOLD,
        report.active_units,
        c.latent,
        sorted_desc(&report.mean_variance)
            .iter()
            .map(|v| format!("{v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        t,
        "\nVariance of one sample's estimate of the gradient of E_q[ln p(x | z)] with respect to \
         the posterior's parameters, on the trained model (mean over {} test images and the {} \
         coordinates of each; {} samples per image):\n",
        c.variance_images, c.latent, c.variance_samples
    );
    let base = report
        .variance
        .first()
        .map_or((f64::NAN, f64::NAN), |v| (v.mu, v.logvar));
    let mut variance = Table::new(
        &[
            "estimator",
            "variance, d/d mu",
            "times reparam.",
            "variance, d/d log sigma^2",
            "times reparam.",
        ],
        "lrrrr",
    );
    for v in &report.variance {
        variance.row([
            v.estimator.clone(),
            format!("{:.4}", v.mu),
            format!("{:.0}", v.mu / base.0),
            format!("{:.4}", v.logvar),
            format!("{:.0}", v.logvar / base.1),
        ]);
    }
    t.push_str(&variance.to_string());
    if let Some(two) = &report.two_d {
        let l = two.run.history.last().expect("epoch 0 at least");
        let _ = writeln!(
            t,
            "\nThe same model with a two-dimensional latent space, trained beside it with the same \
             settings: negative ELBO {} (train), {} (validation), **{}** (test), of which KL {} \
             on the test images.",
            nats(l.train.neg_elbo),
            nats(l.validation.neg_elbo),
            nats(two.test.neg_elbo),
            nats(two.test.kl)
        );
    }
    if c.likelihood == Likelihood::Bernoulli {
        let _ = writeln!(
            t,
            "\nThe paper's MNIST results (Kingma and Welling, 2014, Figure 2) are curves of the \
             lower bound against the number of training images seen, with no table; read off by \
             eye at the end of training (10^8 images seen), its test curve for 20 latent \
             dimensions ends near:\n"
        );
        let mut paper = Table::new(
            &["model", "latent dimensions", "test negative ELBO, nats"],
            "lrr",
        );
        paper
            .row([
                "paper: AEVB, 500 tanh hidden units, Adagrad",
                "20",
                "roughly 100 (read off the plot)",
            ])
            .row([
                format!(
                    "this run: {} ReLU hidden units, {}",
                    c.hidden,
                    c.optimizer.describe()
                ),
                c.latent.to_string(),
                nats(report.test.neg_elbo),
            ]);
        t.push_str(&paper.to_string());
        let _ = writeln!(
            t,
            "\nWhat differs: the paper trains on the full MNIST training set, seeing 10^8 images \
             (more than a thousand passes), and evaluates on the official test images; we train on \
             {n_train} images for {} passes and test on {n_test} images carved from the official \
             training set. The paper does not say how it binarised the pixels; we threshold at {}. \
             Its networks have 500 tanh hidden units and are trained with Adagrad and weight \
             decay; ours have {} ReLU units and are trained with Adam.",
            c.epochs, c.threshold, c.hidden
        );
    }
    t
}

fn sorted_desc(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

/// `p` in `(0, 1)` to the standard normal quantile `Phi^-1(p)`, by bisection on `erf`.
pub fn normal_quantile(p: f64) -> f64 {
    assert!(
        p > 0.0 && p < 1.0,
        "normal_quantile: p = {p} is not in (0, 1)"
    );
    let cdf = |z: f64| 0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2));
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Draws the figures: the negative ELBO per epoch, test digits beside their reconstructions,
/// samples from the prior, and (from the two-dimensional model) the decoded manifold and the
/// scatter of the test set's posterior means.
pub fn write_figures(
    run: &Run,
    report: &Report,
    model: &Vae<f32>,
    two_d: Option<&Vae<f32>>,
    test: &Split,
    seed: u64,
) -> Result<()> {
    // Epoch 0 (the untrained model, around 550 nats) would squash the curves.
    let curve = |f: fn(&Epoch) -> f64, name: &str| {
        Series::new(
            name,
            report.main.history[1..]
                .iter()
                .map(|e| (e.epoch as f64, f(e)))
                .collect(),
        )
    };
    let elbo = line_chart(
        Labels {
            title: "VAE on MNIST: negative ELBO per epoch",
            x: "epoch",
            y: "negative ELBO (nats per image)",
        },
        &[
            curve(|e| e.train.neg_elbo, "train"),
            curve(|e| e.validation.neg_elbo, "validation"),
        ],
    )?;
    run.write("elbo.svg", elbo.as_bytes())?;
    let (rows, cols) = (test.rows, test.cols);
    // Test digits, each row of eight followed by a row of their reconstructions (the decoded
    // posterior means).
    let shown: Vec<usize> = (0..16.min(test.len())).collect();
    let x = test.select(&shown);
    let recon = model.mean_image(&model.encode(&x.images).0);
    let mut tiles = Vec::new();
    for start in (0..shown.len()).step_by(8) {
        let end = (start + 8).min(shown.len());
        for i in start..end {
            tiles.push(Tile {
                pixels: x.images.row(i).to_slice().expect("contiguous"),
                caption: format!("test {}", x.labels[i]),
            });
        }
        for i in start..end {
            tiles.push(Tile {
                pixels: recon.row(i).to_slice().expect("contiguous"),
                caption: "recon.".to_string(),
            });
        }
    }
    run.write(
        "reconstructions.svg",
        image_grid(&tiles, rows, cols, 8, 3)?.as_bytes(),
    )?;
    // Samples from the prior: the mean image of p(x | z) for z ~ N(0, I).
    let z = standard_normal::<f32>((32, model.latent()), &mut stream(seed, 7));
    let samples = model.mean_image(&z);
    let tiles: Vec<Tile<'_>> = samples
        .rows()
        .into_iter()
        .map(|r| Tile {
            pixels: r.to_slice().expect("contiguous"),
            caption: String::new(),
        })
        .collect();
    run.write(
        "samples.svg",
        image_grid(&tiles, rows, cols, 8, 3)?.as_bytes(),
    )?;
    if let Some(m2) = two_d {
        write_manifold(run, m2, rows, cols)?;
        let (mu, _) = m2.encode(&test.images);
        let points: Vec<(f64, f64, usize)> = mu
            .rows()
            .into_iter()
            .zip(&test.labels)
            .map(|(r, &y)| (f64::from(r[0]), f64::from(r[1]), y))
            .collect();
        let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        let scatter = label_scatter(
            Labels {
                title: "2-D VAE: posterior means of the test images",
                x: "mu_1",
                y: "mu_2",
            },
            &points,
            &names,
        )?;
        run.write("scatter.svg", scatter.as_bytes())?;
    }
    Ok(())
}

/// The decoded manifold: a 20 x 20 grid of codes `z = (Phi^-1(u), Phi^-1(v))` for `u, v`
/// evenly spaced in `(0, 1)`, as in the paper's Figure 4, drawn as one image.
fn write_manifold(run: &Run, model: &Vae<f32>, rows: usize, cols: usize) -> Result<()> {
    let n = 20;
    let q: Vec<f32> = (0..n)
        .map(|i| normal_quantile((i as f64 + 0.5) / n as f64) as f32)
        .collect();
    // Row r of the picture has z_2 decreasing downwards, column c has z_1 increasing.
    let z = Array2::from_shape_fn((n * n, 2), |(k, j)| {
        let (r, c) = (k / n, k % n);
        if j == 0 { q[c] } else { q[n - 1 - r] }
    });
    let images = model.mean_image(&z);
    let mut big = Array2::<f32>::zeros((n * rows, n * cols));
    for (k, img) in images.rows().into_iter().enumerate() {
        let (r, c) = (k / n, k % n);
        for (p, &v) in img.iter().enumerate() {
            big[[r * rows + p / cols, c * cols + p % cols]] = v;
        }
    }
    let tile = Tile {
        pixels: big.as_slice().expect("standard layout"),
        caption: "z_1 from left to right, z_2 from bottom to top, both from -1.96 to 1.96"
            .to_string(),
    };
    run.write(
        "manifold.svg",
        image_grid(&[tile], n * rows, n * cols, 1, 1)?.as_bytes(),
    )?;
    Ok(())
}

/// The settings `--tune` compares: Adam's learning rate and the KL weight. The last row keeps
/// the middle learning rate but weights the KL by 784, which is what averaging the
/// reconstruction term over the pixels instead of summing it amounts to (Adam ignores the
/// overall scale of the loss).
pub const TUNING_GRID: [(f32, f32); 4] = [(3e-4, 1.0), (1e-3, 1.0), (3e-3, 1.0), (1e-3, 784.0)];

// ANCHOR: tune
/// `--tune`: trains the main model with every setting of [`TUNING_GRID`] for the configured
/// epochs (the runs side by side), scoring only the validation split, and writes the table as
/// `tuning.md` (and `tuning.json`, `tuning-provenance.md`).
pub fn tune(
    run: &Run,
    config: &Config,
    seed: u64,
    train_split: &Split,
    validation: &Split,
) -> Result<()> {
    let progress = run.progress((TUNING_GRID.len() * config.epochs) as u64, "vae --tune");
    let outcomes: Vec<Result<(Vae<f32>, TrainReport)>> = std::thread::scope(|s| {
        let handles: Vec<_> = TUNING_GRID
            .iter()
            .map(|&(lr, kl_weight)| {
                let c = Config {
                    optimizer: OptimizerConfig::adam(lr),
                    kl_weight,
                    ..config.clone()
                };
                let progress = &progress;
                s.spawn(move || train(&c, c.latent, train_split, validation, (seed, 0), progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    progress.finish_and_clear();
    let mut table = Table::new(
        &[
            "Adam learning rate",
            "KL weight",
            "final validation negative ELBO",
            "lowest (epoch)",
            "validation KL",
            "active units",
        ],
        "rrrrrr",
    );
    let mut runs = Vec::new();
    for (&(lr, kl_weight), outcome) in TUNING_GRID.iter().zip(outcomes) {
        match outcome {
            Ok((model, r)) => {
                let last = r.history.last().expect("epoch 0 at least");
                let best = r.history[1..]
                    .iter()
                    .min_by(|a, b| a.validation.neg_elbo.total_cmp(&b.validation.neg_elbo))
                    .unwrap_or(last);
                let active = mean_variance(&model, &validation.images)
                    .iter()
                    .filter(|&&v| v > ACTIVE_THRESHOLD)
                    .count();
                table.row([
                    lr.to_string(),
                    kl_weight.to_string(),
                    format!("{:.2}", last.validation.neg_elbo),
                    format!("{:.2} ({})", best.validation.neg_elbo, best.epoch),
                    format!("{:.2}", last.validation.kl),
                    format!("{active} of {}", config.latent),
                ]);
                runs.push((lr, kl_weight, Some(r)));
            }
            Err(e) if e.downcast_ref::<NonFinite>().is_some() => {
                let (l, k) = (lr.to_string(), kl_weight.to_string());
                table.row([l.as_str(), k.as_str(), "diverged", "", "", ""]);
                runs.push((lr, kl_weight, None));
            }
            Err(e) => return Err(e),
        }
    }
    let mut t = table.to_string();
    let _ = writeln!(
        t,
        "\nEach run trained the {}-latent model for {} epochs (batch {}) on {} images and was \
         scored on the {} validation images after every epoch (active units counted on them too); \
         the test split was not used.",
        config.latent,
        config.epochs,
        config.batch_size,
        train_split.len(),
        validation.len()
    );
    print!("{t}");
    run.write("tuning.md", t.as_bytes())?;
    let p = run.provenance();
    run.write(
        "tuning-provenance.md",
        p.sentence("The tuning table was produced by").as_bytes(),
    )?;
    run.write(
        "tuning.json",
        serde_json::to_string_pretty(&runs)?.as_bytes(),
    )?;
    Ok(())
}
// ANCHOR_END: tune
