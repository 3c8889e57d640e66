//! The MADE chapter's experiments: the study notes' toy distribution over two binary variables,
//! learned with categorical outputs; and binarised MNIST (the shipped split, threshold 0.5) with
//! one hidden layer of 500 units and Adam, once with a single mask and once trained over a set of
//! masks (connectivity-agnostic training) and scored with mask ensembles of growing size. Choices
//! are made on the validation split (the last 1,000 training images); the test split is scored
//! once, with the weights of the epoch of lowest validation NLL.

use crate::data::batches::{ordered_batches, shuffled_batches};
use crate::data::mnist::{MnistSplits, Split};
use crate::made::{Degrees, Made, Output};
use crate::optim::{OptimizerArgs, OptimizerConfig};
use crate::param::count;
use crate::plot::{Labels, Series, Tile, image_grid, line_chart};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, train_step};
use crate::vae::experiment::stream;
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use ndarray::{Array2, Axis};
use serde::Serialize;
use std::fmt::Write as _;

// ANCHOR: config
/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Width of each hidden layer.
    pub hidden: Vec<usize>,
    /// Passes over the training split of the one-mask model.
    pub epochs: usize,
    /// Passes over the training split of the model trained over several masks.
    pub ensemble_epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// The optimiser and its settings.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// The number of mask sets the second model cycles through (0: no second model).
    pub masks: usize,
    /// A new mask set every this many steps.
    pub mask_every: usize,
    /// Draw a new input ordering with every mask set too (order-agnostic training), not only
    /// new hidden degrees (connectivity-agnostic training).
    pub order_agnostic: bool,
    /// The direct input-to-output connection.
    pub direct: bool,
    /// Pixels above this grey level become 1.
    pub threshold: f32,
    /// Full-batch Adam steps of the toy problem.
    pub toy_steps: usize,
    /// Samples drawn for the figure.
    pub samples: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hidden: vec![500],
            epochs: 30,
            ensemble_epochs: 80,
            batch_size: 100,
            optimizer: OptimizerConfig::adam(3e-3),
            masks: 8,
            mask_every: 1,
            order_agnostic: false,
            direct: false,
            threshold: 0.5,
            toy_steps: 3000,
            samples: 32,
        }
    }
}
// ANCHOR_END: config

/// Mean NLL in nats per image after one epoch (epoch 0 is the untrained model).
#[derive(Clone, Debug, Serialize)]
pub struct Epoch {
    /// 0 before training, then 1, 2, ...
    pub epoch: usize,
    /// On the training split (the one-mask model only; NaN for the other, to save time).
    pub train: f64,
    /// On the validation split, with the first mask set.
    pub validation: f64,
}

/// One MNIST training run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// The number of mask sets trained over.
    pub masks: usize,
    /// Trainable parameters (masked entries included).
    pub params: usize,
    /// Steps taken.
    pub steps: usize,
    /// Scores per epoch.
    pub history: Vec<Epoch>,
    /// The epoch of lowest validation NLL, whose weights are kept.
    pub best_epoch: usize,
}

/// The NLL of a mask ensemble of one size.
#[derive(Clone, Debug, Serialize)]
pub struct EnsemblePoint {
    /// Mask sets averaged (the first ones of the training set).
    pub masks: usize,
    /// Mean NLL on the validation split, nats.
    pub validation: f64,
    /// Mean NLL on the test split, nats.
    pub test: f64,
}

/// The toy problem's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Toy {
    /// The four configurations `(x1, x2)` in the order `00, 01, 10, 11`.
    pub configurations: Vec<(usize, usize)>,
    /// Their empirical frequencies.
    pub empirical: Vec<f64>,
    /// The learned probabilities.
    pub learned: Vec<f64>,
    /// The largest absolute difference between the two.
    pub max_abs_diff: f64,
    /// The final training NLL, nats per pair, and the data's entropy, its lower bound.
    pub nll: (f64, f64),
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Images in the training, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// The toy problem.
    pub toy: Toy,
    /// The one-mask model's run.
    pub single: TrainReport,
    /// Its validation and test NLL at the kept epoch.
    pub single_scores: EnsemblePoint,
    /// The model trained over several masks, if any.
    pub multi: Option<TrainReport>,
    /// Its NLL for ensembles of 1, 2, 4, ... masks.
    pub ensemble: Vec<EnsemblePoint>,
    /// The VAE chapter's test numbers on the same split, if its `results.json` was found:
    /// the negative ELBO and the importance-sampled NLL.
    pub vae: Option<(f64, f64)>,
}

