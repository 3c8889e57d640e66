//! The decoder-only character Transformer: gradient checks (f64, every parameter; the input is
//! ids, so the embedding gradients cover it) with and without dropout, and a broken backward
//! pass the checker rejects; the model is causal; cached and uncached generation draw from the
//! same distributions at every step (f64 and f32), past the end of the learned positions; the
//! parameter names; the data-parallel gradient equals the whole batch's; the program's
//! `--quick` run and its one-line failures. (The exact GELU's own gradient check is in
//! `tests/gradients.rs`.)

mod common;

use dlfs::gradcheck::{GradCheck, Report, TOLERANCE};
use dlfs::loss::softmax_cross_entropy;
use dlfs::transformer::gpt::{Decode, Gpt, GptConfig};
use ndarray::{Array2, array, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn tiny(dropout: f64) -> GptConfig {
    GptConfig {
        vocab: 5,
        max_len: 6,
        d: 4,
        heads: 2,
        ff: 8,
        blocks: 2,
        dropout,
    }
}

/// A tiny model whose biases and layer-norm parameters are moved off their initial values
/// (zero biases, unit gains), so every gradient is exercised.
fn tiny_model(dropout: f64, seed: u64) -> Gpt<f64> {
    let mut model = Gpt::<f64>::new(tiny(dropout), &mut rng(seed)).unwrap();
    let mut r = rng(seed + 100);
    dlfs::param::Params::visit(&mut model, "", &mut |name, mut p| {
        if name.ends_with(".b") || name.ends_with("gamma") || name.ends_with("beta") {
            let noise = ndarray::ArrayD::random_using(
                p.value.raw_dim(),
                Normal::new(0.0, 0.3).unwrap(),
                &mut r,
            );
            p.value += &noise;
        }
    });
    model
}

const IDS: [[usize; 5]; 2] = [[0, 3, 1, 4, 2], [2, 2, 0, 1, 3]];
const TARGETS: [usize; 10] = [3, 1, 4, 2, 0, 2, 0, 1, 3, 4];

fn check(dropout: f64, backward_seed: u64) -> Report {
    let ids = Array2::from_shape_fn((2, 5), |(b, t)| IDS[b][t]);
    let ids2 = ids.clone();
    let mut model = tiny_model(dropout, 7);
    GradCheck::default().params(
        &mut model,
        |m| {
            let z = m.forward_train(&ids, &mut rng(5)).0;
            softmax_cross_entropy(&z, &TARGETS).0
        },
        move |m| {
            let (z, cache) = m.forward_train(&ids2, &mut rng(backward_seed));
            let (_, dz) = softmax_cross_entropy(&z, &TARGETS);
            m.backward(&cache, &dz);
        },
    )
}

#[test]
fn gradient_check_of_every_parameter() {
    let report = check(0.0, 5);
    assert_eq!(
        report.checks.len(),
        dlfs::param::names(&tiny_model(0.0, 7)).len()
    );
    common::assert_checks_with_zero_key_biases(&report);
}

#[test]
fn gradient_check_with_dropout() {
    common::assert_checks_with_zero_key_biases(&check(0.2, 5));
}

#[test]
fn the_check_rejects_a_backward_pass_through_other_dropout_masks() {
    // A classic bug: the backward pass reads the caches of another forward pass (here one with
    // other dropout masks) than the one whose loss is differentiated.
    let report = check(0.2, 6);
    let failing: Vec<_> = report
        .checks
        .iter()
        .filter(|c| !c.name.ends_with("wk.b") && !c.failures(TOLERANCE).is_empty())
        .map(|c| c.name.clone())
        .collect();
    assert!(failing.contains(&"tokens.table".to_string()), "{failing:?}");
    assert!(failing.len() > 10, "{failing:?}");
}

#[test]
fn the_model_is_causal() {
    let model = tiny_model(0.0, 8);
    let a = model.infer(&array![[0, 3, 1, 4, 2, 1]]);
    let b = model.infer(&array![[0, 3, 1, 0, 0, 4]]);
    // Changing positions 3 to 5 leaves the logits at positions 0 to 2 bit-identical...
    assert_eq!(a.slice(s![..3, ..]), b.slice(s![..3, ..]));
    // ...and does change position 3's.
    assert!(
        (&a.slice(s![3, ..]) - &b.slice(s![3, ..]))
            .mapv(f64::abs)
            .sum()
            > 1e-6
    );
}

#[test]
fn a_cached_step_equals_the_last_row_of_the_full_pass() {
    let model = tiny_model(0.0, 9);
    let ids = array![[0, 3, 1, 4, 2, 1], [4, 4, 0, 2, 3, 3]];
    let mut caches = model.caches(2);
    for t in 0..6 {
        let step = model.step(&[ids[[0, t]], ids[[1, t]]], &mut caches);
        let full = model.infer(&ids.slice(s![.., ..=t]));
        for b in 0..2 {
            let row = full.row(b * (t + 1) + t);
            let diff = (&row - &step.row(b)).mapv(f64::abs).sum();
            assert!(diff < 1e-12, "position {t}, sequence {b}: {diff}");
        }
    }
}

fn agree<F: dlfs::float::Float>(model: &Gpt<F>, tol: f64) {
    // 20 characters with windows of 6: the context restarts several times.
    let prompt = [1, 2];
    let cached = model.generate(&prompt, 20, 0.9, Decode::Cached, &mut rng(11));
    let uncached = model.generate(&prompt, 20, 0.9, Decode::Uncached, &mut rng(11));
    assert_eq!(cached.ids, uncached.ids);
    assert_eq!(cached.probs.len(), 20);
    let mut worst = 0.0f64;
    for (p, q) in cached.probs.iter().zip(&uncached.probs) {
        let sum: f64 = p.iter().map(|v| v.as_f64()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "a distribution sums to {sum}");
        for (a, b) in p.iter().zip(q) {
            worst = worst.max((a.as_f64() - b.as_f64()).abs());
        }
    }
    assert!(worst < tol, "largest difference {worst:e}");
}

#[test]
fn cached_and_uncached_generation_draw_from_the_same_distributions() {
    agree(&tiny_model(0.0, 10), 1e-12);
    // f32, at the chapter's size, with a prompt longer than the window.
    let model = Gpt::<f32>::new(GptConfig::workload(30), &mut rng(12)).unwrap();
    let prompt: Vec<usize> = (0..70).map(|i| (i * 7) % 30).collect();
    let c = model.generate(&prompt, 80, 1.0, Decode::Cached, &mut rng(13));
    let u = model.generate(&prompt, 80, 1.0, Decode::Uncached, &mut rng(13));
    assert_eq!(c.ids, u.ids);
    let worst = c
        .probs
        .iter()
        .zip(&u.probs)
        .flat_map(|(p, q)| p.iter().zip(q).map(|(a, b)| (a - b).abs()))
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "largest difference {worst:e}");
    agree(&model, 1e-5);
}

