//! `cargo run --release --example char_transformer`: trains the decoder-only Transformer
//! character model on the novel, samples from it with cached keys and values, and compares every
//! character model of the book. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::transformer::gpt_experiment::run)
}
