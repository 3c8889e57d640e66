//! The Transformer chapter: gradient checks (f64) of layer norm, the feed-forward block, the
//! self-attention block (post- and pre-LN, with and without the causal mask and dropout) and
//! learned positions against central differences; a broken layer-norm backward the checker
//! rejects; the positional encoding at hand-computed positions; incremental decoding with
//! cached keys and values against the full causal pass; parameter names.

mod common;

use dlfs::activation::Activation;
use dlfs::dropout::Dropout;
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::self_attention::Mask;
use dlfs::transformer::layer_norm::LayerNorm;
use dlfs::transformer::{Block, FeedForward, KvCache, Norm, Positions, sinusoidal};
use ndarray::{Array1, Array2, Array3, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal2(shape: (usize, usize), seed: u64) -> Array2<f64> {
    Array2::random_using(shape, Normal::new(0.0, 1.0).unwrap(), &mut rng(seed))
}

fn normal3(shape: (usize, usize, usize), seed: u64) -> Array3<f64> {
    Array3::random_using(shape, Normal::new(0.0, 1.0).unwrap(), &mut rng(seed))
}

/// Fixed, non-symmetric weights for a scalar loss `sum(w * y)`.
fn weights_like3(shape: (usize, usize, usize)) -> Array3<f64> {
    Array3::from_shape_fn(shape, |(b, t, d)| {
        ((b * 11 + t * 5 + d) as f64 * 0.41).sin()
    })
}

fn weights_like2(shape: (usize, usize)) -> Array2<f64> {
    Array2::from_shape_fn(shape, |(r, c)| ((r * 7 + c) as f64 * 0.37).cos())
}

/// Passes a report within tolerance, except the key bias of attention: its gradient is exactly
/// zero (the softmax ignores a constant added to a row of scores; see the self-attention tests).
fn assert_checks(report: &dlfs::gradcheck::Report) {
    for check in &report.checks {
        if check.name.ends_with("wk.b") {
            assert!(check.problems.is_empty(), "{report}");
            assert!(check.analytic_norm < 1e-12, "{report}");
        } else {
            assert!(check.failures(TOLERANCE).is_empty(), "{report}");
        }
    }
}

fn layer_norm(d: usize, seed: u64) -> LayerNorm<f64> {
    let mut ln = LayerNorm::<f64>::new(d);
    ln.gamma.value = Array1::random_using(d, Normal::new(1.0, 0.3).unwrap(), &mut rng(seed));
    ln.beta.value = Array1::random_using(d, Normal::new(0.0, 0.3).unwrap(), &mut rng(seed + 1));
    ln
}

/// Gives every bias and layer-norm parameter of a block non-trivial values.
fn perturb_block(block: &mut Block<f64>, seed: u64) {
    let mut r = rng(seed);
    let n = Normal::new(0.0, 0.3).unwrap();
    let a = &mut block.attention;
    for l in [&mut a.wq, &mut a.wk, &mut a.wv, &mut a.wo] {
        let d = l.b.value.len();
        l.b.value = Array1::random_using(d, n, &mut r);
    }
    for l in [&mut block.ff.lin1, &mut block.ff.lin2] {
        let d = l.b.value.len();
        l.b.value = Array1::random_using(d, n, &mut r);
    }
    for ln in [&mut block.ln1, &mut block.ln2] {
        let d = ln.width();
        ln.gamma.value = Array1::random_using(d, Normal::new(1.0, 0.3).unwrap(), &mut r);
        ln.beta.value = Array1::random_using(d, n, &mut r);
    }
}

#[test]
fn layer_norm_gradient_check() {
    let mut ln = layer_norm(5, 1);
    let x = normal2((4, 5), 3) * 2.0 + 0.5;
    let w = weights_like2((4, 5));
    let report = GradCheck::default().layer(
        &mut ln,
        &x,
        |m, x| (m.infer(x) * &w).sum(),
        |m, x| {
            let (_, cache) = m.forward(x);
            m.backward(&cache, &w)
        },
    );
    report.assert_below(TOLERANCE);
}

#[test]
fn layer_norm_rows_have_zero_mean_and_unit_variance() {
    let ln = LayerNorm::<f64>::with_eps(6, 0.0);
    let x = normal2((3, 6), 4) * 5.0 + 2.0;
    let y = ln.infer(&x);
    for row in y.rows() {
        let mean = row.sum() / 6.0;
        let var = row.mapv(|v| (v - mean).powi(2)).sum() / 6.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "{row}");
    }
}

