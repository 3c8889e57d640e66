//! Logistic regression with an L2 penalty: binary (one logit, the sigmoid) and multinomial
//! (one logit per class, the softmax), trained by mini-batch gradient descent.
//!
//! **Binary.** For labels `y in {0, 1}` the model outputs a logit `z = x w + b` and the
//! probability `p = sigmoid(z) = 1 / (1 + e^{-z})`. The loss is the mean binary cross-entropy
//! plus the penalty, computed from the logit so that no `ln 0` can occur:
//!
//! `L = 1/n sum_i [ max(z_i, 0) - z_i y_i + ln(1 + e^{-|z_i|}) ] + lambda/2 |w|^2`,
//!
//! whose gradient is `dL/dz_i = (p_i - y_i) / n`, so `dL/dw = X^T (p - y) / n + lambda w` and
//! `dL/db = mean(p - y)`.
//!
//! **Softmax.** For `k` classes, `Z = X W + b` with `W` of shape `[d, k]`, and the loss is the
//! mean softmax cross-entropy ([`softmax_cross_entropy`]) plus `lambda/2 |W|^2`; its gradient is
//! `dL/dW = X^T (P - Y) / n + lambda W`, `dL/db = column means of (P - Y)`, with `Y` one-hot.

use crate::classical::Standardizer;
use crate::data::batches::shuffled_batches;
use crate::data::digits::Digits;
use crate::float::Float;
use crate::loss::{accuracy, softmax_cross_entropy};
use crate::optim::Sgd;
use crate::param::{Param, Param1, Param2, zero_grads};
use ndarray::{Array1, Array2, Axis, arr0};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Binary logistic regression: `p(y = 1 | x) = sigmoid(x w + b)`.
#[derive(Clone, Debug)]
pub struct BinaryLogistic<F: Float> {
    /// Weights, `[features]`.
    pub w: Param1<F>,
    /// Bias, a scalar.
    pub b: Param<F, ndarray::Ix0>,
}

crate::impl_params!(BinaryLogistic<F> { w, b });

