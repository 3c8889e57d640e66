//! The program of `cargo run --release --example vit`: the [`ImageEncoder`] trained on the
//! shipped MNIST split (7,000 training, 1,000 validation, 2,000 test images), once with mean
//! pooling and once with attention pooling, one per thread. After every epoch both are scored
//! on all three splits; the epoch reported is the one with the best validation accuracy.

use super::vision::{ImageEncoder, Pool, VisionConfig};
use crate::data::batches::{ordered_batches, shuffled_batches};
use crate::data::mnist::{MnistSplits, Split};
use crate::loss::{accuracy, softmax_cross_entropy};
use crate::mlp::Mlp;
use crate::optim::OptimizerConfig;
use crate::param::{Params, count};
use crate::plot::{Labels, Series, Tile, image_grid, line_chart};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, pct, read_results, stream, train_step};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::Path;

/// The training settings (the model's pooling head is set per run).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settings {
    /// The encoder's sizes.
    pub model: VisionConfig,
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Adam's peak learning rate.
    pub lr: f64,
    /// Epochs of linear warm-up from zero to the peak; then a cosine decay to zero at the end.
    pub warmup_epochs: f64,
    /// Each training image is shifted by a random whole number of pixels in `-shift..=shift`,
    /// independently along each axis (0: no augmentation).
    pub shift: usize,
}

// ANCHOR: schedule
/// The learning rate at `step` (counted from 1) of `total`: linear warm-up over `warmup` steps
/// from `peak / warmup` to `peak`, then a half cosine from `peak` down to zero at `total`.
pub fn warmup_cosine(peak: f64, warmup: usize, total: usize, step: usize) -> f64 {
    if step <= warmup {
        return peak * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    0.5 * peak * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}
// ANCHOR_END: schedule

// ANCHOR: shift
/// Shifts each `side x side` image (a row of `images`) by `(dr, dc)` pixels drawn uniformly
/// from `-max..=max`, filling the uncovered border with zeros (background).
pub fn random_shifts(
    images: &Array2<f32>,
    side: usize,
    max: usize,
    rng: &mut impl Rng,
) -> Array2<f32> {
    if max == 0 {
        return images.clone();
    }
    let m = max as i64;
    let mut out = Array2::zeros(images.raw_dim());
    for (src, mut dst) in images.rows().into_iter().zip(out.rows_mut()) {
        let (dr, dc) = (
            rng.random_range(-m..=m) as isize,
            rng.random_range(-m..=m) as isize,
        );
        for r in 0..side as isize {
            let sr = r - dr;
            if sr < 0 || sr >= side as isize {
                continue;
            }
            for c in 0..side as isize {
                let sc = c - dc;
                if sc >= 0 && sc < side as isize {
                    dst[(r * side as isize + c) as usize] = src[(sr * side as isize + sc) as usize];
                }
            }
        }
    }
    out
}
// ANCHOR_END: shift

/// Accuracy on the three splits after one epoch, and the epoch's mean training loss.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Epoch {
    /// 1, 2, ...
    pub epoch: usize,
    /// Mean cross-entropy of the epoch's training batches (augmented, with dropout), in nats.
    pub train_loss: f64,
    /// Accuracy on the (unaugmented) training split.
    pub train: f64,
    /// Accuracy on the validation split.
    pub validation: f64,
    /// Accuracy on the test split.
    pub test: f64,
}

/// A model's scores after every epoch, and the epoch chosen on validation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Trained {
    /// Trainable parameters.
    pub params: usize,
    /// Scores after every epoch.
    pub history: Vec<Epoch>,
    /// The epoch with the best validation accuracy (the first, on a tie).
    pub chosen: usize,
}

impl Trained {
    /// The scores at the chosen epoch.
    pub fn chosen(&self) -> &Epoch {
        &self.history[self.chosen - 1]
    }
}

/// One encoder's run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PoolReport {
    /// The pooling head.
    pub pool: Pool,
    /// Its training.
    #[serde(flatten)]
    pub trained: Trained,
    /// For attention pooling: the mean, over the test images, of the largest weight the pool
    /// gives one patch (uniform weights would give `1 / patches`).
    pub mean_max_weight: Option<f64>,
}

