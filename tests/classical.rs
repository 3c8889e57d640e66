//! The classical course's first half: solvers, gradients, metrics, text features, the digits
//! result, and the chapter program.

mod common;

use dlfs::classical::Standardizer;
use dlfs::classical::experiment::{Cli, run};
use dlfs::classical::linear_regression::{
    LinearRegression, cholesky_solve, gradient_descent, normal_equation,
};
use dlfs::classical::logistic::{BinaryLogistic, SoftmaxRegression, test_accuracy_on_digits};
use dlfs::classical::metrics::{
    Prf, accuracy_of, average_precision, confusion_matrix, macro_f1, pr_curve,
};
use dlfs::classical::text::{Vocabulary, passages, split_of, tokenize, volume_of};
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::param::zero_grads;
use dlfs::runner::parse;
use ndarray::{Array, Array1, Array2, Dimension, array};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal<D: Dimension>(shape: D, rng: &mut ChaCha8Rng) -> Array<f64, D> {
    Array::random_using(shape, Normal::new(0.0, 1.0).unwrap(), rng)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn cholesky_solves_a_hand_made_system_and_rejects_a_singular_one() {
    // A = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], x = [1, -1, 2]: b = A x = [2, -1, 5].
    let a = array![[4.0, 2.0, 0.0], [2.0, 5.0, 1.0], [0.0, 1.0, 3.0]];
    let x = cholesky_solve(&a, &array![2.0, -1.0, 5.0]).unwrap();
    for (got, want) in x.iter().zip([1.0, -1.0, 2.0]) {
        assert!(close(*got, want, 1e-12), "{x}");
    }
    let singular = array![[1.0, 2.0], [2.0, 4.0]];
    let err = cholesky_solve(&singular, &array![1.0, 2.0]).unwrap_err();
    assert_eq!(err.pivot, 1);
}

fn regression_problem(seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut r = rng(seed);
    let x = normal(ndarray::Ix2(60, 5), &mut r);
    let w = array![1.5, -2.0, 0.5, 0.0, 3.0];
    let noise = normal(ndarray::Ix1(60), &mut r) * 0.3;
    let y = x.dot(&w) + 0.7 + noise;
    (x, y)
}

#[test]
fn normal_equation_and_gradient_descent_agree() {
    let (x, y) = regression_problem(1);
    for lambda in [0.0, 0.1, 1.0] {
        let exact = normal_equation(&x, &y, lambda).unwrap();
        let (gd, losses) = gradient_descent(&x, &y, lambda, 0.2, 3000);
        for (a, b) in exact.w.value.iter().zip(gd.w.value.iter()) {
            assert!(
                close(*a, *b, 1e-8),
                "lambda {lambda}: {} vs {}",
                exact.w.value,
                gd.w.value
            );
        }
        assert!(
            close(exact.bias(), gd.bias(), 1e-8),
            "lambda {lambda}: bias"
        );
        assert!(
            losses.windows(2).all(|w| w[1] <= w[0] + 1e-15),
            "the loss must not rise"
        );
        // The solution is a stationary point: the analytic gradient vanishes there.
        let mut m = exact.clone();
        zero_grads(&mut m);
        m.loss_backward(&x, &y, lambda);
        assert!(m.w.grad.iter().all(|g| g.abs() < 1e-10), "{}", m.w.grad);
        assert!(m.b.grad[()].abs() < 1e-10);
    }
    // Without noise or penalty, the true weights come back.
    let (x, _) = regression_problem(2);
    let y = x.dot(&array![1.0, 2.0, 3.0, 4.0, 5.0]) - 1.0;
    let m = normal_equation(&x, &y, 0.0).unwrap();
    assert!(close(m.w.value[4], 5.0, 1e-10) && close(m.bias(), -1.0, 1e-10));
}

#[test]
fn the_penalty_shrinks_the_weights_but_not_the_bias() {
    let (x, y) = regression_problem(3);
    let small = normal_equation(&x, &y, 0.01).unwrap();
    let big = normal_equation(&x, &y, 100.0).unwrap();
    let norm = |m: &LinearRegression<f64>| m.w.value.dot(&m.w.value).sqrt();
    assert!(norm(&big) < 0.1 * norm(&small));
    // With the weights nearly zero, the bias is close to the mean of y.
    assert!(close(big.bias(), y.mean().unwrap(), 0.1));
}

#[test]
fn regularised_losses_pass_the_gradient_check() {
    let mut r = rng(7);
    let x = normal(ndarray::Ix2(8, 4), &mut r);
    let y = normal(ndarray::Ix1(8), &mut r);
    let check = GradCheck::default();
    let lambda = 0.3;

    let mut lin = LinearRegression::<f64>::zeros(4);
    lin.w.value = normal(ndarray::Ix1(4), &mut r);
    lin.b.value[()] = 0.4;
    check
        .params(
            &mut lin,
            |m| m.loss(&x, &y, lambda),
            |m| {
                m.loss_backward(&x, &y, lambda);
            },
        )
        .assert_below(TOLERANCE);

    let labels: Vec<bool> = y.iter().map(|&v| v > 0.0).collect();
    let mut bin = BinaryLogistic::<f64>::zeros(4);
    bin.w.value = normal(ndarray::Ix1(4), &mut r);
    bin.b.value[()] = -0.2;
    check
        .params(
            &mut bin,
            |m| m.loss(&x, &labels, lambda),
            |m| {
                m.loss_backward(&x, &labels, lambda);
            },
        )
        .assert_below(TOLERANCE);

    let classes = [0, 2, 1, 2, 0, 1, 1, 2];
    let mut soft = SoftmaxRegression::<f64>::zeros(4, 3);
    soft.w.value = normal(ndarray::Ix2(4, 3), &mut r);
    soft.b.value = normal(ndarray::Ix1(3), &mut r);
    check
        .params(
            &mut soft,
            |m| m.loss(&x, &classes, lambda),
            |m| {
                m.loss_backward(&x, &classes, lambda);
            },
        )
        .assert_below(TOLERANCE);
}

#[test]
fn linear_and_logistic_models_parameter_names() {
    // A weight per feature and one scalar bias; softmax regression: a weight per feature and
    // class, a bias per class.
    common::assert_params(&mut LinearRegression::<f64>::zeros(4), &["w", "b"], 4 + 1);
    common::assert_params(&mut BinaryLogistic::<f64>::zeros(4), &["w", "b"], 4 + 1);
    common::assert_params(
        &mut SoftmaxRegression::<f64>::zeros(4, 3),
        &["w", "b"],
        4 * 3 + 3,
    );
}

#[test]
fn the_gradient_check_catches_a_missing_penalty_term() {
    // Gradient of the unpenalised loss checked against the penalised loss: must fail.
    let mut r = rng(8);
    let x = normal(ndarray::Ix2(6, 3), &mut r);
    let classes = [0, 1, 1, 0, 1, 0];
    let mut soft = SoftmaxRegression::<f64>::zeros(3, 2);
    soft.w.value = normal(ndarray::Ix2(3, 2), &mut r);
    let report = GradCheck::default().params(
        &mut soft,
        |m| m.loss(&x, &classes, 0.5),
        |m| {
            m.loss_backward(&x, &classes, 0.0);
        },
    );
    assert!(report.max_rel_error() > 1e-3, "{report}");
}

#[test]
fn binary_cross_entropy_is_stable_for_extreme_logits() {
    let x = array![[1.0], [1.0]];
    let mut m = BinaryLogistic::<f64>::zeros(1);
    m.w.value[0] = 1000.0;
    let loss = m.loss(&x, &[true, false], 0.0);
    // One example is right with certainty (loss 0), the other wrong by a logit of 1000.
    assert!(close(loss, 500.0, 1e-9), "{loss}");
    zero_grads(&mut m);
    m.loss_backward(&x, &[true, false], 0.0);
    assert!(m.w.grad.iter().all(|g| g.is_finite()));
}

#[test]
fn metrics_match_hand_computed_values() {
    let truth = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1];
    let predicted = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1];
    let c = confusion_matrix(&truth, &predicted, 3);
    assert_eq!(c, array![[2, 1, 0], [0, 2, 1], [1, 0, 3]]);
    assert!(close(accuracy_of(&c), 0.7, 1e-15));
    // Class 2: TP 3, FP 1 (a true 1), FN 1 (predicted 0).
    let p = Prf::of_class(&c, 2);
    assert!(close(p.precision, 0.75, 1e-15) && close(p.recall, 0.75, 1e-15));
    assert!(close(p.f1, 0.75, 1e-15));
    // Class 0: TP 2, FP 1, FN 1 -> 2/3 each; class 1: TP 2, FP 1, FN 1 -> 2/3.
    assert!(close(
        macro_f1(&c),
        (2.0 / 3.0 + 2.0 / 3.0 + 0.75) / 3.0,
        1e-15
    ));
    let q = Prf::from_counts(3, 1, 2);
    assert!(close(q.precision, 0.75, 1e-15) && close(q.recall, 0.6, 1e-15));
    assert!(close(q.f1, 2.0 * 0.75 * 0.6 / 1.35, 1e-15));
    assert_eq!(
        Prf::from_counts(0, 0, 4).f1,
        0.0,
        "nothing flagged: zeros, not NaN"
    );
}

