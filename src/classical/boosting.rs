//! Gradient-boosted trees for classification, with xgboost's second-order leaves.
//!
//! The ensemble keeps one score per class, `F[i, k]`, for every example, starting from zero.
//! Each round fits, for each class `k`, a small regression tree to the gradient of the softmax
//! cross-entropy with respect to `F[:, k]`, `g = p_k - y_k`, weighted by the loss's curvature
//! `h = p_k (1 - p_k)`, and adds the tree's output, times a learning rate, to `F[:, k]`. That is
//! gradient descent in the space of functions (Friedman, 2001), with a Newton step in each leaf
//! as in xgboost (Chen and Guestrin, 2016): a leaf holding the examples `I` outputs
//! `-G / (H + lambda)` with `G = sum of g` and `H = sum of h` over `I`, and a split is scored by
//! how much it lowers the second-order approximation of the loss,
//! `G_L^2 / (H_L + lambda) + G_R^2 / (H_R + lambda) - G^2 / (H + lambda)`.
//!
//! The trees are grown the way the course's classification trees are (`tree.rs`): greedily, one
//! node at a time, each feature's values sorted and every threshold between two distinct values
//! tried with running sums; only the score being optimised differs (gradient statistics instead
//! of class counts), and the leaves hold numbers instead of classes.

use ndarray::{Array2, ArrayView1, Axis};

/// Settings of a boosted ensemble.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct BoostConfig {
    /// Rounds (each adds one tree per class).
    pub rounds: usize,
    /// The factor each tree's output is multiplied by (xgboost's `eta`).
    pub learning_rate: f64,
    /// The deepest a leaf may be (the root has depth 0).
    pub max_depth: usize,
    /// The L2 penalty on leaf values (xgboost's `lambda`).
    pub lambda: f64,
    /// A node whose examples' curvature sums to less than this becomes a leaf (xgboost's
    /// `min_child_weight`).
    pub min_child_weight: f64,
}

impl Default for BoostConfig {
    fn default() -> Self {
        BoostConfig {
            rounds: 100,
            learning_rate: 0.1,
            max_depth: 3,
            lambda: 1.0,
            min_child_weight: 1e-3,
        }
    }
}

/// A node of a [`RegressionTree`]; children are indices into its `nodes`.
#[derive(Clone, Debug, PartialEq)]
pub enum RegNode {
    /// Outputs `value`.
    Leaf {
        /// The leaf's output, `-G / (H + lambda)`.
        value: f64,
    },
    /// Sends `x` left if `x[feature] <= threshold`, else right.
    Split {
        /// The feature tested.
        feature: usize,
        /// The threshold.
        threshold: f64,
        /// The child for `x[feature] <= threshold`.
        left: usize,
        /// The child for `x[feature] > threshold`.
        right: usize,
    },
}

/// A regression tree fitted to gradients and curvatures; `nodes[0]` is the root.
#[derive(Clone, Debug)]
pub struct RegressionTree {
    /// The nodes, parents before children.
    pub nodes: Vec<RegNode>,
}

