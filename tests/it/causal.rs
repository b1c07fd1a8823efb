//! The causal experiments against transformers (tests/parity/causal.py:
//! forward hooks and a registered attention function), their invariants,
//! batching equal to one forward per cell, and the CLI's dumps.

use crate::common::parity::*;
use flipscope::causal::patch::mirrored_prompt;
use flipscope::causal::regions::reference_and_target;
use flipscope::causal::{self, Candidate, Decision, EdgeGroup, KnockoutSpec, Pass, PositionGroup};
use flipscope::data::Sample;
use flipscope::engine::{Engine, PreparedPrompt, ResizePolicy};
use flipscope::eval::PromptTemplate;
use tch::{Device, Kind, Tensor};

fn engine() -> Engine {
    Engine::load(&case_dir("flat_tied_odd").join("model"), Device::Cpu, Kind::Float).unwrap()
}

/// A synthetic scene's prompt, its mirror, the sample and its images.
fn scene(e: &Engine) -> (Sample, Vec<image::DynamicImage>, String, PreparedPrompt, PreparedPrompt) {
    let ds = flipscope::data::load("synth:6").unwrap();
    let s = ds.samples[1].clone();
    let images = flipscope::data::load_images(&s).unwrap();
    let text = PromptTemplate::default_prompt().render(&s.question, &s);
    let prompt = e.processor.prepare(&images, &text, &ResizePolicy::Auto).unwrap();
    let mirror = mirrored_prompt(e, &images, &text, &ResizePolicy::Auto).unwrap();
    (s, images, text, prompt, mirror)
}

/// A decision between two letters' tokens, X = A and its "mirror" B.
fn letters(e: &Engine, prompt: PreparedPrompt) -> Decision {
    let ids = e.option_token_ids(&["A".into(), "B".into()]).unwrap();
    let mut d = Decision::plain(prompt, None);
    let dir = |h| Some(flipscope::spatial::Direction::horizontal(h));
    use flipscope::spatial::Heading;
    d.candidates = vec![
        Candidate { label: "A".into(), token: ids[0], direction: dir(Heading::Left) },
        Candidate { label: "B".into(), token: ids[1], direction: dir(Heading::Right) },
    ];
    d.contrast = Some((0, 1));
    d.gold = Some(0);
    d
}

/// The first sample of `spec` whose gold option's horizontal mirror is also an option, and that `keep`s.
fn with_mirror(spec: &str, keep: impl Fn(&Sample) -> bool) -> Sample {
    flipscope::data::load(spec)
        .unwrap()
        .samples
        .into_iter()
        .find(|s| {
            let g = s.options.iter().find(|o| Some(o.letter) == s.gold_letter).unwrap();
            keep(s) && s.options.iter().any(|o| o.direction == g.direction.map(|d| d.mirrored()) && o.letter != g.letter)
        })
        .expect("a question with its gold answer's mirror among the options")
}

fn bool_rows(rows: &[Vec<bool>]) -> Tensor {
    let t = rows[0].len() as i64;
    Tensor::from_slice(&rows.concat()).reshape([rows.len() as i64, t])
}