#[test]
fn the_check_rejects_a_layer_norm_backward_that_ignores_the_statistics() {
    // The common bug: treating mean and variance as constants, dx = gamma * dy / sigma.
    let mut ln = layer_norm(5, 1);
    let x = normal2((4, 5), 3) * 2.0 + 0.5;
    let w = weights_like2((4, 5));
    let report = GradCheck::default().layer(
        &mut ln,
        &x,
        |m, x| (m.infer(x) * &w).sum(),
        |m, x| {
            let (_, cache) = m.forward(x);
            m.backward(&cache, &w);
            let mut dx = w.clone() * &m.gamma.value;
            for (mut row, xr) in dx.rows_mut().into_iter().zip(x.rows()) {
                let mu = xr.sum() / 5.0;
                let var = xr.mapv(|v| (v - mu).powi(2)).sum() / 5.0;
                row /= (var + 1e-5).sqrt();
            }
            dx
        },
    );
    let err = report.verify(TOLERANCE).unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
}

#[test]
fn feed_forward_gradient_check() {
    for act in [Activation::Relu, Activation::Gelu] {
        let mut ff = FeedForward::<f64>::new(4, 7, act, &mut rng(5));
        ff.lin1.b.value = Array1::random_using(7, Normal::new(0.0, 0.3).unwrap(), &mut rng(6));
        ff.lin2.b.value = Array1::random_using(4, Normal::new(0.0, 0.3).unwrap(), &mut rng(7));
        let x = normal2((5, 4), 8);
        let w = weights_like2((5, 4));
        let report = GradCheck::default().layer(
            &mut ff,
            &x,
            |m, x| (m.infer(x) * &w).sum(),
            |m, x| {
                let (_, cache) = m.forward(x);
                m.backward(&cache, &w)
            },
        );
        report.assert_below(TOLERANCE);
    }
}

fn check_block(norm: Norm, mask: Mask, act: Activation) {
    let mut block = Block::<f64>::new(6, 2, 10, act, norm, Dropout::new(0.0).unwrap(), &mut rng(9));
    perturb_block(&mut block, 10);
    let x = normal3((2, 4, 6), 11);
    let w = weights_like3((2, 4, 6));
    let report = GradCheck::default().layer(
        &mut block,
        &x,
        |m, x| (m.infer(x, mask) * &w).sum(),
        |m, x| {
            let (_, cache) = m.forward(x, mask);
            m.backward(&cache, &w)
        },
    );
    assert_checks(&report);
}

#[test]
fn post_ln_encoder_block_gradient_check() {
    check_block(Norm::Post, Mask::None, Activation::Relu);
}

#[test]
fn pre_ln_encoder_block_gradient_check() {
    check_block(Norm::Pre, Mask::None, Activation::Relu);
}

#[test]
fn causal_blocks_gradient_check() {
    check_block(Norm::Post, Mask::Causal, Activation::Gelu);
    check_block(Norm::Pre, Mask::Causal, Activation::Gelu);
}

#[test]
fn block_with_dropout_gradient_check() {
    // The same seed draws the same masks every call, so the loss is a fixed function of the
    // weights and the check covers the dropout path of both sublayers.
    for norm in [Norm::Post, Norm::Pre] {
        let drop = Dropout::new(0.3).unwrap();
        let mut block = Block::<f64>::new(6, 2, 10, Activation::Relu, norm, drop, &mut rng(12));
        perturb_block(&mut block, 13);
        let x = normal3((2, 4, 6), 14);
        let w = weights_like3((2, 4, 6));
        let report = GradCheck::default().layer(
            &mut block,
            &x,
            |m, x| (m.forward_train(x, Mask::Causal, &mut rng(99)).0 * &w).sum(),
            |m, x| {
                let (_, cache) = m.forward_train(x, Mask::Causal, &mut rng(99));
                m.backward(&cache, &w)
            },
        );
        assert_checks(&report);
        // And the masks did drop something: training and evaluation differ.
        let train = block.forward_train(&x, Mask::Causal, &mut rng(99)).0;
        assert!((train - block.infer(&x, Mask::Causal)).mapv(f64::abs).sum() > 1e-3);
    }
}

#[test]
fn the_check_rejects_a_block_backward_that_drops_the_residual() {
    let mut block = Block::<f64>::new(
        6,
        2,
        10,
        Activation::Relu,
        Norm::Pre,
        Dropout::new(0.0).unwrap(),
        &mut rng(9),
    );
    perturb_block(&mut block, 10);
    let x = normal3((2, 4, 6), 11);
    let w = weights_like3((2, 4, 6));
    let report = GradCheck::default().layer(
        &mut block,
        &x,
        |m, x| (m.infer(x, Mask::None) * &w).sum(),
        |m, x| {
            let (_, cache) = m.forward(x, Mask::None);
            // Pre-LN: y = x + ..., so subtracting dy removes the outer residual path.
            m.backward(&cache, &w) - &w
        },
    );
    let err = report.verify(TOLERANCE).unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
}

