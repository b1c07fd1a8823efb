//! Issue 23's hostile inputs, one test per case, named after it
//! (`case_N_...` for the numbered cases, `silent_...` for the silent small
//! results). Cases that live closer to their code are unit tests with the
//! same names; the README's "What flipscope promises" lists them all.

use crate::common::flipscope;
use crate::common::parity::case_dir;
use std::path::{Path, PathBuf};

fn model() -> String {
    case_dir("flat_tied_odd").join("model").display().to_string()
}

fn synth(dir: &Path, name: &str, n: usize, seed: u64) -> String {
    let out = dir.join(name);
    let (ok, _, err) =
        flipscope(&["data", "synth", "--out", out.to_str().unwrap(), "--n", &n.to_string(), "--seed", &seed.to_string()]);
    assert!(ok, "{err}");
    out.display().to_string()
}

fn eval(data: &str, run: &Path) -> (bool, String, String) {
    flipscope(&["eval", "--model", &model(), "--data", data, "--run", run.to_str().unwrap(), "--device", "cpu"])
}

/// A run directory written by hand: run.json (with `dataset_hash`) and records.
fn hand_run(dir: &Path, hash: &str, lines: &[String], tail: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let meta = serde_json::json!({"name": dir.file_name().unwrap().to_str().unwrap(), "model": "m", "model_fingerprint": "f",
        "adapter": null, "dataset": format!("data-{hash}"), "dataset_hash": hash, "prompt": "p", "decoding": "score",
        "variant": "plain", "circular": false, "flipscope_version": "0", "device": "cpu", "started": "now", "finished": null});
    std::fs::write(dir.join("run.json"), meta.to_string()).unwrap();
    let mut body = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    body.push_str(tail);
    std::fs::write(dir.join("records.jsonl"), body).unwrap();
    dir.to_path_buf()
}

fn rec(id: &str, correct: bool) -> String {
    serde_json::json!({"key": id, "id": id, "category": "cam", "rotation": 0, "gold_letter": "A", "predicted_letter": if correct {"A"} else {"B"},
        "raw_output": "", "rule": "scored", "option_logprobs": [], "correct": correct, "latency_ms": 1.0})
    .to_string()
}

#[test]
fn case_1_a_second_writer_is_refused_and_readers_drop_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(tmp.path(), "d", 3, 1);
    let run = tmp.path().join("r");
    std::fs::create_dir_all(&run).unwrap();
    // This test process holds the run, as a first `eval --run r` would.
    let lock = flipscope::fsutil::DirLock::acquire(&run).unwrap();
    let (ok, _, err) = eval(&data, &run);
    assert!(!ok && err.contains("in use by another flipscope process") && err.contains(&format!("pid {}", std::process::id())), "{err}");
    assert!(!run.join("records.jsonl").exists(), "the refused writer wrote nothing");
    drop(lock);
    let (ok, _, err) = eval(&data, &run);
    assert!(ok, "{err}");

    // Two writers from an older flipscope left a key twice: counted once, and said.
    let dup = hand_run(&tmp.path().join("dup"), "h", &[rec("1", true), rec("2", false), rec("1", false)], "");
    let (ok, out, err) = flipscope(&["report", dup.to_str().unwrap(), "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(err.contains("dropped 1 duplicate record"), "{err}");
    let overall = out.lines().find(|l| l.contains(",overall,")).unwrap();
    assert!(overall.contains(",2,1,"), "2 questions, 1 right (the first record of key 1): {overall}");
}

#[test]
fn case_2_resuming_a_run_on_another_dataset_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (synth(tmp.path(), "a", 3, 1), synth(tmp.path(), "b", 3, 2));
    let run = tmp.path().join("r");
    let (ok, _, err) = eval(&a, &run);
    assert!(ok, "{err}");
    let (ok, out, err) = eval(&b, &run);
    assert!(!ok, "resumed on another dataset: {out}");
    assert!(err.contains("different setup") && err.contains("dataset: run has") && err.contains(&b), "{err}");
    // The same dataset resumes.
    let (ok, out, err) = eval(&a, &run);
    assert!(ok && out.contains("skipped 3 already done"), "{out}{err}");
}

#[test]
fn case_5_report_vs_refuses_runs_on_different_datasets_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = hand_run(&tmp.path().join("a"), "h1", &[rec("1", true), rec("2", true), rec("3", false)], "");
    let b = hand_run(&tmp.path().join("b"), "h2", &[rec("2", false), rec("3", false), rec("4", true)], "");
    let (ok, out, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(err.contains("data-h1") && err.contains("data-h2") && err.contains("--allow-different-data"), "{err}");
    let (ok, out, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap(), "--allow-different-data"]);
    assert!(ok, "{err}");
    let line = format!("different datasets: paired 2 questions both runs answered; left out 1 only in {} and 1 only in {}", a.display(), b.display());
    assert!(out.contains(&line), "{out}");
    let (ok, json, err) =
        flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap(), "--allow-different-data", "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["comparison"]["shared"], 2);
    let overall = v["comparison"]["paired"].as_array().unwrap().iter().find(|p| p["group"] == "overall").unwrap().clone();
    assert_eq!((overall["only_a"].as_u64(), overall["neither"].as_u64()), (Some(1), Some(1)), "{overall}");
}

