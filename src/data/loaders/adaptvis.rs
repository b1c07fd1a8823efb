//! AdaptVis prompt files: `prompts/<Subset>_with_answer_{four,six}_options.jsonl`
//! with `{id, question: "<image>\nUSER: ... Answer with left, right, on or
//! under.\nASSISTANT:", answer: ["Left"]}`. `id` indexes the matching WhatsUp
//! JSON, which gives the image. The LLaVA wrapper is stripped so the engine
//! can rebuild the prompt with Qwen's chat template.
//!
//! `prompts/VSR_with_answer.jsonl` is the VSR subset: `id` is a line index
//! into VSR's zeroshot `test.jsonl` (`#vsr=PATH`), and the answer is a
//! relation phrase ("behind", "on top of"), asked without options and read
//! in generate mode by relation word.

use super::{file_stem, req, str_list, LoadCtx};
use crate::data::error::{DataError, FieldError, FieldResult};
use crate::data::images::resolve;
use crate::data::read::{read_json_list, read_jsonl};
use crate::data::sample::{AnswerStyle, ImageSource, Perspective, Sample};
use crate::data::table::{Cell, Record};
use std::path::{Path, PathBuf};

/// Subset name (file prefix) -> WhatsUp annotation file.
fn whatsup_file_for(subset: &str) -> Option<&'static str> {
    Some(match subset.to_ascii_lowercase().as_str() {
        "controlled_images_a" | "controlled_a" => "controlled_images_dataset.json",
        "controlled_images_b" | "controlled_b" => "controlled_clevr_dataset.json",
        "coco_qa_one_obj" | "coco_one_obj" => "coco_qa_one_obj.json",
        "coco_qa_two_obj" | "coco_two_obj" => "coco_qa_two_obj.json",
        "vg_qa_one_obj" | "vg_one_obj" => "vg_qa_one_obj.json",
        "vg_qa_two_obj" | "vg_two_obj" => "vg_qa_two_obj.json",
        _ => return None,
    })
}

fn find_whatsup(ctx: &LoadCtx, subset: &str) -> Result<PathBuf, DataError> {
    if let Some(p) = ctx.spec.option("whatsup") {
        return Ok(PathBuf::from(p));
    }
    let name = whatsup_file_for(subset).ok_or_else(|| DataError::Other {
        path: ctx.path.clone(),
        message: format!("cannot tell which WhatsUp file subset `{subset}` belongs to; pass #whatsup=PATH"),
    })?;
    find_beside(ctx, &[name], &format!("the matching WhatsUp file {name}"), "whatsup")
}

/// The first of `names` that exists beside the prompt file, above it, in
/// `../data` or under the root; else an error saying where it looked and
/// which spec option names the file.
fn find_beside(ctx: &LoadCtx, names: &[&str], what: &str, option: &str) -> Result<PathBuf, DataError> {
    let dir = ctx.origin.parent().unwrap_or(Path::new("."));
    let mut tried = Vec::new();
    for base in [dir.to_path_buf(), dir.join(".."), dir.join("../data"), ctx.root.clone(), ctx.root.join("data")] {
        for name in names {
            let cand = base.join(name);
            if cand.is_file() {
                return Ok(cand);
            }
            tried.push(cand.display().to_string());
        }
    }
    Err(DataError::Other {
        path: ctx.path.clone(),
        message: format!("{what} was not found (tried {}); pass #{option}=PATH", tried.join(", ")),
    })
}

/// Strips "<image>\nUSER: " and "\nASSISTANT:" from a LLaVA-style prompt.
pub fn strip_llava(prompt: &str) -> String {
    let mut q = prompt.trim();
    q = q.trim_start_matches("<image>").trim_start();
    q = q.strip_prefix("USER:").unwrap_or(q).trim_start();
    q = q.trim_start_matches("<image>").trim_start();
    if let Some(i) = q.rfind("ASSISTANT:") {
        q = q[..i].trim_end();
    }
    q.to_string()
}

/// "Answer with left, right, on or under." -> [left, right, on, under].
pub fn answer_words(question: &str) -> Option<Vec<String>> {
    let lower = question.to_lowercase();
    let start = lower.rfind("answer with")? + "answer with".len();
    let tail = &lower[start..];
    let tail = tail.split(['.', '?', '\n']).next()?;
    let words: Vec<String> = tail
        .replace(" or ", ",")
        .replace(" and ", ",")
        .split(',')
        .map(|w| w.trim().trim_matches('"').to_string())
        .filter(|w| !w.is_empty() && w != "one of")
        .collect();
    (words.len() >= 2).then_some(words)
}

/// VSR's zeroshot test split, which the VSR prompt file's ids index:
/// `#vsr=PATH`, else `zeroshot/test.jsonl` (or `test.jsonl`) near the prompts.
fn find_vsr(ctx: &LoadCtx) -> Result<PathBuf, DataError> {
    if let Some(p) = ctx.spec.option("vsr") {
        return Ok(PathBuf::from(p));
    }
    find_beside(
        ctx,
        &["zeroshot/test.jsonl", "vsr/zeroshot/test.jsonl", "data/splits/zeroshot/test.jsonl"],
        "VSR's zeroshot test.jsonl",
        "vsr",
    )
}

