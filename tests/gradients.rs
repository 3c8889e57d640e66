//! Every layer's and model's backward pass against central finite differences, in f64, and
//! every model's parameter names; then the checker's own tests, which show it rejecting each
//! kind of broken backward pass it exists to catch.

mod common;

use dlfs::activation::{self, Activation};
use dlfs::gradcheck::{GradCheck, Report, TOLERANCE};
use dlfs::linear::Linear;
use dlfs::loss::softmax_cross_entropy;
use dlfs::mlp::{FeedForward, Mlp, Residual};
use dlfs::param::{ParamMut, ParamRef, Params, zero_grads};
use ndarray::{Array, Array2, Array3, Dimension};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal<D: Dimension>(shape: D, rng: &mut ChaCha8Rng) -> Array<f64, D> {
    Array::random_using(shape, Normal::new(0.0, 1.0).unwrap(), rng)
}

/// A weighted sum of the outputs, `L = sum(g * y)`: its gradient with respect to `y` is `g`,
/// so checking `L` checks the backward pass for an arbitrary upstream gradient.
fn weighted<D: Dimension>(y: &Array<f64, D>, g: &Array<f64, D>) -> f64 {
    (y * g).sum()
}

#[test]
fn linear_layer_parameters_and_input() {
    let mut r = rng(1);
    let mut layer = Linear::<f64>::new(5, 4, &mut r);
    layer.b.value = normal(ndarray::Ix1(4), &mut r);
    let x = normal(ndarray::Ix2(3, 5), &mut r);
    let g = normal(ndarray::Ix2(3, 4), &mut r);
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| weighted(&l.infer(x), &g),
        |l, x| {
            let (_, cache) = l.forward(x);
            l.backward(&cache, &g)
        },
    );
    assert_eq!(checked(&report), ["w", "b", "input"]);
    report.assert_below(TOLERANCE);
}

#[test]
fn linear_layer_parameter_names() {
    let mut layer = Linear::<f32>::new(5, 4, &mut rng(1));
    common::assert_params(&mut layer, &["w", "b"], 5 * 4 + 4);
}

/// The names of the arrays a report checked, in its order.
fn checked(report: &Report) -> Vec<&str> {
    report.checks.iter().map(|c| c.name.as_str()).collect()
}

/// Inputs kept at least 0.1 away from zero, where ReLU has its kink.
fn away_from_zero(shape: (usize, usize), rng: &mut ChaCha8Rng) -> Array2<f64> {
    let u = Array2::random_using(shape, Uniform::new(0.1, 2.0).unwrap(), rng);
    let sign = Array2::random_using(shape, Uniform::new(0.0, 1.0).unwrap(), rng);
    ndarray::Zip::from(&u)
        .and(&sign)
        .map_collect(|&u, &s| if s < 0.5 { -u } else { u })
}

#[test]
fn activations() {
    let mut r = rng(2);
    let x = away_from_zero((4, 6), &mut r);
    let g = normal(ndarray::Ix2(4, 6), &mut r);
    let check = GradCheck::default();
    type Act = fn(&Array2<f64>) -> Array2<f64>;
    let cases: [(&str, Act, Array2<f64>); 4] = [
        ("relu", activation::relu, activation::relu_backward(&x, &g)),
        (
            "sigmoid",
            activation::sigmoid,
            activation::sigmoid_backward(&activation::sigmoid(&x), &g),
        ),
        (
            "tanh",
            activation::tanh,
            activation::tanh_backward(&activation::tanh(&x), &g),
        ),
        ("gelu", activation::gelu, activation::gelu_backward(&x, &g)),
    ];
    for (name, f, dx) in cases {
        let c = check.input(&x, &dx, |x| weighted(&f(x), &g));
        assert!(c.failures(TOLERANCE).is_empty(), "{name}: {c:?}");
    }
}

#[test]
fn softmax_cross_entropy_from_logits() {
    let mut r = rng(3);
    let z = normal(ndarray::Ix2(5, 4), &mut r) * 3.0;
    let labels = [0, 3, 1, 1, 2];
    let (_, dz) = softmax_cross_entropy(&z, &labels);
    GradCheck::default()
        .input(&z, &dz, |z| softmax_cross_entropy(z, &labels).0)
        .assert_below(TOLERANCE);
}

