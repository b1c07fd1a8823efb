//! GRPO against a Python reference (`tests/parity/grpo_step.py`: torch +
//! transformers + peft, TRL's formulas) on fixed rollouts: every loss type
//! and reward scaling, with and without the KL term, with LoRA and in full.

use crate::common::parity::*;
use flipscope::engine::lora::{self, LoraConfig};
use flipscope::engine::{Engine, ModelInputs};
use flipscope::eval::PromptTemplate;
use flipscope::train::example::{self, TrainExample, IGNORE};
use flipscope::train::grpo::{self, LossKind, Objective, ScaleRewards};
use std::path::Path;
use tch::{Device, Kind, Tensor};

const GROUP: usize = 3;
const MAX_COMPLETION: usize = 8;
/// Prompt 0: rewards [1, 0, 0]; prompt 1: [1, 1, 0.25]; prompt 2: all 0.5 (no signal: left out).
const REWARDS: [f64; 9] = [1.0, 0.0, 0.0, 1.0, 1.0, 0.25, 0.5, 0.5, 0.5];

fn model_dir() -> std::path::PathBuf {
    case_dir("flat_tied_odd").join("model")
}

/// Three prompts x three fixed completions of different lengths (some end with <|im_end|>).
fn rollouts(e: &Engine) -> Vec<TrainExample> {
    let ds = flipscope::data::load("synth:6").unwrap();
    let t = PromptTemplate::default_prompt();
    let texts = ["left<|im_end|>", "The answer is B", "right", "A.<|im_end|>", "front-left", "B<|im_end|>", "up", "down", "left"];
    let mut out = Vec::new();
    for (p, s) in [&ds.samples[0], &ds.samples[4], &ds.samples[2]].into_iter().enumerate() {
        let images = flipscope::data::load_images(s).unwrap();
        let prompt = e.processor.prepare(&images, &t.render(&s.question, s), &t.resize).unwrap();
        for k in 0..GROUP {
            let ids = e.processor.tokenizer.encode(texts[p * GROUP + k]).unwrap();
            assert!(ids.len() <= MAX_COMPLETION);
            out.push(example::with_answer(prompt.clone(), &ids, &[], &format!("{p}/{k}")));
        }
    }
    out
}

fn batch(e: &Engine, ex: &[TrainExample]) -> (ModelInputs, Tensor) {
    let (inputs, labels) = example::collate(ex, e.model.config.pad_token_id.unwrap_or(0), Device::Cpu);
    (inputs, labels.ne(IGNORE))
}

/// A fixed off-policy shift of the old log-probs, so that some ratios clip.
fn old_logps(e: &Engine, inputs: &ModelInputs, mask: &Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let logp = grpo::completion_logps(&e.model, inputs, mask, false).unwrap();
    let n = logp.numel() as i64;
    let shift = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 1.7).sin().reshape(logp.size()) * 0.35;
    let m = mask.narrow(1, 1, mask.size()[1] - 1).to_kind(Kind::Float);
    (&logp + shift) * m
}

fn write_batch(e: &Engine, path: &Path) -> (ModelInputs, Tensor, Tensor) {
    let ex = rollouts(e);
    let (inputs, mask) = batch(e, &ex);
    let old = old_logps(e, &inputs, &mask);
    let grids: Vec<i64> = inputs.grids.iter().flat_map(|g| g.to_vec()).collect();
    let scalar = |v: f64| Tensor::from_slice(&[v as f32]);
    let named = vec![
        ("input_ids".to_string(), inputs.input_ids.shallow_clone()),
        ("attention_mask".to_string(), inputs.valid_or_ones().to_kind(Kind::Int64)),
        ("pixel_values".to_string(), inputs.pixel_values.as_ref().unwrap().shallow_clone()),
        ("image_grid_thw".to_string(), Tensor::from_slice(&grids).reshape([-1, 3])),
        ("completion_mask".to_string(), mask.to_kind(Kind::Int64)),
        ("old_logps".to_string(), old.shallow_clone()),
        ("rewards".to_string(), Tensor::from_slice(&REWARDS.map(|r| r as f32))),
        ("group".to_string(), Tensor::from_slice(&[GROUP as i64])),
        ("max_completion_length".to_string(), Tensor::from_slice(&[MAX_COMPLETION as i64])),
        ("epsilon".to_string(), scalar(0.2)),
        ("epsilon_high".to_string(), scalar(0.28)),
    ];
    Tensor::write_safetensors(&named, path).unwrap();
    (inputs, mask, old)
}

