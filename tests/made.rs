//! The MADE chapter: the autoregressive property read off the model, gradient checks of the
//! masked layer and the whole model, the degrees' guarantees (every unit has an input and a
//! path to an output), normalisation over all `2^D` configurations, sampling in the ordering,
//! the mask ensemble, parameter names, and the chapter program's `--quick` path.

mod common;

use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::made::{Degrees, Made, MaskedLinear, Output, mask};
use dlfs::param::Params;
use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A small MADE in `f64` with random degrees (a random ordering unless `natural`), non-zero
/// biases, so every path carries a gradient.
fn tiny(
    dims: usize,
    widths: &[usize],
    kind: Output,
    direct: bool,
    natural: bool,
    seed: u64,
) -> Made<f64> {
    let mut r = rng(seed);
    let degrees = Degrees::draw(dims, widths, natural, &mut r);
    let mut model = Made::<f64>::new(degrees, kind, direct, &mut r);
    model.visit("", &mut |name, mut p| {
        if name.ends_with(".b") {
            let n = p.value.len();
            let b = Array1::random_using(n, Normal::new(0.0, 0.3).unwrap(), &mut r);
            p.value.assign(&b.into_dyn());
        }
    });
    model
}

/// Binary data, `[rows, dims]`.
fn binary(rows: usize, dims: usize, seed: u64) -> Array2<f64> {
    Array2::random_using(
        (rows, dims),
        Uniform::new(0.0, 1.0).unwrap(),
        &mut rng(seed),
    )
    .mapv(|u| if u < 0.5 { 0.0 } else { 1.0 })
}

/// Class indices in `0..k`, `[rows, dims]`.
fn classes(rows: usize, dims: usize, k: usize, seed: u64) -> Array2<f64> {
    Array2::random_using((rows, dims), Uniform::new(0, k).unwrap(), &mut rng(seed))
        .mapv(|c| c as f64)
}

// ANCHOR: autoregressive
/// Output `d` may depend only on the inputs before `d` in the ordering: perturbing input `j`
/// (every one-hot unit of it, for categorical outputs) must leave unchanged, bit for bit, every
/// output of a variable at or before `j`, and must change some output after it.
fn assert_autoregressive(model: &Made<f64>, seed: u64) {
    let k = model.classes();
    let dims = model.dims();
    let input = Array2::random_using(
        (3, dims * k),
        Uniform::new(0.1, 0.9).unwrap(),
        &mut rng(seed),
    );
    let base = model.infer(&input);
    let order = &model.degrees().order;
    let mut changed_some = false;
    for j in 0..dims {
        let mut probe = input.clone();
        for u in 0..k {
            probe
                .column_mut(j * k + u)
                .mapv_inplace(|v| v + 0.7 + u as f64);
        }
        let out = model.infer(&probe);
        for d in 0..dims {
            let same = (0..k).all(|u| out.column(d * k + u) == base.column(d * k + u));
            if order[d] <= order[j] {
                assert!(
                    same,
                    "output {d} (degree {}) moved with input {j} (degree {})",
                    order[d], order[j]
                );
            } else {
                changed_some |= !same;
            }
        }
    }
    assert!(
        changed_some,
        "no output depends on any input: the masks cut everything"
    );
}

#[test]
fn the_autoregressive_property_holds_for_random_orderings_and_degrees() {
    for seed in 0..6 {
        for direct in [false, true] {
            for widths in [vec![9], vec![8, 7], vec![10, 6, 9]] {
                let model = tiny(6, &widths, Output::Bernoulli, direct, false, seed);
                assert_autoregressive(&model, seed + 100);
                let model = tiny(
                    5,
                    &widths,
                    Output::Categorical { classes: 3 },
                    direct,
                    false,
                    seed,
                );
                assert_autoregressive(&model, seed + 200);
            }
        }
    }
    // With no hidden layer at all only the direct connection... and the output layer from
    // the input remain, still autoregressive.
    let model = tiny(6, &[], Output::Bernoulli, true, false, 9);
    assert_autoregressive(&model, 300);
}
// ANCHOR_END: autoregressive

