//! The gradient-checking chapter's experiment: the error of forward and central differences
//! against the step size, in f64 and f32, on a small softmax-regression loss whose exact
//! gradient we know. Draws the V-shaped log-log figure and writes the table of best steps.

use crate::gradcheck::TOLERANCE;
use crate::math::finite_diff::{Problem, StepError, log_steps, sweep};
use crate::plot::{Labels, Series, loglog_chart};
use crate::runner::{CommonArgs, Run, chapter_dir};
use anyhow::Result;
use plotters::prelude::SeriesLabelPosition;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;

/// The flags of `cargo run --release --example gradcheck_steps`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "gradcheck_steps",
    about = "Finite-difference error against step size: the gradient-checking chapter's figure"
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has (`--epochs` and `--data` are not used here).
    pub common: CommonArgs,
    /// Step sizes per decade of h (the sweep covers h = 1e-1 down to 1e-14).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub per_decade: u64,
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Rows, columns and classes of the problem: `X` is `[batch, input]`, `W` `[input, classes]`.
    pub shape: (usize, usize, usize),
    /// The errors at every step, largest step first.
    pub errors: Vec<StepError>,
}

/// The best step of one scheme: where its error is smallest.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Best {
    /// The step with the smallest error.
    pub h: f64,
    /// That error.
    pub error: f64,
}

// ANCHOR: experiment
/// Sweeps `h` from `1e-1` down to `1e-14`, `per_decade` steps per decade, on a random
/// softmax-regression problem (8 examples, 5 inputs, 3 classes).
pub fn experiment(per_decade: usize, rng: &mut ChaCha8Rng) -> Report {
    let shape = (8, 5, 3);
    let problem = Problem::random(shape.0, shape.1, shape.2, rng);
    let steps = log_steps(1.0, 14.0, 13 * per_decade + 1);
    Report {
        shape,
        errors: sweep(&problem, &steps),
    }
}
// ANCHOR_END: experiment

/// The step with the smallest error of the column picked by `error`.
pub fn best(errors: &[StepError], error: fn(&StepError) -> f64) -> Best {
    errors
        .iter()
        .map(|e| Best {
            h: e.h,
            error: error(e),
        })
        .fold(
            Best {
                h: f64::NAN,
                error: f64::INFINITY,
            },
            |a, b| if b.error < a.error { b } else { a },
        )
}

type Column = (&'static str, &'static str, fn(&StepError) -> f64);

/// The four curves: scheme, precision, and how to read the error off a [`StepError`].
pub const COLUMNS: [Column; 4] = [
    ("forward", "f64", |e| e.forward_f64),
    ("central", "f64", |e| e.central_f64),
    ("forward", "f32", |e| e.forward_f32),
    ("central", "f32", |e| e.central_f32),
];

/// The Markdown table: for each scheme and precision, the best step and its error, and the
/// error at the book's default step `1e-5`.
pub fn results_table(report: &Report) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scheme | precision | best step $h$ | smallest relative error | error at $h = 10^{{-5}}$ |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|");
    let at_default = report
        .errors
        .iter()
        .min_by(|a, b| {
            let d = |e: &StepError| (e.h.log10() + 5.0).abs();
            d(a).total_cmp(&d(b))
        })
        .copied();
    for (scheme, precision, column) in COLUMNS {
        let b = best(&report.errors, column);
        let default = at_default.map_or(f64::NAN, |e| column(&e));
        let _ = writeln!(
            t,
            "| {scheme} | {precision} | {:.1e} | {:.1e} | {:.1e} |",
            b.h, b.error, default
        );
    }
    let (batch, input, classes) = report.shape;
    let _ = writeln!(
        t,
        "\nNorm-wise relative error of the finite-difference gradient of a softmax-regression \
         loss ({batch} examples, {input} inputs, {classes} classes, {} weights) against its exact \
         gradient, at {} step sizes from $10^{{-1}}$ to $10^{{-14}}$. The book's gradient checks \
         demand an error below {TOLERANCE:.0e}.",
        input * classes,
        report.errors.len()
    );
    t
}

/// The figure: error against step for the four curves, and the tolerance as a line.
pub fn figure(report: &Report) -> Result<String> {
    let mut series: Vec<Series> = COLUMNS
        .iter()
        .map(|(scheme, precision, column)| {
            Series::new(
                format!("{scheme}, {precision}"),
                report.errors.iter().map(|e| (e.h, column(e))).collect(),
            )
        })
        .collect();
    let (lo, hi) = report
        .errors
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), e| {
            (lo.min(e.h), hi.max(e.h))
        });
    series.push(Series::new(
        "tolerance 1e-6",
        vec![(lo, TOLERANCE), (hi, TOLERANCE)],
    ));
    loglog_chart(
        Labels {
            title: "Finite-difference gradient: error against step size",
            x: "step h",
            y: "relative error",
        },
        &series,
        SeriesLabelPosition::LowerLeft,
    )
}

// ANCHOR: program
/// The program: sweep, print the table, write the figure, `results.md`, `provenance.md` and
/// `results.json`.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    let per_decade = if common.quick {
        2
    } else {
        cli.per_decade as usize
    };
    let run = Run::new(common, &chapter_dir("math/gradient-checking"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(common.seed);
    let report = experiment(per_decade, &mut rng);
    let table = results_table(&report);
    print!("{table}");
    run.write("steps.svg", figure(&report)?.as_bytes())?;
    run.write("results.md", table.as_bytes())?;
    run.write_record("provenance.md", "results.json", &report)
}
// ANCHOR_END: program
