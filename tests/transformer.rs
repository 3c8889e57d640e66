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
    common::assert_checks_with_zero_key_biases(&report);
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
        common::assert_checks_with_zero_key_biases(&report);
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

use dlfs::transformer::model::{
    Config, DecoderBlock, Transformer, label_smoothed_cross_entropy, noam_rate,
};
use ndarray::{Axis, concatenate};

fn perturb_decoder(block: &mut DecoderBlock<f64>, seed: u64) {
    let mut r = rng(seed);
    let n = Normal::new(0.0, 0.3).unwrap();
    for a in [&mut block.self_attention, &mut block.cross_attention] {
        for l in [&mut a.wq, &mut a.wk, &mut a.wv, &mut a.wo] {
            let d = l.b.value.len();
            l.b.value = Array1::random_using(d, n, &mut r);
        }
    }
    for ln in [&mut block.ln1, &mut block.ln2, &mut block.ln3] {
        let d = ln.width();
        ln.gamma.value = Array1::random_using(d, Normal::new(1.0, 0.3).unwrap(), &mut r);
        ln.beta.value = Array1::random_using(d, n, &mut r);
    }
}

#[test]
fn decoder_block_gradient_check_with_respect_to_both_inputs() {
    let (tt, ts) = (3, 5);
    for norm in [Norm::Post, Norm::Pre] {
        let drop = Dropout::new(0.2).unwrap();
        let mut block =
            DecoderBlock::<f64>::new(4, 2, 8, Activation::Relu, norm, drop, &mut rng(30));
        perturb_decoder(&mut block, 31);
        // Target states and encoder output stacked along time, so one check covers both.
        let x = normal3((2, tt + ts, 4), 32);
        let w = weights_like3((2, tt, 4));
        let parts = |x: &Array3<f64>| {
            (
                x.slice(s![.., ..tt, ..]).to_owned(),
                x.slice(s![.., tt.., ..]).to_owned(),
            )
        };
        let report = GradCheck::default().layer(
            &mut block,
            &x,
            |m, x| {
                let (q, mem) = parts(x);
                (m.forward_train(&q, &mem, &mut rng(7)).0 * &w).sum()
            },
            |m, x| {
                let (q, mem) = parts(x);
                let (_, cache) = m.forward_train(&q, &mem, &mut rng(7));
                let (dq, dmem) = m.backward(&cache, &w);
                concatenate(Axis(1), &[dq.view(), dmem.view()]).unwrap()
            },
        );
        common::assert_checks_with_zero_key_biases(&report);
    }
}

fn tiny_config(norm: Norm, dropout: f64) -> Config {
    Config {
        src_vocab: 5,
        tgt_vocab: 6,
        max_len: 8,
        d: 4,
        heads: 2,
        ff: 6,
        enc_layers: 2,
        dec_layers: 2,
        norm,
        dropout,
    }
}

#[test]
fn whole_model_gradient_check() {
    let src = ndarray::array![[0, 3, 1, 4], [2, 2, 0, 1]];
    let tgt = ndarray::array![[5, 1, 2], [5, 0, 0]];
    let labels = [1, 2, 3, 0, 0, 4];
    for norm in [Norm::Post, Norm::Pre] {
        let mut model = Transformer::<f64>::new(tiny_config(norm, 0.1), &mut rng(33)).unwrap();
        let report = GradCheck::default().params(
            &mut model,
            |m| {
                let z = m.forward_train(&src, &tgt, &mut rng(5)).0;
                label_smoothed_cross_entropy(&z, &labels, 0.1).0
            },
            |m| {
                let (z, cache) = m.forward_train(&src, &tgt, &mut rng(5));
                let (_, dz) = label_smoothed_cross_entropy(&z, &labels, 0.1);
                m.backward(&cache, &dz);
            },
        );
        common::assert_checks_with_zero_key_biases(&report);
    }
}

#[test]
fn the_decoder_is_causal() {
    let model = Transformer::<f64>::new(tiny_config(Norm::Post, 0.0), &mut rng(34)).unwrap();
    let src = ndarray::array![[0, 3, 1, 4]];
    let a = model.infer(&src, &ndarray::array![[5, 1, 2, 3]]);
    let b = model.infer(&src, &ndarray::array![[5, 1, 4, 0]]);
    // Changing target positions 2 and 3 leaves the outputs at 0 and 1 untouched...
    assert_eq!(a.slice(s![..2, ..]), b.slice(s![..2, ..]));
    // ...and does change position 2's.
    assert!(
        (&a.slice(s![2, ..]) - &b.slice(s![2, ..]))
            .mapv(f64::abs)
            .sum()
            > 1e-6
    );
}

