//! The thread count of the matrix products changes the speed, not the results: the same program
//! with the same seed writes the same bytes at one and at two threads.

mod common;

use std::process::Command;

fn run(threads: &str, out: &std::path::Path) {
    let status = Command::new(common::example_binary("mlp"))
        .args([
            "--quick",
            "--seed",
            "7",
            "--seeds",
            "7",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("MATMUL_NUM_THREADS", threads)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn one_and_two_threads_write_the_same_results() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run("1", a.path());
    run("2", b.path());
    let mut compared = 0;
    for entry in std::fs::read_dir(a.path()).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_str().unwrap();
        if name == "provenance.md" || name == "results.json" {
            continue; // they record the thread count and the time
        }
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert!(x == y, "{name} differs between 1 and 2 threads");
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} outputs compared");
    let json = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("results.json")).unwrap()).unwrap()
    };
    assert_eq!(json(a.path())["report"], json(b.path())["report"]);
    assert_eq!(json(a.path())["provenance"]["threads"], 1);
    assert_eq!(json(b.path())["provenance"]["threads"], 2);
}
