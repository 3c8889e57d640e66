//! The character language model: trained with truncated backpropagation through time on
//! contiguous streams of the novel's training split, its choices made on the validation split,
//! scored in bits per character on the test split (the n-gram chapter's split and convention,
//! [`crate::data::text`]), and sampled from at a few temperatures.

use super::State;
use super::models::{CharModel, time_major_targets, window_loss_and_backward};
use crate::data::text::{Batcher, bits_per_char};
use crate::dropout::Dropout;
use crate::loss::{cross_entropy_rows, softmax};
use crate::optim::OptimizerConfig;
use crate::runner::{NonFinite, data_parallel, train_step};
use ndarray::{Array2, s};
use rand::Rng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The settings of the character model and its training.
#[derive(Clone, Debug, Serialize)]
pub struct CharConfig {
    /// Width of the character vectors.
    pub embed: usize,
    /// Hidden units per LSTM layer.
    pub hidden: usize,
    /// LSTM layers.
    pub depth: usize,
    /// Dropout rate on the embeddings and on the top layer's outputs.
    pub dropout: f64,
    /// Streams trained side by side (the batch).
    pub batch: usize,
    /// Characters per window: how far back gradients flow (truncated BPTT).
    pub window: usize,
    /// Training steps (windows) in the budget.
    pub steps: usize,
    /// Steps between evaluations on the validation split.
    pub eval_every: usize,
    /// The optimiser.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// The learning rate falls linearly from `lr` to `lr * final_lr_fraction` over the steps.
    pub final_lr_fraction: f32,
    /// Gradient clipping: the largest global gradient norm.
    pub clip: f64,
    /// Threads: 2 splits every batch into two halves, one per thread (data parallelism), with
    /// a fixed split, so the numbers do not depend on scheduling.
    pub threads: usize,
}

// ANCHOR: evaluate
/// Mean cross-entropy in nats per character of `model` on `ids`, read as `streams` contiguous
/// streams in windows of `window` characters, the state carried from window to window. With
/// one stream every character after the first is predicted once, from everything before it.
pub fn evaluate(model: &CharModel<f32>, ids: &[usize], streams: usize, window: usize) -> f64 {
    let batcher = Batcher::new(ids, streams, window);
    let mut state = model.zero_state(streams);
    let (mut total, mut n) = (0.0f64, 0usize);
    for w in batcher.streams() {
        let (logits, next) = model.infer(&w.inputs, &state);
        let ce = cross_entropy_rows(&logits, &time_major_targets(&w.targets));
        total += ce.iter().map(|&v| f64::from(v)).sum::<f64>();
        n += ce.len();
        state = next;
    }
    total / n as f64
}
// ANCHOR_END: evaluate

/// What training the character model returns.
#[derive(Clone, Debug, Serialize)]
pub struct CharRun {
    /// `(step, training bits per character averaged since the last evaluation, validation bits
    /// per character)` at every evaluation (validation read as `batch` streams).
    pub curve: Vec<(usize, f64, f64)>,
    /// The step of the best validation score, whose parameters are kept.
    pub best_step: usize,
    /// Bits per character of the kept model on the validation split (one stream).
    pub validation_bpc: f64,
    /// Bits per character of the kept model on the test split (one stream).
    pub test_bpc: f64,
    /// Bits per character of the kept model on the training split, read as `batch` streams (a
    /// number only reported, so it is read the fast way; validation and test are read as one
    /// stream, like the n-gram models).
    pub train_bpc: f64,
    /// Passes over the training split.
    pub epochs: f64,
}

fn halves(w: &Array2<usize>, threads: usize) -> Vec<Array2<usize>> {
    let b = w.nrows() / threads;
    (0..threads)
        .map(|k| w.slice(s![k * b..(k + 1) * b, ..]).to_owned())
        .collect()
}

// ANCHOR: train
/// Trains a fresh model on `train` with truncated BPTT: the split is cut into `batch`
/// contiguous streams; each step takes the next window of every stream, starts from the state
/// the previous window ended in (zero at the start of each pass), and backpropagates within
/// the window only. Every `eval_every` steps the validation split is scored; the parameters
/// of the best evaluation are kept and scored on every split at the end.
pub fn train(
    config: &CharConfig,
    vocab: usize,
    (train, validation, test): (&[usize], &[usize], &[usize]),
    init_rng: &mut ChaCha8Rng,
    dropout_rngs: &mut [ChaCha8Rng],
    progress: &dyn Fn(usize, f64),
) -> anyhow::Result<(CharModel<f32>, CharRun)> {
    let fitted = fit(
        config,
        vocab,
        (train, validation),
        init_rng,
        dropout_rngs,
        progress,
    )?;
    let model = fitted.model;
    let score = |ids: &[usize]| bits_per_char(evaluate(&model, ids, 1, config.window));
    let run = CharRun {
        curve: fitted.curve,
        best_step: fitted.best_step,
        validation_bpc: score(validation),
        test_bpc: score(test),
        train_bpc: bits_per_char(evaluate(&model, train, config.batch, config.window)),
        epochs: (fitted.steps * config.batch * config.window) as f64 / train.len() as f64,
    };
    Ok((model, run))
}

