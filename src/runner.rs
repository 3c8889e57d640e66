//! The program runner every chapter program shares: flags, the output folder, atomic writes,
//! progress, provenance, and turning every failure into one line on stderr.
//!
//! A chapter program is a few lines: a `clap` struct that flattens [`CommonArgs`] and adds the
//! chapter's own flags, and a function `run(args) -> anyhow::Result<()>` that calls the
//! chapter's experiment (a library function) and writes what it returns. [`main`] wraps it:
//! parse, run, and on any error print `error: ...` on one line and exit non-zero, so no reader
//! ever sees a panic or a backtrace for a wrong flag or a bad file.

use crate::float::Float;
use crate::optim::Optimizer;
use crate::param::{Params, grad_norm, grads_finite, zero_grads};
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
    /// A folder laid out like the book's `data/` (`mnist/`, `digits/`, `text/`), holding the
    /// official full-size files in the same formats and under the same names as the shipped ones.
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
    /// The folder of one data set: `DIR/<set>` for `--data DIR`, else the shipped
    /// `data/<set>`. Every program finds its files this way, so `--data` means the same
    /// everywhere.
    pub fn data_dir(&self, set: &str) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(crate::data::shipped_dir)
            .join(set)
    }

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

/// Clap's first line, with the next one joined on when the first ends in a colon (a missing
/// argument is named on the line after "the following required arguments were not provided:").
fn first_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.trim_start_matches("error: ");
    match (first.ends_with(':'), lines.next()) {
        (true, Some(next)) => format!("{first} {next}"),
        _ => first.to_string(),
    }
}

// ANCHOR: main
/// Runs a chapter program: parses the process's flags into `P` and calls `run`. `--help` and
/// `--version` print and exit 0; a bad flag or a failed run prints one line and exits 2 or 1.
///
/// The matrix products run on one thread unless `MATMUL_NUM_THREADS` says otherwise: most
/// chapter programs already train two models side by side, one per core, and threading each
/// product as well would put four threads on two cores (the performance appendix measures
/// both). Results are the same bytes either way.
pub fn main<P: Parser + Send>(run: impl FnOnce(P) -> Result<()> + Send) -> ExitCode {
    keep_freed_memory();
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: the first thing the program does, before any other thread exists.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", "1") };
    }
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
    match crate::matmul::on_workers(|| run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main

/// Lets the allocator keep the memory a training step frees for the next step, instead of handing
/// it back to the operating system.
///
/// A training step allocates the same large arrays every time (a layer's output, an attention
/// layer's weights, a cache) and frees them at its end. glibc's `malloc` serves blocks above
/// its mmap threshold (128 KiB at first, raised on the fly up to 32 MiB) with a fresh mapping and
/// unmaps them on `free`, and it trims the top of its heap when more than a threshold is free:
/// either way the next step's arrays land on pages the kernel must fault in and zero again. The
/// performance appendix's profiles found a fifth of the attention and LSTM workloads' time in
/// the kernel doing that. Raising the mmap threshold to 32 MiB (the most glibc accepts: larger
/// than any array a training step of the book allocates) and the trim threshold out of reach
/// removes it.
///
/// A third setting is for programs that use several threads. There a step runs on a worker
/// thread of the pool (see [`crate::matmul::on_workers`]), and glibc gives each thread its own
/// arena: a heap of at most 64 MiB, chained to a further heap when it fills. A chained heap that
/// becomes wholly free is unmapped whatever the trim threshold says, so a step whose arrays
/// overflow one heap (the Transformer workload's do) faulted in a few megabytes afresh every
/// step. Limiting glibc to one arena, the main one, whose heap is never trimmed with the setting
/// above, removes that too. The threads then share the arena's lock; in profiles of the
/// Transformer and attention workloads at two threads, all of the allocator's functions together
/// took under 1% of a step and waiting for that lock 0.01%.
///
/// Nothing else changes: the same arithmetic runs on the same values. Elsewhere than glibc on
/// Linux this does nothing, and so it does when `DLFS_ALLOCATOR_DEFAULTS=1` is set;
/// `DLFS_ALLOCATOR_DEFAULTS=arenas` sets the two thresholds and leaves the arenas alone.
/// `bench/perf_profile.py` uses both to measure what each setting does.
pub fn keep_freed_memory() {
    let defaults = std::env::var_os("DLFS_ALLOCATOR_DEFAULTS");
    if defaults.as_ref().is_some_and(|v| v == "1") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets the allocator's two thresholds and its arena limit; it is
    // called before the program allocates anything large or starts a thread, and it is
    // thread-safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        if defaults.is_none_or(|v| v != "arenas") {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// The output folder of one program run, and the record of how the run was made.
#[derive(Debug)]
pub struct Run {
    out: Option<PathBuf>,
    started: Instant,
    command: String,
    seed: u64,
    quiet: bool,
    threads: (usize, Option<String>),
    load_at_start: Option<f64>,
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
            threads: (crate::matmul::threads(), None),
            load_at_start: load_average(),
        })
    }

    /// Records that the computation ran on `n` threads, and how they were used (for example
    /// "one per network"), for the provenance.
    pub fn set_threads(&mut self, n: usize, how: Option<&str>) {
        self.threads = (n, how.map(str::to_string));
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

    /// How this run was made, for `results.json`: read when called, so call it once the work
    /// is done.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            commit: git_commit(),
            command: self.command.clone(),
            seed: self.seed,
            threads: self.threads.0,
            threads_note: self.threads.1.clone(),
            cpu: cpu_name(),
            wall_seconds: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            cpu_seconds: cpu_seconds(),
            load_average: (self.load_at_start, load_average()),
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
    /// How the threads were used, if that needs saying ("one per network").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads_note: Option<String>,
    /// The processor, from `/proc/cpuinfo` where there is one.
    pub cpu: String,
    /// Wall-clock time of the run, in seconds.
    pub wall_seconds: f64,
    /// CPU time of the process (user + system, all threads), in seconds, where the system
    /// reports it (Linux).
    pub cpu_seconds: Option<f64>,
    /// The machine's one-minute load average at the start and at the end of the run (Linux):
    /// a busy machine explains a slow run.
    pub load_average: (Option<f64>, Option<f64>),
}
// ANCHOR_END: provenance