#[test]
fn parameter_names() {
    let mut model = tiny_model(0.0, 13);
    let (v, t, d, ff) = (5, 6, 4, 8);
    let block = 4 * (d * d + d) + 4 * d + (d * ff + ff) + (ff * d + d);
    let count = v * d + t * d + 2 * block + 2 * d + (d * v + v);
    let mut names = vec![
        "tokens.table".to_string(),
        "positions.learned.table".to_string(),
    ];
    for i in 0..2 {
        for l in ["wq", "wk", "wv", "wo"] {
            for p in ["w", "b"] {
                names.push(format!("blocks.{i}.attention.{l}.{p}"));
            }
        }
        for p in [
            "ln1.gamma",
            "ln1.beta",
            "ff.lin1.w",
            "ff.lin1.b",
            "ff.lin2.w",
            "ff.lin2.b",
            "ln2.gamma",
            "ln2.beta",
        ] {
            names.push(format!("blocks.{i}.{p}"));
        }
    }
    names.extend(["ln_f.gamma", "ln_f.beta", "out.w", "out.b"].map(String::from));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    common::assert_params(&mut model, &refs, count);
    // The workload's size: d 128, 2 blocks, ff 512, 64 positions, a vocabulary of 65.
    let w = Gpt::<f32>::new(GptConfig::workload(65), &mut rng(1)).unwrap();
    let (d, ff) = (128, 512);
    let block = 4 * (d * d + d) + 4 * d + (d * ff + ff) + (ff * d + d);
    assert_eq!(
        dlfs::param::count(&w),
        65 * d + 64 * d + 2 * block + 2 * d + d * 65 + 65
    );
}

