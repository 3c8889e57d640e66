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

    /// Reads a UTF-8 text file. Its vocabulary is the set of its characters.
    pub fn load(path: &Path) -> Result<Corpus, TextError> {
        let bytes = std::fs::read(path).map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
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
