//! Optimisers: stochastic gradient descent with momentum, and Adam.
//!
//! Both walk the model's parameters with the [`Params`] visitor and keep their per-parameter
//! state (velocities, moment estimates) in a list, in visiting order; the names are recorded on
//! the first step and checked on every later one, so handing an optimiser a different model is
//! caught at once.

use crate::float::{Float, c};
use crate::param::{ParamMut, Params};
use ndarray::{ArrayD, Zip};

/// Per-parameter state arrays, created on the first step and matched by name afterwards.
#[derive(Clone, Debug, Default)]
struct Slots<F> {
    names: Vec<String>,
    arrays: Vec<Vec<ArrayD<F>>>,
}

impl<F: Float> Slots<F> {
    /// Calls `update(param, state)` for each parameter, where `state` holds `per_param`
    /// zero-initialised arrays of the parameter's shape.
    fn for_each(
        &mut self,
        model: &mut impl Params<F>,
        per_param: usize,
        mut update: impl FnMut(ParamMut<'_, F>, &mut [ArrayD<F>]),
    ) {
        let first = self.names.is_empty();
        let mut i = 0;
        model.visit("", &mut |name, p| {
            if first {
                self.names.push(name.to_string());
                self.arrays
                    .push(vec![ArrayD::zeros(p.value.raw_dim()); per_param]);
            }
            assert!(
                i < self.names.len() && self.names[i] == name,
                "optimiser: parameter {i} is `{name}`, but the optimiser was set up for `{}`",
                self.names.get(i).map_or("nothing", |s| s.as_str())
            );
            update(p, &mut self.arrays[i]);
            i += 1;
        });
        assert_eq!(i, self.names.len(), "optimiser: the model lost parameters");
    }
}

// ANCHOR: sgd
/// SGD with (heavy-ball) momentum:
/// `v <- mu v + g`, `theta <- theta - lr v`. With `momentum = 0` it is plain SGD.
#[derive(Clone, Debug)]
pub struct Sgd<F: Float> {
    /// Learning rate.
    pub lr: F,
    /// Momentum coefficient `mu`, in `[0, 1)`.
    pub momentum: F,
    state: Slots<F>,
}

impl<F: Float> Sgd<F> {
    /// An optimiser with the given learning rate and momentum.
    pub fn new(lr: F, momentum: F) -> Self {
        Sgd {
            lr,
            momentum,
            state: Slots::default(),
        }
    }

    /// One update of every parameter from its accumulated gradient.
    pub fn step(&mut self, model: &mut impl Params<F>) {
        let (lr, mu) = (self.lr, self.momentum);
        self.state.for_each(model, 1, |p, s| {
            let v = &mut s[0];
            Zip::from(v).and(&p.grad).for_each(|v, &g| *v = mu * *v + g);
            Zip::from(p.value).and(&s[0]).for_each(|w, &v| *w -= lr * v);
        });
    }
}
// ANCHOR_END: sgd

// ANCHOR: adam
/// Adam (Kingma and Ba, 2015): running means of the gradient and of its square, corrected for
/// their zero start, give each parameter its own step size:
///
/// `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`,
/// `theta <- theta - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
#[derive(Clone, Debug)]
pub struct Adam<F: Float> {
    /// Learning rate.
    pub lr: F,
    /// Decay of the first moment (0.9 in the paper).
    pub beta1: F,
    /// Decay of the second moment (0.999 in the paper).
    pub beta2: F,
    /// Added to the denominator (1e-8 in the paper).
    pub eps: F,
    t: i32,
    state: Slots<F>,
}

impl<F: Float> Adam<F> {
    /// Adam with the paper's defaults for everything but the learning rate.
    pub fn new(lr: F) -> Self {
        Adam {
            lr,
            beta1: c(0.9),
            beta2: c(0.999),
            eps: c(1e-8),
            t: 0,
            state: Slots::default(),
        }
    }

    /// The number of steps taken so far.
    pub fn steps(&self) -> i32 {
        self.t
    }

    /// One update of every parameter from its accumulated gradient.
    pub fn step(&mut self, model: &mut impl Params<F>) {
        self.t += 1;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let correct1 = F::one() - b1.powi(self.t);
        let correct2 = F::one() - b2.powi(self.t);
        let lr = self.lr;
        self.state.for_each(model, 2, |p, s| {
            let [m, v] = s else {
                unreachable!("two moments per parameter")
            };
            Zip::from(p.value)
                .and(&p.grad)
                .and(m)
                .and(v)
                .for_each(|w, &g, m, v| {
                    *m = b1 * *m + (F::one() - b1) * g;
                    *v = b2 * *v + (F::one() - b2) * g * g;
                    let m_hat = *m / correct1;
                    let v_hat = *v / correct2;
                    *w -= lr * m_hat / (v_hat.sqrt() + eps);
                });
        });
    }
}
// ANCHOR_END: adam
