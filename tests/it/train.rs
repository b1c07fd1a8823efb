//! Finetuning: one LoRA training step against HF transformers + peft, the
//! adapter format both ways, resume, merge, full-weight scopes, and the
//! errors each bad input gets.

use crate::common::parity::*;
use flipscope::engine::lora::{self, LoraConfig};
use flipscope::engine::{Engine, ModelInputs};
use flipscope::eval::PromptTemplate;
use flipscope::train::example::{self, TrainExample};
use flipscope::train::optim::AdamW;
use flipscope::train::step::{answer_loss_sum, train_step, StepSettings};
use flipscope::train::{train, FullScope, TrainConfig};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const CASE: &str = "flat_tied_odd";

fn model_dir() -> PathBuf {
    case_dir(CASE).join("model")
}

fn engine() -> Engine {
    Engine::load(&model_dir(), Device::Cpu, Kind::Float).expect("load engine")
}

/// Two synthetic scenes of different lengths, as the trainer builds them.
fn examples(e: &Engine) -> Vec<TrainExample> {
    let ds = flipscope::data::load("synth:6").unwrap();
    let t = PromptTemplate::default_prompt();
    vec![example::build(&e.processor, &t, &ds.samples[0], false).unwrap(), example::build(&e.processor, &t, &ds.samples[4], true).unwrap()]
}

fn batch(e: &Engine, ex: &[TrainExample]) -> (ModelInputs, Tensor) {
    example::collate(ex, e.model.config.pad_token_id.unwrap_or(0), Device::Cpu)
}

fn write_batch(inputs: &ModelInputs, labels: &Tensor, path: &Path) {
    let grids: Vec<i64> = inputs.grids.iter().flat_map(|g| g.to_vec()).collect();
    let named = vec![
        ("input_ids".to_string(), inputs.input_ids.shallow_clone()),
        ("attention_mask".to_string(), inputs.valid_or_ones().to_kind(Kind::Int64)),
        ("pixel_values".to_string(), inputs.pixel_values.as_ref().unwrap().shallow_clone()),
        ("image_grid_thw".to_string(), Tensor::from_slice(&grids).reshape([-1, 3])),
        ("labels".to_string(), labels.shallow_clone()),
    ];
    Tensor::write_safetensors(&named, path).unwrap();
}

fn python(args: &[&str]) {
    let out = std::process::Command::new(crate::common::parity::python()).args(args).output().expect("run python");
    assert!(out.status.success(), "{} failed:\n{}", args[0], String::from_utf8_lossy(&out.stderr));
}

fn tensor_map(path: &Path) -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(path).unwrap()
}

