//! Attention interventions on the last prompt position (the research's
//! AdaptVis): ScalingVis multiplies its pre-softmax attention logits over the
//! image tokens by alpha in every LM layer during prefill; AdaptVis picks
//! alpha from the confidence of the first answer token.

use super::model::Qwen25VL;
use super::processor::ModelInputs;
use super::text::{AttentionHook, AttentionParts, Rows};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// The last prompt position's attention over the keys: ScalingVis/AdaptVis
/// multiply its pre-softmax logits on image keys by alpha, and attention maps
/// read its probabilities. Only that row is recomputed explicitly; every other
/// position keeps the fused kernel, so it is bitwise unchanged.
pub struct LastTokenAttention {
    /// [B, T] true on image-token keys.
    pub image_keys: Tensor,
    /// Per-sample alpha [B] (f32), or None to leave logits alone.
    pub alpha: Option<Tensor>,
    /// Layers whose probabilities to record (empty: none).
    pub capture_layers: Vec<usize>,
    /// (layer, [B, heads, T] probabilities) for each captured layer.
    pub captured: Vec<(usize, Tensor)>,
}

impl AttentionHook for LastTokenAttention {
    fn applies_to(&self, layer: usize) -> bool {
        self.alpha.is_some() || self.capture_layers.contains(&layer)
    }

    fn attend(&mut self, layer: usize, parts: &AttentionParts, out: Tensor) -> Tensor {
        let AttentionParts { q, k, v, last_row_keys, scale } = *parts;
        let (b, lq) = (q.size()[0], q.size()[2]);
        // Eager attention for the last query row, as transformers' eager path computes it.
        let q_last = q.narrow(2, lq - 1, 1);
        let mut scores = q_last.matmul(&k.transpose(-2, -1)) * scale; // [B, H, 1, T]
        let image = self.image_keys.unsqueeze(1).unsqueeze(1);
        if let Some(alpha) = &self.alpha {
            let scaled = &scores * alpha.to_kind(scores.kind()).reshape([b, 1, 1, 1]);
            scores = scaled.where_self(&image, &scores);
        }
        if let Some(keys) = last_row_keys {
            scores = scores.masked_fill(&keys.logical_not(), f64::NEG_INFINITY);
        }
        let probs = scores.softmax(-1, Kind::Float).to_kind(q.kind());
        if self.capture_layers.contains(&layer) {
            self.captured.push((layer, probs.squeeze_dim(2).to_kind(Kind::Float)));
        }
        match &self.alpha {
            Some(alpha) => {
                // Samples at alpha = 1 keep the fused kernel's row, so they stay bitwise plain.
                let changed = alpha.ne(1.0).reshape([b, 1, 1, 1]);
                let row = probs.matmul(v).where_self(&changed, &out.narrow(2, lq - 1, 1));
                Tensor::cat(&[out.narrow(2, 0, lq - 1), row], 2)
            }
            None => out,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Intervention {
    #[default]
    None,
    /// Fixed alpha (>1 sharpens attention on the image, <1 smooths it).
    Scaling { alpha: f64 },
    /// Run with alpha = 1; if the first token's max probability is below
    /// `threshold` rerun with `w1`, otherwise with `w2`.
    Adaptive { threshold: f64, w1: f64, w2: f64 },
}

impl std::fmt::Display for Intervention {
    /// The spec `parse` reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Intervention::None => f.write_str("none"),
            Intervention::Scaling { alpha } => write!(f, "scaling:{alpha}"),
            a if *a == Intervention::ADAPTVIS_PAPER => f.write_str("adaptvis"),
            Intervention::Adaptive { threshold, w1, w2 } => write!(f, "adaptvis:{threshold},{w1},{w2}"),
        }
    }
}

impl Intervention {
    /// The AdaptVis paper's WhatsUp settings (`adaptvis` with no numbers).
    pub const ADAPTVIS_PAPER: Intervention = Intervention::Adaptive { threshold: 0.3, w1: 0.5, w2: 1.5 };

