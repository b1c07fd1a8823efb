//! The LoRA layer: one projection's low-rank update, and the adapter
//! settings (`r`, `alpha`, `dropout`, targets) with their PEFT config form.
//! It sits below the model: `layers::Linear` carries an optional `Lora`.

use crate::engine::layers::linear;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use tch::Tensor;

/// The projections LoRA may target, by short and module name.
pub const TARGETS: [(&str, &str); 7] =
    [("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj"), ("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")];

/// One projection's low-rank update: y += scale * B(A(dropout(x))), in f32
/// whatever the base dtype (bf16 base weights, f32 adapters on CUDA).
pub struct Lora {
    /// [r, in]
    pub a: Tensor,
    /// [out, r]
    pub b: Tensor,
    pub scale: f64,
    pub dropout: f64,
    pub training: bool,
    /// Off: the projection is the base weights alone (GRPO's reference model).
    pub enabled: bool,
}

impl Lora {
    pub fn delta(&self, x: &Tensor) -> Tensor {
        let h = x.to_kind(self.a.kind());
        let h = if self.training && self.dropout > 0.0 { h.dropout(self.dropout, true) } else { h };
        (linear(&linear(&h, &self.a, None), &self.b, None) * self.scale).to_kind(x.kind())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    pub r: i64,
    pub alpha: f64,
    pub dropout: f64,
    /// Module names (`q_proj`, ...), in TARGETS order.
    pub targets: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig { r: 16, alpha: 32.0, dropout: 0.05, targets: TARGETS.iter().map(|t| t.1.to_string()).collect() }
    }
}

impl LoraConfig {
    /// `r=16,alpha=32,dropout=0.05,targets=q,k,v,o,gate,up,down` (any subset, any order).
    pub fn parse(spec: &str) -> Result<LoraConfig> {
        let mut cfg = LoraConfig::default();
        let mut targets: Vec<String> = Vec::new();
        let kv = |e: crate::kv::KvError| anyhow::anyhow!("--lora: {e}");
        for pair in crate::kv::pairs(spec, &["targets"]).map_err(kv)? {
            match pair.key.as_str() {
                "r" | "rank" => {
                    cfg.r = pair.parse("a whole number").map_err(kv)?;
                    if cfg.r < 1 {
                        bail!("--lora: r must be at least 1");
                    }
                }
                "alpha" => {
                    cfg.alpha = pair.parse("a number").map_err(kv)?;
                    if !(cfg.alpha.is_finite() && cfg.alpha > 0.0) {
                        bail!("--lora: alpha must be a finite number above 0, not {}", cfg.alpha);
                    }
                }
                "dropout" => {
                    cfg.dropout = pair.parse("a number").map_err(kv)?;
                    if !(0.0..1.0).contains(&cfg.dropout) {
                        bail!("--lora: dropout must be in [0, 1)");
                    }
                }
                "targets" => {
                    for value in pair.value.split(',').map(str::trim) {
                        let name =
                            TARGETS.iter().find(|(short, long)| *short == value || *long == value).map(|t| t.1).with_context(|| {
                                format!(
                                    "--lora: unknown target `{value}` (one of {})",
                                    TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
                                )
                            })?;
                        if !targets.iter().any(|t| t == name) {
                            targets.push(name.to_string());
                        }
                    }
                }
                _ => bail!("--lora: {}", pair.unknown(&["r", "alpha", "dropout", "targets"])),
            }
        }
        if !targets.is_empty() {
            cfg.targets = TARGETS.iter().map(|t| t.1.to_string()).filter(|t| targets.contains(t)).collect();
        }
        Ok(cfg)
    }

    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    pub fn describe(&self) -> String {
        format!("r={} alpha={} dropout={} targets={}", self.r, self.alpha, self.dropout, self.targets.join(","))
    }

    pub(crate) fn targets_module(&self, module: &str) -> bool {
        module.starts_with("model.layers.") && self.targets.iter().any(|t| module.ends_with(&format!(".{t}")))
    }

    /// The regex PEFT matches module names against (both transformers layouts).
    pub fn target_regex(&self) -> String {
        let attn: Vec<&str> =
            self.targets.iter().filter(|t| matches!(t.as_str(), "q_proj" | "k_proj" | "v_proj" | "o_proj")).map(String::as_str).collect();
        let mlp: Vec<&str> =
            self.targets.iter().filter(|t| matches!(t.as_str(), "gate_proj" | "up_proj" | "down_proj")).map(String::as_str).collect();
        let mut alts = Vec::new();
        if !attn.is_empty() {
            alts.push(format!("self_attn\\.({})", attn.join("|")));
        }
        if !mlp.is_empty() {
            alts.push(format!("mlp\\.({})", mlp.join("|")));
        }
        format!("^model\\.(language_model\\.)?layers\\.\\d+\\.({})$", alts.join("|"))
    }

    pub fn to_peft_json(&self, base_model: &str) -> Value {
        json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.target_regex(),
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": false,
            "use_dora": false,
            "init_lora_weights": true,
            "inference_mode": true,
            "modules_to_save": null,
            "flipscope_targets": self.targets,
        })
    }

    /// Reads a PEFT `adapter_config.json`, naming the file and field on error.
    pub fn from_peft_json(path: &Path) -> Result<LoraConfig> {
        let text = crate::fsutil::read_text(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
        let field = |name: &str| v.get(name).with_context(|| format!("{}: field `{name}` is missing", path.display()));
        if let Some(t) = v.get("peft_type").and_then(Value::as_str) {
            if t != "LORA" {
                bail!("{}: field `peft_type` is {t}; only LORA adapters are supported", path.display());
            }
        }
        for unsupported in ["use_dora", "use_rslora"] {
            if v.get(unsupported).and_then(Value::as_bool) == Some(true) {
                bail!("{}: field `{unsupported}` is true; not supported", path.display());
            }
        }
        let r = field("r")?.as_i64().with_context(|| format!("{}: field `r` is not an integer", path.display()))?;
        let alpha = field("lora_alpha")?.as_f64().with_context(|| format!("{}: field `lora_alpha` is not a number", path.display()))?;
        let dropout = v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
        // Targets are read back from the weights themselves; this is for display.
        let targets = match v.get("flipscope_targets").or_else(|| v.get("target_modules")) {
            Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
            Some(Value::String(re)) => TARGETS.iter().filter(|t| re.contains(t.1)).map(|t| t.1.to_string()).collect(),
            _ => vec![],
        };
        Ok(LoraConfig { r, alpha, dropout, targets })
    }
}
