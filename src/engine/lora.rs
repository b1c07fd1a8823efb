//! LoRA adapters on the language model's projections, in PEFT's format:
//! `adapter_config.json` + `adapter_model.safetensors`, loadable by HF peft
//! and attached here without merging (or merged on request).
//!
//! Only decoder layers get adapters: the vision MLP has projections with the
//! same names, so the saved `target_modules` is a regex anchored on the
//! language model, not a list of bare names.

use super::layers::{linear, Linear};
use super::model::Qwen25VL;
use super::weights::canonical_name;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

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
        let mut in_targets = false;
        let mut targets: Vec<String> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => {
                    in_targets = false;
                    (k.trim(), v.trim())
                }
                None if in_targets => ("targets", item),
                None => bail!("--lora: `{item}` is not key=value (keys: r, alpha, dropout, targets)"),
            };
            let num =
                |what: &str| -> Result<f64> { value.parse::<f64>().with_context(|| format!("--lora: {what}=`{value}` is not a number")) };
            match key {
                "r" | "rank" => {
                    cfg.r = value.parse().with_context(|| format!("--lora: r=`{value}` is not a whole number"))?;
                    if cfg.r < 1 {
                        bail!("--lora: r must be at least 1");
                    }
                }
                "alpha" => cfg.alpha = num("alpha")?,
                "dropout" => {
                    cfg.dropout = num("dropout")?;
                    if !(0.0..1.0).contains(&cfg.dropout) {
                        bail!("--lora: dropout must be in [0, 1)");
                    }
                }
                "targets" => {
                    in_targets = true;
                    let name = TARGETS.iter().find(|(short, long)| *short == value || *long == value).map(|t| t.1).with_context(|| {
                        format!("--lora: unknown target `{value}` (one of {})", TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", "))
                    })?;
                    if !targets.iter().any(|t| t == name) {
                        targets.push(name.to_string());
                    }
                }
                other => bail!("--lora: unknown key `{other}` (keys: r, alpha, dropout, targets)"),
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

    fn targets_module(&self, module: &str) -> bool {
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
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
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

fn targeted<'a>(model: &'a mut Qwen25VL, cfg: &LoraConfig) -> Vec<(String, &'a mut Linear)> {
    model.text.linears_mut().into_iter().filter(|(name, _)| cfg.targets_module(name)).collect()
}

/// Attaches fresh adapters as PEFT initialises them: A ~ kaiming-uniform
/// (bound 1/sqrt(in)), B = 0, so the model starts out unchanged. f32 always.
/// A is drawn on the CPU, so one seed gives one adapter on every device.
pub fn attach_new(model: &mut Qwen25VL, cfg: &LoraConfig) -> Result<usize> {
    let device = model.device;
    let mut n = 0;
    for (_, linear) in targeted(model, cfg) {
        let (input, output) = linear.dims();
        let bound = 1.0 / (input as f64).sqrt();
        let a = Tensor::empty([cfg.r, input], (Kind::Float, Device::Cpu)).uniform_(-bound, bound).to_device(device);
        let b = Tensor::zeros([output, cfg.r], (Kind::Float, device));
        linear.lora = Some(Lora { a, b, scale: cfg.scale(), dropout: cfg.dropout, training: false });
        n += 1;
    }
    if n == 0 {
        bail!("--lora targets matched no language-model projection");
    }
    Ok(n)
}

/// The attached adapters' tensors by canonical name (`model.layers.0.self_attn.q_proj.lora_A.weight`).
pub fn parameters(model: &mut Qwen25VL) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (name, linear) in model.text.linears_mut() {
        if let Some(l) = &linear.lora {
            out.push((format!("{name}.lora_A.weight"), l.a.shallow_clone()));
            out.push((format!("{name}.lora_B.weight"), l.b.shallow_clone()));
        }
    }
    out
}

/// Dropout on (training) or off (evaluation) in every adapter.
pub fn set_training(model: &mut Qwen25VL, training: bool) {
    for (_, linear) in model.text.linears_mut() {
        if let Some(l) = &mut linear.lora {
            l.training = training;
        }
    }
}

/// The PEFT name of an adapter tensor (transformers 5 layout).
pub fn peft_name(canonical: &str) -> String {
    let hf = canonical.strip_prefix("model.").map(|rest| format!("model.language_model.{rest}")).unwrap_or(canonical.to_string());
    format!("base_model.model.{hf}")
}

/// The canonical name of a PEFT adapter tensor, from either transformers layout.
pub fn from_peft_name(name: &str) -> String {
    let n = name.strip_prefix("base_model.model.").unwrap_or(name);
    canonical_name(&n.replace(".default.weight", ".weight"))
}

/// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir`,
/// each through a temporary file and a rename.
pub fn save(model: &mut Qwen25VL, cfg: &LoraConfig, dir: &Path, base_model: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tensors: Vec<(String, Tensor)> =
        parameters(model).into_iter().map(|(n, t)| (peft_name(&n), t.detach().to_device(tch::Device::Cpu).contiguous())).collect();
    if tensors.is_empty() {
        bail!("no adapter is attached");
    }
    crate::fsutil::atomic_write_with(&dir.join(ADAPTER_WEIGHTS), |tmp| Ok(Tensor::write_safetensors(&tensors, tmp)?))?;
    crate::fsutil::atomic_write(&dir.join(ADAPTER_CONFIG), serde_json::to_string_pretty(&cfg.to_peft_json(base_model))?.as_bytes())?;
    Ok(())
}

