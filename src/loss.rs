//! Softmax, log-softmax and the softmax cross-entropy loss, computed from logits.
//!
//! A classifier outputs one *logit* per class, `z` of shape `[batch, classes]`. The softmax turns
//! a row into probabilities, `p_k = e^{z_k} / sum_j e^{z_j}`, and the cross-entropy of the true
//! class `y` is `-ln p_y`. Computed naively, `e^{z}` overflows for logits in the hundreds; the
//! log-sum-exp trick subtracts the row maximum `m` first, which changes nothing mathematically
//! (`softmax(z) = softmax(z - m)`) and keeps every exponent at or below zero:
//!
//! `ln p_k = (z_k - m) - ln sum_j e^{z_j - m}`.
//!
//! The gradient of the mean loss over a batch of `B` rows is the famous
//! `dL/dz = (p - onehot(y)) / B`.

use crate::float::Float;
use ndarray::{Array1, Array2, ArrayView1, Axis};

// ANCHOR: log_softmax
/// Row-wise log-softmax of `z` (`[batch, classes]`), by the log-sum-exp trick.
pub fn log_softmax<F: Float>(z: &Array2<F>) -> Array2<F> {
    let mut out = z.as_standard_layout().into_owned();
    let mut e = vec![F::zero(); z.ncols()];
    for mut row in out.rows_mut() {
        let m = row.fold(F::neg_infinity(), |a, &b| a.max(b));
        row -= m;
        e.iter_mut().zip(&row).for_each(|(e, &v)| *e = v);
        crate::vmath::exp_all(&mut e);
        let log_sum = e.iter().copied().sum::<F>().ln();
        row -= log_sum;
    }
    out
}

/// Row-wise softmax of `z` (`[batch, classes]`); every row sums to one.
pub fn softmax<F: Float>(z: &Array2<F>) -> Array2<F> {
    exp(log_softmax(z))
}

/// `e^x` of every element of a standard-layout array, in place (as [`log_softmax`] returns it).
pub(crate) fn exp<F: Float>(mut x: Array2<F>) -> Array2<F> {
    crate::vmath::exp_all(
        x.as_slice_mut()
            .expect("log_softmax returns standard layout"),
    );
    x
}
// ANCHOR_END: log_softmax

// ANCHOR: cross_entropy
/// The mean softmax cross-entropy of logits `z` (`[batch, classes]`) against class indices
/// `labels` (`[batch]`), and its gradient with respect to `z`.
pub fn softmax_cross_entropy<F: Float>(z: &Array2<F>, labels: &[usize]) -> (F, Array2<F>) {
    let (batch, classes) = z.dim();
    assert_eq!(
        labels.len(),
        batch,
        "softmax_cross_entropy: {batch} rows of logits but {} labels",
        labels.len()
    );
    let log_p = log_softmax(z);
    let mut grad = exp(log_p.clone());
    let mut loss = F::zero();
    for (i, &y) in labels.iter().enumerate() {
        assert!(
            y < classes,
            "softmax_cross_entropy: label {y} but only {classes} classes"
        );
        loss -= log_p[[i, y]];
        grad[[i, y]] -= F::one();
    }
    let n = F::from(batch).expect("batch size fits the float type");
    grad.mapv_inplace(|g| g / n);
    (loss / n, grad)
}
// ANCHOR_END: cross_entropy

/// The index of the largest entry of each row: the predicted class.
pub fn argmax_rows<F: Float>(z: &Array2<F>) -> Vec<usize> {
    z.axis_iter(Axis(0)).map(|row| argmax(row)).collect()
}

fn argmax<F: Float>(row: ArrayView1<F>) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// The fraction of rows whose predicted class equals the label.
pub fn accuracy<F: Float>(z: &Array2<F>, labels: &[usize]) -> f64 {
    let hits = argmax_rows(z)
        .iter()
        .zip(labels)
        .filter(|(p, y)| p == y)
        .count();
    hits as f64 / labels.len().max(1) as f64
}

/// Per-row cross-entropy `-ln p_y`, without the gradient (for evaluation).
pub fn cross_entropy_rows<F: Float>(z: &Array2<F>, labels: &[usize]) -> Array1<F> {
    let log_p = log_softmax(z);
    labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -log_p[[i, y]])
        .collect()
}

// ANCHOR: mse
/// The mean squared error between predictions `y` and targets `t` (both `[batch, outputs]`),
/// averaged over every entry, and its gradient with respect to `y`:
///
/// `L = (1 / (B m)) sum_ij (y_ij - t_ij)^2`, `dL/dy = 2 (y - t) / (B m)`.
pub fn mse<F: Float>(y: &Array2<F>, t: &Array2<F>) -> (F, Array2<F>) {
    assert_eq!(
        y.dim(),
        t.dim(),
        "mse: predictions are {:?} but targets are {:?}",
        y.shape(),
        t.shape()
    );
    let n = F::from(y.len().max(1)).expect("the number of entries fits the float type");
    let diff = y - t;
    let loss = diff.iter().map(|&d| d * d).sum::<F>() / n;
    let two = F::one() + F::one();
    (loss, diff.mapv(|d| two * d / n))
}
// ANCHOR_END: mse
