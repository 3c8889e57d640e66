//! The MNIST digits in their IDX format, gzipped or not.
//!
//! An IDX file starts with a magic number whose third byte says the element type (`0x08`,
//! unsigned bytes, for MNIST) and whose fourth byte says how many dimensions follow; then each
//! dimension as a big-endian `u32`; then the data, row-major. Images are `[n, 28, 28]`
//! (`0x00000803`), labels `[n]` (`0x00000801`).
//!
//! The loader trusts nothing: it checks the magic number, refuses sizes whose product overflows
//! or exceeds [`MAX_BYTES`], reads at most the number of bytes the header promises (so a lying
//! header cannot make it allocate more than the file holds), and reports a file that ends early
//! or runs on past its data.
//!
//! A folder holds the four files under their standard names: `train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, and for the test split `t10k-...` (the official names) or
//! `test-...` (the book's shipped subset), each with or without `.gz`.

use super::DataError;
use flate2::read::MultiGzDecoder;
use ndarray::Array2;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The largest data payload the loader accepts (1 GiB; the full MNIST training images are 47 MB).
pub const MAX_BYTES: u64 = 1 << 30;

/// Images and labels of one split.
#[derive(Clone, Debug)]
pub struct Split {
    /// Pixels scaled to `[0, 1]`, one image per row: `[n, rows * cols]`.
    pub images: Array2<f32>,
    /// The digit of each image, `0..=9`.
    pub labels: Vec<usize>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Split {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images and labels at the given row indices, in that order.
    pub fn select(&self, idx: &[usize]) -> Split {
        Split {
            images: self.images.select(ndarray::Axis(0), idx),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// The first `n` images (all of them when there are fewer).
    pub fn first(&self, n: usize) -> Split {
        self.select(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// A binarised copy: every pixel becomes 1 if it is above `threshold`, else 0 (the VAE and
    /// MADE chapters model binary images; 0.5 is the usual threshold).
    pub fn binarised(&self, threshold: f32) -> Split {
        Split {
            images: self.images.mapv(|p| if p > threshold { 1.0 } else { 0.0 }),
            labels: self.labels.clone(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Splits off the last `n` images: `(first len - n, last n)`.
    pub fn split_last(&self, n: usize) -> (Split, Split) {
        let cut = self.len().saturating_sub(n);
        let head: Vec<usize> = (0..cut).collect();
        let tail: Vec<usize> = (cut..self.len()).collect();
        (self.select(&head), self.select(&tail))
    }
}

/// The training and test splits of an MNIST folder.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// The training images (all of them; programs carve a validation split from the end).
    pub train: Split,
    /// The held-out test images.
    pub test: Split,
}

impl Mnist {
    /// Loads the four files from `dir`.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        if !dir.is_dir() {
            return Err(DataError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
            ));
        }
        Ok(Mnist {
            train: load_split(dir, &["train"])?,
            test: load_split(dir, &["t10k", "test"])?,
        })
    }

    /// Loads the subset shipped with the book, `data/mnist/`.
    pub fn shipped() -> Result<Mnist, DataError> {
        Mnist::load(&super::shipped_dir().join("mnist"))
    }
}

// ANCHOR: splits
/// The three splits every MNIST chapter uses: the training images minus their last
/// `validation`, those last images as the validation split every choice is made on, and the
/// test images, looked at only for the reported numbers.
#[derive(Clone, Debug)]
pub struct MnistSplits {
    /// What the model is trained on.
    pub train: Split,
    /// The last images of the training file, held back for choices.
    pub validation: Split,
    /// The held-out test images.
    pub test: Split,
}

/// The validation split's size in a default run (the last 1,000 of the 8,000 shipped training
/// images) and in a `--quick` run.
pub const VALIDATION: (usize, usize) = (1000, 200);

impl MnistSplits {
    /// Loads the MNIST folder `dir` (the shipped `data/mnist`, or `mnist/` in the `--data`
    /// folder) and splits it with [`VALIDATION`]. With `quick`, keeps only the first 1,000 training, 200 validation
    /// and 500 test images, for seconds-long runs. Fails, with a message, when a file is missing
    /// or damaged, when the images are not 28x28, or when a split would be empty.
    pub fn load(dir: &Path, quick: bool) -> anyhow::Result<MnistSplits> {
        use anyhow::Context as _;
        let mnist = Mnist::load(dir).context("cannot load MNIST")?;
        let validation_size = if quick { VALIDATION.1 } else { VALIDATION.0 };
        let (mut train, mut validation) = mnist.train.split_last(validation_size);
        let mut test = mnist.test;
        if quick {
            train = train.first(1000);
            validation = validation.first(200);
            test = test.first(500);
        }
        anyhow::ensure!(
            !train.is_empty() && !validation.is_empty() && !test.is_empty(),
            "the data has too few images for a training, a validation and a test split"
        );
        anyhow::ensure!(
            train.rows * train.cols == 784 && test.rows * test.cols == 784,
            "the chapters expect 28x28 images, got {}x{}",
            train.rows,
            train.cols
        );
        Ok(MnistSplits {
            train,
            validation,
            test,
        })
    }

    /// The sizes of the three splits, `(train, validation, test)`.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.train.len(), self.validation.len(), self.test.len())
    }

    /// All three splits binarised at `threshold` (see [`Split::binarised`]).
    pub fn binarised(&self, threshold: f32) -> MnistSplits {
        MnistSplits {
            train: self.train.binarised(threshold),
            validation: self.validation.binarised(threshold),
            test: self.test.binarised(threshold),
        }
    }
}
// ANCHOR_END: splits

fn find(dir: &Path, prefixes: &[&str], kind: &str) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    for prefix in prefixes {
        for suffix in ["", ".gz"] {
            let name = format!("{prefix}-{kind}{suffix}");
            let path = dir.join(&name);
            if path.is_file() {
                return Ok(path);
            }
            tried.push(name);
        }
    }
    Err(DataError::Missing {
        dir: dir.to_path_buf(),
        what: kind.to_string(),
        tried: tried.join(", "),
    })
}

/// Loads one split (`train` or `t10k`/`test`) from a folder.
pub fn load_split(dir: &Path, prefixes: &[&str]) -> Result<Split, DataError> {
    let image_path = find(dir, prefixes, "images-idx3-ubyte")?;
    let label_path = find(dir, prefixes, "labels-idx1-ubyte")?;
    let images = read_idx(&image_path)?;
    let labels = read_idx(&label_path)?;
    split_from_idx(&image_path, images, &label_path, labels)
}

/// Checks that an image file and a label file fit together and builds the split.
pub fn split_from_idx(
    image_path: &Path,
    images: Idx,
    label_path: &Path,
    labels: Idx,
) -> Result<Split, DataError> {
    if images.dims.len() != 3 {
        return Err(DataError::format(
            image_path,
            format!(
                "expected 3 dimensions (images), found {}",
                images.dims.len()
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(DataError::format(
            label_path,
            format!("expected 1 dimension (labels), found {}", labels.dims.len()),
        ));
    }
    let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            image_path,
            format!("images of size {rows}x{cols}"),
        ));
    }
    if labels.dims[0] != n {
        return Err(DataError::Mismatch {
            a: image_path.to_path_buf(),
            b: label_path.to_path_buf(),
            reason: format!("{n} images but {} labels", labels.dims[0]),
        });
    }
    if let Some(i) = labels.data.iter().position(|&l| l > 9) {
        return Err(DataError::format(
            label_path,
            format!("label {} at index {i} is not a digit 0-9", labels.data[i]),
        ));
    }
    let images = Array2::from_shape_vec((n, rows * cols), images.data)
        .expect("the size was checked against the header")
        .mapv(|p| f32::from(p) / 255.0);
    Ok(Split {
        images,
        labels: labels.data.into_iter().map(usize::from).collect(),
        rows,
        cols,
    })
}

/// The contents of an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions from the header.
    pub dims: Vec<usize>,
    /// The data, row-major; its length is the product of `dims`.
    pub data: Vec<u8>,
}

// ANCHOR: read_idx
/// Reads an IDX file of unsigned bytes, gunzipping it if it starts with the gzip magic bytes.
pub fn read_idx(path: &Path) -> Result<Idx, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 2];
    let peeked = read_up_to(&mut reader, &mut magic).map_err(|e| DataError::io(path, e))?;
    let head = std::io::Cursor::new(magic[..peeked].to_vec()).chain(reader);
    if peeked == 2 && magic == [0x1f, 0x8b] {
        parse_idx(path, MultiGzDecoder::new(head)).map_err(|e| match e {
            DataError::Io { source, .. } => DataError::format(
                path,
                format!("the gzip stream is damaged or cut short ({source})"),
            ),
            other => other,
        })
    } else {
        parse_idx(path, head)
    }
}

