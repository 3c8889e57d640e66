//! `cargo run --release --example bench -- WORKLOAD|all`: times one training step (forward,
//! loss, backward, Adam) of the workloads of `shared/BENCHMARKS.md`, built from the chapters' own
//! code, and prints one JSON line per workload. `--parity DIR` instead writes, per workload, the
//! initial weights, the batch, the random draws of the step, the loss and every gradient to
//! `DIR/<workload>.safetensors`, for `bench/pytorch_bench.py --parity DIR` to check against an
//! independent autograd. `--help` lists the flags.

use anyhow::{Context, Result, bail};
use dlfs::dropout::{Dropout, DropoutMlp};
use dlfs::float::c;
use dlfs::loss::mse;
use dlfs::loss::softmax_cross_entropy;
use dlfs::lstm::Lstm;
use dlfs::lstm::models::LastStep;
use dlfs::made::{Degrees, Made, Output};
use dlfs::mlp::Mlp;
use dlfs::optim::{Optimizer, OptimizerConfig};
use dlfs::param::{Params, count, zero_grads};
use dlfs::runner::{median, train_step};
use dlfs::self_attention::models::CharAttention;
use dlfs::transformer::gpt::{Gpt, GptConfig};
use dlfs::vae::{Likelihood, Vae};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, TensorView};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The workloads this build can run, in the order of `shared/BENCHMARKS.md`.
const WORKLOADS: [&str; 7] = [
    "mlp",
    "dropout",
    "lstm",
    "made",
    "attention",
    "transformer",
    "vae",
];

#[derive(clap::Parser, Debug)]
#[command(
    name = "bench",
    about = "Time one training step of each workload of shared/BENCHMARKS.md, or write the parity files"
)]
struct Cli {
    /// A workload (mlp, dropout, lstm, made, attention, transformer, vae) or `all`.
    #[arg(required_unless_present = "list")]
    workload: Option<String>,
    /// Print the workloads this build has, one per line, and exit.
    #[arg(long, conflicts_with_all = ["parity", "peak"])]
    list: bool,
    /// Timed steps, after the warm-up.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    steps: u64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    warmup: u64,
    /// Threads for the matrix products (default: the machine's cores, at most 4).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: Option<u64>,
    /// Write DIR/<workload>.safetensors (weights, batch, draws, loss, gradients) instead of
    /// timing.
    #[arg(long, value_name = "DIR")]
    parity: Option<PathBuf>,
    /// Also time two plain matrix products (2048 x 2048 x 2048 and the MLP's first layer,
    /// 128 x 784 x 256) and print their GFLOP/s: the machine's peak, as the crate reaches it.
    #[arg(long)]
    peak: bool,
}

/// Times `c = a b` for an `[m, k] x [k, n]` product with `dlfs::matmul::matmul_into` (the
/// product every layer uses): the median GFLOP/s over `repeats` products after one warm-up.
fn peak(m: usize, k: usize, n: usize, repeats: usize, threads: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a = normal_batch(m, k, &mut rng);
    let b = normal_batch(k, n, &mut rng);
    let mut out = Array2::<f32>::zeros((m, n));
    let mut gflops = Vec::with_capacity(repeats);
    for r in 0..=repeats {
        let start = Instant::now();
        dlfs::matmul::matmul_into(1.0, &a, &b, 0.0, &mut out);
        let s = start.elapsed().as_secs_f64();
        if r > 0 {
            gflops.push(2.0 * (m * k * n) as f64 / s / 1e9);
        }
    }
    let gflops = median(&mut gflops).expect("at least one timed product");
    serde_json::json!({
        "workload": format!("{m} x {k} x {n}"),
        "gflops": (gflops * 10.0).round() / 10.0,
        "threads": threads,
        "impl": "dlfs",
    })
    .to_string()
}

/// What a parity file holds beside the parameters and their gradients.
type Extra = Vec<(String, Vec<usize>, Vec<f32>)>;

