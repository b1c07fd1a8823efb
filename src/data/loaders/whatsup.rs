//! WhatsUp: `controlled_*_dataset.json` (`{image_path, caption_options[4]}`,
//! caption 0 correct) and `{coco,vg}_qa_{one,two}_obj.json`
//! (`[image_id, true_caption, false_caption]`).

use super::{file_stem, req, seeded_shuffle, str_list, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::resolve;
use crate::data::read::read_json_list;
use crate::data::sample::{Perspective, Sample};
use crate::data::table::{Cell, Record};
use crate::spatial::parse_relation;
use std::path::Path;

pub const QUESTION: &str = "Which caption describes the image correctly?";

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = read_json_list(&ctx.path)?;
    let stem = file_stem(&ctx.path);
    Ok(super::build_samples(ctx, &records, |r, i, root, dataset| sample(r, i, root, dataset, &stem)))
}

/// Builds a caption-choice sample; the true caption is first in `captions`.
pub fn caption_sample(id: String, dataset: &str, category: &str, captions: Vec<String>) -> FieldResult<Sample> {
    let mut s = Sample::new(id, dataset);
    s.category = category.to_string();
    s.perspective = Perspective::Camera;
    s.question = QUESTION.to_string();
    let gold = captions.first().cloned().ok_or_else(|| FieldError::new("caption_options", "no captions"))?;
    let mut shuffled = captions;
    seeded_shuffle(&mut shuffled, &s.id);
    s.set_options(shuffled).map_err(|e| FieldError::new("caption_options", e))?;
    for o in &mut s.options {
        o.direction = parse_relation(&o.text);
    }
    s.set_gold_text(&gold);
    Ok(s)
}

fn sample(rec: &Record, i: usize, root: &Path, dataset: &str, stem: &str) -> FieldResult<Sample> {
    if let Some(Cell::List(items)) = rec.get("") {
        // [image_id, true_caption, false_caption]
        let text =
            |k: usize, what: &str| items.get(k).and_then(Cell::to_text).ok_or_else(|| FieldError::new(what, format!("item {k} missing")));
        let image_id = text(0, "image_id")?;
        let captions = vec![text(1, "true_caption")?, text(2, "false_caption")?];
        let mut s = caption_sample(format!("{stem}/{i}"), dataset, stem, captions)?;
        let rel = if stem.starts_with("coco") {
            let n: u64 = image_id.parse().map_err(|_| FieldError::new("image_id", format!("`{image_id}` is not a number")))?;
            format!("val2017/{n:012}.jpg")
        } else {
            format!("vg_images/{image_id}.jpg")
        };
        s.images = vec![resolve(root, &rel, &[], &["data"])];
        return Ok(s);
    }
    let image = req(rec, "image_path")?.as_str().ok_or_else(|| FieldError::new("image_path", "expected text"))?;
    let captions = str_list(rec, "caption_options")?;
    if captions.len() < 2 {
        return Err(FieldError::new("caption_options", "fewer than two captions"));
    }
    let mut s = caption_sample(format!("{stem}/{i}"), dataset, stem, captions)?;
    s.images = vec![resolve(root, image, &["data/", "./data/"], &[])];
    Ok(s)
}