#[test]
fn stacked_blocks_share_no_parameters() {
    // The study notes' `[Block()] * 3` holds one block three times: a change to one is a change
    // to all. Here each block is drawn separately, and changing one block's weights changes
    // only that block's parameters.
    let mut model = Transformer::<f64>::new(tiny_config(Norm::Post, 0.0), &mut rng(35)).unwrap();
    let before = model.clone();
    assert_ne!(
        model.encoder[0].attention.wq.w.value,
        model.encoder[1].attention.wq.w.value
    );
    assert_ne!(
        model.decoder[0].ff.lin1.w.value,
        model.decoder[1].ff.lin1.w.value
    );
    model.encoder[0].attention.wq.w.value[[0, 0]] += 1.0;
    model.decoder[1].ff.lin1.w.value[[0, 0]] += 1.0;
    let changed = |a: &Transformer<f64>, b: &Transformer<f64>| {
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        dlfs::param::Params::visit_ref(a, "", &mut |n, p| {
            va.push((n.to_string(), p.value.to_owned()))
        });
        dlfs::param::Params::visit_ref(b, "", &mut |_, p| vb.push(p.value.to_owned()));
        va.into_iter()
            .zip(vb)
            .filter(|((_, x), y)| x != y)
            .map(|((n, _), _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        changed(&before, &model),
        ["encoder.0.attention.wq.w", "decoder.1.ff.lin1.w"]
    );
    // The gradients follow: with a loss that reads only block 0's output through block 1,
    // the two blocks' gradients differ (one shared array would hold their sum twice).
    let src = ndarray::array![[0, 3, 1, 4]];
    let tgt = ndarray::array![[5, 1, 2]];
    let (z, cache) = model.forward(&src, &tgt);
    let (_, dz) = label_smoothed_cross_entropy(&z, &[1, 2, 3], 0.0);
    dlfs::param::zero_grads(&mut model);
    model.backward(&cache, &dz);
    assert_ne!(
        model.encoder[0].attention.wq.w.grad,
        model.encoder[1].attention.wq.w.grad
    );
}

#[test]
fn the_schedule_matches_the_paper_formula() {
    let (d, warmup) = (512, 4000);
    for step in [1, 10, 100, 3999, 4000, 4001, 10_000, 100_000] {
        let s = step as f64;
        let expected = 512f64.powf(-0.5) * (s.powf(-0.5)).min(s * 4000f64.powf(-1.5));
        assert!((noam_rate(d, warmup, step) - expected).abs() < 1e-15);
    }
    // The peak at step = warmup: d^-0.5 warmup^-0.5 = 1 / sqrt(512 * 4000).
    let peak = 1.0 / (512.0f64 * 4000.0).sqrt();
    assert!((noam_rate(d, warmup, 4000) - peak).abs() < 1e-15);
    assert!(noam_rate(d, warmup, 3000) < peak && noam_rate(d, warmup, 5000) < peak);
    // Linear rise: step 2 is twice step 1.
    assert!((noam_rate(d, warmup, 2) - 2.0 * noam_rate(d, warmup, 1)).abs() < 1e-15);
}

#[test]
fn label_smoothing_loss_and_gradient_by_hand() {
    // One row, three classes, logits (0, ln 2, ln 5): softmax = (1, 2, 5) / 8. Label 1, eps 0.3:
    // q = (0.1, 0.8, 0.1). Loss = -(0.1 ln(1/8) + 0.8 ln(2/8) + 0.1 ln(5/8)).
    let z = ndarray::array![[0.0, 2f64.ln(), 5f64.ln()]];
    let (loss, grad) = label_smoothed_cross_entropy(&z, &[1], 0.3);
    let expected =
        -(0.1 * (1.0f64 / 8.0).ln() + 0.8 * (2.0f64 / 8.0).ln() + 0.1 * (5.0f64 / 8.0).ln());
    assert!((loss - expected).abs() < 1e-14, "{loss} vs {expected}");
    let hand = [1.0 / 8.0 - 0.1, 2.0 / 8.0 - 0.8, 5.0 / 8.0 - 0.1];
    for (g, h) in grad.iter().zip(hand) {
        assert!((g - h).abs() < 1e-14);
    }
    // eps = 0 is the plain cross-entropy.
    let (plain, pg) = dlfs::loss::softmax_cross_entropy(&z, &[1]);
    let (ls0, g0) = label_smoothed_cross_entropy(&z, &[1], 0.0);
    assert!((plain - ls0).abs() < 1e-15 && (pg - g0).mapv(f64::abs).sum() < 1e-15);
}

#[test]
fn label_smoothing_gradient_check() {
    let z0 = normal2((3, 5), 40);
    let labels = [4, 0, 2];
    let (_, grad) = label_smoothed_cross_entropy(&z0, &labels, 0.1);
    GradCheck::default()
        .input(&z0, &grad, |z| {
            label_smoothed_cross_entropy(z, &labels, 0.1).0
        })
        .assert_below(TOLERANCE);
}

#[test]
fn decoder_steps_match_the_full_pass() {
    for norm in [Norm::Post, Norm::Pre] {
        let mut block = DecoderBlock::<f64>::new(
            8,
            2,
            12,
            Activation::Relu,
            norm,
            Dropout::new(0.0).unwrap(),
            &mut rng(41),
        );
        perturb_decoder(&mut block, 42);
        let x = normal3((2, 5, 8), 43);
        let mem = normal3((2, 7, 8), 44);
        let mut cache = KvCache::new(2, 5, 8);
        let mut memory = block.memory(&mem);
        for t in 0..5 {
            let full = block.infer(&x.slice(s![.., ..=t, ..]), &mem);
            let step = block.step(&x.slice(s![.., t..=t, ..]), &mut memory, &mut cache);
            let diff = (&full.slice(s![.., t..=t, ..]) - &step)
                .mapv(f64::abs)
                .sum();
            assert!(diff < 1e-10, "{norm:?} step {t}: {diff}");
        }
    }
}

#[test]
fn cached_and_uncached_greedy_decoding_agree() {
    for norm in [Norm::Post, Norm::Pre] {
        let mut config = tiny_config(norm, 0.0);
        config.d = 8;
        let model = Transformer::<f64>::new(config, &mut rng(45)).unwrap();
        let src = ndarray::array![[0, 3, 1, 4, 2], [2, 2, 0, 1, 1], [4, 4, 3, 0, 1]];
        let cached = model.greedy(&src, 5, 6);
        assert_eq!(cached, model.greedy_uncached(&src, 5, 6), "{norm:?}");
        assert_eq!(cached.dim(), (3, 6));
    }
}

#[test]
fn model_parameter_names() {
    let mut model = Transformer::<f64>::new(tiny_config(Norm::Pre, 0.0), &mut rng(46)).unwrap();
    let names = dlfs::param::names(&model);
    let d = 4;
    let attn = 4 * (d * d + d);
    let ff = (d * 6 + 6) + (6 * d + d);
    let enc_block = attn + ff + 4 * d;
    let dec_block = 2 * attn + ff + 6 * d;
    let count = 5 * d + 6 * d + 2 * enc_block + 2 * dec_block + 2 * 2 * d + (d * 6 + 6);
    let mut expected: Vec<String> = vec!["src_embed.table".into(), "tgt_embed.table".into()];
    for i in 0..2 {
        for p in [
            "attention.wq.w",
            "attention.wq.b",
            "attention.wk.w",
            "attention.wk.b",
        ] {
            expected.push(format!("encoder.{i}.{p}"));
        }
        for p in [
            "attention.wv.w",
            "attention.wv.b",
            "attention.wo.w",
            "attention.wo.b",
        ] {
            expected.push(format!("encoder.{i}.{p}"));
        }
        for p in [
            "ln1.gamma",
            "ln1.beta",
            "ff.lin1.w",
            "ff.lin1.b",
            "ff.lin2.w",
            "ff.lin2.b",
        ] {
            expected.push(format!("encoder.{i}.{p}"));
        }
        for p in ["ln2.gamma", "ln2.beta"] {
            expected.push(format!("encoder.{i}.{p}"));
        }
    }
    for i in 0..2 {
        for a in ["self_attention", "cross_attention"] {
            for l in ["wq", "wk", "wv", "wo"] {
                for p in ["w", "b"] {
                    expected.push(format!("decoder.{i}.{a}.{l}.{p}"));
                }
            }
        }
        for p in ["ff.lin1.w", "ff.lin1.b", "ff.lin2.w", "ff.lin2.b"] {
            expected.push(format!("decoder.{i}.{p}"));
        }
        for ln in ["ln1", "ln2", "ln3"] {
            expected.push(format!("decoder.{i}.{ln}.gamma"));
            expected.push(format!("decoder.{i}.{ln}.beta"));
        }
    }
    for p in [
        "enc_norm.gamma",
        "enc_norm.beta",
        "dec_norm.gamma",
        "dec_norm.beta",
        "out.w",
        "out.b",
    ] {
        expected.push(p.into());
    }
    assert_eq!(names, expected);
    let refs: Vec<&str> = expected.iter().map(String::as_str).collect();
    common::assert_params(&mut model, &refs, count);
    // Post-LN has no final norms.
    let post = Transformer::<f64>::new(tiny_config(Norm::Post, 0.0), &mut rng(46)).unwrap();
    assert!(
        !dlfs::param::names(&post)
            .iter()
            .any(|n| n.contains("_norm"))
    );
}

// The chapter program.

use dlfs::transformer::experiment::{Cli, run};

#[test]
fn quick_run_writes_its_table_and_record_and_reproduces() {
    common::assert_same_seed_same_bytes::<Cli>(
        "transformer",
        &[
            "results.md",
            "ln-study.md",
            "loss.svg",
            "cross-attention.svg",
        ],
        "results.md",
        run,
    );
    let dir = tempfile::tempdir().unwrap();
    common::run_quick::<Cli>("transformer", dir.path(), "3", run);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let tasks = json["report"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    for t in tasks {
        let losses = t["losses"].as_array().unwrap();
        assert_eq!(losses.len(), 30);
        // The smoothed loss starts near ln 11 and falls.
        let first = losses[0].as_f64().unwrap();
        let last = losses[29].as_f64().unwrap();
        assert!(first > 2.0 && last < first, "{first} -> {last}");
    }
    // The normalisation study: the sorting task's own run, then post-LN without warm-up and
    // pre-LN with and without it, all from the same seed.
    let study = json["report"]["ln_study"].as_array().unwrap();
    let runs: Vec<(&str, u64)> = study
        .iter()
        .map(|r| (r["norm"].as_str().unwrap(), r["warmup"].as_u64().unwrap()))
        .collect();
    assert_eq!(runs, [("Post", 200), ("Post", 0), ("Pre", 200), ("Pre", 0)]);
    assert!(study.iter().all(|r| r["task"] == "Sort"));
    assert_eq!(
        study[0], tasks[2],
        "the study's first run is the sorting task's run"
    );
    for figure in ["loss.svg", "cross-attention.svg", "ln-study.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(figure)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{figure}"
        );
    }
    let cross = std::fs::read_to_string(dir.path().join("cross-attention.svg")).unwrap();
    for panel in [
        "copy, decoder block 1",
        "reverse, decoder block 2",
        "sort, decoder block 2",
    ] {
        assert!(
            cross.contains(panel),
            "cross-attention.svg has no panel `{panel}`"
        );
    }
    let table = std::fs::read_to_string(dir.path().join("ln-study.md")).unwrap();
    assert!(table.contains("pre-LN, no warm-up"), "{table}");
}

#[test]
fn bad_flags_fail_in_one_line() {
    common::assert_fails_in_one_line("transformer", &["--bogus"], 2, "--bogus");
    common::assert_fails_in_one_line(
        "transformer",
        &["--quick", "--data", "/no/such/dir"],
        1,
        "/no/such/dir",
    );
    common::assert_fails_in_one_line("transformer", &["--quick", "--epochs", "3"], 1, "--epochs");
    common::assert_fails_in_one_line(
        "transformer",
        &["--quick", "--lr-factor", "NaN"],
        1,
        "--lr-factor",
    );
    common::assert_fails_in_one_line("transformer", &["--quick", "--steps", "0"], 2, "--steps");
}

#[test]
fn a_diverging_run_stops_with_a_one_line_error() {
    // A learning rate a million times the schedule's makes the loss overflow.
    common::assert_fails_in_one_line(
        "transformer",
        &["--quick", "--lr-factor", "1e12"],
        1,
        "training loss is",
    );
}
