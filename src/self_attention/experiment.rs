//! The self-attention chapter's experiments:
//!
//! 1. a key-value lookup: eight key-value pairs and a query key, predict the query's value; the
//!    attention model against an MLP with the same parameter budget, both tuned on the same
//!    learning-rate grid on a validation set, scored on held-out test sequences;
//! 2. the attention-only character model on the novel, in bits per character on the book's
//!    held-out split, next to the n-gram models of the NLP chapter counted on the same split;
//! 3. why the scores are scaled by `1 / sqrt(d_k)`: the softmax's saturation and the size of its
//!    gradient at growing `d_k`, with and without the scale, measured on random vectors.

use super::models::{CharAttention, Lookup};
use super::softmax_rows;
use crate::data::text::{Batcher, Corpus, bits_per_char};
use crate::loss::{argmax_rows, cross_entropy_rows, softmax_cross_entropy};
use crate::mlp::Mlp;
use crate::ngram::experiment::{Config as NGramConfig, load_corpus, tune};
use crate::ngram::{NGram, Smoothing};
use crate::optim::{OptimizerArgs, OptimizerConfig};
use crate::param::{Params, count};
use crate::plot::{Heatmap, Labels, Series, heatmaps, line_chart, loglog_chart};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, median, pct, stream, train_step};
use anyhow::Result;
use ndarray::{Array2, s};
use plotters::prelude::SeriesLabelPosition;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

// ANCHOR: config
/// The experiments' settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Key-value pairs per lookup sequence.
    pub pairs: usize,
    /// Distinct keys (the pairs of one sequence have distinct keys).
    pub keys: usize,
    /// Distinct values.
    pub values: usize,
    /// Width of the lookup model.
    pub lookup_width: usize,
    /// Heads of the lookup model.
    pub lookup_heads: usize,
    /// Training steps of each lookup run.
    pub lookup_steps: usize,
    /// Sequences per lookup step.
    pub lookup_batch: usize,
    /// Adam learning rates tried for both lookup models, chosen on validation accuracy.
    pub lookup_lrs: Vec<f32>,
    /// Validation and test sequences of the lookup task (each).
    pub held_out: usize,
    /// Width of the character model.
    pub width: usize,
    /// Heads of the character model.
    pub heads: usize,
    /// Characters per training window.
    pub time: usize,
    /// Windows per character-model step.
    pub batch: usize,
    /// Character-model steps.
    pub steps: usize,
    /// The character model's optimiser.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// Steps between two scores of the validation split.
    pub eval_every: usize,
    /// The n-gram orders counted for comparison, `1..=ngram_orders`.
    pub ngram_orders: usize,
    /// Head widths of the scaling study.
    pub scale_dims: Vec<usize>,
    /// Keys per query in the scaling study.
    pub scale_keys: usize,
    /// Random queries per head width in the scaling study.
    pub scale_trials: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pairs: 8,
            keys: 16,
            values: 16,
            lookup_width: 32,
            lookup_heads: 2,
            lookup_steps: 3000,
            lookup_batch: 64,
            lookup_lrs: vec![3e-4, 1e-3, 3e-3, 1e-2],
            held_out: 2000,
            width: 128,
            heads: 4,
            time: 64,
            batch: 32,
            steps: 4000,
            optimizer: OptimizerConfig::adam(1e-3),
            eval_every: 250,
            ngram_orders: 5,
            scale_dims: vec![4, 16, 64, 256, 1024, 4096],
            scale_keys: 64,
            scale_trials: 200,
        }
    }
}
// ANCHOR_END: config

// ANCHOR: task
/// A batch of lookup sequences: `keys` and `values` are `[batch, pairs + 1]`, the last column
/// holding the query key and the blank value `values_count`; `targets[b]` is the value paired
/// with sequence `b`'s query key.
#[derive(Clone, Debug)]
pub struct LookupBatch {
    /// Keys, `[batch, pairs + 1]`.
    pub keys: Array2<usize>,
    /// Values, `[batch, pairs + 1]`, the last one blank.
    pub values: Array2<usize>,
    /// The value to predict for each sequence.
    pub targets: Vec<usize>,
}

/// `n` lookup sequences: `config.pairs` distinct keys, each with a uniformly drawn value, and a
/// query drawn uniformly among the sequence's keys.
pub fn lookup_batch(config: &Config, n: usize, rng: &mut impl Rng) -> LookupBatch {
    let p = config.pairs;
    let mut keys = Array2::zeros((n, p + 1));
    let mut values = Array2::from_elem((n, p + 1), config.values);
    let mut targets = Vec::with_capacity(n);
    for b in 0..n {
        let chosen = rand::seq::index::sample(rng, config.keys, p);
        for (j, key) in chosen.iter().enumerate() {
            keys[[b, j]] = key;
            values[[b, j]] = rng.random_range(0..config.values);
        }
        let q = rng.random_range(0..p);
        keys[[b, p]] = keys[[b, q]];
        targets.push(values[[b, q]]);
    }
    LookupBatch {
        keys,
        values,
        targets,
    }
}
// ANCHOR_END: task

