//! The LSTM chapter: gradient checks through time (the cell, a layer over several steps, two
//! stacked layers, the tanh RNN, the adding-problem model and the character model, each with
//! respect to its inputs, its initial state and every parameter), truncated BPTT cutting the
//! gradient at the window, the layer against the cell run by hand, clipping, the parameter
//! names, and the program.

mod common;

use dlfs::dropout::Dropout;
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use dlfs::loss::softmax_cross_entropy;
use dlfs::lstm::models::{CharModel, LastStep, time_major_targets, window_loss_and_backward};
use dlfs::lstm::rnn::TanhRnn;
use dlfs::lstm::{Lstm, Recurrent, StackedLstm, State, batch_major, clip_grad_norm, time_major};
use dlfs::param::{Params, grad_norm};
use ndarray::{Array1, Array2, Array3, Axis, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn smooth3(b: usize, t: usize, f: usize, k: f64) -> Array3<f64> {
    Array3::from_shape_fn((b, t, f), |(i, j, l)| {
        ((i * 13 + j * 5 + l * 3) as f64 * k).sin()
    })
}

fn smooth2(r: usize, c: usize, k: f64) -> Array2<f64> {
    Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 3) as f64 * k + 0.3).cos())
}

/// A layer with its biases moved off zero, so every gate's gradient is exercised.
fn lstm(input: usize, hidden: usize, seed: u64) -> Lstm<f64> {
    let mut layer = Lstm::new(input, hidden, &mut rng(seed));
    layer.b_x.value += &Array1::from_shape_fn(4 * hidden, |i| 0.1 * (i as f64).sin());
    layer.b_h.value += &Array1::from_shape_fn(4 * hidden, |i| 0.05 * (i as f64).cos());
    layer
}

// ---- one layer: the cell (one step) and several steps ------------------------------------

/// `L = sum(y * R) + sum(h_T * Rh) + sum(c_T * Rc)`: the outputs of every step and the final
/// state both reach the loss, so backward gets `dy` and `d_last`.
struct Probe {
    r: Array3<f64>,
    rh: Array2<f64>,
    rc: Array2<f64>,
}

impl Probe {
    fn new(b: usize, t: usize, h: usize) -> Probe {
        Probe {
            r: smooth3(b, t, h, 0.71),
            rh: smooth2(b, h, 0.43),
            rc: smooth2(b, h, 0.29),
        }
    }

    fn loss(&self, y: &Array3<f64>, last: &State<f64>) -> f64 {
        (y * &self.r).sum() + (&last.h * &self.rh).sum() + (&last.c * &self.rc).sum()
    }

    fn d_last(&self) -> State<f64> {
        State {
            h: self.rh.clone(),
            c: self.rc.clone(),
        }
    }
}

fn state(b: usize, h: usize) -> State<f64> {
    State {
        h: smooth2(b, h, 0.37).mapv(|v| 0.5 * v),
        c: smooth2(b, h, 0.61),
    }
}

/// Packs a state as `[2, batch, hidden]` so the checker can perturb it like an input.
fn pack(s: &State<f64>) -> Array3<f64> {
    ndarray::stack(Axis(0), &[s.h.view(), s.c.view()]).unwrap()
}

fn unpack(p: &Array3<f64>) -> State<f64> {
    State {
        h: p.index_axis(Axis(0), 0).to_owned(),
        c: p.index_axis(Axis(0), 1).to_owned(),
    }
}

fn check_layer(time: usize) {
    let (b, input, hidden) = (3, 4, 5);
    let mut layer = lstm(input, hidden, 1);
    let x = smooth3(b, time, input, 0.9);
    let s0 = state(b, hidden);
    let probe = Probe::new(b, time, hidden);
    // Input and every parameter.
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |m, x| {
            let (y, last, _) = m.forward(x, &s0);
            probe.loss(&y, &last)
        },
        |m, x| {
            let (_, _, cache) = m.forward(x, &s0);
            m.backward(&cache, &probe.r, Some(&probe.d_last())).0
        },
    );
    report.assert_below(TOLERANCE);
    // The initial state.
    let (_, _, cache) = layer.forward(&x, &s0);
    let (_, d0) = layer.backward(&cache, &probe.r, Some(&probe.d_last()));
    let check = GradCheck::default().input(&pack(&s0), &pack(&d0), |p| {
        let (y, last, _) = layer.forward(&x, &unpack(p));
        probe.loss(&y, &last)
    });
    check.assert_below(TOLERANCE);
}

