//! The Transformer encoder over image patches: patch extraction (round trip, where each pixel
//! goes), f64 gradient checks of the whole encoder with each pooling head against central
//! differences (input pixels and every parameter), a broken input gradient the checker
//! rejects, the attention pool's weights, the permutation invariance of mean pooling without
//! positions, parameter names, and the `vit` program's `--quick` run.

mod common;

use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::loss::softmax_cross_entropy;
use dlfs::transformer::vision::{ImageEncoder, Pool, VisionConfig, patchify, unpatchify};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn patches_round_trip_exactly() {
    for p in [4, 7] {
        let images = Array2::random_using((3, 784), Uniform::new(0.0, 1.0).unwrap(), &mut rng(1));
        let patches = patchify(&images, 28, p);
        assert_eq!(patches.dim(), (3 * (28 / p) * (28 / p), p * p));
        assert_eq!(unpatchify(&patches, 28, p), images, "patch size {p}");
    }
}

#[test]
fn pixel_r_c_lands_in_its_patch() {
    // Image b holds 1000 b + 28 r + c at pixel (r, c), so every value names its pixel.
    let images = Array2::from_shape_fn((2, 784), |(b, i)| (1000 * b + i) as f64);
    for p in [4, 7] {
        let g = 28 / p;
        let patches = patchify(&images, 28, p);
        for b in 0..2 {
            for r in 0..28 {
                for c in 0..28 {
                    let row = b * g * g + (r / p) * g + c / p;
                    let col = (r % p) * p + c % p;
                    assert_eq!(
                        patches[[row, col]],
                        (1000 * b + 28 * r + c) as f64,
                        "p {p}, image {b}, pixel ({r}, {c})"
                    );
                }
            }
        }
        // The first patch is the top-left square: its second row starts at pixel (1, 0).
        assert_eq!(patches[[0, p]], 28.0);
        // Patch 1 is to the right of patch 0.
        assert_eq!(patches[[1, 0]], p as f64);
    }
}

fn tiny(pool: Pool, positions: bool) -> VisionConfig {
    VisionConfig {
        side: 4,
        patch: 2,
        d: 4,
        heads: 2,
        ff: 6,
        layers: 2,
        classes: 3,
        pool,
        positions,
        dropout: 0.0,
    }
}

/// A tiny encoder whose biases, layer-norm gains and shifts are moved off their initial values
/// (zero biases and unit gains would hide a wrong gradient of theirs).
fn tiny_model(pool: Pool, positions: bool, seed: u64) -> ImageEncoder<f64> {
    let mut model = ImageEncoder::<f64>::new(tiny(pool, positions), &mut rng(seed)).unwrap();
    let mut r = rng(seed + 100);
    let n = Normal::new(0.0, 0.3).unwrap();
    dlfs::param::Params::visit(&mut model, "", &mut |_, p| {
        if p.value.ndim() == 1 {
            let noise = ndarray::ArrayD::random_using(p.value.raw_dim(), n, &mut r);
            let mut v = p.value;
            v += &noise;
        }
    });
    model
}

fn check_encoder(pool: Pool) -> dlfs::gradcheck::Report {
    let mut model = tiny_model(pool, true, 3);
    let x = Array2::random_using((3, 16), Uniform::new(0.0, 1.0).unwrap(), &mut rng(4));
    let labels = [2, 0, 1];
    GradCheck::default().layer(
        &mut model,
        &x,
        |m, x| softmax_cross_entropy(&m.infer(x), &labels).0,
        |m, x| {
            let (z, cache) = m.forward(x);
            let (_, dz) = softmax_cross_entropy(&z, &labels);
            m.backward(&cache, &dz)
        },
    )
}

#[test]
fn encoder_with_mean_pooling_gradient_check() {
    let report = check_encoder(Pool::Mean);
    assert!(report.checks.iter().any(|c| c.name == "input"));
    common::assert_checks_with_zero_key_biases(&report);
}

