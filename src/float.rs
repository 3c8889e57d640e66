//! The float trait every layer is generic over.
//!
//! Training runs in `f32`; gradient checks run the very same code in `f64`. ndarray's
//! [`NdFloat`] already gives arithmetic, the matrix product and the usual functions
//! (`exp`, `ln`, `tanh`, ...); this trait adds the few things the book needs on top: drawing
//! random numbers of the type, converting constants, and the error function `erf` (for the exact
//! GELU), which `std` lacks and [`libm`] supplies.

use ndarray::NdFloat;
use rand_distr::uniform::SampleUniform;
use std::iter::Sum;

/// A floating-point type the crate's layers work with: `f32` or `f64`.
pub trait Float: NdFloat + SampleUniform + Sum + Default + Send + Sync {
    /// Converts from `f64` (rounding to nearest for `f32`). (Named `of` so it does not clash
    /// with `num_traits`' fallible `from_f64`.)
    fn of(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
    /// The error function, `erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt`.
    fn erf(self) -> Self;

    /// The slice itself if `Self` is `f32`, else `None`: how a generic function takes a path
    /// that only exists for `f32` (the vector loops of [`crate::vmath`]).
    fn as_f32_slice(xs: &mut [Self]) -> Option<&mut [f32]>;
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn as_f32_slice(xs: &mut [Self]) -> Option<&mut [f32]> {
        Some(xs)
    }
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn as_f32_slice(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

/// Shorthand for a constant of the float type: `c::<F>(0.5)`.
pub fn c<F: Float>(x: f64) -> F {
    F::of(x)
}
