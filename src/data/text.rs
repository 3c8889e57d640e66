//! A text corpus for character-level language models: loading, the character vocabulary, and
//! the book's one held-out split.
//!
//! Every character-level model in the book (the n-gram baseline of the NLP chapter, the LSTM,
//! the Transformer) reads its text through [`Corpus`] and cuts it with [`Corpus::split`], so
//! their bits-per-character numbers are measured on exactly the same characters and can be
//! compared. The split is contiguous, not shuffled: a language model is scored on a stretch of
//! text it has never seen, the way it would meet new text.
//!
//! ```text
//! |<------------- train: first 85% ------------->|<- validation: 5% ->|<- test: last 10% ->|
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The largest text file the loader reads (256 MiB; the shipped novel is 0.7 MB).
pub const MAX_BYTES: u64 = 256 << 20;

/// What can go wrong while loading a text file.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The file could not be opened or read (it does not exist, it is a folder, ...).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file's bytes are not UTF-8 text.
    #[error("{path}: not UTF-8 text (invalid byte sequence at byte {offset})")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte sequence starts.
        offset: usize,
    },
    /// The file is larger than [`MAX_BYTES`].
    #[error("{path}: larger than {MAX_BYTES} bytes; the character models read at most that")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no characters.
    #[error("{path}: the text is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

// ANCHOR: vocab
/// The characters of a text, each given an id: the ids are `0..len()`, in the order of the
/// characters' Unicode code points (so the vocabulary of a text does not depend on where its
/// characters first occur).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
    ids: BTreeMap<char, usize>,
}

impl Vocab {
    /// The vocabulary of the distinct characters in `text`.
    pub fn of(text: &str) -> Vocab {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        let ids = chars.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        Vocab { chars, ids }
    }

    /// The number of characters, `V`.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary has no characters.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<usize> {
        self.ids.get(&c).copied()
    }

    /// The character with id `id`. Panics if `id >= len()`, which is a bug in the caller.
    pub fn char(&self, id: usize) -> char {
        assert!(
            id < self.len(),
            "Vocab::char: id {id} is out of range for a vocabulary of {} characters",
            self.len()
        );
        self.chars[id]
    }

    /// The ids of the characters of `text`, or the first character that is not in the
    /// vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>, char> {
        text.chars().map(|c| self.id(c).ok_or(c)).collect()
    }

    /// The text spelled by `ids`. Panics on an id out of range, like [`Vocab::char`].
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter().map(|&i| self.char(i)).collect()
    }
}
// ANCHOR_END: vocab

/// A text as a sequence of character ids, with its vocabulary.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The vocabulary: every character of the whole text.
    pub vocab: Vocab,
    /// The text, one id per character.
    pub ids: Vec<usize>,
}

/// The file name of the shipped novel, in `data/text/`.
pub const SHIPPED_NAME: &str = "pride-and-prejudice.txt";

impl Corpus {
    /// The corpus of `text`; `None` if the text is empty.
    pub fn from_text(text: &str) -> Option<Corpus> {
        if text.is_empty() {
            return None;
        }
        let vocab = Vocab::of(text);
        let ids = vocab
            .encode(text)
            .expect("every character of a text is in its own vocabulary");
        Some(Corpus { vocab, ids })
    }