/// One training step of a model, as a chapter's training loop runs it.
trait Workload {
    fn params(&self) -> usize;
    /// 3 x the forward pass's matrix-product FLOPs (2 m k n each).
    fn flops(&self) -> u64;
    /// Forward, loss, backward, Adam: one step.
    fn step(&mut self, step: usize) -> Result<f64>;
    /// Forward and backward once from the current weights (gradients zeroed first), leaving the
    /// gradients in place; returns the loss and the batch and draws the step used.
    fn gradients(&mut self) -> (f64, Extra);
    /// The model, for reading its parameters and gradients.
    fn model(&self) -> &dyn ParamsRef;
}

/// What [`ParamsRef::each`] hands over per parameter: name, shape, values, gradient.
type Visit<'a> = dyn FnMut(&str, &[usize], Vec<f32>, Vec<f32>) + 'a;

/// Read-only access to a model's parameters through `dyn`.
trait ParamsRef {
    fn each(&self, f: &mut Visit<'_>);
}

impl<M: Params<f32>> ParamsRef for M {
    fn each(&self, f: &mut Visit<'_>) {
        self.visit_ref("", &mut |name, p| {
            f(
                name,
                p.value.shape(),
                p.value.iter().copied().collect(),
                p.grad.iter().copied().collect(),
            )
        });
    }
}

fn normal_batch(rows: usize, cols: usize, rng: &mut impl Rng) -> Array2<f32> {
    use rand_distr::{Distribution, StandardNormal};
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(&mut *rng))
}

fn flops_of(batch: usize, layers: &[(usize, usize)]) -> u64 {
    3 * layers
        .iter()
        .map(|&(k, n)| 2 * (batch * k * n) as u64)
        .sum::<u64>()
}

fn labels_as_f32(labels: &[usize]) -> Vec<f32> {
    labels.iter().map(|&l| l as f32).collect()
}

// --- mlp and dropout ------------------------------------------------------------------------

struct Classifier {
    model: DropoutMlp<f32>,
    optimizer: Optimizer<f32>,
    x: Array2<f32>,
    labels: Vec<usize>,
    rng: ChaCha8Rng,
}

impl Classifier {
    fn new(p: f64) -> Classifier {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let sizes = [784, 256, 256, 10];
        let model = DropoutMlp::new(
            &sizes,
            Dropout::new(0.0).expect("0 is a valid rate"),
            Dropout::new(p).expect("a valid rate"),
            &mut rng,
        );
        let x = normal_batch(128, 784, &mut rng);
        let labels = (0..128).map(|_| rng.random_range(0..10)).collect();
        Classifier {
            model,
            optimizer: OptimizerConfig::adam(1e-3).build(),
            x,
            labels,
            rng,
        }
    }

    fn dropout(&self) -> bool {
        self.model.hidden.rate() > 0.0
    }
}

impl Workload for Classifier {
    fn params(&self) -> usize {
        count(&self.model.mlp)
    }
    fn flops(&self) -> u64 {
        flops_of(128, &[(784, 256), (256, 256), (256, 10)])
    }
    fn step(&mut self, step: usize) -> Result<f64> {
        let dropout = self.dropout();
        let (x, labels, rng) = (&self.x, &self.labels, &mut self.rng);
        if !dropout {
            // The MLP chapter's step: no masks at all.
            let mlp = &mut self.model.mlp;
            return Ok(train_step(
                step,
                mlp,
                &mut self.optimizer,
                |m: &mut Mlp<f32>| {
                    let (logits, cache) = m.forward(x);
                    let (loss, dz) = softmax_cross_entropy(&logits, labels);
                    m.backward_params(&cache, &dz);
                    loss
                },
            )?);
        }
        Ok(train_step(
            step,
            &mut self.model,
            &mut self.optimizer,
            |m| {
                let (logits, cache) = m.forward_train(x, rng);
                let (loss, dz) = softmax_cross_entropy(&logits, labels);
                m.backward_params(&cache, &dz);
                loss
            },
        )?)
    }
    fn gradients(&mut self) -> (f64, Extra) {
        zero_grads(&mut self.model.mlp);
        let mut extra: Extra = vec![
            (
                "input.x".into(),
                vec![128, 784],
                self.x.iter().copied().collect(),
            ),
            (
                "input.labels".into(),
                vec![128],
                labels_as_f32(&self.labels),
            ),
        ];
        let loss = if self.dropout() {
            let (logits, cache) = self.model.forward_train(&self.x, &mut self.rng);
            let (loss, dz) = softmax_cross_entropy(&logits, &self.labels);
            self.model.backward_params(&cache, &dz);
            for (i, m) in cache.hidden_masks().iter().enumerate() {
                extra.push((
                    format!("mask.{i}"),
                    m.shape().to_vec(),
                    m.iter().copied().collect(),
                ));
            }
            loss
        } else {
            let (logits, cache) = self.model.mlp.forward(&self.x);
            let (loss, dz) = softmax_cross_entropy(&logits, &self.labels);
            self.model.mlp.backward_params(&cache, &dz);
            loss
        };
        (f64::from(loss), extra)
    }
    fn model(&self) -> &dyn ParamsRef {
        &self.model.mlp
    }
}

