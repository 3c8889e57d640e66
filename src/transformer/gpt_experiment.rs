//! The Transformer at work, on text: the decoder-only character model ([`Gpt`]) trained on the
//! novel, scored in bits per character on the book's held-out split (the split of the n-gram,
//! LSTM and attention-only models, [`crate::data::text::Corpus::split`]), sampled from at three
//! temperatures with cached keys and values, and compared with every other character model of
//! the book, read from those programs' own results files.
//!
//! Training takes random windows of the training split (like the attention-only model), splits
//! each batch over two threads ([`data_parallel`]), clips the gradient norm, and runs Adam with a
//! short linear warm-up and a linear decay. Every `eval_every` steps the validation split is
//! scored; the parameters of the best score are kept and scored on the test split once.

use super::gpt::{Decode, Gpt, GptConfig};
use crate::data::text::{Batcher, Corpus, bits_per_char};
use crate::lstm::clip_grad_norm;
use crate::ngram::experiment::load_corpus;
use crate::optim::{OptimizerArgs, OptimizerConfig};
use crate::param::count;
use crate::plot::{Labels, Series, line_chart};
use crate::runner::{
    CommonArgs, Run, Table, chapter_dir, data_parallel, read_results, stream, train_step,
};
use crate::self_attention::experiment::score_windows;
use anyhow::{Context, Result};
use ndarray::s;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

// ANCHOR: config
/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The model's sizes (the benchmarks' `transformer` workload by default).
    pub model: GptConfig,
    /// Windows per step (split in equal shares over `threads`).
    pub batch: usize,
    /// Training steps.
    pub steps: usize,
    /// Steps between two scores of the validation split.
    pub eval_every: usize,
    /// The optimiser and its peak learning rate.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// Steps of linear warm-up from `lr / warmup` to `lr`.
    pub warmup: usize,
    /// After the warm-up the learning rate falls linearly to `lr * final_lr_fraction` at the
    /// last step.
    pub final_lr_fraction: f32,
    /// The largest global gradient norm (larger gradients are scaled down to it).
    pub clip: f64,
    /// 1 or 2: the batch split in two equal shares, one per thread.
    pub threads: usize,
    /// Characters per sample.
    pub sample_len: usize,
    /// The sampling temperatures.
    pub temperatures: Vec<f64>,
    /// The samples' prompt.
    pub prompt: String,
}

impl Config {
    /// The chapter's defaults for a vocabulary of `vocab`.
    pub fn defaults(vocab: usize) -> Self {
        Config {
            model: GptConfig::workload(vocab),
            batch: 32,
            steps: 5000,
            eval_every: 250,
            optimizer: OptimizerConfig::adam(4e-3),
            warmup: 100,
            final_lr_fraction: 0.02,
            clip: 1.0,
            threads: 2,
            sample_len: 400,
            temperatures: vec![0.5, 0.8, 1.0],
            prompt: "Elizabeth".to_string(),
        }
    }

    /// The learning rate of step `step` (from 1).
    pub fn lr_at(&self, step: usize) -> f32 {
        let peak = self.optimizer.lr;
        if step <= self.warmup {
            return peak * step as f32 / self.warmup as f32;
        }
        let span = self.steps.saturating_sub(self.warmup).max(1) as f32;
        let frac = ((step - self.warmup) as f32 / span).min(1.0);
        peak * (1.0 - frac * (1.0 - self.final_lr_fraction))
    }
}
// ANCHOR_END: config

// ANCHOR: score
/// Bits per character of `model` on `ids`, the self-attention chapter's way: the text cut into
/// consecutive windows of `max_len` characters, each scored from its own start, so every
/// character after the first is predicted once (the windows are run 64 at a time).
pub fn score(model: &Gpt<f32>, ids: &[usize]) -> f64 {
    score_windows(ids, model.max_len(), 64, |x| model.infer(x))
}
// ANCHOR_END: score

