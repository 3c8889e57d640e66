//! Every bad input the book's loaders and programs were tried with, and the error each gives.
//!
//! The cases below run for real; their messages (with the temporary folder written as `<dir>`)
//! make the table in `tests/bad-inputs.md`, and this test fails if the table and the messages
//! disagree. After changing a message, regenerate the table with
//! `UPDATE_BAD_INPUTS=1 cargo test --test bad_inputs`.

use dlfs::checkpoint;
use dlfs::data::digits::Digits;
use dlfs::data::mnist::{Mnist, read_idx};
use dlfs::data::text::Corpus;
use dlfs::mlp::Mlp;
use dlfs::mlp::experiment::{Cli, run};
use dlfs::runner::parse;
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::SeedableRng;
use std::io::Write;
use std::path::Path;

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn mnist_folder(dir: &Path, n_labels: u32, label: u8, rows: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for split in ["train", "t10k"] {
        let img = idx(&[3, rows, 2], &vec![7; (3 * rows * 2) as usize]);
        let lab = idx(&[n_labels], &vec![label; n_labels as usize]);
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), img).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), lab).unwrap();
    }
}

fn cases(dir: &Path) -> Vec<(&'static str, String)> {
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let idx_err = |name: &str, bytes: &[u8]| read_idx(&file(name, bytes)).unwrap_err().to_string();
    let full_gz = gz(&idx(&[100], &[3; 100]));
    let mut out: Vec<(&'static str, String)> = vec![
        ("IDX: empty file", idx_err("empty", b"")),
        ("IDX: three bytes", idx_err("short", &[0, 0, 8])),
        (
            "IDX: wrong magic number",
            idx_err("magic", &[0x12, 0x34, 0x56, 0x78, 1, 2]),
        ),
        (
            "IDX: element type other than bytes",
            idx_err("type", &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0]),
        ),
        ("IDX: zero dimensions", idx_err("zero-dims", &[0, 0, 8, 0])),
        (
            "IDX: header cut inside the sizes",
            idx_err("header", &[0, 0, 8, 3, 0, 0, 0, 1]),
        ),
        (
            "IDX: body shorter than the header says",
            idx_err("truncated", &idx(&[4, 2, 2], &[7; 10])),
        ),
        (
            "IDX: data after the end",
            idx_err("extra", &idx(&[2], &[1, 2, 3])),
        ),
        (
            "IDX: sizes of 2^32 x 28 x 28",
            idx_err("huge", &idx(&[u32::MAX, 28, 28], &[0; 16])),
        ),
        (
            "IDX: a zero size beside huge ones",
            idx_err(
                "zero-huge",
                &idx(&[0x00db_0300, 0x0800_08ff, 0xffff_ffcb, 0], &[]),
            ),
        ),
        (
            "IDX: 512 MiB promised, 16 bytes present",
            idx_err("big", &idx(&[1 << 29], &[0; 16])),
        ),
        (
            "IDX: gzip stream cut in half",
            idx_err("cut.gz", &full_gz[..full_gz.len() / 2]),
        ),
    ];
    let mnist_err = |sub: &str| Mnist::load(&dir.join(sub)).unwrap_err().to_string();
    out.push(("MNIST: folder does not exist", mnist_err("no-such-folder")));
    std::fs::create_dir_all(dir.join("empty-folder")).unwrap();
    out.push(("MNIST: folder without the files", mnist_err("empty-folder")));
    mnist_folder(&dir.join("counts"), 2, 1, 2);
    out.push(("MNIST: 3 images but 2 labels", mnist_err("counts")));
    mnist_folder(&dir.join("label"), 3, 12, 2);
    out.push(("MNIST: a label of 12", mnist_err("label")));
    mnist_folder(&dir.join("zero-rows"), 3, 1, 0);
    out.push(("MNIST: images of 0 rows", mnist_err("zero-rows")));

    let digits_err = |text: &str| {
        Digits::parse(Path::new("digits.csv"), text)
            .unwrap_err()
            .to_string()
    };
    out.push(("digits CSV: empty", digits_err("")));
    out.push(("digits CSV: a short line", digits_err("1,2,3\n")));
    out.push((
        "digits CSV: a word for a pixel",
        digits_err(&format!("{}x\n", "1,".repeat(64))),
    ));
    out.push((
        "digits CSV: label 10",
        digits_err(&format!("{}10\n", "1,".repeat(64))),
    ));

    let text_err = |name: &str, bytes: Option<&[u8]>| {
        let p = match bytes {
            Some(b) => file(name, b),
            None => dir.join(name),
        };
        Corpus::load(&p).unwrap_err().to_string()
    };
    out.push(("text: file does not exist", text_err("no-such.txt", None)));
    out.push((
        "text: not UTF-8",
        text_err("latin1.txt", Some(b"caf\xe9 au lait")),
    ));
    out.push(("text: empty", text_err("empty.txt", Some(b""))));

    let ckpt = dir.join("m.safetensors");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut small = Mlp::<f32>::new(&[3, 2], &mut rng);
    checkpoint::save(&small, "mlp", "layer sizes [3, 2]", &ckpt).unwrap();
    let good = std::fs::read(&ckpt).unwrap();
    let ck_err = |m: &mut Mlp<f32>, kind: &str, desc: &str, p: &Path| {
        checkpoint::load(m, kind, desc, p).unwrap_err().to_string()
    };
    out.push((
        "checkpoint: of another model",
        ck_err(&mut small, "vae", "layer sizes [3, 2]", &ckpt),
    ));
    let mut wide = Mlp::<f32>::new(&[3, 4], &mut rng);
    out.push((
        "checkpoint: of other layer sizes",
        ck_err(&mut wide, "mlp", "layer sizes [3, 4]", &ckpt),
    ));
    out.push((
        "checkpoint: truncated",
        ck_err(
            &mut small,
            "mlp",
            "layer sizes [3, 2]",
            &file("cut.safetensors", &good[..good.len() - 4]),
        ),
    ));
    out.push((
        "checkpoint: not safetensors",
        ck_err(
            &mut small,
            "mlp",
            "layer sizes [3, 2]",
            &file("junk.safetensors", b"junk"),
        ),
    ));

    let flag_err = |args: &[&str]| {
        let mut all = vec!["mlp"];
        all.extend_from_slice(args);
        match parse::<Cli>(all) {
            Err(e) => e.to_string(),
            Ok(cli) => run(cli).unwrap_err().to_string(),
        }
    };
    out.push(("flags: unknown flag", flag_err(&["--bogus"])));
    out.push(("flags: zero epochs", flag_err(&["--epochs", "0"])));
    out.push(("flags: a word for a number", flag_err(&["--epochs", "ten"])));
    out.push((
        "flags: a NaN learning rate",
        flag_err(&["--quick", "--lr", "NaN"]),
    ));
    let blocker = file("a-file", b"x");
    let out_dir = blocker.join("sub");
    out.push((
        "flags: an output folder inside a file",
        flag_err(&["--quick", "--out", out_dir.to_str().unwrap()]),
    ));
    out.push((
        "training: learning rate 1e30",
        flag_err(&["--quick", "--lr", "1e30"]),
    ));
    out
}

fn table(rows: &[(&str, String)], dir: &Path) -> String {
    let dir = dir.display().to_string();
    let mut t = String::from(
        "# Bad inputs and the errors they get\n\nWritten by `tests/bad_inputs.rs` from real runs (the temporary folder is shown as `<dir>`).\n\n| input | error |\n|---|---|\n",
    );
    for (what, message) in rows {
        let message = message
            .replace(&dir, "<dir>")
            .replace('|', "\\|")
            .replace('`', "'");
        t.push_str(&format!("| {what} | `{message}` |\n"));
    }
    t
}

#[test]
fn the_table_of_bad_inputs_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let rows = cases(dir.path());
    for (what, message) in &rows {
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "{what}: one line, please: {message}"
        );
        assert!(!message.contains("panicked"), "{what}: {message}");
    }
    let fresh = table(&rows, dir.path());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs.md");
    if std::env::var_os("UPDATE_BAD_INPUTS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "tests/bad-inputs.md is out of date: run UPDATE_BAD_INPUTS=1 cargo test --test bad_inputs\n{fresh}"
    );
}
