//! Every integration test, in one crate so that libtorch and polars are
//! linked into one test binary instead of one per file.

mod common;

mod bench;
mod causal;
mod cli;
mod engine_cli;
mod eval;
mod formats;
mod fuzz;
mod grpo;
mod jobs;
mod layers;
mod parity;
mod probe;
mod reliability;
mod report;
mod sampling;
mod synth_flip;
mod train;
mod tui;
mod tui_causal;
mod tui_e2e;
mod viewspatial;