#[test]
fn gradient_check_of_the_cell_one_step() {
    check_layer(1);
}

#[test]
fn gradient_check_of_a_layer_through_six_steps() {
    check_layer(6);
}

#[test]
fn forgetting_the_final_state_gradient_fails_the_check() {
    let (b, t, input, hidden) = (2, 4, 3, 4);
    let mut layer = lstm(input, hidden, 2);
    let x = smooth3(b, t, input, 0.8);
    let s0 = state(b, hidden);
    let probe = Probe::new(b, t, hidden);
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |m, x| {
            let (y, last, _) = m.forward(x, &s0);
            probe.loss(&y, &last)
        },
        |m, x| {
            let (_, _, cache) = m.forward(x, &s0);
            m.backward(&cache, &probe.r, None).0 // d_last dropped
        },
    );
    assert!(report.verify(TOLERANCE).is_err(), "{report}");
}

#[test]
fn the_layer_equals_the_cell_run_by_hand() {
    let (b, t, input, hidden) = (3, 7, 4, 5);
    let layer = lstm(input, hidden, 3);
    let x = smooth3(b, t, input, 1.3);
    let s0 = state(b, hidden);
    let (y, last, _) = layer.forward(&x, &s0);
    let mut s = s0.clone();
    for step in 0..t {
        s = layer.step(&x.slice(s![.., step, ..]), &s);
        let diff = (&s.h - &y.slice(s![.., step, ..])).mapv(f64::abs).sum();
        assert!(
            diff < 1e-12,
            "step {step}: the layer and the cell differ by {diff}"
        );
    }
    assert!((&s.c - &last.c).mapv(f64::abs).sum() < 1e-12);
    assert!((&s.h - &last.h).mapv(f64::abs).sum() < 1e-12);
}

#[test]
fn the_cell_by_hand_matches_the_equations() {
    // One unit, one input, weights chosen so each gate is known.
    let w_x = Array2::from_shape_vec((1, 4), vec![1.0, -1.0, 0.5, 2.0]).unwrap();
    let w_h = Array2::from_shape_vec((1, 4), vec![0.3, 0.2, -0.4, 0.1]).unwrap();
    let b_x = Array1::from_vec(vec![0.1, 1.0, 0.0, -0.2]);
    let b_h = Array1::from_vec(vec![0.0, 0.0, 0.1, 0.0]);
    let cell = Lstm::from_weights(w_x, w_h, b_x, b_h);
    let (x, h, c) = (0.7, -0.3, 0.9);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let i = sig(0.7 + 0.1 - 0.3 * 0.3);
    let f = sig(-0.7 + 1.0 - 0.3 * 0.2);
    let g = (0.35_f64 + 0.1 + 0.3 * 0.4).tanh();
    let o = sig(1.4 - 0.2 - 0.03);
    let c1 = f * c + i * g;
    let h1 = o * c1.tanh();
    let s = cell.step(
        &Array2::from_elem((1, 1), x),
        &State {
            h: Array2::from_elem((1, 1), h),
            c: Array2::from_elem((1, 1), c),
        },
    );
    assert!((s.c[[0, 0]] - c1).abs() < 1e-14 && (s.h[[0, 0]] - h1).abs() < 1e-14);
}

