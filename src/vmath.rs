//! Fast `f32` exp, tanh, sigmoid, softplus and GELU over whole slices.
//!
//! A training step calls `exp` and `tanh` hundreds of thousands of times (the LSTM's gates, the
//! attention softmax, the Transformer's GELU), and the standard library computes them one at a
//! time. This module computes them eight at a time: each function is a short polynomial with a
//! range reduction, written without branches (both sides of a choice are computed and one is
//! kept), so the compiler turns the loop over a slice into vector instructions. The loops are
//! compiled twice, once for AVX2 with fused multiply-add and once for any `x86_64`, and the
//! processor picks when the program runs.
//!
//! **The same bits on every processor.** Every multiply-add is written `mul_add`, which rounds
//! once whether the processor has a fused instruction or not (without one, the library computes
//! it exactly in software, slowly); nothing else is reordered. So the vector loop, the plain
//! loop and any other processor give identical results, and the tests check it.
//!
//! The polynomials' coefficients were fitted by `scripts/fit-kernels.py` (least squares on
//! Chebyshev nodes, reweighted toward the worst error). Against the exact functions the tests
//! bound the error by a few units in the last place. [`exp_all`] and [`tanh_all`] take either
//! float type: `f32` goes to the vector loops, `f64` (the gradient checks) to the standard
//! library, one number at a time.

use crate::float::Float;
use crate::matmul::{PARALLEL_ELEMENTS, split_elements};

// The fits, as printed by scripts/fit-kernels.py (more digits than f32 holds, on purpose).
#[allow(clippy::excessive_precision)]
mod coefficients {
    /// `(e^r - 1 - r) / r^2` in `r`, `|r| <= ln 2 / 2`.
    pub const EXP: [f32; 5] = [
        4.999999504e-01,
        1.666659249e-01,
        4.167033570e-02,
        8.361100626e-03,
        1.358591838e-03,
    ];
    /// `(tanh x - x) / x^3` in `x^2`, `|x| <= 0.625`.
    pub const TANH: [f32; 6] = [
        -3.333333334e-01,
        1.333331502e-01,
        -5.396111462e-02,
        2.178052677e-02,
        -8.374961776e-03,
        2.322487429e-03,
    ];
    /// `erfc(a) e^{a^2} (2 + a) / 2` in `t = (a - 2) / (a + 2)`, `0 <= a <= 10`.
    pub const ERFC: [f32; 12] = [
        5.107913526e-01,
        -3.435803469e-01,
        1.397360365e-01,
        -1.822098315e-02,
        -1.075510896e-02,
        3.238456888e-03,
        1.543383527e-03,
        -4.147244579e-04,
        -3.236994933e-04,
        1.256312293e-05,
        5.719804191e-05,
        1.419676284e-05,
    ];
    /// `ln(1 + y) / y` in `y`, `0 <= y <= 1`.
    pub const LOG1P: [f32; 12] = [
        9.999999994e-01,
        -4.999999015e-01,
        3.333296413e-01,
        -2.499401105e-01,
        1.994674521e-01,
        -1.637351411e-01,
        1.321111782e-01,
        -9.744032996e-02,
        5.965388857e-02,
        -2.705561059e-02,
        7.812973199e-03,
        -1.056858464e-03,
    ];
}
use coefficients::{ERFC, EXP, LOG1P, TANH};

/// `c[0] + c[1] x + c[2] x^2 + ...` by Horner's rule.
#[inline(always)]
fn poly<const N: usize>(c: &[f32; N], x: f32) -> f32 {
    let mut p = c[N - 1];
    for &ci in c[..N - 1].iter().rev() {
        p = p.mul_add(x, ci);
    }
    p
}

