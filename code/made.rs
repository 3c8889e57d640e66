//! `cargo run --release --example made`: learns the study notes' toy distribution and binarised
//! MNIST with MADE (one mask, and a model trained over many masks scored with mask ensembles),
//! and rewrites the chapter's figures and results table. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::made::experiment::run)
}
