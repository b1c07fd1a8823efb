//! Synthetic scenes: deterministic, geometrically right labels; flip
//! augmentation: doubles the set, and flipping twice gives the original.

use flipscope::data::synth::{agent_angle, camera_angle, heading_of, scene, write, SynthOptions, SIDE};
use flipscope::data::{self, flip};
use flipscope::spatial::{Direction, Vertical};

fn obj<'a>(objs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    objs.iter().find(|o| o["name"] == name).unwrap()
}

#[test]
fn synthetic_labels_follow_from_the_geometry() {
    assert_eq!(SIDE % 28, 0);
    for i in 0..60 {
        let item = scene(11, i);
        let s = &item.sample;
        assert_eq!(item.image.width() % 28, 0);
        assert_eq!(item.image.height() % 28, 0);
        let objs = s.metadata["objects"].as_array().unwrap();
        let r = obj(objs, s.metadata["reference_object"].as_str().unwrap());
        let t = obj(objs, s.metadata["target_object"].as_str().unwrap());
        let (rp, tp) = (
            (r["x"].as_f64().unwrap() as f32, r["y"].as_f64().unwrap() as f32),
            (t["x"].as_f64().unwrap() as f32, t["y"].as_f64().unwrap() as f32),
        );
        let expect = if r["level"] != t["level"] {
            // Stacked: same ground spot, the upper one is above.
            assert_eq!(r["x"], t["x"]);
            Direction::vertical(if t["level"].as_u64() > r["level"].as_u64() { Vertical::Up } else { Vertical::Down })
        } else if let Some(phi) = r["facing"].as_f64() {
            assert!(s.question.starts_with("From the perspective of the"));
            Direction::horizontal(heading_of(agent_angle(rp, phi as f32, tp)).expect("clear of sector boundaries"))
        } else {
            Direction::horizontal(heading_of(camera_angle(rp, tp)).expect("clear of sector boundaries"))
        };
        assert_eq!(s.gold_direction, Some(expect), "scene {i}: {}", s.question);
        assert_eq!(s.option(s.gold_letter.unwrap()).unwrap().direction, Some(expect));
        // The reference box surrounds the reference object.
        let b = &s.boxes[0];
        assert!(b.x0 < rp.0 && rp.0 < b.x1 && b.y0 < rp.1 && rp.1 < b.y1);
        // Pixels at the reference centre are the object's colour, not ground.
        let px = item.image.get_pixel(rp.0 as u32, rp.1 as u32);
        assert_ne!(px.0, [236, 232, 222], "scene {i}: object drawn at its position");
    }
}

#[test]
fn agent_frame_is_the_mirror_of_the_camera_frame() {
    // An agent facing the camera (phi = 0) has its right hand on the
    // camera's left: something at image-left is at its right.
    let a = (200.0, 200.0);
    assert_eq!(heading_of(agent_angle(a, 0.0, (100.0, 200.0))).unwrap().name(), "right");
    assert_eq!(heading_of(camera_angle(a, (100.0, 200.0))).unwrap().name(), "left");
    // Facing away from the camera (phi = 180), frames agree on left/right.
    assert_eq!(heading_of(agent_angle(a, 180.0, (100.0, 200.0))).unwrap().name(), "left");
    // Nearer the camera (larger y) is camera-frame front.
    assert_eq!(heading_of(camera_angle(a, (200.0, 300.0))).unwrap().name(), "front");
    assert_eq!(heading_of(22.5), None, "on a boundary: no label");
}

#[test]
fn same_seed_same_bytes() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), 12, &SynthOptions::seeded(5)).unwrap();
    write(b.path(), 12, &SynthOptions::seeded(5)).unwrap();
    write(c.path(), 12, &SynthOptions::seeded(6)).unwrap();
    let read = |d: &std::path::Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(read(a.path(), "synth.jsonl"), read(b.path(), "synth.jsonl"));
    assert_ne!(read(a.path(), "synth.jsonl"), read(c.path(), "synth.jsonl"));
    for i in 0..12 {
        let f = format!("images/synth-{i:05}.png");
        assert_eq!(read(a.path(), &f), read(b.path(), &f), "{f}");
    }
    // It loads like any other dataset, with both splits.
    let ds = data::load(a.path().to_str().unwrap()).unwrap();
    assert_eq!(ds.samples.len(), 12);
    assert!(ds.issues.is_empty());
    assert_eq!(ds.missing_images(1).0, 0);
    let test = data::load(&format!("{}#split=test", a.path().display())).unwrap();
    assert!(!test.samples.is_empty() && test.samples.len() < 12);
}

