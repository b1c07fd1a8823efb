//! Attention knockout: block a group of attention edges (query -> key) in
//! `window` consecutive layers, for every window start, and read the
//! target's log-probability at the last position. Each group's windows run
//! as one batch of branches that share the unmodified layers before them
//! and the positions before the group's first query.

use super::pass::{nonempty, pick, Pass};
use super::regions::PromptRegions;
use crate::data::BoundingBox;
use crate::engine::text::Branch;
use crate::engine::Engine;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// A group of attention edges, by its queries and keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EdgeGroup {
    /// The answer position's query on the image tokens.
    #[value(name = "image->last")]
    ImageToLast,
    /// The answer position's query on the question (the user's text after the image).
    #[value(name = "question->last")]
    QuestionToLast,
    /// The question's queries on the image tokens.
    #[value(name = "image->question")]
    ImageToQuestion,
    /// The answer position's query on the image tokens inside the box.
    #[value(name = "box->last")]
    BoxToLast,
}

impl EdgeGroup {
    pub const ALL: [EdgeGroup; 4] = [EdgeGroup::ImageToLast, EdgeGroup::QuestionToLast, EdgeGroup::ImageToQuestion, EdgeGroup::BoxToLast];

    /// Every group that applies to a prompt (box->last needs a box).
    pub fn applicable(has_box: bool) -> Vec<EdgeGroup> {
        EdgeGroup::ALL.into_iter().filter(|e| *e != EdgeGroup::BoxToLast || has_box).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            EdgeGroup::ImageToLast => "image->last",
            EdgeGroup::QuestionToLast => "question->last",
            EdgeGroup::ImageToQuestion => "image->question",
            EdgeGroup::BoxToLast => "box->last",
        }
    }

    /// (queries, keys) in `regions`; `boxed` are the image tokens inside the box.
    pub fn edges(self, regions: &PromptRegions, boxed: Option<&[usize]>) -> Result<(Vec<usize>, Vec<usize>)> {
        let last = vec![regions.last];
        let (q, k) = match self {
            EdgeGroup::ImageToLast => (last, regions.image.clone()),
            EdgeGroup::QuestionToLast => (last, regions.question.iter().copied().filter(|&p| p != regions.last).collect()),
            EdgeGroup::ImageToQuestion => (regions.question.clone(), regions.image.clone()),
            EdgeGroup::BoxToLast => match boxed {
                Some(b) => (last, b.to_vec()),
                None => bail!("box->last needs a box (--box, or a sample with boxes)"),
            },
        };
        Ok((nonempty(&format!("{} queries", self.name()), q)?, nonempty(&format!("{} keys", self.name()), k)?))
    }
}

pub struct KnockoutSweep {
    pub window: usize,
    pub edges: Vec<EdgeGroup>,
    /// The token whose log-prob is read (the model's own answer unless given).
    pub target: i64,
    /// The gold answer's token, when known.
    pub gold: Option<i64>,
    pub base_logprob: f64,
    pub base_gold_logprob: Option<f64>,
    /// [window starts][edge groups]: the target's log-prob with the edges blocked.
    pub logprob: Vec<Vec<f64>>,
    /// The same for the gold token.
    pub gold_logprob: Option<Vec<Vec<f64>>>,
    /// The box used for box->last (original pixels).
    pub boxed: Option<BoundingBox>,
}

/// What a sweep needs besides the model: the prompt's pass, the window and the groups.
pub struct KnockoutSpec<'a> {
    pub window: usize,
    pub edges: &'a [EdgeGroup],
    pub target: Option<i64>,
    pub gold: Option<i64>,
    pub boxed: Option<&'a BoundingBox>,
}

/// [S, T] true on the group's edges, for the suffix of queries from `start`.
fn blocked_matrix(queries: &[usize], keys: &[usize], start: usize, t: usize, device: tch::Device) -> Tensor {
    let s = t - start;
    let mut m = vec![false; s * t];
    for &q in queries {
        for &k in keys {
            m[(q - start) * t + k] = true;
        }
    }
    Tensor::from_slice(&m).reshape([s as i64, t as i64]).to_device(device)
}

fn check_window(window: usize, layers: usize) -> Result<usize> {
    if window == 0 || window > layers {
        bail!("--window {window}: must be 1..{layers} (the model's layers)");
    }
    Ok(layers - window + 1)
}

/// What both ways of sweeping start from: the window count, the unblocked
/// log-probs, the target, the tokens read and the box's image tokens.
struct Setup {
    n_windows: usize,
    base: Tensor,
    target: i64,
    reads: Vec<i64>,
    boxed: Option<Vec<usize>>,
}

fn setup(engine: &Engine, pass: &Pass, spec: &KnockoutSpec) -> Result<Setup> {
    let n_windows = check_window(spec.window, pass.layers())?;
    let base = pass.last_logprobs(&engine.model);
    let target = spec.target.unwrap_or_else(|| base.argmax(0, false).int64_value(&[]));
    let reads: Vec<i64> = std::iter::once(target).chain(spec.gold).collect();
    let boxed = spec.boxed.map(|b| pass.regions.in_box(b)).transpose()?;
    Ok(Setup { n_windows, base, target, reads, boxed })
}

