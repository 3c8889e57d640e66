//! Long short-term memory (Hochreiter and Schmidhuber, 1997, with the forget gate of Gers,
//! Schmidhuber and Cummins, 2000), backpropagation through time written by hand, and a plain
//! tanh RNN with the same interface as the baseline.
//!
//! Shapes, in the book's row convention: an input step `x_t` is `[batch, in]`, the state
//! `(h_t, c_t)` is two `[batch, hidden]` arrays, and the four gates are packed side by side in
//! one pre-activation `a_t = x_t W_x + b_x + h_{t-1} W_h + b_h` of shape `[batch, 4 hidden]`,
//! in the order input, forget, cell candidate, output (PyTorch's order):
//!
//! * `i = σ(a_i)`, `f = σ(a_f)`, `g = tanh(a_g)`, `o = σ(a_o)`,
//! * `c_t = f ⊙ c_{t-1} + i ⊙ g`, `h_t = o ⊙ tanh(c_t)`.
//!
//! A whole sequence is `[batch, time, features]` at the public API ([`Lstm::forward`]); inside,
//! the layers work on *time-major* arrays `[time * batch, features]` (rows `t * batch ..
//! (t + 1) * batch` hold step `t`), so that the input projection of every step is one matrix
//! product, the hidden state of each step is a contiguous block, and the weight gradients are
//! one product over all steps. [`time_major`] and [`batch_major`] convert.
//!
//! ```
//! use dlfs::lstm::{Lstm, State};
//! use ndarray::Array3;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let layer = Lstm::<f64>::new(3, 4, &mut rng);
//! let x = Array3::<f64>::ones((2, 5, 3)); // 2 sequences of 5 steps of 3 features
//! let (y, last, _cache) = layer.forward(&x, &State::zeros(2, 4));
//! assert_eq!(y.shape(), &[2, 5, 4]);
//! assert_eq!(last.h, y.slice(ndarray::s![.., 4, ..]));
//! ```

pub mod adding;
pub mod charlm;
pub mod experiment;
pub mod models;
pub mod rnn;

use crate::activation::sigmoid_all;
use crate::float::Float;
use crate::init::glorot_uniform;
use crate::matmul::{PARALLEL_WORK, matmul, matmul_into, threads};
use crate::param::{Param1, Param2, Params, grad_norm};
use crate::vmath::tanh_all;
use ndarray::{
    Array1, Array2, Array3, ArrayRef2, ArrayRef3, ArrayView2, ArrayViewMut2, ArrayViewMut3, Axis, s,
};
use rand::Rng;
use std::ops::Range;

/// `[batch, time, features]` to the time-major `[time * batch, features]` the layers use.
pub fn time_major<F: Float>(x: &ArrayRef3<F>) -> Array2<F> {
    let (b, t, f) = x.dim();
    let tm = x.view().permuted_axes([1, 0, 2]);
    let tm = tm.as_standard_layout().into_owned();
    tm.into_shape_with_order((t * b, f))
        .expect("a standard-layout array reshapes")
}

/// Time-major `[time * batch, features]` back to `[batch, time, features]`.
pub fn batch_major<F: Float>(x: &ArrayRef2<F>, batch: usize) -> Array3<F> {
    let (tb, f) = x.dim();
    assert!(
        batch > 0 && tb.is_multiple_of(batch),
        "batch_major: {tb} rows do not split into sequences of batch {batch}"
    );
    let v = x
        .view()
        .into_shape_with_order((tb / batch, batch, f))
        .expect("a standard-layout array reshapes");
    v.permuted_axes([1, 0, 2]).as_standard_layout().into_owned()
}

/// What backpropagation through a sequence returns besides the parameter gradients.
#[derive(Clone, Debug)]
pub struct SeqGrads<F, S> {
    /// `dL/dx`, time-major `[time * batch, in]`.
    pub dx: Array2<F>,
    /// `dL/d(initial state)`.
    pub d_state: S,
    /// `|dL/dh_t|` (Frobenius norm over the batch) for every step `t`: the gradient that
    /// reaches the hidden state at each step, which vanishes or explodes through time.
    pub dh_norms: Vec<f64>,
}

