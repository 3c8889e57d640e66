//! The chapter's program: the encoder-decoder trained on three synthetic tasks (copy, reverse,
//! sort sequences of ten digits), scored by greedy decoding of held-out random sequences.

use super::Norm;
use super::model::{Config, Transformer, label_smoothed_cross_entropy, noam_rate};
use crate::optim::Adam;
use crate::plot::{Heatmap, Labels, Series, heatmaps, line_chart};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, ensure_finite, pct, stream};
use anyhow::Result;
use ndarray::{Array2, Axis, s};
use rand::Rng;

/// The digits `0..10` are the tokens; the start symbol is 10, so the target vocabulary is 11.
pub const DIGITS: usize = 10;
/// The decoder's start symbol.
pub const START: usize = DIGITS;

/// The three tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Task {
    /// Output the sequence as it is.
    Copy,
    /// Output it backwards.
    Reverse,
    /// Output its digits in increasing order.
    Sort,
}

impl Task {
    /// The task's name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Task::Copy => "copy",
            Task::Reverse => "reverse",
            Task::Sort => "sort",
        }
    }

    // ANCHOR: target
    /// The target for one source sequence.
    pub fn target(self, src: &[usize]) -> Vec<usize> {
        let mut t = src.to_vec();
        match self {
            Task::Copy => {}
            Task::Reverse => t.reverse(),
            Task::Sort => t.sort_unstable(),
        }
        t
    }
    // ANCHOR_END: target
}

/// A batch: sources `[n, len]`, decoder inputs (start, then the target shifted right) and the
/// targets as labels (row-major).
pub struct Batch {
    /// Source digits.
    pub src: Array2<usize>,
    /// Decoder inputs.
    pub tgt_in: Array2<usize>,
    /// Targets `[n, len]`.
    pub tgt: Array2<usize>,
}

/// `n` random sequences of `len` digits and their targets.
pub fn batch(task: Task, n: usize, len: usize, rng: &mut impl Rng) -> Batch {
    let src = Array2::from_shape_simple_fn((n, len), || rng.random_range(0..DIGITS));
    let mut tgt = Array2::zeros((n, len));
    let mut tgt_in = Array2::from_elem((n, len), START);
    for (i, row) in src.rows().into_iter().enumerate() {
        let t = task.target(&row.to_vec());
        for (j, &v) in t.iter().enumerate() {
            tgt[[i, j]] = v;
            if j + 1 < len {
                tgt_in[[i, j + 1]] = v;
            }
        }
    }
    Batch { src, tgt_in, tgt }
}

/// The training settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settings {
    /// Model sizes.
    pub model: Config,
    /// Sequence length.
    pub len: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Training steps.
    pub steps: usize,
    /// Warm-up steps of the schedule (0: none).
    pub warmup: usize,
    /// Multiplies the paper's schedule.
    pub lr_factor: f64,
    /// Label smoothing.
    pub smoothing: f64,
    /// Held-out sequences scored.
    pub held_out: usize,
}

/// One training run's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TaskReport {
    /// The task.
    pub task: Task,
    /// Post- or pre-LN.
    pub norm: Norm,
    /// Warm-up steps.
    pub warmup: usize,
    /// The training loss every step (smoothed cross-entropy, nats per token); the last one
    /// is not finite when the run diverged.
    pub losses: Vec<f64>,
    /// The step at which the loss stopped being finite (training stopped there), if it did.
    pub diverged_at: Option<usize>,
    /// Fraction of the validation sequences decoded exactly.
    pub validation_exact: f64,
    /// Fraction of the test sequences decoded exactly.
    pub test_exact: f64,
    /// Fraction of test tokens right.
    pub test_tokens: f64,
}

fn exact(model: &Transformer<f32>, b: &Batch) -> (f64, f64) {
    let out = model.greedy(&b.src, START, b.tgt.ncols());
    let n = b.tgt.nrows() as f64;
    let seqs = out
        .rows()
        .into_iter()
        .zip(b.tgt.rows())
        .filter(|(a, t)| a == t)
        .count() as f64;
    let toks = out.iter().zip(&b.tgt).filter(|(a, t)| a == t).count() as f64;
    (seqs / n, toks / out.len() as f64)
}

