//! The second half of the classical course: SVM subgradients against finite differences, the
//! kernel SVM's optimality conditions, trees on separable data and their depth limit, PCA
//! against the covariance's eigen-equation, out-of-bag votes, and the floors on the digits.

mod common;

use dlfs::classical::forest::{Forest, ForestConfig};
use dlfs::classical::neighbours::{NearestMean, accuracy, knn_predict};
use dlfs::classical::pca::{Pca, covariance};
use dlfs::classical::svm::{
    KernelSvm, LinearConfig, LinearSvm, dual_coordinate_ascent, kernel_matrix, targets,
    train_linear, two_moons,
};
use dlfs::classical::tree::{Criterion, Node, Tree, TreeConfig};
use dlfs::data::digits::{DigitSplits, Digits};
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Normal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal(shape: (usize, usize), rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::random_using(shape, Normal::new(0.0, 1.0).unwrap(), rng)
}

fn digits() -> DigitSplits {
    Digits::shipped().expect("the shipped digits").split()
}

// ---------------------------------------------------------------- SVM

/// A random SVM and batch whose margins `t * s` all stay at least 0.05 away from the hinge at
/// 1, with some margins violated and some not (so both branches of the subgradient are used).
fn svm_away_from_hinge() -> (LinearSvm<f64>, Array2<f64>, Vec<usize>) {
    for seed in 0..1000 {
        let mut r = rng(seed);
        let mut svm = LinearSvm::<f64>::new(4, 3);
        svm.w.value = normal((4, 3), &mut r);
        svm.b.value = Array1::from_shape_fn(3, |_| r.random_range(-1.0..1.0));
        let x = normal((6, 4), &mut r);
        let y: Vec<usize> = (0..6).map(|i| i % 3).collect();
        let margins = svm.scores(&x) * targets::<f64>(&y, 3);
        let violated = margins.iter().filter(|&&m| m < 1.0).count();
        if margins.iter().all(|m| (m - 1.0).abs() > 0.05) && (3..=15).contains(&violated) {
            return (svm, x, y);
        }
    }
    panic!("no random SVM kept its margins away from the hinge");
}

#[test]
fn linear_svm_subgradient_matches_finite_differences_away_from_the_hinge() {
    let (mut svm, x, y) = svm_away_from_hinge();
    let lambda = 0.3;
    let report = GradCheck::default().params(
        &mut svm,
        |m| m.loss(&x, &y, lambda),
        |m| {
            m.backward(&x, &y, lambda);
        },
    );
    report.assert_below(TOLERANCE);
}

#[test]
fn linear_svm_parameter_names() {
    // One weight column and one bias per class (one-vs-rest).
    common::assert_params(&mut LinearSvm::<f64>::new(4, 3), &["w", "b"], 4 * 3 + 3);
}

#[test]
fn the_check_rejects_a_subgradient_without_the_penalty_term() {
    let (mut svm, x, y) = svm_away_from_hinge();
    // Backward with lambda = 0 while the loss has lambda = 0.3: the L2 term is missing.
    let report = GradCheck::default().params(
        &mut svm,
        |m| m.loss(&x, &y, 0.3),
        |m| {
            m.backward(&x, &y, 0.0);
        },
    );
    assert!(report.max_rel_error() > 1e-3, "{report}");
}

#[test]
fn backward_returns_the_loss_it_differentiates() {
    let (mut svm, x, y) = svm_away_from_hinge();
    let loss = svm.loss(&x, &y, 0.1);
    assert!((svm.backward(&x, &y, 0.1) - loss).abs() < 1e-12);
}

#[test]
fn linear_svm_separates_two_separable_blobs() {
    let mut r = rng(2);
    let mut x = normal((100, 2), &mut r) * 0.5;
    let y: Vec<usize> = (0..100).map(|i| i % 2).collect();
    for i in 0..100 {
        x[[i, 0]] += if y[i] == 1 { 3.0 } else { -3.0 };
    }
    let (svm, losses) = train_linear(&x, &y, 2, &LinearConfig::default(), &mut r);
    assert_eq!(accuracy(&svm.predict(&x), &y), 1.0);
    assert!(losses.last().unwrap() < &losses[0], "{losses:?}");
}

