//! The second half of the classical course, run end to end on the 8x8 digits: baselines, the
//! linear and the kernel SVM, a decision tree, a random forest, PCA and LDA, each tuned on the
//! validation split and scored once on the test split; the figures of the SVM, tree, ensemble
//! and dimensionality-reduction chapters, and the course's results table.
//!
//! `cargo run --release --example classical_scoreboard` writes everything into
//! `chapters/classical/`; that program is [`crate::course::run`], which adds the row of the
//! MLP chapter's network to the table (the classical course itself uses no later chapter).

use super::forest::{Forest, ForestConfig, argmax};
use super::lda::Lda;
use super::neighbours::{NearestMean, accuracy, knn_predict};
use super::pca::Pca;
use super::svm::{KernelOvr, KernelSvm, LinearConfig, train_linear, two_moons};
use super::tree::{Criterion, Tree, TreeConfig};
use crate::data::digits::{DigitSplits, Digits};
use crate::loss::argmax_rows;
use crate::plot::{
    GridValues, Labels, Series, Tile, decision_map, image_grid, label_scatter, line_chart,
};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, pct};
use anyhow::{Context, Result};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;

/// The ten digit classes.
pub const CLASSES: usize = 10;

// ANCHOR: row
/// One line of the course's results table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The method, as the table names it.
    pub method: String,
    /// Accuracy on the validation split with the chosen settings, where there was a choice.
    pub validation: Option<f64>,
    /// Accuracy on the held-out test split.
    pub test: f64,
    /// What was chosen on the validation split, and anything else worth knowing.
    pub notes: String,
}

impl Row {
    /// A row from its parts.
    pub fn new(method: &str, validation: Option<f64>, test: f64, notes: impl Into<String>) -> Row {
        Row {
            method: method.to_string(),
            validation,
            test,
            notes: notes.into(),
        }
    }
}

/// The results table in Markdown: one line per row, in the given order.
pub fn results_table(rows: &[Row]) -> String {
    let mut t = String::new();
    let pct = |a: f64| format!("{:.2}%", 100.0 * a);
    let _ = writeln!(
        t,
        "| method | validation accuracy | test accuracy | settings (chosen on validation) |"
    );
    let _ = writeln!(t, "|---|---:|---:|---|");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} |",
            r.method,
            r.validation.map_or("-".to_string(), pct),
            pct(r.test),
            r.notes
        );
    }
    t
}
// ANCHOR_END: row

/// The flags of `cargo run --release --example classical_scoreboard`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "classical_scoreboard",
    about = "Run the second half of the classical ML course on the 8x8 digits and write its figures and tables"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has (`--epochs` sets the linear SVM's passes).
    pub common: CommonArgs,
    /// Trees in the final random forest.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=5000))]
    pub trees: u64,
    /// Boosting rounds tried for each tree depth (the number used is chosen on validation).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=5000))]
    pub rounds: u64,
}

/// The digits and their fixed split: `digits/` in the `--data DIR` folder (holding
/// `digits.csv.gz` or `digits.csv`) or the shipped copy; in `--quick` runs a slice of each split.
pub fn load_splits(common: &CommonArgs) -> Result<DigitSplits> {
    let path = crate::data::digits::file_in(&common.data_dir("digits"))?;
    let digits = Digits::load(&path).context("cannot load the digits")?;
    let mut s = digits.split();
    if common.quick {
        let first = |d: &Digits, n: usize| d.select(&(0..n.min(d.len())).collect::<Vec<_>>());
        s = DigitSplits {
            train: first(&s.train, 300),
            validation: first(&s.validation, 100),
            test: first(&s.test, 100),
        };
    }
    anyhow::ensure!(
        s.train.len() >= 10 && !s.validation.is_empty() && !s.test.is_empty(),
        "the data has too few images for a training, a validation and a test split"
    );
    Ok(s)
}

/// Everything the run measured, for `scoreboard.json` and the tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The course's results table.
    pub rows: Vec<Row>,
    /// Linear SVM: `((lambda, eta_0), validation accuracy)` for each setting tried.
    pub svm_grid: Vec<((f64, f64), f64)>,
    /// Linear SVM: the training loss after each epoch, with the chosen `lambda`.
    pub svm_losses: Vec<f64>,
    /// RBF SVM on digits: `(gamma, C, validation accuracy)` for each setting tried.
    pub rbf_grid: Vec<(f64, f64, f64)>,
    /// Two moons: support vectors, training and test accuracy.
    pub moons: (usize, f64, f64),
    /// Tree: `(criterion, depth, training accuracy, validation accuracy)`.
    pub tree_depths: Vec<(String, usize, f64, f64)>,
    /// Forest: `(max_features, validation accuracy, out-of-bag error)` for each setting tried.
    pub forest_features: Vec<(usize, f64, f64)>,
    /// Forest: `(trees, validation accuracy, out-of-bag accuracy)` as trees are added.
    pub forest_curve: Vec<(usize, f64, f64)>,
    /// t-SNE: the final KL divergence, and the nearest-neighbour agreement of the PCA, LDA and
    /// t-SNE pictures of the test digits.
    pub tsne: (f64, Vec<f64>),
    /// Boosting: `(depth, best number of rounds, validation accuracy there)`.
    pub boosting: Vec<(usize, usize, f64)>,
    /// PCA: the cumulative explained variance of the first 1, 2, ... components.
    pub explained: Vec<f64>,
    /// PCA + k-NN: `(components, validation accuracy)`.
    pub pca_components: Vec<(usize, f64)>,
    /// LDA: `(ridge epsilon, validation accuracy)`.
    pub lda_ridges: Vec<(f64, f64)>,
}