// --- vae ------------------------------------------------------------------------------------

struct VaeWorkload {
    model: Vae<f32>,
    optimizer: Optimizer<f32>,
    x: Array2<f32>,
    rng: ChaCha8Rng,
}

impl VaeWorkload {
    fn new() -> VaeWorkload {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let model = Vae::new(784, &[400], 20, Likelihood::Bernoulli, &mut rng);
        // Binary pixels, as the chapter trains on.
        let x = Array2::from_shape_simple_fn((128, 784), || f32::from(rng.random_bool(0.3)));
        VaeWorkload {
            model,
            optimizer: OptimizerConfig::adam(1e-3).build(),
            x,
            rng,
        }
    }
}

impl Workload for VaeWorkload {
    fn params(&self) -> usize {
        count(&self.model)
    }
    fn flops(&self) -> u64 {
        flops_of(128, &[(784, 400), (400, 40), (20, 400), (400, 784)])
    }
    fn step(&mut self, step: usize) -> Result<f64> {
        let (x, rng) = (&self.x, &mut self.rng);
        Ok(train_step(
            step,
            &mut self.model,
            &mut self.optimizer,
            |m| {
                let (elbo, cache) = m.forward_train(x, rng);
                m.backward_params(&cache, c(1.0));
                elbo.loss(c(1.0))
            },
        )?)
    }
    fn gradients(&mut self) -> (f64, Extra) {
        zero_grads(&mut self.model);
        let (elbo, cache) = self.model.forward_train(&self.x, &mut self.rng);
        self.model.backward_params(&cache, 1.0);
        let eps = cache.eps();
        let extra = vec![
            (
                "input.x".into(),
                vec![128, 784],
                self.x.iter().copied().collect(),
            ),
            (
                "eps".into(),
                eps.shape().to_vec(),
                eps.iter().copied().collect(),
            ),
        ];
        (f64::from(elbo.loss(1.0)), extra)
    }
    fn model(&self) -> &dyn ParamsRef {
        &self.model
    }
}

// --- lstm -----------------------------------------------------------------------------------

struct LstmWorkload {
    model: LastStep<f32, Lstm<f32>>,
    optimizer: Optimizer<f32>,
    x: ndarray::Array3<f32>,
    y: Array2<f32>,
}

impl LstmWorkload {
    const BATCH: usize = 32;
    const TIME: usize = 100;
    const HIDDEN: usize = 128;

    fn new() -> LstmWorkload {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let lstm = Lstm::new(2, Self::HIDDEN, &mut rng);
        let model = LastStep::new(lstm, 1, &mut rng);
        let (x, y) = dlfs::lstm::adding::sequences::<f32>(Self::BATCH, Self::TIME, &mut rng);
        LstmWorkload {
            model,
            optimizer: OptimizerConfig::adam(1e-3).build(),
            x,
            y,
        }
    }
}

