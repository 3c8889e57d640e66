//! `cargo run --release --example vit`: trains a Transformer encoder over image patches on the
//! shipped MNIST digits, with mean pooling and with attention pooling side by side, and draws
//! its accuracy next to the MLP's and the attention pool's weights. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    dlfs::runner::main(dlfs::transformer::vision_experiment::run)
}