#[test]
fn dual_coordinate_ascent_meets_the_optimality_conditions() {
    let mut r = rng(3);
    let (x, t) = two_moons(60, 0.2, &mut r);
    let (gamma, c) = (2.0, 1.0);
    let k = kernel_matrix(&x, &x, gamma);
    let (a, passes) = dual_coordinate_ascent(&k, &t, c, 5000, 1e-9, &mut r);
    assert!(passes < 5000, "did not converge");
    // f(x_i) = sum_j a_j t_j K'_ij; KKT: a_i = 0 => t_i f_i >= 1, a_i = C => t_i f_i <= 1,
    // 0 < a_i < C => t_i f_i = 1.
    let at: Array1<f64> = a.iter().zip(&t).map(|(a, t)| a * t).collect();
    let f = k.dot(&at);
    let tol = 1e-4;
    for i in 0..t.len() {
        let m = t[i] * f[i];
        assert!((0.0..=c).contains(&a[i]), "a[{i}] = {}", a[i]);
        if a[i] == 0.0 {
            assert!(m >= 1.0 - tol, "a[{i}] = 0 but margin {m}");
        } else if a[i] == c {
            assert!(m <= 1.0 + tol, "a[{i}] = C but margin {m}");
        } else {
            assert!((m - 1.0).abs() < tol, "0 < a[{i}] < C but margin {m}");
        }
    }
    let svs = a.iter().filter(|&&a| a > 0.0).count();
    assert!(svs > 0 && svs < t.len(), "{svs} support vectors");
    // The fitted machine agrees with the dual solution and classifies fresh moons well.
    let svm = KernelSvm::fit(&x, &t, gamma, c, &mut rng(3));
    let (xt, tt) = two_moons(200, 0.2, &mut r);
    let f = svm.decision(&xt);
    let hits = f
        .iter()
        .zip(&tt)
        .filter(|(f, t)| (**f >= 0.0) == (**t > 0.0))
        .count();
    assert!(hits as f64 / tt.len() as f64 > 0.9, "{hits} of 400");
}

// ---------------------------------------------------------------- trees

/// XOR on a 6x6 grid of the plane: no single split helps, yet a deep enough tree is exact.
fn xor_grid() -> (Array2<f64>, Vec<usize>) {
    let mut x = Array2::zeros((36, 2));
    let mut y = Vec::new();
    for i in 0..36 {
        let (a, b) = ((i / 6) as f64, (i % 6) as f64);
        x[[i, 0]] = a;
        x[[i, 1]] = b;
        y.push(usize::from((a < 3.0) != (b < 3.0)));
    }
    (x, y)
}

#[test]
fn impurities_have_their_textbook_values() {
    assert_eq!(Criterion::Gini.impurity(&[7, 0]), 0.0);
    assert_eq!(Criterion::Entropy.impurity(&[0, 7]), 0.0);
    assert!((Criterion::Gini.impurity(&[5, 5]) - 0.5).abs() < 1e-12);
    assert!((Criterion::Entropy.impurity(&[5, 5]) - 1.0).abs() < 1e-12);
    assert!((Criterion::Gini.impurity(&[1, 1, 1, 1]) - 0.75).abs() < 1e-12);
    assert!((Criterion::Entropy.impurity(&[1, 1, 1, 1]) - 2.0).abs() < 1e-12);
}

#[test]
fn a_tree_fits_a_separable_set_exactly() {
    let (x, y) = xor_grid();
    let idx: Vec<usize> = (0..y.len()).collect();
    for criterion in [Criterion::Gini, Criterion::Entropy] {
        let config = TreeConfig {
            criterion,
            max_depth: 20,
            ..TreeConfig::default()
        };
        let tree = Tree::fit(&x, &y, &idx, 2, &config, &mut rng(0));
        assert_eq!(tree.predict(&x), y, "{criterion:?}");
        for node in &tree.nodes {
            if let Node::Leaf { counts, .. } = node {
                assert_eq!(counts.iter().filter(|&&c| c > 0).count(), 1, "impure leaf");
            }
        }
    }
}

#[test]
fn a_tree_respects_its_depth_limit() {
    let s = digits();
    let idx: Vec<usize> = (0..s.train.len()).collect();
    for max_depth in 0..6 {
        let config = TreeConfig {
            max_depth,
            ..TreeConfig::default()
        };
        let tree = Tree::fit(&s.train.x, &s.train.y, &idx, 10, &config, &mut rng(0));
        assert_eq!(
            tree.depth(),
            max_depth,
            "the digits need every level allowed"
        );
        assert!(tree.leaves() <= 1 << max_depth);
    }
    // On XOR a depth-1 tree cannot be exact.
    let (x, y) = xor_grid();
    let idx: Vec<usize> = (0..y.len()).collect();
    let config = TreeConfig {
        max_depth: 1,
        ..TreeConfig::default()
    };
    let tree = Tree::fit(&x, &y, &idx, 2, &config, &mut rng(0));
    assert!(accuracy(&tree.predict(&x), &y) < 1.0);
}

#[test]
fn the_rendering_shows_every_node() {
    let (x, y) = xor_grid();
    let idx: Vec<usize> = (0..y.len()).collect();
    let tree = Tree::fit(&x, &y, &idx, 2, &TreeConfig::default(), &mut rng(0));
    let text = tree.render(&|j| format!("x{j}"), Criterion::Gini);
    assert_eq!(text.lines().count(), tree.nodes.len());
    assert_eq!(text.matches("predict").count(), tree.leaves());
}

