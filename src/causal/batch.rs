//! The experiments over many samples: one row per sample into the run's
//! `causal/<experiment>.jsonl` (`runs::causal_log`). A sample that fails is
//! written as a row with its error and the batch goes on.

use super::ablate::{ablate, blurred_vision, vision_of, Baseline, Region};
use super::decision::{for_sample, AnswerForm};
use super::knockout::{knockout, EdgeGroup, KnockoutSpec};
use super::pass::Pass;
use super::patch::{mirrored_prompt, patch, PositionGroup};
use super::regions::reference_and_target;
use crate::data::{load_images, Sample};
use crate::engine::{Engine, Flow, ResizePolicy};
use crate::eval::mcq_prompt;
use crate::runs::causal_log::{AblateRow, Binding, CausalLog, Experiment, KnockoutRow, LensRow, PatchRow};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// One experiment and its settings, for every sample of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchExperiment {
    Lens,
    Knockout { window: usize, edges: Vec<EdgeGroup> },
    Patch { groups: Vec<PositionGroup> },
    Ablate { regions: Vec<Region>, baseline: Baseline },
}

impl BatchExperiment {
    /// The lens, knockout over every edge group and patching over every
    /// position group: the CLI's batch defaults, so either resumes the other's rows.
    pub fn standard(window: usize) -> Vec<BatchExperiment> {
        vec![
            BatchExperiment::Lens,
            BatchExperiment::Knockout { window, edges: EdgeGroup::ALL.to_vec() },
            BatchExperiment::Patch { groups: PositionGroup::ALL.to_vec() },
        ]
    }

    pub fn experiment(&self) -> Experiment {
        match self {
            BatchExperiment::Lens => Experiment::Lens,
            BatchExperiment::Knockout { .. } => Experiment::Knockout,
            BatchExperiment::Patch { .. } => Experiment::Patch,
            BatchExperiment::Ablate { .. } => Experiment::Ablate,
        }
    }

    /// The settings a resume must match. The model, its adapter and the data
    /// are named as run.json names them (fingerprint, dataset hash), so the
    /// same checkpoint reached by another path resumes, and rows of another
    /// model (or of the base model without its adapter) are never mixed in.
    pub fn settings(&self, bound: &Binding, form: AnswerForm) -> serde_json::Value {
        let mut s = serde_json::json!({
            "model_fingerprint": bound.model_fingerprint,
            "adapter": bound.adapter.as_ref().map(|a| a.display().to_string()),
            "dataset_hash": bound.dataset_hash,
            "answer": form.name(),
        });
        match self {
            BatchExperiment::Lens => {}
            BatchExperiment::Knockout { window, edges } => {
                s["window"] = (*window).into();
                s["edges"] = edges.iter().map(|e| e.name()).collect::<Vec<_>>().into();
            }
            BatchExperiment::Patch { groups } => s["groups"] = groups.iter().map(|g| g.name()).collect::<Vec<_>>().into(),
            BatchExperiment::Ablate { regions, baseline } => {
                s["regions"] = regions.iter().map(|r| r.name()).collect::<Vec<_>>().into();
                s["baseline"] = format!("{baseline:?}").to_lowercase().into();
            }
        }
        s
    }
}

/// One experiment over a batch, as the CLI and the job worker run it.
pub struct BatchSpec<'a> {
    pub experiment: &'a BatchExperiment,
    pub form: AnswerForm,
    pub policy: &'a ResizePolicy,
}

/// What a batch wrote into its run's rows.
pub struct Written {
    pub rows: PathBuf,
    pub written: usize,
    pub failed: usize,
    /// Rows already there (a resume).
    pub before: usize,
    /// What the reader left out of the rows already there, to show.
    pub notes: Vec<String>,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} samples written ({} failed, as rows with their error), {} already there",
            self.rows.display(),
            self.written,
            self.failed,
            self.before
        )
    }
}

/// The one causal batch: bound to the eval run in `run` (refused, naming
/// what differs, when its run.json names another model, adapter or data),
/// resumed, one row for each sample not yet there. `progress(done, total,
/// id)` after each; returning `Flow::Stop` ends the batch, every row so far written.
pub fn session(
    engine: &Engine,
    samples: &[Sample],
    spec: &BatchSpec,
    run: &Path,
    bound: &Binding,
    progress: &mut dyn FnMut(usize, usize, &str) -> Flow,
) -> Result<Written> {
    let experiment = spec.experiment;
    let mut log = CausalLog::open(run, experiment.experiment(), bound, &experiment.settings(bound, spec.form))?;
    let (before, notes) = (log.done_count(), std::mem::take(&mut log.notes));
    let (written, failed) = rows(engine, samples, spec, &mut log, progress)?;
    Ok(Written { rows: experiment.experiment().rows_path(run), written, failed, before, notes })
}

