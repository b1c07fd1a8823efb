//! `flipscope report` on hand-written records, against figures worked out by hand.

use crate::common::flipscope;
use std::path::Path;

#[allow(clippy::too_many_arguments)]
fn rec(id: &str, cat: &str, gold: &str, gd: &str, pred: &str, pd: &str, correct: bool, kind: Option<&str>) -> String {
    serde_json::json!({
        "key": id, "id": id, "category": cat, "rotation": 0, "gold_letter": gold, "gold_direction": gd,
        "predicted_letter": pred, "predicted_direction": pd, "raw_output": "", "rule": "scored",
        "option_logprobs": [], "correct": correct, "error_kind": kind, "latency_ms": 1.0
    })
    .to_string()
}

fn write_run(dir: &Path, lines: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("records.jsonl"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn report_figures_match_hand_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    // Run A: 3 of 5 right; errors: one horizontal flip, one orthogonal.
    write_run(
        &a,
        &[
            rec("1", "cam", "A", "left", "A", "left", true, None),
            rec("2", "cam", "B", "right", "B", "right", true, None),
            rec("3", "cam", "A", "left", "A", "left", true, None),
            rec("4", "cam", "A", "left", "B", "right", false, Some("horizontal_flip")),
            rec("5", "cam", "C", "front", "A", "left", false, Some("orthogonal")),
        ],
    );
    // Run B: all wrong, so A-only = 3, B-only = 0, both wrong = 2.
    write_run(
        &b,
        &(1..=5).map(|i| rec(&i.to_string(), "cam", "A", "left", "B", "right", false, Some("horizontal_flip"))).collect::<Vec<_>>(),
    );
    let (ok, csv, err) = flipscope(&["report", a.to_str().unwrap(), "--format", "csv"]);
    assert!(ok, "{err}");
    let overall = csv.lines().find(|l| l.contains(",overall,")).unwrap();
    let f: Vec<&str> = overall.split(',').collect();
    assert_eq!((f[2], f[3]), ("5", "3"));
    // Wilson 95% for 3/5, by hand: centre .5566, half-width .3258.
    let (lo, hi): (f64, f64) = (f[5].parse().unwrap(), f[6].parse().unwrap());
    assert!((lo - 0.2307).abs() < 1e-3 && (hi - 0.8824).abs() < 1e-3, "{overall}");

    let (ok, text, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(text.contains("horizontal flip       1  50.00%") && text.contains("orthogonal            1  50.00%"), "{text}");
    assert!(text.contains("A    predicted      3  gold      3"), "{text}");
    // McNemar exact on (3, 0): 2 * 0.5^3 = 0.25; difference B - A = -60%.
    let line = text.lines().find(|l| l.starts_with("overall") && l.contains("0.2500")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("-60.00 ("), "{line}");
    let ci = line.split('(').nth(1).unwrap();
    let nums: Vec<f64> = ci.trim_end_matches(')').split(" to ").map(|x| x.trim().parse().unwrap()).collect();
    assert!(nums[0] <= -60.0 && nums[1] >= -60.0 && nums[1] <= 0.0, "bootstrap CI {nums:?}");
    // Confusion per category: gold left row has left 2, right 1.
    assert!(text.contains("confusion (gold rows x predicted columns): cam"), "{text}");
    // JSON carries the same report, every part of it.
    let (ok, json, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", b.to_str().unwrap(), "--format", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let overall = v["runs"][0]["accuracy"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((overall["group"].as_str(), overall["n"].as_u64(), overall["right"].as_u64()), (Some("overall"), Some(5), Some(3)));
    assert_eq!(v["by"], "category");
    let paired = v["comparison"]["paired"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((paired["only_a"].as_u64(), paired["only_b"].as_u64()), (Some(3), Some(0)));
    assert!((paired["p_mcnemar"].as_f64().unwrap() - 0.25).abs() < 1e-12);
    assert_eq!(v["runs"][0]["confusion"][0]["category"], "cam");
    assert_eq!(v["runs"][0]["letters"][0]["letter"], "A");
    let png = tmp.path().join("acc.png");
    let (ok, _, err) = flipscope(&["report", a.to_str().unwrap(), b.to_str().unwrap(), "--plot", png.to_str().unwrap()]);
    assert!(ok, "{err}");
    let img = image::open(&png).unwrap().to_rgb8();
    // Run A's bar (first colour) is drawn; run B's is at 0%.
    assert!(img.pixels().any(|p| p.0 == [31, 119, 180]), "no bar of the first run");
    // With --vs the plot draws the run compared against too (second colour).
    let c = tmp.path().join("c");
    write_run(
        &c,
        &(1..=5)
            .map(|i| {
                if i <= 2 {
                    rec(&i.to_string(), "cam", "A", "left", "A", "left", true, None)
                } else {
                    rec(&i.to_string(), "cam", "A", "left", "B", "right", false, Some("horizontal_flip"))
                }
            })
            .collect::<Vec<_>>(),
    );
    let (ok, _, err) = flipscope(&["report", a.to_str().unwrap(), "--vs", c.to_str().unwrap(), "--plot", png.to_str().unwrap()]);
    assert!(ok, "{err}");
    let img = image::open(&png).unwrap().to_rgb8();
    assert!(img.pixels().any(|p| p.0 == [31, 119, 180]) && img.pixels().any(|p| p.0 == [255, 127, 14]), "both runs' bars");
    // Run B answers B to every question: its letter bias is flagged beside its numbers, in text and JSON.
    let (ok, text, err) = flipscope(&["report", b.to_str().unwrap()]);
    assert!(ok && text.contains("⚠ letter_bias: B is 5/5 predictions (100.0%"), "{text}{err}");
    let (ok, json, _) = flipscope(&["report", b.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(ok && v["runs"][0]["warnings"][0]["kind"] == "letter_bias", "{json}");
    assert!(v["runs"][0]["warnings"][0]["message"].as_str().unwrap().contains("5/5"), "{json}");
    let pq = tmp.path().join("acc.parquet");
    let (ok, _, err) = flipscope(&["report", a.to_str().unwrap(), "--format", "parquet", "--out", pq.to_str().unwrap()]);
    assert!(ok && pq.exists(), "{err}");
    let (ok, _, err) = flipscope(&["report", a.to_str().unwrap(), "--by", "colour"]);
    assert!(!ok && err.contains("invalid value 'colour' for '--by") && err.contains("category, error, gold, source"), "{err}");
}