impl Workload for LstmWorkload {
    fn params(&self) -> usize {
        count(&self.model)
    }
    fn flops(&self) -> u64 {
        let (b, t, h) = (Self::BATCH, Self::TIME, Self::HIDDEN);
        let input = 2 * (b * t * 2 * 4 * h) as u64;
        let recurrent = 2 * (t * b * h * 4 * h) as u64;
        let head = 2 * (b * h) as u64;
        3 * (input + recurrent + head)
    }
    fn step(&mut self, step: usize) -> Result<f64> {
        let (x, y) = (&self.x, &self.y);
        Ok(train_step(
            step,
            &mut self.model,
            &mut self.optimizer,
            |m| {
                let (pred, cache) = m.forward(x);
                let (loss, dy) = mse(&pred, y);
                m.backward(&cache, &dy);
                loss
            },
        )?)
    }
    fn gradients(&mut self) -> (f64, Extra) {
        zero_grads(&mut self.model);
        let (pred, cache) = self.model.forward(&self.x);
        let (loss, dy) = mse(&pred, &self.y);
        self.model.backward(&cache, &dy);
        let extra = vec![
            (
                "input.x".into(),
                self.x.shape().to_vec(),
                self.x.iter().copied().collect(),
            ),
            (
                "input.y".into(),
                self.y.shape().to_vec(),
                self.y.iter().copied().collect(),
            ),
        ];
        (f64::from(loss), extra)
    }
    fn model(&self) -> &dyn ParamsRef {
        &self.model
    }
}

// --- made -----------------------------------------------------------------------------------

struct MadeWorkload {
    model: Made<f32>,
    optimizer: Optimizer<f32>,
    x: Array2<f32>,
}

impl MadeWorkload {
    fn new() -> MadeWorkload {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let degrees = Degrees::draw(784, &[500], true, &mut rng);
        let model = Made::new(degrees, Output::Bernoulli, false, &mut rng);
        let x = Array2::from_shape_simple_fn((100, 784), || f32::from(rng.random_bool(0.3)));
        MadeWorkload {
            model,
            optimizer: OptimizerConfig::adam(1e-3).build(),
            x,
        }
    }
}

impl Workload for MadeWorkload {
    fn params(&self) -> usize {
        count(&self.model)
    }
    fn flops(&self) -> u64 {
        flops_of(100, &[(784, 500), (500, 784)])
    }
    fn step(&mut self, step: usize) -> Result<f64> {
        let x = &self.x;
        Ok(train_step(
            step,
            &mut self.model,
            &mut self.optimizer,
            |m| {
                let (logits, cache) = m.forward(x.clone());
                let (loss, d_logits) = m.loss(&logits, x);
                m.backward_params(&cache, &d_logits);
                loss
            },
        )?)
    }
    fn gradients(&mut self) -> (f64, Extra) {
        zero_grads(&mut self.model);
        let (logits, cache) = self.model.forward(self.x.clone());
        let (loss, d_logits) = self.model.loss(&logits, &self.x);
        self.model.backward_params(&cache, &d_logits);
        let flat = |m: &Array2<f32>| (m.shape().to_vec(), m.iter().copied().collect());
        let (hs, hv) = flat(self.model.hidden[0].mask());
        let (os, ov) = flat(self.model.output.mask());
        let extra = vec![
            (
                "input.x".into(),
                vec![100, 784],
                self.x.iter().copied().collect(),
            ),
            ("mask.hidden".into(), hs, hv),
            ("mask.output".into(), os, ov),
        ];
        (f64::from(loss), extra)
    }
    fn model(&self) -> &dyn ParamsRef {
        &self.model
    }
}

// --- attention and transformer --------------------------------------------------------------

/// The character workloads' batch: 32 windows of 64 random ids and their random targets, drawn
/// after the model from the same generator.
struct CharBatch {
    ids: Array2<usize>,
    targets: Array2<usize>,
}

impl CharBatch {
    const VOCAB: usize = 65;
    const D: usize = 128;
    const BATCH: usize = 32;
    const TIME: usize = 64;

    fn new(rng: &mut ChaCha8Rng) -> CharBatch {
        let mut draw = |_| rng.random_range(0..Self::VOCAB);
        let ids = Array2::from_shape_fn((Self::BATCH, Self::TIME), &mut draw);
        let targets = Array2::from_shape_fn((Self::BATCH, Self::TIME), &mut draw);
        CharBatch { ids, targets }
    }

    /// The batch as parity tensors.
    fn extra(&self) -> Extra {
        let shape = vec![Self::BATCH, Self::TIME];
        vec![
            (
                "input.ids".into(),
                shape.clone(),
                labels_as_f32(self.ids.as_slice().expect("standard layout")),
            ),
            (
                "input.targets".into(),
                shape,
                labels_as_f32(self.targets.as_slice().expect("standard layout")),
            ),
        ]
    }

