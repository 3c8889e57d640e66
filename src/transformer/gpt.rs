//! A decoder-only Transformer (GPT-style) character model, built from the chapter's blocks:
//!
//! ```text
//! ids [batch, time] -> E[ids] + P[0..time] -> dropout -> N x pre-LN Block (causal)
//!                   -> LayerNorm -> Linear d -> vocab -> logits [batch * time, vocab]
//! ```
//!
//! Token embedding `E` (`[vocab, d]`) plus learned positions `P` (`[max_len, d]`), `N`
//! [`Block`]s with [`Norm::Pre`] (`x + f(LN(x))`), causal self-attention and a feed-forward
//! sublayer with exact (erf) GELU, a final layer norm (pre-LN blocks leave the residual stream
//! unnormalised, so something must normalise it before the output layer), and an output layer of
//! its own (not tied to `E`). Row `b * time + t` of the logits predicts character `t + 1` of
//! window `b` from characters `0..=t` only.
//!
//! Generation runs one character at a time. [`Gpt::step`] feeds the newest character through
//! every block with [`Block::step`], each block keeping the keys and values of the positions seen
//! so far in its [`KvCache`], so a step costs one position's work instead of a whole window's.
//! The uncached path ([`Decode::Uncached`]) runs the full causal pass over the context at every
//! step; both follow the same context rule (see [`Gpt::generate`]) and give the same
//! distributions.
//!
//! Parameter names: `tokens.table`, `positions.learned.table`, `blocks.{i}.` + the block's names
//! (see [`crate::transformer`]), `ln_f.{gamma,beta}`, `out.{w,b}`.

use super::layer_norm::{LayerNorm, LayerNormCache};
use super::{Block, BlockCache, KvCache, Norm, Positions, maybe_drop, rows, seqs, undrop};
use crate::activation::Activation;
use crate::dropout::{Dropout, DropoutCache};
use crate::embedding::Embedding;
use crate::float::Float;
use crate::linear::{Linear, LinearCache};
use crate::loss::{softmax, softmax_cross_entropy};
use crate::self_attention::Mask;
use ndarray::{Array2, Array3, ArrayRef2, Ix3};
use rand::Rng;
use rand::distr::{Distribution, weighted::WeightedIndex};

// ANCHOR: config
/// The sizes of a [`Gpt`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GptConfig {
    /// Characters in the vocabulary.
    pub vocab: usize,
    /// The longest window (the learned positions).
    pub max_len: usize,
    /// Model width `d`.
    pub d: usize,
    /// Attention heads (dividing `d`).
    pub heads: usize,
    /// Inner width of the feed-forward sublayers.
    pub ff: usize,
    /// Blocks.
    pub blocks: usize,
    /// Dropout rate on the embeddings and on every sublayer's output.
    pub dropout: f64,
}

impl GptConfig {
    /// The `transformer` workload of the book's benchmarks: d 128, 4 heads, 2 blocks, ff 512,
    /// windows of 64, no dropout, for a vocabulary of `vocab`.
    pub fn workload(vocab: usize) -> Self {
        GptConfig {
            vocab,
            max_len: 64,
            d: 128,
            heads: 4,
            ff: 512,
            blocks: 2,
            dropout: 0.0,
        }
    }
}
// ANCHOR_END: config

// ANCHOR: struct
/// The decoder-only character model.
#[derive(Clone, Debug)]
pub struct Gpt<F: Float> {
    /// Token embedding, `[vocab, d]`.
    pub tokens: Embedding<F>,
    /// Learned positions, `[max_len, d]`.
    pub positions: Positions<F>,
    /// The pre-LN causal blocks, each with its own parameters.
    pub blocks: Vec<Block<F>>,
    /// The final layer norm.
    pub ln_f: LayerNorm<F>,
    /// The output layer `d -> vocab`, untied from the embedding.
    pub out: Linear<F>,
    dropout: Dropout,
    config: GptConfig,
}
// ANCHOR_END: struct

/// What [`Gpt::backward`] needs.
#[derive(Clone, Debug)]
pub struct GptCache<F: Float> {
    ids: Array2<usize>,
    drop: Option<DropoutCache<F, Ix3>>,
    blocks: Vec<BlockCache<F>>,
    ln_f: LayerNormCache<F>,
    out: LinearCache<F>,
}

/// Which path [`Gpt::generate`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// One position per step through [`Block::step`] and a [`KvCache`] per block.
    Cached,
    /// The full causal pass over the whole context at every step.
    Uncached,
}

/// What [`Gpt::generate`] returns.
#[derive(Clone, Debug)]
pub struct Generated<F> {
    /// The drawn characters (the prompt not included).
    pub ids: Vec<usize>,
    /// The distribution each character was drawn from, `softmax(logits / temperature)`.
    pub probs: Vec<Vec<F>>,
}

