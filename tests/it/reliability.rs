//! Hostile inputs: kills, second writers, full disks, other settings on
//! resume, bad records, files that are not files, bad numbers, and outputs
//! once read silently wrong. Each test is named for the behaviour it holds;
//! those that live closer to their code are unit tests, and the README's
//! "What flipscope promises" lists them all.

use crate::common::flipscope;
use crate::common::parity::case_dir;
use std::path::{Path, PathBuf};

fn model() -> String {
    case_dir("flat_tied_odd").join("model").display().to_string()
}

fn synth(dir: &Path, name: &str, n: usize, seed: u64) -> String {
    let out = dir.join(name);
    let (ok, _, err) = flipscope(&["data", "synth", "--out", out.to_str().unwrap(), "--n", &n.to_string(), "--seed", &seed.to_string()]);
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
fn a_second_writer_is_refused_and_readers_drop_duplicates() {
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
fn resuming_a_run_on_another_dataset_is_refused() {
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
fn report_vs_refuses_runs_on_different_datasets_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = hand_run(&tmp.path().join("a"), "h1", &[rec("1", true), rec("2", true), rec("3", false)], "");
    let b = hand_run(&tmp.path().join("b"), "h2", &[rec("2", false), rec("3", false), rec("4", true)], "");
    let (ok, out, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(err.contains("data-h1") && err.contains("data-h2") && err.contains("--allow-different-data"), "{err}");
    let (ok, out, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap(), "--allow-different-data"]);
    assert!(ok, "{err}");
    let line = format!(
        "different datasets: paired 2 questions both runs answered; left out 1 only in {} and 1 only in {}",
        a.display(),
        b.display()
    );
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
fn report_on_no_records_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = hand_run(&tmp.path().join("empty"), "h", &[], "");
    let (ok, out, err) = flipscope(&["report", empty.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("no records yet") && !out.contains("0.00"), "{out}");
}

#[test]
fn report_on_a_torn_last_line_reports_it_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let torn = hand_run(&tmp.path().join("torn"), "h", &[rec("1", true), rec("2", false)], "{\"key\": \"3\", \"id");
    let (ok, out, err) = flipscope(&["report", torn.to_str().unwrap(), "--format", "csv"]);
    assert!(ok, "{err}");
    assert!(err.contains("last line is torn"), "{err}");
    assert!(out.lines().any(|l| l.contains(",overall,") && l.contains(",2,1,")), "{out}");
}

#[test]
fn runs_list_shows_an_unreadable_run_as_such() {
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
    crate::common::flipscope_with_env(args, env)
}

/// Case 3 (a kill during a save leaves files from two steps) and case 4
/// (killed-and-resumed differs from unbroken): with dropout, flip
/// augmentation and replay all drawing random numbers, a run killed in the
/// middle of saving step 3 resumes from step 2's whole checkpoint, redoes
/// step 3 once, and ends bitwise equal to the unbroken run.
#[test]
fn a_kill_during_a_save_resumes_from_a_whole_checkpoint_bitwise() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole").display().to_string();
    let out = run_train(&train_args(&whole, &[]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lora_line = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        text.lines().find(|l| l.contains("projections")).map(str::to_string).unwrap_or_default()
    };
    let fresh = lora_line(&out);
    assert!(fresh.contains("LoRA r=2"), "{fresh}");

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
    assert_eq!(lora_line(&out), fresh, "a resume counts the projections a fresh run does");
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

/// Runs the binary with a deadline: a hang fails the test instead of stalling the suite.
fn run_with_deadline(args: &[&str], secs: u64) -> (bool, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() > secs {
            child.kill().unwrap();
            panic!("flipscope {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn small_png(side: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&vec![90u8; (side * side * 3) as usize], side, side, image::ExtendedColorType::Rgb8)
        .unwrap();
    png
}

/// A PNG whose header says 20000x20000 (grayscale): 400 MB if decoded.
fn huge_png_header() -> Vec<u8> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png).write_image(&[0u8; 20_000], 20_000, 1, image::ExtendedColorType::L8).unwrap();
    png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    png
}

/// Cases 6 and 7: an image that is a FIFO, one that is /dev/zero and one
/// whose header says 20000x20000 each become an error record naming the
/// problem, quickly; the good sample beside them is answered.
#[test]
fn fifo_device_and_oversized_images_are_error_records_not_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("good.png"), small_png(28)).unwrap();
    std::fs::write(d.join("huge.png"), huge_png_header()).unwrap();
    let c = std::ffi::CString::new(d.join("fifo.png").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let line = |id: &str, img: &str| {
        serde_json::json!({"id": id, "image": img, "question": "Where is the cup?", "options": ["left", "right"], "answer": "A"})
            .to_string()
    };
    let lines = [line("fifo", "fifo.png"), line("zero", "/dev/zero"), line("huge", "huge.png"), line("good", "good.png")];
    std::fs::write(d.join("d.jsonl"), lines.join("\n") + "\n").unwrap();
    let run = d.join("run");
    let data = format!("generic:{}", d.join("d.jsonl").display());
    let (ok, out, err) =
        run_with_deadline(&["eval", "--model", &model(), "--data", &data, "--run", run.to_str().unwrap(), "--device", "cpu"], 120);
    assert!(ok, "{err}");
    assert!(out.contains("3 errors"), "{out}");
    let recs = flipscope::runs::store::read_records(&run.join("records.jsonl")).unwrap().records;
    let error_of = |id: &str| recs.iter().find(|r| r.id == id).and_then(|r| r.failure().map(str::to_string)).unwrap_or_default();
    assert!(error_of("fifo").contains("FIFO"), "{}", error_of("fifo"));
    assert!(error_of("zero").contains("a device"), "{}", error_of("zero"));
    assert!(error_of("huge").contains("too large"), "{}", error_of("huge"));
    assert!(recs.iter().any(|r| r.id == "good" && r.failure().is_none() && r.predicted_letter.is_some()));
}

/// Case 8: a line nested 1000 deep is one bad record (no stack overflow);
/// `.jsonl.gz` and a pipe (`<(zcat ...)`) load directly; non-UTF-8 bytes
/// in a line skip that line, with its number.
#[test]
fn deep_nesting_pipes_gzip_and_bad_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("a.png"), small_png(8)).unwrap();
    let good = r#"{"id": "g", "image": "a.png", "question": "Where?", "options": ["left", "right"], "answer": "A"}"#;
    let deep = format!("{{\"id\": \"deep\", \"x\": {}1{}}}", "[".repeat(1000), "]".repeat(1000));
    let mut body = format!("{good}\n{deep}\n").into_bytes();
    body.extend_from_slice(b"{\"id\": \"bad\xff\", \"image\": \"a.png\", \"question\": \"q\"}\n");
    let plain = d.join("d.jsonl");
    std::fs::write(&plain, &body).unwrap();
    let (ok, out, err) = run_with_deadline(&["data", "stats", &format!("generic:{}", plain.display()), "--json"], 60);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["total"].as_u64(), v["record_errors"].as_u64()), (Some(1), Some(2)), "{out}");
    let ds = flipscope::data::load(&format!("generic:{}", plain.display())).unwrap();
    let issues: Vec<String> = ds.issues.iter().map(|i| i.to_string()).collect();
    assert!(issues[0].contains("d.jsonl: line 2") && issues[0].contains("nested deeper than 64"), "{issues:?}");
    assert!(issues[1].contains("d.jsonl: line 3") && issues[1].contains("not UTF-8"), "{issues:?}");

    let gz = d.join("g.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, format!("{good}\n").as_bytes()).unwrap();
    enc.finish().unwrap();
    let ds = flipscope::data::load(&format!("generic:{}", gz.display())).unwrap();
    assert_eq!((ds.samples.len(), ds.samples[0].images[0].is_missing()), (1, false), "images resolve beside the .gz");
    // A pipe, as the shell's process substitution gives one.
    let bin = env!("CARGO_BIN_EXE_flipscope");
    let script = format!("'{bin}' data stats --json generic:<(zcat '{}')", gz.display());
    let out = std::process::Command::new("bash").arg("-c").arg(&script).env("HOME", std::env::temp_dir()).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], 1);
}

