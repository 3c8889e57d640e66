//! The probability chapter's experiment: how the error of a Monte Carlo estimate of a KL
//! divergence shrinks with the number of samples, against the `1/sqrt(n)` law.
//!
//! The estimand is `KL(q || p)` with `q = N(1, 0.5^2)` and `p = N(0, 1)`, the kind of term a
//! VAE's loss holds, because its closed form ([`kl_normal`]) gives the exact answer to measure
//! the error against, and [`kl_sample_std`] gives the exact standard deviation of one sample.

use crate::math::probability::{kl_normal, kl_sample_std, monte_carlo_kl};
use crate::plot::{Labels, Series, loglog_chart};
use crate::runner::{CommonArgs, Run, chapter_dir};
use anyhow::Result;
use plotters::prelude::SeriesLabelPosition;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;

/// The flags of `cargo run --release --example monte_carlo`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "monte_carlo",
    about = "Monte Carlo error against sample size: the probability chapter's figure"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has (`--epochs` and `--data` are not used here).
    pub common: CommonArgs,
    /// Independent estimates per sample size, over which the error is averaged.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    pub repeats: u64,
}

/// `q`, the distribution samples are drawn from: mean and standard deviation.
pub const Q: (f64, f64) = (1.0, 0.5);
/// `p`, the reference distribution: mean and standard deviation.
pub const P: (f64, f64) = (0.0, 1.0);

/// The error at one sample size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Row {
    /// Samples per estimate.
    pub n: usize,
    /// Root mean squared error of the estimates against the closed form.
    pub rms_error: f64,
    /// What theory predicts: one sample's standard deviation over `sqrt(n)`.
    pub predicted: f64,
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The closed-form KL divergence.
    pub exact: f64,
    /// The standard deviation of one sample of the estimator.
    pub sample_std: f64,
    /// Independent estimates per sample size.
    pub repeats: usize,
    /// One row per sample size, smallest first.
    pub rows: Vec<Row>,
}

/// Sample sizes `10^(k / 4)` (rounded) for `k = 4 ..= 4 * max_exponent`: four per decade.
pub fn sample_sizes(max_exponent: u32) -> Vec<usize> {
    (4..=4 * max_exponent)
        .map(|k| 10f64.powf(k as f64 / 4.0).round() as usize)
        .collect()
}

// ANCHOR: experiment
/// For each sample size `n`, draws `repeats` independent estimates of `KL(q || p)` from `n`
/// samples each and measures their root mean squared error against the closed form.
pub fn experiment(sizes: &[usize], repeats: usize, rng: &mut ChaCha8Rng) -> Report {
    let exact = kl_normal(Q.0, Q.1, P.0, P.1);
    let sample_std = kl_sample_std(Q, P);
    let rows = sizes
        .iter()
        .map(|&n| {
            let squared: f64 = (0..repeats)
                .map(|_| (monte_carlo_kl(Q, P, n, rng) - exact).powi(2))
                .sum();
            Row {
                n,
                rms_error: (squared / repeats as f64).sqrt(),
                predicted: sample_std / (n as f64).sqrt(),
            }
        })
        .collect();
    Report {
        exact,
        sample_std,
        repeats,
        rows,
    }
}
// ANCHOR_END: experiment

/// The Markdown table: one row per decade of `n`.
pub fn results_table(report: &Report) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| samples $n$ | RMS error | $\\sigma / \\sqrt{{n}}$ | ratio |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|");
    for row in report.rows.iter().filter(|r| {
        let l = (r.n as f64).log10();
        (l - l.round()).abs() < 1e-9
    }) {
        let _ = writeln!(
            t,
            "| {} | {:.2e} | {:.2e} | {:.3} |",
            row.n,
            row.rms_error,
            row.predicted,
            row.rms_error / row.predicted
        );
    }
    let _ = writeln!(
        t,
        "\nEstimates of $\\mathrm{{KL}}(q \\,\\|\\, p)$ with $q = \\mathcal{{N}}({}, {}^2)$ and \
         $p = \\mathcal{{N}}({}, {}^2)$, whose closed form is {:.6} nats; the RMS error is over \
         {} independent estimates per sample size, and $\\sigma = {:.6}$ is the exact standard \
         deviation of one sample.",
        Q.0, Q.1, P.0, P.1, report.exact, report.repeats, report.sample_std
    );
    t
}

/// The figure: measured RMS error and the `sigma / sqrt(n)` line, on log-log axes.
pub fn figure(report: &Report) -> Result<String> {
    loglog_chart(
        Labels {
            title: "Monte Carlo estimate of a KL divergence: error against samples",
            x: "samples n",
            y: "RMS error (nats)",
        },
        &[
            Series::new(
                format!("measured ({} repeats)", report.repeats),
                report
                    .rows
                    .iter()
                    .map(|r| (r.n as f64, r.rms_error))
                    .collect(),
            ),
            Series::new(
                "sigma / sqrt(n)",
                report
                    .rows
                    .iter()
                    .map(|r| (r.n as f64, r.predicted))
                    .collect(),
            ),
        ],
        SeriesLabelPosition::UpperRight,
    )
}

// ANCHOR: program
/// The program: estimate at every sample size, print the table, write the figure,
/// `results.md`, `provenance.md` and `results.json`.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let (sizes, repeats) = if common.quick {
        (sample_sizes(3), 20)
    } else {
        (sample_sizes(6), cli.repeats as usize)
    };
    let run = Run::new(common, &chapter_dir("math/probability"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(common.seed);
    let report = experiment(&sizes, repeats, &mut rng);
    let table = results_table(&report);
    print!("{table}");
    run.write("error.svg", figure(&report)?.as_bytes())?;
    run.write("results.md", table.as_bytes())?;
    run.write_record("provenance.md", "results.json", &report)
}
// ANCHOR_END: program
