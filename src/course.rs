//! The course's results table, whole: every method of the classical course on the 8x8 digits,
//! next to the MLP of the reimplementation part, trained on the same splits.
//!
//! The table is shown in *Getting started*, but it borrows a network from the MLP chapter, so
//! its program lives here, after the chapters it uses in the reading order, and the classical
//! course's own code ([`crate::classical`]) depends on no reimplementation chapter.
//! [`run`] is `cargo run --release --example classical_scoreboard`: it runs
//! [`scoreboard::run_with`] (every classical method, its figures and tables) and adds the
//! MLP's row.

use crate::classical::neighbours::accuracy;
use crate::classical::scoreboard::{self, Cli, Row};
use crate::data::batches::shuffled_batches;
use crate::data::digits::DigitSplits;
use crate::loss::{argmax_rows, softmax_cross_entropy};
use crate::mlp::Mlp;
use crate::optim::Adam;
use crate::param::zero_grads;
use crate::runner::ensure_finite;
use anyhow::Result;
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The program: the classical course's second half and its results table, with the MLP's row.
pub fn run(cli: Cli) -> Result<()> {
    scoreboard::run_with(cli, |s, common| {
        Ok(vec![mlp_row(s, common.quick, common.seed)?])
    })
}

/// The MLP of the reimplementation part on the digits: a 64-128-10 network trained with Adam on
/// pixels scaled to `[0, 1]`; the epoch with the best validation accuracy is kept, which is
/// early stopping on validation, and scored once on the test split.
pub fn mlp_row(s: &DigitSplits, quick: bool, seed: u64) -> Result<Row> {
    let f32s = |x: &Array2<f64>| x.mapv(|v| (v / 16.0) as f32);
    let (xt, xv, xs) = (f32s(&s.train.x), f32s(&s.validation.x), f32s(&s.test.x));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Mlp::<f32>::new(&[64, 128, 10], &mut rng);
    let mut adam = Adam::new(1e-3);
    let max_epochs = if quick { 5 } else { 200 };
    let mut kept = (f64::NEG_INFINITY, 0, model.clone());
    for epoch in 1..=max_epochs {
        for idx in shuffled_batches(xt.nrows(), 32, &mut rng) {
            let x = xt.select(Axis(0), &idx);
            let y: Vec<usize> = idx.iter().map(|&i| s.train.y[i]).collect();
            zero_grads(&mut model);
            let (z, cache) = model.forward(&x);
            let (loss, dz) = softmax_cross_entropy(&z, &y);
            ensure_finite(epoch, "MLP training loss", f64::from(loss))?;
            model.backward(&cache, &dz);
            adam.step(&mut model);
        }
        let val = accuracy(&argmax_rows(&model.infer(&xv)), &s.validation.y);
        if val > kept.0 {
            kept = (val, epoch, model.clone());
        }
    }
    let (val, epoch, model) = kept;
    let test = accuracy(&argmax_rows(&model.infer(&xs)), &s.test.y);
    Ok(Row::new(
        "MLP 64-128-10 (reimplementation part)",
        Some(val),
        test,
        format!("Adam 1e-3, batch 32, best validation epoch {epoch} of {max_epochs}"),
    ))
}
