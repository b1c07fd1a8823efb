//! `bench/RESULTS.md`: each figure for flipscope and transformers, their
//! ratio and the target it is held to, plus the machine it ran on.

use crate::fsutil::atomic_write;
use anyhow::Result;
use serde_json::{Map, Value};
use std::fmt::Write;
use std::path::Path;

pub struct CheckpointResult {
    pub name: &'static str,
    pub about: &'static str,
    pub dtype: &'static str,
    pub ours: Map<String, Value>,
    pub theirs: Map<String, Value>,
}

/// A row: label, unit, flipscope's key, transformers' key, whether higher
/// is better, and the target on the ratio flipscope / transformers.
pub struct Row {
    pub label: &'static str,
    pub unit: &'static str,
    pub ours: &'static str,
    pub theirs: &'static str,
    pub higher_is_better: bool,
    pub target: Option<f64>,
}

const fn row(label: &'static str, unit: &'static str, ours: &'static str, theirs: &'static str, higher: bool, target: Option<f64>) -> Row {
    Row { label, unit, ours, theirs, higher_is_better: higher, target }
}

pub const ROWS: [Row; 20] = [
    row("Time to the first answer (load + first prefill)", "s", "first_answer_s", "first_answer_s", false, Some(1.0)),
    row("Checkpoint load", "s", "load_s", "load_s", false, None),
    row("Load peak memory", "GiB", "load_peak_gib", "load_peak_gib", false, Some(0.6)),
    row("First prefill (lazy loading pays here)", "s", "first_prefill_s", "first_prefill_s", false, None),
    row("Peak memory through the first prefill", "GiB", "first_prefill_peak_gib", "first_prefill_peak_gib", false, None),
    row("Prefill (448x448 + 40 tokens)", "s", "prefill_s", "prefill_s", false, Some(1.0)),
    row("Vision tower alone (within the prefill)", "s", "prefill_vision_s", "prefill_vision_s", false, None),
    row("Decode, 64 greedy tokens", "tok/s", "decode_tok_s", "decode_tok_s", true, Some(1.3)),
    row("Eval b1 vs generate-16 + letter", "samples/s", "eval_b1_sps", "eval_gen_b1_sps", true, Some(3.0)),
    row("Eval b8 vs generate-16 + letter", "samples/s", "eval_b8_sps", "eval_gen_b8_sps", true, Some(3.0)),
    row("Eval b1 vs forward-only scoring", "samples/s", "eval_b1_sps", "eval_b1_sps", true, Some(1.0)),
    row("Eval b8 vs forward-only scoring", "samples/s", "eval_b8_sps", "eval_b8_sps", true, Some(1.0)),
    row("Saliency (backward to pixels)", "s", "saliency_s", "saliency_s", false, Some(1.0)),
    row("Saliency peak memory", "GiB", "saliency_peak_gib", "saliency_peak_gib", false, None),
    row("LoRA training step (r=16, batch 8)", "s", "train_s", "train_s", false, Some(1.0)),
    row("Training step peak memory", "GiB", "train_peak_gib", "train_peak_gib", false, None),
    row("Rollouts: 8 x 64 sampled tokens per prompt (num_return_sequences=8)", "tok/s", "rollout_tok_s", "rollout_tok_s", true, Some(1.5)),
    row("Rollout peak memory", "GiB", "rollout_peak_gib", "rollout_peak_gib", false, None),
    row("GRPO step (8 x 64 rollouts + update with KL, LoRA r=16)", "s", "grpo_s", "grpo_s", false, Some(1.0)),
    row("GRPO step peak memory", "GiB", "grpo_peak_gib", "grpo_peak_gib", false, None),
];

/// Whether a ratio meets its target (at most for times and memory, at least for rates).
pub fn meets(r: &Row, ratio: f64) -> Option<bool> {
    r.target.map(|t| if r.higher_is_better { ratio >= t } else { ratio <= t })
}

pub struct Machine {
    pub lines: Vec<(String, String)>,
}

fn first_match(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
}

/// The vector extensions that pick libtorch's CPU kernels: without AVX-512,
/// bf16 matmuls leave oneDNN for a generic dot-product loop on both sides
/// (measured: a 3B bf16 prefill 154 s on an AVX2-only EPYC, ~10 s with AVX-512).
fn vector_units(flags: &str) -> String {
    let has: Vec<&str> = flags.split_whitespace().collect();
    let found: Vec<&str> = ["avx2", "avx512f", "avx512_bf16", "amx_bf16"].into_iter().filter(|f| has.contains(f)).collect();
    let list = if found.is_empty() { "none of avx2/avx512".to_string() } else { found.join(" ") };
    if found.contains(&"avx512f") {
        list
    } else {
        format!("{list} (no AVX-512: bf16 matmuls take libtorch's slow generic kernel, on both sides)")
    }
}