// ANCHOR: train
/// Trains one model on `task` from `seed` and scores it on held-out validation and test
/// sequences (drawn from their own streams). A run whose loss stops being finite stops there and
/// says so in [`TaskReport::diverged_at`] (its scores are then NaN); the caller decides whether
/// that is an error.
pub fn train(
    s: &Settings,
    task: Task,
    norm: Norm,
    warmup: usize,
    seed: u64,
) -> Result<(Transformer<f32>, TaskReport)> {
    let mut config = s.model;
    config.norm = norm;
    let mut model = Transformer::<f32>::new(config, &mut stream(seed, 0))?;
    let mut adam = Adam::new(0.0);
    adam.beta2 = 0.98;
    adam.eps = 1e-9;
    let (mut data, mut drops) = (stream(seed, 1), stream(seed, 2));
    let mut losses = Vec::with_capacity(s.steps);
    let mut diverged_at = None;
    for step in 1..=s.steps {
        let b = batch(task, s.batch, s.len, &mut data);
        crate::param::zero_grads(&mut model);
        let (z, cache) = model.forward_train(&b.src, &b.tgt_in, &mut drops);
        let labels: Vec<usize> = b.tgt.iter().copied().collect();
        let (loss, dz) = label_smoothed_cross_entropy(&z, &labels, s.smoothing);
        losses.push(loss as f64);
        if !loss.is_finite() {
            diverged_at = Some(step);
            break;
        }
        model.backward(&cache, &dz);
        adam.lr = (s.lr_factor * noam_rate(config.d, warmup, step)) as f32;
        adam.step(&mut model);
    }
    let (validation_exact, test_exact, test_tokens) = if diverged_at.is_some() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        let validation = batch(task, s.held_out, s.len, &mut stream(seed, 3));
        let test = batch(task, s.held_out, s.len, &mut stream(seed, 4));
        let (validation_exact, _) = exact(&model, &validation);
        let (test_exact, test_tokens) = exact(&model, &test);
        (validation_exact, test_exact, test_tokens)
    };
    let report = TaskReport {
        task,
        norm,
        warmup,
        losses,
        diverged_at,
        validation_exact,
        test_exact,
        test_tokens,
    };
    Ok((model, report))
}
// ANCHOR_END: train

/// The flags of `cargo run --release --example transformer`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "transformer",
    about = "Train the Transformer chapter's encoder-decoder on copying, reversing and sorting digit sequences"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    /// Training steps per task.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: Option<u64>,
    /// Warm-up steps of the schedule.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub warmup: u64,
    /// Multiplier of the paper's learning-rate schedule.
    #[arg(long, default_value_t = 1.0)]
    pub lr_factor: f64,
}

/// Everything the program measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The settings.
    pub settings: Settings,
    /// One run per task (post-LN, the paper's).
    pub tasks: Vec<TaskReport>,
    /// The normalisation study on [`STUDY_TASK`]: post-LN and pre-LN, with the schedule's
    /// warm-up and without it (the post-LN run with warm-up is the task's run above).
    pub ln_study: Vec<TaskReport>,
}

/// The task of the post-LN against pre-LN study (the hardest of the three).
pub const STUDY_TASK: Task = Task::Sort;

/// Steps per point of the loss curves.
fn window(steps: usize) -> usize {
    (steps / 60).max(1)
}

/// The last training loss, or the step at which the run diverged.
fn final_loss(r: &TaskReport) -> String {
    match r.diverged_at {
        Some(step) => format!("diverged at step {step}"),
        None => format!("{:.4}", r.losses.last().copied().unwrap_or(f64::NAN)),
    }
}

fn ln_name(r: &TaskReport) -> String {
    let norm = match r.norm {
        Norm::Post => "post-LN",
        Norm::Pre => "pre-LN",
    };
    if r.warmup == 0 {
        format!("{norm}, no warm-up")
    } else {
        format!("{norm}, {} warm-up steps", r.warmup)
    }
}

// ANCHOR: cross_attention_figure
/// The cross-attention of each decoder block, averaged over its heads, while the model decodes
/// one test sequence (`src`, `[1, len]`): row `i` is the `i`-th output token, column `j` the `j`-th source digit.
/// The decoder is fed its own greedy output (after the start symbol), so the weights are those
/// of the decoding, not of the right answer.
fn cross_attention_panels(
    model: &Transformer<f32>,
    task: Task,
    src: &Array2<usize>,
) -> Vec<Heatmap> {
    let len = src.ncols();
    let out = model.greedy(src, START, len);
    let mut tgt_in = Array2::from_elem((1, len), START);
    tgt_in
        .slice_mut(s![.., 1..])
        .assign(&out.slice(s![.., ..len - 1]));
    let (_, cache) = model.forward(src, &tgt_in);
    cache
        .decoder()
        .iter()
        .enumerate()
        .map(|(i, block)| {
            let w = block.cross_attention().weights();
            let mean = w
                .index_axis(Axis(0), 0)
                .mean_axis(Axis(0))
                .expect("heads > 0");
            Heatmap {
                title: format!("{}, decoder block {}", task.name(), i + 1),
                rows: len,
                cols: len,
                values: mean.iter().map(|&v| f64::from(v)).collect(),
                row_labels: out.iter().map(|t| format!("out {t}")).collect(),
                col_labels: src.iter().map(|t| t.to_string()).collect(),
            }
        })
        .collect()
}
// ANCHOR_END: cross_attention_figure

