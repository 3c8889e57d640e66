//! `cargo run --release --example vae`: trains the VAE chapter's variational autoencoder on
//! MNIST (and a second one with a two-dimensional latent space), and rewrites the chapter's
//! figures and results table. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::vae::experiment::run)
}
