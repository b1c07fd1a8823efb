//! CLEVR-CoGenT as R1-V ships it: `data/train-*.parquet` with an embedded
//! `image`, `problem`, and `solution` "<answer> 3 </answer>".

use super::{build_samples, opt_text, req, req_str, table_records, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::{image_from_cell, resolve};
use crate::data::sample::{AnswerStyle, Sample};
use crate::data::table::Record;
use std::path::Path;

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = table_records(&ctx.path, &mut ctx.issues)?;
    Ok(build_samples(ctx, &records, sample))
}

/// "<answer> 3 </answer>" -> "3"; plain text passes through.
pub fn answer_text(solution: &str) -> String {
    let s = solution.trim();
    match (s.find("<answer>"), s.find("</answer>")) {
        (Some(a), Some(b)) if b > a => s[a + "<answer>".len()..b].trim().to_string(),
        _ => s.to_string(),
    }
}

fn sample(rec: &Record, i: usize, root: &Path, dataset: &str) -> FieldResult<Sample> {
    let mut s = Sample::new(opt_text(rec, "id").unwrap_or_else(|| i.to_string()), dataset);
    s.question = req_str(rec, "problem")?.to_string();
    let gold = answer_text(req_str(rec, "solution")?);
    if gold.is_empty() {
        return Err(FieldError::new("solution", "empty answer"));
    }
    s.answer_style = match gold.to_lowercase().as_str() {
        "yes" | "no" => AnswerStyle::YesNo,
        g if g.parse::<f64>().is_ok() => AnswerStyle::Number,
        _ => return Err(FieldError::new("solution", format!("`{gold}` is neither a number nor yes/no"))),
    };
    s.category = match s.answer_style {
        AnswerStyle::Number => "count".into(),
        _ => "yes/no".into(),
    };
    s.gold_text = Some(gold);
    s.images = vec![image_from_cell("image", req(rec, "image")?, &|p| resolve(root, p, &[], &[]))?];
    Ok(s)
}
