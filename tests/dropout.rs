//! The Dropout chapter: the layer's defining properties, gradient checks with a fixed mask, and
//! the chapter program's `--quick` path.

mod common;

use dlfs::activation::relu;
use dlfs::data::mnist::Split;
use dlfs::dropout::experiment::{Cli, checkpoints, monte_carlo, run};
use dlfs::dropout::{BadRate, Dropout, DropoutMlp};
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::loss::softmax_cross_entropy;
use dlfs::mlp::experiment::evaluate;
use dlfs::runner::parse;
use ndarray::{Array, Array1, Array2, Dimension, Ix2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal<D: Dimension>(shape: D, rng: &mut ChaCha8Rng) -> Array<f64, D> {
    Array::random_using(shape, Normal::new(0.0, 1.0).unwrap(), rng)
}

fn drop(p: f64) -> Dropout {
    Dropout::new(p).unwrap()
}

#[test]
fn rates_outside_zero_to_one_are_errors() {
    for p in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY, -0.0 - 1e-300] {
        let err = Dropout::new(p).unwrap_err();
        assert!(err == BadRate(p) || p.is_nan(), "{p}");
        assert!(err.to_string().contains("[0, 1)"), "{err}");
    }
    for p in [0.0, 0.2, 0.5, 0.999] {
        assert_eq!(Dropout::new(p).unwrap().rate(), p);
    }
}

#[test]
fn evaluation_mode_is_exactly_the_identity() {
    let mut r = rng(1);
    let x = normal(Ix2(7, 9), &mut r);
    for p in [0.0, 0.2, 0.5, 0.9] {
        assert_eq!(drop(p).infer(&x), x, "p = {p}");
    }
    // The dropout MLP in evaluation mode is the plain MLP with the same weights, bit for bit.
    let model = DropoutMlp::<f64>::new(&[9, 12, 5], drop(0.2), drop(0.5), &mut r);
    assert_eq!(model.infer(&x), model.mlp.infer(&x));
}

#[test]
fn zero_rate_is_the_identity_in_training_mode_too() {
    let mut r = rng(2);
    let x = normal(Ix2(5, 8), &mut r);
    let before = r.clone();
    let (y, cache) = drop(0.0).forward_train(&x, &mut r);
    assert_eq!(y, x);
    assert!(cache.mask().iter().all(|&m| m == 1.0));
    assert_eq!(r, before, "p = 0 draws nothing");
    let dy = normal(Ix2(5, 8), &mut r);
    assert_eq!(drop(0.0).backward(&cache, &dy), dy);
    // A dropout MLP with both rates zero trains exactly like the plain MLP.
    let mut model = DropoutMlp::<f64>::new(&[8, 6, 3], drop(0.0), drop(0.0), &mut r);
    let (z, _) = model.forward_train(&x, &mut r);
    assert_eq!(z, model.mlp.forward(&x).0);
    let (z, cache) = model.forward_train(&x, &mut r);
    let dz = softmax_cross_entropy(&z, &[0, 1, 2, 0, 1]).1;
    let dx = model.backward(&cache, &dz);
    let mut plain = model.mlp.clone();
    let (_, plain_cache) = plain.forward(&x);
    assert_eq!(dx, plain.backward(&plain_cache, &dz));
}

#[test]
fn the_mask_is_zero_or_the_inverse_keep_probability() {
    let mut r = rng(3);
    let x = normal(Ix2(20, 30), &mut r);
    for p in [0.2, 0.5, 0.75] {
        let (y, cache) = drop(p).forward_train(&x, &mut r);
        let keep = 1.0 / (1.0 - p);
        assert!(cache.mask().iter().all(|&m| m == 0.0 || m == keep));
        assert!(cache.mask().iter().any(|&m| m == 0.0));
        assert!(cache.mask().iter().any(|&m| m == keep));
        assert_eq!(y, &x * cache.mask());
    }
}

