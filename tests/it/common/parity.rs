//! Shared fixture access for the parity tests: tiny random Qwen2.5-VL
//! checkpoints and transformers' reference numbers, made by
//! tests/parity/make_fixtures.py (rerun whenever the script changes).

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::Tensor;

pub const CASES: [&str; 2] = ["flat_tied_odd", "v5_sharded_two_images"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python() -> PathBuf {
    std::env::var_os("FLIPSCOPE_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// The fixture directory, regenerated when the script's hash differs from the stamp.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = root().join("target/parity");
        let script = root().join("tests/parity/make_fixtures.py");
        let digest = format!("{:x}", Sha256::digest(std::fs::read(&script).expect("read make_fixtures.py")));
        let stamp = std::fs::read_to_string(dir.join("STAMP")).unwrap_or_default();
        if stamp.trim() != digest {
            let out =
                std::process::Command::new(python()).arg(&script).arg(&dir).output().expect("run the fixture script with .venv's python");
            assert!(out.status.success(), "make_fixtures.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
            let stamp = std::fs::read_to_string(dir.join("STAMP")).unwrap_or_default();
            assert_eq!(stamp.trim(), digest, "the script did not write its stamp");
        }
        dir
    })
}

pub fn case_dir(case: &str) -> PathBuf {
    fixtures().join(case)
}

pub struct Reference {
    tensors: Vec<(String, Tensor)>,
}

impl Reference {
    pub fn load(case: &str) -> Reference {
        Reference { tensors: Tensor::read_safetensors(case_dir(case).join("reference.safetensors")).expect("reference.safetensors") }
    }
    pub fn get(&self, name: &str) -> Tensor {
        self.tensors.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("reference has no {name}")).1.shallow_clone()
    }
}

pub fn case_json(case: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(case_dir(case).join("case.json")).unwrap()).unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a.to_kind(tch::Kind::Float) - b.to_kind(tch::Kind::Float)).abs().max().double_value(&[])
}
