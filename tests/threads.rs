//! The thread count of the matrix products changes the speed, not the results: the same program
//! with the same seed writes the same bytes at one and at two threads.

mod common;

use std::process::Command;

fn run(threads: &str, out: &std::path::Path) {
    let status = Command::new(common::example_binary("mlp"))
        .args([
            "--quick",
            "--seed",
            "7",
            "--seeds",
            "7",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("MATMUL_NUM_THREADS", threads)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn one_and_two_threads_write_the_same_results() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run("1", a.path());
    run("2", b.path());
    let mut compared = 0;
    for entry in std::fs::read_dir(a.path()).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_str().unwrap();
        if name == "provenance.md" || name == "results.json" {
            continue; // they record the thread count and the time
        }
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert!(x == y, "{name} differs between 1 and 2 threads");
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} outputs compared");
    let json = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("results.json")).unwrap()).unwrap()
    };
    assert_eq!(json(a.path())["report"], json(b.path())["report"]);
    assert_eq!(json(a.path())["provenance"]["threads"], 1);
    assert_eq!(json(b.path())["provenance"]["threads"], 2);
}

/// Runs `bits` (a computation, as the bits of everything it produced) with the products and
/// element-wise loops on one thread and then on two, and asserts that the two agree and hold at
/// least `at_least` numbers. The thread count is one setting for the whole process, so the
/// tests that change it take turns.
fn same_bits_at_one_and_two_threads(at_least: usize, bits: impl Fn() -> Vec<u64> + Send + Sync) {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let at = |threads| {
        dlfs::matmul::set_threads(threads);
        dlfs::matmul::on_workers(&bits)
    };
    let (one, two) = (at(1), at(2));
    assert!(one.len() > at_least, "{} numbers compared", one.len());
    assert!(one == two, "the two runs differ");
}

/// Inside one process: two training steps of a small decoder-only Transformer at one and at two
/// threads. At two, attention shares its sequences out, the GELU its elements and Adam its
/// parameters (each is above `matmul::PARALLEL_ELEMENTS`); every loss, value and gradient must
/// come out the same to the bit.
#[test]
fn a_transformer_trains_to_the_same_bits_at_one_and_two_threads() {
    use dlfs::optim::Adam;
    use dlfs::param::{Params, zero_grads};
    use dlfs::transformer::gpt::{Gpt, GptConfig};
    use ndarray::Array2;
    use rand::SeedableRng;

    same_bits_at_one_and_two_threads(100_000, || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let config = GptConfig {
            vocab: 20,
            max_len: 32,
            d: 128,
            heads: 4,
            ff: 256,
            blocks: 1,
            dropout: 0.0,
        };
        let mut model = Gpt::<f32>::new(config, &mut rng).unwrap();
        let ids = Array2::from_shape_fn((8, 32), |(i, j)| (i * 7 + j * 3) % 20);
        let targets = Array2::from_shape_fn((8, 32), |(i, j)| (i + j * 5) % 20);
        let mut adam = Adam::new(1e-3);
        let mut bits = Vec::new();
        for _ in 0..2 {
            zero_grads(&mut model);
            bits.push(u64::from(
                model.loss_backward(&ids, &targets, &mut rng).to_bits(),
            ));
            adam.step(&mut model);
        }
        model.visit("", &mut |_, p| {
            bits.extend(
                p.value
                    .iter()
                    .chain(p.grad.iter())
                    .map(|v| u64::from(v.to_bits())),
            );
        });
        bits
    });
}

/// MADE's masked layer forms `W * M` and masks its weight gradient element by element, shared
/// between threads at two: the output, the input gradient and the weight gradient are the same
/// to the bit as at one.
#[test]
fn a_masked_layer_gives_the_same_bits_at_one_and_two_threads() {
    use dlfs::made::{MaskedLinear, mask};
    use ndarray::Array2;
    use rand::SeedableRng;

    same_bits_at_one_and_two_threads(65_536, || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let degrees: Vec<usize> = (0..256).map(|i| 1 + i % 200).collect();
        let mut layer = MaskedLinear::<f32>::new(mask(&degrees, &degrees, false), &mut rng);
        let x = Array2::from_shape_fn((16, 256), |(i, j)| ((i * 31 + j * 7) % 13) as f32 - 6.0);
        let (y, cache) = layer.forward(x);
        let dx = layer.backward(&cache, &y);
        y.iter()
            .chain(&dx)
            .chain(&layer.linear.w.grad)
            .map(|v| u64::from(v.to_bits()))
            .collect()
    });
}

/// The LSTM runs its recurrence as two halves of the batch at two threads: its outputs, final
/// state, input and state gradients, step norms and weight gradients are the same to the bit as
/// at one.
#[test]
fn an_lstm_gives_the_same_bits_at_one_and_two_threads() {
    use dlfs::lstm::{Lstm, Recurrent};
    use ndarray::Array2;
    use rand::SeedableRng;

    same_bits_at_one_and_two_threads(250_000, || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (batch, time) = (32, 50);
        let mut layer = Lstm::<f32>::new(3, 128, &mut rng);
        let x = Array2::from_shape_fn((time * batch, 3), |(i, j)| {
            ((i * 13 + j * 7) % 11) as f32 / 11.0 - 0.5
        });
        let state = layer.zero_state(batch);
        let (y, last, cache) = layer.forward_tm(x, batch, &state);
        let dy = y.mapv(|v| v * 0.5 - 0.1);
        let d_last = dlfs::lstm::State {
            h: last.h.mapv(|v| v * 0.3),
            c: last.c.mapv(|v| v * -0.2),
        };
        let g = layer.backward_tm(&cache, &dy, Some(&d_last));
        let f = |a: &Array2<f32>| a.iter().map(|v| u64::from(v.to_bits())).collect::<Vec<_>>();
        let mut bits = [&y, &last.h, &last.c, &g.dx, &g.d_state.h, &g.d_state.c]
            .into_iter()
            .flat_map(f)
            .collect::<Vec<_>>();
        bits.extend(g.dh_norms.iter().map(|v| v.to_bits()));
        bits.extend(f(&layer.w_h.grad));
        bits.extend(f(&layer.w_x.grad));
        bits
    });
}
