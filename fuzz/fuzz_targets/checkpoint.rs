//! Fuzzes the checkpoint reader: arbitrary bytes as a safetensors file for a small MLP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("dlfs-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("c.safetensors");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let mut model =
        dlfs::mlp::Mlp::<f32>::new(&[3, 2], &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
    let _ = dlfs::checkpoint::load(&mut model, "mlp", "layer sizes [3, 2]", &path);
});