#[test]
fn encoder_with_attention_pooling_gradient_check() {
    let report = check_encoder(Pool::Attention);
    for name in [
        "pool.query",
        "pool.attention.wq.w",
        "positions.learned.table",
        "input",
    ] {
        assert!(
            report.checks.iter().any(|c| c.name == name),
            "{name}: {report}"
        );
    }
    common::assert_checks_with_zero_key_biases(&report);
}

#[test]
fn the_check_rejects_an_input_gradient_reshaped_instead_of_unpatchified() {
    // The tempting bug: the patches' gradient `[batch * n, p * p]` reshaped to `[batch, side *
    // side]`, as if the patches were rows of pixels. Every number is right, in the wrong place.
    let mut model = tiny_model(Pool::Mean, true, 3);
    let x = Array2::random_using((3, 16), Uniform::new(0.0, 1.0).unwrap(), &mut rng(4));
    let labels = [2, 0, 1];
    let report = GradCheck::default().layer(
        &mut model,
        &x,
        |m, x| softmax_cross_entropy(&m.infer(x), &labels).0,
        |m, x| {
            let (z, cache) = m.forward(x);
            let (_, dz) = softmax_cross_entropy(&z, &labels);
            let dx = m.backward(&cache, &dz);
            patchify(&dx, 4, 2).into_shape_with_order((3, 16)).unwrap()
        },
    );
    let err = report.verify(TOLERANCE).unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
}

#[test]
fn attention_pool_weights_are_distributions_over_the_patches() {
    let config = VisionConfig {
        side: 28,
        patch: 7,
        d: 8,
        heads: 2,
        ff: 8,
        layers: 1,
        classes: 10,
        pool: Pool::Attention,
        positions: true,
        dropout: 0.0,
    };
    let model = ImageEncoder::<f64>::new(config, &mut rng(5)).unwrap();
    let x = Array2::random_using((4, 784), Uniform::new(0.0, 1.0).unwrap(), &mut rng(6));
    let (_, cache) = model.forward(&x);
    let w = cache.pool_weights().unwrap();
    assert_eq!(w.dim(), (4, 16));
    for row in w.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-12, "{row}");
        assert!(row.iter().all(|&v| v > 0.0));
    }
    // The weights are not uniform: the query reads some patches more than others.
    assert!(w.iter().any(|&v| (v - 1.0 / 16.0).abs() > 1e-4), "{w}");
    let mean = ImageEncoder::<f64>::new(
        VisionConfig {
            pool: Pool::Mean,
            ..config
        },
        &mut rng(5),
    )
    .unwrap();
    assert!(mean.forward(&x).1.pool_weights().is_none());
}

/// `x` with the patches of each image put in the order `perm` (patch `k` of the result is patch
/// `perm[k]` of `x`).
fn permute_patches(x: &Array2<f64>, side: usize, p: usize, perm: &[usize]) -> Array2<f64> {
    let n = perm.len();
    let patches = patchify(x, side, p);
    let mut out = patches.clone();
    for b in 0..x.nrows() {
        for (k, &from) in perm.iter().enumerate() {
            out.row_mut(b * n + k).assign(&patches.row(b * n + from));
        }
    }
    unpatchify(&out, side, p)
}

#[test]
fn mean_pooling_without_positions_ignores_the_order_of_the_patches() {
    let x = Array2::random_using((3, 16), Uniform::new(0.0, 1.0).unwrap(), &mut rng(7));
    let perm = [2, 0, 3, 1];
    let shuffled = permute_patches(&x, 4, 2, &perm);
    assert_ne!(shuffled, x);
    for pool in [Pool::Mean, Pool::Attention] {
        let model = tiny_model(pool, false, 8);
        let diff = (&model.infer(&x) - &model.infer(&shuffled)).mapv(f64::abs);
        let max = diff.fold(0.0f64, |m, &v| m.max(v));
        assert!(max < 1e-12, "{pool:?} without positions: {max}");
    }
    // With learned positions a patch's place matters, so the logits change.
    let model = tiny_model(Pool::Mean, true, 8);
    let diff = (&model.infer(&x) - &model.infer(&shuffled)).mapv(f64::abs);
    assert!(diff.fold(0.0f64, |m, &v| m.max(v)) > 1e-6);
}