// ANCHOR: exp
/// `e^x`. Writes `x = n ln 2 + r` with `n` an integer and `|r| <= ln 2 / 2`, so that
/// `e^x = 2^n e^r`; `e^r` is a polynomial and `2^n` is built from its exponent bits (in two
/// halves, so that results below the smallest normal number come out as the subnormals they are).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Beyond these, e^x is infinite or rounds to zero. (NaN fails both tests and stays NaN.)
    let x = if x > 88.8 { 88.8 } else { x };
    let x = if x < -104.0 { -104.0 } else { x };
    // Adding 1.5 * 2^23 rounds to an integer, which lands in the low bits of the sum.
    const ROUND: f32 = 12_582_912.0;
    let t = x.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = t - ROUND;
    let n_bits = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    // ln 2 in two parts, so that n ln 2 is subtracted almost exactly.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let e_r = (r * r).mul_add(poly(&EXP, r), r) + 1.0;
    let half = n_bits >> 1;
    e_r * pow2(half) * pow2(n_bits.wrapping_sub(half))
}

/// `2^k` for an integer `-126 <= k <= 127`, from its bits.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(127) as u32) << 23)
}
// ANCHOR_END: exp

// ANCHOR: tanh
/// `tanh x`: an odd polynomial near zero, where `1 - 2 / (e^{2|x|} + 1)` would lose digits to
/// cancellation, and that formula beyond.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    let near = (x * x2).mul_add(poly(&TANH, x2), x);
    let far = 1.0 - 2.0 / (exp(a + a) + 1.0);
    // tanh is odd; the sign also keeps tanh(-0) = -0.
    (if a < 0.625 { near } else { far }).copysign(x)
}

/// The logistic sigmoid `1 / (1 + e^-x)` (0 for `x = -inf`, where `e^-x` is infinite).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}
// ANCHOR_END: tanh

/// `ln(1 + e^{-|x|})`, the part of `softplus(x) = ln(1 + e^x) = max(x, 0) + ln(1 + e^{-|x|})`
/// that needs an exponential (written so that no exponent is positive). With `y = e^{-|x|}`
/// between 0 and 1, `ln(1 + y)` is `y` times a polynomial.
#[inline(always)]
pub fn softplus_tail(x: f32) -> f32 {
    let y = exp(-x.abs());
    y * poly(&LOG1P, y)
}

// ANCHOR: gelu
/// The standard normal CDF `Phi(x)` and density `phi(x)` together, since both need
/// `e^{-x^2/2}`. With `a = |x| / sqrt 2`, the tail `erfc(a) / 2` (which is `Phi(x)` for negative
/// `x` and `1 - Phi(x)` for positive) is `e^{-a^2} P(t) / (2 + a)` with `P` a polynomial in
/// `t = (a - 2) / (a + 2)`. Computing the tail itself, rather than `(1 + erf(x / sqrt 2)) / 2`,
/// keeps `Phi` of a negative `x` precise to its last digits where `1 + erf` would cancel them.
#[inline(always)]
fn normal(x: f32) -> (f32, f32) {
    // e^{-a^2}, with a^2 = x^2 / 2 split into its rounded value and the rounding error (from
    // |x| at most 20, where e^{-a^2} is zero already, so that x = inf gives no inf - inf).
    let xg = if x.abs() > 20.0 { 20.0 } else { x };
    let hi = 0.5 * (xg * xg);
    let lo = 0.5 * xg.mul_add(xg, -(hi + hi));
    let gauss = exp(-hi) * (1.0 - lo);
    // Past a = 10 the tail is below f32's smallest number anyway.
    let a = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let a = if a > 10.0 { 10.0 } else { a };
    let tail = gauss * poly(&ERFC, (a - 2.0) / (a + 2.0)) / (a + 2.0);
    let cdf = if x < 0.0 { tail } else { 1.0 - tail };
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    (cdf, gauss * INV_SQRT_2PI)
}

/// The exact GELU, `x Phi(x)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * normal(x).0
}

/// The GELU's derivative, `Phi(x) + x phi(x)`.
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let (cdf, pdf) = normal(x);
    x.mul_add(pdf, cdf)
}
// ANCHOR_END: gelu

