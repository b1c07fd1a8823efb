//! `flipscope eval` end to end on the tiny checkpoint: synthetic scenes, a
//! ViewSpatial-layout fixture, resume after SIGKILL, refusals, bad samples.

use crate::common::flipscope;
use crate::common::parity::*;
use flipscope::runs::store::read_records;
use flipscope::spatial::extract::ExtractRule;
use flipscope::spatial::Verdict;
use std::collections::HashSet;
use std::path::Path;

fn model() -> String {
    case_dir("flat_tied_odd").join("model").display().to_string()
}

fn synth(dir: &Path, n: usize) -> String {
    let out = dir.join("synth");
    let (ok, _, err) = flipscope(&["data", "synth", "--out", out.to_str().unwrap(), "--n", &n.to_string()]);
    assert!(ok, "{err}");
    out.display().to_string()
}

#[test]
fn score_generate_circular_and_batching() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(tmp.path(), 6);
    let m = model();
    let run = |name: &str, extra: &[&str]| {
        let dir = tmp.path().join(name);
        let mut args = vec!["eval", "--model", &m, "--data", &data, "--run", dir.to_str().unwrap(), "--device", "cpu"];
        args.extend_from_slice(extra);
        let (ok, out, err) = flipscope(&args);
        assert!(ok, "{err}");
        (out, read_records(&dir.join("records.jsonl")).unwrap().records)
    };
    let (out, one) = run("b1", &["--circular"]);
    assert!(out.contains("circular accuracy"), "{out}");
    let n_rot: usize = one.iter().filter(|r| r.rotation == 0).count();
    assert_eq!(n_rot, 6);
    assert_eq!(one.len(), 6 * 4, "one record per rotation of 4 options");
    assert!(one.iter().all(|r| r.rule == ExtractRule::Scored && r.option_logprobs.len() == 4));
    let (_, three) = run("b3", &["--circular", "--batch", "3"]);
    for (a, b) in one.iter().zip(&three) {
        assert_eq!((&a.key, &a.predicted_letter), (&b.key, &b.predicted_letter), "batching changed an answer");
    }
    // Circular: a question counts only when every rotation is right.
    let ((right, n), (circ, q)) = flipscope::runs::stats::accuracy(&one);
    assert_eq!((n, q), (6, 6));
    assert!(circ <= right);
    let (_, gen) = run("gen", &["--mode", "generate", "--max-new-tokens", "4"]);
    assert_eq!(gen.len(), 6);
    assert!(gen.iter().all(|r| r.latency_ms > 0.0));
    assert!(gen.iter().filter(|r| r.rule == ExtractRule::Unparsed).all(|r| r.verdict == Verdict::Unparsed && r.predicted_letter.is_none()));
}

/// Questions without options (answered in words) are read in generate mode:
/// the direction the text names is compared with the gold direction. Score
/// mode has no labels to score and says to generate.
#[test]
fn word_answers_are_read_as_directions_in_generate_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let m = model();
    let spec = "synth:10#seed=3,kinds=camera,distractors=0,options=0";
    let run = |name: &str, mode: &str| {
        let dir = tmp.path().join(name);
        let (ok, _, err) = flipscope(&[
            "eval",
            "--model",
            &m,
            "--data",
            spec,
            "--run",
            dir.to_str().unwrap(),
            "--device",
            "cpu",
            "--mode",
            mode,
            "--max-new-tokens",
            "4",
        ]);
        assert!(ok, "{err}");
        read_records(&dir.join("records.jsonl")).unwrap().records
    };
    let gen = run("gen", "generate");
    assert_eq!(gen.len(), 4, "the camera questions of 10 scenes");
    for r in &gen {
        assert!(r.gold_direction.is_some() && r.verdict.is_judged(), "{r:?}");
        match r.rule {
            ExtractRule::Direction => assert_eq!(r.is_correct(), r.predicted_direction == r.gold_direction, "{r:?}"),
            ExtractRule::Unparsed => assert_eq!((&r.verdict, r.predicted_direction), (&Verdict::Unparsed, None)),
            other => panic!("rule {other:?}"),
        }
    }
    let scored = run("score", "score");
    assert!(scored.iter().all(|r| r.failure().is_some_and(|e| e.contains("--mode generate"))), "{scored:?}");
}