/// Our loss and the gradients of `names` for one setting, on the rows with signal.
fn ours(
    e: &mut Engine,
    kept: &[TrainExample],
    old: &Tensor,
    obj: Objective,
    scale: ScaleRewards,
    lora_ref: bool,
    reference: Option<&Engine>,
    names: &[String],
) -> (f64, Vec<Tensor>) {
    let (adv, signal) = grpo::advantages(&REWARDS, GROUP, scale);
    assert_eq!(signal, [true, true, false]);
    let rows: Vec<usize> = (0..REWARDS.len()).filter(|i| signal[i / GROUP]).collect();
    let adv = Tensor::from_slice(&rows.iter().map(|&i| adv[i] as f32).collect::<Vec<_>>());
    let (inputs, mask) = batch(e, kept);
    let params: Vec<Tensor> = names.iter().map(|n| param(e, n)).collect();
    for p in &params {
        let _ = p.set_requires_grad(true);
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    let logp = grpo::completion_logps(&e.model, &inputs, &mask, false).unwrap();
    let reference_logps = (obj.beta != 0.0).then(|| {
        let _guard = tch::no_grad_guard();
        if lora_ref {
            lora::set_enabled(&mut e.model, false);
            let r = grpo::completion_logps(&e.model, &inputs, &mask, false).unwrap();
            lora::set_enabled(&mut e.model, true);
            r
        } else {
            grpo::completion_logps(&reference.unwrap().model, &inputs, &mask, false).unwrap()
        }
    });
    let m = mask.narrow(1, 1, mask.size()[1] - 1);
    let parts = grpo::loss(&obj, &logp, old, reference_logps.as_ref(), &adv, &m, grpo::Totals::of(&m));
    parts.loss.backward();
    (f64::try_from(&parts.loss).unwrap(), params.iter().map(|p| p.grad().copy()).collect())
}

fn param(e: &mut Engine, name: &str) -> Tensor {
    if name.contains(".lora_") {
        lora::parameters(&mut e.model).into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1
    } else {
        e.model.params.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1.shallow_clone()
    }
}

fn compare(mode: &str, e: &mut Engine, reference: Option<&Engine>, policy_dir: &Path, ref_arg: &Path, names: &[String]) {
    let tmp = tempfile::tempdir().unwrap();
    let batch_path = tmp.path().join("batch.safetensors");
    let (_, _, old_all) = write_batch(e, &batch_path);
    let out = tmp.path().join("ref");
    let py = std::process::Command::new(python())
        .args(["tests/parity/grpo_step.py", mode, policy_dir.to_str().unwrap(), ref_arg.to_str().unwrap()])
        .args([batch_path.to_str().unwrap(), out.to_str().unwrap(), &names.join(",")])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let rows: Vec<i64> = result["rows"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(rows, [0, 1, 2, 3, 4, 5], "both leave out the group without signal");
    let all = rollouts(e);
    let kept: Vec<TrainExample> = all.into_iter().take(6).collect();
    // The kept rows' old log-probs, re-padded to the kept batch's length.
    let (_, kept_mask) = batch(e, &kept);
    let (lk, la) = (kept_mask.size()[1] - 1, old_all.size()[1]);
    let old = old_all.narrow(0, 0, 6).narrow(1, la - lk, lk);
    for loss in [LossKind::Dapo, LossKind::Grpo, LossKind::DrGrpo] {
        for (scale, scale_name) in [(ScaleRewards::Group, "group"), (ScaleRewards::None, "none")] {
            for beta in [0.0, 0.04] {
                let obj = Objective { loss, epsilon: 0.2, epsilon_high: 0.28, beta, max_completion_tokens: MAX_COMPLETION };
                let (value, grads) = ours(e, &kept, &old, obj, scale, mode == "lora", reference, names);
                let key = format!("{}_{scale_name}_{}", loss.name(), if beta == 0.0 { "0.0".to_string() } else { beta.to_string() });
                let theirs = result["losses"][&key].as_f64().unwrap_or_else(|| panic!("no {key}"));
                assert!((value - theirs).abs() <= 1e-4, "{mode} {key}: loss {value} vs {theirs}");
                let tg = Tensor::read_safetensors(out.join(format!("grads_{key}.safetensors"))).unwrap();
                for (name, g) in names.iter().zip(&grads) {
                    let t = &tg.iter().find(|(n, _)| n == name).unwrap().1;
                    let d = max_abs_diff(g, t);
                    assert!(d <= 1e-4, "{mode} {key}: d loss / d {name} differs by {d}");
                    assert!(f64::try_from(t.abs().max()).unwrap() > 0.0, "{mode} {key}: {name} has a gradient");
                }
            }
        }
    }
}

#[test]
fn grpo_loss_and_gradients_match_trl_formulas_with_lora() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = Engine::load(&model_dir(), Device::Cpu, Kind::Float).unwrap();
    let cfg = LoraConfig::parse("r=4,alpha=8,dropout=0").unwrap();
    tch::manual_seed(5);
    lora::attach_new(&mut e.model, &cfg).unwrap();
    // Non-zero B, so that the adapter (and the KL against the base) matters.
    {
        let _guard = tch::no_grad_guard();
        for (n, mut t) in lora::parameters(&mut e.model) {
            if n.contains("lora_B") {
                let _ = t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.05));
            }
        }
    }
    let adapter = tmp.path().join("adapter");
    lora::save(&mut e.model, &cfg, &adapter, "fixture").unwrap();
    let last = e.model.text.num_layers() - 1;
    let names = vec![format!("model.layers.0.self_attn.q_proj.lora_B.weight"), format!("model.layers.{last}.mlp.down_proj.lora_A.weight")];
    compare("lora", &mut e, None, &model_dir(), &adapter, &names);
}

