//! The self-attention chapter: gradient checks (f64) of the softmax, one head (with and without
//! the causal mask), multi-head self- and cross-attention and both models, against central
//! differences; the defining properties (rows of weights sum to one, the causal mask hides the
//! future, permutation equivariance without positions, h heads equal h single heads
//! concatenated, the one-hot lookup of the study notes); parameter names; the program.

mod common;

use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::self_attention::models::{CharAttention, Lookup};
use dlfs::self_attention::{
    Mask, MultiHeadAttention, attention, attention_backward, softmax_rows, softmax_rows_backward,
};
use ndarray::{Array1, Array2, Array3, Axis, concatenate, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal2(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    Array2::random_using((rows, cols), Normal::new(0.0, 1.0).unwrap(), &mut rng(seed))
}

fn normal3(shape: (usize, usize, usize), seed: u64) -> Array3<f64> {
    Array3::random_using(shape, Normal::new(0.0, 1.0).unwrap(), &mut rng(seed))
}

/// A layer with non-zero biases, so every bias gradient is exercised.
fn mha(d: usize, heads: usize, seed: u64) -> MultiHeadAttention<f64> {
    let mut r = rng(seed);
    let mut layer = MultiHeadAttention::<f64>::new(d, heads, &mut r);
    for l in [&mut layer.wq, &mut layer.wk, &mut layer.wv, &mut layer.wo] {
        l.b.value = Array1::random_using(d, Normal::new(0.0, 0.3).unwrap(), &mut r);
    }
    layer
}

#[test]
fn softmax_backward_matches_central_differences() {
    let s0 = normal2(3, 5, 1) * 2.0;
    let w = normal2(3, 5, 2);
    let f = |s: &Array2<f64>| {
        let mut p = s.clone();
        softmax_rows(&mut p);
        (p * &w).sum()
    };
    let mut p = s0.clone();
    softmax_rows(&mut p);
    let mut ds = w.clone();
    softmax_rows_backward(&p, &mut ds);
    GradCheck::default()
        .input(&s0, &ds, f)
        .assert_below(TOLERANCE);
}

/// One head's q, k and v stacked as rows of one array (so one check covers all three).
fn split_qkv(x: &Array2<f64>, tq: usize) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let tk = (x.nrows() - tq) / 2;
    (
        x.slice(s![..tq, ..]).to_owned(),
        x.slice(s![tq..tq + tk, ..]).to_owned(),
        x.slice(s![tq + tk.., ..]).to_owned(),
    )
}

fn check_one_head(mask: Mask, tq: usize, tk: usize) {
    let x = normal2(tq + 2 * tk, 4, 3);
    let w = normal2(tq, 4, 4);
    let f = |x: &Array2<f64>| {
        let (q, k, v) = split_qkv(x, tq);
        (attention(&q, &k, &v, mask).0 * &w).sum()
    };
    let (q, k, v) = split_qkv(&x, tq);
    let (_, p) = attention(&q, &k, &v, mask);
    let (dq, dk, dv) = attention_backward((&q, &k, &v), &p, &w);
    let dx = concatenate(Axis(0), &[dq.view(), dk.view(), dv.view()]).unwrap();
    GradCheck::default()
        .input(&x, &dx, f)
        .assert_below(TOLERANCE);
}

#[test]
fn one_head_gradient_check() {
    check_one_head(Mask::None, 3, 5);
}

#[test]
fn masked_one_head_gradient_check() {
    check_one_head(Mask::Causal, 5, 5);
    // Fewer queries than keys: the queries are the last positions.
    check_one_head(Mask::Causal, 2, 5);
}

fn weights_like(shape: (usize, usize, usize)) -> Array3<f64> {
    Array3::from_shape_fn(shape, |(b, t, d)| {
        ((b * 11 + t * 5 + d) as f64 * 0.41).sin()
    })
}

fn check_self(mask: Mask, heads: usize) {
    let mut layer = mha(6, heads, 5);
    let x = normal3((2, 4, 6), 6);
    let w = weights_like((2, 4, 6));
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |m, x| (m.infer(x, x, mask) * &w).sum(),
        |m, x| {
            let (_, cache) = m.forward_self(x, mask);
            m.backward_self(&cache, &w)
        },
    );
    common::assert_checks_with_zero_key_biases(&report);
}

#[test]
fn multi_head_self_attention_gradient_check() {
    check_self(Mask::None, 2);
    check_self(Mask::None, 3);
}

#[test]
fn masked_multi_head_self_attention_gradient_check() {
    check_self(Mask::Causal, 2);
}

