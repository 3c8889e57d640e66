//! Shuffled mini-batches.
//!
//! Each epoch visits every training example once, in a fresh random order drawn from the
//! caller's RNG; the order is cut into batches of `batch_size` (the last one may be smaller).

use rand::Rng;
use rand::seq::SliceRandom;

// ANCHOR: batches
/// The index lists of one epoch's mini-batches over `n` examples, in a random order.
pub fn shuffled_batches(n: usize, batch_size: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    assert!(
        batch_size > 0,
        "shuffled_batches: batch size must be positive"
    );
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}
// ANCHOR_END: batches

/// Consecutive index lists `0..n` cut into batches, for evaluation.
pub fn ordered_batches(n: usize, batch_size: usize) -> Vec<Vec<usize>> {
    assert!(
        batch_size > 0,
        "ordered_batches: batch size must be positive"
    );
    (0..n)
        .collect::<Vec<_>>()
        .chunks(batch_size)
        .map(<[usize]>::to_vec)
        .collect()
}