// ANCHOR: recurrent
/// A recurrent layer run over a time-major sequence: the interface the LSTM, the stacked LSTM
/// and the tanh RNN share, so one model and one training loop take any of them.
pub trait Recurrent<F: Float>: Params<F> {
    /// What is carried from one step (and one window) to the next.
    type State: Clone;
    /// What backward needs from the forward pass.
    type Cache;
    /// The width of the input.
    fn input(&self) -> usize;
    /// The width of the output (the hidden size of the last layer).
    fn output(&self) -> usize;
    /// The all-zero state for `batch` sequences.
    fn zero_state(&self, batch: usize) -> Self::State;
    /// Runs the sequence `x` (`[time * batch, in]`, time-major) from `state`: the outputs
    /// `[time * batch, out]`, the state after the last step, and the cache.
    fn forward_tm(
        &self,
        x: Array2<F>,
        batch: usize,
        state: &Self::State,
    ) -> (Array2<F>, Self::State, Self::Cache);
    /// Backpropagation through time: given `dy = dL/d outputs` (time-major) and, when the
    /// final state feeds something later, `dL/d(final state)`, adds the parameter gradients
    /// and returns the input and initial-state gradients.
    fn backward_tm(
        &mut self,
        cache: &Self::Cache,
        dy: &ArrayRef2<F>,
        d_last: Option<&Self::State>,
    ) -> SeqGrads<F, Self::State>;
}
// ANCHOR_END: recurrent

// ANCHOR: state
/// The LSTM's state after a step: the hidden state `h` and the cell `c`, each
/// `[batch, hidden]`.
#[derive(Clone, Debug, PartialEq)]
pub struct State<F: Float> {
    /// The hidden state (the layer's output).
    pub h: Array2<F>,
    /// The cell, the memory the gates protect.
    pub c: Array2<F>,
}
// ANCHOR_END: state

impl<F: Float> State<F> {
    /// The zero state of `batch` sequences of width `hidden`.
    pub fn zeros(batch: usize, hidden: usize) -> Self {
        State {
            h: Array2::zeros((batch, hidden)),
            c: Array2::zeros((batch, hidden)),
        }
    }
}

// ANCHOR: struct
/// One LSTM layer: the cell's weights, used at every time step.
///
/// `w_x` is `[in, 4 hidden]`, `w_h` is `[hidden, 4 hidden]`, and the two biases `b_x`, `b_h`
/// are `[4 hidden]` each (two biases, as in cuDNN and PyTorch: only their sum matters, but
/// keeping both makes checkpoints line up with those tools). Columns `0..H` belong to the
/// input gate, `H..2H` to the forget gate, `2H..3H` to the cell candidate, `3H..4H` to the
/// output gate.
#[derive(Clone, Debug)]
pub struct Lstm<F: Float> {
    /// Input-to-gates weights, `[in, 4 hidden]`.
    pub w_x: Param2<F>,
    /// Hidden-to-gates weights, `[hidden, 4 hidden]`.
    pub w_h: Param2<F>,
    /// Input bias, `[4 hidden]`.
    pub b_x: Param1<F>,
    /// Hidden bias, `[4 hidden]`.
    pub b_h: Param1<F>,
}
// ANCHOR_END: struct

crate::impl_params!(Lstm<F> { w_x, w_h, b_x, b_h });

/// What [`Lstm::backward_tm`] needs from the forward pass, all time-major.
#[derive(Clone, Debug)]
pub struct LstmCache<F: Float> {
    batch: usize,
    /// The inputs, `[T B, in]`.
    x: Array2<F>,
    /// The gates after their nonlinearities, `[T B, 4H]`: `i, f, g, o`.
    gates: Array2<F>,
    /// `h_0 .. h_T`, `[(T + 1) B, H]` (the initial state first).
    hs: Array2<F>,
    /// `c_0 .. c_T`, `[(T + 1) B, H]`.
    cs: Array2<F>,
    /// `tanh(c_1) .. tanh(c_T)`, `[T B, H]`.
    tanh_cs: Array2<F>,
}