// ANCHOR: toy
/// The study notes' toy data: `(0, 1)` sixteen times, `(1, 0)` four times, `(1, 1)` once,
/// the block repeated ten times. Rows of two class indices.
pub fn toy_data() -> Array2<f32> {
    let block: Vec<[f32; 2]> = std::iter::repeat_n([0.0, 1.0], 16)
        .chain(std::iter::repeat_n([1.0, 0.0], 4))
        .chain(std::iter::once([1.0, 1.0]))
        .collect();
    let rows: Vec<f32> = (0..10)
        .flat_map(|_| block.iter().flatten().copied())
        .collect();
    Array2::from_shape_vec((rows.len() / 2, 2), rows).expect("pairs")
}

/// Learns the toy distribution with a two-variable MADE with categorical outputs (two classes
/// each, one hidden layer of 16 units), full-batch Adam, and compares the probabilities of all
/// four configurations with their frequencies.
pub fn toy(config: &Config, seed: u64) -> Result<(Made<f32>, Toy)> {
    let x = toy_data();
    let mut init = stream(seed, 20);
    let degrees = Degrees::draw(2, &[16], true, &mut init);
    let mut model = Made::<f32>::new(
        degrees,
        Output::Categorical { classes: 2 },
        false,
        &mut init,
    );
    let mut optimizer = OptimizerConfig::adam(1e-2).build::<f32>();
    let input = model.encode(&x);
    for step in 1..=config.toy_steps {
        train_step(step, &mut model, &mut optimizer, |m| {
            let (logits, cache) = m.forward(input.clone());
            let (loss, d) = m.loss(&logits, &x);
            m.backward_params(&cache, &d);
            loss
        })?;
    }
    let configurations = vec![(0, 0), (0, 1), (1, 0), (1, 1)];
    let all = Array2::from_shape_fn((4, 2), |(i, j)| {
        let (a, b) = configurations[i];
        if j == 0 { a as f32 } else { b as f32 }
    });
    let learned: Vec<f64> = model.log_likelihood(&all).mapv(f64::exp).to_vec();
    let n = x.nrows() as f64;
    let empirical: Vec<f64> = configurations
        .iter()
        .map(|&(a, b)| {
            x.rows()
                .into_iter()
                .filter(|r| r[0] as usize == a && r[1] as usize == b)
                .count() as f64
                / n
        })
        .collect();
    let max_abs_diff = learned
        .iter()
        .zip(&empirical)
        .map(|(l, e)| (l - e).abs())
        .fold(0.0, f64::max);
    let nll = -model.log_likelihood(&x).mean().unwrap_or(f64::NAN);
    let entropy = -empirical
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| p * p.ln())
        .sum::<f64>();
    let report = Toy {
        configurations,
        empirical,
        learned,
        max_abs_diff,
        nll: (nll, entropy),
    };
    Ok((model, report))
}
// ANCHOR_END: toy

/// The mean NLL of `split` under `model`'s current masks, nats per image.
pub fn mean_nll(model: &Made<f32>, split: &Split) -> f64 {
    let mut sum = 0.0;
    for idx in ordered_batches(split.len(), 500) {
        let x = split.images.select(Axis(0), &idx);
        sum -= model.log_likelihood(&x).sum();
    }
    sum / split.len().max(1) as f64
}

/// The mask sets of a run: `n` draws from the mask stream, the first with the natural ordering
/// unless the run is order-agnostic.
pub fn mask_sets(config: &Config, n: usize, seed: u64, streams: u64) -> Vec<Degrees> {
    let mut rng = stream(seed, streams + 2);
    (0..n.max(1))
        .map(|_| Degrees::draw(784, &config.hidden, !config.order_agnostic, &mut rng))
        .collect()
}