/// What training returns.
#[derive(Clone, Debug, Serialize)]
pub struct CharRun {
    /// Trainable parameters.
    pub params: usize,
    /// `(step, training bits per character averaged since the last point, validation bits per
    /// character)` at every evaluation.
    pub curve: Vec<(usize, f64, f64)>,
    /// The step of the best validation score, whose parameters are kept.
    pub best_step: usize,
    /// Validation bits per character of the kept parameters.
    pub validation_bpc: f64,
    /// Test bits per character of the kept parameters.
    pub test_bpc: f64,
    /// Passes over the training split (windows times their length over its size).
    pub epochs: f64,
    /// Wall-clock seconds of the training loop (evaluations included).
    pub train_seconds: f64,
}

// ANCHOR: train
/// Trains a fresh model on random windows of `train` (weights from stream 6 of `seed`, windows
/// from stream 7, dropout masks from streams 8 and 9, one per thread), scores `validation`
/// every `eval_every` steps and keeps the best parameters, which it scores on `test`.
pub fn train(
    config: &Config,
    (train, validation, test): (&[usize], &[usize], &[usize]),
    seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<(Gpt<f32>, CharRun)> {
    let started = std::time::Instant::now();
    let threads = config.threads;
    anyhow::ensure!(
        (threads == 1 || threads == 2) && config.batch.is_multiple_of(threads),
        "a batch of {} windows does not split over {threads} threads (1 or 2)",
        config.batch
    );
    let mut model = Gpt::<f32>::new(config.model, &mut stream(seed, 6))?;
    let mut replica = model.clone();
    let mut optimizer = config.optimizer.build::<f32>();
    let batcher = Batcher::new(train, config.batch, config.model.max_len);
    let mut windows = stream(seed, 7);
    let mut drops: [ChaCha8Rng; 2] = [stream(seed, 8), stream(seed, 9)];
    let share = config.batch / threads;
    let mut best = (f64::INFINITY, 0, model.clone());
    let (mut curve, mut loss_sum, mut since) = (Vec::new(), 0.0, 0);
    for step in 1..=config.steps {
        optimizer.set_lr(config.lr_at(step));
        let w = batcher.random(&mut windows);
        let loss = train_step(step, &mut model, &mut optimizer, |m| {
            let loss = if threads == 1 {
                m.loss_backward(&w.inputs, &w.targets, &mut drops[0])
            } else {
                let part = |k: usize| s![k * share..(k + 1) * share, ..];
                let (x0, t0) = (w.inputs.slice(part(0)), w.targets.slice(part(0)));
                let (x1, t1) = (w.inputs.slice(part(1)), w.targets.slice(part(1)));
                let [d0, d1] = &mut drops;
                let (a, b) = data_parallel(
                    m,
                    &mut replica,
                    |m| m.loss_backward(&x0, &t0, d0),
                    |r| r.loss_backward(&x1, &t1, d1),
                );
                0.5 * (a + b)
            };
            clip_grad_norm(m, config.clip);
            loss
        })?;
        loss_sum += loss;
        since += 1;
        if step % config.eval_every == 0 || step == config.steps {
            let val = score(&model, validation);
            curve.push((step, bits_per_char(loss_sum / since as f64), val));
            (loss_sum, since) = (0.0, 0);
            progress.set_message(format!("validation {val:.3} bpc"));
            if val < best.0 {
                best = (val, step, model.clone());
            }
        }
        progress.inc(1);
    }
    let (validation_bpc, best_step, model) = best;
    let run = CharRun {
        params: count(&model),
        curve,
        best_step,
        validation_bpc,
        test_bpc: score(&model, test),
        epochs: (config.steps * config.batch * config.model.max_len) as f64 / train.len() as f64,
        train_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, run))
}
// ANCHOR_END: train

/// What the program reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Characters in the training, validation and test splits, and in the vocabulary.
    pub sizes: (usize, usize, usize, usize),
    /// The training run.
    pub run: CharRun,
    /// `(temperature, text)` of every sample (drawn with the key-value caches).
    pub samples: Vec<(f64, String)>,
    /// The comparison of every character model of the book.
    pub comparison: Vec<ComparisonRow>,
}