#[test]
fn a_non_strict_output_mask_breaks_the_property_and_the_test_sees_it() {
    // The pitfall: `>=` on the output layer lets output d see input d itself (through a unit
    // of degree m(d)), so p(x_d | ...) would be allowed to read x_d.
    let mut r = rng(4);
    let degrees = Degrees::draw(5, &[12], false, &mut r);
    let mut model = Made::<f64>::new(degrees.clone(), Output::Bernoulli, false, &mut r);
    model
        .output
        .set_mask(mask(&degrees.hidden[0], &degrees.order, false));
    let input = Array2::random_using((2, 5), Uniform::new(0.1, 0.9).unwrap(), &mut rng(5));
    let base = model.infer(&input);
    let leaks = (0..5).any(|d| {
        let mut probe = input.clone();
        probe.column_mut(d).mapv_inplace(|v| v + 1.0);
        model.infer(&probe).column(d) != base.column(d)
    });
    assert!(
        leaks,
        "a non-strict output mask should let some output see its own input"
    );
}

// ANCHOR: connectivity
/// The connectivity from inputs to outputs is the *matrix product* of the masks (a path is a
/// chain of kept weights), not their element-wise product.
fn connectivity(model: &Made<f64>) -> Array2<f64> {
    let mut c = Array2::<f64>::eye(model.dims() * model.classes());
    for layer in &model.hidden {
        c = c.dot(layer.mask());
    }
    c.dot(model.output.mask())
}

#[test]
fn every_hidden_unit_has_an_input_and_a_path_to_an_output() {
    for seed in 0..20 {
        // Tall, narrow stacks make a unit without a path likely unless the degrees prevent it.
        let dims = 4 + (seed as usize % 5);
        let model = tiny(dims, &[3, 5, 2, 4], Output::Bernoulli, false, false, seed);
        let mut reach_in = Array2::<f64>::eye(dims);
        for (l, layer) in model.hidden.iter().enumerate() {
            reach_in = reach_in.dot(layer.mask());
            // Paths from this layer's units to the outputs.
            let mut reach_out = Array2::<f64>::eye(layer.mask().ncols());
            for later in &model.hidden[l + 1..] {
                reach_out = reach_out.dot(later.mask());
            }
            reach_out = reach_out.dot(model.output.mask());
            for u in 0..layer.mask().ncols() {
                assert!(
                    reach_in.column(u).sum() > 0.0,
                    "seed {seed}: layer {l} unit {u} has no input"
                );
                assert!(
                    reach_out.row(u).sum() > 0.0,
                    "seed {seed}: layer {l} unit {u} has no output"
                );
            }
        }
        // And output d is reachable exactly from the inputs of lower degree.
        let c = connectivity(&model);
        let order = &model.degrees().order;
        for (j, d) in ndarray::indices((dims, dims)) {
            if c[[j, d]] > 0.0 {
                assert!(order[j] < order[d], "input {j} reaches output {d}");
            }
        }
    }
}
// ANCHOR_END: connectivity

#[test]
fn the_element_wise_product_of_masks_is_not_the_connectivity() {
    // The study notes' own MADE tested its masks by multiplying them element-wise; for masks of
    // different shapes that is not even defined, and for square ones it answers another question.
    let model = tiny(5, &[5], Output::Bernoulli, false, true, 3);
    let elementwise = model.hidden[0].mask() * model.output.mask();
    assert_ne!(
        elementwise.mapv(|v| v > 0.0),
        connectivity(&model).mapv(|v| v > 0.0)
    );
}

#[test]
fn degrees_follow_the_paper() {
    let mut r = rng(8);
    let d = Degrees::draw(10, &[50, 40], false, &mut r);
    let mut sorted = d.order.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=10).collect::<Vec<_>>(),
        "the ordering is a permutation of 1..=D"
    );
    assert!(
        d.hidden.iter().flatten().all(|&m| (1..10).contains(&m)),
        "hidden degrees in 1..D"
    );
    let low = d.hidden[0].iter().min().unwrap();
    assert!(
        d.hidden[1].iter().all(|m| m >= low),
        "layer 2's degrees start at layer 1's lowest"
    );
    let natural = Degrees::draw(10, &[5], true, &mut r);
    assert_eq!(natural.order, (1..=10).collect::<Vec<_>>());
    assert_eq!(natural.sequence(), (0..10).collect::<Vec<_>>());
    assert_ne!(d.sequence(), (0..10).collect::<Vec<_>>());
    for (t, &v) in d.sequence().iter().enumerate() {
        assert_eq!(d.order[v], t + 1);
    }
}

/// All `K^D` configurations of `D` variables with `K` values, as rows.
fn all_configurations(dims: usize, k: usize) -> Array2<f64> {
    let n = k.pow(dims as u32);
    Array2::from_shape_fn((n, dims), |(i, d)| ((i / k.pow(d as u32)) % k) as f64)
}