#[test]
fn the_two_thread_gradient_is_the_whole_batch_gradient() {
    let ids = Array2::from_shape_fn((4, 5), |(b, t)| (b * 3 + t * 2) % 5);
    let targets = Array2::from_shape_fn((4, 5), |(b, t)| (b + t * 3) % 5);
    let mut whole = tiny_model(0.0, 14);
    let mut split = whole.clone();
    let mut replica = whole.clone();
    dlfs::param::zero_grads(&mut whole);
    dlfs::param::zero_grads(&mut split);
    let full = whole.loss_backward(&ids, &targets, &mut rng(0));
    let (x0, t0) = (ids.slice(s![..2, ..]), targets.slice(s![..2, ..]));
    let (x1, t1) = (ids.slice(s![2.., ..]), targets.slice(s![2.., ..]));
    let (a, b) = dlfs::runner::data_parallel(
        &mut split,
        &mut replica,
        |m| m.loss_backward(&x0, &t0, &mut rng(0)),
        |m| m.loss_backward(&x1, &t1, &mut rng(0)),
    );
    assert!((full - 0.5 * (a + b)).abs() < 1e-12);
    let (mut g1, mut g2) = (Vec::new(), Vec::new());
    dlfs::param::Params::visit_ref(&whole, "", &mut |_, p| g1.extend(p.grad.iter().copied()));
    dlfs::param::Params::visit_ref(&split, "", &mut |_, p| g2.extend(p.grad.iter().copied()));
    let diff = g1
        .iter()
        .zip(&g2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let norm = g1.iter().map(|a| a.abs()).fold(0.0, f64::max);
    assert!(norm > 1e-3 && diff < 1e-12, "{diff} (largest entry {norm})");
}

// The chapter program.

use dlfs::transformer::gpt_experiment::{Cli, run};

#[test]
fn quick_run_writes_its_tables_and_figures_and_reproduces() {
    common::assert_same_seed_same_bytes::<Cli>(
        "char_transformer",
        &["char-results.md", "char-samples.md", "char-bpc.svg"],
        "char-results.md",
        run,
    );
    let dir = tempfile::tempdir().unwrap();
    common::run_quick::<Cli>("char_transformer", dir.path(), "3", run);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("char-results.json")).unwrap())
            .unwrap();
    let r = &json["report"]["run"];
    let curve = r["curve"].as_array().unwrap();
    assert!(curve.len() >= 2);
    // Training bits per character start near log2(75) = 6.2 and fall.
    let first = curve[0][1].as_f64().unwrap();
    let last = curve[curve.len() - 1][1].as_f64().unwrap();
    assert!(first > 3.5 && last < first, "{first} -> {last}");
    let test = r["test_bpc"].as_f64().unwrap();
    assert!(test.is_finite() && test < 6.3, "{test}");
    let samples = json["report"]["samples"].as_array().unwrap();
    let temps: Vec<f64> = samples.iter().map(|s| s[0].as_f64().unwrap()).collect();
    assert_eq!(temps, [0.5, 0.8, 1.0]);
    assert!(
        samples
            .iter()
            .all(|s| s[1].as_str().unwrap().chars().count() == 60)
    );
    let cmp = std::fs::read_to_string(dir.path().join("char-comparison.md")).unwrap();
    for row in [
        "5-gram",
        "LSTM",
        "attention only",
        "decoder-only Transformer",
    ] {
        assert!(cmp.contains(row), "no `{row}` row in {cmp}");
    }
    assert_eq!(
        json["report"]["comparison"].as_array().unwrap().len(),
        cmp.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| model"))
            .count()
    );
    for figure in ["char-bpc.svg", "char-bpc-time.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(figure)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{figure}"
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("char-bpc-time.svg")).unwrap();
    assert!(svg.contains("best n-gram") && svg.contains("LSTM"));
}

#[test]
fn a_missing_or_malformed_results_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = dlfs::transformer::gpt_experiment::read_others(dir.path()).unwrap_err();
    assert!(format!("{err:#}").contains("nlp/results.json"), "{err:#}");
    for sub in ["nlp", "lstm", "self_attention"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let real = dlfs::runner::chapter_dir("");
    std::fs::copy(
        real.join("nlp/results.json"),
        dir.path().join("nlp/results.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("lstm/char.json"), "{\"report\": {}}").unwrap();
    let err = format!(
        "{:#}",
        dlfs::transformer::gpt_experiment::read_others(dir.path()).unwrap_err()
    );
    assert!(
        err.contains("chapters/lstm/char.json") && err.contains("no `report."),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    std::fs::copy(
        real.join("lstm/char.json"),
        dir.path().join("lstm/char.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("self_attention/results.json"), "not json").unwrap();
    let err = format!(
        "{:#}",
        dlfs::transformer::gpt_experiment::read_others(dir.path()).unwrap_err()
    );
    assert!(err.contains("not JSON"), "{err}");
    std::fs::copy(
        real.join("self_attention/results.json"),
        dir.path().join("self_attention/results.json"),
    )
    .unwrap();
    let others = dlfs::transformer::gpt_experiment::read_others(dir.path()).unwrap();
    assert_eq!(others.curves.len(), 2);
}

#[test]
fn bad_flags_fail_in_one_line() {
    common::assert_common_failures("char_transformer");
    common::assert_fails_in_one_line(
        "char_transformer",
        &["--quick", "--epochs", "3"],
        1,
        "--epochs",
    );
    common::assert_fails_in_one_line(
        "char_transformer",
        &["--quick", "--dropout", "1.5"],
        1,
        "--dropout",
    );
    common::assert_fails_in_one_line(
        "char_transformer",
        &["--quick", "--width", "130"],
        1,
        "--width",
    );
    common::assert_fails_in_one_line(
        "char_transformer",
        &["--quick", "--steps", "0"],
        2,
        "--steps",
    );
    common::assert_fails_in_one_line(
        "char_transformer",
        &["--quick", "--threads", "3"],
        2,
        "--threads",
    );
}

#[test]
fn a_diverging_run_stops_with_a_one_line_error() {
    common::assert_fails_in_one_line(
        "char_transformer",
        &["--quick", "--optimizer", "sgd", "--lr", "1e30"],
        1,
        "training stopped",
    );
}