// ---------------------------------------------------------------- forests

#[test]
fn out_of_bag_votes_come_only_from_trees_that_did_not_see_the_example() {
    // Random labels: nothing generalises, so trees that saw an example (grown until pure)
    // recall its label, while trees that did not are right by chance only.
    let mut r = rng(4);
    let n = 200;
    let x = normal((n, 5), &mut r);
    let y: Vec<usize> = (0..n).map(|_| r.random_range(0..2)).collect();
    let config = ForestConfig {
        trees: 40,
        tree: TreeConfig {
            max_depth: 64,
            max_features: Some(2),
            ..TreeConfig::default()
        },
    };
    let forest = Forest::fit(&x, &y, 2, &config, &mut r);
    // Structure: each tree's bootstrap has n draws; the votes on example i number exactly the
    // trees whose bootstrap missed i, and they equal those trees' predictions.
    let votes = forest.oob_votes(&x, 40);
    for (t, seen) in forest.in_bag.iter().enumerate() {
        assert_eq!(
            seen.iter().map(|&c| c as usize).sum::<usize>(),
            n,
            "tree {t}"
        );
    }
    for i in 0..n {
        let mut expected = [0usize; 2];
        for (tree, seen) in forest.trees.iter().zip(&forest.in_bag) {
            if seen[i] == 0 {
                expected[tree.predict_one(x.row(i))] += 1;
            }
        }
        assert_eq!(votes[i], expected, "example {i}");
    }
    // A tree is exact on the examples it saw.
    for (tree, seen) in forest.trees.iter().zip(&forest.in_bag) {
        for i in (0..n).filter(|&i| seen[i] > 0) {
            assert_eq!(tree.predict_one(x.row(i)), y[i]);
        }
    }
    // So the full vote recalls the training labels, but the out-of-bag estimate is near chance.
    assert!(accuracy(&forest.predict(&x), &y) > 0.95);
    let (oob, scored) = forest.oob_error(&x, &y, 40);
    assert_eq!(scored, n, "40 trees leave every example out at least once");
    assert!(
        oob > 0.3,
        "out-of-bag error {oob} on random labels: in-bag trees leaked"
    );
}

// ---------------------------------------------------------------- PCA

#[test]
fn pca_components_are_orthonormal_eigenvectors_of_the_covariance() {
    let s = digits();
    let pca = Pca::fit(&s.train.x, 20, &mut rng(5));
    let (_, c) = covariance(&s.train.x);
    let gram = pca.components.dot(&pca.components.t());
    for i in 0..20 {
        for j in 0..20 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!(
                (gram[[i, j]] - want).abs() < 1e-9,
                "V V^T [{i},{j}] = {}",
                gram[[i, j]]
            );
        }
    }
    for (k, v) in pca.components.rows().into_iter().enumerate() {
        let cv = c.dot(&v);
        let lambda = pca.eigenvalues[k];
        let residual = (&cv - &(lambda * &v)).mapv(|e| e * e).sum().sqrt();
        assert!(
            residual < 1e-6 * pca.eigenvalues[0],
            "component {k}: |C v - lambda v| = {residual:e}"
        );
    }
    assert!(pca.eigenvalues.windows(2).all(|w| w[0] >= w[1] - 1e-9));
    let explained = pca.cumulative_explained();
    assert!(explained[19] > 0.8 && explained[19] < 1.0, "{explained:?}");
}

#[test]
fn pca_recovers_a_known_spectrum_and_reconstructs_exactly_with_every_component() {
    // Data stretched along known orthogonal axes: the covariance's eigenvalues are the
    // variances 9, 4, 1 and 0.25.
    let mut r = rng(6);
    let z = normal((4000, 4), &mut r) * &Array1::from(vec![3.0, 2.0, 1.0, 0.5]);
    let theta: f64 = 0.7;
    let rot = Array2::from_shape_vec(
        (4, 4),
        vec![
            theta.cos(),
            -theta.sin(),
            0.0,
            0.0,
            theta.sin(),
            theta.cos(),
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
        ],
    )
    .unwrap();
    let x = z.dot(&rot);
    let pca = Pca::fit(&x, 4, &mut r);
    for (got, want) in pca.eigenvalues.iter().zip([9.0, 4.0, 1.0, 0.25]) {
        assert!((got / want - 1.0).abs() < 0.08, "{got} vs {want}");
    }
    let back = pca.reconstruct(&pca.transform(&x), 4);
    assert!((&back - &x).iter().all(|e| e.abs() < 1e-9));
    let first = pca.components.row(0);
    let axis = [theta.cos(), -theta.sin(), 0.0, 0.0];
    let cos: f64 = first.iter().zip(axis).map(|(a, b)| a * b).sum();
    assert!(
        cos.abs() > 0.99,
        "first component {first} is not the stretched axis"
    );
}

