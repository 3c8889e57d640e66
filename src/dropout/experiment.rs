//! The Dropout chapter's experiment: the same wide network, 784-1024-1024-10, trained twice on
//! the shipped MNIST subset with the same seed, the same initial weights, the same batches and
//! the same budget, once without dropout and once with dropout (0.2 on the input, 0.5 after each
//! hidden layer). The last 1,000 training images are the validation split every choice is made
//! on; the 2,000 test images are only used for the reported numbers.
//!
//! For the dropout net it also compares the two ways of predicting with it that the paper
//! compares (its section 7.5): the deterministic full network ("weight scaling", which for
//! inverted dropout is simply [`DropoutMlp::infer`]) and the Monte Carlo average of the
//! predicted probabilities of `k` thinned networks.

use crate::data::batches::{ordered_batches, shuffled_batches};
use crate::data::mnist::{MnistSplits, Split};
use crate::dropout::{Dropout, DropoutMlp};
use crate::loss::{argmax_rows, softmax, softmax_cross_entropy};
use crate::mlp::Mlp;
use crate::mlp::experiment::{Score, evaluate};
use crate::optim::{OptimizerArgs, OptimizerConfig, OptimizerKind};
use crate::param::{ParamMut, ParamRef, Params, count, join};
use crate::plot::{Labels, Series, line_chart};
use crate::runner::{CommonArgs, NonFinite, Run, Table, chapter_dir, pct, train_step};
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
    /// Layer widths, input first.
    pub sizes: Vec<usize>,
    /// Passes over the training split (the same for both networks).
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// The optimiser and its settings.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// Drop rate of the input units in the dropout run.
    pub input_dropout: f64,
    /// Drop rate of the hidden units in the dropout run.
    pub hidden_dropout: f64,
    /// The largest number of thinned networks averaged by the Monte Carlo comparison.
    pub mc_samples: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sizes: vec![784, 1024, 1024, 10],
            epochs: 30,
            batch_size: 128,
            optimizer: OptimizerConfig::adam(1e-3),
            input_dropout: 0.2,
            hidden_dropout: 0.5,
            mc_samples: 100,
        }
    }
}
// ANCHOR_END: config

/// Scores after one epoch (epoch 0 is the untrained network). All are computed in evaluation
/// mode (no dropout), so the two networks are measured the same way.
#[derive(Clone, Debug, Serialize)]
pub struct Epoch {
    /// 0 before training, then 1, 2, ...
    pub epoch: usize,
    /// On the whole training split (skipped while tuning).
    pub train: Option<Score>,
    /// On the validation split.
    pub validation: Score,
    /// On the test split (skipped while tuning: the test split is not looked at then).
    pub test: Option<Score>,
    /// Mean training loss over the epoch's steps, as the optimiser saw it (with dropout, for
    /// the dropout net).
    pub step_loss: f64,
}

/// One training run.
#[derive(Clone, Debug, Serialize)]
pub struct NetReport {
    /// Drop rate on the input.
    pub input_dropout: f64,
    /// Drop rate after each hidden layer.
    pub hidden_dropout: f64,
    /// Training steps taken.
    pub steps: usize,
    /// Scores per epoch.
    pub history: Vec<Epoch>,
}

impl NetReport {
    /// The scores after the last epoch.
    pub fn last(&self) -> &Epoch {
        self.history
            .last()
            .expect("the history holds epoch 0 at least")
    }

    /// The epoch (after the first) with the lowest validation cross-entropy.
    pub fn best_validation(&self) -> &Epoch {
        self.history[1..]
            .iter()
            .min_by(|a, b| a.validation.loss.total_cmp(&b.validation.loss))
            .unwrap_or(&self.history[0])
    }
}

