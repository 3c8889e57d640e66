//! Property tests: the loaders meet arbitrary bytes and randomly damaged valid files, and always
//! answer with a value or an error, never a panic; a damaged file is never accepted as a
//! different, valid-looking data set without the damage being in the data bytes themselves.

use dlfs::checkpoint;
use dlfs::data::digits::Digits;
use dlfs::data::mnist::{Idx, parse_idx, read_idx};
use dlfs::mlp::Mlp;
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use rand::SeedableRng;
use std::io::Write;
use std::path::Path;

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid little IDX file: 1 to 3 dimensions of size 1 to 5.
fn valid_idx() -> impl Strategy<Value = (Vec<u32>, Vec<u8>)> {
    prop::collection::vec(1u32..=5, 1..=3).prop_flat_map(|dims| {
        let n = dims.iter().product::<u32>() as usize;
        (Just(dims), prop::collection::vec(any::<u8>(), n))
    })
}

/// Damage: overwrite, insert or delete bytes at random places, or cut the tail.
#[derive(Clone, Debug)]
enum Damage {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<usize>().prop_map(Damage::Delete),
        any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *d {
        Damage::Set(i, b) if !bytes.is_empty() => {
            let i = at(i, bytes.len());
            bytes[i] = b;
        }
        Damage::Insert(i, b) => {
            let i = at(i, bytes.len() + 1);
            bytes.insert(i, b);
        }
        Damage::Delete(i) if !bytes.is_empty() => {
            let i = at(i, bytes.len());
            bytes.remove(i);
        }
        Damage::Truncate(i) => {
            let keep = at(i, bytes.len() + 1);
            bytes.truncate(keep);
        }
        _ => {}
    }
}

/// What a successfully parsed file must satisfy whatever bytes it came from.
fn consistent(idx: &Idx) -> bool {
    idx.data.len() == idx.dims.iter().product::<usize>()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(idx) = parse_idx(Path::new("arbitrary"), bytes.as_slice()) {
            prop_assert!(consistent(&idx));
        }
    }

    #[test]
    fn arbitrary_headers_never_allocate_beyond_the_file(
        dims in prop::collection::vec(any::<u32>(), 1..=4),
        data in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        // Whatever sizes the header claims, parsing a short file is quick and either fails or
        // returns exactly the bytes present.
        let bytes = idx_bytes(&dims, &data);
        match parse_idx(Path::new("header"), bytes.as_slice()) {
            Ok(idx) => prop_assert!(consistent(&idx) && idx.data == data),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn damaged_files_are_caught_or_consistent(
        (dims, data) in valid_idx(),
        damages in prop::collection::vec(damage(), 1..4),
        gzipped in any::<bool>(),
    ) {
        let original = idx_bytes(&dims, &data);
        let mut bytes = if gzipped { gz(&original) } else { original.clone() };
        for d in &damages {
            apply(&mut bytes, d);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged");
        std::fs::write(&path, &bytes).unwrap();
        match read_idx(&path) {
            Ok(idx) => prop_assert!(consistent(&idx)),
            Err(e) => prop_assert!(e.to_string().contains("damaged")),
        }
    }

    #[test]
    fn digit_csv_never_panics(text in "[0-9,\n x.-]{0,300}") {
        if let Ok(d) = Digits::parse(Path::new("digits.csv"), &text) {
            prop_assert_eq!(d.x.nrows(), d.y.len());
            prop_assert!(d.y.iter().all(|&y| y <= 9));
        }
    }

    #[test]
    fn damaged_checkpoints_are_refused_or_load_whole(
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let model = Mlp::<f32>::new(&[3, 2], &mut rng);
        checkpoint::save(&model, "mlp", "d", &path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        for d in &damages {
            apply(&mut bytes, d);
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut other = Mlp::<f32>::new(&[3, 2], &mut rng);
        let before = other.layers[0].w.value.clone();
        if checkpoint::load(&mut other, "mlp", "d", &path).is_err() {
            prop_assert_eq!(&other.layers[0].w.value, &before, "a refused file changed the model");
        }
    }
}
