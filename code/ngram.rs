//! `cargo run --release --example ngram`: counts the NLP chapter's character n-gram models on the
//! novel, scores them in bits per character and rewrites the chapter's table, samples and figure.
//! `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::ngram::experiment::run)
}
