//! `cargo run --release --example gradcheck_steps`: measures the error of forward and central
//! differences against the step size and rewrites the gradient-checking chapter's figure and
//! table. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::math::gradcheck_steps::run)
}
