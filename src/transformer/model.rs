//! The encoder-decoder of Vaswani et al. (2017): decoder blocks (causal self-attention,
//! cross-attention to the encoder's output, feed-forward), the full model with token embeddings
//! scaled by `sqrt(d)`, the paper's learning-rate schedule, label smoothing and greedy decoding
//! with cached keys and values.
//!
//! A decoder block, post-LN (the paper), for target states `x` and encoder output `m`:
//! `h1 = LN1(x + SelfAttn(x, causal))`, `h2 = LN2(h1 + CrossAttn(h1, m))`,
//! `y = LN3(h2 + FF(h2))`; pre-LN: `h1 = x + SelfAttn(LN1 x)`, `h2 = h1 + CrossAttn(LN2 h1, m)`,
//! `y = h2 + FF(LN3 h2)`. Its backward pass returns the gradient of both inputs; `m` feeds every
//! decoder block, so the encoder receives the sum of their `dm`.

use super::layer_norm::{LayerNorm, LayerNormCache};
use super::{
    Block, BlockCache, FeedForward, FeedForwardCache, KvCache, MemoryKv, Norm, Positions, Residual,
    ResidualCache, as_seqs, attention_step, flat, maybe_drop, rows, seqs, undrop,
};
use crate::activation::Activation;
use crate::dropout::{Dropout, DropoutCache};
use crate::embedding::Embedding;
use crate::float::Float;
use crate::linear::{Linear, LinearCache};
use crate::loss::log_softmax;
use crate::self_attention::{Mask, MhaCache, MultiHeadAttention};
use ndarray::{Array2, Array3, ArrayRef2, ArrayRef3, Ix3};
use rand::Rng;

// ANCHOR: decoder_block
/// A decoder block: causal self-attention, cross-attention to the encoder output, feed-forward,
/// each with a residual connection, layer norm and dropout on its output.
#[derive(Clone, Debug)]
pub struct DecoderBlock<F: Float> {
    /// Causal self-attention over the target positions.
    pub self_attention: MultiHeadAttention<F>,
    /// Queries from the target, keys and values from the encoder output.
    pub cross_attention: MultiHeadAttention<F>,
    /// The feed-forward sublayer.
    pub ff: FeedForward<F>,
    /// Layer norm of the self-attention sublayer.
    pub ln1: LayerNorm<F>,
    /// Layer norm of the cross-attention sublayer.
    pub ln2: LayerNorm<F>,
    /// Layer norm of the feed-forward sublayer.
    pub ln3: LayerNorm<F>,
    residual: Residual,
}
// ANCHOR_END: decoder_block

/// What [`DecoderBlock::backward`] needs.
#[derive(Clone, Debug)]
pub struct DecoderCache<F: Float> {
    sa: MhaCache<F>,
    ca: MhaCache<F>,
    ff: FeedForwardCache<F>,
    res: [ResidualCache<F>; 3],
}

impl<F: Float> DecoderCache<F> {
    /// The cross-attention cache; its weights `[batch, heads, target, source]` show which source
    /// positions each target position read.
    pub fn cross_attention(&self) -> &MhaCache<F> {
        &self.ca
    }
}

impl<F: Float> DecoderBlock<F> {
    /// A decoder block of width `d`, `heads` heads, feed-forward width `ff`.
    pub fn new(
        d: usize,
        heads: usize,
        ff: usize,
        act: Activation,
        norm: Norm,
        dropout: Dropout,
        rng: &mut impl Rng,
    ) -> Self {
        DecoderBlock {
            self_attention: MultiHeadAttention::new(d, heads, rng),
            cross_attention: MultiHeadAttention::new(d, heads, rng),
            ff: FeedForward::new(d, ff, act, rng),
            ln1: LayerNorm::new(d),
            ln2: LayerNorm::new(d),
            ln3: LayerNorm::new(d),
            residual: Residual { norm, dropout },
        }
    }

