//! k-fold cross-validation: every example is used for validation exactly once.
//!
//! A single validation split of a few hundred examples is noisy: two settings a point apart may
//! swap places on another split. k-fold cross-validation cuts the data into `k` folds, trains
//! `k` times, each time on all folds but one and scoring on the one left out, and reports the
//! mean of the `k` scores (with their spread, which says how much to trust a difference). The
//! *stratified* version deals every class out evenly, so each fold has the class proportions of
//! the whole set: with ten classes and small folds, plain random folds can leave a class thin.
//!
//! Cross-validation replaces the validation split, never the test split: the test split is still
//! scored once, with the setting cross-validation chose, trained on all the training data.

use rand::Rng;
use rand::seq::SliceRandom;

// ANCHOR: folds
/// One round of cross-validation: the rows to train on and the rows to score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// Training rows, in increasing order.
    pub train: Vec<usize>,
    /// Validation rows, in increasing order.
    pub validation: Vec<usize>,
}

/// `k` folds of the rows `0..n`, shuffled with `rng`: fold sizes differ by at most one.
pub fn kfold(n: usize, k: usize, rng: &mut impl Rng) -> Vec<Fold> {
    assert!(k >= 2 && k <= n, "kfold: k = {k} folds of {n} rows");
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(rng);
    let mut fold_of = vec![0; n];
    for (position, &row) in rows.iter().enumerate() {
        fold_of[row] = position % k;
    }
    folds_from(&fold_of, k)
}

/// `k` folds in which every class is dealt out evenly: within each class, the rows are shuffled
/// and given to folds in turn, so each fold holds `n_c / k` (rounded) rows of every class `c`.
pub fn stratified_kfold(labels: &[usize], k: usize, rng: &mut impl Rng) -> Vec<Fold> {
    assert!(
        k >= 2 && k <= labels.len(),
        "stratified_kfold: k = {k} folds of {} rows",
        labels.len()
    );
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut fold_of = vec![0; labels.len()];
    // Continue the turn across classes, so small classes do not all start at fold 0.
    let mut turn = 0;
    for c in 0..classes {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        rows.shuffle(rng);
        for row in rows {
            fold_of[row] = turn % k;
            turn += 1;
        }
    }
    folds_from(&fold_of, k)
}

fn folds_from(fold_of: &[usize], k: usize) -> Vec<Fold> {
    (0..k)
        .map(|f| Fold {
            train: (0..fold_of.len()).filter(|&i| fold_of[i] != f).collect(),
            validation: (0..fold_of.len()).filter(|&i| fold_of[i] == f).collect(),
        })
        .collect()
}
// ANCHOR_END: folds

// ANCHOR: cross_validate
/// The scores of one setting over the folds, with their mean and standard deviation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CvScore {
    /// One score per fold, in fold order.
    pub folds: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (0 for a single fold).
    pub sd: f64,
}

/// Runs `score(fold)` (train on `fold.train`, return the score on `fold.validation`) for every
/// fold and summarises the scores.
pub fn cross_validate(folds: &[Fold], mut score: impl FnMut(&Fold) -> f64) -> CvScore {
    let scores: Vec<f64> = folds.iter().map(&mut score).collect();
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let sd = if scores.len() > 1 {
        (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    CvScore {
        folds: scores,
        mean,
        sd,
    }
}
// ANCHOR_END: cross_validate

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn check_partition(folds: &[Fold], n: usize) {
        let mut seen = vec![0; n];
        for f in folds {
            for &i in &f.validation {
                seen[i] += 1;
            }
            assert_eq!(f.train.len() + f.validation.len(), n);
            assert!(
                f.validation
                    .iter()
                    .all(|i| f.train.binary_search(i).is_err())
            );
        }
        assert!(
            seen.iter().all(|&s| s == 1),
            "every row validates exactly once"
        );
    }

    #[test]
    fn folds_partition_the_rows() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let folds = kfold(23, 5, &mut rng);
        check_partition(&folds, 23);
        let sizes: Vec<usize> = folds.iter().map(|f| f.validation.len()).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
    }

    #[test]
    fn stratified_folds_keep_the_class_proportions() {
        let labels: Vec<usize> = (0..100)
            .map(|i| if i < 80 { 0 } else { 1 + i % 2 })
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let folds = stratified_kfold(&labels, 5, &mut rng);
        check_partition(&folds, 100);
        for f in &folds {
            let count = |c| f.validation.iter().filter(|&&i| labels[i] == c).count();
            assert_eq!(count(0), 16);
            assert_eq!(count(1) + count(2), 4);
            assert!(
                (1..=3).contains(&count(1)),
                "each small class reaches every fold"
            );
        }
    }

    #[test]
    fn cross_validate_summarises_the_fold_scores() {
        let folds = kfold(4, 2, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
        let mut k = 0.0;
        let cv = cross_validate(&folds, |_| {
            k += 1.0;
            k
        });
        assert_eq!(cv.folds, [1.0, 2.0]);
        assert_eq!(cv.mean, 1.5);
        assert!((cv.sd - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
    }
}