// ANCHOR: train
/// Trains a fresh MADE over the mask sets `masks` (one set: an ordinary MADE), switching to the
/// next set every `config.mask_every` steps, for `epochs` passes. After every epoch it scores
/// the validation split with the first mask set, and keeps the weights of the best epoch.
/// `streams` is the first of the generator streams (initial weights, batch order, masks) the
/// run draws from.
#[allow(clippy::too_many_arguments)]
pub fn train(
    config: &Config,
    masks: &[Degrees],
    epochs: usize,
    train: &Split,
    validation: &Split,
    (seed, streams): (u64, u64),
    score_train: bool,
    progress: &ProgressBar,
) -> Result<(Made<f32>, TrainReport)> {
    let (mut init, mut order) = (stream(seed, streams), stream(seed, streams + 1));
    let mut model = Made::<f32>::new(
        masks[0].clone(),
        Output::Bernoulli,
        config.direct,
        &mut init,
    );
    let mut optimizer = config.optimizer.build::<f32>();
    let score = |m: &Made<f32>, epoch| Epoch {
        epoch,
        train: if score_train {
            mean_nll(m, train)
        } else {
            f64::NAN
        },
        validation: mean_nll(m, validation),
    };
    let mut history = vec![score(&model, 0)];
    let (mut best, mut best_epoch) = (model.clone(), 0);
    let mut step = 0;
    for epoch in 1..=epochs {
        for idx in shuffled_batches(train.len(), config.batch_size, &mut order) {
            if masks.len() > 1 && step % config.mask_every == 0 {
                model.set_degrees(masks[(step / config.mask_every) % masks.len()].clone());
            }
            step += 1;
            let x = train.images.select(Axis(0), &idx);
            train_step(step, &mut model, &mut optimizer, |m| {
                let (logits, cache) = m.forward(x.clone());
                let (loss, d) = m.loss(&logits, &x);
                m.backward_params(&cache, &d);
                loss
            })?;
        }
        model.set_degrees(masks[0].clone());
        let e = score(&model, epoch);
        if e.validation < history[best_epoch].validation {
            (best, best_epoch) = (model.clone(), epoch);
        }
        history.push(e);
        progress.inc(1);
    }
    let report = TrainReport {
        masks: masks.len(),
        params: count(&best),
        steps: step,
        history,
        best_epoch,
    };
    Ok((best, report))
}
// ANCHOR_END: train

// ANCHOR: ensemble
/// `ln p(x)` of every row of `x` under the ensemble of the first mask sets of `masks`: the
/// mean of the probabilities, `ln((1/K) sum_k p_k(x))`, computed from the log-probabilities
/// with the log-sum-exp trick.
pub fn ensemble_log_likelihood(model: &Made<f32>, masks: &[Degrees], x: &Array2<f32>) -> Vec<f64> {
    let mut m = model.clone();
    let per_mask: Vec<Vec<f64>> = masks
        .iter()
        .map(|d| {
            m.set_degrees(d.clone());
            m.log_likelihood(x).to_vec()
        })
        .collect();
    (0..x.nrows())
        .map(|i| {
            let v: Vec<f64> = per_mask.iter().map(|l| l[i]).collect();
            crate::vae::log_mean_exp(&v)
        })
        .collect()
}
// ANCHOR_END: ensemble

/// The mean ensemble NLL of a split, for ensembles of `1, 2, 4, ...` up to all `masks`.
fn ensemble_curve(
    model: &Made<f32>,
    masks: &[Degrees],
    validation: &Split,
    test: &Split,
) -> Vec<EnsemblePoint> {
    let mut sizes = vec![];
    let mut k = 1;
    while k < masks.len() {
        sizes.push(k);
        k *= 2;
    }
    sizes.push(masks.len());
    let mean = |split: &Split, k: usize| {
        let l = ensemble_log_likelihood(model, &masks[..k], &split.images);
        -l.iter().sum::<f64>() / l.len().max(1) as f64
    };
    sizes
        .into_iter()
        .map(|k| EnsemblePoint {
            masks: k,
            validation: mean(validation, k),
            test: mean(test, k),
        })
        .collect()
}

