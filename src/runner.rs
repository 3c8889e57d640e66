//! The program runner every chapter program shares: flags, the output folder, atomic writes,
//! progress, provenance, and turning every failure into one line on stderr.
//!
//! A chapter program is a few lines: a `clap` struct that flattens [`CommonArgs`] and adds the
//! chapter's own flags, and a function `run(args) -> anyhow::Result<()>` that calls the
//! chapter's experiment (a library function) and writes what it returns. [`main`] wraps it:
//! parse, run, and on any error print `error: ...` on one line and exit non-zero, so no reader
//! ever sees a panic or a backtrace for a wrong flag or a bad file.

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

// ANCHOR: common_args
/// The flags every chapter program understands.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonArgs {
    /// Seed of the random number generator (ChaCha8): the same seed gives the same numbers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of passes over the training data (default: the chapter's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub epochs: Option<u64>,
    /// A folder with the official full-size data files, in the same format as the shipped ones.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where figures and tables are written (default: the chapter's folder in the book).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A seconds-long run on a slice of the data, for tests; writes nothing unless --out is given.
    #[arg(long)]
    pub quick: bool,
}
// ANCHOR_END: common_args

impl CommonArgs {
    /// The epochs to train: the flag if given, else `quick` or `full` by mode.
    pub fn epochs_or(&self, full: usize, quick: usize) -> usize {
        match self.epochs {
            Some(e) => e as usize,
            None if self.quick => quick,
            None => full,
        }
    }
}

/// Parses `args` (the first being the program name) into the program's flags, as [`main`] does,
/// returning clap's message on failure.
pub fn parse<P: Parser>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> Result<P> {
    P::try_parse_from(args).map_err(|e| anyhow::anyhow!(first_line(&e.to_string())))
}

fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("invalid arguments");
    line.trim_start_matches("error: ").trim().to_string()
}

// ANCHOR: main
/// Runs a chapter program: parses the process's flags into `P` and calls `run`. `--help` and
/// `--version` print and exit 0; a bad flag or a failed run prints one line and exits 2 or 1.
pub fn main<P: Parser>(run: impl FnOnce(P) -> Result<()>) -> ExitCode {
    let args = match P::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {} (try --help)", first_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main

/// The output folder of one program run, and the record of how the run was made.
#[derive(Debug)]
pub struct Run {
    out: Option<PathBuf>,
    started: Instant,
    command: String,
    seed: u64,
    quiet: bool,
}

impl Run {
    /// Prepares a run: creates the output folder (`--out`, or `default_out` unless `--quick`),
    /// and checks that it can be written to before any training starts.
    pub fn new(common: &CommonArgs, default_out: &Path) -> Result<Run> {
        let out = match (&common.out, common.quick) {
            (Some(dir), _) => Some(dir.clone()),
            (None, false) => Some(default_out.to_path_buf()),
            (None, true) => None,
        };
        if let Some(dir) = &out {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
            let probe = dir.join(format!(".write-test-{}", std::process::id()));
            std::fs::write(&probe, b"")
                .with_context(|| format!("cannot write to the output folder {}", dir.display()))?;
            let _ = std::fs::remove_file(&probe);
        }
        Ok(Run {
            out,
            started: Instant::now(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            seed: common.seed,
            quiet: common.quick,
        })
    }

    /// Where outputs go, if anywhere.
    pub fn out(&self) -> Option<&Path> {
        self.out.as_deref()
    }

    /// A progress bar of `len` steps on stderr (hidden when stderr is not a terminal, and in
    /// `--quick` runs).
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    }

    /// Writes `contents` to `name` in the output folder, atomically: into a temporary file in
    /// the same folder first, then renamed over the old file, so an interrupted run never
    /// leaves a half-written figure or table. Does nothing when there is no output folder.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<()> {
        match &self.out {
            Some(dir) => write_atomic(&dir.join(name), contents),
            None => Ok(()),
        }
    }

    /// Writes the run's record: its provenance as a Markdown sentence into `provenance_md`, and
    /// `{"report": report, "provenance": ...}` as JSON into `json`.
    pub fn write_record(
        &self,
        provenance_md: &str,
        json: &str,
        report: &impl Serialize,
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Record<'a, R> {
            report: &'a R,
            provenance: Provenance,
        }
        let provenance = self.provenance();
        self.write(provenance_md, provenance.markdown().as_bytes())?;
        let record = serde_json::to_string_pretty(&Record { report, provenance })?;
        self.write(json, record.as_bytes())
    }

    /// How this run was made, for `results.json`.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            commit: git_commit(),
            command: self.command.clone(),
            seed: self.seed,
            threads: 1,
            cpu: cpu_name(),
            wall_seconds: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        }
    }
}

/// Writes a file atomically (temporary file in the same folder, flushed, then renamed).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

// ANCHOR: provenance
/// Where a result came from.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    /// The commit of the crate, with `-dirty` for uncommitted changes to its sources or data.
    pub commit: String,
    /// The command line.
    pub command: String,
    /// The seed.
    pub seed: u64,
    /// Threads used by the computation.
    pub threads: usize,
    /// The processor, from `/proc/cpuinfo` where there is one.
    pub cpu: String,
    /// Wall-clock time of the run, in seconds.
    pub wall_seconds: f64,
}
// ANCHOR_END: provenance

impl Provenance {
    /// A Markdown paragraph stating the provenance.
    pub fn markdown(&self) -> String {
        format!(
            "Produced by `{}` (seed {}) at commit `{}` on {} ({} thread), in {:.1} s.\n",
            self.command, self.seed, self.commit, self.cpu, self.threads, self.wall_seconds
        )
    }
}

/// The commit of the crate, with `-dirty` when the inputs of a result (the library, the
/// programs, the data, the manifest) differ from it. Outputs the programs write themselves (the
/// figures and tables under `chapters/`) do not count: regenerating them one program after
/// another must not mark the later runs dirty.
fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_string();
    };
    let inputs = [
        "status",
        "--porcelain",
        "--",
        "src",
        "code",
        "data",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ];
    match git(&inputs) {
        Some(changes) if changes.is_empty() => commit,
        _ => format!("{commit}-dirty"),
    }
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

// ANCHOR: finite
/// A loss or gradient that stopped being a finite number during training.
#[derive(Debug, thiserror::Error)]
#[error(
    "step {step}: the {quantity} is {value}; training stopped. Try a lower learning rate (--lr) or gradient clipping"
)]
pub struct NonFinite {
    /// The training step (counted from 1).
    pub step: usize,
    /// What went bad: "training loss", "gradient norm", ...
    pub quantity: &'static str,
    /// The value seen.
    pub value: f64,
}

/// Returns an error naming the step and the quantity if `value` is NaN or infinite.
pub fn ensure_finite(step: usize, quantity: &'static str, value: f64) -> Result<(), NonFinite> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(NonFinite {
            step,
            quantity,
            value,
        })
    }
}
// ANCHOR_END: finite
