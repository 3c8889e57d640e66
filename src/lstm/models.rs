//! The chapter's two models: a sequence regressor for the adding problem (any [`Recurrent`]
//! layer, then a linear layer on the last hidden state) and a character language model
//! (embedding, stacked LSTM, linear layer over the vocabulary, dropout between them).

use super::{Recurrent, SeqGrads, StackedLstm, State, batch_major, time_major};
use crate::dropout::{Dropout, DropoutCache};
use crate::embedding::Embedding;
use crate::float::Float;
use crate::linear::{Linear, LinearCache};
use crate::loss::softmax_cross_entropy;
use crate::param::{ParamMut, ParamRef, Params, join};
use ndarray::{Array2, Array3, ArrayRef2, ArrayRef3, ArrayView2, Ix2, s};
use rand::Rng;

// ANCHOR: regressor
/// A recurrent layer read at its last step: `y = h_T W + b` (`[batch, outputs]`). Generic over
/// the layer, so the LSTM and the tanh RNN are otherwise the same model.
#[derive(Clone, Debug)]
pub struct LastStep<F: Float, R> {
    /// The recurrent layer.
    pub rnn: R,
    /// The output layer on the last hidden state.
    pub head: Linear<F>,
}

/// What [`LastStep::backward`] needs.
pub struct LastStepCache<F: Float, C> {
    batch: usize,
    time: usize,
    rnn: C,
    head: LinearCache<F>,
}

impl<F: Float, R: Recurrent<F>> LastStep<F, R> {
    /// The model with a fresh output layer of `outputs` units.
    pub fn new(rnn: R, outputs: usize, rng: &mut impl Rng) -> Self {
        let head = Linear::new(rnn.output(), outputs, rng);
        LastStep { rnn, head }
    }

    /// `x` is `[batch, time, in]`; the prediction `[batch, outputs]` is made from the hidden
    /// state after the *last time step* of every sequence, starting from the zero state.
    pub fn forward(&self, x: &ArrayRef3<F>) -> (Array2<F>, LastStepCache<F, R::Cache>) {
        let (batch, time, _) = x.dim();
        let state = self.rnn.zero_state(batch);
        let (hs, _, rnn) = self.rnn.forward_tm(time_major(x), batch, &state);
        // Time-major rows: the last `batch` rows are step T - 1 of every sequence.
        let last = hs.slice(s![(time - 1) * batch.., ..]).to_owned();
        let (y, head) = self.head.forward_owned(last);
        let cache = LastStepCache {
            batch,
            time,
            rnn,
            head,
        };
        (y, cache)
    }

    /// The prediction alone.
    pub fn infer(&self, x: &ArrayRef3<F>) -> Array2<F> {
        self.forward(x).0
    }

    /// Adds every parameter gradient for `dy = dL/dy` (`[batch, outputs]`) and returns
    /// `dL/dx` (`[batch, time, in]`) and the norm of `dL/dh_t` at every step `t`.
    pub fn backward(
        &mut self,
        cache: &LastStepCache<F, R::Cache>,
        dy: &ArrayRef2<F>,
    ) -> (Array3<F>, Vec<f64>) {
        let (b, t) = (cache.batch, cache.time);
        let d_last = self.head.backward(&cache.head, dy);
        // Only the last step's hidden state reaches the loss directly.
        let mut dhs = Array2::zeros((t * b, self.rnn.output()));
        dhs.slice_mut(s![(t - 1) * b.., ..]).assign(&d_last);
        let SeqGrads { dx, dh_norms, .. } = self.rnn.backward_tm(&cache.rnn, &dhs, None);
        (batch_major(&dx, b), dh_norms)
    }
}
// ANCHOR_END: regressor

impl<F: Float, R: Params<F>> Params<F> for LastStep<F, R> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>)) {
        self.rnn.visit(&join(prefix, "rnn"), f);
        self.head.visit(&join(prefix, "head"), f);
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>)) {
        self.rnn.visit_ref(&join(prefix, "rnn"), f);
        self.head.visit_ref(&join(prefix, "head"), f);
    }
}

// ANCHOR: char_model
/// A character language model: `e = embed(ids)`, `h = lstm(drop(e))`,
/// `logits = drop(h) W + b` over the vocabulary at every step.
#[derive(Clone, Debug)]
pub struct CharModel<F: Float> {
    /// The characters' vectors, `[vocab, dim]`.
    pub embed: Embedding<F>,
    /// The stacked LSTM.
    pub lstm: StackedLstm<F>,
    /// The output layer, `[hidden, vocab]`.
    pub out: Linear<F>,
    /// Dropout on the embeddings and on the top layer's outputs (not on the recurrence).
    pub dropout: Dropout,
}

crate::impl_params!(CharModel<F> { embed, lstm, out });

/// What [`CharModel::backward`] needs.
pub struct CharCache<F: Float> {
    ids: Array2<usize>,
    drop_in: DropoutCache<F, Ix2>,
    lstm: super::StackedCache<F>,
    drop_out: DropoutCache<F, Ix2>,
    out: LinearCache<F>,
}

