//! `flipscope bench`: flipscope and HF transformers measured side by side on
//! the same random-weight checkpoints, inputs and thread count.
//!
//! `inputs` makes the shared inputs, `figures` measures flipscope in a
//! process of its own (so peak RSS is its own), `reference.py` measures
//! transformers, `suite` runs both per checkpoint and `results` writes the
//! table of ratios to `bench/RESULTS.md`.

pub mod extraction;
pub mod figures;
pub mod inputs;
pub mod results;
pub mod suite;

/// The reference script, embedded so the binary carries the harness.
pub const REFERENCE_PY: &str = include_str!("../../bench/reference.py");
