//! The embedding layer: a lookup table from token ids to vectors.
//!
//! Shapes: the table `E` is `[vocab, dim]`; the input is a `[batch, time]` array of ids, each
//! below `vocab`; the output is `[batch, time, dim]`, with `y[b, t, :] = E[ids[b, t], :]`.
//!
//! An embedding is a linear layer applied to one-hot rows (`onehot(id) E` is row `id` of `E`),
//! written as a gather because multiplying by a one-hot matrix wastes `vocab` times the work.
//! Its backward pass is therefore the linear layer's `dL/dW = x^T dy` for one-hot `x`: every row
//! of `dy` is *added* to the gradient row of its id. Ids that appear several times in a batch
//! receive the sum of their contributions (a scatter-add, never a scatter-assign), and the
//! rows of ids that do not appear get nothing. There is no gradient with respect to the input:
//! ids are integers.
//!
//! ```
//! use dlfs::embedding::Embedding;
//! use ndarray::array;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let table = Embedding::<f64>::new(5, 3, &mut rng);
//! let y = table.infer(&array![[0, 4, 4]]);
//! assert_eq!(y.shape(), &[1, 3, 3]);
//! assert_eq!(y.slice(ndarray::s![0, 1, ..]), y.slice(ndarray::s![0, 2, ..]));
//! ```

use crate::float::Float;
use crate::param::Param2;
use ndarray::{Array2, Array3, ArrayRef2, ArrayRef3, Axis};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

// ANCHOR: struct
/// A table of `vocab` learned vectors of width `dim`.
#[derive(Clone, Debug)]
pub struct Embedding<F: Float> {
    /// The table, `[vocab, dim]`: row `i` is the vector of token `i`.
    pub table: Param2<F>,
}
// ANCHOR_END: struct

impl<F: Float> Embedding<F> {
    /// A table drawn from a normal distribution with standard deviation `1 / sqrt(dim)`, so
    /// an embedded vector has a squared norm of about one whatever its width.
    pub fn new(vocab: usize, dim: usize, rng: &mut impl Rng) -> Self {
        let std = 1.0 / (dim as f64).sqrt();
        let table = Array2::from_shape_simple_fn((vocab, dim), || {
            let z: f64 = StandardNormal.sample(rng);
            F::of(z * std)
        });
        Self::from_table(table)
    }

    /// An embedding with the given table `[vocab, dim]`.
    pub fn from_table(table: Array2<F>) -> Self {
        Embedding {
            table: Param2::new(table),
        }
    }

    /// The number of tokens the table holds.
    pub fn vocab(&self) -> usize {
        self.table.value.nrows()
    }

    /// The width of each vector.
    pub fn dim(&self) -> usize {
        self.table.value.ncols()
    }

    fn check(&self, ids: &ArrayRef2<usize>) {
        if let Some(&bad) = ids.iter().find(|&&id| id >= self.vocab()) {
            panic!(
                "Embedding: token id {bad} is outside the table of {} tokens",
                self.vocab()
            );
        }
    }

    // ANCHOR: forward
    /// `y[b, t, :] = table[ids[b, t], :]` for ids of shape `[batch, time]`. Nothing needs
    /// caching: backward needs only the ids, which the caller still has.
    pub fn infer(&self, ids: &ArrayRef2<usize>) -> Array3<F> {
        self.check(ids);
        let (batch, time) = ids.dim();
        let mut y = Array3::zeros((batch, time, self.dim()));
        for (mut row, &id) in y.lanes_mut(Axis(2)).into_iter().zip(ids.iter()) {
            row.assign(&self.table.value.row(id));
        }
        y
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Adds `dL/dtable` for `dy = dL/dy` of shape `[batch, time, dim]`: row `t` of `dy` goes into
    /// the gradient row of its id, summed over repeats.
    pub fn backward(&mut self, ids: &ArrayRef2<usize>, dy: &ArrayRef3<F>) {
        let (batch, time) = ids.dim();
        assert_eq!(
            dy.dim(),
            (batch, time, self.dim()),
            "Embedding: dy is {:?} but the forward output was [{batch}, {time}, {}]",
            dy.shape(),
            self.dim()
        );
        self.check(ids);
        for (row, &id) in dy.lanes(Axis(2)).into_iter().zip(ids.iter()) {
            let mut target = self.table.grad.row_mut(id);
            target += &row;
        }
    }
    // ANCHOR_END: backward
}

crate::impl_params!(Embedding<F> { table });
