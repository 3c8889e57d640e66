//! `cargo run --release --example penguins`: the classical course's second end-to-end project,
//! on the Palmer penguins (missing values, categories, a stratified split, a cross-validated grid
//! search, the test set once), and rewrites its tables and figure. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::classical::penguins::run)
}