/// The Monte Carlo estimate after averaging `samples` thinned networks.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct McPoint {
    /// Number of thinned networks averaged.
    pub samples: usize,
    /// Test cross-entropy and accuracy of the averaged probabilities.
    pub test: Score,
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Trainable parameters of each network.
    pub params: usize,
    /// Images in the training, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// The run without dropout.
    pub plain: NetReport,
    /// The run with dropout.
    pub dropout: NetReport,
    /// Monte Carlo averaging of the dropout net, for growing numbers of samples.
    pub monte_carlo: Vec<McPoint>,
}

/// The three random streams of a run, all from one seed: initial weights, batch order, masks.
/// Separate streams give both networks the same initial weights and the same batches, so the
/// masks are the only difference between the two runs.
fn streams(seed: u64) -> [ChaCha8Rng; 3] {
    [0, 1, 2].map(|n| stream(seed, n))
}

/// Stream `n` of the ChaCha8 generator seeded with `seed`.
fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// The splits a run is scored on after every epoch; `train` and `test` are optional so that
/// tuning can leave the test split alone (and save time).
#[derive(Clone, Copy, Debug)]
pub struct Watch<'a> {
    /// Score the whole training split too.
    pub train: bool,
    /// The validation split.
    pub validation: &'a Split,
    /// The test split, if it may be looked at.
    pub test: Option<&'a Split>,
}

// ANCHOR: train
/// Trains a fresh network with the given drop rates on `train`, scoring it after every epoch.
pub fn train(
    config: &Config,
    (input_rate, hidden_rate): (Dropout, Dropout),
    train: &Split,
    watch: Watch<'_>,
    seed: u64,
    progress: &ProgressBar,
) -> Result<(DropoutMlp<f32>, NetReport)> {
    let [mut init, mut order, mut masks] = streams(seed);
    let mut model = DropoutMlp::<f32>::new(&config.sizes, input_rate, hidden_rate, &mut init);
    let mut optimizer = config.optimizer.build::<f32>();
    let score = |m: &DropoutMlp<f32>, epoch: usize, step_loss: f64| Epoch {
        epoch,
        train: watch.train.then(|| evaluate(&m.mlp, train)),
        validation: evaluate(&m.mlp, watch.validation),
        test: watch.test.map(|t| evaluate(&m.mlp, t)),
        step_loss,
    };
    let mut history = vec![score(&model, 0, f64::NAN)];
    let mut step = 0;
    for epoch in 1..=config.epochs {
        let mut loss_sum = 0.0;
        let batches = shuffled_batches(train.len(), config.batch_size, &mut order);
        for idx in &batches {
            step += 1;
            let batch = train.select(idx);
            loss_sum += train_step(step, &mut model, &mut optimizer, |model| {
                let (logits, cache) = model.forward_train(&batch.images, &mut masks);
                let (loss, dlogits) = softmax_cross_entropy(&logits, &batch.labels);
                model.backward_params(&cache, &dlogits);
                loss
            })?;
        }
        history.push(score(&model, epoch, loss_sum / batches.len() as f64));
        progress.inc(1);
    }
    let report = NetReport {
        input_dropout: input_rate.rate(),
        hidden_dropout: hidden_rate.rate(),
        steps: step,
        history,
    };
    Ok((model, report))
}
// ANCHOR_END: train

/// The result of one training run.
pub type Trained = Result<(DropoutMlp<f32>, NetReport)>;

/// Trains the network without dropout and the one with the configured dropout, side by side on
/// two threads (they share nothing, so each is exactly what it would be alone), and returns
/// both outcomes: `(no dropout, dropout)`. Fails only if the configured rates are invalid.
pub fn train_both(
    config: &Config,
    train_split: &Split,
    watch: Watch<'_>,
    seed: u64,
    progress: &ProgressBar,
) -> Result<(Trained, Trained)> {
    let none = (Dropout::new(0.0)?, Dropout::new(0.0)?);
    let some = (
        Dropout::new(config.input_dropout)?,
        Dropout::new(config.hidden_dropout)?,
    );
    Ok(std::thread::scope(|s| {
        let other = s.spawn(|| train(config, some, train_split, watch, seed, progress));
        let plain = train(config, none, train_split, watch, seed, progress);
        let dropped = other
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (plain, dropped)
    }))
}