#[test]
fn grpo_loss_and_gradients_match_trl_formulas_in_full() {
    let tmp = tempfile::tempdir().unwrap();
    // The policy: the base weights moved a little, saved as a checkpoint; the reference: the base.
    let mut moved = Engine::load(&model_dir(), Device::Cpu, Kind::Float).unwrap();
    tch::manual_seed(6);
    {
        let _guard = tch::no_grad_guard();
        for (_, t) in moved.model.params.iter_mut() {
            if t.is_floating_point() {
                let noise = Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.01;
                let _ = t.g_add_(&noise.to_kind(t.kind()));
            }
        }
    }
    let policy_dir = tmp.path().join("policy");
    flipscope::train::checkpoint::write_full(&moved.model, &model_dir(), &policy_dir).unwrap();
    drop(moved);
    let mut policy = Engine::load(&policy_dir, Device::Cpu, Kind::Float).unwrap();
    let reference = Engine::load(&model_dir(), Device::Cpu, Kind::Float).unwrap();
    let names = vec!["model.layers.0.self_attn.q_proj.weight".to_string(), "model.norm.weight".to_string()];
    compare("full", &mut policy, Some(&reference), &policy_dir, &model_dir(), &names);
}

/// GRPO on the demo model, which answers its scenes often enough right
/// that groups disagree (a random model's rewards would all be 0).
fn grpo_train(out: &Path, extra: &[&str], env: Option<(&str, &str)>) -> std::process::Output {
    let m = flipscope::config::demo_model().unwrap();
    let mut args: Vec<&str> = vec![
        "train",
        "--model",
        m.to_str().unwrap(),
        "--data",
        "synth:8#seed=3,kinds=camera,scale=3",
        "--out",
        out.to_str().unwrap(),
        "--lora",
        "r=2,alpha=4,dropout=0.1",
        "--method",
        "grpo",
        "--group",
        "4",
        "--max-completion-tokens",
        "4",
        "--temperature",
        "1.5",
        "--max-steps",
        "4",
        "--save-every",
        "1",
        "--batch",
        "2",
        "--lr",
        "1e-2",
        "--beta",
        "0.04",
        "--iterations",
        "2",
        "--seed",
        "3",
        "--reward",
        "accuracy=0.5,format=0.5",
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    crate::common::flipscope_with_env(&args, env)
}

/// A GRPO run killed while saving step 2 and resumed ends bitwise equal to
/// an unbroken one: rollouts, dropout and updates all come from the seed
/// and the step; metrics carry the GRPO fields, each step once.
#[test]
fn grpo_runs_resume_bitwise_and_log_their_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let out = grpo_train(&whole, &[], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let split = tmp.path().join("split");
    let killed = grpo_train(&split, &[], Some(("FLIPSCOPE_KILL_DURING_SAVE", "2")));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    let out = grpo_train(&split, &["--resume"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |d: &Path| flipscope::train::metrics::read(&d.join("metrics.jsonl")).unwrap();
    let (a, b) = (read(&whole), read(&split));
    assert_eq!(b.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2, 3, 4]);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.loss.to_bits(), y.loss.to_bits(), "step {}", x.step);
        assert_eq!(x.grpo, y.grpo, "step {}", x.step);
    }
    let adapter = |d: &Path| std::fs::read(d.join("adapter_model.safetensors")).unwrap();
    assert!(adapter(&whole) == adapter(&split), "resumed adapter is bitwise the unbroken one");
    // The metrics a GRPO step logs.
    let g = a.iter().filter_map(|m| m.grpo.clone()).collect::<Vec<_>>();
    assert_eq!(g.len(), 4);
    assert!(g.iter().all(|s| (0.0..=1.0).contains(&s.zero_spread) && s.completion_tokens_mean > 0.0 && s.reward_mean >= 0.0));
    assert!(g.iter().any(|s| s.zero_spread < 1.0 && s.entropy > 0.0), "some step learned from a group: {g:?}");
    // Another GRPO setting is another run.
    let other = grpo_train(&split, &["--resume", "--loss", "grpo"], None);
    assert!(!other.status.success() && String::from_utf8_lossy(&other.stderr).contains("was trained as"));
}

