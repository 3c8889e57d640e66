//! A Transformer encoder over image patches (the "vision Transformer" of Dosovitskiy et al.,
//! 2021, made small): an image is cut into `p x p` patches, each patch is a token.
//!
//! For images `[batch, side * side]` (row-major pixels) and `n = (side / p)^2` patches:
//!
//! * [`patchify`]: `[batch, side * side] -> [batch * n, p * p]`, patch `k` of an image is the
//!   square at patch row `k / (side / p)`, patch column `k % (side / p)` (reading order), its
//!   pixels row-major. Pixel `(r, c)` lands in patch `(r / p) * (side / p) + c / p` at entry
//!   `(r % p) * p + c % p`. [`unpatchify`] is its inverse (and its transpose: the backward pass
//!   of a permutation of the pixels is the inverse permutation).
//! * [`ImageEncoder`]: `tokens = patches W_e + b_e` (`[batch, n, d]`), plus learned positions,
//!   then `layers` pre-LN encoder [`Block`]s (no mask), a final [`LayerNorm`], a pooling head
//!   that turns the `n` tokens into one vector `[batch, d]`, and a linear classifier
//!   `[batch, classes]`.
//! * The pooling head ([`Pool`]): the mean of the tokens, `h = (1/n) sum_t x_t` (backward: each
//!   token gets `dh / n`), or attention pooling: one learned query `q` (`[1, d]`) attends over
//!   the tokens with multi-head attention, `h = MHA(q, X, X)`; its weights (`[batch, heads, 1,
//!   n]`, each row summing to one) say which patches the classifier reads.
//!
//! Parameter names: `embed.{w,b}`, `positions.learned.table` (when there are positions),
//! `blocks.{i}.…` (see [`Block`]), `ln.{gamma,beta}`, `pool.query` and
//! `pool.attention.{wq,wk,wv,wo}.{w,b}` (attention pooling only), `head.{w,b}`.

use super::layer_norm::{LayerNorm, LayerNormCache};
use super::{Block, BlockCache, Norm, Positions, flat, rows, seqs};
use crate::activation::Activation;
use crate::dropout::Dropout;
use crate::float::Float;
use crate::linear::{Linear, LinearCache};
use crate::param::Param2;
use crate::self_attention::{Mask, MhaCache, MultiHeadAttention};
use ndarray::{Array2, Array3, ArrayRef2, ArrayRef3, Axis};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

fn check_patch(side: usize, p: usize) {
    assert!(
        p > 0 && side.is_multiple_of(p),
        "patchify: patch size {p} does not divide the image side {side}"
    );
}

// ANCHOR: patchify
/// Cuts every image of `images` (`[batch, side * side]`, row-major pixels) into its `p x p`
/// patches in reading order: `[batch * (side / p)^2, p * p]`. Pixel `(r, c)` of image `b` goes
/// to row `b * n + (r / p) * (side / p) + c / p`, column `(r % p) * p + c % p`.
pub fn patchify<F: Float>(images: &ArrayRef2<F>, side: usize, p: usize) -> Array2<F> {
    check_patch(side, p);
    assert_eq!(
        images.ncols(),
        side * side,
        "patchify: images are {:?} but the side is {side}",
        images.shape()
    );
    let (g, batch) = (side / p, images.nrows());
    let n = g * g;
    let mut out = Array2::zeros((batch * n, p * p));
    for (b, img) in images.rows().into_iter().enumerate() {
        for r in 0..side {
            for c in 0..side {
                out[[b * n + (r / p) * g + c / p, (r % p) * p + c % p]] = img[r * side + c];
            }
        }
    }
    out
}

/// The inverse of [`patchify`]: patches `[batch * (side / p)^2, p * p]` back to images
/// `[batch, side * side]`. Also the backward pass of [`patchify`] (a permutation's transpose
/// is its inverse), which is how the encoder returns the gradient of its input pixels.
pub fn unpatchify<F: Float>(patches: &ArrayRef2<F>, side: usize, p: usize) -> Array2<F> {
    check_patch(side, p);
    let (g, n) = (side / p, (side / p) * (side / p));
    assert!(
        patches.ncols() == p * p && patches.nrows().is_multiple_of(n),
        "unpatchify: patches are {:?}, expected [batch * {n}, {}]",
        patches.shape(),
        p * p
    );
    let batch = patches.nrows() / n;
    let mut out = Array2::zeros((batch, side * side));
    for b in 0..batch {
        for r in 0..side {
            for c in 0..side {
                out[[b, r * side + c]] =
                    patches[[b * n + (r / p) * g + c / p, (r % p) * p + c % p]];
            }
        }
    }
    out
}
// ANCHOR_END: patchify

/// How the encoder turns its tokens into one vector for the classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Pool {
    /// The mean of the tokens.
    Mean,
    /// A learned query attending over the tokens.
    Attention,
}

impl Pool {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Pool::Mean => "mean pooling",
            Pool::Attention => "attention pooling",
        }
    }
}

