//! Linear direction probes and steering. Over samples with gold directions
//! (synthetic scenes have exact geometry), each layer's residual stream at
//! the answer position (and averaged over the target object's image tokens)
//! is collected; a logistic probe per layer and axis (left/right,
//! front/back, above/below) is fitted on the train split and scored on the
//! held-out one. This says whether the direction is in the representation
//! even where the model answers wrong. Steering adds alpha times a probe's
//! direction to a layer's output and reads how the answers move.

use super::decision::{for_sample, AnswerForm, Decision};
use super::pass::{lens, Pass};
use super::regions::reference_and_target;
use crate::data::{load_images, Sample};
use crate::engine::text::Branch;
use crate::engine::{Engine, ResizePolicy};
use crate::eval::mcq_prompt;
use crate::spatial::{Direction, Vertical};
use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

/// A direction axis a probe separates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Axis {
    /// Right (positive) against left.
    LeftRight,
    /// Front (positive) against back.
    FrontBack,
    /// Above (positive) against below.
    AboveBelow,
}

impl Axis {
    pub const ALL: [Axis; 3] = [Axis::LeftRight, Axis::FrontBack, Axis::AboveBelow];

    pub fn name(self) -> &'static str {
        match self {
            Axis::LeftRight => "left-right",
            Axis::FrontBack => "front-back",
            Axis::AboveBelow => "above-below",
        }
    }

    /// The direction's side of the axis: Some(true) right/front/above, Some(false) the other, None neither.
    pub fn side(self, d: Direction) -> Option<bool> {
        let sign = match self {
            Axis::LeftRight => d.heading.map(|h| h.lateral_sign()).unwrap_or(0),
            Axis::FrontBack => d.heading.map(|h| h.depth_sign()).unwrap_or(0),
            Axis::AboveBelow => match d.vertical {
                Some(Vertical::Up) => 1,
                Some(Vertical::Down) => -1,
                None => 0,
            },
        };
        (sign != 0).then_some(sign > 0)
    }
}

/// Where the features are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Site {
    /// The answer position: the prompt's last token, after the opening the
    /// gold answer shares with its mirror when the model answers in words.
    Last,
    /// The mean over the target object's image tokens.
    Target,
    /// The vision tower's merged output, before any LM layer: the mean over
    /// the target's image tokens minus the mean over the reference's (one
    /// "layer"). Whether the image features already tell the sides apart.
    Vision,
}

impl Site {
    pub const ALL: [Site; 3] = [Site::Last, Site::Target, Site::Vision];
    pub fn name(self) -> &'static str {
        match self {
            Site::Last => "last",
            Site::Target => "target",
            Site::Vision => "vision",
        }
    }
}

/// Hidden states of many samples, per layer, at each site.
pub struct Features {
    pub ids: Vec<String>,
    pub gold: Vec<Option<Direction>>,
    /// Whether each sample is held out (its split is `test`).
    pub held_out: Vec<bool>,
    /// [N, L, D] f32 on the CPU.
    pub last: Tensor,
    /// [N, L, D], or None when some sample has no target box.
    pub target: Option<Tensor>,
    /// [N, 1, D], or None when some sample lacks a target or a reference box.
    pub vision: Option<Tensor>,
    /// Samples left out, as "id: why".
    pub skipped: Vec<String>,
}

impl Features {
    pub fn at(&self, site: Site) -> Option<&Tensor> {
        match site {
            Site::Last => Some(&self.last),
            Site::Target => self.target.as_ref(),
            Site::Vision => self.vision.as_ref(),
        }
    }
}

