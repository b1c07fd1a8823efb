//! `flipscope doctor`: what flipscope sees, and whether a model or dataset
//! is complete.

use crate::{config, data, engine::device};
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Check that this checkpoint directory is readable and complete.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Check that this dataset spec loads and its images exist.
    #[arg(long)]
    pub data: Option<String>,
}

pub fn run(args: &DoctorArgs) -> Result<bool> {
    println!("flipscope {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch        {}", device::libtorch_version());
    println!("CUDA available  {}", tch::Cuda::is_available());
    println!("CUDA devices    {}", tch::Cuda::device_count());
    for d in device::cuda_devices() {
        println!("  {d}");
    }
    println!("cuDNN           {}", tch::Cuda::cudnn_is_available());
    let auto = tch::Device::cuda_if_available();
    println!("default device  {:?} (dtype {:?}; cpu uses {:?}, cuda uses {:?})", auto, device::default_kind(auto),
        device::default_kind(tch::Device::Cpu), device::default_kind(tch::Device::Cuda(0)));
    println!("threads         {}", tch::get_num_threads());
    println!("config dir      {}", config::config_dir().display());
    println!("cache dir       {}", config::cache_dir().display());
    let mut ok = true;
    if let Some(m) = &args.model {
        let problems = check_model(m);
        if problems.is_empty() {
            println!("model           {}: complete", m.display());
        } else {
            ok = false;
            println!("model           {}: {} problem(s)", m.display(), problems.len());
            for p in problems {
                println!("  - {p}");
            }
        }
    }
    if let Some(spec) = &args.data {
        match data::load(spec) {
            Ok(ds) => {
                let (missing, first) = ds.missing_images(3);
                println!("data            {} ({}): {} samples, {} record errors, {} missing images",
                    ds.path.display(), ds.format.name(), ds.samples.len(), ds.issues.len(), missing);
                for i in ds.issues.iter().take(3) {
                    println!("  - {i}");
                }
                for f in first {
                    println!("  - missing image {f}");
                }
                ok &= ds.issues.is_empty() && missing == 0;
            }
            Err(e) => {
                ok = false;
                println!("data            {spec}: {e}");
            }
        }
    }
    Ok(ok)
}

/// Everything missing or unreadable in a checkpoint directory.
pub fn check_model(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if !dir.is_dir() {
        return vec![format!("{}: not a directory", dir.display())];
    }
    let json = |name: &str, problems: &mut Vec<String>| -> Option<serde_json::Value> {
        let p = dir.join(name);
        match std::fs::read_to_string(&p) {
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                None
            }
            Ok(t) => serde_json::from_str(&t).map_err(|e| problems.push(format!("{name}: invalid JSON: {e}"))).ok(),
        }
    };
    if let Some(cfg) = json("config.json", &mut problems) {
        let mt = cfg.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
        if !mt.starts_with("qwen2_5_vl") {
            problems.push(format!("config.json: field `model_type` is `{mt}`, expected qwen2_5_vl"));
        }
        if cfg.get("vision_config").is_none() {
            problems.push("config.json: field `vision_config` missing".into());
        }
    }
    json("preprocessor_config.json", &mut problems);
    json("tokenizer.json", &mut problems);
    let has_template = dir.join("chat_template.jinja").is_file()
        || dir.join("chat_template.json").is_file()
        || json("tokenizer_config.json", &mut Vec::new()).is_some_and(|v| v.get("chat_template").is_some());
    if !has_template {
        problems.push("no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json `chat_template`); the built-in Qwen2.5-VL template will be used".into());
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        if let Some(idx) = json("model.safetensors.index.json", &mut problems) {
            let mut shards: Vec<String> = idx
                .get("weight_map")
                .and_then(|m| m.as_object())
                .map(|m| m.values().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            if shards.is_empty() {
                problems.push("model.safetensors.index.json: field `weight_map` is missing or empty".into());
            }
            for s in shards {
                if !dir.join(&s).is_file() {
                    problems.push(format!("{s}: listed in model.safetensors.index.json but missing"));
                }
            }
        }
    } else if !dir.join("model.safetensors").is_file() {
        problems.push("no weights: neither model.safetensors nor model.safetensors.index.json".into());
    }
    problems
}