#[test]
fn the_probabilities_of_all_configurations_sum_to_one() {
    for (kind, dims, k) in [
        (Output::Bernoulli, 8, 2),
        (Output::Categorical { classes: 3 }, 5, 3),
    ] {
        for direct in [false, true] {
            let model = tiny(dims, &[11, 7], kind, direct, false, 6);
            let all = all_configurations(dims, k);
            let total: f64 = model.log_likelihood(&all).mapv(f64::exp).sum();
            assert!(
                (total - 1.0).abs() < 1e-12,
                "{kind:?} direct {direct}: {total}"
            );
        }
    }
}

#[test]
fn sampling_follows_the_ordering_and_matches_the_model() {
    let model = tiny(6, &[10], Output::Bernoulli, true, false, 12);
    let sequence = model.degrees().sequence();
    let mut drawn = Vec::new();
    let mut seen = Vec::new();
    let mut r = rng(13);
    let x = model.sample_with(4, |d, p| {
        drawn.push(d);
        seen.push((d, p.clone()));
        p.rows()
            .into_iter()
            .map(|row| usize::from(rand::Rng::random::<f64>(&mut r) < row[1]))
            .collect()
    });
    assert_eq!(drawn, sequence, "variables are drawn in the ordering");
    // The probabilities handed to `draw` for variable d are the model's conditionals given the
    // final sample: what came later cannot have changed them.
    let logits = model.infer(&model.encode(&x));
    for (d, p) in seen {
        for i in 0..4 {
            let p1 = 1.0 / (1.0 + (-logits[[i, d]]).exp());
            assert!((p[[i, 1]] - p1).abs() < 1e-12 && (p[[i, 0]] + p[[i, 1]] - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn sample_frequencies_match_the_exact_probabilities() {
    let model = tiny(
        3,
        &[8],
        Output::Categorical { classes: 2 },
        false,
        false,
        14,
    );
    let n = 40_000;
    let x = model.sample(n, &mut rng(15));
    let all = all_configurations(3, 2);
    let p = model.log_likelihood(&all).mapv(f64::exp);
    for (i, row) in all.rows().into_iter().enumerate() {
        let freq = x.rows().into_iter().filter(|r| *r == row).count() as f64 / n as f64;
        let se = (p[i] * (1.0 - p[i]) / n as f64).sqrt();
        assert!(
            (freq - p[i]).abs() < 5.0 * se + 1e-4,
            "{row}: {freq} vs {}",
            p[i]
        );
    }
}

// ANCHOR: gradcheck
#[test]
fn gradient_check_of_the_masked_layer() {
    let mut r = rng(20);
    let degrees = Degrees::draw(6, &[5], false, &mut r);
    let mut layer =
        MaskedLinear::<f64>::new(mask(&degrees.order, &degrees.hidden[0], false), &mut r);
    let x = Array2::random_using((4, 6), Normal::new(0.0, 1.0).unwrap(), &mut r);
    let weights = Array2::random_using((4, 5), Normal::new(0.0, 1.0).unwrap(), &mut r);
    let loss = |l: &MaskedLinear<f64>, x: &Array2<f64>| (l.infer(x) * &weights).sum();
    let report = GradCheck::default().layer(&mut layer, &x, loss, |l, x| {
        let (_, cache) = l.forward(x.clone());
        l.backward(&cache, &weights)
    });
    report.assert_below(TOLERANCE);
    // A masked-out weight gets no gradient at all.
    let cut = layer.mask().mapv(|m| 1.0 - m);
    assert!(cut.sum() > 0.0);
    assert_eq!((&layer.linear.w.grad * &cut).sum(), 0.0);
}

#[test]
fn the_checker_rejects_an_unmasked_weight_gradient() {
    let mut r = rng(21);
    let degrees = Degrees::draw(6, &[5], false, &mut r);
    let mut layer =
        MaskedLinear::<f64>::new(mask(&degrees.order, &degrees.hidden[0], false), &mut r);
    let x = Array2::random_using((4, 6), Normal::new(0.0, 1.0).unwrap(), &mut r);
    let weights = Array2::random_using((4, 5), Normal::new(0.0, 1.0).unwrap(), &mut r);
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| (l.infer(x) * &weights).sum(),
        |l, x| {
            // Broken: the weight gradient of an unmasked layer, x^T dy.
            let (_, cache) = l.forward(x.clone());
            let dx = l.backward(&cache, &weights);
            let cut = l.mask().mapv(|m| 1.0 - m);
            l.linear.w.grad += &(x.t().dot(&weights) * &cut);
            dx
        },
    );
    let err = report.verify(TOLERANCE).unwrap_err();
    assert!(err.to_string().contains("w"), "{err}");
}

/// Checks the whole model's mean NLL against central differences, with respect to every
/// parameter and the network's input (the targets held fixed).
fn check_model(mut model: Made<f64>, input: Array2<f64>, target: Array2<f64>) {
    let hidden_inputs: Vec<f64> = {
        let mut h = input.clone();
        let mut all = Vec::new();
        for layer in &model.hidden {
            let a = layer.infer(&h);
            all.extend(a.iter().copied());
            h = a.mapv(|v| v.max(0.0));
        }
        all
    };
    assert!(
        hidden_inputs.iter().all(|v| v.abs() > 1e-3),
        "a ReLU input sits near its kink: pick another seed"
    );
    let report = GradCheck::default().layer(
        &mut model,
        &input,
        |m, inp| m.loss(&m.infer(inp), &target).0,
        |m, inp| {
            let (logits, cache) = m.forward(inp.clone());
            let (_, d) = m.loss(&logits, &target);
            m.backward(&cache, &d)
        },
    );
    assert!(
        report.checks.iter().all(|c| c.analytic_norm > 0.0),
        "every parameter and the input get a gradient:\n{report}"
    );
    report.assert_below(TOLERANCE);
}

#[test]
fn gradient_check_of_the_whole_model() {
    for direct in [false, true] {
        let model = tiny(5, &[7, 6], Output::Bernoulli, direct, false, 30);
        // Real-valued inputs, so the input gradient is checked in every direction; binary targets.
        let input = Array2::random_using((4, 5), Uniform::new(0.05, 0.95).unwrap(), &mut rng(31));
        check_model(model, input, binary(4, 5, 32));
        let model = tiny(
            4,
            &[9],
            Output::Categorical { classes: 3 },
            direct,
            false,
            43,
        );
        let input = Array2::random_using((4, 12), Uniform::new(0.05, 0.95).unwrap(), &mut rng(34));
        check_model(model, input, classes(4, 4, 3, 35));
    }
}
// ANCHOR_END: gradcheck

#[test]
fn backward_params_gives_the_same_parameter_gradients() {
    let mut a = tiny(5, &[7, 6], Output::Bernoulli, true, false, 40);
    let mut b = a.clone();
    let x = binary(6, 5, 41);
    for (m, full) in [(&mut a, true), (&mut b, false)] {
        let (logits, cache) = m.forward(x.clone());
        let (_, d) = m.loss(&logits, &x);
        if full {
            m.backward(&cache, &d);
        } else {
            m.backward_params(&cache, &d);
        }
    }
    let grads = |m: &Made<f64>| {
        let mut out = Vec::new();
        m.visit_ref("", &mut |_, p| out.extend(p.grad.iter().copied()));
        out
    };
    let (ga, gb) = (grads(&a), grads(&b));
    assert!(ga.iter().any(|&g| g != 0.0));
    assert!(ga.iter().zip(&gb).all(|(x, y)| (x - y).abs() < 1e-12));
}

#[test]
fn parameter_names_and_count() {
    let mut r = rng(50);
    let degrees = Degrees::draw(784, &[500], true, &mut r);
    let mut model = Made::<f32>::new(degrees.clone(), Output::Bernoulli, false, &mut r);
    // 784*500 + 500 and 500*784 + 784: the masked entries are parameters too (they stay zero
    // in effect but are stored).
    common::assert_params(
        &mut model,
        &["hidden.0.w", "hidden.0.b", "output.w", "output.b"],
        392_000 + 500 + 392_000 + 784,
    );
    let mut direct = Made::<f32>::new(degrees, Output::Bernoulli, true, &mut r);
    common::assert_params(
        &mut direct,
        &[
            "hidden.0.w",
            "hidden.0.b",
            "output.w",
            "output.b",
            "direct.w",
            "direct.b",
        ],
        392_000 + 500 + 392_000 + 784 + 784 * 784 + 784,
    );
    let d2 = Degrees::draw(3, &[4, 5], true, &mut r);
    let mut cat = Made::<f32>::new(d2, Output::Categorical { classes: 2 }, false, &mut r);
    common::assert_params(
        &mut cat,
        &[
            "hidden.0.w",
            "hidden.0.b",
            "hidden.1.w",
            "hidden.1.b",
            "output.w",
            "output.b",
        ],
        6 * 4 + 4 + 4 * 5 + 5 + 5 * 6 + 6,
    );
}

#[test]
fn one_hot_encoding_and_the_categorical_likelihood() {
    let model = tiny(2, &[3], Output::Categorical { classes: 3 }, false, true, 60);
    let x = ndarray::array![[2.0, 0.0], [1.0, 1.0]];
    assert_eq!(
        model.encode(&x),
        ndarray::array![
            [0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
        ]
    );
    // The NLL is the sum of each variable's softmax cross-entropy.
    let logits = model.infer(&model.encode(&x));
    let nll = model.nll(&logits, &x);
    for i in 0..2 {
        let mut expect = 0.0;
        for d in 0..2 {
            let g: Vec<f64> = (0..3).map(|u| logits[[i, d * 3 + u]]).collect();
            let lse = g.iter().map(|v| v.exp()).sum::<f64>().ln();
            expect += lse - g[x[[i, d]] as usize];
        }
        assert!((nll[i] - expect).abs() < 1e-12);
    }
}

#[test]
fn changing_the_degrees_changes_the_masks_not_the_weights() {
    let mut model = tiny(6, &[8], Output::Bernoulli, true, false, 70);
    let w = model.hidden[0].linear.w.value.clone();
    let m = model.hidden[0].mask().clone();
    let other = Degrees::draw(6, &[8], false, &mut rng(71));
    model.set_degrees(other.clone());
    assert_eq!(model.hidden[0].linear.w.value, w);
    assert_ne!(model.hidden[0].mask(), &m);
    assert_eq!(model.degrees(), &other);
    assert_autoregressive(&model, 72);
}

// The chapter program.

use dlfs::made::experiment::{Cli, ensemble_log_likelihood, mask_sets, run, toy_data};
use dlfs::runner::parse;
use std::path::Path;

#[test]
fn a_mask_ensemble_is_the_mean_of_the_probabilities() {
    let cli: Cli = parse(["made", "--quick"]).unwrap();
    let config = cli.config().unwrap();
    let masks = mask_sets(&config, 3, 1, 10);
    assert_ne!(masks[0], masks[1]);
    let model = Made::<f32>::new(masks[0].clone(), Output::Bernoulli, false, &mut rng(80));
    let x = Array2::<f32>::from_shape_fn((2, 784), |(i, j)| ((i + j) % 3 == 0) as u8 as f32);
    let ens = ensemble_log_likelihood(&model, &masks, &x);
    let mut m = model.clone();
    for (i, &e) in ens.iter().enumerate() {
        let each: Vec<f64> = masks
            .iter()
            .map(|d| {
                m.set_degrees(d.clone());
                m.log_likelihood(&x)[i]
            })
            .collect();
        let max = each.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = max + (each.iter().map(|l| (l - max).exp()).sum::<f64>() / 3.0).ln();
        assert!((e - mean).abs() < 1e-9, "{e} vs {mean}");
        // Jensen: the log of the mean is at least the mean of the logs.
        assert!(e >= each.iter().sum::<f64>() / 3.0);
    }
}

#[test]
fn the_toy_data_is_the_study_notes_distribution() {
    let x = toy_data();
    assert_eq!(x.nrows(), 210);
    let count = |a: f32, b: f32| {
        x.rows()
            .into_iter()
            .filter(|r| r[0] == a && r[1] == b)
            .count()
    };
    assert_eq!(
        (
            count(0.0, 0.0),
            count(0.0, 1.0),
            count(1.0, 0.0),
            count(1.0, 1.0)
        ),
        (0, 160, 40, 10)
    );
}

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("made", out, seed, run);
}

fn json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

const FIGURES: [&str; 3] = ["nll.svg", "samples.svg", "ensemble.svg"];

#[test]
fn quick_run_writes_well_formed_outputs_and_the_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in FIGURES {
        let text = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|_| panic!("{name} missing"));
        assert!(
            text.len() > 500 && text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    let json = json(dir.path());
    let report = &json["report"];
    let history = report["single"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "epoch 0 and the quick epochs");
    let train: Vec<f64> = history
        .iter()
        .map(|e| e["train"].as_f64().unwrap())
        .collect();
    assert!(train.iter().all(|l| l.is_finite()), "{train:?}");
    assert!(
        train.windows(2).all(|w| w[1] < w[0]),
        "the training NLL must fall: {train:?}"
    );
    // The toy problem is learned to within 0.01 of its frequencies, and the table shows it.
    let toy = &report["toy"];
    let diff = toy["max_abs_diff"].as_f64().unwrap();
    assert!(diff < 0.01, "{toy}");
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(
        table.contains(&format!("Largest absolute difference: **{diff:.4}**")),
        "{table}"
    );
    let learned = toy["learned"].as_array().unwrap();
    let total: f64 = learned.iter().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-5, "{total}");
    // The table's rows are the run's numbers.
    let single = &report["single_scores"];
    let row = format!(
        "| one mask | 1 | {} of 3 | {:.2} | {:.2} |",
        report["single"]["best_epoch"],
        single["validation"].as_f64().unwrap(),
        single["test"].as_f64().unwrap()
    );
    assert!(table.contains(&row), "{row} not in:\n{table}");
    let ensemble = report["ensemble"].as_array().unwrap();
    assert_eq!(
        ensemble
            .iter()
            .map(|p| p["masks"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 4]
    );
    assert!(
        table.contains("| 500 test images") || table.contains("500 test images"),
        "{table}"
    );
    assert_eq!(json["provenance"]["seed"], 3);
}

#[test]
fn the_same_seed_reproduces_every_output_exactly() {
    let mut files = FIGURES.to_vec();
    files.push("results.md");
    common::assert_same_seed_same_bytes::<Cli>("made", &files, "results.md", run);
}

#[test]
fn a_saved_model_loads_and_scores_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("made.safetensors");
    let (trained, loaded) = (dir.path().join("trained"), dir.path().join("loaded"));
    let args = |extra: &[&str], out: &Path| {
        let mut v = vec![
            "made",
            "--quick",
            "--masks",
            "0",
            "--seed",
            "4",
            "--out",
            out.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        parse::<Cli>(v).unwrap()
    };
    run(args(&["--save", file.to_str().unwrap()], &trained)).unwrap();
    run(args(&["--load", file.to_str().unwrap()], &loaded)).unwrap();
    let s = &json(&trained)["report"]["single_scores"];
    let table = std::fs::read_to_string(loaded.join("results.md")).unwrap();
    let row = format!("| test | {:.2} |", s["test"].as_f64().unwrap());
    assert!(table.contains(&row), "{row} not in:\n{table}");
    assert!(
        !trained.join("ensemble.svg").exists(),
        "--masks 0 skips the second model"
    );
    let err = run(args(
        &["--load", file.to_str().unwrap(), "--hidden", "20"],
        &loaded,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("this model is"), "{err}");
}

#[test]
fn the_direct_connection_and_order_agnostic_training_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let cli: Cli = parse([
        "made",
        "--quick",
        "--direct",
        "--order-agnostic",
        "--epochs",
        "2",
        "--out",
        out,
    ])
    .unwrap();
    run(cli).unwrap();
    let report = &json(dir.path())["report"];
    assert_eq!(report["single"]["params"], 785_284 + 784 * 784 + 784);
    let val: Vec<f64> = report["multi"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["validation"].as_f64().unwrap())
        .collect();
    assert!(
        val.iter().all(|v| v.is_finite()) && val[2] < val[0],
        "{val:?}"
    );
}

#[test]
fn bad_flags_are_errors() {
    for args in [
        vec!["made", "--bogus"],
        vec!["made", "--epochs", "0"],
        vec!["made", "--hidden", "0"],
        vec!["made", "--batch-size", "0"],
        vec!["made", "--mask-every", "0"],
        vec!["made", "--masks", "-1"],
        vec!["made", "--save", "a", "--load", "b"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    for (flag, value) in [("--lr", "NaN"), ("--lr", "-1")] {
        let cli: Cli = parse(["made", "--quick", &format!("{flag}={value}")]).unwrap();
        assert!(
            run(cli).unwrap_err().to_string().contains(flag),
            "{flag} {value}"
        );
    }
}

#[test]
fn the_program_fails_in_one_line_without_a_panic() {
    common::assert_common_failures("made");
    common::assert_fails_in_one_line("made", &["--hidden", "wide"], 2, "wide");
    // A learning rate that blows the weights up stops training at the first non-finite loss.
    common::assert_fails_in_one_line("made", &["--quick", "--lr", "1e30"], 1, "training stopped");
}