/// What [`fit`] needs of an image classifier: a training step's loss and gradients, and logits.
pub trait ImageModel: Params<f32> {
    /// The mean cross-entropy of a training batch (dropout masks from `rng`, if the model has
    /// dropout), after a backward pass that adds every parameter's gradient.
    fn loss_backward(
        &mut self,
        images: &Array2<f32>,
        labels: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> f32;
    /// Evaluation-mode logits.
    fn logits(&self, images: &Array2<f32>) -> Array2<f32>;
}

impl ImageModel for ImageEncoder<f32> {
    fn loss_backward(
        &mut self,
        images: &Array2<f32>,
        labels: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> f32 {
        let (logits, cache) = self.forward_train(images, rng);
        let (loss, dlogits) = softmax_cross_entropy(&logits, labels);
        self.backward(&cache, &dlogits);
        loss
    }
    fn logits(&self, images: &Array2<f32>) -> Array2<f32> {
        self.infer(images)
    }
}

/// The MLP chapter's network, as the baseline trained with the encoder's recipe.
impl ImageModel for Mlp<f32> {
    fn loss_backward(&mut self, images: &Array2<f32>, labels: &[usize], _: &mut ChaCha8Rng) -> f32 {
        let (logits, cache) = self.forward(images);
        let (loss, dlogits) = softmax_cross_entropy(&logits, labels);
        self.backward_params(&cache, &dlogits);
        loss
    }
    fn logits(&self, images: &Array2<f32>) -> Array2<f32> {
        self.infer(images)
    }
}

/// Accuracy of `model` on a split, in batches of 500.
pub fn evaluate(model: &impl ImageModel, split: &Split) -> f64 {
    let mut hits = 0.0;
    for idx in ordered_batches(split.len(), 500) {
        let part = split.select(&idx);
        hits += accuracy(&model.logits(&part.images), &part.labels) * idx.len() as f64;
    }
    hits / split.len().max(1) as f64
}

// ANCHOR: train
/// Trains `model` with the settings' recipe (random shifts, Adam on the warm-up and cosine
/// schedule) from `seed`'s streams (1 the batch order, 2 the dropout masks, 3 the shifts; 0 is
/// left to the caller for the initial weights), scoring it after every epoch. Returns the
/// model at the end of training and its scores.
pub fn fit<M: ImageModel>(
    s: &Settings,
    mut model: M,
    (train_split, validation, test): (&Split, &Split, &Split),
    seed: u64,
    progress: &ProgressBar,
) -> Result<(M, Trained)> {
    let mut optimizer = OptimizerConfig::adam(s.lr as f32).build::<f32>();
    let (mut order, mut drops, mut shifts) = (stream(seed, 1), stream(seed, 2), stream(seed, 3));
    let per_epoch = train_split.len().div_ceil(s.batch);
    let total = per_epoch * s.epochs;
    let warmup = (s.warmup_epochs * per_epoch as f64).round() as usize;
    let mut history = Vec::with_capacity(s.epochs);
    let mut step = 0;
    for epoch in 1..=s.epochs {
        let mut loss_sum = 0.0;
        let batches = shuffled_batches(train_split.len(), s.batch, &mut order);
        for idx in &batches {
            step += 1;
            let part = train_split.select(idx);
            let images = random_shifts(&part.images, s.model.side, s.shift, &mut shifts);
            optimizer.set_lr(warmup_cosine(s.lr, warmup, total, step) as f32);
            loss_sum += train_step(step, &mut model, &mut optimizer, |m| {
                m.loss_backward(&images, &part.labels, &mut drops)
            })?;
        }
        history.push(Epoch {
            epoch,
            train_loss: loss_sum / batches.len() as f64,
            train: evaluate(&model, train_split),
            validation: evaluate(&model, validation),
            test: evaluate(&model, test),
        });
        progress.inc(1);
    }
    let chosen = history
        .iter()
        .fold(&history[0], |best, e| {
            if e.validation > best.validation {
                e
            } else {
                best
            }
        })
        .epoch;
    let params = count(&model);
    Ok((
        model,
        Trained {
            params,
            history,
            chosen,
        },
    ))
}
// ANCHOR_END: train

/// Trains one encoder with the given pooling head ([`fit`], the initial weights from `seed`'s
/// stream 0) and measures how far its attention pool is from uniform.
pub fn train(
    s: &Settings,
    pool: Pool,
    splits: (&Split, &Split, &Split),
    seed: u64,
    progress: &ProgressBar,
) -> Result<(ImageEncoder<f32>, PoolReport)> {
    let config = VisionConfig { pool, ..s.model };
    let model = ImageEncoder::<f32>::new(config, &mut stream(seed, 0))?;
    let (model, trained) = fit(s, model, splits, seed, progress)?;
    let mean_max_weight = pool_weights(&model, &splits.2.images).map(|w| {
        w.rows()
            .into_iter()
            .map(|r| f64::from(r.fold(0.0f32, |m, &v| m.max(v))))
            .sum::<f64>()
            / w.nrows().max(1) as f64
    });
    let report = PoolReport {
        pool,
        trained,
        mean_max_weight,
    };
    Ok((model, report))
}

/// The MLP chapter's network (784-256-256-10) trained with the encoder's recipe: the same
/// shifts, epochs, batches and schedule, so the comparison with the encoder is like for like.
pub fn train_mlp_baseline(
    s: &Settings,
    splits: (&Split, &Split, &Split),
    seed: u64,
    progress: &ProgressBar,
) -> Result<Trained> {
    let side = s.model.side;
    let model = Mlp::<f32>::new(
        &[side * side, 256, 256, s.model.classes],
        &mut stream(seed, 0),
    );
    Ok(fit(s, model, splits, seed, progress)?.1)
}

/// The attention pool's weights over the patches (mean over heads), `[images, patches]`, in
/// batches of 500; `None` for mean pooling.
pub fn pool_weights(model: &ImageEncoder<f32>, images: &Array2<f32>) -> Option<Array2<f32>> {
    model.pool.as_ref()?;
    let parts: Vec<Array2<f32>> = ordered_batches(images.nrows(), 500)
        .iter()
        .map(|idx| {
            let x = images.select(ndarray::Axis(0), idx);
            model
                .forward(&x)
                .1
                .pool_weights()
                .expect("an attention pool")
        })
        .collect();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    Some(ndarray::concatenate(ndarray::Axis(0), &views).expect("same widths"))
}

/// The flags of `cargo run --release --example vit`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "vit",
    about = "Train a Transformer encoder over image patches on MNIST, with mean and with attention pooling"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    /// Patch side in pixels (4 or 7: they divide 28).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["4", "7"]))]
    pub patch: Option<String>,
    /// Model width.
    #[arg(long, value_parser = clap::value_parser!(u64).range(4..=1024))]
    pub d: Option<u64>,
    /// Encoder blocks.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub layers: Option<u64>,
    /// Feed-forward width (default: twice the model width).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub ff: Option<u64>,
    /// Images per step.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=7000))]
    pub batch_size: Option<u64>,
    /// Adam's peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warm-up, in epochs (may be fractional).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Largest random shift of a training image, in pixels (0: no augmentation).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=6))]
    pub shift: Option<u64>,
    /// Dropout on each sublayer's output.
    #[arg(long)]
    pub dropout: Option<f64>,
}

/// The default settings (`quick`: a seconds-long run for tests), with the flags applied.
pub fn settings(cli: &Cli) -> Result<Settings> {
    let quick = cli.common.quick;
    let d = cli.d.map_or(if quick { 16 } else { 64 }, |d| d as usize);
    let patch = cli.patch.as_deref().map_or(Ok(7), str::parse)?;
    let s = Settings {
        model: VisionConfig {
            side: 28,
            patch,
            d,
            heads: 4,
            ff: cli.ff.map_or(2 * d, |f| f as usize),
            layers: cli.layers.map_or(if quick { 1 } else { 2 }, |l| l as usize),
            classes: 10,
            pool: Pool::Mean,
            positions: true,
            dropout: cli.dropout.unwrap_or(0.1),
        },
        epochs: cli.common.epochs_or(50, 4),
        batch: cli
            .batch_size
            .map_or(if quick { 50 } else { 64 }, |b| b as usize),
        lr: cli.lr.unwrap_or(2e-3),
        warmup_epochs: cli.warmup.unwrap_or(if quick { 0.5 } else { 1.0 }),
        shift: cli.shift.map_or(2, |s| s as usize),
    };
    anyhow::ensure!(
        s.lr.is_finite() && s.lr > 0.0,
        "--lr must be a positive number, got {}",
        s.lr
    );
    anyhow::ensure!(
        s.warmup_epochs.is_finite() && s.warmup_epochs >= 0.0 && s.warmup_epochs <= s.epochs as f64,
        "--warmup must be between 0 and the number of epochs ({}), got {}",
        s.epochs,
        s.warmup_epochs
    );
    anyhow::ensure!(
        s.model.heads > 0 && s.model.d.is_multiple_of(s.model.heads),
        "--d must be a multiple of the {} heads, got {}",
        s.model.heads,
        s.model.d
    );
    crate::dropout::Dropout::new(s.model.dropout).map_err(|e| anyhow::anyhow!("--dropout: {e}"))?;
    Ok(s)
}

/// The MLP chapter's validation and test accuracy per epoch (epoch 1 onwards), read from its
/// `results.json`.
pub fn mlp_history(file: &Path) -> Result<Vec<(f64, f64, f64)>> {
    let json = read_results(file, "mlp")?;
    let history = json["report"]["history"]
        .as_array()
        .with_context(|| format!("{} has no report.history", file.display()))?;
    history
        .iter()
        .filter(|e| e["epoch"].as_u64().is_some_and(|n| n > 0))
        .map(|e| {
            let get = |split: &str| {
                e[split]["accuracy"].as_f64().with_context(|| {
                    format!("{}: an epoch without {split}.accuracy", file.display())
                })
            };
            Ok((
                e["epoch"].as_f64().unwrap_or(0.0),
                get("validation")?,
                get("test")?,
            ))
        })
        .collect()
}

/// Everything the program measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The settings.
    pub settings: Settings,
    /// One run per pooling head.
    pub runs: Vec<PoolReport>,
    /// The MLP chapter's network trained with the encoder's recipe (shifts, schedule, epochs).
    pub mlp_baseline: Trained,
    /// The MLP's test accuracy after its last epoch, from its results.
    pub mlp_test: f64,
}

