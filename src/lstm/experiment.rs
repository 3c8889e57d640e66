//! The LSTM chapter's program: the adding problem (an LSTM against a tanh RNN with the same
//! budget) and a character language model on the novel, next to the n-gram models of the NLP
//! chapter, which it counts afresh on the same split so the comparison holds for any `--data`.

use super::Lstm;
use super::adding::{self, AddingConfig, AddingRun};
use super::charlm::{self, CharConfig, CharRun};
use super::models::{CharModel, LastStep};
use super::rnn::TanhRnn;
use crate::data::text::{Corpus, SHIPPED_NAME};
use crate::dropout::Dropout;
use crate::ngram::experiment as ngram;
use crate::optim::OptimizerConfig;
use crate::plot::{Labels, Series, line_chart};
use crate::runner::{CommonArgs, Run, Table, chapter_dir, pct};
use crate::vae::experiment::stream;
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;

/// The paper's adding-problem result at `T = 100` (Hochreiter and Schmidhuber, 1997, Table 7):
/// training sequences until the stopping criterion, and errors among 2,560 test sequences.
pub const PAPER_ADDING: (usize, usize) = (74_000, 1);

/// Which parts of the experiment to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Part {
    /// Both experiments.
    Both,
    /// Only the adding problem.
    Adding,
    /// Only the character model.
    Char,
    /// The character model's tuning sweep on the validation split (`char-tuning.md`): one
    /// setting changed at a time from the reference setting, at a reduced budget.
    Tune,
}

/// The flags of `cargo run --release --example lstm`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "lstm",
    about = "The adding problem (LSTM against a tanh RNN) and a character-level LSTM language model on the novel",
    after_help = "--data DIR reads the UTF-8 text DIR/text/pride-and-prejudice.txt (the adding problem \
                  generates its own data). --epochs does not apply: budgets are counted in steps."
)]
pub struct Cli {
    /// The flags every chapter program has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Which experiment to run (the tables and figures of the other are not rewritten).
    #[arg(long, value_enum, default_value_t = Part::Both)]
    pub part: Part,
    /// Adding problem: sequence length T.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(4..=10_000))]
    pub time: u64,
    /// Adding problem: hidden units of both models.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub adding_hidden: u64,
    /// Adding problem: the step budget of both models.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub adding_steps: Option<u64>,
    /// Adding problem: the LSTM's Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lstm_lr: f32,
    /// Adding problem: the LSTM's initial forget-gate bias (1 keeps 0.73 of the cell per step
    /// at first, too little for the wait; 5 keeps 0.993).
    #[arg(long, default_value_t = 5.0)]
    pub forget_bias: f64,
    /// Adding problem: the tanh RNN's Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub rnn_lr: f32,
    /// Character model: training steps (windows of every stream).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub char_steps: Option<u64>,
    /// Character model: hidden units per layer.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub char_hidden: u64,
    /// Character model: LSTM layers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=8))]
    pub depth: u64,
    /// Character model: characters per truncated-BPTT window.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub window: u64,
    /// Character model: streams per batch (even, to split over the two threads).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch: u64,
    /// Character model: Adam's initial learning rate (it decays linearly to a tenth). Chosen
    /// on validation by the tuning sweep (`--part tune`, `char-tuning.md`). Default 0.008;
    /// 0.002 with `--quick`, whose seconds-long run bounces at the full run's rate.
    #[arg(long)]
    pub char_lr: Option<f32>,
    /// Character model: dropout rate on the embeddings and the LSTM's outputs. Chosen on
    /// validation by the tuning sweep.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
    /// Tuning sweep (`--part tune`): training steps of each configuration tried.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub tune_steps: u64,
    /// `--save FILE` saves the character model; `--load FILE` scores a saved one instead of
    /// training (with `--part char`).
    #[command(flatten)]
    pub checkpoint: crate::checkpoint::CheckpointArgs,
}

/// Everything the program reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The adding problem, if it ran.
    pub adding: Option<AddingReport>,
    /// The character model, if it ran.
    pub char: Option<CharReport>,
}

