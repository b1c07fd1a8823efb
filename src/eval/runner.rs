//! The evaluation loop: every (sample, rotation) not yet in the run is
//! prepared, asked in batches, and appended as a record. A sample that
//! cannot be prepared or asked becomes an error record; the run goes on.

use super::judge::{extract, judge};
use super::prompt::answer_labels;
use super::variant::rotate;
use super::{PromptTemplate, Variant};
use crate::data::load_images;
use crate::data::Sample;
use crate::engine::memory::DoesNotFit;
use crate::engine::{Engine, Flow, GenerateOptions, OptionScores, PreparedPrompt};
use crate::runs::{Record, RunMeta, RunStore};
use crate::spatial::extract::{ExtractRule, Extraction};
use crate::spatial::Verdict;
use anyhow::Result;
use std::time::Instant;

/// How many tokens generate-mode evaluation allows by default: lmms-eval's
/// and ViewSpatial's budget for a multiple-choice answer.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 16;

#[derive(Clone, Debug, PartialEq)]
pub enum EvalMode {
    /// One forward pass: the best-scoring option letter.
    Score,
    /// Generate, then extract the answer from the text.
    Generate { max_new_tokens: usize },
    /// `n` sampled answers per question from one shared prefill, each read
    /// and recorded like a generated one.
    Sample(SampleSpec),
}

/// `--samples N --temperature T --top-p P --seed S`.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleSpec {
    pub n: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

impl SampleSpec {
    /// The random stream base of one question: the run's seed and the
    /// question's key, so a sample does not depend on the batch or order.
    pub fn seed_for(&self, key: &str) -> u64 {
        use sha2::{Digest, Sha256};
        let h = Sha256::new().chain_update(self.seed.to_le_bytes()).chain_update(key.as_bytes()).finalize();
        u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
    }
}

/// How answers are read, as `--mode` and `--eval-mode` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeKind {
    /// One forward pass: option log-probabilities.
    Score,
    /// Generate text, then extract the answer.
    Generate,
}

impl ModeKind {
    /// How a checkpoint that answers `with` is asked by default.
    pub fn for_answers(with: crate::config::AnswersWith) -> ModeKind {
        match with {
            crate::config::AnswersWith::Letters => ModeKind::Score,
            crate::config::AnswersWith::Words => ModeKind::Generate,
        }
    }

    pub fn with_max_new_tokens(self, max_new_tokens: usize) -> EvalMode {
        match self {
            ModeKind::Score => EvalMode::Score,
            ModeKind::Generate => EvalMode::Generate { max_new_tokens },
        }
    }
}