/// The sweep, batched: per edge group, one growing batch over window starts.
pub fn knockout(engine: &Engine, pass: &Pass, spec: &KnockoutSpec) -> Result<KnockoutSweep> {
    let _guard = tch::no_grad_guard();
    let model = &engine.model;
    let Setup { n_windows, base, target, reads, boxed } = setup(engine, pass, spec)?;
    let t = pass.regions.len;
    let device = pass.embeds.device();
    let mut columns: Vec<Vec<Vec<f64>>> = Vec::new(); // [group][window][read]
    for &group in spec.edges {
        let (queries, keys) = group.edges(&pass.regions, boxed.as_deref())?;
        let start = queries[0];
        let blocked = blocked_matrix(&queries, &keys, start, t, device);
        let branches: Vec<Branch> = (0..n_windows)
            .map(|w| Branch { enter: w, hidden: pass.resid_pre(w).get(0).narrow(0, start as i64, (t - start) as i64) })
            .collect();
        let window = spec.window;
        let lp = pass.branches_last_logprobs(model, start as i64, &branches, &|layer, v| {
            (v <= layer && layer < v + window).then(|| blocked.shallow_clone())
        });
        columns.push(pick(&lp, &reads)?);
    }
    Ok(assemble(spec, target, &base, columns, n_windows))
}

/// The same sweep one full forward per cell (vision tower included): the
/// batched sweep must equal it, and `flipscope bench` measures both.
pub fn knockout_naive(engine: &Engine, pass: &Pass, prompt: &crate::engine::PreparedPrompt, spec: &KnockoutSpec) -> Result<KnockoutSweep> {
    let _guard = tch::no_grad_guard();
    let model = &engine.model;
    let Setup { n_windows, base, target, reads, boxed } = setup(engine, pass, spec)?;
    let t = pass.regions.len;
    let inputs = engine.collate(&[prompt]);
    let mut columns: Vec<Vec<Vec<f64>>> = Vec::new();
    for &group in spec.edges {
        let (queries, keys) = group.edges(&pass.regions, boxed.as_deref())?;
        let blocked = blocked_matrix(&queries, &keys, 0, t, pass.embeds.device());
        let mut rows = Vec::new();
        for w in 0..n_windows {
            let vision = inputs.pixel_values.as_ref().map(|p| model.vision_embeds(p, &inputs.grids));
            let embeds = model.input_embeds(&inputs, vision.as_ref())?;
            let empty = crate::engine::text::KvCache::new(pass.layers());
            let out = model.text.run_branches(&empty, &inputs.positions, 0, &[Branch { enter: 0, hidden: embeds.get(0) }], &|layer, _| {
                (w <= layer && layer < w + spec.window).then(|| blocked.shallow_clone())
            });
            let lp = super::pass::lens(model, &out.select(1, -1)).log_softmax(-1, Kind::Float);
            rows.extend(pick(&lp, &reads)?);
        }
        columns.push(rows);
    }
    Ok(assemble(spec, target, &base, columns, n_windows))
}

fn assemble(spec: &KnockoutSpec, target: i64, base: &Tensor, columns: Vec<Vec<Vec<f64>>>, n_windows: usize) -> KnockoutSweep {
    let cell = |w: usize, g: usize, r: usize| columns[g][w][r];
    let table = |r: usize| (0..n_windows).map(|w| (0..columns.len()).map(|g| cell(w, g, r)).collect()).collect();
    KnockoutSweep {
        window: spec.window,
        edges: spec.edges.to_vec(),
        target,
        gold: spec.gold,
        base_logprob: base.double_value(&[target]),
        base_gold_logprob: spec.gold.map(|g| base.double_value(&[g])),
        logprob: table(0),
        gold_logprob: spec.gold.map(|_| table(1)),
        boxed: spec.boxed.cloned(),
    }
}

impl KnockoutSweep {
    /// `knockout_logprob` [n_windows, n_groups] and `base_logprob` [1].
    pub fn dump(&self, path: &std::path::Path) -> Result<()> {
        let table = |t: &Vec<Vec<f64>>| {
            let flat: Vec<f32> = t.iter().flatten().map(|&x| x as f32).collect();
            Tensor::from_slice(&flat).reshape([t.len() as i64, self.edges.len() as i64])
        };
        let mut named = vec![("knockout_logprob", table(&self.logprob)), ("base_logprob", Tensor::from_slice(&[self.base_logprob as f32]))];
        if let (Some(g), Some(b)) = (&self.gold_logprob, self.base_gold_logprob) {
            named.push(("knockout_gold_logprob", table(g)));
            named.push(("base_gold_logprob", Tensor::from_slice(&[b as f32])));
        }
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (*n, t)).collect();
        super::write_dump(path, &refs)
    }
}
