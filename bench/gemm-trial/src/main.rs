//! Times ndarray's matrix product (`general_mat_mul`, the `matrixmultiply` kernels every layer of
//! the crate used until `src/matmul.rs`) against the `gemm` crate (which `src/matmul.rs` calls,
//! with its `x86-v4` kernels) on the products of the book's workloads, at the thread
//! count given by `MATMUL_NUM_THREADS` (which both sides are told), and prints one JSON line per
//! product. It also reports how far the two results are apart (they round differently) and
//! whether `gemm` gives the same bits at one thread and at the given count.
//!
//! Usage: `MATMUL_NUM_THREADS=N gemm-trial [ROUNDS]` (bench/gemm-trial.sh runs it).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, linalg::general_mat_mul};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::time::Instant;

/// Which operands are read transposed: the forward product `x w`, the weight gradient `xᵀ dy`
/// and the input gradient `dy wᵀ`.
#[derive(Clone, Copy)]
enum Layout {
    AB,
    AtB,
    ABt,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::AB => "a b",
            Layout::AtB => "aT b",
            Layout::ABt => "a bT",
        }
    }
}

/// `(label, m, k, n, layout)`: `c[m, n] = op(a)[m, k] op(b)[k, n]`.
const PRODUCTS: &[(&str, usize, usize, usize, Layout)] = &[
    ("peak", 2048, 2048, 2048, Layout::AB),
    ("mlp: first layer", 128, 784, 256, Layout::AB),
    (
        "mlp: first layer's weight gradient",
        784,
        128,
        256,
        Layout::AtB,
    ),
    ("mlp: hidden layer", 128, 256, 256, Layout::AB),
    (
        "mlp: hidden layer's input gradient",
        128,
        256,
        256,
        Layout::ABt,
    ),
    ("made / vae: 784 -> 500 / 400", 100, 784, 500, Layout::AB),
    ("lstm: one step's hidden product", 32, 128, 512, Layout::AB),
    ("attention: a projection", 2048, 128, 128, Layout::AB),
    ("attention: one head's scores", 64, 32, 64, Layout::ABt),
    ("transformer: feed-forward", 2048, 128, 512, Layout::AB),
];

fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
}

/// The stored operands of a product: `a` is `[m, k]` or, transposed, `[k, m]`; likewise `b`.
fn operands(m: usize, k: usize, n: usize, layout: Layout) -> (Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let a = match layout {
        Layout::AtB => random(k, m, &mut rng),
        _ => random(m, k, &mut rng),
    };
    let b = match layout {
        Layout::ABt => random(n, k, &mut rng),
        _ => random(k, n, &mut rng),
    };
    (a, b)
}

fn views<'a>(
    a: &'a Array2<f32>,
    b: &'a Array2<f32>,
    layout: Layout,
) -> (ArrayView2<'a, f32>, ArrayView2<'a, f32>) {
    match layout {
        Layout::AB => (a.view(), b.view()),
        Layout::AtB => (a.t(), b.view()),
        Layout::ABt => (a.view(), b.t()),
    }
}

fn with_ndarray(a: &ArrayView2<f32>, b: &ArrayView2<f32>, c: &mut Array2<f32>) {
    general_mat_mul(1.0, a, b, 0.0, c);
}

/// `c = a b` through `gemm::gemm`, reading each view's strides as they are.
fn with_gemm(a: &ArrayView2<f32>, b: &ArrayView2<f32>, c: &mut ArrayViewMut2<f32>, threads: usize) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let (sa, sb) = (a.strides(), b.strides());
    let sc = [c.strides()[0], c.strides()[1]];
    // SAFETY: the pointers and strides are those of live ndarray views of the stated shapes, and
    // `c` does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            sc[1],
            sc[0],
            false,
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
            sb[1],
            sb[0],
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The median seconds of one product over `rounds` batches, each long enough to time.
fn median_seconds(rounds: &mut Vec<f64>) -> f64 {
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn time_batch(reps: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let threads: usize = std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("ROUNDS is a whole number"))
        .unwrap_or(7);
    if threads > 1 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .expect("the first use of rayon");
    }
    for &(label, m, k, n, layout) in PRODUCTS {
        let (a, b) = operands(m, k, n, layout);
        let (av, bv) = views(&a, &b, layout);
        let flops = 2.0 * (m * k * n) as f64;
        // About a tenth of a second of products per batch at 100 GFLOP/s.
        let reps = ((1e10 / flops) as usize).clamp(3, 20_000);
        let mut c_nd = Array2::<f32>::zeros((m, n));
        let mut c_gemm = Array2::<f32>::zeros((m, n));
        with_ndarray(&av, &bv, &mut c_nd);
        with_gemm(&av, &bv, &mut c_gemm.view_mut(), threads);
        let (mut t_nd, mut t_gemm) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            t_nd.push(time_batch(reps, || with_ndarray(&av, &bv, &mut c_nd)));
            t_gemm.push(time_batch(reps, || {
                with_gemm(&av, &bv, &mut c_gemm.view_mut(), threads)
            }));
        }
        let (nd, ge) = (median_seconds(&mut t_nd), median_seconds(&mut t_gemm));
        let scale = c_nd.iter().fold(0.0f32, |s, v| s.max(v.abs()));
        let apart = c_nd
            .iter()
            .zip(&c_gemm)
            .fold(0.0f32, |s, (x, y)| s.max((x - y).abs()))
            / scale;
        let mut c_one = Array2::<f32>::zeros((m, n));
        with_gemm(&av, &bv, &mut c_one.view_mut(), 1);
        let same_bits = c_one
            .iter()
            .zip(&c_gemm)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        println!(
            "{}",
            serde_json::json!({
                "product": label,
                "m": m, "k": k, "n": n,
                "layout": layout.name(),
                "threads": threads,
                "ndarray_gflops": flops / nd / 1e9,
                "gemm_gflops": flops / ge / 1e9,
                "max_difference_relative": apart,
                "gemm_same_bits_as_one_thread": same_bits,
            })
        );
    }
}
