//! The program of the course's first half (`cargo run --release --example classical_linear`):
//! looks at the digits, fits linear regression both ways and draws its learning curves, picks
//! and scores softmax regression, measures the classification metrics, and classifies passages
//! of *Pride and Prejudice* from bag-of-words and TF-IDF features. Every figure and table of the
//! chapters "An end-to-end project" to "Advice for applying ML" comes from here.

use crate::classical::Standardizer;
use crate::classical::linear_regression::{
    gradient_descent, mse, normal_equation, quadratic_features,
};
use crate::classical::logistic::{
    DigitsSoftmax, TrainConfig, digits_softmax, train_binary, train_softmax,
};
use crate::classical::metrics::{
    PrPoint, Prf, accuracy_of, average_precision, confusion_matrix, macro_f1, pr_curve,
};
use crate::classical::text::{Split, Vocabulary, passages, split_of, tokenize, unit_rows};
use crate::data::digits::{DigitSplits, Digits};
use crate::loss::{accuracy, argmax_rows};
use crate::plot::{Labels, Series, Tile, image_grid, line_chart};
use crate::runner::{CommonArgs, Run, chapter_dir, pct};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2, Axis, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;

/// The flags of `cargo run --release --example classical_linear`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "classical_linear",
    about = "The classical ML course, first half: linear and logistic regression, metrics, text features"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has. `--data DIR` is a folder laid out like the book's
    /// `data/`: `digits/digits.csv.gz` (or `digits/digits.csv`) and
    /// `text/pride-and-prejudice.txt`. `--epochs` sets the passes of every logistic model.
    pub common: CommonArgs,
}

/// The digit the binary classifier and the precision-recall curve treat as positive.
pub const POSITIVE_DIGIT: usize = 9;

/// Penalties tried for linear regression (`lambda` of the ridge loss).
pub const RIDGE_LAMBDAS: [f64; 7] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];

/// Training-set sizes of the learning curves.
/// (Below about 150 the scaling, refitted on the few rows, gives rare pixels huge weights and
/// the validation error explodes, which hides the rest of the curve.)
pub const SIZES: [usize; 12] = [150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 1000, 1078];

/// Gradient-descent settings for linear regression.
pub const GD_LR: f64 = 0.05;

/// Gradient-descent steps for linear regression.
pub const GD_STEPS: usize = 3000;

// ANCHOR: ink_task
/// The regression task: from the top half of an 8x8 digit (its first four rows, 32 pixels),
/// predict how much ink is in the bottom half (the mean of the other 32 pixels, on the 0..16
/// scale). A real quantity of real images, with no answer hidden in the inputs.
pub fn ink_task(d: &Digits) -> (Array2<f64>, Array1<f64>) {
    let x = d.x.slice(s![.., ..32]).to_owned();
    let y =
        d.x.slice(s![.., 32..])
            .mean_axis(Axis(1))
            .expect("32 pixels");
    (x, y)
}
// ANCHOR_END: ink_task

/// One point of a learning curve: `(training examples, training MSE, validation MSE)`.
pub type CurvePoint = (usize, f64, f64);

/// Linear regression on the ink task.
#[derive(Clone, Debug, Serialize)]
pub struct RegressionReport {
    /// `(lambda, train RMSE, validation RMSE)` by the normal equation, per penalty.
    pub by_lambda: Vec<(f64, f64, f64)>,
    /// The penalty with the lowest validation RMSE.
    pub chosen_lambda: f64,
    /// RMSE of always predicting the training mean, on validation and test.
    pub baseline_rmse: (f64, f64),
    /// Test RMSE of the chosen model (normal equation), measured once.
    pub test_rmse: f64,
    /// Gradient-descent steps taken.
    pub gd_steps: usize,
    /// Training loss of the normal-equation solution and of gradient descent at the end.
    pub losses: (f64, f64),
    /// The largest absolute difference between the two fits' parameters.
    pub max_param_difference: f64,
    /// Gradient descent's training loss per step.
    pub gd_history: Vec<f64>,
    /// Learning curves, `(size, train MSE, validation MSE)`, for the chosen penalty and for a
    /// heavy one.
    pub curves: Vec<(f64, Vec<CurvePoint>)>,
    /// Quadratic features: `(lambda, train RMSE, validation RMSE)` per penalty.
    pub quadratic_by_lambda: Vec<(f64, f64, f64)>,
    /// The penalty chosen for the quadratic features.
    pub quadratic_lambda: f64,
    /// Learning curve of the quadratic model with its chosen penalty.
    pub quadratic_curve: Vec<CurvePoint>,
    /// Test RMSE of the quadratic model (reported for the chapter on advice; the linear model
    /// is the one chosen before this experiment).
    pub quadratic_test_rmse: f64,
}