impl Provenance {
    /// A Markdown paragraph stating the provenance.
    pub fn markdown(&self) -> String {
        self.sentence("Produced by")
    }

    /// The provenance as one sentence starting with `opening` (e.g. "The tuning table was
    /// produced by").
    pub fn sentence(&self, opening: &str) -> String {
        use std::fmt::Write as _;
        let threads = match (self.threads, &self.threads_note) {
            (1, None) => "1 thread".to_string(),
            (n, None) => format!("{n} threads"),
            (n, Some(how)) => format!("{n} thread{}: {how}", if n == 1 { "" } else { "s" }),
        };
        let mut text = format!(
            "{opening} `{}` (seed {}) at commit `{}` on {} ({threads}), in {:.1} s of wall time",
            self.command, self.seed, self.commit, self.cpu, self.wall_seconds
        );
        if let Some(cpu) = self.cpu_seconds {
            let _ = write!(
                text,
                " and {cpu:.1} s of CPU time (user + system, all threads)"
            );
        }
        if let (Some(a), Some(b)) = self.load_average {
            let _ = write!(
                text,
                "; the machine's one-minute load average was {a:.1} at the start and {b:.1} at \
                 the end"
            );
        }
        text.push_str(".\n");
        text
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

/// The median of `values` (sorted in place; the mean of the two middle values for an even
/// count), or `None` when there are none.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some(0.5 * (values[n / 2 - 1] + values[n / 2])),
    }
}

/// CPU time of this process so far (user + system, all threads), in seconds, from
/// `/proc/self/stat` (Linux; `None` elsewhere). Linux reports it in ticks of 1/100 s.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The machine's one-minute load average, from `/proc/loadavg` (Linux; `None` elsewhere).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Stream `n` of the ChaCha8 generator seeded with `seed`: a program gives each purpose
/// (initial weights, batch order, noise, held-out data) its own stream of the one seed, so
/// drawing more for one purpose never shifts what another draws.
pub fn stream(seed: u64, n: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// What a `--load` run does with its table: prints it, and writes it as `results.md` only into
/// an explicit `--out` folder, so scoring a saved model never overwrites the chapter's outputs.
pub fn report_loaded(common: &CommonArgs, chapter: &str, table: &str) -> Result<()> {
    print!("{table}");
    if common.out.is_some() {
        Run::new(common, &chapter_dir(chapter))?.write("results.md", table.as_bytes())?;
    }
    Ok(())
}

/// The book's folder for a chapter's figures and tables: `chapters/<name>` in the crate, where
/// `name` may hold a slash (`"math/probability"`).
pub fn chapter_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("chapters")
        .join(name)
}

/// Another chapter's results file (`results.json` or the like, as [`Run::write_record`] writes
/// it), parsed. A missing file names itself and the program that writes it
/// (`cargo run --release --example <program>`); a damaged one says it is not JSON.
pub fn read_results(path: &Path, program: &str) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read {} (run `cargo run --release --example {program}` first)",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))
}

/// A fraction as a percentage with two decimals: `pct(0.98765) == "98.77%"`.
pub fn pct(fraction: f64) -> String {
    format!("{:.2}%", 100.0 * fraction)
}