impl<F: Float> Gpt<F> {
    /// A fresh model: embeddings as [`Embedding::new`], blocks as [`Block::new`] (pre-LN, GELU),
    /// the output layer Glorot-uniform with zero biases. Errors on a dropout rate outside
    /// `[0, 1)` or a width the heads do not divide.
    pub fn new(config: GptConfig, rng: &mut impl Rng) -> anyhow::Result<Self> {
        let c = config;
        anyhow::ensure!(
            c.heads > 0 && c.d.is_multiple_of(c.heads),
            "a width of {} does not split into {} heads",
            c.d,
            c.heads
        );
        let dropout = Dropout::new(c.dropout)?;
        Ok(Gpt {
            tokens: Embedding::new(c.vocab, c.d, rng),
            positions: Positions::learned(c.max_len, c.d, rng),
            blocks: (0..c.blocks)
                .map(|_| {
                    Block::new(
                        c.d,
                        c.heads,
                        c.ff,
                        Activation::Gelu,
                        Norm::Pre,
                        dropout,
                        rng,
                    )
                })
                .collect(),
            ln_f: LayerNorm::new(c.d),
            out: Linear::from_weights(
                crate::init::glorot_uniform(c.d, c.vocab, rng),
                ndarray::Array1::zeros(c.vocab),
            ),
            dropout,
            config: c,
        })
    }

    /// The sizes.
    pub fn config(&self) -> GptConfig {
        self.config
    }

    /// The longest window the positions cover.
    pub fn max_len(&self) -> usize {
        self.config.max_len
    }