/// The logistic sigmoid `1 / (1 + e^{-z})`, computed without overflow for large `|z|`.
pub fn sigmoid<F: Float>(z: F) -> F {
    if z >= F::zero() {
        F::one() / (F::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (F::one() + e)
    }
}

impl<F: Float> BinaryLogistic<F> {
    /// A model with zero weights (it predicts 1/2 for everything).
    pub fn zeros(features: usize) -> Self {
        BinaryLogistic {
            w: Param::new(Array1::zeros(features)),
            b: Param::new(arr0(F::zero())),
        }
    }

    /// The logits `X w + b`, `[n]`: the score to threshold for a decision.
    pub fn logits(&self, x: &Array2<F>) -> Array1<F> {
        assert_eq!(
            x.ncols(),
            self.w.value.len(),
            "BinaryLogistic: {} weights, input has {} features",
            self.w.value.len(),
            x.ncols()
        );
        x.dot(&self.w.value) + self.b.value[()]
    }

    // ANCHOR: binary_loss
    /// The penalised mean binary cross-entropy of labels `y` (each 0 or 1).
    pub fn loss(&self, x: &Array2<F>, y: &[bool], lambda: F) -> F {
        let z = self.logits(x);
        let n = F::of(y.len() as f64);
        let bce = z
            .iter()
            .zip(y)
            .map(|(&z, &t)| {
                let t = if t { F::one() } else { F::zero() };
                z.max(F::zero()) - z * t + (-z.abs()).exp().ln_1p()
            })
            .sum::<F>();
        bce / n + lambda * self.w.value.dot(&self.w.value) / F::of(2.0)
    }

    /// The loss, with its gradient added to `w.grad` and `b.grad`:
    /// `dL/dz = (sigmoid(z) - y) / n`, `dL/dw = X^T dL/dz + lambda w`, `dL/db = sum dL/dz`.
    pub fn loss_backward(&mut self, x: &Array2<F>, y: &[bool], lambda: F) -> F {
        assert_eq!(x.nrows(), y.len(), "BinaryLogistic: rows and labels differ");
        let n = F::of(y.len() as f64);
        let z = self.logits(x);
        let dz: Array1<F> = z
            .iter()
            .zip(y)
            .map(|(&z, &t)| (sigmoid(z) - if t { F::one() } else { F::zero() }) / n)
            .collect();
        self.w.grad += &(x.t().dot(&dz) + &self.w.value * lambda);
        self.b.grad[()] += dz.sum();
        self.loss(x, y, lambda)
    }
    // ANCHOR_END: binary_loss
}

/// Multinomial (softmax) logistic regression: `p(y = k | x) = softmax(x W + b)_k`.
#[derive(Clone, Debug)]
pub struct SoftmaxRegression<F: Float> {
    /// Weights, `[features, classes]`.
    pub w: Param2<F>,
    /// Biases, `[classes]`.
    pub b: Param1<F>,
}

crate::impl_params!(SoftmaxRegression<F> { w, b });

impl<F: Float> SoftmaxRegression<F> {
    /// A model with zero weights (uniform probabilities).
    pub fn zeros(features: usize, classes: usize) -> Self {
        SoftmaxRegression {
            w: Param::new(Array2::zeros((features, classes))),
            b: Param::new(Array1::zeros(classes)),
        }
    }

    /// The logits `X W + b`, `[n, classes]`.
    pub fn logits(&self, x: &Array2<F>) -> Array2<F> {
        assert_eq!(
            x.ncols(),
            self.w.value.nrows(),
            "SoftmaxRegression: weights for {} features, input has {}",
            self.w.value.nrows(),
            x.ncols()
        );
        x.dot(&self.w.value) + &self.b.value
    }

    // ANCHOR: softmax_loss
    /// The penalised mean softmax cross-entropy.
    pub fn loss(&self, x: &Array2<F>, y: &[usize], lambda: F) -> F {
        let (ce, _) = softmax_cross_entropy(&self.logits(x), y);
        ce + lambda * self.w.value.iter().map(|&v| v * v).sum::<F>() / F::of(2.0)
    }

    /// The loss, with its gradient added to `w.grad` and `b.grad`:
    /// `dL/dZ = (P - Y) / n`, `dL/dW = X^T dL/dZ + lambda W`, `dL/db = column sums of dL/dZ`.
    pub fn loss_backward(&mut self, x: &Array2<F>, y: &[usize], lambda: F) -> F {
        let (ce, dz) = softmax_cross_entropy(&self.logits(x), y);
        self.w.grad += &(x.t().dot(&dz) + &self.w.value * lambda);
        self.b.grad += &dz.sum_axis(Axis(0));
        ce + lambda * self.w.value.iter().map(|&v| v * v).sum::<F>() / F::of(2.0)
    }
    // ANCHOR_END: softmax_loss
}

/// How to train a logistic model.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TrainConfig {
    /// The L2 penalty `lambda`.
    pub lambda: f64,
    /// Learning rate of SGD with momentum 0.9.
    pub lr: f64,
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lambda: 1e-3,
            lr: 0.05,
            epochs: 60,
            batch_size: 32,
        }
    }
}

// ANCHOR: train_softmax
/// Trains softmax regression on `x` (`[n, features]`, already scaled) with labels in
/// `0..classes`, by mini-batch SGD with momentum from zero weights; the batches are shuffled
/// by `rng`. Returns the model and the mean training loss of each epoch.
pub fn train_softmax(
    x: &Array2<f64>,
    y: &[usize],
    classes: usize,
    config: &TrainConfig,
    rng: &mut impl Rng,
) -> anyhow::Result<(SoftmaxRegression<f64>, Vec<f64>)> {
    let mut model = SoftmaxRegression::zeros(x.ncols(), classes);
    let mut sgd = Sgd::new(config.lr, 0.9);
    let mut history = Vec::with_capacity(config.epochs);
    let mut step = 0;
    for _ in 0..config.epochs {
        let mut total = 0.0;
        let batches = shuffled_batches(y.len(), config.batch_size, rng);
        for idx in &batches {
            step += 1;
            let xb = x.select(Axis(0), idx);
            let yb: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
            zero_grads(&mut model);
            let loss = model.loss_backward(&xb, &yb, config.lambda);
            crate::runner::ensure_finite(step, "training loss", loss)?;
            total += loss * idx.len() as f64;
            sgd.step(&mut model);
        }
        history.push(total / y.len().max(1) as f64);
    }
    Ok((model, history))
}
// ANCHOR_END: train_softmax

