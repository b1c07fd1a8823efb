//! CV-Bench: `test_{2d,3d}.parquet` with an embedded `image` struct
//! `{bytes, path}`, or `.jsonl` with `filename` under `img/`. Fields `idx`,
//! `type`, `task`, `question`, `choices` (list), `answer` "(C)", `prompt`,
//! `source`.

use super::{build_samples, letter_of, opt_text, req_str, str_list, table_records, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::{image_from_cell, resolve};
use crate::data::sample::{Perspective, Sample};
use crate::data::table::Record;
use std::path::Path;

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = table_records(&ctx.path, &mut ctx.issues)?;
    Ok(build_samples(ctx, &records, sample))
}

fn sample(rec: &Record, i: usize, root: &Path, dataset: &str) -> FieldResult<Sample> {
    let id = opt_text(rec, "idx").unwrap_or_else(|| i.to_string());
    let mut s = Sample::new(id, dataset);
    let kind = opt_text(rec, "type").unwrap_or_default();
    let task = req_str(rec, "task")?;
    s.category = format!("{kind} {task}").trim().to_string();
    s.perspective = Perspective::Camera;
    s.question = req_str(rec, "question")?.to_string();
    let choices = str_list(rec, "choices")?;
    if choices.len() < 2 {
        return Err(FieldError::new("choices", "fewer than two options"));
    }
    s.set_options(choices).map_err(|e| FieldError::new("choices", e))?;
    let answer = req_str(rec, "answer")?;
    let letter = letter_of(answer).ok_or_else(|| FieldError::new("answer", format!("`{answer}` is not like (C)")))?;
    if !s.set_gold_letter(letter) {
        return Err(FieldError::new("answer", format!("{letter} is not among the {} choices", s.options.len())));
    }
    let resolve_path = |p: &str| resolve(root, p, &[], &["img"]);
    s.images = vec![match rec.get("image") {
        Some(cell) => image_from_cell("image", cell, &resolve_path)?,
        None => resolve_path(req_str(rec, "filename")?),
    }];
    for k in ["source", "source_dataset", "prompt", "filename"] {
        if let Some(v) = opt_text(rec, k) {
            s.metadata.insert(k.into(), v.into());
        }
    }
    Ok(s)
}