/// The flags of `cargo run --release --example made`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "made",
    about = "Train the MADE chapter's masked autoencoders (a toy problem and binarised MNIST) and draw its figures"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    /// The optimiser flags (default: Adam, learning rate 0.003).
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// Examples per training step.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub batch_size: u64,
    /// Width of the hidden layer; repeat the flag for more hidden layers (`--hidden 500
    /// --hidden 500`).
    #[arg(long, default_values_t = [500u64], value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub hidden: Vec<u64>,
    /// Mask sets the second model trains over and averages at test time (0: no second model).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub masks: u64,
    /// Passes over the training split of the second model (default: 80; with --quick, as many
    /// as the first model's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub ensemble_epochs: Option<u64>,
    /// A new mask set every this many steps.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub mask_every: u64,
    /// Draw a new input ordering with every mask set (order-agnostic training).
    #[arg(long)]
    pub order_agnostic: bool,
    /// Add the direct input-to-output connection.
    #[arg(long)]
    pub direct: bool,
    /// `--save FILE`, `--load FILE`.
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
}

impl Cli {
    /// The configuration the flags describe, after checking them.
    pub fn config(&self) -> Result<Config> {
        let common = &self.common;
        let defaults = Config::default();
        let epochs = common.epochs_or(defaults.epochs, 3);
        Ok(Config {
            hidden: self.hidden.iter().map(|&h| h as usize).collect(),
            epochs,
            ensemble_epochs: match self.ensemble_epochs {
                Some(e) => e as usize,
                None if common.quick => epochs,
                None => defaults.ensemble_epochs,
            },
            batch_size: self.batch_size as usize,
            optimizer: self.optimizer.resolve(defaults.optimizer)?,
            masks: if common.quick {
                (self.masks as usize).min(4)
            } else {
                self.masks as usize
            },
            mask_every: self.mask_every as usize,
            order_agnostic: self.order_agnostic,
            direct: self.direct,
            ..defaults
        })
    }
}

/// How a checkpoint describes the model it holds.
fn describe(config: &Config) -> String {
    let widths: Vec<String> = config.hidden.iter().map(|h| h.to_string()).collect();
    format!(
        "784-{}-784 Bernoulli MADE{}",
        widths.join("-"),
        if config.direct {
            " with a direct connection"
        } else {
            ""
        }
    )
}

/// The VAE chapter's test numbers on the same split, from its `results.json`.
fn vae_numbers() -> Option<(f64, f64)> {
    let text = std::fs::read(chapter_dir("vae").join("results.json")).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let r = &json["report"];
    Some((
        r["test"]["neg_elbo"].as_f64()?,
        r["importance"]["nll"].as_f64()?,
    ))
}

// ANCHOR: program
/// The program: the toy problem, then the one-mask model and the model over several masks,
/// trained side by side; scores, figures, tables.
pub fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    let common = &cli.common;
    let seed = common.seed;
    let MnistSplits {
        train: train_split,
        validation,
        test,
    } = MnistSplits::load(&common.data_dir("mnist"), common.quick)?.binarised(config.threshold);
    let single_masks = mask_sets(&config, 1, seed, 0);
    if let Some(file) = &cli.checkpoint.load {
        let mut model = Made::<f32>::new(
            single_masks[0].clone(),
            Output::Bernoulli,
            config.direct,
            &mut stream(seed, 0),
        );
        crate::checkpoint::load(&mut model, "made", &describe(&config), file)?;
        let t = format!(
            "| split | NLL, nats |\n|---|---:|\n| validation | {:.2} |\n| test | {:.2} |\n",
            mean_nll(&model, &validation),
            mean_nll(&model, &test)
        );
        print!("{t}");
        if common.out.is_some() {
            Run::new(common, &chapter_dir("made"))?.write("results.md", t.as_bytes())?;
        }
        return Ok(());
    }
    let mut run = Run::new(common, &chapter_dir("made"))?;
    let (_, toy_report) = toy(&config, seed)?;
    let multi_masks = mask_sets(&config, config.masks, seed, 10);
    let with_multi = config.masks > 1;
    let total = config.epochs
        + if with_multi {
            config.ensemble_epochs
        } else {
            0
        };
    let progress = run.progress(total as u64, "made");
    let (single, multi) = std::thread::scope(|s| {
        let other = with_multi.then(|| {
            s.spawn(|| {
                train(
                    &config,
                    &multi_masks,
                    config.ensemble_epochs,
                    &train_split,
                    &validation,
                    (seed, 10),
                    false,
                    &progress,
                )
            })
        });
        let single = train(
            &config,
            &single_masks,
            config.epochs,
            &train_split,
            &validation,
            (seed, 0),
            true,
            &progress,
        );
        let multi = other.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        (single, multi)
    });
    progress.finish_and_clear();
    let (model, single) = single?;
    let multi = multi.transpose()?;
    cli.checkpoint
        .save_if_asked(&model, "made", &describe(&config))?;
    let single_scores = EnsemblePoint {
        masks: 1,
        validation: mean_nll(&model, &validation),
        test: mean_nll(&model, &test),
    };
    let ensemble = match &multi {
        Some((m, _)) => ensemble_curve(m, &multi_masks, &validation, &test),
        None => Vec::new(),
    };
    let report = Report {
        config,
        sizes: (train_split.len(), validation.len(), test.len()),
        toy: toy_report,
        single,
        single_scores,
        multi: multi.as_ref().map(|(_, r)| r.clone()),
        ensemble,
        vae: vae_numbers(),
    };
    let table = results_table(&report);
    print!("{table}");
    write_figures(&run, &report, &model, &test, seed)?;
    run.write("results.md", table.as_bytes())?;
    if with_multi {
        run.set_threads(
            2,
            Some("the one-mask and the many-mask models train side by side"),
        );
    }
    run.write_record("provenance.md", "results.json", &report)
}
// ANCHOR_END: program

