//! The classical course's second program, run in-process on its `--quick` path and as a process
//! with bad input.

mod common;

use dlfs::classical::scoreboard::{Cli, OUTPUTS, Row, results_table};
use dlfs::course::run;
use dlfs::runner::parse;
use std::path::Path;

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("classical_scoreboard", out, seed, run);
}

#[test]
fn quick_run_writes_well_formed_outputs() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in OUTPUTS {
        let bytes =
            std::fs::read(dir.path().join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert!(bytes.len() > 100, "{name} is nearly empty");
        if name.ends_with(".svg") {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
                "{name}"
            );
        }
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scoreboard.json")).unwrap())
            .unwrap();
    let rows = json["report"]["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        12,
        "ten methods of the second half, softmax regression and the MLP: {rows:?}"
    );
    for row in rows {
        let test = row["test"].as_f64().unwrap();
        assert!(
            (0.5..=1.0).contains(&test),
            "every method beats chance by far even on the quick slice: {row}"
        );
    }
    let losses: Vec<f64> = json["report"]["svm_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(losses.iter().all(|l| l.is_finite()) && losses.last() < losses.first());
    let explained: Vec<f64> = json["report"]["explained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(explained.len(), 64);
    assert!(explained.windows(2).all(|w| w[1] >= w[0] - 1e-12));
    assert!((explained[63] - 1.0).abs() < 1e-6, "{}", explained[63]);
    let tree = std::fs::read_to_string(dir.path().join("tree-depth3.txt")).unwrap();
    assert!(
        tree.contains("predict") && tree.contains("pixel[row"),
        "{tree}"
    );
    let table = std::fs::read_to_string(dir.path().join("course-results.md")).unwrap();
    assert!(table.contains("| random forest |"), "{table}");
}

#[test]
fn the_same_seed_reproduces_every_figure_and_table_exactly() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    quick(a.path(), "5");
    quick(b.path(), "5");
    for name in OUTPUTS
        .iter()
        .filter(|n| !n.contains("provenance") && !n.ends_with(".json"))
    {
        let (x, y) = (
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    let c = tempfile::tempdir().unwrap();
    quick(c.path(), "6");
    let (x, y) = (
        std::fs::read(a.path().join("forest-trees.svg")).unwrap(),
        std::fs::read(c.path().join("forest-trees.svg")).unwrap(),
    );
    assert!(x != y, "another seed should grow other forests");
}

#[test]
fn a_row_is_one_line_of_the_table() {
    let rows = vec![
        Row::new("a", Some(0.5), 0.25, "x"),
        Row::new("b", None, 1.0, "y"),
    ];
    let table = results_table(&rows);
    assert!(table.contains("| a | 50.00% | 25.00% | x |"), "{table}");
    assert!(table.contains("| b | - | 100.00% | y |"), "{table}");
    assert_eq!(table.lines().count(), 4);
}

#[test]
fn bad_flags_are_errors() {
    for args in [
        vec!["classical_scoreboard", "--bogus"],
        vec!["classical_scoreboard", "--trees", "0"],
        vec!["classical_scoreboard", "--epochs", "ten"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
}

#[test]
fn the_program_fails_in_one_line_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(corrupt.join("digits")).unwrap();
    std::fs::write(corrupt.join("digits/digits.csv"), "1,2,3\n").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--bogus".into()], 2, "--bogus"),
        (vec!["--trees".into(), "0".into()], 2, "--trees"),
        (
            vec![
                "--quick".into(),
                "--data".into(),
                empty.display().to_string(),
            ],
            1,
            "no digits.csv.gz or digits.csv",
        ),
        (
            vec![
                "--quick".into(),
                "--data".into(),
                corrupt.display().to_string(),
            ],
            1,
            "expected 65",
        ),
    ];
    for (args, code, needle) in cases {
        common::assert_fails_in_one_line("classical_scoreboard", &args, code, needle);
    }
}