    // ANCHOR: forward
    fn run<R: Rng>(
        &self,
        ids: &ArrayRef2<usize>,
        mut rng: Option<&mut R>,
    ) -> (Array2<F>, GptCache<F>) {
        let (batch, time) = ids.dim();
        assert!(
            time <= self.max_len(),
            "Gpt: windows of {time} characters but positions for {}",
            self.max_len()
        );
        let mut x = self.tokens.infer(ids);
        self.positions.add(&mut x, 0);
        let (mut h, drop) = maybe_drop(&self.dropout, x, &mut rng);
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (y, c) = match &mut rng {
                Some(r) => block.forward_train(&h, Mask::Causal, &mut **r),
                None => block.forward(&h, Mask::Causal),
            };
            blocks.push(c);
            h = y;
        }
        let (n, ln_f) = self.ln_f.forward(&rows(&h));
        let (logits, out) = self.out.forward_owned(n);
        let cache = GptCache {
            ids: ids.to_owned(),
            drop,
            blocks,
            ln_f,
            out,
        };
        debug_assert_eq!(logits.nrows(), batch * time);
        (logits, cache)
    }
    // ANCHOR_END: forward

    /// Training mode (dropout masks drawn from `rng`): the logits `[batch * time, vocab]` for
    /// ids `[batch, time]` (`time <= max_len`), and the cache.
    pub fn forward_train(
        &self,
        ids: &ArrayRef2<usize>,
        rng: &mut impl Rng,
    ) -> (Array2<F>, GptCache<F>) {
        self.run(ids, Some(rng))
    }

    /// Evaluation mode (no dropout) with a cache: what a gradient check differentiates.
    pub fn forward(&self, ids: &ArrayRef2<usize>) -> (Array2<F>, GptCache<F>) {
        self.run::<rand_chacha::ChaCha8Rng>(ids, None)
    }

    /// Evaluation mode: the logits `[batch * time, vocab]`.
    pub fn infer(&self, ids: &ArrayRef2<usize>) -> Array2<F> {
        self.forward(ids).0
    }

    // ANCHOR: backward
    /// Adds every parameter's gradient for `dlogits` (`[batch * time, vocab]`), in the reverse
    /// order of the forward pass: output layer, final norm, the blocks from the last, dropout,
    /// then the positions and the token embedding, which both received `x`.
    pub fn backward(&mut self, cache: &GptCache<F>, dlogits: &ArrayRef2<F>) {
        let (batch, time) = cache.ids.dim();
        let dn = self.out.backward(&cache.out, dlogits);
        let mut dh: Array3<F> = seqs(self.ln_f.backward(&cache.ln_f, &dn), batch, time);
        for (block, c) in self.blocks.iter_mut().zip(&cache.blocks).rev() {
            dh = block.backward(c, &dh);
        }
        let dx = undrop(&self.dropout, &cache.drop, dh);
        self.positions.backward(&dx, 0);
        self.tokens.backward(&cache.ids, &dx);
    }
    // ANCHOR_END: backward

    /// Training mode: the mean cross-entropy (nats per character) of `targets` (`[batch, time]`,
    /// the next character of each input), after a backward pass that adds every gradient.
    pub fn loss_backward(
        &mut self,
        ids: &ArrayRef2<usize>,
        targets: &ArrayRef2<usize>,
        rng: &mut impl Rng,
    ) -> F {
        let (logits, cache) = self.forward_train(ids, rng);
        let targets: Vec<usize> = targets.iter().copied().collect();
        let (loss, dlogits) = softmax_cross_entropy(&logits, &targets);
        self.backward(&cache, &dlogits);
        loss
    }

    /// One empty [`KvCache`] per block for `batch` sequences.
    pub fn caches(&self, batch: usize) -> Vec<KvCache<F>> {
        (0..self.blocks.len())
            .map(|_| KvCache::new(batch, self.max_len(), self.config.d))
            .collect()
    }

    // ANCHOR: step
    /// Incremental decoding: `ids` holds the newest character of each of `batch` sequences, at
    /// position `caches[0].len()`; appends its keys and values to every block's cache and
    /// returns the next character's logits `[batch, vocab]`, equal to the last position's row
    /// of [`infer`](Self::infer) over every character so far.
    pub fn step(&self, ids: &[usize], caches: &mut [KvCache<F>]) -> Array2<F> {
        assert_eq!(
            caches.len(),
            self.blocks.len(),
            "Gpt::step: {} caches for {} blocks",
            caches.len(),
            self.blocks.len()
        );
        let offset = caches.first().map_or(0, KvCache::len);
        let ids = Array2::from_shape_vec((ids.len(), 1), ids.to_vec()).expect("[batch, 1] ids");
        let mut h = self.tokens.infer(&ids);
        self.positions.add(&mut h, offset);
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            h = block.step(&h, cache);
        }
        self.out.infer(&self.ln_f.infer(&rows(&h)))
    }
    // ANCHOR_END: step

    // ANCHOR: generate
    /// Continues `prompt` by `len` characters, each drawn from `softmax(logits / temperature)`
    /// with `rng`. The context of a step is the characters since the last restart: once it
    /// holds `max_len` characters, it restarts from its last `max_len / 2` (the learned
    /// positions cover no more), so a cached step refills the caches with those characters and
    /// goes on one position at a time. Both paths follow this rule, so they draw from the same
    /// distributions (up to rounding) at every step.
    pub fn generate(
        &self,
        prompt: &[usize],
        len: usize,
        temperature: f64,
        mode: Decode,
        rng: &mut impl Rng,
    ) -> Generated<F> {
        assert!(!prompt.is_empty(), "Gpt::generate: the prompt is empty");
        let max = self.max_len();
        let keep = (max / 2).max(1);
        let start = prompt.len().saturating_sub(max);
        let mut context: Vec<usize> = prompt[start..].to_vec();
        let mut caches = self.caches(1);
        let mut logits = match mode {
            Decode::Cached => self.prefill(&context, &mut caches),
            Decode::Uncached => self.last_logits(&context),
        };
        let mut out = Generated {
            ids: Vec::with_capacity(len),
            probs: Vec::with_capacity(len),
        };
        for _ in 0..len {
            let p = softmax(&logits.mapv(|z| z / F::of(temperature)));
            let next = WeightedIndex::new(p.row(0).iter().map(|v| v.as_f64()))
                .expect("softmax gives positive weights")
                .sample(rng);
            out.ids.push(next);
            out.probs.push(p.row(0).to_vec());
            let full = context.len() == max;
            if full {
                context.drain(..max - keep);
            }
            context.push(next);
            logits = match (mode, full) {
                (Decode::Cached, false) => self.step(&[next], &mut caches),
                (Decode::Cached, true) => self.prefill(&context, &mut caches),
                (Decode::Uncached, _) => self.last_logits(&context),
            };
        }
        out
    }
    // ANCHOR_END: generate

    /// Clears `caches` and steps through `context`, returning the last step's logits.
    fn prefill(&self, context: &[usize], caches: &mut [KvCache<F>]) -> Array2<F> {
        caches.iter_mut().for_each(KvCache::clear);
        let mut logits = Array2::zeros((1, self.config.vocab));
        for &id in context {
            logits = self.step(&[id], caches);
        }
        logits
    }

    /// The logits `[1, vocab]` after the last character of `context`, by the full pass.
    fn last_logits(&self, context: &[usize]) -> Array2<F> {
        let ids = Array2::from_shape_vec((1, context.len()), context.to_vec()).expect("[1, t]");
        let z = self.infer(&ids);
        let last = z.nrows() - 1;
        z.slice(ndarray::s![last..=last, ..]).to_owned()
    }
}

crate::impl_params!(Gpt<F> { tokens, positions, blocks, ln_f, out });
