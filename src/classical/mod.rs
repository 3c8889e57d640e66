//! The classical machine-learning course, run on the 8x8 UCI digits with the book's fixed split
//! ([`crate::data::digits`]): one module per method, each small enough to read in one sitting.

pub mod forest;
pub mod lda;
pub mod neighbours;
pub mod pca;
pub mod scoreboard;
pub mod svm;
pub mod tree;