/// Inverted dropout keeps every unit's expected value: `E[y_i] = x_i`. We check it with sample
/// means, whose tolerance follows from the sample size.
///
/// Each output is `y = x m` with `m = 0` (probability `p`) or `m = 1 / (1 - p)`. So
/// `E[m] = 1` and `E[m^2] = (1 - p) / (1 - p)^2 = 1 / (1 - p)`, hence
/// `Var[m] = 1 / (1 - p) - 1 = p / (1 - p)` and `Var[y] = x^2 p / (1 - p)`. The mean of `n`
/// independent draws has standard error `SE = |x| sqrt(p / ((1 - p) n))`. We allow 5 SE: a
/// correct layer fails with probability about 6e-7 per comparison (and the seed is fixed, so
/// the test is deterministic). A layer that forgets to rescale has mean `(1 - p) x`, off by
/// `p |x|`, which is `p / sqrt(p / ((1 - p) n)) = sqrt(n p (1 - p))` SE: for `n = 20,000`,
/// about 42 SE at `p = 0.1`, 57 at `p = 0.2` and `0.8`, and 71 at `p = 0.5` (the most it can be),
/// far outside the 5 SE allowed.
#[test]
fn training_mode_preserves_the_mean() {
    let mut r = rng(4);
    let n = 20_000;
    // 50 columns with different values; every row is the same vector, so column j's sample mean
    // is an average of n independent draws of x_j m.
    let row = normal(ndarray::Ix1(50), &mut r) + 0.1;
    let x = Array2::from_shape_fn((n, 50), |(_, j)| row[j]);
    for p in [0.1, 0.2, 0.5, 0.8] {
        let (y, cache) = drop(p).forward_train(&x, &mut r);
        let means: Array1<f64> = y.mean_axis(ndarray::Axis(0)).unwrap();
        for (j, (&m, &xj)) in means.iter().zip(&row).enumerate() {
            let se = xj.abs() * (p / ((1.0 - p) * n as f64)).sqrt();
            assert!(
                (m - xj).abs() < 5.0 * se,
                "p = {p}, column {j}: mean {m} vs x {xj} (SE {se:e})"
            );
        }
        // And the fraction dropped is p: a binomial proportion over N = 50 n units, with
        // standard error sqrt(p (1 - p) / N).
        let total = cache.mask().len() as f64;
        let dropped = cache.mask().iter().filter(|&&m| m == 0.0).count() as f64 / total;
        let se = (p * (1.0 - p) / total).sqrt();
        assert!((dropped - p).abs() < 5.0 * se, "p = {p}: dropped {dropped}");
    }
    // In f32 (how the experiment trains) too, on 10^6 units of value 1: SE = sqrt(p / (1 - p)
    // / 10^6) = 1e-3 for p = 0.5.
    let ones = Array2::<f32>::ones((1000, 1000));
    let (y, _) = drop(0.5).forward_train(&ones, &mut r);
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / 1e6;
    assert!((mean - 1.0).abs() < 5e-3, "{mean}");
}

#[test]
fn backward_uses_the_forward_pass_mask() {
    let mut r = rng(5);
    let layer = drop(0.5);
    let x = normal(Ix2(6, 40), &mut r);
    let (y, cache) = layer.forward_train(&x, &mut r);
    let dy = normal(Ix2(6, 40), &mut r);
    let dx = layer.backward(&cache, &dy);
    // Zero exactly where the forward pass dropped a unit, 2 dy where it kept one.
    for ((&yi, &gi), (&xi, &di)) in y.iter().zip(&dx).zip(x.iter().zip(&dy)) {
        assert!(xi != 0.0);
        if yi == 0.0 {
            assert_eq!(gi, 0.0);
        } else {
            assert_eq!(gi, 2.0 * di);
        }
    }
    // A second forward pass draws a different mask: reusing the cache is what makes backward
    // differentiate the function that was actually computed.
    let (_, other) = layer.forward_train(&x, &mut r);
    assert_ne!(other.mask(), cache.mask());
    // In the MLP, an input unit that was dropped gets exactly zero gradient.
    let mut model = DropoutMlp::<f64>::new(&[40, 16, 3], drop(0.3), drop(0.5), &mut r);
    let (z, cache) = model.forward_train(&x, &mut r);
    let dx = model.backward(&cache, &softmax_cross_entropy(&z, &[0, 1, 2, 0, 1, 2]).1);
    let mut zeros = 0;
    for (&m, &g) in cache.input_mask().iter().zip(&dx) {
        if m == 0.0 {
            assert_eq!(g, 0.0);
            zeros += 1;
        } else {
            assert!(g != 0.0);
        }
    }
    assert!(zeros > 0);
    assert_eq!(cache.hidden_masks().len(), 1);
}

/// `L = sum(g * y)`: its gradient with respect to `y` is `g`.
fn weighted<D: Dimension>(y: &Array<f64, D>, g: &Array<f64, D>) -> f64 {
    (y * g).sum()
}