/// The sizes of an [`ImageEncoder`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct VisionConfig {
    /// Images are `side x side`.
    pub side: usize,
    /// Patches are `patch x patch`; `patch` divides `side`.
    pub patch: usize,
    /// Model width.
    pub d: usize,
    /// Attention heads (of the blocks and of the attention pool).
    pub heads: usize,
    /// Inner width of the feed-forward sublayers.
    pub ff: usize,
    /// Encoder blocks.
    pub layers: usize,
    /// Number of classes.
    pub classes: usize,
    /// The pooling head.
    pub pool: Pool,
    /// Whether learned positions are added to the patch embeddings.
    pub positions: bool,
    /// Dropout on each sublayer's output in training.
    pub dropout: f64,
}

impl VisionConfig {
    /// Patches per image, `(side / patch)^2`.
    pub fn tokens(&self) -> usize {
        (self.side / self.patch).pow(2)
    }
}

// ANCHOR: attention_pool
/// Attention pooling: one learned query `[1, d]` attends over the tokens.
#[derive(Clone, Debug)]
pub struct AttentionPool<F: Float> {
    /// The query, `[1, d]`.
    pub query: Param2<F>,
    /// The attention of the query over the tokens.
    pub attention: MultiHeadAttention<F>,
}

impl<F: Float> AttentionPool<F> {
    /// A pool of width `d` with `heads` heads; the query is drawn from `N(0, 1)`.
    pub fn new(d: usize, heads: usize, rng: &mut impl Rng) -> Self {
        let query = Array2::from_shape_simple_fn((1, d), || {
            let z: f64 = StandardNormal.sample(rng);
            F::of(z)
        });
        AttentionPool {
            query: Param2::new(query),
            attention: MultiHeadAttention::new(d, heads, rng),
        }
    }

    /// Pools `x` (`[batch, n, d]`) into `[batch, d]`; the cache holds the weights.
    pub fn forward(&self, x: &ArrayRef3<F>) -> (Array2<F>, MhaCache<F>) {
        let (batch, _, d) = x.dim();
        let q = Array3::from_shape_fn((batch, 1, d), |(_, _, j)| self.query.value[[0, j]]);
        let (y, cache) = self.attention.forward(&q, x, Mask::None);
        (rows(&y), cache)
    }

    /// Adds the gradients of the query and the attention, returns `dx` (`[batch, n, d]`) for
    /// `dy` (`[batch, d]`). The query was copied to every image, so its gradient is the sum
    /// over the batch.
    pub fn backward(&mut self, cache: &MhaCache<F>, dy: &ArrayRef2<F>) -> Array3<F> {
        let dy = seqs(dy.to_owned(), dy.nrows(), 1);
        let (dq, dx) = self.attention.backward(cache, &dy);
        self.query.grad += &dq.sum_axis(Axis(0));
        dx
    }
}
// ANCHOR_END: attention_pool

crate::impl_params!(AttentionPool<F> { query, attention });

/// What [`ImageEncoder::backward`] needs.
#[derive(Clone, Debug)]
pub struct EncoderCache<F: Float> {
    embed: LinearCache<F>,
    blocks: Vec<BlockCache<F>>,
    ln: LayerNormCache<F>,
    /// The attention pool's cache (mean pooling needs none).
    pool: Option<MhaCache<F>>,
    head: LinearCache<F>,
    batch: usize,
}

impl<F: Float> EncoderCache<F> {
    /// The attention pool's weights over the patches, averaged over its heads: `[batch, n]`,
    /// each row summing to one (`None` for mean pooling).
    pub fn pool_weights(&self) -> Option<Array2<F>> {
        let w = self.pool.as_ref()?.weights(); // [batch, heads, 1, n]
        let heads = F::of(w.dim().1 as f64);
        let sum = w.sum_axis(Axis(1));
        Some(sum.index_axis(Axis(1), 0).mapv(|v| v / heads))
    }
}

// ANCHOR: encoder_struct
/// The image classifier: patch embedding, learned positions, pre-LN encoder blocks, a final
/// layer norm, a pooling head and a linear classifier.
#[derive(Clone, Debug)]
pub struct ImageEncoder<F: Float> {
    /// The patch embedding, `p * p -> d`.
    pub embed: Linear<F>,
    /// Learned positions of the `n` patches (`None`: no positions).
    pub positions: Option<Positions<F>>,
    /// The encoder blocks.
    pub blocks: Vec<Block<F>>,
    /// The final layer norm.
    pub ln: LayerNorm<F>,
    /// The attention pool (`None`: mean pooling).
    pub pool: Option<AttentionPool<F>>,
    /// The classifier, `d -> classes`.
    pub head: Linear<F>,
    config: VisionConfig,
}
// ANCHOR_END: encoder_struct

crate::impl_params!(ImageEncoder<F> { embed, positions, blocks, ln, pool, head });