// ANCHOR: monte_carlo
/// Monte Carlo model averaging: the mean of the predicted probabilities of `k` thinned networks
/// (fresh masks for every pass), scored on `split` at every `k` in `checkpoints`.
pub fn monte_carlo(
    model: &DropoutMlp<f32>,
    split: &Split,
    checkpoints: &[usize],
    rng: &mut ChaCha8Rng,
) -> Vec<McPoint> {
    let classes = *model.mlp.sizes().last().expect("at least two sizes");
    let mut mean_p = Array2::<f64>::zeros((split.len(), classes));
    let mut points = Vec::new();
    let batches = ordered_batches(split.len(), 1000);
    for k in 1..=checkpoints.iter().copied().max().unwrap_or(0) {
        for idx in &batches {
            let (logits, _) = model.forward_train(&split.images.select(Axis(0), idx), rng);
            let p = softmax(&logits).mapv(f64::from);
            for (row, &i) in idx.iter().enumerate() {
                // A running mean: after k passes, mean_p = (p_1 + ... + p_k) / k.
                let mut target = mean_p.row_mut(i);
                target.zip_mut_with(&p.row(row), |m, &q| *m += (q - *m) / k as f64);
            }
        }
        if checkpoints.contains(&k) {
            points.push(McPoint {
                samples: k,
                test: score_probabilities(&mean_p, &split.labels),
            });
        }
    }
    points
}
// ANCHOR_END: monte_carlo

/// Cross-entropy (of probabilities, floored at the smallest positive `f64`) and accuracy.
fn score_probabilities(p: &Array2<f64>, labels: &[usize]) -> Score {
    let n = labels.len().max(1) as f64;
    let loss = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -p[[i, y]].max(f64::MIN_POSITIVE).ln())
        .sum::<f64>()
        / n;
    let hits = argmax_rows(p)
        .iter()
        .zip(labels)
        .filter(|(a, b)| a == b)
        .count();
    Score {
        loss,
        accuracy: hits as f64 / n,
    }
}

/// The flags of `cargo run --release --example dropout`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "dropout",
    about = "Train the same wide MLP on MNIST without and with dropout, and draw the chapter's figures"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    #[command(flatten)]
    /// `--optimizer`, `--lr`, `--momentum` (default: Adam, lr 0.001).
    pub optimizer: OptimizerArgs,
    /// Examples per training step.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub batch_size: u64,
    /// Drop rate of the input units in the dropout run, in [0, 1).
    #[arg(long, default_value_t = 0.2)]
    pub input_dropout: f64,
    /// Drop rate of the hidden units in the dropout run, in [0, 1).
    #[arg(long, default_value_t = 0.5)]
    pub hidden_dropout: f64,
    /// Thinned networks averaged by the Monte Carlo comparison (at most).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub mc_samples: u64,
    /// Instead of the experiment, compare optimiser settings on the validation split (the test
    /// split is not used) and write `tuning.md`.
    #[arg(long, conflicts_with_all = ["save", "load"])]
    pub tune: bool,
    /// `--save FILE`, `--load FILE`.
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
}

/// Both networks of the experiment as one set of parameters, for checkpoints: the plain net's
/// tensors are named `plain.layers.0.w`, ..., the dropout net's `dropout.layers.0.w`, ...
struct Pair<'a> {
    plain: &'a mut Mlp<f32>,
    dropout: &'a mut Mlp<f32>,
}

impl Params<f32> for Pair<'_> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, f32>)) {
        self.plain.visit(&join(prefix, "plain"), f);
        self.dropout.visit(&join(prefix, "dropout"), f);
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, f32>)) {
        self.plain.visit_ref(&join(prefix, "plain"), f);
        self.dropout.visit_ref(&join(prefix, "dropout"), f);
    }
}

