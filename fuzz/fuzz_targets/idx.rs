//! Fuzzes the IDX parser (MNIST's file format): any bytes give a value or an error, and a value
//! always has exactly as many data bytes as its sizes say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = dlfs::data::mnist::parse_idx(Path::new("fuzz"), data) {
        let size = idx.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(Some(idx.data.len()), size);
        // Every non-zero size multiplies to something sane, so `rows * cols` cannot overflow.
        let nonzero = idx.dims.iter().filter(|&&d| d > 0).try_fold(1usize, |a, &d| a.checked_mul(d));
        assert!(nonzero.is_some_and(|n| n as u64 <= dlfs::data::mnist::MAX_BYTES));
    }
});
