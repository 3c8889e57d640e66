//! A second end-to-end project, on messy data: the Palmer penguins.
//!
//! The digits have no missing value, no categorical feature and no reason to stratify; this
//! table has all three. The project predicts a penguin's species (and, as a harder question, its
//! sex) from what was measured, with the steps a real project needs:
//!
//! 1. a *pipeline* that turns raw rows into a feature matrix: missing measurements replaced by
//!    the training median, a missing sex by the training majority, categories one-hot encoded,
//!    every column standardised. Everything it learns (medians, majority, means, scales) is
//!    learnt from the rows it is fitted on, and it is fitted on training folds only;
//! 2. a *stratified* split: 20% of the rows, with the species proportions of the whole table,
//!    set aside as the test set before anything else happens;
//! 3. a *grid search with cross-validation*: every setting of three model families scored by
//!    stratified 5-fold cross-validation on the training rows, the pipeline refitted inside
//!    every fold;
//! 4. the chosen setting refitted on all training rows and scored on the test set, once.

use super::Standardizer;
use super::cv::{CvScore, Fold, cross_validate, stratified_kfold};
use super::logistic::{TrainConfig, train_softmax};
use super::neighbours::{accuracy, knn_predict};
use super::tree::{Tree, TreeConfig};
use crate::data::penguins::{self, ISLANDS, MEASUREMENTS, Penguin, SEXES, SPECIES};
use crate::loss::argmax_rows;
use crate::plot::{Labels, label_scatter};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, median, pct};
use anyhow::{Context, Result};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// What is predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Target {
    /// The species, from island, sex and the four measurements (all 344 rows).
    Species,
    /// The sex, from species, island and the four measurements (the rows whose sex was
    /// recorded: a row without a label can be neither trained on nor scored).
    Sex,
}

impl Target {
    /// The label of `p`, if it has one.
    pub fn label(self, p: &Penguin) -> Option<usize> {
        match self {
            Target::Species => Some(p.species),
            Target::Sex => p.sex,
        }
    }

    /// The number of classes.
    pub fn classes(self) -> usize {
        match self {
            Target::Species => SPECIES.len(),
            Target::Sex => SEXES.len(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Species => "species",
            Target::Sex => "sex",
        }
    }
}

// ANCHOR: pipeline
/// Raw rows to features: imputation, one-hot encoding and standardisation, each learnt from the
/// rows the pipeline is fitted on.
#[derive(Clone, Debug)]
pub struct Pipeline {
    target: Target,
    /// The median of each measurement over the fitted rows that have it.
    pub medians: [f64; 4],
    /// The most common recorded sex among the fitted rows (used when predicting species).
    pub majority_sex: usize,
    scaler: Standardizer,
}

impl Pipeline {
    /// Learns the imputation values and the scaling from `rows`.
    pub fn fit(rows: &[&Penguin], target: Target) -> Pipeline {
        let mut medians = [0.0; 4];
        for (k, m) in medians.iter_mut().enumerate() {
            let mut seen: Vec<f64> = rows.iter().filter_map(|p| p.measurements[k]).collect();
            *m = median(&mut seen).unwrap_or(0.0);
        }
        let females = rows.iter().filter(|p| p.sex == Some(0)).count();
        let males = rows.iter().filter(|p| p.sex == Some(1)).count();
        let majority_sex = usize::from(males > females);
        let raw = encode(target, &medians, majority_sex, rows);
        Pipeline {
            target,
            medians,
            majority_sex,
            scaler: Standardizer::fit(&raw),
        }
    }

    /// The feature matrix of `rows`: imputed and one-hot encoded, then scaled.
    pub fn transform(&self, rows: &[&Penguin]) -> Array2<f64> {
        self.scaler.transform(&self.raw(rows))
    }

    /// The names of the columns [`transform`](Self::transform) returns.
    pub fn columns(&self) -> Vec<String> {
        columns(self.target)
    }