#[test]
fn cross_attention_gradient_check() {
    // Queries from a sequence of 3, keys and values from another of 5, stacked along time.
    let (tq, tk) = (3, 5);
    let mut layer = mha(4, 2, 7);
    let x = normal3((2, tq + tk, 4), 8);
    let w = weights_like((2, tq, 4));
    let parts = |x: &Array3<f64>| {
        (
            x.slice(s![.., ..tq, ..]).to_owned(),
            x.slice(s![.., tq.., ..]).to_owned(),
        )
    };
    for mask in [Mask::None, Mask::Causal] {
        let report = GradCheck::default().layer(
            &mut layer,
            &x,
            |m, x| {
                let (xq, xkv) = parts(x);
                (m.infer(&xq, &xkv, mask) * &w).sum()
            },
            |m, x| {
                let (xq, xkv) = parts(x);
                let (_, cache) = m.forward(&xq, &xkv, mask);
                let (dq, dkv) = m.backward(&cache, &w);
                concatenate(Axis(1), &[dq.view(), dkv.view()]).unwrap()
            },
        );
        common::assert_checks_with_zero_key_biases(&report);
    }
}

#[test]
fn the_check_rejects_a_self_attention_backward_that_drops_the_key_value_path() {
    // Returning only the query input's gradient is the bug of forgetting that x fed three
    // projections.
    let mut layer = mha(6, 2, 5);
    let x = normal3((2, 4, 6), 6);
    let w = weights_like((2, 4, 6));
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |m, x| (m.infer(x, x, Mask::None) * &w).sum(),
        |m, x| {
            let (_, cache) = m.forward_self(x, Mask::None);
            m.backward(&cache, &w).0
        },
    );
    let err = report.verify(TOLERANCE).unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
}

#[test]
fn lookup_model_gradient_check() {
    let mut model = Lookup::<f64>::new(5, 4, 6, 2, &mut rng(9));
    let blank = model.blank();
    let keys = ndarray::array![[0, 3, 1, 3], [4, 2, 0, 2]];
    let values = ndarray::array![[1, 0, 2, blank], [3, 3, 1, blank]];
    let targets = [0, 3];
    let report = GradCheck::default().params(
        &mut model,
        |m| {
            let (logits, _) = m.forward(&keys, &values);
            dlfs::loss::softmax_cross_entropy(&logits, &targets).0
        },
        |m| {
            m.loss_backward(&keys, &values, &targets);
        },
    );
    common::assert_checks_with_zero_key_biases(&report);
}

#[test]
fn character_model_gradient_check() {
    let mut model = CharAttention::<f64>::new(7, 6, 4, 2, &mut rng(10));
    model.output.b.value = Array1::random_using(7, Normal::new(0.0, 0.3).unwrap(), &mut rng(11));
    // Repeated characters, and a window shorter than the positions table.
    let ids = ndarray::array![[1, 4, 4, 0, 6], [2, 2, 5, 3, 1]];
    let targets = ndarray::array![[4, 4, 0, 6, 1], [2, 5, 3, 1, 0]];
    let flat: Vec<usize> = targets.iter().copied().collect();
    let report = GradCheck::default().params(
        &mut model,
        |m| dlfs::loss::softmax_cross_entropy(&m.forward(&ids).0, &flat).0,
        |m| {
            m.loss_backward(&ids, &targets);
        },
    );
    common::assert_checks_with_zero_key_biases(&report);
}

#[test]
fn key_bias_changes_nothing() {
    let mut layer = mha(6, 2, 24);
    let xq = normal3((2, 3, 6), 25);
    let xkv = normal3((2, 4, 6), 26);
    let y = layer.infer(&xq, &xkv, Mask::None);
    layer.wk.b.value += 5.0;
    let y2 = layer.infer(&xq, &xkv, Mask::None);
    let diff = (&y - &y2).iter().fold(0.0_f64, |a, v| a.max(v.abs()));
    assert!(diff < 1e-12, "{diff}");
    // The query bias does change the output: the comparison can fail.
    layer.wq.b.value += 5.0;
    let y3 = layer.infer(&xq, &xkv, Mask::None);
    assert!((&y - &y3).iter().any(|v| v.abs() > 1e-3));
}

#[test]
fn attention_rows_sum_to_one() {
    let layer = mha(8, 4, 12);
    let xq = normal3((3, 5, 8), 13);
    let xkv = normal3((3, 7, 8), 14);
    for (mask, xkv) in [
        (Mask::None, &xkv),
        (Mask::Causal, &xkv),
        (Mask::Causal, &xq),
    ] {
        let (_, cache) = layer.forward(&xq, xkv, mask);
        let p = cache.weights();
        assert_eq!(p.dim(), (3, 4, 5, xkv.dim().1));
        for row in p.lanes(Axis(3)) {
            assert!((row.sum() - 1.0).abs() < 1e-12, "{row}");
            assert!(row.iter().all(|&w| w >= 0.0));
        }
    }
}

