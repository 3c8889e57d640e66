//! Scaled dot-product attention and multi-head attention (Vaswani et al., 2017, section 3.2),
//! forward and backward by hand.
//!
//! One head, for queries `Q` (`[tq, d_k]`), keys `K` (`[tk, d_k]`) and values `V` (`[tk, d_v]`):
//!
//! `S = Q K^T / sqrt(d_k)` (`[tq, tk]`), `P = softmax(S)` over the last axis (each row of `P`
//! is a distribution over the keys), `O = P V` (`[tq, d_v]`).
//!
//! Backward, given `dO`:
//!
//! * `dV = P^T dO`, `dP = dO V^T`,
//! * the softmax over each row, in its compact form: `dS = P * (dP - rowsum(P * dP))`
//!   (`*` elementwise, the row sum broadcast along the row),
//! * `dQ = dS K / sqrt(d_k)`, `dK = dS^T Q / sqrt(d_k)`.
//!
//! Multi-head attention projects a query sequence `[batch, tq, d]` and a key-value sequence
//! `[batch, tk, d]` with `Q = x_q W_q + b_q`, `K = x_kv W_k + b_k`, `V = x_kv W_v + b_v`
//! (each `[batch * time, heads * d_k]`), runs one head on every column block of width `d_k`,
//! writes head `h`'s output into column block `h` of `[batch * tq, heads * d_k]` (the merge),
//! and projects with `W_o`. Self-attention is the case `x_q = x_kv`, and its input gradient is
//! the sum of the two. No head is copied: each `(batch, head)` pair is a strided view of the
//! projected arrays handed to [`crate::matmul::matmul_into`], which writes into
//! preallocated outputs.

pub mod experiment;
pub mod models;

use crate::float::Float;
use crate::init::glorot_uniform;
use crate::linear::{Linear, LinearCache};
use crate::matmul::{for_each_shared, matmul_into};
use ndarray::{
    Array1, Array2, Array3, Array4, ArrayRef2, ArrayRef3, ArrayViewMut2, ArrayViewMut3, Axis,
    Order, s,
};
use rand::Rng;

// ANCHOR: mask
/// Which keys a query may look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Mask {
    /// Every query sees every key.
    None,
    /// Query `i` sees keys `j <= i + (tk - tq)`: with `tq = tk`, position `i` sees itself and
    /// the positions before it, never a later one (the queries are the last `tq` positions of
    /// the key sequence).
    Causal,
}

impl Mask {
    /// Sets the scores a query may not see to minus infinity, so the softmax gives them
    /// exactly zero weight. `scores` is `[tq, tk]`.
    pub fn apply<F: Float>(self, scores: &mut ArrayRef2<F>) {
        if self == Mask::Causal {
            let (tq, tk) = scores.dim();
            assert!(
                tk >= tq,
                "Mask::Causal: {tq} queries but only {tk} keys; the queries must be the last \
                 positions of the key sequence"
            );
            let offset = tk - tq;
            for (i, mut row) in scores.rows_mut().into_iter().enumerate() {
                row.slice_mut(s![i + offset + 1..]).fill(F::neg_infinity());
            }
        }
    }
}
// ANCHOR_END: mask

// ANCHOR: softmax
/// The softmax of each row of `s` (`[rows, cols]`), in place, by subtracting the row maximum
/// first. Entries at minus infinity get weight zero; every row needs one finite entry.
pub fn softmax_rows<F: Float>(s: &mut ArrayRef2<F>) {
    for mut row in s.rows_mut() {
        let m = row.fold(F::neg_infinity(), |a, &b| a.max(b));
        row -= m;
        match row.as_slice_mut() {
            Some(r) => crate::vmath::exp_all(r),
            None => row.mapv_inplace(F::exp),
        }
        let inv = F::one() / row.sum();
        row *= inv;
    }
}

/// The softmax's backward pass over each row, in place: given the softmax output `p` and
/// `dp = dL/dp` (both `[rows, cols]`), overwrites `dp` with `dL/ds = p * (dp - rowsum(p * dp))`.
///
/// This is the Jacobian `diag(p) - p p^T` of each row applied to `dp` without forming it:
/// `ds_j = sum_i dp_i p_i (delta_ij - p_j) = p_j (dp_j - sum_i p_i dp_i)`.
pub fn softmax_rows_backward<F: Float>(p: &ArrayRef2<F>, dp: &mut ArrayRef2<F>) {
    assert_eq!(
        p.dim(),
        dp.dim(),
        "softmax_rows_backward: p is {:?} but dp is {:?}",
        p.shape(),
        dp.shape()
    );
    for (p, mut d) in p.rows().into_iter().zip(dp.rows_mut()) {
        let dot = p
            .iter()
            .zip(d.iter())
            .fold(F::zero(), |a, (&p, &d)| a + p * d);
        d.zip_mut_with(&p, |d, &p| *d = p * (*d - dot));
    }
}
// ANCHOR_END: softmax