#[test]
fn lens_knockout_and_patching_match_transformers() {
    let e = engine();
    let (s, _, _, prompt, mirror) = scene(&e);
    let d = letters(&e, prompt.clone());
    let pass = Pass::run(&e, &d.prompt).unwrap();
    let t = pass.regions.len;
    let boxes = reference_and_target(&s);
    // Ours.
    let lens = causal::logit_lens(&e, &d, 3).unwrap();
    let edges = EdgeGroup::ALL.to_vec();
    let spec = KnockoutSpec { window: 1, edges: &edges, target: None, gold: None, boxed: boxes.0 };
    let ko = causal::knockout(&e, &pass, &spec).unwrap();
    let groups = PositionGroup::ALL.to_vec();
    let patched = causal::patch(&e, &d, &mirror, &groups, boxes).unwrap();
    // The reference's inputs: the same prompt, edges and groups as masks.
    let boxed = pass.regions.in_box(boxes.0.unwrap()).unwrap();
    let edge_masks: Vec<Tensor> = edges
        .iter()
        .map(|g| {
            let (q, k) = g.edges(&pass.regions, Some(&boxed)).unwrap();
            let mut m = vec![vec![false; t]; t];
            for &qi in &q {
                for &ki in &k {
                    m[qi][ki] = true;
                }
            }
            bool_rows(&m)
        })
        .collect();
    let group_rows: Vec<Vec<bool>> = groups
        .iter()
        .map(|g| {
            let p = g.positions(&pass.regions, boxes).unwrap();
            (0..t).map(|i| p.contains(&i)).collect()
        })
        .collect();
    let pixels = |p: &PreparedPrompt| Tensor::from_slice(&p.images[0].values).reshape([-1, p.images[0].patch_dim as i64]);
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs.safetensors");
    let named = vec![
        ("input_ids".to_string(), Tensor::from_slice(&prompt.input_ids).unsqueeze(0)),
        ("pixel_values".to_string(), pixels(&prompt)),
        ("mirrored_pixel_values".to_string(), pixels(&mirror)),
        ("image_grid_thw".to_string(), Tensor::from_slice(&prompt.images[0].grid).reshape([1, 3])),
        ("window".to_string(), Tensor::from_slice(&[1i64])),
        ("target".to_string(), Tensor::from_slice(&[ko.target])),
        ("edges".to_string(), Tensor::stack(&edge_masks, 0)),
        ("patch_groups".to_string(), bool_rows(&group_rows)),
        ("plus".to_string(), Tensor::from_slice(&[patched.plus])),
        ("minus".to_string(), Tensor::from_slice(&[patched.minus])),
    ];
    Tensor::write_safetensors(&named, &inputs).unwrap();
    let out = tmp.path().join("reference.safetensors");
    let py = std::process::Command::new(python())
        .args(["tests/parity/causal.py", case_dir("flat_tied_odd").join("model").to_str().unwrap()])
        .args([inputs.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let reference = Tensor::read_safetensors(&out).unwrap();
    let get = |n: &str| reference.iter().find(|(k, _)| k == n).unwrap_or_else(|| panic!("no {n}")).1.shallow_clone();
    let close = |what: &str, ours: &Tensor, theirs: &Tensor| {
        let d = max_abs_diff(ours, theirs);
        assert!(d < 1e-4, "{what}: max |diff| {d}");
    };
    close("resid_post", &lens.resid_post, &get("resid_post"));
    close("lens_last", &lens.lens_last, &get("lens_last"));
    let table = |rows: &Vec<Vec<f64>>| Tensor::from_slice(&rows.concat()).reshape([rows.len() as i64, -1]).to_kind(Kind::Float);
    close("knockout_logprob", &table(&ko.logprob), &get("knockout_logprob"));
    close("base_logprob", &Tensor::from_slice(&[ko.base_logprob as f32]), &get("base_logprob"));
    close("clean_logits_last", &patched.clean_logits_last, &get("clean_logits_last"));
    close("corrupt_logits_last", &patched.corrupt_logits_last, &get("corrupt_logits_last"));
    close("patch_effect", &table(&patched.effect), &get("patch_effect"));
    let vision: Vec<f32> = patched.vision_effect.iter().map(|v| v.unwrap_or(f64::NAN) as f32).collect();
    let theirs = Vec::<f32>::try_from(get("vision_patch_effect")).unwrap();
    for (g, (a, b)) in vision.iter().zip(&theirs).enumerate() {
        assert!(a.is_nan() == b.is_nan() && (a.is_nan() || (a - b).abs() < 1e-4), "vision patch of {}: {a} vs {b}", groups[g].name());
    }
    // The knockouts changed something (the test would pass on a no-op otherwise).
    assert!(ko.logprob.iter().flatten().any(|lp| (lp - ko.base_logprob).abs() > 1e-4), "{:?}", ko.logprob);
}

#[test]
fn patching_everything_restores_the_clean_answer_at_every_layer() {
    let e = engine();
    let (_, _, _, prompt, mirror) = scene(&e);
    let d = letters(&e, prompt);
    let p = causal::patch(&e, &d, &mirror, &[PositionGroup::All, PositionGroup::Last], (None, None)).unwrap();
    for (l, row) in p.effect.iter().enumerate() {
        assert!((row[0] - 1.0).abs() < 1e-4, "layer {l}: patching all restores {}", row[0]);
    }
    assert!((p.vision_effect[0].unwrap() - 1.0).abs() < 1e-4, "vision, all: {:?}", p.vision_effect[0]);
    assert_eq!(p.vision_effect[1], None, "the last position is no image token");
    // The last position at the last layer is all that the logits read.
    assert!((p.effect.last().unwrap()[1] - 1.0).abs() < 1e-4);
    assert!((p.ld_clean - p.ld_corrupt).abs() > 1e-6);
}

#[test]
fn batched_knockout_equals_one_forward_per_cell() {
    let e = engine();
    let (s, _, _, prompt, _) = scene(&e);
    let d = letters(&e, prompt);
    let pass = Pass::run(&e, &d.prompt).unwrap();
    let boxes = reference_and_target(&s);
    let edges = EdgeGroup::ALL.to_vec();
    for window in [1, 2] {
        let spec = KnockoutSpec { window, edges: &edges, target: None, gold: Some(d.candidates[1].token), boxed: boxes.0 };
        let batched = causal::knockout(&e, &pass, &spec).unwrap();
        let naive = causal::knockout_naive(&e, &pass, &d.prompt, &spec).unwrap();
        assert_eq!(batched.logprob.len(), 3 - window);
        for (a, b) in batched.logprob.iter().flatten().zip(naive.logprob.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "window {window}: {a} vs {b}");
        }
        for (a, b) in batched.gold_logprob.unwrap().iter().flatten().zip(naive.gold_logprob.unwrap().iter().flatten()) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

#[test]
fn regions_find_the_question_and_the_boxes() {
    let e = engine();
    let (s, _, _, prompt, _) = scene(&e);
    let r = causal::pass::regions(&e, &prompt).unwrap();
    let img = &r.images[0];
    assert_eq!(r.image.len(), img.rows * img.cols);
    assert_eq!(r.image.first(), Some(&img.first));
    let tok = &e.processor.tokenizer;
    let question = tok.decode(&r.question.iter().map(|&p| prompt.input_ids[p]).collect::<Vec<_>>(), false).unwrap();
    assert!(question.contains(s.question.split_whitespace().next().unwrap()), "{question:?}");
    assert!(!question.contains("<|im_end|>") && !question.contains("assistant"), "{question:?}");
    assert_eq!(r.last, prompt.input_ids.len() - 1);
    let (reference, target) = reference_and_target(&s);
    let (a, b) = (r.in_box(reference.unwrap()).unwrap(), r.in_box(target.unwrap()).unwrap());
    assert!(!a.is_empty() && !b.is_empty() && a.iter().all(|p| r.image.contains(p)));
    // The whole image's box holds every image token.
    let (w, h) = img.original;
    let all = r.in_box(&flipscope::data::BoundingBox::new(0.0, 0.0, w as f32, h as f32)).unwrap();
    assert_eq!(all, r.image);
    // A box outside the image (a dataset's own, as region ablation and the
    // probes read them) is refused, never moved onto the edge tokens.
    let far = flipscope::data::BoundingBox::new(w as f32 + 10.0, 0.0, w as f32 + 50.0, 20.0);
    let err = r.in_box(&far).unwrap_err().to_string();
    assert!(err.contains(&format!("lies outside the {w}x{h} image")), "{err}");
}

#[test]
fn the_demo_model_decides_left_or_right_after_the_shared_opening() {
    let dir = flipscope::config::demo_model().unwrap();
    let e = Engine::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let s = &with_mirror("synth:40#seed=7,kinds=camera,scale=3", |s| {
        s.options.iter().any(|o| Some(o.letter) == s.gold_letter && o.text.starts_with("front-"))
    });
    let images = flipscope::data::load_images(s).unwrap();
    let prompt = e.processor.prepare(&images, &PromptTemplate::default_prompt().render(&s.question, s), &ResizePolicy::Auto).unwrap();
    let d = causal::decision::for_sample(&e, s, &prompt, causal::AnswerForm::Words).unwrap();
    let tok = &e.processor.tokenizer;
    assert_eq!(tok.decode(&d.opening, false).unwrap(), "front-");
    let (x, m) = d.contrast.unwrap();
    let words = [tok.decode(&[d.candidates[x].token], false).unwrap(), tok.decode(&[d.candidates[m].token], false).unwrap()];
    let mut sorted = words.clone();
    sorted.sort();
    assert_eq!(sorted, ["left", "right"], "{words:?}");
    assert_eq!(d.prompt.input_ids.len(), prompt.input_ids.len() + d.opening.len());
    // Auto picks words for the demo model, which answers in words.
    assert_eq!(causal::decision::for_sample(&e, s, &prompt, causal::AnswerForm::Auto).unwrap().form, causal::AnswerForm::Words);
}

#[test]
fn every_dump_has_its_shape() {
    let model = case_dir("flat_tied_odd").join("model");
    let tmp = tempfile::tempdir().unwrap();
    let id = with_mirror("synth:20", |_| true).id;
    let base = ["--model", model.to_str().unwrap(), "--device", "cpu", "--data", "synth:20", "--id", &id, "--answer", "letter"];
    let run = |cmd: &str, extra: &[&str], file: &str| -> Vec<(String, Tensor)> {
        let dump = tmp.path().join(file);
        let mut args = vec![cmd];
        args.extend(base);
        args.extend(extra);
        args.extend(["--dump", dump.to_str().unwrap()]);
        let (ok, out, err) = crate::common::flipscope(&args);
        assert!(ok, "{cmd} failed:\n{out}\n{err}");
        Tensor::read_safetensors(&dump).unwrap()
    };
    let shape = |t: &[(String, Tensor)], n: &str| t.iter().find(|(k, _)| k == n).unwrap_or_else(|| panic!("no {n}")).1.size();
    let e = engine();
    let (vocab, hidden, layers) = (e.model.config.text.vocab_size, e.model.config.text.hidden_size, 2);
    let png = tmp.path().join("lens.png");
    let lens = run("lens", &["--out", png.to_str().unwrap()], "lens.safetensors");
    assert!(image::open(&png).unwrap().width() > 900, "the plot, and its legend beside it");
    let t = shape(&lens, "resid_post")[1];
    assert_eq!(shape(&lens, "resid_post"), [layers, t, hidden]);
    assert_eq!(shape(&lens, "lens_last"), [layers, vocab]);
    let csv = tmp.path().join("ko.csv");
    let ko = run("knockout", &["--window", "1", "--edges", "image->last,question->last", "--out", csv.to_str().unwrap()], "ko.safetensors");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("window_start,edges,target_logprob,delta,gold_logprob"), "{text}");
    assert_eq!(text.lines().count(), 1 + 2 * 2);
    assert_eq!(shape(&ko, "knockout_logprob"), [layers, 2]);
    assert_eq!(shape(&ko, "base_logprob"), [1]);
    let parquet = tmp.path().join("patch.parquet");
    // The random model's mirror barely moves LD on this sample: by default no ratio is drawn (the
    // dump still keeps the raw numbers); with no threshold the table is written.
    let mut args = vec!["patch"];
    args.extend(base);
    args.extend(["--out", parquet.to_str().unwrap()]);
    let (ok, out, err) = crate::common::flipscope(&args);
    assert!(!ok && out.contains("⚠ small_ld_gap") && err.contains("no ratios to draw") && !parquet.exists(), "{out}\n{err}");
    let p = run("patch", &["--groups", "all,image,last", "--min-ld-gap", "0", "--out", parquet.to_str().unwrap()], "patch.safetensors");
    assert!(std::fs::read(&parquet).unwrap().starts_with(b"PAR1"));
    assert_eq!(shape(&p, "patch_effect"), [layers, 3]);
    assert_eq!(shape(&p, "vision_patch_effect"), [3]);
    assert_eq!(shape(&p, "clean_logits_last"), [vocab]);
    assert_eq!(shape(&p, "corrupt_logits_last"), [vocab]);
}

#[test]
fn bad_causal_arguments_are_named() {
    let model = case_dir("flat_tied_odd").join("model");
    let id = flipscope::data::load("synth:6").unwrap().samples[1].id.clone();
    let m = model.to_str().unwrap();
    let far = "5000,5000,6000,6000";
    let cases: [(&[&str], &str); 8] = [
        // One sample names no batch: --run and --limit with --id would be ignored.
        (&["lens", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--run", "r"], "cannot be used with"),
        (&["patch", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--limit", "3"], "cannot be used with"),
        // A box outside the image would be clamped onto the edge tokens: refused, naming the image size.
        (
            &["knockout", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--edges", "box->last", "--box", far],
            "lies outside the",
        ),
        (&["saliency", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--box", far], "lies outside the"),
        (&["lens", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--out", "x.txt"], "--out x.txt"),
        (&["knockout", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--window", "9"], "--window 9"),
        (&["knockout", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--edges", "image->nowhere"], "image->nowhere"),
        (
            &["lens", "--model", m, "--device", "cpu", "--data", "synth:6", "--id", &id, "--target-token", "99999999"],
            "not in the vocabulary",
        ),
    ];
    for (args, want) in cases {
        let (ok, _, err) = crate::common::flipscope(args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
}

/// Batch mode: rows per sample beside an eval run, a failing sample as a
/// row with its error, resume, refused other settings and second writers,
/// and `report` summing the rows up by outcome.
#[test]
fn batch_runs_write_rows_resume_and_report_by_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    let (ok, _, err) = crate::common::flipscope(&["data", "synth", "--out", data.to_str().unwrap(), "--n", "10", "--seed", "4"]);
    assert!(ok, "{err}");
    // One sample's image is gone: its row holds the error and the batch goes on.
    let mut images: Vec<_> = std::fs::read_dir(data.join("images")).unwrap().map(|e| e.unwrap().path()).collect();
    images.sort();
    std::fs::remove_file(&images[0]).unwrap();
    let model = case_dir("flat_tied_odd").join("model");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let (ok, _, err) = crate::common::flipscope(&["eval", "--model", m, "--data", d, "--run", r, "--device", "cpu"]);
    assert!(ok, "{err}");
    let causal = |args: &[&str]| {
        let mut all = vec![args[0], "--model", m, "--device", "cpu", "--data", d, "--run", r, "--answer", "letter"];
        all.extend(&args[1..]);
        crate::common::flipscope(&all)
    };
    let (ok, out, err) = causal(&["lens", "--limit", "6"]);
    assert!(ok, "{err}");
    assert!(out.contains("6 samples written (1 failed"), "{out}");
    let rows = std::fs::read_to_string(run.join("causal/lens.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 6);
    assert_eq!(rows.lines().filter(|l| l.contains("\"error\"")).count(), 1, "{rows}");
    // Resumed: only the rest, with the same checkpoint named by another path.
    let other_path = model.join("..").join("model");
    let o = other_path.to_str().unwrap();
    let args = ["lens", "--model", o, "--device", "cpu", "--data", d, "--run", r, "--answer", "letter"];
    let (ok, out, err) = crate::common::flipscope(&args);
    assert!(ok, "{err}");
    assert!(out.contains("4 samples written (0 failed") && out.contains("6 already there"), "{out}");
    // Another model's rows are not mixed in.
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo-model");
    let args = ["lens", "--model", demo, "--device", "cpu", "--data", d, "--run", r, "--answer", "letter"];
    let (ok, _, err) = crate::common::flipscope(&args);
    assert!(!ok && err.contains("evaluated with another setting") && err.contains("model fingerprint"), "{err}");
    assert_eq!(std::fs::read_to_string(run.join("causal/lens.jsonl")).unwrap().lines().count(), 10);
    let (ok, _, err) = causal(&["knockout", "--window", "1", "--limit", "3"]);
    assert!(ok, "{err}");
    let (ok, _, err) = causal(&["knockout", "--window", "2", "--limit", "3"]);
    assert!(!ok && err.contains("other settings"), "{err}");
    let (ok, _, err) = causal(&["patch", "--groups", "all,last", "--limit", "3"]);
    assert!(ok, "{err}");
    let (ok, _, err) = causal(&["ablate", "--baseline", "mean", "--limit", "4"]);
    assert!(ok, "{err}");
    // A second writer is refused while the first holds the folder.
    let lock = flipscope::fsutil::DirLock::acquire(&run.join("causal")).unwrap();
    let (ok, _, err) = causal(&["lens"]);
    assert!(!ok && err.contains("in use by another flipscope process"), "{err}");
    drop(lock);
    // A dump is of one sample: refused in batch mode.
    let (ok, _, err) = causal(&["lens", "--dump", "x.safetensors"]);
    assert!(!ok && err.contains("for one sample"), "{err}");
    let (ok, report, err) = crate::common::flipscope(&["report", r]);
    assert!(ok, "{err}");
    assert!(report.contains("causal experiments"), "{report}");
    assert!(report.contains("logit lens (9 samples)"), "{report}");
    assert!(report.contains("knockout (3 samples)") || report.contains("knockout (2 samples)"), "{report}");
    assert!(report.contains("patching ("), "{report}");
    assert!(report.contains("region ablation (3 samples)") && report.contains("reference "), "{report}");
    // `--format json` carries the same summary as data.
    let (ok, json, err) = crate::common::flipscope(&["report", r, "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let causal = &v["runs"][0]["causal"];
    assert_eq!(causal["lens"]["samples"], 9, "{causal}");
    assert_eq!(causal["ablate"]["samples"], 3, "{causal}");
    let outcomes = causal["patch"]["by_outcome"].as_array().unwrap();
    assert!(outcomes.iter().all(|o| o["side_moves"].as_f64().is_some_and(|s| (0.0..=1.0).contains(&s))), "{causal}");
}

/// A batch on other data, with another model or beside a run without its
/// adapter is refused before its first row (and before the model loads),
/// naming what differs from run.json: its rows would be summed by the
/// outcomes of other scenes that share the ids.
#[test]
fn a_causal_batch_is_bound_to_its_run_before_the_first_row() {
    let tmp = tempfile::tempdir().unwrap();
    let model = case_dir("flat_tied_odd").join("model");
    let m = model.to_str().unwrap();
    let run = tmp.path().join("g3");
    let r = run.to_str().unwrap();
    let (ok, _, err) = crate::common::flipscope(&["eval", "--model", m, "--data", "synth:3#seed=5", "--run", r, "--device", "cpu"]);
    assert!(ok, "{err}");
    let adapter = tmp.path().join("adapter");
    std::fs::create_dir(&adapter).unwrap();
    let a = adapter.to_str().unwrap();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo-model");
    let cases: [(&[&str], &str); 4] = [
        (&["lens", "--model", m, "--data", "synth:3#seed=6"], "dataset: run has `synth:3#seed=5`"),
        (&["patch", "--model", m, "--data", "synth:3#seed=6"], "dataset: run has `synth:3#seed=5`"),
        (&["ablate", "--model", m, "--adapter", a, "--data", "synth:3#seed=5"], "adapter: run has none"),
        (&["knockout", "--model", demo, "--data", "synth:3#seed=5"], "model fingerprint"),
    ];
    for (args, want) in cases {
        let all: Vec<&str> = args.iter().copied().chain(["--run", r, "--device", "cpu", "--answer", "letter"]).collect();
        let (ok, _, err) = crate::common::flipscope(&all);
        assert!(!ok && err.contains(want) && err.contains("no row is written"), "{args:?}: {err}");
    }
    assert!(!run.join("causal").exists(), "nothing was written beside the run");
    let (ok, _, err) = crate::common::flipscope(&["lens", "--model", m, "--data", "synth:3#seed=5", "--run", r, "--device", "cpu"]);
    assert!(ok, "the run's own model and data write rows: {err}");
}

/// The toy case: steering the last layer's output along the gradient of
/// logit(B) - logit(A) moves the answer from A (left) towards B (right),
/// more the larger alpha, and back for negative alpha.
#[test]
fn steering_moves_answers_in_the_expected_direction_on_a_toy_case() {
    use flipscope::causal::direction_probe::{steer, Axis};
    let e = engine();
    let (_, _, _, prompt, _) = scene(&e);
    let d = letters(&e, prompt);
    let pass = Pass::run(&e, &d.prompt).unwrap();
    let layer = pass.layers() - 1;
    let width = e.model.config.text.hidden_size;
    let delta = Tensor::zeros([width], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let hidden = pass.traced.resid_post[layer].get(0).detach() + &delta;
    let out = e.model.text.run_branches(
        &pass.traced.cache,
        &pass.positions,
        0,
        &[flipscope::engine::text::Branch { enter: layer + 1, hidden }],
        &|_, _| None,
    );
    let logits = causal::pass::lens(&e.model, &out.select(1, -1)).get(0);
    (logits.get(d.candidates[1].token) - logits.get(d.candidates[0].token)).backward();
    let g = delta.grad();
    let direction = &g / g.norm();
    let one = std::slice::from_ref(&d);
    let everywhere = [None];
    let rows = steer(&e, one, &everywhere, Axis::LeftRight, layer, &direction, 0.05, &[-1.0, 0.0, 1.0]).unwrap();
    let m: Vec<f64> = rows.iter().map(|r| r.mean_margin.unwrap()).collect();
    assert!(m[0] < m[1] && m[1] < m[2], "log p(right) - log p(left) rises with alpha: {m:?}");
    // Large enough steps turn the answer to the steered side.
    let far = steer(&e, one, &everywhere, Axis::LeftRight, layer, &direction, 50.0, &[-1.0, 1.0]).unwrap();
    assert_eq!((far[0].negative, far[1].positive), (1, 1), "{far:?}");
    // At the last layer only the answer position's own output reaches its
    // logits: steering it alone is steering everywhere; steering another
    // position changes nothing.
    let last = d.prompt.input_ids.len() - 1;
    let alone = steer(&e, one, &[Some(vec![last])], Axis::LeftRight, layer, &direction, 0.05, &[-1.0, 0.0, 1.0]).unwrap();
    assert_eq!(alone, rows);
    let elsewhere = steer(&e, one, &[Some(vec![0, last - 1])], Axis::LeftRight, layer, &direction, 50.0, &[-1.0, 1.0]).unwrap();
    let unsteered = rows[1].mean_margin.unwrap();
    assert!(elsewhere.iter().all(|r| (r.mean_margin.unwrap() - unsteered).abs() < 1e-4), "{elsewhere:?} vs {unsteered}");
}

/// Probes on the demo model's residual stream over synthetic scenes: fitted
/// on the train split, scored on the held-out one, saved and read back,
/// and the CLI's probe-linear and steer run on them.
#[test]
fn direction_probes_on_synthetic_scenes() {
    use flipscope::causal::direction_probe::{collect, fit, load, save, Axis, Site};
    let dir = flipscope::config::demo_model().unwrap();
    let e = Engine::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let spec = "synth:600#seed=9,kinds=camera,scale=3,distractors=0";
    let samples = flipscope::data::load(spec).unwrap().samples;
    let features = collect(&e, &samples, &ResizePolicy::Auto, &mut |_, _| {}).unwrap();
    assert!(features.skipped.is_empty(), "{:?}", features.skipped);
    let layers = e.model.text.num_layers();
    assert_eq!(features.last.size(), [samples.len() as i64, layers as i64, e.model.config.text.hidden_size]);
    let probe = fit(&features, Axis::LeftRight, Site::Last).unwrap();
    assert_eq!(probe.test_accuracy.len(), layers);
    assert!(probe.n_test > 25 && probe.n_train > 100, "{} / {}", probe.n_train, probe.n_test);
    let best = probe.test_accuracy.iter().cloned().fold(0.0, f64::max);
    // The demo model answers these two-object scenes well above chance; the
    // answer position must then hold left/right linearly.
    assert!(best > 0.7, "best held-out left/right accuracy {best:.3}: {:?}", probe.test_accuracy);
    // Each held-out verdict agrees with the accuracy the fit reported.
    let verdicts = probe.held_out(&features).unwrap();
    assert_eq!(verdicts.len(), probe.n_test);
    for (l, acc) in probe.test_accuracy.iter().enumerate() {
        let hits = verdicts.iter().filter(|v| v.correct[l]).count() as f64 / verdicts.len() as f64;
        assert!((hits - acc).abs() < 1e-9, "layer {l}: {hits} vs {acc}");
    }
    // The vision tower's output (target minus reference tokens): one "layer".
    let vision = features.vision.as_ref().expect("every scene has both boxes");
    assert_eq!(vision.size(), [samples.len() as i64, 1, e.model.config.text.hidden_size]);
    let at_vision = fit(&features, Axis::LeftRight, Site::Vision).unwrap();
    assert_eq!(at_vision.test_accuracy.len(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("probes.safetensors");
    save(std::slice::from_ref(&probe), &file).unwrap();
    let back = load(&file).unwrap();
    assert!(back[0].test_accuracy.iter().zip(&probe.test_accuracy).all(|(a, b)| (a - b).abs() < 1e-6));
    assert!(max_abs_diff(&back[0].weight, &probe.weight) == 0.0);
    // The CLI: probes, then steering with them.
    let d = dir.to_str().unwrap();
    let out = tmp.path().join("cli.safetensors");
    let png = tmp.path().join("acc.png");
    let run = |cmd: &str, extra: &[&str]| {
        let mut args = vec![cmd, "--model", d, "--device", "cpu", "--data", spec];
        args.extend(extra);
        crate::common::flipscope(&args)
    };
    let (o, p) = (out.to_str().unwrap(), png.to_str().unwrap());
    let eval_run = tmp.path().join("run");
    let r = eval_run.to_str().unwrap();
    let (ok, _, err) = crate::common::flipscope(&["eval", "--model", d, "--device", "cpu", "--data", spec, "--limit", "150", "--run", r]);
    assert!(ok, "{err}");
    let (ok, text, err) = run("probe-linear", &["--limit", "150", "--axes", "left-right,front-back", "--out", o, "--plot", p, "--run", r]);
    assert!(ok, "{err}");
    assert!(text.contains("left-right@last") && text.contains("front-back@target") && text.contains("left-right@vision"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("vision ")), "the vision probes' row:\n{text}");
    assert!(text.contains("model accuracy on the held-out samples"), "{text}");
    let by_outcome = |probe: &str, outcome: &str| text.lines().any(|l| l.contains(probe) && l.contains(outcome) && l.contains('%'));
    assert!(by_outcome("left-right@last", " correct "), "probe accuracy on the samples the model gets right:\n{text}");
    assert!(png.is_file());
    let last = (layers - 1).to_string();
    let (ok, text, err) = run("steer", &["--limit", "12", "--probes", o, "--layer", &last, "--alpha=-2,0,2"]);
    assert!(ok, "{err}");
    assert!(text.contains("mean log p(right) - log p(left)") && text.lines().count() >= 5, "{text}");
    let (ok, text, err) =
        run("steer", &["--limit", "12", "--probes", o, "--site", "target", "--at", "site", "--layer", "1", "--alpha=-1,1"]);
    assert!(ok && text.contains("at the probe's site only"), "{err}");
    // Nothing steerable (the benchmark's images are not shipped) is an error, not a table of zeros.
    let bench = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/viewspatial/ViewSpatial-Bench.json.gz");
    let args = ["steer", "--model", d, "--device", "cpu", "--data", bench, "--limit", "2", "--probes", o, "--layer", "0"];
    let (ok, _, err) = crate::common::flipscope(&args);
    assert!(!ok && err.contains("could be steered"), "{err}");
    // A mistyped eval run is refused before any feature is collected.
    let (ok, _, err) = run("probe-linear", &["--out", o, "--run", "/no/such/run"]);
    assert!(!ok && err.contains("--run /no/such/run") && err.contains("not a run"), "{err}");
    let (ok, _, err) = run("steer", &["--probes", o, "--site", "vision", "--layer", "0"]);
    assert!(!ok && err.contains("--site vision"), "{err}");
    let (ok, _, err) = run("steer", &["--probes", o, "--layer", &last, "--alpha=0,nan"]);
    assert!(!ok && err.contains("--alpha") && err.contains("not a finite number"), "{err}");
    // Probes of another model's shape are refused, naming both shapes.
    let other = crate::common::parity::case_dir("flat_tied_odd").join("model");
    let args =
        ["steer", "--model", other.to_str().unwrap(), "--device", "cpu", "--data", spec, "--limit", "2", "--probes", o, "--layer", "0"];
    let (ok, _, err) = crate::common::flipscope(&args);
    assert!(!ok && err.contains(&format!("the probes have {layers} layers 192 wide; this model has 2 layers of hidden size 64")), "{err}");
}

/// Ablating a region with the image's own embeddings changes nothing; with
/// the blurred image's it changes the scores; the CLI reads one sample.
#[test]
fn region_ablation_swaps_only_the_region() {
    use flipscope::causal::ablate::{ablate, blurred_vision, vision_of, Region};
    let e = engine();
    let (s, images, text, prompt, _) = scene(&e);
    let d = letters(&e, prompt.clone());
    let boxes = reference_and_target(&s);
    let own = vision_of(&e, &prompt).unwrap();
    let same = ablate(&e, &d, &own, &Region::ALL, boxes).unwrap();
    for row in &same.ablated {
        for (a, b) in row.iter().zip(&same.base) {
            assert!((a - b).abs() < 1e-5, "its own embeddings: {a} vs {b}");
        }
    }
    assert_eq!(same.changed(), [false, false, false]);
    let blurred = blurred_vision(&e, &images, &text, &ResizePolicy::Auto).unwrap();
    let a = ablate(&e, &d, &blurred, &Region::ALL, boxes).unwrap();
    let moved = a.ablated.iter().flatten().zip(a.base.iter().cycle()).map(|(x, b)| (x - b).abs()).fold(0.0, f64::max);
    assert!(moved > 1e-4, "blurring a region moved nothing");
    // Too few baseline rows: refused, not misread.
    assert!(ablate(&e, &d, &own.narrow(0, 0, 3), &Region::ALL, boxes).is_err());
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("ablate.csv");
    let model = case_dir("flat_tied_odd").join("model");
    let (ok, out, err) = crate::common::flipscope(&[
        "ablate",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
        "--data",
        "synth:6",
        "--id",
        &s.id,
        "--answer",
        "letter",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("reference") && out.contains("rest"), "{out}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 1 + 3 * s.options.len());
}

/// The TUI's overview traces the prompt once for all three experiments:
/// each part equals the experiment run alone.
#[test]
fn the_overview_equals_each_experiment_run_alone() {
    use flipscope::causal::overview::overview;
    use flipscope::causal::AnswerForm;
    let e = engine();
    let s = with_mirror("synth:12#seed=3", |s| s.images.len() == 1);
    let o = overview(&e, &s, AnswerForm::Letter, 1, &ResizePolicy::Auto, &mut |_| flipscope::engine::Flow::Continue).unwrap();
    let images = flipscope::data::load_images(&s).unwrap();
    let text = flipscope::eval::mcq_prompt(&s.question, &s);
    let prompt = e.processor.prepare(&images, &text, &ResizePolicy::Auto).unwrap();
    let d = causal::decision::for_sample(&e, &s, &prompt, AnswerForm::Letter).unwrap();
    let lens = causal::logit_lens(&e, &d, 1).unwrap();
    assert_eq!(o.lens.clone().unwrap().unwrap().curve, lens.curve);
    let (reference, target) = reference_and_target(&s);
    let edges = EdgeGroup::applicable(reference.is_some());
    let gold = d.gold.map(|g| d.candidates[g].token);
    let pass = Pass::run(&e, &d.prompt).unwrap();
    let ko = causal::knockout(&e, &pass, &KnockoutSpec { window: 1, edges: &edges, target: None, gold, boxed: reference }).unwrap();
    let table = o.knockout.clone().unwrap().unwrap();
    assert_eq!(table.edges, edges);
    for (row, alone) in table.delta.iter().zip(&ko.logprob) {
        for (a, b) in row.iter().zip(alone) {
            assert!((a - (b - ko.base_logprob)).abs() < 1e-6, "{a} vs {}", b - ko.base_logprob);
        }
    }
    let groups = PositionGroup::applicable(reference.is_some(), target.is_some());
    let corrupt = mirrored_prompt(&e, &images, &text, &ResizePolicy::Auto).unwrap().extended(&d.opening);
    let sweep = causal::patch(&e, &d, &corrupt, &groups, (reference, target)).unwrap();
    let map = o.patch.clone().unwrap().unwrap();
    assert_eq!((map.ld_clean, map.ld_corrupt), (sweep.ld_clean, sweep.ld_corrupt));
    let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-6;
    assert!(map.effect.iter().flatten().zip(sweep.effect.iter().flatten()).all(|(a, b)| same(*a, *b)));
    assert_eq!(map.vision, sweep.vision_effect);
}