fn describe(config: &Config) -> String {
    format!("two networks of layer sizes {:?}", config.sizes)
}

/// `--load FILE`: scores two saved networks instead of training them.
fn evaluate_checkpoint(cli: &Cli, config: &Config, file: &Path) -> Result<()> {
    let common = &cli.common;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut plain, mut dropout) = (
        Mlp::<f32>::new(&config.sizes, &mut rng),
        Mlp::<f32>::new(&config.sizes, &mut rng),
    );
    let mut pair = Pair {
        plain: &mut plain,
        dropout: &mut dropout,
    };
    crate::checkpoint::load(&mut pair, "dropout", &describe(config), file)?;
    let MnistSplits {
        validation, test, ..
    } = MnistSplits::load(&common.data_dir("mnist"), common.quick)?;
    let model = DropoutMlp {
        mlp: dropout.clone(),
        input: Dropout::new(config.input_dropout)?,
        hidden: Dropout::new(config.hidden_dropout)?,
    };
    let k = config.mc_samples;
    let mc = monte_carlo(&model, &test, &[k], &mut stream(common.seed, 3));
    let mut table = Table::new(
        &["network", "validation CE", "test CE", "test accuracy"],
        "lrrr",
    );
    for (name, net) in [
        ("no dropout", &plain),
        ("dropout, weight scaling", &dropout),
    ] {
        let (v, s) = (evaluate(net, &validation), evaluate(net, &test));
        table.row([
            name.to_string(),
            format!("{:.4}", v.loss),
            format!("{:.4}", s.loss),
            pct(s.accuracy),
        ]);
    }
    if let Some(point) = mc.last() {
        table.row([
            format!("dropout, Monte Carlo average of {k}"),
            String::new(),
            format!("{:.4}", point.test.loss),
            pct(point.test.accuracy),
        ]);
    }
    let t = table.to_string();
    crate::runner::report_loaded(common, "dropout", &t)
}

impl Cli {
    /// The configuration the flags describe, after checking them.
    pub fn config(&self) -> Result<Config> {
        let common = &self.common;
        let defaults = Config::default();
        let optimizer = self.optimizer.resolve(defaults.optimizer)?;
        for (flag, p) in [
            ("--input-dropout", self.input_dropout),
            ("--hidden-dropout", self.hidden_dropout),
        ] {
            Dropout::new(p).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
        Ok(Config {
            sizes: if common.quick {
                vec![784, 256, 256, 10]
            } else {
                defaults.sizes
            },
            epochs: common.epochs_or(defaults.epochs, 3),
            batch_size: self.batch_size as usize,
            optimizer,
            input_dropout: self.input_dropout,
            hidden_dropout: self.hidden_dropout,
            mc_samples: if common.quick {
                10.min(self.mc_samples as usize)
            } else {
                self.mc_samples as usize
            },
        })
    }
}

/// The numbers of samples at which the Monte Carlo curve is scored: 1, 2, 5, 10, 20, 50, ...
/// up to `max`, and `max` itself.
pub fn checkpoints(max: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = [1, 2, 5]
        .iter()
        .flat_map(|&m| (0..6).map(move |e| m * 10usize.pow(e)))
        .filter(|&k| k <= max)
        .collect();
    ks.push(max);
    ks.sort_unstable();
    ks.dedup();
    ks
}

// ANCHOR: program
/// The program: load, train both networks, compare inference methods, write figures and tables.
pub fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    let common = &cli.common;
    if let Some(file) = &cli.checkpoint.load {
        return evaluate_checkpoint(&cli, &config, file);
    }
    let mut run = Run::new(common, &chapter_dir("dropout"))?;
    run.set_threads(2, Some("one per network"));
    let MnistSplits {
        train: train_split,
        validation,
        test,
    } = MnistSplits::load(&common.data_dir("mnist"), common.quick)?;
    if cli.tune {
        return tune(&run, &config, common.seed, &train_split, &validation);
    }
    let watch = Watch {
        train: true,
        validation: &validation,
        test: Some(&test),
    };
    let progress = run.progress(2 * config.epochs as u64, "dropout");
    let (plain, dropped) = train_both(&config, &train_split, watch, common.seed, &progress)?;
    let ((mut plain_model, plain), (mut model, dropout)) = (plain?, dropped?);
    progress.finish_and_clear();
    let pair = Pair {
        plain: &mut plain_model.mlp,
        dropout: &mut model.mlp,
    };
    cli.checkpoint
        .save_if_asked(&pair, "dropout", &describe(&config))?;
    let mut mc_rng = stream(common.seed, 3);
    let monte_carlo = monte_carlo(&model, &test, &checkpoints(config.mc_samples), &mut mc_rng);
    let report = Report {
        params: count(&model),
        sizes: (train_split.len(), validation.len(), test.len()),
        config,
        plain,
        dropout,
        monte_carlo,
    };
    let table = results_table(&report);
    print!("{table}");
    write_outputs(&run, &report, &table)
}
// ANCHOR_END: program