/// Trains binary logistic regression the same way as [`train_softmax`].
pub fn train_binary(
    x: &Array2<f64>,
    y: &[bool],
    config: &TrainConfig,
    rng: &mut impl Rng,
) -> anyhow::Result<BinaryLogistic<f64>> {
    let mut model = BinaryLogistic::zeros(x.ncols());
    let mut sgd = Sgd::new(config.lr, 0.9);
    let mut step = 0;
    for _ in 0..config.epochs {
        for idx in shuffled_batches(y.len(), config.batch_size, rng) {
            step += 1;
            let xb = x.select(Axis(0), &idx);
            let yb: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
            zero_grads(&mut model);
            let loss = model.loss_backward(&xb, &yb, config.lambda);
            crate::runner::ensure_finite(step, "training loss", loss)?;
            sgd.step(&mut model);
        }
    }
    Ok(model)
}

/// The penalties tried on the validation split.
pub const LAMBDAS: [f64; 6] = [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2];

/// One penalty tried on the digits.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Trial {
    /// The penalty.
    pub lambda: f64,
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Accuracy on the validation split.
    pub validation_accuracy: f64,
}

/// The outcome of [`digits_softmax`].
#[derive(Clone, Debug)]
pub struct DigitsSoftmax {
    /// Every penalty tried, in the order of [`LAMBDAS`].
    pub trials: Vec<Trial>,
    /// The settings of the chosen model (the best validation accuracy; the larger penalty on a
    /// tie).
    pub chosen: TrainConfig,
    /// The chosen model, trained on the training split.
    pub model: SoftmaxRegression<f64>,
    /// The scaling fitted on the training split.
    pub scaler: Standardizer,
    /// Accuracy of the chosen model on the test split, measured once.
    pub test_accuracy: f64,
}

// ANCHOR: digits_softmax
/// The course's softmax-regression result on the UCI digits: standardise with the training
/// split's statistics, train one model per penalty in [`LAMBDAS`] (`epochs` passes each), keep
/// the best on the validation split, and score it once on the test split. Every model is
/// trained from the same seed, so the comparison is between penalties, not shuffles.
pub fn digits_softmax(digits: &Digits, seed: u64, epochs: usize) -> anyhow::Result<DigitsSoftmax> {
    let split = digits.split();
    let scaler = Standardizer::fit(&split.train.x);
    let (xt, xv) = (
        scaler.transform(&split.train.x),
        scaler.transform(&split.validation.x),
    );
    let mut trials = Vec::new();
    let mut best: Option<(f64, TrainConfig, SoftmaxRegression<f64>)> = None;
    for &lambda in &LAMBDAS {
        let config = TrainConfig {
            lambda,
            epochs,
            ..TrainConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (model, _) = train_softmax(&xt, &split.train.y, 10, &config, &mut rng)?;
        let validation_accuracy = accuracy(&model.logits(&xv), &split.validation.y);
        trials.push(Trial {
            lambda,
            train_accuracy: accuracy(&model.logits(&xt), &split.train.y),
            validation_accuracy,
        });
        if best
            .as_ref()
            .is_none_or(|(acc, _, _)| validation_accuracy >= *acc)
        {
            best = Some((validation_accuracy, config, model));
        }
    }
    let (_, chosen, model) = best.expect("at least one penalty");
    let test_accuracy = accuracy(
        &model.logits(&scaler.transform(&split.test.x)),
        &split.test.y,
    );
    Ok(DigitsSoftmax {
        trials,
        chosen,
        model,
        scaler,
        test_accuracy,
    })
}
// ANCHOR_END: digits_softmax

/// The number the course's results table reports for softmax regression: test accuracy on
/// the shipped digits, with the penalty chosen on validation ([`digits_softmax`], 60 epochs).
pub fn test_accuracy_on_digits(seed: u64) -> anyhow::Result<f64> {
    let digits = Digits::shipped()?;
    Ok(digits_softmax(&digits, seed, TrainConfig::default().epochs)?.test_accuracy)
}