#[test]
fn whole_mlp() {
    let mut r = rng(4);
    let mut model = Mlp::<f64>::new(&[6, 8, 7, 3], &mut r);
    for layer in &mut model.layers {
        layer.b.value = normal(ndarray::Ix1(layer.output()), &mut r) * 0.1;
    }
    let x = normal(ndarray::Ix2(5, 6), &mut r);
    let labels = [2, 0, 1, 2, 1];
    // No hidden pre-activation may sit near ReLU's kink, where finite differences straddle it.
    let mut h = x.clone();
    for layer in &model.layers[..model.layers.len() - 1] {
        let a = layer.infer(&h);
        let closest = a.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        assert!(
            closest > 1e-3,
            "a pre-activation is {closest}: pick another seed"
        );
        h = activation::relu(&a);
    }
    // ANCHOR: mlp_check
    let loss = |m: &Mlp<f64>, x: &Array2<f64>| softmax_cross_entropy(&m.infer(x), &labels).0;
    let report = GradCheck::default().layer(&mut model, &x, loss, |m, x| {
        let (z, cache) = m.forward(x);
        let (_, dz) = softmax_cross_entropy(&z, &labels);
        m.backward(&cache, &dz)
    });
    assert_eq!(
        report.checks.len(),
        7,
        "three weights, three biases and the input"
    );
    report.assert_below(TOLERANCE);
    // ANCHOR_END: mlp_check
}

#[test]
fn mlp_parameter_names() {
    let mut model = Mlp::<f32>::new(&[6, 8, 7, 3], &mut rng(4));
    common::assert_params(
        &mut model,
        &[
            "layers.0.w",
            "layers.0.b",
            "layers.1.w",
            "layers.1.b",
            "layers.2.w",
            "layers.2.b",
        ],
        (6 * 8 + 8) + (8 * 7 + 7) + (7 * 3 + 3),
    );
}

#[test]
fn feed_forward_block_on_rows_and_sequences() {
    let mut r = rng(5);
    for activation in [Activation::Relu, Activation::Gelu] {
        let mut ff = FeedForward::<f64>::new(3, 12, activation, &mut r);
        ff.up.b.value = normal(ndarray::Ix1(12), &mut r) * 0.1;
        // [batch, time, d]
        let x = normal(ndarray::Ix3(2, 4, 3), &mut r);
        let g: Array3<f64> = normal(ndarray::Ix3(2, 4, 3), &mut r);
        let report = GradCheck::default().layer(
            &mut ff,
            &x,
            |f, x| weighted(&f.forward(x).0, &g),
            |f, x| {
                let (_, c) = f.forward(x);
                f.backward(&c, &g)
            },
        );
        assert_eq!(
            report.checks.len(),
            5,
            "{activation:?}: four parameters and the input"
        );
        report.assert_below(TOLERANCE);
        let (y, _) = ff.forward(&x);
        assert_eq!(y.shape(), x.shape());
        // Position-wise: the [batch, time, d] output equals the [batch * time, d] output.
        let rows = x.to_shape((8, 3)).unwrap().into_owned();
        let y_rows = ff.forward(&rows).0;
        assert_eq!(y.to_shape((8, 3)).unwrap().into_owned(), y_rows);
    }
}

#[test]
fn residual_feed_forward() {
    let mut r = rng(6);
    let mut block = Residual {
        block: FeedForward::<f64>::new(4, 16, Activation::Gelu, &mut r),
    };
    let x = normal(ndarray::Ix2(3, 4), &mut r);
    let g = normal(ndarray::Ix2(3, 4), &mut r);
    let report = GradCheck::default().layer(
        &mut block,
        &x,
        |b, x| weighted(&b.forward(x).0, &g),
        |b, x| {
            let (_, c) = b.forward(x);
            b.backward(&c, &g)
        },
    );
    assert_eq!(report.checks.len(), 5, "four parameters and the input");
    report.assert_below(TOLERANCE);
    // With the block's output weights at zero, the block is the identity and so is its gradient.
    block.block.down.w.value.fill(0.0);
    block.block.down.b.value.fill(0.0);
    let (y, c) = block.forward(&x);
    assert_eq!(y, x);
    assert_eq!(block.backward(&c, &g), g);
}