// ANCHOR: pointwise_forward
/// The cell's elementwise part for one step, on `batch` rows at once: `a` holds the
/// pre-activations `[batch, 4H]` and is overwritten with the gates `i, f, g, o`; from the
/// previous cell `c_prev` it writes `c`, `tanh(c)` and `h` (each `[batch, H]`, flat).
fn pointwise_forward<F: Float>(
    hidden: usize,
    a: &mut [F],
    c_prev: &[F],
    c: &mut [F],
    tanh_c: &mut [F],
    h: &mut [F],
) {
    let rows = a
        .chunks_exact_mut(4 * hidden)
        .zip(c_prev.chunks_exact(hidden))
        .zip(c.chunks_exact_mut(hidden))
        .zip(tanh_c.chunks_exact_mut(hidden))
        .zip(h.chunks_exact_mut(hidden));
    for ((((a, c_prev), c), tanh_c), h) in rows {
        // The nonlinearities a whole gate at a time (vector loops in f32, see `vmath`).
        let (ifg, o) = a.split_at_mut(3 * hidden);
        let (i_f, g) = ifg.split_at_mut(2 * hidden);
        sigmoid_all(i_f);
        tanh_all(g);
        sigmoid_all(o);
        let (i, f) = i_f.split_at(hidden);
        for j in 0..hidden {
            c[j] = f[j] * c_prev[j] + i[j] * g[j];
        }
        tanh_c.copy_from_slice(c);
        tanh_all(tanh_c);
        for j in 0..hidden {
            h[j] = o[j] * tanh_c[j];
        }
    }
}
// ANCHOR_END: pointwise_forward

// ANCHOR: pointwise_backward
/// The elementwise part of one step backward. Given the step's gates, `c_{t-1}`, `tanh(c_t)`,
/// the total `dh = dL/dh_t` and `dc = dL/dc_t` from the step after (overwritten with
/// `dL/dc_{t-1}`), writes the pre-activation gradient `da` (`[batch, 4H]`).
fn pointwise_backward<F: Float>(
    hidden: usize,
    gates: &[F],
    c_prev: &[F],
    tanh_c: &[F],
    dh: &[F],
    dc: &mut [F],
    da: &mut [F],
) {
    let one = F::one();
    let rows = gates
        .chunks_exact(4 * hidden)
        .zip(c_prev.chunks_exact(hidden))
        .zip(tanh_c.chunks_exact(hidden))
        .zip(dh.chunks_exact(hidden))
        .zip(dc.chunks_exact_mut(hidden))
        .zip(da.chunks_exact_mut(4 * hidden));
    for (((((gates, c_prev), tanh_c), dh), dc), da) in rows {
        let (i, rest) = gates.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (g, o) = rest.split_at(hidden);
        let (da_i, rest) = da.split_at_mut(hidden);
        let (da_f, rest) = rest.split_at_mut(hidden);
        let (da_g, da_o) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            // h = o tanh(c): the output gate's share, and the cell's (added to the carried dc).
            let d_o = dh[j] * tanh_c[j];
            let d_c = dc[j] + dh[j] * o[j] * (one - tanh_c[j] * tanh_c[j]);
            // c = f c_prev + i g.
            da_i[j] = d_c * g[j] * i[j] * (one - i[j]);
            da_f[j] = d_c * c_prev[j] * f[j] * (one - f[j]);
            da_g[j] = d_c * i[j] * (one - g[j] * g[j]);
            da_o[j] = d_o * o[j] * (one - o[j]);
            dc[j] = d_c * f[j];
        }
    }
}
// ANCHOR_END: pointwise_backward

