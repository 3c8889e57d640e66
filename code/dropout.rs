//! `cargo run --release --example dropout`: trains the Dropout chapter's wide network on MNIST
//! without and with dropout, and rewrites the chapter's figures and results table. `--help`
//! lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::dropout::experiment::run)
}