/// The adding problem's results.
#[derive(Clone, Debug, Serialize)]
pub struct AddingReport {
    /// The LSTM's settings.
    pub lstm_config: AddingConfig,
    /// The RNN's settings.
    pub rnn_config: AddingConfig,
    /// The LSTM's run.
    pub lstm: AddingRun,
    /// The RNN's run.
    pub rnn: AddingRun,
}

/// The character model's results.
#[derive(Clone, Debug, Serialize)]
pub struct CharReport {
    /// The settings.
    pub config: CharConfig,
    /// Characters in the training, validation and test splits, and the vocabulary size.
    pub sizes: (usize, usize, usize, usize),
    /// The training run (absent for `--load`).
    pub run: Option<CharRun>,
    /// Test bits per character of the model reported.
    pub test_bpc: f64,
    /// Validation bits per character of the model reported.
    pub validation_bpc: f64,
    /// `(order, add-k test, interpolated test, interpolated validation)` of every n-gram order.
    pub ngram: Vec<(usize, f64, f64, f64)>,
    /// `(temperature, text)` samples continuing the prompt.
    pub samples: Vec<(f32, String)>,
}

/// The prompt every sample continues.
pub const PROMPT: &str = "Elizabeth";
/// The sampling temperatures.
pub const TEMPERATURES: [f32; 3] = [0.5, 0.8, 1.0];

impl Cli {
    /// The adding problem's settings of one model.
    pub fn adding_config(&self, lr: f32) -> AddingConfig {
        let quick = self.common.quick;
        AddingConfig {
            time: if quick { 20 } else { self.time as usize },
            hidden: if quick {
                16
            } else {
                self.adding_hidden as usize
            },
            batch: 32,
            max_steps: self
                .adding_steps
                .map_or(if quick { 150 } else { 6_000 }, |s| s as usize),
            eval_every: if quick { 50 } else { 250 },
            eval_sequences: if quick { 256 } else { 2_560 },
            solved_at: 0.99,
            optimizer: OptimizerConfig::adam(lr),
            clip: Some(1.0),
            forget_bias: self.forget_bias,
        }
    }

    /// The character model's learning rate: the flag, or the default of the run's size.
    pub fn char_lr(&self) -> f32 {
        self.char_lr
            .unwrap_or(if self.common.quick { 2e-3 } else { 8e-3 })
    }

    /// The character model's settings, checked.
    pub fn char_config(&self) -> Result<CharConfig> {
        let quick = self.common.quick;
        let batch = self.batch as usize;
        let config = CharConfig {
            embed: if quick { 16 } else { 64 },
            hidden: if quick { 32 } else { self.char_hidden as usize },
            depth: self.depth as usize,
            dropout: self.dropout,
            batch,
            window: if quick { 20 } else { self.window as usize },
            steps: self
                .char_steps
                .map_or(if quick { 60 } else { 4_000 }, |s| s as usize),
            eval_every: if quick { 20 } else { 250 },
            optimizer: OptimizerConfig::adam(self.char_lr()),
            final_lr_fraction: 0.1,
            clip: 1.0,
            threads: if batch.is_multiple_of(2) { 2 } else { 1 },
        };
        config.optimizer.validate()?;
        Dropout::new(config.dropout)?;
        Ok(config)
    }
}

fn describe(config: &CharConfig, vocab: usize) -> String {
    format!(
        "vocab {vocab}, embed {}, {} x LSTM {}",
        config.embed, config.depth, config.hidden
    )
}