#[test]
fn lora_steps_match_transformers_and_peft() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = engine();
    let cfg = LoraConfig::parse("r=4,alpha=8,dropout=0").unwrap();
    tch::manual_seed(3);
    let n = lora::attach_new(&mut e.model, &cfg).unwrap();
    assert_eq!(n, 7 * e.model.text.num_layers());
    let init = tmp.path().join("init");
    lora::save(&mut e.model, &cfg, &init, "fixture").unwrap();
    let ex = examples(&e);
    assert!(ex[0].labels.len() != ex[1].labels.len(), "want left padding in the batch");
    let (inputs, labels) = batch(&e, &ex);
    let batch_path = tmp.path().join("batch.safetensors");
    write_batch(&inputs, &labels, &batch_path);

    let (steps, lr, wd, clip) = (3, 2e-3, 0.01, 0.5);
    let params = lora::parameters(&mut e.model);
    for (_, p) in &params {
        let _ = p.set_requires_grad(true);
    }
    let mut opt = AdamW::new(&params, wd);
    let mut ours = Vec::new();
    for _ in 0..steps {
        let batches = [batch(&e, &ex)];
        ours.push(
            train_step(
                &e.model,
                &batches,
                &params,
                &mut opt,
                StepSettings { lr, max_grad_norm: clip, vision_grad: false, recompute: false },
            )
            .unwrap(),
        );
    }
    let reference = tmp.path().join("ref");
    python(&[
        "tests/parity/train_step.py",
        model_dir().to_str().unwrap(),
        init.to_str().unwrap(),
        batch_path.to_str().unwrap(),
        reference.to_str().unwrap(),
        &steps.to_string(),
        &lr.to_string(),
        &wd.to_string(),
        &clip.to_string(),
    ]);
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(reference.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["loaded"].as_u64().unwrap() as usize, params.len(), "peft loaded every saved tensor");
    let modules = result["lora_modules"].as_array().unwrap();
    assert_eq!(modules.len(), n, "peft put LoRA on exactly the decoder projections: {modules:?}");
    assert!(modules.iter().all(|m| !m.as_str().unwrap().contains("visual")), "no LoRA on the vision MLP");
    for (k, (loss, norm)) in ours.iter().enumerate() {
        let (rl, rn) = (result["losses"][k].as_f64().unwrap(), result["grad_norms"][k].as_f64().unwrap());
        assert!((loss - rl).abs() <= 1e-4, "step {}: loss {loss} vs transformers {rl}", k + 1);
        assert!((norm - rn).abs() <= 1e-4 * rn.max(1.0), "step {}: grad norm {norm} vs {rn}", k + 1);
    }
    let after = tensor_map(&reference.join("after.safetensors"));
    assert_eq!(after.len(), params.len());
    let mut worst: f64 = 0.0;
    for (name, p) in &params {
        let theirs = &after.iter().find(|(n, _)| *n == lora::peft_name(name)).unwrap_or_else(|| panic!("peft has no {name}")).1;
        worst = worst.max(max_abs_diff(p, theirs));
    }
    assert!(worst <= 1e-4, "LoRA weights after {steps} steps differ by {worst}");
    // The B matrices moved off zero, so the comparison is not of untouched weights.
    let moved = params.iter().filter(|(n, _)| n.contains("lora_B")).map(|(_, p)| f64::try_from(p.abs().max()).unwrap()).fold(0.0, f64::max);
    assert!(moved > 1e-3, "{moved}");
}

fn tiny_config(out: &Path) -> TrainConfig {
    TrainConfig {
        model: model_dir(),
        data: "synth:12#seed=5".into(),
        out: out.to_path_buf(),
        lora: Some(LoraConfig::parse("r=2,alpha=4,dropout=0").unwrap()),
        batch: 2,
        max_steps: Some(4),
        lr: 1e-3,
        placement: flipscope::engine::Placement::cpu(),
        seed: 9,
        ..Default::default()
    }
}

fn quiet(_: &flipscope::train::TrainEvent) -> flipscope::engine::Flow {
    flipscope::engine::Flow::Continue
}

#[test]
fn resume_continues_exactly_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    train(&tiny_config(&whole), &mut quiet).unwrap();
    let split = tmp.path().join("split");
    let mut stop_after_two = |ev: &flipscope::train::TrainEvent| match ev {
        flipscope::train::TrainEvent::Step(m) if m.step == 2 => flipscope::engine::Flow::Stop,
        _ => flipscope::engine::Flow::Continue,
    };
    let first = train(&tiny_config(&split), &mut stop_after_two).unwrap();
    assert!(first.stopped && first.steps == 2);
    let err = train(&tiny_config(&split), &mut quiet).unwrap_err();
    assert!(err.to_string().contains("pass --resume"), "{err}");
    let second = train(&TrainConfig { resume: true, ..tiny_config(&split) }, &mut quiet).unwrap();
    assert_eq!((second.steps, second.stopped), (4, false));
    let mut a = tensor_map(&whole.join(lora::ADAPTER_WEIGHTS));
    let mut b = tensor_map(&split.join(lora::ADAPTER_WEIGHTS));
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(max_abs_diff(ta, tb) < 1e-6, "{na} differs after resume");
    }
    let m = flipscope::train::metrics::read(&split.join("metrics.jsonl")).unwrap();
    assert_eq!(m.iter().map(|m| m.step).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(m.iter().all(|m| m.loss.is_finite() && m.tokens_per_s > 0.0 && m.peak_mem_bytes.is_some()));
    assert_eq!(m[0].lr, 0.0, "warmup starts at 0");
    let err = train(&TrainConfig { resume: true, ..tiny_config(&tmp.path().join("nothing")) }, &mut quiet).unwrap_err();
    assert!(err.to_string().contains("has no trainer_state.json"), "{err}");
}

