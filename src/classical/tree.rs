//! Decision trees for classification, grown greedily (CART) with the Gini impurity or the
//! entropy, and a depth limit.
//!
//! A node holding examples with class proportions `p_1 .. p_K` has impurity
//! `Gini = 1 - sum_k p_k^2` or `entropy = -sum_k p_k log2 p_k`; both are zero for a pure node
//! and largest when every class is equally frequent. Growing a node tries every threshold
//! `x_j <= s` on every feature `j` (or on a random subset of `max_features` features, which is
//! what a random forest asks for), and keeps the split whose children have the smallest
//! impurity weighted by their sizes, `(n_L / n) I(L) + (n_R / n) I(R)`. Thresholds are midway
//! between consecutive distinct values. A node becomes a leaf when it is pure, when it reaches
//! `max_depth`, when it holds fewer than `min_samples_split` examples, or when no feature
//! separates its examples; a leaf predicts its majority class (the smallest class on ties).

use ndarray::Array2;
use rand::Rng;
use rand::seq::index::sample;
use std::fmt::Write as _;

/// How to measure a node's impurity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Criterion {
    /// `1 - sum_k p_k^2`.
    Gini,
    /// `-sum_k p_k log2 p_k`.
    Entropy,
}

// ANCHOR: impurity
impl Criterion {
    /// The impurity of a node with these class counts (zero for an empty node).
    pub fn impurity(self, counts: &[usize]) -> f64 {
        let n: usize = counts.iter().sum();
        if n == 0 {
            return 0.0;
        }
        let n = n as f64;
        match self {
            Criterion::Gini => 1.0 - counts.iter().map(|&c| (c as f64 / n).powi(2)).sum::<f64>(),
            Criterion::Entropy => -counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / n;
                    p * p.log2()
                })
                .sum::<f64>(),
        }
    }
}
// ANCHOR_END: impurity

/// Settings of a tree.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct TreeConfig {
    /// The impurity to minimise.
    pub criterion: Criterion,
    /// The deepest a leaf may be (the root has depth 0).
    pub max_depth: usize,
    /// Nodes with fewer examples become leaves.
    pub min_samples_split: usize,
    /// Features tried at each split, drawn afresh per node (`None`: all of them).
    pub max_features: Option<usize>,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            criterion: Criterion::Gini,
            max_depth: 10,
            min_samples_split: 2,
            max_features: None,
        }
    }
}