#[test]
fn a_new_layer_starts_with_the_forget_gate_open() {
    let layer = Lstm::<f64>::new(3, 4, &mut rng(4));
    assert_eq!(layer.b_x.value.slice(s![4..8]), Array1::<f64>::ones(4));
    assert_eq!(layer.b_x.value.slice(s![..4]), Array1::<f64>::zeros(4));
    assert_eq!(layer.b_x.value.slice(s![8..]), Array1::<f64>::zeros(8));
    assert_eq!(layer.b_h.value, Array1::<f64>::zeros(16));
    let mut layer = layer;
    layer.set_forget_bias(5.0);
    assert_eq!(layer.b_x.value.slice(s![4..8]), Array1::from_elem(4, 5.0));
    assert_eq!(layer.b_x.value.slice(s![..4]), Array1::<f64>::zeros(4));
    assert_eq!(layer.b_x.value.slice(s![8..]), Array1::<f64>::zeros(8));
}

#[test]
fn time_major_and_back_is_the_identity() {
    let x = smooth3(3, 5, 2, 0.4);
    let tm = time_major(&x);
    assert_eq!(
        tm.row(2 * 3 + 1),
        x.slice(s![1, 2, ..]),
        "row t * batch + b"
    );
    assert_eq!(batch_major(&tm, 3), x);
}

// ---- stacks, the RNN, the models -------------------------------------------------------

#[test]
fn gradient_check_of_two_stacked_layers() {
    let (b, t, input, hidden) = (2, 5, 3, 4);
    let mut stack = StackedLstm::<f64>::new(input, hidden, 2, &mut rng(5));
    for l in &mut stack.layers {
        l.b_x.value += 0.1;
    }
    let x = smooth3(b, t, input, 0.7);
    let s0 = vec![state(b, hidden), state(b, hidden).mapv_c(0.5)];
    let r = time_major(&smooth3(b, t, hidden, 0.53));
    let rh: Vec<Array2<f64>> = (0..2).map(|l| smooth2(b, hidden, 0.2 + l as f64)).collect();
    let loss = |m: &StackedLstm<f64>, x: &Array3<f64>, s0: &Vec<State<f64>>| {
        let (y, last, _) = m.forward_tm(time_major(x), b, s0);
        (&y * &r).sum()
            + last
                .iter()
                .zip(&rh)
                .map(|(s, w)| (&s.h * w).sum() + (&s.c * w).sum())
                .sum::<f64>()
    };
    let d_last: Vec<State<f64>> = rh
        .iter()
        .map(|w| State {
            h: w.clone(),
            c: w.clone(),
        })
        .collect();
    let report = GradCheck::default().layer(
        &mut stack,
        &x,
        |m, x| loss(m, x, &s0),
        |m, x| {
            let (_, _, cache) = m.forward_tm(time_major(x), b, &s0);
            batch_major(&m.backward_tm(&cache, &r, Some(&d_last)).dx, b)
        },
    );
    report.assert_below(TOLERANCE);
    assert_eq!(report.checks.len(), 9, "8 parameters and the input");
    let (_, _, cache) = stack.forward_tm(time_major(&x), b, &s0);
    let d0 = stack.backward_tm(&cache, &r, Some(&d_last)).d_state;
    for l in 0..2 {
        let check = GradCheck::default().input(&pack(&s0[l]), &pack(&d0[l]), |p| {
            let mut s = s0.clone();
            s[l] = unpack(p);
            loss(&stack, &x, &s)
        });
        check.assert_below(TOLERANCE);
    }
}

trait Halve {
    fn mapv_c(self, k: f64) -> Self;
}
impl Halve for State<f64> {
    fn mapv_c(mut self, k: f64) -> Self {
        self.c.mapv_inplace(|v| v * k);
        self
    }
}

