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
use ndarray::Array2;

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
    let model = Mlp::<f32>::new(&config.sizes, rng);
    train_model(config, model, train, validation, test, rng, progress)
}
// ANCHOR_END: train

/// [`train`] from the given initial network, without progress bar; returns the report.
fn train_from(
    config: &Config,
    model: Mlp<f32>,
    train: &Split,
    validation: &Split,
    test: &Split,
    rng: &mut ChaCha8Rng,
) -> Result<Report> {
    let (_, report) = train_model(
        config,
        model,
        train,
        validation,
        test,
        rng,
        &ProgressBar::hidden(),
    )?;
    Ok(report)
}

// ANCHOR: train_loop
/// The training loop: an epoch is one pass over the shuffled training split in batches; after
/// each, the network is scored on all three splits.
pub fn train_model(
    config: &Config,
    mut model: Mlp<f32>,
    train: &Split,
    validation: &Split,
    test: &Split,
    rng: &mut ChaCha8Rng,
    progress: &ProgressBar,
) -> Result<(Mlp<f32>, Report)> {
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
// ANCHOR_END: train_loop

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
    /// `--save FILE`, `--load FILE`.
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
    /// Also train with these seeds (comma-separated) and write `seeds.md`, how much the result
    /// moves with the seed alone; the run's own seed is never trained twice, so `--seeds 1` with
    /// the default `--seed 1` skips the extra runs.
    #[arg(long, value_delimiter = ',', default_value = "2,3")]
    pub seeds: Vec<u64>,
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
    if let Some(file) = &cli.checkpoint.load {
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
    cli.checkpoint
        .save_if_asked(&model, "mlp", &describe(&config.sizes))?;
    let sizes = (train_split.len(), validation.len(), test.len());
    let table = results_table(&report, sizes);
    print!("{table}");
    let splits = [&train_split, &validation, &test];
    let seeds = seeds_table(&config, &report, common.seed, &cli.seeds, splits)?;
    let init = init_study(&config, common.seed, splits)?;
    write_outputs(&run, &report, &test, &table)?;
    // The network before training: `train` draws it first from a generator seeded the same way.
    let initial = Mlp::<f32>::new(&config.sizes, &mut ChaCha8Rng::seed_from_u64(common.seed));
    write_extras(&run, &model, &initial, &seeds, &init)
}
// ANCHOR_END: program

/// `seeds.md`: the same run with other seeds, so the chapter can say how much of a difference
/// between two numbers is the seed's.
fn seeds_table(
    config: &Config,
    report: &Report,
    seed: u64,
    others: &[u64],
    [train_split, validation, test]: [&Split; 3],
) -> Result<String> {
    let mut t = Table::new(
        &["seed", "validation accuracy", "test accuracy", "test error"],
        "rrrr",
    );
    let mut accuracies = Vec::new();
    let mut row = |t: &mut Table, seed: u64, e: &Epoch| {
        accuracies.push(e.test.accuracy);
        t.row([
            seed.to_string(),
            pct(e.validation.accuracy),
            pct(e.test.accuracy),
            pct(1.0 - e.test.accuracy),
        ]);
    };
    row(&mut t, seed, report.last());
    for &other in others.iter().filter(|&&s| s != seed) {
        let mut rng = ChaCha8Rng::seed_from_u64(other);
        let hidden = ProgressBar::hidden();
        let (_, r) = train(config, train_split, validation, test, &mut rng, &hidden)?;
        row(&mut t, other, r.last());
    }
    let n = accuracies.len() as f64;
    let mean = accuracies.iter().sum::<f64>() / n;
    let sd =
        (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let mut text = t.to_string();
    let _ = writeln!(
        text,
        "\nAfter {} epochs each; the seed sets the initial weights and the batch order. Mean test \
         accuracy {} over {} seeds, standard deviation {:.2} percentage points.",
        config.epochs,
        pct(mean),
        accuracies.len(),
        100.0 * sd
    );
    Ok(text)
}

// ANCHOR: init_study
/// What one initialisation does to the untrained network: for each hidden layer, the RMS of
/// its pre-activations and the fraction of its ReLUs that are zero for every image of a batch
/// (dead from the start), and for each layer the RMS of the gradient of its weights; then the
/// test accuracy after the chapter's full training budget.
#[derive(Clone, Debug, Serialize)]
pub struct InitStats {
    /// "He" or "N(0, 1)".
    pub name: String,
    /// RMS of each hidden layer's pre-activations on the batch.
    pub pre_activation_rms: Vec<f64>,
    /// Fraction of each hidden layer's units that output zero for every image of the batch.
    pub dead_fraction: Vec<f64>,
    /// RMS of the gradient of each layer's weights, for the mean cross-entropy of the batch.
    pub weight_grad_rms: Vec<f64>,
    /// Mean cross-entropy of the untrained network on the batch, in nats.
    pub initial_loss: f64,
    /// Test accuracy after training with the chapter's settings.
    pub trained_test_accuracy: f64,
}

/// Measures He initialisation (`N(0, 2 / n_in)`, the chapter's) against `N(0, 1)` weights on
/// the first 1,000 training images, and trains a network from each with the same seed.
pub fn init_study(
    config: &Config,
    seed: u64,
    [train_split, validation, test]: [&Split; 3],
) -> Result<Vec<InitStats>> {
    let batch = train_split.first(1000);
    let rms = |a: &Array2<f32>| {
        (a.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / a.len().max(1) as f64).sqrt()
    };
    let mut out = Vec::new();
    for (name, unit_normal) in [("He", false), ("N(0, 1)", true)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Mlp::<f32>::new(&config.sizes, &mut rng);
        if unit_normal {
            for layer in &mut model.layers {
                let (n_in, n_out) = layer.w.value.dim();
                layer.w.value = crate::init::he_normal::<f32>(n_in, n_out, &mut rng)
                    .mapv(|w| w / (2.0 / n_in as f32).sqrt());
            }
        }
        let mut h = batch.images.clone();
        let (mut pre, mut dead) = (Vec::new(), Vec::new());
        for layer in &model.layers[..model.layers.len() - 1] {
            let a = layer.infer(&h);
            pre.push(rms(&a));
            let never_on = a
                .columns()
                .into_iter()
                .filter(|c| c.iter().all(|&v| v <= 0.0))
                .count();
            dead.push(never_on as f64 / a.ncols() as f64);
            h = crate::activation::relu(&a);
        }
        crate::param::zero_grads(&mut model);
        let (logits, cache) = model.forward(&batch.images);
        let (loss, dz) = softmax_cross_entropy(&logits, &batch.labels);
        model.backward_params(&cache, &dz);
        let grads = model.layers.iter().map(|l| rms(&l.w.grad)).collect();
        let mut train_rng = ChaCha8Rng::seed_from_u64(seed);
        let trained = {
            let mut m = Mlp::<f32>::new(&config.sizes, &mut train_rng);
            m.layers = model.layers.clone();
            for l in &mut m.layers {
                l.w.grad.fill(0.0);
                l.b.grad.fill(0.0);
            }
            train_from(config, m, train_split, validation, test, &mut train_rng)?
        };
        out.push(InitStats {
            name: name.to_string(),
            pre_activation_rms: pre,
            dead_fraction: dead,
            weight_grad_rms: grads,
            initial_loss: f64::from(loss),
            trained_test_accuracy: trained.last().test.accuracy,
        });
    }
    Ok(out)
}
// ANCHOR_END: init_study

/// The Markdown table of [`init_study`].
pub fn init_table(stats: &[InitStats]) -> String {
    let layers = stats.first().map_or(0, |s| s.weight_grad_rms.len());
    let mut header = vec!["initialisation".to_string()];
    for i in 1..layers {
        header.push(format!("hidden {i}: pre-activation RMS"));
        header.push(format!("hidden {i}: dead ReLUs"));
    }
    for i in 1..=layers {
        header.push(format!("layer {i}: weight-gradient RMS"));
    }
    header.push("initial loss (nats)".to_string());
    header.push("test accuracy after training".to_string());
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let align: String = std::iter::once('l')
        .chain(std::iter::repeat_n('r', refs.len() - 1))
        .collect();
    let mut t = Table::new(&refs, &align);
    for s in stats {
        let mut cells = vec![s.name.clone()];
        for (r, d) in s.pre_activation_rms.iter().zip(&s.dead_fraction) {
            cells.push(format!("{r:.3}"));
            cells.push(pct(*d));
        }
        cells.extend(s.weight_grad_rms.iter().map(|g| format!("{g:.2e}")));
        cells.push(format!("{:.2}", s.initial_loss));
        cells.push(pct(s.trained_test_accuracy));
        t.row(cells);
    }
    t.to_string()
}

/// Writes `seeds.md`, `init.md` (with `init.json`) and `weights.svg`: for 32 hidden units, what
/// training changed in their first-layer weights (trained minus initial), drawn as images.
fn write_extras(
    run: &Run,
    model: &Mlp<f32>,
    initial: &Mlp<f32>,
    seeds: &str,
    init: &[InitStats],
) -> Result<()> {
    run.write("seeds.md", seeds.as_bytes())?;
    let table = init_table(init);
    print!("{seeds}\n{table}");
    run.write("init.md", table.as_bytes())?;
    run.write("init.json", serde_json::to_string_pretty(init)?.as_bytes())?;
    let w = &model.layers[0].w.value - &initial.layers[0].w.value;
    // Unit j's 784 incoming weight changes as a 28x28 image: grey is no change, dark an increase,
    // light a decrease, each unit scaled by its own largest change.
    let images: Vec<Vec<f32>> = (0..32.min(w.ncols()))
        .map(|j| {
            let col = w.column(j);
            let m = col
                .iter()
                .fold(0.0_f32, |m, v| m.max(v.abs()))
                .max(f32::MIN_POSITIVE);
            col.iter().map(|v| 0.5 + 0.5 * v / m).collect()
        })
        .collect();
    let tiles: Vec<Tile<'_>> = images
        .iter()
        .enumerate()
        .map(|(j, pixels)| Tile {
            pixels,
            caption: format!("unit {j}"),
        })
        .collect();
    let grid = image_grid(&tiles, 28, 28, 8, 3)?;
    run.write("weights.svg", grid.as_bytes())
}

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
    let mut paper = Table::new(
        &["network (published)", "training images", "test error"],
        "lrr",
    );
    paper.row(["784-300-10, LeCun et al. (1998)", "60000", "4.7%"]);
    paper.row(["784-300-100-10, LeCun et al. (1998)", "60000", "3.05%"]);
    paper.row([
        "784-800-10, cross-entropy, Simard et al. (2003)",
        "60000",
        "1.6%",
    ]);
    paper.row([
        format!("{:?} (this run)", report.config.sizes),
        n_train.to_string(),
        pct(1.0 - last.test.accuracy),
    ]);
    let _ = writeln!(
        t,
        "\nPublished fully connected networks on MNIST, for comparison:\n\n{paper}\nWhat differs: \
         the published networks train on all 60,000 training images and are tested on the \
         official 10,000 test images, written by other people than the training set; ours trains \
         on {n_train} and is tested on {n_test} images carved from the official training set, so \
         only the order of magnitude compares. The published networks were also trained with other \
         optimisers (Adam dates from 2015) and, for LeCun et al., other losses; Simard et al.'s \
         row is the one trained with cross-entropy, as ours is."
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
