//! MADE, the masked autoencoder for distribution estimation of Germain, Gregor, Murray and
//! Larochelle (2015), with every gradient by hand.
//!
//! Any distribution over `D` variables factorises by the chain rule of probability,
//! `p(x) = prod_d p(x_d | x_{<d})`, for any ordering of the variables. MADE computes all `D`
//! conditionals in one pass of an ordinary autoencoder whose weight matrices are multiplied
//! element-wise by binary masks, chosen so that the output for variable `d` is connected only to
//! the inputs that come before `d` in the ordering. The outputs are then the parameters of
//! honest conditionals, and their product is a normalised, exact likelihood.
//!
//! The masks come from *degrees* ([`Degrees`]): input `d` has degree `m_0(d)`, its position in
//! the ordering (`1..=D`); every hidden unit `k` of layer `l` gets a degree `m_l(k)` in
//! `1..=D - 1`; a hidden weight from a unit of degree `a` to one of degree `b` is kept when
//! `b >= a`, and an output weight from a hidden unit of degree `a` to the output of variable `d`
//! when `m_0(d) > a`, strictly. A hidden unit of degree `a` then sees only inputs of degree at
//! most `a`, and output `d` only inputs of degree below `m_0(d)`: the autoregressive property.
//!
//! Shapes: data `x` is `[batch, D]`, binary values for [`Output::Bernoulli`], class indices
//! (stored as floats) for [`Output::Categorical`]; the network's input is `x` itself for the
//! former and its one-hot encoding `[batch, D K]` for the latter; its output holds one logit per
//! variable (`[batch, D]`) or `K` logits per variable (`[batch, D K]`, variable `d` in columns
//! `d K .. (d + 1) K`). Per-example negative log-likelihoods are `[batch]`, in nats.

pub mod experiment;

use crate::activation::{relu, relu_backward, sigmoid};
use crate::float::Float;
use crate::linear::Linear;
use crate::loss::log_softmax;
use crate::matmul::{matmul, split_elements};
use crate::param::{ParamMut, ParamRef, Params};
use crate::vae::bernoulli_nll;
use ndarray::{Array1, Array2, ArrayRef2, Axis, Zip};
use rand::Rng;
use rand::seq::SliceRandom;

// ANCHOR: masked_linear
/// A linear layer whose weights are multiplied element-wise by a fixed binary mask:
/// `y = x (W * M) + b`, with `W` and `M` of shape `[in, out]`. The mask is not a parameter; a
/// masked-out weight has a zero gradient and never changes.
#[derive(Clone, Debug)]
pub struct MaskedLinear<F: Float> {
    /// The weights and the bias, as in an unmasked layer.
    pub linear: Linear<F>,
    mask: Array2<F>,
}

/// What [`MaskedLinear::backward`] needs: the input and the masked weights of the forward pass.
#[derive(Clone, Debug)]
pub struct MaskedCache<F: Float> {
    x: Array2<F>,
    masked: Array2<F>,
}

impl<F: Float> MaskedLinear<F> {
    /// A layer with He-initialised weights, a zero bias and the given mask `[in, out]`.
    pub fn new(mask: Array2<F>, rng: &mut impl Rng) -> Self {
        let (input, output) = mask.dim();
        let mut layer = MaskedLinear {
            linear: Linear::new(input, output, rng),
            mask: Array2::zeros((0, 0)),
        };
        layer.set_mask(mask);
        layer
    }

    /// Replaces the mask (a new connectivity; the weights stay as they are).
    pub fn set_mask(&mut self, mask: Array2<F>) {
        assert_eq!(
            mask.dim(),
            self.linear.w.value.dim(),
            "MaskedLinear: mask is {:?} but the weights are {:?}",
            mask.shape(),
            self.linear.w.value.shape()
        );
        self.mask = mask;
    }

    /// The mask `[in, out]`: 1 where a weight is used, 0 where it is cut.
    pub fn mask(&self) -> &Array2<F> {
        &self.mask
    }

    /// `W * M`, formed once per pass and shared by the whole batch.
    pub fn masked_weights(&self) -> Array2<F> {
        let each = Zip::from(&self.linear.w.value).and(&self.mask);
        // Shared between threads when there are several (element by element: the same bits).
        if split_elements(self.mask.len()) {
            each.par_map_collect(|&w, &m| w * m)
        } else {
            each.map_collect(|&w, &m| w * m)
        }
    }

    /// `y = x (W * M) + b` for `x` of shape `[batch, in]`, without a cache.
    pub fn infer(&self, x: &ArrayRef2<F>) -> Array2<F> {
        self.check(x);
        matmul(x, &self.masked_weights()) + &self.linear.b.value
    }