/// The program.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let s = settings(&cli)?;
    let mlp_file = chapter_dir("mlp").join("results.json");
    let mlp = mlp_history(&mlp_file)?;
    anyhow::ensure!(!mlp.is_empty(), "{} holds no epoch", mlp_file.display());
    let mut run = Run::new(common, &chapter_dir("transformer_at_work"))?;
    let data = MnistSplits::load(&common.data_dir("mnist"), common.quick)?;
    let splits = (&data.train, &data.validation, &data.test);
    let pools = [Pool::Mean, Pool::Attention];
    let progress = run.progress((s.epochs * (pools.len() + 1)) as u64, "vit");
    // Attention pooling (the slowest) on its own thread; mean pooling and then the MLP baseline
    // on the other.
    let (results, baseline) = std::thread::scope(|scope| {
        let (s, progress) = (&s, &progress);
        let attention =
            scope.spawn(move || train(s, Pool::Attention, splits, common.seed, progress));
        let mean = train(s, Pool::Mean, splits, common.seed, progress);
        let baseline = train_mlp_baseline(s, splits, common.seed, progress);
        let attention = attention
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        Ok::<_, anyhow::Error>((vec![mean?, attention?], baseline?))
    })?;
    progress.finish_and_clear();
    run.set_threads(
        2,
        Some("attention pooling on one; mean pooling, then the MLP baseline, on the other"),
    );
    let reports: Vec<PoolReport> = results.iter().map(|(_, r)| r.clone()).collect();
    let mlp_test = mlp.last().map_or(f64::NAN, |e| e.2);
    let table = results_table(&s, &reports, &baseline, mlp_test, data.sizes());
    print!("{table}");
    run.write("vision-results.md", table.as_bytes())?;
    // Accuracy per epoch next to the MLP's.
    let mut curves = Vec::new();
    for r in &reports {
        let per = |f: fn(&Epoch) -> f64| {
            r.trained
                .history
                .iter()
                .map(|e| (e.epoch as f64, 100.0 * f(e)))
                .collect()
        };
        curves.push(Series::new(
            format!("{}, validation", r.pool.name()),
            per(|e| e.validation),
        ));
        curves.push(Series::new(
            format!("{}, test", r.pool.name()),
            per(|e| e.test),
        ));
    }
    curves.push(Series::new(
        "MLP, same recipe, test",
        baseline
            .history
            .iter()
            .map(|e| (e.epoch as f64, 100.0 * e.test))
            .collect(),
    ));
    curves.push(Series::new(
        "MLP, validation",
        mlp.iter().map(|e| (e.0, 100.0 * e.1)).collect(),
    ));
    curves.push(Series::new(
        "MLP, test",
        mlp.iter().map(|e| (e.0, 100.0 * e.2)).collect(),
    ));
    let chart = line_chart(
        Labels {
            title: "Patch encoder and MLP on MNIST: accuracy per epoch",
            x: "epoch",
            y: "accuracy (%)",
        },
        &curves,
    )?;
    run.write("vision-accuracy.svg", chart.as_bytes())?;
    let (attn_model, _) = results
        .iter()
        .find(|(_, r)| r.pool == Pool::Attention)
        .expect("an attention-pooling run");
    run.write(
        "vision-attention.svg",
        attention_figure(attn_model, &data.test, 8)?.as_bytes(),
    )?;
    let report = Report {
        settings: s,
        runs: reports,
        mlp_baseline: baseline,
        mlp_test,
    };
    run.write_record("vision-provenance.md", "vision-results.json", &report)
}