/// A GRPO step with `--recompute` moves the weights exactly as without it.
#[test]
fn grpo_step_with_recompute_equals_the_plain_step() {
    use flipscope::train::grpo::{GrpoArgs, RewardWeights, StepInputs};
    let after = |recompute: bool| -> Vec<(String, Tensor)> {
        let mut e = Engine::load(&model_dir(), Device::Cpu, Kind::Float).unwrap();
        tch::manual_seed(9);
        lora::attach_new(&mut e.model, &LoraConfig::parse("r=2,alpha=4,dropout=0").unwrap()).unwrap();
        let params = lora::parameters(&mut e.model);
        for (_, p) in &params {
            let _ = p.set_requires_grad(true);
        }
        let mut opt = flipscope::train::optim::AdamW::new(&params, 0.0);
        let t = PromptTemplate::default_prompt();
        let ds = flipscope::data::load("synth:8#seed=3").unwrap();
        let prompts: Vec<_> = ds.samples.iter().take(8).map(|s| example::build_prompt(&e.processor, &t, s, false).unwrap()).collect();
        let args = GrpoArgs {
            group: 8,
            max_completion_tokens: 2,
            temperature: 1.5,
            beta: 0.04,
            iterations: 2,
            reward: RewardWeights { accuracy: 0.5, format: 0.5 },
            ..flipscope::train::TrainConfig::default().grpo
        };
        let inputs = StepInputs {
            prompts: &prompts,
            template: &t,
            args: &args,
            reference: None,
            seed: 17,
            lr: 1e-2,
            max_grad_norm: 1.0,
            vision_grad: false,
            recompute,
        };
        let (_, norm, stats) = flipscope::train::grpo::grpo_step(&mut e, &params, &mut opt, &inputs).unwrap();
        assert!(norm > 0.0 && stats.zero_spread < 1.0, "the step learned from a group: {stats:?}");
        params.iter().map(|(n, p)| (n.clone(), p.detach().copy())).collect()
    };
    let (plain, recomputed) = (after(false), after(true));
    let worst = plain.iter().zip(&recomputed).map(|((_, a), (_, b))| max_abs_diff(a, b)).fold(0.0, f64::max);
    assert!(worst <= 1e-5, "weights differ by {worst}");
}

