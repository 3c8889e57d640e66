//! The VAE chapter's experiment (being written).