    /// `none`, `scaling:ALPHA`, or `adaptvis:THRESHOLD,W1,W2`.
    pub fn parse(spec: &str) -> Result<Intervention> {
        let call = crate::kv::Call::parse(spec);
        let e = anyhow::Error::msg;
        Ok(match (call.name, call.args.len()) {
            ("none" | "plain", 0) => Intervention::None,
            ("scaling", 1) => Intervention::Scaling { alpha: call.positive(0, 1.0).map_err(e)? },
            ("adaptvis", 3) => Intervention::Adaptive {
                threshold: call.fraction(0, 0.0).map_err(e)?,
                w1: call.positive(1, 1.0).map_err(e)?,
                w2: call.positive(2, 1.0).map_err(e)?,
            },
            ("adaptvis", 0) => Intervention::ADAPTVIS_PAPER,
            _ => bail!("intervention `{spec}` is not none, scaling:ALPHA or adaptvis[:THRESHOLD,W1,W2]"),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfidenceBranch {
    /// Confidence below the threshold: w1.
    LowConfidence,
    /// Confidence at or above the threshold: w2.
    HighConfidence,
}

/// What an intervention did to one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptReport {
    pub alpha: f64,
    /// Max softmax probability of the first answer token with alpha = 1 (AdaptVis only).
    pub confidence: Option<f32>,
    pub branch: Option<ConfidenceBranch>,
}

impl Qwen25VL {
    /// Hidden states of a prompt with per-sample alphas on the last position's image attention.
    pub fn prefill_scaled(&self, inputs: &ModelInputs, alphas: &[f64], cache: &mut super::text::KvCache, rows: Rows) -> Result<Tensor> {
        let mut hook = self.last_token_hook(inputs, Some(alphas), &[]);
        self.prefill_hooked(inputs, cache, Some(&mut hook as &mut dyn AttentionHook), rows)
    }

    /// Per-sample alphas for `intervention`, or None when it leaves the model alone.
    /// Adaptive runs one plain prefill to measure the first token's confidence.
    pub fn plan_intervention(&self, inputs: &ModelInputs, intervention: &Intervention) -> Result<Option<(Vec<f64>, Vec<AdaptReport>)>> {
        let b = inputs.batch_size();
        match *intervention {
            Intervention::None => Ok(None),
            Intervention::Scaling { alpha } => Ok(Some((vec![alpha; b], vec![AdaptReport { alpha, confidence: None, branch: None }; b]))),
            Intervention::Adaptive { threshold, w1, w2 } => {
                let probs = self.last_logits(inputs)?.to_kind(Kind::Float).softmax(-1, Kind::Float);
                let conf = Vec::<f32>::try_from(probs.max_dim(-1, false).0.to_device(tch::Device::Cpu))?;
                let reports: Vec<AdaptReport> = conf
                    .iter()
                    .map(|&c| {
                        let (alpha, branch) = if (c as f64) < threshold {
                            (w1, ConfidenceBranch::LowConfidence)
                        } else {
                            (w2, ConfidenceBranch::HighConfidence)
                        };
                        AdaptReport { alpha, confidence: Some(c), branch: Some(branch) }
                    })
                    .collect();
                Ok(Some((reports.iter().map(|r| r.alpha).collect(), reports)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(Intervention::parse("none").unwrap(), Intervention::None);
        assert_eq!(Intervention::parse("scaling:1.5").unwrap(), Intervention::Scaling { alpha: 1.5 });
        assert_eq!(Intervention::parse("adaptvis:0.4,0.5,2").unwrap(), Intervention::Adaptive { threshold: 0.4, w1: 0.5, w2: 2.0 });
        assert!(matches!(Intervention::parse("adaptvis").unwrap(), Intervention::Adaptive { .. }));
        assert!(Intervention::parse("scaling:-1").unwrap_err().to_string().contains("`-1` must be above 0"));
        assert!(Intervention::parse("scaling:x").unwrap_err().to_string().contains("not a finite number"));
        assert!(Intervention::parse("adaptvis:NaN,1,1").unwrap_err().to_string().contains("argument 1 of `adaptvis:NaN,1,1`"));
        assert!(Intervention::parse("boost:2").unwrap_err().to_string().contains("is not none, scaling"));
        // Display writes the spec back, shortest form for the paper's settings.
        for spec in ["none", "scaling:1.5", "adaptvis", "adaptvis:0.4,0.5,2"] {
            assert_eq!(Intervention::parse(spec).unwrap().to_string(), spec);
        }
    }
}