/// The flags of `cargo run --release --example char_transformer`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "char_transformer",
    about = "Train the decoder-only Transformer character model on the novel, sample from it, and compare every character model of the book",
    after_help = "--data DIR reads the UTF-8 text DIR/text/pride-and-prejudice.txt. --epochs does \
                  not apply: the model trains for --steps steps. The comparison reads \
                  chapters/nlp/results.json, chapters/lstm/char.json and \
                  chapters/self_attention/results.json."
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    /// The optimiser (default: Adam, peak learning rate 0.004).
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// Training steps.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: Option<u64>,
    /// Dropout rate on the embeddings and every sublayer's output, in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Blocks.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub blocks: u64,
    /// Model width (a multiple of the 4 heads).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(4..=4096))]
    pub width: u64,
    /// Threads the batch is split over (1 or 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=2))]
    pub threads: u64,
    /// `--save FILE`, `--load FILE`.
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
}

impl Cli {
    /// The configuration the flags describe for a vocabulary of `vocab`, after checking them.
    pub fn config(&self, vocab: usize) -> Result<Config> {
        let common = &self.common;
        anyhow::ensure!(
            common.epochs.is_none(),
            "--epochs does not apply: the model trains for --steps steps"
        );
        anyhow::ensure!(
            self.width.is_multiple_of(4),
            "--width {} is not a multiple of the 4 heads",
            self.width
        );
        anyhow::ensure!(
            (0.0..1.0).contains(&self.dropout),
            "--dropout must be in [0, 1), got {}",
            self.dropout
        );
        let mut c = Config::defaults(vocab);
        c.optimizer = self.optimizer.resolve(c.optimizer)?;
        c.model.dropout = self.dropout;
        c.model.blocks = self.blocks as usize;
        c.model.d = self.width as usize;
        c.model.ff = 4 * self.width as usize;
        c.threads = self.threads as usize;
        if common.quick {
            // A narrower model too: the program tests run it several times.
            c.model.d = c.model.d.min(32);
            c.model.ff = 4 * c.model.d;
            c.steps = 20;
            c.eval_every = 10;
            c.warmup = 5;
            c.sample_len = 60;
        }
        if let Some(n) = self.steps {
            c.steps = n as usize;
            c.warmup = c.warmup.min(c.steps / 10);
        }
        Ok(c)
    }
}

/// The novel's three splits, cut short in a `--quick` run.
fn splits(corpus: &Corpus, quick: bool, time: usize) -> Result<[&[usize]; 3]> {
    let (mut train, mut validation, mut test) = corpus.split();
    if quick {
        train = &train[..train.len().min(60_000)];
        validation = &validation[..validation.len().min(3_000)];
        test = &test[..test.len().min(3_000)];
    }
    anyhow::ensure!(
        train.len() > time + 1 && validation.len() > 1 && test.len() > 1,
        "the text has {} characters: too few for training windows of {time} and a validation \
         and a test split (the test split is the last 10%, the validation split the 5% before it)",
        corpus.len()
    );
    Ok([train, validation, test])
}

fn describe(c: &GptConfig) -> String {
    format!(
        "decoder-only Transformer: vocabulary {}, positions {}, width {}, {} heads, ff {}, {} \
         blocks",
        c.vocab, c.max_len, c.d, c.heads, c.ff, c.blocks
    )
}

