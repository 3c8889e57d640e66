//! The MLP chapter's experiment: a 784-256-256-10 network trained with Adam on the shipped MNIST
//! subset, the last 1,000 training images held back for validation, evaluated on the 2,000
//! test images.

use crate::data::batches::{ordered_batches, shuffled_batches};
use crate::data::mnist::{MnistSplits, Split};
use crate::loss::{accuracy, argmax_rows, cross_entropy_rows, softmax_cross_entropy};
use crate::mlp::Mlp;
use crate::optim::{OptimizerArgs, OptimizerConfig};
use crate::param::count;
use crate::plot::{Labels, Series, Tile, image_grid, line_chart};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, pct, train_step};
use anyhow::Result;
use indicatif::ProgressBar;

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
    /// Passes over the training split.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// The optimiser and its settings.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// How many of the last training images form the validation split.
    pub validation: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sizes: vec![784, 256, 256, 10],
            epochs: 20,
            batch_size: 128,
            optimizer: OptimizerConfig::adam(1e-3),
            validation: 1000,
        }
    }
}
// ANCHOR_END: config

/// Loss and accuracy of one split after one epoch.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Score {
    /// Mean cross-entropy, in nats.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
}

/// Scores after each epoch (epoch 0 is the untrained network).
#[derive(Clone, Debug, Serialize)]
pub struct Epoch {
    /// 0 before training, then 1, 2, ...
    pub epoch: usize,
    /// On the training split (after the epoch, with the weights at its end).
    pub train: Score,
    /// On the validation split.
    pub validation: Score,
    /// On the test split.
    pub test: Score,
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Trainable parameters.
    pub params: usize,
    /// Training steps taken.
    pub steps: usize,
    /// Scores per epoch.
    pub history: Vec<Epoch>,
    /// Indices (into the test split) and predicted classes of misclassified test images.
    pub mistakes: Vec<(usize, usize)>,
}

impl Report {
    /// The scores after the last epoch.
    pub fn last(&self) -> &Epoch {
        self.history
            .last()
            .expect("the history holds epoch 0 at least")
    }
}

/// Mean loss and accuracy of `model` on a split, evaluated in batches.
pub fn evaluate(model: &Mlp<f32>, split: &Split) -> Score {
    let (mut loss, mut hits) = (0.0, 0.0);
    for idx in ordered_batches(split.len(), 1000) {
        let part = split.select(&idx);
        let z = model.infer(&part.images);
        loss += cross_entropy_rows(&z, &part.labels)
            .iter()
            .map(|&l| f64::from(l))
            .sum::<f64>();
        hits += accuracy(&z, &part.labels) * idx.len() as f64;
    }
    let n = split.len().max(1) as f64;
    Score {
        loss: loss / n,
        accuracy: hits / n,
    }
}

// ANCHOR: train
/// Trains a fresh MLP on `train`, scoring it on all three splits after every epoch.
pub fn train(
    config: &Config,
    train: &Split,
    validation: &Split,
    test: &Split,
    rng: &mut ChaCha8Rng,
    progress: &ProgressBar,
) -> Result<(Mlp<f32>, Report)> {
    let mut model = Mlp::<f32>::new(&config.sizes, rng);
    let mut optimizer = config.optimizer.build();
    let score = |m: &Mlp<f32>, e: usize| score_all(m, e, train, validation, test);
    let mut history = vec![score(&model, 0)];
    let mut step = 0;
    for epoch in 1..=config.epochs {
        for idx in shuffled_batches(train.len(), config.batch_size, rng) {
            step += 1;
            let batch = train.select(&idx);
            train_step(step, &mut model, &mut optimizer, |model| {
                let (logits, cache) = model.forward(&batch.images);
                let (loss, dlogits) = softmax_cross_entropy(&logits, &batch.labels);
                model.backward_params(&cache, &dlogits);
                loss
            })?;
        }
        history.push(score(&model, epoch));
        progress.inc(1);
        progress.set_message(format!(
            "val acc {:.2}%",
            100.0 * history[epoch].validation.accuracy
        ));
    }
    let report = Report {
        config: config.clone(),
        params: count(&model),
        steps: step,
        history,
        mistakes: mistakes(&model, test),
    };
    Ok((model, report))
}
// ANCHOR_END: train

/// Scores on the three splits, as epoch `epoch` of a history.
pub fn score_all(
    model: &Mlp<f32>,
    epoch: usize,
    train: &Split,
    validation: &Split,
    test: &Split,
) -> Epoch {
    Epoch {
        epoch,
        train: evaluate(model, train),
        validation: evaluate(model, validation),
        test: evaluate(model, test),
    }
}

/// The test images `model` gets wrong: `(index, predicted class)`.
pub fn mistakes(model: &Mlp<f32>, test: &Split) -> Vec<(usize, usize)> {
    argmax_rows(&model.infer(&test.images))
        .iter()
        .zip(&test.labels)
        .enumerate()
        .filter(|(_, (p, y))| p != y)
        .map(|(i, (&p, _))| (i, p))
        .collect()
}

/// How a checkpoint describes the network it holds.
pub fn describe(sizes: &[usize]) -> String {
    format!("layer sizes {sizes:?}")
}

/// The flags of `cargo run --release --example mlp`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "mlp",
    about = "Train the MLP chapter's network on MNIST and draw its figures"
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
    /// After training, save the network to this safetensors file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
    /// Load a network saved with --save instead of training one, and evaluate it; writes
    /// `results.md` and `mistakes.svg` only into an explicit --out folder.
    #[arg(long, value_name = "FILE", conflicts_with = "save")]
    pub load: Option<std::path::PathBuf>,
}

