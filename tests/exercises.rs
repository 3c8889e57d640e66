//! Exercises from the chapters, as tests the reader makes pass. They are `#[ignore]`d so that
//! `cargo test` stays green; run them with `cargo test --test exercises -- --ignored`.

use dlfs::gradcheck::{GradCheck, TOLERANCE};
use ndarray::{Array2, array};

// ANCHOR: leaky_relu
/// MLP chapter, exercise 2: leaky ReLU, `f(x) = x` for `x > 0` and `alpha x` otherwise.
fn leaky_relu(x: &Array2<f64>, alpha: f64) -> Array2<f64> {
    x.mapv(|v| if v > 0.0 { v } else { alpha * v })
}

/// Its backward rule. This version is wrong on purpose (it is plain ReLU's rule): fix it.
fn leaky_relu_backward(x: &Array2<f64>, dy: &Array2<f64>, alpha: f64) -> Array2<f64> {
    let _ = alpha;
    ndarray::Zip::from(x)
        .and(dy)
        .map_collect(|&x, &g| if x > 0.0 { g } else { 0.0 })
}

#[test]
#[ignore = "exercise: fix leaky_relu_backward, then run with --ignored"]
fn leaky_relu_backward_passes_the_gradient_check() {
    let x = array![[0.5, -1.5, 2.0], [-0.3, 0.7, -2.2]];
    let dy = array![[1.0, -2.0, 0.5], [0.3, 1.1, -0.7]];
    let dx = leaky_relu_backward(&x, &dy, 0.1);
    GradCheck::default()
        .input(&x, &dx, |x| (leaky_relu(x, 0.1) * &dy).sum())
        .assert_below(TOLERANCE);
}
// ANCHOR_END: leaky_relu