// ANCHOR: program
/// The program: train (or load), score, sample, compare, write the tables and figures.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let corpus = load_corpus(common)?;
    let vocab = corpus.vocab.len();
    let config = cli.config(vocab)?;
    let [train_ids, validation, test] = splits(&corpus, common.quick, config.model.max_len)?;
    if let Some(file) = &cli.checkpoint.load {
        let mut model = Gpt::<f32>::new(config.model, &mut stream(0, 0))?;
        crate::checkpoint::load(
            &mut model,
            "char_transformer",
            &describe(&config.model),
            file,
        )?;
        let mut table = Table::new(&["split", "bits per character"], "lr");
        table
            .row([
                "validation".to_string(),
                format!("{:.4}", score(&model, validation)),
            ])
            .row(["test".to_string(), format!("{:.4}", score(&model, test))]);
        return crate::runner::report_loaded(common, "transformer_at_work", &table.to_string());
    }
    // Read before training, so that a missing or damaged file costs no training run.
    let others = read_others(&chapter_dir(""))?;
    let mut run = Run::new(common, &chapter_dir("transformer_at_work"))?;
    run.set_threads(
        config.threads,
        (config.threads == 2).then_some("each batch split in two halves, one per thread"),
    );
    let progress = run.progress(config.steps as u64, "char transformer");
    let trained = train(
        &config,
        (train_ids, validation, test),
        common.seed,
        &progress,
    );
    progress.finish_and_clear();
    let (model, char_run) = trained?;
    cli.checkpoint
        .save_if_asked(&model, "char_transformer", &describe(&config.model))?;
    let prompt = corpus
        .vocab
        .encode(&config.prompt)
        .map_err(|c| anyhow::anyhow!("the prompt's character {c:?} is not in the text"))?;
    let mut rng = stream(common.seed, 10);
    let samples = config
        .temperatures
        .iter()
        .map(|&t| {
            let g = model.generate(&prompt, config.sample_len, t, Decode::Cached, &mut rng);
            (t, corpus.vocab.decode(&g.ids))
        })
        .collect();
    let mut report = Report {
        sizes: (train_ids.len(), validation.len(), test.len(), vocab),
        run: char_run,
        samples,
        comparison: Vec::new(),
        config,
    };
    let own_seconds = run.provenance();
    let own = Curve {
        name: "decoder-only Transformer (this chapter)".to_string(),
        seconds: own_seconds.wall_seconds,
        steps: report.config.steps,
        points: report.run.curve.iter().map(|p| (p.0, p.2)).collect(),
    };
    report.comparison = comparison_rows(
        &others,
        &report,
        own_seconds.wall_seconds,
        own_seconds.cpu_seconds,
    );
    let table = results_table(&report);
    print!("{table}");
    let cmp = comparison_table(&report.comparison);
    print!("{cmp}");
    run.write("char-results.md", table.as_bytes())?;
    run.write("char-comparison.md", cmp.as_bytes())?;
    run.write("char-samples.md", samples_md(&report).as_bytes())?;
    run.write("char-bpc.svg", curve_chart(&report)?.as_bytes())?;
    run.write("char-bpc-time.svg", time_chart(&others, &own)?.as_bytes())?;
    run.write_record("char-provenance.md", "char-results.json", &report)
}
// ANCHOR_END: program

/// The Markdown results table of the run.
pub fn results_table(r: &Report) -> String {
    let c = &r.config;
    let m = &c.model;
    let run = &r.run;
    let mut t = Table::new(
        &[
            "model",
            "parameters",
            "best step",
            "validation bpc",
            "test bpc",
        ],
        "lrrrr",
    );
    t.row([
        format!(
            "decoder-only Transformer: {} pre-LN blocks, width {}, {} heads, ff {} (GELU), {} \
             positions{}",
            m.blocks,
            m.d,
            m.heads,
            m.ff,
            m.max_len,
            if m.dropout > 0.0 {
                format!(", dropout {}", m.dropout)
            } else {
                String::new()
            }
        ),
        run.params.to_string(),
        run.best_step.to_string(),
        format!("{:.4}", run.validation_bpc),
        format!("**{:.4}**", run.test_bpc),
    ]);
    let (n_train, n_val, n_test, vocab) = r.sizes;
    let mut s = t.to_string();
    let _ = writeln!(
        s,
        "\nBits per character on the book's split of the novel ({n_train} training, {n_val} \
         validation, {n_test} test characters; vocabulary of {vocab}). Trained for {} steps of \
         {} random windows of {} characters ({:.1} passes over the training split) with {}, a \
         linear warm-up over {} steps and a linear decay to {} of the peak, gradients clipped to \
         norm {}; the batch split over {} {}. The validation split was scored every {} \
         steps and the best step's parameters kept; the splits are scored in consecutive windows \
         of {} characters, each from its own start, as the attention-only model is. The run's times are in its provenance (`char-provenance.md`).",
        c.steps,
        c.batch,
        m.max_len,
        run.epochs,
        c.optimizer.describe(),
        c.warmup,
        c.final_lr_fraction,
        c.clip,
        c.threads,
        if c.threads == 1 { "thread" } else { "threads" },
        c.eval_every,
        m.max_len,
    );
    s
}

