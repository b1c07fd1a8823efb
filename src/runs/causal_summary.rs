//! What a run's causal rows say, by outcome, as data: the `report` section
//! (`lines`), its `--format json` part and the TUI batch job's closing log
//! all come from one `CausalSummary`.

use super::causal_log::{by_outcome, measured, AblateRow, Experiment, KnockoutRow, LensRow, PatchRow};
use super::warnings::{self, Warning};
use super::Record;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CausalSummary {
    pub lens: Option<Experimented<LensOutcome>>,
    pub knockout: Option<Experimented<KnockoutOutcome>>,
    pub patch: Option<PatchSummary>,
    pub ablate: Option<Experimented<AblateOutcome>>,
    /// Rows left out (bad lines, rows of another shape), each naming its file.
    pub warnings: Vec<String>,
}

/// One experiment's rows: how many were measured, and what they say by outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Experimented<T> {
    pub samples: usize,
    pub by_outcome: Vec<T>,
}

/// The logit lens: the mean layer from which the final answer leads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LensOutcome {
    pub outcome: String,
    pub n: usize,
    pub mean_decided_layer: Option<f64>,
    pub layers: usize,
}

/// Knockout: per edge group, the most harmful window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KnockoutOutcome {
    pub outcome: String,
    pub n: usize,
    pub groups: Vec<WorstWindow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorstWindow {
    pub group: String,
    /// The mean change in the answer's log-prob there, and the window's first layer.
    pub mean_change: Option<f64>,
    pub from_layer: Option<usize>,
}

/// Patching: how often the mirror moves the side, and the median share of LD restored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchSummary {
    pub samples: usize,
    /// Samples whose |LD clean - LD mirrored| clears `min_ld_gap`: only they have a share.
    pub with_ratio: usize,
    pub min_ld_gap: f64,
    pub warning: Option<Warning>,
    pub by_outcome: Vec<PatchOutcome>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchOutcome {
    pub outcome: String,
    pub n: usize,
    pub with_ratio: usize,
    /// Share (0-1) of the samples whose LD changes sign under the mirror.
    pub side_moves: f64,
    pub layers: usize,
    pub groups: Vec<GroupCurve>,
}

/// One position group's median share of LD restored: at the vision tower's output, then per layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupCurve {
    pub group: String,
    pub vision: Option<f64>,
    pub layers: Vec<Option<f64>>,
}

