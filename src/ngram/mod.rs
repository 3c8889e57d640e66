//! A character-level n-gram language model: the NLP chapter's first language model, and the
//! baseline every later character-level model must beat.
//!
//! An order-`n` model predicts the next character from the `n - 1` characters before it:
//!
//! ```text
//! P(x_t | x_1 .. x_{t-1})  ~  P(x_t | x_{t-n+1} .. x_{t-1})
//! ```
//!
//! It is "trained" by counting: `n(h c)`, how often character `c` followed the context `h` in the
//! training text, and `n(h)`, how often `h` was followed by anything. The counts alone (the
//! maximum-likelihood estimate `n(h c) / n(h)`) give probability zero to everything the training
//! text never showed, which makes the model infinitely surprised by new text; a [`Smoothing`]
//! rule moves some probability onto the unseen.
//!
//! The model keeps the counts of every context length from 0 to `n - 1`: interpolation needs the
//! shorter contexts, and so do the first characters of a text, which have fewer than `n - 1`
//! characters before them (they are scored with the context they have).
//!
//! This is a counting model with no gradients and no training in `f32`, so unlike the neural
//! models it is not generic over the float type: probabilities are `f64`.

pub mod experiment;

use rand::Rng;
use std::collections::HashMap;

/// How the model turns counts into probabilities. With `V` characters in the vocabulary:
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Smoothing {
    /// Add-k (Lidstone) smoothing: pretend every character was seen `k` more times after every
    /// context, `P(c | h) = (n(h c) + k) / (n(h) + k V)`. `k = 1` is Laplace's rule.
    AddK(f64),
    /// Interpolation with the next shorter context, with strength `beta`:
    /// `P(c | h) = (n(h c) + beta P(c | h')) / (n(h) + beta)`, where `h'` is `h` without its
    /// first character, down to the uniform `1 / V` below the empty context. A context seen
    /// often trusts its own counts; a rare one leans on the shorter context; an unseen one
    /// uses the shorter context's probabilities unchanged.
    Interpolated(f64),
}

impl Smoothing {
    /// The smoothing's parameter (`k` or `beta`).
    pub fn parameter(self) -> f64 {
        match self {
            Smoothing::AddK(k) => k,
            Smoothing::Interpolated(beta) => beta,
        }
    }

    /// A short name: `add-k` or `interpolated`.
    pub fn name(self) -> &'static str {
        match self {
            Smoothing::AddK(_) => "add-k",
            Smoothing::Interpolated(_) => "interpolated",
        }
    }
}

/// How often each character followed one context.
#[derive(Clone, Debug, Default)]
struct Counts {
    /// `n(h)`: the sum of the counts in `next`.
    total: u64,
    /// `(c, n(h c))` for the characters `c` seen after the context, sorted by `c` (sparse: most
    /// long contexts are followed by only a few distinct characters).
    next: Vec<(usize, u32)>,
}

impl Counts {
    fn add(&mut self, c: usize) {
        self.total += 1;
        match self.next.binary_search_by_key(&c, |&(d, _)| d) {
            Ok(i) => self.next[i].1 += 1,
            Err(i) => self.next.insert(i, (c, 1)),
        }
    }

    fn of(&self, c: usize) -> u32 {
        self.next
            .binary_search_by_key(&c, |&(d, _)| d)
            .map_or(0, |i| self.next[i].1)
    }
}

// ANCHOR: struct
/// The counts of an order-`n` character model.
#[derive(Clone, Debug)]
pub struct NGram {
    order: usize,
    vocab_size: usize,
    /// `tables[l]` maps each context of `l` characters seen in training (`l = 0 .. n - 1`) to
    /// the counts of the characters that followed it.
    tables: Vec<HashMap<Vec<usize>, Counts>>,
}
// ANCHOR_END: struct

impl NGram {
    // ANCHOR: count
    /// Counts an order-`order` model on the character ids `text` (each below `vocab_size`):
    /// for every position `t` and every context length `l < order` with `l <= t`, the pair
    /// (context `text[t-l..t]`, next character `text[t]`).
    pub fn count(order: usize, vocab_size: usize, text: &[usize]) -> NGram {
        assert!(order >= 1, "NGram::count: the order must be at least 1");
        assert!(vocab_size >= 1, "NGram::count: the vocabulary is empty");
        let mut tables: Vec<HashMap<Vec<usize>, Counts>> = vec![HashMap::new(); order];
        for (t, &c) in text.iter().enumerate() {
            assert!(
                c < vocab_size,
                "NGram::count: id {c} at position {t} is not below the vocabulary size {vocab_size}"
            );
            for (l, table) in tables.iter_mut().enumerate().take(t + 1) {
                let context = &text[t - l..t];
                match table.get_mut(context) {
                    Some(counts) => counts.add(c),
                    None => {
                        let mut counts = Counts::default();
                        counts.add(c);
                        table.insert(context.to_vec(), counts);
                    }
                }
            }
        }
        NGram {
            order,
            vocab_size,
            tables,
        }
    }
    // ANCHOR_END: count