#[test]
fn parameter_names() {
    let mut model = tiny_model(Pool::Attention, true, 9);
    let (d, ff, pp, n, classes) = (4, 6, 4, 4, 3);
    let mut names: Vec<String> = vec!["embed.w".into(), "embed.b".into()];
    let mut count = pp * d + d;
    names.push("positions.learned.table".into());
    count += n * d;
    let attention = |prefix: &str, names: &mut Vec<String>| {
        for l in ["wq", "wk", "wv", "wo"] {
            names.push(format!("{prefix}.{l}.w"));
            names.push(format!("{prefix}.{l}.b"));
        }
    };
    for i in 0..2 {
        attention(&format!("blocks.{i}.attention"), &mut names);
        for p in [
            "ln1.gamma",
            "ln1.beta",
            "ff.lin1.w",
            "ff.lin1.b",
            "ff.lin2.w",
            "ff.lin2.b",
            "ln2.gamma",
            "ln2.beta",
        ] {
            names.push(format!("blocks.{i}.{p}"));
        }
        count += 4 * (d * d + d) + 2 * d + (d * ff + ff) + (ff * d + d) + 2 * d;
    }
    names.extend(["ln.gamma".into(), "ln.beta".into(), "pool.query".into()]);
    count += 2 * d + d;
    attention("pool.attention", &mut names);
    count += 4 * (d * d + d);
    names.extend(["head.w".into(), "head.b".into()]);
    count += d * classes + classes;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    common::assert_params(&mut model, &refs, count);
    // Mean pooling without positions has neither the pool nor the table.
    let bare = tiny_model(Pool::Mean, false, 9);
    let names = dlfs::param::names(&bare);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("pool") && !n.starts_with("positions"))
    );
    let expected = count - n * d - (d + 4 * (d * d + d));
    assert_eq!(dlfs::param::count(&bare), expected);
}

#[test]
fn shifts_move_the_ink_and_keep_it_inside() {
    use dlfs::transformer::vision_experiment::random_shifts;
    // One lit pixel at (10, 12): after a shift of at most 2 it is somewhere in the 5x5 square
    // around it, and nowhere else.
    let mut img = Array2::<f32>::zeros((50, 784));
    img.column_mut(10 * 28 + 12).fill(1.0);
    let shifted = random_shifts(&img, 28, 2, &mut rng(10));
    let mut moved = 0;
    for row in shifted.rows() {
        let lit: Vec<usize> = (0..784).filter(|&i| row[i] == 1.0).collect();
        assert_eq!(lit.len(), 1);
        let (r, c) = (lit[0] / 28, lit[0] % 28);
        assert!(r.abs_diff(10) <= 2 && c.abs_diff(12) <= 2, "({r}, {c})");
        moved += usize::from(lit[0] != 10 * 28 + 12);
    }
    assert!(moved > 30, "only {moved} of 50 images moved");
    assert_eq!(random_shifts(&img, 28, 0, &mut rng(10)), img);
}

#[test]
fn the_schedule_warms_up_then_decays_to_zero() {
    use dlfs::transformer::vision_experiment::warmup_cosine;
    assert!((warmup_cosine(1e-3, 100, 1000, 50) - 5e-4).abs() < 1e-15);
    assert!((warmup_cosine(1e-3, 100, 1000, 100) - 1e-3).abs() < 1e-15);
    assert!((warmup_cosine(1e-3, 100, 1000, 550) - 5e-4).abs() < 1e-12);
    assert!(warmup_cosine(1e-3, 100, 1000, 1000).abs() < 1e-15);
}

// The chapter program.

use dlfs::transformer::vision_experiment::{Cli, run};