/// Collects the features of `samples` (asked with the evaluation prompt).
pub fn collect(engine: &Engine, samples: &[Sample], policy: &ResizePolicy, progress: &mut dyn FnMut(usize, usize)) -> Result<Features> {
    let _guard = tch::no_grad_guard();
    let (mut ids, mut gold, mut held_out, mut last, mut target, mut skipped) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut vision = vec![];
    let (mut all_targets, mut all_pairs) = (true, true);
    for (i, s) in samples.iter().enumerate() {
        let one = || -> Result<(Tensor, Option<Tensor>, Option<Tensor>)> {
            let images = load_images(s)?;
            let prompt = engine.processor.prepare(&images, &mcq_prompt(&s.question, s), policy)?;
            // The answer position: after the opening the gold answer shares with its mirror
            // (where a word-answering model tells left from right), else the prompt's end.
            let prompt = match for_sample(engine, s, &prompt, AnswerForm::Auto) {
                Ok(d) => d.prompt,
                Err(_) => prompt,
            };
            let pass = Pass::run(engine, &prompt)?;
            let stacked = Tensor::cat(&pass.traced.resid_post, 0).to_kind(Kind::Float); // [L, T, D]
            let at_last = stacked.select(1, -1).to_device(Device::Cpu);
            let rows = |b| -> Result<Tensor> {
                let rows = pass.regions.in_box(b)?;
                Ok(Tensor::from_slice(&rows.iter().map(|&p| p as i64).collect::<Vec<_>>()).to_device(stacked.device()))
            };
            let (reference, target) = reference_and_target(s);
            let at_target = match target {
                Some(b) => Some(stacked.index_select(1, &rows(b)?).mean_dim(1, false, Kind::Float).to_device(Device::Cpu)),
                None => None,
            };
            let at_vision = match (reference, target) {
                (Some(r), Some(t)) => {
                    let embeds = pass.embeds.get(0).to_kind(Kind::Float); // [T, D]
                    let mean = |idx: &Tensor| embeds.index_select(0, idx).mean_dim(0, false, Kind::Float);
                    Some((mean(&rows(t)?) - mean(&rows(r)?)).unsqueeze(0).to_device(Device::Cpu))
                }
                _ => None,
            };
            Ok((at_last, at_target, at_vision))
        };
        match one() {
            Ok((l, t, v)) => {
                all_targets &= t.is_some();
                all_pairs &= v.is_some();
                if let Some(v) = v {
                    vision.push(v);
                }
                ids.push(s.id.clone());
                gold.push(s.gold_direction);
                held_out.push(s.split.as_deref() == Some("test"));
                last.push(l);
                if let Some(t) = t {
                    target.push(t);
                }
            }
            Err(e) => skipped.push(format!("{}: {e:#}", s.id)),
        }
        progress(i + 1, samples.len());
    }
    if last.is_empty() {
        bail!(
            "no sample could be read ({} skipped{})",
            skipped.len(),
            skipped.first().map(|s| format!("; first: {s}")).unwrap_or_default()
        );
    }
    let target = (all_targets && !target.is_empty()).then(|| Tensor::stack(&target, 0));
    let vision = (all_pairs && !vision.is_empty()).then(|| Tensor::stack(&vision, 0));
    Ok(Features { ids, gold, held_out, last: Tensor::stack(&last, 0), target, vision, skipped })
}

/// A logistic probe per layer for one axis at one site.
pub struct DirectionProbe {
    pub axis: Axis,
    pub site: Site,
    /// [L, D] in standardised units, [L] bias, [L, D] the train mean and std.
    pub weight: Tensor,
    pub bias: Tensor,
    pub mean: Tensor,
    pub std: Tensor,
    /// [L]: the mean norm of the features at each layer (steering's unit).
    pub norm: Tensor,
    pub train_accuracy: Vec<f64>,
    pub test_accuracy: Vec<f64>,
    pub n_train: usize,
    pub n_test: usize,
}

const STEPS: usize = 300;
const L2: f64 = 1e-3;