#[test]
fn gradient_check_of_the_tanh_rnn() {
    let (b, t, input, hidden) = (3, 6, 2, 4);
    let mut rnn = TanhRnn::<f64>::new(input, hidden, &mut rng(6));
    rnn.b_x.value += 0.1;
    let x = smooth3(b, t, input, 0.9);
    let h0 = smooth2(b, hidden, 0.5);
    let r = time_major(&smooth3(b, t, hidden, 0.3));
    let rh = smooth2(b, hidden, 0.8);
    let loss = |m: &TanhRnn<f64>, x: &Array3<f64>, h0: &Array2<f64>| {
        let (y, last, _) = m.forward_tm(time_major(x), b, h0);
        (&y * &r).sum() + (&last * &rh).sum()
    };
    let report = GradCheck::default().layer(
        &mut rnn,
        &x,
        |m, x| loss(m, x, &h0),
        |m, x| {
            let (_, _, cache) = m.forward_tm(time_major(x), b, &h0);
            batch_major(&m.backward_tm(&cache, &r, Some(&rh)).dx, b)
        },
    );
    report.assert_below(TOLERANCE);
    let (_, _, cache) = rnn.forward_tm(time_major(&x), b, &h0);
    let d0 = rnn.backward_tm(&cache, &r, Some(&rh)).d_state;
    GradCheck::default()
        .input(&h0, &d0, |h| loss(&rnn, &x, h))
        .assert_below(TOLERANCE);
}

fn check_last_step<R: Recurrent<f64>>(mut model: LastStep<f64, R>) {
    let (b, t) = (3, 8);
    let x = smooth3(b, t, 2, 1.1);
    let target = smooth2(b, 1, 0.9);
    let report = GradCheck::default().layer(
        &mut model,
        &x,
        |m, x| dlfs::loss::mse(&m.infer(x), &target).0,
        |m, x| {
            let (y, cache) = m.forward(x);
            let (_, dy) = dlfs::loss::mse(&y, &target);
            m.backward(&cache, &dy).0
        },
    );
    report.assert_below(TOLERANCE);
}

#[test]
fn gradient_check_of_the_adding_models() {
    let mut r = rng(7);
    check_last_step(LastStep::new(lstm(2, 5, 8), 1, &mut r));
    check_last_step(LastStep::new(TanhRnn::<f64>::new(2, 5, &mut r), 1, &mut r));
}

#[test]
fn the_adding_model_reads_the_last_time_step_of_every_sequence() {
    // The study notes' wrapper read batch element 4 instead of the last step; here changing a
    // sequence's last input changes its prediction and no other's.
    let mut r = rng(9);
    let model = LastStep::new(Lstm::<f64>::new(2, 4, &mut r), 1, &mut r);
    let x = smooth3(5, 6, 2, 0.6);
    let y = model.infer(&x);
    let mut x2 = x.clone();
    x2[[2, 5, 0]] += 1.0;
    let y2 = model.infer(&x2);
    for b in 0..5 {
        let changed = (y[[b, 0]] - y2[[b, 0]]).abs() > 1e-9;
        assert_eq!(changed, b == 2, "sequence {b}");
    }
    // And the prediction is the head applied to the layer's output at the last step.
    let (hs, _, _) = model.rnn.forward(&x, &State::zeros(5, 4));
    let by_hand = model.head.infer(&hs.slice(s![.., 5, ..]));
    assert!((&by_hand - &y).mapv(f64::abs).sum() < 1e-12);
}

fn char_model(dropout: f64, depth: usize) -> CharModel<f64> {
    let mut m = CharModel::new(7, 3, 4, depth, Dropout::new(dropout).unwrap(), &mut rng(10));
    for l in &mut m.lstm.layers {
        l.b_h.value += 0.1;
    }
    m.out.b.value += 0.05;
    m
}

fn ids(b: usize, t: usize, k: usize) -> Array2<usize> {
    Array2::from_shape_fn((b, t), |(i, j)| (i * 3 + j * k + j * j) % 7)
}

fn char_loss(
    m: &CharModel<f64>,
    inputs: &Array2<usize>,
    targets: &Array2<usize>,
    s0: &[State<f64>],
) -> f64 {
    let (logits, _, _) = m.forward_train(inputs, s0, &mut rng(11));
    softmax_cross_entropy(&logits, &time_major_targets(targets)).0
}

