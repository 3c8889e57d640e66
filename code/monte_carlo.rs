//! `cargo run --release --example monte_carlo`: measures how the error of a Monte Carlo
//! estimate shrinks with the number of samples and rewrites the probability chapter's figure and
//! table. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::math::monte_carlo::run)
}
