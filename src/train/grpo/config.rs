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
    /// GRPO: completions sampled per prompt (2 to 1024: a group of one has no spread to learn from).
    #[arg(long, default_value_t = 8, value_parser = crate::kv::numbers::sample_count)]
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

impl GrpoArgs {
    /// Refuses settings that cannot do what they say: GRPO flags under SFT
    /// (`defaults` are the grammar's, to tell a given flag from a default),
    /// a group of one or greedy rollouts (no spread, nothing learned), and a
    /// clip-higher below the clip.
    pub fn check(&self, defaults: &GrpoArgs) -> anyhow::Result<()> {
        if self.method == Method::Sft {
            let d = defaults;
            let given: Vec<&str> = [
                ("--group", self.group != d.group),
                ("--temperature", self.temperature != d.temperature),
                ("--top-p", self.top_p != d.top_p),
                ("--max-completion-tokens", self.max_completion_tokens != d.max_completion_tokens),
                ("--reward", self.reward != d.reward),
                ("--scale-rewards", self.scale_rewards != d.scale_rewards),
                ("--loss", self.loss != d.loss),
                ("--epsilon", self.epsilon != d.epsilon),
                ("--epsilon-high", self.epsilon_high != d.epsilon_high),
                ("--iterations", self.iterations != d.iterations),
                ("--beta", self.beta != d.beta),
            ]
            .into_iter()
            .filter_map(|(flag, differs)| differs.then_some(flag))
            .collect();
            if !given.is_empty() {
                bail!("{}: GRPO settings, but the method is sft (add --method grpo, or drop them)", given.join(", "));
            }
            return Ok(());
        }
        if self.group < 2 {
            bail!("--group {}: GRPO compares completions within a group; a group of one has no spread to learn from", self.group);
        }
        if self.top_p <= 0.0 {
            bail!("--top-p 0 samples greedily: every completion of a group is the same, so GRPO learns nothing");
        }
        if let Some(high) = self.epsilon_high.filter(|h| *h < self.epsilon) {
            bail!("--epsilon-high {high} is below --epsilon {}: clip-higher widens the upper clip", self.epsilon);
        }
        Ok(())
    }
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