fn scaled(x: &Array2<f64>) -> Array2<f64> {
    x / 16.0
}

/// The first setting with the best score (so ties go to the earlier, simpler choice).
fn best<T: Copy>(scored: &[(T, f64)]) -> (T, f64) {
    let mut top = scored[0];
    for &s in scored {
        if s.1 > top.1 {
            top = s;
        }
    }
    top
}

/// Nearest class mean and k-NN. Returns the rows and the chosen k.
fn baselines(s: &DigitSplits, report: &mut Report) -> usize {
    let ncm = NearestMean::fit(&s.train.x, &s.train.y, CLASSES);
    let val = accuracy(&ncm.predict(&s.validation.x), &s.validation.y);
    let test = accuracy(&ncm.predict(&s.test.x), &s.test.y);
    report.rows.push(Row::new(
        "nearest class mean",
        Some(val),
        test,
        "nothing to choose",
    ));
    let scored: Vec<(usize, f64)> = [1, 3, 5, 7]
        .iter()
        .map(|&k| {
            let p = knn_predict(&s.train.x, &s.train.y, &s.validation.x, k, CLASSES);
            (k, accuracy(&p, &s.validation.y))
        })
        .collect();
    let (k, val) = best(&scored);
    let test = accuracy(
        &knn_predict(&s.train.x, &s.train.y, &s.test.x, k, CLASSES),
        &s.test.y,
    );
    report.rows.push(Row::new(
        "k nearest neighbours",
        Some(val),
        test,
        format!("k = {k} of 1, 3, 5, 7"),
    ));
    k
}

// ANCHOR: svm_experiment
/// The linear SVM: `lambda` chosen on the validation split.
fn linear_svm(s: &DigitSplits, epochs: usize, rng: &mut ChaCha8Rng, report: &mut Report) -> String {
    let (xt, xv, xs) = (
        scaled(&s.train.x),
        scaled(&s.validation.x),
        scaled(&s.test.x),
    );
    let mut tried = Vec::new();
    let mut fits = Vec::new();
    for lambda in [1e-4, 1e-3, 1e-2] {
        for lr in [0.1, 0.3, 1.0] {
            let config = LinearConfig {
                lambda,
                lr,
                epochs,
                ..LinearConfig::default()
            };
            let (svm, losses) = train_linear(&xt, &s.train.y, CLASSES, &config, rng);
            tried.push(((lambda, lr), accuracy(&svm.predict(&xv), &s.validation.y)));
            fits.push((svm, losses));
        }
    }
    let ((lambda, lr), val) = best(&tried);
    let chosen = tried
        .iter()
        .position(|t| t.0 == (lambda, lr))
        .expect("tried");
    let (svm, losses) = &fits[chosen];
    let test = accuracy(&svm.predict(&xs), &s.test.y);
    let train = accuracy(&svm.predict(&xt), &s.train.y);
    report.rows.push(Row::new(
        "linear SVM, one-vs-rest",
        Some(val),
        test,
        format!(
            "lambda = {lambda:e}, eta_0 = {lr}, {epochs} epochs of minibatch subgradient descent"
        ),
    ));
    report.svm_grid = tried.clone();
    report.svm_losses = losses.clone();
    let mut t = String::new();
    let _ = writeln!(t, "| lambda | eta_0 | validation accuracy |");
    let _ = writeln!(t, "|---:|---:|---:|");
    for ((l, eta), a) in &tried {
        let _ = writeln!(t, "| {l:e} | {eta} | {} |", pct(*a));
    }
    let _ = writeln!(
        t,
        "\nChosen: lambda = {lambda:e}, eta_0 = {lr}. Training accuracy {}, final training loss {:.4}, test accuracy {}.",
        pct(train),
        losses.last().copied().unwrap_or(f64::NAN),
        pct(test)
    );
    t
}
// ANCHOR_END: svm_experiment

