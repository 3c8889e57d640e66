//! # Deep Learning From Scratch: the companion crate
//!
//! Every model of the book, written with [`ndarray`] and hand-written backward passes. The
//! modules follow the book's reading order: the foundations first (floats, parameters,
//! initialisation, the linear layer, activations, losses, optimisers, gradient checking, data,
//! plotting, the program runner), then one module per reimplementation chapter.
//!
//! Conventions used everywhere:
//!
//! * batches are `[batch, features]`, sequences `[batch, time, features]`;
//! * a layer computes `y = x W + b` with `W` of shape `[in, out]` (papers write `W x`);
//! * `forward(&self, x) -> (y, cache)` and `backward(&mut self, &cache, dy) -> dx`, where
//!   backward *adds* parameter gradients into each [`param::Param`]'s `grad`;
//!   `infer(&self, x) -> y` runs without a cache;
//! * every function that draws random numbers takes `&mut impl rand::Rng`.
#![warn(missing_docs)]

pub mod activation;
pub mod checkpoint;
pub mod classical;
pub mod course;
pub mod data;
pub mod dropout;
pub mod embedding;
pub mod float;
pub mod gradcheck;
pub mod init;
pub mod linear;
pub mod loss;
pub mod lstm;
pub mod made;
pub mod math;
pub mod matmul;
pub mod mlp;
pub mod ngram;
pub mod optim;
pub mod param;
pub mod plot;
pub mod runner;
pub mod self_attention;
pub mod transformer;
pub mod vae;
pub mod vmath;