#[test]
fn gradient_check_of_the_character_model_with_dropout() {
    // Every parameter (the embedding among them) and the initial state of both layers; the
    // dropout masks are fixed by drawing them from an identically seeded generator each time.
    let (b, t) = (2, 5);
    let (inputs, targets) = (ids(b, t, 2), ids(b, t, 5));
    let mut model = char_model(0.3, 2);
    let s0 = vec![state(b, 4), state(b, 4).mapv_c(-0.5)];
    let report = GradCheck::default().params(
        &mut model,
        |m| char_loss(m, &inputs, &targets, &s0),
        |m| {
            let (logits, _, cache) = m.forward_train(&inputs, &s0, &mut rng(11));
            let (_, d) = softmax_cross_entropy(&logits, &time_major_targets(&targets));
            m.backward(&cache, &d);
        },
    );
    report.assert_below(TOLERANCE);
    assert_eq!(
        report.checks.len(),
        11,
        "embedding, 2 x 4 LSTM arrays, the output layer's two"
    );
    let (logits, _, cache) = model.forward_train(&inputs, &s0, &mut rng(11));
    let (_, d) = softmax_cross_entropy(&logits, &time_major_targets(&targets));
    let d0 = model.backward(&cache, &d);
    for l in 0..2 {
        GradCheck::default()
            .input(&pack(&s0[l]), &pack(&d0[l]), |p| {
                let mut s = s0.clone();
                s[l] = unpack(p);
                char_loss(&model, &inputs, &targets, &s)
            })
            .assert_below(TOLERANCE);
    }
}

// ANCHOR: truncated
#[test]
fn truncated_bptt_cuts_the_gradient_at_the_window() {
    // Two windows of one stream. The second window's training step starts from the state the
    // first ended in, held constant: its gradient is that of the second window's loss with the
    // carried state fixed, and it is not the gradient of the same loss with the state
    // recomputed from the parameters (which would flow back into the first window).
    let (b, t) = (2, 4);
    let text: Vec<usize> = (0..2 * t + 1).map(|i| (i * i + 3 * i) % 7).collect();
    let w = |k: usize| {
        let at = |shift: usize| {
            Array2::from_shape_fn((b, t), |(r, j)| (text[k * t + j + shift] + r) % 7)
        };
        (at(0), at(1))
    };
    let ((in1, _), (in2, tg2)) = (w(0), w(1));
    let mut model = char_model(0.0, 1);
    let carried = model.infer(&in1, &model.zero_state(b)).1;
    let backward = |m: &mut CharModel<f64>| {
        window_loss_and_backward(m, &in2, &tg2, &carried, &mut rng(12));
    };
    let truncated =
        GradCheck::default().params(&mut model, |m| char_loss(m, &in2, &tg2, &carried), backward);
    truncated.assert_below(TOLERANCE);
    let through = GradCheck::default().params(
        &mut model,
        |m| {
            let s = m.infer(&in1, &m.zero_state(b)).1;
            char_loss(m, &in2, &tg2, &s)
        },
        backward,
    );
    let failure = through
        .verify(TOLERANCE)
        .expect_err("the gradient through both windows differs");
    assert!(
        failure
            .failures
            .iter()
            .any(|(name, _)| name.starts_with("lstm")),
        "{failure}"
    );
}
// ANCHOR_END: truncated

#[test]
fn carrying_the_state_across_windows_equals_one_long_window() {
    let model = char_model(0.0, 2);
    let long = ids(3, 10, 3);
    let (whole, _) = model.infer(&long, &model.zero_state(3));
    let (first, s) = model.infer(&long.slice(s![.., ..6]).to_owned(), &model.zero_state(3));
    let (second, _) = model.infer(&long.slice(s![.., 6..]).to_owned(), &s);
    let joined = ndarray::concatenate(Axis(0), &[first.view(), second.view()]).unwrap();
    assert!((&joined - &whole).mapv(f64::abs).sum() < 1e-12);
    // Resetting instead gives other predictions for the second window.
    let (reset, _) = model.infer(&long.slice(s![.., 6..]).to_owned(), &model.zero_state(3));
    assert!((&reset - &second).mapv(f64::abs).sum() > 1e-6);
}

