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

// ANCHOR: vae_binary_samples
/// VAE chapter, exercise 5: draw binary images from the Bernoulli decoder's pixel
/// probabilities `p` (`[n, pixels]`), each pixel 1 with probability `p_ij`. This version is
/// wrong on purpose (it returns the probabilities, the "mean image" the chapter's figures
/// show): fix it.
fn sample_pixels(p: &Array2<f64>, rng: &mut impl rand::Rng) -> Array2<f64> {
    let _ = rng;
    p.clone()
}

#[test]
#[ignore = "exercise: fix sample_pixels, then run with --ignored"]
fn sampled_pixels_are_binary_with_the_right_mean() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let p = Array2::from_shape_fn((20_000, 4), |(_, j)| [0.05, 0.3, 0.5, 0.9][j]);
    let x = sample_pixels(&p, &mut rng);
    assert!(x.iter().all(|&v| v == 0.0 || v == 1.0), "pixels are 0 or 1");
    // Each column's mean is within 5 standard errors, sqrt(p (1 - p) / n), of p.
    for j in 0..4 {
        let (pj, mean) = (p[[0, j]], x.column(j).mean().unwrap());
        assert!(
            (mean - pj).abs() < 5.0 * (pj * (1.0 - pj) / 20_000.0).sqrt(),
            "{j}: {mean}"
        );
    }
}
// ANCHOR_END: vae_binary_samples

// ANCHOR: padding_mask
/// Self-attention chapter, exercise 2: hide the keys at positions `valid..` of a `[tq, tk]`
/// matrix of scores (the padding of a short sequence), so that the softmax gives them no
/// weight. This version is wrong on purpose (it hides nothing): fix it.
fn mask_padding(scores: &mut Array2<f64>, valid: usize) {
    let _ = (scores, valid);
}

#[test]
#[ignore = "exercise: fix mask_padding, then run with --ignored"]
fn padded_keys_get_no_weight() {
    let mut s = Array2::from_shape_fn((3, 5), |(i, j)| ((i * 5 + j) as f64 * 0.7).sin());
    mask_padding(&mut s, 3);
    dlfs::self_attention::softmax_rows(&mut s);
    for row in s.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-12, "{row}");
        assert!(row.iter().skip(3).all(|&w| w == 0.0), "{row}");
    }
}
// ANCHOR_END: padding_mask

// ANCHOR: made_grid_degrees
/// MADE chapter, exercise 4: hidden degrees on a grid instead of at random. For `dims`
/// variables and `width` units, unit `k` should get the degree `1 + (k (D - 1)) / width`
/// (integer division), so the degrees `1 ..= D - 1` are used as evenly as the width allows.
/// This version is wrong on purpose (every unit gets degree 1, which connects each unit to
/// the first variable only): fix it.
fn grid_degrees(dims: usize, width: usize) -> Vec<usize> {
    let _ = dims;
    vec![1; width]
}

#[test]
#[ignore = "exercise: fix grid_degrees, then run with --ignored"]
fn grid_degrees_cover_every_degree_evenly() {
    use dlfs::made::{Degrees, Made, Output};
    let (dims, width) = (7, 18);
    let hidden = grid_degrees(dims, width);
    assert_eq!(hidden.len(), width);
    // Every degree 1..D-1 is used three times (18 units over 6 degrees).
    for m in 1..dims {
        assert_eq!(hidden.iter().filter(|&&h| h == m).count(), 3, "degree {m}");
    }
    // And the masks built from them are a valid MADE: every output after the first is
    // connected to some hidden unit.
    let degrees = Degrees {
        order: (1..=dims).collect(),
        hidden: vec![hidden],
    };
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let model = Made::<f64>::new(degrees, Output::Bernoulli, false, &mut rng);
    let fan_in = model.output.mask().sum_axis(ndarray::Axis(0));
    assert_eq!(fan_in[0], 0.0);
    assert!(fan_in.iter().skip(1).all(|&f| f > 0.0));
}
// ANCHOR_END: made_grid_degrees

// ANCHOR: gru
/// LSTM chapter, exercise 1: one step of a GRU (Cho et al., 2014) in the row convention, with
/// the gates packed as `[z, r, n]`: `w` is `[in, 3H]`, `u` is `[H, 3H]`,
/// `z = σ(x w_z + h u_z)`, `r = σ(x w_r + h u_r)`, `n = tanh(x w_n + (r ⊙ h) u_n)`,
/// `h' = (1 - z) ⊙ h + z ⊙ n`.
fn gru_step(x: &Array2<f64>, h: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>) -> Array2<f64> {
    let n_h = h.ncols();
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let xw = x.dot(w);
    let col =
        |a: &Array2<f64>, k: usize| a.slice(ndarray::s![.., k * n_h..(k + 1) * n_h]).to_owned();
    let z = (col(&xw, 0) + h.dot(&col(u, 0))).mapv(sig);
    let r = (col(&xw, 1) + h.dot(&col(u, 1))).mapv(sig);
    let n = (col(&xw, 2) + (&r * h).dot(&col(u, 2))).mapv(f64::tanh);
    (1.0 - &z) * h + &z * &n
}

/// `dL/dh` for `dh_next = dL/dh'`. This version is wrong on purpose: it forgets one of the
/// paths from `h` to `h'`. Find it (the chapter's hint says where to look) and fix it.
fn gru_step_backward_h(
    x: &Array2<f64>,
    h: &Array2<f64>,
    w: &Array2<f64>,
    u: &Array2<f64>,
    dh_next: &Array2<f64>,
) -> Array2<f64> {
    let n_h = h.ncols();
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let xw = x.dot(w);
    let col =
        |a: &Array2<f64>, k: usize| a.slice(ndarray::s![.., k * n_h..(k + 1) * n_h]).to_owned();
    let z = (col(&xw, 0) + h.dot(&col(u, 0))).mapv(sig);
    let r = (col(&xw, 1) + h.dot(&col(u, 1))).mapv(sig);
    let n = (col(&xw, 2) + (&r * h).dot(&col(u, 2))).mapv(f64::tanh);
    let mut dh = dh_next * &(1.0 - &z);
    let da_n = dh_next * &z * &(1.0 - &n * &n);
    let d_rh = da_n.dot(&col(u, 2).t());
    let da_r = &d_rh * h * &r * &(1.0 - &r);
    let da_z = dh_next * &(&n - h) * &z * &(1.0 - &z);
    dh += &da_z.dot(&col(u, 0).t());
    dh += &da_r.dot(&col(u, 1).t());
    dh
}

#[test]
#[ignore = "exercise: fix gru_step_backward_h, then run with --ignored"]
fn the_gru_step_passes_the_gradient_check() {
    let f = |r: usize, c: usize, k: f64| {
        Array2::from_shape_fn((r, c), |(i, j)| ((i * 5 + j * 3) as f64 * k).sin())
    };
    let (x, h, w, u) = (f(2, 3, 0.7), f(2, 4, 1.3), f(3, 12, 0.9), f(4, 12, 0.4));
    let probe = f(2, 4, 2.1);
    let dh = gru_step_backward_h(&x, &h, &w, &u, &probe);
    GradCheck::default()
        .input(&h, &dh, |h| (gru_step(&x, h, &w, &u) * &probe).sum())
        .assert_below(TOLERANCE);
}
// ANCHOR_END: gru