/// The Markdown results table: the toy problem, the MNIST runs, the ensembles and the paper's
/// number.
pub fn results_table(report: &Report) -> String {
    let c = &report.config;
    let nats = |v: f64| format!("{v:.2}");
    let toy = &report.toy;
    let mut t = Table::new(&["(x1, x2)", "empirical", "learned", "difference"], "lrrr");
    for (i, &(a, b)) in toy.configurations.iter().enumerate() {
        t.row([
            format!("({a}, {b})"),
            format!("{:.4}", toy.empirical[i]),
            format!("{:.4}", toy.learned[i]),
            format!("{:+.4}", toy.learned[i] - toy.empirical[i]),
        ]);
    }
    let mut out = t.to_string();
    let _ = writeln!(
        out,
        "\nThe toy problem: a two-variable MADE with categorical outputs (two classes per \
         variable, one hidden layer of 16 units), {} full-batch steps of Adam (lr 0.01) on the \
         210 pairs. Largest absolute difference: **{:.4}**. Training NLL {:.4} nats per pair; \
         the data's entropy, the lowest NLL any model can reach on it, is {:.4}.\n",
        c.toy_steps, toy.max_abs_diff, toy.nll.0, toy.nll.1
    );
    let (n_train, n_val, n_test) = report.sizes;
    let widths: Vec<String> = c.hidden.iter().map(|h| h.to_string()).collect();
    let mut m = Table::new(
        &[
            "model",
            "masks averaged",
            "epoch kept",
            "validation NLL",
            "test NLL",
        ],
        "lrrrr",
    );
    m.row([
        "one mask".to_string(),
        "1".to_string(),
        format!("{} of {}", report.single.best_epoch, c.epochs),
        nats(report.single_scores.validation),
        nats(report.single_scores.test),
    ]);
    if let Some(multi) = &report.multi {
        for p in &report.ensemble {
            m.row([
                format!("trained over {} masks", multi.masks),
                p.masks.to_string(),
                format!("{} of {}", multi.best_epoch, c.ensemble_epochs),
                nats(p.validation),
                nats(p.test),
            ]);
        }
    }
    out.push_str(&m.to_string());
    let _ = writeln!(
        out,
        "\nBinarised MNIST (threshold {}), nats per image: {n_train} training, {n_val} validation \
         and {n_test} test images. MADE 784-{}-784, ReLU, {}{} parameters (masked entries \
         counted); {}, batch {}; {} steps for the one-mask model. Each model keeps the weights \
         of its epoch of lowest validation NLL (scored with its first mask set). The model \
         trained over several masks switches to the next of its mask sets {}, \
         {}; an ensemble of k masks averages the probabilities of its first k mask sets.",
        c.threshold,
        widths.join("-"),
        report.single.params,
        if c.direct {
            " (with the direct connection)"
        } else {
            ""
        },
        c.optimizer.describe(),
        c.batch_size,
        report.single.steps,
        match c.mask_every {
            1 => "at every step".to_string(),
            n => format!("every {n} steps"),
        },
        if c.order_agnostic {
            "each with a new ordering and new hidden degrees"
        } else {
            "each with new hidden degrees and the natural ordering"
        }
    );
    let mut paper = Table::new(&["model", "test NLL, nats"], "lr");
    paper.row([
        "paper: MADE, one hidden layer of 500, 32 masks (Germain et al., 2015)",
        "88.04",
    ]);
    paper.row([
        "this run: one mask".to_string(),
        nats(report.single_scores.test),
    ]);
    if let Some(last) = report.ensemble.last() {
        paper.row([
            format!("this run: ensemble of {} masks", last.masks),
            nats(last.test),
        ]);
    }
    match report.vae {
        Some((elbo, nll)) => {
            paper.row([
                "VAE chapter, same split: negative ELBO (a bound)".to_string(),
                nats(elbo),
            ]);
            paper.row([
                "VAE chapter, same split: importance-sampled estimate".to_string(),
                nats(nll),
            ]);
        }
        None => {
            paper.row(["VAE chapter: its results.json was not found", ""]);
        }
    }
    let _ = write!(out, "\n{paper}");
    let _ = writeln!(
        out,
        "\nWhat differs: the paper trains on the 50,000 training images of the standard binarised \
         MNIST (Larochelle and Murray's stochastic binarisation, fixed once) with early stopping \
         on 10,000 validation images and scores the 10,000 official test images; we train on \
         {n_train} images thresholded at {} ({:.0}% as many) and test on {n_test} images carved from the official \
         training set. \
         The MADE numbers are exact log-likelihoods; the VAE's negative ELBO is an upper bound on \
         its NLL and its importance-sampled number an estimate of it.",
        c.threshold,
        100.0 * n_train as f64 / 50_000.0
    );
    out
}

