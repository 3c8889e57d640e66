//! The NLP chapter's experiment: character n-gram models of orders 1 to 8 counted on the
//! training split of the novel, each with add-k and with interpolated smoothing, their
//! parameters chosen on the validation split, scored in bits per character on the test split,
//! and sampled from.

use crate::data::text::{Corpus, SHIPPED_NAME};
use crate::ngram::{NGram, Smoothing};
use crate::plot::{Labels, Series, line_chart};
use crate::runner::{CommonArgs, Run, chapter_dir};
use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;

// ANCHOR: config
/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Models of orders `1..=max_order` are counted and compared.
    pub max_order: usize,
    /// The values of `k` tried for add-k smoothing.
    pub add_k_grid: Vec<f64>,
    /// The values of `beta` tried for interpolation.
    pub beta_grid: Vec<f64>,
    /// The text each sample continues.
    pub prompt: String,
    /// Characters generated per sample.
    pub sample_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_order: 8,
            add_k_grid: vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
            beta_grid: vec![0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
            prompt: "Elizabeth".to_string(),
            sample_len: 300,
        }
    }
}
// ANCHOR_END: config

/// One smoothing rule with its parameter chosen on the validation split.
#[derive(Clone, Debug, Serialize)]
pub struct Tuned {
    /// The chosen rule and parameter.
    pub smoothing: Smoothing,
    /// Validation bits per character of every parameter tried, `(parameter, bpc)`.
    pub grid: Vec<(f64, f64)>,
    /// Bits per character on the training split (how well the counts fit what they counted).
    pub train: f64,
    /// On the validation split (the smallest of `grid`).
    pub validation: f64,
    /// On the test split.
    pub test: f64,
}

/// The results for one order.
#[derive(Clone, Debug, Serialize)]
pub struct OrderResult {
    /// The order `n`.
    pub order: usize,
    /// Distinct contexts of `n - 1` characters in the training split.
    pub contexts: usize,
    /// Add-k smoothing.
    pub add_k: Tuned,
    /// Interpolated smoothing.
    pub interpolated: Tuned,
    /// A continuation of the prompt drawn from the better of the two on validation.
    pub sample: String,
}

impl OrderResult {
    /// The smoothing with the lower validation bits per character (add-k on a tie).
    pub fn best(&self) -> &Tuned {
        if self.interpolated.validation < self.add_k.validation {
            &self.interpolated
        } else {
            &self.add_k
        }
    }
}

/// What the experiment returns.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings used.
    pub config: Config,
    /// Characters in the vocabulary.
    pub vocab_size: usize,
    /// Characters in the training, validation and test splits.
    pub sizes: (usize, usize, usize),
    /// One entry per order, from 1.
    pub orders: Vec<OrderResult>,
}

impl Report {
    /// The model chosen on the validation split, among every order and smoothing.
    pub fn best(&self) -> (&OrderResult, &Tuned) {
        let mut best = (&self.orders[0], self.orders[0].best());
        for o in &self.orders[1..] {
            if o.best().validation < best.1.validation {
                best = (o, o.best());
            }
        }
        best
    }
}

// ANCHOR: tune
/// Chooses the parameter of a smoothing rule on `validation`: the one with the lowest bits per
/// character (the first of equals), then scores the choice on `train` and `test`.
pub fn tune(
    model: &NGram,
    rule: fn(f64) -> Smoothing,
    grid: &[f64],
    (train, validation, test): (&[usize], &[usize], &[usize]),
) -> Tuned {
    let scores: Vec<(f64, f64)> = grid
        .iter()
        .map(|&a| (a, model.bits_per_char(rule(a), validation)))
        .collect();
    let &(chosen, validation_bpc) = scores
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the grid is not empty");
    let smoothing = rule(chosen);
    Tuned {
        smoothing,
        grid: scores,
        train: model.bits_per_char(smoothing, train),
        validation: validation_bpc,
        test: model.bits_per_char(smoothing, test),
    }
}
// ANCHOR_END: tune

// ANCHOR: experiment
/// Counts, tunes, scores and samples the models of every order on the corpus's splits.
pub fn experiment(
    config: &Config,
    corpus: &Corpus,
    splits: (&[usize], &[usize], &[usize]),
    rng: &mut ChaCha8Rng,
) -> Result<Report> {
    let v = corpus.vocab.len();
    let prompt = corpus
        .vocab
        .encode(&config.prompt)
        .map_err(|c| anyhow::anyhow!("the prompt's character {c:?} does not occur in the text"))?;
    let mut orders = Vec::new();
    for order in 1..=config.max_order {
        let model = NGram::count(order, v, splits.0);
        let add_k = tune(&model, Smoothing::AddK, &config.add_k_grid, splits);
        let interpolated = tune(&model, Smoothing::Interpolated, &config.beta_grid, splits);
        let mut result = OrderResult {
            order,
            contexts: model.contexts(order - 1),
            add_k,
            interpolated,
            sample: String::new(),
        };
        let ids = model.sample(result.best().smoothing, &prompt, config.sample_len, rng);
        result.sample = corpus.vocab.decode(&ids);
        orders.push(result);
    }
    Ok(Report {
        config: config.clone(),
        vocab_size: v,
        sizes: (splits.0.len(), splits.1.len(), splits.2.len()),
        orders,
    })
}
// ANCHOR_END: experiment