impl Machine {
    pub fn probe(python: &Path, threads: i32, device: &str) -> Machine {
        let torch = std::process::Command::new(python)
            .args(["-c", "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let mut lines = vec![
            ("CPU".to_string(), first_match("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into())),
            ("cores available".to_string(), cores.to_string()),
            ("CPU vector units".to_string(), vector_units(&first_match("/proc/cpuinfo", "flags").unwrap_or_default())),
            ("memory".to_string(), first_match("/proc/meminfo", "MemTotal").unwrap_or_else(|| "?".into())),
            ("threads (both sides)".to_string(), threads.to_string()),
            ("device".to_string(), device.to_string()),
            ("torch / transformers / peft (reference)".to_string(), torch),
            ("flipscope".to_string(), format!("{} (libtorch through tch)", env!("CARGO_PKG_VERSION"))),
        ];
        if device.starts_with("cuda") {
            if let Ok(o) =
                std::process::Command::new("nvidia-smi").args(["--query-gpu=name,memory.total", "--format=csv,noheader"]).output()
            {
                lines.push(("GPU".into(), String::from_utf8_lossy(&o.stdout).trim().to_string()));
            }
        }
        Machine { lines }
    }
}

/// TUI frame times (`flipscope bench frames`), flipscope alone: a frame is
/// one key from `update` to a drawn 160x48 screen.
pub const FRAME_TARGET_MS: f64 = 16.0;

fn frames_section(frames: &Map<String, Value>) -> String {
    let mut s = String::from("\n## TUI frame time (flipscope alone)\n\n");
    let samples = num(frames, "samples").unwrap_or(0.0);
    let _ = writeln!(
        s,
        "`flipscope bench frames`: one key press (down, page down/up, up) from `update` to a drawn 160x48 frame, \
         on the Samples pane of ViewSpatial-Bench's {samples:.0} questions; then again while the engine thread runs \
         an eval ({} records written meanwhile). Target: p99 <= {FRAME_TARGET_MS} ms.\n",
        num(frames, "eval_progress").unwrap_or(0.0)
    );
    s.push_str("| Scenario | frames | p50 | p99 | max | met |\n|---|---:|---:|---:|---:|:---:|\n");
    for (key, label) in [("scrolling", "Scrolling"), ("during_eval", "Scrolling while an eval runs")] {
        let Some(Value::Object(st)) = frames.get(key) else { continue };
        let p99 = num(st, "p99_ms").unwrap_or(f64::INFINITY);
        let _ = writeln!(
            s,
            "| {label} | {:.0} | {:.2} ms | {p99:.2} ms | {:.2} ms | {} |",
            num(st, "frames").unwrap_or(0.0),
            num(st, "p50_ms").unwrap_or(0.0),
            num(st, "max_ms").unwrap_or(0.0),
            if p99 <= FRAME_TARGET_MS { "yes" } else { "**no**" }
        );
    }
    s
}

fn num(m: &Map<String, Value>, key: &str) -> Option<f64> {
    m.get(key).and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// The markdown page for `results`.
pub fn render(machine: &Machine, results: &[CheckpointResult]) -> String {
    let mut s = String::from("# flipscope vs HF transformers\n\n");
    s.push_str(
        "Written by `flipscope bench` (`make bench`). Both sides run in the same bench run on the same random-weight \
         checkpoint, the same inputs (`inputs-*.safetensors`: token ids and pixel values written once) and the same \
         thread count, each in a process of its own. Ratio = flipscope / transformers. Only ratios from one run are \
         comparable; absolute times vary from run to run.\n\n## Machine\n\n",
    );
    for (k, v) in &machine.lines {
        let _ = writeln!(s, "- {k}: {v}");
    }
    for r in results {
        let _ = writeln!(s, "\n## `{}` ({}): {}\n", r.name, r.dtype, r.about);
        s.push_str("| Figure | flipscope | transformers | ratio | target | met |\n|---|---:|---:|---:|---:|:---:|\n");
        for row in ROWS.iter() {
            let (Some(a), Some(b)) = (num(&r.ours, row.ours), num(&r.theirs, row.theirs)) else { continue };
            let ratio = a / b;
            let target = row.target.map(|t| format!("{} {t}x", if row.higher_is_better { ">=" } else { "<=" })).unwrap_or_default();
            let met = match meets(row, ratio) {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(s, "| {} | {a:.4} {u} | {b:.4} {u} | {ratio:.2}x | {target} | {met} |", row.label, u = row.unit);
        }
        s.push_str(&roofline(r));
        s.push_str(&knockout_line(&r.ours));
        if let (Some(a), Some(b)) = (r.ours.get("eval_picks"), r.theirs.get("eval_picks")) {
            let (a, b) = (a.as_array().cloned().unwrap_or_default(), b.as_array().cloned().unwrap_or_default());
            let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
            let _ = writeln!(s, "\nSame work on both sides: the option letter chosen agrees on {same} of {} eval samples.", b.len());
        }
    }
    s
}

/// The knockout sweep is flipscope against itself: batched variants against one full forward per cell.
pub const KNOCKOUT_TARGET: f64 = 3.0;

fn knockout_line(ours: &Map<String, Value>) -> String {
    let (Some(b), Some(n), Some(cells)) = (num(ours, "knockout_batched_s"), num(ours, "knockout_naive_s"), num(ours, "knockout_cells"))
    else {
        return String::new();
    };
    let speedup = n / b;
    format!(
        "\nKnockout sweep (flipscope alone; {cells:.0} cells: window 1 at every layer x 3 edge groups, with the traced pass): \
         batched {b:.3} s, one full forward per cell {n:.3} s, {speedup:.1}x (target >= {KNOCKOUT_TARGET}x: {}); \
         largest difference in log-prob {:.1e}.\n",
        if speedup >= KNOCKOUT_TARGET { "met" } else { "**not met**" },
        num(ours, "knockout_max_diff").unwrap_or(f64::NAN)
    )
}

/// What bounds the figures: a decode step reads every decoder weight once
/// (bytes x tok/s = memory bandwidth), a prefill is about 2 x params x
/// tokens of matmul (GFLOP/s). Both sides near the same rate means the
/// figure is bound by the machine and libtorch's kernels, not by either side.
fn roofline(r: &CheckpointResult) -> String {
    let mut s = String::new();
    let side = |m: &Map<String, Value>, key: &str| num(m, key);
    if let (Some(bytes), Some(a), Some(b)) =
        (num(&r.ours, "lm_weight_bytes"), side(&r.ours, "decode_tok_s"), side(&r.theirs, "decode_tok_s"))
    {
        let _ = write!(
            s,
            "\nDecode reads the decoder's {:.3} GB of weights per token: flipscope {:.1} GB/s, transformers {:.1} GB/s.",
            bytes / 1e9,
            bytes * a / 1e9,
            bytes * b / 1e9
        );
    }
    let flops =
        match (num(&r.ours, "lm_params"), num(&r.ours, "prefill_tokens"), num(&r.ours, "vision_params"), num(&r.ours, "prefill_patches")) {
            (Some(lp), Some(lt), Some(vp), Some(vt)) => Some(2.0 * (lp * lt + vp * vt)),
            _ => None,
        };
    if let (Some(f), Some(a), Some(b)) = (flops, side(&r.ours, "prefill_s"), side(&r.theirs, "prefill_s")) {
        let _ = write!(
            s,
            "\nPrefill is ~{:.1} GFLOP of matmul (2 x params x tokens, both towers): flipscope {:.1} GFLOP/s, transformers {:.1} GFLOP/s.",
            f / 1e9,
            f / a / 1e9,
            f / b / 1e9
        );
    }
    for b in [1, 8] {
        let (score, generate) = (side(&r.theirs, &format!("eval_b{b}_sps")), side(&r.theirs, &format!("eval_gen_b{b}_sps")));
        if let (Some(score), Some(generate), Some(ours)) = (score, generate, side(&r.ours, &format!("eval_b{b}_sps"))) {
            // Scoring is one forward pass per sample; generate-16 is that plus
            // 15 decode steps. So at equal forward speed, scoring beats
            // generate-16 by what transformers' own two figures say.
            let ceiling = score / generate;
            let _ = write!(
                s,
                "\nEval b{b}: generating 16 tokens costs transformers {ceiling:.2}x its scoring pass, so scoring at its \
                 forward speed is {ceiling:.2}x the generate-based eval; flipscope's forward pass is {:.2}x theirs, \
                 giving {:.2}x.",
                ours / score,
                ours / generate
            );
        }
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

pub fn write_results(
    path: &Path,
    machine: &Machine,
    results: &[CheckpointResult],
    frames: Option<&Map<String, Value>>,
    extraction: Option<&[super::extraction::ShapeTime]>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = render(machine, results);
    if let Some(f) = frames {
        text.push_str(&frames_section(f));
    }
    if let Some(e) = extraction {
        text.push_str(&super::extraction::section(e));
    }
    atomic_write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::{frames_section, vector_units};

    #[test]
    fn the_frame_section_holds_p99_to_its_target() {
        let f: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"samples": 5712, "eval_progress": 40, "scrolling": {"frames": 2000, "p50_ms": 2.0, "p99_ms": 6.5, "max_ms": 9.0},
                "during_eval": {"frames": 2000, "p50_ms": 3.0, "p99_ms": 17.0, "max_ms": 30.0}}"#,
        )
        .unwrap();
        let s = frames_section(&f);
        assert!(s.contains("| Scrolling | 2000 | 2.00 ms | 6.50 ms | 9.00 ms | yes |"), "{s}");
        assert!(s.contains("| Scrolling while an eval runs | 2000 | 3.00 ms | 17.00 ms | 30.00 ms | **no** |"), "{s}");
        assert!(s.contains("5712 questions") && s.contains("40 records"), "{s}");
    }

    #[test]
    fn vector_units_say_when_bf16_matmuls_are_slow() {
        let avx2 = vector_units("fpu sse2 avx avx2 fma");
        assert!(avx2.starts_with("avx2 (no AVX-512"), "{avx2}");
        assert_eq!(vector_units("avx2 avx512f avx512bw avx512_bf16"), "avx2 avx512f avx512_bf16");
        assert!(vector_units("sse2").starts_with("none of avx2/avx512 (no AVX-512"));
    }
}