// ANCHOR: program
/// The program: load, train, write figures and tables.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let config = Config {
        epochs: common.epochs_or(Config::default().epochs, 2),
        optimizer: cli.optimizer.resolve(Config::default().optimizer)?,
        batch_size: cli.batch_size as usize,
        ..Config::default()
    };
    if let Some(file) = &cli.load {
        return evaluate_checkpoint(common, &config, file);
    }
    let run = Run::new(common, &chapter_dir("mlp"))?;
    let MnistSplits {
        train: train_split,
        validation,
        test,
    } = MnistSplits::load(&common.data_dir("mnist"), common.quick)?;
    let mut rng = ChaCha8Rng::seed_from_u64(common.seed);
    let progress = run.progress(config.epochs as u64, "mlp");
    let (model, report) = train(
        &config,
        &train_split,
        &validation,
        &test,
        &mut rng,
        &progress,
    )?;
    progress.finish_and_clear();
    if let Some(file) = &cli.save {
        crate::checkpoint::save(&model, "mlp", &describe(&config.sizes), file)?;
    }
    let sizes = (train_split.len(), validation.len(), test.len());
    let table = results_table(&report, sizes);
    print!("{table}");
    write_outputs(&run, &report, &test, &table)
}
// ANCHOR_END: program

/// `--load FILE`: scores a saved network instead of training one.
fn evaluate_checkpoint(common: &CommonArgs, config: &Config, file: &Path) -> Result<()> {
    let mut model = Mlp::<f32>::new(&config.sizes, &mut ChaCha8Rng::seed_from_u64(0));
    crate::checkpoint::load(&mut model, "mlp", &describe(&config.sizes), file)?;
    let MnistSplits {
        train: train_split,
        validation,
        test,
    } = MnistSplits::load(&common.data_dir("mnist"), common.quick)?;
    let report = Report {
        config: Config {
            epochs: 0,
            ..config.clone()
        },
        params: count(&model),
        steps: 0,
        history: vec![score_all(&model, 0, &train_split, &validation, &test)],
        mistakes: mistakes(&model, &test),
    };
    let table = results_table(&report, (train_split.len(), validation.len(), test.len()));
    print!("{table}");
    if common.out.is_some() {
        let run = Run::new(common, &chapter_dir("mlp"))?;
        run.write("results.md", table.as_bytes())?;
        write_mistakes(&run, &report, &test)?;
    }
    Ok(())
}

/// The Markdown results table.
pub fn results_table(report: &Report, (n_train, n_val, n_test): (usize, usize, usize)) -> String {
    let last = report.last();
    let mut table = Table::new(
        &["split", "images", "cross-entropy", "accuracy", "error"],
        "lrrrr",
    );
    for (name, n, s) in [
        ("train", n_train, last.train),
        ("validation", n_val, last.validation),
        ("test", n_test, last.test),
    ] {
        table.row([
            name.to_string(),
            n.to_string(),
            format!("{:.4}", s.loss),
            pct(s.accuracy),
            pct(1.0 - s.accuracy),
        ]);
    }
    let mut t = table.to_string();
    let _ = writeln!(
        t,
        "\nNetwork {:?}, {} parameters; {}, batch {}, {} epochs, {} steps.",
        report.config.sizes,
        report.params,
        report.config.optimizer.describe(),
        report.config.batch_size,
        report.config.epochs,
        report.steps
    );
    t
}

/// Writes the figures, `results.md` and `results.json`.
pub fn write_outputs(run: &Run, report: &Report, test: &Split, table: &str) -> Result<()> {
    // Epoch 0 (the untrained network, loss about ln 10) is left out of the curves: it would
    // squash the part of the plot where training and test losses part ways.
    let curve = |f: fn(&Epoch) -> f64, name: &str| {
        Series::new(
            name,
            report.history[1..]
                .iter()
                .map(|e| (e.epoch as f64, f(e)))
                .collect(),
        )
    };
    let loss = line_chart(
        Labels {
            title: "MLP on MNIST: cross-entropy per epoch",
            x: "epoch",
            y: "mean cross-entropy (nats)",
        },
        &[
            curve(|e| e.train.loss, "train"),
            curve(|e| e.validation.loss, "validation"),
            curve(|e| e.test.loss, "test"),
        ],
    )?;
    run.write("loss.svg", loss.as_bytes())?;
    let acc = line_chart(
        Labels {
            title: "MLP on MNIST: accuracy per epoch",
            x: "epoch",
            y: "accuracy (%)",
        },
        &[
            curve(|e| 100.0 * e.train.accuracy, "train"),
            curve(|e| 100.0 * e.validation.accuracy, "validation"),
            curve(|e| 100.0 * e.test.accuracy, "test"),
        ],
    )?;
    run.write("accuracy.svg", acc.as_bytes())?;
    write_mistakes(run, report, test)?;
    run.write("results.md", table.as_bytes())?;
    run.write_record("provenance.md", "results.json", report)?;
    Ok(())
}

/// Draws the first 32 misclassified test images with their guesses.
fn write_mistakes(run: &Run, report: &Report, test: &Split) -> Result<()> {
    let shown: Vec<Tile<'_>> = report
        .mistakes
        .iter()
        .take(32)
        .map(|&(i, guess)| Tile {
            pixels: test
                .images
                .row(i)
                .to_slice()
                .expect("rows of a standard-layout array are contiguous"),
            caption: format!("{guess} (true {})", test.labels[i]),
        })
        .collect();
    let grid = image_grid(&shown, test.rows, test.cols, 8, 3)?;
    run.write("mistakes.svg", grid.as_bytes())?;
    Ok(())
}
