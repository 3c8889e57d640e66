//! The metrics of classification: the confusion matrix, precision, recall, F1, and the
//! precision-recall curve.
//!
//! For one class treated as "positive", count the true positives `TP` (positives predicted
//! positive), false positives `FP` (negatives predicted positive) and false negatives `FN`
//! (positives predicted negative). Then
//!
//! * precision `= TP / (TP + FP)`: of what was flagged, how much was right;
//! * recall `= TP / (TP + FN)`: of what was there, how much was found;
//! * F1 `= 2 P R / (P + R)`, their harmonic mean, high only when both are.
//!
//! A ratio whose denominator is zero (nothing flagged, or no positives) is reported as 0.

use ndarray::Array2;
use serde::Serialize;

// ANCHOR: confusion
/// The confusion matrix `C[t, p]`: how many examples of true class `t` were predicted as `p`.
/// Rows sum to the class counts; the diagonal holds the correct predictions.
pub fn confusion_matrix(truth: &[usize], predicted: &[usize], classes: usize) -> Array2<usize> {
    assert_eq!(
        truth.len(),
        predicted.len(),
        "confusion_matrix: {} labels but {} predictions",
        truth.len(),
        predicted.len()
    );
    let mut c = Array2::zeros((classes, classes));
    for (&t, &p) in truth.iter().zip(predicted) {
        assert!(
            t < classes && p < classes,
            "confusion_matrix: class {t} or {p} out of 0..{classes}"
        );
        c[[t, p]] += 1;
    }
    c
}
// ANCHOR_END: confusion

/// Precision, recall and F1 of one class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prf {
    /// `TP / (TP + FP)`.
    pub precision: f64,
    /// `TP / (TP + FN)`.
    pub recall: f64,
    /// `2 P R / (P + R)`.
    pub f1: f64,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

// ANCHOR: prf
impl Prf {
    /// From the counts of true positives, false positives and false negatives.
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Prf {
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Prf {
            precision,
            recall,
            f1,
        }
    }

    /// Class `k` of a confusion matrix against all the others: `TP = C[k, k]`, `FP` = the rest
    /// of column `k`, `FN` = the rest of row `k`.
    pub fn of_class(c: &Array2<usize>, k: usize) -> Prf {
        let tp = c[[k, k]];
        let predicted = c.column(k).sum();
        let actual = c.row(k).sum();
        Prf::from_counts(tp, predicted - tp, actual - tp)
    }
}
// ANCHOR_END: prf

/// The fraction of the diagonal: correct predictions over all.
pub fn accuracy_of(c: &Array2<usize>) -> f64 {
    ratio(c.diag().sum(), c.sum())
}

/// The unweighted mean of the per-class F1 scores ("macro F1"): every class counts the same,
/// however rare.
pub fn macro_f1(c: &Array2<usize>) -> f64 {
    let k = c.nrows();
    (0..k).map(|j| Prf::of_class(c, j).f1).sum::<f64>() / k.max(1) as f64
}

/// One point of a precision-recall curve: flag every example whose score is at least
/// `threshold`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PrPoint {
    /// The decision threshold.
    pub threshold: f64,
    /// Precision at this threshold.
    pub precision: f64,
    /// Recall at this threshold.
    pub recall: f64,
}

// ANCHOR: pr_curve
/// The precision-recall curve of scores against binary labels: one point per distinct score,
/// from the highest threshold (few flagged, high precision) to the lowest (all flagged, recall
/// one). Sorting once makes it `O(n log n)`: lowering the threshold past a score flags that
/// example, which is a true or a false positive.
pub fn pr_curve(scores: &[f64], positive: &[bool]) -> Vec<PrPoint> {
    assert_eq!(scores.len(), positive.len(), "pr_curve: lengths differ");
    assert!(
        scores.iter().all(|s| !s.is_nan()),
        "pr_curve: a score is NaN"
    );
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let total = positive.iter().filter(|&&p| p).count();
    let (mut tp, mut fp) = (0, 0);
    let mut points = Vec::new();
    for (i, &j) in order.iter().enumerate() {
        if positive[j] {
            tp += 1;
        } else {
            fp += 1;
        }
        // Emit a point only once all examples tied at this score are flagged.
        if i + 1 == order.len() || scores[order[i + 1]] != scores[j] {
            points.push(PrPoint {
                threshold: scores[j],
                precision: ratio(tp, tp + fp),
                recall: ratio(tp, total),
            });
        }
    }
    points
}

/// Average precision: the area under the precision-recall curve as a step function,
/// `sum_k (R_k - R_{k-1}) P_k`.
pub fn average_precision(curve: &[PrPoint]) -> f64 {
    let mut previous = 0.0;
    let mut area = 0.0;
    for p in curve {
        area += (p.recall - previous) * p.precision;
        previous = p.recall;
    }
    area
}
// ANCHOR_END: pr_curve