/// The Markdown results table: both networks, both ways of predicting with the dropout net,
/// and the paper's MNIST numbers beside them.
pub fn results_table(report: &Report) -> String {
    let c = &report.config;
    let (n_train, n_val, n_test) = report.sizes;
    let net = c
        .sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-");
    let opt = c.optimizer.describe();
    let net_heading = format!("network ({net})");
    let mut main = Table::new(
        &[
            &net_heading,
            "prediction",
            "train CE",
            "validation CE",
            "test CE",
            "test accuracy",
            "test error",
        ],
        "llrrrrr",
    );
    let row = |t: &mut Table, name: &str, how: &str, e: &Epoch| {
        let test = e.test.expect("the experiment scores the test split");
        let train = e.train.expect("the experiment scores the training split");
        t.row([
            name.to_string(),
            how.to_string(),
            format!("{:.4}", train.loss),
            format!("{:.4}", e.validation.loss),
            format!("{:.4}", test.loss),
            pct(test.accuracy),
            pct(1.0 - test.accuracy),
        ]);
    };
    let plain_last = report.plain.last();
    let best = report.plain.best_validation();
    row(
        &mut main,
        "no dropout",
        &format!("after epoch {}", plain_last.epoch),
        plain_last,
    );
    row(
        &mut main,
        "no dropout",
        &format!("early-stopped: epoch {} (lowest validation CE)", best.epoch),
        best,
    );
    let drop_last = report.dropout.last();
    let name = format!(
        "dropout {} input, {} hidden",
        report.dropout.input_dropout, report.dropout.hidden_dropout
    );
    row(
        &mut main,
        &name,
        &format!("after epoch {}, weight scaling (`infer`)", drop_last.epoch),
        drop_last,
    );
    if let Some(mc) = report.monte_carlo.last() {
        main.row([
            name.clone(),
            format!(
                "after epoch {}, Monte Carlo average of {} thinned nets",
                drop_last.epoch, mc.samples
            ),
            String::new(),
            String::new(),
            format!("{:.4}", mc.test.loss),
            pct(mc.test.accuracy),
            pct(1.0 - mc.test.accuracy),
        ]);
    }
    let mut t = main.to_string();
    let _ = writeln!(
        t,
        "\nCE: mean cross-entropy in nats, measured without dropout (evaluation mode) for both \
         networks. {n_train} training, {n_val} validation and {n_test} test images; {} parameters \
         per network; {opt}, batch {}, {} epochs ({} steps) for each network, same seed, same \
         initial weights, same batches.",
        report.params, c.batch_size, c.epochs, report.plain.steps
    );
    let _ = writeln!(
        t,
        "\nMonte Carlo averaging against weight scaling, on the test split (the dropout net after \
         its last epoch):\n"
    );
    let mut mc = Table::new(
        &["prediction", "test CE", "test accuracy", "test error"],
        "lrrr",
    );
    let score_row = |t: &mut Table, how: String, s: &Score| {
        t.row([
            how,
            format!("{:.4}", s.loss),
            pct(s.accuracy),
            pct(1.0 - s.accuracy),
        ]);
    };
    let ws = drop_last.test.expect("scored");
    score_row(
        &mut mc,
        "weight scaling (one deterministic pass)".to_string(),
        &ws,
    );
    for p in &report.monte_carlo {
        score_row(&mut mc, format!("Monte Carlo, k = {}", p.samples), &p.test);
    }
    t.push_str(&mc.to_string());
    let _ = writeln!(
        t,
        "\nThe paper's MNIST table (Srivastava et al., 2014, Table 2), for comparison:\n"
    );
    let _ = writeln!(
        t,
        "| method (paper) | units | architecture | test error |\n|---|---|---|---:|\n\
         | standard neural net (Simard et al., 2003) | logistic | 2 hidden layers, 800 units | 1.60% |\n\
         | dropout net | logistic | 3 hidden layers, 1024 units | 1.35% |\n\
         | dropout net | ReLU | 3 hidden layers, 1024 units | 1.25% |"
    );
    let _ = writeln!(
        t,
        "\nWhat differs: the paper trains on all 60,000 MNIST training images and tests on the \
         official 10,000 test images; we train on {n_train} images and test on {n_test} images \
         carved out of the official *training* set, so our error rates are not comparable with \
         the paper's in absolute terms, only the direction of the effect is. The paper's dropout \
         nets have three hidden layers (ours two), are trained with SGD with momentum for far \
         longer than our {} epochs, and its best results also use max-norm weight constraints, \
         which we do not.",
        c.epochs
    );
    t
}

