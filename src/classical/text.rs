//! Text features: tokens, a vocabulary, bag-of-words counts and TF-IDF, and the passages of
//! *Pride and Prejudice* the chapter classifies.
//!
//! A document becomes a vector with one entry per word of the vocabulary. The *bag of words*
//! keeps how often each word occurs and forgets the order. *TF-IDF* reweights those counts by
//! how rare each word is across the training documents, so that words every passage uses
//! ("the", "of", "her") weigh little and distinctive ones weigh much. We follow the definition
//! scikit-learn uses by default (`TfidfVectorizer` with `smooth_idf=True, norm="l2"`): for `n`
//! training documents, a word in `df` of them gets
//!
//! `idf = ln((1 + n) / (1 + df)) + 1`,
//!
//! a document's vector is `count * idf` per word, and each vector is scaled to unit length.

use ndarray::Array2;
use std::collections::BTreeMap;

// ANCHOR: tokenize
/// Splits text into lower-case words: maximal runs of ASCII letters. Punctuation, digits,
/// quotation marks and the underscores that mark italics in the source all separate words,
/// so `"_You_ want"` gives `["you", "want"]` and `"Bennet's"` gives `["bennet", "s"]`.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}
// ANCHOR_END: tokenize

/// The words a model knows, each with a column index, and how many training documents contain
/// each.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    /// Word to column, in alphabetical order (so the columns do not depend on hash seeds).
    pub index: BTreeMap<String, usize>,
    /// For column `j`, the number of training documents that contain its word.
    pub document_frequency: Vec<usize>,
    /// The number of training documents.
    pub documents: usize,
}

// ANCHOR: vocabulary
impl Vocabulary {
    /// Builds the vocabulary from tokenised training documents, keeping the words that occur in
    /// at least `min_df` of them (a word seen in one passage only cannot generalise).
    pub fn fit(docs: &[Vec<String>], min_df: usize) -> Vocabulary {
        let mut df: BTreeMap<&str, usize> = BTreeMap::new();
        for doc in docs {
            let mut seen: Vec<&str> = doc.iter().map(String::as_str).collect();
            seen.sort_unstable();
            seen.dedup();
            for w in seen {
                *df.entry(w).or_default() += 1;
            }
        }
        let kept: Vec<(&str, usize)> = df.into_iter().filter(|&(_, n)| n >= min_df).collect();
        Vocabulary {
            index: kept
                .iter()
                .enumerate()
                .map(|(j, (w, _))| (w.to_string(), j))
                .collect(),
            document_frequency: kept.iter().map(|&(_, n)| n).collect(),
            documents: docs.len(),
        }
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no word was kept.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bag of words: `[docs, words]`, entry `(i, j)` the count of word `j` in document `i`.
    /// Words outside the vocabulary are dropped.
    pub fn counts(&self, docs: &[Vec<String>]) -> Array2<f64> {
        let mut x = Array2::zeros((docs.len(), self.len()));
        for (i, doc) in docs.iter().enumerate() {
            for w in doc {
                if let Some(&j) = self.index.get(w) {
                    x[[i, j]] += 1.0;
                }
            }
        }
        x
    }

    /// The inverse document frequency of each word, `ln((1 + n) / (1 + df)) + 1`.
    pub fn idf(&self) -> Vec<f64> {
        let n = self.documents as f64;
        self.document_frequency
            .iter()
            .map(|&df| ((1.0 + n) / (1.0 + df as f64)).ln() + 1.0)
            .collect()
    }

    /// TF-IDF: each count multiplied by its word's idf, each row scaled to unit length (rows
    /// with no known word stay zero).
    pub fn tf_idf(&self, docs: &[Vec<String>]) -> Array2<f64> {
        let mut x = self.counts(docs);
        let idf = ndarray::Array1::from(self.idf());
        for mut row in x.rows_mut() {
            row *= &idf;
        }
        unit_rows(x)
    }
}
// ANCHOR_END: vocabulary

/// Scales every non-zero row of `x` to unit Euclidean length.
pub fn unit_rows(mut x: Array2<f64>) -> Array2<f64> {
    for mut row in x.rows_mut() {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
    x
}

/// A paragraph of the novel, with where it comes from.
#[derive(Clone, Debug)]
pub struct Passage {
    /// The chapter, 1 to 61.
    pub chapter: usize,
    /// The volume of the first edition (1813): 0 for chapters 1-23, 1 for 24-42, 2 for 43-61.
    pub volume: usize,
    /// The paragraph, its lines joined by spaces.
    pub text: String,
}

/// The volume (0, 1 or 2) of a chapter in the first edition, which printed the novel in three
/// volumes of 23, 19 and 19 chapters.
pub fn volume_of(chapter: usize) -> usize {
    match chapter {
        0..=23 => 0,
        24..=42 => 1,
        _ => 2,
    }
}

// ANCHOR: passages
/// Cuts the novel into paragraphs (separated by blank lines) of at least `min_words` words,
/// each tagged with its chapter (a line `Chapter N` starts chapter N) and volume. Text before
/// the first chapter heading (the title) is skipped.
pub fn passages(novel: &str, min_words: usize) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut chapter = 0;
    for paragraph in novel.split("\n\n") {
        let text = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(n) = text
            .strip_prefix("Chapter ")
            .and_then(|n| n.parse::<usize>().ok())
        {
            chapter = n;
            continue;
        }
        if chapter > 0 && text.split(' ').count() >= min_words {
            out.push(Passage {
                chapter,
                volume: volume_of(chapter),
                text,
            });
        }
    }
    out
}
// ANCHOR_END: passages

/// Which split a chapter's passages go to: whole chapters are held out, so that neighbouring
/// paragraphs of one scene never sit on both sides of the split. Chapters `5k + 3` go to
/// validation, `5k + 4` to test, the rest to training.
pub fn split_of(chapter: usize) -> Split {
    match chapter % 5 {
        3 => Split::Validation,
        4 => Split::Test,
        _ => Split::Train,
    }
}

/// The three splits of the text experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// For fitting (and for the vocabulary and the idf).
    Train,
    /// For choices.
    Validation,
    /// Scored once.
    Test,
}