/// The flags of `cargo run --release --example ngram`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "ngram",
    about = "Count character n-gram models on the novel, score them in bits per character and sample from them",
    after_help = "For this program, --data DIR reads the UTF-8 text DIR/text/pride-and-prejudice.txt \
                  (any text under that name), and --epochs does not apply: the models are counted in a \
                  single pass over the text."
)]
pub struct Cli {
    #[command(flatten)]
    /// The flags every chapter program has (`--data DIR` reads `DIR/text/pride-and-prejudice.txt`;
    /// `--epochs` does not apply to counting).
    pub common: CommonArgs,
    /// The highest order counted (1 is the unigram model).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=8))]
    pub max_order: Option<u64>,
    /// Characters generated per sample.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub sample_len: u64,
    /// The text every sample continues (its characters must occur in the training text).
    #[arg(long, default_value = "Elizabeth")]
    pub prompt: String,
}

/// The text the program reads: `text/pride-and-prejudice.txt` in the `--data` folder, or the
/// shipped novel.
pub fn load_corpus(common: &CommonArgs) -> Result<Corpus> {
    Corpus::load(&common.data_dir("text").join(SHIPPED_NAME)).context("cannot load the text")
}

// ANCHOR: program
/// The program: load the novel, split it, run the experiment, write the tables and samples.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    anyhow::ensure!(
        common.epochs.is_none(),
        "--epochs does not apply: an n-gram model is counted in a single pass over the text"
    );
    let config = Config {
        max_order: cli
            .max_order
            .map_or(if common.quick { 3 } else { 8 }, |n| n as usize),
        sample_len: if common.quick {
            (cli.sample_len as usize).min(80)
        } else {
            cli.sample_len as usize
        },
        prompt: cli.prompt.clone(),
        ..Config::default()
    };
    let run = Run::new(common, &chapter_dir("nlp"))?;
    let corpus = load_corpus(common)?;
    let (mut train, mut validation, mut test) = corpus.split();
    if common.quick {
        train = &train[..train.len().min(60_000)];
        validation = &validation[..validation.len().min(5_000)];
        test = &test[..test.len().min(10_000)];
    }
    anyhow::ensure!(
        !train.is_empty() && !validation.is_empty() && !test.is_empty(),
        "the text has {} characters: too few for a training, a validation and a test split \
         (the test split is the last 10%, the validation split the 5% before it)",
        corpus.len()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(common.seed);
    let report = experiment(&config, &corpus, (train, validation, test), &mut rng)?;
    let table = results_table(&report);
    print!("{table}");
    write_outputs(&run, &report, &table)
}
// ANCHOR_END: program

/// The Markdown results table: bits per character of every order and smoothing.
pub fn results_table(report: &Report) -> String {
    let mut t = String::new();
    let (n_train, n_val, n_test) = report.sizes;
    let _ = writeln!(
        t,
        "| order | contexts | add-k: k | validation | test | interpolated: β | validation | test |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in &report.orders {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.4} | {:.4} | {} | {:.4} | {:.4} |",
            o.order,
            o.contexts,
            o.add_k.smoothing.parameter(),
            o.add_k.validation,
            o.add_k.test,
            o.interpolated.smoothing.parameter(),
            o.interpolated.validation,
            o.interpolated.test,
        );
    }
    let (o, best) = report.best();
    let _ = writeln!(
        t,
        "\nBits per character; {n_train} training, {n_val} validation and {n_test} test \
         characters; vocabulary of {} characters (a uniform guess scores {:.4} bits). \
         Parameters chosen on the validation split from k in {:?} and β in {:?}. \
         Best on validation: order {}, {} (parameter {}), **{:.4} bits per character on the \
         test split**.",
        report.vocab_size,
        (report.vocab_size as f64).log2(),
        report.config.add_k_grid,
        report.config.beta_grid,
        o.order,
        best.smoothing.name(),
        best.smoothing.parameter(),
        best.test,
    );
    t
}

/// The samples, as Markdown: one fenced block per order.
pub fn samples_markdown(report: &Report) -> String {
    let mut t = String::new();
    for o in &report.orders {
        let b = o.best().smoothing;
        let _ = writeln!(
            t,
            "Order {} ({}, parameter {}):\n\n```text\n{}{}\n```\n",
            o.order,
            b.name(),
            b.parameter(),
            report.config.prompt,
            o.sample
        );
    }
    t
}

/// Writes `results.md`, `samples.md`, `bpc.svg`, `provenance.md` and `results.json`.
pub fn write_outputs(run: &Run, report: &Report, table: &str) -> Result<()> {
    run.write("results.md", table.as_bytes())?;
    run.write("samples.md", samples_markdown(report).as_bytes())?;
    let curve = |name: &str, f: fn(&OrderResult) -> f64| {
        Series::new(
            name,
            report
                .orders
                .iter()
                .map(|o| (o.order as f64, f(o)))
                .collect(),
        )
    };
    let chart = line_chart(
        Labels {
            title: "Character n-grams on the novel: bits per character by order",
            x: "order n (context of n - 1 characters)",
            y: "bits per character",
        },
        &[
            curve("add-k, train", |o| o.add_k.train),
            curve("add-k, test", |o| o.add_k.test),
            curve("interpolated, train", |o| o.interpolated.train),
            curve("interpolated, test", |o| o.interpolated.test),
        ],
    )?;
    run.write("bpc.svg", chart.as_bytes())?;
    run.write_record("provenance.md", "results.json", report)?;
    Ok(())
}