// ANCHOR: causal
#[test]
fn causal_mask_hides_the_future() {
    let layer = mha(8, 2, 15);
    let x = normal3((2, 6, 8), 16);
    let y = layer.infer(&x, &x, Mask::Causal);
    for t in 0..6 {
        let mut changed = x.clone();
        changed
            .slice_mut(s![.., t, ..])
            .assign(&normal2(2, 8, 100 + t as u64));
        let y2 = layer.infer(&changed, &changed, Mask::Causal);
        let before = (&y.slice(s![.., ..t, ..]) - &y2.slice(s![.., ..t, ..]))
            .iter()
            .fold(0.0_f64, |a, v| a.max(v.abs()));
        assert_eq!(before, 0.0, "changing position {t} moved an earlier output");
        let at = (&y.slice(s![.., t, ..]) - &y2.slice(s![.., t, ..]))
            .iter()
            .fold(0.0_f64, |a, v| a.max(v.abs()));
        assert!(at > 1e-3, "position {t} must see itself");
    }
    // Without the mask the first output does depend on the last input: the test can fail.
    let mut changed = x.clone();
    changed.slice_mut(s![.., 5, ..]).fill(3.0);
    let free = layer.infer(&changed, &changed, Mask::None);
    let y0 = layer.infer(&x, &x, Mask::None);
    assert!(
        (&free.slice(s![.., 0, ..]) - &y0.slice(s![.., 0, ..]))
            .iter()
            .any(|v| v.abs() > 1e-3)
    );
}
// ANCHOR_END: causal

#[test]
fn the_character_model_never_reads_ahead() {
    let model = CharAttention::<f64>::new(9, 8, 8, 2, &mut rng(17));
    let ids = ndarray::array![[1, 2, 3, 4, 5, 6, 7, 8]];
    let base = model.forward(&ids).0;
    for t in 0..8 {
        let mut changed = ids.clone();
        changed[[0, t]] = (ids[[0, t]] + 4) % 9;
        let logits = model.forward(&changed).0;
        assert_eq!(
            base.slice(s![..t, ..]),
            logits.slice(s![..t, ..]),
            "changing character {t} changed an earlier prediction"
        );
        assert_ne!(base.row(t), logits.row(t));
    }
}

#[test]
fn without_positions_permuting_the_sequence_permutes_the_output() {
    let layer = mha(6, 3, 18);
    let x = normal3((2, 5, 6), 19);
    let perm = [3, 0, 4, 1, 2];
    let xp = x.select(Axis(1), &perm);
    let y = layer.infer(&x, &x, Mask::None);
    let yp = layer.infer(&xp, &xp, Mask::None);
    let diff = (&y.select(Axis(1), &perm) - &yp)
        .iter()
        .fold(0.0_f64, |a, v| a.max(v.abs()));
    assert!(diff < 1e-12, "{diff}");
    // The causal mask breaks the symmetry: order matters again.
    let yc = layer.infer(&x, &x, Mask::Causal);
    let ypc = layer.infer(&xp, &xp, Mask::Causal);
    let diff = (&yc.select(Axis(1), &perm) - &ypc)
        .iter()
        .fold(0.0_f64, |a, v| a.max(v.abs()));
    assert!(diff > 1e-3);
}

#[test]
fn h_heads_are_h_single_heads_concatenated() {
    let (d, heads) = (8, 4);
    let dk = d / heads;
    let layer = mha(d, heads, 20);
    let xq = normal3((2, 3, d), 21);
    let xkv = normal3((2, 5, d), 22);
    let y = layer.infer(&xq, &xkv, Mask::None);
    for b in 0..2 {
        let (xq, xkv) = (xq.index_axis(Axis(0), b), xkv.index_axis(Axis(0), b));
        let q = layer.wq.infer(&xq);
        let k = layer.wk.infer(&xkv);
        let v = layer.wv.infer(&xkv);
        let outs: Vec<Array2<f64>> = (0..heads)
            .map(|h| {
                let cols = s![.., h * dk..(h + 1) * dk];
                let (qh, kh, vh) = (
                    q.slice(cols).to_owned(),
                    k.slice(cols).to_owned(),
                    v.slice(cols).to_owned(),
                );
                attention(&qh, &kh, &vh, Mask::None).0
            })
            .collect();
        let views: Vec<_> = outs.iter().map(|o| o.view()).collect();
        let merged = concatenate(Axis(1), &views).unwrap();
        let expected = layer.wo.infer(&merged);
        let diff = (&expected - &y.index_axis(Axis(0), b))
            .iter()
            .fold(0.0_f64, |a, v| a.max(v.abs()));
        assert!(diff < 1e-12, "sequence {b}: {diff}");
    }
}

