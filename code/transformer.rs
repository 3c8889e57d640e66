//! `cargo run --release --example transformer`: trains the Transformer chapter's encoder-decoder
//! on copying, reversing and sorting digit sequences and scores greedy decoding of held-out
//! sequences. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::transformer::experiment::run)
}
