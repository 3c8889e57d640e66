//! `cargo run --release --example classical_linear`: the classical ML course's first half
//! (linear and logistic regression, metrics, text features); rewrites the figures and tables
//! of its chapters. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::classical::experiment::run)
}
