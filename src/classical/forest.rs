//! Random forests: many decision trees, each grown on a bootstrap sample of the training set
//! and choosing each split among a random subset of the features, voting on the class.
//!
//! Bagging (bootstrap aggregating, Breiman 1996) draws `n` examples with replacement from the
//! `n` training examples for each tree, so each tree sees about `1 - 1/e`, roughly 63%, of the
//! distinct examples and never sees the other 37%: its *out-of-bag* examples. Scoring every
//! training example only by the trees that did not see it gives an estimate of the test error
//! for free, without a validation split (Breiman 2001). Feature subsampling (`max_features`,
//! often `sqrt(features)`) makes the trees less alike, so their errors cancel better in the
//! vote.

use super::tree::{Tree, TreeConfig};
use ndarray::Array2;
use rand::Rng;

/// Settings of a forest.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct ForestConfig {
    /// How many trees vote.
    pub trees: usize,
    /// Each tree's settings; set `max_features` for a random forest, leave it `None` for plain
    /// bagging.
    pub tree: TreeConfig,
}

/// A fitted forest, with the record of which training examples each tree saw.
#[derive(Clone, Debug)]
pub struct Forest {
    /// The trees, in the order they were grown.
    pub trees: Vec<Tree>,
    /// `in_bag[t][i]`: how many times tree `t`'s bootstrap sample drew training example `i`.
    pub in_bag: Vec<Vec<u32>>,
    /// The number of classes.
    pub classes: usize,
}

// ANCHOR: fit
impl Forest {
    /// Grows `config.trees` trees, each on its own bootstrap sample of the rows of `x`.
    pub fn fit(
        x: &Array2<f64>,
        y: &[usize],
        classes: usize,
        config: &ForestConfig,
        rng: &mut impl Rng,
    ) -> Forest {
        let n = y.len();
        let mut trees = Vec::with_capacity(config.trees);
        let mut in_bag = Vec::with_capacity(config.trees);
        for _ in 0..config.trees {
            let sample: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            let mut seen = vec![0u32; n];
            for &i in &sample {
                seen[i] += 1;
            }
            trees.push(Tree::fit(x, y, &sample, classes, &config.tree, rng));
            in_bag.push(seen);
        }
        Forest {
            trees,
            in_bag,
            classes,
        }
    }
}
// ANCHOR_END: fit

impl Forest {
    /// Each tree's prediction for each row of `x`: `[trees, rows]`.
    pub fn tree_predictions(&self, x: &Array2<f64>) -> Vec<Vec<usize>> {
        self.trees.iter().map(|t| t.predict(x)).collect()
    }

    /// The majority vote of all trees for each row of `x` (the smallest class on ties).
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        let votes = self.votes(&self.tree_predictions(x), self.trees.len());
        votes.iter().map(|v| argmax(v)).collect()
    }

    /// Vote counts per row and class from the first `first` trees, given
    /// [`Forest::tree_predictions`].
    pub fn votes(&self, predictions: &[Vec<usize>], first: usize) -> Vec<Vec<usize>> {
        let rows = predictions.first().map_or(0, Vec::len);
        let mut votes = vec![vec![0; self.classes]; rows];
        for p in predictions.iter().take(first) {
            for (v, &c) in votes.iter_mut().zip(p) {
                v[c] += 1;
            }
        }
        votes
    }

    // ANCHOR: oob
    /// Out-of-bag votes: for each training example `i` (a row of the training `x` the forest
    /// was fitted on), the votes of the first `first` trees whose bootstrap sample did not
    /// contain `i`. Trees that saw `i` do not vote on it.
    pub fn oob_votes(&self, x_train: &Array2<f64>, first: usize) -> Vec<Vec<usize>> {
        let n = x_train.nrows();
        let mut votes = vec![vec![0; self.classes]; n];
        for (tree, seen) in self.trees.iter().zip(&self.in_bag).take(first) {
            assert_eq!(seen.len(), n, "oob_votes: not the training set");
            for (i, v) in votes.iter_mut().enumerate() {
                if seen[i] == 0 {
                    v[tree.predict_one(x_train.row(i))] += 1;
                }
            }
        }
        votes
    }

    /// The out-of-bag error of the first `first` trees: the fraction of the training examples
    /// with at least one out-of-bag vote whose majority vote is wrong, and how many examples
    /// had a vote.
    pub fn oob_error(&self, x_train: &Array2<f64>, y: &[usize], first: usize) -> (f64, usize) {
        let votes = self.oob_votes(x_train, first);
        let (mut wrong, mut scored) = (0, 0);
        for (v, &label) in votes.iter().zip(y) {
            if v.iter().sum::<usize>() > 0 {
                scored += 1;
                if argmax(v) != label {
                    wrong += 1;
                }
            }
        }
        (wrong as f64 / scored.max(1) as f64, scored)
    }
    // ANCHOR_END: oob
}

/// The index of the largest count (the smallest index on ties).
pub fn argmax(counts: &[usize]) -> usize {
    let mut best = 0;
    for (k, &c) in counts.iter().enumerate() {
        if c > counts[best] {
            best = k;
        }
    }
    best
}
