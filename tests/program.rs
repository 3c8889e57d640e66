//! The MLP chapter program, run in-process on its `--quick` path and as a process with bad input.

mod common;

use dlfs::mlp::experiment::{Cli, run};
use dlfs::runner::parse;
use std::path::Path;

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("mlp", out, seed, run);
}

#[test]
fn quick_run_writes_well_formed_outputs_and_the_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in [
        "loss.svg",
        "accuracy.svg",
        "mistakes.svg",
        "results.md",
        "provenance.md",
        "results.json",
        "seeds.md",
        "init.md",
        "init.json",
        "weights.svg",
    ] {
        let bytes =
            std::fs::read(dir.path().join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert!(bytes.len() > 100, "{name} is nearly empty");
    }
    for svg in ["loss.svg", "accuracy.svg", "mistakes.svg", "weights.svg"] {
        let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let history = json["report"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "epoch 0 and two epochs");
    let losses: Vec<f64> = history
        .iter()
        .map(|e| e["train"]["loss"].as_f64().unwrap())
        .collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(
        losses[1] < losses[0] && losses[2] < losses[1],
        "the training loss must fall: {losses:?}"
    );
    let acc = history[2]["validation"]["accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.6,
        "two quick epochs on 1,000 images reach well above chance, got {acc}"
    );
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(table.contains("| test | 500 |"), "{table}");
    assert_eq!(json["provenance"]["seed"], 3);
    // The seeds table has the run's own seed first, then the default others (2 and 3) less the
    // run's own.
    let seeds = std::fs::read_to_string(dir.path().join("seeds.md")).unwrap();
    let rows: Vec<&str> = seeds
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 2, "{seeds}");
    assert!(
        rows[0].starts_with("| 3 |") && rows[1].starts_with("| 2 |"),
        "{seeds}"
    );
    // The initialisation study: He keeps the pre-activations near unit scale, N(0, 1) blows
    // them up layer after layer and starts from a far worse loss; the He network it trains is
    // the run's own network (same seed, same draws), so it ends at the run's test accuracy.
    let init: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("init.json")).unwrap()).unwrap();
    let he = &init[0];
    let unit = &init[1];
    assert_eq!(he["name"], "He");
    let rms = |v: &serde_json::Value, i: usize| v["pre_activation_rms"][i].as_f64().unwrap();
    assert!(
        rms(he, 1) < 2.0 && rms(unit, 1) > 20.0 * rms(he, 1),
        "{init}"
    );
    assert!(unit["initial_loss"].as_f64().unwrap() > 10.0 * he["initial_loss"].as_f64().unwrap());
    let last_test = history.last().unwrap()["test"]["accuracy"]
        .as_f64()
        .unwrap();
    assert_eq!(he["trained_test_accuracy"].as_f64().unwrap(), last_test);
}

#[test]
fn the_same_seed_reproduces_every_output_exactly() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    quick(a.path(), "5");
    quick(b.path(), "5");
    for name in ["loss.svg", "accuracy.svg", "mistakes.svg", "results.md"] {
        let (x, y) = (
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
    let c = tempfile::tempdir().unwrap();
    quick(c.path(), "6");
    let (x, y) = (
        std::fs::read(a.path().join("results.md")).unwrap(),
        std::fs::read(c.path().join("results.md")).unwrap(),
    );
    assert!(x != y, "another seed should give other numbers");
}

#[test]
fn bad_flags_are_errors() {
    for args in [
        vec!["mlp", "--bogus"],
        vec!["mlp", "--epochs", "0"],
        vec!["mlp", "--epochs", "ten"],
        vec!["mlp", "--batch-size", "-3"],
        vec!["mlp", "--seed"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    let cli: Cli = parse(["mlp", "--quick", "--lr", "NaN"]).unwrap();
    assert!(run(cli).unwrap_err().to_string().contains("--lr"));
}

#[test]
fn the_program_fails_in_one_line_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(corrupt.join("mnist")).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(
            corrupt.join("mnist").join(name),
            b"\x00\x00\x08\x03\x00\x00\x00\x05",
        )
        .unwrap();
    }
    let file_as_out = dir.path().join("a-file");
    std::fs::write(&file_as_out, b"x").unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--bogus".into()], 2, "--bogus"),
        (vec!["--epochs".into(), "0".into()], 2, "--epochs"),
        (
            vec!["--quick".into(), "--data".into(), "/no/such/dir".into()],
            1,
            "/no/such/dir",
        ),
        (
            vec![
                "--quick".into(),
                "--data".into(),
                corrupt.display().to_string(),
            ],
            1,
            "header ends",
        ),
        (
            vec![
                "--quick".into(),
                "--out".into(),
                file_as_out.join("x").display().to_string(),
            ],
            1,
            "output folder",
        ),
    ];
    for (args, code, needle) in cases {
        common::assert_fails_in_one_line("mlp", &args, code, needle);
    }
    assert_eq!(
        std::fs::read(&file_as_out).unwrap(),
        b"x",
        "nothing was overwritten"
    );
}
