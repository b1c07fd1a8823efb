//! `flipscope bench`: the shared inputs survive the file both sides read,
//! the suite measures flipscope and transformers on the same work (their
//! chosen letters agree) and writes every figure, and bad arguments are named.

use flipscope::bench::inputs::{BenchInputs, EVAL_SAMPLES};
use flipscope::bench::results::{meets, ROWS};
use flipscope::bench::suite::CHECKPOINTS;
use flipscope::engine::config::ModelConfig;
use flipscope::engine::random_checkpoint;
use tch::Kind;

fn tiny_checkpoint(dir: &std::path::Path) -> ModelConfig {
    let config: serde_json::Value = serde_json::from_str(CHECKPOINTS[0].config).unwrap();
    random_checkpoint::write(&config, dir, Kind::Float, 1 << 30, 0).unwrap();
    ModelConfig::load(dir).unwrap()
}

#[test]
fn inputs_round_trip_through_the_shared_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_checkpoint(&tmp.path().join("ckpt"));
    let built = BenchInputs::build(&cfg).unwrap();
    // 448x448 -> 32x32 patches -> 256 image tokens; 20 + 2 + 40 + 5 text tokens.
    assert_eq!(built.prefill.images[0].grid, [1, 32, 32]);
    assert_eq!(built.prefill.input_ids.iter().filter(|&&t| t == cfg.image_token_id).count(), 256);
    assert_eq!(built.prefill.len(), 256 + 67);
    assert_eq!(built.eval.len(), EVAL_SAMPLES);
    let lengths: std::collections::BTreeSet<usize> = built.eval.iter().map(|p| p.len()).collect();
    assert!(lengths.len() > 5, "question lengths vary so batches are padded");
    assert!(built.eval.iter().flat_map(|p| &p.input_ids).all(|&t| t < cfg.text.vocab_size));
    let path = tmp.path().join("inputs.safetensors");
    built.save(&path).unwrap();
    let loaded = BenchInputs::load(&path).unwrap();
    for (a, b) in std::iter::once((&built.prefill, &loaded.prefill)).chain(built.eval.iter().zip(&loaded.eval)) {
        assert_eq!(a.input_ids, b.input_ids);
        assert_eq!(a.positions, b.positions);
        assert_eq!(a.rope_delta, b.rope_delta);
        assert_eq!(a.images[0].grid, b.images[0].grid);
        assert_eq!(a.images[0].values, b.images[0].values);
    }
}

#[test]
fn targets_read_the_right_way_round() {
    let row = |label: &str| ROWS.iter().find(|r| r.label.starts_with(label)).unwrap();
    assert_eq!(meets(row("Load peak"), 0.5), Some(true));
    assert_eq!(meets(row("Load peak"), 0.7), Some(false));
    assert_eq!(meets(row("Decode"), 1.4), Some(true));
    assert_eq!(meets(row("Decode"), 1.2), Some(false));
    assert_eq!(meets(row("Eval b8 vs generate"), 2.9), Some(false));
    assert_eq!(meets(row("Checkpoint load"), 9.0), None);
    assert_eq!(meets(row("Rollouts"), 1.6), Some(true));
    assert_eq!(meets(row("Rollouts"), 1.4), Some(false));
    assert_eq!(meets(row("GRPO step ("), 0.9), Some(true));
}

#[test]
fn suite_measures_both_sides_on_the_tiny_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let results = tmp.path().join("RESULTS.md");
    let python = crate::common::parity::python();
    let (ok, _, err) = crate::common::flipscope(&[
        "bench",
        "--checkpoints",
        "tiny",
        "--repeat",
        "1",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--python",
        python.to_str().unwrap(),
        "--extract-bytes",
        "4096",
    ]);
    assert!(ok, "bench failed:\n{err}");
    let read = |name: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap() };
    let (ours, theirs) = (read("flipscope-tiny.json"), read("transformers-tiny.json"));
    for row in ROWS {
        for (side, key) in [(&ours, row.ours), (&theirs, row.theirs)] {
            let v = side[key].as_f64().unwrap_or_else(|| panic!("{key} missing"));
            assert!(v.is_finite() && v > 0.0, "{key} = {v}");
        }
    }
    let (a, b) = (ours["eval_picks"].as_array().unwrap(), theirs["eval_picks"].as_array().unwrap());
    assert_eq!(a.len(), EVAL_SAMPLES);
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    assert!(same >= EVAL_SAMPLES - 1, "flipscope and transformers chose different letters on {} samples", EVAL_SAMPLES - same);
    let page = std::fs::read_to_string(&results).unwrap();
    for row in ROWS {
        assert!(page.contains(row.label), "RESULTS.md lacks `{}`", row.label);
    }
    assert!(page.contains("threads (both sides): 1"));
    assert!(page.contains("Knockout sweep (flipscope alone;"), "{page}");
    assert!(ours["knockout_max_diff"].as_f64().unwrap() < 1e-4, "batched and naive sweeps differ");
    assert!(page.contains("## TUI frame time") && page.contains("| Scrolling while an eval runs |"), "{page}");
    assert!(page.contains("## Answer extraction") && page.contains("| corrections | 4096 |"), "{page}");
    assert!(page.contains(&format!("agrees on {same} of {EVAL_SAMPLES}")));
    for b in [1, 8] {
        assert!(page.contains(&format!("Eval b{b}: generating 16 tokens costs transformers")), "no eval ceiling line for b{b}");
    }
}

#[test]
fn timings_are_the_fastest_run() {
    use flipscope::bench::figures::fastest;
    assert_eq!(fastest(&[3.0, 1.0, 100.0]), 1.0);
    assert_eq!(fastest(&[4.0, 2.5, 2.0, 100.0]), 2.0);
    assert!(fastest(&[]).is_nan());
}

#[test]
fn bad_bench_arguments_are_named() {
    let (ok, _, err) = crate::common::flipscope(&["bench", "--checkpoints", "tiny,9b"]);
    assert!(!ok && err.contains("`9b` is not one of tiny, small, 3b"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.safetensors");
    let inputs = missing.to_str().unwrap();
    let figures = |which: &str| {
        crate::common::flipscope(&["bench", "figures", "--model", "x", "--inputs", inputs, "--figures", which, "--json", "o.json"])
    };
    let (ok, _, err) = figures("load,warp");
    assert!(!ok && err.contains("`warp` is not one of load, prefill, decode, eval, saliency, train"), "{err}");
    let (ok, _, err) = figures("load");
    assert!(!ok && err.contains("none.safetensors"), "{err}");
}