fn samples_md(r: &Report) -> String {
    let mut s = String::new();
    for (t, text) in &r.samples {
        let _ = writeln!(
            s,
            "**Temperature {t}**, after the prompt \"{}\":\n\n```text\n{}{}\n```\n",
            r.config.prompt, r.config.prompt, text
        );
    }
    s
}

fn curve_chart(r: &Report) -> Result<String> {
    let curve = &r.run.curve;
    line_chart(
        Labels {
            title: "Decoder-only Transformer on the novel",
            x: "step",
            y: "bits per character",
        },
        &[
            Series::new(
                "training windows (mean since the last point)",
                curve.iter().map(|p| (p.0 as f64, p.1)).collect(),
            ),
            Series::new(
                "validation split",
                curve.iter().map(|p| (p.0 as f64, p.2)).collect(),
            ),
        ],
    )
}

// ANCHOR: comparison
/// A validation curve read from a program's results, with its run's wall time.
#[derive(Clone, Debug)]
pub struct Curve {
    /// The model.
    pub name: String,
    /// The run's wall-clock seconds, from its provenance.
    pub seconds: f64,
    /// The run's training steps.
    pub steps: usize,
    /// `(step, validation bits per character)`.
    pub points: Vec<(usize, f64)>,
}

/// One row of the comparison table.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonRow {
    /// The model.
    pub model: String,
    /// Trainable parameters (`None` for an n-gram, which counts instead).
    pub params: Option<usize>,
    /// Training steps (`None` for an n-gram).
    pub steps: Option<usize>,
    /// Wall-clock and CPU seconds of the run that produced the row, from its provenance.
    pub seconds: (f64, Option<f64>),
    /// Validation bits per character.
    pub validation: f64,
    /// Test bits per character.
    pub test: f64,
    /// What the time covers.
    pub note: String,
}

/// What the other programs' results files hold for the comparison.
#[derive(Clone, Debug)]
pub struct Others {
    /// The n-gram rows: order 5, and the best on validation of every order and smoothing.
    pub ngrams: Vec<ComparisonRow>,
    /// The LSTM's and the attention-only model's rows.
    pub models: Vec<ComparisonRow>,
    /// Their validation curves, in the same order.
    pub curves: Vec<Curve>,
}

fn field<'a>(file: &str, v: &'a Value, path: &str) -> Result<&'a Value> {
    let mut at = v;
    for key in path.split('.') {
        at = match key.parse::<usize>() {
            Ok(i) => at.get(i),
            Err(_) => at.get(key),
        }
        .with_context(|| format!("{file}: no `{path}` (is it the program's results file?)"))?;
    }
    Ok(at)
}

fn number(file: &str, v: &Value, path: &str) -> Result<f64> {
    field(file, v, path)?
        .as_f64()
        .filter(|x| x.is_finite())
        .with_context(|| format!("{file}: `{path}` is not a finite number"))
}

fn count_of(file: &str, v: &Value, path: &str) -> Result<usize> {
    field(file, v, path)?
        .as_u64()
        .map(|n| n as usize)
        .with_context(|| format!("{file}: `{path}` is not a whole number"))
}

fn curve_of(file: &str, v: &Value, path: &str) -> Result<Vec<(usize, f64)>> {
    let points = field(file, v, path)?
        .as_array()
        .with_context(|| format!("{file}: `{path}` is not a list"))?;
    anyhow::ensure!(!points.is_empty(), "{file}: `{path}` is empty");
    points
        .iter()
        .map(|p| {
            let step = p.get(0).and_then(Value::as_u64);
            let val = p.get(2).and_then(Value::as_f64);
            match (step, val) {
                (Some(s), Some(b)) if b.is_finite() => Ok((s as usize, b)),
                _ => anyhow::bail!(
                    "{file}: `{path}` holds a point that is not [step, train, validation]"
                ),
            }
        })
        .collect()
}

fn seconds_of(file: &str, v: &Value) -> Result<(f64, Option<f64>)> {
    Ok((
        number(file, v, "provenance.wall_seconds")?,
        field(file, v, "provenance.cpu_seconds")?.as_f64(),
    ))
}

