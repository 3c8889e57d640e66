//! Gradient-boosted trees: the Newton leaf and the split gain against hand computations, the
//! gradients of the softmax cross-entropy, and boosting lowering the training loss round after
//! round.

use dlfs::classical::boosting::{
    BoostConfig, Boosted, RegNode, RegressionTree, cross_entropy, leaf_value, presort,
};
use ndarray::{Array2, array};

#[test]
fn a_stump_finds_the_step_and_its_leaves_are_newton_steps() {
    // One feature; the gradients flip sign between x = 2 and x = 3.
    let x = array![[0.0], [1.0], [2.0], [3.0], [4.0]];
    let g = [1.0, 1.0, 1.0, -2.0, -2.0];
    let h = [0.5, 0.5, 0.5, 0.25, 0.25];
    let config = BoostConfig {
        max_depth: 1,
        lambda: 1.0,
        ..BoostConfig::default()
    };
    let tree = RegressionTree::fit(&x, &g, &h, &[0, 1, 2, 3, 4], &config);
    let RegNode::Split {
        feature,
        threshold,
        left,
        right,
    } = tree.nodes[0].clone()
    else {
        panic!("the root should split: {:?}", tree.nodes);
    };
    assert_eq!((feature, threshold), (0, 2.5));
    // Left: G = 3, H = 1.5, value -3 / 2.5; right: G = -4, H = 0.5, value 4 / 1.5.
    assert_eq!(tree.nodes[left], RegNode::Leaf { value: -3.0 / 2.5 });
    assert_eq!(tree.nodes[right], RegNode::Leaf { value: 4.0 / 1.5 });
    assert_eq!(leaf_value(3.0, 1.5, 1.0), -1.2);
}

#[test]
fn a_node_whose_split_gains_nothing_stays_a_leaf() {
    // Equal gradients everywhere: no split improves the second-order objective.
    let x = array![[0.0], [1.0], [2.0], [3.0]];
    let g = [0.5; 4];
    let h = [0.25; 4];
    let tree = RegressionTree::fit(&x, &g, &h, &[0, 1, 2, 3], &BoostConfig::default());
    assert_eq!(tree.nodes.len(), 1);
    assert_eq!(tree.nodes[0], RegNode::Leaf { value: -2.0 / 2.0 });
}

#[test]
fn presorted_and_sorting_trees_agree() {
    let x = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64);
    let g: Vec<f64> = (0..40).map(|i| ((i as f64) * 0.3).sin()).collect();
    let h: Vec<f64> = (0..40)
        .map(|i| 0.1 + ((i as f64) * 0.7).cos().abs())
        .collect();
    let all: Vec<usize> = (0..40).collect();
    let config = BoostConfig {
        max_depth: 3,
        ..BoostConfig::default()
    };
    let a = RegressionTree::fit(&x, &g, &h, &all, &config);
    let b = RegressionTree::fit_presorted(&x, &g, &h, presort(&x, &all), &config);
    assert_eq!(a.nodes, b.nodes);
    assert!(a.nodes.len() > 3, "the tree should split: {:?}", a.nodes);
}

#[test]
fn boosting_lowers_the_training_loss_every_round() {
    // Three classes in two features, not separable by one split.
    let x = Array2::from_shape_fn((60, 2), |(i, j)| {
        let c = (i % 3) as f64;
        c * 1.5
            + if j == 0 {
                (i as f64 * 0.37).sin()
            } else {
                (i as f64 * 0.91).cos()
            }
    });
    let y: Vec<usize> = (0..60).map(|i| i % 3).collect();
    let config = BoostConfig {
        rounds: 15,
        max_depth: 2,
        ..BoostConfig::default()
    };
    let mut losses = vec![cross_entropy(&Array2::zeros((60, 3)), &y)];
    let model = Boosted::fit(&x, &y, 3, &config, |round, m| {
        losses.push(cross_entropy(&m.scores(&x, round), &y));
    });
    assert_eq!(model.rounds.len(), 15);
    assert!((losses[0] - 3f64.ln()).abs() < 1e-12, "zero scores: log 3");
    for w in losses.windows(2) {
        assert!(w[1] < w[0], "the loss rose: {losses:?}");
    }
    let hits = model
        .predict(&x)
        .iter()
        .zip(&y)
        .filter(|(p, t)| p == t)
        .count();
    assert!(hits >= 57, "{hits} of 60 training points");
}

#[test]
fn staged_scores_add_up_round_by_round() {
    let x = array![[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]];
    let y = [0, 1, 0, 1];
    let config = BoostConfig {
        rounds: 4,
        ..BoostConfig::default()
    };
    let model = Boosted::fit(&x, &y, 2, &config, |_, _| {});
    let full = model.scores(&x, 4);
    let mut by_hand = Array2::<f64>::zeros((4, 2));
    for trees in &model.rounds {
        for (k, t) in trees.iter().enumerate() {
            for i in 0..4 {
                by_hand[[i, k]] += 0.1 * t.predict_one(x.row(i));
            }
        }
    }
    assert!((&full - &by_hand).iter().all(|d| d.abs() < 1e-12));
    assert_eq!(model.scores(&x, 0), Array2::<f64>::zeros((4, 2)));
}