    /// The forward pass for training: the output and the cache (the input, moved in, and the
    /// masked weights).
    pub fn forward(&self, x: Array2<F>) -> (Array2<F>, MaskedCache<F>) {
        self.check(&x);
        let masked = self.masked_weights();
        let y = matmul(&x, &masked) + &self.linear.b.value;
        (y, MaskedCache { x, masked })
    }

    /// Adds `dL/dW = (x^T dy) * M` and `dL/db` to the gradients and returns
    /// `dL/dx = dy (W * M)^T`.
    pub fn backward(&mut self, cache: &MaskedCache<F>, dy: &ArrayRef2<F>) -> Array2<F> {
        self.backward_params(cache, dy);
        matmul(dy, &cache.masked.t())
    }

    /// The parameter gradients of [`MaskedLinear::backward`] without `dL/dx` (for a first
    /// layer, whose input is data).
    pub fn backward_params(&mut self, cache: &MaskedCache<F>, dy: &ArrayRef2<F>) {
        assert_eq!(
            dy.dim(),
            (cache.x.nrows(), self.linear.output()),
            "MaskedLinear: dy is {:?} but the forward output was [{}, {}]",
            dy.shape(),
            cache.x.nrows(),
            self.linear.output()
        );
        let dw = matmul(&cache.x.t(), dy);
        let each = Zip::from(&mut self.linear.w.grad).and(&dw).and(&self.mask);
        let add = |g: &mut F, &d: &F, &m: &F| *g += d * m;
        if split_elements(self.mask.len()) {
            each.par_for_each(add);
        } else {
            each.for_each(add);
        }
        self.linear.b.grad += &dy.sum_axis(Axis(0));
    }

    fn check(&self, x: &ArrayRef2<F>) {
        assert_eq!(
            x.ncols(),
            self.linear.input(),
            "MaskedLinear: input is {:?} but the layer expects [batch, {}]",
            x.shape(),
            self.linear.input()
        );
    }
}
// ANCHOR_END: masked_linear

/// The parameters are the inner layer's, under the same names (`w`, `b`).
impl<F: Float> Params<F> for MaskedLinear<F> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, F>)) {
        self.linear.visit(prefix, f);
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, F>)) {
        self.linear.visit_ref(prefix, f);
    }
}

// ANCHOR: degrees
/// The degrees that define one set of masks: `order[d]` is input `d`'s position in the
/// ordering (`1..=D`, a permutation), `hidden[l][k]` the degree of unit `k` of hidden layer `l`
/// (in `1..=D - 1`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Degrees {
    /// The ordering: `order[d]` is the degree of input `d`.
    pub order: Vec<usize>,
    /// The degrees of every hidden layer's units.
    pub hidden: Vec<Vec<usize>>,
}

impl Degrees {
    /// Draws degrees for `dims` variables and hidden layers of the given `widths`: the ordering
    /// is `1, 2, ..., D` (`natural`) or a uniformly random permutation, and the units of layer
    /// `l` get degrees drawn uniformly from `min(m_{l-1}) ..= D - 1`, as in the paper, so every
    /// unit has at least one input. Then, from the top layer down, a degree above the largest
    /// of the next layer is lowered to it, so every unit also has a path to an output (a unit
    /// of degree `a` reaches the next layer only through units of degree `>= a`).
    pub fn draw(dims: usize, widths: &[usize], natural: bool, rng: &mut impl Rng) -> Self {
        assert!(dims >= 2, "Degrees: MADE needs at least two variables");
        let mut order: Vec<usize> = (1..=dims).collect();
        if !natural {
            order.shuffle(rng);
        }
        let mut hidden: Vec<Vec<usize>> = Vec::with_capacity(widths.len());
        let mut low = 1;
        for &w in widths {
            let layer: Vec<usize> = (0..w).map(|_| rng.random_range(low..dims)).collect();
            low = layer.iter().copied().min().unwrap_or(low);
            hidden.push(layer);
        }
        for l in (0..hidden.len().saturating_sub(1)).rev() {
            let top = hidden[l + 1].iter().copied().max().unwrap_or(dims - 1);
            for m in &mut hidden[l] {
                *m = (*m).min(top);
            }
        }
        Degrees { order, hidden }
    }

    /// The variables in the order the model predicts them: `sequence()[t]` is the variable of
    /// degree `t + 1`.
    pub fn sequence(&self) -> Vec<usize> {
        let mut seq = vec![0; self.order.len()];
        for (d, &m) in self.order.iter().enumerate() {
            seq[m - 1] = d;
        }
        seq
    }
}