#[test]
fn viewspatial_layout_fixture_with_the_official_prompt() {
    // The real JSON layout: a few real records, images generated at their paths.
    let tmp = tempfile::tempdir().unwrap();
    let real: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(crate::common::viewspatial_json()).unwrap()).unwrap();
    let mut picked = Vec::new();
    let mut seen = HashSet::new();
    for r in &real {
        let cat = r["question_type"].as_str().unwrap().to_string();
        if r["image_path"].as_array().unwrap().len() == 1 && seen.insert(cat) {
            picked.push(r.clone());
        }
    }
    assert!(picked.len() >= 4);
    for r in &picked {
        for p in r["image_path"].as_array().unwrap() {
            let path = tmp.path().join(p.as_str().unwrap());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150])).save(&path).unwrap();
        }
    }
    let file = tmp.path().join("ViewSpatial-Bench.json");
    std::fs::write(&file, serde_json::to_string(&picked).unwrap()).unwrap();
    let run = tmp.path().join("vs");
    let (ok, out, err) = flipscope(&[
        "eval",
        "--model",
        &model(),
        "--data",
        file.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--prompt",
        "viewspatial",
        "--mode",
        "generate",
        "--max-new-tokens",
        "3",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("wrote {}", picked.len())), "{out}");
    let recs = read_records(&run.join("records.jsonl")).unwrap().records;
    assert!(recs.iter().all(|r| r.failure().is_none() && matches!(r.rule, ExtractRule::ViewSpatial | ExtractRule::Unparsed)), "{recs:?}");
    let cats: HashSet<String> = recs.iter().map(|r| r.category.clone()).collect();
    assert_eq!(cats.len(), picked.len());
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert!(meta["prompt"].as_str().unwrap().contains("Reply only to the corresponding option."));
    assert!(meta["finished"].is_string());
}

#[test]
fn sigkill_mid_run_then_resume_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(tmp.path(), 40);
    let run = tmp.path().join("kill");
    let records = run.join("records.jsonl");
    let args = ["eval", "--model", &model(), "--data", &data, "--run", run.to_str().unwrap(), "--device", "cpu", "--circular"];
    // The run kills itself with SIGKILL right after its 7th record is synced.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope"))
        .args(args)
        .env("FLIPSCOPE_KILL_AFTER_RECORDS", "7")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let before = read_records(&records).unwrap().records.len();
    assert_eq!(before, 7, "everything synced before the kill is kept");
    let (ok, out, err) = flipscope(&args);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("skipped {before} already done")), "{out}");
    let all = read_records(&records).unwrap().records;
    let keys: HashSet<&str> = all.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(all.len(), 160, "40 questions x 4 rotations");
    assert_eq!(keys.len(), 160, "no duplicates");
}

#[test]
fn refusals_and_bad_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(tmp.path(), 4);
    // Corrupt one image: that sample becomes an error record, the others run.
    let first_image = std::fs::read_dir(Path::new(&data).join("images")).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    std::fs::write(&first_image, b"not a png").unwrap();
    let run = tmp.path().join("r");
    let base = ["eval", "--model", &model(), "--data", &data, "--run", run.to_str().unwrap()];
    let (ok, out, err) = flipscope(&base);
    assert!(ok, "{err}");
    assert!(out.contains("1 errors"), "{out}");
    let recs = read_records(&run.join("records.jsonl")).unwrap().records;
    assert_eq!(recs.len(), 4);
    let bad = recs.iter().find_map(|r| r.failure()).unwrap();
    assert!(bad.contains("cannot decode image"), "{bad}");
    // Same run name, other prompt: refused, naming what differs.
    let mut other = base.to_vec();
    other.extend(["--prompt", "lmms"]);
    let (ok, _, err) = flipscope(&other);
    assert!(!ok && err.contains("different setup") && err.contains("prompt: run has `default"), "{err}");
    let (ok, _, err) = flipscope(&["eval", "--model", &model(), "--data", &data, "--run", "x", "--filter", "colour=red"]);
    assert!(!ok && err.contains("filter field `colour`"), "{err}");
    let (ok, _, err) = flipscope(&["eval", "--model", &model(), "--data", &data, "--run", "x", "--shard", "3/2"]);
    assert!(!ok && err.contains("0 <= i < n"), "{err}");
}