/// The RBF SVM: on two moons (figure), and one-vs-rest on the digits.
fn kernel_svm(
    s: &DigitSplits,
    quick: bool,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> Result<(String, String)> {
    // Two moons: 100 points per moon to train on, 500 per moon to test on.
    let (x, t) = two_moons(100, 0.2, rng);
    let (xt, tt) = two_moons(500, 0.2, rng);
    let (gamma, c) = (2.0, 1.0);
    let svm = KernelSvm::fit(&x, &t, gamma, c, rng);
    let sign_acc = |f: &ndarray::Array1<f64>, t: &[f64]| {
        f.iter()
            .zip(t)
            .filter(|(f, t)| (**f >= 0.0) == (**t > 0.0))
            .count() as f64
            / t.len() as f64
    };
    let (train_acc, test_acc) = (
        sign_acc(&svm.decision(&x), &t),
        sign_acc(&svm.decision(&xt), &tt),
    );
    report.moons = (svm.support_index.len(), train_acc, test_acc);
    let grid = GridValues::sample((-1.6, 2.6), (-1.2, 1.7), 210, 145, |centres| {
        let pts = Array2::from_shape_fn((centres.len(), 2), |(i, j)| {
            if j == 0 { centres[i].0 } else { centres[i].1 }
        });
        svm.decision(&pts).to_vec()
    });
    let points: Vec<(f64, f64, bool)> = (0..t.len())
        .map(|i| (x[[i, 0]], x[[i, 1]], t[i] > 0.0))
        .collect();
    let rings: Vec<(f64, f64)> = svm
        .support_index
        .iter()
        .map(|&i| (x[[i, 0]], x[[i, 1]]))
        .collect();
    let figure = decision_map(
        Labels {
            title: "RBF SVM on two moons (gamma = 2, C = 1)",
            x: "x1",
            y: "x2",
        },
        &grid,
        &points,
        &rings,
    )?;
    // One-vs-rest on the digits.
    let (xtr, xv, xs) = (
        scaled(&s.train.x),
        scaled(&s.validation.x),
        scaled(&s.test.x),
    );
    let gammas: &[f64] = if quick {
        &[0.05]
    } else {
        &[0.02, 0.05, 0.1, 0.2]
    };
    let cs: &[f64] = if quick { &[10.0] } else { &[1.0, 10.0] };
    let mut tried = Vec::new();
    for &g in gammas {
        for &c in cs {
            let m = KernelOvr::fit(&xtr, &s.train.y, CLASSES, g, c, rng);
            tried.push(((g, c), accuracy(&m.predict(&xv), &s.validation.y)));
        }
    }
    let ((g, c), val) = best(&tried);
    let m = KernelOvr::fit(&xtr, &s.train.y, CLASSES, g, c, rng);
    let test = accuracy(&m.predict(&xs), &s.test.y);
    report.rows.push(Row::new(
        "RBF-kernel SVM, one-vs-rest",
        Some(val),
        test,
        format!(
            "gamma = {g}, C = {c}; {} of {} training images are support vectors",
            m.support_vectors(),
            s.train.len()
        ),
    ));
    report.rbf_grid = tried.iter().map(|&((g, c), a)| (g, c, a)).collect();
    let mut t = String::new();
    let _ = writeln!(t, "| gamma | C | validation accuracy |");
    let _ = writeln!(t, "|---:|---:|---:|");
    for ((g, c), a) in &tried {
        let _ = writeln!(t, "| {g} | {c} | {} |", pct(*a));
    }
    let _ = writeln!(
        t,
        "\nChosen: gamma = {g}, C = {c}: test accuracy {}. Two moons (gamma = 2, C = 1, 200 training points): {} support vectors, training accuracy {}, accuracy on 1,000 fresh points {}.",
        pct(test),
        svm.support_index.len(),
        pct(train_acc),
        pct(test_acc)
    );
    Ok((figure, t))
}

fn pixel_name(j: usize) -> String {
    format!("pixel[row {}, col {}]", j / 8, j % 8)
}

// ANCHOR: tree_experiment
/// The decision tree: criterion and depth chosen on the validation split.
fn decision_tree(
    s: &DigitSplits,
    quick: bool,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> Result<(String, String, String)> {
    let all: Vec<usize> = (0..s.train.len()).collect();
    let depths = if quick { 1..=6 } else { 1..=16 };
    let mut curves = Vec::new();
    let mut tried = Vec::new();
    for criterion in [Criterion::Gini, Criterion::Entropy] {
        let mut train_curve = Vec::new();
        let mut val_curve = Vec::new();
        for depth in depths.clone() {
            let config = TreeConfig {
                criterion,
                max_depth: depth,
                ..TreeConfig::default()
            };
            let tree = Tree::fit(&s.train.x, &s.train.y, &all, CLASSES, &config, rng);
            let train = accuracy(&tree.predict(&s.train.x), &s.train.y);
            let val = accuracy(&tree.predict(&s.validation.x), &s.validation.y);
            train_curve.push((depth as f64, 100.0 * (1.0 - train)));
            val_curve.push((depth as f64, 100.0 * (1.0 - val)));
            tried.push(((criterion, depth), val));
            report
                .tree_depths
                .push((format!("{criterion:?}"), depth, train, val));
        }
        curves.push(Series::new(format!("{criterion:?}, training"), train_curve));
        curves.push(Series::new(format!("{criterion:?}, validation"), val_curve));
    }
    let ((criterion, depth), val) = best(&tried);
    let config = TreeConfig {
        criterion,
        max_depth: depth,
        ..TreeConfig::default()
    };
    let tree = Tree::fit(&s.train.x, &s.train.y, &all, CLASSES, &config, rng);
    let test = accuracy(&tree.predict(&s.test.x), &s.test.y);
    report.rows.push(Row::new(
        "decision tree",
        Some(val),
        test,
        format!(
            "{criterion:?}, depth limit {depth} ({} leaves)",
            tree.leaves()
        ),
    ));
    let figure = line_chart(
        Labels {
            title: "Decision tree on the digits: error by depth limit",
            x: "depth limit",
            y: "error (%)",
        },
        &curves,
    )?;
    let small = Tree::fit(
        &s.train.x,
        &s.train.y,
        &all,
        CLASSES,
        &TreeConfig {
            max_depth: 3,
            ..TreeConfig::default()
        },
        rng,
    );
    let rendering = small.render(&pixel_name, Criterion::Gini);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Chosen on the validation split: {criterion:?}, depth limit {depth}: validation accuracy {}, test accuracy {}; the tree has {} leaves and depth {}. The depth-3 tree above scores {} on validation.",
        pct(val),
        pct(test),
        tree.leaves(),
        tree.depth(),
        pct(accuracy(&small.predict(&s.validation.x), &s.validation.y))
    );
    Ok((figure, rendering, t))
}
// ANCHOR_END: tree_experiment

// ANCHOR: forest_experiment
/// The random forest: `max_features` chosen on the validation split with 100 trees, then a
/// forest of `trees` trees, scored by validation accuracy and out-of-bag error as it grows.
fn random_forest(
    s: &DigitSplits,
    trees: usize,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> Result<(String, String)> {
    let d = s.train.x.ncols();
    let tree = TreeConfig {
        max_depth: 64,
        ..TreeConfig::default()
    };
    let tuning_trees = trees.min(100);
    let mut tried = Vec::new();
    for m in [4, 8, 16, d] {
        let config = ForestConfig {
            trees: tuning_trees,
            tree: TreeConfig {
                max_features: Some(m),
                ..tree
            },
        };
        let forest = Forest::fit(&s.train.x, &s.train.y, CLASSES, &config, rng);
        let val = accuracy(&forest.predict(&s.validation.x), &s.validation.y);
        let (oob, _) = forest.oob_error(&s.train.x, &s.train.y, tuning_trees);
        report.forest_features.push((m, val, oob));
        tried.push((m, val));
    }
    let (m, _) = best(&tried);
    let config = ForestConfig {
        trees,
        tree: TreeConfig {
            max_features: Some(m),
            ..tree
        },
    };
    let forest = Forest::fit(&s.train.x, &s.train.y, CLASSES, &config, rng);
    let bagging = Forest::fit(
        &s.train.x,
        &s.train.y,
        CLASSES,
        &ForestConfig {
            trees,
            tree: TreeConfig {
                max_features: None,
                ..tree
            },
        },
        rng,
    );
    let mut series = Vec::new();
    for (name, f) in [
        (format!("random forest (max_features {m})"), &forest),
        ("bagging (all 64 features)".to_string(), &bagging),
    ] {
        let preds = f.tree_predictions(&s.validation.x);
        let mut val_curve = Vec::new();
        let mut oob_curve = Vec::new();
        for n in 1..=trees {
            let votes = f.votes(&preds, n);
            let hits = votes
                .iter()
                .zip(&s.validation.y)
                .filter(|(v, y)| argmax(v) == **y)
                .count();
            let val = hits as f64 / s.validation.len() as f64;
            let (oob, _) = f.oob_error(&s.train.x, &s.train.y, n);
            val_curve.push((n as f64, 100.0 * (1.0 - val)));
            oob_curve.push((n as f64, 100.0 * oob));
            if std::ptr::eq(f, &forest) {
                report.forest_curve.push((n, val, 1.0 - oob));
            }
        }
        series.push(Series::new(format!("{name}, validation"), val_curve));
        series.push(Series::new(format!("{name}, out-of-bag"), oob_curve));
    }
    let val = accuracy(&forest.predict(&s.validation.x), &s.validation.y);
    let test = accuracy(&forest.predict(&s.test.x), &s.test.y);
    let (oob, scored) = forest.oob_error(&s.train.x, &s.train.y, trees);
    let bag_val = accuracy(&bagging.predict(&s.validation.x), &s.validation.y);
    let bag_test = accuracy(&bagging.predict(&s.test.x), &s.test.y);
    report.rows.push(Row::new(
        "random forest",
        Some(val),
        test,
        format!(
            "{trees} trees, max_features = {m}; out-of-bag error {}",
            pct(oob)
        ),
    ));
    report.rows.push(Row::new(
        "bagged trees",
        Some(bag_val),
        bag_test,
        format!("{trees} trees, all 64 features at every split (for comparison; no choice made)"),
    ));
    let figure = line_chart(
        Labels {
            title: "Ensembles of trees on the digits: error by number of trees",
            x: "trees",
            y: "error (%)",
        },
        &series,
    )?;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| max_features | validation accuracy ({tuning_trees} trees) | out-of-bag error |"
    );
    let _ = writeln!(t, "|---:|---:|---:|");
    for (m, val, oob) in &report.forest_features {
        let _ = writeln!(t, "| {m} | {} | {} |", pct(*val), pct(*oob));
    }
    let _ = writeln!(
        t,
        "\nChosen: max_features = {m}. With {trees} trees: validation accuracy {}, out-of-bag error {} ({scored} of {} training images had out-of-bag votes), test accuracy {}. Bagging with all 64 features: validation {}, test {}.",
        pct(val),
        pct(oob),
        s.train.len(),
        pct(test),
        pct(bag_val),
        pct(bag_test)
    );
    Ok((figure, t))
}
// ANCHOR_END: forest_experiment

// ANCHOR: tsne_experiment
/// Exact t-SNE of all the digits (the labels are not used), drawn like the PCA and LDA scatters,
/// and the three pictures compared by how often a test digit's nearest other test digit in the
/// picture has its class: `pca` and `lda` are the test digits as the PCA and LDA scatters draw
/// them (`[test, 2]`). Nothing is chosen here.
fn tsne(
    s: &DigitSplits,
    quick: bool,
    seed: u64,
    (pca, lda): (&Array2<f64>, &Array2<f64>),
    report: &mut Report,
) -> Result<(String, String)> {
    use super::tsne::{TsneConfig, embed, neighbour_agreement};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(5);
    let all = ndarray::concatenate(
        Axis(0),
        &[s.train.x.view(), s.validation.x.view(), s.test.x.view()],
    )?;
    let config = TsneConfig {
        iterations: if quick { 60 } else { 1000 },
        ..TsneConfig::default()
    };
    let (map, kl) = embed(&all, &config, &mut rng);
    let first_test = s.train.len() + s.validation.len();
    let test_map = map.slice(ndarray::s![first_test.., ..]).to_owned();
    let agreement = [
        (
            "PCA, first two components",
            neighbour_agreement(pca, &s.test.y),
        ),
        (
            "LDA, first two discriminants",
            neighbour_agreement(lda, &s.test.y),
        ),
        ("t-SNE", neighbour_agreement(&test_map, &s.test.y)),
    ];
    report.tsne = (kl, agreement.iter().map(|a| a.1).collect());
    let y: Vec<usize> = [&s.train.y, &s.validation.y, &s.test.y]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let points: Vec<(f64, f64, usize)> = (0..y.len())
        .map(|i| (map[[i, 0]], map[[i, 1]], y[i]))
        .collect();
    let names: Vec<String> = (0..CLASSES).map(|c| c.to_string()).collect();
    let scatter = label_scatter(
        Labels {
            title: "All 1,797 digits mapped by t-SNE (perplexity 30)",
            x: "t-SNE 1",
            y: "t-SNE 2",
        },
        &points,
        &names,
    )?;
    let mut t = Table::new(
        &[
            "two-dimensional picture",
            "test digits whose nearest test digit shares their class",
        ],
        "lr",
    );
    for (name, a) in agreement {
        t.row([name.to_string(), pct(a)]);
    }
    let text = format!(
        "{t}\nt-SNE of {} images: perplexity {}, {} steps (early exaggeration {} for the first {}), final KL divergence {:.3} nats.\n",
        y.len(),
        config.perplexity,
        config.iterations,
        config.exaggeration,
        config.exaggeration_steps,
        kl
    );
    Ok((scatter, text))
}
// ANCHOR_END: tsne_experiment

// ANCHOR: boosting_experiment
/// Gradient-boosted trees: for each depth, up to `rounds` rounds with learning rate 0.1, the
/// validation accuracy after every round; the depth and the number of rounds chosen together on
/// validation (the best accuracy; ties go to the shallower depth and the fewer rounds), then the
/// test split scored with the chosen ensemble once.
fn gradient_boosting(
    s: &DigitSplits,
    rounds: usize,
    report: &mut Report,
) -> Result<(String, String)> {
    use super::boosting::{BoostConfig, Boosted, add_round};
    let mut series = Vec::new();
    let mut chosen: Option<(usize, usize, f64, Boosted)> = None;
    for depth in [2, 3, 4] {
        let config = BoostConfig {
            rounds,
            max_depth: depth,
            ..BoostConfig::default()
        };
        // Validation scores updated round by round with only the newest trees.
        let mut val_scores = Array2::<f64>::zeros((s.validation.len(), CLASSES));
        let mut curve = Vec::with_capacity(rounds);
        let model = Boosted::fit(&s.train.x, &s.train.y, CLASSES, &config, |round, m| {
            let newest = m.rounds.last().expect("a round was just added");
            add_round(newest, m.learning_rate, &s.validation.x, &mut val_scores);
            let val = accuracy(&crate::loss::argmax_rows(&val_scores), &s.validation.y);
            curve.push((round, val));
        });
        series.push(Series::new(
            format!("depth {depth}"),
            curve
                .iter()
                .map(|&(r, v)| (r as f64, 100.0 * (1.0 - v)))
                .collect(),
        ));
        let (best_round, best_val) = best(&curve);
        report.boosting.push((depth, best_round, best_val));
        if chosen.as_ref().is_none_or(|c| best_val > c.2) {
            chosen = Some((depth, best_round, best_val, model));
        }
    }
    let (depth, used, val, model) = chosen.expect("three depths tried");
    let test = accuracy(
        &crate::loss::argmax_rows(&model.scores(&s.test.x, used)),
        &s.test.y,
    );
    report.rows.push(Row::new(
        "gradient-boosted trees",
        Some(val),
        test,
        format!(
            "depth {depth}, {used} rounds (chosen on validation), learning rate 0.1, second-order leaves with L2 penalty 1"
        ),
    ));
    let figure = line_chart(
        Labels {
            title: "Gradient-boosted trees on the digits: validation error by round",
            x: "rounds (each adds one tree per class)",
            y: "validation error (%)",
        },
        &series,
    )?;
    let mut t = Table::new(
        &[
            "tree depth",
            "best number of rounds",
            "validation accuracy there",
        ],
        "rrr",
    );
    for (d, r, v) in &report.boosting {
        t.row([d.to_string(), r.to_string(), pct(*v)]);
    }
    let text = format!(
        "{t}\nChosen: depth {depth} with {used} rounds ({} trees). Test accuracy {}.\n",
        used * CLASSES,
        pct(test)
    );
    Ok((figure, text))
}
// ANCHOR_END: boosting_experiment

/// Figures of the dimensionality-reduction chapter, and PCA + k-NN.
struct PcaFigures {
    scatter: String,
    /// The test split on the first two components, `[test, 2]`: the points of `scatter`.
    test_points: Array2<f64>,
    variance: String,
    reconstructions: String,
    table: String,
}

// ANCHOR: pca_experiment
/// PCA fitted on the training split: the test split in two dimensions, the explained variance,
/// reconstructions, and k-NN on the first components (their number chosen on validation).
fn pca(s: &DigitSplits, k: usize, rng: &mut ChaCha8Rng, report: &mut Report) -> Result<PcaFigures> {
    let pca = Pca::fit(&s.train.x, s.train.x.ncols(), rng);
    let z_test = pca.transform(&s.test.x);
    let points: Vec<(f64, f64, usize)> = (0..s.test.len())
        .map(|i| (z_test[[i, 0]], z_test[[i, 1]], s.test.y[i]))
        .collect();
    let names: Vec<String> = (0..CLASSES).map(|c| c.to_string()).collect();
    let scatter = label_scatter(
        Labels {
            title: "Test digits on the first two principal components",
            x: "component 1",
            y: "component 2",
        },
        &points,
        &names,
    )?;
    report.explained = pca.cumulative_explained();
    let variance = line_chart(
        Labels {
            title: "PCA of the digits: variance left out by the first k components",
            x: "number of components",
            y: "share of the variance not explained (%)",
        },
        &[Series::per_epoch(
            "left out",
            &report
                .explained
                .iter()
                .map(|v| 100.0 * (1.0 - v))
                .collect::<Vec<_>>(),
        )],
    )?;
    // One test image of each class, reconstructed from k components.
    let picks: Vec<usize> = (0..CLASSES)
        .filter_map(|c| s.test.y.iter().position(|&y| y == c))
        .collect();
    let ks = [1, 2, 5, 10, 20, 40];
    let mut rows: Vec<(String, Array2<f64>)> =
        vec![("original".to_string(), s.test.x.select(Axis(0), &picks))];
    let z = z_test.select(Axis(0), &picks);
    for &kk in &ks {
        rows.push((format!("k={kk}"), pca.reconstruct(&z, kk)));
    }
    let pixels: Vec<Vec<f32>> = rows
        .iter()
        .flat_map(|(_, imgs)| {
            imgs.rows()
                .into_iter()
                .map(|r| r.iter().map(|&v| (v / 16.0) as f32).collect::<Vec<f32>>())
                .collect::<Vec<_>>()
        })
        .collect();
    let tiles: Vec<Tile<'_>> = pixels
        .iter()
        .enumerate()
        .map(|(i, p)| Tile {
            pixels: p,
            caption: rows[i / picks.len()].0.clone(),
        })
        .collect();
    let reconstructions = image_grid(&tiles, 8, 8, picks.len().max(1), 6)?;
    // PCA + k-NN.
    let zt = pca.transform(&s.train.x);
    let zv = pca.transform(&s.validation.x);
    let mut tried = Vec::new();
    for c in [2, 5, 10, 20, 30, 40] {
        let cut = |z: &Array2<f64>| z.slice(ndarray::s![.., ..c]).to_owned();
        let p = knn_predict(&cut(&zt), &s.train.y, &cut(&zv), k, CLASSES);
        tried.push((c, accuracy(&p, &s.validation.y)));
    }
    report.pca_components = tried.clone();
    let (c, val) = best(&tried);
    let cut = |z: &Array2<f64>| z.slice(ndarray::s![.., ..c]).to_owned();
    let test = accuracy(
        &knn_predict(&cut(&zt), &s.train.y, &cut(&z_test), k, CLASSES),
        &s.test.y,
    );
    report.rows.push(Row::new(
        "PCA, then k nearest neighbours",
        Some(val),
        test,
        format!("{c} of 2, 5, 10, 20, 30, 40 components; k = {k} (from the k-NN row)"),
    ));
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| components | share of variance | k-NN validation accuracy |"
    );
    let _ = writeln!(t, "|---:|---:|---:|");
    for (c, a) in &tried {
        let _ = writeln!(
            t,
            "| {c} | {} | {} |",
            pct(report.explained[c - 1]),
            pct(*a)
        );
    }
    let _ = writeln!(
        t,
        "\nChosen: {c} components, test accuracy {}. The first two components explain {} of the variance.",
        pct(test),
        pct(report.explained[1])
    );
    Ok(PcaFigures {
        scatter,
        test_points: z_test.slice(ndarray::s![.., ..2]).to_owned(),
        variance,
        reconstructions,
        table: t,
    })
}
// ANCHOR_END: pca_experiment

