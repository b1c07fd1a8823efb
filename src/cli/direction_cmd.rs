//! `flipscope probe-linear` and `flipscope steer`: direction probes per
//! layer, and what adding a probe's direction does to the answers.

use super::engine_args::EngineArgs;
use crate::causal::decision::{for_sample, AnswerForm};
use crate::causal::direction_probe::{self, Axis, DirectionProbe, Site};
use crate::causal::regions::reference_and_target;
use crate::data::SampleFilter;
use crate::data::{load_images, Sample};
use crate::eval::mcq_prompt;
use crate::viz::chart::layer_lines;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SampleSet {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Dataset spec with gold directions (synthetic scenes have exact ones).
    #[arg(long)]
    pub data: String,
    /// Eval's filter (category=..., id~..., gold=..., dataset=...).
    #[arg(long, value_parser = SampleFilter::parse)]
    pub filter: Option<SampleFilter>,
    /// At most this many samples.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl SampleSet {
    fn samples(&self) -> Result<Vec<Sample>> {
        crate::data::filter::select(&self.data, self.filter.as_ref(), self.limit)
    }
}

#[derive(Args, Debug)]
pub struct ProbeLinearArgs {
    #[command(flatten)]
    pub set: SampleSet,
    /// Axes to probe (default: all three; an axis without both sides in the data is skipped).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub axes: Vec<Axis>,
    /// Where the probes are saved (safetensors), for `steer`.
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub out: PathBuf,
    /// Probe accuracy by layer as a chart.
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub plot: Option<PathBuf>,
    /// The eval run of this model on this data: its accuracy on the held-out samples is printed beside the probes'.
    #[arg(long)]
    pub run: Option<String>,
}

