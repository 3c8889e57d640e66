//! The MNIST loader on good files and on every kind of bad one: each a clear error, no panic, no
//! giant allocation.

use dlfs::data::DataError;
use dlfs::data::mnist::{Mnist, read_idx};
use flate2::Compression;
use flate2::write::GzEncoder;
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

/// Writes a complete MNIST-style folder with `n` 2x3 images per split.
fn folder(dir: &Path, n: u32, gzipped: bool) {
    let images: Vec<u8> = (0..n * 6).map(|i| (i * 40 % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for split in ["train", "t10k"] {
        let (img, lab) = (idx(&[n, 2, 3], &images), idx(&[n], &labels));
        let ext = if gzipped { ".gz" } else { "" };
        let (img, lab) = if gzipped {
            (gz(&img), gz(&lab))
        } else {
            (img, lab)
        };
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte{ext}")), img).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte{ext}")), lab).unwrap();
    }
}

#[test]
fn good_folders_plain_and_gzipped() {
    for gzipped in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path(), 5, gzipped);
        let m = Mnist::load(dir.path()).unwrap();
        assert_eq!(m.train.len(), 5);
        assert_eq!(m.test.images.dim(), (5, 6));
        assert_eq!((m.train.rows, m.train.cols), (2, 3));
        assert_eq!(m.train.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(m.train.images[[0, 1]], 40.0 / 255.0);
    }
}

#[test]
fn the_shipped_subset() {
    let m = Mnist::shipped().unwrap();
    assert_eq!(m.train.images.dim(), (8000, 784));
    assert_eq!(m.test.images.dim(), (2000, 784));
    assert!(m.train.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    let mut counts = [0; 10];
    m.train.labels.iter().for_each(|&l| counts[l] += 1);
    assert!(counts.iter().all(|&c| c > 600), "{counts:?}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn error_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "f", bytes);
    let e = read_idx(&p).expect_err("a bad file must be an error");
    let msg = e.to_string();
    assert!(
        msg.contains(&p.display().to_string()),
        "the error names the file: {msg}"
    );
    msg
}

#[test]
fn bad_idx_files() {
    assert!(error_of(b"").contains("too short"));
    assert!(error_of(&[0, 0, 8]).contains("too short"));
    assert!(error_of(&[0x12, 0x34, 0x56, 0x78, 1, 2, 3]).contains("magic number"));
    assert!(error_of(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0]).contains("unsigned bytes"));
    assert!(error_of(&[0, 0, 8, 0]).contains("0 dimensions"));
    assert!(error_of(&[0, 0, 8, 3, 0, 0, 0, 1]).contains("header ends"));
    // Truncated body: 4 images of 2x2 promised, 10 bytes given.
    assert!(error_of(&idx(&[4, 2, 2], &[7; 10])).contains("truncated"));
    // More data than the header says.
    assert!(error_of(&idx(&[2], &[1, 2, 3])).contains("more data"));
    // Sizes that would need 2^32 * 28 * 28 bytes: refused before reading, nothing allocated.
    let huge = error_of(&idx(&[u32::MAX, 28, 28], &[0; 16]));
    assert!(huge.contains("limit"), "{huge}");
    // A zero-sized dimension beside huge ones (found by the fuzzer): refused, not an empty file
    // whose `rows * cols` would overflow.
    let zero = error_of(&idx(&[0x00db_0300, 0x0800_08ff, 0xffff_ffcb, 0], &[]));
    assert!(zero.contains("limit"), "{zero}");
    // Under the limit but far beyond the file: the buffer only grows with real bytes.
    assert!(error_of(&idx(&[1 << 29], &[0; 16])).contains("truncated"));
    // A gzip stream cut short.
    let full = gz(&idx(&[100], &[3; 100]));
    let cut = &full[..full.len() / 2];
    let msg = error_of(cut);
    assert!(msg.contains("gzip stream is damaged or cut short"), "{msg}");
}

#[test]
fn files_that_disagree() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), 5, false);
    write(
        dir.path(),
        "t10k-labels-idx1-ubyte",
        &idx(&[4], &[1, 2, 3, 4]),
    );
    let e = Mnist::load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("5 images but 4 labels"), "{e}");

    write(
        dir.path(),
        "t10k-labels-idx1-ubyte",
        &idx(&[5], &[1, 2, 10, 4, 5]),
    );
    let e = Mnist::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("label 10 at index 2"), "{e}");

    write(
        dir.path(),
        "t10k-labels-idx1-ubyte",
        &idx(&[5, 1], &[1, 2, 3, 4, 5]),
    );
    let e = Mnist::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("expected 1 dimension"), "{e}");

    write(
        dir.path(),
        "t10k-labels-idx1-ubyte",
        &idx(&[5], &[1, 2, 3, 4, 5]),
    );
    write(dir.path(), "t10k-images-idx3-ubyte", &idx(&[5, 0, 3], &[]));
    let e = Mnist::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("images of size 0x3"), "{e}");
}

#[test]
fn missing_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let e = Mnist::load(&dir.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("no such folder"), "{e}");
    let e = Mnist::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("train-images-idx3-ubyte.gz"), "{e}");
}

mod digits {
    use dlfs::data::digits::Digits;
    use std::path::Path;

    #[test]
    fn the_shipped_digits_and_their_fixed_split() {
        let d = Digits::shipped().unwrap();
        assert_eq!(d.x.dim(), (1797, 64));
        let s = d.split();
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (1078, 359, 360)
        );
        // The split is a partition: every image lands in exactly one part.
        let mut rows: Vec<Vec<u64>> = [&s.train, &s.validation, &s.test]
            .iter()
            .flat_map(|p| {
                p.x.rows()
                    .into_iter()
                    .map(|r| r.iter().map(|&v| v as u64).collect())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut all: Vec<Vec<u64>> =
            d.x.rows()
                .into_iter()
                .map(|r| r.iter().map(|&v| v as u64).collect())
                .collect();
        rows.sort();
        all.sort();
        assert_eq!(rows, all);
        // And it is fixed: the same call gives the same split.
        assert_eq!(d.split().test.y, s.test.y);
    }

    #[test]
    fn bad_digit_files() {
        let p = Path::new("digits.csv");
        let row = |label: &str| format!("{}{label}\n", "1,".repeat(64));
        assert!(
            Digits::parse(p, "")
                .unwrap_err()
                .to_string()
                .contains("no images")
        );
        assert!(
            Digits::parse(p, "1,2,3\n")
                .unwrap_err()
                .to_string()
                .contains("3 fields")
        );
        assert!(
            Digits::parse(p, &row("x"))
                .unwrap_err()
                .to_string()
                .contains("not a whole number")
        );
        assert!(
            Digits::parse(p, &row("10"))
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert_eq!(Digits::parse(p, &row("7")).unwrap().y, vec![7]);
    }
}