// ANCHOR: newton
/// The score of a set of examples with gradient sum `g` and curvature sum `h`: minus twice the
/// lowest value of the second-order approximation of the loss that one leaf can reach.
fn leaf_score(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

/// The examples' best common output: the Newton step `-G / (H + lambda)`.
pub fn leaf_value(g: f64, h: f64, lambda: f64) -> f64 {
    -g / (h + lambda)
}
// ANCHOR_END: newton

impl RegressionTree {
    // ANCHOR: fit_tree
    /// Grows a tree on the examples `idx` of `x` (`[n, features]`), fitted to the gradients
    /// `g` and curvatures `h` (one per row of `x`).
    pub fn fit(x: &Array2<f64>, g: &[f64], h: &[f64], idx: &[usize], config: &BoostConfig) -> Self {
        Self::fit_presorted(x, g, h, presort(x, idx), config)
    }

    /// [`fit`](Self::fit) given the examples already sorted by each feature (`sorted[j]` holds
    /// them in increasing order of feature `j`, as [`presort`] returns): boosting sorts once
    /// and reuses the order for every tree, and each split keeps its children sorted by
    /// splitting the parent's lists in order, so no node sorts anything.
    pub fn fit_presorted(
        x: &Array2<f64>,
        g: &[f64],
        h: &[f64],
        sorted: Vec<Vec<usize>>,
        config: &BoostConfig,
    ) -> Self {
        assert!(
            g.len() == x.nrows() && h.len() == x.nrows() && sorted.len() == x.ncols(),
            "RegressionTree::fit: {:?} rows and features but {} gradients, {} curvatures, {} sorted lists",
            x.dim(),
            g.len(),
            h.len(),
            sorted.len()
        );
        let mut tree = RegressionTree { nodes: Vec::new() };
        let mut goes_left = vec![false; x.nrows()];
        tree.grow(x, (g, h), sorted, 0, config, &mut goes_left);
        tree
    }

    fn grow(
        &mut self,
        x: &Array2<f64>,
        (g, h): (&[f64], &[f64]),
        sorted: Vec<Vec<usize>>,
        depth: usize,
        config: &BoostConfig,
        goes_left: &mut [bool],
    ) -> usize {
        let members = &sorted[0];
        let (gs, hs) = members
            .iter()
            .fold((0.0, 0.0), |(a, b), &i| (a + g[i], b + h[i]));
        let me = self.nodes.len();
        self.nodes.push(RegNode::Leaf {
            value: leaf_value(gs, hs, config.lambda),
        });
        if depth >= config.max_depth || members.len() < 2 {
            return me;
        }
        // Every feature, every threshold between two distinct sorted values, with running sums.
        let parent = leaf_score(gs, hs, config.lambda);
        let mut best: Option<(f64, usize, f64)> = None;
        for (j, order) in sorted.iter().enumerate() {
            let (mut gl, mut hl) = (0.0, 0.0);
            for w in 0..order.len() - 1 {
                let i = order[w];
                gl += g[i];
                hl += h[i];
                let (v, next) = (x[[i, j]], x[[order[w + 1], j]]);
                let (gr, hr) = (gs - gl, hs - hl);
                if v == next || hl < config.min_child_weight || hr < config.min_child_weight {
                    continue;
                }
                let gain =
                    leaf_score(gl, hl, config.lambda) + leaf_score(gr, hr, config.lambda) - parent;
                if gain > 1e-12 && best.is_none_or(|(b, _, _)| gain > b) {
                    best = Some((gain, j, 0.5 * (v + next)));
                }
            }
        }
        let Some((_, feature, threshold)) = best else {
            return me;
        };
        for &i in members {
            goes_left[i] = x[[i, feature]] <= threshold;
        }
        let (left, right): (Vec<Vec<usize>>, Vec<Vec<usize>>) = sorted
            .into_iter()
            .map(|order| order.into_iter().partition(|&i| goes_left[i]))
            .unzip();
        let left = self.grow(x, (g, h), left, depth + 1, config, goes_left);
        let right = self.grow(x, (g, h), right, depth + 1, config, goes_left);
        self.nodes[me] = RegNode::Split {
            feature,
            threshold,
            left,
            right,
        };
        me
    }
    // ANCHOR_END: fit_tree

    /// The tree's output for one example.
    pub fn predict_one(&self, x: ArrayView1<f64>) -> f64 {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                RegNode::Leaf { value } => return *value,
                RegNode::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    at = if x[*feature] <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
            }
        }
    }
}

/// The examples `idx` sorted by each feature of `x`: `sorted[j]` in increasing order of
/// `x[., j]` (ties in the order of `idx`).
pub fn presort(x: &Array2<f64>, idx: &[usize]) -> Vec<Vec<usize>> {
    (0..x.ncols())
        .map(|j| {
            let mut order = idx.to_vec();
            order.sort_by(|&a, &b| x[[a, j]].total_cmp(&x[[b, j]]));
            order
        })
        .collect()
}

