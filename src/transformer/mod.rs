//! The Transformer of Vaswani et al. (2017), "Attention Is All You Need": layer normalisation,
//! the position-wise feed-forward block, positional encodings and the self-attention block, each
//! with its backward pass by hand. The attention itself is
//! [`crate::self_attention::MultiHeadAttention`].
//!
//! The pieces, for a later chapter that builds on them (all inputs `[batch, time, d]`):
//!
//! * [`layer_norm::LayerNorm`]: `forward(&x2) -> (y, cache)`, `backward(&mut self, &cache, &dy)
//!   -> dx` (adds `dgamma`, `dbeta`), `infer`, over the last axis of a `[rows, d]` array.
//! * [`FeedForward`]: `Linear` `d -> ff`, an [`Activation`] (ReLU as the paper, exact GELU for
//!   a GPT), `Linear` `ff -> d`, on `[rows, d]`.
//! * [`sinusoidal`]`(time, d)`: the paper's fixed encoding as a `[time, d]` array;
//!   [`Positions`]: sinusoidal or learned (an [`Embedding`] of positions), added to token
//!   vectors by [`Positions::add`] with its gradient in [`Positions::backward`].
//! * [`Residual`]: the wrapping of every sublayer (dropout on its output, the residual sum and a
//!   layer norm, post-LN or pre-LN), written once for every block; `forward` and `backward` take
//!   the sublayer's own passes as closures.
//! * [`Block`]: self-attention sublayer (with a [`Mask`]: `Mask::None` is the paper's encoder
//!   block, `Mask::Causal` a decoder-only / GPT block) then feed-forward sublayer, each with a
//!   residual connection and layer norm, [`Norm::Post`] (the paper: `LN(x + sublayer(x))`) or
//!   [`Norm::Pre`] (`x + sublayer(LN(x))`). Dropout is applied to each sublayer's output before
//!   the residual sum, as the paper does. `forward_train(x, mask, rng)` draws dropout masks and
//!   returns a cache, `infer(x, mask)` is the deterministic pass, `backward(&cache, &dy) -> dx`
//!   adds every parameter gradient. There is no mode flag.
//! * [`KvCache`] and [`Block::step`]: incremental decoding for a causal block. The cache keeps
//!   the projected keys and values of the positions seen so far (`[batch, max_len, d]`, head
//!   `h` in columns `h * d_k .. (h + 1) * d_k`); `step(x_new, &mut cache)` takes the newest
//!   position `[batch, 1, d]`, appends its key and value and returns its output `[batch, 1, d]`,
//!   equal to the last row of `infer(x_all, Mask::Causal)`. [`MemoryKv`] holds the encoder
//!   output's keys and values for a decoder block's cross-attention, projected once.
//!
//! Parameter names of a block: `attention.{wq,wk,wv,wo}.{w,b}`, `ln1.{gamma,beta}`,
//! `ff.{lin1,lin2}.{w,b}`, `ln2.{gamma,beta}`; a [`Positions`] with learned positions has
//! `learned.table`.

pub mod experiment;
pub mod gpt;
pub mod gpt_experiment;
pub mod layer_norm;
pub mod model;
pub mod vision;
pub mod vision_experiment;

use crate::activation::Activation;
use crate::dropout::{Dropout, DropoutCache};
use crate::embedding::Embedding;
use crate::float::Float;
use crate::linear::{Linear, LinearCache};
use crate::self_attention::{Mask, MhaCache, MultiHeadAttention, attention_into};
use layer_norm::{LayerNorm, LayerNormCache};
use ndarray::{
    Array, Array2, Array3, ArrayRef2, ArrayRef3, CowArray, Dimension, Ix2, Ix3, Order, s,
};
use rand::Rng;

/// `[batch, time, d]` as `[batch * time, d]` rows (a copy).
pub(crate) fn rows<F: Float>(x: &ArrayRef3<F>) -> Array2<F> {
    let (b, t, d) = x.dim();
    x.to_shape(((b * t, d), Order::RowMajor))
        .expect("[batch, time, d] reshapes to [batch * time, d]")
        .into_owned()
}

/// An owned `[batch, time, d]` as `[batch * time, d]` rows, without a copy.
pub(crate) fn flat<F: Float>(x: Array3<F>) -> Array2<F> {
    let (b, t, d) = x.dim();
    x.into_shape_with_order((b * t, d))
        .expect("[batch, time, d] reshapes to [batch * time, d]")
}

