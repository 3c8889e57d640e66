//! `cargo run --release --example lstm`: the LSTM chapter's two experiments, the adding problem
//! (an LSTM against a tanh RNN) and a character language model on the novel, and rewrites the
//! chapter's figures and results tables. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::lstm::experiment::run)
}
