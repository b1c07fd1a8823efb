//! The binary, as a user runs it.

use crate::common::flipscope;

#[test]
fn data_stats_json_on_the_real_benchmark() {
    let path = crate::common::viewspatial_json().to_str().unwrap();
    let (ok, out, err) = flipscope(&["data", "stats", path, "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"], 5712);
    assert_eq!(v["by_category"]["Person perspective - Relative Direction"], 842);
    assert_eq!(v["options_count"]["2"], 173);
    assert_eq!(v["by_gold_letter"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum::<u64>(), 5712);
    assert!(v["by_gold_direction"]["front"].as_u64().unwrap() > 0);
    assert!(v["missing_images"].as_u64().unwrap() > 0);
    let (ok, text, _) = flipscope(&["data", "stats", path]);
    assert!(ok && text.contains("by category") && text.contains("missing images"));
}

#[test]
fn doctor_reports_environment_and_what_a_model_lacks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llava"}"#).unwrap();
    std::fs::write(dir.path().join("model.safetensors.index.json"), r#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#)
        .unwrap();
    let (ok, out, _) = flipscope(&["doctor", "--model", dir.path().to_str().unwrap()]);
    assert!(!ok, "an incomplete model fails doctor");
    assert!(out.contains("libtorch        2.11"), "{out}");
    assert!(out.contains("CUDA devices"));
    assert!(out.contains("config dir"));
    assert!(out.contains("config.json: field `model_type`: `llava` is not qwen2_5_vl"), "{out}");
    assert!(out.contains("preprocessor_config.json"), "{out}");
    assert!(out.contains("tokenizer.json"), "{out}");
    assert!(out.contains("model-00001-of-00002.safetensors: listed in model.safetensors.index.json but missing"), "{out}");
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "qwen2_5_vl", "vocab_size": 10}"#).unwrap();
    let (_, out, _) = flipscope(&["doctor", "--model", dir.path().to_str().unwrap()]);
    assert!(out.contains("config.json: field `hidden_size`: missing"), "{out}");
}

#[test]
fn doctor_checks_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = flipscope(&["data", "synth", "--out", dir.path().to_str().unwrap(), "--n", "5"]);
    assert!(ok, "{err}");
    let (ok, out, _) = flipscope(&["doctor", "--data", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("5 samples, 0 record errors, 0 missing images"), "{out}");
    let (ok, out, _) = flipscope(&["doctor", "--data", "vsr:/no/such.jsonl"]);
    assert!(!ok);
    assert!(out.contains("/no/such.jsonl"), "{out}");
}

#[test]
fn flip_rejects_a_bad_replay_and_unknown_formats_list_kinds() {
    let (ok, _, err) = flipscope(&["data", "flip", "x", "--out", "/tmp/x", "--replay", "1.5"]);
    assert!(!ok && err.contains("--replay 1.5: must be between 0 and 1"), "{err}");
    let (ok, _, err) = flipscope(&["data", "stats", "bogus:/tmp/x"]);
    assert!(!ok && err.contains("supported: viewspatial, whatsup, adaptvis, vsr, cvbench, sat, clevr, vlmeval, generic"), "{err}");
}