/// Writes the figures, `results.md`, `provenance.md` and `results.json`.
pub fn write_outputs(run: &Run, report: &Report, table: &str) -> Result<()> {
    let curve = |net: &NetReport, f: fn(&Epoch) -> Option<f64>, name: &str| {
        Series::new(
            name,
            net.history
                .iter()
                .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
                .collect(),
        )
    };
    let train_loss = |e: &Epoch| e.train.map(|s| s.loss);
    let test_loss = |e: &Epoch| e.test.map(|s| s.loss);
    // Epoch 0 (an untrained net, loss about 2.3) would squash the interesting part of the plot.
    let skip0 = |s: Series| Series::new(s.name, s.points.into_iter().skip(1).collect());
    let loss = line_chart(
        Labels {
            title: "784-1024-1024-10 on MNIST: cross-entropy per epoch",
            x: "epoch",
            y: "mean cross-entropy (nats)",
        },
        &[
            skip0(curve(&report.plain, train_loss, "no dropout, train")),
            skip0(curve(&report.plain, test_loss, "no dropout, test")),
            skip0(curve(&report.dropout, train_loss, "dropout, train")),
            skip0(curve(&report.dropout, test_loss, "dropout, test")),
        ],
    )?;
    run.write("loss.svg", loss.as_bytes())?;
    // Test accuracy, drawn as the error rate `100% - accuracy`: the curves then end low on the
    // right, clear of the legend, and match the Monte Carlo figure and the paper's plots.
    let test_error = |e: &Epoch| e.test.map(|s| 100.0 * (1.0 - s.accuracy));
    let error = line_chart(
        Labels {
            title: "784-1024-1024-10 on MNIST: test error per epoch",
            x: "epoch",
            y: "test error (%) = 100% - accuracy",
        },
        &[
            skip0(curve(&report.plain, test_error, "no dropout")),
            skip0(curve(&report.dropout, test_error, "dropout")),
        ],
    )?;
    run.write("test-error.svg", error.as_bytes())?;
    if let Some(ws) = report.dropout.last().test {
        let ks: Vec<f64> = report
            .monte_carlo
            .iter()
            .map(|p| p.samples as f64)
            .collect();
        let (lo, hi) = (
            ks.first().copied().unwrap_or(1.0),
            ks.last().copied().unwrap_or(1.0),
        );
        let mc = line_chart(
            Labels {
                title: "Dropout net: Monte Carlo averaging vs weight scaling",
                x: "thinned networks averaged (k)",
                y: "test error (%)",
            },
            &[
                Series::new(
                    "Monte Carlo average of k",
                    report
                        .monte_carlo
                        .iter()
                        .map(|p| (p.samples as f64, 100.0 * (1.0 - p.test.accuracy)))
                        .collect(),
                ),
                Series::new(
                    "weight scaling (infer)",
                    vec![
                        (lo, 100.0 * (1.0 - ws.accuracy)),
                        (hi, 100.0 * (1.0 - ws.accuracy)),
                    ],
                ),
            ],
        )?;
        run.write("monte-carlo.svg", mc.as_bytes())?;
    }
    run.write("results.md", table.as_bytes())?;
    run.write_record("provenance.md", "results.json", report)
}

