//! The matrix product every layer calls.
//!
//! Two functions, with the contract of ndarray's `dot` and `general_mat_mul`:
//! [`matmul`] returns `a b`, and [`matmul_into`] writes `c = alpha a b + beta c` into an existing
//! array (with `beta = 1` a weight gradient is accumulated in place, with no temporary). Either
//! operand may be a transposed view (`x.t()`); no copy is made.
//!
//! The work is done by the [`gemm`] crate, a pure-Rust matrix product that picks its kernels when
//! the program starts: AVX-512 where the processor has it, AVX2 and FMA where it does not. On the
//! processors of the performance appendix it runs the book's products faster than ndarray's own
//! (`matrixmultiply`, which has no AVX-512 kernels); the appendix's trial measures both. No
//! system BLAS is involved, so the crate still builds on a bare machine.
//!
//! **Threads.** A product of at least [`PARALLEL_WORK`] multiply-adds runs on [`threads`]
//! threads (`MATMUL_NUM_THREADS` if set, else the machine's cores); smaller ones run on one.
//! `gemm` splits the *output* between threads and never a sum, so the thread count changes the
//! speed and not a single bit of the results (`tests/threads.rs` checks it on a chapter program).
//! The chapter programs set one thread unless told otherwise, since most of them already train
//! two models side by side; [`on_workers`] is how a program runs when it uses more.
use crate::float::Float;
use ndarray::{Array2, ArrayRef2};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many threads a product uses: the last [`set_threads`], else `MATMUL_NUM_THREADS` (at
/// least 1) as it is when this is first asked, else the machine's cores.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let n = std::env::var("MATMUL_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(cores)
                .max(1);
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// Sets the thread count of the products from here on (at least 1).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

static THREADS: AtomicUsize = AtomicUsize::new(0); // 0: not read yet

/// Runs `f` on one of the threads that share the products' work, and returns what it returns.
///
/// `gemm` splits a product over rayon's pool of worker threads. Called from a thread outside the
/// pool, each product is queued for the workers and the caller waits, which costs a hand-over
/// and a wake-up per product; called from a worker, the caller takes a share of the product
/// itself and the others join in, which over a training step of a few dozen products made the
/// MLP and VAE workloads clearly faster at two threads. With one thread `f` simply runs where it
/// is. [`crate::runner::main`] runs every
/// program this way. The pool's threads get the main thread's usual 8 MiB of stack.
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if threads() == 1 {
        return f();
    }
    // Fails only if the pool was already built (by an earlier call), which is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .build_global();
    rayon::scope(|_| f())
}

/// The smallest product (in multiply-adds, `m n k`) that is split between threads. Waking the
/// other threads costs more than it saves below about this size, between the element-wise work
/// of a training step (the LSTM's per-step `[32, 128] x [128, 512]` and one head's attention
/// scores stay on one thread; the layers of the MLP, MADE and the VAE are split).
pub const PARALLEL_WORK: usize = 1 << 24;

/// The fewest elements an element-wise loop (Adam's update, [`crate::vmath`]'s functions) is
/// split between threads for, when there is more than one. Each element is computed alone, so
/// the split changes no bit of the result.
pub const PARALLEL_ELEMENTS: usize = 1 << 15;

/// Whether an element-wise loop over `len` elements is split between threads: with more than one
/// thread and at least [`PARALLEL_ELEMENTS`] elements.
pub fn split_elements(len: usize) -> bool {
    len >= PARALLEL_ELEMENTS && threads() > 1
}

/// Calls `f` on every item of `items`: shared out between threads (in no set order) when
/// [`split_elements`] says so for `elements`, else in order on this thread. For items that are
/// independent of each other, so that neither the order nor the thread changes a result.
pub fn for_each_shared<I>(items: I, elements: usize, f: impl Fn(I::Item) + Send + Sync)
where
    I: Iterator + Send,
    I::Item: Send,
{
    use rayon::iter::{ParallelBridge, ParallelIterator};
    if split_elements(elements) {
        items.par_bridge().for_each(f);
    } else {
        items.for_each(f);
    }
}

/// `a b`, as a new array: `[m, k] x [k, n] -> [m, n]`.
///
/// Panics if the inner dimensions differ (a programming error, not an input error).
pub fn matmul<F: Float>(a: &ArrayRef2<F>, b: &ArrayRef2<F>) -> Array2<F> {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    if k != k2 || k == 0 || m == 0 || n == 0 {
        // The checks and the empty sum, as `matmul_into` does them.
        let mut c = Array2::zeros((m, n));
        matmul_into(F::one(), a, b, F::zero(), &mut c);
        return c;
    }
    // The product writes every entry and reads none first, so the array is not zeroed first (a
    // pass over memory that showed in the profiles).
    let mut c = Array2::<F>::uninit((m, n));
    // SAFETY: `c` is a fresh `[m, n]` array in standard layout (strides `[n, 1]`), borrowed by
    // nobody else; with beta = 0, `product` writes each of its entries before reading it, so
    // every entry is initialised when `assume_init` runs.
    unsafe {
        product(
            F::one(),
            a,
            b,
            F::zero(),
            c.as_mut_ptr().cast::<F>(),
            [n as isize, 1],
        );
        c.assume_init()
    }
}