#[test]
fn shards_merge_into_the_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(tmp.path(), 5);
    let m = model();
    let mut shard_dirs = Vec::new();
    for i in 0..2 {
        let dir = tmp.path().join(format!("s{i}"));
        let (ok, _, err) =
            flipscope(&["eval", "--model", &m, "--data", &data, "--run", dir.to_str().unwrap(), "--shard", &format!("{i}/2")]);
        assert!(ok, "{err}");
        shard_dirs.push(dir.display().to_string());
    }
    let whole = tmp.path().join("whole");
    let (ok, out, err) = flipscope(&["eval", "--model", &m, "--data", &data, "--run", whole.to_str().unwrap()]);
    assert!(ok, "{err}{out}");
    let merged = tmp.path().join("merged");
    let mut args = vec!["runs", "merge", "--out", merged.to_str().unwrap()];
    args.extend(shard_dirs.iter().map(String::as_str));
    args.push(shard_dirs[0].as_str()); // a repeated shard only adds duplicates
    let (ok, out, err) = flipscope(&args);
    assert!(ok, "{err}");
    assert!(out.contains("5 records") && out.contains("duplicate keys dropped"), "{out}");
    let mut a = read_records(&merged.join("records.jsonl")).unwrap().records;
    let mut b = read_records(&whole.join("records.jsonl")).unwrap().records;
    a.sort_by(|x, y| x.key.cmp(&y.key));
    b.sort_by(|x, y| x.key.cmp(&y.key));
    let answers = |v: &[flipscope::runs::Record]| v.iter().map(|r| (r.key.clone(), r.predicted_letter.clone())).collect::<Vec<_>>();
    assert_eq!(answers(&a), answers(&b));
}

/// `eval` without `--mode` asks the checkpoint the way its card says it
/// answers: generated and read for words, scored for letters (no card).
#[test]
fn eval_asks_as_the_checkpoint_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let words = crate::common::words_model(tmp.path());
    for (m, decoding, rule) in [(model(), "score", Some(ExtractRule::Scored)), (words.display().to_string(), "generate", None)] {
        let run = tmp.path().join(format!("run-{decoding}"));
        let (ok, _, err) = flipscope(&[
            "eval",
            "--model",
            &m,
            "--data",
            "synth:6#seed=2",
            "--limit",
            "2",
            "--run",
            run.to_str().unwrap(),
            "--device",
            "cpu",
        ]);
        assert!(ok, "{err}");
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert!(meta["decoding"].as_str().unwrap().starts_with(decoding), "{meta}");
        let recs = read_records(&run.join("records.jsonl")).unwrap().records;
        assert!(recs.iter().all(|r| rule.is_none_or(|k| r.rule == k) && (rule.is_some() || r.rule != ExtractRule::Scored)), "{recs:?}");
    }
    // A card that says something else is refused, naming the file.
    std::fs::write(words.join("flipscope.json"), r#"{"answers": "sentences"}"#).unwrap();
    let run = tmp.path().join("run-bad");
    let (ok, _, err) =
        flipscope(&["eval", "--model", words.to_str().unwrap(), "--data", "synth:6", "--run", run.to_str().unwrap(), "--device", "cpu"]);
    assert!(!ok && err.contains("flipscope.json") && err.contains("sentences"), "{err}");
}