/// Softmax regression and the classification metrics on the digits.
#[derive(Clone, Debug, Serialize)]
pub struct ClassificationReport {
    /// Validation accuracy of always predicting the most common training class.
    pub majority_validation: f64,
    /// Validation accuracy of the nearest class mean (in standardised pixels).
    pub centroid_validation: f64,
    /// `(lambda, train accuracy, validation accuracy)` per penalty.
    pub trials: Vec<(f64, f64, f64)>,
    /// The chosen penalty.
    pub chosen_lambda: f64,
    /// Test accuracy of the chosen model.
    pub test_accuracy: f64,
    /// Test confusion matrix, `[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Per-class precision, recall, F1 on the test split.
    pub per_class: Vec<Prf>,
    /// Macro-averaged F1 on the test split.
    pub macro_f1: f64,
    /// Binary "is it a 9?" on the validation split: the always-"no" classifier's accuracy,
    /// then the logistic model's accuracy and its precision, recall, F1 at threshold 1/2.
    pub binary: (f64, f64, Prf),
    /// The share of 9s in the validation split.
    pub positive_share: f64,
    /// Average precision of the binary model on the validation split.
    pub average_precision: f64,
    /// The validation precision-recall curve.
    pub pr: Vec<PrPoint>,
}

/// The text experiment.
#[derive(Clone, Debug, Serialize)]
pub struct TextReport {
    /// Passages per split (train, validation, test) and volume.
    pub counts: [[usize; 3]; 3],
    /// Words in the vocabulary.
    pub vocabulary: usize,
    /// Validation accuracy of predicting the most common training volume.
    pub majority_validation: f64,
    /// `(features, lambda, training accuracy, validation accuracy)` for every model tried.
    pub trials: Vec<(String, f64, f64, f64)>,
    /// The chosen features and penalty.
    pub chosen: (String, f64),
    /// Test accuracy of the chosen model, and of the majority guess.
    pub test_accuracy: (f64, f64),
    /// The five words with the largest weight for each volume, in the chosen model.
    pub top_words: Vec<Vec<String>>,
}

/// Everything the program measures.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Images per split and class: `[split][digit]`.
    pub class_counts: [[usize; 10]; 3],
    /// Linear regression.
    pub regression: RegressionReport,
    /// Classification.
    pub classification: ClassificationReport,
    /// Text.
    pub text: TextReport,
    /// Passes of every logistic model.
    pub epochs: usize,
}

fn rmse(m: f64) -> f64 {
    m.sqrt()
}

// ANCHOR: learning_curve
/// Training and validation MSE of ridge regression (normal equation) fitted on the first `m`
/// training rows, for each `m` in `sizes`. The scaling is refitted on those rows too, as it
/// would be if they were all the data we had.
pub fn learning_curve(
    train: (&Array2<f64>, &Array1<f64>),
    validation: (&Array2<f64>, &Array1<f64>),
    lambda: f64,
    sizes: &[usize],
) -> Result<Vec<CurvePoint>> {
    let mut out = Vec::new();
    for &m in sizes.iter().filter(|&&m| m <= train.1.len()) {
        let (x, y) = (
            train.0.slice(s![..m, ..]).to_owned(),
            train.1.slice(s![..m]).to_owned(),
        );
        let scaler = Standardizer::fit(&x);
        let xs = scaler.transform(&x);
        let model = normal_equation(&xs, &y, lambda)?;
        out.push((
            m,
            mse(&model, &xs, &y),
            mse(&model, &scaler.transform(validation.0), validation.1),
        ));
    }
    Ok(out)
}
// ANCHOR_END: learning_curve