/// The MLP's input: the one-hot codes of every key, every value and the query key,
/// concatenated, `[batch, pairs * (keys + values) + keys]`.
pub fn one_hot_input(config: &Config, batch: &LookupBatch) -> Array2<f32> {
    let (n, p) = (batch.targets.len(), config.pairs);
    let pair = config.keys + config.values;
    let mut x = Array2::zeros((n, p * pair + config.keys));
    for b in 0..n {
        for j in 0..p {
            x[[b, j * pair + batch.keys[[b, j]]]] = 1.0;
            x[[b, j * pair + config.keys + batch.values[[b, j]]]] = 1.0;
        }
        x[[b, p * pair + batch.keys[[b, p]]]] = 1.0;
    }
    x
}

/// The lookup task's two contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Contender {
    /// One cross-attention layer from the query position over the pairs.
    Attention,
    /// A one-hidden-layer ReLU MLP on the one-hot codes of the whole sequence.
    Mlp,
}

impl Contender {
    /// The name figures use.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Attention => "attention",
            Contender::Mlp => "MLP",
        }
    }
}

/// The hidden width that gives the MLP at most `budget` parameters.
pub fn mlp_hidden(config: &Config, budget: usize) -> usize {
    let input = config.pairs * (config.keys + config.values) + config.keys;
    (budget - config.values) / (input + 1 + config.values)
}

/// One lookup training run.
#[derive(Clone, Debug, Serialize)]
pub struct LookupRun {
    /// Which model.
    pub model: Contender,
    /// Adam's learning rate.
    pub lr: f32,
    /// Trainable parameters.
    pub params: usize,
    /// `(step, mean training loss since the previous point, validation accuracy)`.
    pub curve: Vec<(usize, f64, f64)>,
    /// Validation accuracy at the end.
    pub validation: f64,
    /// Test accuracy at the end (read only for the chosen learning rate).
    pub test: f64,
}

enum LookupModel {
    Attention(Box<Lookup<f32>>),
    Mlp(Mlp<f32>),
}

impl LookupModel {
    fn new(kind: Contender, config: &Config, rng: &mut ChaCha8Rng) -> Self {
        let attention = Lookup::new(
            config.keys,
            config.values,
            config.lookup_width,
            config.lookup_heads,
            rng,
        );
        match kind {
            Contender::Attention => LookupModel::Attention(Box::new(attention)),
            Contender::Mlp => {
                let input = config.pairs * (config.keys + config.values) + config.keys;
                let hidden = mlp_hidden(config, count(&attention));
                LookupModel::Mlp(Mlp::new(&[input, hidden, config.values], rng))
            }
        }
    }

    fn predict(&self, config: &Config, batch: &LookupBatch) -> Vec<usize> {
        match self {
            LookupModel::Attention(m) => argmax_rows(&m.forward(&batch.keys, &batch.values).0),
            LookupModel::Mlp(m) => argmax_rows(&m.infer(&one_hot_input(config, batch))),
        }
    }

    fn loss_backward(&mut self, config: &Config, batch: &LookupBatch) -> f32 {
        match self {
            LookupModel::Attention(m) => {
                m.loss_backward(&batch.keys, &batch.values, &batch.targets)
            }
            LookupModel::Mlp(m) => {
                let (logits, cache) = m.forward(&one_hot_input(config, batch));
                let (loss, dz) = softmax_cross_entropy(&logits, &batch.targets);
                m.backward_params(&cache, &dz);
                loss
            }
        }
    }
}

impl Params<f32> for LookupModel {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, crate::param::ParamMut<'_, f32>)) {
        match self {
            LookupModel::Attention(m) => m.visit(prefix, f),
            LookupModel::Mlp(m) => m.visit(prefix, f),
        }
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, crate::param::ParamRef<'_, f32>)) {
        match self {
            LookupModel::Attention(m) => m.visit_ref(prefix, f),
            LookupModel::Mlp(m) => m.visit_ref(prefix, f),
        }
    }
}

fn accuracy(predicted: &[usize], targets: &[usize]) -> f64 {
    let hits = predicted
        .iter()
        .zip(targets)
        .filter(|(p, t)| p == t)
        .count();
    hits as f64 / targets.len().max(1) as f64
}