// ANCHOR: one_hot
/// The study notes' idea: with queries and keys scaled one-hot vectors, query `i` picks key
/// `perm[i]`, so the output is the value rows permuted.
fn one_hot_lookup(swap: bool) -> (Array2<f64>, Array2<f64>) {
    let n = 5;
    let perm = [1, 2, 0, 4, 3]; // a 3-cycle and a swap: not its own inverse
    let c = 12.0; // scores of c^2 / sqrt(n) against 0: the softmax is one-hot to 1e-27
    let q = Array2::from_shape_fn((n, n), |(i, j)| if j == perm[i] { c } else { 0.0 });
    let k = Array2::from_shape_fn((n, n), |(i, j)| if i == j { c } else { 0.0 });
    let v = normal2(n, 3, 23);
    let out = if swap {
        attention(&k, &q, &v, Mask::None).0
    } else {
        attention(&q, &k, &v, Mask::None).0
    };
    (out, v.select(Axis(0), &perm))
}

#[test]
fn one_hot_queries_and_keys_permute_the_values() {
    let (out, permuted) = one_hot_lookup(false);
    let diff = (&out - &permuted)
        .iter()
        .fold(0.0_f64, |a, v| a.max(v.abs()));
    assert!(diff < 1e-9, "{diff}");
    // Swapping queries and keys applies the inverse permutation, which differs.
    let (swapped, permuted) = one_hot_lookup(true);
    let diff = (&swapped - &permuted)
        .iter()
        .fold(0.0_f64, |a, v| a.max(v.abs()));
    assert!(diff > 0.1, "{diff}");
}
// ANCHOR_END: one_hot

#[test]
fn parameter_names() {
    let (d, v, t) = (8, 11, 16);
    let mut layer = MultiHeadAttention::<f32>::new(d, 2, &mut rng(1));
    let projections = [
        "wq.w", "wq.b", "wk.w", "wk.b", "wv.w", "wv.b", "wo.w", "wo.b",
    ];
    common::assert_params(&mut layer, &projections, 4 * (d * d + d));
    let mut model = CharAttention::<f32>::new(v, t, d, 2, &mut rng(2));
    let mut names = vec!["tokens.table", "positions.table"];
    let attn: Vec<String> = projections
        .iter()
        .map(|p| format!("attention.{p}"))
        .collect();
    names.extend(attn.iter().map(String::as_str));
    names.extend(["output.w", "output.b"]);
    common::assert_params(
        &mut model,
        &names,
        v * d + t * d + 4 * (d * d + d) + d * v + v,
    );
    let (keys, values) = (6, 5);
    let mut lookup = Lookup::<f32>::new(keys, values, d, 2, &mut rng(3));
    names[0] = "keys.table";
    names[1] = "values.table";
    common::assert_params(
        &mut lookup,
        &names,
        keys * d + (values + 1) * d + 4 * (d * d + d) + d * values + values,
    );
}

// The chapter program.

use dlfs::self_attention::experiment::{Cli, run};

fn quick(out: &std::path::Path, seed: &str) {
    common::run_quick::<Cli>("self_attention", out, seed, run);
}

fn report(dir: &std::path::Path) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    json["report"].clone()
}

