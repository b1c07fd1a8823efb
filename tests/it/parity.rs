//! flipscope's Qwen2.5-VL against transformers on tiny random checkpoints
//! (f32, CPU). See tests/parity/make_fixtures.py for what each case covers.

use crate::common::parity::*;
use flipscope::engine::{vision_layout::Grid, Engine, Flow, GenerateOptions, PreparedPrompt, ResizePolicy, Rows};
use tch::{Device, Kind, Tensor};

fn engine(case: &str) -> Engine {
    Engine::load(&case_dir(case).join("model"), Device::Cpu, Kind::Float).expect("load engine")
}

fn images(case: &str) -> Vec<image::DynamicImage> {
    let j = case_json(case);
    j["images"].as_array().unwrap().iter().map(|f| image::open(case_dir(case).join("images").join(f.as_str().unwrap())).unwrap()).collect()
}

fn grids(r: &Reference) -> Vec<Grid> {
    Vec::<Vec<i64>>::try_from(r.get("image_grid_thw")).unwrap().into_iter().map(|g| [g[0], g[1], g[2]]).collect()
}

/// Our prompt with the reference's pixel values swapped in, so model
/// numerics are compared on identical inputs.
fn prompt_with_reference_pixels(e: &Engine, case: &str, r: &Reference) -> PreparedPrompt {
    let text = case_json(case)["prompt"].as_str().unwrap().to_string();
    let mut p = e.processor.prepare(&images(case), &text, &ResizePolicy::Auto).unwrap();
    let pv = r.get("pixel_values");
    let mut row = 0;
    for img in p.images.iter_mut() {
        let n = img.num_patches() as i64;
        img.values = Vec::<f32>::try_from(pv.narrow(0, row, n).flatten(0, -1)).unwrap();
        row += n;
    }
    p
}

#[test]
fn vision_tower_matches_transformers() {
    for case in CASES {
        let e = engine(case);
        let r = Reference::load(case);
        let out = tch::no_grad(|| e.model.vision_embeds(&r.get("pixel_values"), &grids(&r)));
        let d = max_abs_diff(&out, &r.get("vision_embeds"));
        assert!(d <= 1e-4, "{case}: vision output max abs diff {d}");
    }
}

#[test]
fn prompt_building_matches_the_hf_processor() {
    for case in CASES {
        let e = engine(case);
        let r = Reference::load(case);
        let j = case_json(case);
        let p = e.processor.prepare(&images(case), j["prompt"].as_str().unwrap(), &ResizePolicy::Auto).unwrap();
        assert_eq!(p.chat_text, j["chat_text"].as_str().unwrap(), "{case}: chat template");
        assert_eq!(p.input_ids, Vec::<i64>::try_from(r.get("input_ids").flatten(0, -1)).unwrap(), "{case}: input ids");
        assert_eq!(p.grids(), grids(&r), "{case}: grid_thw");
        let pos = r.get("position_ids");
        for axis in 0..3 {
            assert_eq!(
                p.positions[axis],
                Vec::<i64>::try_from(pos.get(axis as i64).flatten(0, -1)).unwrap(),
                "{case}: position axis {axis}"
            );
        }
        // The reference really is 3D: h and w differ from t on image tokens.
        assert_ne!(p.positions[1], p.positions[2]);
        assert_eq!(p.rope_delta, r.get("rope_deltas").int64_value(&[0, 0]), "{case}: rope delta");

        let ours: Vec<f32> = p.images.iter().flat_map(|i| i.values.iter().copied()).collect();
        let ours = Tensor::from_slice(&ours).reshape([-1, 1176]);
        let theirs = r.get("pixel_values");
        let mean = (&ours - &theirs).abs().mean(Kind::Float).double_value(&[]);
        assert!(mean <= 1e-2, "{case}: pixel_values mean abs diff {mean} through the resize");
        // An image already at its target size is not resampled at all.
        if case == "v5_sharded_two_images" {
            let n = p.images[0].num_patches() as i64;
            assert_eq!(p.images[0].resized, p.images[0].original);
            let d = max_abs_diff(&ours.narrow(0, 0, n), &theirs.narrow(0, 0, n));
            assert!(d <= 1e-6, "exact-size image differs by {d}");
        }
    }
}