/// Fits `axis`'s probe on the features at `site` (train split), scores it on the held-out split.
pub fn fit(features: &Features, axis: Axis, site: Site) -> Result<DirectionProbe> {
    let x = features.at(site).with_context(|| format!("no {} features (a sample has no target box)", site.name()))?;
    let labelled: Vec<(usize, bool)> =
        features.gold.iter().enumerate().filter_map(|(i, g)| g.and_then(|d| axis.side(d)).map(|y| (i, y))).collect();
    let split = |test: bool| labelled.iter().copied().filter(|(i, _)| features.held_out[*i] == test).collect::<Vec<_>>();
    let (train, test) = (split(false), split(true));
    let both = |rows: &[(usize, bool)]| rows.iter().any(|r| r.1) && rows.iter().any(|r| !r.1);
    if !both(&train) || test.is_empty() {
        bail!(
            "{} at {}: {} train samples ({} positive) and {} held-out ones; a probe needs both sides in train and some held out (split=test)",
            axis.name(),
            site.name(),
            train.len(),
            train.iter().filter(|r| r.1).count(),
            test.len()
        );
    }
    let rows = |r: &[(usize, bool)]| {
        let idx = Tensor::from_slice(&r.iter().map(|x| x.0 as i64).collect::<Vec<_>>());
        let y = Tensor::from_slice(&r.iter().map(|x| if x.1 { 1f32 } else { 0f32 }).collect::<Vec<_>>());
        (x.index_select(0, &idx).transpose(0, 1).contiguous(), y) // [L, n, D], [n]
    };
    let (xtr, ytr) = rows(&train);
    let (xte, yte) = rows(&test);
    let mean = xtr.mean_dim(1, true, Kind::Float);
    let std = xtr.std_dim(1, false, true).clamp_min(1e-6);
    let z = |x: &Tensor| (x - &mean) / &std;
    let (ztr, zte) = (z(&xtr), z(&xte));
    let (l, d) = (xtr.size()[0], xtr.size()[2]);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let w = vs.root().zeros("w", &[l, d, 1]);
    let b = vs.root().zeros("b", &[l, 1]);
    let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &vs, 0.05)?;
    let target = ytr.unsqueeze(0).expand([l, -1], false);
    for _ in 0..STEPS {
        let logits = ztr.matmul(&w).squeeze_dim(-1) + &b; // [L, n]
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, None, tch::Reduction::Mean) * l as f64
            + w.pow_tensor_scalar(2).sum(Kind::Float) * L2;
        opt.backward_step(&loss);
    }
    let _guard = tch::no_grad_guard();
    let accuracy = |zx: &Tensor, y: &Tensor| -> Result<Vec<f64>> {
        let pred = (zx.matmul(&w).squeeze_dim(-1) + &b).gt(0.0).to_kind(Kind::Float);
        Ok(Vec::<f64>::try_from(pred.eq_tensor(&y.unsqueeze(0)).to_kind(Kind::Double).mean_dim(1, false, Kind::Double))?)
    };
    Ok(DirectionProbe {
        axis,
        site,
        weight: w.squeeze_dim(-1).detach(),
        bias: b.squeeze_dim(-1).detach(),
        mean: mean.squeeze_dim(1),
        std: std.squeeze_dim(1),
        norm: xtr.norm_scalaropt_dim(2, [2], false).mean_dim(1, false, Kind::Float),
        train_accuracy: accuracy(&ztr, &ytr)?,
        test_accuracy: accuracy(&zte, &yte)?,
        n_train: train.len(),
        n_test: test.len(),
    })
}

/// One held-out sample as a probe reads it.
pub struct HeldOut {
    /// Index into the features' samples.
    pub sample: usize,
    /// Whether the probe is right, per layer.
    pub correct: Vec<bool>,
}

impl DirectionProbe {
    /// The probe's verdict on each held-out sample with a side on its axis.
    pub fn held_out(&self, features: &Features) -> Result<Vec<HeldOut>> {
        let _guard = tch::no_grad_guard();
        let x = features.at(self.site).with_context(|| format!("no {} features", self.site.name()))?;
        let rows: Vec<(usize, bool)> = features
            .gold
            .iter()
            .enumerate()
            .filter(|(i, _)| features.held_out[*i])
            .filter_map(|(i, g)| g.and_then(|d| self.axis.side(d)).map(|y| (i, y)))
            .collect();
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let idx = Tensor::from_slice(&rows.iter().map(|r| r.0 as i64).collect::<Vec<_>>());
        let z = (x.index_select(0, &idx) - &self.mean) / &self.std; // [n, L, D]
        let positive = ((z * &self.weight).sum_dim_intlist(-1, false, Kind::Float) + &self.bias).gt(0.0); // [n, L]
        let positive = Vec::<Vec<bool>>::try_from(positive)?;
        Ok(rows
            .iter()
            .zip(positive)
            .map(|(&(sample, y), p)| HeldOut { sample, correct: p.into_iter().map(|p| p == y).collect() })
            .collect())
    }