#[test]
fn adapters_attach_unmerged_and_merge_to_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let outcome = train(&TrainConfig { merge: true, lr: 5e-2, ..tiny_config(&out) }, &mut quiet).unwrap();
    let merged = outcome.merged.expect("merged dir");
    let base = engine();
    let mut adapted = engine();
    adapted.attach_adapter(&out).unwrap();
    let folded = Engine::load(&merged, Device::Cpu, Kind::Float).unwrap();
    let ex = examples(&base);
    let (inputs, labels) = batch(&base, &ex);
    let loss = |e: &Engine| tch::no_grad(|| f64::try_from(answer_loss_sum(&e.model, &inputs, &labels, false).unwrap().0).unwrap());
    let (lb, la, lm) = (loss(&base), loss(&adapted), loss(&folded));
    assert!((la - lm).abs() < 1e-3 * la.abs().max(1.0), "adapter {la} vs merged {lm}");
    assert!((la - lb).abs() > 1e-4, "training changed nothing: {la} vs base {lb}");
    // transformers loads the merged checkpoint and gets the same loss.
    let batch_path = tmp.path().join("batch.safetensors");
    write_batch(&inputs, &labels, &batch_path);
    python(&[
        "tests/parity/loss_of.py",
        merged.to_str().unwrap(),
        batch_path.to_str().unwrap(),
        tmp.path().join("loss.json").to_str().unwrap(),
    ]);
    let theirs: f64 = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(tmp.path().join("loss.json")).unwrap()).unwrap()
        ["loss"]
        .as_f64()
        .unwrap();
    let n = i64::try_from(labels.narrow(1, 1, labels.size()[1] - 1).ne(-100).sum(Kind::Int64)).unwrap() as f64;
    assert!((theirs - lm / n).abs() < 1e-4, "transformers {theirs} vs flipscope {}", lm / n);
    assert!(adapted.label().contains("adapter"));
}

#[test]
fn full_merger_training_changes_only_the_merger() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("merger");
    let cfg = TrainConfig { lora: None, full: Some(FullScope::Merger), max_steps: Some(2), ..tiny_config(&out) };
    train(&cfg, &mut quiet).unwrap();
    let before = engine();
    let after = Engine::load(&out, Device::Cpu, Kind::Float).expect("the output is a checkpoint");
    for ((name, a), (_, b)) in before.model.params.iter().zip(&after.model.params) {
        let changed = max_abs_diff(a, b) > 0.0;
        assert_eq!(changed, name.starts_with("visual.merger."), "{name} changed: {changed}");
    }
    assert!(!out.join(lora::ADAPTER_WEIGHTS).exists());
    let err = train(&TrainConfig { resume: true, lora: Some(LoraConfig::default()), ..cfg.clone() }, &mut quiet).unwrap_err();
    assert!(err.to_string().contains("was trained as full:merger"), "{err}");
}

#[test]
fn bad_adapters_and_settings_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = engine();
    let dir = tmp.path().join("a");
    let cfg = LoraConfig::parse("r=2,targets=q").unwrap();
    lora::attach_new(&mut e.model, &cfg).unwrap();
    lora::save(&mut e.model, &cfg, &dir, "x").unwrap();
    // Claiming another rank: the shapes no longer fit.
    let cfg_path = dir.join(lora::ADAPTER_CONFIG);
    let text = std::fs::read_to_string(&cfg_path).unwrap().replace("\"r\": 2", "\"r\": 3");
    std::fs::write(&cfg_path, text).unwrap();
    let err = format!("{:#}", engine().attach_adapter(&dir).unwrap_err());
    assert!(err.contains("q_proj") && err.contains("r=3"), "{err}");
    std::fs::write(&cfg_path, "{\"peft_type\": \"LORA\", \"lora_alpha\": 4}").unwrap();
    let err = format!("{:#}", engine().attach_adapter(&dir).unwrap_err());
    assert!(err.contains("adapter_config.json") && err.contains("field `r`"), "{err}");
    std::fs::remove_file(dir.join(lora::ADAPTER_WEIGHTS)).unwrap();
    std::fs::write(&cfg_path, "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4}").unwrap();
    let err = format!("{:#}", engine().attach_adapter(&dir).unwrap_err());
    assert!(err.contains("adapter_model.safetensors") && err.contains("missing"), "{err}");
    let bad_data = TrainConfig { data: "synth:4:nope,".into(), ..tiny_config(&tmp.path().join("x")) };
    assert!(train(&bad_data, &mut quiet).is_err());
    let bad_batch = TrainConfig { batch: 0, ..tiny_config(&tmp.path().join("y")) };
    assert!(train(&bad_batch, &mut quiet).unwrap_err().to_string().contains("--batch"));
}

