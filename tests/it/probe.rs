//! Probes and attribution commands end to end on the tiny checkpoint and
//! synthetic scenes.

use crate::common::flipscope;
use crate::common::parity::*;
use flipscope::counterfactual;
use flipscope::data::{self, flip::flip_labels};

fn synth(n: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = flipscope(&["data", "synth", "--out", dir.path().to_str().unwrap(), "--n", &n.to_string()]);
    assert!(ok, "{err}");
    let spec = dir.path().to_str().unwrap().to_string();
    (dir, spec)
}

#[test]
fn flip_probe_mirrors_labels_on_synthetic_scenes() {
    let (_dir, spec) = synth(12);
    let ds = data::load(&spec).unwrap();
    for s in &ds.samples {
        let images = flipscope::data::load_images(s).unwrap();
        let widths: Vec<u32> = images.iter().map(|i| i.width()).collect();
        let f = flip_labels(s, &widths);
        assert_eq!(f.gold_letter, s.gold_letter, "{}: options keep their letters", s.id);
        assert_eq!(f.gold_direction, s.gold_direction.map(|d| d.mirrored()), "{}: gold mirrored", s.id);
        for (a, b) in s.options.iter().zip(&f.options) {
            assert_eq!(b.direction, a.direction.map(|d| d.mirrored()), "{}: option {} mirrored", s.id, a.letter);
        }
        for (b0, b1) in s.boxes.iter().zip(&f.boxes) {
            let w = widths[b0.image] as f32;
            assert!((b1.x0 - (w - b0.x1)).abs() < 1e-3 && (b1.y0 - b0.y0).abs() < 1e-3, "{}: box mirrored", s.id);
        }
    }
    let e = flipscope::engine::Engine::load(&case_dir("flat_tied_odd").join("model"), tch::Device::Cpu, tch::Kind::Float).unwrap();
    let probes: Vec<_> = ds.samples.iter().take(6).map(|s| counterfactual::flip::compare(&e, s, &Default::default()).unwrap()).collect();
    for p in &probes {
        // A consistent pair's directions mirror each other.
        if let (true, Some(a), Some(b)) = (p.consistent, p.original.direction, p.mirrored.direction) {
            assert_eq!(a.mirrored(), b, "{}", p.id);
        }
        let pa = p.original.scores.probabilities();
        assert!((pa.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let rows = counterfactual::flip::by_category(&probes);
    let overall = rows.last().unwrap();
    assert_eq!((overall.category.as_str(), overall.total), ("overall", 6));
    assert_eq!(rows[..rows.len() - 1].iter().map(|r| r.total).sum::<usize>(), 6);
    assert!((0.0..=1.0).contains(&overall.chance));
}

#[test]
fn consistency_is_judged_by_mirrored_directions() {
    let (_dir, spec) = synth(4);
    let ds = data::load(&spec).unwrap();
    let s = ds
        .samples
        .iter()
        .find(|s| s.options.iter().any(|o| o.direction.is_some_and(|d| d.mirrored() != d)))
        .expect("a sample with a lateral option");
    let f = flip_labels(s, &[392]);
    let e = flipscope::engine::Engine::load(&case_dir("flat_tied_odd").join("model"), tch::Device::Cpu, tch::Kind::Float).unwrap();
    let images = flipscope::data::load_images(s).unwrap();
    let (_, a) = counterfactual::ask(&e, s, &images, &s.question, &Default::default(), &Default::default()).unwrap();
    // Same letter on the flipped sample names the mirrored direction: consistent.
    let mut same = a.clone();
    same.direction = f.option(a.label.chars().next().unwrap()).and_then(|o| o.direction);
    assert!(counterfactual::flip::answers_mirror(&a, &same));
    // Any other letter whose direction is not the mirror: inconsistent.
    if let Some(other) = f.options.iter().find(|o| o.direction.is_some() && o.direction != same.direction) {
        let mut diff = a.clone();
        diff.label = other.letter.to_string();
        diff.direction = other.direction;
        assert!(!counterfactual::flip::answers_mirror(&a, &diff));
    }
}

#[test]
fn saliency_attention_and_probe_commands() {
    let (dir, spec) = synth(3);
    let ds = data::load(&spec).unwrap();
    let id = &ds.samples[0].id;
    let model = case_dir("flat_tied_odd").join("model");
    let m = model.to_str().unwrap();
    let png = dir.path().join("sal.png");
    let dump = dir.path().join("sal.safetensors");
    let (ok, out, err) = flipscope(&[
        "saliency",
        "--model",
        m,
        "--data",
        &spec,
        "--id",
        id,
        "--method",
        "smoothgrad:2,0.1",
        "--objective",
        "gold",
        "--box",
        "10,10,100,100",
        "--out",
        png.to_str().unwrap(),
        "--dump",
        dump.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("target          explains gold option"), "{out}");
    assert!(out.contains("% of the saliency mass lies inside (10, 10, 100, 100)"), "{out}");
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (392, 392), "heatmap in original coordinates");
    let t: std::collections::HashMap<String, tch::Tensor> = tch::Tensor::read_safetensors(&dump).unwrap().into_iter().collect();
    assert_eq!(t["grad_pixel_values"].size()[1], 1176);
    assert_eq!(t["grad_pixel_values"].size(), t["attribution"].size());

    // Free prompt + explicit token, and a bad objective.
    let case = case_dir("v5_sharded_two_images");
    let image = case.join("images/exact.png");
    let (ok, out, err) =
        flipscope(&["saliency", "--model", m, "--image", image.to_str().unwrap(), "--prompt", "Where is the dog?", "--target-token", "5"]);
    assert!(ok && out.contains("token 5"), "{out}{err}");
    let (ok, _, err) = flipscope(&["saliency", "--model", m, "--image", image.to_str().unwrap(), "--prompt", "x", "--objective", "gold"]);
    assert!(!ok && err.contains("--objective gold needs --data/--id"), "{err}");
    let (ok, _, err) = flipscope(&["saliency", "--model", m, "--prompt", "x"]);
    assert!(!ok && err.contains("--prompt needs at least one --image"), "{err}");

    let (ok, out, err) = flipscope(&["attention", "--model", m, "--data", &spec, "--id", id, "--layers", "1"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().filter(|l| l.trim_start().starts_with('1')).count(), 1, "{out}");

    for args in [vec!["probe", "flip"], vec!["probe", "boxed"], vec!["probe", "adaptvis", "--intervention", "adaptvis:0.5,0.5,2"]] {
        let mut a = args.clone();
        a.extend(["--model", m, "--data", &spec, "--id", id]);
        let (ok, out, err) = flipscope(&a);
        assert!(ok, "{args:?}: {err}");
        assert!(out.contains(id.as_str()), "{args:?}: {out}{err}");
    }
    let (_, out, _) = flipscope(&["probe", "adaptvis", "--model", m, "--data", &spec, "--id", id, "--intervention", "adaptvis:0.5,0.5,2"]);
    assert!(out.contains("branch Some("), "{out}");
    let (ok, _, err) = flipscope(&["probe", "flip", "--model", m, "--data", &spec, "--id", "nope"]);
    assert!(!ok && err.contains("no sample with id `nope`"), "{err}");
}

#[test]
fn grounding_and_box_files_as_box_sources() {
    let (dir, spec) = synth(2);
    let ds = data::load(&spec).unwrap();
    let s = &ds.samples[0];
    let e = flipscope::engine::Engine::load(&case_dir("flat_tied_odd").join("model"), tch::Device::Cpu, tch::Kind::Float).unwrap();
    let images = flipscope::data::load_images(s).unwrap();
    // A random model writes no JSON: a clear error, not a panic.
    match counterfactual::boxed::ground(&e, &images[0], "red circle", &Default::default()) {
        Ok(b) => assert!(b.x1 <= images[0].width() as f32 && b.y1 <= images[0].height() as f32),
        Err(err) => assert!(err.to_string().contains("grounding `red circle`"), "{err}"),
    }
    let file = dir.path().join("boxes.json");
    std::fs::write(&file, format!(r#"{{"{}": [20, 30, 120, 130]}}"#, s.id)).unwrap();
    let m = case_dir("flat_tied_odd").join("model");
    let boxed = |id: &str, color: &str| {
        let args = [
            "probe",
            "boxed",
            "--model",
            m.to_str().unwrap(),
            "--data",
            &spec,
            "--id",
            id,
            "--boxes",
            file.to_str().unwrap(),
            "--box-color",
            color,
        ];
        flipscope(&args)
    };
    let (ok, out, err) = boxed(&s.id, "blue");
    assert!(ok, "{err}");
    assert!(out.contains("box (20,30,120,130)") && out.contains("in the blue bounding box"), "{out}");
    let (ok, _, err) = boxed(&ds.samples[1].id, "red");
    assert!(ok && err.contains("the box file has no entry for sample"), "{err}");
}