    /// The unit direction [D] in the residual stream at `layer` that raises the probe's logit.
    pub fn direction(&self, layer: usize) -> Result<Tensor> {
        let layers = self.weight.size()[0] as usize;
        if layer >= layers {
            bail!("layer {layer}: the probe has layers 0..{}", layers - 1);
        }
        let raw = self.weight.get(layer as i64) / self.std.get(layer as i64);
        Ok(&raw / raw.norm().clamp_min(1e-12))
    }

    fn prefix(&self) -> String {
        format!("{}.{}", self.site.name(), self.axis.name())
    }
}

/// Writes probes as safetensors: `SITE.AXIS.{weight,bias,mean,std,norm,train_accuracy,test_accuracy,counts}`.
pub fn save(probes: &[DirectionProbe], path: &std::path::Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for p in probes {
        let k = p.prefix();
        named.push((format!("{k}.weight"), p.weight.shallow_clone()));
        named.push((format!("{k}.bias"), p.bias.shallow_clone()));
        named.push((format!("{k}.mean"), p.mean.shallow_clone()));
        named.push((format!("{k}.std"), p.std.shallow_clone()));
        named.push((format!("{k}.norm"), p.norm.shallow_clone()));
        named.push((format!("{k}.train_accuracy"), Tensor::from_slice(&p.train_accuracy)));
        named.push((format!("{k}.test_accuracy"), Tensor::from_slice(&p.test_accuracy)));
        named.push((format!("{k}.counts"), Tensor::from_slice(&[p.n_train as i64, p.n_test as i64])));
    }
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    super::write_dump(path, &refs)
}

/// Reads the probes in `path` (as `save` writes them), checking each
/// tensor: floating point, finite, shapes that agree ([L, D] and [L]),
/// positive stds and norms, accuracies in [0, 1]. A bad one is named.
pub fn load(path: &std::path::Path) -> Result<Vec<DirectionProbe>> {
    // Only a regular file: a FIFO or a device would block or never end.
    drop(crate::fsutil::open_regular(path).with_context(|| format!("reading probes from {}", path.display()))?);
    let tensors = Tensor::read_safetensors(path).with_context(|| format!("reading probes from {}", path.display()))?;
    let file = ProbeFile { path, tensors };
    let mut out = Vec::new();
    for site in Site::ALL {
        for axis in Axis::ALL {
            let k = format!("{}.{}", site.name(), axis.name());
            if file.has(&format!("{k}.weight")) {
                out.push(file.probe(&k, site, axis)?);
            }
        }
    }
    if out.is_empty() {
        bail!("{}: no probes in it (SITE.AXIS.weight tensors)", path.display());
    }
    Ok(out)
}

/// A probes file's tensors, each read with its checks.
struct ProbeFile<'a> {
    path: &'a std::path::Path,
    tensors: Vec<(String, Tensor)>,
}