/// The mask `[in, out]` between units of degrees `from` and `to`: 1 where `to >= from`, or
/// `to > from` when `strict` (the output layer and the direct connection).
pub fn mask<F: Float>(from: &[usize], to: &[usize], strict: bool) -> Array2<F> {
    Array2::from_shape_fn((from.len(), to.len()), |(i, o)| {
        let keep = if strict {
            to[o] > from[i]
        } else {
            to[o] >= from[i]
        };
        if keep { F::one() } else { F::zero() }
    })
}
// ANCHOR_END: degrees

// ANCHOR: model
/// What each variable's outputs parameterise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Output {
    /// `x_d ~ Bernoulli(sigmoid(o_d))`: one logit per variable, for binary data.
    Bernoulli,
    /// `x_d ~ Categorical(softmax(o_d))` over `classes` values: `K` logits per variable, for
    /// small discrete data (the input is one-hot).
    Categorical {
        /// The number of values `K` each variable takes.
        classes: usize,
    },
}

/// A MADE: masked hidden layers with ReLU, a masked output layer, and optionally a masked
/// direct connection from the input to the output.
#[derive(Clone, Debug)]
pub struct Made<F: Float> {
    /// The hidden layers, first to last.
    pub hidden: Vec<MaskedLinear<F>>,
    /// The output layer, producing the logits.
    pub output: MaskedLinear<F>,
    /// The direct input-to-output connection, if any (its bias adds to the output layer's).
    pub direct: Option<MaskedLinear<F>>,
    kind: Output,
    degrees: Degrees,
}

/// What [`Made::backward`] needs from the forward pass.
#[derive(Clone, Debug)]
pub struct MadeCache<F: Float> {
    hidden: Vec<(MaskedCache<F>, Array2<F>)>,
    output: MaskedCache<F>,
    direct: Option<MaskedCache<F>>,
}
// ANCHOR_END: model

crate::impl_params!(Made<F> {
    hidden,
    output,
    direct
});

impl<F: Float> Made<F> {
    /// A MADE over `degrees.order.len()` variables with hidden layers as wide as the degree
    /// lists, `kind` outputs and, with `direct`, the direct connection; weights drawn from `rng`.
    pub fn new(degrees: Degrees, kind: Output, direct: bool, rng: &mut impl Rng) -> Self {
        let k = match kind {
            Output::Bernoulli => 1,
            Output::Categorical { classes } => {
                assert!(classes >= 2, "Made: a categorical output needs two classes");
                classes
            }
        };
        let units = repeat(&degrees.order, k);
        let mut from = units.clone();
        let mut hidden = Vec::new();
        for layer in &degrees.hidden {
            hidden.push(MaskedLinear::new(mask(&from, layer, false), rng));
            from = layer.clone();
        }
        let output = MaskedLinear::new(mask(&from, &units, true), rng);
        let direct = direct.then(|| MaskedLinear::new(mask(&units, &units, true), rng));
        Made {
            hidden,
            output,
            direct,
            kind,
            degrees,
        }
    }

    /// The number of variables `D`.
    pub fn dims(&self) -> usize {
        self.degrees.order.len()
    }

    /// What the outputs parameterise.
    pub fn kind(&self) -> Output {
        self.kind
    }

    /// The degrees the current masks were built from.
    pub fn degrees(&self) -> &Degrees {
        &self.degrees
    }

    /// Rebuilds every mask from new degrees (of the same layer widths): a new ordering, a new
    /// connectivity, or both. The weights are kept.
    pub fn set_degrees(&mut self, degrees: Degrees) {
        assert_eq!(
            (degrees.order.len(), degrees.hidden.len()),
            (self.dims(), self.hidden.len()),
            "Made: degrees for {} variables and {} hidden layers, but the model has {} and {}",
            degrees.order.len(),
            degrees.hidden.len(),
            self.dims(),
            self.hidden.len()
        );
        let units = repeat(&degrees.order, self.classes());
        let mut from = units.clone();
        for (layer, deg) in self.hidden.iter_mut().zip(&degrees.hidden) {
            layer.set_mask(mask(&from, deg, false));
            from = deg.clone();
        }
        self.output.set_mask(mask(&from, &units, true));
        if let Some(d) = &mut self.direct {
            d.set_mask(mask(&units, &units, true));
        }
        self.degrees = degrees;
    }