/// Settings that cannot do what they say are refused before anything loads:
/// GRPO flags under SFT, a group of one, greedy rollouts, a clip-higher below
/// the clip, and more sampled answers than can be held at once.
#[test]
fn grpo_settings_that_cannot_learn_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ft");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--model", "demo", "--data", "synth:8#seed=3", "--out", out.to_str().unwrap(), "--max-steps", "1"];
        args.extend(extra);
        crate::common::flipscope(&args)
    };
    for (extra, want) in [
        (&["--group", "4", "--beta", "0.1"][..], "--group, --beta: GRPO settings, but the method is sft"),
        (&["--method", "grpo", "--group", "1"][..], "a group of one has no spread"),
        (&["--method", "grpo", "--top-p", "0"][..], "--top-p 0 samples greedily"),
        (&["--method", "grpo", "--epsilon", "0.3", "--epsilon-high", "0.2"][..], "--epsilon-high 0.2 is below --epsilon 0.3"),
        (&["--method", "grpo", "--group", "100000"][..], "more than 1024 samples"),
    ] {
        let (ok, _, err) = train(extra);
        assert!(!ok && err.contains(want), "{extra:?}: {err}");
        assert!(!out.join("metrics.jsonl").exists(), "{extra:?}: nothing trained");
    }
    let (ok, _, err) =
        crate::common::flipscope(&["eval", "--model", "demo", "--data", "synth:2", "--samples", "100000", "--run", out.to_str().unwrap()]);
    assert!(!ok && err.contains("more than 1024 samples"), "{err}");
    // Within the bound, a request the machine cannot hold is refused with its
    // estimate before the cache is allocated and before the run is created.
    let big = tmp.path().join("big");
    let args = format!("eval --model demo --data synth:2 --samples 1024 --max-new-tokens 1000000 --run {}", big.display());
    let (ok, _, err) = crate::common::flipscope(&args.split_whitespace().collect::<Vec<_>>());
    assert!(!ok && err.contains("1024 sampled answers of up to") && err.contains("GiB available: ask for fewer"), "{err}");
    assert!(!big.exists(), "no run is left behind to refuse a smaller request as other settings");
    let (ok, _, err) = train(&["--method", "grpo", "--group", "1024", "--max-completion-tokens", "1000000"]);
    assert!(!ok && err.contains("GiB available: ask for fewer"), "{err}");
}

/// A GRPO run whose groups all earn one reward learns nothing: after 20
/// such steps in a row the log (the CLI's, and the TUI's job log, which
/// read the same events) says so.
#[test]
fn grpo_without_spread_for_twenty_steps_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flat");
    // One token cannot close an <answer> tag: every completion's reward is 0.
    let args = format!(
        "train --model demo --data synth:4#seed=3,kinds=camera,scale=3 --out {} --method grpo --group 2 --max-completion-tokens 1 \
         --max-steps 20 --batch 1 --reward format=1 --device cpu",
        out.display()
    );
    let (ok, text, err) = crate::common::flipscope(&args.split_whitespace().collect::<Vec<_>>());
    assert!(ok, "{err}");
    let all = text + &err;
    assert!(all.contains("20 steps in a row up to step 20 had over 90% zero-spread groups") && all.contains("not learning"), "{all}");
}