/// Reads the n-gram, LSTM and attention-only results under `chapters` (the book's
/// `chapters/` folder): `nlp/results.json`, `lstm/char.json`, `self_attention/results.json`.
/// A missing file, or one without the expected fields, is an error naming it.
pub fn read_others(chapters: &Path) -> Result<Others> {
    let f = "chapters/nlp/results.json";
    let nlp = read_results(&chapters.join("nlp/results.json"), "ngram")?;
    let seconds = seconds_of(f, &nlp)?;
    let orders = field(f, &nlp, "report.orders")?
        .as_array()
        .with_context(|| format!("{f}: `report.orders` is not a list"))?;
    let mut rows = Vec::new();
    for (i, _) in orders.iter().enumerate() {
        let order = count_of(f, &nlp, &format!("report.orders.{i}.order"))?;
        let contexts = count_of(f, &nlp, &format!("report.orders.{i}.contexts"))?;
        for (kind, label) in [("add_k", "add-k"), ("interpolated", "interpolated")] {
            let at = format!("report.orders.{i}.{kind}");
            rows.push((
                order,
                ComparisonRow {
                    model: format!("{order}-gram, {label} ({contexts} contexts)"),
                    params: None,
                    steps: None,
                    seconds,
                    validation: number(f, &nlp, &format!("{at}.validation"))?,
                    test: number(f, &nlp, &format!("{at}.test"))?,
                    note: "the whole n-gram program (orders 1 to 8, both smoothings tuned)"
                        .to_string(),
                },
            ));
        }
    }
    // The lowest validation score, the first of equals.
    let pick = |pred: &dyn Fn(usize) -> bool| {
        rows.iter()
            .filter(|(o, _)| pred(*o))
            .map(|(_, r)| r)
            .min_by(|a, b| a.validation.total_cmp(&b.validation))
            .cloned()
    };
    let five = pick(&|o| o == 5).with_context(|| format!("{f}: no order-5 model"))?;
    let best = pick(&|_| true).with_context(|| format!("{f}: no n-gram model"))?;
    let mut ngrams = vec![five];
    if ngrams[0].model != best.model {
        ngrams.push(best);
    }

    let f = "chapters/lstm/char.json";
    let lstm = read_results(&chapters.join("lstm/char.json"), "lstm")?;
    let c = |k: &str| count_of(f, &lstm, &format!("report.config.{k}"));
    let vocab = count_of(f, &lstm, "report.sizes.3")?;
    let (embed, hidden, depth, steps) = (c("embed")?, c("hidden")?, c("depth")?, c("steps")?);
    let dropout = crate::dropout::Dropout::new(number(f, &lstm, "report.config.dropout")?)
        .map_err(|e| anyhow::anyhow!("{f}: {e}"))?;
    let lstm_model = crate::lstm::models::CharModel::<f32>::new(
        vocab,
        embed,
        hidden,
        depth,
        dropout,
        &mut stream(0, 0),
    );
    let lstm_seconds = seconds_of(f, &lstm)?;
    let layers = if depth == 1 { "layer" } else { "layers" };
    let lstm_name = format!("LSTM: {depth} {layers} of {hidden} units, embedding {embed}");
    let lstm_row = ComparisonRow {
        model: lstm_name.clone(),
        params: Some(count(&lstm_model)),
        steps: Some(steps),
        seconds: lstm_seconds,
        validation: number(f, &lstm, "report.run.validation_bpc")?,
        test: number(f, &lstm, "report.run.test_bpc")?,
        note: "the LSTM program's character part".to_string(),
    };
    let lstm_curve = Curve {
        name: lstm_name,
        seconds: lstm_seconds.0,
        steps,
        points: curve_of(f, &lstm, "report.run.curve")?,
    };

    let f = "chapters/self_attention/results.json";
    let sa = read_results(
        &chapters.join("self_attention/results.json"),
        "self_attention",
    )?;
    let sa_seconds = seconds_of(f, &sa)?;
    let sa_steps = count_of(f, &sa, "report.config.steps")?;
    let sa_name = format!(
        "attention only: width {}, {} heads, one causal layer",
        count_of(f, &sa, "report.config.width")?,
        count_of(f, &sa, "report.config.heads")?
    );
    let sa_row = ComparisonRow {
        model: sa_name.clone(),
        params: Some(count_of(f, &sa, "report.char_model.params")?),
        steps: Some(sa_steps),
        seconds: sa_seconds,
        validation: number(f, &sa, "report.char_model.validation")?,
        test: number(f, &sa, "report.char_model.test")?,
        note: "the whole self-attention program (the lookup runs and n-grams on a second thread)"
            .to_string(),
    };
    let sa_curve = Curve {
        name: sa_name,
        seconds: sa_seconds.0,
        steps: sa_steps,
        points: curve_of(f, &sa, "report.char_model.curve")?,
    };
    Ok(Others {
        ngrams,
        models: vec![lstm_row, sa_row],
        curves: vec![lstm_curve, sa_curve],
    })
}