    // ANCHOR: decoder_forward
    fn run<R: Rng>(
        &self,
        x: &ArrayRef3<F>,
        memory: &ArrayRef3<F>,
        mut rng: Option<&mut R>,
    ) -> (Array3<F>, DecoderCache<F>) {
        let (batch, time, _) = x.dim();
        let r = self.residual;
        let (h1, sa, res1) = r.forward(&self.ln1, rows(x), &mut rng, |n| {
            let q = as_seqs(n, batch, time);
            let (a, c) = self.self_attention.forward_self(&q, Mask::Causal);
            (flat(a), c)
        });
        let (h2, ca, res2) = r.forward(&self.ln2, h1, &mut rng, |n| {
            let q = as_seqs(n, batch, time);
            let (a, c) = self.cross_attention.forward(&q, memory, Mask::None);
            (flat(a), c)
        });
        let (y, ff, res3) = r.forward(&self.ln3, h2, &mut rng, |n| self.ff.forward(n));
        let cache = DecoderCache {
            sa,
            ca,
            ff,
            res: [res1, res2, res3],
        };
        (seqs(y, batch, time), cache)
    }
    // ANCHOR_END: decoder_forward

    /// Training mode (dropout from `rng`): the output `[batch, tt, d]` and the cache.
    pub fn forward_train(
        &self,
        x: &ArrayRef3<F>,
        memory: &ArrayRef3<F>,
        rng: &mut impl Rng,
    ) -> (Array3<F>, DecoderCache<F>) {
        self.run(x, memory, Some(rng))
    }

    /// Evaluation mode with a cache.
    pub fn forward(&self, x: &ArrayRef3<F>, memory: &ArrayRef3<F>) -> (Array3<F>, DecoderCache<F>) {
        self.run::<rand_chacha::ChaCha8Rng>(x, memory, None)
    }

    /// Evaluation mode without a cache.
    pub fn infer(&self, x: &ArrayRef3<F>, memory: &ArrayRef3<F>) -> Array3<F> {
        self.forward(x, memory).0
    }

    // ANCHOR: decoder_backward
    /// Adds every parameter gradient; returns `(dx, dmemory)`.
    pub fn backward(
        &mut self,
        cache: &DecoderCache<F>,
        dy: &ArrayRef3<F>,
    ) -> (Array3<F>, Array3<F>) {
        let (batch, time, _) = dy.dim();
        let r = self.residual;
        let [res1, res2, res3] = &cache.res;
        let dh2 = r.backward(&mut self.ln3, res3, rows(dy), |g| {
            self.ff.backward(&cache.ff, g)
        });
        let mut dmemory = None;
        let dh1 = r.backward(&mut self.ln2, res2, dh2, |g| {
            let (dq, dm) = self
                .cross_attention
                .backward(&cache.ca, &as_seqs(g, batch, time));
            dmemory = Some(dm);
            flat(dq)
        });
        let dx = r.backward(&mut self.ln1, res1, dh1, |g| {
            let dx = self
                .self_attention
                .backward_self(&cache.sa, &as_seqs(g, batch, time));
            flat(dx)
        });
        let dmemory = dmemory.expect("every residual backward calls its sublayer's");
        (seqs(dx, batch, time), dmemory)
    }
    // ANCHOR_END: decoder_backward

    // ANCHOR: decoder_step
    /// Incremental decoding: the newest target position `x` (`[batch, 1, d]`), its self-attention
    /// keys and values appended to `cache`, the encoder output's keys and values projected once
    /// in `memory`; equals the last row of `infer(all so far, encoder output)`.
    pub fn step(
        &self,
        x: &ArrayRef3<F>,
        memory: &mut MemoryKv<F>,
        cache: &mut KvCache<F>,
    ) -> Array3<F> {
        let batch = x.dim().0;
        let r = self.residual;
        let h1 = r.infer(&self.ln1, rows(x), |n| {
            attention_step(&self.self_attention, n, cache)
        });
        let h2 = r.infer(&self.ln2, h1, |n| memory.attend(&self.cross_attention, n));
        let y = r.infer(&self.ln3, h2, |n| self.ff.infer(n));
        seqs(y, batch, 1)
    }
    // ANCHOR_END: decoder_step

