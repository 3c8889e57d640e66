//! Exact t-SNE: the perplexity calibration reaches its target, the joint probabilities are a
//! symmetric distribution, the KL gradient matches central differences, and embedding separates
//! well-separated clusters.

use dlfs::classical::tsne::{
    TsneConfig, conditional_row, embed, joint_probabilities, kl, kl_and_gradient,
    neighbour_agreement,
};
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn clusters(per: usize, dims: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, 0.3).unwrap();
    let n = 3 * per;
    let x = Array2::from_shape_fn((n, dims), |(i, j)| {
        let c = i / per;
        (if j == c { 5.0 } else { 0.0 }) + noise.sample(&mut rng)
    });
    (x, (0..n).map(|i| i / per).collect())
}

#[test]
fn each_row_reaches_its_perplexity() {
    let (x, _) = clusters(10, 4, 1);
    let d = dlfs::classical::tsne::squared_distances(&x);
    for i in [0, 7, 29] {
        let (p, entropy) = conditional_row(&d.row(i).to_vec(), i, 5.0);
        assert!((entropy - 5f64.ln()).abs() < 1e-4, "row {i}: {entropy}");
        assert_eq!(p[i], 0.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // The entropy the bisection reports is the entropy of the probabilities it returns.
        let h: f64 = -p
            .iter()
            .filter(|&&v| v > 0.0)
            .map(|v| v * v.ln())
            .sum::<f64>();
        assert!((h - entropy).abs() < 1e-9, "{h} vs {entropy}");
    }
}

#[test]
fn joint_probabilities_are_symmetric_and_sum_to_one() {
    let (x, _) = clusters(8, 3, 2);
    let p = joint_probabilities(&x, 4.0);
    assert!((p.sum() - 1.0).abs() < 1e-12);
    assert!((&p - &p.t()).iter().all(|v| v.abs() < 1e-15));
    assert!(p.diag().iter().all(|&v| v == 0.0));
}

#[test]
fn the_kl_gradient_matches_central_differences() {
    let (x, _) = clusters(4, 3, 3);
    let p = joint_probabilities(&x, 3.0);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let y = Array2::from_shape_simple_fn((12, 2), || normal.sample(&mut rng));
    let (_, grad) = kl_and_gradient(&p, &y);
    let check = GradCheck::default().input(&y, &grad, |y| kl(&p, y));
    check.assert_below(TOLERANCE);
    // And a wrong constant (the 4 of the gradient dropped to 2) fails it.
    let half = &grad * 0.5;
    let wrong = GradCheck::default().input(&y, &half, |y| kl(&p, y));
    assert!(!wrong.failures(TOLERANCE).is_empty());
}

#[test]
fn embedding_keeps_clusters_apart() {
    let (x, labels) = clusters(20, 5, 5);
    let config = TsneConfig {
        perplexity: 10.0,
        iterations: 300,
        ..TsneConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (y, kl) = embed(&x, &config, &mut rng);
    assert_eq!(y.dim(), (60, 2));
    assert!(kl.is_finite() && kl >= 0.0);
    assert_eq!(neighbour_agreement(&y, &labels), 1.0);
    // Same seed, same map.
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    assert_eq!(embed(&x, &config, &mut rng).0, y);
}