    /// FLOPs of one step of `blocks` causal attention layers over the batch, with `ff` the
    /// feed-forward width (0: none): Q, K, V, O projections, the scores and the weighted sum
    /// (all heads together span d), the feed-forward products and the output layer.
    fn flops(blocks: usize, ff: usize) -> u64 {
        let (b, t, d) = (Self::BATCH, Self::TIME, Self::D);
        let rows = b * t;
        let projections = 4 * 2 * (rows * d * d) as u64;
        let attention = 2 * 2 * (b * t * t * d) as u64;
        let feed_forward = 2 * 2 * (rows * d * ff) as u64;
        let output = 2 * (rows * d * Self::VOCAB) as u64;
        3 * (blocks as u64 * (projections + attention + feed_forward) + output)
    }
}

struct AttentionWorkload {
    model: CharAttention<f32>,
    optimizer: Optimizer<f32>,
    batch: CharBatch,
}

impl AttentionWorkload {
    fn new() -> AttentionWorkload {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let model =
            CharAttention::new(CharBatch::VOCAB, CharBatch::TIME, CharBatch::D, 4, &mut rng);
        AttentionWorkload {
            model,
            optimizer: OptimizerConfig::adam(1e-3).build(),
            batch: CharBatch::new(&mut rng),
        }
    }
}

impl Workload for AttentionWorkload {
    fn params(&self) -> usize {
        count(&self.model)
    }
    fn flops(&self) -> u64 {
        CharBatch::flops(1, 0)
    }
    fn step(&mut self, step: usize) -> Result<f64> {
        let b = &self.batch;
        Ok(train_step(
            step,
            &mut self.model,
            &mut self.optimizer,
            |m| m.loss_backward(&b.ids, &b.targets),
        )?)
    }
    fn gradients(&mut self) -> (f64, Extra) {
        zero_grads(&mut self.model);
        let loss = self
            .model
            .loss_backward(&self.batch.ids, &self.batch.targets);
        (f64::from(loss), self.batch.extra())
    }
    fn model(&self) -> &dyn ParamsRef {
        &self.model
    }
}

/// The Transformer-at-work chapter's decoder-only character model at the workload's sizes
/// (`GptConfig::workload`: 2 pre-LN blocks, width 128, 4 heads, feed-forward 512, no dropout).
struct TransformerWorkload {
    model: Gpt<f32>,
    optimizer: Optimizer<f32>,
    batch: CharBatch,
    /// Unused without dropout; `loss_backward` takes one.
    rng: ChaCha8Rng,
}

impl TransformerWorkload {
    fn new() -> TransformerWorkload {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let model = Gpt::new(GptConfig::workload(CharBatch::VOCAB), &mut rng)
            .expect("the workload's sizes fit together");
        TransformerWorkload {
            model,
            optimizer: OptimizerConfig::adam(1e-3).build(),
            batch: CharBatch::new(&mut rng),
            rng,
        }
    }
}

impl Workload for TransformerWorkload {
    fn params(&self) -> usize {
        count(&self.model)
    }
    fn flops(&self) -> u64 {
        let c = self.model.config();
        CharBatch::flops(c.blocks, c.ff)
    }
    fn step(&mut self, step: usize) -> Result<f64> {
        let (b, rng) = (&self.batch, &mut self.rng);
        Ok(train_step(
            step,
            &mut self.model,
            &mut self.optimizer,
            |m| m.loss_backward(&b.ids, &b.targets, rng),
        )?)
    }
    fn gradients(&mut self) -> (f64, Extra) {
        zero_grads(&mut self.model);
        let loss = self
            .model
            .loss_backward(&self.batch.ids, &self.batch.targets, &mut self.rng);
        (f64::from(loss), self.batch.extra())
    }
    fn model(&self) -> &dyn ParamsRef {
        &self.model
    }
}

// --- the program ----------------------------------------------------------------------------

fn build(name: &str) -> Box<dyn Workload> {
    match name {
        "mlp" => Box::new(Classifier::new(0.0)),
        "dropout" => Box::new(Classifier::new(0.5)),
        "vae" => Box::new(VaeWorkload::new()),
        "attention" => Box::new(AttentionWorkload::new()),
        "transformer" => Box::new(TransformerWorkload::new()),
        "made" => Box::new(MadeWorkload::new()),
        "lstm" => Box::new(LstmWorkload::new()),
        _ => unreachable!("checked against WORKLOADS"),
    }
}