/// The held-out lookup sets: validation (stream 2) and test (stream 3).
pub fn held_out(config: &Config, seed: u64) -> (LookupBatch, LookupBatch) {
    (
        lookup_batch(config, config.held_out, &mut stream(seed, 2)),
        lookup_batch(config, config.held_out, &mut stream(seed, 3)),
    )
}

// ANCHOR: train_lookup
/// Trains one lookup contender with Adam at `lr` on fresh sequences (the same ones for every
/// run: stream 4), scoring the validation set along the way and both sets at the end.
fn train_lookup(
    kind: Contender,
    lr: f32,
    config: &Config,
    (validation, test): (&LookupBatch, &LookupBatch),
    seed: u64,
) -> Result<(LookupRun, LookupModel)> {
    let mut model = LookupModel::new(kind, config, &mut stream(seed, 5));
    let mut optimizer = OptimizerConfig::adam(lr).build::<f32>();
    let mut data = stream(seed, 4);
    let every = (config.lookup_steps / 20).max(1);
    let (mut curve, mut loss_sum) = (Vec::new(), 0.0);
    for step in 1..=config.lookup_steps {
        let batch = lookup_batch(config, config.lookup_batch, &mut data);
        loss_sum += train_step(step, &mut model, &mut optimizer, |m| {
            m.loss_backward(config, &batch)
        })?;
        if step % every == 0 || step == config.lookup_steps {
            let acc = accuracy(&model.predict(config, validation), &validation.targets);
            let points = step - curve.last().map_or(0, |c: &(usize, f64, f64)| c.0);
            curve.push((step, loss_sum / points as f64, acc));
            loss_sum = 0.0;
        }
    }
    let run = LookupRun {
        model: kind,
        lr,
        params: count(&model),
        validation: curve.last().map_or(0.0, |c| c.2),
        test: accuracy(&model.predict(config, test), &test.targets),
        curve,
    };
    Ok((run, model))
}
// ANCHOR_END: train_lookup

/// The lookup experiment's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct LookupReport {
    /// Every run of the grid, attention first.
    pub runs: Vec<LookupRun>,
    /// For each contender, the index in `runs` of the learning rate with the best validation
    /// accuracy (the first of equals).
    pub chosen: Vec<usize>,
    /// The weights `[heads, pairs + 1]` of the chosen attention model's query on the first
    /// test sequence, and that sequence's keys and values.
    pub example: (Vec<Vec<f64>>, Vec<usize>, Vec<usize>),
}

