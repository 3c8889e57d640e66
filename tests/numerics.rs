//! Numerical safety: the functions that meet extreme inputs (huge logits, all-equal rows,
//! saturated sigmoids) give finite values and finite gradients, and training stops with a clear
//! message instead of training on NaNs.

use dlfs::activation::{sigmoid, sigmoid_backward, sigmoid_scalar};
use dlfs::loss::{cross_entropy_rows, log_softmax, softmax, softmax_cross_entropy};
use dlfs::runner::ensure_finite;
use ndarray::{Array2, array};

fn all_finite(a: &Array2<f32>) -> bool {
    a.iter().all(|v| v.is_finite())
}

#[test]
fn softmax_and_cross_entropy_at_extreme_logits() {
    let z: Array2<f32> = array![
        [1e4, -1e4, 0.0],
        [-1e4, -1e4, -1e4],
        [3e38, 0.0, -3e38],
        [5.0, 5.0, 5.0]
    ];
    let p = softmax(&z);
    assert!(all_finite(&p), "{p:?}");
    for row in p.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-6, "{row:?}");
    }
    assert_eq!(p.row(0).to_vec(), vec![1.0, 0.0, 0.0]);
    assert!(
        p.row(3).iter().all(|&v| (v - 1.0 / 3.0).abs() < 1e-7),
        "all-equal logits give a uniform row"
    );
    let log_p = log_softmax(&z);
    assert!(log_p.iter().all(|v| !v.is_nan()));
    assert_eq!(log_p[[0, 0]], 0.0);
    // The true class far behind: a huge but finite loss, a finite gradient.
    let (loss, grad) = softmax_cross_entropy(&z, &[1, 0, 0, 2]);
    assert!(loss.is_finite() && loss > 1e3, "{loss}");
    assert!(all_finite(&grad), "{grad:?}");
    // The true class far ahead: zero loss, zero gradient, not NaN.
    let rows = cross_entropy_rows(&array![[1e4f32, -1e4]], &[0]);
    assert_eq!(rows[0], 0.0);
}

#[test]
fn sigmoid_saturates_without_overflow() {
    for x in [-1e4f32, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4] {
        let s = sigmoid_scalar(x);
        assert!(
            s.is_finite() && (0.0..=1.0).contains(&s),
            "sigmoid({x}) = {s}"
        );
    }
    assert_eq!(sigmoid_scalar(-1e4f32), 0.0);
    assert_eq!(sigmoid_scalar(1e4f32), 1.0);
    let x: Array2<f64> = array![[-1e4, 1e4, -745.0, 710.0]];
    let s = sigmoid(&x);
    let ds = sigmoid_backward(&s, &Array2::ones((1, 4)));
    assert!(s.iter().chain(ds.iter()).all(|v| v.is_finite()));
}

#[test]
fn non_finite_values_are_reported_with_the_step() {
    assert!(ensure_finite(3, "training loss", 0.5).is_ok());
    let e = ensure_finite(17, "training loss", f64::NAN)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("step 17") && e.contains("training loss is NaN") && e.contains("learning rate"),
        "{e}"
    );
    let e = ensure_finite(2, "gradient norm", f64::INFINITY)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gradient norm is inf"), "{e}");
}