/// Region ablation: per region, answers changed and the mean change in the answer's log-prob.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AblateOutcome {
    pub outcome: String,
    pub n: usize,
    pub regions: Vec<RegionChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionChange {
    pub region: String,
    pub changed: usize,
    pub n: usize,
    pub mean_change: Option<f64>,
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The median: a patching share is a ratio whose denominator (LD clean - LD
/// mirrored) can be near zero for a sample, which a mean does not survive.
pub(super) fn median(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// The summary of the causal rows in `run`, grouped by the outcomes of `records`.
pub fn summarize(run: &Path, records: &[Record], min_ld_gap: f64) -> Result<CausalSummary> {
    let mut warnings = Vec::new();
    let lens = measured::<LensRow>(run, Experiment::Lens, &mut warnings)?.map(|rows| lens(&rows, records));
    let knockout = measured::<KnockoutRow>(run, Experiment::Knockout, &mut warnings)?.map(|rows| knockout(&rows, records));
    let patch = measured::<PatchRow>(run, Experiment::Patch, &mut warnings)?.map(|rows| patch(&rows, records, min_ld_gap));
    let ablate = measured::<AblateRow>(run, Experiment::Ablate, &mut warnings)?.map(|rows| ablate(&rows, records));
    Ok(CausalSummary { lens, knockout, patch, ablate, warnings })
}

fn lens(rows: &[LensRow], records: &[Record]) -> Experimented<LensOutcome> {
    let by_outcome = by_outcome(rows, |r| r.key.as_str(), records)
        .into_iter()
        .map(|(outcome, rs)| LensOutcome {
            n: rs.len(),
            mean_decided_layer: mean(rs.iter().filter_map(|r| r.decided_at.map(|l| l as f64))),
            layers: rs.first().map(|r| r.curve.len()).unwrap_or(0),
            outcome,
        })
        .collect();
    Experimented { samples: rows.len(), by_outcome }
}

fn knockout(rows: &[KnockoutRow], records: &[Record]) -> Experimented<KnockoutOutcome> {
    let by_outcome = by_outcome(rows, |r| r.key.as_str(), records)
        .into_iter()
        .map(|(outcome, rs)| {
            let edges = rs.first().map(|r| r.edges.clone()).unwrap_or_default();
            let windows = rs.first().map(|r| r.logprob.len()).unwrap_or(0);
            let groups = edges
                .into_iter()
                .enumerate()
                .map(|(g, group)| {
                    let worst = (0..windows)
                        .filter_map(|w| {
                            mean(rs.iter().filter_map(|r| r.logprob.get(w).and_then(|row| row.get(g)).map(|lp| lp - r.base_logprob)))
                                .map(|m| (w, m))
                        })
                        .min_by(|a, b| a.1.total_cmp(&b.1));
                    WorstWindow { group, mean_change: worst.map(|w| w.1), from_layer: worst.map(|w| w.0) }
                })
                .collect();
            KnockoutOutcome { outcome, n: rs.len(), groups }
        })
        .collect();
    Experimented { samples: rows.len(), by_outcome }
}

fn patch(all: &[PatchRow], records: &[Record], min_ld_gap: f64) -> PatchSummary {
    // A share of LD restored is a ratio over the LD the mirror moves: samples that barely move it get none.
    let has_ratio = |r: &PatchRow| !warnings::ld_gap_too_small(r.ld_clean, r.ld_corrupt, min_ld_gap);
    let with_ratio = all.iter().filter(|r| has_ratio(r)).count();
    let by_outcome = by_outcome(all, |r| r.key.as_str(), records)
        .into_iter()
        .map(|(outcome, every)| {
            // LD's sign is the side the answer takes (X or its mirror): every sample says that.
            let moved = every.iter().filter(|r| r.ld_clean * r.ld_corrupt < 0.0).count();
            let rs: Vec<&PatchRow> = every.iter().copied().filter(|r| has_ratio(r)).collect();
            let groups = rs.first().map(|r| r.groups.clone()).unwrap_or_default();
            let layers = rs.first().map(|r| r.effect.len()).unwrap_or(0);
            let groups = groups
                .into_iter()
                .enumerate()
                .map(|(g, group)| GroupCurve {
                    group,
                    vision: median(rs.iter().filter_map(|r| r.vision_effect.get(g).copied().flatten())),
                    layers: (0..layers)
                        .map(|l| median(rs.iter().filter_map(|r| r.effect.get(l).and_then(|row| row.get(g)).copied().flatten())))
                        .collect(),
                })
                .collect();
            PatchOutcome {
                n: every.len(),
                with_ratio: rs.len(),
                side_moves: moved as f64 / every.len().max(1) as f64,
                layers,
                groups,
                outcome,
            }
        })
        .collect();
    let warning = warnings::small_ld_gap(all.len() - with_ratio, all.len(), min_ld_gap);
    PatchSummary { samples: all.len(), with_ratio, min_ld_gap, warning, by_outcome }
}

fn ablate(rows: &[AblateRow], records: &[Record]) -> Experimented<AblateOutcome> {
    let best = |row: &[f64]| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    let by_outcome = by_outcome(rows, |r| r.key.as_str(), records)
        .into_iter()
        .map(|(outcome, rs)| {
            let names = rs.first().map(|r| r.regions.clone()).unwrap_or_default();
            let regions = names
                .into_iter()
                .enumerate()
                .map(|(g, region)| {
                    let (mut changed, mut n, mut drops) = (0, 0, Vec::new());
                    for r in &rs {
                        let (Some(a), Some(row)) = (best(&r.base), r.ablated.get(g)) else { continue };
                        n += 1;
                        changed += usize::from(best(row) != Some(a));
                        drops.push(row[a] - r.base[a]);
                    }
                    RegionChange { region, changed, n, mean_change: mean(drops.into_iter()) }
                })
                .collect();
            AblateOutcome { outcome, n: rs.len(), regions }
        })
        .collect();
    Experimented { samples: rows.len(), by_outcome }
}

impl CausalSummary {
    pub fn is_empty(&self) -> bool {
        self.lens.is_none() && self.knockout.is_none() && self.patch.is_none() && self.ablate.is_none() && self.warnings.is_empty()
    }

    /// The summary as `report`'s text lines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(l) = &self.lens {
            lines.push(format!("logit lens ({} samples): the layer from which the final answer leads, by outcome", l.samples));
            for o in &l.by_outcome {
                let layer = o.mean_decided_layer.map(|m| format!("{m:5.2}")).unwrap_or_else(|| "    -".into());
                lines.push(format!("  {:<18} n {:>4}  mean layer {layer}  of {}", o.outcome, o.n, o.layers));
            }
        }
        if let Some(k) = &self.knockout {
            lines.push(format!(
                "knockout ({} samples): mean change in the answer's log-prob at the most harmful window, by outcome",
                k.samples
            ));
            for o in &k.by_outcome {
                let cells: Vec<String> = o
                    .groups
                    .iter()
                    .map(|w| match (w.mean_change, w.from_layer) {
                        (Some(m), Some(l)) => format!("{} {m:+.3} (from layer {l})", w.group),
                        _ => format!("{} -", w.group),
                    })
                    .collect();
                lines.push(format!("  {:<18} n {:>4}  {}", o.outcome, o.n, cells.join("  ")));
            }
        }
        if let Some(p) = &self.patch {
            lines.push(format!(
                "patching ({} samples, {} with a share of LD restored), by outcome: how often the mirrored image moves the answer to the other side, and the median share of LD restored per group, at the vision tower's output and at each layer",
                p.samples, p.with_ratio
            ));
            lines.extend(p.warning.iter().map(|w| w.to_string()));
            let cell = |m: Option<f64>| m.map(|v| format!("{v:>6.2}")).unwrap_or_else(|| format!("{:>6}", "-"));
            for o in &p.by_outcome {
                let share = 100.0 * o.side_moves;
                lines.push(format!("  {:<18} n {:>4} ({} with a ratio)  side moves {share:>3.0}%", o.outcome, o.n, o.with_ratio));
                lines.push(format!("      {:<10} {:>6}  layers 0..{}", "group", "vision", o.layers.saturating_sub(1)));
                for g in &o.groups {
                    let curve: String = g.layers.iter().map(|v| cell(*v)).collect();
                    lines.push(format!("      {:<10} {} {curve}", g.group, cell(g.vision)));
                }
            }
        }
        if let Some(a) = &self.ablate {
            lines.push(format!(
                "region ablation ({} samples): answers changed, and the mean change in the answer's log-prob, by outcome",
                a.samples
            ));
            for o in &a.by_outcome {
                let cells: Vec<String> = o
                    .regions
                    .iter()
                    .map(|r| {
                        let m = r.mean_change.map(|m| format!("{m:+.3}")).unwrap_or_else(|| "-".into());
                        format!("{} {}/{} changed, {m}", r.region, r.changed, r.n)
                    })
                    .collect();
                lines.push(format!("  {:<18} n {:>4}  {}", o.outcome, o.n, cells.join("  ")));
            }
        }
        lines.extend(self.warnings.iter().cloned());
        lines
    }
}