// ---------------------------------------------------------------- baselines and floors

#[test]
fn baselines_do_what_they_say() {
    let x = Array2::from_shape_vec((4, 1), vec![0.0, 1.0, 10.0, 11.0]).unwrap();
    let y = vec![0, 0, 1, 1];
    let q = Array2::from_shape_vec((2, 1), vec![4.0, 6.5]).unwrap();
    assert_eq!(NearestMean::fit(&x, &y, 2).predict(&q), vec![0, 1]);
    assert_eq!(knn_predict(&x, &y, &q, 1, 2), vec![0, 1]);
    assert_eq!(knn_predict(&x, &y, &q, 3, 2), vec![0, 1]);
}

#[test]
fn linear_svm_reaches_its_floor_on_the_digits_test_split() {
    // The settings the chapter's program chose on the validation split.
    let s = digits();
    let config = LinearConfig {
        lambda: 1e-4,
        lr: 0.3,
        epochs: 100,
        ..LinearConfig::default()
    };
    let (svm, _) = train_linear(&(&s.train.x / 16.0), &s.train.y, 10, &config, &mut rng(1));
    let test = accuracy(&svm.predict(&(&s.test.x / 16.0)), &s.test.y);
    assert!(test >= 0.94, "linear SVM test accuracy {test}");
}

#[test]
fn random_forest_reaches_its_floor_on_the_digits_test_split() {
    let s = digits();
    let config = ForestConfig {
        trees: 100,
        tree: TreeConfig {
            max_depth: 64,
            max_features: Some(8),
            ..TreeConfig::default()
        },
    };
    let forest = Forest::fit(&s.train.x, &s.train.y, 10, &config, &mut rng(1));
    let test = accuracy(&forest.predict(&s.test.x), &s.test.y);
    assert!(test >= 0.95, "random forest test accuracy {test}");
    let (oob, _) = forest.oob_error(&s.train.x, &s.train.y, 100);
    assert!(oob < 0.08, "out-of-bag error {oob}");
}

// ---------------------------------------------------------------- LDA

#[test]
fn lda_directions_solve_the_generalised_eigenproblem() {
    use dlfs::classical::lda::{Lda, cholesky, scatter_matrices};
    let s = digits();
    let lda = Lda::fit(&s.train.x, &s.train.y, 10, 9, 1e-2, &mut rng(7));
    let (_, sb) = scatter_matrices(&s.train.x, &s.train.y, 10);
    let sw = &lda.within;
    // S_B w = lambda S_W w, and w_i^T S_W w_j = delta_ij.
    for (k, w) in lda.directions.rows().into_iter().enumerate() {
        let lhs = sb.dot(&w);
        let rhs = lda.eigenvalues[k] * sw.dot(&w);
        let err = (&lhs - &rhs).mapv(|e| e * e).sum().sqrt() / rhs.mapv(|e| e * e).sum().sqrt();
        assert!(err < 1e-6, "discriminant {k}: relative residual {err:e}");
    }
    let gram = lda.directions.dot(sw).dot(&lda.directions.t());
    for i in 0..9 {
        for j in 0..9 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((gram[[i, j]] - want).abs() < 1e-8, "W S_W W^T [{i},{j}]");
        }
    }
    assert!(lda.eigenvalues.windows(2).all(|w| w[0] >= w[1] - 1e-9));
    // Cholesky reproduces its input and refuses a matrix that is not positive definite.
    let l = cholesky(sw).unwrap();
    assert!(
        (&l.dot(&l.t()) - sw)
            .iter()
            .all(|e| e.abs() < 1e-6 * sw[[0, 0]].max(1.0))
    );
    assert!(cholesky(&Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 2.0, 1.0]).unwrap()).is_none());
}

#[test]
fn lda_finds_the_direction_that_separates_two_classes() {
    use dlfs::classical::lda::Lda;
    // Two classes differing along x0 only, with large noise along x1: PCA's first component
    // would be x1, LDA's discriminant must be x0.
    let mut r = rng(8);
    let n = 400;
    let mut x = normal((n, 2), &mut r);
    let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
    for i in 0..n {
        x[[i, 1]] *= 10.0;
        x[[i, 0]] += if y[i] == 1 { 2.0 } else { -2.0 };
    }
    let lda = Lda::fit(&x, &y, 2, 1, 1e-9, &mut r);
    let w = lda.directions.row(0);
    let cos = w[0].abs() / (w[0] * w[0] + w[1] * w[1]).sqrt();
    assert!(cos > 0.99, "discriminant {w}");
    assert!(accuracy(&lda.predict(&x), &y) > 0.95);
}