/// Parses an IDX stream (already decompressed). `path` only names the source in errors.
pub fn parse_idx(path: &Path, mut r: impl Read) -> Result<Idx, DataError> {
    let io = |e: std::io::Error| DataError::io(path, e);
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut r, &mut magic).map_err(io)?;
    if got < 4 {
        return Err(DataError::format(
            path,
            format!("{got} bytes: too short for an IDX header"),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 {
        return Err(DataError::format(
            path,
            format!(
                "not an IDX file of unsigned bytes (magic number {:02x} {:02x} {:02x} {:02x}, expected 00 00 08 0N)",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    let ndims = usize::from(magic[3]);
    if ndims == 0 || ndims > 4 {
        return Err(DataError::format(
            path,
            format!("{ndims} dimensions; an IDX image or label file has 1 to 4"),
        ));
    }
    let mut dims = Vec::with_capacity(ndims);
    // The product of the non-zero sizes: a file with a zero-sized dimension holds no data, but
    // its other sizes must still be sane, or code computing `rows * cols` would overflow.
    let mut shape_size: u64 = 1;
    for d in 0..ndims {
        let mut b = [0u8; 4];
        if read_up_to(&mut r, &mut b).map_err(io)? < 4 {
            return Err(DataError::format(
                path,
                format!("the header ends before the size of dimension {d}"),
            ));
        }
        let size = u32::from_be_bytes(b);
        dims.push(size as usize);
        if size > 0 {
            shape_size = shape_size.saturating_mul(u64::from(size));
        }
    }
    if shape_size > MAX_BYTES {
        return Err(DataError::format(
            path,
            format!("the header claims sizes {dims:?}, more than the {MAX_BYTES}-byte limit"),
        ));
    }
    let total = if dims.contains(&0) { 0 } else { shape_size };
    // Read at most what the header promises: the buffer grows only as real bytes arrive.
    let mut data = Vec::new();
    (&mut r).take(total).read_to_end(&mut data).map_err(io)?;
    if (data.len() as u64) < total {
        return Err(DataError::format(
            path,
            format!(
                "truncated: the header promises {total} bytes of data ({dims:?}) but the file holds {}",
                data.len()
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(io)? > 0 {
        return Err(DataError::format(
            path,
            format!("more data than the header's {dims:?} promises"),
        ));
    }
    Ok(Idx { dims, data })
}
// ANCHOR_END: read_idx

/// Fills as much of `buf` as the stream has, returning how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
