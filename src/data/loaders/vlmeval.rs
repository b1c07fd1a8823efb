//! VLMEvalKit TSV (`~/LMUData/<Name>.tsv`): `index`, `image` (base64) or
//! `image_path`, `question`, option columns `A`..`H`, `answer` (letter),
//! optional `hint` and `category`. An `image` cell of at most 64 characters
//! is another row's `index`; a cell like `[...]` is a list of base64 images.

use super::{file_stem, opt_text, req_str, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::{decode_base64, embedded, resolve};
use crate::data::read::read_tsv;
use crate::data::sample::{ImageSource, Sample};
use crate::data::table::Record;
use std::collections::HashMap;
use std::path::Path;

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = read_tsv(&ctx.path)?;
    // index -> image cell, for rows that point at another row's image.
    let by_index: HashMap<String, String> =
        records.iter().filter_map(|r| Some((opt_text(r, "index")?, opt_text(r, "image")?))).filter(|(_, img)| img.len() > 64).collect();
    let name = file_stem(&ctx.path);
    let mut out = Vec::new();
    for rec in &records {
        let (root, dataset) = (ctx.root.clone(), ctx.dataset.clone());
        out.extend(ctx.each(rec, |r| sample(r, &by_index, &root, &dataset, &name)));
    }
    Ok(out)
}

fn images(rec: &Record, by_index: &HashMap<String, String>, root: &Path) -> FieldResult<Vec<ImageSource>> {
    if let Some(cell) = opt_text(rec, "image") {
        let cell = cell.trim();
        let data = if cell.len() <= 64 {
            by_index.get(cell).ok_or_else(|| FieldError::new("image", format!("refers to index `{cell}`, which has no image")))?.as_str()
        } else {
            cell
        };
        if data.starts_with('[') {
            // A Python list literal of base64 strings: the alphabet has no
            // quotes or commas, so splitting is exact.
            let items: Vec<&str> = data
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"'))
                .filter(|s| !s.is_empty())
                .collect();
            return items.iter().map(|b| Ok(embedded(decode_base64("image", b)?, None))).collect();
        }
        return Ok(vec![embedded(decode_base64("image", data)?, None)]);
    }
    if let Some(p) = opt_text(rec, "image_path") {
        let p = p.trim();
        if p.starts_with('[') {
            let list: Vec<String> = serde_json::from_str(&p.replace('\'', "\"")).map_err(|e| FieldError::new("image_path", e))?;
            return Ok(list.iter().map(|x| resolve(root, x, &[], &["images"])).collect());
        }
        return Ok(vec![resolve(root, p, &[], &["images"])]);
    }
    Err(FieldError::new("image", "missing (and no image_path)"))
}

fn sample(rec: &Record, by_index: &HashMap<String, String>, root: &Path, dataset: &str, name: &str) -> FieldResult<Sample> {
    let index = opt_text(rec, "index").ok_or_else(|| FieldError::missing("index"))?;
    let mut s = Sample::new(index, dataset);
    s.category = opt_text(rec, "category").unwrap_or_else(|| name.to_string());
    let question = req_str(rec, "question")?;
    s.question = match opt_text(rec, "hint").filter(|h| !h.trim().is_empty() && h != "nan") {
        Some(h) => format!("Hint: {h}\n{question}"),
        None => question.to_string(),
    };
    let texts: Vec<String> = ('A'..='H').map_while(|l| opt_text(rec, &l.to_string()).filter(|t| t != "nan")).collect();
    s.set_options(texts).map_err(|e| FieldError::new("A", e))?;
    if let Some(answer) = opt_text(rec, "answer") {
        let letter = super::letter_of(&answer);
        match letter {
            Some(l) if s.set_gold_letter(l) => {}
            _ if !s.options.is_empty() => {
                if !s.set_gold_text(&answer) {
                    return Err(FieldError::new("answer", format!("`{answer}` is neither an option letter nor an option's text")));
                }
            }
            _ => s.gold_text = Some(answer),
        }
    }
    s.images = images(rec, by_index, root)?;
    for k in ["l2-category", "split", "source"] {
        if let Some(v) = opt_text(rec, k) {
            s.metadata.insert(k.into(), v.into());
        }
    }
    s.split = opt_text(rec, "split");
    Ok(s)
}