/// Runs the adding problem: the LSTM and the tanh RNN side by side, one thread each, on the
/// same training sequences, validated and tested on the same fresh sequences.
pub fn adding_experiment(cli: &Cli, run: &Run) -> Result<AddingReport> {
    let seed = cli.common.seed;
    let lstm_config = cli.adding_config(cli.lstm_lr);
    lstm_config.optimizer.validate()?;
    let rnn_config = cli.adding_config(cli.rnn_lr);
    rnn_config.optimizer.validate()?;
    let c = &lstm_config;
    let validation = adding::sequences::<f32>(c.eval_sequences, c.time, &mut stream(seed, 3));
    let test = adding::sequences::<f32>(c.eval_sequences, c.time, &mut stream(seed, 4));
    let bar = run.progress(2 * c.max_steps as u64, "adding");
    let tick = |_: usize| bar.inc(c.eval_every as u64);
    let (lstm, rnn) = std::thread::scope(|s| {
        let rnn = s.spawn(|| {
            let mut init = stream(seed, 1);
            let mut model =
                LastStep::new(TanhRnn::new(2, rnn_config.hidden, &mut init), 1, &mut init);
            adding::train(
                "tanh RNN",
                &mut model,
                &rnn_config,
                &validation,
                &test,
                &mut stream(seed, 2),
                &tick,
            )
        });
        let mut init = stream(seed, 0);
        let mut lstm = Lstm::new(2, lstm_config.hidden, &mut init);
        lstm.set_forget_bias(lstm_config.forget_bias as f32);
        let mut model = LastStep::new(lstm, 1, &mut init);
        let lstm = adding::train(
            "LSTM",
            &mut model,
            &lstm_config,
            &validation,
            &test,
            &mut stream(seed, 2),
            &tick,
        );
        (
            lstm,
            rnn.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    bar.finish_and_clear();
    Ok(AddingReport {
        lstm_config,
        rnn_config,
        lstm: lstm?,
        rnn: rnn?,
    })
}

/// The text: `text/pride-and-prejudice.txt` under `--data`, or the shipped novel.
fn load_corpus(common: &CommonArgs) -> Result<Corpus> {
    Corpus::load(&common.data_dir("text").join(SHIPPED_NAME)).context("cannot load the text")
}

/// The character model's dropout draws: one stream per thread (streams 6, 7, ...), so every
/// training run of the program, the sweep's included, draws the same masks from the same seed.
fn dropout_streams(seed: u64, threads: usize) -> Vec<rand_chacha::ChaCha8Rng> {
    (0..threads as u64).map(|k| stream(seed, 6 + k)).collect()
}

/// The novel's training, validation and test splits (cut short by `--quick`), checked to be long
/// enough for `config`.
fn char_splits<'a>(
    cli: &Cli,
    corpus: &'a Corpus,
    config: &CharConfig,
) -> Result<(&'a [usize], &'a [usize], &'a [usize])> {
    let (mut train, mut validation, mut test) = corpus.split();
    if cli.common.quick {
        train = &train[..train.len().min(40_000)];
        validation = &validation[..validation.len().min(4_000)];
        test = &test[..test.len().min(4_000)];
    }
    let need = config.batch * config.window + 1;
    anyhow::ensure!(
        train.len() > need && validation.len() > config.batch && test.len() > 1,
        "the text has {} characters: too few for {} streams of {}-character windows on the \
         training split (the last 15% are held out for validation and test)",
        corpus.len(),
        config.batch,
        config.window
    );
    Ok((train, validation, test))
}

/// Runs the character model: trains (or loads) it, scores it, samples from it, and counts
/// the n-gram models of the same split beside it.
pub fn char_experiment(cli: &Cli, run: &Run) -> Result<(CharReport, CharModel<f32>)> {
    let seed = cli.common.seed;
    let config = cli.char_config()?;
    let corpus = load_corpus(&cli.common)?;
    let splits = char_splits(cli, &corpus, &config)?;
    let (train, validation, test) = splits;
    let vocab = corpus.vocab.len();
    let (model, char_run) = match &cli.checkpoint.load {
        Some(file) => {
            let mut model = CharModel::new(
                vocab,
                config.embed,
                config.hidden,
                config.depth,
                Dropout::new(config.dropout)?,
                &mut stream(seed, 5),
            );
            crate::checkpoint::load(&mut model, "lstm-char", &describe(&config, vocab), file)?;
            (model, None)
        }
        None => {
            let bar = run.progress(config.steps as u64, "char model");
            let mut dropout_rngs = dropout_streams(seed, config.threads);
            let (model, r) = charlm::train(
                &config,
                vocab,
                splits,
                &mut stream(seed, 5),
                &mut dropout_rngs,
                &|step, val| {
                    bar.set_position(step as u64);
                    bar.set_message(format!("validation {val:.4} bits/char"));
                },
            )?;
            bar.finish_and_clear();
            (model, Some(r))
        }
    };
    let (validation_bpc, test_bpc) = match &char_run {
        Some(r) => (r.validation_bpc, r.test_bpc),
        None => {
            let bpc = |ids: &[usize]| {
                crate::data::text::bits_per_char(charlm::evaluate(&model, ids, 1, config.window))
            };
            (bpc(validation), bpc(test))
        }
    };
    let ngram_config = ngram::Config {
        max_order: if cli.common.quick { 3 } else { 8 },
        sample_len: 0,
        ..ngram::Config::default()
    };
    let counted = ngram::experiment(&ngram_config, &corpus, splits, &mut stream(seed, 9))?;
    let ngram = counted
        .orders
        .iter()
        .map(|o| {
            (
                o.order,
                o.add_k.test,
                o.interpolated.test,
                o.interpolated.validation,
            )
        })
        .collect();
    let prompt = corpus
        .vocab
        .encode(PROMPT)
        .map_err(|c| anyhow::anyhow!("the prompt's character {c:?} does not occur in the text"))?;
    let len = if cli.common.quick { 40 } else { 400 };
    let mut rng = stream(seed, 10);
    let samples = TEMPERATURES
        .iter()
        .map(|&t| {
            (
                t,
                corpus
                    .vocab
                    .decode(&charlm::sample(&model, &prompt, len, t, &mut rng)),
            )
        })
        .collect();
    let report = CharReport {
        config,
        sizes: (train.len(), validation.len(), test.len(), vocab),
        run: char_run,
        test_bpc,
        validation_bpc,
        ngram,
        samples,
    };
    Ok((report, model))
}

/// One configuration of the tuning sweep.
#[derive(Clone, Debug, Serialize)]
pub struct TuneRow {
    /// The setting changed from the reference (`reference` for the reference itself).
    pub knob: &'static str,
    /// Its value.
    pub value: String,
    /// Validation bits per character of the kept parameters (one stream).
    pub validation_bpc: f64,
    /// The step whose parameters were kept (the best validation check).
    pub best_step: usize,
    /// CPU seconds the configuration took (both threads).
    pub cpu_seconds: Option<f64>,
}

/// The tuning sweep's results.
#[derive(Clone, Debug, Serialize)]
pub struct TuneReport {
    /// The reference setting, at the sweep's budget.
    pub reference: CharConfig,
    /// Every configuration tried, the reference first.
    pub rows: Vec<TuneRow>,
}

// ANCHOR: tune
/// The settings the sweep tries: the reference (the flags' values) and, one at a time, other
/// values of the learning rate, the dropout rate, the hidden size and the window, each trained
/// for `--tune-steps` steps from the same seed. Larger models and windows are not tried: their
/// steps cost more than the default run's ten-minute budget leaves room for.
pub fn tune_configs(cli: &Cli) -> Result<Vec<(&'static str, String, CharConfig)>> {
    let mut reference = cli.char_config()?;
    reference.steps = if cli.common.quick {
        40
    } else {
        cli.tune_steps as usize
    };
    let mut out = vec![(
        "reference",
        "the flags' values".to_string(),
        reference.clone(),
    )];
    let mut vary = |knob, value: String, change: &dyn Fn(&mut CharConfig)| {
        let mut c = reference.clone();
        change(&mut c);
        out.push((knob, value, c));
    };
    let lr = reference.optimizer.lr;
    for f in [0.5f32, 2.0, 4.0] {
        vary("learning rate", format!("{}", lr * f), &|c| {
            c.optimizer.lr = lr * f
        });
    }
    for p in [0.0, 0.1, 0.2] {
        if p != reference.dropout {
            vary("dropout", format!("{p}"), &|c| c.dropout = p);
        }
    }
    let hidden = reference.hidden * 3 / 4;
    vary("hidden units", hidden.to_string(), &|c| c.hidden = hidden);
    let window = (reference.window * 16).div_ceil(25);
    vary("window", window.to_string(), &|c| c.window = window);
    Ok(out)
}

/// Trains every configuration of [`tune_configs`] and scores it on the validation split. The
/// test split is never read here.
pub fn tune_experiment(cli: &Cli, run: &Run) -> Result<TuneReport> {
    let seed = cli.common.seed;
    let configs = tune_configs(cli)?;
    let corpus = load_corpus(&cli.common)?;
    let vocab = corpus.vocab.len();
    let mut rows = Vec::new();
    for (knob, value, config) in &configs {
        let (train, validation, _) = char_splits(cli, &corpus, config)?;
        let bar = run.progress(config.steps as u64, &format!("{knob} {value}"));
        let mut dropout_rngs = dropout_streams(seed, config.threads);
        let cpu = crate::runner::cpu_seconds();
        let fitted = charlm::fit(
            config,
            vocab,
            (train, validation),
            &mut stream(seed, 5),
            &mut dropout_rngs,
            &|step, _| bar.set_position(step as u64),
        )?;
        bar.finish_and_clear();
        let nats = charlm::evaluate(&fitted.model, validation, 1, config.window);
        rows.push(TuneRow {
            knob,
            value: value.clone(),
            validation_bpc: crate::data::text::bits_per_char(nats),
            best_step: fitted.best_step,
            cpu_seconds: cpu.zip(crate::runner::cpu_seconds()).map(|(a, b)| b - a),
        });
    }
    Ok(TuneReport {
        reference: configs[0].2.clone(),
        rows,
    })
}
// ANCHOR_END: tune

/// The tuning sweep's table: every configuration's validation score, the best of each setting
/// in bold.
pub fn tune_table(r: &TuneReport) -> String {
    let reference = r.rows[0].validation_bpc;
    let mut t = Table::new(
        &[
            "setting changed",
            "value",
            "validation bits/char",
            "best step",
            "CPU seconds",
        ],
        "llrrr",
    );
    for row in &r.rows {
        let better = row.validation_bpc < reference;
        let bpc = format!("{:.4}", row.validation_bpc);
        t.row([
            row.knob.to_string(),
            row.value.clone(),
            if better { format!("**{bpc}**") } else { bpc },
            row.best_step.to_string(),
            row.cpu_seconds.map_or("?".into(), |s| format!("{s:.0}")),
        ]);
    }
    let c = &r.reference;
    let mut s = t.to_string();
    let _ = writeln!(
        s,
        "\nEach configuration trained for {} steps of {} streams from the same seed, the reference \
         being {} x LSTM {}, windows of {}, {} decaying linearly to {} of it, dropout {}; the others \
         change one setting each. The score is the validation split's bits per character (one \
         stream) of the parameters of the best validation check; bold marks a configuration \
         better than the reference. The test split is not read.",
        c.steps,
        c.batch,
        c.depth,
        c.hidden,
        c.window,
        c.optimizer.describe(),
        c.final_lr_fraction,
        c.dropout,
    );
    s
}

// ANCHOR: program
/// The program: run the parts asked for, write their tables and figures.
pub fn run(cli: Cli) -> Result<()> {
    let common = &cli.common;
    anyhow::ensure!(
        common.epochs.is_none(),
        "--epochs does not apply: this program counts its budgets in steps (--adding-steps, --char-steps)"
    );
    anyhow::ensure!(
        cli.checkpoint.load.is_none() || cli.part == Part::Char,
        "--load scores a saved character model: give --part char with it"
    );
    for (flag, lr) in [
        ("--lstm-lr", cli.lstm_lr),
        ("--rnn-lr", cli.rnn_lr),
        ("--char-lr", cli.char_lr()),
    ] {
        anyhow::ensure!(
            lr.is_finite() && lr > 0.0,
            "{flag} must be a positive number, got {lr}"
        );
    }
    cli.char_config()?;
    let mut run = Run::new(common, &chapter_dir("lstm"))?;
    run.set_threads(
        2,
        Some("the LSTM and the RNN side by side; the character model's batch split in halves"),
    );
    if cli.part == Part::Tune {
        let report = tune_experiment(&cli, &run)?;
        let table = tune_table(&report);
        print!("{table}");
        run.write("char-tuning.md", table.as_bytes())?;
        return run.write_record("tuning-provenance.md", "tuning.json", &report);
    }
    let adding = match cli.part {
        Part::Both | Part::Adding => Some(adding_experiment(&cli, &run)?),
        Part::Char | Part::Tune => None,
    };
    let char = match cli.part {
        Part::Both | Part::Char => {
            let (report, model) = char_experiment(&cli, &run)?;
            if cli.checkpoint.load.is_none() {
                cli.checkpoint.save_if_asked(
                    &model,
                    "lstm-char",
                    &describe(&report.config, report.sizes.3),
                )?;
            }
            Some(report)
        }
        Part::Adding | Part::Tune => None,
    };
    let report = Report { adding, char };
    if cli.checkpoint.load.is_some() && common.out.is_none() {
        print!("{}", char_table(report.char.as_ref().expect("ran")));
        return Ok(());
    }
    write_outputs(&run, &report)
}
// ANCHOR_END: program

/// The adding problem's results table.
pub fn adding_table(r: &AddingReport) -> String {
    let mut t = Table::new(
        &[
            "model",
            "hidden",
            "optimiser, clipping",
            "batch",
            "steps",
            "training sequences",
            "solved (validation) at step",
            "test correct",
            "test MSE",
        ],
        "lrlrrrrrr",
    );
    for (run, c) in [(&r.lstm, &r.lstm_config), (&r.rnn, &r.rnn_config)] {
        t.row([
            run.model.clone(),
            c.hidden.to_string(),
            format!(
                "{}, {}",
                c.optimizer.describe(),
                c.clip.map_or("none".into(), |m| format!("norm {m}"))
            ),
            c.batch.to_string(),
            run.steps.to_string(),
            (run.steps * c.batch).to_string(),
            run.solved_at_step
                .map_or("not solved".into(), |s| s.to_string()),
            pct(run.test_correct),
            format!("{:.5}", run.test_mse),
        ]);
    }
    let c = &r.lstm_config;
    let errors = ((1.0 - r.lstm.test_correct) * c.eval_sequences as f64).round();
    let mut s = t.to_string();
    let _ = writeln!(
        s,
        "\nThe adding problem at T = {}: a prediction is correct when its absolute error is below {}; \
         {} fresh validation sequences decide when training stops (at {} correct) and {} other fresh \
         sequences are the test. The LSTM's test errors: {errors} of {}. The paper (Hochreiter and \
         Schmidhuber, 1997, Table 7) stopped after {} training sequences, one at a time, with {} error \
         in 2,560 test sequences.",
        c.time,
        adding::TOLERANCE,
        c.eval_sequences,
        pct(c.solved_at),
        c.eval_sequences,
        c.eval_sequences,
        PAPER_ADDING.0,
        PAPER_ADDING.1,
    );
    s
}

/// The character model's results table, with every n-gram order beside it.
pub fn char_table(r: &CharReport) -> String {
    let mut t = Table::new(&["model", "validation bits/char", "test bits/char"], "lrr");
    let c = &r.config;
    t.row([
        format!(
            "LSTM, {} x {} units, embedding {}",
            c.depth, c.hidden, c.embed
        ),
        format!("{:.4}", r.validation_bpc),
        format!("**{:.4}**", r.test_bpc),
    ]);
    for &(order, add_k, interp, interp_val) in &r.ngram {
        t.row([
            format!("{order}-gram, interpolated (add-k: {add_k:.4} on test)"),
            format!("{interp_val:.4}"),
            format!("{interp:.4}"),
        ]);
    }
    let mut s = t.to_string();
    let (n_train, n_val, n_test, vocab) = r.sizes;
    let _ = write!(
        s,
        "\nBits per character on the novel's held-out splits ({n_train} training, {n_val} validation, \
         {n_test} test characters, {vocab} symbols), every character after the first of a split \
         predicted once. "
    );
    if let Some(run) = &r.run {
        let _ = write!(
            s,
            "The LSTM trained for {} steps of {} streams x {} characters ({:.1} passes over the \
             training split) with {}, decaying linearly to {} of it, clipping at norm {}, dropout {}; \
             the parameters kept are those of step {}, the best of the validation checks every {} \
             steps; their training-split score (read as {} streams) is {:.4}.",
            c.steps,
            c.batch,
            c.window,
            run.epochs,
            c.optimizer.describe(),
            c.final_lr_fraction,
            c.clip,
            c.dropout,
            run.best_step,
            c.eval_every,
            c.batch,
            run.train_bpc,
        );
    }
    s.push('\n');
    s
}

fn write_outputs(run: &Run, report: &Report) -> Result<()> {
    if let Some(a) = &report.adding {
        let table = adding_table(a);
        print!("{table}");
        run.write("adding.md", table.as_bytes())?;
        let curve = |r: &AddingRun| {
            Series::new(
                r.model.clone(),
                r.curve.iter().map(|&(s, c, _)| (s as f64, c)).collect(),
            )
        };
        let chart = line_chart(
            Labels {
                title: "The adding problem: fraction of validation sequences correct",
                x: "training step (32 sequences each)",
                y: "fraction correct (|error| < 0.04)",
            },
            &[curve(&a.lstm), curve(&a.rnn)],
        )?;
        run.write("adding-accuracy.svg", chart.as_bytes())?;
        let norms = |name: &str, v: &[f64]| {
            Series::new(
                name,
                v.iter()
                    .enumerate()
                    .map(|(t, &n)| ((t + 1) as f64, n.max(1e-30).log10()))
                    .collect(),
            )
        };
        let chart = line_chart(
            Labels {
                title: "Gradient reaching the hidden state at step t",
                x: "time step t (the loss is read after the last step)",
                y: "log10 |dL/dh_t|",
            },
            &[
                norms("LSTM, initial", &a.lstm.dh_norms_initial),
                norms("LSTM, trained", &a.lstm.dh_norms_trained),
                norms("tanh RNN, initial", &a.rnn.dh_norms_initial),
                norms("tanh RNN, trained", &a.rnn.dh_norms_trained),
            ],
        )?;
        run.write("adding-gradients.svg", chart.as_bytes())?;
    }
    if let Some(c) = &report.char {
        let table = char_table(c);
        print!("{table}");
        run.write("char.md", table.as_bytes())?;
        let mut samples = String::new();
        for (t, text) in &c.samples {
            let _ = writeln!(
                samples,
                "Temperature {t}:\n\n```text\n{PROMPT}{text}\n```\n"
            );
        }
        run.write("samples.md", samples.as_bytes())?;
        if let Some(r) = &c.run {
            let best = c
                .ngram
                .iter()
                .min_by(|a, b| a.3.total_cmp(&b.3))
                .expect("at least one order");
            let x0 = r.curve.first().map_or(0.0, |p| p.0 as f64);
            let x1 = r.curve.last().map_or(1.0, |p| p.0 as f64);
            let chart = line_chart(
                Labels {
                    title: "Character LSTM on the novel: bits per character",
                    x: "training step",
                    y: "bits per character",
                },
                &[
                    Series::new(
                        "LSTM, training windows",
                        r.curve.iter().map(|p| (p.0 as f64, p.1)).collect(),
                    ),
                    Series::new(
                        "LSTM, validation",
                        r.curve.iter().map(|p| (p.0 as f64, p.2)).collect(),
                    ),
                    Series::new(
                        format!("best n-gram ({}-gram), validation", best.0),
                        vec![(x0, best.3), (x1, best.3)],
                    ),
                ],
            )?;
            run.write("char-bpc.svg", chart.as_bytes())?;
        }
    }
    // Each part keeps its own record, so `--part adding` and `--part char` can be rerun
    // separately without overwriting the other's provenance.
    if let Some(a) = &report.adding {
        run.write_record("adding-provenance.md", "adding.json", a)?;
    }
    if let Some(c) = &report.char {
        run.write_record("char-provenance.md", "char.json", c)?;
    }
    Ok(())
}