#[test]
fn one_bad_sample_is_skipped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d.jsonl");
    let img = tmp.path().join("ok.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([200, 10, 10])).save(&img).unwrap();
    let line = |id: &str, image: &str| {
        format!(r#"{{"id": "{id}", "image": "{image}", "question": "Where is the cup?", "options": ["left", "right"], "answer": "A"}}"#)
    };
    let lines = [line("a", "ok.png"), line("b", "missing.png"), line("c", "ok.png"), line("d", "ok.png")];
    std::fs::write(&data, lines.join("\n")).unwrap();
    let mut logs = Vec::new();
    let cfg = TrainConfig { data: format!("generic:{}", data.display()), max_steps: Some(2), ..tiny_config(&tmp.path().join("o")) };
    let outcome = train(&cfg, &mut |ev| {
        if let flipscope::train::TrainEvent::Log(l) = ev {
            logs.push(l.clone());
        }
        flipscope::engine::Flow::Continue
    })
    .unwrap();
    assert_eq!(outcome.steps, 2);
    assert!(outcome.skipped >= 1);
    assert!(logs.iter().any(|l| l.contains("skipped b") && l.contains("missing.png")), "{logs:?}");
}

#[test]
fn cli_train_eval_with_adapter_loss_plot_and_distill() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p).display().to_string();
    let model = model_dir().display().to_string();
    let (ok, out, err) = crate::common::flipscope(&[
        "train",
        "--model",
        &model,
        "--data",
        "synth:10#seed=4",
        "--out",
        &t("ft"),
        "--lora",
        "r=2,alpha=4",
        "--batch",
        "2",
        "--max-steps",
        "2",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("finished at step 2/2"), "{out}");
    assert!(out.contains("LoRA r=2 alpha=4"), "{out}");
    let (ok, _, err) = crate::common::flipscope(&["train", "--model", &model, "--data", "synth:10", "--out", &t("bad"), "--lora", "r=two"]);
    assert!(!ok && err.contains("r=`two` is not a whole number"), "{err}");
    let (ok, _, err) = crate::common::flipscope(&["train", "--model", &model, "--data", "synth:10", "--out", &t("bad"), "--full", "head"]);
    assert!(!ok && err.contains("invalid value 'head' for '--full") && err.contains("merger, lm, all"), "{err}");

    let (ok, out, err) = crate::common::flipscope(&["report", "--loss", &t("loss.png"), &t("ft")]);
    assert!(ok, "{err}");
    assert!(out.contains("2 steps"), "{out}");
    assert!(image::open(t("loss.png")).unwrap().width() > 100);

    let run = t("adapted");
    let (ok, _, err) = crate::common::flipscope(&[
        "eval",
        "--model",
        &model,
        "--adapter",
        &t("ft"),
        "--data",
        "synth:5#seed=4",
        "--run",
        &run,
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("adapted/run.json")).unwrap()).unwrap();
    assert_eq!(meta["adapter"].as_str(), Some(t("ft").as_str()));
    let (ok, _, err) =
        crate::common::flipscope(&["eval", "--model", &model, "--adapter", &t("nothing"), "--data", "synth:5", "--run", &t("x")]);
    assert!(!ok && err.contains("adapter_config.json"), "{err}");

    let (ok, out, err) = crate::common::flipscope(&[
        "distill",
        "--teacher",
        &model,
        "--data",
        "synth:4#seed=4",
        "--out",
        &t("cot"),
        "--max-new-tokens",
        "4",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("asked 4"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("cot/distill_report.json")).unwrap()).unwrap();
    assert_eq!(report["asked"].as_u64(), Some(4));
    let kept = report["kept"].as_u64().unwrap() as usize;
    let lines = std::fs::read_to_string(tmp.path().join("cot/distilled.jsonl")).unwrap().lines().count();
    assert_eq!(lines, kept, "only the kept rationales are written");
    assert!(std::fs::read_to_string(tmp.path().join("cot/prompt.txt")).unwrap().contains("step by step"));
}

#[test]
fn distilled_rationales_become_training_targets() {
    // A kept rationale written by distill reads back as the assistant reply, flipped along with the image.
    let tmp = tempfile::tempdir().unwrap();
    let mut s = flipscope::data::load("synth:1").unwrap().samples.remove(0);
    let gold = s.gold_letter.unwrap();
    s.metadata.insert("target".into(), format!("The target is on the left of the reference.\nAnswer: {gold}").into());
    let e = engine();
    let t = PromptTemplate::default_prompt();
    let plain = example::build(&e.processor, &t, &s, false).unwrap();
    let flipped = example::build(&e.processor, &t, &s, true).unwrap();
    let text = |ex: &TrainExample| {
        let ids: Vec<i64> = ex.tokens.input_ids.iter().zip(&ex.labels).filter(|(_, l)| **l != -100).map(|(i, _)| *i).collect();
        e.processor.tokenizer.decode(&ids, false).unwrap()
    };
    assert!(text(&plain).starts_with("The target is on the left"), "{}", text(&plain));
    assert!(text(&flipped).starts_with("The target is on the right"), "{}", text(&flipped));
    assert!(text(&plain).ends_with("<|im_end|>"));
    drop(tmp);
}

/// `--recompute` runs each decoder layer twice but must give the plain
/// backward pass's gradients: LoRA and full weights (the embedding too).
#[test]
fn recomputed_layers_give_the_plain_gradients() {
    let grads = |recompute: bool, full: bool| -> Vec<(String, Tensor)> {
        let mut e = engine();
        let params: Vec<(String, Tensor)> = if full {
            e.model.params.iter().filter(|(n, _)| n.starts_with("model.")).map(|(n, t)| (n.clone(), t.shallow_clone())).collect()
        } else {
            tch::manual_seed(4);
            lora::attach_new(&mut e.model, &LoraConfig::parse("r=4,alpha=8,dropout=0").unwrap()).unwrap();
            let ps = lora::parameters(&mut e.model);
            let _guard = tch::no_grad_guard();
            for (n, t) in &ps {
                if n.contains("lora_B") {
                    let _ = t.shallow_clone().copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.05));
                }
            }
            ps
        };
        for (_, p) in &params {
            let _ = p.set_requires_grad(true);
        }
        let ex = examples(&e);
        let (inputs, labels) = batch(&e, &ex);
        if recompute {
            flipscope::train::recompute::loss_backward(&e.model, &inputs, false, &mut |hidden| {
                Ok(flipscope::train::step::answer_loss_of_hidden(&e.model, hidden, &labels)?.0 / 10.0)
            })
            .unwrap();
        } else {
            (answer_loss_sum(&e.model, &inputs, &labels, false).unwrap().0 / 10.0).backward();
        }
        params.iter().map(|(n, p)| (n.clone(), p.grad().copy())).collect()
    };
    for full in [false, true] {
        let (plain, again) = (grads(false, full), grads(true, full));
        assert_eq!(plain.len(), again.len());
        let mut worst: f64 = 0.0;
        for ((n, a), (_, b)) in plain.iter().zip(&again) {
            assert!(a.defined() && b.defined(), "{n} has a gradient");
            worst = worst.max(max_abs_diff(a, b));
        }
        assert!(worst <= 1e-5, "full={full}: gradients differ by {worst}");
        let largest = plain.iter().map(|(_, g)| f64::try_from(g.abs().max()).unwrap()).fold(0.0, f64::max);
        assert!(largest > 1e-4, "full={full}: gradients are not all zero ({largest})");
    }
}

/// The periodic eval asks the checkpoint the way it answers: a model whose
/// card says words is generated and read, one without a card scored.
#[test]
fn periodic_eval_asks_as_the_checkpoint_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let words = crate::common::words_model(tmp.path());
    for (model, decoding) in [(model_dir(), "score"), (words, "generate")] {
        let out = tmp.path().join(format!("ft-{decoding}"));
        let (ok, _, err) = crate::common::flipscope(&[
            "train",
            "--model",
            model.to_str().unwrap(),
            "--data",
            "synth:8#seed=4",
            "--eval",
            "synth:4#seed=5",
            "--eval-every",
            "1",
            "--max-steps",
            "1",
            "--batch",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ]);
        assert!(ok, "{err}");
        let meta = std::fs::read_to_string(out.join("evals/step-000001/run.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&meta).unwrap();
        assert!(v["decoding"].as_str().unwrap().starts_with(decoding), "{meta}");
    }
}