#[test]
fn feed_forward_and_residual_parameter_names() {
    let mut r = rng(6);
    let mut ff = FeedForward::<f32>::new(4, 16, Activation::Gelu, &mut r);
    let count = (4 * 16 + 16) + (16 * 4 + 4);
    common::assert_params(&mut ff, &["up.w", "up.b", "down.w", "down.b"], count);
    let mut block = Residual { block: ff };
    common::assert_params(
        &mut block,
        &["block.up.w", "block.up.b", "block.down.w", "block.down.b"],
        count,
    );
}

// The checker's own tests: each feeds it a deliberately broken variant and shows it is rejected.

/// A linear layer whose backward pass has a classic bug: it forgets to transpose `x`,
/// computing `dW = dy^T x` instead of `x^T dy` (the shapes agree because the layer is square).
struct BrokenLinear(Linear<f64>);

impl Params<f64> for BrokenLinear {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, f64>)) {
        self.0.visit(prefix, f);
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, f64>)) {
        self.0.visit_ref(prefix, f);
    }
}

#[test]
fn the_checker_rejects_a_wrong_backward_pass() {
    let mut r = rng(7);
    let mut layer = BrokenLinear(Linear::new(4, 4, &mut r));
    let x = normal(ndarray::Ix2(4, 4), &mut r);
    let g = normal(ndarray::Ix2(4, 4), &mut r);
    let report = GradCheck::default().params(
        &mut layer,
        |l| weighted(&l.0.infer(&x), &g),
        |l| {
            l.0.w.grad += &g.t().dot(&x);
            l.0.b.grad += &g.sum_axis(ndarray::Axis(0));
        },
    );
    let w = &report.checks[0];
    let b = &report.checks[1];
    assert!(w.rel_error > 0.1, "the bug went unnoticed: {report}");
    assert!(b.rel_error < TOLERANCE, "the bias was right: {report}");
    assert_eq!(failed(&report), ["w"]);
    let caught = std::panic::catch_unwind(|| report.assert_below(TOLERANCE));
    assert!(caught.is_err());
}

#[test]
fn subsampled_check_matches_the_full_one() {
    let mut r = rng(8);
    let mut layer = Linear::<f64>::new(30, 20, &mut r);
    let x = normal(ndarray::Ix2(4, 30), &mut r);
    let g = normal(ndarray::Ix2(4, 20), &mut r);
    let check = GradCheck {
        max_per_array: Some(25),
        ..GradCheck::default()
    };
    let report = check.params(
        &mut layer,
        |l| weighted(&l.infer(&x), &g),
        |l| {
            let (_, c) = l.forward(&x);
            l.backward(&c, &g);
        },
    );
    assert_eq!(report.checks[0].checked, 25);
    assert_eq!(report.checks[1].checked, 20);
    report.assert_below(TOLERANCE);
}

/// The names of the arrays that fail at [`TOLERANCE`], each once, in report order.
fn failed(report: &Report) -> Vec<String> {
    let mut names: Vec<String> = match report.verify(TOLERANCE) {
        Ok(()) => return Vec::new(),
        Err(failure) => failure.failures.into_iter().map(|(name, _)| name).collect(),
    };
    names.dedup();
    names
}

/// Why the array `name` fails at [`TOLERANCE`], all reasons in one string.
fn why(report: &Report, name: &str) -> String {
    let failure = report.verify(TOLERANCE).expect_err("the check passed");
    let reasons: Vec<String> = failure
        .failures
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, why)| why)
        .collect();
    assert!(!reasons.is_empty(), "`{name}` did not fail:\n{report}");
    reasons.join("; ")
}

/// A small problem for the negative tests: a 4-by-4 linear layer (square, so that a missing
/// transpose keeps its shape), an input and an upstream gradient.
fn square_layer(seed: u64) -> (Linear<f64>, Array2<f64>, Array2<f64>) {
    let mut r = rng(seed);
    let mut layer = Linear::<f64>::new(4, 4, &mut r);
    layer.b.value = normal(ndarray::Ix1(4), &mut r);
    (
        layer,
        normal(ndarray::Ix2(3, 4), &mut r),
        normal(ndarray::Ix2(3, 4), &mut r),
    )
}

