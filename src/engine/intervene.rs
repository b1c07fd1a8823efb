//! Attention interventions on the last prompt position (the research's
//! AdaptVis): ScalingVis multiplies its pre-softmax attention logits over the
//! image tokens by alpha in every LM layer during prefill; AdaptVis picks
//! alpha from the confidence of the first answer token.

use super::inputs::ModelInputs;
use super::model::Qwen25VL;
use super::text::Rows;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

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

impl Intervention {
    /// `none`, `scaling:ALPHA`, or `adaptvis:THRESHOLD,W1,W2`.
    pub fn parse(spec: &str) -> Result<Intervention> {
        let (kind, args) = spec.split_once(':').unwrap_or((spec, ""));
        let nums: Vec<f64> = if args.is_empty() {
            vec![]
        } else {
            args.split(',')
                .map(|x| x.trim().parse::<f64>().map_err(|_| anyhow::anyhow!("`{x}` in `{spec}` is not a number")))
                .collect::<Result<_>>()?
        };
        let positive = |x: f64| if x > 0.0 && x.is_finite() { Ok(x) } else { bail!("alpha {x} in `{spec}` must be positive") };
        Ok(match (kind, nums.as_slice()) {
            ("none" | "plain", []) => Intervention::None,
            ("scaling", [a]) => Intervention::Scaling { alpha: positive(*a)? },
            ("adaptvis", [t, w1, w2]) => Intervention::Adaptive { threshold: *t, w1: positive(*w1)?, w2: positive(*w2)? },
            // The AdaptVis paper's WhatsUp settings.
            ("adaptvis", []) => Intervention::Adaptive { threshold: 0.3, w1: 0.5, w2: 1.5 },
            _ => bail!("intervention `{spec}` is not none, scaling:ALPHA or adaptvis[:THRESHOLD,W1,W2]"),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
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
    pub branch: Option<Branch>,
}

impl Qwen25VL {
    /// Hidden states of a prompt with per-sample alphas on the last position's image attention.
    pub fn prefill_scaled(&self, inputs: &ModelInputs, alphas: &[f64], cache: &mut super::text::KvCache, rows: Rows) -> Result<Tensor> {
        let mut probe = self.last_token_probe(inputs, Some(alphas), &[]);
        self.prefill_probed(inputs, cache, Some(&mut probe), rows)
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
                        let (alpha, branch) =
                            if (c as f64) < threshold { (w1, Branch::LowConfidence) } else { (w2, Branch::HighConfidence) };
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
        assert!(Intervention::parse("scaling:-1").unwrap_err().to_string().contains("must be positive"));
        assert!(Intervention::parse("scaling:x").unwrap_err().to_string().contains("not a number"));
        assert!(Intervention::parse("boost:2").unwrap_err().to_string().contains("is not none, scaling"));
    }
}