impl<F: Float> CharModel<F> {
    /// A model over `vocab` characters with embeddings of width `dim` and `depth` LSTM layers
    /// of `hidden` units; `dropout` is the rate on the embeddings and the top outputs.
    pub fn new(
        vocab: usize,
        dim: usize,
        hidden: usize,
        depth: usize,
        dropout: Dropout,
        rng: &mut impl Rng,
    ) -> Self {
        let embed = Embedding::new(vocab, dim, rng);
        let lstm = StackedLstm::new(dim, hidden, depth, rng);
        let mut out = Linear::new(hidden, vocab, rng);
        // He initialisation suits a ReLU after the layer; logits start better at Glorot's scale.
        out.w.value = crate::init::glorot_uniform(hidden, vocab, rng);
        CharModel {
            embed,
            lstm,
            out,
            dropout,
        }
    }

    /// The zero state for `batch` streams.
    pub fn zero_state(&self, batch: usize) -> Vec<State<F>> {
        self.lstm.zero_state(batch)
    }

    // ANCHOR: char_forward
    /// The training pass over a window of ids `[batch, time]` from `state`: the logits of
    /// every step, time-major `[time * batch, vocab]` (row `t * batch + b` predicts the
    /// character after `ids[b, t]`), the state after the window, and the cache. Dropout masks
    /// are drawn from `rng`.
    pub fn forward_train(
        &self,
        ids: &ArrayRef2<usize>,
        state: &[State<F>],
        rng: &mut impl Rng,
    ) -> (Array2<F>, Vec<State<F>>, CharCache<F>) {
        let (batch, time) = ids.dim();
        // Gathering with the transposed ids gives the embeddings time-major at once.
        let e = self.embed.infer(&ids.t());
        let e = e
            .into_shape_with_order((time * batch, self.embed.dim()))
            .expect("a fresh array reshapes");
        let (e, drop_in) = self.dropout.forward_train(&e, rng);
        let (h, last, lstm) = self.lstm.forward_tm(e, batch, &state.to_vec());
        let (h, drop_out) = self.dropout.forward_train(&h, rng);
        let (logits, out) = self.out.forward_owned(h);
        let cache = CharCache {
            ids: ids.to_owned(),
            drop_in,
            lstm,
            drop_out,
            out,
        };
        (logits, last, cache)
    }
    // ANCHOR_END: char_forward

    /// The evaluation pass (no dropout, no cache): logits `[time * batch, vocab]` and the
    /// state after the window.
    pub fn infer(&self, ids: &ArrayRef2<usize>, state: &[State<F>]) -> (Array2<F>, Vec<State<F>>) {
        let (batch, time) = ids.dim();
        let e = self
            .embed
            .infer(&ids.t())
            .into_shape_with_order((time * batch, self.embed.dim()))
            .expect("a fresh array reshapes");
        let (h, last, _) = self.lstm.forward_tm(e, batch, &state.to_vec());
        (self.out.infer(&h), last)
    }

    // ANCHOR: char_backward
    /// Adds every parameter gradient for `dlogits` (time-major, as `forward_train` returned
    /// the logits) and returns `dL/d(initial state)`. The state the window started from is
    /// treated as a constant: this is where truncated backpropagation through time cuts.
    pub fn backward(&mut self, cache: &CharCache<F>, dlogits: &ArrayRef2<F>) -> Vec<State<F>> {
        let (batch, time) = cache.ids.dim();
        let dh = self.out.backward(&cache.out, dlogits);
        let dh = self.dropout.backward(&cache.drop_out, &dh);
        let g = self.lstm.backward_tm(&cache.lstm, &dh, None);
        let de = self.dropout.backward(&cache.drop_in, &g.dx);
        let de = de
            .into_shape_with_order((time, batch, self.embed.dim()))
            .expect("a fresh array reshapes");
        self.embed.backward(&cache.ids.t(), &de);
        g.d_state
    }
    // ANCHOR_END: char_backward
}
// ANCHOR_END: char_model

/// The targets of a `[batch, time]` window in the time-major row order of the logits.
pub fn time_major_targets(targets: &ArrayRef2<usize>) -> Vec<usize> {
    targets.t().iter().copied().collect()
}

// ANCHOR: window_step
/// One window of truncated BPTT: the forward pass from the carried `state`, the mean
/// cross-entropy (nats per character) against `targets`, and the backward pass, which adds the
/// gradients and stops at the window's start. Returns the loss and the state to carry into
/// the next window (a value: no gradient will flow back through it).
pub fn window_loss_and_backward<F: Float>(
    model: &mut CharModel<F>,
    inputs: &ArrayRef2<usize>,
    targets: &ArrayRef2<usize>,
    state: &[State<F>],
    rng: &mut impl Rng,
) -> (F, Vec<State<F>>) {
    let (logits, last, cache) = model.forward_train(inputs, state, rng);
    let (loss, dlogits) = softmax_cross_entropy(&logits, &time_major_targets(targets));
    model.backward(&cache, &dlogits);
    (loss, last)
}
// ANCHOR_END: window_step

/// The rows of `a` (time-major, `batch` sequences) that belong to step `t`.
pub fn step_rows<F>(a: &ArrayRef2<F>, t: usize, batch: usize) -> ArrayView2<'_, F> {
    a.slice(s![t * batch..(t + 1) * batch, ..])
}