impl EvalMode {
    pub fn describe(&self) -> String {
        match self {
            EvalMode::Score => "score".into(),
            EvalMode::Generate { max_new_tokens } => format!("generate(greedy, max_new_tokens={max_new_tokens})"),
            EvalMode::Sample(s) => format!(
                "sample(n={}, temperature={}, top_p={}, seed={}, max_new_tokens={})",
                s.n, s.temperature, s.top_p, s.seed, s.max_new_tokens
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EvalConfig {
    pub prompt: PromptTemplate,
    pub mode: EvalMode,
    pub variant: Variant,
    pub circular: bool,
    pub batch: usize,
}

impl EvalConfig {
    /// The run.json of a run of this config starting now: the prompt and the
    /// decoding as they decide whether a run may be resumed.
    pub fn run_meta(&self, name: &str, model: &std::path::Path, data_spec: &str, variant: &str, device: tch::Device) -> Result<RunMeta> {
        let prompt = format!("{} :: {}", self.prompt.name, self.prompt.template);
        RunMeta::new(name, model, data_spec, prompt, self.mode.describe(), variant, self.circular, &crate::engine::device::name(device))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalSummary {
    pub keys: usize,
    pub skipped: usize,
    pub written: usize,
    pub errors: usize,
    /// The progress callback asked to stop before every key was done.
    pub stopped: bool,
}

#[derive(Clone)]
struct Item {
    key: EvalKey,
    sample: Sample,
    prompt: PreparedPrompt,
    /// The labels scored at the answer position.
    labels: Vec<String>,
    details: serde_json::Map<String, serde_json::Value>,
}

/// One record to be written: its key, the sample's index, the rotation and,
/// when sampling, which of the question's answers it is.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalKey {
    pub key: String,
    pub index: usize,
    pub rotation: usize,
    pub sample: Option<usize>,
}

/// Every key of `samples` under `cfg`: one per sample, per rotation when
/// circular, per sampled answer (`id#sJ`) when sampling.
pub fn keys(samples: &[Sample], cfg: &EvalConfig) -> Vec<EvalKey> {
    let mut out = Vec::new();
    for (index, s) in samples.iter().enumerate() {
        if let EvalMode::Sample(spec) = &cfg.mode {
            out.extend((0..spec.n).map(|j| EvalKey { key: format!("{}#s{j}", s.id), index, rotation: 0, sample: Some(j) }));
            continue;
        }
        let n = if cfg.circular { s.options.len().max(1) } else { 1 };
        for k in 0..n {
            let key = if cfg.circular { format!("{}#r{k}", s.id) } else { s.id.clone() };
            out.push(EvalKey { key, index, rotation: k, sample: None });
        }
    }
    out
}

fn error_record(key: &EvalKey, s: &Sample, err: &anyhow::Error) -> Record {
    Record {
        key: key.key.clone(),
        id: s.id.clone(),
        category: s.category.clone(),
        rotation: key.rotation,
        sample: key.sample,
        gold_letter: s.gold_letter.map(|l| l.to_string()),
        gold_direction: s.gold_direction,
        rule: ExtractRule::Unparsed,
        verdict: Verdict::Failed(format!("{err:#}")),
        ..Default::default()
    }
}

/// Refuses sampled answers that cannot fit on the device before a run is
/// created or resumed: the first question that can be prepared gives the
/// prompt's length (the others are alike; each is checked again when asked).
pub fn preflight(engine: &Engine, samples: &[Sample], cfg: &EvalConfig) -> Result<()> {
    let EvalMode::Sample(spec) = &cfg.mode else { return Ok(()) };
    let first = samples.iter().take(8).enumerate().find_map(|(index, s)| {
        let key = EvalKey { key: s.id.clone(), index, rotation: 0, sample: Some(0) };
        prepare(engine, cfg, &key, s).ok()
    });
    if let Some(item) = first {
        engine.check_sampling_fits(spec.n, item.prompt.len() + spec.max_new_tokens)?;
    }
    Ok(())
}

fn prepare(engine: &Engine, cfg: &EvalConfig, key: &EvalKey, s: &Sample) -> Result<Item> {
    prepare_asking(engine, cfg, key, s, None)
}

/// `prepare`, with the question optionally replaced by one the user typed.
fn prepare_asking(engine: &Engine, cfg: &EvalConfig, key: &EvalKey, s: &Sample, question: Option<&str>) -> Result<Item> {
    let mut rotated = rotate(s, key.rotation);
    if let Some(q) = question {
        rotated.question = q.to_string();
    }
    let images = load_images(&rotated)?;
    let (sample, images, details) = cfg.variant.apply(&rotated, images)?;
    let text = cfg.prompt.render(&sample.question, &sample);
    let prompt = engine.processor.prepare(&images, &text, &cfg.prompt.resize)?;
    // Generation reads its answer from the text, so a question with nothing
    // to score (answered in words) is only refused in score mode.
    let labels = match answer_labels(&sample) {
        Ok(labels) => labels,
        Err(e) if cfg.mode == EvalMode::Score => return Err(e),
        Err(_) => Vec::new(),
    };
    Ok(Item { key: key.clone(), sample, prompt, labels, details })
}

fn finish_record(
    item: &Item,
    ex: Extraction,
    raw: String,
    logprobs: Vec<(String, f32)>,
    latency_ms: f64,
    adapt: Option<crate::engine::intervene::AdaptReport>,
) -> Record {
    let s = &item.sample;
    let judged = judge(s, &ex);
    let mut variant = item.details.clone();
    if let Some(a) = adapt {
        variant.insert("alpha".into(), a.alpha.into());
        if let Some(c) = a.confidence {
            variant.insert("confidence".into(), (c as f64).into());
        }
        if let Some(b) = a.branch {
            variant.insert("branch".into(), format!("{b:?}").into());
        }
    }
    Record {
        key: item.key.key.clone(),
        id: s.id.clone(),
        category: s.category.clone(),
        rotation: item.key.rotation,
        sample: item.key.sample,
        gold_letter: s.gold_letter.map(|l| l.to_string()).or_else(|| s.gold_text.clone()),
        gold_direction: s.gold_direction,
        predicted_letter: judged.predicted,
        predicted_direction: judged.predicted_direction,
        raw_output: raw,
        rule: ex.rule,
        option_logprobs: logprobs,
        verdict: judged.verdict,
        latency_ms,
        variant,
    }
}

/// The records of generated answers, each read and judged.
fn generated_records(cfg: &EvalConfig, items: &[Item], gens: Vec<crate::engine::Generation>, ms: f64) -> Vec<Record> {
    items
        .iter()
        .zip(gens)
        .map(|(it, g)| finish_record(it, extract(&cfg.prompt, &it.sample, &g.text), g.text.clone(), vec![], ms, g.adapt.clone()))
        .collect()
}

/// Asks one batch; on an engine error, asks its items one by one so only the bad one fails.
fn ask(engine: &Engine, cfg: &EvalConfig, items: &[Item]) -> Vec<Result<Record>> {
    if items.is_empty() {
        return vec![];
    }
    let start = Instant::now();
    let prompts: Vec<&PreparedPrompt> = items.iter().map(|i| &i.prompt).collect();
    let intervention = cfg.variant.intervention();
    // tch turns libtorch errors into panics; one bad input must not end the run.
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<Vec<Record>> {
        let per = |n: usize| start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        match &cfg.mode {
            EvalMode::Score => {
                let labels: Vec<Vec<String>> = items.iter().map(|i| i.labels.clone()).collect();
                let scores = engine.score_options_with(&prompts, &labels, &intervention)?;
                let ms = per(items.len());
                Ok(items
                    .iter()
                    .zip(scores)
                    .map(|(it, sc)| {
                        let ex = Extraction::scored(sc.best_label());
                        let lps = sc.labels.iter().cloned().zip(sc.logprobs.iter().copied()).collect();
                        let ex = if it.sample.options.is_empty() {
                            Extraction { answer: ex.answer.map(|a| a.to_lowercase()), ..ex }
                        } else {
                            ex
                        };
                        finish_record(it, ex, String::new(), lps, ms, sc.adapt.clone())
                    })
                    .collect())
            }
            EvalMode::Generate { max_new_tokens } => {
                let opts = GenerateOptions {
                    max_new_tokens: *max_new_tokens,
                    first_token_top_k: 0,
                    intervention: intervention.clone(),
                    ..Default::default()
                };
                let gens = engine.generate(&prompts, &opts, &mut |_| Flow::Continue)?;
                Ok(generated_records(cfg, items, gens, per(items.len())))
            }
            // The items are the missing samples of one question: one prefill, one row each.
            EvalMode::Sample(spec) => {
                let opts = GenerateOptions {
                    max_new_tokens: spec.max_new_tokens,
                    first_token_top_k: 0,
                    intervention: intervention.clone(),
                    sampling: Some(crate::engine::Sampling {
                        temperature: spec.temperature,
                        top_p: spec.top_p,
                        seed: spec.seed_for(&items[0].sample.id),
                    }),
                    ..Default::default()
                };
                let streams: Vec<u64> = items.iter().map(|it| it.key.sample.unwrap_or(0) as u64).collect();
                let gens = engine.generate_shared(&items[0].prompt, &streams, &opts, &mut |_| Flow::Continue)?;
                Ok(generated_records(cfg, items, gens, per(items.len())))
            }
        }
    }));
    let batch = attempt.unwrap_or_else(|p| Err(anyhow::anyhow!(crate::engine::panic_message(p.as_ref()))));
    match batch {
        Ok(records) => records.into_iter().map(Ok).collect(),
        Err(e) if items.len() == 1 || e.is::<DoesNotFit>() => vec![Err(e)],
        Err(_) => items.iter().flat_map(|it| ask(engine, cfg, std::slice::from_ref(it))).collect(),
    }
}

/// Runs every key not yet in `store`. `progress(done, total)` is called after
/// each batch; returning `Flow::Stop` ends the run there (what is written stays).
pub fn run(
    engine: &Engine,
    samples: &[Sample],
    store: &mut RunStore,
    cfg: &EvalConfig,
    progress: &mut dyn FnMut(usize, usize) -> Flow,
) -> Result<EvalSummary> {
    let all = keys(samples, cfg);
    let todo: Vec<&EvalKey> = all.iter().filter(|k| !store.done.contains(&k.key)).collect();
    let mut summary = EvalSummary { keys: all.len(), skipped: all.len() - todo.len(), ..Default::default() };
    let mut done = 0;
    // Sampling asks one question's missing samples at a time (they share a
    // prefill); otherwise `--batch` questions at a time.
    let chunks: Vec<&[&EvalKey]> = match &cfg.mode {
        EvalMode::Sample(_) => todo.chunk_by(|a, b| a.index == b.index).collect(),
        _ => todo.chunks(cfg.batch.max(1)).collect(),
    };
    for chunk in chunks {
        let mut items = Vec::new();
        let mut prepared: Option<((usize, usize), Result<Item, String>)> = None;
        for key in chunk {
            let s = &samples[key.index];
            // The sampled answers of one question (same sample, same
            // rotation) share its prompt: prepare it once.
            let at = (key.index, key.rotation);
            let item = match &prepared {
                Some((p, Ok(first))) if *p == at => Ok(Item { key: (*key).clone(), ..first.clone() }),
                Some((p, Err(e))) if *p == at => Err(anyhow::anyhow!("{e}")),
                _ => {
                    let item = prepare(engine, cfg, key, s);
                    prepared = Some((at, item.as_ref().map(Item::clone).map_err(|e| format!("{e:#}"))));
                    item
                }
            };
            match item {
                Ok(item) => items.push(item),
                Err(e) => {
                    store.append(&error_record(key, s, &e))?;
                    summary.errors += 1;
                    summary.written += 1;
                }
            }
        }
        for (item, result) in items.iter().zip(ask(engine, cfg, &items)) {
            // Too large for the device is the request's fault, not the sample's: the run ends.
            let record = match result {
                Err(e) if e.is::<DoesNotFit>() => return Err(e),
                r => r.unwrap_or_else(|e| error_record(&item.key, &item.sample, &e)),
            };
            summary.errors += record.failure().is_some() as usize;
            store.append(&record)?;
            summary.written += 1;
        }
        done += chunk.len();
        if progress(done, todo.len()) == Flow::Stop {
            summary.stopped = done < todo.len();
            break;
        }
    }
    Ok(summary)
}

/// What a live ask reports as it goes.
pub struct LiveSink<'a> {
    /// The sample exactly as the model is asked it: after the variant (a
    /// mirrored sample's options and gold) and the typed question.
    pub asked: &'a mut dyn FnMut(&Sample),
    pub scores: &'a mut dyn FnMut(&OptionScores),
    pub token: &'a mut dyn FnMut(&str) -> Flow,
}

/// One sample asked live, as the TUI does: the sample as asked, the option
/// scores, then a generated answer streamed token by token, read with the
/// same extraction and judged like an eval record. `Ok(None)` when the
/// token callback stopped it.
pub fn ask_live(engine: &Engine, sample: &Sample, cfg: &EvalConfig, question: Option<&str>, sink: LiveSink) -> Result<Option<Record>> {
    let LiveSink { asked: on_asked, scores: on_scores, token: on_token } = sink;
    let start = Instant::now();
    let key = EvalKey { key: sample.id.clone(), index: 0, rotation: 0, sample: None };
    let item = prepare_asking(engine, cfg, &key, sample, question)?;
    on_asked(&item.sample);
    let intervention = cfg.variant.intervention();
    // A question answered in words has no options to score: only its text.
    // A model that answers in words (generate mode) has its options' words
    // scored, whole, as it would say them; letters only when it answers with letters.
    let scores = match (&cfg.mode, item.labels.is_empty()) {
        (_, true) => None,
        (EvalMode::Generate { .. }, false) if !item.sample.options.is_empty() => {
            let words: Vec<String> = item.sample.options.iter().map(|o| o.text.clone()).collect();
            Some(engine.score_phrases(&item.prompt, &item.labels, &words, &intervention)?)
        }
        _ => Some(engine.score_options_with(&[&item.prompt], std::slice::from_ref(&item.labels), &intervention)?.remove(0)),
    };
    if let Some(scores) = &scores {
        on_scores(scores);
    }
    let max_new_tokens = match &cfg.mode {
        EvalMode::Generate { max_new_tokens } => *max_new_tokens,
        EvalMode::Sample(s) => s.max_new_tokens,
        EvalMode::Score => 0,
    };
    let mut stopped = false;
    let text = if max_new_tokens == 0 {
        String::new()
    } else {
        let opts = GenerateOptions { max_new_tokens, first_token_top_k: 0, intervention: intervention.clone(), ..Default::default() };
        let gens = engine.generate(&[&item.prompt], &opts, &mut |step| {
            let flow = if step.delta.is_empty() { Flow::Continue } else { on_token(step.delta) };
            stopped |= flow == Flow::Stop;
            flow
        })?;
        gens.into_iter().next().map(|g| g.text).unwrap_or_default()
    };
    if stopped {
        return Ok(None);
    }
    let logprobs: Vec<(String, f32)> = scores.iter().flat_map(|sc| sc.labels.iter().cloned().zip(sc.logprobs.iter().copied())).collect();
    let ex = match &scores {
        Some(sc) if text.is_empty() => Extraction::scored(sc.best_label()),
        _ => extract(&cfg.prompt, &item.sample, &text),
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(Some(finish_record(&item, ex, text, logprobs, ms, scores.and_then(|sc| sc.adapt))))
}