fn regression(split: &DigitSplits) -> Result<RegressionReport> {
    let (raw_t, yt) = ink_task(&split.train);
    let (raw_v, yv) = ink_task(&split.validation);
    let (raw_s, ys) = ink_task(&split.test);
    let scaler = Standardizer::fit(&raw_t);
    let (xt, xv, xs) = (
        scaler.transform(&raw_t),
        scaler.transform(&raw_v),
        scaler.transform(&raw_s),
    );
    let mut by_lambda = Vec::new();
    for &lambda in &RIDGE_LAMBDAS {
        let m = normal_equation(&xt, &yt, lambda)?;
        by_lambda.push((lambda, rmse(mse(&m, &xt, &yt)), rmse(mse(&m, &xv, &yv))));
    }
    let chosen_lambda = by_lambda
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .expect("penalties")
        .0;
    let exact = normal_equation(&xt, &yt, chosen_lambda)?;
    let mean = yt.mean().expect("training targets");
    let base = |y: &Array1<f64>| rmse(y.mapv(|v| (v - mean) * (v - mean)).mean().unwrap_or(0.0));
    let gd_steps = GD_STEPS;
    let (gd, gd_history) = gradient_descent(&xt, &yt, chosen_lambda, GD_LR, gd_steps);
    let max_param_difference = (&gd.w.value - &exact.w.value)
        .iter()
        .map(|v| v.abs())
        .fold((gd.bias() - exact.bias()).abs(), f64::max);
    let curves = [chosen_lambda, 100.0]
        .iter()
        .map(|&l| Ok((l, learning_curve((&raw_t, &yt), (&raw_v, &yv), l, &SIZES)?)))
        .collect::<Result<Vec<_>>>()?;
    // What to try next for a model that underfits: more features.
    let (qt, qv, qs) = (
        quadratic_features(&raw_t),
        quadratic_features(&raw_v),
        quadratic_features(&raw_s),
    );
    let qscaler = Standardizer::fit(&qt);
    let (qt_s, qv_s) = (qscaler.transform(&qt), qscaler.transform(&qv));
    let mut quadratic_by_lambda = Vec::new();
    for &lambda in &RIDGE_LAMBDAS {
        let m = normal_equation(&qt_s, &yt, lambda)?;
        quadratic_by_lambda.push((lambda, rmse(mse(&m, &qt_s, &yt)), rmse(mse(&m, &qv_s, &yv))));
    }
    let quadratic_lambda = quadratic_by_lambda
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .expect("penalties")
        .0;
    let qm = normal_equation(&qt_s, &yt, quadratic_lambda)?;
    let quadratic_test_rmse = rmse(mse(&qm, &qscaler.transform(&qs), &ys));
    let quadratic_curve = learning_curve((&qt, &yt), (&qv, &yv), quadratic_lambda, &SIZES)?;
    Ok(RegressionReport {
        quadratic_by_lambda,
        quadratic_lambda,
        quadratic_curve,
        quadratic_test_rmse,
        by_lambda,
        chosen_lambda,
        baseline_rmse: (base(&yv), base(&ys)),
        test_rmse: rmse(mse(&exact, &xs, &ys)),
        gd_steps,
        losses: (
            exact.loss(&xt, &yt, chosen_lambda),
            gd.loss(&xt, &yt, chosen_lambda),
        ),
        max_param_difference,
        gd_history,
        curves,
    })
}