    /// The encoder output's keys and values for this block's cross-attention, for
    /// [`step`](Self::step).
    pub fn memory(&self, memory: &ArrayRef3<F>) -> MemoryKv<F> {
        MemoryKv::new(&self.cross_attention, memory)
    }
}

crate::impl_params!(DecoderBlock<F> { self_attention, cross_attention, ff, ln1, ln2, ln3 });

/// The sizes of an encoder-decoder.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Config {
    /// Source vocabulary size.
    pub src_vocab: usize,
    /// Target vocabulary size (including the start symbol).
    pub tgt_vocab: usize,
    /// Longest sequence (source or target) the positional encoding covers.
    pub max_len: usize,
    /// Model width.
    pub d: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Encoder blocks.
    pub enc_layers: usize,
    /// Decoder blocks.
    pub dec_layers: usize,
    /// Post-LN (the paper) or pre-LN.
    pub norm: Norm,
    /// Dropout rate on sublayer outputs and on the embedded inputs.
    pub dropout: f64,
}

/// The encoder's output and what its backward pass needs: the dropout mask of the embedded
/// source, each block's cache and the final norm's cache.
type EncoderPass<F> = (
    Array3<F>,
    Option<DropoutCache<F, Ix3>>,
    Vec<BlockCache<F>>,
    Option<LayerNormCache<F>>,
);

// ANCHOR: model_struct
/// The encoder-decoder: token embeddings scaled by `sqrt(d)` plus sinusoidal positions, a stack
/// of encoder [`Block`]s, a stack of [`DecoderBlock`]s, and a linear layer to target logits.
/// Pre-LN adds a final layer norm after each stack (its residual stream is never normalised
/// otherwise).
#[derive(Clone, Debug)]
pub struct Transformer<F: Float> {
    /// Source token vectors.
    pub src_embed: Embedding<F>,
    /// Target token vectors.
    pub tgt_embed: Embedding<F>,
    /// The encoder stack: every block its own weights.
    pub encoder: Vec<Block<F>>,
    /// The decoder stack.
    pub decoder: Vec<DecoderBlock<F>>,
    /// Final layer norm of the encoder (pre-LN only).
    pub enc_norm: Option<LayerNorm<F>>,
    /// Final layer norm of the decoder (pre-LN only).
    pub dec_norm: Option<LayerNorm<F>>,
    /// `d -> tgt_vocab`.
    pub out: Linear<F>,
    positions: Positions<F>,
    dropout: Dropout,
    config: Config,
}
// ANCHOR_END: model_struct

/// What [`Transformer::backward`] needs.
#[derive(Clone, Debug)]
pub struct TransformerCache<F: Float> {
    src: Array2<usize>,
    tgt: Array2<usize>,
    src_drop: Option<DropoutCache<F, Ix3>>,
    tgt_drop: Option<DropoutCache<F, Ix3>>,
    enc: Vec<BlockCache<F>>,
    enc_norm: Option<LayerNormCache<F>>,
    dec: Vec<DecoderCache<F>>,
    dec_norm: Option<LayerNormCache<F>>,
    out: LinearCache<F>,
}

impl<F: Float> TransformerCache<F> {
    /// The decoder blocks' caches, first block first.
    pub fn decoder(&self) -> &[DecoderCache<F>] {
        &self.dec
    }
}

