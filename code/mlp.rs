//! `cargo run --release --example mlp`: trains the MLP chapter's network on MNIST and rewrites
//! the chapter's figures and results table. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::mlp::experiment::run)
}
