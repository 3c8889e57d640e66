//! The optimisers against steps computed by hand.

use dlfs::optim::{Adam, Sgd};
use dlfs::param::{Param1, ParamMut, ParamRef, Params};
use ndarray::array;

/// One parameter vector with a gradient we set by hand.
struct One(Param1<f64>);

impl Params<f64> for One {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, ParamMut<'_, f64>)) {
        self.0.visit(&dlfs::param::join(prefix, "theta"), f);
    }

    fn visit_ref(&self, prefix: &str, f: &mut dyn FnMut(&str, ParamRef<'_, f64>)) {
        self.0.visit_ref(&dlfs::param::join(prefix, "theta"), f);
    }
}

fn close(a: &[f64], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} != {b:?}");
    }
}

#[test]
fn sgd_with_momentum_by_hand() {
    let mut p = One(Param1::new(array![1.0, 2.0]));
    let mut sgd = Sgd::new(0.1, 0.9);
    p.0.grad = array![0.5, -1.0];
    sgd.step(&mut p);
    // v = g = [0.5, -1]; theta = [1, 2] - 0.1 v
    close(p.0.value.as_slice().unwrap(), &[0.95, 2.1]);
    sgd.step(&mut p);
    // v = 0.9 [0.5, -1] + [0.5, -1] = [0.95, -1.9]; theta -= 0.1 v
    close(p.0.value.as_slice().unwrap(), &[0.855, 2.29]);
}

#[test]
fn plain_sgd_is_momentum_zero() {
    let mut p = One(Param1::new(array![3.0]));
    let mut sgd = Sgd::new(0.5, 0.0);
    p.0.grad = array![2.0];
    sgd.step(&mut p);
    sgd.step(&mut p);
    close(p.0.value.as_slice().unwrap(), &[1.0]);
}

#[test]
fn adam_by_hand() {
    let mut p = One(Param1::new(array![1.0, -1.0]));
    let mut adam = Adam::new(0.1);
    // Step 1, g = [0.5, -2]: m = 0.1 g, v = 0.001 g^2; the bias corrections give m_hat = g,
    // v_hat = g^2, so the step is lr * g / (|g| + eps) = 0.1 * sign(g), up to eps.
    p.0.grad = array![0.5, -2.0];
    adam.step(&mut p);
    let eps = 1e-8;
    let s1 = [0.1 * 0.5 / (0.5 + eps), 0.1 * -2.0 / (2.0 + eps)];
    close(p.0.value.as_slice().unwrap(), &[1.0 - s1[0], -1.0 - s1[1]]);
    // Step 2, g = [1, 1]: m = 0.9 * 0.1 g1 + 0.1 g2, v = 0.999 * 0.001 g1^2 + 0.001 g2^2,
    // m_hat = m / (1 - 0.81), v_hat = v / (1 - 0.998001).
    p.0.grad = array![1.0, 1.0];
    adam.step(&mut p);
    let step2 = |g1: f64, g2: f64| {
        let m = 0.9 * 0.1 * g1 + 0.1 * g2;
        let v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
        0.1 * (m / 0.19) / ((v / (1.0 - 0.999f64.powi(2))).sqrt() + eps)
    };
    close(
        p.0.value.as_slice().unwrap(),
        &[
            1.0 - s1[0] - step2(0.5, 1.0),
            -1.0 - s1[1] - step2(-2.0, 1.0),
        ],
    );
    assert_eq!(adam.steps(), 2);
}

#[test]
#[should_panic(expected = "optimiser: parameter 0 is `other`")]
fn an_optimiser_refuses_a_different_model() {
    struct Other(Param1<f64>);
    impl Params<f64> for Other {
        fn visit(&mut self, _: &str, f: &mut dyn FnMut(&str, ParamMut<'_, f64>)) {
            f("other", self.0.view_mut());
        }
        fn visit_ref(&self, _: &str, f: &mut dyn FnMut(&str, ParamRef<'_, f64>)) {
            self.0.visit_ref("other", f);
        }
    }
    let mut adam = Adam::new(0.1);
    adam.step(&mut One(Param1::new(array![1.0])));
    adam.step(&mut Other(Param1::new(array![1.0])));
}