/// A copy of the tiny checkpoint, with `edit` applied to its config.json
/// and `tensors` to its weights.
fn model_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value), tensors: impl FnOnce(&mut Vec<(String, tch::Tensor)>)) -> String {
    let src = PathBuf::from(model());
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let mut ts = tch::Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    tensors(&mut ts);
    tch::Tensor::write_safetensors(&ts, dir.join("model.safetensors")).unwrap();
    dir.display().to_string()
}

#[test]
fn bad_sizes_and_integer_weights_name_the_field_or_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let zero_patch = model_copy(&tmp.path().join("p0"), |c| c["vision_config"]["patch_size"] = 0.into(), |_| {});
    let (ok, out, err) = flipscope(&["doctor", "--model", &zero_patch]);
    assert!(!ok && !err.contains("panicked"), "{err}");
    assert!(out.contains("field `vision_config.patch_size`: 0 is not a size"), "{out}");
    let layers = model_copy(&tmp.path().join("l9"), |c| c["num_hidden_layers"] = 1_000_000_000i64.into(), |_| {});
    let run = tmp.path().join("r1").display().to_string();
    let (ok, _, err) = flipscope(&["eval", "--model", &layers, "--data", "synth:2", "--run", &run, "--device", "cpu"]);
    assert!(!ok && err.contains("field `num_hidden_layers`: 1000000000 is not a size from 1 to 1024"), "{err}");

    let int_weight = model_copy(
        &tmp.path().join("i32"),
        |_| {},
        |ts| {
            let (name, t) = ts.iter_mut().find(|(n, _)| n.ends_with("norm.weight")).unwrap();
            *t = t.to_kind(tch::Kind::Int);
            eprintln!("made {name} I32");
        },
    );
    let (ok, out, _) = flipscope(&["doctor", "--model", &int_weight]);
    assert!(!ok && out.contains("holds I32 integers where a float weight belongs"), "{out}");
    let run = tmp.path().join("r2").display().to_string();
    let (ok, _, err) = flipscope(&["eval", "--model", &int_weight, "--data", "synth:2", "--run", &run, "--device", "cpu"]);
    assert!(!ok && err.contains("holds I32 integers"), "{err}");
}