#[test]
fn the_right_backward_passes_and_leaves_the_gradients_of_one_backward() {
    let (mut layer, x, g) = square_layer(20);
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| weighted(&l.infer(x), &g),
        |l, x| {
            let (_, c) = l.forward(x);
            l.backward(&c, &g)
        },
    );
    report.assert_below(TOLERANCE);
    for c in &report.checks[..2] {
        assert!(c.accumulation_error.unwrap() < 1e-14, "{report}");
    }
    // The check leaves the model as zeroing the gradients and one backward pass would.
    let mut fresh = layer.clone();
    zero_grads(&mut fresh);
    let (_, c) = fresh.forward(&x);
    fresh.backward(&c, &g);
    assert_eq!(layer.w.grad, fresh.w.grad);
    assert_eq!(layer.b.grad, fresh.b.grad);
}

#[test]
fn a_backward_that_writes_nan_fails_and_names_the_parameter() {
    let (mut layer, x, g) = square_layer(21);
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| weighted(&l.infer(x), &g),
        |l, x| {
            let (_, c) = l.forward(x);
            let dx = l.backward(&c, &g);
            l.b.grad[2] = f64::NAN;
            dx
        },
    );
    assert_eq!(failed(&report), ["b"]);
    assert!(why(&report, "b").contains("not finite"), "{report}");
    assert!(report.max_rel_error().is_nan());
    // f64::max would have dropped the NaN: the old fold reported the weight's tiny error.
    assert_eq!(f64::max(1e-9, f64::NAN), 1e-9);
    let message = std::panic::catch_unwind(|| report.assert_below(TOLERANCE))
        .expect_err("assert_below accepted a NaN gradient");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("`b`") && message.contains("not finite"),
        "{message}"
    );
}

#[test]
fn an_infinite_input_gradient_fails() {
    let (mut layer, x, g) = square_layer(22);
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| weighted(&l.infer(x), &g),
        |l, x| {
            let (_, c) = l.forward(x);
            let mut dx = l.backward(&c, &g);
            dx[[1, 1]] = f64::INFINITY;
            dx
        },
    );
    assert_eq!(failed(&report), ["input"]);
    assert!(why(&report, "input").contains("inf"), "{report}");
}

#[test]
fn a_loss_that_is_nan_fails() {
    let (mut layer, x, g) = square_layer(23);
    let backward = |l: &mut Linear<f64>, x: &Array2<f64>| {
        let (_, c) = l.forward(x);
        l.backward(&c, &g)
    };
    // NaN everywhere: every array fails, saying the loss itself is NaN.
    let nan = GradCheck::default().layer(&mut layer, &x, |_, _| f64::NAN, backward);
    assert_eq!(failed(&nan), ["w", "b", "input"]);
    assert!(why(&nan, "w").contains("the loss is NaN"), "{nan}");
    // NaN only once one weight is nudged upwards: that weight's numerical gradient is NaN.
    let w01 = layer.w.value[[0, 1]];
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| {
            if l.w.value[[0, 1]] > w01 {
                f64::NAN
            } else {
                weighted(&l.infer(x), &g)
            }
        },
        backward,
    );
    assert_eq!(failed(&report), ["w"]);
    assert!(
        why(&report, "w").contains("numerical gradient is not finite at 1 of 16 coordinates"),
        "{report}"
    );
}

#[test]
fn a_backward_that_assigns_instead_of_adding_fails() {
    let (mut layer, x, g) = square_layer(24);
    // `grad = ...` instead of `grad += ...`: right from zero, wrong for BPTT and tied weights.
    let report = GradCheck::default().params(
        &mut layer,
        |l| weighted(&l.infer(&x), &g),
        |l| {
            l.w.grad.assign(&x.t().dot(&g));
            l.b.grad.assign(&g.sum_axis(ndarray::Axis(0)));
        },
    );
    // The gradients themselves are right: only the accumulation test sees the bug.
    assert!(
        report.checks.iter().all(|c| c.rel_error < TOLERANCE),
        "{report}"
    );
    assert_eq!(failed(&report), ["w", "b"]);
    assert!(
        why(&report, "w").contains("does not add into `grad`"),
        "{report}"
    );
    // Clearing the gradients inside backward is the same bug.
    let report = GradCheck::default().params(
        &mut layer,
        |l| weighted(&l.infer(&x), &g),
        |l| {
            zero_grads(l);
            let (_, c) = l.forward(&x);
            l.backward(&c, &g);
        },
    );
    assert_eq!(failed(&report), ["w", "b"]);
}