/// Attaches the adapter saved in `dir` (PEFT layout, ours or HF peft's),
/// without merging. Every tensor must land on a language-model projection
/// with matching shapes; anything else is an error naming the tensor.
pub fn load(model: &mut Qwen25VL, dir: &Path) -> Result<LoraConfig> {
    let cfg_path = dir.join(ADAPTER_CONFIG);
    let weights_path = dir.join(ADAPTER_WEIGHTS);
    let cfg = LoraConfig::from_peft_json(&cfg_path)?;
    if !weights_path.exists() {
        bail!("{}: missing (expected next to {ADAPTER_CONFIG})", weights_path.display());
    }
    let tensors = Tensor::read_safetensors(&weights_path).map_err(|e| anyhow::anyhow!("{}: {e}", weights_path.display()))?;
    let device = model.device;
    let mut by_module: std::collections::BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = Default::default();
    for (name, t) in tensors {
        let canon = from_peft_name(&name);
        let (module, which) = if let Some(m) = canon.strip_suffix(".lora_A.weight") {
            (m.to_string(), 0)
        } else if let Some(m) = canon.strip_suffix(".lora_B.weight") {
            (m.to_string(), 1)
        } else {
            bail!("{}: tensor `{name}` is not a lora_A/lora_B weight", weights_path.display());
        };
        let entry = by_module.entry(module).or_default();
        let t = t.to_kind(Kind::Float).to_device(device);
        if which == 0 {
            entry.0 = Some(t)
        } else {
            entry.1 = Some(t)
        }
    }
    let mut linears: std::collections::HashMap<String, &mut Linear> = model.text.linears_mut().into_iter().collect();
    let mut targets = std::collections::BTreeSet::new();
    for (module, (a, b)) in by_module {
        let linear = linears
            .get_mut(&module)
            .with_context(|| format!("{}: `{module}` is not a language-model projection of this model", weights_path.display()))?;
        let (Some(a), Some(b)) = (a, b) else { bail!("{}: `{module}` has only one of lora_A / lora_B", weights_path.display()) };
        let (input, output) = linear.dims();
        if a.size() != [cfg.r, input] || b.size() != [output, cfg.r] {
            bail!(
                "{}: `{module}` lora_A is {:?} and lora_B {:?}; the model and r={} want [{}, {input}] and [{output}, {}]",
                weights_path.display(),
                a.size(),
                b.size(),
                cfg.r,
                cfg.r,
                cfg.r
            );
        }
        if let Some(short) = module.rsplit('.').next() {
            targets.insert(short.to_string());
        }
        linear.lora = Some(Lora { a, b, scale: cfg.scale(), dropout: cfg.dropout, training: false });
    }
    let mut cfg = cfg;
    cfg.targets = TARGETS.iter().map(|t| t.1.to_string()).filter(|t| targets.contains(t)).collect();
    Ok(cfg)
}

/// Folds every attached adapter into its base weight (W += scale * B A) and detaches it.
pub fn merge(model: &mut Qwen25VL) {
    let _guard = tch::no_grad_guard();
    for (_, linear) in model.text.linears_mut() {
        if let Some(l) = linear.lora.take() {
            let delta = (l.b.matmul(&l.a) * l.scale).to_kind(linear.weight.kind());
            let _ = linear.weight.f_add_(&delta).expect("merge adapter");
        }
    }
}

/// An adapter attached to a loaded model: what `--adapter` reports.
#[derive(Clone, Debug)]
pub struct Adapter {
    pub dir: std::path::PathBuf,
    pub config: LoraConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lora_specs() {
        let c = LoraConfig::parse("r=8,alpha=16,dropout=0.1,targets=q,v").unwrap();
        assert_eq!((c.r, c.alpha, c.dropout), (8, 16.0, 0.1));
        assert_eq!(c.targets, vec!["q_proj", "v_proj"]);
        assert_eq!(c.scale(), 2.0);
        let c = LoraConfig::parse("targets=down,gate,r=4").unwrap();
        assert_eq!(c.targets, vec!["gate_proj", "down_proj"]);
        assert_eq!(c.r, 4);
        assert_eq!(LoraConfig::parse("").unwrap(), LoraConfig::default());
        assert!(LoraConfig::parse("r=0").unwrap_err().to_string().contains("at least 1"));
        assert!(LoraConfig::parse("targets=qkv").unwrap_err().to_string().contains("unknown target `qkv`"));
        assert!(LoraConfig::parse("rank16").unwrap_err().to_string().contains("not key=value"));
        assert!(LoraConfig::parse("beta=1").unwrap_err().to_string().contains("unknown key `beta`"));
    }

    #[test]
    fn regex_names_only_decoder_projections() {
        let re = regex::Regex::new(&LoraConfig::parse("targets=q,up").unwrap().target_regex()).unwrap();
        assert!(re.is_match("model.language_model.layers.3.self_attn.q_proj"));
        assert!(re.is_match("model.layers.3.mlp.up_proj"));
        assert!(!re.is_match("model.visual.blocks.0.mlp.up_proj"));
        assert!(!re.is_match("model.language_model.layers.3.self_attn.k_proj"));
    }

    #[test]
    fn peft_names_round_trip() {
        let c = "model.layers.2.mlp.down_proj.lora_B.weight";
        assert_eq!(peft_name(c), "base_model.model.model.language_model.layers.2.mlp.down_proj.lora_B.weight");
        assert_eq!(from_peft_name(&peft_name(c)), c);
        assert_eq!(from_peft_name("base_model.model.model.layers.2.mlp.down_proj.lora_B.weight"), c);
    }
}