    /// Reads a UTF-8 text file of at most [`MAX_BYTES`]. Its vocabulary is the set of its
    /// characters.
    pub fn load(path: &Path) -> Result<Corpus, TextError> {
        use std::io::Read as _;
        let io = |source| TextError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(TextError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| TextError::NotUtf8 {
            path: path.to_path_buf(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Corpus::from_text(&text).ok_or_else(|| TextError::Empty {
            path: path.to_path_buf(),
        })
    }

    /// The novel shipped with the book, `data/text/pride-and-prejudice.txt`.
    pub fn shipped() -> Result<Corpus, TextError> {
        Corpus::load(&super::shipped_dir().join("text").join(SHIPPED_NAME))
    }

    /// The number of characters.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the corpus has no characters (never true for a loaded corpus).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    // ANCHOR: split
    /// The book's held-out split of the text, the same for every character-level model:
    /// `(train, validation, test)`, where the test split is the last 10% of the characters
    /// (rounded down), the validation split the 5% before it, and the training split everything
    /// earlier. On the shipped novel: 582,054, 34,238 and 68,476 characters.
    pub fn split(&self) -> (&[usize], &[usize], &[usize]) {
        let (a, b) = split_points(self.len());
        (&self.ids[..a], &self.ids[a..b], &self.ids[b..])
    }
    // ANCHOR_END: split
}

/// Where [`Corpus::split`] cuts a text of `len` characters: the validation split is
/// `a..b` and the test split `b..len`.
pub fn split_points(len: usize) -> (usize, usize) {
    let test = len / 10;
    let validation = len / 20;
    let b = len - test;
    (b - validation, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_cover_the_text_in_order() {
        assert_eq!(split_points(684_768), (582_054, 616_292));
        assert_eq!(split_points(100), (85, 90));
        assert_eq!(split_points(5), (5, 5));
        assert_eq!(split_points(0), (0, 0));
    }
}

// ANCHOR: bpc
/// Bits per character from a mean cross-entropy in nats per character: `nats / ln 2`. Every
/// character model in the book reports this number on the same split ([`Corpus::split`]), so
/// the n-gram, LSTM, attention and Transformer tables can be read side by side.
pub fn bits_per_char(nats_per_char: f64) -> f64 {
    nats_per_char / std::f64::consts::LN_2
}
// ANCHOR_END: bpc

/// A batch of windows of a text: `inputs[b][t]` is a character id and `targets[b][t]` the id of
/// the character after it, both `[batch, time]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Character ids, `[batch, time]`.
    pub inputs: ndarray::Array2<usize>,
    /// The next character of each input, `[batch, time]`.
    pub targets: ndarray::Array2<usize>,
}

// ANCHOR: batcher
/// Cuts a sequence of character ids into `[batch, time]` windows for a character model, two
/// ways:
///
/// * [`Batcher::random`]: `batch` windows starting at positions drawn uniformly, for training
///   models that start every window from a fresh state;
/// * [`Batcher::streams`]: the text cut into `batch` contiguous streams, walked `time`
///   characters at a time, so window `k + 1` of stream `b` continues where window `k` ended:
///   the layout truncated backpropagation through time needs to carry a recurrent state from
///   one window to the next. With `batch = 1` the windows cover every character after the first
///   exactly once, which is how a split is scored.
#[derive(Clone, Copy, Debug)]
pub struct Batcher<'a> {
    ids: &'a [usize],
    batch: usize,
    time: usize,
}

impl<'a> Batcher<'a> {
    /// A batcher of `batch` windows of `time` characters over `ids`. Panics when `batch` or
    /// `time` is zero or the text is shorter than one window and its next character.
    pub fn new(ids: &'a [usize], batch: usize, time: usize) -> Self {
        assert!(
            batch > 0 && time > 0,
            "Batcher: batch {batch} and time {time} must be positive"
        );
        assert!(
            ids.len() > time,
            "Batcher: a text of {} characters is too short for windows of {time}",
            ids.len()
        );
        Batcher { ids, batch, time }
    }

    /// `batch` windows at random starting positions (drawn with replacement).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Windows {
        let last_start = self.ids.len() - self.time - 1;
        let starts: Vec<usize> = (0..self.batch)
            .map(|_| rng.random_range(0..=last_start))
            .collect();
        self.windows_at(&starts, self.time)
    }

    /// The contiguous streams, window by window: stream `b` holds the characters
    /// `b * len .. (b + 1) * len + 1` with `len = (n - 1) / batch`, so the streams touch and
    /// cover every prediction but the last `(n - 1) % batch`. The last window of each stream may
    /// be shorter than `time`.
    pub fn streams(&self) -> impl Iterator<Item = Windows> + '_ {
        let len = (self.ids.len() - 1) / self.batch;
        assert!(
            len > 0,
            "Batcher: {} characters cannot make {} streams",
            self.ids.len(),
            self.batch
        );
        (0..len).step_by(self.time).map(move |offset| {
            let width = self.time.min(len - offset);
            let starts: Vec<usize> = (0..self.batch).map(|b| b * len + offset).collect();
            self.windows_at(&starts, width)
        })
    }

    /// The number of windows [`Batcher::streams`] yields.
    pub fn stream_windows(&self) -> usize {
        ((self.ids.len() - 1) / self.batch).div_ceil(self.time)
    }

    fn windows_at(&self, starts: &[usize], width: usize) -> Windows {
        let at = |shift: usize| {
            ndarray::Array2::from_shape_fn((starts.len(), width), |(b, t)| {
                self.ids[starts[b] + t + shift]
            })
        };
        Windows {
            inputs: at(0),
            targets: at(1),
        }
    }
}
// ANCHOR_END: batcher

#[cfg(test)]
mod batcher_tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn targets_are_the_inputs_shifted_by_one() {
        let ids: Vec<usize> = (0..50).collect();
        let b = Batcher::new(&ids, 4, 7);
        let w = b.random(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(w.inputs.dim(), (4, 7));
        assert_eq!(w.targets, w.inputs.mapv(|i| i + 1));
    }

    #[test]
    fn streams_continue_each_other_and_cover_the_text_once() {
        let ids: Vec<usize> = (0..23).collect();
        let b = Batcher::new(&ids, 2, 4);
        let windows: Vec<Windows> = b.streams().collect();
        assert_eq!(windows.len(), b.stream_windows());
        // (23 - 1) / 2 = 11 predictions per stream: windows of 4, 4 and 3.
        assert_eq!(
            windows.iter().map(|w| w.inputs.ncols()).collect::<Vec<_>>(),
            [4, 4, 3]
        );
        for row in 0..2 {
            let stream: Vec<usize> = windows
                .iter()
                .flat_map(|w| w.inputs.row(row).to_vec())
                .collect();
            assert_eq!(stream, (row * 11..row * 11 + 11).collect::<Vec<_>>());
        }
        let one: Vec<usize> = Batcher::new(&ids, 1, 5)
            .streams()
            .flat_map(|w| w.targets.row(0).to_vec())
            .collect();
        assert_eq!(
            one,
            (1..23).collect::<Vec<_>>(),
            "every character after the first"
        );
    }

    #[test]
    fn bits_are_nats_over_ln_2() {
        assert!((bits_per_char(std::f64::consts::LN_2) - 1.0).abs() < 1e-15);
    }
}