/// Rows `[batch * time, d]` as `[batch, time, d]`, without a copy.
pub(crate) fn seqs<F: Float>(x: Array2<F>, batch: usize, time: usize) -> Array3<F> {
    let d = x.ncols();
    x.into_shape_with_order((batch, time, d))
        .expect("[batch * time, d] reshapes to [batch, time, d]")
}

/// Borrowed rows as `[batch, time, d]` (a view when they are contiguous).
pub(crate) fn as_seqs<F: Float>(
    x: &ArrayRef2<F>,
    batch: usize,
    time: usize,
) -> CowArray<'_, F, Ix3> {
    x.to_shape(((batch, time, x.ncols()), Order::RowMajor))
        .expect("[batch * time, d] reshapes to [batch, time, d]")
}

// ANCHOR: sinusoidal
/// The paper's positional encoding, `[time, d]`: `PE[pos, 2i] = sin(pos / 10000^(2i / d))` and
/// `PE[pos, 2i + 1] = cos(pos / 10000^(2i / d))`.
pub fn sinusoidal<F: Float>(time: usize, d: usize) -> Array2<F> {
    Array2::from_shape_fn((time, d), |(pos, j)| {
        let i2 = (j - j % 2) as f64;
        let angle = pos as f64 / 10000f64.powf(i2 / d as f64);
        F::of(if j % 2 == 0 { angle.sin() } else { angle.cos() })
    })
}
// ANCHOR_END: sinusoidal

/// Positional encodings for up to `max_len` positions: the fixed sinusoids, or a learned table.
#[derive(Clone, Debug)]
pub struct Positions<F: Float> {
    /// The learned table `[max_len, d]`, when positions are learned; `None` for sinusoids.
    pub learned: Option<Embedding<F>>,
    fixed: Array2<F>,
}

impl<F: Float> Positions<F> {
    /// The sinusoidal encoding of [`sinusoidal`], nothing to learn.
    pub fn sinusoidal(max_len: usize, d: usize) -> Self {
        Positions {
            learned: None,
            fixed: sinusoidal(max_len, d),
        }
    }

    /// A learned table of `max_len` positions of width `d` (see [`Embedding::new`]).
    pub fn learned(max_len: usize, d: usize, rng: &mut impl Rng) -> Self {
        Positions {
            learned: Some(Embedding::new(max_len, d, rng)),
            fixed: Array2::zeros((0, d)),
        }
    }

    /// The number of positions the encoding covers.
    pub fn max_len(&self) -> usize {
        match &self.learned {
            Some(e) => e.vocab(),
            None => self.fixed.nrows(),
        }
    }

    fn table(&self) -> &Array2<F> {
        match &self.learned {
            Some(e) => &e.table.value,
            None => &self.fixed,
        }
    }

    // ANCHOR: positions_add
    /// Adds the encodings of positions `offset .. offset + time` to `x` (`[batch, time, d]`)
    /// in place (an `offset` for incremental decoding).
    pub fn add(&self, x: &mut Array3<F>, offset: usize) {
        let time = x.dim().1;
        assert!(
            offset + time <= self.max_len(),
            "Positions: positions {offset}..{} but the encoding covers {}",
            offset + time,
            self.max_len()
        );
        let rows = self.table().slice(s![offset..offset + time, ..]);
        for mut seq in x.outer_iter_mut() {
            seq += &rows;
        }
    }

    /// Adds the learned table's gradient for `dy = dL/d(x + PE)` (`[batch, time, d]`); the
    /// input's gradient is `dy` itself. Sinusoids have nothing to learn.
    pub fn backward(&mut self, dy: &ArrayRef3<F>, offset: usize) {
        if let Some(e) = &mut self.learned {
            let time = dy.dim().1;
            let mut g = e.table.grad.slice_mut(s![offset..offset + time, ..]);
            for seq in dy.outer_iter() {
                g += &seq;
            }
        }
    }
    // ANCHOR_END: positions_add
}

crate::impl_params!(Positions<F> { learned });

// ANCHOR: feed_forward
/// The position-wise feed-forward block `act(x W_1 + b_1) W_2 + b_2`, on `[rows, d]`.
#[derive(Clone, Debug)]
pub struct FeedForward<F: Float> {
    /// `d -> ff`.
    pub lin1: Linear<F>,
    /// `ff -> d`.
    pub lin2: Linear<F>,
    act: Activation,
}