#[test]
fn silent_report_on_no_records_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = hand_run(&tmp.path().join("empty"), "h", &[], "");
    let (ok, out, err) = flipscope(&["report", empty.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("no records yet") && !out.contains("0.00"), "{out}");
}

#[test]
fn silent_report_on_a_torn_last_line_reports_it_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let torn = hand_run(&tmp.path().join("torn"), "h", &[rec("1", true), rec("2", false)], "{\"key\": \"3\", \"id");
    let (ok, out, err) = flipscope(&["report", torn.to_str().unwrap(), "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(err.contains("last line is torn"), "{err}");
    assert!(out.lines().any(|l| l.contains(",overall,") && l.contains(",2,1,")), "{out}");
}

#[test]
fn silent_runs_list_shows_an_unreadable_run_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let good = hand_run(&runs.join("good"), "h", &[rec("1", true)], "");
    let bad = hand_run(&runs.join("bad"), "h", &[], "");
    std::fs::remove_file(bad.join("records.jsonl")).unwrap();
    std::fs::create_dir(bad.join("records.jsonl")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope"))
        .args(["runs", "list"])
        .current_dir(tmp.path())
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.starts_with("bad") && l.contains("unreadable") && l.contains("records.jsonl")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("good") && l.contains("1 records")), "{text} {}", good.display());
}

fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<String> {
    let model = crate::common::parity::case_dir("flat_tied_odd").join("model");
    let mut a: Vec<String> = [
        "train",
        "--model",
        model.to_str().unwrap(),
        "--data",
        "synth:16#seed=5",
        "--out",
        out,
        "--lora",
        "r=2,alpha=4,dropout=0.3",
        "--flip-augment",
        "--replay",
        "0.5",
        "--batch",
        "2",
        "--max-steps",
        "5",
        "--save-every",
        "1",
        "--lr",
        "1e-2",
        "--device",
        "cpu",
        "--seed",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_train(args: &[String], env: Option<(&str, &str)>) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope"));
    c.args(args).env("HOME", std::env::temp_dir());
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Case 3 (a kill during a save leaves files from two steps) and case 4
/// (killed-and-resumed differs from unbroken): with dropout, flip
/// augmentation and replay all drawing random numbers, a run killed in the
/// middle of saving step 3 resumes from step 2's whole checkpoint, redoes
/// step 3 once, and ends bitwise equal to the unbroken run.
#[test]
fn case_3_and_4_a_kill_during_a_save_resumes_from_a_whole_checkpoint_bitwise() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole").display().to_string();
    let out = run_train(&train_args(&whole, &[]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let split = tmp.path().join("split").display().to_string();
    let killed = run_train(&train_args(&split, &[]), Some(("FLIPSCOPE_KILL_DURING_SAVE", "3")));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{}", String::from_utf8_lossy(&killed.stderr));
    let (dir, state) = flipscope::train::checkpoint::latest(Path::new(&split)).unwrap().unwrap();
    assert_eq!(state.step, 2, "the whole checkpoint is step 2's: {}", dir.display());
    let root_state = flipscope::train::checkpoint::TrainerState::read(Path::new(&split)).unwrap().unwrap();
    assert_eq!(root_state.step, 2, "the published files are step 2's");
    let steps = |dir: &str| flipscope::train::metrics::read(&Path::new(dir).join("metrics.jsonl")).unwrap();
    assert_eq!(steps(&split).len(), 3, "step 3 was logged before its save was cut");

    let out = run_train(&train_args(&split, &["--resume"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dropped 1 metrics line"), "{}", String::from_utf8_lossy(&out.stdout));
    let (a, b) = (steps(&whole), steps(&split));
    assert_eq!(b.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2, 3, 4, 5], "each step logged once");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.loss.to_bits(), y.loss.to_bits(), "step {} loss {} vs {}", x.step, x.loss, y.loss);
    }
    let read = |dir: &str| std::fs::read(Path::new(dir).join("adapter_model.safetensors")).unwrap();
    assert!(read(&whole) == read(&split), "the resumed adapter is bitwise the unbroken one");
    let kept: Vec<_> = std::fs::read_dir(Path::new(&split).join("checkpoints")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(kept, ["step-000005"], "older checkpoints and the cut one's temporary are gone");
}