impl ProbeFile<'_> {
    fn has(&self, name: &str) -> bool {
        self.tensors.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Result<Tensor> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
            .with_context(|| format!("{}: no tensor `{name}`", self.path.display()))
    }

    /// A finite floating-point tensor of `shape`, as f32 (f64 for `wide`).
    fn float(&self, name: &str, shape: &[i64], kind: Kind) -> Result<Tensor> {
        let t = self.get(name)?;
        let bad = |what: String| anyhow::anyhow!("{}: tensor `{name}` {what}", self.path.display());
        if !t.is_floating_point() {
            return Err(bad(format!("is {:?}; probes are floating point", t.kind())));
        }
        if t.size() != shape {
            return Err(bad(format!("has shape {:?}; the probe's weight says {shape:?}", t.size())));
        }
        let t = t.to_kind(kind);
        if t.isfinite().logical_not().any().int64_value(&[]) != 0 {
            return Err(bad("has NaN or infinite values".into()));
        }
        Ok(t)
    }

    fn positive(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let t = self.float(name, shape, Kind::Float)?;
        if t.le(0.0).any().int64_value(&[]) != 0 {
            bail!("{}: tensor `{name}` has values <= 0; it divides or scales, so every value must be positive", self.path.display());
        }
        Ok(t)
    }

    fn accuracies(&self, name: &str, layers: i64) -> Result<Vec<f64>> {
        let v = Vec::<f64>::try_from(self.float(name, &[layers], Kind::Double)?)?;
        if v.iter().any(|a| !(0.0..=1.0).contains(a)) {
            bail!("{}: tensor `{name}` holds accuracies outside [0, 1]", self.path.display());
        }
        Ok(v)
    }

    fn probe(&self, k: &str, site: Site, axis: Axis) -> Result<DirectionProbe> {
        let name = format!("{k}.weight");
        let w = self.get(&name)?;
        let &[l, d] = w.size().as_slice() else {
            bail!("{}: tensor `{name}` has shape {:?}; a probe's weight is [layers, width]", self.path.display(), w.size());
        };
        if l < 1 || d < 1 {
            bail!("{}: tensor `{name}` has shape {:?}; a probe needs a layer and a width", self.path.display(), w.size());
        }
        let counts_name = format!("{k}.counts");
        let counts = self.get(&counts_name)?;
        if counts.kind() != Kind::Int64 || counts.size() != [2] {
            bail!(
                "{}: tensor `{counts_name}` is {:?} {:?}; it is two int64 counts (train, held out)",
                self.path.display(),
                counts.kind(),
                counts.size()
            );
        }
        let counts = Vec::<i64>::try_from(counts)?;
        if counts.iter().any(|c| *c < 0) {
            bail!("{}: tensor `{counts_name}` has a negative count", self.path.display());
        }
        Ok(DirectionProbe {
            axis,
            site,
            weight: self.float(&name, &[l, d], Kind::Float)?,
            bias: self.float(&format!("{k}.bias"), &[l], Kind::Float)?,
            mean: self.float(&format!("{k}.mean"), &[l, d], Kind::Float)?,
            std: self.positive(&format!("{k}.std"), &[l, d])?,
            norm: self.positive(&format!("{k}.norm"), &[l])?,
            train_accuracy: self.accuracies(&format!("{k}.train_accuracy"), l)?,
            test_accuracy: self.accuracies(&format!("{k}.test_accuracy"), l)?,
            n_train: counts[0] as usize,
            n_test: counts[1] as usize,
        })
    }
}

/// Log-probabilities [V] at the decision position with `delta` [D] added
/// to `layer`'s output at `positions` (every position when None).
pub fn steered_logprobs(engine: &Engine, pass: &Pass, layer: usize, delta: &Tensor, positions: Option<&[usize]>) -> Result<Tensor> {
    if layer >= pass.layers() {
        bail!("--layer {layer}: the model has layers 0..{}", pass.layers() - 1);
    }
    let out = &pass.traced.resid_post[layer];
    let delta = delta.to_device(out.device()).to_kind(out.kind());
    let added = match positions {
        None => delta.unsqueeze(0),
        Some(rows) => {
            let mut mask = vec![0f32; pass.regions.len];
            for &r in rows {
                *mask.get_mut(r).with_context(|| format!("position {r}: the prompt has {}", pass.regions.len))? = 1.0;
            }
            Tensor::from_slice(&mask).to_device(out.device()).to_kind(out.kind()).unsqueeze(1) * delta.unsqueeze(0)
        }
    };
    let hidden = (out.get(0) + added).shallow_clone();
    let branch = Branch { enter: layer + 1, hidden };
    let result = engine.model.text.run_branches(&pass.traced.cache, &pass.positions, 0, &[branch], &|_, _| None);
    Ok(lens(&engine.model, &result.select(1, -1)).get(0).log_softmax(-1, Kind::Float))
}

/// How one alpha moved the answers of a set.
#[derive(Clone, Debug, PartialEq)]
pub struct SteerRow {
    pub alpha: f64,
    /// Samples whose chosen candidate lies on the axis's positive side, negative side, neither.
    pub positive: usize,
    pub negative: usize,
    pub neither: usize,
    /// Mean over samples of log p(best positive candidate) - log p(best negative one), where both exist.
    pub mean_margin: Option<f64>,
}