// ---- clipping, parameters ---------------------------------------------------------------

#[test]
fn clipping_shortens_the_gradient_and_keeps_its_direction() {
    let mut layer = lstm(3, 4, 13);
    let mut k = 0.0;
    layer.visit("", &mut |_, mut p| {
        p.grad.mapv_inplace(|_| {
            k += 1.0;
            (k * 0.77_f64).sin()
        })
    });
    let before: Vec<f64> = grads(&layer);
    let norm = grad_norm(&layer);
    assert!(norm > 1.0);
    assert_eq!(clip_grad_norm(&mut layer, 1.0), norm);
    assert!((grad_norm(&layer) - 1.0).abs() < 1e-12);
    for (a, b) in grads(&layer).iter().zip(&before) {
        assert!((a * norm - b).abs() < 1e-12, "same direction, shorter");
    }
    // Under the threshold nothing changes.
    let now = grads(&layer);
    clip_grad_norm(&mut layer, 10.0);
    assert_eq!(grads(&layer), now);
}

fn grads(m: &impl Params<f64>) -> Vec<f64> {
    let mut out = Vec::new();
    m.visit_ref("", &mut |_, p| out.extend(p.grad.iter().copied()));
    out
}

#[test]
fn parameter_names_and_counts() {
    let (i, h) = (3, 5);
    let mut r = rng(14);
    let per_layer = |i: usize| i * 4 * h + h * 4 * h + 2 * 4 * h;
    common::assert_params(
        &mut Lstm::<f64>::new(i, h, &mut r),
        &["w_x", "w_h", "b_x", "b_h"],
        per_layer(i),
    );
    common::assert_params(
        &mut StackedLstm::<f64>::new(i, h, 2, &mut r),
        &[
            "layers.0.w_x",
            "layers.0.w_h",
            "layers.0.b_x",
            "layers.0.b_h",
            "layers.1.w_x",
            "layers.1.w_h",
            "layers.1.b_x",
            "layers.1.b_h",
        ],
        per_layer(i) + per_layer(h),
    );
    common::assert_params(
        &mut TanhRnn::<f64>::new(i, h, &mut r),
        &["w_x", "w_h", "b_x", "b_h"],
        i * h + h * h + 2 * h,
    );
    common::assert_params(
        &mut LastStep::new(Lstm::<f64>::new(2, h, &mut r), 1, &mut r),
        &[
            "rnn.w_x", "rnn.w_h", "rnn.b_x", "rnn.b_h", "head.w", "head.b",
        ],
        per_layer(2) + h + 1,
    );
    let (v, e) = (7, 3);
    common::assert_params(
        &mut CharModel::<f64>::new(v, e, h, 1, Dropout::new(0.0).unwrap(), &mut r),
        &[
            "embed.table",
            "lstm.layers.0.w_x",
            "lstm.layers.0.w_h",
            "lstm.layers.0.b_x",
            "lstm.layers.0.b_h",
            "out.w",
            "out.b",
        ],
        v * e + per_layer(e) + h * v + v,
    );
}

// ---- the adding problem's data ----------------------------------------------------------

#[test]
fn adding_sequences_have_two_markers_and_the_papers_target() {
    let (x, y) = dlfs::lstm::adding::sequences::<f64>(200, 30, &mut rng(15));
    for s in 0..200 {
        let marked: Vec<usize> = (0..30).filter(|&t| x[[s, t, 1]] == 1.0).collect();
        assert_eq!(marked.len(), 2, "sequence {s}");
        assert!(
            marked.iter().all(|&t| t < 14),
            "both among the first T / 2 - 1"
        );
        assert!(marked.iter().any(|&t| t < 10), "one among the first ten");
        assert!((0..30).all(|t| x[[s, t, 1]] == 0.0 || x[[s, t, 1]] == 1.0));
        assert!((0..30).all(|t| x[[s, t, 0]].abs() <= 1.0));
        let sum: f64 = marked.iter().map(|&t| x[[s, t, 0]]).sum();
        assert!((y[[s, 0]] - (0.5 + sum / 4.0)).abs() < 1e-15);
    }
}