/// Calls `f` once on the whole batch (`0..batch` and the views as they are), or, with `split`,
/// twice at once on two threads: on the first half of the sequences and on the second, each
/// with its half of every view (cut along the sequence axis, axis 1).
fn halves<'a, F: Float, const N: usize>(
    views: [ArrayViewMut3<'a, F>; N],
    batch: usize,
    split: bool,
    f: impl Fn(Range<usize>, [ArrayViewMut3<'a, F>; N]) + Sync,
) {
    if !split {
        return f(0..batch, views);
    }
    let mid = batch / 2;
    let mut second = Vec::with_capacity(N);
    let first = views.map(|v| {
        let (a, b) = v.split_at(Axis(1), mid);
        second.push(b);
        a
    });
    let second: [_; N] = second
        .try_into()
        .unwrap_or_else(|_| unreachable!("one second half per view"));
    rayon::join(|| f(0..mid, first), || f(mid..batch, second));
}

/// A time-major array (`[steps * batch, width]`) seen as `[steps, batch, width]`.
fn by_step<F>(a: &mut Array2<F>, steps: usize) -> ArrayViewMut3<'_, F> {
    let (rows, width) = a.dim();
    a.view_mut()
        .into_shape_with_order((steps, rows / steps, width))
        .expect("time-major rows are [steps, batch, width]")
}

/// Rows `first + rows.start .. first + rows.end` of `a`.
fn part<'a, F>(a: &'a ArrayRef2<F>, first: usize, rows: &Range<usize>) -> ArrayView2<'a, F> {
    a.slice(s![first + rows.start..first + rows.end, ..])
}

/// The elements of whole rows of a standard-layout array, as one slice.
fn whole<F>(a: &ArrayRef2<F>) -> &[F] {
    a.as_slice().expect("whole rows of a standard-layout array")
}

/// [`whole`], mutably.
pub(crate) fn whole_mut<F>(a: &mut ArrayRef2<F>) -> &mut [F] {
    a.as_slice_mut()
        .expect("whole rows of a standard-layout array")
}

/// `w^T` laid out row by row, made once per backward pass: each step multiplies by it, and a
/// transposed view would be repacked by the product at every step.
pub(crate) fn transposed<F: Float>(w: &Array2<F>) -> Array2<F> {
    w.t().as_standard_layout().into_owned()
}

/// The rows of step `t` in a time-major array of `batch` sequences.
fn rows<F>(a: &ArrayRef2<F>, t: usize, batch: usize) -> ArrayView2<'_, F> {
    a.slice(s![t * batch..(t + 1) * batch, ..])
}

fn rows_mut<F>(a: &mut ArrayRef2<F>, t: usize, batch: usize) -> ArrayViewMut2<'_, F> {
    a.slice_mut(s![t * batch..(t + 1) * batch, ..])
}

fn frobenius<F: Float>(a: &ArrayRef2<F>) -> f64 {
    a.iter()
        .map(|v| v.as_f64() * v.as_f64())
        .sum::<f64>()
        .sqrt()
}

impl<F: Float> Lstm<F> {
    // ANCHOR: steps
    /// Whether the recurrence runs as two halves of the batch on two threads at once: with more
    /// than one thread, at least two sequences, and at least `matmul::PARALLEL_WORK`
    /// multiply-adds in the steps' products. The sequences of a batch never meet in the
    /// recurrence, and the product gives a row the same bits however many rows it is computed
    /// with, so halving changes no result (`tests/threads.rs`).
    fn split(&self, batch: usize, time: usize) -> bool {
        let h = self.hidden();
        threads() > 1 && batch >= 2 && time * batch * h * 4 * h >= PARALLEL_WORK
    }

