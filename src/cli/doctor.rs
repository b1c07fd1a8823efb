//! `flipscope doctor`: what flipscope sees, and whether a model or dataset
//! is complete.

use crate::engine::{config::ModelConfig, device, memory, weights::WeightFiles, Qwen25VL};
use crate::{config, data};
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Check that this checkpoint directory (or `demo`) is readable and complete.
    #[arg(long, value_parser = crate::config::model_path)]
    pub model: Option<PathBuf>,
    /// Also load the model's weights and report load time and peak memory.
    #[arg(long, requires = "model")]
    pub load: bool,
    /// Where --load puts the weights.
    #[command(flatten)]
    pub placement: crate::engine::Placement,
    /// Check that this dataset spec loads and its images exist.
    #[arg(long)]
    pub data: Option<String>,
}

pub fn run(args: &DoctorArgs) -> Result<bool> {
    println!("flipscope {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch        {}", device::libtorch_version());
    if let Err(e) = device::load_cuda_runtime() {
        println!("CUDA runtime    {e}");
    }
    println!("CUDA available  {}", tch::Cuda::is_available());
    println!("CUDA devices    {}", tch::Cuda::device_count());
    for d in device::cuda_devices() {
        println!("  {d}");
    }
    println!("cuDNN           {}", tch::Cuda::cudnn_is_available());
    let auto = device::auto();
    println!(
        "default device  {:?} (dtype {:?}; cpu uses {:?}, cuda uses {:?})",
        auto,
        device::default_kind(auto),
        device::default_kind(tch::Device::Cpu),
        device::default_kind(tch::Device::Cuda(0))
    );
    println!("threads         {}", tch::get_num_threads());
    println!("config dir      {}", config::config_dir().display());
    println!("cache dir       {}", config::cache_dir().display());
    let mut ok = true;
    if let Some(m) = &args.model {
        let problems = check_model(m);
        if problems.is_empty() {
            println!("model           {}: complete", m.display());
            if args.load {
                load_model(m, args.placement)?;
            }
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
                println!(
                    "data            {} ({}): {} samples, {} record errors, {} missing images",
                    ds.path.display(),
                    ds.format.name(),
                    ds.samples.len(),
                    ds.issues.len(),
                    missing
                );
                for i in ds.issues.iter().take(3) {
                    println!("  - {i}");
                }
                for f in first {
                    println!("  - missing image {f}");
                }
                if ds.samples.is_empty() {
                    println!("  - no samples: there is nothing to evaluate or train on");
                }
                ok &= ds.issues.is_empty() && missing == 0 && !ds.samples.is_empty();
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
        match crate::fsutil::read_text(&p) {
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                None
            }
            Ok(t) => serde_json::from_str(&t).map_err(|e| problems.push(format!("{name}: invalid JSON: {e}"))).ok(),
        }
    };
    let config = match ModelConfig::load(dir) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(strip_dir(&e.to_string(), dir));
            None
        }
    };
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
    // Every tensor the config needs, checked against the files without loading them.
    if let (Some(cfg), true) = (config, problems.iter().all(|p| !p.contains("safetensors"))) {
        let checked = WeightFiles::open(dir).map_err(anyhow::Error::from).and_then(|files| Qwen25VL::check_weights(&cfg, &files));
        if let Err(e) = checked {
            problems.push(strip_dir(&e.to_string(), dir));
        }
    }
    problems
}

fn strip_dir(msg: &str, dir: &Path) -> String {
    msg.replace(&format!("{}/", dir.display()), "")
}

/// Loads the checkpoint for real and reports time and memory.
fn load_model(dir: &Path, placement: crate::engine::Placement) -> Result<()> {
    memory::reset_peak();
    let before = memory::rss_bytes().unwrap_or(0);
    let engine = crate::engine::Engine::load_with(dir, placement)?;
    let peak = memory::peak_rss_bytes().unwrap_or(0);
    let r = &engine.load_report;
    println!(
        "load            {} tensors, {} bytes as {:?} on {:?}, {:.2}s, {} bytes viewed in place",
        r.tensors, r.weight_bytes, engine.model.kind, engine.model.device, r.seconds, r.mapped_bytes
    );
    println!(
        "load memory     rss_before={before} peak_rss={peak} peak_delta={} ratio_to_weights={:.3}",
        peak.saturating_sub(before),
        peak.saturating_sub(before) as f64 / r.weight_bytes.max(1) as f64
    );
    Ok(())
}
