//! The generic format: JSONL or parquet, one sample per row. flipscope's own
//! outputs (`data synth`, `data flip`, distilled sets) are written in it.
//!
//! | field        | default column | accepted values                                             |
//! |--------------|----------------|-------------------------------------------------------------|
//! | id           | `id`           | text or integer (default: the row number)                   |
//! | images       | `images`, `image`, `image_path` | a path, a list of paths, bytes, a `{bytes, path}` struct, or a list of those |
//! | question     | `question`     | text (required)                                             |
//! | options      | `options`      | a list of texts (lettered A, B, ...), an object `{"A": text}`, or columns `A`..`H` |
//! | answer       | `answer`       | a letter ("B", "(B)", "B. left") or an option's text; free text when there are no options |
//! | category     | `category`     | text                                                        |
//! | perspective  | `perspective`  | camera, person or none                                      |
//! | reference    | `reference`    | the reference-object phrase                                 |
//! | boxes        | `boxes`        | a list of `[x0, y0, x1, y1]` or `{x0, y0, x1, y1, label, image}` in original pixels |
//! | split        | `split`        | text                                                        |
//! | answer_style | `answer_style` | letter, word, yesno or number                               |
//! | metadata     | `metadata`     | an object, kept as it is                                    |
//!
//! Any default column can be renamed in the spec:
//! `generic:my.jsonl#question=prompt,images=img,answer=label`.

use super::{letter_of, opt_text, req, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::{image_from_cell, resolve};
use crate::data::sample::{BoundingBox, ImageSource, Perspective, Sample};
use crate::data::table::{Cell, Record};
use serde_json::{json, Value};
use std::path::Path;

pub const FIELDS: [&str; 12] =
    ["id", "images", "question", "options", "answer", "category", "perspective", "reference", "boxes", "split", "answer_style", "metadata"];

struct Columns<'a> {
    ctx_options: &'a [(String, String)],
}

impl Columns<'_> {
    /// The column for a field: the spec's mapping, else the default name.
    fn name<'b>(&'b self, field: &'b str) -> &'b str {
        self.ctx_options.iter().find(|(k, _)| k == field).map(|(_, v)| v.as_str()).unwrap_or(field)
    }
    fn get<'r>(&self, rec: &'r Record, field: &str) -> Option<(&'r Cell, String)> {
        let mapped = self.name(field).to_string();
        if let Some(c) = rec.get(&mapped) {
            return Some((c, mapped));
        }
        if field == "images" && mapped == "images" {
            for alt in ["image", "image_path"] {
                if let Some(c) = rec.get(alt) {
                    return Some((c, alt.to_string()));
                }
            }
        }
        None
    }
}

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    for (k, _) in &ctx.spec.options {
        if !FIELDS.contains(&k.as_str()) && k != "whatsup" {
            return Err(DataError::Other {
                path: ctx.path.clone(),
                message: format!("unknown column mapping `{k}`; mappable fields: {}", FIELDS.join(", ")),
            });
        }
    }
    let records = super::table_records(&ctx.path, &mut ctx.issues)?;
    let options = ctx.spec.options.clone();
    let cols = Columns { ctx_options: &options };
    Ok(super::build_samples(ctx, &records, |r, i, root, dataset| sample(r, i, &cols, root, dataset)))
}

fn boxes(field: &str, cell: &Cell) -> FieldResult<Vec<BoundingBox>> {
    let Cell::List(items) = cell else { return Err(FieldError::new(field, "expected a list of boxes")) };
    items
        .iter()
        .map(|b| match b {
            Cell::List(xs) if xs.len() == 4 => {
                let v: Option<Vec<f64>> = xs.iter().map(Cell::as_f64).collect();
                let v = v.ok_or_else(|| FieldError::new(field, "box coordinates must be numbers"))?;
                Ok(BoundingBox::new(v[0] as f32, v[1] as f32, v[2] as f32, v[3] as f32))
            }
            Cell::Map(_) => {
                let n = |k: &str| b.get(k).and_then(Cell::as_f64).ok_or_else(|| FieldError::new(field, format!("box has no number `{k}`")));
                let mut bb = BoundingBox::new(n("x0")? as f32, n("y0")? as f32, n("x1")? as f32, n("y1")? as f32);
                bb.label = b.get("label").and_then(Cell::to_text);
                bb.image = b.get("image").and_then(Cell::as_i64).unwrap_or(0) as usize;
                Ok(bb)
            }
            _ => Err(FieldError::new(field, "a box is [x0, y0, x1, y1] or {x0, y0, x1, y1}")),
        })
        .collect()
}