// ANCHOR: attention_figure
/// The first `k` test digits, each next to the attention pool's weights over its patches (mean
/// over heads): each patch drawn as a square of its weight, scaled so that the largest weight
/// of that digit is black; the caption gives the largest weight (uniform would be `1 / n`).
fn attention_figure(model: &ImageEncoder<f32>, test: &Split, k: usize) -> Result<String> {
    let c = model.config();
    let shown = test.first(k);
    let w = pool_weights(model, &shown.images).expect("an attention pool");
    let g = c.side / c.patch;
    let maps: Vec<Vec<f32>> = w
        .rows()
        .into_iter()
        .map(|row| {
            let max = row.fold(f32::MIN_POSITIVE, |m, &v| m.max(v));
            (0..c.side * c.side)
                .map(|i| row[(i / c.side / c.patch) * g + (i % c.side) / c.patch] / max)
                .collect()
        })
        .collect();
    let mut tiles = Vec::new();
    for (i, map) in maps.iter().enumerate() {
        tiles.push(Tile {
            pixels: shown
                .images
                .row(i)
                .to_slice()
                .expect("rows of a standard-layout array are contiguous"),
            caption: format!("digit {}", shown.labels[i]),
        });
        let max = w.row(i).fold(0.0f32, |m, &v| m.max(v));
        tiles.push(Tile {
            pixels: map,
            caption: format!("max {max:.3}"),
        });
    }
    image_grid(&tiles, c.side, c.side, 8, 4)
}
// ANCHOR_END: attention_figure