#[test]
fn swapping_words_keeps_case_and_compounds() {
    assert_eq!(flip::swap_left_right("Left of the front-left chair, RIGHT hand"), "Right of the front-right chair, LEFT hand");
    assert_eq!(flip::swap_left_right("the leftmost bright light"), "the rightmost bright light", "'bright' is not 'right'");
    assert_eq!(flip::swap_left_right("copyright"), "copyright");
}

#[test]
fn flipping_twice_gives_back_labels_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 15, &SynthOptions::seeded(9)).unwrap();
    let ds = data::load(dir.path().to_str().unwrap()).unwrap();
    let mut changed = 0;
    for s in &ds.samples {
        let (f1, imgs1) = flip::flip_sample(s).unwrap();
        assert_eq!(f1.gold_direction, s.gold_direction.map(|d| d.mirrored()));
        assert_eq!(f1.gold_letter, s.gold_letter);
        if f1.gold_direction != s.gold_direction {
            changed += 1;
        }
        // Geometry after the flip still gives the flipped label.
        let objs = f1.metadata["objects"].as_array().unwrap();
        let r = obj(objs, f1.metadata["reference_object"].as_str().unwrap());
        let t = obj(objs, f1.metadata["target_object"].as_str().unwrap());
        let (rp, tp) = (
            (r["x"].as_f64().unwrap() as f32, r["y"].as_f64().unwrap() as f32),
            (t["x"].as_f64().unwrap() as f32, t["y"].as_f64().unwrap() as f32),
        );
        if r["level"] == t["level"] {
            let angle = match r["facing"].as_f64() {
                Some(phi) => agent_angle(rp, phi as f32, tp),
                None => camera_angle(rp, tp),
            };
            assert_eq!(f1.gold_direction.unwrap().heading, heading_of(angle), "{}", f1.question);
        }
        // Twice: labels and pixels as they were.
        let widths: Vec<u32> = imgs1.iter().map(|i| i.width()).collect();
        let f2 = flip::flip_labels(&f1, &widths);
        let mut orig = s.clone();
        orig.images.clear();
        let mut back = f2.clone();
        back.images.clear();
        assert_eq!(back, orig);
        let original = data::images::decode(&s.images[0]).unwrap();
        assert_eq!(imgs1[0].fliph().to_rgb8(), original.to_rgb8());
        assert_ne!(imgs1[0].to_rgb8(), original.to_rgb8());
    }
    assert!(changed > 5, "most synthetic labels have a left/right part");
}