fn scale_of<F: Float>(d_k: usize) -> F {
    F::of(1.0 / (d_k as f64).sqrt())
}

// ANCHOR: attention
/// One head of scaled dot-product attention, written into preallocated outputs: `p` (`[tq, tk]`)
/// receives the attention weights `softmax(Q K^T / sqrt(d_k))` and `out` (`[tq, d_v]`) receives
/// `P V`. The inputs may be strided views (a head's columns of a projected batch).
pub fn attention_into<F: Float>(
    q: &ArrayRef2<F>,
    k: &ArrayRef2<F>,
    v: &ArrayRef2<F>,
    mask: Mask,
    p: &mut ArrayRef2<F>,
    out: &mut ArrayRef2<F>,
) {
    matmul_into(scale_of(q.ncols()), q, &k.t(), F::zero(), p);
    mask.apply(p);
    softmax_rows(p);
    matmul_into(F::one(), p, v, F::zero(), out);
}
// ANCHOR_END: attention

/// One sequence's blocks of the three input gradients of [`MultiHeadAttention::backward`].
type Grads3<'a, F> = (
    (ArrayViewMut2<'a, F>, ArrayViewMut2<'a, F>),
    ArrayViewMut2<'a, F>,
);

/// One head of attention with freshly allocated outputs: `(P V, P)` for `q` (`[tq, d_k]`), `k`
/// (`[tk, d_k]`) and `v` (`[tk, d_v]`).
pub fn attention<F: Float>(
    q: &ArrayRef2<F>,
    k: &ArrayRef2<F>,
    v: &ArrayRef2<F>,
    mask: Mask,
) -> (Array2<F>, Array2<F>) {
    assert!(
        q.ncols() == k.ncols() && k.nrows() == v.nrows(),
        "attention: q is {:?}, k is {:?}, v is {:?}; q and k need the same width, k and v the \
         same number of rows",
        q.shape(),
        k.shape(),
        v.shape()
    );
    let mut p = Array2::zeros((q.nrows(), k.nrows()));
    let mut out = Array2::zeros((q.nrows(), v.ncols()));
    attention_into(q, k, v, mask, &mut p, &mut out);
    (out, p)
}

// ANCHOR: attention_backward
/// The backward pass of one head: given the forward's inputs, its weights `p` and `dout =
/// dL/dout`, writes `dL/dq`, `dL/dk` and `dL/dv` into `dq`, `dk`, `dv` (overwriting them), using
/// `scratch` (`[tq, tk]`) for `dP` and then `dS`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_into<F: Float>(
    (q, k, v): (&ArrayRef2<F>, &ArrayRef2<F>, &ArrayRef2<F>),
    p: &ArrayRef2<F>,
    dout: &ArrayRef2<F>,
    dq: &mut ArrayRef2<F>,
    dk: &mut ArrayRef2<F>,
    dv: &mut ArrayRef2<F>,
    scratch: &mut ArrayRef2<F>,
) {
    let scale = scale_of::<F>(q.ncols());
    matmul_into(F::one(), &p.t(), dout, F::zero(), dv); // dV = P^T dO
    matmul_into(F::one(), dout, &v.t(), F::zero(), scratch); // dP = dO V^T
    softmax_rows_backward(p, scratch); // dS, zero where the mask hid a key
    matmul_into(scale, scratch, k, F::zero(), dq); // dQ = dS K / sqrt(d_k)
    matmul_into(scale, &scratch.t(), q, F::zero(), dk); // dK = dS^T Q / sqrt(d_k)
}
// ANCHOR_END: attention_backward

/// [`attention_backward_into`] with freshly allocated outputs: `(dq, dk, dv)`.
pub fn attention_backward<F: Float>(
    (q, k, v): (&ArrayRef2<F>, &ArrayRef2<F>, &ArrayRef2<F>),
    p: &ArrayRef2<F>,
    dout: &ArrayRef2<F>,
) -> (Array2<F>, Array2<F>, Array2<F>) {
    let mut dq = Array2::zeros(q.raw_dim());
    let mut dk = Array2::zeros(k.raw_dim());
    let mut dv = Array2::zeros(v.raw_dim());
    let mut scratch = Array2::zeros(p.raw_dim());
    attention_backward_into((q, k, v), p, dout, &mut dq, &mut dk, &mut dv, &mut scratch);
    (dq, dk, dv)
}