/// A node of a [`Tree`]; children are indices into [`Tree::nodes`].
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Predicts `class`.
    Leaf {
        /// Training examples per class that reached this leaf.
        counts: Vec<usize>,
        /// The majority class.
        class: usize,
    },
    /// Sends `x` left if `x[feature] <= threshold`, else right.
    Split {
        /// Training examples per class that reached this node.
        counts: Vec<usize>,
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

impl Node {
    /// Training examples per class that reached this node.
    pub fn counts(&self) -> &[usize] {
        match self {
            Node::Leaf { counts, .. } | Node::Split { counts, .. } => counts,
        }
    }
}

/// A fitted decision tree; `nodes[0]` is the root.
#[derive(Clone, Debug)]
pub struct Tree {
    /// The nodes, parents before children.
    pub nodes: Vec<Node>,
    /// The number of classes.
    pub classes: usize,
}

fn class_counts(y: &[usize], idx: &[usize], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &i in idx {
        counts[y[i]] += 1;
    }
    counts
}

fn majority(counts: &[usize]) -> usize {
    let mut best = 0;
    for (k, &c) in counts.iter().enumerate() {
        if c > counts[best] {
            best = k;
        }
    }
    best
}

/// The best split found: feature, threshold, weighted child impurity.
struct Best {
    feature: usize,
    threshold: f64,
    score: f64,
}

// ANCHOR: best_split
/// Searches the features `features` for the threshold that minimises the weighted impurity of
/// the two children of the node holding examples `idx`.
fn best_split(
    x: &Array2<f64>,
    y: &[usize],
    idx: &[usize],
    features: &[usize],
    classes: usize,
    criterion: Criterion,
) -> Option<Best> {
    let n = idx.len() as f64;
    let total = class_counts(y, idx, classes);
    let mut best: Option<Best> = None;
    let mut sorted = idx.to_vec();
    for &j in features {
        sorted.sort_by(|&a, &b| x[[a, j]].total_cmp(&x[[b, j]]));
        let mut left = vec![0; classes];
        let mut right = total.clone();
        // Move examples left one by one; a threshold fits between two distinct values.
        for w in 0..sorted.len() - 1 {
            let i = sorted[w];
            left[y[i]] += 1;
            right[y[i]] -= 1;
            let (v, next) = (x[[i, j]], x[[sorted[w + 1], j]]);
            if v == next {
                continue;
            }
            let n_left = (w + 1) as f64;
            let score = n_left / n * criterion.impurity(&left)
                + (n - n_left) / n * criterion.impurity(&right);
            if best.as_ref().is_none_or(|b| score < b.score) {
                best = Some(Best {
                    feature: j,
                    threshold: 0.5 * (v + next),
                    score,
                });
            }
        }
    }
    best
}
// ANCHOR_END: best_split

impl Tree {
    /// Grows a tree on the examples `idx` of `x` (`[n, features]`) with labels `y` in
    /// `0..classes`. `idx` may repeat an example (a bootstrap sample counts it twice). `rng`
    /// draws the feature subsets when `config.max_features` is set.
    pub fn fit(
        x: &Array2<f64>,
        y: &[usize],
        idx: &[usize],
        classes: usize,
        config: &TreeConfig,
        rng: &mut impl Rng,
    ) -> Tree {
        assert_eq!(x.nrows(), y.len(), "Tree::fit: x and y differ in length");
        assert!(!idx.is_empty(), "Tree::fit: no examples");
        assert!(
            y.iter().all(|&l| l < classes),
            "Tree::fit: a label is not below {classes}"
        );
        let mut tree = Tree {
            nodes: Vec::new(),
            classes,
        };
        tree.grow(x, y, idx.to_vec(), 0, config, rng);
        tree
    }

    // ANCHOR: grow
    /// Grows the subtree for the examples `idx` at `depth`, returning its root's index.
    fn grow(
        &mut self,
        x: &Array2<f64>,
        y: &[usize],
        idx: Vec<usize>,
        depth: usize,
        config: &TreeConfig,
        rng: &mut impl Rng,
    ) -> usize {
        let counts = class_counts(y, &idx, self.classes);
        let me = self.nodes.len();
        self.nodes.push(Node::Leaf {
            class: majority(&counts),
            counts: counts.clone(),
        });
        let pure = counts.iter().filter(|&&c| c > 0).count() <= 1;
        if pure || depth >= config.max_depth || idx.len() < config.min_samples_split {
            return me;
        }
        let d = x.ncols();
        let all: Vec<usize> = (0..d).collect();
        let split = match config.max_features {
            Some(m) if m < d => {
                let mut subset = sample(rng, d, m).into_vec();
                subset.sort_unstable();
                // If the drawn features are all constant here, fall back to every feature.
                best_split(x, y, &idx, &subset, self.classes, config.criterion)
                    .or_else(|| best_split(x, y, &idx, &all, self.classes, config.criterion))
            }
            _ => best_split(x, y, &idx, &all, self.classes, config.criterion),
        };
        let Some(Best {
            feature, threshold, ..
        }) = split
        else {
            return me;
        };
        let (go_left, go_right): (Vec<usize>, Vec<usize>) =
            idx.iter().partition(|&&i| x[[i, feature]] <= threshold);
        let left = self.grow(x, y, go_left, depth + 1, config, rng);
        let right = self.grow(x, y, go_right, depth + 1, config, rng);
        self.nodes[me] = Node::Split {
            counts,
            feature,
            threshold,
            left,
            right,
        };
        me
    }
    // ANCHOR_END: grow

    /// The predicted class of one example.
    pub fn predict_one(&self, x: ndarray::ArrayView1<f64>) -> usize {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf { class, .. } => return *class,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    ..
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

    /// The predicted class of each row of `x`.
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        x.rows().into_iter().map(|r| self.predict_one(r)).collect()
    }

    /// The depth of the deepest leaf (0 for a single leaf).
    pub fn depth(&self) -> usize {
        fn walk(t: &Tree, at: usize) -> usize {
            match &t.nodes[at] {
                Node::Leaf { .. } => 0,
                Node::Split { left, right, .. } => 1 + walk(t, *left).max(walk(t, *right)),
            }
        }
        walk(self, 0)
    }

    /// The number of leaves.
    pub fn leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }

    // ANCHOR: render
    /// Draws the tree as indented text, one node per line. `feature_name` names a feature,
    /// `criterion` gives the impurity shown at each node.
    pub fn render(&self, feature_name: &dyn Fn(usize) -> String, criterion: Criterion) -> String {
        let mut out = String::new();
        self.render_node(0, "", "", feature_name, criterion, &mut out);
        out
    }
    // ANCHOR_END: render

    fn render_node(
        &self,
        at: usize,
        lead: &str,
        branch: &str,
        name: &dyn Fn(usize) -> String,
        criterion: Criterion,
        out: &mut String,
    ) {
        let node = &self.nodes[at];
        let counts = node.counts();
        let n: usize = counts.iter().sum();
        let impurity = criterion.impurity(counts);
        match node {
            Node::Leaf { class, .. } => {
                let _ = writeln!(
                    out,
                    "{lead}{branch}predict {class}   (n = {n}, {} correct, impurity {impurity:.3})",
                    counts[*class]
                );
            }
            Node::Split {
                feature,
                threshold,
                left,
                right,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "{lead}{branch}{} <= {threshold}?   (n = {n}, impurity {impurity:.3})",
                    name(*feature)
                );
                let child_lead = match branch {
                    "" => String::new(),
                    b if b.starts_with("├") => format!("{lead}│   "),
                    _ => format!("{lead}    "),
                };
                self.render_node(*left, &child_lead, "├── yes: ", name, criterion, out);
                self.render_node(*right, &child_lead, "└── no:  ", name, criterion, out);
            }
        }
    }
}
