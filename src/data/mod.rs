//! Loading the book's data sets, and cutting them into mini-batches.
//!
//! Everything that reads a file returns a [`Result`] with a [`DataError`] that names the file
//! and says what is wrong with it: a reader pointing a program at their own files should get a
//! sentence, never a panic.

pub mod batches;
pub mod digits;
pub mod mnist;
pub mod penguins;
pub mod text;

use std::path::{Path, PathBuf};

/// What can go wrong while reading a data file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file was read but its contents are not what the format requires.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in a sentence.
        reason: String,
    },
    /// None of the accepted file names exists in a folder.
    #[error("{dir}: no {what} file (looked for {tried})")]
    Missing {
        /// The folder searched.
        dir: PathBuf,
        /// What was looked for.
        what: String,
        /// The names tried, comma separated.
        tried: String,
    },
    /// Two files that belong together disagree.
    #[error("{a} and {b}: {reason}")]
    Mismatch {
        /// One file.
        a: PathBuf,
        /// The other.
        b: PathBuf,
        /// How they disagree.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn format(path: &Path, reason: impl Into<String>) -> Self {
        DataError::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads all of `reader` (the contents of `path`) as text, refusing more than `max` bytes: the
/// loaders' guard against a wrong file, say a multi-gigabyte one, being read whole into memory.
pub(crate) fn read_capped(
    reader: impl std::io::Read,
    path: &Path,
    max: u64,
    what: &str,
) -> Result<String, DataError> {
    use std::io::Read;
    let mut text = String::new();
    reader
        .take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| DataError::format(path, format!("cannot read the text: {e}")))?;
    if text.len() as u64 > max {
        return Err(DataError::format(
            path,
            format!("more than {max} bytes of text: not {what}"),
        ));
    }
    Ok(text)
}

/// The folder of the data sets shipped with the book (`data/` at the crate's root).
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}