fn load_vsr(ctx: &mut LoadCtx, records: &[Record]) -> Result<Vec<Sample>, DataError> {
    let vsr_path = find_vsr(ctx)?;
    let vsr = read_jsonl(&vsr_path, &mut ctx.issues)?;
    // COCO file names resolve under `#root=` (your COCO 2017 images), else beside the VSR file.
    let root = if ctx.spec.root.is_some() { ctx.root.clone() } else { vsr_path.parent().unwrap_or(Path::new(".")).to_path_buf() };
    let dataset = ctx.dataset.clone();
    Ok(records.iter().filter_map(|rec| ctx.each(rec, |r| vsr_sample(r, &vsr, &root, &dataset))).collect())
}

fn vsr_sample(rec: &Record, vsr: &[Record], root: &Path, dataset: &str) -> FieldResult<Sample> {
    let id = req(rec, "id")?.as_i64().ok_or_else(|| FieldError::new("id", "expected an integer"))?;
    let entry = usize::try_from(id)
        .ok()
        .and_then(|i| vsr.get(i))
        .ok_or_else(|| FieldError::new("id", format!("{id} is outside VSR's test.jsonl ({} lines)", vsr.len())))?;
    let mut s = Sample::new(format!("VSR/{id}"), dataset);
    s.answer_style = AnswerStyle::Relation;
    s.question = strip_llava(super::req_str(rec, "question")?);
    let gold = str_list(rec, "answer")?.into_iter().next().ok_or_else(|| FieldError::new("answer", "empty"))?;
    s.category = gold.clone();
    s.gold_direction = crate::spatial::parse_relation(&gold);
    s.gold_text = Some(gold);
    let image = entry.get("image").and_then(Cell::as_str).ok_or_else(|| FieldError::new("id", "the VSR line has no `image`"))?;
    s.images = vec![resolve(root, image, &[], &["images", "train2017", "val2017", "trainval2017"])];
    if let Some(rel) = entry.get("relation").and_then(Cell::as_str) {
        s.metadata.insert("vsr_relation".into(), rel.into());
    }
    Ok(s)
}

pub fn load(ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    let records = read_jsonl(&ctx.path, &mut ctx.issues)?;
    let stem = file_stem(&ctx.path);
    let subset = stem.split("_with_answer").next().unwrap_or(&stem).to_string();
    if subset.eq_ignore_ascii_case("vsr") {
        return load_vsr(ctx, &records);
    }
    let wu_path = find_whatsup(ctx, &subset)?;
    let whatsup = read_json_list(&wu_path)?;
    let wu_root = if ctx.spec.root.is_some() { ctx.root.clone() } else { wu_path.parent().unwrap_or(Path::new(".")).to_path_buf() };
    let mut out = Vec::new();
    for rec in &records {
        let dataset = ctx.dataset.clone();
        let built = ctx.each(rec, |r| sample(r, &whatsup, &wu_root, &dataset, &subset));
        out.extend(built);
    }
    Ok(out)
}

fn image_of(entry: &Record, root: &Path, subset: &str) -> FieldResult<ImageSource> {
    if let Some(Cell::List(items)) = entry.get("") {
        let id = items.first().and_then(Cell::to_text).ok_or_else(|| FieldError::new("id", "WhatsUp entry has no image id"))?;
        let rel = if subset.to_lowercase().starts_with("coco") {
            format!("val2017/{:012}.jpg", id.parse::<u64>().unwrap_or(0))
        } else {
            format!("vg_images/{id}.jpg")
        };
        return Ok(resolve(root, &rel, &[], &["data"]));
    }
    let p = entry.get("image_path").and_then(Cell::as_str).ok_or_else(|| FieldError::new("id", "WhatsUp entry has no image_path"))?;
    Ok(resolve(root, p, &["data/", "./data/"], &[]))
}

fn sample(rec: &Record, whatsup: &[Record], root: &Path, dataset: &str, subset: &str) -> FieldResult<Sample> {
    let id = req(rec, "id")?.as_i64().ok_or_else(|| FieldError::new("id", "expected an integer"))?;
    let entry = usize::try_from(id)
        .ok()
        .and_then(|i| whatsup.get(i))
        .ok_or_else(|| FieldError::new("id", format!("{id} is outside the WhatsUp file ({} entries)", whatsup.len())))?;
    let mut s = Sample::new(format!("{subset}/{id}"), dataset);
    s.category = subset.to_string();
    s.perspective = Perspective::Camera;
    s.answer_style = AnswerStyle::Word;
    s.question = strip_llava(super::req_str(rec, "question")?);
    let words =
        answer_words(&s.question).ok_or_else(|| FieldError::new("question", "no `Answer with a, b or c` clause to take options from"))?;
    s.set_options(words).map_err(|e| FieldError::new("question", e))?;
    let answers = str_list(rec, "answer")?;
    let gold = answers.first().ok_or_else(|| FieldError::new("answer", "empty list"))?;
    if !s.set_gold_text(gold) {
        return Err(FieldError::new("answer", format!("`{gold}` is not one of the answer words")));
    }
    s.images = vec![image_of(entry, root, subset)?];
    s.metadata.insert("answers".into(), answers.into());
    Ok(s)
}