// ANCHOR: lda_experiment
/// LDA fitted on the training split: the test digits on the first two discriminants, and the
/// nearest class mean in all nine (the ridge chosen on validation).
fn lda(
    s: &DigitSplits,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> Result<(String, String, Array2<f64>)> {
    let k = CLASSES - 1;
    let mut tried = Vec::new();
    for epsilon in [1e-3, 1e-2, 1e-1] {
        let lda = Lda::fit(&s.train.x, &s.train.y, CLASSES, k, epsilon, rng);
        tried.push((
            epsilon,
            accuracy(&lda.predict(&s.validation.x), &s.validation.y),
        ));
    }
    report.lda_ridges = tried.clone();
    let (epsilon, val) = best(&tried);
    let lda = Lda::fit(&s.train.x, &s.train.y, CLASSES, k, epsilon, rng);
    let test = accuracy(&lda.predict(&s.test.x), &s.test.y);
    report.rows.push(Row::new(
        "LDA, then nearest class mean",
        Some(val),
        test,
        format!("{k} discriminants, ridge epsilon = {epsilon} of 0.001, 0.01, 0.1"),
    ));
    let z = lda.transform(&s.test.x);
    let points: Vec<(f64, f64, usize)> = (0..s.test.len())
        .map(|i| (z[[i, 0]], z[[i, 1]], s.test.y[i]))
        .collect();
    let names: Vec<String> = (0..CLASSES).map(|c| c.to_string()).collect();
    let scatter = label_scatter(
        Labels {
            title: "Test digits on the first two linear discriminants",
            x: "discriminant 1",
            y: "discriminant 2",
        },
        &points,
        &names,
    )?;
    let mut t = String::new();
    let _ = writeln!(t, "| ridge epsilon | validation accuracy |");
    let _ = writeln!(t, "|---:|---:|");
    for (e, a) in &tried {
        let _ = writeln!(t, "| {e} | {} |", pct(*a));
    }
    let _ = writeln!(
        t,
        "\nChosen: epsilon = {epsilon}, test accuracy {} (nearest class mean in the {k} discriminants).",
        pct(test)
    );
    Ok((scatter, t, z.slice(ndarray::s![.., ..2]).to_owned()))
}
// ANCHOR_END: lda_experiment

/// The row the table borrows from the first half of the course, trained on the same splits:
/// softmax regression, its penalty chosen on validation.
fn softmax_row(s: &DigitSplits, quick: bool, seed: u64, report: &mut Report) -> Result<()> {
    use super::Standardizer;
    use super::logistic::{LAMBDAS, TrainConfig, train_softmax};
    let scaler = Standardizer::fit(&s.train.x);
    let (xt, xv, xs) = (
        scaler.transform(&s.train.x),
        scaler.transform(&s.validation.x),
        scaler.transform(&s.test.x),
    );
    let epochs = if quick {
        5
    } else {
        TrainConfig::default().epochs
    };
    let mut best: Option<(f64, f64, f64)> = None;
    for &lambda in &LAMBDAS {
        let config = TrainConfig {
            lambda,
            epochs,
            ..TrainConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (model, _) = train_softmax(&xt, &s.train.y, 10, &config, &mut rng)?;
        let val = accuracy(&argmax_rows(&model.logits(&xv)), &s.validation.y);
        if best.is_none_or(|(v, _, _)| val >= v) {
            let test = accuracy(&argmax_rows(&model.logits(&xs)), &s.test.y);
            best = Some((val, lambda, test));
        }
    }
    let (val, lambda, test) = best.expect("at least one penalty");
    report.rows.push(Row::new(
        "softmax regression (first half)",
        Some(val),
        test,
        format!("L2 penalty {lambda}, {epochs} epochs of SGD with momentum, standardised pixels"),
    ));
    Ok(())
}

// ANCHOR: program
/// The program: every method, its figures and tables, and the course's results table.
///
/// `later_rows` adds the rows of methods from later in the book, trained on the same splits
/// (called with the splits and the common flags, after the classical rows): the classical
/// course cannot use a reimplementation chapter, so [`crate::course::run`], which comes after
/// the chapters it borrows from, passes them in.
pub fn run_with(
    cli: Cli,
    later_rows: impl FnOnce(&DigitSplits, &CommonArgs) -> Result<Vec<Row>>,
) -> Result<()> {
    let common = &cli.common;
    let run = Run::new(common, &chapter_dir("classical"))?;
    let s = load_splits(common)?;
    let epochs = common.epochs_or(100, 3);
    let trees = if common.quick {
        (cli.trees as usize).min(10)
    } else {
        cli.trees as usize
    };
    let mut rng = ChaCha8Rng::seed_from_u64(common.seed);
    let mut report = Report::default();
    let progress = run.progress(9, "classical");
    let k = baselines(&s, &mut report);
    progress.inc(1);
    let svm_table = linear_svm(&s, epochs, &mut rng, &mut report);
    progress.inc(1);
    let (moons, rbf_table) = kernel_svm(&s, common.quick, &mut rng, &mut report)?;
    progress.inc(1);
    let (depth_figure, rendering, tree_table) =
        decision_tree(&s, common.quick, &mut rng, &mut report)?;
    progress.inc(1);
    let (forest_figure, forest_table) = random_forest(&s, trees, &mut rng, &mut report)?;
    progress.inc(1);
    let rounds = if common.quick { 5 } else { cli.rounds as usize };
    let (boost_figure, boost_table) = gradient_boosting(&s, rounds, &mut report)?;
    progress.inc(1);
    let pca = pca(&s, k, &mut rng, &mut report)?;
    progress.inc(1);
    let (lda_scatter, lda_table, lda_points) = lda(&s, &mut rng, &mut report)?;
    progress.inc(1);
    let pictures = (&pca.test_points, &lda_points);
    let (tsne_scatter, tsne_table) = tsne(&s, common.quick, common.seed, pictures, &mut report)?;
    softmax_row(&s, common.quick, common.seed, &mut report)?;
    report.rows.extend(later_rows(&s, common)?);
    progress.finish_and_clear();
    let table = results_table(&report.rows);
    print!("{table}");
    run.write("svm-linear.md", svm_table.as_bytes())?;
    run.write("svm-rbf.md", rbf_table.as_bytes())?;
    run.write("svm-moons.svg", moons.as_bytes())?;
    run.write("tree-depth.svg", depth_figure.as_bytes())?;
    run.write("tree-depth3.txt", rendering.as_bytes())?;
    run.write("tree-results.md", tree_table.as_bytes())?;
    run.write("forest-trees.svg", forest_figure.as_bytes())?;
    run.write("forest-results.md", forest_table.as_bytes())?;
    run.write("boosting-rounds.svg", boost_figure.as_bytes())?;
    run.write("boosting-results.md", boost_table.as_bytes())?;
    run.write("pca-scatter.svg", pca.scatter.as_bytes())?;
    run.write("pca-variance.svg", pca.variance.as_bytes())?;
    run.write("pca-reconstructions.svg", pca.reconstructions.as_bytes())?;
    run.write("pca-results.md", pca.table.as_bytes())?;
    run.write("lda-scatter.svg", lda_scatter.as_bytes())?;
    run.write("lda-results.md", lda_table.as_bytes())?;
    run.write("tsne-scatter.svg", tsne_scatter.as_bytes())?;
    run.write("tsne-results.md", tsne_table.as_bytes())?;
    run.write("course-results.md", table.as_bytes())?;
    run.write_record("scoreboard-provenance.md", "scoreboard.json", &report)?;
    Ok(())
}
// ANCHOR_END: program

/// The names of every file [`run_with`] writes.
pub const OUTPUTS: [&str; 21] = [
    "svm-linear.md",
    "svm-rbf.md",
    "svm-moons.svg",
    "tree-depth.svg",
    "tree-depth3.txt",
    "tree-results.md",
    "forest-trees.svg",
    "forest-results.md",
    "boosting-rounds.svg",
    "boosting-results.md",
    "pca-scatter.svg",
    "pca-variance.svg",
    "pca-reconstructions.svg",
    "pca-results.md",
    "lda-scatter.svg",
    "lda-results.md",
    "tsne-scatter.svg",
    "tsne-results.md",
    "course-results.md",
    "scoreboard-provenance.md",
    "scoreboard.json",
];
