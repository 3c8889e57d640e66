//! The chapter's two models, built from [`MultiHeadAttention`]:
//!
//! * [`Lookup`]: a key-value lookup. Each position of the input holds one key-value pair (the
//!   sum of a key embedding and a value embedding); the last position holds the query key and
//!   a blank value. One cross-attention layer lets the query look at every position, and a
//!   linear layer reads the value off the query's output.
//! * [`CharAttention`]: an attention-only character model: token embedding plus learned
//!   positions, one causal multi-head self-attention block with a residual connection,
//!   `h = x + MHA(x)`, and a linear output layer giving the next character's logits.

use super::{Mask, MhaCache, MultiHeadAttention};
use crate::embedding::Embedding;
use crate::float::Float;
use crate::linear::{Linear, LinearCache};
use crate::loss::softmax_cross_entropy;
use ndarray::{Array2, Array3, ArrayRef2, Axis, s};
use rand::Rng;

/// `[batch, time]` position ids `0, 1, ..., time - 1` in every row: what a table of learned
/// positions is indexed with.
pub fn position_ids(batch: usize, time: usize) -> Array2<usize> {
    Array2::from_shape_fn((batch, time), |(_, t)| t)
}

// ANCHOR: lookup_struct
/// The key-value lookup model.
#[derive(Clone, Debug)]
pub struct Lookup<F: Float> {
    /// Key embedding, `[keys, d]`.
    pub keys: Embedding<F>,
    /// Value embedding, `[values + 1, d]`: the last row is the blank of the query position.
    pub values: Embedding<F>,
    /// Cross-attention from the query position to every position.
    pub attention: MultiHeadAttention<F>,
    /// The value's logits from the query's output, `[d, values]`.
    pub output: Linear<F>,
}
// ANCHOR_END: lookup_struct

/// What [`Lookup::backward`] needs.
#[derive(Clone, Debug)]
pub struct LookupCache<F: Float> {
    keys: Array2<usize>,
    values: Array2<usize>,
    attention: MhaCache<F>,
    output: LinearCache<F>,
}

impl<F: Float> LookupCache<F> {
    /// The attention weights of the query, `[batch, heads, 1, positions]`.
    pub fn attention(&self) -> &MhaCache<F> {
        &self.attention
    }
}

impl<F: Float> Lookup<F> {
    /// A model for `keys` keys and `values` values, width `d`, `heads` heads.
    pub fn new(keys: usize, values: usize, d: usize, heads: usize, rng: &mut impl Rng) -> Self {
        Lookup {
            keys: Embedding::new(keys, d, rng),
            values: Embedding::new(values + 1, d, rng),
            attention: MultiHeadAttention::new(d, heads, rng),
            output: Linear::new(d, values, rng),
        }
    }

    /// The id of the blank value the query position carries.
    pub fn blank(&self) -> usize {
        self.values.vocab() - 1
    }

    // ANCHOR: lookup_forward
    /// The logits of the value (`[batch, values]`) for `keys` and `values` of shape
    /// `[batch, n + 1]`, whose last column is the query key and the blank.
    pub fn forward(
        &self,
        keys: &ArrayRef2<usize>,
        values: &ArrayRef2<usize>,
    ) -> (Array2<F>, LookupCache<F>) {
        assert_eq!(
            keys.dim(),
            values.dim(),
            "Lookup: keys are {:?} but values are {:?}",
            keys.shape(),
            values.shape()
        );
        let x = self.keys.infer(keys) + self.values.infer(values);
        let last = x.dim().1 - 1;
        let query = x.slice(s![.., last..last + 1, ..]);
        let (a, attention) = self.attention.forward(&query, &x, Mask::None);
        let h = (a + query).index_axis_move(Axis(1), 0);
        let (logits, output) = self.output.forward_owned(h);
        let cache = LookupCache {
            keys: keys.to_owned(),
            values: values.to_owned(),
            attention,
            output,
        };
        (logits, cache)
    }
    // ANCHOR_END: lookup_forward

    /// Adds every parameter's gradient for `dlogits = dL/dlogits` (`[batch, values]`).
    pub fn backward(&mut self, cache: &LookupCache<F>, dlogits: &ArrayRef2<F>) {
        let dh = self.output.backward(&cache.output, dlogits);
        let (batch, d) = dh.dim();
        let dh = dh
            .into_shape_with_order((batch, 1, d))
            .expect("[batch, d] reshapes to [batch, 1, d]");
        let (dq, mut dx) = self.attention.backward(&cache.attention, &dh);
        let last = dx.dim().1 - 1;
        // The query row fed the attention's query input and, through the residual, h.
        let mut row = dx.slice_mut(s![.., last..last + 1, ..]);
        row += &dq;
        row += &dh;
        self.keys.backward(&cache.keys, &dx);
        self.values.backward(&cache.values, &dx);
    }