    /// The steps of [`Recurrent::forward_tm`] for some of the sequences, as `[step, sequence,
    /// unit]` views: `gates` (`[T, n, 4H]`) holds the input's share of the gates and is
    /// overwritten with the gates; `hs` and `cs` (`[T + 1, n, H]`) start with the initial state;
    /// `tanh_cs` is `[T, n, H]`.
    fn forward_steps(&self, [mut gates, mut hs, mut cs, mut tanh_cs]: [ArrayViewMut3<'_, F>; 4]) {
        let hidden = self.hidden();
        for t in 0..gates.len_of(Axis(0)) {
            let (h_prev, mut h_next) = hs.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
            let (c_prev, mut c_next) = cs.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
            let mut a = gates.index_axis_mut(Axis(0), t);
            // a_t += h_{t-1} W_h: one [batch, H] x [H, 4H] product per step.
            matmul_into(F::one(), &h_prev, &self.w_h.value, F::one(), &mut a);
            pointwise_forward(
                hidden,
                whole_mut(&mut a),
                whole(&c_prev),
                whole_mut(&mut c_next),
                whole_mut(&mut tanh_cs.index_axis_mut(Axis(0), t)),
                whole_mut(&mut h_next),
            );
        }
    }

    /// The steps of [`Recurrent::backward_tm`] for the sequences `rows`, in reverse: `da`
    /// (`[T, n, 4H]`) receives the pre-activation gradients and `dhs` (`[T, n, H]`) each step's
    /// total `dL/dh_t`; `dh` and `dc` (`[1, n, H]`) carry the gradients from the last state back
    /// to the initial one.
    fn backward_steps(
        &self,
        rows: Range<usize>,
        cache: &LstmCache<F>,
        dy: &ArrayRef2<F>,
        w_h_t: &Array2<F>,
        [mut da, mut dhs, dh, dc]: [ArrayViewMut3<'_, F>; 4],
    ) {
        let (hidden, batch) = (self.hidden(), cache.batch);
        let (mut dh, mut dc) = (
            dh.index_axis_move(Axis(0), 0),
            dc.index_axis_move(Axis(0), 0),
        );
        let mine = |a, t| part(a, t * batch, &rows);
        for t in (0..da.len_of(Axis(0))).rev() {
            // dL/dh_t: from the output at step t and from step t + 1 (already in dh).
            dh += &mine(dy, t);
            dhs.index_axis_mut(Axis(0), t).assign(&dh);
            let mut da_t = da.index_axis_mut(Axis(0), t);
            pointwise_backward(
                hidden,
                whole(&mine(&cache.gates, t)),
                whole(&mine(&cache.cs, t)),
                whole(&mine(&cache.tanh_cs, t)),
                whole(&dh),
                whole_mut(&mut dc),
                whole_mut(&mut da_t),
            );
            // dL/dh_{t-1} through the recurrence: da_t W_h^T.
            matmul_into(F::one(), &da_t, w_h_t, F::zero(), &mut dh);
        }
    }
    // ANCHOR_END: steps

    /// A layer with Glorot-uniform weights, zero biases, and the forget gate's input bias at
    /// one (Gers et al.; Jozefowicz et al., 2015), so that a fresh cell remembers by default.
    pub fn new(input: usize, hidden: usize, rng: &mut impl Rng) -> Self {
        let w_x = glorot_uniform(input, 4 * hidden, rng);
        let w_h = glorot_uniform(hidden, 4 * hidden, rng);
        let mut b_x = Array1::zeros(4 * hidden);
        b_x.slice_mut(s![hidden..2 * hidden]).fill(F::one());
        Self::from_weights(w_x, w_h, b_x, Array1::zeros(4 * hidden))
    }

    /// A layer with the given weights (see [`Lstm`] for the shapes and the gate order).
    pub fn from_weights(w_x: Array2<F>, w_h: Array2<F>, b_x: Array1<F>, b_h: Array1<F>) -> Self {
        let h = w_h.nrows();
        assert!(
            w_h.ncols() == 4 * h
                && w_x.ncols() == 4 * h
                && b_x.len() == 4 * h
                && b_h.len() == 4 * h,
            "Lstm: w_x {:?}, w_h {:?}, b_x [{}], b_h [{}] do not fit a hidden size of {h}",
            w_x.shape(),
            w_h.shape(),
            b_x.len(),
            b_h.len()
        );
        Lstm {
            w_x: Param2::new(w_x),
            w_h: Param2::new(w_h),
            b_x: Param1::new(b_x),
            b_h: Param1::new(b_h),
        }
    }

    // ANCHOR: forget_bias
    /// Sets the forget gate's input bias to `b` (the hidden bias stays as it is). At `b` the
    /// fresh gate is `σ(b)`, so a cell keeps about `σ(b)^k` of its content over `k` steps:
    /// `b = 1` (the default) keeps 0.73 per step, too little to bridge a hundred steps, while
    /// `b = 5` keeps 0.993 per step.
    pub fn set_forget_bias(&mut self, b: F) {
        let h = self.hidden();
        self.b_x.value.slice_mut(s![h..2 * h]).fill(b);
    }
    // ANCHOR_END: forget_bias

    /// The hidden size `H`.
    pub fn hidden(&self) -> usize {
        self.w_h.value.nrows()
    }

    fn check_state(&self, state: &State<F>, batch: usize) {
        let want = (batch, self.hidden());
        assert!(
            state.h.dim() == want && state.c.dim() == want,
            "Lstm: the state is h {:?}, c {:?} but the layer needs [{batch}, {}]",
            state.h.shape(),
            state.c.shape(),
            self.hidden()
        );
    }

    // ANCHOR: step
    /// The cell on its own: one step from `state` with input `x` (`[batch, in]`), returning the
    /// new state. It is what [`Lstm::forward_tm`] does at every step, written plainly (the
    /// tests check the two agree).
    pub fn step(&self, x: &ArrayRef2<F>, state: &State<F>) -> State<F> {
        self.check_state(state, x.nrows());
        let hidden = self.hidden();
        let mut a = matmul(x, &self.w_x.value) + &self.b_x.value + &self.b_h.value;
        matmul_into(F::one(), &state.h, &self.w_h.value, F::one(), &mut a);
        let mut next = State::zeros(x.nrows(), hidden);
        let mut tanh_c = Array2::zeros((x.nrows(), hidden));
        pointwise_forward(
            hidden,
            a.as_slice_mut().expect("fresh array"),
            state.c.as_standard_layout().as_slice().expect("standard"),
            next.c.as_slice_mut().expect("fresh array"),
            tanh_c.as_slice_mut().expect("fresh array"),
            next.h.as_slice_mut().expect("fresh array"),
        );
        next
    }
    // ANCHOR_END: step

    /// Runs the layer over `x` (`[batch, time, in]`) from `state`: the hidden states of every
    /// step (`[batch, time, hidden]`), the state after the last step, and the cache.
    pub fn forward(
        &self,
        x: &ArrayRef3<F>,
        state: &State<F>,
    ) -> (Array3<F>, State<F>, LstmCache<F>) {
        let batch = x.dim().0;
        let (y, last, cache) = self.forward_tm(time_major(x), batch, state);
        (batch_major(&y, batch), last, cache)
    }

    /// Backpropagation through time for [`Lstm::forward`]: `dy` is `[batch, time, hidden]`,
    /// `d_last` the gradient arriving at the final state (if it feeds anything). Adds the
    /// parameter gradients; returns `dL/dx` (`[batch, time, in]`) and `dL/d(initial state)`.
    pub fn backward(
        &mut self,
        cache: &LstmCache<F>,
        dy: &ArrayRef3<F>,
        d_last: Option<&State<F>>,
    ) -> (Array3<F>, State<F>) {
        let batch = cache.batch;
        let g = self.backward_tm(cache, &time_major(dy), d_last);
        (batch_major(&g.dx, batch), g.d_state)
    }
}

impl<F: Float> Recurrent<F> for Lstm<F> {
    type State = State<F>;
    type Cache = LstmCache<F>;

    fn input(&self) -> usize {
        self.w_x.value.nrows()
    }

    fn output(&self) -> usize {
        self.hidden()
    }

    fn zero_state(&self, batch: usize) -> State<F> {
        State::zeros(batch, self.hidden())
    }

    // ANCHOR: forward
    fn forward_tm(
        &self,
        x: Array2<F>,
        batch: usize,
        state: &State<F>,
    ) -> (Array2<F>, State<F>, LstmCache<F>) {
        let hidden = self.hidden();
        assert!(
            x.ncols() == self.input() && batch > 0 && x.nrows().is_multiple_of(batch),
            "Lstm: the input is {:?} but the layer expects [time * {batch}, {}]",
            x.shape(),
            self.input()
        );
        self.check_state(state, batch);
        let time = x.nrows() / batch;
        // The input's share of every step's gates in one product, both biases added once.
        let mut gates = matmul(&x, &self.w_x.value) + &(&self.b_x.value + &self.b_h.value);
        let mut hs = Array2::zeros(((time + 1) * batch, hidden));
        let mut cs = Array2::zeros(((time + 1) * batch, hidden));
        let mut tanh_cs = Array2::zeros((time * batch, hidden));
        hs.slice_mut(s![..batch, ..]).assign(&state.h);
        cs.slice_mut(s![..batch, ..]).assign(&state.c);
        // The steps, seen as [step, sequence, unit]: the sequences never meet in the recurrence,
        // so with two threads each runs half of them (see `halves`).
        let parts = [
            by_step(&mut gates, time),
            by_step(&mut hs, time + 1),
            by_step(&mut cs, time + 1),
            by_step(&mut tanh_cs, time),
        ];
        halves(parts, batch, self.split(batch, time), |_, views| {
            self.forward_steps(views)
        });
        let y = hs.slice(s![batch.., ..]).to_owned();
        let last = State {
            h: rows(&hs, time, batch).to_owned(),
            c: rows(&cs, time, batch).to_owned(),
        };
        let cache = LstmCache {
            batch,
            x,
            gates,
            hs,
            cs,
            tanh_cs,
        };
        (y, last, cache)
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    fn backward_tm(
        &mut self,
        cache: &LstmCache<F>,
        dy: &ArrayRef2<F>,
        d_last: Option<&State<F>>,
    ) -> SeqGrads<F, State<F>> {
        let (batch, hidden) = (cache.batch, self.hidden());
        let tb = cache.x.nrows();
        assert_eq!(
            dy.dim(),
            (tb, hidden),
            "Lstm: dy is {:?} but the forward output was [{tb}, {hidden}]",
            dy.shape()
        );
        let time = tb / batch;
        let (mut dh, mut dc) = match d_last {
            Some(d) => {
                self.check_state(d, batch);
                (d.h.to_owned(), d.c.to_owned())
            }
            None => (
                Array2::zeros((batch, hidden)),
                Array2::zeros((batch, hidden)),
            ),
        };
        let mut da = Array2::zeros((tb, 4 * hidden));
        // Every step's total dL/dh_t, kept for the norms of the vanishing-gradient figure.
        let mut dhs = Array2::zeros((tb, hidden));
        let w_h_t = transposed(&self.w_h.value);
        let parts = [
            by_step(&mut da, time),
            by_step(&mut dhs, time),
            by_step(&mut dh, 1),
            by_step(&mut dc, 1),
        ];
        halves(parts, batch, self.split(batch, time), |rows, views| {
            self.backward_steps(rows, cache, dy, &w_h_t, views)
        });
        let dh_norms = (0..time)
            .map(|t| frobenius(&rows(&dhs, t, batch)))
            .collect();
        // The weight gradients as one product over all steps each.
        let h_prev = cache.hs.slice(s![..tb, ..]);
        matmul_into(F::one(), &h_prev.t(), &da, F::one(), &mut self.w_h.grad);
        matmul_into(F::one(), &cache.x.t(), &da, F::one(), &mut self.w_x.grad);
        let db = da.sum_axis(Axis(0));
        self.b_x.grad += &db;
        self.b_h.grad += &db;
        SeqGrads {
            dx: matmul(&da, &self.w_x.value.t()),
            d_state: State { h: dh, c: dc },
            dh_norms,
        }
    }
    // ANCHOR_END: backward
}

// ANCHOR: stacked
/// Layers of LSTMs, each reading the hidden states of the one below: the state is one
/// [`State`] per layer, the output is the top layer's hidden states.
#[derive(Clone, Debug)]
pub struct StackedLstm<F: Float> {
    /// The layers, bottom first.
    pub layers: Vec<Lstm<F>>,
}

/// The caches of every layer of a [`StackedLstm`].
#[derive(Clone, Debug)]
pub struct StackedCache<F: Float>(Vec<LstmCache<F>>);

impl<F: Float> StackedLstm<F> {
    /// `depth` layers of `hidden` units on an input of width `input`.
    pub fn new(input: usize, hidden: usize, depth: usize, rng: &mut impl Rng) -> Self {
        assert!(depth > 0, "StackedLstm: a stack needs at least one layer");
        let layers = (0..depth)
            .map(|l| Lstm::new(if l == 0 { input } else { hidden }, hidden, rng))
            .collect();
        StackedLstm { layers }
    }
}

impl<F: Float> Recurrent<F> for StackedLstm<F> {
    type State = Vec<State<F>>;
    type Cache = StackedCache<F>;

    fn input(&self) -> usize {
        self.layers[0].input()
    }

    fn output(&self) -> usize {
        self.layers.last().expect("at least one layer").hidden()
    }

    fn zero_state(&self, batch: usize) -> Vec<State<F>> {
        self.layers.iter().map(|l| l.zero_state(batch)).collect()
    }

    fn forward_tm(
        &self,
        x: Array2<F>,
        batch: usize,
        state: &Vec<State<F>>,
    ) -> (Array2<F>, Vec<State<F>>, StackedCache<F>) {
        assert_eq!(
            state.len(),
            self.layers.len(),
            "StackedLstm: {} states for {} layers",
            state.len(),
            self.layers.len()
        );
        let mut x = x;
        let mut last = Vec::with_capacity(self.layers.len());
        let mut caches = Vec::with_capacity(self.layers.len());
        for (layer, s) in self.layers.iter().zip(state) {
            let (y, l, c) = layer.forward_tm(x, batch, s);
            x = y;
            last.push(l);
            caches.push(c);
        }
        (x, last, StackedCache(caches))
    }

    fn backward_tm(
        &mut self,
        cache: &StackedCache<F>,
        dy: &ArrayRef2<F>,
        d_last: Option<&Vec<State<F>>>,
    ) -> SeqGrads<F, Vec<State<F>>> {
        let depth = self.layers.len();
        let mut dy = dy.to_owned();
        let mut d_state = Vec::with_capacity(depth);
        let mut dh_norms = Vec::new();
        for l in (0..depth).rev() {
            let g = self.layers[l].backward_tm(&cache.0[l], &dy, d_last.map(|d| &d[l]));
            if l == depth - 1 {
                dh_norms = g.dh_norms;
            }
            dy = g.dx;
            d_state.push(g.d_state);
        }
        d_state.reverse();
        SeqGrads {
            dx: dy,
            d_state,
            dh_norms,
        }
    }
}

crate::impl_params!(StackedLstm<F> { layers });
// ANCHOR_END: stacked

// ANCHOR: clip
/// Gradient clipping by global norm (Pascanu, Mikolov and Bengio, 2013): when the norm of all
/// gradients together exceeds `max_norm`, scales every gradient by `max_norm / norm`, which
/// shortens the step and keeps its direction. Returns the norm before clipping.
pub fn clip_grad_norm<F: Float>(model: &mut impl Params<F>, max_norm: f64) -> f64 {
    let norm = grad_norm(model);
    if norm > max_norm && norm.is_finite() {
        let scale = F::of(max_norm / norm);
        model.visit("", &mut |_, mut p| p.grad.mapv_inplace(|g| g * scale));
    }
    norm
}
// ANCHOR_END: clip
