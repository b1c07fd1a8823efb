//! Chain-of-thought distillation: a teacher writes step-by-step rationales,
//! and only those whose final answer matches gold are kept (keeping noisy
//! rationales is what sank the research's first attempt). The kept ones are
//! a generic-format dataset whose `metadata.target` is the rationale plus
//! answer, which `train` uses as the assistant reply.

use super::example::TARGET_FIELD;
use crate::data::load_images;
use crate::data::loaders::generic::to_json;
use crate::data::{ImageSource, Sample};
use crate::engine::{Engine, Flow, GenerateOptions};
use crate::eval::PromptTemplate;
use crate::spatial::extract::extract_letter;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_INSTRUCTION: &str = "Let's think step by step to determine the spatial relationship between the objects from the \
stated perspective, then give the final answer as \"Answer: \" followed by the option's letter.";
pub const DATA_FILE: &str = "distilled.jsonl";
pub const REPORT_FILE: &str = "distill_report.json";
/// The prompt template the student should be trained and evaluated with.
pub const PROMPT_FILE: &str = "prompt.txt";

#[derive(Clone, Debug)]
pub struct DistillConfig {
    pub instruction: String,
    pub max_new_tokens: usize,
    pub batch: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DistillReport {
    pub asked: usize,
    pub kept: usize,
    /// Rationales whose final answer was another option.
    pub wrong: usize,
    /// Rationales with no readable final answer.
    pub unparsed: usize,
    /// Samples that could not be asked (bad image, no gold letter).
    pub errors: usize,
    pub kept_fraction: f64,
}

/// Whether a rationale ends in the gold option: Some(true) keep, Some(false)
/// wrong answer, None no readable answer.
pub fn judge(sample: &Sample, text: &str) -> Option<bool> {
    let gold = sample.gold_letter?;
    let opts: Vec<(char, String)> = sample.options.iter().map(|o| (o.letter, o.text.clone())).collect();
    let answer = extract_letter(text, &opts).answer?;
    Some(answer.starts_with(gold))
}

fn write_images(sample: &mut Sample, dir: &Path) -> Result<()> {
    for (k, img) in sample.images.iter_mut().enumerate() {
        let path = match img {
            ImageSource::Bytes { bytes, name } => {
                let file =
                    dir.join("images").join(name.clone().unwrap_or_else(|| format!("{}_{k}.png", sample.id.replace(['/', ' '], "_"))));
                std::fs::create_dir_all(dir.join("images"))?;
                std::fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
                file
            }
            ImageSource::Path(p) => std::path::absolute(&*p).unwrap_or(p.clone()),
        };
        *img = ImageSource::Path(path);
    }
    Ok(())
}

/// Asks the teacher about every sample not yet in `out/distilled.jsonl`,
/// appending kept examples line by line (synced), so a killed run resumes.
pub fn distill(
    engine: &Engine,
    samples: &[Sample],
    cfg: &DistillConfig,
    out: &Path,
    on_progress: &mut dyn FnMut(usize, usize, &DistillReport) -> Flow,
) -> Result<(DistillReport, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let data_path = out.join(DATA_FILE);
    let report_path = out.join(REPORT_FILE);
    let mut report: DistillReport =
        std::fs::read_to_string(&report_path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let done: HashSet<String> = std::fs::read_to_string(out.join("asked.txt")).unwrap_or_default().lines().map(str::to_string).collect();
    if done.is_empty() {
        report = DistillReport::default();
    }
    let template = PromptTemplate {
        name: "distill".into(),
        template: format!("{{question}}\n{{choices}}\n{}", cfg.instruction),
        ..PromptTemplate::default_prompt()
    };
    crate::fsutil::atomic_write(&out.join(PROMPT_FILE), template.template.as_bytes())?;
    let open = |p: &Path| std::fs::OpenOptions::new().create(true).append(true).open(p).with_context(|| format!("opening {}", p.display()));
    let mut data = open(&data_path)?;
    let asked_path = out.join("asked.txt");
    let mut asked_log = open(&asked_path)?;
    let wrote = |p: &Path| format!("writing {}", p.display());
    let todo: Vec<&Sample> = samples.iter().filter(|s| !done.contains(&s.id)).collect();
    let opts = GenerateOptions { max_new_tokens: cfg.max_new_tokens, first_token_top_k: 0, ..Default::default() };
    for (k, chunk) in todo.chunks(cfg.batch.max(1)).enumerate() {
        let mut prepared = Vec::new();
        for s in chunk {
            let p = (|| -> Result<_> {
                anyhow::ensure!(s.gold_letter.is_some(), "no gold option letter");
                let images = load_images(s)?;
                engine.processor.prepare(&images, &template.render(&s.question, s), &template.resize)
            })();
            match p {
                Ok(p) => prepared.push((*s, p)),
                Err(_) => {
                    report.errors += 1;
                    writeln!(asked_log, "{}", s.id).with_context(|| wrote(&asked_path))?;
                }
            }
        }
        let prompts: Vec<_> = prepared.iter().map(|(_, p)| p).collect();
        let gens = if prompts.is_empty() { Vec::new() } else { engine.generate(&prompts, &opts, &mut |_| Flow::Continue)? };
        for ((s, _), g) in prepared.iter().zip(gens) {
            report.asked += 1;
            match judge(s, &g.text) {
                Some(true) => {
                    let mut kept = (*s).clone();
                    kept.metadata.insert(TARGET_FIELD.into(), g.text.trim().to_string().into());
                    write_images(&mut kept, out)?;
                    writeln!(data, "{}", to_json(&kept, out)).with_context(|| wrote(&data_path))?;
                    report.kept += 1;
                }
                Some(false) => report.wrong += 1,
                None => report.unparsed += 1,
            }
            writeln!(asked_log, "{}", s.id).with_context(|| wrote(&asked_path))?;
        }
        data.sync_data().with_context(|| wrote(&data_path))?;
        asked_log.sync_data().with_context(|| wrote(&asked_path))?;
        report.kept_fraction = report.kept as f64 / report.asked.max(1) as f64;
        crate::fsutil::atomic_write(&report_path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        if on_progress(((k + 1) * cfg.batch.max(1)).min(todo.len()), todo.len(), &report) == Flow::Stop {
            break;
        }
    }
    Ok((report, data_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_rationales_ending_in_gold() {
        let mut s = Sample::new("1", "t");
        s.set_options(["left", "right", "front", "behind"]).unwrap();
        s.set_gold_letter('B');
        assert_eq!(judge(&s, "The cup is to the right of the plate.\nAnswer: B"), Some(true));
        assert_eq!(judge(&s, "From the camera it is on the left.\nAnswer: A"), Some(false));
        assert_eq!(judge(&s, "I cannot tell."), None);
        let mut no_gold = s.clone();
        no_gold.gold_letter = None;
        assert_eq!(judge(&no_gold, "Answer: B"), None);
    }
}