/// Runs the lookup grid: every learning rate for both contenders, the attention runs on this
/// thread and the MLP runs beside them.
pub fn lookup_experiment(config: &Config, seed: u64) -> Result<LookupReport> {
    let (validation, test) = held_out(config, seed);
    let sets = (&validation, &test);
    let grid = |kind| -> Result<Vec<(LookupRun, LookupModel)>> {
        config
            .lookup_lrs
            .iter()
            .map(|&lr| train_lookup(kind, lr, config, sets, seed))
            .collect()
    };
    let (attention, mlp) = std::thread::scope(|s| {
        let other = s.spawn(|| grid(Contender::Mlp));
        let mine = grid(Contender::Attention);
        (
            mine,
            other
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    let (attention, mlp) = (attention?, mlp?);
    let best = |runs: &[(LookupRun, LookupModel)]| {
        let mut best = 0;
        for (i, (r, _)) in runs.iter().enumerate() {
            if r.validation > runs[best].0.validation {
                best = i;
            }
        }
        best
    };
    let (a, m) = (best(&attention), best(&mlp));
    let example = match &attention[a].1 {
        LookupModel::Attention(model) => {
            let first = s![0..1, ..];
            let (keys, values) = (test.keys.slice(first), test.values.slice(first));
            let (_, cache) = model.forward(&keys, &values);
            let w = cache.attention().weights();
            let rows = (0..w.dim().1)
                .map(|h| {
                    w.slice(s![0, h, 0, ..])
                        .iter()
                        .map(|&v| f64::from(v))
                        .collect()
                })
                .collect();
            (
                rows,
                keys.iter().copied().collect(),
                values.iter().copied().collect(),
            )
        }
        LookupModel::Mlp(_) => unreachable!("the first grid trains attention models"),
    };
    let n = attention.len();
    let runs: Vec<LookupRun> = attention.into_iter().chain(mlp).map(|(r, _)| r).collect();
    Ok(LookupReport {
        runs,
        chosen: vec![a, n + m],
        example,
    })
}

// ANCHOR: score
/// Bits per character of `model` on `ids`: the text cut into consecutive windows of
/// `model.max_len()` characters, each scored from its own start, so every character after the
/// first is predicted once.
pub fn score(model: &CharAttention<f32>, ids: &[usize]) -> f64 {
    score_windows(ids, model.max_len(), 1, |x| model.forward(x).0)
}

/// The scoring of [`score`] for any window model: `logits` maps ids `[n, time]` to logits
/// `[n * time, vocab]` (row `b * time + t` predicts character `t + 1` of window `b`) and is
/// called with up to `per_call` windows of one length at a time.
pub fn score_windows(
    ids: &[usize],
    window: usize,
    per_call: usize,
    logits: impl Fn(&Array2<usize>) -> Array2<f32>,
) -> f64 {
    let windows: Vec<_> = Batcher::new(ids, 1, window).streams().collect();
    let (mut nats, mut n) = (0.0, 0usize);
    for group in windows.chunk_by(|a, b| a.inputs.ncols() == b.inputs.ncols()) {
        for chunk in group.chunks(per_call.max(1)) {
            let time = chunk[0].inputs.ncols();
            let inputs =
                Array2::from_shape_fn((chunk.len(), time), |(b, t)| chunk[b].inputs[[0, t]]);
            let targets: Vec<usize> = chunk
                .iter()
                .flat_map(|w| w.targets.row(0).to_vec())
                .collect();
            nats += cross_entropy_rows(&logits(&inputs), &targets)
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>();
            n += targets.len();
        }
    }
    bits_per_char(nats / n.max(1) as f64)
}
// ANCHOR_END: score

/// The character model's training run.
#[derive(Clone, Debug, Serialize)]
pub struct CharReport {
    /// Trainable parameters.
    pub params: usize,
    /// `(step, mean training loss since the previous point in bits per character, validation
    /// bits per character)`.
    pub curve: Vec<(usize, f64, f64)>,
    /// Validation bits per character at the end.
    pub validation: f64,
    /// Test bits per character at the end.
    pub test: f64,
}

// ANCHOR: train_char
/// Trains the character model on random windows of `train` (windows from stream 7, weights
/// from stream 6), scoring `validation` every `eval_every` steps, and `test` at the end.
pub fn train_char(
    config: &Config,
    vocab: usize,
    (train, validation, test): (&[usize], &[usize], &[usize]),
    seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<(CharAttention<f32>, CharReport)> {
    let mut model = CharAttention::<f32>::new(
        vocab,
        config.time,
        config.width,
        config.heads,
        &mut stream(seed, 6),
    );
    let mut optimizer = config.optimizer.build::<f32>();
    let batcher = Batcher::new(train, config.batch, config.time);
    let mut windows = stream(seed, 7);
    let (mut curve, mut loss_sum, mut since) = (Vec::new(), 0.0, 0);
    for step in 1..=config.steps {
        let w = batcher.random(&mut windows);
        loss_sum += train_step(step, &mut model, &mut optimizer, |m| {
            m.loss_backward(&w.inputs, &w.targets)
        })?;
        since += 1;
        if step % config.eval_every == 0 || step == config.steps {
            let train_bpc = bits_per_char(loss_sum / since as f64);
            curve.push((step, train_bpc, score(&model, validation)));
            (loss_sum, since) = (0.0, 0);
        }
        progress.inc(1);
    }
    let report = CharReport {
        params: count(&model),
        validation: curve.last().map_or(f64::NAN, |c| c.2),
        test: score(&model, test),
        curve,
    };
    Ok((model, report))
}
// ANCHOR_END: train_char

/// One n-gram order, counted on the same training split, smoothing chosen on validation.
#[derive(Clone, Debug, Serialize)]
pub struct NGramRow {
    /// The order.
    pub order: usize,
    /// The smoothing chosen on the validation split (of add-k and interpolated, each tuned on
    /// the NLP chapter's grids).
    pub smoothing: Smoothing,
    /// Validation bits per character.
    pub validation: f64,
    /// Test bits per character.
    pub test: f64,
}

/// The NLP chapter's n-gram models of orders `1..=orders`, counted, tuned and scored with that
/// chapter's own code and grids.
pub fn ngram_rows(
    orders: usize,
    vocab: usize,
    splits: (&[usize], &[usize], &[usize]),
) -> Vec<NGramRow> {
    let grids = NGramConfig::default();
    (1..=orders)
        .map(|order| {
            let model = NGram::count(order, vocab, splits.0);
            let add_k = tune(&model, Smoothing::AddK, &grids.add_k_grid, splits);
            let interpolated = tune(&model, Smoothing::Interpolated, &grids.beta_grid, splits);
            let best = if interpolated.validation < add_k.validation {
                interpolated
            } else {
                add_k
            };
            NGramRow {
                order,
                smoothing: best.smoothing,
                validation: best.validation,
                test: best.test,
            }
        })
        .collect()
}

// ANCHOR: scale_study
/// One head width of the scaling study.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleRow {
    /// The head width `d_k`.
    pub d_k: usize,
    /// Mean over queries of the largest attention weight, scores `q . k` unscaled.
    pub max_weight_unscaled: f64,
    /// The same with scores `q . k / sqrt(d_k)`.
    pub max_weight_scaled: f64,
    /// Median over queries of the Frobenius norm of the softmax's Jacobian `diag(p) - p p^T`,
    /// unscaled scores: how much gradient reaches the scores.
    pub jacobian_unscaled: f64,
    /// The same with scaled scores.
    pub jacobian_scaled: f64,
}

/// The Frobenius norm of `diag(p) - p p^T`:
/// `sqrt(sum_i p_i^2 (1 - p_i)^2 + sum_{i != j} p_i^2 p_j^2)`.
pub fn softmax_jacobian_norm(p: &[f64]) -> f64 {
    let sq: f64 = p.iter().map(|v| v * v).sum();
    let diag: f64 = p.iter().map(|v| v * v * (1.0 - v) * (1.0 - v)).sum();
    let off: f64 = p.iter().map(|v| v * v * (sq - v * v)).sum();
    (diag + off).sqrt()
}

/// For each head width: `trials` queries and `keys` keys with independent standard normal
/// entries (so `q . k` has variance `d_k`), the softmax of their scores with and without the
/// scale: the mean of its largest weight and the median of its Jacobian's norm over the
/// queries (a median, because the rare query whose two best keys nearly tie would dominate a
/// mean of a quantity that is otherwise tiny).
pub fn scale_study(
    dims: &[usize],
    keys: usize,
    trials: usize,
    rng: &mut impl Rng,
) -> Vec<ScaleRow> {
    dims.iter()
        .map(|&d_k| {
            let (mut largest, mut jacobian) = ([0.0; 2], [Vec::new(), Vec::new()]);
            for _ in 0..trials {
                let q: Vec<f64> = (0..d_k).map(|_| StandardNormal.sample(rng)).collect();
                let scores: Vec<f64> = (0..keys)
                    .map(|_| {
                        q.iter()
                            .map(|&qi| {
                                let k: f64 = StandardNormal.sample(rng);
                                qi * k
                            })
                            .sum()
                    })
                    .collect();
                for (k, scale) in [1.0, 1.0 / (d_k as f64).sqrt()].into_iter().enumerate() {
                    let mut p = Array2::from_shape_fn((1, keys), |(_, j)| scores[j] * scale);
                    softmax_rows(&mut p);
                    let p = p.into_raw_vec_and_offset().0;
                    largest[k] += p.iter().fold(0.0_f64, |a, &b| a.max(b));
                    jacobian[k].push(softmax_jacobian_norm(&p));
                }
            }
            let n = trials.max(1) as f64;
            ScaleRow {
                d_k,
                max_weight_unscaled: largest[0] / n,
                max_weight_scaled: largest[1] / n,
                jacobian_unscaled: median(&mut jacobian[0]).unwrap_or(f64::NAN),
                jacobian_scaled: median(&mut jacobian[1]).unwrap_or(f64::NAN),
            }
        })
        .collect()
}
// ANCHOR_END: scale_study

/// What the program reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Characters in the vocabulary and in the training, validation and test splits.
    pub text: (usize, usize, usize, usize),
    /// The lookup experiment.
    pub lookup: LookupReport,
    /// The character model.
    pub char_model: CharReport,
    /// The n-gram models on the same split.
    pub ngrams: Vec<NGramRow>,
    /// The scaling study.
    pub scale: Vec<ScaleRow>,
}

/// The flags of `cargo run --release --example self_attention`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "self_attention",
    about = "Train the self-attention chapter's lookup and character models, measure the 1/sqrt(d_k) scale, and draw the figures",
    after_help = "--data DIR reads the UTF-8 text DIR/text/pride-and-prejudice.txt. --epochs does \
                  not apply: the models train for --steps and --lookup-steps steps."
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has.
    pub common: CommonArgs,
    /// The character model's optimiser (default: Adam, learning rate 0.001).
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// Training steps of the character model.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: Option<u64>,
    /// Windows per character-model step.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch_size: u64,
    /// Width of the character model (a multiple of --heads).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub width: u64,
    /// Heads of the character model.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub heads: u64,
    /// Training steps of each lookup run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub lookup_steps: Option<u64>,
    /// `--save FILE` (the character model), `--load FILE`.
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
}

impl Cli {
    /// The configuration the flags describe, after checking them.
    pub fn config(&self) -> Result<Config> {
        let common = &self.common;
        anyhow::ensure!(
            common.epochs.is_none(),
            "--epochs does not apply: the models train for --steps and --lookup-steps steps"
        );
        anyhow::ensure!(
            self.width.is_multiple_of(self.heads),
            "--width {} is not a multiple of --heads {}",
            self.width,
            self.heads
        );
        let defaults = Config::default();
        let quick = common.quick;
        let pick = |flag: Option<u64>, full: usize, short: usize| {
            flag.map_or(if quick { short } else { full }, |n| n as usize)
        };
        Ok(Config {
            width: self.width as usize,
            heads: self.heads as usize,
            batch: self.batch_size as usize,
            steps: pick(self.steps, defaults.steps, 40),
            lookup_steps: pick(self.lookup_steps, defaults.lookup_steps, 300),
            optimizer: self.optimizer.resolve(defaults.optimizer)?,
            eval_every: if quick { 20 } else { defaults.eval_every },
            held_out: if quick { 300 } else { defaults.held_out },
            lookup_lrs: if quick {
                vec![1e-3, 1e-2]
            } else {
                defaults.lookup_lrs.clone()
            },
            ngram_orders: if quick { 3 } else { defaults.ngram_orders },
            scale_trials: if quick { 20 } else { defaults.scale_trials },
            ..defaults
        })
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
        train.len() > time && validation.len() > 1 && test.len() > 1,
        "the text has {} characters: too few for training windows of {time} and a validation \
         and a test split (the test split is the last 10%, the validation split the 5% before it)",
        corpus.len()
    );
    Ok([train, validation, test])
}

fn describe(config: &Config, vocab: usize) -> String {
    format!(
        "attention-only character model: vocabulary {vocab}, positions {}, width {}, {} heads",
        config.time, config.width, config.heads
    )
}

// ANCHOR: program
/// The program: the lookup experiment and the n-grams on one thread, the character model on
/// the other; then the scaling study, the tables and the figures.
pub fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    let common = &cli.common;
    let corpus = load_corpus(common)?;
    let [train, validation, test] = splits(&corpus, common.quick, config.time)?;
    let vocab = corpus.vocab.len();
    if let Some(file) = &cli.checkpoint.load {
        return evaluate_checkpoint(common, &config, vocab, (validation, test), file);
    }
    let mut run = Run::new(common, &chapter_dir("self_attention"))?;
    let seed = common.seed;
    let progress = run.progress(config.steps as u64, "self_attention");
    let (char_run, (lookup, ngrams)) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            let lookup = lookup_experiment(&config, seed);
            (
                lookup,
                ngram_rows(config.ngram_orders, vocab, (train, validation, test)),
            )
        });
        let mine = train_char(&config, vocab, (train, validation, test), seed, &progress);
        (
            mine,
            other
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    progress.finish_and_clear();
    let (model, char_model) = char_run?;
    cli.checkpoint
        .save_if_asked(&model, "self_attention", &describe(&config, vocab))?;
    let scale = scale_study(
        &config.scale_dims,
        config.scale_keys,
        config.scale_trials,
        &mut stream(seed, 8),
    );
    let report = Report {
        text: (vocab, train.len(), validation.len(), test.len()),
        lookup: lookup?,
        char_model,
        ngrams,
        scale,
        config,
    };
    let table = results_table(&report);
    print!("{table}");
    write_figures(&run, &report, &model, &corpus, test)?;
    run.write("results.md", table.as_bytes())?;
    run.set_threads(
        2,
        Some("the character model on one, the lookup runs and the n-grams on the other"),
    );
    run.write_record("provenance.md", "results.json", &report)
}
// ANCHOR_END: program