#[test]
fn the_precision_recall_curve_matches_a_hand_sweep() {
    // Scores sorted: 0.9 (+), 0.8 (-), 0.7 (+), 0.7 (-), 0.1 (+). Three positives.
    let scores = [0.7, 0.1, 0.9, 0.8, 0.7];
    let positive = [true, true, true, false, false];
    let curve = pr_curve(&scores, &positive);
    let got: Vec<(f64, f64, f64)> = curve
        .iter()
        .map(|p| (p.threshold, p.precision, p.recall))
        .collect();
    let want = [
        (0.9, 1.0, 1.0 / 3.0),
        (0.8, 0.5, 1.0 / 3.0),
        (0.7, 0.5, 2.0 / 3.0), // the tie flags both 0.7s at once
        (0.1, 0.6, 1.0),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            close(g.0, w.0, 0.0) && close(g.1, w.1, 1e-15) && close(g.2, w.2, 1e-15),
            "{got:?}"
        );
    }
    // Area: 1/3 * 1 + 0 * 0.5 + 1/3 * 0.5 + 1/3 * 0.6.
    let ap = average_precision(&curve);
    assert!(close(ap, (1.0 + 0.5 + 0.6) / 3.0, 1e-15), "{ap}");
}

#[test]
fn tf_idf_matches_a_hand_computation() {
    let docs: Vec<Vec<String>> = ["the cat sat", "the cat ate the rat", "a dog"]
        .iter()
        .map(|d| tokenize(d))
        .collect();
    let vocab = Vocabulary::fit(&docs, 1);
    let words: Vec<&str> = vocab.index.keys().map(String::as_str).collect();
    assert_eq!(words, ["a", "ate", "cat", "dog", "rat", "sat", "the"]);
    let counts = vocab.counts(&docs);
    assert_eq!(counts.row(1).to_vec(), [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 2.0]);
    // n = 3; "cat" and "the" are in 2 documents: idf = ln(4/3) + 1; the others: ln(2) + 1.
    let (common, rare) = ((4.0f64 / 3.0).ln() + 1.0, 2.0f64.ln() + 1.0);
    let idf = vocab.idf();
    assert!(close(idf[2], common, 1e-15) && close(idf[0], rare, 1e-15));
    // Document 2: ate 1 * rare, cat 1 * common, rat 1 * rare, the 2 * common, then unit length.
    let raw = [0.0, rare, common, 0.0, rare, 0.0, 2.0 * common];
    let norm = raw.iter().map(|v| v * v).sum::<f64>().sqrt();
    let tfidf = vocab.tf_idf(&docs);
    for (got, want) in tfidf.row(1).iter().zip(raw) {
        assert!(close(*got, want / norm, 1e-15), "{}", tfidf.row(1));
    }
    // The "the" entry worked out on paper: 2 * 1.2877 / sqrt(2 * 1.6931^2 + 5 * 1.2877^2).
    assert!(close(tfidf[[1, 6]], 0.6877, 1e-4), "{}", tfidf[[1, 6]]);
    // Words never seen in training are dropped; min_df filters rare words.
    let unseen = vocab.counts(&[tokenize("zebra cat")]);
    assert_eq!(unseen.sum(), 1.0);
    assert_eq!(Vocabulary::fit(&docs, 2).len(), 2);
}

