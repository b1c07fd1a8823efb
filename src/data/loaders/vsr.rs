//! VSR: `{random,zeroshot}/{train,dev,test}.jsonl` with `image`, `caption`,
//! `label` (0/1), `relation`, optional `subj`/`obj`/`reference_frame`; vote
//! fields may be strings like "[2, 9]". Presented as a yes/no question.

use super::{file_stem, opt_text, req, req_str, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::resolve;
use crate::data::read::read_jsonl;
use crate::data::sample::{AnswerStyle, Perspective, Sample};
use crate::data::table::{Cell, Record};
use crate::spatial::parse_relation;
use std::path::Path;

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = read_jsonl(&ctx.path, &mut ctx.issues)?;
    let split = file_stem(&ctx.path);
    Ok(super::build_samples(ctx, &records, |r, i, root, dataset| sample(r, i, root, dataset, &split)))
}

/// "[2, 9]" (a string) or [2, 9] (a list) -> [2, 9].
fn votes(cell: &Cell) -> Option<Vec<i64>> {
    match cell {
        Cell::List(items) => items.iter().map(Cell::as_i64).collect(),
        Cell::Str(s) => serde_json::from_str::<Vec<i64>>(s).ok(),
        _ => None,
    }
}

fn sample(rec: &Record, i: usize, root: &Path, dataset: &str, split: &str) -> FieldResult<Sample> {
    let caption = req_str(rec, "caption")?;
    let relation = req_str(rec, "relation")?;
    let label = req(rec, "label")?.as_i64().filter(|l| *l == 0 || *l == 1).ok_or_else(|| FieldError::new("label", "expected 0 or 1"))?;
    let image = req_str(rec, "image")?;
    let mut s = Sample::new(format!("{split}/{i}"), dataset);
    s.category = relation.to_string();
    s.split = Some(split.to_string());
    s.answer_style = AnswerStyle::YesNo;
    s.perspective = match opt_text(rec, "reference_frame").as_deref() {
        Some("intrinsic") => Perspective::Person,
        Some("relative") => Perspective::Camera,
        _ => Perspective::None,
    };
    s.question = format!("Is the following statement about the image true? \"{caption}\" Answer yes or no.");
    s.set_options(["yes", "no"]).expect("two options");
    s.set_gold_letter(if label == 1 { 'A' } else { 'B' });
    // Only a true statement tells the direction; a false one says "not X".
    s.gold_direction = if label == 1 { parse_relation(relation) } else { None };
    s.reference = opt_text(rec, "obj");
    s.images = vec![resolve(root, image, &[], &["images", "train2017", "val2017", "trainval2017"])];
    for (k, v) in &rec.fields {
        if matches!(k.as_str(), "caption" | "image" | "label" | "relation") || v.is_null() {
            continue;
        }
        let value = if k.contains("vote") { votes(v).map(serde_json::Value::from).unwrap_or(v.to_json()) } else { v.to_json() };
        s.metadata.insert(k.clone(), value);
    }
    s.metadata.insert("caption".into(), caption.into());
    Ok(s)
}