#[test]
fn quick_run_writes_its_tables_and_figures_and_reproduces() {
    common::assert_same_seed_same_bytes::<Cli>(
        "vit",
        &[
            "vision-results.md",
            "vision-accuracy.svg",
            "vision-attention.svg",
        ],
        "vision-results.md",
        run,
    );
    let dir = tempfile::tempdir().unwrap();
    common::run_quick::<Cli>("vit", dir.path(), "3", run);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("vision-results.json")).unwrap())
            .unwrap();
    let runs = json["report"]["runs"].as_array().unwrap();
    let pools: Vec<&str> = runs.iter().map(|r| r["pool"].as_str().unwrap()).collect();
    assert_eq!(pools, ["Mean", "Attention"]);
    for r in runs {
        let history = r["history"].as_array().unwrap();
        let epochs = json["report"]["settings"]["epochs"].as_u64().unwrap() as usize;
        assert_eq!(history.len(), epochs);
        let loss = |i: usize| history[i]["train_loss"].as_f64().unwrap();
        assert!(loss(epochs - 1) < loss(0) && loss(0) < 2.5, "{history:?}");
        // Better than guessing (10%) on the held-out images after a few seconds.
        let chosen = r["chosen"].as_u64().unwrap() as usize;
        let best = history[chosen - 1]["validation"].as_f64().unwrap();
        assert!(
            history
                .iter()
                .all(|e| e["validation"].as_f64().unwrap() <= best)
        );
        assert!(
            history[epochs - 1]["test"].as_f64().unwrap() > 0.2,
            "{history:?}"
        );
    }
    assert!(runs[0]["mean_max_weight"].is_null());
    let w = runs[1]["mean_max_weight"].as_f64().unwrap();
    assert!(w > 1.0 / 16.0 && w <= 1.0, "{w}");
    for figure in ["vision-accuracy.svg", "vision-attention.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(figure)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{figure}"
        );
    }
    let chart = std::fs::read_to_string(dir.path().join("vision-accuracy.svg")).unwrap();
    for legend in [
        "mean pooling, test",
        "attention pooling, validation",
        "MLP, test",
        "MLP, same recipe, test",
    ] {
        assert!(
            chart.contains(legend),
            "no `{legend}` in vision-accuracy.svg"
        );
    }
    let table = std::fs::read_to_string(dir.path().join("vision-results.md")).unwrap();
    assert!(table.contains("| MLP chapter"), "{table}");
    // The baseline: the MLP trained with the encoders' recipe, scored every epoch.
    let baseline = &json["report"]["mlp_baseline"];
    assert_eq!(baseline["params"], 269_322);
    let history = baseline["history"].as_array().unwrap();
    assert_eq!(
        history.len() as u64,
        json["report"]["settings"]["epochs"].as_u64().unwrap()
    );
    let last = history.last().unwrap()["test"].as_f64().unwrap();
    assert!(last > 0.5, "{history:?}");
    assert!(
        table.contains("| MLP 784-256-256-10, the same recipe |"),
        "{table}"
    );
}

#[test]
fn bad_flags_fail_in_one_line() {
    common::assert_fails_in_one_line("vit", &["--bogus"], 2, "--bogus");
    common::assert_fails_in_one_line(
        "vit",
        &["--quick", "--data", "/no/such/dir"],
        1,
        "/no/such/dir",
    );
    common::assert_fails_in_one_line("vit", &["--quick", "--patch", "5"], 2, "--patch");
    common::assert_fails_in_one_line("vit", &["--quick", "--lr", "NaN"], 1, "--lr");
    common::assert_fails_in_one_line("vit", &["--quick", "--dropout", "1.5"], 1, "--dropout");
    common::assert_fails_in_one_line("vit", &["--quick", "--d", "30"], 1, "--d");
    common::assert_fails_in_one_line("vit", &["--quick", "--warmup", "9"], 1, "--warmup");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("mnist");
    std::fs::create_dir(&bad).unwrap();
    for name in std::fs::read_dir(dlfs::data::shipped_dir().join("mnist")).unwrap() {
        let name = name.unwrap().file_name();
        std::fs::write(bad.join(&name), b"not an idx file").unwrap();
    }
    let data = dir.path().display().to_string();
    common::assert_fails_in_one_line("vit", &["--quick", "--data", &data], 1, "MNIST");
}

#[test]
fn a_diverging_run_stops_with_a_one_line_error() {
    common::assert_fails_in_one_line("vit", &["--quick", "--lr", "1e30"], 1, "training loss is");
}