    /// Logits per variable: 1 for Bernoulli outputs, `K` for categorical ones.
    pub fn classes(&self) -> usize {
        match self.kind {
            Output::Bernoulli => 1,
            Output::Categorical { classes } => classes,
        }
    }

    // ANCHOR: encode
    /// The network's input for data `x` (`[batch, D]`): `x` itself for Bernoulli outputs, the
    /// one-hot encoding `[batch, D K]` for categorical ones. A categorical value that is not a
    /// class index `0..K` is a programming error and panics.
    pub fn encode(&self, x: &ArrayRef2<F>) -> Array2<F> {
        assert_eq!(
            x.ncols(),
            self.dims(),
            "Made: data is {:?} but the model has {} variables",
            x.shape(),
            self.dims()
        );
        let k = self.classes();
        if k == 1 {
            return x.to_owned();
        }
        let mut out = Array2::zeros((x.nrows(), x.ncols() * k));
        for ((i, d), &v) in x.indexed_iter() {
            out[[i, d * k + class_of(v, k)]] = F::one();
        }
        out
    }
    // ANCHOR_END: encode

    // ANCHOR: forward
    /// The logits for the network input `input` (`[batch, D K]`, see [`Made::encode`]), and the
    /// cache backward needs: `h_l = relu(h_{l-1} (W_l * M_l) + b_l)`,
    /// `o = h_L (V * M_V) + c + input (A * M_A)`.
    pub fn forward(&self, input: Array2<F>) -> (Array2<F>, MadeCache<F>) {
        let (direct_out, direct) = match &self.direct {
            Some(d) => {
                let (y, c) = d.forward(input.clone());
                (Some(y), Some(c))
            }
            None => (None, None),
        };
        let mut h = input;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for layer in &self.hidden {
            let (a, cache) = layer.forward(h);
            h = relu(&a);
            hidden.push((cache, a));
        }
        let (mut logits, output) = self.output.forward(h);
        if let Some(y) = direct_out {
            logits += &y;
        }
        (
            logits,
            MadeCache {
                hidden,
                output,
                direct,
            },
        )
    }

    /// The logits without a cache.
    pub fn infer(&self, input: &ArrayRef2<F>) -> Array2<F> {
        let mut h = input.to_owned();
        for layer in &self.hidden {
            h = relu(&layer.infer(&h));
        }
        let mut logits = self.output.infer(&h);
        if let Some(d) = &self.direct {
            logits += &d.infer(input);
        }
        logits
    }

    /// Adds every parameter's gradient for `d_logits = dL/do` and returns `dL/d input`.
    pub fn backward(&mut self, cache: &MadeCache<F>, d_logits: &Array2<F>) -> Array2<F> {
        let mut dx = self.backward_hidden(cache, d_logits, true);
        if let (Some(d), Some(c)) = (&mut self.direct, &cache.direct) {
            dx += &d.backward(c, d_logits);
        }
        dx
    }

    /// [`Made::backward`] without `dL/d input`, for training (it skips the largest product of
    /// the first layer's backward pass).
    pub fn backward_params(&mut self, cache: &MadeCache<F>, d_logits: &Array2<F>) {
        self.backward_hidden(cache, d_logits, false);
        if let (Some(d), Some(c)) = (&mut self.direct, &cache.direct) {
            d.backward_params(c, d_logits);
        }
    }

    fn backward_hidden(
        &mut self,
        cache: &MadeCache<F>,
        d_logits: &Array2<F>,
        want_dx: bool,
    ) -> Array2<F> {
        if self.hidden.is_empty() {
            return if want_dx {
                self.output.backward(&cache.output, d_logits)
            } else {
                self.output.backward_params(&cache.output, d_logits);
                Array2::zeros((0, 0))
            };
        }
        let mut dh = self.output.backward(&cache.output, d_logits);
        for (l, (layer, (c, a))) in self.hidden.iter_mut().zip(&cache.hidden).enumerate().rev() {
            let da = relu_backward(a, &dh);
            if l == 0 && !want_dx {
                layer.backward_params(c, &da);
                return Array2::zeros((0, 0));
            }
            dh = layer.backward(c, &da);
        }
        dh
    }
    // ANCHOR_END: forward