impl<F: Float> Transformer<F> {
    /// A model with the given sizes; each block drawn separately from `rng`.
    pub fn new(config: Config, rng: &mut impl Rng) -> anyhow::Result<Self> {
        let c = config;
        anyhow::ensure!(
            c.heads > 0 && c.d.is_multiple_of(c.heads) && c.d.is_multiple_of(2),
            "the width {} must be even and a multiple of the {} heads",
            c.d,
            c.heads
        );
        let dropout = Dropout::new(c.dropout)?;
        let act = Activation::Relu;
        let pre = c.norm == Norm::Pre;
        Ok(Transformer {
            src_embed: Embedding::new(c.src_vocab, c.d, rng),
            tgt_embed: Embedding::new(c.tgt_vocab, c.d, rng),
            encoder: (0..c.enc_layers)
                .map(|_| Block::new(c.d, c.heads, c.ff, act, c.norm, dropout, rng))
                .collect(),
            decoder: (0..c.dec_layers)
                .map(|_| DecoderBlock::new(c.d, c.heads, c.ff, act, c.norm, dropout, rng))
                .collect(),
            enc_norm: pre.then(|| LayerNorm::new(c.d)),
            dec_norm: pre.then(|| LayerNorm::new(c.d)),
            out: Linear::new(c.d, c.tgt_vocab, rng),
            positions: Positions::sinusoidal(c.max_len, c.d),
            dropout,
            config: c,
        })
    }

    /// The sizes.
    pub fn config(&self) -> Config {
        self.config
    }

    // ANCHOR: embed
    /// `sqrt(d) * E[ids] + PE[offset ..]`, `[batch, time, d]`.
    fn embed(&self, table: &Embedding<F>, ids: &ArrayRef2<usize>, offset: usize) -> Array3<F> {
        let mut x = table.infer(ids);
        x *= F::of((self.config.d as f64).sqrt());
        self.positions.add(&mut x, offset);
        x
    }
    // ANCHOR_END: embed

    fn encode_run<R: Rng>(
        &self,
        src: &ArrayRef2<usize>,
        rng: &mut Option<&mut R>,
    ) -> EncoderPass<F> {
        let (x, drop) = maybe_drop(&self.dropout, self.embed(&self.src_embed, src, 0), rng);
        let mut h = x;
        let mut caches = Vec::with_capacity(self.encoder.len());
        for block in &self.encoder {
            let (y, c) = match rng {
                Some(r) => block.forward_train(&h, Mask::None, &mut **r),
                None => block.forward(&h, Mask::None),
            };
            caches.push(c);
            h = y;
        }
        let (h, nc) = match &self.enc_norm {
            Some(ln) => {
                let (b, t, _) = h.dim();
                let (y, c) = ln.forward(&rows(&h));
                (seqs(y, b, t), Some(c))
            }
            None => (h, None),
        };
        (h, drop, caches, nc)
    }

    /// The encoder output `[batch, ts, d]` for source ids `[batch, ts]` (evaluation mode).
    pub fn encode(&self, src: &ArrayRef2<usize>) -> Array3<F> {
        self.encode_run::<rand_chacha::ChaCha8Rng>(src, &mut None).0
    }

    // ANCHOR: model_forward
    fn run<R: Rng>(
        &self,
        src: &ArrayRef2<usize>,
        tgt: &ArrayRef2<usize>,
        mut rng: Option<&mut R>,
    ) -> (Array2<F>, TransformerCache<F>) {
        assert_eq!(
            src.nrows(),
            tgt.nrows(),
            "Transformer: source and target batches differ"
        );
        let (memory, src_drop, enc, enc_norm) = self.encode_run(src, &mut rng);
        let (mut h, tgt_drop) =
            maybe_drop(&self.dropout, self.embed(&self.tgt_embed, tgt, 0), &mut rng);
        let mut dec = Vec::with_capacity(self.decoder.len());
        for block in &self.decoder {
            let (y, c) = match &mut rng {
                Some(r) => block.forward_train(&h, &memory, &mut **r),
                None => block.forward(&h, &memory),
            };
            dec.push(c);
            h = y;
        }
        let mut h2 = rows(&h);
        let dec_norm = self.dec_norm.as_ref().map(|ln| {
            let (y, c) = ln.forward(&h2);
            h2 = y;
            c
        });
        let (logits, out) = self.out.forward_owned(h2);
        let cache = TransformerCache {
            src: src.to_owned(),
            tgt: tgt.to_owned(),
            src_drop,
            tgt_drop,
            enc,
            enc_norm,
            dec,
            dec_norm,
            out,
        };
        (logits, cache)
    }
    // ANCHOR_END: model_forward

