//! Adapters on a whole model, in PEFT's format: `adapter_config.json` +
//! `adapter_model.safetensors`, loadable by HF peft; attached here without
//! merging (or merged on request). It sits above the model.
//!
//! Only decoder layers get adapters: the vision MLP has projections with the
//! same names, so the saved `target_modules` is a regex anchored on the
//! language model, not a list of bare names.

use super::layer::{Lora, LoraConfig, TARGETS};
use crate::engine::layers::Linear;
use crate::engine::model::Qwen25VL;
use crate::engine::weights::canonical_name;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

fn targeted<'a>(model: &'a mut Qwen25VL, cfg: &LoraConfig) -> Vec<(String, &'a mut Linear)> {
    model.text.linears_mut().into_iter().filter(|(name, _)| cfg.targets_module(name)).collect()
}

/// Attaches fresh adapters as PEFT initialises them: A ~ kaiming-uniform
/// (bound 1/sqrt(in)), B = 0, so the model starts out unchanged. f32 always.
/// A is drawn on the CPU, so one seed gives one adapter on every device.
pub fn attach_new(model: &mut Qwen25VL, cfg: &LoraConfig) -> Result<usize> {
    let device = model.device;
    // Checked before anything is allocated: a rank above a projection's
    // smaller side adds parameters that can learn nothing (and r=100000
    // on a small model asks for tens of GiB).
    if let Some((name, side)) = targeted(model, cfg).into_iter().map(|(n, l)| (n, l.dims().0.min(l.dims().1))).min_by_key(|(_, side)| *side)
    {
        if cfg.r > side {
            bail!("--lora: r={} is above {side}, the smaller side of {name}; LoRA's rank is at most min(in, out)", cfg.r);
        }
    }
    let mut n = 0;
    for (_, linear) in targeted(model, cfg) {
        let (input, output) = linear.dims();
        let bound = 1.0 / (input as f64).sqrt();
        let a = Tensor::empty([cfg.r, input], (Kind::Float, Device::Cpu)).uniform_(-bound, bound).to_device(device);
        let b = Tensor::zeros([output, cfg.r], (Kind::Float, device));
        linear.lora = Some(Lora { a, b, scale: cfg.scale(), dropout: cfg.dropout, training: false, enabled: true });
        n += 1;
    }
    if n == 0 {
        bail!("--lora targets matched no language-model projection");
    }
    Ok(n)
}

/// How many projections carry an adapter.
pub fn attached(model: &mut Qwen25VL) -> usize {
    model.text.linears_mut().into_iter().filter(|(_, l)| l.lora.is_some()).count()
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

/// Every adapter on, or off so that the model is its base weights alone
/// (the reference policy of GRPO's KL term: no second copy of the model).
pub fn set_enabled(model: &mut Qwen25VL, enabled: bool) {
    for (_, linear) in model.text.linears_mut() {
        if let Some(l) = &mut linear.lora {
            l.enabled = enabled;
        }
    }
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
        linear.lora = Some(Lora { a, b, scale: cfg.scale(), dropout: cfg.dropout, training: false, enabled: true });
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
