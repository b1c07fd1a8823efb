//! Finetuning: LoRA and full-weight SFT with data mixing, flip augmentation
//! with replay, and chain-of-thought distillation. Uses the engine; the TUI
//! reaches it only through jobs.
pub mod checkpoint;
pub mod config;
pub mod distill;
pub mod example;
pub mod grpo;
pub mod metrics;
pub mod mix;
pub mod optim;
pub mod producer;
pub mod recompute;
pub mod step;
pub mod trainer;

pub use config::{FullScope, TrainConfig, TrainEvent, TrainOutcome};
pub use trainer::{train, Trainer};
