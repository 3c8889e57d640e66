//! `cargo run --release --example self_attention`: trains the self-attention chapter's lookup
//! model (against an MLP of the same size) and its attention-only character model, measures
//! the 1/sqrt(d_k) scale, and rewrites the chapter's figures and results table. `--help` lists
//! the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::self_attention::experiment::run)
}
