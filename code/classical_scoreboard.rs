//! `cargo run --release --example classical_scoreboard`: runs the second half of the classical
//! ML course on the 8x8 digits (SVMs, trees, forests, PCA, baselines) and rewrites the figures
//! and tables of its chapters. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::course::run)
}