    /// The mean cross-entropy of the values `targets` (`[batch]`), after a backward pass that
    /// adds every gradient.
    pub fn loss_backward(
        &mut self,
        keys: &ArrayRef2<usize>,
        values: &ArrayRef2<usize>,
        targets: &[usize],
    ) -> F {
        let (logits, cache) = self.forward(keys, values);
        let (loss, dlogits) = softmax_cross_entropy(&logits, targets);
        self.backward(&cache, &dlogits);
        loss
    }
}

crate::impl_params!(Lookup<F> { keys, values, attention, output });

// ANCHOR: char_struct
/// The attention-only character model.
#[derive(Clone, Debug)]
pub struct CharAttention<F: Float> {
    /// Token embedding, `[vocab, d]`.
    pub tokens: Embedding<F>,
    /// Learned positions, `[max_len, d]`: row `t` is added at position `t`.
    pub positions: Embedding<F>,
    /// One causal multi-head self-attention block, used as `h = x + MHA(x)`.
    pub attention: MultiHeadAttention<F>,
    /// The next character's logits, `[d, vocab]`.
    pub output: Linear<F>,
}
// ANCHOR_END: char_struct

/// What [`CharAttention::backward`] needs.
#[derive(Clone, Debug)]
pub struct CharCache<F: Float> {
    ids: Array2<usize>,
    attention: MhaCache<F>,
    output: LinearCache<F>,
}

impl<F: Float> CharCache<F> {
    /// The block's attention cache (its weights are what the heatmaps show).
    pub fn attention(&self) -> &MhaCache<F> {
        &self.attention
    }
}

impl<F: Float> CharAttention<F> {
    /// A model of `vocab` characters, windows of at most `max_len`, width `d`, `heads` heads.
    pub fn new(vocab: usize, max_len: usize, d: usize, heads: usize, rng: &mut impl Rng) -> Self {
        CharAttention {
            tokens: Embedding::new(vocab, d, rng),
            positions: Embedding::new(max_len, d, rng),
            attention: MultiHeadAttention::new(d, heads, rng),
            output: Linear::from_weights(
                crate::init::glorot_uniform(d, vocab, rng),
                ndarray::Array1::zeros(vocab),
            ),
        }
    }

    /// The longest window the positions cover.
    pub fn max_len(&self) -> usize {
        self.positions.vocab()
    }

    // ANCHOR: char_forward
    /// The logits `[batch * time, vocab]` of the character after each input character, for ids
    /// `[batch, time]` (`time <= max_len`): row `b * time + t` predicts from characters `0..=t`
    /// of window `b`.
    pub fn forward(&self, ids: &ArrayRef2<usize>) -> (Array2<F>, CharCache<F>) {
        let (batch, time) = ids.dim();
        assert!(
            time <= self.max_len(),
            "CharAttention: windows of {time} characters but positions for {}",
            self.max_len()
        );
        let x = self.tokens.infer(ids) + self.positions.infer(&position_ids(batch, time));
        let (a, attention) = self.attention.forward_self(&x, Mask::Causal);
        let h = (a + x)
            .into_shape_with_order((batch * time, self.attention.width()))
            .expect("[batch, time, d] reshapes to [batch * time, d]");
        let (logits, output) = self.output.forward_owned(h);
        let cache = CharCache {
            ids: ids.to_owned(),
            attention,
            output,
        };
        (logits, cache)
    }
    // ANCHOR_END: char_forward

    // ANCHOR: char_backward
    /// Adds every parameter's gradient for `dlogits` (`[batch * time, vocab]`).
    pub fn backward(&mut self, cache: &CharCache<F>, dlogits: &ArrayRef2<F>) {
        let (batch, time) = cache.ids.dim();
        let dh = self
            .output
            .backward(&cache.output, dlogits)
            .into_shape_with_order((batch, time, self.attention.width()))
            .expect("[batch * time, d] reshapes to [batch, time, d]");
        // h = x + MHA(x): the residual path and the attention path both reach x.
        let dx: Array3<F> = self.attention.backward_self(&cache.attention, &dh) + &dh;
        self.tokens.backward(&cache.ids, &dx);
        self.positions.backward(&position_ids(batch, time), &dx);
    }
    // ANCHOR_END: char_backward

    /// The mean cross-entropy (nats per character) of `targets` (`[batch, time]`), after a
    /// backward pass that adds every gradient.
    pub fn loss_backward(&mut self, ids: &ArrayRef2<usize>, targets: &ArrayRef2<usize>) -> F {
        let (logits, cache) = self.forward(ids);
        let targets: Vec<usize> = targets.iter().copied().collect();
        let (loss, dlogits) = softmax_cross_entropy(&logits, &targets);
        self.backward(&cache, &dlogits);
        loss
    }
}

crate::impl_params!(CharAttention<F> { tokens, positions, attention, output });
