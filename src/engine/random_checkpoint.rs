//! Random-weight checkpoints with a real config (3B, 7B) for measuring
//! memory and speed at true size. Written shard by shard so generating one
//! never holds more than a shard in memory.

use super::config::ModelConfig;
use super::model::Qwen25VL;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const PRESET_3B: &str = include_str!("../../assets/configs/qwen2_5_vl_3b.json");
pub const PRESET_7B: &str = include_str!("../../assets/configs/qwen2_5_vl_7b.json");

/// A preset name (`3b`, `7b`) or a path to a config.json.
pub fn preset_config(name: &str) -> Result<Value> {
    let text = match name {
        "3b" => PRESET_3B.to_string(),
        "7b" => PRESET_7B.to_string(),
        path => std::fs::read_to_string(path).with_context(|| format!("`{name}` is not 3b, 7b or a readable config.json"))?,
    };
    Ok(serde_json::from_str(&text)?)
}

fn dtype_name(kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Float => "float32",
        Kind::Half => "float16",
        other => bail!("{other:?} is not a checkpoint dtype"),
    })
}

/// Writes config, generation and preprocessor configs and random weights in
/// `kind`, in shards of about `shard_bytes`. Initialized as transformers
/// does: N(0, initializer_range) weights (0.02 when the config has none),
/// zero biases, norms at 1.
pub fn write(config: &Value, out: &Path, kind: Kind, shard_bytes: u64, seed: i64) -> Result<u64> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut config = config.clone();
    config["torch_dtype"] = json!(dtype_name(kind)?);
    crate::fsutil::atomic_write(&out.join("config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    let cfg = ModelConfig::from_json(&out.join("config.json"), &config, None)?;
    crate::fsutil::atomic_write(
        &out.join("generation_config.json"),
        serde_json::to_string_pretty(
            &json!({"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_ids, "pad_token_id": cfg.pad_token_id.or(cfg.bos_token_id)}),
        )?
        .as_bytes(),
    )?;
    crate::fsutil::atomic_write(
        &out.join("preprocessor_config.json"),
        serde_json::to_string_pretty(
            &json!({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}),
        )?
        .as_bytes(),
    )?;
    let plan = Qwen25VL::plan(&cfg)?;
    let mut shards: Vec<Vec<(String, Vec<i64>)>> = vec![vec![]];
    let mut size = 0u64;
    for (name, shape) in plan {
        let bytes = shape.iter().product::<i64>() as u64 * kind.elt_size_in_bytes() as u64;
        if size > 0 && size + bytes > shard_bytes {
            shards.push(vec![]);
            size = 0;
        }
        size += bytes;
        shards.last_mut().unwrap().push((name, shape));
    }
    let total = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut total_bytes = 0u64;
    let std = initializer_range(&config);
    tch::manual_seed(seed);
    let _guard = tch::no_grad_guard();
    for (i, shard) in shards.iter().enumerate() {
        let file = if total == 1 { "model.safetensors".to_string() } else { format!("model-{:05}-of-{total:05}.safetensors", i + 1) };
        let tensors: Vec<(String, Tensor)> = shard
            .iter()
            .map(|(name, shape)| {
                let t = if name.contains("norm") || name.contains("ln_q") {
                    Tensor::ones(shape.as_slice(), (kind, Device::Cpu))
                } else if name.ends_with(".bias") {
                    Tensor::zeros(shape.as_slice(), (kind, Device::Cpu))
                } else {
                    (Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)) * std).to_kind(kind)
                };
                total_bytes += (t.numel() * kind.elt_size_in_bytes()) as u64;
                weight_map.insert(name.clone(), json!(file));
                (name.clone(), t)
            })
            .collect();
        Tensor::write_safetensors(&tensors, out.join(&file)).with_context(|| format!("writing {file}"))?;
    }
    if total > 1 {
        let index = json!({"metadata": {"total_size": total_bytes}, "weight_map": weight_map});
        crate::fsutil::atomic_write(&out.join("model.safetensors.index.json"), serde_json::to_string_pretty(&index)?.as_bytes())?;
    }
    Ok(total_bytes)
}

/// The weights' standard deviation: the config's `initializer_range` (at the
/// top or in `text_config`, as transformers reads it), else 0.02.
fn initializer_range(config: &Value) -> f64 {
    config["initializer_range"].as_f64().or_else(|| config["text_config"]["initializer_range"].as_f64()).unwrap_or(0.02)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_with_real_sizes() {
        let c3 = ModelConfig::from_json(Path::new("3b"), &preset_config("3b").unwrap(), None).unwrap();
        assert_eq!((c3.text.hidden_size, c3.text.num_hidden_layers, c3.vision.depth), (2048, 36, 32));
        assert!(c3.tie_word_embeddings);
        let c7 = ModelConfig::from_json(Path::new("7b"), &preset_config("7b").unwrap(), None).unwrap();
        assert_eq!((c7.text.hidden_size, c7.text.num_key_value_heads), (3584, 4));
        let n3: i64 = Qwen25VL::plan(&c3).unwrap().iter().map(|(_, s)| s.iter().product::<i64>()).sum();
        // Qwen2.5-VL-3B has 3.75B parameters (lm_head tied).
        assert!((3_700_000_000..3_800_000_000).contains(&n3), "{n3}");
    }

    #[test]
    fn initializer_range_is_read_where_transformers_reads_it() {
        assert_eq!(initializer_range(&json!({"initializer_range": 0.1})), 0.1);
        assert_eq!(initializer_range(&json!({"text_config": {"initializer_range": 0.05}})), 0.05);
        assert_eq!(initializer_range(&json!({})), 0.02);
    }
}