fn classification(
    digits: &Digits,
    split: &DigitSplits,
    seed: u64,
    epochs: usize,
) -> Result<ClassificationReport> {
    let DigitsSoftmax {
        trials,
        chosen,
        model,
        scaler,
        test_accuracy,
    } = digits_softmax(digits, seed, epochs)?;
    let (xt, xv, xs) = (
        scaler.transform(&split.train.x),
        scaler.transform(&split.validation.x),
        scaler.transform(&split.test.x),
    );
    // Baselines, judged on validation like everything else.
    let mut counts = [0usize; 10];
    for &y in &split.train.y {
        counts[y] += 1;
    }
    let majority = (0..10)
        .max_by_key(|&k| (counts[k], 10 - k))
        .expect("classes");
    let majority_validation = split
        .validation
        .y
        .iter()
        .filter(|&&y| y == majority)
        .count() as f64
        / split.validation.len() as f64;
    let mut centroids = Array2::<f64>::zeros((10, xt.ncols()));
    for (row, &y) in xt.rows().into_iter().zip(&split.train.y) {
        let mut c = centroids.row_mut(y);
        c += &row;
    }
    for (mut c, &n) in centroids.rows_mut().into_iter().zip(&counts) {
        c /= n.max(1) as f64;
    }
    let nearest: Vec<usize> = xv
        .rows()
        .into_iter()
        .map(|r| {
            (0..10)
                .min_by(|&a, &b| {
                    let da = (&centroids.row(a) - &r).mapv(|v| v * v).sum();
                    let db = (&centroids.row(b) - &r).mapv(|v| v * v).sum();
                    da.total_cmp(&db)
                })
                .expect("classes")
        })
        .collect();
    let centroid_validation = nearest
        .iter()
        .zip(&split.validation.y)
        .filter(|(p, y)| p == y)
        .count() as f64
        / split.validation.len() as f64;
    // The chosen model's test confusion matrix and per-class scores.
    let predicted = argmax_rows(&model.logits(&xs));
    let c = confusion_matrix(&split.test.y, &predicted, 10);
    debug_assert!((accuracy_of(&c) - test_accuracy).abs() < 1e-12);
    let per_class = (0..10).map(|k| Prf::of_class(&c, k)).collect();
    // One digit against the rest, on validation.
    let is_pos = |d: &Digits| -> Vec<bool> { d.y.iter().map(|&y| y == POSITIVE_DIGIT).collect() };
    let (pt, pv) = (is_pos(&split.train), is_pos(&split.validation));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let binary = train_binary(&xt, &pt, &chosen, &mut rng)?;
    let scores = binary.logits(&xv).to_vec();
    let flagged: Vec<usize> = scores.iter().map(|&z| usize::from(z >= 0.0)).collect();
    let truth: Vec<usize> = pv.iter().map(|&p| usize::from(p)).collect();
    let bc = confusion_matrix(&truth, &flagged, 2);
    let positive_share = truth.iter().sum::<usize>() as f64 / truth.len() as f64;
    let pr = pr_curve(&scores, &pv);
    Ok(ClassificationReport {
        majority_validation,
        centroid_validation,
        trials: trials
            .iter()
            .map(|t| (t.lambda, t.train_accuracy, t.validation_accuracy))
            .collect(),
        chosen_lambda: chosen.lambda,
        test_accuracy,
        confusion: c.rows().into_iter().map(|r| r.to_vec()).collect(),
        per_class,
        macro_f1: macro_f1(&c),
        binary: (
            1.0 - positive_share,
            accuracy_of(&bc),
            Prf::of_class(&bc, 1),
        ),
        positive_share,
        average_precision: average_precision(&pr),
        pr,
    })
}

/// Penalties tried for the text classifier.
pub const TEXT_LAMBDAS: [f64; 5] = [0.0, 1e-5, 1e-4, 1e-3, 1e-2];

/// Settings of the text classifier's training (besides the penalty).
pub fn text_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        lambda: 0.0,
        lr: 0.5,
        epochs,
        batch_size: 32,
    }
}