#[test]
fn tokens_and_passages_of_the_novel() {
    assert_eq!(
        tokenize("\"_You_ want\", Mr. Bennet's"),
        ["you", "want", "mr", "bennet", "s"]
    );
    let text = "TITLE\n\nChapter 1\n\n\nOne two three four\nfive six.\n\nShort.\n\nChapter 24\n\nSeven eight nine ten eleven twelve.";
    let p = passages(text, 4);
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].chapter, p[0].volume), (1, 0));
    assert_eq!(p[0].text, "One two three four five six.");
    assert_eq!((p[1].chapter, p[1].volume), (24, 1));
    assert_eq!([volume_of(23), volume_of(42), volume_of(43)], [0, 1, 2]);
    assert_ne!(split_of(3), split_of(4));
    let novel = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/text/pride-and-prejudice.txt"),
    )
    .unwrap();
    let all = passages(&novel, 20);
    assert!(all.len() > 1000, "{}", all.len());
    assert_eq!(all.last().unwrap().chapter, 61);
}

#[test]
fn standardizer_leaves_constant_columns_finite() {
    let x = array![[0.0, 1.0], [0.0, 3.0]];
    let s = Standardizer::fit(&x);
    let t = s.transform(&x);
    assert_eq!(t, array![[0.0, -1.0], [0.0, 1.0]]);
}