/// The optimiser settings `--tune` compares.
pub const TUNING_GRID: [(OptimizerKind, f32); 5] = [
    (OptimizerKind::Adam, 3e-4),
    (OptimizerKind::Adam, 1e-3),
    (OptimizerKind::Adam, 3e-3),
    (OptimizerKind::Sgd, 0.03),
    (OptimizerKind::Sgd, 0.1),
];

// ANCHOR: tune
/// `--tune`: trains both networks with every setting of [`TUNING_GRID`] (SGD with the
/// configured momentum) for the configured epochs, scoring only the validation split, and
/// writes the table as `tuning.md` (and `tuning.json`).
pub fn tune(
    run: &Run,
    config: &Config,
    seed: u64,
    train_split: &Split,
    validation: &Split,
) -> Result<()> {
    let watch = Watch {
        train: false,
        validation,
        test: None,
    };
    let progress = run.progress(
        (2 * TUNING_GRID.len() * config.epochs) as u64,
        "dropout --tune",
    );
    let mut table = Table::new(
        &[
            "optimiser",
            "network",
            "final validation CE",
            "final validation accuracy",
            "lowest validation CE (epoch)",
        ],
        "llrrr",
    );
    let mut runs = Vec::new();
    for (optimizer, lr) in TUNING_GRID {
        let c = Config {
            optimizer: OptimizerConfig {
                optimizer,
                lr,
                ..config.optimizer
            },
            ..config.clone()
        };
        let name = match optimizer {
            OptimizerKind::Adam => format!("Adam, lr {lr}"),
            OptimizerKind::Sgd => format!("SGD, lr {lr}, momentum {}", c.optimizer.momentum),
        };
        let (plain, dropped) = train_both(&c, train_split, watch, seed, &progress)?;
        for (net, outcome) in [("no dropout", plain), ("dropout", dropped)] {
            match outcome {
                Ok((_, r)) => {
                    let (last, best) = (r.last(), r.best_validation());
                    table.row([
                        name.clone(),
                        net.to_string(),
                        format!("{:.4}", last.validation.loss),
                        pct(last.validation.accuracy),
                        format!("{:.4} ({})", best.validation.loss, best.epoch),
                    ]);
                    runs.push((name.clone(), net, Some(r)));
                }
                Err(e) if e.downcast_ref::<NonFinite>().is_some() => {
                    table.row([&name, net, "diverged", "", ""]);
                    runs.push((name.clone(), net, None));
                }
                Err(e) => return Err(e),
            }
        }
    }
    progress.finish_and_clear();
    let mut t = table.to_string();
    let _ = writeln!(
        t,
        "\nEach network trained for {} epochs (batch {}) on {} images and scored on the {} \
         validation images after every epoch; the test split was not used.",
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
    let json = serde_json::to_string_pretty(&runs)?;
    run.write("tuning.json", json.as_bytes())?;
    Ok(())
}
// ANCHOR_END: tune