fn time(name: &str, w: &mut dyn Workload, cli: &Cli, threads: usize) -> Result<String> {
    let mut step = 0;
    for _ in 0..cli.warmup {
        step += 1;
        w.step(step)?;
    }
    let mut ms = Vec::with_capacity(cli.steps as usize);
    let faults_before = page_faults();
    for _ in 0..cli.steps {
        step += 1;
        let start = Instant::now();
        w.step(step)?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let faults = faults_before.zip(page_faults()).map(|(a, b)| b - a);
    let median = median(&mut ms).expect("at least one timed step");
    let mut line = serde_json::json!({
        "workload": name,
        "step_ms_median": (median * 1000.0).round() / 1000.0,
        "step_ms_min": (ms[0] * 1000.0).round() / 1000.0, // sorted by `median`
        "steps": cli.steps,
        "threads": threads,
        "params": w.params(),
        "flops_per_step": w.flops(),
        "impl": "dlfs",
    });
    if let Some(f) = faults {
        // What the allocator settings of `runner::keep_freed_memory` are about (see
        // `bench/perf_profile.py`): pages the kernel had to map afresh during the timed steps.
        line["page_faults_per_step"] =
            serde_json::json!((f as f64 / cli.steps as f64 * 10.0).round() / 10.0);
    }
    Ok(line.to_string())
}

/// The page faults of this process so far (minor and major, all threads), where the system
/// counts them.
fn page_faults() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
        // SAFETY: `getrusage` fills the struct it is given and reports failure by its result,
        // which is checked before the struct is read.
        let usage = unsafe {
            if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
                return None;
            }
            usage.assume_init()
        };
        u64::try_from(usage.ru_minflt + usage.ru_majflt).ok()
    }
    #[cfg(not(unix))]
    None
}

fn parity(name: &str, w: &mut dyn Workload, dir: &Path) -> Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    w.model().each(&mut |n, shape, value, _| {
        tensors.push((format!("param.{n}"), shape.to_vec(), bytes(&value)));
    });
    let (loss, extra) = w.gradients();
    w.model().each(&mut |n, shape, _, grad| {
        tensors.push((format!("grad.{n}"), shape.to_vec(), bytes(&grad)));
    });
    for (n, shape, v) in extra {
        tensors.push((n, shape, bytes(&v)));
    }
    tensors.push(("loss".into(), vec![1], bytes(&[loss as f32])));
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data)
                .with_context(|| format!("tensor {n}"))?;
            Ok((n.clone(), view))
        })
        .collect::<Result<_>>()?;
    let file = dir.join(format!("{name}.safetensors"));
    let bytes = safetensors::serialize(views, None).context("serialising")?;
    dlfs::runner::write_atomic(&file, &bytes)?;
    println!(
        "{}: loss {loss:.6}, {} tensors",
        file.display(),
        tensors.len()
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if cli.list {
        WORKLOADS.iter().for_each(|w| println!("{w}"));
        return Ok(());
    }
    let workload = cli.workload.as_deref().unwrap_or("all");
    let names: Vec<&str> = match workload {
        "all" => WORKLOADS.to_vec(),
        w if WORKLOADS.contains(&w) => vec![w],
        w => bail!(
            "unknown workload `{w}`: this build has {} (or `all`)",
            WORKLOADS.join(", ")
        ),
    };
    let threads = match cli.threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
    };
    dlfs::matmul::set_threads(threads);
    dlfs::matmul::on_workers(|| measure(&names, &cli, threads))
}

fn measure(names: &[&str], cli: &Cli, threads: usize) -> Result<()> {
    for &name in names {
        let mut w = build(name);
        match &cli.parity {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
                parity(name, w.as_mut(), dir)?;
            }
            None => println!("{}", time(name, w.as_mut(), cli, threads)?),
        }
    }
    if cli.peak && cli.parity.is_none() {
        println!("{}", peak(2048, 2048, 2048, 10, threads));
        println!("{}", peak(128, 784, 256, 200, threads));
    }
    Ok(())
}

fn main() -> ExitCode {
    dlfs::runner::main(run)
}