/// Defines `pub fn $name(xs: &mut [f32])`, which replaces every element by `$f` of it, through
/// the AVX2 + FMA copy of the loop when the processor has those, else the plain one; a long
/// slice is cut into pieces shared between threads when the program uses more than one.
macro_rules! slice_kernel {
    ($(#[$doc:meta])* $name:ident, $f:ident) => {
        $(#[$doc])*
        pub fn $name(xs: &mut [f32]) {
            if split_elements(xs.len()) {
                use rayon::prelude::*;
                return xs.par_chunks_mut(PARALLEL_ELEMENTS / 4).for_each($name);
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                #[target_feature(enable = "avx2,fma")]
                fn vector(xs: &mut [f32]) {
                    for x in xs.iter_mut() {
                        *x = $f(*x);
                    }
                }
                // SAFETY: the processor has just been seen to have both features.
                return unsafe { vector(xs) };
            }
            for x in xs.iter_mut() {
                *x = $f(*x);
            }
        }
    };
}

/// Replaces every element `x` of `xs` by `f(x)`: through the vector loop `fast` when the
/// elements are `f32`, else one number at a time with `exact` (the `f64` of the gradient checks).
pub fn apply<F: Float>(xs: &mut [F], fast: fn(&mut [f32]), exact: impl Fn(F) -> F) {
    match F::as_f32_slice(xs) {
        Some(xs) => fast(xs),
        None => xs.iter_mut().for_each(|x| *x = exact(*x)),
    }
}

/// `e^x` of every element, in place: [`exp_f32`] for `f32`, the standard library's `exp` else.
pub fn exp_all<F: Float>(xs: &mut [F]) {
    apply(xs, exp_f32, F::exp);
}

/// `tanh x` of every element, in place: [`tanh_f32`] for `f32`, the standard library's else.
pub fn tanh_all<F: Float>(xs: &mut [F]) {
    apply(xs, tanh_f32, F::tanh);
}

/// `ln(1 + e^{-|x|})` of every element, in place: [`softplus_tail_f32`] for `f32`, the standard
/// library's `exp` and `ln_1p` for `f64`.
pub fn softplus_tail_all<F: Float>(xs: &mut [F]) {
    apply(xs, softplus_tail_f32, |x| (-x.abs()).exp().ln_1p());
}

slice_kernel!(
    /// [`softplus_tail`] of every element, in place.
    softplus_tail_f32,
    softplus_tail
);
slice_kernel!(
    /// [`exp`] of every element, in place.
    exp_f32,
    exp
);
slice_kernel!(
    /// [`tanh`] of every element, in place.
    tanh_f32,
    tanh
);
slice_kernel!(
    /// [`sigmoid`] of every element, in place.
    sigmoid_f32,
    sigmoid
);
slice_kernel!(
    /// [`gelu`] of every element, in place.
    gelu_f32,
    gelu
);
slice_kernel!(
    /// [`gelu_grad`] of every element, in place.
    gelu_grad_f32,
    gelu_grad
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between an `f32` and the exact value (in `f64`).
    fn ulps(got: f32, exact: f64) -> f64 {
        let e = exact as f32;
        if got == e {
            return 0.0;
        }
        let ulp = (f32::from_bits(e.abs().to_bits() + 1) - e.abs()) as f64;
        (got as f64 - exact).abs() / ulp
    }

    /// Evenly spread points of `[lo, hi]`, both ends included.
    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    fn worst(
        f: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
        xs: impl Iterator<Item = f32>,
    ) -> f64 {
        xs.map(|x| ulps(f(x), exact(x as f64))).fold(0.0, f64::max)
    }

    #[test]
    fn exp_is_within_one_and_a_half_ulps_over_its_normal_range() {
        let w = worst(exp, f64::exp, grid(-87.0, 88.7, 2_000_000));
        assert!(w <= 1.5, "worst {w} ulps");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        // Subnormal results are close in absolute terms.
        let tiny = exp(-100.0) as f64;
        assert!((tiny - (-100f64).exp()).abs() < 2e-45, "{tiny}");
    }

    #[test]
    fn tanh_and_sigmoid_are_within_a_few_ulps() {
        let w = worst(tanh, f64::tanh, grid(-12.0, 12.0, 2_000_000));
        assert!(w <= 2.0, "tanh: worst {w} ulps");
        let w = worst(tanh, f64::tanh, grid(-1e-3, 1e-3, 100_000));
        assert!(w <= 1.0, "tanh near 0: worst {w} ulps");
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let w = worst(sigmoid, s, grid(-80.0, 30.0, 2_000_000));
        assert!(w <= 3.0, "sigmoid: worst {w} ulps");
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn softplus_tail_is_within_a_few_ulps() {
        let exact = |x: f64| (-x.abs()).exp().ln_1p();
        let w = worst(softplus_tail, exact, grid(-80.0, 80.0, 2_000_000));
        assert!(w <= 3.0, "softplus_tail: worst {w} ulps");
        assert_eq!(softplus_tail(0.0), std::f32::consts::LN_2);
        assert_eq!(softplus_tail(f32::NEG_INFINITY), 0.0);
        assert_eq!(softplus_tail(200.0), 0.0);
        assert!(softplus_tail(f32::NAN).is_nan());
    }

    fn phi_exact(x: f64) -> f64 {
        0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn gelu_and_its_derivative_are_close_in_relative_terms() {
        // Relative, including the left tail, where x Phi(x) is tiny (below x = -12.5 it is
        // subnormal, with fewer digits, which is where the worst case is).
        let exact = |x: f64| x * phi_exact(x);
        let w = worst(
            gelu,
            exact,
            grid(-13.0, 13.0, 2_000_000).filter(|&x| x != 0.0),
        );
        assert!(w <= 8.0, "gelu: worst {w} ulps");
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let grad = |x: f64| phi_exact(x) + x * pdf(x);
        // The derivative crosses zero near x = -0.75, where relative error means nothing: absolute.
        let w = grid(-13.0, 13.0, 2_000_000)
            .map(|x| (gelu_grad(x) as f64 - grad(x as f64)).abs())
            .fold(0.0, f64::max);
        assert!(w <= 2e-7, "gelu_grad: worst absolute error {w:e}");
        assert_eq!(gelu(0.0), 0.0);
        assert_eq!(gelu(f32::INFINITY), f32::INFINITY);
        assert_eq!(gelu_grad(30.0), 1.0);
        assert_eq!(gelu_grad(-30.0), 0.0);
        assert!(gelu(f32::NAN).is_nan() && gelu_grad(f32::NAN).is_nan());
    }

    #[test]
    fn the_slice_loops_give_the_same_bits_as_the_plain_functions() {
        // On a processor with AVX2 and FMA this compares the vector loop with the functions as
        // compiled for any x86_64 (software mul_add); elsewhere both sides are the plain loop.
        // Two threads, so that the long slice is also cut into pieces shared between them (the
        // thread count changes no result, so setting it here disturbs no other test).
        crate::matmul::set_threads(2);
        let xs: Vec<f32> = grid(-120.0, 120.0, 100_003)
            .chain([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0])
            .collect();
        type Pair = (fn(&mut [f32]), fn(f32) -> f32, &'static str);
        let kernels: [Pair; 6] = [
            (softplus_tail_f32, softplus_tail, "softplus_tail"),
            (exp_f32, exp, "exp"),
            (tanh_f32, tanh, "tanh"),
            (sigmoid_f32, sigmoid, "sigmoid"),
            (gelu_f32, gelu, "gelu"),
            (gelu_grad_f32, gelu_grad, "gelu_grad"),
        ];
        for (all, one, name) in kernels {
            let mut ys = xs.clone();
            all(&mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                // black_box keeps the scalar call from being vectorised or constant-folded.
                let z = one(std::hint::black_box(x));
                assert_eq!(y.to_bits(), z.to_bits(), "{name}({x}): {y} against {z}");
            }
        }
    }
}