    /// Imputed and one-hot encoded, before scaling.
    fn raw(&self, rows: &[&Penguin]) -> Array2<f64> {
        encode(self.target, &self.medians, self.majority_sex, rows)
    }
}

/// The columns of `target`'s features, in order.
fn columns(target: Target) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if target == Target::Sex {
        names.extend(SPECIES.iter().map(|s| format!("species = {s}")));
    }
    names.extend(ISLANDS.iter().map(|s| format!("island = {s}")));
    if target == Target::Species {
        names.extend(SEXES.iter().map(|s| format!("sex = {s}")));
    }
    names.extend(MEASUREMENTS.iter().map(|s| s.to_string()));
    names
}

/// `rows` imputed with `medians` and `majority_sex` and one-hot encoded, in the order of
/// [`columns`].
fn encode(
    target: Target,
    medians: &[f64; 4],
    majority_sex: usize,
    rows: &[&Penguin],
) -> Array2<f64> {
    let width = columns(target).len();
    let mut x = Array2::zeros((rows.len(), width));
    for (mut row, p) in x.rows_mut().into_iter().zip(rows) {
        let mut at = 0;
        let mut one_hot = |row: &mut ndarray::ArrayViewMut1<f64>, value: usize, n: usize| {
            row[at + value] = 1.0;
            at += n;
        };
        if target == Target::Sex {
            one_hot(&mut row, p.species, SPECIES.len());
        }
        one_hot(&mut row, p.island, ISLANDS.len());
        if target == Target::Species {
            one_hot(&mut row, p.sex.unwrap_or(majority_sex), SEXES.len());
        }
        for k in 0..4 {
            row[width - 4 + k] = p.measurements[k].unwrap_or(medians[k]);
        }
    }
    x
}
// ANCHOR_END: pipeline

// ANCHOR: models
/// One setting of one model family in the grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Model {
    /// Softmax regression with this L2 penalty.
    Softmax(f64),
    /// k nearest neighbours with this k.
    Knn(usize),
    /// A decision tree (Gini) of at most this depth.
    Tree(usize),
}

impl Model {
    /// How the tables name it.
    pub fn describe(&self) -> String {
        match self {
            Model::Softmax(l) => format!("softmax regression, L2 penalty {l}"),
            Model::Knn(k) => format!("{k}-nearest neighbours"),
            Model::Tree(d) => format!("decision tree, depth at most {d}"),
        }
    }

    /// Fits the pipeline and the model on `train`, and predicts `score`'s labels.
    pub fn fit_predict(
        &self,
        target: Target,
        train: &[&Penguin],
        score: &[&Penguin],
        epochs: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<usize>> {
        let pipeline = Pipeline::fit(train, target);
        let (x, xs) = (pipeline.transform(train), pipeline.transform(score));
        let y = labels(target, train);
        let classes = target.classes();
        Ok(match *self {
            Model::Softmax(lambda) => {
                let config = TrainConfig {
                    lambda,
                    epochs,
                    ..TrainConfig::default()
                };
                let (model, _) = train_softmax(&x, &y, classes, &config, rng)?;
                argmax_rows(&model.logits(&xs))
            }
            Model::Knn(k) => knn_predict(&x, &y, &xs, k.min(y.len()), classes),
            Model::Tree(max_depth) => {
                let config = TreeConfig {
                    max_depth,
                    ..TreeConfig::default()
                };
                let all: Vec<usize> = (0..y.len()).collect();
                Tree::fit(&x, &y, &all, classes, &config, rng).predict(&xs)
            }
        })
    }
}

/// The grid searched: simpler settings first, since ties go to the earlier one.
pub fn grid(quick: bool) -> Vec<Model> {
    if quick {
        return vec![Model::Softmax(1e-2), Model::Knn(5), Model::Tree(3)];
    }
    let mut grid: Vec<Model> = [1.0, 0.1, 0.01, 0.001].map(Model::Softmax).to_vec();
    grid.extend([15, 9, 5, 3, 1].map(Model::Knn));
    grid.extend([1, 2, 3, 4, 6].map(Model::Tree));
    grid
}
// ANCHOR_END: models

fn labels(target: Target, rows: &[&Penguin]) -> Vec<usize> {
    rows.iter()
        .map(|p| target.label(p).expect("only labelled rows are used"))
        .collect()
}

fn pick<'a>(rows: &[&'a Penguin], idx: &[usize]) -> Vec<&'a Penguin> {
    idx.iter().map(|&i| rows[i]).collect()
}