/// Steers every decision along `direction` (unit, [D]) at `layer` by each
/// alpha times `unit` (the layer's mean residual norm), counting where the
/// answers go. `at[i]` are the positions of decision i to steer (None: all).
#[allow(clippy::too_many_arguments)]
pub fn steer(
    engine: &Engine,
    decisions: &[Decision],
    at: &[Option<Vec<usize>>],
    axis: Axis,
    layer: usize,
    direction: &Tensor,
    unit: f64,
    alphas: &[f64],
) -> Result<Vec<SteerRow>> {
    let _guard = tch::no_grad_guard();
    let passes: Vec<Pass> = decisions.iter().map(|d| Pass::run(engine, &d.prompt)).collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for &alpha in alphas {
        let delta = direction * (alpha * unit);
        let mut row = SteerRow { alpha, positive: 0, negative: 0, neither: 0, mean_margin: None };
        let mut margins = Vec::new();
        for (i, (d, pass)) in decisions.iter().zip(&passes).enumerate() {
            let lp = steered_logprobs(engine, pass, layer, &delta, at.get(i).and_then(|p| p.as_deref()))?;
            let scored: Vec<(Option<bool>, f64)> =
                d.candidates.iter().map(|c| (c.direction.and_then(|dir| axis.side(dir)), lp.double_value(&[c.token]))).collect();
            let Some(best) = scored.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else { continue };
            match best.0 {
                Some(true) => row.positive += 1,
                Some(false) => row.negative += 1,
                None => row.neither += 1,
            }
            let side = |s: bool| scored.iter().filter(|c| c.0 == Some(s)).map(|c| c.1).reduce(f64::max);
            if let (Some(p), Some(n)) = (side(true), side(false)) {
                margins.push(p - n);
            }
        }
        row.mean_margin = (!margins.is_empty()).then(|| margins.iter().sum::<f64>() / margins.len() as f64);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> DirectionProbe {
        DirectionProbe {
            axis: Axis::LeftRight,
            site: Site::Last,
            weight: Tensor::from_slice(&[0.5f32, -0.5, 0.25, 1.0, 0.0, 2.0]).view([2, 3]),
            bias: Tensor::from_slice(&[0.1f32, -0.1]),
            mean: Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
            std: Tensor::ones([2, 3], (Kind::Float, Device::Cpu)),
            norm: Tensor::from_slice(&[1.5f32, 2.5]),
            train_accuracy: vec![0.9, 1.0],
            test_accuracy: vec![0.75, 0.5],
            n_train: 8,
            n_test: 4,
        }
    }

    /// Writes `probe()`'s tensors with `name` replaced by `t`, and loads them.
    fn load_with(name: &str, t: Tensor) -> Result<Vec<DirectionProbe>> {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.safetensors");
        save(&[probe()], &good).unwrap();
        let mut tensors = Tensor::read_safetensors(&good).unwrap();
        tensors.iter_mut().find(|(n, _)| n == name).unwrap().1 = t;
        let bad = dir.path().join("bad.safetensors");
        Tensor::write_safetensors(&tensors, &bad).unwrap();
        load(&bad)
    }

    #[test]
    fn probe_files_round_trip_and_bad_tensors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        save(&[probe()], &path).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert!(back[0].weight.allclose(&probe().weight, 0.0, 0.0, false));
        assert_eq!((back[0].n_train, back[0].n_test, back[0].test_accuracy.clone()), (8, 4, vec![0.75, 0.5]));

        let f = |v: &[f32], shape: &[i64]| Tensor::from_slice(v).view(shape);
        let cases: [(&str, Tensor, &str); 8] = [
            ("last.left-right.weight", f(&[f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0], &[2, 3]), "NaN or infinite"),
            ("last.left-right.weight", Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6]).view([2, 3]), "is Int64; probes are floating point"),
            ("last.left-right.std", f(&[1.0, 0.0, 1.0, 1.0, 1.0, 1.0], &[2, 3]), "values <= 0"),
            ("last.left-right.norm", f(&[0.0, 1.0], &[2]), "values <= 0"),
            ("last.left-right.mean", f(&[0.0; 4], &[2, 2]), "has shape [2, 2]; the probe's weight says [2, 3]"),
            ("last.left-right.bias", f(&[0.0; 3], &[3]), "has shape [3]"),
            ("last.left-right.test_accuracy", Tensor::from_slice(&[0.5f64, 1.5]), "outside [0, 1]"),
            ("last.left-right.counts", Tensor::from_slice(&[4.0f32, 2.0]), "two int64 counts"),
        ];
        for (name, t, want) in cases {
            let err = format!("{:#}", load_with(name, t).err().unwrap_or_else(|| panic!("{name} loaded")));
            assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        }
    }
}