#[test]
fn gradient_check_of_the_layer_with_a_fixed_mask() {
    let mut r = rng(6);
    let x = normal(Ix2(4, 6), &mut r);
    let g = normal(Ix2(4, 6), &mut r);
    let layer = drop(0.4);
    // A fixed mask: every evaluation re-seeds the generator, so it draws the same mask.
    let f = |x: &Array2<f64>| weighted(&layer.forward_train(x, &mut rng(60)).0, &g);
    let (_, cache) = layer.forward_train(&x, &mut rng(60));
    assert!(cache.mask().iter().any(|&m| m == 0.0) && cache.mask().iter().any(|&m| m > 0.0));
    let dx = layer.backward(&cache, &g);
    GradCheck::default()
        .input(&x, &dx, f)
        .assert_below(TOLERANCE);
}

#[test]
fn gradient_check_of_the_dropout_mlp_with_fixed_masks() {
    let mut r = rng(7);
    let mut model = DropoutMlp::<f64>::new(&[6, 10, 8, 3], drop(0.2), drop(0.5), &mut r);
    for layer in &mut model.mlp.layers {
        layer.b.value = normal(ndarray::Ix1(layer.output()), &mut r) * 0.1;
    }
    let x = Array2::random_using((5, 6), Uniform::new(-2.0, 2.0).unwrap(), &mut r);
    let labels = [2, 0, 1, 2, 1];
    let seed = 70;
    // No hidden pre-activation of the thinned network may sit near ReLU's kink.
    let (_, cache) = model.forward_train(&x, &mut rng(seed));
    let masks = cache.hidden_masks();
    assert!(masks.iter().all(|m| m.iter().any(|&v| v == 0.0)));
    let mut h = &x * cache.input_mask();
    for (i, layer) in model.mlp.layers[..2].iter().enumerate() {
        let a = layer.infer(&h);
        let closest = a.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        assert!(
            closest > 1e-3,
            "a pre-activation is {closest}: pick another seed"
        );
        h = relu(&a) * masks[i];
    }
    let loss = |m: &DropoutMlp<f64>, x: &Array2<f64>| {
        softmax_cross_entropy(&m.forward_train(x, &mut rng(seed)).0, &labels).0
    };
    let report = GradCheck::default().layer(&mut model, &x, loss, |m, x| {
        let (z, cache) = m.forward_train(x, &mut rng(seed));
        let (_, dz) = softmax_cross_entropy(&z, &labels);
        m.backward(&cache, &dz)
    });
    assert_eq!(
        report.checks.len(),
        7,
        "three weights, three biases and the input"
    );
    report.assert_below(TOLERANCE);
}

#[test]
fn dropout_mlp_parameter_names() {
    // The dropout layers have no parameters: the network's are the MLP's, under the same names.
    let mut model = DropoutMlp::<f32>::new(&[6, 10, 8, 3], drop(0.2), drop(0.5), &mut rng(7));
    common::assert_params(
        &mut model,
        &[
            "layers.0.w",
            "layers.0.b",
            "layers.1.w",
            "layers.1.b",
            "layers.2.w",
            "layers.2.b",
        ],
        (6 * 10 + 10) + (10 * 8 + 8) + (8 * 3 + 3),
    );
}

#[test]
fn a_fresh_mask_in_backward_fails_the_gradient_check() {
    // The pitfall made concrete: differentiate with one mask, evaluate with another.
    let mut r = rng(8);
    let x = normal(Ix2(4, 6), &mut r);
    let g = normal(Ix2(4, 6), &mut r);
    let layer = drop(0.5);
    let f = |x: &Array2<f64>| weighted(&layer.forward_train(x, &mut rng(80)).0, &g);
    let (_, wrong) = layer.forward_train(&x, &mut rng(81));
    let dx = layer.backward(&wrong, &g);
    let c = GradCheck::default().input(&x, &dx, f);
    assert!(c.rel_error > 0.1, "{c:?}");
}

#[test]
fn monte_carlo_of_a_net_without_dropout_is_weight_scaling() {
    let mut r = rng(9);
    let model = DropoutMlp::<f32>::new(&[12, 16, 4], drop(0.0), drop(0.0), &mut r);
    let images = Array2::random_using((30, 12), Uniform::new(0.0f32, 1.0).unwrap(), &mut r);
    let split = Split {
        images,
        labels: (0..30).map(|i| i % 4).collect(),
        rows: 3,
        cols: 4,
    };
    let points = monte_carlo(&model, &split, &[1, 3], &mut r);
    let exact = evaluate(&model.mlp, &split);
    assert_eq!(points.len(), 2);
    for p in points {
        assert!(
            (p.test.loss - exact.loss).abs() < 1e-5,
            "{p:?} vs {exact:?}"
        );
        assert_eq!(p.test.accuracy, exact.accuracy);
    }
    assert_eq!(checkpoints(100), [1, 2, 5, 10, 20, 50, 100]);
    assert_eq!(checkpoints(30), [1, 2, 5, 10, 20, 30]);
}

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("dropout", out, seed, run);
}