/// What [`FeedForward::backward`] needs.
#[derive(Clone, Debug)]
pub struct FeedForwardCache<F: Float> {
    l1: LinearCache<F>,
    z: Array2<F>,
    l2: LinearCache<F>,
}

impl<F: Float> FeedForward<F> {
    /// Width `d`, inner width `ff`, He-initialised layers and zero biases.
    pub fn new(d: usize, ff: usize, act: Activation, rng: &mut impl Rng) -> Self {
        FeedForward {
            lin1: Linear::new(d, ff, rng),
            lin2: Linear::new(ff, d, rng),
            act,
        }
    }

    /// The activation between the two layers.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// The output `[rows, d]` and the cache.
    pub fn forward(&self, x: &ArrayRef2<F>) -> (Array2<F>, FeedForwardCache<F>) {
        let (z, l1) = self.lin1.forward(x);
        let (y, l2) = self.lin2.forward_owned(self.act.apply(&z));
        (y, FeedForwardCache { l1, z, l2 })
    }

    /// The forward pass without a cache.
    pub fn infer(&self, x: &ArrayRef2<F>) -> Array2<F> {
        self.lin2.infer(&self.act.apply(&self.lin1.infer(x)))
    }

    /// Adds the gradients of both layers and returns `dx`.
    pub fn backward(&mut self, cache: &FeedForwardCache<F>, dy: &ArrayRef2<F>) -> Array2<F> {
        let da = self.lin2.backward(&cache.l2, dy);
        let dz = self.act.backward(&cache.z, &da);
        self.lin1.backward(&cache.l1, &dz)
    }
}
// ANCHOR_END: feed_forward

crate::impl_params!(FeedForward<F> { lin1, lin2 });

/// Where a block normalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Norm {
    /// The paper: `y = LN(x + sublayer(x))` after each sublayer.
    Post,
    /// `y = x + sublayer(LN(x))`: the residual path is never normalised, so the gradient
    /// reaches early blocks undiminished; trains without warm-up more readily.
    Pre,
}

/// Dropout of `x` with a mask drawn from `rng` in training mode (`Some`), or `x` itself. At rate
/// 0 the mask would be all ones, nothing would be drawn, and `x * 1` is `x` to the bit, so the
/// mask is skipped (a pass over the array each way, which showed in the profiles).
pub(crate) fn maybe_drop<F: Float, D: Dimension, R: Rng>(
    dropout: &Dropout,
    x: Array<F, D>,
    rng: &mut Option<&mut R>,
) -> (Array<F, D>, Option<DropoutCache<F, D>>) {
    match rng {
        Some(r) if dropout.rate() > 0.0 => {
            let (y, c) = dropout.forward_train(&x, &mut **r);
            (y, Some(c))
        }
        _ => (x, None),
    }
}

/// The backward pass of [`maybe_drop`]: `dy` times the mask, if there was one.
pub(crate) fn undrop<F: Float, D: Dimension>(
    dropout: &Dropout,
    cache: &Option<DropoutCache<F, D>>,
    dy: Array<F, D>,
) -> Array<F, D> {
    match cache {
        Some(c) => dropout.backward(c, &dy),
        None => dy,
    }
}

/// What the backward pass of one residual sublayer needs besides the sublayer's own cache:
/// its layer norm's cache and its dropout mask (none in evaluation mode).
#[derive(Clone, Debug)]
pub struct ResidualCache<F: Float> {
    ln: LayerNormCache<F>,
    drop: Option<DropoutCache<F, Ix2>>,
}

// ANCHOR: residual
/// The wrapping every sublayer of every block gets, on `[rows, d]`: dropout on the sublayer's
/// output, the residual sum and a layer norm, after the sum (post-LN, the paper) or before the
/// sublayer (pre-LN). A block is a few of these around attention and feed-forward sublayers.
#[derive(Clone, Copy, Debug)]
pub struct Residual {
    /// Where the layer norm sits.
    pub norm: Norm,
    /// The dropout on the sublayer's output.
    pub dropout: Dropout,
}