// ANCHOR: text_experiment
fn text(novel: &str, seed: u64, epochs: usize) -> Result<TextReport> {
    let all = passages(novel, 20);
    anyhow::ensure!(
        all.len() > 100,
        "the novel gave only {} passages of 20 words or more",
        all.len()
    );
    let part = |which: Split| -> (Vec<Vec<String>>, Vec<usize>) {
        all.iter()
            .filter(|p| split_of(p.chapter) == which)
            .map(|p| (tokenize(&p.text), p.volume))
            .unzip()
    };
    let (train_docs, yt) = part(Split::Train);
    let (val_docs, yv) = part(Split::Validation);
    let (test_docs, ys) = part(Split::Test);
    let mut counts = [[0usize; 3]; 3];
    for (s, y) in [&yt, &yv, &ys].into_iter().enumerate() {
        for &v in y {
            counts[s][v] += 1;
        }
    }
    let vocab = Vocabulary::fit(&train_docs, 2);
    let features = |name: &str, docs: &[Vec<String>]| match name {
        "bag of words" => unit_rows(vocab.counts(docs)),
        _ => vocab.tf_idf(docs),
    };
    let majority = (0..3)
        .max_by_key(|&v| (counts[0][v], 3 - v))
        .expect("volumes");
    let share = |y: &[usize]| y.iter().filter(|&&v| v == majority).count() as f64 / y.len() as f64;
    let mut trials = Vec::new();
    let mut best = None;
    for name in ["bag of words", "TF-IDF"] {
        let (xt, xv) = (features(name, &train_docs), features(name, &val_docs));
        for &lambda in &TEXT_LAMBDAS {
            let config = TrainConfig {
                lambda,
                ..text_config(epochs)
            };
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (model, _) = train_softmax(&xt, &yt, 3, &config, &mut rng)?;
            let acc = accuracy(&model.logits(&xv), &yv);
            let train_acc = accuracy(&model.logits(&xt), &yt);
            trials.push((name.to_string(), lambda, train_acc, acc));
            if best.as_ref().is_none_or(|(a, _, _, _)| acc > *a) {
                best = Some((acc, name, lambda, model));
            }
        }
    }
    let (_, name, lambda, model) = best.expect("models tried");
    let test_accuracy = accuracy(&model.logits(&features(name, &test_docs)), &ys);
    let words: Vec<&String> = vocab.index.keys().collect();
    let top_words = (0..3)
        .map(|v| {
            let col = model.w.value.column(v);
            let mut idx: Vec<usize> = (0..col.len()).collect();
            idx.sort_by(|&a, &b| col[b].total_cmp(&col[a]).then(a.cmp(&b)));
            idx.iter().take(5).map(|&j| words[j].clone()).collect()
        })
        .collect();
    Ok(TextReport {
        counts,
        vocabulary: vocab.len(),
        majority_validation: share(&yv),
        trials,
        chosen: (name.to_string(), lambda),
        test_accuracy: (test_accuracy, share(&ys)),
        top_words,
    })
}
// ANCHOR_END: text_experiment

/// Runs every experiment of the first half on the digits and the novel.
pub fn experiment(digits: &Digits, novel: &str, seed: u64, epochs: usize) -> Result<Report> {
    let split = digits.split();
    let mut class_counts = [[0usize; 10]; 3];
    for (s, d) in [&split.train, &split.validation, &split.test]
        .into_iter()
        .enumerate()
    {
        for &y in &d.y {
            class_counts[s][y] += 1;
        }
    }
    Ok(Report {
        class_counts,
        regression: regression(&split)?,
        classification: classification(digits, &split, seed, epochs)?,
        text: text(novel, seed, epochs)?,
        epochs,
    })
}

/// Loads the digits and the novel from `--data DIR` or the shipped `data/`.
pub fn load_data(common: &CommonArgs) -> Result<(Digits, String)> {
    let digits_path = crate::data::digits::file_in(&common.data_dir("digits"))?;
    let digits = Digits::load(&digits_path).context("cannot load the digits")?;
    anyhow::ensure!(
        digits.len() >= 200,
        "{}: {} images are too few for the three splits",
        digits_path.display(),
        digits.len()
    );
    let novel_path = common
        .data_dir("text")
        .join(crate::data::text::SHIPPED_NAME);
    let novel = std::fs::read_to_string(&novel_path)
        .with_context(|| format!("cannot read the novel {}", novel_path.display()))?;
    Ok((digits, novel))
}

// ANCHOR: program
/// The program: load, run every experiment, write figures and tables.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let epochs = common.epochs_or(TrainConfig::default().epochs, 5);
    let run = Run::new(common, &chapter_dir("classical/part1"))?;
    let (digits, novel) = load_data(common)?;
    let report = experiment(&digits, &novel, common.seed, epochs)?;
    let tables = tables(&report);
    for (name, table) in &tables {
        println!("{name}:\n{table}");
    }
    write_outputs(&run, &report, &digits.split(), &tables)
}
// ANCHOR_END: program

