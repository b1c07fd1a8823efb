//! One sample's causal picture as plain numbers: the decision curve, the
//! knockout table and the patching map, for the TUI's Causal pane. Each part
//! is computed in turn and may fail on its own (a sample with no mirrored
//! option still has a lens and a knockout table).

use super::decision::{for_sample, AnswerForm, Decision};
use super::knockout::{knockout, EdgeGroup, KnockoutSpec};
use super::lens::logit_lens_of;
use super::pass::Pass;
use super::patch::{mirrored_prompt, patch_from, PositionGroup};
use super::regions::reference_and_target;
use crate::data::{load_images, Sample};
use crate::engine::{Engine, Flow, ResizePolicy};
use crate::eval::mcq_prompt;
use anyhow::Result;

/// The layer where each candidate's probability stands, and where the answer is settled.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionCurve {
    /// [L][candidates] probabilities at the decision position.
    pub curve: Vec<Vec<f32>>,
    pub answer: Option<usize>,
    pub decided_at: Option<usize>,
}

/// Change in the answer's log-prob with each edge group blocked, per window start.
#[derive(Clone, Debug, PartialEq)]
pub struct KnockoutTable {
    pub window: usize,
    pub edges: Vec<EdgeGroup>,
    /// The token read (the model's answer) as text.
    pub target: String,
    pub base_logprob: f64,
    /// [window starts][edges]: log p blocked - log p unblocked.
    pub delta: Vec<Vec<f64>>,
}

/// Share of LD restored by patching clean into mirrored, per layer and group.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchMap {
    pub groups: Vec<PositionGroup>,
    /// "logit(left) - logit(right)" and how the two were chosen.
    pub contrast: String,
    pub ld_clean: f64,
    pub ld_corrupt: f64,
    /// [groups]: the vision tower's merged output patched (None: no image tokens in the group).
    pub vision: Vec<Option<f64>>,
    /// [L][groups]
    pub effect: Vec<Vec<f64>>,
}

/// Each part: not computed yet (None), computed, or its error.
pub type Part<T> = Option<std::result::Result<T, String>>;

#[derive(Clone, Debug, PartialEq)]
pub struct CausalOverview {
    pub sample_id: String,
    /// The form read (auto resolved to letters or words).
    pub form: AnswerForm,
    /// The teacher-forced opening before the decision ("front-"), as text.
    pub opening: String,
    pub labels: Vec<String>,
    pub gold: Option<usize>,
    pub lens: Part<DecisionCurve>,
    pub knockout: Part<KnockoutTable>,
    pub patch: Part<PatchMap>,
}

fn part<T>(r: Result<T>) -> Part<T> {
    Some(r.map_err(|e| format!("{e:#}")))
}

/// The overview of `sample`, with `shown(&so_far)` after each part; it stops
/// early (returning what it has) when `shown` says so.
pub fn overview(
    engine: &Engine,
    sample: &Sample,
    form: AnswerForm,
    window: usize,
    policy: &ResizePolicy,
    shown: &mut dyn FnMut(&CausalOverview) -> Flow,
) -> Result<CausalOverview> {
    let images = load_images(sample)?;
    let text = mcq_prompt(&sample.question, sample);
    let prompt = engine.processor.prepare(&images, &text, policy)?;
    let decision = if sample.options.is_empty() { Decision::plain(prompt, None) } else { for_sample(engine, sample, &prompt, form)? };
    let tok = &engine.processor.tokenizer;
    let mut o = CausalOverview {
        sample_id: sample.id.clone(),
        form: decision.form,
        opening: tok.decode(&decision.opening, false)?,
        labels: decision.candidates.iter().map(|c| c.label.clone()).collect(),
        gold: decision.gold,
        lens: None,
        knockout: None,
        patch: None,
    };
    // One traced pass of the prompt serves all three experiments.
    let pass = match Pass::run(engine, &decision.prompt) {
        Ok(p) => p,
        Err(e) => {
            let failed = format!("{e:#}");
            (o.lens, o.knockout, o.patch) = (Some(Err(failed.clone())), Some(Err(failed.clone())), Some(Err(failed)));
            shown(&o);
            return Ok(o);
        }
    };
    o.lens = part(logit_lens_of(engine, &decision, &pass, 1).map(|l| {
        if o.labels.is_empty() {
            o.labels = l.candidates.iter().map(|c| c.label.clone()).collect();
        }
        DecisionCurve { curve: l.curve, answer: l.answer, decided_at: l.decided_at }
    }));
    if shown(&o) == Flow::Stop {
        return Ok(o);
    }
    let (reference, target) = reference_and_target(sample);
    o.knockout = part((|| {
        let edges = EdgeGroup::applicable(reference.is_some());
        let gold = decision.gold.map(|g| decision.candidates[g].token);
        let sweep = knockout(engine, &pass, &KnockoutSpec { window, edges: &edges, target: None, gold, boxed: reference })?;
        let delta = sweep.logprob.iter().map(|row| row.iter().map(|lp| lp - sweep.base_logprob).collect()).collect();
        Ok(KnockoutTable { window, edges, target: tok.decode(&[sweep.target], false)?, base_logprob: sweep.base_logprob, delta })
    })());
    if shown(&o) == Flow::Stop {
        return Ok(o);
    }
    o.patch = part((|| {
        if images.is_empty() {
            anyhow::bail!("patching mirrors the image, and this sample has none");
        }
        let corrupt = mirrored_prompt(engine, &images, &text, policy)?.extended(&decision.opening);
        let groups = PositionGroup::applicable(reference.is_some(), target.is_some());
        let sweep = patch_from(engine, &decision, &pass, &corrupt, &groups, (reference, target))?;
        let contrast = format!(
            "logit({:?}) - logit({:?}), {}",
            tok.decode(&[sweep.plus], false)?,
            tok.decode(&[sweep.minus], false)?,
            sweep.contrast_from
        );
        Ok(PatchMap {
            groups,
            contrast,
            ld_clean: sweep.ld_clean,
            ld_corrupt: sweep.ld_corrupt,
            vision: sweep.vision_effect,
            effect: sweep.effect,
        })
    })());
    shown(&o);
    Ok(o)
}
