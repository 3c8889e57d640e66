//! The adding problem of Hochreiter and Schmidhuber (1997, section 5.4): a sequence of pairs,
//! a value in `[-1, 1]` and a marker; two pairs are marked, and the target, read after the last
//! step, is `0.5 + (X1 + X2) / 4` for their values `X1`, `X2`. The first marker falls among the
//! first ten steps and the second among the first `T / 2 - 1`, so the model must hold both
//! values for at least half the sequence while ignoring everything else. A sequence counts as
//! solved when the absolute error is below 0.04.

use super::Recurrent;
use super::models::LastStep;
use crate::float::Float;
use crate::loss::mse;
use crate::optim::OptimizerConfig;
use crate::runner::{NonFinite, train_step};
use ndarray::{Array2, Array3};
use rand::Rng;
use serde::Serialize;

/// The error under which a prediction counts as correct (the paper's criterion).
pub const TOLERANCE: f64 = 0.04;

// ANCHOR: data
/// `n` sequences of length `time` (`[n, time, 2]`) and their targets (`[n, 1]`).
pub fn sequences<F: Float>(n: usize, time: usize, rng: &mut impl Rng) -> (Array3<F>, Array2<F>) {
    assert!(
        time >= 4,
        "the adding problem needs sequences of at least 4 steps, got {time}"
    );
    let mut x = Array3::zeros((n, time, 2));
    let mut y = Array2::zeros((n, 1));
    for s in 0..n {
        for t in 0..time {
            x[[s, t, 0]] = F::of(rng.random_range(-1.0..=1.0));
        }
        let first = rng.random_range(0..10.min(time));
        let second = loop {
            let p = rng.random_range(0..(time / 2 - 1).max(2));
            if p != first {
                break p;
            }
        };
        x[[s, first, 1]] = F::one();
        x[[s, second, 1]] = F::one();
        let sum = x[[s, first, 0]].as_f64() + x[[s, second, 0]].as_f64();
        y[[s, 0]] = F::of(0.5 + sum / 4.0);
    }
    (x, y)
}
// ANCHOR_END: data

/// The fraction of sequences whose prediction is within [`TOLERANCE`] of the target, and the
/// mean squared error, evaluated in chunks of 256 sequences.
pub fn score<R: Recurrent<f32>>(
    model: &LastStep<f32, R>,
    x: &Array3<f32>,
    y: &Array2<f32>,
) -> (f64, f64) {
    let n = x.dim().0;
    let (mut hits, mut sq) = (0usize, 0.0f64);
    for start in (0..n).step_by(256) {
        let end = (start + 256).min(n);
        let pred = model.infer(&x.slice(ndarray::s![start..end, .., ..]));
        for (p, t) in pred.iter().zip(y.slice(ndarray::s![start..end, ..]).iter()) {
            let e = (p - t).abs() as f64;
            hits += usize::from(e < TOLERANCE);
            sq += e * e;
        }
    }
    (hits as f64 / n as f64, sq / n as f64)
}

/// The settings of one training run on the adding problem.
#[derive(Clone, Debug, Serialize)]
pub struct AddingConfig {
    /// Sequence length `T`.
    pub time: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Sequences per step.
    pub batch: usize,
    /// The most training steps (the budget); the LSTM usually stops earlier.
    pub max_steps: usize,
    /// Steps between evaluations on the validation sequences.
    pub eval_every: usize,
    /// Fresh validation (and test) sequences.
    pub eval_sequences: usize,
    /// Training stops once this fraction of the validation sequences is correct.
    pub solved_at: f64,
    /// The optimiser.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// Gradient clipping: the largest global gradient norm (`None`: no clipping).
    pub clip: Option<f64>,
    /// The LSTM's initial forget-gate bias (not used by the RNN).
    pub forget_bias: f64,
}

/// What one run on the adding problem returns.
#[derive(Clone, Debug, Serialize)]
pub struct AddingRun {
    /// `"LSTM"` or `"tanh RNN"`.
    pub model: String,
    /// `(step, fraction of validation sequences correct, validation MSE)` at every evaluation.
    pub curve: Vec<(usize, f64, f64)>,
    /// The step at which the validation criterion was first met, if it was.
    pub solved_at_step: Option<usize>,
    /// Steps trained.
    pub steps: usize,
    /// Fraction of the test sequences correct at the end.
    pub test_correct: f64,
    /// Test MSE at the end.
    pub test_mse: f64,
    /// `|dL/dh_t|` at every step `t`, averaged over 8 batches, before training.
    pub dh_norms_initial: Vec<f64>,
    /// The same after training.
    pub dh_norms_trained: Vec<f64>,
}

/// The mean of `|dL/dh_t|` over `batches` fresh batches (the gradient is not kept).
pub fn hidden_gradient_norms<R: Recurrent<f32>>(
    model: &mut LastStep<f32, R>,
    config: &AddingConfig,
    batches: usize,
    rng: &mut impl Rng,
) -> Vec<f64> {
    let mut sum = vec![0.0; config.time];
    for _ in 0..batches {
        let (x, y) = sequences::<f32>(config.batch, config.time, rng);
        let (pred, cache) = model.forward(&x);
        let (_, dy) = mse(&pred, &y);
        let (_, norms) = model.backward(&cache, &dy);
        for (s, n) in sum.iter_mut().zip(norms) {
            *s += n / batches as f64;
        }
    }
    crate::param::zero_grads(model);
    sum
}

// ANCHOR: train
/// Trains `model` on fresh batches, evaluating on `validation` every `eval_every` steps and
/// stopping once the fraction correct reaches `solved_at`; then scores `test`.
pub fn train<R: Recurrent<f32>>(
    name: &str,
    model: &mut LastStep<f32, R>,
    config: &AddingConfig,
    validation: &(Array3<f32>, Array2<f32>),
    test: &(Array3<f32>, Array2<f32>),
    rng: &mut impl Rng,
    progress: &dyn Fn(usize),
) -> Result<AddingRun, NonFinite> {
    let dh_norms_initial = hidden_gradient_norms(model, config, 8, rng);
    let mut optimizer = config.optimizer.build::<f32>();
    let mut curve = Vec::new();
    let mut solved_at_step = None;
    let mut steps = 0;
    while steps < config.max_steps {
        steps += 1;
        let (x, y) = sequences::<f32>(config.batch, config.time, rng);
        train_step(steps, model, &mut optimizer, |m| {
            let (pred, cache) = m.forward(&x);
            let (loss, dy) = mse(&pred, &y);
            m.backward(&cache, &dy);
            if let Some(max) = config.clip {
                super::clip_grad_norm(m, max);
            }
            loss
        })?;
        if steps % config.eval_every == 0 || steps == config.max_steps {
            let (correct, mse) = score(model, &validation.0, &validation.1);
            curve.push((steps, correct, mse));
            progress(steps);
            if correct >= config.solved_at {
                solved_at_step = Some(steps);
                break;
            }
        }
    }
    let (test_correct, test_mse) = score(model, &test.0, &test.1);
    let dh_norms_trained = hidden_gradient_norms(model, config, 8, rng);
    Ok(AddingRun {
        model: name.to_string(),
        curve,
        solved_at_step,
        steps,
        test_correct,
        test_mse,
        dh_norms_initial,
        dh_norms_trained,
    })
}
// ANCHOR_END: train
