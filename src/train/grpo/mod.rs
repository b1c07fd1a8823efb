//! GRPO: reinforcement finetuning with verifiable rewards. `loss` holds the
//! numbers (advantages, completion log-probs, the clipped objective).

pub mod loss;

pub use loss::{advantages, completion_logps, loss, LossKind, LossParts, Objective, ScaleRewards};
