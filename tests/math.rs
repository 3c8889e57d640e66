//! The "Brushing up on math" part: its library functions (finite differences, KL divergences,
//! Monte Carlo, MSE) and its two programs, run in-process on their `--quick` paths.

mod common;

use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::loss::mse;
use dlfs::math::finite_diff::{Problem, Scheme, log_steps, numerical_gradient};
use dlfs::math::probability::{
    cross_entropy, entropy, kl_categorical, kl_diagonal_normal, kl_normal, kl_sample_std,
    monte_carlo_kl, nats_to_bits, normal_log_density,
};
use dlfs::math::{gradcheck_steps, monte_carlo};
use dlfs::runner::parse;
use ndarray::{Array2, array};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::path::Path;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn central_differences_are_second_order_and_forward_ones_first_order() {
    let problem = Problem::random(8, 5, 3, &mut rng(1));
    // In the truncation regime (round-off is around 1e-16 / h, far below), shrinking h tenfold
    // divides the central error by about 100 and the forward error by about 10.
    for h in [1e-2, 1e-3] {
        let central = problem.error::<f64>(Scheme::Central, h)
            / problem.error::<f64>(Scheme::Central, h / 10.0);
        assert!(
            (70.0..130.0).contains(&central),
            "central ratio at h = {h}: {central}"
        );
        let forward = problem.error::<f64>(Scheme::Forward, h)
            / problem.error::<f64>(Scheme::Forward, h / 10.0);
        assert!(
            (7.0..13.0).contains(&forward),
            "forward ratio at h = {h}: {forward}"
        );
    }
    // Deep in the round-off regime the error grows again as h shrinks: the V.
    let tiny = problem.error::<f64>(Scheme::Central, 1e-12);
    let good = problem.error::<f64>(Scheme::Central, 1e-5);
    assert!(tiny > 100.0 * good, "{tiny} vs {good}");
}

#[test]
fn numerical_gradient_of_a_known_function() {
    // f(x) = sum x^3, gradient 3 x^2.
    let x = array![[0.5, -1.0], [2.0, 0.25]];
    let exact = x.mapv(|v: f64| 3.0 * v * v);
    let f = |x: &Array2<f64>| x.iter().map(|v| v * v * v).sum::<f64>();
    let central = numerical_gradient(Scheme::Central, f, &x, 1e-5);
    let forward = numerical_gradient(Scheme::Forward, f, &x, 1e-5);
    let max_err = |g: &Array2<f64>| (g - &exact).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_err(&central) < 1e-8, "{central}");
    // The forward difference's error is about h f''/2 = 3 x h, at most 6e-5 here.
    assert!(
        max_err(&forward) < 1e-4 && max_err(&forward) > 1e-6,
        "{forward}"
    );
}

#[test]
fn log_steps_span_the_range() {
    let s = log_steps(1.0, 14.0, 14);
    assert_eq!(s.len(), 14);
    assert!((s[0] - 0.1).abs() < 1e-15 && (s[13] / 1e-14 - 1.0).abs() < 1e-12);
    assert!(s.windows(2).all(|w| w[1] < w[0]));
}

#[test]
fn kl_between_gaussians_matches_a_monte_carlo_estimate() {
    let mut r = rng(7);
    let n = 200_000;
    for (q, p) in [
        ((1.0, 0.5), (0.0, 1.0)),
        ((-0.3, 2.0), (0.4, 1.5)),
        ((0.0, 1.0), (0.0, 1.0)),
        ((2.0, 0.2), (-1.0, 0.7)),
    ] {
        let exact = kl_normal(q.0, q.1, p.0, p.1);
        let estimate = monte_carlo_kl(q, p, n, &mut r);
        // The estimate's standard deviation is sigma / sqrt(n); five of them is a failure
        // with probability below one in a million, yet small enough to catch a wrong formula.
        let tol = 5.0 * kl_sample_std(q, p) / (n as f64).sqrt() + 1e-12;
        assert!(
            (estimate - exact).abs() <= tol,
            "q {q:?} p {p:?}: closed form {exact}, Monte Carlo {estimate}, tolerance {tol}"
        );
    }
    assert_eq!(kl_normal(0.3f64, 1.2, 0.3, 1.2), 0.0);
    assert!(kl_normal(0.0f64, 1.0, 0.0, 2.0) > 0.0 && kl_normal(0.0f64, 2.0, 0.0, 1.0) > 0.0);
    assert!(
        (kl_normal(0.0f64, 1.0, 0.0, 2.0) - kl_normal(0.0, 2.0, 0.0, 1.0)).abs() > 0.1,
        "KL is not symmetric"
    );
}

