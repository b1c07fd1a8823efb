//! Sampled evaluation (`eval --samples N`): prefix-shared sampling against
//! independent sampling, per-sample records and resume, and the report's
//! pass@k columns, on the tiny checkpoint.

use crate::common::flipscope;
use crate::common::parity::case_dir;
use flipscope::engine::{Engine, Flow, GenerateOptions, Sampling};
use flipscope::runs::store::read_records;
use std::path::Path;
use tch::{Device, Kind};

fn model() -> std::path::PathBuf {
    case_dir("flat_tied_odd").join("model")
}

/// N samples from one shared prefill are, token for token, the samples
/// drawn one prompt at a time with the same seed and streams.
#[test]
fn prefix_shared_sampling_equals_independent_sampling() {
    let e = Engine::load(&model(), Device::Cpu, Kind::Float).unwrap();
    let img = image::open(case_dir("v5_sharded_two_images").join("images/small.png")).unwrap();
    let prompt = e.processor.prepare(&[img], "Where is the red cube? Answer left or right.", &Default::default()).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: 8,
        first_token_top_k: 0,
        sampling: Some(Sampling { temperature: 1.3, top_p: 0.95, seed: 11 }),
        ..Default::default()
    };
    let streams = [0u64, 1, 2, 3, 4, 5];
    let shared = e.generate_shared(&prompt, &streams, &opts, &mut |_| Flow::Continue).unwrap();
    for (j, g) in shared.iter().enumerate() {
        let alone = e.generate_shared(&prompt, &streams[j..j + 1], &opts, &mut |_| Flow::Continue).unwrap();
        assert_eq!(g.tokens, alone[0].tokens, "sample {j}");
    }
    // Suppressed tokens are never chosen.
    let firsts: Vec<i64> = shared.iter().filter_map(|g| g.tokens.first().copied()).collect();
    let banned = GenerateOptions { suppress: firsts.clone(), ..opts.clone() };
    let without = e.generate_shared(&prompt, &streams, &banned, &mut |_| Flow::Continue).unwrap();
    assert!(without.iter().all(|g| g.tokens.iter().all(|t| !firsts.contains(t))), "{firsts:?} in {without:?}");
    let distinct: std::collections::HashSet<&Vec<i64>> = shared.iter().map(|g| &g.tokens).collect();
    assert!(distinct.len() > 1, "six samples at temperature 1.3 are not all the same: {shared:?}");
    // Another seed, other samples.
    let other = GenerateOptions { sampling: Some(Sampling { temperature: 1.3, top_p: 0.95, seed: 12 }), ..opts.clone() };
    let again = e.generate_shared(&prompt, &streams, &other, &mut |_| Flow::Continue).unwrap();
    assert_ne!(shared.iter().map(|g| &g.tokens).collect::<Vec<_>>(), again.iter().map(|g| &g.tokens).collect::<Vec<_>>());
}

fn eval(data: &str, run: &Path, extra: &[&str], env: Option<(&str, &str)>) -> std::process::Output {
    let m = model();
    let mut args =
        vec!["eval", "--model", m.to_str().unwrap(), "--data", data, "--run", run.to_str().unwrap(), "--device", "cpu", "--samples", "4"];
    args.extend_from_slice(&["--temperature", "1.5", "--max-new-tokens", "4", "--seed", "5"]);
    args.extend_from_slice(extra);
    crate::common::flipscope_with_env(&args, env)
}

#[test]
fn sampled_eval_records_each_sample_resumes_per_sample_and_reports_pass_at_k() {
    let tmp = tempfile::tempdir().unwrap();
    let data = "synth:3#seed=4,kinds=camera";
    let whole = tmp.path().join("whole");
    let out = eval(data, &whole, &[], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = read_records(&whole.join("records.jsonl")).unwrap().records;
    let questions: std::collections::BTreeSet<&str> = a.iter().map(|r| r.id.as_str()).collect();
    let n = questions.len();
    assert!(n >= 2 && a.len() == 4 * n, "4 samples per question: {} records for {n} questions", a.len());
    assert!(a.iter().all(|r| r.sample.is_some() && r.key.ends_with(&format!("#s{}", r.sample.unwrap()))));
    let meta = flipscope::runs::RunDir::new(&whole).read_meta().unwrap().unwrap();
    assert!(meta.decoding.starts_with("sample(n=4, temperature=1.5"), "{}", meta.decoding);

    // --batch does not change a sample.
    let batched = tmp.path().join("batched");
    assert!(eval(data, &batched, &["--batch", "3"], None).status.success());
    let b = read_records(&batched.join("records.jsonl")).unwrap().records;
    let text = |rs: &[flipscope::runs::Record]| rs.iter().map(|r| (r.key.clone(), r.raw_output.clone())).collect::<Vec<_>>();
    assert_eq!(text(&a), text(&b));

    // Killed after its 6th sample (mid-question), resumed: the same samples.
    let split = tmp.path().join("split");
    let killed = eval(data, &split, &[], Some(("FLIPSCOPE_KILL_AFTER_RECORDS", "6")));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    assert_eq!(read_records(&split.join("records.jsonl")).unwrap().records.len(), 6);
    let resumed = eval(data, &split, &[], None);
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("skipped 6 already done"), "{}", String::from_utf8_lossy(&resumed.stdout));
    let mut c = read_records(&split.join("records.jsonl")).unwrap().records;
    c.sort_by(|x, y| x.key.cmp(&y.key));
    let mut a_sorted = a.clone();
    a_sorted.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(text(&a_sorted), text(&c), "resume per sample draws exactly the unbroken samples");
    // Other sampling settings are another run.
    let other = eval(data, &split, &["--top-p", "0.5"], None);
    assert!(!other.status.success() && String::from_utf8_lossy(&other.stderr).contains("decoding: run has `sample(n=4"));

    // The report's sampled columns, against the records.
    let (ok, out, err) = flipscope(&["report", whole.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("sampled answers (4 per question") && out.contains("pass@1 %") && out.contains("pass@4 %") && out.contains("maj@4 %"),
        "{out}"
    );
    let (ok, json, _) = flipscope(&["report", whole.to_str().unwrap(), "--format", "json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let overall = v["runs"][0]["sampled"].as_array().unwrap().last().unwrap().clone();
    let right = a.iter().filter(|r| r.is_correct()).count() as f64;
    let pass1 = overall["pass_at"][0][1].as_f64().unwrap();
    assert!((pass1 - right / a.len() as f64).abs() < 1e-9, "pass@1 is the mean accuracy over samples: {overall}");
    assert_eq!(overall["questions"].as_u64(), Some(n as u64));
    // --circular and --samples do not mix.
    let (ok, _, err) =
        flipscope(&["eval", "--model", model().to_str().unwrap(), "--data", data, "--run", "x", "--samples", "2", "--circular"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}
