//! Finetuning: LoRA and full-weight SFT with data mixing, flip augmentation
//! with replay, and chain-of-thought distillation. Uses the engine; the TUI
//! reaches it only through jobs.
pub mod checkpoint;
pub mod distill;
pub mod example;
pub mod grpo;
pub mod metrics;
pub mod mix;
pub mod optim;
pub mod recompute;
pub mod run;
pub mod trainer;

pub use run::{train, Trainer};
pub use trainer::{FullScope, TrainConfig, TrainEvent, TrainOutcome};