/// One setting's cross-validated accuracy.
#[derive(Clone, Debug, Serialize)]
pub struct GridRow {
    /// The setting.
    pub model: Model,
    /// Its accuracy on each of the five folds, with their mean and spread.
    pub cv: CvScore,
}

/// One target's project, start to finish.
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    /// What was predicted.
    pub target: Target,
    /// Labelled rows, training rows and test rows.
    pub sizes: (usize, usize, usize),
    /// Every setting of the grid, in grid order.
    pub grid: Vec<GridRow>,
    /// The index into `grid` of the chosen setting (the highest mean; ties to the earlier).
    pub chosen: usize,
    /// The chosen setting, refitted on every training row, on the test rows.
    pub test_accuracy: f64,
    /// Always predicting the training rows' most common class, on the test rows.
    pub majority_accuracy: f64,
}

// ANCHOR: project
/// Runs the project for `target`: a stratified test split, the grid scored by stratified
/// 5-fold cross-validation on the training rows, the chosen setting scored on the test rows.
pub fn project(table: &[Penguin], target: Target, quick: bool, seed: u64) -> Result<Project> {
    let rows: Vec<&Penguin> = table.iter().filter(|p| target.label(p).is_some()).collect();
    let y = labels(target, &rows);
    anyhow::ensure!(
        (0..target.classes()).all(|c| y.iter().filter(|&&l| l == c).count() >= 10),
        "too few penguins of some {} for a stratified split and 5 folds",
        target.name()
    );
    // The test split: one stratified fifth, set aside before anything is fitted.
    let mut split_rng = ChaCha8Rng::seed_from_u64(seed);
    let Fold {
        train: train_idx,
        validation: test_idx,
    } = stratified_kfold(&y, 5, &mut split_rng).swap_remove(0);
    let (train, test) = (pick(&rows, &train_idx), pick(&rows, &test_idx));
    let train_y = labels(target, &train);
    let folds = stratified_kfold(&train_y, 5, &mut split_rng);
    let epochs = if quick { 10 } else { 100 };
    let mut grid = Vec::new();
    for model in self::grid(quick) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let mut failure = None;
        let cv = cross_validate(&folds, |fold| {
            let (fit, score) = (pick(&train, &fold.train), pick(&train, &fold.validation));
            match model.fit_predict(target, &fit, &score, epochs, &mut rng) {
                Ok(predicted) => accuracy(&predicted, &labels(target, &score)),
                Err(e) => {
                    failure.get_or_insert(e);
                    f64::NAN
                }
            }
        });
        if let Some(e) = failure {
            return Err(e.context(format!("cross-validating {}", model.describe())));
        }
        grid.push(GridRow { model, cv });
    }
    let chosen = (0..grid.len()).fold(0, |best, i| {
        if grid[i].cv.mean > grid[best].cv.mean {
            i
        } else {
            best
        }
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2);
    let predicted = grid[chosen]
        .model
        .fit_predict(target, &train, &test, epochs, &mut rng)?;
    let test_y = labels(target, &test);
    let majority = super::forest::argmax(
        &(0..target.classes())
            .map(|c| train_y.iter().filter(|&&l| l == c).count())
            .collect::<Vec<_>>(),
    );
    Ok(Project {
        target,
        sizes: (rows.len(), train.len(), test.len()),
        test_accuracy: accuracy(&predicted, &test_y),
        majority_accuracy: accuracy(&vec![majority; test_y.len()], &test_y),
        grid,
        chosen,
    })
}
// ANCHOR_END: project

