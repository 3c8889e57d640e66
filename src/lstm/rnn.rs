//! The baseline: a plain ("vanilla", Elman) recurrent layer with a tanh,
//! `h_t = tanh(x_t W_x + b_x + h_{t-1} W_h + b_h)`, with the same [`Recurrent`] interface as
//! the LSTM, so the same model and training loop run either.
//!
//! Shapes: `w_x` is `[in, hidden]`, `w_h` is `[hidden, hidden]`, both biases `[hidden]`; the
//! state is `h`, `[batch, hidden]`.

use super::{Recurrent, SeqGrads, frobenius, rows, rows_mut, transposed, whole_mut};
use crate::float::Float;
use crate::init::glorot_uniform;
use crate::matmul::{matmul, matmul_into};
use crate::param::{Param1, Param2};
use ndarray::{Array1, Array2, ArrayRef2, Axis, s};
use rand::Rng;

// ANCHOR: struct
/// A tanh RNN layer.
#[derive(Clone, Debug)]
pub struct TanhRnn<F: Float> {
    /// Input-to-hidden weights, `[in, hidden]`.
    pub w_x: Param2<F>,
    /// Hidden-to-hidden weights, `[hidden, hidden]`.
    pub w_h: Param2<F>,
    /// Input bias, `[hidden]`.
    pub b_x: Param1<F>,
    /// Hidden bias, `[hidden]`.
    pub b_h: Param1<F>,
}
// ANCHOR_END: struct

crate::impl_params!(TanhRnn<F> { w_x, w_h, b_x, b_h });

/// What [`TanhRnn`]'s backward pass needs: the inputs and `h_0 .. h_T`, time-major.
#[derive(Clone, Debug)]
pub struct RnnCache<F: Float> {
    batch: usize,
    x: Array2<F>,
    hs: Array2<F>,
}

impl<F: Float> TanhRnn<F> {
    /// A layer with Glorot-uniform weights and zero biases.
    pub fn new(input: usize, hidden: usize, rng: &mut impl Rng) -> Self {
        TanhRnn {
            w_x: Param2::new(glorot_uniform(input, hidden, rng)),
            w_h: Param2::new(glorot_uniform(hidden, hidden, rng)),
            b_x: Param1::new(Array1::zeros(hidden)),
            b_h: Param1::new(Array1::zeros(hidden)),
        }
    }

    /// The hidden size.
    pub fn hidden(&self) -> usize {
        self.w_h.value.nrows()
    }
}

impl<F: Float> Recurrent<F> for TanhRnn<F> {
    type State = Array2<F>;
    type Cache = RnnCache<F>;

    fn input(&self) -> usize {
        self.w_x.value.nrows()
    }

    fn output(&self) -> usize {
        self.hidden()
    }

    fn zero_state(&self, batch: usize) -> Array2<F> {
        Array2::zeros((batch, self.hidden()))
    }

    // ANCHOR: forward
    fn forward_tm(
        &self,
        x: Array2<F>,
        batch: usize,
        state: &Array2<F>,
    ) -> (Array2<F>, Array2<F>, RnnCache<F>) {
        let hidden = self.hidden();
        assert!(
            x.ncols() == self.input() && batch > 0 && x.nrows().is_multiple_of(batch),
            "TanhRnn: the input is {:?} but the layer expects [time * {batch}, {}]",
            x.shape(),
            self.input()
        );
        assert_eq!(
            state.dim(),
            (batch, hidden),
            "TanhRnn: the state is {:?} but the layer needs [{batch}, {hidden}]",
            state.shape()
        );
        let time = x.nrows() / batch;
        let pre = matmul(&x, &self.w_x.value) + &(&self.b_x.value + &self.b_h.value);
        let mut hs = Array2::zeros(((time + 1) * batch, hidden));
        hs.slice_mut(s![..batch, ..]).assign(state);
        hs.slice_mut(s![batch.., ..]).assign(&pre);
        for t in 0..time {
            let (done, mut next) = hs.view_mut().split_at(Axis(0), (t + 1) * batch);
            let mut a = rows_mut(&mut next, 0, batch);
            matmul_into(
                F::one(),
                &rows(&done, t, batch),
                &self.w_h.value,
                F::one(),
                &mut a,
            );
            crate::vmath::tanh_all(whole_mut(&mut a));
        }
        let y = hs.slice(s![batch.., ..]).to_owned();
        let last = rows(&hs, time, batch).to_owned();
        (y, last, RnnCache { batch, x, hs })
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    fn backward_tm(
        &mut self,
        cache: &RnnCache<F>,
        dy: &ArrayRef2<F>,
        d_last: Option<&Array2<F>>,
    ) -> SeqGrads<F, Array2<F>> {
        let (batch, hidden) = (cache.batch, self.hidden());
        let tb = cache.x.nrows();
        assert_eq!(
            dy.dim(),
            (tb, hidden),
            "TanhRnn: dy is {:?} but the forward output was [{tb}, {hidden}]",
            dy.shape()
        );
        let time = tb / batch;
        let mut dh = match d_last {
            Some(d) => d.to_owned(),
            None => Array2::zeros((batch, hidden)),
        };
        let mut da = Array2::zeros((tb, hidden));
        let mut dh_norms = vec![0.0; time];
        let w_h_t = transposed(&self.w_h.value);
        for t in (0..time).rev() {
            dh += &rows(dy, t, batch);
            dh_norms[t] = frobenius(&dh);
            // h_t = tanh(a_t): da_t = dh_t (1 - h_t^2).
            let mut da_t = rows_mut(&mut da, t, batch);
            da_t.assign(&dh);
            da_t.zip_mut_with(&rows(&cache.hs, t + 1, batch), |d, &h| {
                *d *= F::one() - h * h
            });
            matmul_into(F::one(), &da_t, &w_h_t, F::zero(), &mut dh);
        }
        let h_prev = cache.hs.slice(s![..tb, ..]);
        matmul_into(F::one(), &h_prev.t(), &da, F::one(), &mut self.w_h.grad);
        matmul_into(F::one(), &cache.x.t(), &da, F::one(), &mut self.w_x.grad);
        let db = da.sum_axis(Axis(0));
        self.b_x.grad += &db;
        self.b_h.grad += &db;
        SeqGrads {
            dx: matmul(&da, &self.w_x.value.t()),
            d_state: dh,
            dh_norms,
        }
    }
    // ANCHOR_END: backward
}
