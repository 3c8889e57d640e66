//! The penguins project: the loader keeps missing values missing and refuses damaged files, the
//! pipeline learns only from the rows it is fitted on, the splits are stratified, and the program
//! reproduces from its seed and fails in one line on bad input.

mod common;

use dlfs::classical::cv::stratified_kfold;
use dlfs::classical::penguins::{Cli, Model, Pipeline, Target, grid, project, run};
use dlfs::data::penguins::{self, Penguin};
use rand::SeedableRng;
use std::path::Path;

fn shipped() -> Vec<Penguin> {
    penguins::shipped().unwrap()
}

#[test]
fn the_shipped_table_has_its_known_gaps() {
    let table = shipped();
    assert_eq!(table.len(), 344);
    let no_sex = table.iter().filter(|p| p.sex.is_none()).count();
    let nothing = table
        .iter()
        .filter(|p| p.measurements.iter().all(Option::is_none))
        .count();
    let some = table
        .iter()
        .filter(|p| p.sex.is_none() || p.measurements.iter().any(Option::is_none))
        .count();
    assert_eq!((no_sex, nothing, some), (11, 2, 11));
    let counts: Vec<usize> = (0..3)
        .map(|c| table.iter().filter(|p| p.species == c).count())
        .collect();
    assert_eq!(counts, [152, 68, 124]);
}

fn parse(text: &str) -> Result<Vec<Penguin>, String> {
    penguins::parse(Path::new("p.csv"), text).map_err(|e| e.to_string())
}