#[test]
fn quick_run_writes_well_formed_outputs_and_learns() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    quick(a.path(), "3");
    let svgs = [
        "lookup.svg",
        "heads.svg",
        "char_curve.svg",
        "lookup_curve.svg",
        "scale.svg",
    ];
    for name in svgs {
        let text = std::fs::read_to_string(a.path().join(name)).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>") && text.len() > 1000,
            "{name}"
        );
    }
    let r = report(a.path());
    // The character model's training loss falls, and every number is finite.
    let curve = r["char_model"]["curve"].as_array().unwrap();
    let train: Vec<f64> = curve.iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert!(train.iter().all(|v| v.is_finite()), "{train:?}");
    assert!(train.last() < train.first(), "{train:?}");
    let test_bpc = r["char_model"]["test"].as_f64().unwrap();
    assert!(test_bpc.is_finite() && test_bpc < 6.0, "{test_bpc}");
    // The lookup: the chosen attention run beats the chosen MLP run on the test sequences.
    let runs = r["lookup"]["runs"].as_array().unwrap();
    let chosen: Vec<usize> = r["lookup"]["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    let (att, mlp) = (&runs[chosen[0]], &runs[chosen[1]]);
    assert_eq!(att["model"], "Attention");
    assert_eq!(mlp["model"], "Mlp");
    let acc = |run: &serde_json::Value| run["test"].as_f64().unwrap();
    assert!(acc(att) > acc(mlp), "{} vs {}", acc(att), acc(mlp));
    assert!(
        att["params"].as_u64() >= mlp["params"].as_u64(),
        "the MLP gets no more parameters than attention"
    );
    // The table shows the run's numbers.
    let table = std::fs::read_to_string(a.path().join("results.md")).unwrap();
    assert!(table.contains(&format!("**{:.4}**", test_bpc)), "{table}");
    assert!(
        table.contains(&format!("**{:.2}%**", 100.0 * acc(mlp))),
        "{table}"
    );
    let first_order = &r["ngrams"][0];
    assert!(
        table.contains(&format!("{:.4}", first_order["test"].as_f64().unwrap())),
        "{table}"
    );
    // Without the scale, the softmax saturates as d_k grows; with it, it does not.
    let scale = r["scale"].as_array().unwrap();
    let (first, last) = (&scale[0], &scale[scale.len() - 1]);
    let w = |row: &serde_json::Value, k: &str| row[k].as_f64().unwrap();
    assert!(w(last, "max_weight_unscaled") > 0.8, "{last}");
    assert!(w(last, "max_weight_unscaled") > w(first, "max_weight_unscaled"));
    assert!(w(last, "max_weight_scaled") < 0.3, "{last}");
    assert!(w(last, "jacobian_unscaled") < w(last, "jacobian_scaled"));
    // The same seed gives the same bytes; another seed other numbers.
    quick(b.path(), "3");
    for name in svgs.iter().chain(&["results.md"]) {
        assert!(
            std::fs::read(a.path().join(name)).unwrap()
                == std::fs::read(b.path().join(name)).unwrap(),
            "{name} differs between two runs with the same seed"
        );
    }
    quick(c.path(), "4");
    assert_ne!(
        r["char_model"]["test"],
        report(c.path())["char_model"]["test"],
        "another seed should give other numbers"
    );
}

#[test]
fn bad_flags_and_bad_data_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary");
    std::fs::create_dir_all(binary.join("text")).unwrap();
    std::fs::write(binary.join("text/pride-and-prejudice.txt"), b"ab\xff\xfecd").unwrap();
    let short = dir.path().join("short");
    std::fs::create_dir_all(short.join("text")).unwrap();
    std::fs::write(short.join("text/pride-and-prejudice.txt"), "a short text").unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--bogus".into()], 2, "--bogus"),
        (vec!["--steps".into(), "0".into()], 2, "--steps"),
        (
            vec!["--quick".into(), "--epochs".into(), "2".into()],
            1,
            "--epochs",
        ),
        (
            vec!["--quick".into(), "--width".into(), "10".into()],
            1,
            "multiple of --heads",
        ),
        (
            vec!["--quick".into(), "--lr".into(), "NaN".into()],
            1,
            "--lr",
        ),
        (
            vec!["--quick".into(), "--data".into(), "/no/such/dir".into()],
            1,
            "/no/such/dir",
        ),
        (
            vec!["--quick".into(), "--data".into(), path(&binary)],
            1,
            "not UTF-8",
        ),
        (
            vec!["--quick".into(), "--data".into(), path(&short)],
            1,
            "too few",
        ),
        (
            vec!["--quick".into(), "--load".into(), "/no/such/file".into()],
            1,
            "/no/such/file",
        ),
    ];
    for (args, code, needle) in cases {
        common::assert_fails_in_one_line("self_attention", &args, code, needle);
    }
}

#[test]
fn a_saved_model_loads_and_scores_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.safetensors");
    let out = dir.path().join("out");
    let args = [
        "self_attention",
        "--quick",
        "--out",
        out.to_str().unwrap(),
        "--save",
        file.to_str().unwrap(),
    ];
    run(dlfs::runner::parse::<Cli>(args).unwrap()).unwrap();
    let test_bpc = report(&out)["char_model"]["test"].as_f64().unwrap();
    let loaded = dir.path().join("loaded");
    let args = [
        "self_attention",
        "--quick",
        "--out",
        loaded.to_str().unwrap(),
        "--load",
        file.to_str().unwrap(),
    ];
    run(dlfs::runner::parse::<Cli>(args).unwrap()).unwrap();
    let table = std::fs::read_to_string(loaded.join("results.md")).unwrap();
    assert!(
        table.contains(&format!("| test | {test_bpc:.4} |")),
        "{table}"
    );
}