    /// Training mode: logits `[batch * tt, tgt_vocab]` for source ids `[batch, ts]` and decoder
    /// inputs `[batch, tt]` (the start symbol then the target shifted right), and the cache.
    pub fn forward_train(
        &self,
        src: &ArrayRef2<usize>,
        tgt: &ArrayRef2<usize>,
        rng: &mut impl Rng,
    ) -> (Array2<F>, TransformerCache<F>) {
        self.run(src, tgt, Some(rng))
    }

    /// Evaluation mode with a cache.
    pub fn forward(
        &self,
        src: &ArrayRef2<usize>,
        tgt: &ArrayRef2<usize>,
    ) -> (Array2<F>, TransformerCache<F>) {
        self.run::<rand_chacha::ChaCha8Rng>(src, tgt, None)
    }

    /// Evaluation mode: the logits.
    pub fn infer(&self, src: &ArrayRef2<usize>, tgt: &ArrayRef2<usize>) -> Array2<F> {
        self.forward(src, tgt).0
    }

    // ANCHOR: model_backward
    /// Adds every parameter gradient for `dlogits` (`[batch * tt, tgt_vocab]`).
    pub fn backward(&mut self, cache: &TransformerCache<F>, dlogits: &ArrayRef2<F>) {
        let (batch, tt) = cache.tgt.dim();
        let ts = cache.src.ncols();
        let mut dh = self.out.backward(&cache.out, dlogits);
        if let (Some(ln), Some(c)) = (&mut self.dec_norm, &cache.dec_norm) {
            dh = ln.backward(c, &dh);
        }
        let mut dh = seqs(dh, batch, tt);
        let mut dmem = Array3::zeros((batch, ts, self.config.d));
        for (block, c) in self.decoder.iter_mut().zip(&cache.dec).rev() {
            let (dx, dm) = block.backward(c, &dh);
            dmem += &dm;
            dh = dx;
        }
        let scale = F::of((self.config.d as f64).sqrt());
        let dtgt = undrop(&self.dropout, &cache.tgt_drop, dh) * scale;
        self.tgt_embed.backward(&cache.tgt, &dtgt);
        if let (Some(ln), Some(c)) = (&mut self.enc_norm, &cache.enc_norm) {
            dmem = seqs(ln.backward(c, &rows(&dmem)), batch, ts);
        }
        for (block, c) in self.encoder.iter_mut().zip(&cache.enc).rev() {
            dmem = block.backward(c, &dmem);
        }
        let dsrc = undrop(&self.dropout, &cache.src_drop, dmem) * scale;
        self.src_embed.backward(&cache.src, &dsrc);
    }
    // ANCHOR_END: model_backward

    // ANCHOR: greedy
    /// Greedy decoding of `len` tokens for source ids `[batch, ts]`, starting from `start`: the
    /// encoder runs once and each decoder block projects its output to cross-attention keys and
    /// values once; then each step feeds the newest token through every decoder block's
    /// [`DecoderBlock::step`] (self-attention keys and values cached) and takes the most likely
    /// next token. Returns `[batch, len]` (without the start symbol).
    pub fn greedy(&self, src: &ArrayRef2<usize>, start: usize, len: usize) -> Array2<usize> {
        let batch = src.nrows();
        let d = self.config.d;
        let memory = self.encode(src);
        let mut memories: Vec<MemoryKv<F>> =
            self.decoder.iter().map(|b| b.memory(&memory)).collect();
        let mut caches: Vec<KvCache<F>> = self
            .decoder
            .iter()
            .map(|_| KvCache::new(batch, len, d))
            .collect();
        let mut out = Array2::zeros((batch, len));
        let mut current = Array2::from_elem((batch, 1), start);
        for t in 0..len {
            let mut h = self.embed(&self.tgt_embed, &current, t);
            for ((block, mem), cache) in self.decoder.iter().zip(&mut memories).zip(&mut caches) {
                h = block.step(&h, mem, cache);
            }
            let mut h2 = rows(&h);
            if let Some(ln) = &self.dec_norm {
                h2 = ln.infer(&h2);
            }
            let logits = self.out.infer(&h2);
            for (b, row) in logits.rows().into_iter().enumerate() {
                let best =
                    crate::loss::argmax_rows(&row.to_owned().insert_axis(ndarray::Axis(0)))[0];
                out[[b, t]] = best;
                current[[b, 0]] = best;
            }
        }
        out
    }
    // ANCHOR_END: greedy