/// The flags of `cargo run --release --example penguins`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "penguins",
    about = "The classical course's second end-to-end project: the Palmer penguins, with missing values, categories, a stratified split and a cross-validated grid search"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has (`--epochs` is refused: nothing here is tuned by it).
    pub common: CommonArgs,
    /// Also rerun both projects with the split seeds `1..=N` (the whole project, from the test
    /// split on, once per seed) and write `penguins-seeds.md`: how far one test score of 69
    /// penguins is from the cross-validated estimate, seed to seed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub splits: u64,
}

/// One split seed's outcome: `(seed, [(CV accuracy of the chosen setting, test accuracy)] per
/// target)`.
pub type SeedRow = (u64, Vec<(f64, f64)>);

// ANCHOR: seeds
/// Reruns the projects with each split seed in `seeds`; returns the table and its rows.
pub fn seeds_table(
    table: &[Penguin],
    targets: &[Target],
    quick: bool,
    seeds: &[u64],
) -> Result<(String, Vec<SeedRow>)> {
    let mut rows = Vec::new();
    for &seed in seeds {
        let mut outcome = Vec::new();
        for &target in targets {
            let p = project(table, target, quick, seed)?;
            outcome.push((p.grid[p.chosen].cv.mean, p.test_accuracy));
        }
        rows.push((seed, outcome));
    }
    let mut header = vec!["split seed".to_string()];
    for t in targets {
        header.push(format!("{}: CV accuracy (chosen)", t.name()));
        header.push(format!("{}: test accuracy", t.name()));
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header, &format!("r{}", "r".repeat(2 * targets.len())));
    for (seed, outcome) in &rows {
        let mut cells = vec![seed.to_string()];
        for (cv, test) in outcome {
            cells.push(pct(*cv));
            cells.push(pct(*test));
        }
        t.row(cells);
    }
    let n = rows.len().max(1) as f64;
    let mut mean = vec!["mean".to_string()];
    for k in 0..targets.len() {
        mean.push(pct(rows.iter().map(|r| r.1[k].0).sum::<f64>() / n));
        mean.push(pct(rows.iter().map(|r| r.1[k].1).sum::<f64>() / n));
    }
    t.row(mean);
    Ok((t.to_string(), rows))
}
// ANCHOR_END: seeds

/// Everything the run measured, for `penguins.json` and the tests.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Rows in the table, and rows missing each column's value (measurements, then sex).
    pub missing: (usize, [usize; 5]),
    /// One project per target.
    pub projects: Vec<Project>,
    /// The projects rerun with split seeds `1..=splits`.
    pub seeds: Vec<SeedRow>,
}

fn missing_table(table: &[Penguin]) -> (String, (usize, [usize; 5])) {
    let mut counts = [0; 5];
    for p in table {
        for (count, m) in counts.iter_mut().zip(&p.measurements) {
            *count += usize::from(m.is_none());
        }
        counts[4] += usize::from(p.sex.is_none());
    }
    let mut t = Table::new(&["column", "missing", "filled in with"], "lrl");
    for (k, name) in MEASUREMENTS.iter().enumerate() {
        t.row([
            name.to_string(),
            counts[k].to_string(),
            "the training median".into(),
        ]);
    }
    t.row([
        "sex".to_string(),
        counts[4].to_string(),
        "the training majority (species task); row dropped (sex task)".into(),
    ]);
    let all_missing = table
        .iter()
        .filter(|p| p.measurements.iter().all(Option::is_none))
        .count();
    let species: Vec<String> = SPECIES
        .iter()
        .enumerate()
        .map(|(c, s)| format!("{s} {}", table.iter().filter(|p| p.species == c).count()))
        .collect();
    let text = format!(
        "{t}\n{} penguins: {}. {all_missing} rows have no measurement at all.\n",
        table.len(),
        species.join(", ")
    );
    (text, (table.len(), counts))
}