/// The Markdown tables, by file name.
pub fn tables(r: &Report) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // Class counts.
    let mut t = String::from("| split |");
    for k in 0..10 {
        let _ = write!(t, " {k} |");
    }
    t.push_str(" total |\n|---|");
    t.push_str(&"---:|".repeat(11));
    t.push('\n');
    for (name, row) in ["train", "validation", "test"].iter().zip(&r.class_counts) {
        let _ = write!(t, "| {name} |");
        for c in row {
            let _ = write!(t, " {c} |");
        }
        let _ = writeln!(t, " {} |", row.iter().sum::<usize>());
    }
    out.push(("class-counts.md", t));
    // Model choice for the end-to-end project.
    let c = &r.classification;
    let best_val = c
        .trials
        .iter()
        .find(|t| t.0 == c.chosen_lambda)
        .map_or(0.0, |t| t.2);
    let mut t = String::from("| model | validation accuracy | test accuracy |\n|---|---:|---:|\n");
    let _ = writeln!(
        t,
        "| always the most common training digit | {} | not scored |",
        pct(c.majority_validation)
    );
    let _ = writeln!(
        t,
        "| nearest class mean (standardised pixels) | {} | not scored |",
        pct(c.centroid_validation)
    );
    let _ = writeln!(
        t,
        "| softmax regression, lambda = {} (chosen) | {} | {} |",
        c.chosen_lambda,
        pct(best_val),
        pct(c.test_accuracy)
    );
    out.push(("models.md", t));
    // Penalties for softmax regression.
    let mut t =
        String::from("| lambda | train accuracy | validation accuracy |\n|---:|---:|---:|\n");
    for (l, a, v) in &c.trials {
        let mark = if *l == c.chosen_lambda {
            " (chosen)"
        } else {
            ""
        };
        let _ = writeln!(t, "| {l}{mark} | {} | {} |", pct(*a), pct(*v));
    }
    let _ = writeln!(
        t,
        "\nSoftmax regression on standardised pixels, SGD with momentum 0.9 (learning rate {}, batch {}), {} epochs. Test accuracy of the chosen model: **{}**.",
        TrainConfig::default().lr,
        TrainConfig::default().batch_size,
        r.epochs,
        pct(c.test_accuracy)
    );
    out.push(("softmax.md", t));
    // Ridge regression.
    let g = &r.regression;
    let mut t = String::from("| lambda | train RMSE | validation RMSE |\n|---:|---:|---:|\n");
    for (l, a, v) in &g.by_lambda {
        let mark = if *l == g.chosen_lambda {
            " (chosen)"
        } else {
            ""
        };
        let _ = writeln!(t, "| {l}{mark} | {a:.4} | {v:.4} |");
    }
    let _ = writeln!(
        t,
        "\nPredicting the training mean: validation RMSE {:.4}. Chosen model on the test split: RMSE **{:.4}** (the mean predictor: {:.4}). Units: pixel intensity, 0..16.",
        g.baseline_rmse.0, g.test_rmse, g.baseline_rmse.1
    );
    out.push(("ridge.md", t));
    let mut t = String::from("| fit | training loss | \n|---|---:|\n");
    let _ = writeln!(t, "| normal equation (Cholesky) | {:.10} |", g.losses.0);
    let _ = writeln!(
        t,
        "| gradient descent, {} steps of size {GD_LR} | {:.10} |",
        g.gd_steps, g.losses.1
    );
    let _ = writeln!(
        t,
        "\nLargest difference between the two fits' parameters: {:.1e}.",
        g.max_param_difference
    );
    out.push(("normal-vs-gd.md", t));
    let mut t = String::from("| lambda | train RMSE | validation RMSE |\n|---:|---:|---:|\n");
    for (l, a, v) in &g.quadratic_by_lambda {
        let mark = if *l == g.quadratic_lambda {
            " (chosen)"
        } else {
            ""
        };
        let _ = writeln!(t, "| {l}{mark} | {a:.4} | {v:.4} |");
    }
    let _ = writeln!(
        t,
        "\n{} features: the 32 top-half pixels and their {} pairwise products (squares included). Chosen model on the test split: RMSE **{:.4}** (the linear model: {:.4}).",
        32 + 32 * 33 / 2,
        32 * 33 / 2,
        g.quadratic_test_rmse,
        g.test_rmse
    );
    out.push(("quadratic.md", t));
    // Metrics.
    let mut t = String::from("| true \\ predicted |");
    for k in 0..10 {
        let _ = write!(t, " {k} |");
    }
    t.push_str("\n|---|");
    t.push_str(&"---:|".repeat(10));
    t.push('\n');
    for (k, row) in c.confusion.iter().enumerate() {
        let _ = write!(t, "| **{k}** |");
        for (j, v) in row.iter().enumerate() {
            if j == k {
                let _ = write!(t, " **{v}** |");
            } else if *v == 0 {
                t.push_str(" · |");
            } else {
                let _ = write!(t, " {v} |");
            }
        }
        t.push('\n');
    }
    out.push(("confusion.md", t));
    let mut t = String::from("| digit | precision | recall | F1 |\n|---|---:|---:|---:|\n");
    for (k, p) in c.per_class.iter().enumerate() {
        let _ = writeln!(
            t,
            "| {k} | {:.3} | {:.3} | {:.3} |",
            p.precision, p.recall, p.f1
        );
    }
    let _ = writeln!(
        t,
        "\nTest accuracy {}; macro-averaged F1 {:.3}.",
        pct(c.test_accuracy),
        c.macro_f1
    );
    out.push(("per-class.md", t));
    let (always_no, acc, prf) = c.binary;
    let mut t = String::from(
        "| classifier | accuracy | precision | recall | F1 |\n|---|---:|---:|---:|---:|\n",
    );
    let _ = writeln!(
        t,
        "| always \"not a {POSITIVE_DIGIT}\" | {} | 0 (none flagged) | 0.000 | 0.000 |",
        pct(always_no)
    );
    let _ = writeln!(
        t,
        "| logistic regression, threshold 1/2 | {} | {:.3} | {:.3} | {:.3} |",
        pct(acc),
        prf.precision,
        prf.recall,
        prf.f1
    );
    let _ = writeln!(
        t,
        "\nValidation split; {} of its images are {POSITIVE_DIGIT}s. Average precision of the logistic scores: {:.3}.",
        pct(c.positive_share),
        c.average_precision
    );
    out.push(("imbalanced.md", t));
    // Text.
    let x = &r.text;
    let mut t =
        String::from("| split | volume I | volume II | volume III |\n|---|---:|---:|---:|\n");
    for (name, row) in ["train", "validation", "test"].iter().zip(&x.counts) {
        let _ = writeln!(t, "| {name} | {} | {} | {} |", row[0], row[1], row[2]);
    }
    let _ = writeln!(
        t,
        "\nVocabulary: {} words (in at least two training passages).",
        x.vocabulary
    );
    out.push(("text-data.md", t));
    let mut t = String::from(
        "| features | lambda | training accuracy | validation accuracy |\n|---|---:|---:|---:|\n",
    );
    let _ = writeln!(
        t,
        "| (most common volume) | | | {} |",
        pct(x.majority_validation)
    );
    for (f, l, ta, a) in &x.trials {
        let mark = if *f == x.chosen.0 && *l == x.chosen.1 {
            " (chosen)"
        } else {
            ""
        };
        let _ = writeln!(t, "| {f}{mark} | {l} | {} | {} |", pct(*ta), pct(*a));
    }
    let _ = writeln!(
        t,
        "\nChosen model on the test chapters: accuracy **{}** (the most common volume: {}).",
        pct(x.test_accuracy.0),
        pct(x.test_accuracy.1)
    );
    out.push(("text-results.md", t));
    let mut t = String::from("| volume | words with the largest weights |\n|---|---|\n");
    for (v, words) in ["I", "II", "III"].iter().zip(&x.top_words) {
        let _ = writeln!(t, "| {v} | {} |", words.join(", "));
    }
    out.push(("text-words.md", t));
    out
}