#[test]
fn softmax_regression_reaches_94_percent_on_the_digits_test_split() {
    let acc = test_accuracy_on_digits(1).unwrap();
    assert!(acc >= 0.94, "test accuracy {acc}");
}

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("classical_linear", out, seed, run);
}

const OUTPUTS: [&str; 17] = [
    "digits.svg",
    "learning-curve.svg",
    "learning-curve-quadratic.svg",
    "quadratic.md",
    "regularisation.svg",
    "gd-convergence.svg",
    "pr-curve.svg",
    "class-counts.md",
    "models.md",
    "softmax.md",
    "ridge.md",
    "normal-vs-gd.md",
    "confusion.md",
    "per-class.md",
    "imbalanced.md",
    "text-results.md",
    "text-words.md",
];

#[test]
fn quick_run_writes_well_formed_outputs() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in OUTPUTS
        .iter()
        .chain(&["text-data.md", "provenance.md", "results.json"])
    {
        let bytes =
            std::fs::read(dir.path().join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert!(bytes.len() > 50, "{name} is nearly empty");
        if name.ends_with(".svg") {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
                "{name}"
            );
        }
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let r = &json["report"];
    let acc = r["classification"]["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "five quick epochs already beat 85%: {acc}");
    let quadratic = r["regression"]["quadratic_by_lambda"].as_array().unwrap();
    let linear = r["regression"]["by_lambda"].as_array().unwrap();
    assert!(
        quadratic[0][1].as_f64().unwrap() < linear[0][1].as_f64().unwrap(),
        "more features fit the training data better"
    );
    let gap = r["regression"]["max_param_difference"].as_f64().unwrap();
    assert!(gap < 1e-3, "{gap}");
    let text_acc = r["text"]["test_accuracy"][0].as_f64().unwrap();
    let majority = r["text"]["test_accuracy"][1].as_f64().unwrap();
    assert!(text_acc > majority, "{text_acc} vs {majority}");
    let counts: u64 = r["class_counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(counts, 1797);
}

#[test]
fn the_same_seed_reproduces_every_output_exactly() {
    let [a, b, c] = common::three_quick_runs(quick, "5", "6");
    for name in OUTPUTS {
        let (x, y) = (
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    // results.json also records the seed and the wall time, so compare the numbers it reports.
    let report = |d: &tempfile::TempDir| -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join("results.json")).unwrap()).unwrap();
        json["report"].clone()
    };
    assert_eq!(
        report(&a),
        report(&b),
        "the same seed gives the same numbers"
    );
    assert_ne!(
        report(&a)["classification"],
        report(&c)["classification"],
        "another seed shuffles the batches differently, so the logistic models end elsewhere"
    );
}

#[test]
fn bad_flags_and_data_are_one_line_errors() {
    for args in [
        vec!["classical_linear", "--bogus"],
        vec!["classical_linear", "--epochs", "0"],
        vec!["classical_linear", "--seed", "x"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    let dir = tempfile::tempdir().unwrap();
    let cli: Cli = parse([
        "classical_linear",
        "--quick",
        "--data",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let err = format!("{:#}", run(cli).unwrap_err());
    assert!(err.contains("digits") && !err.contains('\n'), "{err}");
    std::fs::create_dir(dir.path().join("digits")).unwrap();
    std::fs::write(dir.path().join("digits/digits.csv"), "1,2,3\n").unwrap();
    let cli: Cli = parse([
        "classical_linear",
        "--quick",
        "--data",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let err = format!("{:#}", run(cli).unwrap_err());
    assert!(err.contains("65"), "{err}");
}

#[test]
fn quadratic_features_hold_every_product_once() {
    use dlfs::classical::linear_regression::quadratic_features;
    let x = array![[1.0, 2.0, 3.0]];
    let q = quadratic_features(&x);
    assert_eq!(
        q.row(0).to_vec(),
        [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 6.0, 9.0]
    );
}