impl Residual {
    /// Post-LN `y = LN(x + Dropout(f(x)))`, pre-LN `y = x + Dropout(f(LN(x)))`, with dropout
    /// masks drawn from `rng` (none when it is `None`). Returns `y`, `f`'s cache and the
    /// residual's own.
    pub fn forward<F: Float, C, R: Rng>(
        self,
        ln: &LayerNorm<F>,
        x: Array2<F>,
        rng: &mut Option<&mut R>,
        f: impl FnOnce(&ArrayRef2<F>) -> (Array2<F>, C),
    ) -> (Array2<F>, C, ResidualCache<F>) {
        match self.norm {
            Norm::Post => {
                let (fx, c) = f(&x);
                let (fx, drop) = maybe_drop(&self.dropout, fx, rng);
                let (y, ln) = ln.forward(&(x + fx));
                (y, c, ResidualCache { ln, drop })
            }
            Norm::Pre => {
                let (n, ln) = ln.forward(&x);
                let (fx, c) = f(&n);
                let (fx, drop) = maybe_drop(&self.dropout, fx, rng);
                (x + fx, c, ResidualCache { ln, drop })
            }
        }
    }

    /// The backward pass for `dy`: adds the layer norm's gradients, lets `f_back` add the
    /// sublayer's (it maps the gradient of `f`'s output to that of its input) and returns `dx`.
    /// The residual path passes `dy` straight through: post-LN through the norm only, pre-LN
    /// untouched.
    pub fn backward<F: Float>(
        self,
        ln: &mut LayerNorm<F>,
        cache: &ResidualCache<F>,
        dy: Array2<F>,
        f_back: impl FnOnce(&Array2<F>) -> Array2<F>,
    ) -> Array2<F> {
        match self.norm {
            Norm::Post => {
                let dsum = ln.backward(&cache.ln, &dy);
                let dx = f_back(&undrop(&self.dropout, &cache.drop, dsum.clone()));
                dsum + dx
            }
            Norm::Pre => {
                let dn = f_back(&undrop(&self.dropout, &cache.drop, dy.clone()));
                dy + ln.backward(&cache.ln, &dn)
            }
        }
    }

    /// Evaluation mode without caches, for incremental decoding.
    pub fn infer<F: Float>(
        self,
        ln: &LayerNorm<F>,
        x: Array2<F>,
        f: impl FnOnce(&ArrayRef2<F>) -> Array2<F>,
    ) -> Array2<F> {
        match self.norm {
            Norm::Post => {
                let fx = f(&x);
                ln.infer(&(x + fx))
            }
            Norm::Pre => {
                let fx = f(&ln.infer(&x));
                x + fx
            }
        }
    }
}
// ANCHOR_END: residual

// ANCHOR: block_struct
/// A self-attention block: a self-attention sublayer and a feed-forward sublayer, each wrapped
/// in a [`Residual`] (dropout, residual sum, layer norm).
#[derive(Clone, Debug)]
pub struct Block<F: Float> {
    /// The self-attention sublayer.
    pub attention: MultiHeadAttention<F>,
    /// The layer norm of the attention sublayer.
    pub ln1: LayerNorm<F>,
    /// The feed-forward sublayer.
    pub ff: FeedForward<F>,
    /// The layer norm of the feed-forward sublayer.
    pub ln2: LayerNorm<F>,
    residual: Residual,
}
// ANCHOR_END: block_struct

/// What [`Block::backward`] needs.
#[derive(Clone, Debug)]
pub struct BlockCache<F: Float> {
    attention: MhaCache<F>,
    ff: FeedForwardCache<F>,
    res: [ResidualCache<F>; 2],
}

impl<F: Float> BlockCache<F> {
    /// The self-attention sublayer's cache (its weights are `attention().weights()`).
    pub fn attention(&self) -> &MhaCache<F> {
        &self.attention
    }
}

/// Incremental decoding state of one causal self-attention block: the projected keys and
/// values of the positions seen so far.
#[derive(Clone, Debug)]
pub struct KvCache<F: Float> {
    k: Array3<F>,
    v: Array3<F>,
    len: usize,
    scratch: Array2<F>,
}

impl<F: Float> KvCache<F> {
    /// An empty cache for `batch` sequences of up to `max_len` positions of width `d`.
    pub fn new(batch: usize, max_len: usize, d: usize) -> Self {
        KvCache {
            k: Array3::zeros((batch, max_len, d)),
            v: Array3::zeros((batch, max_len, d)),
            len: 0,
            scratch: Array2::zeros((1, max_len)),
        }
    }

