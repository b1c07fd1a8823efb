//! The engine through the binary and through bad checkpoints: parity dumps,
//! weight errors by name, load memory.

use crate::common::flipscope;
use crate::common::parity::*;
use std::path::Path;
use tch::{Kind, Tensor};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn infer_dump_has_every_parity_tensor() {
    let case = "v5_sharded_two_images";
    let dir = case_dir(case);
    let out = tempfile::tempdir().unwrap();
    let dump = out.path().join("d.safetensors");
    let j = case_json(case);
    let imgs: Vec<String> =
        j["images"].as_array().unwrap().iter().map(|f| dir.join("images").join(f.as_str().unwrap()).display().to_string()).collect();
    let model = dir.join("model").display().to_string();
    let (ok, stdout, err) = flipscope(&[
        "infer",
        "--model",
        &model,
        "--image",
        &imgs[0],
        "--image",
        &imgs[1],
        "--prompt",
        j["prompt"].as_str().unwrap(),
        "--max-new-tokens",
        "8",
        "--options",
        "A,B",
        "--device",
        "cpu",
        "--dump",
        dump.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("best: "), "{stdout}");
    let got: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&dump).unwrap().into_iter().collect();
    let r = Reference::load(case);
    for name in ["input_ids", "image_grid_thw", "position_ids"] {
        assert_eq!(got[name].kind(), Kind::Int64, "{name}");
        assert!(got[name].equal(&r.get(name)), "{name} differs from transformers");
    }
    for name in ["pixel_values", "vision_embeds", "logits"] {
        assert_eq!(got[name].kind(), Kind::Float, "{name}");
        assert_eq!(got[name].size(), r.get(name).size(), "{name}");
    }
    assert_eq!(got["generated_ids"].size(), vec![1, 8]);
    // Through our own resize the numbers stay close to transformers'.
    let mean = (&got["pixel_values"] - r.get("pixel_values")).abs().mean(Kind::Float).double_value(&[]);
    assert!(mean <= 1e-2, "{mean}");
}

#[test]
fn weight_problems_are_listed_by_name() {
    let src = case_dir("flat_tied_odd").join("model");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&src, tmp.path());
    let file = tmp.path().join("model.safetensors");
    let mut tensors = Tensor::read_safetensors(&file).unwrap();
    tensors.retain(|(n, _)| n != "model.layers.1.mlp.up_proj.weight");
    for (n, t) in tensors.iter_mut() {
        if n == "visual.blocks.0.attn.qkv.weight" {
            *t = t.narrow(0, 0, 90);
        }
    }
    tensors.push(("model.layers.7.extra.weight".into(), Tensor::zeros([2], (Kind::Float, tch::Device::Cpu))));
    Tensor::write_safetensors(&tensors, &file).unwrap();
    let err = match flipscope::engine::Engine::load(tmp.path(), tch::Device::Cpu, Kind::Float) {
        Ok(_) => panic!("a broken checkpoint loaded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("missing (1):\n    model.layers.1.mlp.up_proj.weight"), "{err}");
    assert!(err.contains("unexpected (1):\n    model.layers.7.extra.weight"), "{err}");
    assert!(err.contains("visual.blocks.0.attn.qkv.weight is [90, 32], config says [96, 32]"), "{err}");
    // doctor reports the same without loading.
    let (ok, out, _) = flipscope(&["doctor", "--model", tmp.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("model.layers.1.mlp.up_proj.weight"), "{out}");

    // An untied checkpoint without lm_head is missing it; a tied one is not.
    let v5 = tempfile::tempdir().unwrap();
    copy_dir(&case_dir("v5_sharded_two_images").join("model"), v5.path());
    let index = v5.path().join("model.safetensors.index.json");
    let mut idx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let shard = idx["weight_map"]["lm_head.weight"].as_str().unwrap().to_string();
    idx["weight_map"].as_object_mut().unwrap().remove("lm_head.weight");
    std::fs::write(&index, idx.to_string()).unwrap();
    let shard_path = v5.path().join(&shard);
    let mut t = Tensor::read_safetensors(&shard_path).unwrap();
    t.retain(|(n, _)| n != "lm_head.weight");
    if t.is_empty() {
        std::fs::remove_file(&shard_path).unwrap();
    } else {
        Tensor::write_safetensors(&t, &shard_path).unwrap();
    }
    let err = flipscope::engine::Engine::load(v5.path(), tch::Device::Cpu, Kind::Float).err().unwrap().to_string();
    assert!(err.contains("missing (1):\n    lm_head.weight"), "{err}");
}

#[test]
fn corrupt_weight_file_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&case_dir("flat_tied_odd").join("model"), tmp.path());
    std::fs::write(tmp.path().join("model.safetensors"), b"not a safetensors file").unwrap();
    let err = flipscope::engine::Engine::load(tmp.path(), tch::Device::Cpu, Kind::Float).err().unwrap().to_string();
    assert!(err.contains("model.safetensors: not a safetensors file"), "{err}");
}