/// Draws the figures: the NLL per epoch, a grid of samples, and the test NLL against the
/// number of masks averaged.
pub fn write_figures(
    run: &Run,
    report: &Report,
    model: &Made<f32>,
    test: &Split,
    seed: u64,
) -> Result<()> {
    // Epoch 0 (the untrained model, several hundred nats) would squash the curves.
    let from = |h: &[Epoch], f: fn(&Epoch) -> f64| -> Vec<(f64, f64)> {
        h[1..].iter().map(|e| (e.epoch as f64, f(e))).collect()
    };
    let mut series = vec![
        Series::new("one mask: train", from(&report.single.history, |e| e.train)),
        Series::new(
            "one mask: validation",
            from(&report.single.history, |e| e.validation),
        ),
    ];
    if let Some(multi) = &report.multi {
        series.push(Series::new(
            format!("{} masks: validation (first mask)", multi.masks),
            from(&multi.history, |e| e.validation),
        ));
    }
    let chart = line_chart(
        Labels {
            title: "MADE on binarised MNIST: negative log-likelihood per epoch",
            x: "epoch",
            y: "NLL (nats per image)",
        },
        &series,
    )?;
    run.write("nll.svg", chart.as_bytes())?;
    let samples = model.sample(report.config.samples, &mut stream(seed, 30));
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
        image_grid(&tiles, test.rows, test.cols, 8, 3)?.as_bytes(),
    )?;
    if !report.ensemble.is_empty() {
        let single = report.single_scores.test;
        let last = report.ensemble.last().map_or(1, |p| p.masks) as f64;
        let chart = line_chart(
            Labels {
                title: "What mask ensembles buy: test NLL against masks averaged",
                x: "masks averaged",
                y: "test NLL (nats per image)",
            },
            &[
                Series::new(
                    "model trained over many masks",
                    report
                        .ensemble
                        .iter()
                        .map(|p| (p.masks as f64, p.test))
                        .collect(),
                ),
                Series::new("one-mask model", vec![(1.0, single), (last, single)]),
            ],
        )
        .context("the ensemble chart")?;
        run.write("ensemble.svg", chart.as_bytes())?;
    }
    Ok(())
}