    // ANCHOR: nll
    /// `-ln p(x)` of every row of the data `x` (`[batch, D]`) under the logits `o` the network
    /// computed for it: the sum over variables of `-ln p(x_d | x_{<d})`, exact. Returns `[batch]`.
    pub fn nll(&self, logits: &Array2<F>, x: &ArrayRef2<F>) -> Array1<F> {
        match self.kind {
            Output::Bernoulli => bernoulli_nll(logits, &x.view()),
            Output::Categorical { classes } => {
                let log_p = self.group_log_softmax(logits);
                let k = classes;
                Zip::from(log_p.rows()).and(x.rows()).map_collect(|lp, xs| {
                    xs.iter()
                        .enumerate()
                        .fold(F::zero(), |s, (d, &v)| s - lp[d * k + class_of(v, k)])
                })
            }
        }
    }

    /// The mean over the batch of [`Made::nll`], and its gradient with respect to the logits:
    /// `(sigmoid(o) - x) / B` for Bernoulli outputs, `(softmax(o_d) - onehot(x_d)) / B` for
    /// categorical ones.
    pub fn loss(&self, logits: &Array2<F>, x: &ArrayRef2<F>) -> (F, Array2<F>) {
        let n = F::of(x.nrows().max(1) as f64);
        let loss = self.nll(logits, x).sum() / n;
        let grad = match self.kind {
            Output::Bernoulli => (sigmoid(logits) - x) / n,
            Output::Categorical { .. } => {
                let mut p = self.group_log_softmax(logits).mapv(F::exp);
                p -= &self.encode(x);
                p / n
            }
        };
        (loss, grad)
    }

    /// Log-softmax within each variable's group of `K` logits.
    fn group_log_softmax(&self, logits: &Array2<F>) -> Array2<F> {
        let (b, w) = logits.dim();
        let k = self.classes();
        let groups = logits
            .to_shape((b * w / k, k))
            .expect("logits are [batch, D K]")
            .to_owned();
        log_softmax(&groups)
            .into_shape_with_order((b, w))
            .expect("same number of entries")
    }
    // ANCHOR_END: nll

    /// `ln p(x)` of every row of `x` under the current masks, in `f64`.
    pub fn log_likelihood(&self, x: &ArrayRef2<F>) -> Array1<f64> {
        let logits = self.infer(&self.encode(x));
        self.nll(&logits, x).mapv(|v| -v.as_f64())
    }

    // ANCHOR: sample
    /// Draws `n` samples one variable at a time, in the ordering: starting from zeros, the
    /// variable of degree 1, then the one of degree 2 given it, and so on, each a full forward
    /// pass. `draw(d, p)` is handed variable `d` and the probabilities of its values (`[n, K]`,
    /// `K = 2` for Bernoulli outputs: `p(0), p(1)`) and returns the drawn values `[n]`.
    pub fn sample_with(
        &self,
        n: usize,
        mut draw: impl FnMut(usize, &Array2<F>) -> Vec<usize>,
    ) -> Array2<F> {
        let mut x = Array2::<F>::zeros((n, self.dims()));
        let k = self.classes();
        for d in self.degrees.sequence() {
            let logits = self.infer(&self.encode(&x));
            let p = if k == 1 {
                let p1 = sigmoid(&logits.column(d).to_owned().insert_axis(Axis(1)));
                let mut p = Array2::zeros((n, 2));
                p.column_mut(1).assign(&p1.column(0));
                p.column_mut(0).assign(&p1.column(0).mapv(|v| F::one() - v));
                p
            } else {
                let group = logits.slice(ndarray::s![.., d * k..(d + 1) * k]).to_owned();
                log_softmax(&group).mapv(F::exp)
            };
            for (i, v) in draw(d, &p).into_iter().enumerate() {
                x[[i, d]] = F::of(v as f64);
            }
        }
        x
    }

    /// [`Made::sample_with`] drawing each value from its probabilities with `rng`.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Array2<F> {
        self.sample_with(n, |_, p| {
            p.rows()
                .into_iter()
                .map(|row| {
                    let u = F::of(rng.random::<f64>());
                    let mut acc = F::zero();
                    for (j, &q) in row.iter().enumerate() {
                        acc += q;
                        if u < acc {
                            return j;
                        }
                    }
                    row.len() - 1
                })
                .collect()
        })
    }
    // ANCHOR_END: sample
}

/// Each entry of `degrees` repeated `k` times in place: the degrees of one-hot input units.
fn repeat(degrees: &[usize], k: usize) -> Vec<usize> {
    degrees
        .iter()
        .flat_map(|&m| std::iter::repeat_n(m, k))
        .collect()
}

fn class_of<F: Float>(v: F, k: usize) -> usize {
    let c = v.as_f64();
    assert!(
        c >= 0.0 && c < k as f64 && c.fract() == 0.0,
        "Made: value {c} is not a class index below {k}"
    );
    c as usize
}
