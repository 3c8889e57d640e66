//! Every layer's and model's backward pass against central finite differences, in f64.

use dlfs::activation::{self, Activation};
use dlfs::gradcheck::{GradCheck, TOLERANCE};
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
    let check = GradCheck::default();
    let report = check.params(
        &mut layer,
        |l| weighted(&l.infer(&x), &g),
        |l| {
            let (_, cache) = l.forward(&x);
            l.backward(&cache, &g);
        },
    );
    report.assert_below(TOLERANCE);
    let (_, cache) = layer.forward(&x);
    let dx = layer.backward(&cache, &g);
    let c = check.input(&x, &dx, |x| weighted(&layer.infer(x), &g));
    assert!(c.rel_error < TOLERANCE, "dx: {c:?}");
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
        assert!(c.rel_error < TOLERANCE, "{name}: {c:?}");
    }
}

#[test]
fn softmax_cross_entropy_from_logits() {
    let mut r = rng(3);
    let z = normal(ndarray::Ix2(5, 4), &mut r) * 3.0;
    let labels = [0, 3, 1, 1, 2];
    let (_, dz) = softmax_cross_entropy(&z, &labels);
    let c = GradCheck::default().input(&z, &dz, |z| softmax_cross_entropy(z, &labels).0);
    assert!(c.rel_error < TOLERANCE, "{c:?}");
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
    let check = GradCheck::default();
    let report = check.params(
        &mut model,
        |m| loss(m, &x),
        |m| {
            let (z, cache) = m.forward(&x);
            let (_, dz) = softmax_cross_entropy(&z, &labels);
            m.backward(&cache, &dz);
        },
    );
    assert_eq!(report.checks.len(), 6, "three weights and three biases");
    report.assert_below(TOLERANCE);
    // ANCHOR_END: mlp_check
    zero_grads(&mut model);
    let (z, cache) = model.forward(&x);
    let dx = model.backward(&cache, &softmax_cross_entropy(&z, &labels).1);
    let c = check.input(&x, &dx, |x| loss(&model, x));
    assert!(c.rel_error < TOLERANCE, "dx: {c:?}");
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
        let check = GradCheck::default();
        check
            .params(
                &mut ff,
                |f| weighted(&f.forward(&x).0, &g),
                |f| {
                    let (_, c) = f.forward(&x);
                    f.backward(&c, &g);
                },
            )
            .assert_below(TOLERANCE);
        let (y, c) = ff.forward(&x);
        assert_eq!(y.shape(), x.shape());
        let dx = ff.backward(&c, &g);
        let ci = check.input(&x, &dx, |x| weighted(&ff.forward(x).0, &g));
        assert!(ci.rel_error < TOLERANCE, "{activation:?} dx: {ci:?}");
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
    let check = GradCheck::default();
    check
        .params(
            &mut block,
            |b| weighted(&b.forward(&x).0, &g),
            |b| {
                let (_, c) = b.forward(&x);
                b.backward(&c, &g);
            },
        )
        .assert_below(TOLERANCE);
    let (_, c) = block.forward(&x);
    let dx = block.backward(&c, &g);
    let ci = check.input(&x, &dx, |x| weighted(&block.forward(x).0, &g));
    assert!(ci.rel_error < TOLERANCE, "dx: {ci:?}");
    // With the block's output weights at zero, the block is the identity and so is its gradient.
    block.block.down.w.value.fill(0.0);
    block.block.down.b.value.fill(0.0);
    let (y, c) = block.forward(&x);
    assert_eq!(y, x);
    assert_eq!(block.backward(&c, &g), g);
}

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