/// Writes the figures, the tables, `provenance.md` and `results.json`.
pub fn write_outputs(
    run: &Run,
    report: &Report,
    split: &DigitSplits,
    tables: &[(&'static str, String)],
) -> Result<()> {
    // Three training images of each digit: row r holds the r-th image of every digit.
    let mut tiles_pixels = Vec::new();
    for r in 0..3 {
        for k in 0..10 {
            if let Some(i) = split
                .train
                .y
                .iter()
                .enumerate()
                .filter(|(_, y)| **y == k)
                .map(|(i, _)| i)
                .nth(r)
            {
                let px: Vec<f32> = split
                    .train
                    .x
                    .row(i)
                    .iter()
                    .map(|&v| (v / 16.0) as f32)
                    .collect();
                tiles_pixels.push((px, k));
            }
        }
    }
    let tiles: Vec<Tile<'_>> = tiles_pixels
        .iter()
        .map(|(p, k)| Tile {
            pixels: p,
            caption: k.to_string(),
        })
        .collect();
    run.write("digits.svg", image_grid(&tiles, 8, 8, 10, 6)?.as_bytes())?;
    let g = &report.regression;
    let mut curves = Vec::new();
    for (l, points) in &g.curves {
        curves.push(Series::new(
            format!("train, lambda = {l}"),
            points.iter().map(|&(m, t, _)| (m as f64, t)).collect(),
        ));
        curves.push(Series::new(
            format!("validation, lambda = {l}"),
            points.iter().map(|&(m, _, v)| (m as f64, v)).collect(),
        ));
    }
    let chart = line_chart(
        Labels {
            title: "Learning curves: ink in the bottom half from the top half",
            x: "training examples",
            y: "mean squared error",
        },
        &curves,
    )?;
    run.write("learning-curve.svg", chart.as_bytes())?;
    let q = &g.quadratic_curve;
    let chart = line_chart(
        Labels {
            title: "Learning curves with quadratic features",
            x: "training examples",
            y: "mean squared error",
        },
        &[
            Series::new(
                format!("train, lambda = {}", g.quadratic_lambda),
                q.iter().map(|&(m, t, _)| (m as f64, t)).collect(),
            ),
            Series::new(
                format!("validation, lambda = {}", g.quadratic_lambda),
                q.iter().map(|&(m, _, v)| (m as f64, v)).collect(),
            ),
        ],
    )?;
    run.write("learning-curve-quadratic.svg", chart.as_bytes())?;
    let chart = line_chart(
        Labels {
            title: "Ridge regression: error against the penalty",
            x: "log10 lambda",
            y: "root mean squared error",
        },
        &[
            Series::new(
                "train",
                g.by_lambda
                    .iter()
                    .map(|&(l, t, _)| (l.log10(), t))
                    .collect(),
            ),
            Series::new(
                "validation",
                g.by_lambda
                    .iter()
                    .map(|&(l, _, v)| (l.log10(), v))
                    .collect(),
            ),
        ],
    )?;
    run.write("regularisation.svg", chart.as_bytes())?;
    let optimum = g.losses.0;
    let gap: Vec<(f64, f64)> = g
        .gd_history
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64, (l - optimum).max(1e-16).log10()))
        .collect();
    let chart = line_chart(
        Labels {
            title: "Gradient descent approaching the normal equation's loss",
            x: "step",
            y: "log10 (loss - optimal loss)",
        },
        &[Series::new("gradient descent", gap)],
    )?;
    run.write("gd-convergence.svg", chart.as_bytes())?;
    let pr = &report.classification.pr;
    let chart = line_chart(
        Labels {
            title: "Precision against recall: is it a 9? (validation split)",
            x: "recall",
            y: "precision",
        },
        &[
            Series::new(
                "logistic regression",
                pr.iter().map(|p| (p.recall, p.precision)).collect(),
            ),
            Series::new(
                "chance (share of 9s)",
                vec![
                    (0.0, report.classification.positive_share),
                    (1.0, report.classification.positive_share),
                ],
            ),
        ],
    )?;
    run.write("pr-curve.svg", chart.as_bytes())?;
    for (name, table) in tables {
        run.write(name, table.as_bytes())?;
    }
    run.write_record("provenance.md", "results.json", report)?;
    Ok(())
}
