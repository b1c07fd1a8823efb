//! Per-step training metrics: one JSON line each in `metrics.jsonl`, read
//! back by `report --loss` for loss curves and by the TUI.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StepMetrics {
    pub step: usize,
    pub total_steps: usize,
    /// Fractional epoch at the end of this step.
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Prompt + answer tokens per second over this step.
    pub tokens_per_s: f64,
    /// Answer (labelled) tokens in this step.
    pub answer_tokens: usize,
    pub elapsed_s: f64,
    pub eta_s: f64,
    /// Peak memory so far: GPU memory of this process on CUDA, RSS on CPU.
    pub peak_mem_bytes: Option<u64>,
    pub mem_kind: String,
    /// Samples skipped so far because they could not be prepared.
    pub skipped: usize,
    /// Accuracy on `--eval` data when evaluated at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_accuracy: Option<f64>,
    /// Rewards, KL, clipping, lengths and entropy of a GRPO step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpo: Option<super::grpo::GrpoStats>,
}

/// Appends one line and flushes it to disk, so a kill loses nothing written.
pub fn append(path: &Path, m: &StepMetrics) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(m)?).with_context(|| format!("writing {}", path.display()))?;
    f.sync_data().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// Every step logged in `path`; a later line for a step (after a resume) replaces the earlier one.
pub fn read(path: &Path) -> Result<Vec<StepMetrics>> {
    let text = crate::fsutil::read_text(path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_step: std::collections::BTreeMap<usize, StepMetrics> = Default::default();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let m: StepMetrics =
            serde_json::from_str(line).with_context(|| format!("{} line {}: not a metrics record", path.display(), i + 1))?;
        by_step.insert(m.step, m);
    }
    Ok(by_step.into_values().collect())
}

pub fn format_duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

impl StepMetrics {
    /// The one-line progress report.
    pub fn line(&self) -> String {
        let mem =
            self.peak_mem_bytes.map(|b| format!("  peak {} {:.2} GiB", self.mem_kind, crate::engine::memory::gib(b))).unwrap_or_default();
        let eval = self.eval_accuracy.map(|a| format!("  eval acc {:.1}%", 100.0 * a)).unwrap_or_default();
        let grpo = self
            .grpo
            .as_ref()
            .map(|g| {
                format!(
                    "  reward {:.3}±{:.3}  rollout acc {:.1}%  zero-spread {:.0}%  kl {:.4}  clip {:.1}%  len {:.1}  entropy {:.2}",
                    g.reward_mean,
                    g.reward_std,
                    100.0 * g.rollout_accuracy,
                    100.0 * g.zero_spread,
                    g.kl,
                    100.0 * g.clip_fraction,
                    g.completion_tokens_mean,
                    g.entropy
                )
            })
            .unwrap_or_default();
        format!(
            "step {}/{}  epoch {:.2}  loss {:.4}  lr {:.2e}  grad {:.3}  {:.0} tok/s  eta {}{mem}{eval}{grpo}",
            self.step,
            self.total_steps,
            self.epoch,
            self.loss,
            self.lr,
            self.grad_norm,
            self.tokens_per_s,
            format_duration(self.eta_s)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_later_steps_win() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(METRICS);
        for (step, loss) in [(1, 2.0), (2, 1.5), (2, 1.4), (3, 1.0)] {
            append(&p, &StepMetrics { step, loss, mem_kind: "rss".into(), ..Default::default() }).unwrap();
        }
        let got = read(&p).unwrap();
        assert_eq!(got.iter().map(|m| (m.step, m.loss)).collect::<Vec<_>>(), vec![(1, 2.0), (2, 1.4), (3, 1.0)]);
        std::fs::write(&p, "{\"step\": \"x\"}\n").unwrap();
        assert!(format!("{:#}", read(&p).unwrap_err()).contains("line 1"));
        assert_eq!(format_duration(3725.0), "1h02m");
    }
    const METRICS: &str = super::super::checkpoint::METRICS_FILE;
}
