//! Helpers shared by the integration tests that run a chapter program, in process or as a
//! process. (Each test file uses some of them, hence `dead_code` is allowed here.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The example program `name`, built by `cargo test` next to the test executables.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// Runs the example program `name` with `args` (and `RUST_BACKTRACE=1`, so a panic would show),
/// and checks that it fails the way a reader should see it fail: exit code `code`, exactly one
/// line on stderr, starting with `error: ` and containing `needle`, and no panic.
pub fn assert_fails_in_one_line<S: AsRef<str>>(name: &str, args: &[S], code: i32, needle: &str) {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = Command::new(example_binary(name))
        .args(&args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{name} {args:?}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{name} {args:?}: not one line: {stderr}"
    );
    assert!(
        stderr.starts_with("error: ") && stderr.contains(needle),
        "{name} {args:?}: expected `{needle}` in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{name} {args:?}: {stderr}");
}

/// Runs a chapter program in process on its `--quick` path with `seed`, writing into `out`:
/// `name --quick --seed SEED --out OUT`, parsed into `C` as the program itself parses its flags.
pub fn run_quick<C: clap::Parser>(
    name: &str,
    out: &Path,
    seed: &str,
    run: impl FnOnce(C) -> anyhow::Result<()>,
) {
    let args = [
        name,
        "--quick",
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ];
    let cli: C = dlfs::runner::parse(args).unwrap();
    run(cli).unwrap();
}

/// The parameter-name test every model and layer gets: `model`'s visitor reaches exactly the
/// parameters `names`, in this order, holding `count` scalars in all. Pass a `count` worked out
/// from the architecture (for a linear layer `in * out + out`), not one read off the visitor, so
/// that a parameter `visit` forgets shows up in both.
pub fn assert_params<F: dlfs::float::Float>(
    model: &mut impl dlfs::param::Params<F>,
    names: &[&str],
    count: usize,
) {
    assert_eq!(
        dlfs::param::names(model),
        names,
        "the parameters `visit` reaches"
    );
    assert_eq!(
        dlfs::param::count(model),
        count,
        "the number of trainable scalars"
    );
    // The optimiser and the checkpoints walk `visit`, the counters `visit_ref`: a hand-written
    // implementation must make the two walks agree, name for name and shape for shape.
    let mut walked = Vec::new();
    model.visit("", &mut |name, p| {
        walked.push((name.to_string(), p.value.shape().to_vec()))
    });
    assert_eq!(
        walked,
        dlfs::param::shapes(model),
        "`visit` and `visit_ref` walk different parameters"
    );
}

/// The reproducibility runs every program test makes: `quick` into three fresh folders, the
/// first two with seed `same`, the third with seed `other`. Compare the first two for equality
/// and the third for a difference.
pub fn three_quick_runs(
    quick: impl Fn(&Path, &str),
    same: &str,
    other: &str,
) -> [tempfile::TempDir; 3] {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    quick(dirs[0].path(), same);
    quick(dirs[1].path(), same);
    quick(dirs[2].path(), other);
    dirs
}

/// The reproducibility test every chapter program gets: two `--quick` runs with seed 5 write
/// the same bytes into each of `files` (figures and tables, never a file that records the seed
/// or the wall time), and a run with seed 6 writes another `table`, so the comparison can fail.
pub fn assert_same_seed_same_bytes<C: clap::Parser>(
    name: &str,
    files: &[&str],
    table: &str,
    run: impl Fn(C) -> anyhow::Result<()>,
) {
    let dirs = three_quick_runs(|dir, seed| run_quick::<C>(name, dir, seed, &run), "5", "6");
    let read = |i: usize, file: &str| std::fs::read(dirs[i].path().join(file)).unwrap();
    for file in files {
        assert!(
            read(0, file) == read(1, file),
            "{file} differs between two runs with the same seed"
        );
    }
    assert!(
        read(0, table) != read(2, table),
        "another seed should give another {table}"
    );
}

/// The failures every chapter program that trains a network reports in one line (see
/// [`assert_fails_in_one_line`]): an unknown flag, a data folder that does not exist, a
/// checkpoint that does not exist and a file that is not a checkpoint.
pub fn assert_common_failures(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let (missing, garbage) = (missing.display().to_string(), garbage.display().to_string());
    assert_fails_in_one_line(name, &["--bogus"], 2, "--bogus");
    assert_fails_in_one_line(
        name,
        &["--quick", "--data", "/no/such/dir"],
        1,
        "/no/such/dir",
    );
    assert_fails_in_one_line(
        name,
        &["--quick", "--load", &missing],
        1,
        "missing.safetensors",
    );
    assert_fails_in_one_line(
        name,
        &["--quick", "--load", &garbage],
        1,
        "not a safetensors file",
    );
}

/// Passes a gradient-check report of a model with attention: every array within the crate's
/// tolerance, except the key biases (`…wk.b`). Their gradient is exactly zero (a bias added to
/// every key adds the same `q . b_k` to a whole row of scores, which the softmax ignores), so
/// a relative error would compare rounding noise with rounding noise; their analytic gradient
/// must be zero instead (`key_bias_changes_nothing` in `tests/self_attention.rs` checks the
/// function itself).
pub fn assert_checks_with_zero_key_biases(report: &dlfs::gradcheck::Report) {
    for check in &report.checks {
        if check.name.ends_with("wk.b") {
            assert!(check.problems.is_empty(), "{report}");
            assert!(check.analytic_norm < 1e-12, "{report}");
        } else {
            assert!(
                check.failures(dlfs::gradcheck::TOLERANCE).is_empty(),
                "{report}"
            );
        }
    }
}