/// What [`fit`] returns: the kept model and how training went.
#[derive(Clone, Debug)]
pub struct Fitted {
    /// The parameters of the best validation check.
    pub model: CharModel<f32>,
    /// As [`CharRun::curve`].
    pub curve: Vec<(usize, f64, f64)>,
    /// The step of the best validation check.
    pub best_step: usize,
    /// Steps taken.
    pub steps: usize,
}

/// The training loop of [`train`], which reads only the training and validation splits (the
/// tuning sweep uses it directly).
pub fn fit(
    config: &CharConfig,
    vocab: usize,
    (train, validation): (&[usize], &[usize]),
    init_rng: &mut ChaCha8Rng,
    dropout_rngs: &mut [ChaCha8Rng],
    progress: &dyn Fn(usize, f64),
) -> anyhow::Result<Fitted> {
    let threads = config.threads;
    anyhow::ensure!(
        config.batch.is_multiple_of(threads) && dropout_rngs.len() == threads,
        "a batch of {} streams does not split over {threads} threads",
        config.batch
    );
    let dropout = Dropout::new(config.dropout)?;
    let mut model = CharModel::new(
        vocab,
        config.embed,
        config.hidden,
        config.depth,
        dropout,
        init_rng,
    );
    let mut replica = model.clone();
    let mut optimizer = config.optimizer.build::<f32>();
    let batcher = Batcher::new(train, config.batch, config.window);
    let half = config.batch / threads;
    let mut best = (f64::INFINITY, 0, model.clone());
    let mut curve = Vec::new();
    let (mut step, mut since, mut loss_sum) = (0usize, 0usize, 0.0f64);
    'passes: loop {
        let mut states: Vec<Vec<State<f32>>> =
            (0..threads).map(|_| model.zero_state(half)).collect();
        for w in batcher.streams() {
            if w.inputs.ncols() < config.window {
                break; // the ragged last window of a pass
            }
            step += 1;
            let frac = (step - 1) as f32 / config.steps.max(1) as f32;
            let lr = config.optimizer.lr * (1.0 - frac * (1.0 - config.final_lr_fraction));
            optimizer.set_lr(lr);
            let inputs = halves(&w.inputs, threads);
            let targets = halves(&w.targets, threads);
            let loss = train_step(step, &mut model, &mut optimizer, |m| {
                let (loss, next) =
                    forward_backward(m, &mut replica, (&inputs, &targets), &states, dropout_rngs);
                states = next;
                super::clip_grad_norm(m, config.clip);
                loss
            })
            .map_err(|e: NonFinite| anyhow::anyhow!(e))?;
            loss_sum += loss;
            since += 1;
            if step % config.eval_every == 0 || step == config.steps {
                let val = bits_per_char(evaluate(&model, validation, config.batch, config.window));
                let train_bpc = bits_per_char(loss_sum / since as f64);
                curve.push((step, train_bpc, val));
                (loss_sum, since) = (0.0, 0);
                progress(step, val);
                if val < best.0 {
                    best = (val, step, model.clone());
                }
            }
            if step >= config.steps {
                break 'passes;
            }
        }
    }
    let (_, best_step, model) = best;
    Ok(Fitted {
        model,
        curve,
        best_step,
        steps: step,
    })
}
// ANCHOR_END: train

/// Forward and backward on every thread's share of the window; leaves the mean gradient in
/// `model` and returns the mean loss and every share's next state.
fn forward_backward(
    model: &mut CharModel<f32>,
    replica: &mut CharModel<f32>,
    (inputs, targets): (&[Array2<usize>], &[Array2<usize>]),
    states: &[Vec<State<f32>>],
    rngs: &mut [ChaCha8Rng],
) -> (f32, Vec<Vec<State<f32>>>) {
    if inputs.len() == 1 {
        let (loss, next) =
            window_loss_and_backward(model, &inputs[0], &targets[0], &states[0], &mut rngs[0]);
        return (loss, vec![next]);
    }
    let (rng_a, rng_b) = rngs.split_at_mut(1);
    let ((loss_a, next_a), (loss_b, next_b)) = data_parallel(
        model,
        replica,
        |m| window_loss_and_backward(m, &inputs[0], &targets[0], &states[0], &mut rng_a[0]),
        |r| window_loss_and_backward(r, &inputs[1], &targets[1], &states[1], &mut rng_b[0]),
    );
    (0.5 * (loss_a + loss_b), vec![next_a, next_b])
}

// ANCHOR: sample
/// Continues `prompt` by `len` characters drawn one at a time from
/// `softmax(logits / temperature)`: low temperatures pick the likeliest characters, high ones
/// flatten the distribution.
pub fn sample(
    model: &CharModel<f32>,
    prompt: &[usize],
    len: usize,
    temperature: f32,
    rng: &mut impl Rng,
) -> Vec<usize> {
    assert!(!prompt.is_empty(), "sample: the prompt is empty");
    let mut state = model.zero_state(1);
    let mut logits = Array2::zeros((1, 1));
    for &id in prompt {
        (logits, state) = model.infer(&Array2::from_elem((1, 1), id), &state);
    }
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let p = softmax(&logits.mapv(|z| z / temperature));
        let next = WeightedIndex::new(p.row(0).iter().copied())
            .expect("softmax gives positive weights")
            .sample(rng);
        out.push(next);
        (logits, state) = model.infer(&Array2::from_elem((1, 1), next), &state);
    }
    out
}
// ANCHOR_END: sample