// ---- the program ------------------------------------------------------------------------

use dlfs::lstm::experiment::{Cli, run};
use dlfs::runner::parse;
use std::path::Path;

fn quick(out: &Path, seed: &str) {
    common::run_quick::<Cli>("lstm", out, seed, run);
}

fn json(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

const OUTPUTS: [&str; 5] = [
    "adding-accuracy.svg",
    "adding-gradients.svg",
    "char-bpc.svg",
    "adding.md",
    "char.md",
];

#[test]
fn quick_run_writes_well_formed_outputs_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    quick(dir.path(), "3");
    for name in OUTPUTS.iter().filter(|n| n.ends_with(".svg")) {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>") && text.len() > 500,
            "{name}"
        );
    }
    let (adding, char) = (
        json(dir.path(), "adding.json"),
        json(dir.path(), "char.json"),
    );
    let (adding, char) = (&adding["report"], &char["report"]);
    // The adding problem: both models' validation MSE falls from its first check.
    for m in ["lstm", "rnn"] {
        let curve = adding[m]["curve"].as_array().unwrap();
        let mse: Vec<f64> = curve.iter().map(|p| p[2].as_f64().unwrap()).collect();
        assert!(mse.iter().all(|v| v.is_finite()));
        assert_eq!(adding[m]["dh_norms_initial"].as_array().unwrap().len(), 20);
        let t = adding[m]["test_correct"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&t));
    }
    // The character model: validation bits per character fall, from well below the uniform
    // guess, log2(75) = 6.23.
    let curve = char["run"]["curve"].as_array().unwrap();
    let val: Vec<f64> = curve.iter().map(|p| p[2].as_f64().unwrap()).collect();
    assert!(
        val[0] < 6.3 && *val.last().unwrap() < val[0] - 0.5 && val.windows(2).all(|w| w[1] < w[0]),
        "{val:?}"
    );
    // The table's rows are the run's numbers.
    let table = std::fs::read_to_string(dir.path().join("char.md")).unwrap();
    let test = char["test_bpc"].as_f64().unwrap();
    assert!(table.contains(&format!("**{test:.4}**")), "{table}");
    let ngram = char["ngram"].as_array().unwrap();
    assert_eq!(ngram.len(), 3);
    for row in ngram {
        assert!(
            table.contains(&format!("| {:.4} |", row[2].as_f64().unwrap())),
            "{table}"
        );
    }
    let adding_md = std::fs::read_to_string(dir.path().join("adding.md")).unwrap();
    let lstm = &adding["lstm"];
    assert!(
        adding_md.contains(&format!(
            "| {} |",
            dlfs::runner::pct(lstm["test_correct"].as_f64().unwrap())
        )),
        "{adding_md}"
    );
    let samples = std::fs::read_to_string(dir.path().join("samples.md")).unwrap();
    assert_eq!(
        samples.matches("```text\nElizabeth").count(),
        3,
        "{samples}"
    );
}

#[test]
fn the_same_seed_reproduces_the_outputs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    quick(a.path(), "5");
    quick(b.path(), "5");
    quick(c.path(), "6");
    for name in OUTPUTS.iter().chain(&["samples.md"]) {
        let read = |d: &tempfile::TempDir| std::fs::read(d.path().join(name)).unwrap();
        assert!(
            read(&a) == read(&b),
            "{name} differs between two runs with the same seed"
        );
    }
    for name in ["adding.md", "char.md"] {
        let read = |d: &tempfile::TempDir| std::fs::read(d.path().join(name)).unwrap();
        assert!(
            read(&a) != read(&c),
            "{name}: another seed should give other numbers"
        );
    }
}