/// `--load FILE`: scores a saved character model on the validation and test splits.
fn evaluate_checkpoint(
    common: &CommonArgs,
    config: &Config,
    vocab: usize,
    (validation, test): (&[usize], &[usize]),
    file: &Path,
) -> Result<()> {
    let mut model = CharAttention::<f32>::new(
        vocab,
        config.time,
        config.width,
        config.heads,
        &mut stream(0, 0),
    );
    crate::checkpoint::load(&mut model, "self_attention", &describe(config, vocab), file)?;
    let mut table = Table::new(&["split", "bits per character"], "lr");
    table
        .row([
            "validation".to_string(),
            format!("{:.4}", score(&model, validation)),
        ])
        .row(["test".to_string(), format!("{:.4}", score(&model, test))]);
    let t = table.to_string();
    crate::runner::report_loaded(common, "self_attention", &t)
}

/// The Markdown results: the lookup table, the character model beside the n-grams, the
/// scaling study.
pub fn results_table(report: &Report) -> String {
    let c = &report.config;
    let l = &report.lookup;
    let mut lookup = Table::new(
        &[
            "model",
            "parameters",
            "Adam lr (chosen on validation)",
            "validation accuracy",
            "test accuracy",
        ],
        "lrrrr",
    );
    for &i in &l.chosen {
        let r = &l.runs[i];
        let name = match r.model {
            Contender::Attention => format!(
                "attention: width {}, {} heads, one cross-attention layer",
                c.lookup_width, c.lookup_heads
            ),
            Contender::Mlp => format!(
                "MLP: one ReLU hidden layer of {}",
                mlp_hidden(c, l.runs[l.chosen[0]].params)
            ),
        };
        lookup.row([
            name,
            r.params.to_string(),
            r.lr.to_string(),
            pct(r.validation),
            format!("**{}**", pct(r.test)),
        ]);
    }
    let mut t = String::from("### The lookup task\n\n");
    t.push_str(&lookup.to_string());
    let grid = |kind| {
        l.runs
            .iter()
            .filter(|r| r.model == kind)
            .map(|r| format!("{} at {}", pct(r.validation), r.lr))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        t,
        "\nEach sequence holds {} key-value pairs ({} keys, distinct within a sequence; {} values) \
         and a query key; the target is the query's value (chance: {}). Both models trained for \
         {} steps of {} fresh sequences with Adam at each learning rate of the grid; validation \
         accuracy on {} sequences, test accuracy on {} others. Validation accuracy over the grid: \
         attention {}; MLP {}.",
        c.pairs,
        c.keys,
        c.values,
        pct(1.0 / c.values as f64),
        c.lookup_steps,
        c.lookup_batch,
        c.held_out,
        c.held_out,
        grid(Contender::Attention),
        grid(Contender::Mlp),
    );
    let (vocab, n_train, n_val, n_test) = report.text;
    let m = &report.char_model;
    let mut chars = Table::new(
        &["model", "parameters", "validation bpc", "test bpc"],
        "lrrr",
    );
    chars.row([
        format!(
            "attention only: width {}, {} heads, causal, {} positions",
            c.width, c.heads, c.time
        ),
        m.params.to_string(),
        format!("{:.4}", m.validation),
        format!("**{:.4}**", m.test),
    ]);
    for g in &report.ngrams {
        chars.row([
            format!("{}-gram, {}", g.order, g.smoothing.name()),
            String::new(),
            format!("{:.4}", g.validation),
            format!("{:.4}", g.test),
        ]);
    }
    let _ = write!(t, "\n### The character model\n\n{chars}");
    let _ = writeln!(
        t,
        "\nBits per character on the book's split of the novel ({n_train} training, {n_val} \
         validation, {n_test} test characters; vocabulary of {vocab}). The attention model \
         trained for {} steps of {} random windows of {} characters with {}, and scores the \
         splits in consecutive windows of {}, each from its own start. The n-gram rows are the \
         NLP chapter's models, counted and tuned by its code on the same split.",
        c.steps,
        c.batch,
        c.time,
        c.optimizer.describe(),
        c.time
    );
    let mut scale = Table::new(
        &[
            "d_k",
            "largest weight, q.k",
            "largest weight, q.k / sqrt(d_k)",
            "Jacobian norm, q.k",
            "Jacobian norm, q.k / sqrt(d_k)",
        ],
        "rrrrr",
    );
    for r in &report.scale {
        scale.row([
            r.d_k.to_string(),
            format!("{:.3}", r.max_weight_unscaled),
            format!("{:.3}", r.max_weight_scaled),
            significant(r.jacobian_unscaled),
            significant(r.jacobian_scaled),
        ]);
    }
    let _ = write!(t, "\n### The scale\n\n{scale}");
    let _ = writeln!(
        t,
        "\nOver {} random queries per row, each against {} random keys, all with standard normal \
         entries: the mean of the largest weight, the median of the Frobenius norm of the \
         softmax's Jacobian. A uniform softmax over {} keys has largest weight {:.3}.",
        c.scale_trials,
        c.scale_keys,
        c.scale_keys,
        1.0 / c.scale_keys as f64
    );
    t
}