/// The program.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    anyhow::ensure!(
        common.epochs.is_none(),
        "--epochs does not apply: the models train for --steps steps"
    );
    anyhow::ensure!(
        cli.lr_factor.is_finite() && cli.lr_factor > 0.0,
        "--lr-factor must be a positive number, got {}",
        cli.lr_factor
    );
    if let Some(dir) = &common.data {
        anyhow::bail!(
            "--data {} does not apply: the tasks are synthetic, drawn from --seed",
            dir.display()
        );
    }
    let quick = common.quick;
    let settings = Settings {
        model: Config {
            src_vocab: DIGITS,
            tgt_vocab: DIGITS + 1,
            max_len: 10,
            d: if quick { 16 } else { 64 },
            heads: 4,
            ff: if quick { 32 } else { 128 },
            enc_layers: 2,
            dec_layers: 2,
            norm: Norm::Post,
            dropout: 0.1,
        },
        len: 10,
        batch: if quick { 16 } else { 64 },
        steps: cli
            .steps
            .map_or(if quick { 30 } else { 1500 }, |s| s as usize),
        warmup: cli.warmup as usize,
        lr_factor: cli.lr_factor,
        smoothing: 0.1,
        held_out: if quick { 50 } else { 1000 },
    };
    let mut run = Run::new(common, &chapter_dir("transformer"))?;
    let tasks = [Task::Copy, Task::Reverse, Task::Sort];
    let seed = |task: Task| {
        let i = tasks.iter().position(|&t| t == task).expect("a task") as u64;
        common.seed + i * 100
    };
    let warm = settings.warmup;
    // The three tasks (post-LN, with warm-up), then the rest of the study.
    let mut jobs: Vec<(Task, Norm, usize)> = tasks.iter().map(|&t| (t, Norm::Post, warm)).collect();
    jobs.extend([
        (STUDY_TASK, Norm::Post, 0),
        (STUDY_TASK, Norm::Pre, warm),
        (STUDY_TASK, Norm::Pre, 0),
    ]);
    let mut results = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(task, norm, warmup)| {
                let s = &settings;
                scope.spawn(move || train(s, task, norm, warmup, seed(task)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Result<Vec<_>>>()
    })?;
    let study_runs = results.split_off(tasks.len());
    for (_, r) in &results {
        if let Some(step) = r.diverged_at {
            ensure_finite(step, "training loss", r.losses[step - 1])?;
        }
    }
    let mut table = Table::new(
        &[
            "task",
            "final training loss",
            "validation exact",
            "test exact",
            "test tokens right",
        ],
        "lrrrr",
    );
    for (_, r) in &results {
        table.row([
            r.task.name().to_string(),
            final_loss(r),
            pct(r.validation_exact),
            pct(r.test_exact),
            pct(r.test_tokens),
        ]);
    }
    let table = table.to_string();
    print!("{table}");
    run.write("results.md", table.as_bytes())?;
    let w = window(settings.steps);
    let curves: Vec<Series> = results
        .iter()
        .map(|(_, r)| Series::window_means(r.task.name(), &r.losses, w))
        .collect();
    let y = format!("training loss (nats per token, smoothed targets; mean of {w} steps)");
    let labels = Labels {
        title: "Training loss of the three tasks (post-LN, the paper's schedule)",
        x: "step",
        y: &y,
    };
    run.write("loss.svg", line_chart(labels, &curves)?.as_bytes())?;
    // Cross-attention while decoding the first test sequence of each task.
    let mut panels = Vec::new();
    for (model, r) in &results {
        let test = batch(r.task, 1, settings.len, &mut stream(seed(r.task), 4));
        panels.extend(cross_attention_panels(model, r.task, &test.src));
    }
    let per_row = settings.model.dec_layers;
    let title = "Cross-attention while decoding a test sequence (mean over heads)";
    run.write(
        "cross-attention.svg",
        heatmaps(title, &panels, per_row, 22)?.as_bytes(),
    )?;
    // The normalisation study: the task's own run first.
    let main_study = results
        .iter()
        .find(|(_, r)| r.task == STUDY_TASK)
        .map(|(_, r)| r.clone())
        .expect("the study task is one of the tasks");
    let ln_study: Vec<TaskReport> = std::iter::once(main_study)
        .chain(study_runs.into_iter().map(|(_, r)| r))
        .collect();
    let mut study = Table::new(
        &[
            "normalisation, schedule",
            "final training loss",
            "validation exact",
            "test exact",
        ],
        "lrrr",
    );
    for r in &ln_study {
        let score = |v: f64| {
            if r.diverged_at.is_some() {
                "-".to_string()
            } else {
                pct(v)
            }
        };
        study.row([
            ln_name(r),
            final_loss(r),
            score(r.validation_exact),
            score(r.test_exact),
        ]);
    }
    let study = study.to_string();
    print!("\n{study}");
    run.write("ln-study.md", study.as_bytes())?;
    let curves: Vec<Series> = ln_study
        .iter()
        .map(|r| Series::window_means(ln_name(r), &r.losses, w))
        .collect();
    let title = format!(
        "Post-LN against pre-LN on {}, with and without warm-up",
        STUDY_TASK.name()
    );
    let labels = Labels {
        title: &title,
        x: "step",
        y: &y,
    };
    run.write("ln-study.svg", line_chart(labels, &curves)?.as_bytes())?;
    let tasks: Vec<TaskReport> = results.into_iter().map(|(_, r)| r).collect();
    run.set_threads(jobs.len(), Some("one training run per thread"));
    let report = Report {
        settings,
        tasks,
        ln_study,
    };
    run.write_record("provenance.md", "results.json", &report)
}