// ANCHOR: table
/// A Markdown table, built row by row, so no program writes pipes and dashes by hand.
///
/// ```
/// use dlfs::runner::Table;
/// let mut t = Table::new(&["model", "test error"], "lr");
/// t.row(["MLP", "2.10%"]);
/// assert_eq!(t.to_string(), "| model | test error |\n|---|---:|\n| MLP | 2.10% |\n");
/// ```
#[derive(Clone, Debug)]
pub struct Table {
    header: Vec<String>,
    align: Vec<char>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings; `align` has one letter per column, `l` (left) or
    /// `r` (right, for numbers).
    pub fn new(header: &[&str], align: &str) -> Table {
        let align: Vec<char> = align.chars().collect();
        assert!(
            align.len() == header.len() && align.iter().all(|a| matches!(a, 'l' | 'r')),
            "Table: {} headings but alignment {align:?} (one `l` or `r` per column)",
            header.len()
        );
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            align,
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column (an empty string leaves a cell blank).
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        let cells: Vec<String> = cells.into_iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cells.len(),
            self.header.len(),
            "Table: a row of {} cells in a table of {} columns",
            cells.len(),
            self.header.len()
        );
        self.rows.push(cells);
        self
    }

    /// The number of rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An empty cell is written `| |`, a full one `| text |`.
        let line = |f: &mut std::fmt::Formatter<'_>, cells: &[String]| {
            write!(f, "|")?;
            for cell in cells {
                if cell.is_empty() {
                    write!(f, " |")?;
                } else {
                    write!(f, " {cell} |")?;
                }
            }
            writeln!(f)
        };
        line(f, &self.header)?;
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|&a| if a == 'r' { "---:" } else { "---" })
            .collect();
        writeln!(f, "|{}|", rule.join("|"))?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}
// ANCHOR_END: table

// ANCHOR: train_step
/// One training step, the part every chapter's loop shares: clears the gradients, runs the
/// chapter's `forward_backward` (which computes the loss, runs the backward pass and returns
/// the loss), stops with a [`NonFinite`] error if the loss or a gradient is not a finite number
/// (the message gives the gradient norm, which is then NaN or infinite), and updates the
/// parameters. Returns the loss. `step` counts from 1, for the message.
pub fn train_step<F: Float, M: Params<F>>(
    step: usize,
    model: &mut M,
    optimizer: &mut Optimizer<F>,
    forward_backward: impl FnOnce(&mut M) -> F,
) -> Result<f64, NonFinite> {
    zero_grads(model);
    let loss = forward_backward(model).as_f64();
    ensure_finite(step, "training loss", loss)?;
    // For f32 gradients this is the same test as a finite norm (the f64 sum of their squares
    // cannot overflow), without the norm's serial sum over every parameter.
    if !grads_finite(model) {
        ensure_finite(step, "gradient norm", grad_norm(model))?;
    }
    optimizer.step(model);
    Ok(loss)
}
// ANCHOR_END: train_step

// ANCHOR: data_parallel
/// Data parallelism over two threads: `first` runs on `model` on this thread and `second` on
/// `replica` on another, each on its share of a batch, then `model`'s gradient becomes the mean
/// of the two, `(g_model + g_replica) / 2` (the gradient of the whole batch when the shares are
/// equal and each computes its own mean loss). `replica` first gets `model`'s values and zero
/// gradients; `model`'s gradients are whatever `first` leaves (zero them before, as
/// [`train_step`] does). The split is fixed by the caller, so the numbers do not depend on how
/// the threads are scheduled. Returns what both closures returned.
pub fn data_parallel<F: Float, M: Params<F> + Send, T: Send>(
    model: &mut M,
    replica: &mut M,
    first: impl FnOnce(&mut M) -> T,
    second: impl FnOnce(&mut M) -> T + Send,
) -> (T, T) {
    let mut values = Vec::new();
    model.visit_ref("", &mut |_, p| values.push(p.value.to_owned()));
    let mut k = 0;
    replica.visit("", &mut |_, mut p| {
        p.value.assign(&values[k]);
        p.grad.fill(F::zero());
        k += 1;
    });
    let (a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(|| second(replica));
        let mine = first(model);
        (
            mine,
            other
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    let mut grads = Vec::new();
    replica.visit_ref("", &mut |_, p| grads.push(p.grad.to_owned()));
    let (half, mut k) = (F::of(0.5), 0);
    model.visit("", &mut |_, mut p| {
        p.grad.zip_mut_with(&grads[k], |g, &o| *g = half * (*g + o));
        k += 1;
    });
    (a, b)
}
// ANCHOR_END: data_parallel
