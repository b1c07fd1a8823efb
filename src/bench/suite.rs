//! `flipscope bench` / `make bench`: for each checkpoint, make its random
//! weights (once, under the output folder, never committed), write the shared
//! inputs, run flipscope's figures and transformers' in one process each, and
//! write the side-by-side table.

use super::figures::ALL;
use super::inputs::BenchInputs;
use super::results::{write_results, CheckpointResult, Machine};
use super::REFERENCE_PY;
use crate::engine::config::ModelConfig;
use crate::engine::{device, random_checkpoint};
use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Kind;

/// A checkpoint the suite measures: its config, weight dtype, which figures.
pub struct BenchCheckpoint {
    pub name: &'static str,
    pub config: &'static str,
    pub dtype: &'static str,
    pub figures: &'static [&'static str],
    /// Timed runs at most (a 3B prefill on a CPU takes ten seconds each;
    /// three keep one slow spell of this shared VM from deciding its ratio).
    pub max_repeat: usize,
    pub about: &'static str,
}

pub const CHECKPOINTS: [BenchCheckpoint; 3] = [
    BenchCheckpoint {
        name: "tiny",
        config: include_str!("../../bench/configs/tiny.json"),
        dtype: "f32",
        figures: &ALL,
        max_repeat: usize::MAX,
        about: "the tests' tiny shape: LM 2x64, vision 4x32 (per-op overhead dominates)",
    },
    BenchCheckpoint {
        name: "small",
        config: include_str!("../../bench/configs/small.json"),
        dtype: "f32",
        figures: &ALL,
        max_repeat: usize::MAX,
        about: "LM 8x512, vision 8x256, vocab 8192 (each step takes about a second on 2 cores)",
    },
    BenchCheckpoint {
        name: "3b",
        config: random_checkpoint::PRESET_3B,
        dtype: "bf16",
        figures: &["load", "prefill"],
        max_repeat: 3,
        about: "Qwen2.5-VL-3B's config, random bf16 weights; load and prefill only",
    },
];

pub struct SuiteOptions {
    pub checkpoints: Vec<String>,
    pub out_dir: PathBuf,
    pub results: PathBuf,
    pub device: crate::engine::DeviceSpec,
    pub threads: i32,
    pub repeat: usize,
    pub python: PathBuf,
    /// Bytes of each text the answer-extraction figure reads.
    pub extract_bytes: usize,
}

/// The Python with transformers: FLIPSCOPE_PYTHON, else the project's .venv, else python3.
pub fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("FLIPSCOPE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(".venv/bin/python");
    if venv.exists() {
        return venv.to_path_buf();
    }
    PathBuf::from("python3")
}

fn read_json(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))? {
        Value::Object(m) => Ok(m),
        _ => bail!("{}: not a JSON object", path.display()),
    }
}

/// Writes the checkpoint's random weights unless the same config is already there.
fn ensure_checkpoint(ck: &BenchCheckpoint, dir: &Path) -> Result<()> {
    let config: Value = serde_json::from_str(ck.config).with_context(|| format!("bench config `{}`", ck.name))?;
    let stamp = dir.join("bench_config.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(ck.config) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    let kind = if ck.dtype == "bf16" { Kind::BFloat16 } else { Kind::Float };
    eprintln!("bench: writing random {} weights to {}", ck.name, dir.display());
    random_checkpoint::write(&config, dir, kind, 2 << 30, 0)?;
    std::fs::write(&stamp, ck.config)?;
    Ok(())
}

/// Reads every weight file once, so that both sides find the checkpoint in
/// the page cache: load and first-prefill figures then measure the loaders
/// (both map the files lazily), not which side happened to hit a cold disk.
fn warm_page_cache(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let mut file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            std::io::copy(&mut file, &mut std::io::sink()).with_context(|| format!("reading {}", path.display()))?;
        }
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

pub fn run_suite(o: &SuiteOptions) -> Result<()> {
    std::fs::create_dir_all(&o.out_dir).with_context(|| format!("creating {}", o.out_dir.display()))?;
    let script = o.out_dir.join("reference.py");
    std::fs::write(&script, REFERENCE_PY)?;
    let exe = std::env::current_exe()?;
    // One device for both sides, spelled the way torch reads it; and the machine, probed once.
    let device = device::name(o.device.resolve()?);
    let machine = Machine::probe(&o.python, o.threads, &device);
    let mut done = Vec::new();
    for name in &o.checkpoints {
        let ck = CHECKPOINTS.iter().find(|c| c.name == name).with_context(|| {
            format!("unknown bench checkpoint `{name}` (one of {})", CHECKPOINTS.iter().map(|c| c.name).collect::<Vec<_>>().join(", "))
        })?;
        let dir = o.out_dir.join(format!("ckpt-{}", ck.name));
        ensure_checkpoint(ck, &dir)?;
        if ck.figures.iter().any(|f| ["rollout", "grpo", "knockout"].contains(f)) {
            // These figures run the engine (decoding text, finding the prompt's regions), so they need a
            // tokenizer; the demo's has these configs' special ids.
            crate::config::write_demo_tokenizer(&dir)?;
        }
        let cfg = ModelConfig::load(&dir)?;
        let inputs = o.out_dir.join(format!("inputs-{}.safetensors", ck.name));
        BenchInputs::build(&cfg)?.save(&inputs)?;
        let figures = ck.figures.join(",");
        let ours = o.out_dir.join(format!("flipscope-{}.json", ck.name));
        let theirs = o.out_dir.join(format!("transformers-{}.json", ck.name));
        let repeat = o.repeat.min(ck.max_repeat);
        eprintln!("bench {}: flipscope ({figures})", ck.name);
        warm_page_cache(&dir)?;
        run(
            Command::new(&exe)
                .args(["bench", "figures", "--model"])
                .arg(&dir)
                .arg("--inputs")
                .arg(&inputs)
                .args(["--figures", &figures, "--device", &device, "--dtype", ck.dtype])
                .args(["--threads", &o.threads.to_string(), "--repeat", &repeat.to_string(), "--json"])
                .arg(&ours),
            "flipscope bench figures",
        )?;
        eprintln!("bench {}: transformers ({figures})", ck.name);
        warm_page_cache(&dir)?;
        run(
            Command::new(&o.python)
                .arg(&script)
                .arg(&dir)
                .arg(&inputs)
                .args([figures.as_str(), &o.threads.to_string(), &device, ck.dtype, &repeat.to_string()])
                .arg(&theirs),
            "the transformers reference (bench/reference.py)",
        )?;
        done.push(CheckpointResult {
            name: ck.name,
            about: ck.about,
            dtype: ck.dtype,
            ours: read_json(&ours)?,
            theirs: read_json(&theirs)?,
        });
        // Written after every checkpoint, so a stopped run keeps what it measured.
        write_results(&o.results, &machine, &done, None, None)?;
    }
    // The TUI's frame time, with an eval on the embedded demo model behind it
    // (the bench checkpoints have no tokenizer to ask with).
    let frames = o.out_dir.join("frames.json");
    eprintln!("bench: TUI frame time");
    run(Command::new(&exe).args(["bench", "frames", "--json"]).arg(&frames), "flipscope bench frames")?;
    let frames = read_json(&frames)?;
    write_results(&o.results, &machine, &done, Some(&frames), None)?;
    eprintln!("bench: answer extraction");
    let extraction = crate::bench::extraction::measure(o.extract_bytes, o.repeat)?;
    write_results(&o.results, &machine, &done, Some(&frames), Some(&extraction))?;
    eprintln!("bench: results in {}", o.results.display());
    Ok(())
}