// ANCHOR: mha_struct
/// Multi-head attention: `heads` heads of width `d_k = d / heads` over a model width `d`, with
/// the four projections `W_q`, `W_k`, `W_v`, `W_o` (`[d, d]` each) and their biases.
#[derive(Clone, Debug)]
pub struct MultiHeadAttention<F: Float> {
    /// Query projection, `[d, heads * d_k]`.
    pub wq: Linear<F>,
    /// Key projection.
    pub wk: Linear<F>,
    /// Value projection.
    pub wv: Linear<F>,
    /// Output projection, `[heads * d_k, d]`.
    pub wo: Linear<F>,
    heads: usize,
}

/// What [`MultiHeadAttention::backward`] needs from the forward pass. A later chapter may keep
/// one per block and step.
#[derive(Clone, Debug)]
pub struct MhaCache<F: Float> {
    lq: LinearCache<F>,
    lk: LinearCache<F>,
    lv: LinearCache<F>,
    lo: LinearCache<F>,
    /// The projected queries, keys and values, `[batch * time, heads * d_k]`.
    q: Array2<F>,
    k: Array2<F>,
    v: Array2<F>,
    /// The attention weights, `[batch, heads, tq, tk]`.
    p: Array4<F>,
}

impl<F: Float> MhaCache<F> {
    /// The attention weights, `[batch, heads, tq, tk]`: `p[b, h, i, j]` is how much query `i`
    /// of sequence `b` takes from key `j` in head `h`.
    pub fn weights(&self) -> &Array4<F> {
        &self.p
    }
}
// ANCHOR_END: mha_struct

/// A `[batch, time, d]` array as `[batch * time, d]`: a view when it is in standard layout, a
/// copy otherwise.
fn rows_of<F: Float>(x: &ArrayRef3<F>) -> ndarray::CowArray<'_, F, ndarray::Ix2> {
    let (b, t, d) = x.dim();
    x.to_shape(((b * t, d), Order::RowMajor))
        .expect("a [batch, time, d] array reshapes to [batch * time, d]")
}

impl<F: Float> MultiHeadAttention<F> {
    /// `heads` heads over width `d` (which `heads` must divide), with Glorot-uniform weights
    /// and zero biases.
    pub fn new(d: usize, heads: usize, rng: &mut impl Rng) -> Self {
        assert!(
            heads > 0 && d.is_multiple_of(heads),
            "MultiHeadAttention: {heads} heads do not divide the width {d}"
        );
        let mut layer = || Linear::from_weights(glorot_uniform(d, d, rng), Array1::zeros(d));
        let (wq, wk, wv, wo) = (layer(), layer(), layer(), layer());
        MultiHeadAttention {
            wq,
            wk,
            wv,
            wo,
            heads,
        }
    }

    /// The number of heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The model width `d`.
    pub fn width(&self) -> usize {
        self.wq.input()
    }

    /// The width of one head, `d_k = d / heads`.
    pub fn head_width(&self) -> usize {
        self.width() / self.heads
    }

    fn check(&self, what: &str, x: &ArrayRef3<F>) {
        assert_eq!(
            x.dim().2,
            self.width(),
            "MultiHeadAttention: {what} is {:?} but the layer expects [batch, time, {}]",
            x.shape(),
            self.width()
        );
    }

    // ANCHOR: mha_forward
    /// Attention of the queries `xq` (`[batch, tq, d]`) over the keys and values `xkv`
    /// (`[batch, tk, d]`): the output `[batch, tq, d]` and the cache.
    pub fn forward(
        &self,
        xq: &ArrayRef3<F>,
        xkv: &ArrayRef3<F>,
        mask: Mask,
    ) -> (Array3<F>, MhaCache<F>) {
        self.check("the query input", xq);
        self.check("the key-value input", xkv);
        let ((batch, tq, d), (b2, tk, _)) = (xq.dim(), xkv.dim());
        assert_eq!(
            batch, b2,
            "MultiHeadAttention: {batch} query sequences but {b2} key-value sequences"
        );
        let (q, lq) = self.wq.forward(&rows_of(xq));
        let xkv = rows_of(xkv);
        let (k, lk) = self.wk.forward(&xkv);
        let (v, lv) = self.wv.forward(&xkv);
        let (h, dk) = (self.heads, self.head_width());
        let mut p = Array4::zeros((batch, h, tq, tk));
        let mut merged = Array2::zeros((batch * tq, h * dk));
        // Each sequence's heads, into its own block of `p` and of `merged` rows.
        let one_sequence =
            |(b, (mut p, mut merged)): (usize, (ArrayViewMut3<F>, ArrayViewMut2<F>))| {
                let rk = b * tk..(b + 1) * tk;
                let rq = b * tq..(b + 1) * tq;
                for head in 0..h {
                    let cols = head * dk..(head + 1) * dk;
                    attention_into(
                        &q.slice(s![rq.clone(), cols.clone()]),
                        &k.slice(s![rk.clone(), cols.clone()]),
                        &v.slice(s![rk.clone(), cols.clone()]),
                        mask,
                        &mut p.slice_mut(s![head, .., ..]),
                        &mut merged.slice_mut(s![.., cols]),
                    );
                }
            };
        let blocks = p
            .outer_iter_mut()
            .zip(merged.axis_chunks_iter_mut(Axis(0), tq));
        // With more than one thread the sequences are shared out (each alone: the same bits).
        for_each_shared(blocks.enumerate(), batch * h * tq * tk, one_sequence);
        let (y, lo) = self.wo.forward_owned(merged);
        let y = y
            .into_shape_with_order((batch, tq, d))
            .expect("[batch * tq, d] reshapes to [batch, tq, d]");
        let cache = MhaCache {
            lq,
            lk,
            lv,
            lo,
            q,
            k,
            v,
            p,
        };
        (y, cache)
    }
    // ANCHOR_END: mha_forward