    /// The number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cached keys, `[batch, len, d]`.
    pub fn keys(&self) -> ndarray::ArrayView3<'_, F> {
        self.k.slice(s![.., ..self.len, ..])
    }

    /// The cached values, `[batch, len, d]`.
    pub fn values(&self) -> ndarray::ArrayView3<'_, F> {
        self.v.slice(s![.., ..self.len, ..])
    }

    /// Forgets every position (the buffers are kept).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// The encoder output's keys and values for one decoder block's cross-attention: they do not
/// change while a batch is decoded, so they are projected once, not at every step.
#[derive(Clone, Debug)]
pub struct MemoryKv<F: Float> {
    k: Array3<F>,
    v: Array3<F>,
    scratch: Array2<F>,
}

impl<F: Float> MemoryKv<F> {
    /// Projects `memory` (`[batch, ts, d]`) with the keys and values of `mha`.
    pub fn new(mha: &MultiHeadAttention<F>, memory: &ArrayRef3<F>) -> Self {
        let (batch, ts, _) = memory.dim();
        let m = rows(memory);
        MemoryKv {
            k: seqs(mha.wk.infer(&m), batch, ts),
            v: seqs(mha.wv.infer(&m), batch, ts),
            scratch: Array2::zeros((1, ts)),
        }
    }

    /// Cross-attention of one new position per sequence (`q_in`, `[batch, d]` rows) over the
    /// whole memory.
    pub fn attend(&mut self, mha: &MultiHeadAttention<F>, q_in: &ArrayRef2<F>) -> Array2<F> {
        heads_attend(mha, q_in, (self.k.view(), self.v.view()), &mut self.scratch)
    }
}

/// Multi-head attention of one query row per sequence (`q_in`, `[batch, d]`, projected here by
/// `wq`) over keys and values already projected (`[batch, len, d]`), merged and projected by
/// `wo`; `scratch` is `[1, len]`.
fn heads_attend<F: Float>(
    mha: &MultiHeadAttention<F>,
    q_in: &ArrayRef2<F>,
    (k, v): (ndarray::ArrayView3<'_, F>, ndarray::ArrayView3<'_, F>),
    scratch: &mut ArrayRef2<F>,
) -> Array2<F> {
    let q = mha.wq.infer(q_in);
    let (batch, _, d) = k.dim();
    let (h, dk) = (mha.heads(), mha.head_width());
    let mut merged = Array2::zeros((batch, d));
    for b in 0..batch {
        for head in 0..h {
            let cols = head * dk..(head + 1) * dk;
            attention_into(
                &q.slice(s![b..b + 1, cols.clone()]),
                &k.slice(s![b, .., cols.clone()]),
                &v.slice(s![b, .., cols.clone()]),
                Mask::None,
                scratch,
                &mut merged.slice_mut(s![b..b + 1, cols]),
            );
        }
    }
    mha.wo.infer(&merged)
}

// ANCHOR: attention_step
/// Causal self-attention for one new position `x` (`[batch, d]` rows): appends its key and
/// value to `cache` and returns the attention output `[batch, d]` over every cached position.
pub fn attention_step<F: Float>(
    mha: &MultiHeadAttention<F>,
    x: &ArrayRef2<F>,
    cache: &mut KvCache<F>,
) -> Array2<F> {
    let (batch, max_len, d) = cache.k.dim();
    assert!(
        x.dim() == (batch, d) && cache.len < max_len,
        "attention_step: input {:?} with {} of {max_len} positions cached for [{batch}, {d}]",
        x.shape(),
        cache.len
    );
    let t = cache.len;
    cache.k.slice_mut(s![.., t, ..]).assign(&mha.wk.infer(x));
    cache.v.slice_mut(s![.., t, ..]).assign(&mha.wv.infer(x));
    cache.len += 1;
    heads_attend(
        mha,
        x,
        (
            cache.k.slice(s![.., ..=t, ..]),
            cache.v.slice(s![.., ..=t, ..]),
        ),
        &mut cache.scratch.slice_mut(s![.., ..=t]),
    )
}
// ANCHOR_END: attention_step

