//! The real ViewSpatial-Bench file loads with exactly the published counts.

use flipscope::data::{self, stats, Perspective};
use std::path::PathBuf;

fn bench_path() -> PathBuf {
    crate::common::viewspatial_json().to_path_buf()
}

#[test]
fn real_file_has_the_published_counts() {
    let ds = data::load(bench_path().to_str().unwrap()).expect("loads");
    assert_eq!(ds.format, data::Format::ViewSpatial, "auto-detected");
    assert!(ds.issues.is_empty(), "{:?}", ds.issues.first());
    let st = stats::compute(&ds);
    assert_eq!(st.total, 5712);
    let cat = |name: &str| st.by_category[name];
    assert_eq!(cat("Camera perspective - Relative Direction"), 1773);
    assert_eq!(cat("Camera perspective - Object View Orientation"), 996);
    assert_eq!(cat("Person perspective - Object View Orientation"), 996);
    assert_eq!(cat("Person perspective - Relative Direction"), 842);
    assert_eq!(cat("Person perspective - Scene Simulation Relative Direction"), 1105);
    assert_eq!(st.options_count["2"], 173);
    assert_eq!(st.options_count["4"], 5712 - 173);
    assert_eq!(st.by_category_gold_direction["Person perspective - Object View Orientation"]["front"], 570);
    // Every gold answer names a direction the algebra understands.
    assert!(!st.by_gold_direction.contains_key("none"));
    // The two-option items are the "which hand" ones, left/right only.
    for s in ds.samples.iter().filter(|s| s.options.len() == 2) {
        assert_eq!(s.category, "Person perspective - Relative Direction");
        assert!(s.gold_direction.unwrap().has_lateral());
    }
    // Images are not shipped: every path is reported missing, not fatal.
    assert_eq!(st.missing_images, st.images_total);
    let multi = ds.samples.iter().filter(|s| s.images.len() > 1).count();
    assert!(multi > 1000, "scene simulation items carry 2-32 frames");
    assert!(ds.samples.iter().all(|s| s.perspective != Perspective::None));
}

#[test]
fn image_paths_resolve_with_and_without_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"[{"question_type": "Camera perspective - Relative Direction",
        "image_path": ["ViewSpatial-Bench/coco/a.jpg"], "question": "Where?",
        "answer": "B. left", "choices": "A. right\nB. left"},
        {"question_type": "Camera perspective - Relative Direction",
        "image_path": ["ViewSpatial-Bench/coco/b.jpg"], "question": "Where?",
        "answer": "A. right", "choices": "A. right\nB. left"}]"#;
    std::fs::write(dir.path().join("ViewSpatial-Bench.json"), json).unwrap();
    // a.jpg lives under the prefix, b.jpg without it.
    std::fs::create_dir_all(dir.path().join("ViewSpatial-Bench/coco")).unwrap();
    std::fs::create_dir_all(dir.path().join("coco")).unwrap();
    std::fs::write(dir.path().join("ViewSpatial-Bench/coco/a.jpg"), b"x").unwrap();
    std::fs::write(dir.path().join("coco/b.jpg"), b"x").unwrap();
    let ds = data::load(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(ds.missing_images(5).0, 0);
    assert_eq!(ds.samples[0].gold_letter, Some('B'));
    assert_eq!(ds.samples[0].gold_text.as_deref(), Some("left"));
}

#[test]
fn bad_records_name_file_record_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ViewSpatial-Bench.json");
    let json = r#"[{"question_type": "Camera perspective - Relative Direction",
        "image_path": ["x.jpg"], "question": "Where?", "answer": "C. up", "choices": "A. right\nB. left"},
        {"question_type": "Camera perspective - Relative Direction",
        "image_path": ["x.jpg"], "question": "Where?", "answer": "A. right", "choices": "A. right\nB. left"},
        {"image_path": ["x.jpg"], "question": "Where?", "answer": "A. right", "choices": "A. right\nB. left"}]"#;
    std::fs::write(&path, json).unwrap();
    let ds = data::load(path.to_str().unwrap()).unwrap();
    assert_eq!(ds.samples.len(), 1, "bad records are skipped, the rest load");
    let msgs: Vec<String> = ds.issues.iter().map(|i| i.to_string()).collect();
    assert!(msgs[0].contains("ViewSpatial-Bench.json: record 0: field `answer`: letter C is not among the choices"), "{}", msgs[0]);
    assert!(msgs[1].contains("record 2: field `question_type`: missing"), "{}", msgs[1]);

    std::fs::write(&path, "[{\"question\": 1,,}]").unwrap();
    let err = data::load(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("ViewSpatial-Bench.json: line 1 column") && err.contains("invalid JSON"), "{err}");
}

/// Reference phrases are found in (nearly) every person-perspective question
/// of the real benchmark; the coverage is printed for the record.
#[test]
fn reference_phrase_coverage_on_person_perspective() {
    use flipscope::spatial::reference::reference_phrase;
    let ds = flipscope::data::load(crate::common::viewspatial_json().to_str().unwrap()).unwrap();
    let person: Vec<_> = ds.samples.iter().filter(|s| s.category.starts_with("Person perspective")).collect();
    assert_eq!(person.len(), 842 + 996 + 1105);
    let mut missed = Vec::new();
    let mut by_pattern = std::collections::BTreeMap::new();
    for s in &person {
        match reference_phrase(&s.question) {
            Some(r) => *by_pattern.entry(r.pattern).or_insert(0) += 1,
            None => missed.push(s.question.clone()),
        }
    }
    let coverage = 1.0 - missed.len() as f64 / person.len() as f64;
    eprintln!(
        "reference phrase coverage {:.2}% of {} person-perspective questions; by pattern {by_pattern:?}",
        100.0 * coverage,
        person.len()
    );
    for q in missed.iter().take(10) {
        eprintln!("  missed: {q}");
    }
    assert!(coverage >= 0.99, "coverage {coverage}");
}

/// The shipped copy is the dataset card's file, byte for byte (its sha256 is in assets/viewspatial/SOURCE.md).
#[test]
fn shipped_copy_is_the_published_file() {
    use sha2::Digest;
    let bytes = std::fs::read(crate::common::viewspatial_json()).unwrap();
    let sum = format!("{:x}", sha2::Sha256::digest(&bytes));
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/viewspatial/SOURCE.md")).unwrap();
    assert!(source.contains(&sum), "sha256 {sum} is not the one SOURCE.md records");
    assert_eq!(sum, "4e5f7a70e8977f48fcb00a7dccaa2f39b4c143255bfd4070dd8b02837b3741b5");
}