/// The Markdown results: one row per pooling head at its chosen epoch, the MLP's row, and the
/// accuracy of both heads after every epoch.
fn results_table(
    s: &Settings,
    runs: &[PoolReport],
    baseline: &Trained,
    mlp_test: f64,
    (n_train, n_val, n_test): (usize, usize, usize),
) -> String {
    let mut t = Table::new(
        &[
            "model",
            "parameters",
            "chosen epoch",
            "train accuracy",
            "validation accuracy",
            "test accuracy",
            "test accuracy, last epoch",
        ],
        "lrrrrrr",
    );
    let mut row = |name: &str, r: &Trained| {
        let e = r.chosen();
        let last = r.history.last().expect("at least one epoch");
        t.row([
            name.to_string(),
            r.params.to_string(),
            e.epoch.to_string(),
            pct(e.train),
            pct(e.validation),
            pct(e.test),
            pct(last.test),
        ]);
    };
    for r in runs {
        row(r.pool.name(), &r.trained);
    }
    row("MLP 784-256-256-10, the same recipe", baseline);
    t.row([
        "MLP chapter (784-256-256-10, last epoch)".to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        pct(mlp_test),
        String::new(),
    ]);
    let m = &s.model;
    let mut text = t.to_string();
    let _ = writeln!(
        text,
        "\n{}x{} patches ({} tokens), width {}, {} heads, feed-forward {} (GELU), {} pre-LN \
         block(s), learned positions, dropout {}. The recipe, for the encoders and the MLP \
         baseline alike: Adam at a peak learning rate of {}, warmed up over {} epoch(s) and \
         then decayed on a cosine, batch {}, {} epochs, training images shifted by up to {} \
         pixels. The MLP chapter's row is that chapter's own run, read from its results \
         (its recipe: a constant learning rate and no shifts). {n_train} training, {n_val} validation and {n_test} test images; \
         the chosen epoch has the best validation accuracy.",
        m.patch,
        m.patch,
        m.tokens(),
        m.d,
        m.heads,
        m.ff,
        m.layers,
        m.dropout,
        s.lr,
        s.warmup_epochs,
        s.batch,
        s.epochs,
        s.shift
    );
    if let Some(w) = runs.iter().find_map(|r| r.mean_max_weight) {
        let _ = writeln!(
            text,
            "\nThe attention pool's largest weight on one patch, averaged over the test images: \
             {w:.3} (uniform weights would give {:.3}).",
            1.0 / m.tokens() as f64
        );
    }
    let mut header = vec!["epoch".to_string()];
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r.pool.name())
        .chain(["MLP, same recipe"])
        .collect();
    for name in &names {
        for split in ["train", "validation", "test"] {
            header.push(format!("{name}: {split}"));
        }
    }
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let align: String = std::iter::once('r')
        .chain(std::iter::repeat_n('r', refs.len() - 1))
        .collect();
    let mut per = Table::new(&refs, &align);
    for i in 0..s.epochs {
        let mut cells = vec![(i + 1).to_string()];
        for r in runs.iter().map(|r| &r.trained).chain([baseline]) {
            let e = &r.history[i];
            cells.extend([pct(e.train), pct(e.validation), pct(e.test)]);
        }
        per.row(cells);
    }
    let _ = write!(text, "\nAccuracy after every epoch:\n\n{per}");
    text
}
