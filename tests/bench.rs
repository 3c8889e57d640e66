//! The bench program: one JSON line per workload in the format of `shared/BENCHMARKS.md`, and
//! parity files holding every parameter, its gradient, the batch and the loss.

mod common;

use std::process::Command;

#[test]
fn each_workload_prints_one_json_line() {
    let out = Command::new(common::example_binary("bench"))
        .args(["all", "--steps", "2", "--warmup", "0", "--threads", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "mlp",
            "dropout",
            "lstm",
            "made",
            "attention",
            "transformer",
            "vae"
        ]
    );
    for l in &lines {
        assert!(l["step_ms_median"].as_f64().unwrap() > 0.0);
        assert_eq!(l["threads"], 1);
        assert_eq!(l["steps"], 2);
        #[cfg(unix)]
        assert!(l["page_faults_per_step"].as_f64().unwrap() >= 0.0, "{l}");
    }
    // The counts of BENCHMARKS.md's example line.
    assert_eq!(lines[0]["params"], 269_322);
    assert_eq!(lines[0]["flops_per_step"], 206_438_400u64);
}

#[test]
fn list_names_the_workloads_that_all_runs() {
    let out = Command::new(common::example_binary("bench"))
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let all = Command::new(common::example_binary("bench"))
        .args(["all", "--steps", "1", "--warmup", "0", "--threads", "1"])
        .output()
        .unwrap();
    let ran: Vec<String> = String::from_utf8(all.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["workload"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(listed, ran);
    common::assert_fails_in_one_line("bench", &["--list", "--peak"], 2, "cannot be used with");
}

#[test]
fn parity_files_hold_weights_gradients_batch_and_loss() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(common::example_binary("bench"))
        .args(["dropout", "--parity", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success());
    let bytes = std::fs::read(dir.path().join("dropout.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
    names.sort();
    let mut expected: Vec<String> = ["input.labels", "input.x", "loss", "mask.0", "mask.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for l in 0..3 {
        for p in ["w", "b"] {
            expected.push(format!("param.layers.{l}.{p}"));
            expected.push(format!("grad.layers.{l}.{p}"));
        }
    }
    expected.sort();
    assert_eq!(names, expected);
    // The gradients are of one step, not zero.
    let g = file.tensor("grad.layers.0.w").unwrap();
    assert!(
        g.data()
            .chunks(4)
            .any(|c| f32::from_le_bytes(c.try_into().unwrap()) != 0.0)
    );
}

#[test]
fn an_unknown_workload_is_named() {
    common::assert_fails_in_one_line("bench", &["gpt"], 1, "unknown workload `gpt`");
}