    /// Greedy decoding without the cache: the whole decoder rerun on the prefix at every step
    /// (what [`greedy`](Self::greedy) must agree with).
    pub fn greedy_uncached(
        &self,
        src: &ArrayRef2<usize>,
        start: usize,
        len: usize,
    ) -> Array2<usize> {
        let batch = src.nrows();
        let mut tgt = Array2::from_elem((batch, 1), start);
        for t in 0..len {
            let logits = self.infer(src, &tgt);
            let v = self.config.tgt_vocab;
            let last = logits
                .into_shape_with_order((batch, t + 1, v))
                .expect("[batch * tt, v] reshapes");
            let next: Vec<usize> = (0..batch)
                .map(|b| {
                    let row = last
                        .slice(ndarray::s![b, t, ..])
                        .to_owned()
                        .insert_axis(ndarray::Axis(0));
                    crate::loss::argmax_rows(&row)[0]
                })
                .collect();
            let col = Array2::from_shape_vec((batch, 1), next).expect("one per sequence");
            tgt = ndarray::concatenate(ndarray::Axis(1), &[tgt.view(), col.view()])
                .expect("same batch");
        }
        tgt.slice(ndarray::s![.., 1..]).to_owned()
    }
}

crate::impl_params!(Transformer<F> { src_embed, tgt_embed, encoder, decoder, enc_norm, dec_norm, out });

// ANCHOR: schedule
/// The paper's learning rate at step `step` (counted from 1):
/// `d^-0.5 * min(step^-0.5, step * warmup^-1.5)`, a linear warm-up over `warmup` steps, then
/// decay as the inverse square root of the step. `warmup = 0` means no warm-up: `d^-0.5 *
/// step^-0.5` from the first step.
pub fn noam_rate(d: usize, warmup: usize, step: usize) -> f64 {
    let s = step.max(1) as f64;
    let decay = s.powf(-0.5);
    let rise = if warmup == 0 {
        f64::INFINITY
    } else {
        s * (warmup as f64).powf(-1.5)
    };
    (d as f64).powf(-0.5) * decay.min(rise)
}
// ANCHOR_END: schedule

// ANCHOR: label_smoothing
/// Mean cross-entropy of logits `z` (`[rows, classes]`) against the smoothed targets
/// `q = (1 - eps) onehot(label) + eps / classes`, and its gradient `(softmax(z) - q) / rows`.
/// `eps = 0` is the plain cross-entropy.
pub fn label_smoothed_cross_entropy<F: Float>(
    z: &Array2<F>,
    labels: &[usize],
    eps: f64,
) -> (F, Array2<F>) {
    let (n, classes) = z.dim();
    assert_eq!(
        labels.len(),
        n,
        "label smoothing: {n} rows but {} labels",
        labels.len()
    );
    let log_p = log_softmax(z);
    let mut grad = crate::loss::exp(log_p.clone());
    let (off, on) = (eps / classes as f64, 1.0 - eps + eps / classes as f64);
    let mut loss = 0.0;
    for ((mut g, lp), &y) in grad.rows_mut().into_iter().zip(log_p.rows()).zip(labels) {
        assert!(
            y < classes,
            "label smoothing: label {y} but only {classes} classes"
        );
        for (j, (g, &l)) in g.iter_mut().zip(lp.iter()).enumerate() {
            let q = if j == y { on } else { off };
            loss -= q * l.as_f64();
            *g = (*g - F::of(q)) / F::of(n as f64);
        }
    }
    (F::of(loss / n as f64), grad)
}
// ANCHOR_END: label_smoothing