#[test]
fn quick_run_writes_well_formed_outputs_and_the_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for svg in ["loss.svg", "test-error.svg", "monte-carlo.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>") && text.len() > 500,
            "{svg}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let report = &json["report"];
    for net in ["plain", "dropout"] {
        let history = report[net]["history"].as_array().unwrap();
        assert_eq!(history.len(), 4, "epoch 0 and three epochs");
        let losses: Vec<f64> = history
            .iter()
            .map(|e| e["train"]["loss"].as_f64().unwrap())
            .collect();
        assert!(losses.iter().all(|l| l.is_finite()), "{net}: {losses:?}");
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]),
            "{net}: the training loss must fall: {losses:?}"
        );
        let acc = history[3]["test"]["accuracy"].as_f64().unwrap();
        assert!(
            acc > 0.7,
            "{net}: three quick epochs reach well above chance, got {acc}"
        );
    }
    assert_eq!(report["dropout"]["input_dropout"], 0.2);
    assert_eq!(report["dropout"]["hidden_dropout"], 0.5);
    assert_eq!(report["plain"]["hidden_dropout"], 0.0);
    let mc = report["monte_carlo"].as_array().unwrap();
    assert_eq!(mc.len(), 4, "k = 1, 2, 5, 10");
    // The table reports this run: its rows hold the numbers of results.json.
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    let pct = |a: f64| format!("{:.2}%", 100.0 * a);
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    let last = &report["plain"]["history"][3];
    let acc = num(&last["test"]["accuracy"]);
    let plain = format!(
        "| no dropout | after epoch 3 | {:.4} | {:.4} | {:.4} | {} | {} |",
        num(&last["train"]["loss"]),
        num(&last["validation"]["loss"]),
        num(&last["test"]["loss"]),
        pct(acc),
        pct(1.0 - acc)
    );
    let mut rows = vec![plain];
    for p in mc {
        let acc = num(&p["test"]["accuracy"]);
        rows.push(format!(
            "| Monte Carlo, k = {} | {:.4} | {} | {} |",
            p["samples"],
            num(&p["test"]["loss"]),
            pct(acc),
            pct(1.0 - acc)
        ));
    }
    for row in rows {
        assert!(
            table.lines().any(|l| l == row),
            "{row} missing from:\n{table}"
        );
    }
    assert!(
        table.contains("1000 training, 200 validation and 500 test images"),
        "{table}"
    );
    let provenance = std::fs::read_to_string(dir.path().join("provenance.md")).unwrap();
    assert!(provenance.contains("seed 3"), "{provenance}");
    assert_eq!(json["provenance"]["seed"], 3);
}

#[test]
fn the_same_seed_reproduces_every_output_exactly() {
    let [a, b, c] = common::three_quick_runs(quick, "5", "6");
    for name in [
        "loss.svg",
        "test-error.svg",
        "monte-carlo.svg",
        "results.md",
    ] {
        let read = |d: &tempfile::TempDir| std::fs::read(d.path().join(name)).unwrap();
        assert!(
            read(&a) == read(&b),
            "{name} differs between two runs with the same seed"
        );
    }
    let read = |d: &tempfile::TempDir| std::fs::read(d.path().join("results.md")).unwrap();
    assert!(
        read(&a) != read(&c),
        "another seed should give other numbers"
    );
}

#[test]
fn bad_flags_are_one_line_errors() {
    for args in [
        vec!["dropout", "--bogus"],
        vec!["dropout", "--optimizer", "rmsprop"],
        vec!["dropout", "--mc-samples", "0"],
        vec!["dropout", "--epochs", "0"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    for (flag, value) in [
        ("--input-dropout", "1.0"),
        ("--hidden-dropout", "-0.5"),
        ("--hidden-dropout", "NaN"),
        ("--lr", "0"),
        ("--momentum", "1.5"),
    ] {
        let arg = format!("{flag}={value}");
        let cli: Cli = parse(["dropout", "--quick", &arg]).unwrap();
        let err = run(cli).unwrap_err().to_string();
        assert!(
            err.contains(flag) && !err.contains('\n'),
            "{flag} {value}: {err}"
        );
    }
}
