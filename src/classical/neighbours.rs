//! Two baselines that learn almost nothing: the nearest class mean and the k nearest
//! neighbours.
//!
//! *Nearest class mean* stores one average image per class and labels a new image with the
//! class whose average is closest in Euclidean distance. *k-nearest neighbours* stores the whole
//! training set and lets the `k` closest training images vote (a tied vote goes to the
//! smallest class index). Every other method of the course should beat them, or it is not earning its complexity.

use ndarray::{Array2, ArrayView1, Axis};

fn squared_distance(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// One mean image per class, `[classes, features]`.
#[derive(Clone, Debug)]
pub struct NearestMean {
    /// The class means.
    pub means: Array2<f64>,
}

impl NearestMean {
    /// The mean of the rows of each class (a class with no rows gets a mean of infinities, so it
    /// is never the nearest).
    pub fn fit(x: &Array2<f64>, y: &[usize], classes: usize) -> Self {
        let mut means = Array2::zeros((classes, x.ncols()));
        let mut counts = vec![0usize; classes];
        for (row, &label) in x.axis_iter(Axis(0)).zip(y) {
            let mut m = means.row_mut(label);
            m += &row;
            counts[label] += 1;
        }
        for (k, &c) in counts.iter().enumerate() {
            let mut m = means.row_mut(k);
            if c == 0 {
                m.fill(f64::INFINITY);
            } else {
                m /= c as f64;
            }
        }
        NearestMean { means }
    }

    /// The class of the nearest mean for each row of `x`.
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        x.axis_iter(Axis(0))
            .map(|r| {
                let d: Vec<f64> = self
                    .means
                    .axis_iter(Axis(0))
                    .map(|m| squared_distance(r, m))
                    .collect();
                (0..d.len())
                    .min_by(|&a, &b| d[a].total_cmp(&d[b]))
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// The majority class among the `k` training rows closest to each row of `x` (ties in
/// distance broken by training order, ties in votes by the smallest class).
pub fn knn_predict(
    train_x: &Array2<f64>,
    train_y: &[usize],
    x: &Array2<f64>,
    k: usize,
    classes: usize,
) -> Vec<usize> {
    assert!(k >= 1 && k <= train_y.len(), "knn_predict: k = {k}");
    x.axis_iter(Axis(0))
        .map(|r| {
            let mut d: Vec<(f64, usize)> = train_x
                .axis_iter(Axis(0))
                .enumerate()
                .map(|(i, t)| (squared_distance(r, t), i))
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut votes = vec![0usize; classes];
            for &(_, i) in d.iter().take(k) {
                votes[train_y[i]] += 1;
            }
            super::forest::argmax(&votes)
        })
        .collect()
}

/// The fraction of predictions equal to the labels.
pub fn accuracy(predicted: &[usize], labels: &[usize]) -> f64 {
    assert_eq!(predicted.len(), labels.len(), "accuracy: lengths differ");
    let hits = predicted.iter().zip(labels).filter(|(p, y)| p == y).count();
    hits as f64 / labels.len().max(1) as f64
}