#[test]
fn kl_sample_std_matches_the_spread_of_samples() {
    let (q, p) = ((1.0, 0.5), (0.0, 1.0));
    let mut r = rng(8);
    let samples: Vec<f64> = (0..100_000)
        .map(|_| monte_carlo_kl(q, p, 1, &mut r))
        .collect();
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (samples.len() - 1) as f64;
    let sigma = kl_sample_std(q, p);
    assert!(
        (var.sqrt() / sigma - 1.0).abs() < 0.02,
        "{} vs {sigma}",
        var.sqrt()
    );
}

#[test]
fn diagonal_kl_is_the_sum_over_coordinates() {
    let mu_q = array![0.1, -0.5, 1.0];
    let s_q = array![0.8, 1.3, 0.4];
    let mu_p = array![0.0, 0.0, 0.5];
    let s_p = array![1.0, 1.0, 2.0];
    let total = kl_diagonal_normal(mu_q.view(), s_q.view(), mu_p.view(), s_p.view());
    let sum: f64 = (0..3)
        .map(|i| kl_normal(mu_q[i], s_q[i], mu_p[i], s_p[i]))
        .sum();
    assert!((total - sum).abs() < 1e-15);
    // The VAE's form against a standard normal: -1/2 sum (1 + ln s^2 - mu^2 - s^2).
    let vae: f64 = -0.5
        * (0..2)
            .map(|i| 1.0 + (s_q[i] * s_q[i]).ln() - mu_q[i] * mu_q[i] - s_q[i] * s_q[i])
            .sum::<f64>();
    let ours = kl_normal(mu_q[0], s_q[0], 0.0, 1.0) + kl_normal(mu_q[1], s_q[1], 0.0, 1.0);
    assert!((vae - ours).abs() < 1e-14, "{vae} vs {ours}");
}

#[test]
fn categorical_information_quantities() {
    let p = [0.5, 0.25, 0.25, 0.0];
    let q = [0.25, 0.25, 0.25, 0.25];
    assert!((nats_to_bits(entropy(&p)) - 1.5).abs() < 1e-12);
    assert!((nats_to_bits(cross_entropy(&p, &q)) - 2.0).abs() < 1e-12);
    assert!((kl_categorical(&p, &q) - (cross_entropy(&p, &q) - entropy(&p))).abs() < 1e-12);
    assert_eq!(kl_categorical(&q, &q), 0.0);
    assert!(
        kl_categorical(&q, &p).is_infinite(),
        "q puts mass where p has none"
    );
    let density = normal_log_density(1.0f64, 0.0, 1.0).exp();
    assert!((density - 0.241_970_724_519_143_37).abs() < 1e-15);
}

#[test]
fn mse_value_and_gradient() {
    let y = array![[1.0, 2.0], [3.0, 5.0]];
    let t = array![[0.0, 2.0], [1.0, 4.0]];
    let (loss, _) = mse(&y, &t);
    assert!((loss - (1.0 + 0.0 + 4.0 + 1.0) / 4.0_f64).abs() < 1e-15);
    let mut r = rng(9);
    let y: Array2<f64> = Array2::random_using((4, 3), StandardNormal, &mut r);
    let t: Array2<f64> = Array2::random_using((4, 3), StandardNormal, &mut r);
    let (_, dy) = mse(&y, &t);
    let c = GradCheck::default().input(&y, &dy, |y| mse(y, &t).0);
    assert!(c.rel_error < TOLERANCE, "{c:?}");
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|_| panic!("{name} missing"))
}

fn assert_svg(dir: &Path, name: &str) {
    let text = String::from_utf8(read(dir, name)).unwrap();
    assert!(
        text.starts_with("<svg") && text.trim_end().ends_with("</svg>") && text.len() > 2000,
        "{name} is not a drawn SVG"
    );
}

fn steps_quick(out: &Path, seed: &str) {
    common::run_quick::<gradcheck_steps::Cli>("gradcheck_steps", out, seed, gradcheck_steps::run);
}

fn mc_quick(out: &Path, seed: &str) {
    common::run_quick::<monte_carlo::Cli>("monte_carlo", out, seed, monte_carlo::run);
}

