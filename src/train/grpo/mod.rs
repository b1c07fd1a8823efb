//! GRPO: reinforcement finetuning with verifiable rewards. `loss` holds the
//! numbers (advantages, completion log-probs, the clipped objective),
//! `rewards` what a completion earns, `config` the settings.

pub mod config;
pub mod loss;
pub mod rewards;
pub mod step;
pub mod watch;

pub use config::{GrpoArgs, Method, RewardWeights};
pub use loss::{advantages, completion_logps, completion_logps_entropy, loss, LossKind, LossParts, Objective, ScaleRewards, Totals};
pub use step::{grpo_step, learn, rollouts, GrpoStats, Rollout, StepInputs};