/// A fitted ensemble: `rounds[r][k]` is round `r`'s tree for class `k`.
#[derive(Clone, Debug)]
pub struct Boosted {
    /// The trees, round by round, one per class.
    pub rounds: Vec<Vec<RegressionTree>>,
    /// The learning rate they were fitted with.
    pub learning_rate: f64,
}

/// Adds one round's trees (one per class), shrunk by `learning_rate`, to the class scores
/// `scores` (`[n, classes]`) of the rows of `x`: how a round updates an ensemble's outputs, for
/// training, for staged scores and for a validation curve kept round by round.
pub fn add_round(
    trees: &[RegressionTree],
    learning_rate: f64,
    x: &Array2<f64>,
    scores: &mut Array2<f64>,
) {
    for (k, tree) in trees.iter().enumerate() {
        for (i, row) in x.axis_iter(Axis(0)).enumerate() {
            scores[[i, k]] += learning_rate * tree.predict_one(row);
        }
    }
}

/// Row-wise softmax of the scores `f` (`[n, classes]`).
fn softmax(f: &Array2<f64>) -> Array2<f64> {
    let mut p = f.clone();
    for mut row in p.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row /= s;
    }
    p
}

/// The mean softmax cross-entropy of scores `f` for labels `y`.
pub fn cross_entropy(f: &Array2<f64>, y: &[usize]) -> f64 {
    let p = softmax(f);
    -y.iter()
        .enumerate()
        .map(|(i, &c)| p[[i, c]].max(1e-300).ln())
        .sum::<f64>()
        / y.len().max(1) as f64
}

// ANCHOR: boost
impl Boosted {
    /// Boosts `config.rounds` rounds on `x` (`[n, features]`) with labels `y` in `0..classes`.
    /// `watch(round, &ensemble_so_far)` is called after every round (for validation curves).
    pub fn fit(
        x: &Array2<f64>,
        y: &[usize],
        classes: usize,
        config: &BoostConfig,
        mut watch: impl FnMut(usize, &Boosted),
    ) -> Boosted {
        assert_eq!(x.nrows(), y.len(), "Boosted::fit: x and y differ in length");
        let n = y.len();
        let all: Vec<usize> = (0..n).collect();
        let sorted = presort(x, &all);
        let mut scores = Array2::<f64>::zeros((n, classes));
        let mut model = Boosted {
            rounds: Vec::with_capacity(config.rounds),
            learning_rate: config.learning_rate,
        };
        for round in 0..config.rounds {
            let p = softmax(&scores);
            let mut trees = Vec::with_capacity(classes);
            for k in 0..classes {
                // d loss / d F[i, k] and its second derivative, for the softmax cross-entropy.
                let g: Vec<f64> = (0..n).map(|i| p[[i, k]] - f64::from(y[i] == k)).collect();
                let h: Vec<f64> = (0..n).map(|i| p[[i, k]] * (1.0 - p[[i, k]])).collect();
                trees.push(RegressionTree::fit_presorted(
                    x,
                    &g,
                    &h,
                    sorted.clone(),
                    config,
                ));
            }
            add_round(&trees, config.learning_rate, x, &mut scores);
            model.rounds.push(trees);
            watch(round + 1, &model);
        }
        model
    }
    // ANCHOR_END: boost

    /// The class scores `F` of each row of `x` after the first `rounds` rounds: `[n, classes]`.
    pub fn scores(&self, x: &Array2<f64>, rounds: usize) -> Array2<f64> {
        let classes = self.rounds.first().map_or(0, Vec::len);
        let mut f = Array2::zeros((x.nrows(), classes));
        for trees in self.rounds.iter().take(rounds) {
            add_round(trees, self.learning_rate, x, &mut f);
        }
        f
    }

    /// The predicted class of each row of `x`, using every round.
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        crate::loss::argmax_rows(&self.scores(x, self.rounds.len()))
    }
}