#[test]
fn learned_positions_gradient_check() {
    let mut pos = Positions::<f64>::learned(6, 3, &mut rng(15));
    let x = normal3((2, 4, 3), 16);
    let w = weights_like3((2, 4, 3));
    let offset = 1;
    let report = GradCheck::default().layer(
        &mut pos,
        &x,
        |m, x| {
            let mut y = x.clone();
            m.add(&mut y, offset);
            (y * &w).sum()
        },
        |m, _| {
            m.backward(&w, offset);
            w.clone()
        },
    );
    report.assert_below(TOLERANCE);
}

#[test]
fn sinusoidal_encoding_at_hand_computed_positions() {
    let pe = sinusoidal::<f64>(51, 8);
    // Position 0: sin 0 = 0 in even columns, cos 0 = 1 in odd ones.
    for j in 0..8 {
        assert_eq!(pe[[0, j]], if j % 2 == 0 { 0.0 } else { 1.0 });
    }
    // Position 1, columns 0 and 1: angle 1 / 10000^0 = 1.
    assert!((pe[[1, 0]] - 1f64.sin()).abs() < 1e-15);
    assert!((pe[[1, 1]] - 1f64.cos()).abs() < 1e-15);
    // Position 50, columns 2 and 3 (i = 1, 2i / d = 1/4): angle 50 / 10000^0.25 = 50 / 10 = 5.
    assert!((pe[[50, 2]] - 5f64.sin()).abs() < 1e-14);
    assert!((pe[[50, 3]] - 5f64.cos()).abs() < 1e-14);
    // Columns 6 and 7 (2i / d = 6/8): 10000^0.75 = 1000, so position 50 has angle 0.05.
    assert!((pe[[50, 6]] - 0.05f64.sin()).abs() < 1e-15);
    assert!((pe[[50, 7]] - 0.05f64.cos()).abs() < 1e-15);
}

#[test]
fn sinusoidal_positions_add_the_table_from_an_offset() {
    let pos = Positions::<f64>::sinusoidal(10, 4);
    let mut x = Array3::zeros((2, 3, 4));
    pos.add(&mut x, 5);
    let pe = sinusoidal::<f64>(10, 4);
    for b in 0..2 {
        assert_eq!(x.slice(s![b, .., ..]), pe.slice(s![5..8, ..]));
    }
}

#[test]
fn cached_steps_match_the_full_causal_pass() {
    for norm in [Norm::Post, Norm::Pre] {
        let mut block = Block::<f64>::new(
            8,
            2,
            12,
            Activation::Gelu,
            norm,
            Dropout::new(0.1).unwrap(),
            &mut rng(17),
        );
        perturb_block(&mut block, 18);
        let (batch, time) = (3, 6);
        let x = normal3((batch, time, 8), 19);
        let mut cache = KvCache::new(batch, time, 8);
        for t in 0..time {
            let full = block.infer(&x.slice(s![.., ..=t, ..]), Mask::Causal);
            let step = block.step(&x.slice(s![.., t..=t, ..]), &mut cache);
            assert_eq!(cache.len(), t + 1);
            let diff = (&full.slice(s![.., t..=t, ..]) - &step)
                .mapv(f64::abs)
                .sum();
            assert!(diff < 1e-10, "{norm:?} step {t}: {diff}");
        }
    }
}

#[test]
fn parameter_names() {
    let mut block = Block::<f64>::new(
        6,
        2,
        10,
        Activation::Relu,
        Norm::Post,
        Dropout::new(0.1).unwrap(),
        &mut rng(20),
    );
    common::assert_params(
        &mut block,
        &[
            "attention.wq.w",
            "attention.wq.b",
            "attention.wk.w",
            "attention.wk.b",
            "attention.wv.w",
            "attention.wv.b",
            "attention.wo.w",
            "attention.wo.b",
            "ln1.gamma",
            "ln1.beta",
            "ff.lin1.w",
            "ff.lin1.b",
            "ff.lin2.w",
            "ff.lin2.b",
            "ln2.gamma",
            "ln2.beta",
        ],
        4 * (6 * 6 + 6) + 2 * 6 + (6 * 10 + 10) + (10 * 6 + 6) + 2 * 6,
    );
    let mut ln = LayerNorm::<f64>::new(5);
    common::assert_params(&mut ln, &["gamma", "beta"], 10);
    let mut pos = Positions::<f64>::learned(7, 3, &mut rng(21));
    common::assert_params(&mut pos, &["learned.table"], 21);
}