#[test]
fn gradcheck_steps_quick_run_writes_the_v_and_its_table() {
    let dir = tempfile::tempdir().unwrap();
    steps_quick(dir.path(), "2");
    assert_svg(dir.path(), "steps.svg");
    let table = String::from_utf8(read(dir.path(), "results.md")).unwrap();
    for row in [
        "| forward | f64 |",
        "| central | f64 |",
        "| forward | f32 |",
        "| central | f32 |",
    ] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&read(dir.path(), "results.json")).unwrap();
    let errors = json["report"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 27, "two steps per decade over 13 decades");
    let col = |k: &str| -> Vec<f64> { errors.iter().map(|e| e[k].as_f64().unwrap()).collect() };
    let central = col("central_f64");
    let forward = col("forward_f64");
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    // Central beats forward at its best, and both pass the book's tolerance somewhere in f64.
    assert!(min(&central) < 1e-9 && min(&forward) < TOLERANCE && min(&central) < min(&forward));
    // The V: both ends are far worse than the bottom.
    assert!(central[0] > 1e3 * min(&central) && central[26] > 1e3 * min(&central));
    // In f32 no step reaches the book's tolerance: why checks run in f64.
    assert!(min(&col("central_f32")) > TOLERANCE);
    assert!(!read(dir.path(), "provenance.md").is_empty());
}

#[test]
fn monte_carlo_quick_run_follows_one_over_root_n() {
    let dir = tempfile::tempdir().unwrap();
    mc_quick(dir.path(), "2");
    assert_svg(dir.path(), "error.svg");
    let json: serde_json::Value =
        serde_json::from_slice(&read(dir.path(), "results.json")).unwrap();
    let rows = json["report"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 9, "n = 10 to 1000, four per decade");
    for row in rows {
        let ratio = row["rms_error"].as_f64().unwrap() / row["predicted"].as_f64().unwrap();
        // 20 repeats: the RMS error is itself known to about 1/sqrt(40) = 16%.
        assert!((0.5..1.5).contains(&ratio), "{row}");
    }
    let table = String::from_utf8(read(dir.path(), "results.md")).unwrap();
    assert!(
        table.contains("| 1000 |") && table.contains("0.818147"),
        "{table}"
    );
}

#[test]
fn the_same_seed_reproduces_both_figures_exactly() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for (dir, seed) in [(&a, "4"), (&b, "4"), (&c, "5")] {
        steps_quick(dir.path(), seed);
        mc_quick(dir.path(), seed);
    }
    for name in ["steps.svg", "error.svg", "results.md"] {
        assert!(
            read(a.path(), name) == read(b.path(), name),
            "{name} differs between two runs with the same seed"
        );
    }
    assert!(
        read(a.path(), "error.svg") != read(c.path(), "error.svg"),
        "another seed should draw other samples"
    );
}

#[test]
fn quick_runs_without_out_write_nothing_and_bad_flags_are_errors() {
    let snapshot = || {
        [
            dlfs::runner::chapter_dir("math/probability"),
            dlfs::runner::chapter_dir("math/gradient-checking"),
        ]
        .iter()
        .flat_map(|dir| ["results.md", "results.json", "provenance.md"].map(|f| dir.join(f)))
        .map(|path| std::fs::read(path).ok())
        .collect::<Vec<_>>()
    };
    let before = snapshot();
    let cli: monte_carlo::Cli = parse(["monte_carlo", "--quick"]).unwrap();
    monte_carlo::run(cli).unwrap();
    let cli: gradcheck_steps::Cli = parse(["gradcheck_steps", "--quick"]).unwrap();
    gradcheck_steps::run(cli).unwrap();
    assert!(
        before == snapshot(),
        "a --quick run without --out wrote into the book"
    );
    for args in [
        vec!["gradcheck_steps", "--per-decade", "0"],
        vec!["gradcheck_steps", "--bogus"],
    ] {
        assert!(
            parse::<gradcheck_steps::Cli>(args.clone()).is_err(),
            "{args:?}"
        );
    }
    for args in [
        vec!["monte_carlo", "--repeats", "1"],
        vec!["monte_carlo", "--seed", "x"],
    ] {
        assert!(parse::<monte_carlo::Cli>(args.clone()).is_err(), "{args:?}");
    }
}

#[test]
fn both_programs_fail_in_one_line_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file_as_out = dir.path().join("a-file");
    std::fs::write(&file_as_out, b"x").unwrap();
    let bad_out = file_as_out.join("x").display().to_string();
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        (
            "gradcheck_steps",
            vec!["--per-decade", "0"],
            2,
            "--per-decade",
        ),
        (
            "gradcheck_steps",
            vec!["--quick", "--out", &bad_out],
            1,
            "output folder",
        ),
        ("monte_carlo", vec!["--repeats", "1"], 2, "--repeats"),
        (
            "monte_carlo",
            vec!["--quick", "--out", &bad_out],
            1,
            "output folder",
        ),
    ];
    for (program, args, code, needle) in cases {
        common::assert_fails_in_one_line(program, &args, code, needle);
    }
    assert_eq!(std::fs::read(&file_as_out).unwrap(), b"x");
}