/// Case 10: an impossible LoRA rank and a prompt longer than the context
/// are refused with the numbers, before any memory goes to them.
#[test]
fn lora_rank_and_context_length_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ft").display().to_string();
    let (ok, _, err) = flipscope(&[
        "train",
        "--model",
        &model(),
        "--data",
        "synth:4",
        "--out",
        &out,
        "--lora",
        "r=100000",
        "--max-steps",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(!ok && err.contains("r=100000 is above") && err.contains("LoRA's rank is at most min(in, out)"), "{err}");

    let short = model_copy(&tmp.path().join("short"), |c| c["max_position_embeddings"] = 24.into(), |_| {});
    let data = synth(tmp.path(), "d", 2, 1);
    let run = tmp.path().join("run");
    let (ok, out, err) = flipscope(&["eval", "--model", &short, "--data", &data, "--run", run.to_str().unwrap(), "--device", "cpu"]);
    assert!(ok && out.contains("2 errors"), "{out}{err}");
    let recs = flipscope::runs::store::read_records(&run.join("records.jsonl")).unwrap().records;
    let e = recs[0].failure().unwrap().to_string();
    assert!(e.contains("over the model's context of 24 (max_position_embeddings)"), "{e}");
}

/// Case 11: a model whose numbers break (a NaN weight) gives error records,
/// never a "best" letter; bad numeric flags are refused when parsed.
#[test]
fn non_finite_scores_are_errors_and_bad_numbers_are_refused_at_parse_time() {
    let tmp = tempfile::tempdir().unwrap();
    let nan = model_copy(
        &tmp.path().join("nan"),
        |_| {},
        |ts| {
            let (_, t) = ts.iter_mut().find(|(n, _)| n == "model.norm.weight" || n.ends_with("language_model.norm.weight")).unwrap();
            *t = t.fill(f64::NAN);
        },
    );
    let data = synth(tmp.path(), "d", 2, 1);
    for mode in ["score", "generate"] {
        let run = tmp.path().join(mode);
        let (ok, out, err) = flipscope(&[
            "eval",
            "--model",
            &nan,
            "--data",
            &data,
            "--run",
            run.to_str().unwrap(),
            "--device",
            "cpu",
            "--mode",
            mode,
            "--max-new-tokens",
            "3",
        ]);
        assert!(ok && out.contains("2 errors"), "{mode}: {out}{err}");
        let recs = flipscope::runs::store::read_records(&run.join("records.jsonl")).unwrap().records;
        assert!(
            recs.iter().all(|r| r.predicted_letter.is_none() && r.failure().is_some_and(|e| e.contains("not finite"))),
            "{mode}: {recs:?}"
        );
    }

    let m = model();
    let train = |flag: &str, value: &str| {
        let arg = format!("{flag}={value}");
        flipscope(&["train", "--model", &m, "--data", "synth:4", "--out", "/nonexistent/never", "--device", "cpu", &arg])
    };
    for (flag, value) in [
        ("--lr", "NaN"),
        ("--lr", "-1e-4"),
        ("--warmup-ratio", "2"),
        ("--max-grad-norm", "-1"),
        ("--max-steps", "0"),
        ("--epochs", "0"),
        ("--batch", "0"),
        ("--weight-decay", "inf"),
        ("--lora", "alpha=NaN"),
    ] {
        let (ok, _, err) = train(flag, value);
        assert!(!ok && err.contains(flag.trim_start_matches("--").split('=').next().unwrap()), "{flag} {value}: {err}");
        assert!(!err.contains("lower --lr") && !err.contains("/nonexistent"), "{flag} {value} got past parsing: {err}");
    }
    for (flag, value) in [("--max-new-tokens", "0"), ("--batch", "0")] {
        let (ok, _, err) = flipscope(&["eval", "--model", &m, "--data", "synth:2", "--run", "/nonexistent/r", flag, value]);
        assert!(!ok && err.contains(flag) && err.contains("at least 1"), "{flag}: {err}");
    }
}

#[test]
fn thirty_options_and_a_list_answer_are_bad_records_not_quiet_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("a.png"), small_png(8)).unwrap();
    let opts: Vec<String> = (1..=30).map(|i| format!("opt{i}")).collect();
    let lines = [
        serde_json::json!({"id": "thirty", "image": "a.png", "question": "q", "options": opts, "answer": "opt28"}).to_string(),
        serde_json::json!({"id": "list", "image": "a.png", "question": "q", "options": ["left", "right"], "answer": ["A", "B"]})
            .to_string(),
        serde_json::json!({"id": "one", "image": "a.png", "question": "q", "options": ["left", "right"], "answer": ["B"]}).to_string(),
    ];
    std::fs::write(d.join("d.jsonl"), lines.join("\n")).unwrap();
    let ds = flipscope::data::load(&format!("generic:{}", d.join("d.jsonl").display())).unwrap();
    assert_eq!(ds.samples.len(), 1);
    assert_eq!((ds.samples[0].id.as_str(), ds.samples[0].gold_letter), ("one", Some('B')), "a one-item list is that item");
    let issues: Vec<String> = ds.issues.iter().map(|i| i.to_string()).collect();
    assert!(issues[0].contains("line 1: field `options`: 30 options; at most 26"), "{issues:?}");
    assert!(issues[1].contains("line 2: field `answer`: the answer is a list of 2 items"), "{issues:?}");
}

