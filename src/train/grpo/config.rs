//! GRPO's settings, flattened into `TrainConfig` (so `flipscope train` and
//! the TUI's finetune line take them in one grammar).

use super::loss::{LossKind, ScaleRewards};
use crate::kv::numbers::{at_least_one, fraction, non_negative, positive};
use anyhow::{bail, Result};

/// What a run trains with (`--method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Supervised: cross-entropy on the gold answer.
    #[default]
    Sft,
    /// Group relative policy optimisation with verifiable rewards.
    Grpo,
}

#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct GrpoArgs {
    /// sft | grpo
    #[arg(long, value_enum, default_value_t)]
    pub method: Method,
    /// GRPO: completions sampled per prompt.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub group: usize,
    /// GRPO: sampling temperature of the rollouts.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    pub temperature: f64,
    /// GRPO: nucleus sampling of the rollouts.
    #[arg(long, default_value_t = 1.0, value_parser = fraction)]
    pub top_p: f64,
    /// GRPO: the longest completion sampled.
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    pub max_completion_tokens: usize,
    /// GRPO: rewards and their weights, `accuracy=W,format=W`.
    #[arg(long, default_value = "accuracy=0.9,format=0.1", value_parser = RewardWeights::parse)]
    pub reward: RewardWeights,
    /// GRPO: advantages (r - mean) / (std + 1e-4) per group, or r - mean only.
    #[arg(long, value_enum, default_value_t)]
    pub scale_rewards: ScaleRewards,
    /// GRPO: how the token losses are averaged.
    #[arg(long, value_enum, default_value_t)]
    pub loss: LossKind,
    /// GRPO: ratios are clipped to [1 - epsilon, 1 + epsilon-high].
    #[arg(long, default_value_t = 0.2, value_parser = fraction)]
    pub epsilon: f64,
    /// GRPO: the upper clip (clip-higher); epsilon when not given.
    #[arg(long, value_parser = non_negative)]
    pub epsilon_high: Option<f64>,
    /// GRPO: optimizer updates per batch of rollouts (1 = on-policy).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub iterations: usize,
    /// GRPO: weight of the k3 KL to the reference (the base weights; with
    /// LoRA the adapter switched off). 0 keeps no reference.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub beta: f64,
}

/// `accuracy=0.9,format=0.1`: the rewards a completion earns, weighted.
#[derive(Clone, Debug, PartialEq)]
pub struct RewardWeights {
    pub accuracy: f64,
    pub format: f64,
}

impl RewardWeights {
    pub fn parse(spec: &str) -> Result<RewardWeights> {
        let mut w = RewardWeights { accuracy: 0.0, format: 0.0 };
        let kv = |e: crate::kv::KvError| anyhow::anyhow!("--reward: {e}");
        for pair in crate::kv::pairs(spec, &[]).map_err(kv)? {
            let value: f64 = pair.parse("a number").map_err(kv)?;
            if !value.is_finite() || value < 0.0 {
                bail!("--reward: {}={value} must be a finite number of 0 or more", pair.key);
            }
            match pair.key.as_str() {
                "accuracy" => w.accuracy = value,
                "format" => w.format = value,
                _ => bail!("--reward: {}", pair.unknown(&["accuracy", "format"])),
            }
        }
        if w.accuracy + w.format == 0.0 {
            bail!("--reward: every weight is 0, so nothing would be learned");
        }
        Ok(w)
    }

    pub fn describe(&self) -> String {
        format!("accuracy={},format={}", self.accuracy, self.format)
    }
}

impl GrpoArgs {
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// What must match for a `--resume` (and what trainer_state.json records).
    pub fn describe(&self) -> String {
        format!(
            "grpo(group={}, temperature={}, top_p={}, max_completion_tokens={}, reward={}, scale_rewards={:?}, loss={}, epsilon={}, epsilon_high={}, iterations={}, beta={})",
            self.group,
            self.temperature,
            self.top_p,
            self.max_completion_tokens,
            self.reward.describe(),
            self.scale_rewards,
            self.loss.name(),
            self.epsilon,
            self.epsilon_high(),
            self.iterations,
            self.beta
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_weights_parse_and_refuse() {
        assert_eq!(RewardWeights::parse("accuracy=0.9,format=0.1").unwrap(), RewardWeights { accuracy: 0.9, format: 0.1 });
        assert_eq!(RewardWeights::parse("accuracy=1").unwrap(), RewardWeights { accuracy: 1.0, format: 0.0 });
        for (bad, want) in [
            ("accuracy=NaN", "finite"),
            ("format=-1", "0 or more"),
            ("speed=1", "unknown option `speed`"),
            ("accuracy=0", "every weight is 0"),
        ] {
            let err = RewardWeights::parse(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