#[test]
fn damaged_tables_are_refused_with_the_line() {
    let header = penguins::HEADER;
    let good = "Adelie,Dream,39.5,17.4,186,3800,female,2007";
    assert_eq!(parse(&format!("{header}\n{good}\n")).unwrap().len(), 1);
    let cases = [
        ("", "empty"),
        ("species,island\n", "the header is"),
        (&format!("{header}\n"), "no penguins"),
        (
            &format!("{header}\nAdelie,Dream,39.5\n"),
            "line 2: 3 fields",
        ),
        (
            &format!("{header}\nEmperor,Dream,1,1,1,1,male,2007\n"),
            "species `Emperor`",
        ),
        (
            &format!("{header}\nAdelie,Mars,1,1,1,1,male,2007\n"),
            "island `Mars`",
        ),
        (
            &format!("{header}\n{good}\nAdelie,Dream,x,1,1,1,male,2007\n"),
            "line 3: bill length",
        ),
        (
            &format!("{header}\nAdelie,Dream,-4,1,1,1,male,2007\n"),
            "not a positive number",
        ),
        (
            &format!("{header}\nAdelie,Dream,1,1,1,1,yes,2007\n"),
            "sex `yes`",
        ),
        (
            &format!("{header}\nAdelie,Dream,1,1,1,1,male,soon\n"),
            "year `soon`",
        ),
    ];
    for (text, needle) in cases {
        let err = parse(text).unwrap_err();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}

fn row(island: usize, m: [Option<f64>; 4], sex: Option<usize>) -> Penguin {
    Penguin {
        species: 0,
        island,
        measurements: m,
        sex,
        year: 2008,
    }
}

#[test]
fn the_pipeline_learns_only_from_the_rows_it_is_fitted_on() {
    let fit = [
        row(
            0,
            [Some(1.0), Some(10.0), Some(100.0), Some(1000.0)],
            Some(1),
        ),
        row(1, [Some(3.0), None, Some(300.0), Some(3000.0)], Some(1)),
        row(
            2,
            [Some(8.0), Some(30.0), Some(200.0), Some(2000.0)],
            Some(0),
        ),
    ];
    let refs: Vec<&Penguin> = fit.iter().collect();
    let pipeline = Pipeline::fit(&refs, Target::Species);
    // Medians over the rows that have the value: (1, 3, 8) -> 3; (10, 30) -> 20.
    assert_eq!(pipeline.medians, [3.0, 20.0, 200.0, 2000.0]);
    assert_eq!(pipeline.majority_sex, 1);
    // A new row with everything missing gets the fitted values, whatever else is transformed
    // beside it: transforming it alone or next to extreme rows gives the same features.
    let blank = row(1, [None; 4], None);
    let extreme = row(0, [Some(1e6); 4], Some(0));
    let alone = pipeline.transform(&[&blank]);
    let beside = pipeline.transform(&[&blank, &extreme]);
    assert_eq!(alone.row(0), beside.row(0));
    // Its measurements sit at the medians, so their scaled values are (median - mean) / sd of
    // the fitted rows: for flipper length, (200 - 200) / sd = 0.
    let columns = pipeline.columns();
    let flipper = columns
        .iter()
        .position(|c| c.starts_with("flipper"))
        .unwrap();
    assert!(alone[[0, flipper]].abs() < 1e-12);
    assert_eq!(columns.len(), alone.ncols());
    assert_eq!(columns.len(), 3 + 2 + 4);
    // The fitted rows themselves come out standardised: every column has mean zero.
    let x = pipeline.transform(&refs);
    for j in 0..x.ncols() {
        assert!(x.column(j).sum().abs() < 1e-9, "column {j}");
    }
}

#[test]
fn the_sex_task_drops_unlabelled_rows_and_uses_species() {
    let table = shipped();
    let p = project(&table, Target::Sex, true, 1).unwrap();
    assert_eq!(p.sizes.0, 333);
    assert_eq!(p.sizes.1 + p.sizes.2, 333);
    let refs: Vec<&Penguin> = table.iter().collect();
    let columns = Pipeline::fit(&refs, Target::Sex).columns();
    assert!(columns.iter().any(|c| c == "species = Gentoo"));
    assert!(!columns.iter().any(|c| c.starts_with("sex")));
}

#[test]
fn the_test_split_is_stratified_and_disjoint() {
    let table = shipped();
    let y: Vec<usize> = table.iter().map(|p| p.species).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let test = stratified_kfold(&y, 5, &mut rng).swap_remove(0);
    assert!(test.train.iter().all(|i| !test.validation.contains(i)));
    for (c, &n) in [152usize, 68, 124].iter().enumerate() {
        let in_test = test.validation.iter().filter(|&&i| y[i] == c).count();
        assert!(in_test.abs_diff(n / 5) <= 1, "class {c}: {in_test} of {n}");
    }
}

#[test]
fn the_chosen_setting_has_the_best_cross_validated_mean() {
    let table = shipped();
    let p = project(&table, Target::Species, true, 2).unwrap();
    assert_eq!(p.grid.len(), grid(true).len());
    let best = p.grid[p.chosen].cv.mean;
    assert!(p.grid.iter().all(|g| g.cv.mean <= best));
    assert!(p.grid.iter().all(|g| g.cv.folds.len() == 5));
    assert!((0.0..=1.0).contains(&p.test_accuracy));
    // The species are far from one another: any sensible model beats the majority class.
    assert!(p.test_accuracy > p.majority_accuracy + 0.3);
    assert!(matches!(
        p.grid[0].model,
        Model::Softmax(_) | Model::Knn(_) | Model::Tree(_)
    ));
}

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("penguins", out, seed, run);
}

#[test]
fn quick_run_reproduces_from_its_seed() {
    let [a, b, c] = common::three_quick_runs(quick, "4", "5");
    let read = |d: &Path, n: &str| std::fs::read_to_string(d.join(n)).unwrap();
    for name in [
        "penguins-missing.md",
        "penguins-grid.md",
        "penguins-results.md",
        "penguins-seeds.md",
        "penguins-bills.svg",
    ] {
        assert_eq!(read(a.path(), name), read(b.path(), name), "{name}");
    }
    assert_ne!(
        read(a.path(), "penguins-grid.md"),
        read(c.path(), "penguins-grid.md"),
        "another seed draws another split"
    );
    let svg = read(a.path(), "penguins-bills.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}

#[test]
fn bad_input_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("penguins");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("penguins.csv"), "species,island\n").unwrap();
    let data = dir.path().to_str().unwrap();
    common::assert_fails_in_one_line("penguins", &["--data", data], 1, "the header is");
    common::assert_fails_in_one_line("penguins", &["--splits", "0"], 2, "--splits");
    common::assert_fails_in_one_line("penguins", &["--epochs", "3"], 1, "--epochs does not apply");
    let missing = dir.path().join("none");
    let missing = missing.to_str().unwrap();
    common::assert_fails_in_one_line("penguins", &["--data", missing], 1, "penguins.csv");
}