fn sample(rec: &Record, i: usize, cols: &Columns, root: &Path, dataset: &str) -> FieldResult<Sample> {
    let text = |field: &str| cols.get(rec, field).and_then(|(c, _)| c.to_text());
    let mut s = Sample::new(text("id").unwrap_or_else(|| i.to_string()), dataset);
    let qcol = cols.name("question");
    s.question = req(rec, qcol)?.as_str().ok_or_else(|| FieldError::new(qcol, "expected text"))?.to_string();
    s.category = text("category").unwrap_or_default();
    s.split = text("split");
    s.reference = text("reference");
    if let Some(p) = text("perspective") {
        s.perspective = Perspective::parse(&p)
            .ok_or_else(|| FieldError::new(cols.name("perspective"), format!("`{p}` is not camera, person or none")))?;
    }
    if let Some(st) = text("answer_style") {
        s.answer_style = serde_json::from_value(Value::String(st.clone()))
            .map_err(|_| FieldError::new(cols.name("answer_style"), format!("`{st}` is not letter, word, yesno or number")))?;
    }
    // Options: a list, a letter->text object, or A..H columns.
    match cols.get(rec, "options") {
        Some((Cell::List(items), col)) => {
            let texts: Option<Vec<String>> = items.iter().map(Cell::to_text).collect();
            s.set_options(texts.ok_or_else(|| FieldError::new(&col, "options must be text"))?).map_err(|e| FieldError::new(&col, e))?;
        }
        Some((Cell::Map(entries), col)) => {
            let mut texts = Vec::new();
            if entries.len() > crate::data::sample::MAX_OPTIONS {
                return Err(FieldError::new(&col, format!("{} options; at most 26 can be lettered A to Z", entries.len())));
            }
            for ((k, v), want) in entries.iter().zip('A'..='Z') {
                if k.len() != 1 || !k.starts_with(want) {
                    return Err(FieldError::new(&col, format!("option keys must be A, B, C... in order; found `{k}`")));
                }
                texts.push(v.to_text().ok_or_else(|| FieldError::new(&col, format!("option {k} is not text")))?);
            }
            s.set_options(texts).map_err(|e| FieldError::new(&col, e))?;
        }
        Some((_, col)) => return Err(FieldError::new(&col, "expected a list or an object of options")),
        None => {
            let texts: Vec<String> = ('A'..='H').map_while(|l| opt_text(rec, &l.to_string())).collect();
            s.set_options(texts).expect("at most 8 lettered columns");
        }
    }
    // An answer that is not a scalar (a list, an object) would leave the
    // sample without gold: refuse it, except a list of exactly one.
    let answer = match cols.get(rec, "answer") {
        Some((Cell::List(items), col)) => match items.as_slice() {
            [one] => Some(one.to_text().ok_or_else(|| FieldError::new(&col, "the answer is a list whose item is not text"))?),
            _ => return Err(FieldError::new(&col, format!("the answer is a list of {} items; expected one letter or text", items.len()))),
        },
        Some((cell, col)) if !cell.is_null() => {
            Some(cell.to_text().ok_or_else(|| FieldError::new(&col, "the answer must be a letter or text"))?)
        }
        _ => None,
    };
    if let Some(ans) = answer {
        if s.options.is_empty() {
            s.gold_text = Some(ans);
        } else {
            let by_letter = letter_of(&ans).is_some_and(|l| s.set_gold_letter(l));
            if !by_letter && !s.set_gold_text(&ans) {
                return Err(FieldError::new(cols.name("answer"), format!("`{ans}` is neither an option letter nor an option's text")));
            }
        }
    }
    let resolve_path = |p: &str| resolve(root, p, &[], &[]);
    s.images = match cols.get(rec, "images") {
        Some((Cell::List(items), col)) => {
            items.iter().map(|c| image_from_cell(&col, c, &resolve_path)).collect::<FieldResult<Vec<ImageSource>>>()?
        }
        Some((cell, col)) => vec![image_from_cell(&col, cell, &resolve_path)?],
        None => return Err(FieldError::missing(cols.name("images"))),
    };
    if let Some((cell, col)) = cols.get(rec, "boxes") {
        s.boxes = boxes(&col, cell)?;
    }
    if let Some((Cell::Map(m), _)) = cols.get(rec, "metadata") {
        s.metadata = m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
    }
    Ok(s)
}

/// One sample as a generic-format JSON line. Image paths are written
/// relative to `dir` when they lie inside it; embedded images must have been
/// saved to files by the caller first.
pub fn to_json(s: &Sample, dir: &Path) -> Value {
    let images: Vec<Value> = s
        .images
        .iter()
        .map(|img| match img {
            ImageSource::Path(p) => Value::String(p.strip_prefix(dir).unwrap_or(p).to_string_lossy().into_owned()),
            ImageSource::Bytes { name, .. } => Value::String(name.clone().unwrap_or_default()),
        })
        .collect();
    let mut v = json!({
        "id": s.id,
        "images": images,
        "question": s.question,
        "options": s.options.iter().map(|o| o.text.clone()).collect::<Vec<_>>(),
        "answer": s.gold_letter.map(|l| l.to_string()).or(s.gold_text.clone()),
        "category": s.category,
        "perspective": s.perspective.name(),
        "answer_style": serde_json::to_value(s.answer_style).unwrap_or(Value::Null),
    });
    let obj = v.as_object_mut().expect("object");
    if let Some(r) = &s.reference {
        obj.insert("reference".into(), r.clone().into());
    }
    if !s.boxes.is_empty() {
        obj.insert("boxes".into(), serde_json::to_value(&s.boxes).unwrap_or_default());
    }
    if let Some(sp) = &s.split {
        obj.insert("split".into(), sp.clone().into());
    }
    if !s.metadata.is_empty() {
        obj.insert("metadata".into(), Value::Object(s.metadata.clone()));
    }
    v
}