impl<F: Float> Block<F> {
    /// A block of width `d` with `heads` heads, feed-forward width `ff` and activation `act`,
    /// normalisation `norm` and dropout rate `dropout` on each sublayer's output.
    pub fn new(
        d: usize,
        heads: usize,
        ff: usize,
        act: Activation,
        norm: Norm,
        dropout: Dropout,
        rng: &mut impl Rng,
    ) -> Self {
        Block {
            attention: MultiHeadAttention::new(d, heads, rng),
            ln1: LayerNorm::new(d),
            ff: FeedForward::new(d, ff, act, rng),
            ln2: LayerNorm::new(d),
            residual: Residual { norm, dropout },
        }
    }

    /// Where the block normalises.
    pub fn norm(&self) -> Norm {
        self.residual.norm
    }

    /// The dropout on each sublayer's output.
    pub fn dropout(&self) -> Dropout {
        self.residual.dropout
    }

    /// The model width `d`.
    pub fn width(&self) -> usize {
        self.attention.width()
    }

    // ANCHOR: block_forward
    fn run<R: Rng>(
        &self,
        x: &ArrayRef3<F>,
        mask: Mask,
        mut rng: Option<&mut R>,
    ) -> (Array3<F>, BlockCache<F>) {
        let (batch, time, _) = x.dim();
        let r = self.residual;
        let (h, attention, res1) = r.forward(&self.ln1, rows(x), &mut rng, |n| {
            let (a, c) = self.attention.forward_self(&as_seqs(n, batch, time), mask);
            (flat(a), c)
        });
        let (y, ff, res2) = r.forward(&self.ln2, h, &mut rng, |n| self.ff.forward(n));
        let cache = BlockCache {
            attention,
            ff,
            res: [res1, res2],
        };
        (seqs(y, batch, time), cache)
    }
    // ANCHOR_END: block_forward

    /// Training mode: dropout masks drawn from `rng`; the output `[batch, time, d]` and the
    /// cache for [`backward`](Self::backward).
    pub fn forward_train(
        &self,
        x: &ArrayRef3<F>,
        mask: Mask,
        rng: &mut impl Rng,
    ) -> (Array3<F>, BlockCache<F>) {
        self.run(x, mask, Some(rng))
    }

    /// Evaluation mode with a cache (no dropout): what a gradient check differentiates.
    pub fn forward(&self, x: &ArrayRef3<F>, mask: Mask) -> (Array3<F>, BlockCache<F>) {
        self.run::<rand_chacha::ChaCha8Rng>(x, mask, None)
    }

    /// Evaluation mode: no dropout, no cache.
    pub fn infer(&self, x: &ArrayRef3<F>, mask: Mask) -> Array3<F> {
        self.forward(x, mask).0
    }

    // ANCHOR: block_backward
    /// Adds every parameter gradient and returns `dx` for `dy` (`[batch, time, d]`).
    pub fn backward(&mut self, cache: &BlockCache<F>, dy: &ArrayRef3<F>) -> Array3<F> {
        let (batch, time, _) = dy.dim();
        let r = self.residual;
        let [res1, res2] = &cache.res;
        let dh = r.backward(&mut self.ln2, res2, rows(dy), |g| {
            self.ff.backward(&cache.ff, g)
        });
        let dx = r.backward(&mut self.ln1, res1, dh, |g| {
            let dx = self
                .attention
                .backward_self(&cache.attention, &as_seqs(g, batch, time));
            flat(dx)
        });
        seqs(dx, batch, time)
    }
    // ANCHOR_END: block_backward

    // ANCHOR: block_step
    /// Incremental decoding for a causal block: `x` is the newest position `[batch, 1, d]`;
    /// appends its key and value to `cache` and returns its output `[batch, 1, d]`, the last
    /// row of `infer(all positions so far, Mask::Causal)`.
    pub fn step(&self, x: &ArrayRef3<F>, cache: &mut KvCache<F>) -> Array3<F> {
        let (batch, one, _) = x.dim();
        assert_eq!(one, 1, "Block::step: x is {:?}, one position", x.shape());
        let r = self.residual;
        let h = r.infer(&self.ln1, rows(x), |n| {
            attention_step(&self.attention, n, cache)
        });
        let y = r.infer(&self.ln2, h, |n| self.ff.infer(n));
        seqs(y, batch, 1)
    }
    // ANCHOR_END: block_step
}

crate::impl_params!(Block<F> { attention, ln1, ff, ln2 });