/// Rows for `samples` not yet in `log`; `progress(done, total, id)` after
/// each, which stops the batch (every row so far written) by returning `Flow::Stop`.
fn rows(
    engine: &Engine,
    samples: &[Sample],
    spec: &BatchSpec,
    log: &mut CausalLog,
    progress: &mut dyn FnMut(usize, usize, &str) -> Flow,
) -> Result<(usize, usize)> {
    let (experiment, form, policy) = (spec.experiment, spec.form, spec.policy);
    let (mut written, mut failed) = (0, 0);
    // The mean baseline is over the batch's images (those of the first one's size).
    let mean = match experiment {
        BatchExperiment::Ablate { baseline: Baseline::Mean, .. } => Some(mean_vision(engine, samples, policy)?),
        _ => None,
    };
    for (i, s) in samples.iter().enumerate() {
        if log.is_done(&s.id) {
            continue;
        }
        // libtorch reports some errors as panics: one sample's is its row, not the batch's end.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one(engine, s, experiment, form, policy, mean.as_ref())))
            .unwrap_or_else(|p| Err(anyhow::anyhow!(crate::engine::panic_message(&*p))));
        let row = match result {
            Ok(row) => row,
            Err(e) => {
                failed += 1;
                serde_json::json!({"key": s.id, "error": format!("{e:#}")})
            }
        };
        log.append(&s.id, &row)?;
        written += 1;
        if progress(i + 1, samples.len(), &s.id) == Flow::Stop {
            break;
        }
    }
    Ok((written, failed))
}

/// One sample's row.
/// The mean vision embeddings over the samples whose images give as many
/// tokens as the first readable one's.
fn mean_vision(engine: &Engine, samples: &[Sample], policy: &ResizePolicy) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let (mut sum, mut n): (Option<Tensor>, usize) = (None, 0);
    for s in samples {
        let Ok(images) = load_images(s) else { continue };
        let Ok(prompt) = engine.processor.prepare(&images, &mcq_prompt(&s.question, s), policy) else { continue };
        let v = vision_of(engine, &prompt)?.to_kind(Kind::Float);
        match &sum {
            Some(t) if t.size() != v.size() => continue,
            Some(t) => sum = Some(t + v),
            None => sum = Some(v),
        }
        n += 1;
    }
    let sum = sum.context("no sample's image could be read for the mean baseline")?;
    Ok(sum / n as f64)
}

fn one(
    engine: &Engine,
    s: &Sample,
    experiment: &BatchExperiment,
    form: AnswerForm,
    policy: &ResizePolicy,
    mean: Option<&Tensor>,
) -> Result<serde_json::Value> {
    let images = load_images(s)?;
    let text = mcq_prompt(&s.question, s);
    let prompt = engine.processor.prepare(&images, &text, policy)?;
    let decision = for_sample(engine, s, &prompt, form)?;
    let key = s.id.clone();
    Ok(match experiment {
        BatchExperiment::Lens => {
            let lens = super::lens::logit_lens(engine, &decision, 1)?;
            serde_json::to_value(LensRow {
                key,
                error: None,
                labels: lens.candidates.iter().map(|c| c.label.clone()).collect(),
                curve: lens.curve,
                answer: lens.answer,
                gold: decision.gold,
                decided_at: lens.decided_at,
            })?
        }
        BatchExperiment::Knockout { window, edges } => {
            let pass = Pass::run(engine, &decision.prompt)?;
            let boxed = reference_and_target(s).0;
            let gold = decision.gold.map(|g| decision.candidates[g].token);
            let sweep = knockout(engine, &pass, &KnockoutSpec { window: *window, edges, target: None, gold, boxed })?;
            serde_json::to_value(KnockoutRow {
                key,
                error: None,
                edges: edges.iter().map(|e| e.name().to_string()).collect(),
                base_logprob: sweep.base_logprob,
                logprob: sweep.logprob,
            })?
        }
        BatchExperiment::Patch { groups } => {
            let corrupt = mirrored_prompt(engine, &images, &text, policy)?.extended(&decision.opening);
            let sweep = patch(engine, &decision, &corrupt, groups, reference_and_target(s))?;
            let finite = |v: f64| v.is_finite().then_some(v);
            serde_json::to_value(PatchRow {
                key,
                error: None,
                groups: groups.iter().map(|g| g.name().to_string()).collect(),
                ld_clean: sweep.ld_clean,
                ld_corrupt: sweep.ld_corrupt,
                effect: sweep.effect.iter().map(|row| row.iter().map(|&v| finite(v)).collect()).collect(),
                vision_effect: sweep.vision_effect,
            })?
        }
        BatchExperiment::Ablate { regions, baseline } => {
            let base = match (baseline, mean) {
                (Baseline::Mean, Some(m)) => m.shallow_clone(),
                _ => blurred_vision(engine, &images, &text, policy)?,
            };
            let a = ablate(engine, &decision, &base, regions, reference_and_target(s))?;
            serde_json::to_value(AblateRow {
                key,
                error: None,
                regions: regions.iter().map(|r| r.name().to_string()).collect(),
                labels: decision.candidates.iter().map(|c| c.label.clone()).collect(),
                base: a.base,
                ablated: a.ablated,
            })?
        }
    })
}
