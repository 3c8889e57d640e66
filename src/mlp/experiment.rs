//! The MLP chapter's experiment: a 784-256-256-10 network trained with Adam on the shipped MNIST
//! subset, the last 1,000 training images held back for validation, evaluated on the 2,000
//! test images.

use crate::data::batches::{ordered_batches, shuffled_batches};
use crate::data::mnist::{Mnist, Split};
use crate::loss::{accuracy, argmax_rows, cross_entropy_rows, softmax_cross_entropy};
use crate::mlp::Mlp;
use crate::optim::Adam;
use crate::param::{count, grad_norm, zero_grads};
use crate::plot::{Labels, Series, Tile, image_grid, line_chart};
use crate::runner::{CommonArgs, Run, ensure_finite};
use anyhow::{Context, Result};
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
    /// Adam's learning rate.
    pub lr: f32,
    /// How many of the last training images form the validation split.
    pub validation: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sizes: vec![784, 256, 256, 10],
            epochs: 20,
            batch_size: 128,
            lr: 1e-3,
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
    let mut adam = Adam::new(config.lr);
    let score = |m: &Mlp<f32>, e: usize| score_all(m, e, train, validation, test);
    let mut history = vec![score(&model, 0)];
    let mut step = 0;
    for epoch in 1..=config.epochs {
        for idx in shuffled_batches(train.len(), config.batch_size, rng) {
            step += 1;
            let batch = train.select(&idx);
            zero_grads(&mut model);
            let (logits, cache) = model.forward(&batch.images);
            let (loss, dlogits) = softmax_cross_entropy(&logits, &batch.labels);
            ensure_finite(step, "training loss", f64::from(loss))?;
            model.backward(&cache, &dlogits);
            ensure_finite(step, "gradient norm", grad_norm(&mut model))?;
            adam.step(&mut model);
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
        params: count(&mut model),
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
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
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

/// The book's folder for this chapter's figures and tables.
pub fn chapter_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters/mlp")
}

/// The data the program trains on: `--data DIR` or the shipped subset; in `--quick` runs a slice.
pub fn load_data(common: &CommonArgs) -> Result<(Split, Split, Split)> {
    let mnist = match &common.data {
        Some(dir) => Mnist::load(dir),
        None => Mnist::shipped(),
    }
    .context("cannot load MNIST")?;
    let validation_size = if common.quick { 200 } else { 1000 };
    let (mut train, mut validation) = mnist.train.split_last(validation_size);
    let mut test = mnist.test;
    if common.quick {
        let first = |s: &Split, n: usize| s.select(&(0..n.min(s.len())).collect::<Vec<_>>());
        train = first(&train, 1000);
        validation = first(&validation, 200);
        test = first(&test, 500);
    }
    anyhow::ensure!(
        !train.is_empty() && !validation.is_empty() && !test.is_empty(),
        "the data has too few images for a training, a validation and a test split"
    );
    anyhow::ensure!(
        train.rows * train.cols == 784 && test.rows * test.cols == 784,
        "the MLP expects 28x28 images"
    );
    Ok((train, validation, test))
}

// ANCHOR: program
/// The program: load, train, write figures and tables.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let config = Config {
        epochs: common.epochs_or(Config::default().epochs, 2),
        lr: cli.lr,
        batch_size: cli.batch_size as usize,
        ..Config::default()
    };
    anyhow::ensure!(
        cli.lr.is_finite() && cli.lr > 0.0,
        "--lr must be a positive number, got {}",
        cli.lr
    );
    if let Some(file) = &cli.load {
        return evaluate_checkpoint(common, &config, file);
    }
    let run = Run::new(common, &chapter_dir())?;
    let (train_split, validation, test) = load_data(common)?;
    let mut rng = ChaCha8Rng::seed_from_u64(common.seed);
    let progress = run.progress(config.epochs as u64, "mlp");
    let (mut model, report) = train(
        &config,
        &train_split,
        &validation,
        &test,
        &mut rng,
        &progress,
    )?;
    progress.finish_and_clear();
    if let Some(file) = &cli.save {
        crate::checkpoint::save(&mut model, "mlp", &describe(&config.sizes), file)?;
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
    let (train_split, validation, test) = load_data(common)?;
    let report = Report {
        config: Config {
            epochs: 0,
            ..config.clone()
        },
        params: count(&mut model),
        steps: 0,
        history: vec![score_all(&model, 0, &train_split, &validation, &test)],
        mistakes: mistakes(&model, &test),
    };
    let table = results_table(&report, (train_split.len(), validation.len(), test.len()));
    print!("{table}");
    if common.out.is_some() {
        let run = Run::new(common, &chapter_dir())?;
        run.write("results.md", table.as_bytes())?;
        write_mistakes(&run, &report, &test)?;
    }
    Ok(())
}

/// The Markdown results table.
pub fn results_table(report: &Report, (n_train, n_val, n_test): (usize, usize, usize)) -> String {
    let last = report.last();
    let mut t = String::new();
    let pct = |a: f64| format!("{:.2}%", 100.0 * a);
    let _ = writeln!(t, "| split | images | cross-entropy | accuracy | error |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|");
    for (name, n, s) in [
        ("train", n_train, last.train),
        ("validation", n_val, last.validation),
        ("test", n_test, last.test),
    ] {
        let _ = writeln!(
            t,
            "| {name} | {n} | {:.4} | {} | {} |",
            s.loss,
            pct(s.accuracy),
            pct(1.0 - s.accuracy)
        );
    }
    let _ = writeln!(
        t,
        "\nNetwork {:?}, {} parameters; Adam (lr {}), batch {}, {} epochs, {} steps.",
        report.config.sizes,
        report.params,
        report.config.lr,
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
