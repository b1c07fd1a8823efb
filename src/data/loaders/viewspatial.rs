//! ViewSpatial-Bench: one JSON list of `{question_type, image_path[],
//! question, choices: "A. x\nB. y", answer: "A. x"}`.

use super::{req_str, str_list, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::resolve;
use crate::data::read::read_json_list;
use crate::data::sample::{Perspective, Sample};
use crate::data::table::Record;

const PREFIX: &str = "ViewSpatial-Bench/";

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = read_json_list(&ctx.path)?;
    Ok(super::build_samples(ctx, &records, sample))
}

/// "A. right\nB. front-up" -> [(A, right), (B, front-up)].
pub fn parse_choices(field: &str, text: &str) -> FieldResult<Vec<(char, String)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let line = line.trim();
            let (l, rest) = line.split_once('.').ok_or_else(|| FieldError::new(field, format!("`{line}` is not `X. text`")))?;
            let mut cs = l.trim().chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if c.is_ascii_uppercase() => Ok((c, rest.trim().to_string())),
                _ => Err(FieldError::new(field, format!("`{line}` does not start with an option letter"))),
            }
        })
        .collect()
}

fn sample(rec: &Record, index: usize, root: &std::path::Path, dataset: &str) -> FieldResult<Sample> {
    let mut s = Sample::new(format!("{index:05}"), dataset);
    s.category = req_str(rec, "question_type")?.to_string();
    s.perspective = if s.category.starts_with("Camera") {
        Perspective::Camera
    } else if s.category.starts_with("Person") {
        Perspective::Person
    } else {
        Perspective::None
    };
    s.question = req_str(rec, "question")?.to_string();
    let paths = str_list(rec, "image_path")?;
    if paths.is_empty() {
        return Err(FieldError::new("image_path", "empty list"));
    }
    s.images = paths.iter().map(|p| resolve(root, p, &[PREFIX], &[])).collect();
    let choices = parse_choices("choices", req_str(rec, "choices")?)?;
    if choices.len() < 2 {
        return Err(FieldError::new("choices", "fewer than two options"));
    }
    s.set_options(choices.iter().map(|(_, t)| t.clone())).map_err(|e| FieldError::new("choices", e))?;
    // Keep the file's own letters (they are A.. in order, but say so if not).
    for (opt, (l, _)) in s.options.iter().zip(&choices) {
        if opt.letter != *l {
            return Err(FieldError::new("choices", format!("letters out of order at `{l}`")));
        }
    }
    let answer = req_str(rec, "answer")?;
    let letter = super::letter_of(answer).ok_or_else(|| FieldError::new("answer", format!("`{answer}` has no option letter")))?;
    if !s.set_gold_letter(letter) {
        return Err(FieldError::new("answer", format!("letter {letter} is not among the choices")));
    }
    if let Some((_, text)) = answer.split_once('.') {
        if s.gold_text.as_deref().map(str::trim) != Some(text.trim()) {
            return Err(FieldError::new("answer", format!("`{answer}` disagrees with choice {letter}")));
        }
    }
    s.metadata.insert("frames".into(), paths.len().into());
    Ok(s)
}