impl<F: Float> ImageEncoder<F> {
    /// A fresh encoder of the given sizes. Fails (a message, not a panic) when the sizes do not
    /// fit together.
    pub fn new(config: VisionConfig, rng: &mut impl Rng) -> anyhow::Result<Self> {
        let c = config;
        anyhow::ensure!(
            c.patch > 0 && c.side.is_multiple_of(c.patch),
            "the patch size {} does not divide the image side {}",
            c.patch,
            c.side
        );
        anyhow::ensure!(
            c.heads > 0 && c.d.is_multiple_of(c.heads),
            "{} heads do not divide the width {}",
            c.heads,
            c.d
        );
        anyhow::ensure!(
            c.layers > 0 && c.ff > 0 && c.classes > 1,
            "the encoder needs a block, a feed-forward width and two classes"
        );
        let dropout = Dropout::new(c.dropout).map_err(|e| anyhow::anyhow!("{e}"))?;
        let embed = Linear::new(c.patch * c.patch, c.d, rng);
        let positions = c
            .positions
            .then(|| Positions::learned(c.tokens(), c.d, rng));
        let blocks = (0..c.layers)
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
            .collect();
        let pool = (c.pool == Pool::Attention).then(|| AttentionPool::new(c.d, c.heads, rng));
        Ok(ImageEncoder {
            embed,
            positions,
            blocks,
            ln: LayerNorm::new(c.d),
            pool,
            head: Linear::new(c.d, c.classes, rng),
            config,
        })
    }

    /// The sizes.
    pub fn config(&self) -> VisionConfig {
        self.config
    }

    // ANCHOR: encoder_forward
    fn run<R: Rng>(
        &self,
        images: &ArrayRef2<F>,
        mut rng: Option<&mut R>,
    ) -> (Array2<F>, EncoderCache<F>) {
        let c = self.config;
        let (batch, n) = (images.nrows(), c.tokens());
        let (e, embed) = self.embed.forward_owned(patchify(images, c.side, c.patch));
        let mut x = seqs(e, batch, n);
        if let Some(p) = &self.positions {
            p.add(&mut x, 0);
        }
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (y, cache) = match rng.as_deref_mut() {
                Some(r) => block.forward_train(&x, Mask::None, r),
                None => block.forward(&x, Mask::None),
            };
            blocks.push(cache);
            x = y;
        }
        let (z, ln) = self.ln.forward(&flat(x));
        let (h, pool) = match &self.pool {
            None => {
                let inv = F::one() / F::of(n as f64);
                let h = seqs(z, batch, n).sum_axis(Axis(1)).mapv(|v| v * inv);
                (h, None)
            }
            Some(p) => {
                let (h, cache) = p.forward(&seqs(z, batch, n));
                (h, Some(cache))
            }
        };
        let (logits, head) = self.head.forward_owned(h);
        let cache = EncoderCache {
            embed,
            blocks,
            ln,
            pool,
            head,
            batch,
        };
        (logits, cache)
    }
    // ANCHOR_END: encoder_forward

    /// Training mode: dropout masks drawn from `rng`. Logits `[batch, classes]` for images
    /// `[batch, side * side]`, and the cache.
    pub fn forward_train(
        &self,
        images: &ArrayRef2<F>,
        rng: &mut impl Rng,
    ) -> (Array2<F>, EncoderCache<F>) {
        self.run(images, Some(rng))
    }

    /// Evaluation mode (no dropout) with a cache: what a gradient check differentiates, and
    /// what the attention figure reads the pool's weights from.
    pub fn forward(&self, images: &ArrayRef2<F>) -> (Array2<F>, EncoderCache<F>) {
        self.run::<rand_chacha::ChaCha8Rng>(images, None)
    }

    /// Evaluation mode: the logits only.
    pub fn infer(&self, images: &ArrayRef2<F>) -> Array2<F> {
        self.forward(images).0
    }

    // ANCHOR: encoder_backward
    /// Adds every parameter gradient for `dlogits` (`[batch, classes]`) and returns the
    /// gradient of the input pixels, `[batch, side * side]`.
    pub fn backward(&mut self, cache: &EncoderCache<F>, dlogits: &ArrayRef2<F>) -> Array2<F> {
        let c = self.config;
        let (batch, n, d) = (cache.batch, c.tokens(), c.d);
        let dh = self.head.backward(&cache.head, dlogits);
        let dz = match (&mut self.pool, &cache.pool) {
            (None, None) => {
                // Every token received 1/n of the mean.
                let scale = F::one() / F::of(n as f64);
                let dh = dh.mapv(|v| v * scale);
                Array3::from_shape_fn((batch, n, d), |(b, _, j)| dh[[b, j]])
            }
            (Some(p), Some(pc)) => p.backward(pc, &dh),
            _ => panic!("ImageEncoder::backward: the cache is from another pooling head"),
        };
        let mut dx = seqs(self.ln.backward(&cache.ln, &flat(dz)), batch, n);
        for (block, bc) in self.blocks.iter_mut().zip(&cache.blocks).rev() {
            dx = block.backward(bc, &dx);
        }
        if let Some(p) = &mut self.positions {
            p.backward(&dx, 0);
        }
        let dpatches = self.embed.backward(&cache.embed, &flat(dx));
        unpatchify(&dpatches, c.side, c.patch)
    }
    // ANCHOR_END: encoder_backward
}