    /// The forward pass without a cache.
    pub fn infer(&self, xq: &ArrayRef3<F>, xkv: &ArrayRef3<F>, mask: Mask) -> Array3<F> {
        self.forward(xq, xkv, mask).0
    }

    // ANCHOR: mha_backward
    /// Adds the gradients of the four projections and returns `(dL/dxq, dL/dxkv)` for
    /// `dy = dL/dy` (`[batch, tq, d]`).
    pub fn backward(&mut self, cache: &MhaCache<F>, dy: &ArrayRef3<F>) -> (Array3<F>, Array3<F>) {
        let (batch, h, tq, tk) = cache.p.dim();
        let (d, dk) = (self.width(), self.head_width());
        assert_eq!(
            dy.dim(),
            (batch, tq, d),
            "MultiHeadAttention: dy is {:?} but the forward output was [{batch}, {tq}, {d}]",
            dy.shape()
        );
        let dmerged = self.wo.backward(&cache.lo, &rows_of(dy));
        let mut dq = Array2::zeros(cache.q.raw_dim());
        let mut dkey = Array2::zeros(cache.k.raw_dim());
        let mut dv = Array2::zeros(cache.v.raw_dim());
        // Each sequence's heads, into its own rows of dq, dkey and dv.
        let one_sequence = |(b, ((mut dq, mut dkey), mut dv)): (usize, Grads3<'_, F>)| {
            let mut scratch = Array2::zeros((tq, tk));
            let (rq, rk) = (b * tq..(b + 1) * tq, b * tk..(b + 1) * tk);
            for head in 0..h {
                let cols = head * dk..(head + 1) * dk;
                let (sq, sk) = (s![rq.clone(), cols.clone()], s![rk.clone(), cols.clone()]);
                let mine = s![.., cols.clone()];
                attention_backward_into(
                    (&cache.q.slice(sq), &cache.k.slice(sk), &cache.v.slice(sk)),
                    &cache.p.slice(s![b, head, .., ..]),
                    &dmerged.slice(sq),
                    &mut dq.slice_mut(mine),
                    &mut dkey.slice_mut(mine),
                    &mut dv.slice_mut(mine),
                    &mut scratch,
                );
            }
        };
        let blocks = dq
            .axis_chunks_iter_mut(Axis(0), tq)
            .zip(dkey.axis_chunks_iter_mut(Axis(0), tk))
            .zip(dv.axis_chunks_iter_mut(Axis(0), tk));
        for_each_shared(blocks.enumerate(), batch * h * tq * tk, one_sequence);
        let dxq = self.wq.backward(&cache.lq, &dq);
        let dxkv = self.wk.backward(&cache.lk, &dkey) + self.wv.backward(&cache.lv, &dv);
        let shape = |x: Array2<F>, t| {
            x.into_shape_with_order((batch, t, d))
                .expect("[batch * t, d] reshapes to [batch, t, d]")
        };
        (shape(dxq, tq), shape(dxkv, tk))
    }
    // ANCHOR_END: mha_backward

    // ANCHOR: self_attention
    /// Self-attention: queries, keys and values all from `x` (`[batch, time, d]`).
    pub fn forward_self(&self, x: &ArrayRef3<F>, mask: Mask) -> (Array3<F>, MhaCache<F>) {
        self.forward(x, x, mask)
    }

    /// The backward pass of [`forward_self`](Self::forward_self): `x` fed both inputs, so its
    /// gradient is the sum of the two.
    pub fn backward_self(&mut self, cache: &MhaCache<F>, dy: &ArrayRef3<F>) -> Array3<F> {
        let (dxq, dxkv) = self.backward(cache, dy);
        dxq + dxkv
    }
    // ANCHOR_END: self_attention
}

crate::impl_params!(MultiHeadAttention<F> { wq, wk, wv, wo });