/// Every character model's row, this run's last, sorted by nothing but the book's order.
pub fn comparison_rows(
    others: &Others,
    r: &Report,
    wall: f64,
    cpu: Option<f64>,
) -> Vec<ComparisonRow> {
    let m = &r.config.model;
    let mut rows: Vec<ComparisonRow> = others
        .ngrams
        .iter()
        .chain(&others.models)
        .cloned()
        .collect();
    rows.push(ComparisonRow {
        model: format!(
            "decoder-only Transformer: {} blocks, width {}, {} heads",
            m.blocks, m.d, m.heads
        ),
        params: Some(r.run.params),
        steps: Some(r.config.steps),
        seconds: (wall, cpu),
        validation: r.run.validation_bpc,
        test: r.run.test_bpc,
        note: "this program (training, scoring, sampling)".to_string(),
    });
    rows
}

/// The comparison as Markdown, with the caption saying where every number comes from.
pub fn comparison_table(rows: &[ComparisonRow]) -> String {
    let mut t = Table::new(
        &[
            "model",
            "parameters",
            "training steps",
            "wall s",
            "CPU s",
            "validation bpc",
            "test bpc",
        ],
        "lrrrrrr",
    );
    let dash = || "—".to_string();
    for r in rows {
        t.row([
            r.model.clone(),
            r.params.map_or_else(dash, |p| p.to_string()),
            r.steps
                .map_or_else(|| "counted".to_string(), |s| s.to_string()),
            format!("{:.1}", r.seconds.0),
            r.seconds.1.map_or_else(dash, |s| format!("{s:.1}")),
            format!("{:.4}", r.validation),
            format!("{:.4}", r.test),
        ]);
    }
    let mut s = t.to_string();
    let _ = writeln!(
        s,
        "\nEvery character model of the book on the same split of the novel, read from each program's own results file (`chapters/nlp/results.json`, `chapters/lstm/char.json`, `chapters/self_attention/results.json`) and this run. The times are each run's wall and CPU time from its provenance, so they cover more than training:\n"
    );
    for r in rows {
        let _ = writeln!(s, "- {}: {}.", r.model, r.note);
    }
    let _ = writeln!(
        s,
        "\nThe runs were made at different times on shared machines (see each provenance), so the times compare only roughly. In `char-bpc-time.svg` the time of a curve point is its step times the run's wall seconds per step (wall time over steps); the n-gram is the horizontal line of the best n-gram's validation score."
    );
    s
}

fn time_chart(others: &Others, own: &Curve) -> Result<String> {
    let curves: Vec<&Curve> = others.curves.iter().chain([own]).collect();
    let mut series: Vec<Series> = curves
        .iter()
        .map(|c| {
            let per_step = c.seconds / c.steps.max(1) as f64;
            Series::new(
                c.name.clone(),
                c.points
                    .iter()
                    .map(|&(s, b)| (s as f64 * per_step, b))
                    .collect(),
            )
        })
        .collect();
    let right = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let best = others
        .ngrams
        .iter()
        .min_by(|a, b| a.validation.total_cmp(&b.validation))
        .context("no n-gram row")?;
    series.push(Series::new(
        format!("best n-gram ({})", best.model),
        vec![(0.0, best.validation), (right, best.validation)],
    ));
    line_chart(
        Labels {
            title: "Character models: validation bits per character against training time",
            x: "seconds of wall time (step x the run's seconds per step)",
            y: "validation bits per character",
        },
        &series,
    )
}
// ANCHOR_END: comparison