/// The grid's table: one row per setting, the cross-validated accuracy for each target.
pub fn grid_table(projects: &[Project]) -> String {
    let mut header = vec!["setting".to_string()];
    header.extend(
        projects
            .iter()
            .map(|p| format!("{}: CV accuracy", p.target.name())),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header, &format!("l{}", "r".repeat(projects.len())));
    for (i, row) in projects[0].grid.iter().enumerate() {
        let mut cells = vec![row.model.describe()];
        for p in projects {
            let cv = &p.grid[i].cv;
            let mark = if p.chosen == i { " (chosen)" } else { "" };
            cells.push(format!("{} ± {}{mark}", pct(cv.mean), pct(cv.sd)));
        }
        t.row(cells);
    }
    t.to_string()
}

/// The results table: per target, the chosen setting, its CV accuracy and its test accuracy.
pub fn results_table(projects: &[Project]) -> String {
    let mut t = Table::new(
        &[
            "target",
            "rows (train / test)",
            "chosen setting",
            "CV accuracy",
            "test accuracy",
            "majority class, test",
        ],
        "lrlrrr",
    );
    for p in projects {
        let g = &p.grid[p.chosen];
        t.row([
            p.target.name().to_string(),
            format!("{} ({} / {})", p.sizes.0, p.sizes.1, p.sizes.2),
            g.model.describe(),
            format!("{} ± {}", pct(g.cv.mean), pct(g.cv.sd)),
            pct(p.test_accuracy),
            pct(p.majority_accuracy),
        ]);
    }
    t.to_string()
}

/// The bill scatter: length against depth, each penguin drawn as its species' initial.
pub fn bill_scatter(table: &[Penguin]) -> Result<String> {
    let points: Vec<(f64, f64, usize)> = table
        .iter()
        .filter_map(|p| Some((p.measurements[0]?, p.measurements[1]?, p.species)))
        .collect();
    let names: Vec<String> = SPECIES.iter().map(|s| s[..1].to_string()).collect();
    label_scatter(
        Labels {
            title: "Bill length against bill depth (A: Adelie, C: Chinstrap, G: Gentoo)",
            x: "bill length (mm)",
            y: "bill depth (mm)",
        },
        &points,
        &names,
    )
}

// ANCHOR: program
/// The program: load the table, run both projects, write the tables and the figure.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    anyhow::ensure!(
        common.epochs.is_none(),
        "--epochs does not apply: the grid's softmax models train for a fixed 100 epochs, and the other models have no epochs"
    );
    let run = Run::new(common, &chapter_dir("classical"))?;
    let path = common.data_dir("penguins").join("penguins.csv");
    let table = penguins::load(&path).context("cannot load the penguins")?;
    let (missing, counts) = missing_table(&table);
    let targets = [Target::Species, Target::Sex];
    let projects = targets
        .iter()
        .map(|&t| project(&table, t, common.quick, common.seed))
        .collect::<Result<Vec<_>>>()?;
    let seeds: Vec<u64> = (1..=cli.splits).collect();
    let (seeds_text, seeds) = seeds_table(&table, &targets, common.quick, &seeds)?;
    let results = results_table(&projects);
    print!("{results}");
    run.write("penguins-missing.md", missing.as_bytes())?;
    run.write("penguins-grid.md", grid_table(&projects).as_bytes())?;
    run.write("penguins-results.md", results.as_bytes())?;
    run.write("penguins-seeds.md", seeds_text.as_bytes())?;
    run.write("penguins-bills.svg", bill_scatter(&table)?.as_bytes())?;
    let report = Report {
        missing: counts,
        projects,
        seeds,
    };
    run.write_record("penguins-provenance.md", "penguins.json", &report)
}
// ANCHOR_END: program
