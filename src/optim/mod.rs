//! Optimizers over the one flat parameter buffer.

mod sgd;

pub use sgd::{ParamGroup, Sgd, SgdConfig};

#[cfg(test)]
mod golden_tests;