#[test]
fn logits_and_greedy_tokens_match_transformers() {
    for case in CASES {
        let e = engine(case);
        let r = Reference::load(case);
        let p = prompt_with_reference_pixels(&e, case, &r);
        let logits = e.model.prompt_logits(&e.collate(&[&p])).unwrap();
        let d = max_abs_diff(&logits, &r.get("logits"));
        assert!(d <= 1e-4, "{case}: logits max abs diff {d}");

        let opts = GenerateOptions { max_new_tokens: 8, stop_ids: Some(vec![]), ..Default::default() };
        let mut streamed = Vec::new();
        let g = e
            .generate(&[&p], &opts, &mut |s| {
                streamed.push(s.token);
                Flow::Continue
            })
            .unwrap();
        let want = Vec::<i64>::try_from(r.get("generated_ids").flatten(0, -1)).unwrap();
        assert_eq!(g[0].tokens, want, "{case}: greedy tokens");
        assert_eq!(streamed, want, "{case}: streamed tokens");
        assert_eq!(g[0].logprobs.len(), 8);
        // The first token's log-prob is the top-1 of the reported distribution.
        let top = &g[0].first_token_top;
        assert_eq!(top[0].id, want[0]);
        assert!((top[0].logprob - g[0].logprobs[0]).abs() < 1e-5);
        assert!(top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
    }
}

#[test]
fn score_options_ranks_like_the_full_logits() {
    for case in CASES {
        let e = engine(case);
        let r = Reference::load(case);
        let p = prompt_with_reference_pixels(&e, case, &r);
        let labels: Vec<String> = ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect();
        let s = &e.score_options(&[&p], std::slice::from_ref(&labels)).unwrap()[0];
        let logits = r.get("logits");
        let last = logits.get(0).get(logits.size()[1] - 1).log_softmax(-1, Kind::Float);
        let want: Vec<f64> = s.token_ids.iter().map(|&id| last.double_value(&[id])).collect();
        for (got, want) in s.logprobs.iter().zip(&want) {
            assert!((*got as f64 - want).abs() < 1e-4, "{case}: option logprob {got} vs {want}");
        }
        let best = want.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(s.best, best, "{case}: best option");
    }
}

/// Whole-phrase scores (models that answer in words) equal teacher forcing:
/// the prompt and the phrase in one forward pass, log-probs summed over the
/// phrase's tokens.
#[test]
fn phrase_scores_equal_one_forward_over_prompt_and_phrase() {
    let case = "flat_tied_odd";
    let e = engine(case);
    let r = Reference::load(case);
    let p = prompt_with_reference_pixels(&e, case, &r);
    let phrases: Vec<String> = ["front-left", "front-right", "behind the lamp", "A"].iter().map(|s| s.to_string()).collect();
    let labels: Vec<String> = ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect();
    let got = e.score_phrases(&p, &labels, &phrases, &Default::default()).unwrap();
    assert_eq!(got.labels, labels);
    for (phrase, lp) in phrases.iter().zip(&got.logprobs) {
        let tokens = e.processor.tokenizer.encode(phrase).unwrap();
        assert!(!tokens.is_empty());
        let mut full = p.clone();
        let start = p.next_position();
        for (k, &t) in tokens.iter().enumerate() {
            full.input_ids.push(t);
            for axis in full.positions.iter_mut() {
                axis.push(start + k as i64);
            }
        }
        let logits = e.model.prompt_logits(&e.collate(&[&full])).unwrap().get(0).log_softmax(-1, Kind::Float);
        let want: f64 = tokens.iter().enumerate().map(|(k, &t)| logits.get((p.len() + k - 1) as i64).double_value(&[t])).sum();
        assert!((*lp as f64 - want).abs() < 1e-3, "{phrase}: {lp} vs {want}");
    }
    // A one-token phrase scores as its first token does.
    let letters = &e.score_options(&[&p], std::slice::from_ref(&labels)).unwrap()[0];
    assert!((got.logprobs[3] - letters.logprobs[0]).abs() < 1e-4);
}

#[test]
fn batched_equals_one_by_one() {
    // Two prompts of different lengths (one and two images) on one model.
    let case = "v5_sharded_two_images";
    let e = engine(case);
    let imgs = images(case);
    let long = e
        .processor
        .prepare(&imgs, "Is the red cube to the left of the blue ball? Answer with the option's letter.", &ResizePolicy::Auto)
        .unwrap();
    let short = e.processor.prepare(&imgs[1..], "Where is the dog?", &ResizePolicy::Auto).unwrap();
    assert_ne!(long.len(), short.len());
    let last_logits = |prompts: &[&PreparedPrompt]| e.model.last_logits(&e.collate(prompts)).unwrap();
    let batch = last_logits(&[&short, &long]);
    // The last-row-only pass (left-padded, so masked) matches the full pass's last row.
    let full = e.model.prompt_logits(&e.collate(&[&short, &long])).unwrap();
    let d = max_abs_diff(&batch, &full.select(1, full.size()[1] - 1));
    assert!(d <= 1e-5, "Rows::Last vs the full pass's last row differ by {d}");
    for (i, p) in [&short, &long].iter().enumerate() {
        let single = last_logits(&[p]);
        let d = max_abs_diff(&batch.get(i as i64), &single.get(0));
        assert!(d <= 1e-4, "prompt {i}: batched vs single last logits differ by {d}");
    }
    let opts = GenerateOptions { max_new_tokens: 6, stop_ids: Some(vec![]), ..Default::default() };
    let together = e.generate(&[&short, &long], &opts, &mut |_| Flow::Continue).unwrap();
    for (i, p) in [&short, &long].iter().enumerate() {
        let alone = e.generate(&[p], &opts, &mut |_| Flow::Continue).unwrap();
        assert_eq!(together[i].tokens, alone[0].tokens, "prompt {i}: batched generation differs");
        for (a, b) in together[i].logprobs.iter().zip(&alone[0].logprobs) {
            assert!((a - b).abs() < 1e-4);
        }
    }
    let labels = vec![vec!["A".to_string(), "B".to_string()]; 2];
    let scored = e.score_options(&[&short, &long], &labels).unwrap();
    for (i, p) in [&short, &long].iter().enumerate() {
        let alone = &e.score_options(&[p], &labels[..1]).unwrap()[0];
        assert_eq!(scored[i].best, alone.best);
        for (a, b) in scored[i].logprobs.iter().zip(&alone.logprobs) {
            assert!((a - b).abs() < 1e-4, "batched option scores differ: {a} vs {b}");
        }
    }
}

#[test]
fn packed_vision_pass_equals_image_by_image() {
    // The CPU runs the tower image by image; a GPU packs every image into one
    // pass (windows and frames side by side). Both must give the same embeddings.
    let case = "v5_sharded_two_images";
    let e = engine(case);
    let imgs = images(case);
    let p = e.processor.prepare(&imgs, "Which is nearer?", &ResizePolicy::Auto).unwrap();
    let inputs = e.collate(&[&p, &p]);
    assert_eq!(inputs.grids.len(), 4);
    assert_ne!(inputs.grids[0], inputs.grids[1], "images of different sizes");
    let pixels = inputs.pixel_values.as_ref().unwrap();
    let _guard = tch::no_grad_guard();
    let packed = e.model.vision.forward_packed(pixels, &inputs.grids);
    let one_by_one = e.model.vision.forward(pixels, &inputs.grids);
    assert_eq!(packed.size(), one_by_one.size());
    let d = max_abs_diff(&packed, &one_by_one);
    assert!(d <= 1e-5, "packed vs image-by-image vision embeddings differ by {d}");
}

#[test]
fn bf16_runs_the_same_graph_within_bf16_precision() {
    // The CUDA dtype, exercised on CPU: same code path, coarser numbers.
    let case = "flat_tied_odd";
    let e = Engine::load(&case_dir(case).join("model"), Device::Cpu, Kind::BFloat16).unwrap();
    assert_eq!(e.model.kind, Kind::BFloat16);
    let r = Reference::load(case);
    let p = prompt_with_reference_pixels(&e, case, &r);
    let logits = e.model.prompt_logits(&e.collate(&[&p])).unwrap();
    assert_eq!(logits.kind(), Kind::BFloat16);
    let reference = r.get("logits");
    let scale = reference.abs().max().double_value(&[]);
    let d = max_abs_diff(&logits, &reference);
    assert!(d <= 0.05 * scale.max(1.0), "bf16 logits differ by {d} (scale {scale})");
    let agree = logits.argmax(-1, false).eq_tensor(&reference.argmax(-1, false)).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    assert!(agree >= 0.9, "bf16 top-1 agreement {agree}");
}

#[test]
fn sampling_is_seeded_and_streaming_can_stop() {
    let case = "v5_sharded_two_images";
    let e = engine(case);
    let r = Reference::load(case);
    let p = prompt_with_reference_pixels(&e, case, &r);
    let sampled = |seed| {
        let opts = GenerateOptions {
            max_new_tokens: 12,
            sampling: Some(flipscope::engine::Sampling { temperature: 1.5, top_p: 0.95, seed }),
            stop_ids: Some(vec![]),
            ..Default::default()
        };
        e.generate(&[&p], &opts, &mut |_| Flow::Continue).unwrap().remove(0).tokens
    };
    assert_eq!(sampled(7), sampled(7), "same seed, same tokens");
    assert!((0..5).any(|s| sampled(100 + s) != sampled(7)), "different seeds never changed the sample");

    // A callback that stops after 3 tokens cancels the run.
    let mut seen = 0;
    let g = e
        .generate(&[&p], &GenerateOptions { max_new_tokens: 20, stop_ids: Some(vec![]), ..Default::default() }, &mut |_| {
            seen += 1;
            if seen == 3 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        })
        .unwrap();
    assert_eq!(g[0].tokens.len(), 3);
    assert_eq!(g[0].stop, flipscope::engine::StopReason::Cancelled);

    // Stop ids end generation without emitting the stop token.
    let want = Vec::<i64>::try_from(r.get("generated_ids").flatten(0, -1)).unwrap();
    let g = e
        .generate(&[&p], &GenerateOptions { max_new_tokens: 8, stop_ids: Some(vec![want[2]]), ..Default::default() }, &mut |_| {
            Flow::Continue
        })
        .unwrap();
    let first_stop = want.iter().position(|&t| t == want[2]).unwrap();
    assert_eq!(g[0].tokens, want[..first_stop].to_vec());
    assert_eq!(g[0].stop, flipscope::engine::StopReason::StopToken);
}

#[test]
fn saliency_gradient_matches_torch_autograd() {
    use flipscope::engine::saliency::SaliencyTarget;
    for case in CASES {
        let e = engine(case);
        let r = Reference::load(case);
        let p = prompt_with_reference_pixels(&e, case, &r);
        let target = SaliencyTarget::Token(r.get("saliency_target").int64_value(&[0]));
        let (value, grad) = e.pixel_gradient(&p, &r.get("pixel_values"), &target).unwrap();
        // Only the pixels required grad: no weight gradient exists afterwards.
        assert!(!e.model.text.embed.requires_grad() && !e.model.text.embed.grad().defined());
        let want = r.get("grad_pixel_values");
        let scale = want.abs().max().double_value(&[]);
        assert!(scale > 0.0);
        let d = max_abs_diff(&grad, &want);
        assert!(d <= 1e-4 * scale, "{case}: gradient differs by {d} (largest {scale})");
        let logits = r.get("logits");
        let want_value = logits.get(0).get(logits.size()[1] - 1).double_value(&[r.get("saliency_target").int64_value(&[0])]);
        assert!((value - want_value).abs() < 1e-4);
    }
}

#[test]
fn integrated_gradients_are_complete_and_maps_cover_each_image() {
    use flipscope::engine::saliency::{Baseline, SaliencyMethod, SaliencyTarget};
    let case = "v5_sharded_two_images";
    let e = engine(case);
    let imgs = images(case);
    let p = e.processor.prepare(&imgs, case_json(case)["prompt"].as_str().unwrap(), &ResizePolicy::Auto).unwrap();
    let target = SaliencyTarget::Token(e.option_token_ids(&["A".to_string()]).unwrap()[0]);
    let ig = SaliencyMethod::IntegratedGradients { steps: 64, baseline: Baseline::Black };
    let a = e.saliency(&imgs, &p, &ResizePolicy::Auto, &target, &ig).unwrap();
    let err = a.completeness_error.unwrap();
    eprintln!("IG completeness error {err:.4} (f(x) {:.4}, f(baseline) {:.4})", a.target_value, a.baseline_value.unwrap());
    assert!(err < 0.05, "IG completeness error {err}");
    assert!(a.signed);
    assert_eq!(a.maps.len(), 2);
    for (m, img) in a.maps.iter().zip(&imgs) {
        assert_eq!((m.width, m.height), (img.width(), img.height()), "maps are in original coordinates");
    }
    let g = e.saliency(&imgs, &p, &ResizePolicy::Auto, &target, &SaliencyMethod::Grad).unwrap();
    assert!(!g.signed && g.maps[0].values.iter().all(|v| *v >= 0.0));
    let s = e.saliency(&imgs, &p, &ResizePolicy::Auto, &target, &SaliencyMethod::SmoothGrad { n: 4, sigma: 0.1, seed: 3 }).unwrap();
    assert_eq!(s.values.size(), g.values.size());
    assert!(max_abs_diff(&s.values, &g.values) > 0.0, "noise changes the gradient");
}

#[test]
fn scaling_vis_changes_only_the_last_position() {
    use flipscope::engine::intervene::Intervention;
    let case = "v5_sharded_two_images";
    let e = engine(case);
    let r = Reference::load(case);
    let p = prompt_with_reference_pixels(&e, case, &r);
    let inputs = e.collate(&[&p]);
    let plain = e.model.prompt_logits(&inputs).unwrap();
    let scaled = |alpha: f64| {
        tch::no_grad(|| {
            let mut cache = e.model.new_cache();
            e.model.logits(&e.model.prefill_scaled(&inputs, &[alpha], &mut cache, Rows::All).unwrap())
        })
    };
    assert!(scaled(1.0).equal(&plain), "alpha = 1 is exactly the plain forward");
    let l = plain.size()[1];
    // The explicit (eager) last row agrees with the fused kernel it replaces.
    let d = max_abs_diff(&scaled(1.0 + 1e-9), &plain);
    assert!(d <= 1e-4, "eager last-row attention differs from SDPA by {d}");
    for alpha in [0.5, 2.0] {
        let s = scaled(alpha);
        assert!(s.narrow(1, 0, l - 1).equal(&plain.narrow(1, 0, l - 1)), "alpha {alpha} changed earlier positions");
        assert!(max_abs_diff(&s.narrow(1, l - 1, 1), &plain.narrow(1, l - 1, 1)) > 1e-6, "alpha {alpha} left the last position alone");
        let last_only = tch::no_grad(|| {
            let hidden = e.model.prefill_scaled(&inputs, &[alpha], &mut e.model.new_cache(), Rows::Last).unwrap();
            e.model.logits(&hidden)
        });
        let d = max_abs_diff(&last_only, &s.narrow(1, l - 1, 1));
        assert!(d <= 1e-5, "alpha {alpha}: Rows::Last vs the full pass's last row differ by {d}");
    }
    // Through the public APIs: generate and score_options carry alpha, confidence and branch.
    let labels = vec!["A".to_string(), "B".to_string()];
    let plain_scores = &e.score_options(&[&p], std::slice::from_ref(&labels)).unwrap()[0];
    let one = &e.score_options_with(&[&p], std::slice::from_ref(&labels), &Intervention::Scaling { alpha: 1.0 }).unwrap()[0];
    assert_eq!(one.logprobs, plain_scores.logprobs);
    assert_eq!(one.adapt.as_ref().unwrap().alpha, 1.0);
    let adaptive = Intervention::Adaptive { threshold: 2.0, w1: 0.5, w2: 1.5 }; // confidence is always < 2: w1
    let s = &e.score_options_with(&[&p], std::slice::from_ref(&labels), &adaptive).unwrap()[0];
    let rep = s.adapt.as_ref().unwrap();
    assert_eq!(rep.alpha, 0.5);
    assert_eq!(rep.branch, Some(flipscope::engine::intervene::ConfidenceBranch::LowConfidence));
    let conf = rep.confidence.unwrap();
    assert!((0.0..=1.0).contains(&conf));
    let g = e
        .generate(
            &[&p],
            &GenerateOptions {
                max_new_tokens: 3,
                intervention: Intervention::Adaptive { threshold: 0.0, w1: 0.5, w2: 1.5 },
                ..Default::default()
            },
            &mut |_| Flow::Continue,
        )
        .unwrap();
    let rep = g[0].adapt.as_ref().unwrap();
    assert_eq!((rep.alpha, rep.branch), (1.5, Some(flipscope::engine::intervene::ConfidenceBranch::HighConfidence)));
    assert!((rep.confidence.unwrap() - conf).abs() < 1e-6, "same first-token confidence in both APIs");
}

#[test]
fn attention_maps_cover_each_image_grid() {
    let case = "v5_sharded_two_images";
    let e = engine(case);
    let r = Reference::load(case);
    let p = prompt_with_reference_pixels(&e, case, &r);
    let maps = e.attention_maps(&p, &[1], None).unwrap();
    assert_eq!(maps.len(), 1, "only the asked layer is recorded");
    let m = &maps[0];
    assert_eq!((m.maps[0].width, m.maps[0].height), (8, 6));
    assert_eq!((m.maps[1].width, m.maps[1].height), (5, 4));
    assert!(m.image_share > 0.0 && m.image_share < 1.0);
    let per_head = e.attention_maps(&p, &[0, 1], Some(3)).unwrap();
    assert_eq!(per_head.len(), 2);
    assert!(e.attention_maps(&p, &[9], None).unwrap_err().to_string().contains("layer 9 does not exist"));
}