    /// The order `n`: the model looks at up to `n - 1` characters of context.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The vocabulary size `V`.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The number of distinct contexts of `l` characters seen in training.
    pub fn contexts(&self, l: usize) -> usize {
        self.tables.get(l).map_or(0, HashMap::len)
    }

    /// `n(h)`: how often the context `h` (at most `n - 1` characters) was followed by a
    /// character in the training text.
    pub fn context_count(&self, h: &[usize]) -> u64 {
        self.counts(h).map_or(0, |k| k.total)
    }

    /// `n(h c)`: how often `c` followed the context `h` in the training text.
    pub fn count_of(&self, h: &[usize], c: usize) -> u64 {
        self.counts(h).map_or(0, |k| u64::from(k.of(c)))
    }

    fn counts(&self, h: &[usize]) -> Option<&Counts> {
        assert!(
            h.len() < self.order,
            "NGram: a context of {} characters is too long for an order-{} model",
            h.len(),
            self.order
        );
        self.tables[h.len()].get(h)
    }

    /// The context the model uses after `history`: its last `min(n - 1, len)` characters.
    pub fn context<'a>(&self, history: &'a [usize]) -> &'a [usize] {
        &history[history.len().saturating_sub(self.order - 1)..]
    }

    // ANCHOR: prob
    /// `P(c | history)` under `smoothing`, using the last `n - 1` characters of `history` (all
    /// of it if shorter).
    pub fn prob(&self, smoothing: Smoothing, history: &[usize], c: usize) -> f64 {
        assert!(
            c < self.vocab_size,
            "NGram::prob: id {c} is not below the vocabulary size {}",
            self.vocab_size
        );
        let h = self.context(history);
        let v = self.vocab_size as f64;
        match smoothing {
            Smoothing::AddK(k) => {
                assert!(k > 0.0, "add-k smoothing needs k > 0, got {k}");
                (self.count_of(h, c) as f64 + k) / (self.context_count(h) as f64 + k * v)
            }
            Smoothing::Interpolated(beta) => {
                assert!(beta > 0.0, "interpolation needs beta > 0, got {beta}");
                let mut p = 1.0 / v;
                // From the empty context up to the full one; an unseen context (and so every
                // longer one) leaves the shorter context's probability as it is.
                for l in 0..=h.len() {
                    match self.counts(&h[h.len() - l..]) {
                        Some(k) => {
                            p = (f64::from(k.of(c)) + beta * p) / (k.total as f64 + beta);
                        }
                        None => break,
                    }
                }
                p
            }
        }
    }
    // ANCHOR_END: prob

    /// The whole distribution `P(. | history)`, one probability per character id.
    pub fn distribution(&self, smoothing: Smoothing, history: &[usize]) -> Vec<f64> {
        (0..self.vocab_size)
            .map(|c| self.prob(smoothing, history, c))
            .collect()
    }

    // ANCHOR: bpc
    /// Bits per character on `text`: the mean of `-log2 P(x_t | x_1 .. x_{t-1})` over its
    /// characters, each scored from the characters before it in `text`. A model that guesses
    /// uniformly scores `log2 V`; every bit less is structure the model has learnt.
    pub fn bits_per_char(&self, smoothing: Smoothing, text: &[usize]) -> f64 {
        assert!(!text.is_empty(), "bits_per_char: the text is empty");
        let total: f64 = (0..text.len())
            .map(|t| -self.prob(smoothing, &text[..t], text[t]).log2())
            .sum();
        total / text.len() as f64
    }
    // ANCHOR_END: bpc

    // ANCHOR: sample
    /// Continues `prompt` with `len` characters drawn one at a time from the model.
    pub fn sample(
        &self,
        smoothing: Smoothing,
        prompt: &[usize],
        len: usize,
        rng: &mut impl Rng,
    ) -> Vec<usize> {
        let mut text = prompt.to_vec();
        for _ in 0..len {
            let p = self.distribution(smoothing, &text);
            let u: f64 = rng.random();
            let mut cumulative = 0.0;
            // The last character takes whatever rounding leaves over.
            let mut next = self.vocab_size - 1;
            for (c, &pc) in p.iter().enumerate() {
                cumulative += pc;
                if u < cumulative {
                    next = c;
                    break;
                }
            }
            text.push(next);
        }
        text.split_off(prompt.len())
    }
    // ANCHOR_END: sample
}