#[test]
fn flip_command_doubles_or_replays_a_fraction() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), 20, &SynthOptions::seeded(2)).unwrap();
    let ds = data::load(src.path().to_str().unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = flip::write(&ds, out.path(), 1.0, 0).unwrap();
    assert_eq!((r.flipped, r.replayed), (20, 20));
    let both = data::load(out.path().join("flipped.jsonl").to_str().unwrap()).unwrap();
    assert_eq!(both.samples.len(), 40, "originals kept: the set doubles");
    assert_eq!(both.missing_images(1).0, 0);
    let flipped: Vec<_> = both.samples.iter().filter(|s| s.id.ends_with("~flip")).collect();
    assert_eq!(flipped.len(), 20);
    let orig = ds.samples.iter().find(|s| format!("{}~flip", s.id) == flipped[0].id).unwrap();
    assert_eq!(flipped[0].gold_direction, orig.gold_direction.map(|d| d.mirrored()));

    let out2 = tempfile::tempdir().unwrap();
    let r = flip::write(&ds, out2.path(), 0.25, 0).unwrap();
    assert_eq!(r.flipped, 20);
    assert!(r.replayed < 20, "replay keeps only a fraction: {}", r.replayed);

    // A training target in words is mirrored with the picture.
    let words = data::load("synth:10#seed=21,kinds=camera,distractors=0,answer=words,lean=left").unwrap();
    let out3 = tempfile::tempdir().unwrap();
    flip::write(&words, out3.path(), 1.0, 0).unwrap();
    let both = data::load(out3.path().join("flipped.jsonl").to_str().unwrap()).unwrap();
    let target = |s: &data::Sample| s.metadata[data::sample::TARGET_FIELD].as_str().unwrap().to_string();
    let mut lateral = 0;
    for f in both.samples.iter().filter(|s| s.id.ends_with("~flip")) {
        let orig = both.samples.iter().find(|s| format!("{}~flip", s.id) == f.id).unwrap();
        assert_eq!(target(f), f.gold_direction.unwrap().name(), "{}: the target names the mirrored gold", f.id);
        assert_eq!(target(f), flipscope::data::flip::swap_left_right(&target(orig)));
        lateral += (target(f) != target(orig)) as usize;
    }
    assert!(lateral > 0, "some targets have a left/right part");

    // In-memory scenes: the replayed originals are written out under their
    // own format's extension (the name's, else the bytes'), and load again.
    let mut mem = data::load("synth:5#seed=2").unwrap();
    if let data::sample::ImageSource::Bytes { name, .. } = &mut mem.samples[1].images[0] {
        *name = None;
    }
    let out3 = tempfile::tempdir().unwrap();
    assert_eq!(flip::write(&mem, out3.path(), 1.0, 0).unwrap().replayed, 5);
    let mut written: Vec<String> =
        std::fs::read_dir(out3.path().join("images")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    written.sort();
    assert_eq!(written.len(), 10);
    assert!(written.iter().all(|n| n.ends_with(".png")), "{written:?}");
    let back = data::load(out3.path().join("flipped.jsonl").to_str().unwrap()).unwrap();
    assert_eq!((back.samples.len(), back.missing_images(1).0), (10, 0));
}

#[test]
fn synth_spec_options_shape_the_scenes_and_bad_ones_are_named() {
    let words = data::load("synth:20#seed=3,kinds=camera,distractors=0,answer=words").unwrap();
    assert_eq!(words.samples.len(), 8, "kinds=camera keeps indices 0,1 of each five");
    for s in &words.samples {
        assert_eq!(s.category, "Camera Relative Direction");
        let objects = s.metadata["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 2, "distractors=0 leaves the two named objects");
        let target = s.metadata[data::sample::TARGET_FIELD].as_str().unwrap();
        assert_eq!(Some(target), s.gold_text.as_deref(), "answer=words trains on the gold option's words");
    }
    // scale=3: the same questions with objects three times the size, still
    // placed at the gold direction, for a from-scratch perception curriculum.
    let big = data::load("synth:20#seed=3,kinds=camera,distractors=0,scale=3").unwrap();
    for s in &big.samples {
        let b = &s.boxes[0];
        assert!((b.x1 - b.x0 - 102.0).abs() < 1e-3, "{}: a box of radius 3 x 17: {b:?}", s.id);
        let at =
            |i: usize| (s.metadata["objects"][i]["x"].as_f64().unwrap() as f32, s.metadata["objects"][i]["y"].as_f64().unwrap() as f32);
        let heading = heading_of(camera_angle(at(0), at(1))).expect("a labelled angle");
        assert_eq!(Some(heading.name()), s.gold_text.as_deref(), "{}: the target sits in the gold direction", s.id);
    }
    let letters = data::load("synth:20#seed=3,kinds=camera,distractors=0").unwrap();
    assert!(letters.samples.iter().all(|s| !s.metadata.contains_key(data::sample::TARGET_FIELD)));
    // options=0: the same scenes asked bare, answered in words, so there is
    // no listed option text to copy.
    let bare = data::load("synth:20#seed=3,kinds=camera,distractors=0,options=0").unwrap();
    let prompt = flipscope::eval::prompt::PromptTemplate::default_prompt();
    assert_eq!(bare.samples.len(), letters.samples.len());
    for (b, l) in bare.samples.iter().zip(&letters.samples) {
        assert_eq!((b.id.as_str(), b.question.as_str()), (l.id.as_str(), l.question.as_str()));
        assert!(b.options.is_empty() && b.gold_letter.is_none(), "{}: no options, no letter", b.id);
        assert_eq!(b.metadata[data::sample::TARGET_FIELD].as_str(), l.gold_text.as_deref(), "{}: the gold words", b.id);
        let text = prompt.render(&b.question, b);
        assert_eq!(text, format!("{}\nAnswer the question using a single word or phrase.", b.question), "{}", b.id);
        assert!(prompt.render(&l.question, l).contains("A. "), "the lettered prompt lists options");
    }
    // headings=: gold directions drawn only from the listed ones.
    let lateral = data::load("synth:40#seed=3,kinds=camera,distractors=0,options=0,headings=left/right").unwrap();
    let golds: std::collections::BTreeSet<String> = lateral.samples.iter().map(|s| s.gold_direction.unwrap().name()).collect();
    assert_eq!(golds.into_iter().collect::<Vec<_>>(), vec!["left", "right"]);
    for (spec, needle) in [
        ("synth:4#answer=text", "answer=`text` is not letter or words"),
        ("synth:4#kinds=camera+car", "kinds: `car`"),
        ("synth:4#distractors=2", "distractors=`2`"),
        ("synth:4#colour=red", "synth: unknown option `colour`"),
        ("synth:4#scale=4", "scale=`4` is not a number from 1 to 3"),
        ("synth:4#scale=big", "scale=`big`"),
        ("synth:4#options=none", "options=`none` is not on or off"),
        ("synth:4#headings=left/up", "headings: `up` is not front"),
    ] {
        let err = data::load(spec).err().unwrap_or_else(|| panic!("{spec} should fail"));
        assert!(err.to_string().contains(needle), "{spec}: {err}");
    }
}
