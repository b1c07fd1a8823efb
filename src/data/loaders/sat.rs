//! SAT: `SAT_{train,static,val,test}.parquet` with `image_bytes` (a list of
//! 1-2 images), `question`, `answers` (list), `question_type`,
//! `correct_answer` (text). The answers become options in a fixed-seed
//! shuffled order.

use super::{file_stem, opt_text, req, req_str, seeded_shuffle, str_list, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::{image_from_cell, resolve};
use crate::data::read::parquet_records;
use crate::data::sample::{Perspective, Sample};
use crate::data::table::{Cell, Record};
use std::path::Path;

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = parquet_records(&ctx.path)?;
    let split = file_stem(&ctx.path).trim_start_matches("SAT_").to_string();
    Ok(super::build_samples(ctx, &records, |r, i, root, dataset| sample(r, i, root, dataset, &split)))
}

fn sample(rec: &Record, i: usize, root: &Path, dataset: &str, split: &str) -> FieldResult<Sample> {
    let mut s = Sample::new(format!("{split}/{i}"), dataset);
    s.split = Some(split.to_string());
    s.category = opt_text(rec, "question_type").unwrap_or_else(|| "unknown".into());
    s.perspective = Perspective::Camera;
    s.question = req_str(rec, "question")?.to_string();
    let mut answers = str_list(rec, "answers")?;
    let correct = req_str(rec, "correct_answer")?.to_string();
    if !answers.iter().any(|a| a.trim() == correct.trim()) {
        return Err(FieldError::new("correct_answer", format!("`{correct}` is not among the answers")));
    }
    seeded_shuffle(&mut answers, &s.id);
    s.set_options(answers).map_err(|e| FieldError::new("answers", e))?;
    s.set_gold_text(&correct);
    let resolve_path = |p: &str| resolve(root, p, &[], &[]);
    s.images = match req(rec, "image_bytes")? {
        Cell::List(items) => items.iter().map(|c| image_from_cell("image_bytes", c, &resolve_path)).collect::<FieldResult<_>>()?,
        single => vec![image_from_cell("image_bytes", single, &resolve_path)?],
    };
    if s.images.is_empty() {
        return Err(FieldError::new("image_bytes", "no images"));
    }
    Ok(s)
}