#[test]
fn a_saved_character_model_loads_and_scores_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("char.safetensors");
    let out = dir.path().join("a");
    let f = file.to_str().unwrap();
    let cli: Cli = parse([
        "lstm",
        "--quick",
        "--part",
        "char",
        "--save",
        f,
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    run(cli).unwrap();
    let out2 = dir.path().join("b");
    let cli: Cli = parse([
        "lstm",
        "--quick",
        "--part",
        "char",
        "--load",
        f,
        "--out",
        out2.to_str().unwrap(),
    ])
    .unwrap();
    run(cli).unwrap();
    let (a, b) = (json(&out, "char.json"), json(&out2, "char.json"));
    assert_eq!(a["report"]["test_bpc"], b["report"]["test_bpc"]);
    assert!(b["report"]["run"].is_null());
    assert!(
        !out2.join("adding.json").exists(),
        "--part char runs the character model only"
    );
}

#[test]
fn bad_flags_are_errors() {
    for args in [
        vec!["lstm", "--bogus"],
        vec!["lstm", "--time", "2"],
        vec!["lstm", "--char-hidden", "0"],
        vec!["lstm", "--batch", "0"],
        vec!["lstm", "--part", "all"],
        vec!["lstm", "--save", "a", "--load", "b"],
    ] {
        assert!(parse::<Cli>(args.clone()).is_err(), "{args:?} was accepted");
    }
    for (flag, value) in [
        ("--char-lr", "NaN"),
        ("--lstm-lr", "-1"),
        ("--rnn-lr", "0"),
        ("--dropout", "1"),
        ("--epochs", "3"),
    ] {
        let cli: Cli = parse(["lstm", "--quick", &format!("{flag}={value}")]).unwrap();
        let e = run(cli).unwrap_err().to_string();
        assert!(
            e.contains(flag) || e.contains("dropout rate"),
            "{flag} {value}: {e}"
        );
    }
}

#[test]
fn the_program_fails_in_one_line_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let text_dir = dir.path().join("data").join("text");
    std::fs::create_dir_all(&text_dir).unwrap();
    std::fs::write(text_dir.join("pride-and-prejudice.txt"), "too short").unwrap();
    let g = garbage.display().to_string();
    let d = dir.path().join("data").display().to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["--bogus"], 2, "--bogus"),
        (vec!["--quick", "--data", "/no/such/dir"], 1, "/no/such/dir"),
        (
            vec!["--quick", "--part", "char", "--data", &d],
            1,
            "too few",
        ),
        (
            vec!["--quick", "--part", "char", "--load", &g],
            1,
            "not a safetensors file",
        ),
        (vec!["--quick", "--load", &g], 1, "--part char"),
    ];
    for (args, code, needle) in cases {
        common::assert_fails_in_one_line("lstm", &args, code, needle);
    }
}

#[test]
fn the_tuning_sweep_changes_one_setting_at_a_time_and_scores_every_configuration() {
    use dlfs::lstm::experiment::tune_configs;
    let cli: Cli = parse(["lstm", "--quick"]).unwrap();
    let configs = tune_configs(&cli).unwrap();
    let reference = serde_json::to_value(&configs[0].2).unwrap();
    assert_eq!(configs[0].0, "reference");
    for (knob, value, config) in &configs[1..] {
        let c = serde_json::to_value(config).unwrap();
        let changed: Vec<&String> = c
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| reference[k.as_str()] != **v)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(changed.len(), 1, "{knob} {value} changed {changed:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let cli: Cli = parse([
        "lstm",
        "--quick",
        "--part",
        "tune",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    run(cli).unwrap();
    let rows = json(&out, "tuning.json")["report"]["rows"].clone();
    assert_eq!(rows.as_array().unwrap().len(), configs.len());
    for row in rows.as_array().unwrap() {
        let bpc = row["validation_bpc"].as_f64().unwrap();
        assert!(bpc.is_finite() && bpc > 0.0, "{row}");
    }
    let table = std::fs::read_to_string(out.join("char-tuning.md")).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| ")).count(),
        configs.len() + 1
    );
    assert!(!out.join("char.json").exists() && !out.join("adding.json").exists());
}