#[test]
fn a_wrong_input_gradient_fails_the_layer_check() {
    let (mut layer, x, g) = square_layer(25);
    // The parameter gradients are right, dL/dx forgets the transpose: dy W instead of dy W^T.
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| weighted(&l.infer(x), &g),
        |l, x| {
            let (_, c) = l.forward(x);
            l.backward(&c, &g);
            g.dot(&l.w.value)
        },
    );
    assert_eq!(failed(&report), ["input"]);
    assert!(why(&report, "input").contains("relative error"), "{report}");
    // An input gradient of the wrong shape fails too, without a panic.
    let report = GradCheck::default().layer(
        &mut layer,
        &x,
        |l, x| weighted(&l.infer(x), &g),
        |l, x| {
            let (_, c) = l.forward(x);
            l.backward(&c, &g);
            Array2::zeros((2, 4))
        },
    );
    assert!(why(&report, "input").contains("[2, 4]"), "{report}");
}

/// Two layers in a row, `y = (x W_1 + b_1) W_2 + b_2`, whose `visit` forgets the second: the
/// optimiser would never train it, checkpoints would not save it, and the gradient check
/// cannot see it.
#[derive(Clone)]
struct Forgetful {
    first: Linear<f64>,
    second: Linear<f64>,
}

impl Params<f64> for Forgetful {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, f64>)) {
        self.first.visit(&dlfs::param::join(prefix, "first"), f);
        // BUG: self.second is never visited.
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, f64>)) {
        self.first.visit_ref(&dlfs::param::join(prefix, "first"), f);
        // The same bug in the read-only walk.
    }
}

#[test]
fn a_forgotten_parameter_passes_the_gradient_check_but_fails_the_name_test() {
    let mut r = rng(26);
    let mut model = Forgetful {
        first: Linear::new(3, 4, &mut r),
        second: Linear::new(4, 2, &mut r),
    };
    let x = normal(ndarray::Ix2(5, 3), &mut r);
    let g = normal(ndarray::Ix2(5, 2), &mut r);
    let report = GradCheck::default().layer(
        &mut model,
        &x,
        |m, x| weighted(&m.second.infer(&m.first.infer(x)), &g),
        |m, x| {
            let (h, c1) = m.first.forward(x);
            let (_, c2) = m.second.forward(&h);
            let dh = m.second.backward(&c2, &g);
            m.first.backward(&c1, &dh)
        },
    );
    // Everything the checker was shown is right, so it passes: it cannot see `second`.
    report.assert_below(TOLERANCE);
    assert_eq!(checked(&report), ["first.w", "first.b", "input"]);
    // The model's parameter-name test, written from its architecture, catches it.
    let caught = std::panic::catch_unwind(move || {
        common::assert_params(
            &mut model,
            &["first.w", "first.b", "second.w", "second.b"],
            (3 * 4 + 4) + (4 * 2 + 2),
        );
    });
    assert!(caught.is_err(), "the name test missed the forgotten layer");
}

/// Something with no parameters at all, or whose `visit` is empty by mistake.
struct Nothing;

impl Params<f64> for Nothing {
    fn visit(&mut self, _: &str, _: &mut dyn FnMut(&str, ParamMut<'_, f64>)) {}
    fn visit_ref(&self, _: &str, _: &mut dyn FnMut(&str, ParamRef<'_, f64>)) {}
}

#[test]
fn a_report_that_checked_nothing_fails() {
    assert!(Report::default().verify(TOLERANCE).is_err());
    assert_eq!(Report::default().max_rel_error(), f64::INFINITY);
    let x = normal(ndarray::Ix2(2, 3), &mut rng(27));
    let report = GradCheck::default().layer(
        &mut Nothing,
        &x,
        |_, x| x.sum(),
        |_, x| Array2::ones(x.raw_dim()),
    );
    assert_eq!(failed(&report), ["parameters"]);
    assert!(
        why(&report, "parameters").contains("no parameter"),
        "{report}"
    );
    assert!(
        report.checks.last().unwrap().failures(TOLERANCE).is_empty(),
        "dx was right"
    );
}
