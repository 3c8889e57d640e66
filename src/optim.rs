//! Optimisers: stochastic gradient descent with momentum, and Adam.
//!
//! Both walk the model's parameters with the [`Params`] visitor and keep their per-parameter
//! state (velocities, moment estimates) in a list, in visiting order; the names are recorded on
//! the first step and checked on every later one, so handing an optimiser a different model is
//! caught at once.

use crate::float::{Float, c};
use crate::matmul::split_elements;
use crate::param::{ParamMut, Params};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};
use rayon::prelude::*;

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

/// Calls `update(w, g, m, v)` on every element of a parameter's values, its gradient and two
/// state arrays of its shape. When all four are contiguous in the standard order this is a loop
/// over plain slices, which the compiler turns into vector instructions (ndarray's `Zip` steps
/// by a stride only known at run time, one element at a time); a large parameter is shared
/// between threads. Each element is updated on its own either way, so the bits are the same.
fn for_each_element<F: Float>(
    mut w: ArrayViewMutD<'_, F>,
    g: ArrayViewD<'_, F>,
    m: &mut ArrayD<F>,
    v: &mut ArrayD<F>,
    update: impl Fn(&mut F, &F, &mut F, &mut F) + Send + Sync,
) {
    let split = split_elements(w.len());
    match (
        w.as_slice_mut(),
        g.as_slice(),
        m.as_slice_mut(),
        v.as_slice_mut(),
    ) {
        (Some(w), Some(g), Some(m), Some(v)) => {
            let run = |w: &mut [F], g: &[F], m: &mut [F], v: &mut [F]| {
                let each = w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
                each.for_each(|(((w, g), m), v)| update(w, g, m, v));
            };
            if split {
                let chunk = w.len().div_ceil(rayon::current_num_threads());
                (w.par_chunks_mut(chunk).zip(g.par_chunks(chunk)))
                    .zip(m.par_chunks_mut(chunk).zip(v.par_chunks_mut(chunk)))
                    .for_each(|((w, g), (m, v))| run(w, g, m, v));
            } else {
                run(w, g, m, v);
            }
        }
        _ => {
            let each = Zip::from(w).and(g).and(m).and(v);
            if split {
                each.par_for_each(update);
            } else {
                each.for_each(update);
            }
        }
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
            let update = |w: &mut F, &g: &F, m: &mut F, v: &mut F| {
                *m = b1 * *m + (F::one() - b1) * g;
                *v = b2 * *v + (F::one() - b2) * g * g;
                let m_hat = *m / correct1;
                let v_hat = *v / correct2;
                *w -= lr * m_hat / (v_hat.sqrt() + eps);
            };
            for_each_element(p.value, p.grad.view(), m, v, update);
        });
    }
}
// ANCHOR_END: adam

// ANCHOR: choice
/// Which optimiser a program trains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma and Ba, 2015).
    Adam,
    /// SGD with heavy-ball momentum.
    Sgd,
}

/// An optimiser and its settings, as a program's configuration records them (serialised as
/// three fields, `optimizer`, `lr` and `momentum`, so a config can `#[serde(flatten)]` it).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct OptimizerConfig {
    /// Which optimiser.
    pub optimizer: OptimizerKind,
    /// Its learning rate.
    pub lr: f32,
    /// SGD's momentum (recorded, but not used, by Adam).
    pub momentum: f32,
}

impl OptimizerConfig {
    /// Adam with learning rate `lr` (momentum recorded as 0.9, the SGD default).
    pub fn adam(lr: f32) -> Self {
        OptimizerConfig {
            optimizer: OptimizerKind::Adam,
            lr,
            momentum: 0.9,
        }
    }

    /// SGD with learning rate `lr` and momentum `momentum`.
    pub fn sgd(lr: f32, momentum: f32) -> Self {
        OptimizerConfig {
            optimizer: OptimizerKind::Sgd,
            lr,
            momentum,
        }
    }

    /// Checks the settings: a positive, finite learning rate and a momentum in `[0, 1)`.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            "--lr must be a positive number, got {}",
            self.lr
        );
        anyhow::ensure!(
            (0.0..1.0).contains(&self.momentum),
            "--momentum must be in [0, 1), got {}",
            self.momentum
        );
        Ok(())
    }

    /// For tables: `Adam (lr 0.001)` or `SGD (lr 0.1, momentum 0.9)`.
    pub fn describe(&self) -> String {
        match self.optimizer {
            OptimizerKind::Adam => format!("Adam (lr {})", self.lr),
            OptimizerKind::Sgd => format!("SGD (lr {}, momentum {})", self.lr, self.momentum),
        }
    }

    /// A fresh optimiser with these settings.
    pub fn build<F: Float>(&self) -> Optimizer<F> {
        match self.optimizer {
            OptimizerKind::Adam => Optimizer::Adam(Adam::new(c(f64::from(self.lr)))),
            OptimizerKind::Sgd => {
                Optimizer::Sgd(Sgd::new(c(f64::from(self.lr)), c(f64::from(self.momentum))))
            }
        }
    }
}

/// The optimiser flags of a chapter program (`#[command(flatten)]` them into its `Cli`); a flag
/// left out keeps the chapter's default, given to [`OptimizerArgs::resolve`].
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OptimizerArgs {
    /// The optimiser (default: the chapter's, see its results table).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// The learning rate (default: the chapter's).
    #[arg(long)]
    pub lr: Option<f32>,
    /// SGD's momentum, in [0, 1) (ignored by Adam; default 0.9).
    #[arg(long)]
    pub momentum: Option<f32>,
}

impl OptimizerArgs {
    /// The chapter's `default` with the given flags applied, checked.
    pub fn resolve(&self, default: OptimizerConfig) -> anyhow::Result<OptimizerConfig> {
        let config = OptimizerConfig {
            optimizer: self.optimizer.unwrap_or(default.optimizer),
            lr: self.lr.unwrap_or(default.lr),
            momentum: self.momentum.unwrap_or(default.momentum),
        };
        config.validate()?;
        Ok(config)
    }
}

/// Either optimiser behind one `step`.
#[derive(Clone, Debug)]
pub enum Optimizer<F: Float> {
    /// Adam.
    Adam(Adam<F>),
    /// SGD with momentum.
    Sgd(Sgd<F>),
}

impl<F: Float> Optimizer<F> {
    /// One update of every parameter of `model` from its accumulated gradient.
    pub fn step(&mut self, model: &mut impl Params<F>) {
        match self {
            Optimizer::Adam(a) => a.step(model),
            Optimizer::Sgd(s) => s.step(model),
        }
    }

    /// Sets the learning rate of either optimiser (for a schedule that changes it per step).
    pub fn set_lr(&mut self, lr: F) {
        match self {
            Optimizer::Adam(a) => a.lr = lr,
            Optimizer::Sgd(s) => s.lr = lr,
        }
    }
}
// ANCHOR_END: choice
