//! The classical machine-learning course: linear regression (normal equation and
//! gradient descent), logistic regression (binary and softmax), the metrics of classification,
//! text features (bag-of-words, TF-IDF), then SVMs, decision trees, forests, PCA, LDA and
//! nearest-neighbour baselines, all on ndarray with hand-written gradients.
//!
//! The models are generic over [`Float`](crate::float::Float) like every layer of the book, so
//! the gradient checks run the same code in `f64`; the experiments also run in `f64`, because
//! these problems are small and the normal equation wants the precision.
//!
//! The data is the UCI 8x8 digits with the book's fixed split
//! ([`Digits::split`](crate::data::digits::Digits::split)) and passages of *Pride and Prejudice*
//! ([`text`]).

pub mod boosting;
pub mod cv;
pub mod experiment;
pub mod forest;
pub mod lda;
pub mod linear_regression;
pub mod logistic;
pub mod metrics;
pub mod neighbours;
pub mod pca;
pub mod penguins;
pub mod scoreboard;
pub mod svm;
pub mod text;
pub mod tree;
pub mod tsne;

use ndarray::{Array1, Array2, Axis};

// ANCHOR: standardizer
/// Feature scaling: subtracts each column's training mean and divides by its training standard
/// deviation, `x' = (x - mean) / std`. Columns that are constant in the training data (the 8x8
/// digits have a few pixels that are always blank) keep a scale of one, so they map to zero
/// instead of dividing by zero.
#[derive(Clone, Debug)]
pub struct Standardizer {
    /// The mean of each column of the data it was fitted on, `[features]`.
    pub mean: Array1<f64>,
    /// The standard deviation of each column (one for constant columns), `[features]`.
    pub scale: Array1<f64>,
}

impl Standardizer {
    /// Learns the means and scales from `x` (`[n, features]`, the *training* split only: fitting
    /// on validation or test data would leak them into the model).
    pub fn fit(x: &Array2<f64>) -> Standardizer {
        assert!(x.nrows() > 0, "Standardizer::fit: no rows");
        let mean = x.mean_axis(Axis(0)).expect("at least one row");
        let scale = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        Standardizer { mean, scale }
    }

    /// Applies the scaling learnt by [`fit`](Self::fit) to `x` (`[n, features]`).
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        assert_eq!(
            x.ncols(),
            self.mean.len(),
            "Standardizer: fitted on {} features, given {}",
            self.mean.len(),
            x.ncols()
        );
        (x - &self.mean) / &self.scale
    }
}
// ANCHOR_END: standardizer