/// A bf16 checkpoint of ~60 MB loaded as f32 (twice its size): the peak
/// resident growth while loading stays within 1.25x the loaded weights.
#[test]
fn load_peak_memory_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let src = case_dir("flat_tied_odd").join("model");
    for f in ["preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["hidden_size"] = 512.into();
    cfg["intermediate_size"] = 1536.into();
    cfg["num_hidden_layers"] = 6.into();
    cfg["num_attention_heads"] = 8.into();
    cfg["num_key_value_heads"] = 2.into();
    cfg["vocab_size"] = 8192.into();
    cfg["rope_scaling"]["mrope_section"] = serde_json::json!([8, 12, 12]);
    cfg["vision_config"]["hidden_size"] = 256.into();
    cfg["vision_config"]["intermediate_size"] = 512.into();
    cfg["vision_config"]["out_hidden_size"] = 512.into();
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let config = flipscope::engine::config::ModelConfig::load(tmp.path()).unwrap();
    let plan = flipscope::engine::Qwen25VL::plan(&config).unwrap();
    tch::manual_seed(0);
    let tensors: Vec<(String, Tensor)> =
        plan.iter().map(|(n, s)| (n.clone(), Tensor::randn(s.as_slice(), (Kind::BFloat16, tch::Device::Cpu)))).collect();
    Tensor::write_safetensors(&tensors, tmp.path().join("model.safetensors")).unwrap();
    drop(tensors);
    let (ok, out, err) = flipscope(&["doctor", "--model", tmp.path().to_str().unwrap(), "--load", "--device", "cpu", "--dtype", "f32"]);
    assert!(ok, "{out}{err}");
    let line = out.lines().find(|l| l.starts_with("load memory")).expect(&out);
    let ratio: f64 = line.split("ratio_to_weights=").nth(1).unwrap().trim().parse().unwrap();
    let weights: u64 = out.lines().find(|l| l.starts_with("load ")).unwrap().split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(weights > 100_000_000, "{out}");
    eprintln!("{line}");
    assert!(ratio <= 1.25, "peak RSS growth is {ratio:.3}x the loaded weights: {line}");
}

/// `model random` writes what transformers itself loads (Conv3d patch kernel,
/// names, index), so the same checkpoint serves both sides of a benchmark.
#[test]
fn random_checkpoints_load_in_transformers_and_flipscope() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ckpt");
    let config = case_dir("flat_tied_odd").join("model/config.json");
    let (ok, _, err) = flipscope(&["model", "random", "--preset", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.join("model.safetensors").exists());
    flipscope::engine::Qwen25VL::load(&out, tch::Device::Cpu, Kind::Float).unwrap();
    // Small shards: an index and several files, loaded by name through it.
    let sharded = tmp.path().join("sharded");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    flipscope::engine::random_checkpoint::write(&cfg, &sharded, Kind::BFloat16, 200_000, 1).unwrap();
    let shards =
        std::fs::read_dir(&sharded).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("model-")).count();
    assert!(shards >= 2, "{shards} shards");
    flipscope::engine::Qwen25VL::load(&sharded, tch::Device::Cpu, Kind::Float).unwrap();
    let script = format!(
        "import torch\nfrom transformers import Qwen2_5_VLForConditionalGeneration as M\nM.from_pretrained({:?}, dtype=torch.float32)\nprint('ok')",
        out.display().to_string()
    );
    let py = std::process::Command::new(python()).args(["-c", &script]).output().unwrap();
    assert!(py.status.success(), "transformers refused the checkpoint:\n{}", String::from_utf8_lossy(&py.stderr));
}

/// On the CPU, weights stored in the chosen dtype are views of a private
/// mapping: nothing is copied at load, writes (training, merging) stay in
/// the process, and the file on disk never changes.
#[test]
fn same_dtype_cpu_weights_view_the_file_and_writes_stay_private() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ckpt");
    let config = case_dir("flat_tied_odd").join("model/config.json");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    flipscope::engine::random_checkpoint::write(&cfg, &out, Kind::Float, 1 << 30, 3).unwrap();
    let file = out.join("model.safetensors");
    let bytes_before = std::fs::read(&file).unwrap();

    let (model, report) = flipscope::engine::Qwen25VL::load(&out, tch::Device::Cpu, Kind::Float).unwrap();
    assert_eq!(report.mapped_bytes, report.weight_bytes, "every f32 weight of an f32 file is viewed in place");
    let (name, original) = {
        let (name, w) = model.params.iter().find(|(n, _)| n.ends_with("q_proj.weight")).unwrap();
        let original = w.copy();
        let stored = Tensor::read_safetensors(&file).unwrap().into_iter().find(|(n, _)| n == name).unwrap().1;
        assert!(stored.equal(&original), "{name}: the view reads the file's values");
        tch::no_grad(|| {
            let _ = w.shallow_clone().g_add_scalar_(1.0);
        });
        assert!(w.equal(&(&original + 1.0)), "{name}: written in place");
        (name.clone(), original)
    };
    drop(model);
    assert_eq!(std::fs::read(&file).unwrap(), bytes_before, "the write stayed private: the file is unchanged");

    let (again, report) = flipscope::engine::Qwen25VL::load(&out, tch::Device::Cpu, Kind::Float).unwrap();
    // Prefaulting maps exactly the viewed weights' pages, in the background; the values stay the file's.
    assert_eq!(again.prefault(), report.mapped_bytes);
    let (_, w2) = again.params.iter().find(|(n, _)| *n == name).unwrap();
    assert!(w2.equal(&original), "{name}: a fresh load sees the file, not the earlier process-private write");

    // Converting (f32 file, bf16 wanted) copies instead.
    let (bf16, converted) = flipscope::engine::Qwen25VL::load(&out, tch::Device::Cpu, Kind::BFloat16).unwrap();
    assert_eq!(converted.mapped_bytes, 0);
    assert_eq!(bf16.prefault(), 0, "converted weights gave their pages back; nothing to map");
    assert!(converted.weight_bytes > 0);
}