/// `c = alpha a b + beta c`, in place. With `beta = 0` the old contents of `c` are not read
/// (so they may be anything, NaN included).
///
/// Panics if the shapes do not fit together.
pub fn matmul_into<F: Float>(
    alpha: F,
    a: &ArrayRef2<F>,
    b: &ArrayRef2<F>,
    beta: F,
    c: &mut ArrayRef2<F>,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n),
        "matmul: {:?} x {:?} does not fit into {:?}",
        a.shape(),
        b.shape(),
        c.shape()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: only the scaled old contents remain.
        if beta == F::zero() {
            c.fill(F::zero());
        } else {
            c.mapv_inplace(|v| v * beta);
        }
        return;
    }
    let sc = [c.strides()[0], c.strides()[1]];
    // SAFETY: `c`'s pointer and strides describe it exactly (ndarray's `as_mut_ptr` is the first
    // element and `strides` are in elements, negative ones included); the shapes were checked
    // above, and `c` is borrowed mutably, so it overlaps neither operand.
    unsafe { product(alpha, a, b, beta, c.as_mut_ptr(), sc) }
}

/// `c = alpha a b + beta c` through `gemm`, for nonempty shapes already checked, with `c` given
/// by its first element's pointer and its strides (in elements). With `beta = 0` no entry of `c`
/// is read before it is written.
///
/// # Safety
///
/// `c` and `strides` must describe an `[a.nrows(), b.ncols()]` array that is valid for writes
/// (and for reads when `beta` is not zero) and overlaps neither `a` nor `b`.
unsafe fn product<F: Float>(
    alpha: F,
    a: &ArrayRef2<F>,
    b: &ArrayRef2<F>,
    beta: F,
    c: *mut F,
    sc: [isize; 2],
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    let parallelism = match threads() {
        t if t > 1 && m * n * k >= PARALLEL_WORK => gemm::Parallelism::Rayon(t),
        _ => gemm::Parallelism::None,
    };
    let (sa, sb) = (a.strides(), b.strides());
    // SAFETY: the operands' pointers and strides describe them exactly, `c` is as the caller
    // promises, and `gemm::gemm` supports `f32` and `f64`, the only two `Float` types.
    unsafe {
        // gemm's own naming: dst = alpha * dst + beta * lhs rhs, reading dst only if asked to.
        gemm::gemm(
            m,
            n,
            k,
            c,
            sc[1],
            sc[0],
            beta != F::zero(),
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
            sb[1],
            sb[0],
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    /// The product by its definition, one sum per entry, in f64.
    fn naive(a: &ArrayRef2<f64>, b: &ArrayRef2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    fn grid(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17) as f64 * 0.37 + seed).sin()
        })
    }

    fn assert_close(x: &ArrayRef2<f64>, y: &ArrayRef2<f64>) {
        assert_eq!(x.dim(), y.dim());
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() <= 1e-12 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }

    #[test]
    fn matches_the_definition_for_every_layout() {
        // Sizes on both sides of the kernels' block sizes, and transposed and sliced views.
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 2), (17, 33, 9), (70, 300, 41)] {
            let (a, b) = (grid(m, k, 0.1), grid(k, n, 0.7));
            let want = naive(&a, &b);
            assert_close(&matmul(&a, &b), &want);
            let (at, bt) = (a.t().to_owned(), b.t().to_owned());
            assert_close(&matmul(&at.t(), &b), &want);
            assert_close(&matmul(&a, &bt.t()), &want);
            assert_close(&matmul(&at.t(), &bt.t()), &want);
            let wide = grid(m, 2 * k, 0.1);
            let every_other = wide.slice(s![.., ..;2]);
            assert_close(&matmul(&every_other, &b), &naive(&every_other, &b));
            let reversed = a.slice(s![..;-1, ..]);
            assert_close(&matmul(&reversed, &b), &naive(&reversed, &b));
        }
    }

    #[test]
    fn into_scales_and_accumulates_and_ignores_old_contents_when_beta_is_zero() {
        let (a, b) = (grid(6, 4, 0.2), grid(4, 5, 0.3));
        let ab = naive(&a, &b);
        let old = grid(6, 5, 0.9);
        let mut c = old.clone();
        matmul_into(2.0, &a, &b, 1.0, &mut c);
        assert_close(&c, &(&ab * 2.0 + &old));
        let mut c = old.clone();
        matmul_into(1.0, &a, &b, -0.5, &mut c);
        assert_close(&c, &(&ab - &old * 0.5));
        let mut c = Array2::from_elem((6, 5), f64::NAN);
        matmul_into(1.0, &a, &b, 0.0, &mut c);
        assert_close(&c, &ab);
        // into a view of a bigger array, leaving the rest alone
        let mut big = Array2::<f64>::from_elem((8, 7), 3.0);
        matmul_into(1.0, &a, &b, 0.0, &mut big.slice_mut(s![1..7, 2..]));
        assert_close(&big.slice(s![1..7, 2..]), &ab);
        assert_eq!(big.slice(s![0, ..]).sum(), 21.0);
    }

    #[test]
    fn empty_inner_dimension_leaves_the_scaled_output() {
        let (a, b) = (Array2::<f64>::zeros((3, 0)), Array2::<f64>::zeros((0, 2)));
        assert_eq!(matmul(&a, &b), Array2::<f64>::zeros((3, 2)));
        let mut c = Array2::from_elem((3, 2), 4.0);
        matmul_into(1.0, &a, &b, 0.5, &mut c);
        assert_eq!(c, Array2::from_elem((3, 2), 2.0));
    }

    #[test]
    fn f32_agrees_with_f64() {
        let (a, b) = (grid(40, 130, 0.4), grid(130, 20, 0.5));
        let want = naive(&a, &b);
        let got = matmul(&a.mapv(|v| v as f32), &b.mapv(|v| v as f32));
        for (p, q) in got.iter().zip(&want) {
            assert!((f64::from(*p) - q).abs() < 1e-4, "{p} vs {q}");
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn mismatched_shapes_panic_with_the_shapes() {
        matmul(&Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((4, 2)));
    }
}