#[test]
fn doctor_fails_an_empty_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (ok, out, _) = flipscope(&["doctor", "--data", &format!("generic:{}", empty.display())]);
    assert!(!ok && out.contains("0 samples") && out.contains("no samples"), "{out}");
}

#[test]
fn io_errors_say_their_cause_once_and_a_full_disk_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_model = tmp.path().join("no-model");
    std::fs::create_dir(&empty_model).unwrap();
    let run = tmp.path().join("r0").display().to_string();
    let (ok, _, err) = flipscope(&["eval", "--model", empty_model.to_str().unwrap(), "--data", "synth:2", "--run", &run]);
    assert!(!ok && err.contains("no-model/config.json"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    std::fs::create_dir(empty_model.join("config.json")).unwrap();
    let (ok, _, err) = flipscope(&["doctor", "--model", empty_model.to_str().unwrap()]);
    assert!(!ok, "{err}");
    let run = hand_run(&tmp.path().join("r"), "h", &[rec("1", true)], "");
    let (ok, _, err) = flipscope(&["report", run.to_str().unwrap(), "--format", "json", "--out", "/dev/full"]);
    assert!(!ok && err.contains("writing /dev/full") && err.contains("No space left on device"), "{err}");
    assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
}

/// Outputs once read wrongly, through `flipscope extract`.
#[test]
fn extraction_never_guesses_through_flipscope_extract() {
    let options = "A=left,B=right,C=front-left,D=back";
    let cases: [(&str, Option<&str>, &str); 10] = [
        ("A or B", None, "ambiguous"),
        ("(A) (B) (C)", None, "ambiguous"),
        ("Not B.", None, "unparsed"),
        ("It is not on the left.", None, "unparsed"),
        ("The options are:\nA. left\nB. right\nC. front-left\nD. back\nI pick A", Some("A"), "declared"),
        ("Option A is incorrect because it names the wrong side.", None, "unparsed"),
        ("It's definitely not (C). I'd go with A", Some("A"), "declared"),
        ("B, because A would mean left", Some("B"), "marked"),
        ("  the answer is (b)?  ", Some("B"), "declared"),
        ("Answer: A. Wait, no, B.", Some("B"), "marked"),
    ];
    for (text, answer, rule) in cases {
        let (ok, out, err) = flipscope(&["extract", "--options", options, "--json", text]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((v["answer"].as_str(), v["rule"].as_str()), (answer, Some(rule)), "{text:?}: {out}");
    }
    // Text output names the span it read; stdin works.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope"))
        .args(["extract", "--options", options, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"Hmm. The answer is (D).").unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(out.contains("answer  D") && out.contains("rule    declared") && out.contains("\"answer is (D).\""), "{out}");
    let (ok, _, err) = flipscope(&["extract", "--options", "A,b", "x"]);
    assert!(!ok && err.contains("`b` is not a capital letter"), "{err}");
    // `<answer>` tags are read as eval's judge reads them: the tag's content.
    for (text, answer) in [("<answer>D</answer>", "D"), ("<think>A looks right</think><answer>C</answer>", "C")] {
        let (ok, out, err) = flipscope(&["extract", "--options", options, "--json", text]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert!(ok && v["answer"].as_str() == Some(answer), "{text:?}: {out}{err}");
    }
}

/// Arguments that used to abort, be ignored or read oddly: `--top` past the
/// vocabulary lists all of it (and 0 lists none), `--mode score --samples`
/// is a conflict, an empty `--data` says so.
#[test]
fn top_past_the_vocabulary_score_with_samples_and_empty_data() {
    let model = crate::common::parity::case_dir("flat_tied_odd").join("model");
    let m = model.to_str().unwrap();
    let id = flipscope::data::load("synth:6").unwrap().samples[1].id.clone();
    let lens =
        |top: &str| crate::common::flipscope(&["lens", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--top", top]);
    let (ok, out, err) = lens("100000");
    assert!(ok && err.contains("--top 100000: the vocabulary has") && out.contains("top tokens"), "{out}{err}");
    let (ok, out, err) = lens("0");
    assert!(ok, "{out}{err}");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("r");
    let r = run.to_str().unwrap();
    let (ok, _, err) =
        crate::common::flipscope(&["eval", "--model", m, "--data", "synth:4", "--mode", "score", "--samples", "4", "--run", r]);
    assert!(!ok && err.contains("--mode score --samples"), "{err}");
    assert!(!run.join("records.jsonl").exists(), "nothing was sampled");
    let (ok, _, err) = crate::common::flipscope(&["eval", "--model", m, "--data", "", "--run", r]);
    assert!(!ok && err.contains("--data is empty"), "{err}");
}

/// Output paths that are FIFOs (a `--dump` there with no reader would
/// block forever) or folders are refused when parsed, naming what they
/// are, and the FIFO is left as it was.
#[test]
fn outputs_that_are_not_regular_files_are_refused_not_blocked_on() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = |name: &str| {
        let p = tmp.path().join(name);
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        p.display().to_string()
    };
    let (dump, table) = (fifo("dump.safetensors"), fifo("table.csv"));
    let m = model();
    let id = flipscope::data::load("synth:6").unwrap().samples[1].id.clone();
    let folder = tmp.path().join("folder.safetensors");
    std::fs::create_dir(&folder).unwrap();
    let one = ["--model", m.as_str(), "--device", "cpu", "--data", "synth:6", "--id", id.as_str()];
    let cases: [(Vec<&str>, &str); 4] = [
        ([&["lens"], &one[..], &["--dump", &dump]].concat(), "is a FIFO (named pipe); only a file"),
        ([&["saliency"], &one[..], &["--dump", &dump]].concat(), "is a FIFO (named pipe); only a file"),
        ([&["knockout"], &one[..], &["--out", &table]].concat(), "is a FIFO (named pipe); only a file"),
        ([&["patch"], &one[..], &["--dump", folder.to_str().unwrap()]].concat(), "is a folder; only a file"),
    ];
    for (args, want) in &cases {
        let (ok, out, err) = run_with_deadline(args, 120);
        assert!(!ok && err.contains(want), "{args:?}: {out}{err}");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&dump).unwrap().file_type().is_fifo(), "the FIFO is left alone");
}
