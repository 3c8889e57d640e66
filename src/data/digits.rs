//! The UCI 8x8 handwritten digits (1,797 images, values 0..16), and the fixed train / validation
//! / test split every classical-ML chapter uses.
//!
//! The file is CSV, gzipped or not: one image per line, 64 pixel values then the label. The
//! split is defined once, here: the images are shuffled by a ChaCha8 generator seeded with
//! [`SPLIT_SEED`] and cut into 60% training, 20% validation and 20% test. Choices (learning
//! rates, depths, regularisation) are made on the validation split; the test split is scored once
//! per method, for the course's results table.

use super::DataError;
use flate2::read::MultiGzDecoder;
use ndarray::Array2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::io::Read;
use std::path::Path;

/// The seed of the permutation that defines the split. Changing it changes every number in the
/// classical-ML part of the book.
pub const SPLIT_SEED: u64 = 2018;

/// Pixels per image (8x8).
pub const PIXELS: usize = 64;

/// The most text the loader reads from a digits file, after decompression (64 MiB; the
/// full UCI file is under 1 MB).
pub const MAX_BYTES: u64 = 64 << 20;

/// Images and labels.
#[derive(Clone, Debug)]
pub struct Digits {
    /// Pixel values `0..=16` as floats, one image per row: `[n, 64]`.
    pub x: Array2<f64>,
    /// The digit of each image, `0..=9`.
    pub y: Vec<usize>,
}

/// The three splits.
#[derive(Clone, Debug)]
pub struct DigitSplits {
    /// 60% of the images, for fitting.
    pub train: Digits,
    /// 20%, for every choice.
    pub validation: Digits,
    /// 20%, scored once per method.
    pub test: Digits,
}

impl Digits {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The images at the given indices, in that order.
    pub fn select(&self, idx: &[usize]) -> Digits {
        Digits {
            x: self.x.select(ndarray::Axis(0), idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
        }
    }

    /// Reads a digits CSV file (gzipped if its name ends in `.gz`; several gzip members are
    /// read as one stream). Refuses text longer than [`MAX_BYTES`] once decompressed.
    pub fn load(path: &Path) -> Result<Digits, DataError> {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(std::io::BufReader::new(file))
        };
        let text = super::read_capped(reader, path, MAX_BYTES, "a digits file")?;
        Digits::parse(path, &text)
    }

    /// Parses the CSV text; `path` only names the source in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Digits, DataError> {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != PIXELS + 1 {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {}: {} fields, expected 65 (64 pixels and a label)",
                        n + 1,
                        fields.len()
                    ),
                ));
            }
            for (k, f) in fields.iter().enumerate() {
                let v: u8 = f.parse().map_err(|_| {
                    DataError::format(
                        path,
                        format!(
                            "line {}, field {}: `{f}` is not a whole number",
                            n + 1,
                            k + 1
                        ),
                    )
                })?;
                let max = if k == PIXELS { 9 } else { 16 };
                if v > max {
                    return Err(DataError::format(
                        path,
                        format!(
                            "line {}, field {}: {v} is out of range 0..={max}",
                            n + 1,
                            k + 1
                        ),
                    ));
                }
                if k == PIXELS {
                    labels.push(usize::from(v));
                } else {
                    pixels.push(f64::from(v));
                }
            }
        }
        if labels.is_empty() {
            return Err(DataError::format(path, "no images in the file"));
        }
        let x = Array2::from_shape_vec((labels.len(), PIXELS), pixels).expect("64 pixels per row");
        Ok(Digits { x, y: labels })
    }

    /// The copy shipped with the book, `data/digits/digits.csv.gz`.
    pub fn shipped() -> Result<Digits, DataError> {
        Digits::load(&super::shipped_dir().join("digits/digits.csv.gz"))
    }

    // ANCHOR: split
    /// The book's fixed split: a permutation drawn from `SPLIT_SEED`, cut 60 / 20 / 20.
    pub fn split(&self) -> DigitSplits {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(SPLIT_SEED));
        let n_train = self.len() * 6 / 10;
        let n_val = self.len() * 2 / 10;
        DigitSplits {
            train: self.select(&order[..n_train]),
            validation: self.select(&order[n_train..n_train + n_val]),
            test: self.select(&order[n_train + n_val..]),
        }
    }
    // ANCHOR_END: split
}

/// The digits file in a `digits/` folder: `digits.csv.gz`, or else `digits.csv`.
pub fn file_in(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    ["digits.csv.gz", "digits.csv"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("no digits.csv.gz or digits.csv in {}", dir.display()))
}
