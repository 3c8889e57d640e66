//! The embedding layer: forward is a lookup, backward a scatter-add, checked against central
//! differences with repeated ids (the case a scatter-assign gets wrong).

mod common;

use dlfs::embedding::Embedding;
use dlfs::gradcheck::{GradCheck, TOLERANCE};
use ndarray::{Array2, Array3, array, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn weights(batch: usize, time: usize, dim: usize) -> Array3<f64> {
    Array3::from_shape_fn((batch, time, dim), |(b, t, d)| {
        ((b * 7 + t * 3 + d) as f64 * 0.37).sin()
    })
}

#[test]
fn forward_looks_rows_up() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let layer = Embedding::<f64>::new(6, 4, &mut rng);
    let ids = array![[5, 0, 2], [2, 2, 1]];
    let y = layer.infer(&ids);
    assert_eq!(y.shape(), &[2, 3, 4]);
    for ((b, t), &id) in ids.indexed_iter() {
        assert_eq!(y.slice(s![b, t, ..]), layer.table.value.row(id));
    }
}

#[test]
fn gradient_check_with_repeated_ids() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut layer = Embedding::<f64>::new(5, 3, &mut rng);
    // Id 2 appears three times and id 4 never: its gradient row must stay zero.
    let ids: Array2<usize> = array![[2, 0, 2], [1, 2, 3]];
    let w = weights(2, 3, 3);
    let report = GradCheck::default().params(
        &mut layer,
        |m| (m.infer(&ids) * &w).sum() + 0.5 * m.infer(&ids).mapv(|v| v * v).sum(),
        |m| {
            let y = m.infer(&ids);
            let dy = &w + &y;
            m.backward(&ids, &dy);
        },
    );
    report.assert_below(TOLERANCE);
    assert!(layer.table.grad.row(4).iter().all(|&g| g == 0.0));
}

#[test]
fn a_scatter_assign_fails_the_check() {
    // The bug the accumulation rule is there for: writing each row instead of adding it keeps
    // only the last occurrence of a repeated id.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut layer = Embedding::<f64>::new(4, 2, &mut rng);
    let ids: Array2<usize> = array![[1, 1, 3]];
    let w = weights(1, 3, 2);
    let report = GradCheck::default().params(
        &mut layer,
        |m| (m.infer(&ids) * &w).sum(),
        |m| {
            for (t, &id) in ids.iter().enumerate() {
                let row = w.slice(s![0, t, ..]);
                m.table.grad.row_mut(id).assign(&row);
            }
        },
    );
    assert!(report.verify(TOLERANCE).is_err());
}

#[test]
fn parameter_names() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut layer = Embedding::<f32>::new(65, 16, &mut rng);
    common::assert_params(&mut layer, &["table"], 65 * 16);
}

#[test]
#[should_panic(expected = "token id 7 is outside the table of 5 tokens")]
fn an_id_outside_the_table_is_named() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let layer = Embedding::<f32>::new(5, 2, &mut rng);
    layer.infer(&array![[1, 7]]);
}
