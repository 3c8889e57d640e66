//! Checkpoints: a round trip restores every parameter exactly; a checkpoint of the wrong model,
//! with the wrong shapes, or damaged, is a clear error that leaves the model untouched.

use dlfs::checkpoint::{load, save};
use dlfs::mlp::Mlp;
use dlfs::mlp::experiment::{Cli, run};
use dlfs::param::{Param2, ParamMut, ParamRef, Params};
use dlfs::runner::parse;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn mlp(sizes: &[usize], seed: u64) -> Mlp<f32> {
    Mlp::new(sizes, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn values(model: &mut impl Params<f32>) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    model.visit("", &mut |_, p| out.push(p.value.iter().copied().collect()));
    out
}

#[test]
fn round_trip_restores_every_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut a = mlp(&[5, 4, 3], 1);
    save(&a, "mlp", "small", &path).unwrap();
    let mut b = mlp(&[5, 4, 3], 2);
    assert_ne!(values(&mut a), values(&mut b));
    load(&mut b, "mlp", "small", &path).unwrap();
    assert_eq!(values(&mut a), values(&mut b));
    // Saving again over it leaves a complete file and no temporary files behind.
    save(&b, "mlp", "small", &path).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn the_wrong_model_or_description_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    save(&mlp(&[5, 4, 3], 1), "mlp", "layer sizes [5, 4, 3]", &path).unwrap();
    let mut other = mlp(&[5, 4, 3], 3);
    let before = values(&mut other);
    let e = load(&mut other, "vae", "layer sizes [5, 4, 3]", &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a checkpoint of mlp, not of vae"), "{e}");
    let e = load(&mut other, "mlp", "layer sizes [5, 6, 3]", &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("but this model is layer sizes [5, 6, 3]"), "{e}");
    assert_eq!(
        values(&mut other),
        before,
        "a refused checkpoint changes nothing"
    );
}

/// A model whose second tensor has another shape than the saved one, under the same names.
struct Odd(Param2<f32>, Param2<f32>);

impl Params<f32> for Odd {
    fn visit(&mut self, _: &str, f: &mut dyn FnMut(&str, ParamMut<'_, f32>)) {
        f("layers.0.w", self.0.view_mut());
        f("layers.0.b", self.1.view_mut());
    }

    fn visit_ref(&self, _: &str, f: &mut dyn FnMut(&str, ParamRef<'_, f32>)) {
        self.0.visit_ref("layers.0.w", f);
        self.1.visit_ref("layers.0.b", f);
    }
}

#[test]
fn wrong_shapes_and_missing_tensors_are_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    save(&mlp(&[5, 4], 1), "mlp", "d", &path).unwrap();
    let mut odd = Odd(
        Param2::new(ndarray::Array2::ones((5, 4))),
        Param2::new(ndarray::Array2::ones((2, 2))),
    );
    let e = load(&mut odd, "mlp", "d", &path).unwrap_err().to_string();
    assert!(
        e.contains("`layers.0.b` is F32 [4], the model needs F32 [2, 2]"),
        "{e}"
    );
    assert!(
        odd.0.value.iter().all(|&v| v == 1.0),
        "the first tensor was not overwritten"
    );
    let mut bigger = mlp(&[5, 4, 3], 1);
    let e = load(&mut bigger, "mlp", "d", &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no tensor `layers.1.w`"), "{e}");
}

#[test]
fn damaged_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    save(&mlp(&[5, 4, 3], 1), "mlp", "d", &path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut model = mlp(&[5, 4, 3], 2);
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"definitely not tensors".to_vec()),
        ("truncated", good[..good.len() - 10].to_vec()),
        (
            "header length too large",
            [&u64::MAX.to_le_bytes()[..], &good[8..]].concat(),
        ),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let e = load(&mut model, "mlp", "d", &path).unwrap_err().to_string();
        assert!(
            e.contains("not a safetensors file") && e.contains("m.safetensors"),
            "{what}: {e}"
        );
    }
    let e = load(&mut model, "mlp", "d", &dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn the_program_saves_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("mlp.safetensors");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let trained: Cli = parse([
        "mlp",
        "--quick",
        "--out",
        a.to_str().unwrap(),
        "--save",
        ckpt.to_str().unwrap(),
    ])
    .unwrap();
    run(trained).unwrap();
    let loaded: Cli = parse([
        "mlp",
        "--quick",
        "--out",
        b.to_str().unwrap(),
        "--load",
        ckpt.to_str().unwrap(),
    ])
    .unwrap();
    run(loaded).unwrap();
    let test_row = |dir: &std::path::Path| {
        std::fs::read_to_string(dir.join("results.md"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("| test |"))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        test_row(&a),
        test_row(&b),
        "the loaded network scores exactly as the trained one"
    );
    assert_eq!(
        std::fs::read(a.join("mistakes.svg")).unwrap(),
        std::fs::read(b.join("mistakes.svg")).unwrap()
    );
    assert!(
        parse::<Cli>(["mlp", "--save", "x", "--load", "y"]).is_err(),
        "--save and --load conflict"
    );
}

#[test]
fn training_that_diverges_stops_with_the_step() {
    let cli: Cli = parse(["mlp", "--quick", "--lr", "1e30"]).unwrap();
    let e = run(cli).unwrap_err().to_string();
    assert!(e.starts_with("step "), "{e}");
    assert!(e.contains("is NaN") || e.contains("is inf"), "{e}");
    assert!(e.contains("lower learning rate"), "{e}");
}

#[test]
fn the_dropout_program_saves_and_loads_both_networks() {
    use dlfs::dropout::experiment::{Cli as DropoutCli, run as run_dropout};
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("dropout.safetensors");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let trained: DropoutCli =
        parse(["dropout", "--quick", "--out", &s(&a), "--save", &s(&ckpt)]).unwrap();
    run_dropout(trained).unwrap();
    let loaded: DropoutCli =
        parse(["dropout", "--quick", "--out", &s(&b), "--load", &s(&ckpt)]).unwrap();
    run_dropout(loaded).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("results.json")).unwrap()).unwrap();
    let table = std::fs::read_to_string(b.join("results.md")).unwrap();
    for (net, row) in [
        ("plain", "| no dropout |"),
        ("dropout", "| dropout, weight scaling |"),
    ] {
        let last = json["report"][net]["history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        let expected = format!(
            "{:.4} | {:.4} |",
            last["validation"]["loss"].as_f64().unwrap(),
            last["test"]["loss"].as_f64().unwrap()
        );
        let line = table.lines().find(|l| l.starts_with(row)).unwrap();
        assert!(line.contains(&expected), "{net}: {line} vs {expected}");
    }
    // A checkpoint of the MLP program is not one of the dropout program.
    let mlp_ckpt = dir.path().join("mlp.safetensors");
    run(parse(["mlp", "--quick", "--save", &s(&mlp_ckpt)]).unwrap()).unwrap();
    let wrong: DropoutCli = parse(["dropout", "--quick", "--load", &s(&mlp_ckpt)]).unwrap();
    let e = run_dropout(wrong).unwrap_err().to_string();
    assert!(e.contains("a checkpoint of mlp, not of dropout"), "{e}");
}