#[derive(Args, Debug)]
pub struct SteerArgs {
    #[command(flatten)]
    pub set: SampleSet,
    /// Probes written by `probe-linear --out`.
    #[arg(long)]
    pub probes: PathBuf,
    #[arg(long, value_enum, default_value = "left-right")]
    pub axis: Axis,
    #[arg(long, value_enum, default_value = "last")]
    pub site: Site,
    /// The layer whose output is steered.
    #[arg(long)]
    pub layer: usize,
    /// Multiples of the layer's mean residual norm to add along the probe's direction.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_value = "-1,-0.5,0,0.5,1", value_parser = crate::kv::numbers::finite)]
    pub alpha: Vec<f64>,
    #[arg(long, value_enum, default_value_t)]
    pub answer: AnswerForm,
    /// Where the direction is added: every position, or only the probe's
    /// own site (the answer position for `last`, the target's image tokens for `target`).
    #[arg(long, value_enum, default_value_t)]
    pub at: SteerAt,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SteerAt {
    #[default]
    All,
    Site,
}

pub fn run_probe_linear(args: &ProbeLinearArgs) -> Result<()> {
    // A mistyped run is refused before the features are collected.
    let run = args.run.as_deref().map(|r| crate::runs::existing_run(r).map(|dir| (r, dir))).transpose()?;
    let samples = args.set.samples()?;
    let engine = args.set.engine.load()?;
    let features = direction_probe::collect(&engine, &samples, &crate::engine::ResizePolicy::Auto, &mut |done, total| {
        if done % 50 == 0 || done == total {
            eprintln!("features {done}/{total}");
        }
    })?;
    for s in features.skipped.iter().take(5) {
        eprintln!("warning: skipped {s}");
    }
    let axes = if args.axes.is_empty() { Axis::ALL.to_vec() } else { args.axes.clone() };
    let mut probes: Vec<DirectionProbe> = Vec::new();
    for site in Site::ALL {
        if features.at(site).is_none() {
            eprintln!("note: no {} probes (some sample has no target box)", site.name());
            continue;
        }
        for &axis in &axes {
            match direction_probe::fit(&features, axis, site) {
                Ok(p) => probes.push(p),
                Err(e) if !args.axes.is_empty() => return Err(e),
                Err(e) => eprintln!("note: {e}"),
            }
        }
    }
    if probes.is_empty() {
        bail!("no probe could be fitted on {}", args.set.data);
    }
    let names: Vec<String> = probes.iter().map(|p| format!("{}@{}", p.axis.name(), p.site.name())).collect();
    println!("held-out probe accuracy by layer (`vision`: the vision tower's output, before layer 0)");
    println!("layer  {}", names.iter().map(|n| format!("{n:>22}")).collect::<String>());
    let layers = probes.iter().map(|p| p.test_accuracy.len()).max().unwrap_or(0);
    let cell = |v: Option<&f64>| v.map(|a| format!("{:>21.1}%", 100.0 * a)).unwrap_or_else(|| format!("{:>22}", "-"));
    if probes.iter().any(|p| p.site == Site::Vision) {
        let row: String = probes.iter().map(|p| cell(p.test_accuracy.first().filter(|_| p.site == Site::Vision))).collect();
        println!("{:>6} {row}", "vision");
    }
    for l in 0..layers {
        let row: String = probes.iter().map(|p| cell(p.test_accuracy.get(l).filter(|_| p.site != Site::Vision))).collect();
        println!("{l:>6} {row}");
    }
    println!("{:>6} {}", "n", probes.iter().map(|p| format!("{:>22}", format!("{} / {}", p.n_train, p.n_test))).collect::<String>());
    let split = match &run {
        Some((name, dir)) => by_outcome(name, dir, &features, &probes, &names)?,
        None => vec![],
    };
    direction_probe::save(&probes, &args.out)?;
    println!("wrote {}", args.out.display());
    if let Some(png) = &args.plot {
        // A vision probe has one value (before layer 0): drawn level across the layers, as a reference.
        let level = |p: &DirectionProbe, acc: &[f64]| if p.site == Site::Vision { vec![acc[0]; layers] } else { acc.to_vec() };
        let label = |p: &DirectionProbe, n: &str| if p.site == Site::Vision { format!("{n} (before layer 0)") } else { n.to_string() };
        // With a run: the samples the model gets right against its horizontal flips, per probe.
        let shown = ["correct", "horizontal_flip"];
        let series: Vec<(String, Vec<f64>)> = if split.iter().any(|s| shown.contains(&s.outcome.as_str())) {
            split
                .iter()
                .filter(|s| shown.contains(&s.outcome.as_str()))
                .map(|s| {
                    (
                        format!("{} · {} (n {})", label(&probes[s.probe], &names[s.probe]), s.outcome, s.n),
                        level(&probes[s.probe], &s.accuracy),
                    )
                })
                .collect()
        } else {
            names.iter().zip(&probes).map(|(n, p)| (label(p, n), level(p, &p.test_accuracy))).collect()
        };
        // The title names only the outcomes the plot draws.
        let has = |o: &str| split.iter().any(|s| s.outcome == o);
        let run = args.run.as_deref().unwrap_or("");
        let title = match (split.is_empty(), has("correct"), has("horizontal_flip")) {
            (true, ..) => "direction probes: held-out accuracy".to_string(),
            (false, true, true) => format!("direction probes: held-out accuracy where {run} answers correctly vs its horizontal flips"),
            (false, true, false) => {
                format!("direction probes: held-out accuracy where {run} answers correctly (no horizontal flips held out)")
            }
            (false, false, true) => {
                format!("direction probes: held-out accuracy on {run}'s horizontal flips (none held out answered correctly)")
            }
            (false, false, false) => "direction probes: held-out accuracy (no correct answers or flips held out)".to_string(),
        };
        layer_lines(&title, "accuracy", &series, (0.0, 1.0), png)?;
        println!("wrote {}", png.display());
    }
    Ok(())
}

/// The model's accuracy on the held-out samples in `run`, and each probe's
/// held-out accuracy split by the model's outcome on the sample: whether the
/// direction is in the representation where the model answers wrong.
/// One probe's held-out accuracy on the samples with one outcome.
struct OutcomeAccuracy {
    probe: usize,
    outcome: String,
    n: usize,
    /// Per layer (one value for a vision probe).
    accuracy: Vec<f64>,
}

fn by_outcome(
    run: &str,
    dir: &std::path::Path,
    features: &direction_probe::Features,
    probes: &[DirectionProbe],
    names: &[String],
) -> Result<Vec<OutcomeAccuracy>> {
    let records = crate::runs::RunDir::new(dir).read_records()?.records;
    let first: std::collections::HashMap<&str, &crate::runs::Record> =
        records.iter().rev().filter(|r| r.sample.is_none() && r.rotation == 0).map(|r| (r.id.as_str(), r)).collect();
    let held: Vec<&str> = features.ids.iter().zip(&features.held_out).filter(|(_, h)| **h).map(|(i, _)| i.as_str()).collect();
    let judged: Vec<bool> = held.iter().filter_map(|id| first.get(id)).map(|r| r.is_correct()).collect();
    if judged.is_empty() {
        eprintln!("note: run {run} has no records of the held-out samples");
        return Ok(vec![]);
    }
    let right = judged.iter().filter(|c| **c).count();
    println!(
        "model accuracy on the held-out samples ({run}): {:.1}% ({right}/{})",
        100.0 * right as f64 / judged.len() as f64,
        judged.len()
    );
    println!("held-out probe accuracy by the model's outcome on the sample ({run}); columns: vision or layers 0..");
    let mut out = Vec::new();
    for (i, (p, name)) in probes.iter().zip(names).enumerate() {
        let mut groups: std::collections::BTreeMap<String, Vec<Vec<bool>>> = Default::default();
        for h in p.held_out(features)? {
            let outcome = crate::runs::causal_log::outcome(first.get(features.ids[h.sample].as_str()).copied());
            groups.entry(outcome).or_default().push(h.correct);
        }
        for (outcome, rows) in groups {
            let accuracy: Vec<f64> = (0..rows[0].len()).map(|l| rows.iter().filter(|r| r[l]).count() as f64 / rows.len() as f64).collect();
            let cells: Vec<String> = accuracy.iter().map(|a| format!("{:>6.1}%", 100.0 * a)).collect();
            println!("  {name:<22} {outcome:<18} n {:>4} {}", rows.len(), cells.join(" "));
            out.push(OutcomeAccuracy { probe: i, outcome, n: rows.len(), accuracy });
        }
    }
    Ok(out)
}

pub fn run_steer(args: &SteerArgs) -> Result<()> {
    if args.site == Site::Vision {
        bail!("--site vision: that probe reads the vision tower's output, which has no layer to steer; use last or target");
    }
    let probes = direction_probe::load(&args.probes)?;
    let probe = probes
        .iter()
        .find(|p| p.axis == args.axis && p.site == args.site)
        .with_context(|| format!("{}: no {} probe at {}", args.probes.display(), args.axis.name(), args.site.name()))?;
    let direction = probe.direction(args.layer)?;
    let unit = probe.norm.double_value(&[args.layer as i64]);
    let samples = args.set.samples()?;
    let engine = args.set.engine.load()?;
    let text = &engine.model.config.text;
    let (layers, width) = (probe.weight.size()[0], probe.weight.size()[1]);
    if width != text.hidden_size || layers != text.num_hidden_layers {
        bail!(
            "{}: the probes have {layers} layers {width} wide; this model has {} layers of hidden size {}",
            args.probes.display(),
            text.num_hidden_layers,
            text.hidden_size
        );
    }
    let (mut decisions, mut at) = (Vec::new(), Vec::new());
    for s in &samples {
        let one = || -> Result<_> {
            let images = load_images(s)?;
            let prompt = engine.processor.prepare(&images, &mcq_prompt(&s.question, s), &crate::engine::ResizePolicy::Auto)?;
            let d = for_sample(&engine, s, &prompt, args.answer)?;
            let positions = match (args.at, args.site) {
                (SteerAt::All, _) => None,
                (SteerAt::Site, Site::Target) => {
                    let b = reference_and_target(s).1.context("no target box: --at site steers the target's image tokens")?;
                    Some(crate::causal::pass::regions(&engine, &d.prompt)?.in_box(b)?)
                }
                (SteerAt::Site, _) => Some(vec![d.prompt.input_ids.len() - 1]),
            };
            Ok((d, positions))
        };
        match one() {
            Ok((d, p)) => {
                decisions.push(d);
                at.push(p);
            }
            Err(e) => eprintln!("warning: skipped {}: {e:#}", s.id),
        }
    }
    if decisions.is_empty() {
        bail!("no sample of {} could be steered ({} skipped, each named above)", args.set.data, samples.len());
    }
    let rows = direction_probe::steer(&engine, &decisions, &at, args.axis, args.layer, &direction, unit, &args.alpha)?;
    let (pos, neg) = match args.axis {
        Axis::LeftRight => ("right", "left"),
        Axis::FrontBack => ("front", "back"),
        Axis::AboveBelow => ("above", "below"),
    };
    println!(
        "steering layer {} at {} along the {} probe at {} (held-out accuracy {:.1}%), alpha in units of the layer's mean residual norm {unit:.3}",
        args.layer,
        match args.at {
            SteerAt::All => "every position",
            SteerAt::Site => "the probe's site only",
        },
        args.axis.name(),
        args.site.name(),
        100.0 * probe.test_accuracy[args.layer]
    );
    println!("{:>8} {:>8} {:>8} {:>8}  mean log p({pos}) - log p({neg})", "alpha", pos, neg, "neither");
    for r in &rows {
        let m = r.mean_margin.map(|m| format!("{m:+.4}")).unwrap_or_else(|| "-".into());
        println!("{:>8.2} {:>8} {:>8} {:>8}  {m}", r.alpha, r.positive, r.negative, r.neither);
    }
    Ok(())
}