/// Three significant digits: `0.179`, `0.0213`, `2.41e-8`.
fn significant(v: f64) -> String {
    if v >= 0.01 {
        format!("{v:.3}")
    } else if v >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

fn char_label(c: char) -> String {
    match c {
        ' ' => "␣".to_string(),
        '\n' => "⏎".to_string(),
        c => c.to_string(),
    }
}

/// Draws the figures: the lookup example's attention weights, the character model's heads on a
/// test sentence, the training curves and the scaling study.
pub fn write_figures(
    run: &Run,
    report: &Report,
    model: &CharAttention<f32>,
    corpus: &Corpus,
    test: &[usize],
) -> Result<()> {
    let c = &report.config;
    // The lookup: one row per head, one column per position.
    let (weights, keys, values) = &report.lookup.example;
    let cols: Vec<String> = keys
        .iter()
        .zip(values)
        .map(|(&k, &v)| {
            if v == c.values {
                format!("k{k}?")
            } else {
                format!("k{k}:{v}")
            }
        })
        .collect();
    let panel = Heatmap {
        title: "query's weights over the positions (last column: the query itself)".to_string(),
        rows: weights.len(),
        cols: cols.len(),
        values: weights.iter().flatten().copied().collect(),
        row_labels: (1..=weights.len()).map(|h| format!("head {h}")).collect(),
        col_labels: cols,
    };
    run.write(
        "lookup.svg",
        heatmaps(
            "Lookup: attention of the query on a test sequence",
            &[panel],
            1,
            52,
        )?
        .as_bytes(),
    )?;
    // The character model's heads on a sentence of the test split.
    let sentence = test_sentence(corpus, test, 40);
    let ids = Array2::from_shape_vec((1, sentence.len()), sentence.clone())?;
    let (_, cache) = model.forward(&ids);
    let w = cache.attention().weights();
    let labels: Vec<String> = sentence
        .iter()
        .map(|&i| char_label(corpus.vocab.char(i)))
        .collect();
    let panels: Vec<Heatmap> = (0..w.dim().1)
        .map(|h| Heatmap {
            title: format!("head {}", h + 1),
            rows: labels.len(),
            cols: labels.len(),
            values: w
                .slice(s![0, h, .., ..])
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
            row_labels: labels.clone(),
            col_labels: labels.clone(),
        })
        .collect();
    run.write(
        "heads.svg",
        heatmaps(
            "Character model: each head's weights (row: the query position, column: the key)",
            &panels,
            2,
            11,
        )?
        .as_bytes(),
    )?;
    let m = &report.char_model;
    let curve = line_chart(
        Labels {
            title: "Attention-only character model",
            x: "step",
            y: "bits per character",
        },
        &[
            Series::new(
                "training windows (mean since the last point)",
                m.curve.iter().map(|p| (p.0 as f64, p.1)).collect(),
            ),
            Series::new(
                "validation split",
                m.curve.iter().map(|p| (p.0 as f64, p.2)).collect(),
            ),
        ],
    )?;
    run.write("char_curve.svg", curve.as_bytes())?;
    let l = &report.lookup;
    let series: Vec<Series> = l
        .chosen
        .iter()
        .map(|&i| {
            let r = &l.runs[i];
            Series::new(
                format!("{}, lr {}", r.model.name(), r.lr),
                r.curve.iter().map(|p| (p.0 as f64, p.2)).collect(),
            )
        })
        .collect();
    let acc = line_chart(
        Labels {
            title: "Lookup task: validation accuracy",
            x: "step",
            y: "accuracy",
        },
        &series,
    )?;
    run.write("lookup_curve.svg", acc.as_bytes())?;
    let pts = |f: fn(&ScaleRow) -> f64| report.scale.iter().map(|r| (r.d_k as f64, f(r))).collect();
    let scale = loglog_chart(
        Labels {
            title: "Softmax of q.k over 64 keys: saturation and gradient",
            x: "d_k",
            y: "mean (weight), median (norm)",
        },
        &[
            Series::new("largest weight, unscaled", pts(|r| r.max_weight_unscaled)),
            Series::new("largest weight, scaled", pts(|r| r.max_weight_scaled)),
            Series::new("Jacobian norm, unscaled", pts(|r| r.jacobian_unscaled)),
            Series::new("Jacobian norm, scaled", pts(|r| r.jacobian_scaled)),
        ],
        SeriesLabelPosition::LowerLeft,
    )?;
    run.write("scale.svg", scale.as_bytes())?;
    Ok(())
}

/// `len` characters of the test split from the start of its first paragraph that begins with
/// a capital letter (after a blank line), or from its start.
fn test_sentence(corpus: &Corpus, test: &[usize], len: usize) -> Vec<usize> {
    let text = corpus.vocab.decode(test);
    let chars: Vec<char> = text.chars().collect();
    let start = (2..chars.len().saturating_sub(len))
        .find(|&i| chars[i - 2] == '\n' && chars[i - 1] == '\n' && chars[i].is_uppercase())
        .unwrap_or(0);
    test[start..(start + len).min(test.len())].to_vec()
}
