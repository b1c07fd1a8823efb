//! Horizontal-flip augmentation (`data flip`): mirror each image and swap
//! left and right in the question, the options, the gold answer, the boxes
//! and an agent's facing direction. Flipping twice gives the original back.

use super::images::decode;
use super::loaders::generic::to_json;
use super::sample::{AnswerOption, ImageSource, Sample, TARGET_FIELD};
use super::{DataError, Dataset};
use anyhow::{Context, Result};
use image::DynamicImage;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;

const FLIP_SUFFIX: &str = "~flip";

/// Swaps left and right in text, word by word, keeping the case
/// ("Left" -> "Right", "front-left" -> "front-right", "leftmost" -> "rightmost").
pub fn swap_left_right(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(&swap_word(word));
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn swap_word(w: &str) -> String {
    let lower = w.to_lowercase();
    let swapped = ["left", "right"].iter().find_map(|from| {
        let to = if *from == "left" { "right" } else { "left" };
        lower.strip_prefix(from).filter(|rest| matches!(*rest, "" | "most" | "ward" | "wards")).map(|rest| format!("{to}{rest}"))
    });
    let Some(s) = swapped else { return w.to_string() };
    let capitalized = |x: &str| {
        let mut cs = x.chars();
        cs.next().map(|f| f.to_uppercase().collect::<String>() + cs.as_str()).unwrap_or_default()
    };
    // Only the three casings that map back one to one ("left", "LEFT",
    // "Left"); anything else ("lEfT") stays as written, so that flipping
    // twice always gives the original.
    if w == lower {
        s
    } else if w == lower.to_uppercase() {
        s.to_uppercase()
    } else if w == capitalized(&lower) {
        capitalized(&s)
    } else {
        w.to_string()
    }
}

/// The labels of a sample with left and right swapped (images untouched).
/// `widths` are the sample's image widths, for mirroring boxes.
pub fn flip_labels(s: &Sample, widths: &[u32]) -> Sample {
    let mut f = s.clone();
    f.id = match s.id.strip_suffix(FLIP_SUFFIX) {
        Some(orig) => orig.to_string(),
        None => format!("{}{FLIP_SUFFIX}", s.id),
    };
    f.question = swap_left_right(&s.question);
    f.options = s
        .options
        .iter()
        .map(|o| AnswerOption { letter: o.letter, text: swap_left_right(&o.text), direction: o.direction.map(|d| d.mirrored()) })
        .collect();
    f.gold_text = s.gold_text.as_deref().map(swap_left_right);
    f.gold_direction = s.gold_direction.map(|d| d.mirrored());
    f.reference = s.reference.as_deref().map(swap_left_right);
    f.boxes = s.boxes.iter().map(|b| b.mirrored(*widths.get(b.image).unwrap_or(&0) as f32)).collect();
    if let Some(serde_json::Value::Array(objs)) = f.metadata.get_mut("objects") {
        let w = *widths.first().unwrap_or(&0) as f64;
        for o in objs.iter_mut().filter_map(|o| o.as_object_mut()) {
            if let Some(x) = o.get("x").and_then(|x| x.as_f64()) {
                o.insert("x".into(), (w - x).into());
            }
            if let Some(phi) = o.get("facing").and_then(|x| x.as_f64()) {
                o.insert("facing".into(), ((360.0 - phi) % 360.0).into());
            }
        }
    }
    // A training target (gold words, a distilled rationale) talks about the
    // unflipped picture too.
    if let Some(t) = s.metadata.get(TARGET_FIELD).and_then(|v| v.as_str()).map(swap_left_right) {
        f.metadata.insert(TARGET_FIELD.into(), t.into());
    }
    let flipped = !s.metadata.get("flipped").and_then(|v| v.as_bool()).unwrap_or(false);
    if flipped {
        f.metadata.insert("flipped".into(), true.into());
    } else {
        f.metadata.remove("flipped");
    }
    f
}

/// A sample and its images, mirrored.
pub fn flip_sample(s: &Sample) -> Result<(Sample, Vec<DynamicImage>), DataError> {
    let images: Vec<DynamicImage> = s.images.iter().map(decode).collect::<Result<_, _>>()?;
    let widths: Vec<u32> = images.iter().map(|i| i.width()).collect();
    Ok((flip_labels(s, &widths), images.iter().map(|i| i.fliph()).collect()))
}

fn safe_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

pub struct FlipReport {
    pub flipped: usize,
    pub replayed: usize,
    pub errors: Vec<String>,
}

/// The file extension an in-memory image keeps when written out: its name's,
/// else the one its bytes' format goes by (`bin` when unknown), so the copy
/// opens in image viewers like the source.
fn byte_image_extension<'a>(name: Option<&'a str>, bytes: &[u8]) -> &'a str {
    let from_name = name.and_then(|n| Path::new(n).extension()).and_then(|e| e.to_str());
    let from_bytes = image::guess_format(bytes).ok().and_then(|f| f.extensions_str().first().copied());
    from_name.or(from_bytes).unwrap_or("bin")
}

/// Writes the flip-augmented dataset: every sample mirrored, plus a `replay`
/// fraction (0..=1) of the originals, chosen with `seed`. Samples whose
/// images cannot be read are reported and skipped.
pub fn write(ds: &Dataset, out: &Path, replay: f64, seed: u64) -> Result<FlipReport> {
    let img_dir = out.join("images");
    std::fs::create_dir_all(&img_dir).with_context(|| format!("creating {}", img_dir.display()))?;
    let final_path = out.join("flipped.jsonl");
    let tmp = out.join("flipped.jsonl.tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut report = FlipReport { flipped: 0, replayed: 0, errors: Vec::new() };
    for s in &ds.samples {
        let (mut f, images) = match flip_sample(s) {
            Ok(x) => x,
            Err(e) => {
                report.errors.push(format!("{}: {e}", s.id));
                continue;
            }
        };
        f.images = Vec::new();
        for (k, img) in images.iter().enumerate() {
            let p = img_dir.join(format!("{}_{k}.png", safe_name(&f.id)));
            img.save(&p).with_context(|| format!("writing {}", p.display()))?;
            f.images.push(ImageSource::Path(p));
        }
        writeln!(w, "{}", to_json(&f, out))?;
        report.flipped += 1;
        if rng.random::<f64>() < replay {
            let mut orig = s.clone();
            for (k, img) in orig.images.iter_mut().enumerate() {
                if let ImageSource::Bytes { bytes, name } = img {
                    let p = img_dir.join(format!("{}_{k}.{}", safe_name(&s.id), byte_image_extension(name.as_deref(), bytes)));
                    std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
                    *img = ImageSource::Path(p);
                } else if let ImageSource::Path(p) = img {
                    *img = ImageSource::Path(std::path::absolute(&*p).unwrap_or(p.clone()));
                }
            }
            writeln!(w, "{}", to_json(&orig, out))?;
            report.replayed += 1;
        }
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &final_path)?;
    Ok(report)
}
