//! `flipscope bench extract`: how long answer extraction takes on large
//! adversarial outputs (flipscope alone). Reading is linear, so a megabyte
//! of any of these reads in well under a second on the release build.

use crate::bench::figures::timed;
use crate::spatial::extract::extract_letter;
use anyhow::Result;
use serde::Serialize;

/// The target for one megabyte of any shape, in seconds.
pub const EXTRACT_TARGET_S: f64 = 1.0;

/// Repeated units that once made extraction rescan what it had read.
pub const SHAPES: [(&str, &str); 8] = [
    ("bare letters", "A B "),
    ("open parentheses", "(A"),
    ("marked letters", "(A) (B) "),
    ("declarations", "the answer is A or "),
    ("corrections", "A. Wait, no, B. "),
    ("negations", "not A nor "),
    ("option lists", "A. left\nB. right\n"),
    ("full-width letters", "Ｃ Ａ "),
];

/// The four options every shape is read against.
pub fn options() -> Vec<(char, String)> {
    [('A', "left"), ('B', "right"), ('C', "front-left"), ('D', "back")].into_iter().map(|(l, t)| (l, t.to_string())).collect()
}

/// `unit` repeated to `bytes` (whole units).
pub fn repeated(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes.div_ceil(unit.len()).max(1))
}

#[derive(Serialize)]
pub struct ShapeTime {
    pub shape: &'static str,
    pub bytes: usize,
    pub seconds: f64,
    /// What the text was read as, so the timing is of real work.
    pub rule: &'static str,
}

/// The fastest of `repeat` reads of `bytes` of each shape.
pub fn measure(bytes: usize, repeat: usize) -> Result<Vec<ShapeTime>> {
    let options = options();
    SHAPES
        .iter()
        .map(|(shape, unit)| {
            let text = repeated(unit, bytes);
            let rule = extract_letter(&text, &options).rule.name();
            let seconds = timed(repeat, || {
                std::hint::black_box(extract_letter(&text, &options));
                Ok(())
            })?;
            Ok(ShapeTime { shape, bytes: text.len(), seconds, rule })
        })
        .collect()
}

/// The RESULTS.md section for `times`.
pub fn section(times: &[ShapeTime]) -> String {
    use std::fmt::Write;
    let mut s = String::from("\n## Answer extraction (flipscope alone)\n\n");
    let _ = writeln!(
        s,
        "`flipscope bench extract`: `extract_letter` on about 1 MB of one repeated unit, the fastest of the runs. \
         Target: under {EXTRACT_TARGET_S} s each (reading is linear: one pass, bounded look-around).\n"
    );
    s.push_str("| Shape | bytes | read as | seconds | met |\n|---|---:|---|---:|:---:|\n");
    for t in times {
        let met = if t.seconds < EXTRACT_TARGET_S { "yes" } else { "**no**" };
        let _ = writeln!(s, "| {} | {} | {} | {:.3} | {met} |", t.shape, t.bytes, t.rule, t.seconds);
    }
    s
}
