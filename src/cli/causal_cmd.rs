//! `flipscope lens`, `knockout` and `patch`: the causal experiments on one sample.

use super::target::{Target, TargetArgs};
use crate::causal::ablate::{Baseline, Region};
use crate::causal::batch::{BatchExperiment, BatchSpec};
use crate::causal::regions::reference_and_target;
use crate::causal::{self, AnswerForm, Decision, EdgeGroup, KnockoutSpec, Pass, PositionGroup};
use crate::data::BoundingBox;
use crate::runs::causal_log::Binding;
use crate::viz::chart::{heat_table, layer_chart, LayerChart};
use anyhow::{bail, Context, Result};
use clap::Args;
use polars::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CausalArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How the model answers: auto reads whichever of the letters or the
    /// options' words it puts more probability on.
    #[arg(long, value_enum, default_value_t)]
    pub answer: AnswerForm,
    /// Read this token id at the answer position instead of the options.
    #[arg(long)]
    pub target_token: Option<i64>,
    /// Write the experiment's tensors (f32 safetensors).
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub dump: Option<PathBuf>,
    /// Write the result as a chart (.png) or a table (.csv, .parquet).
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub out: Option<PathBuf>,
    /// Batch mode (--data without --id): the eval run of this model on this
    /// data; one row per sample goes to RUN/causal/, and `report RUN` sums
    /// them up by the samples' outcomes there. Not with --id (one sample writes no rows).
    #[arg(long, conflicts_with = "id")]
    pub run: Option<String>,
    /// Batch mode: which samples (eval's filter: category=..., id~..., gold=..., dataset=...).
    #[arg(long, conflicts_with = "id", value_parser = crate::data::SampleFilter::parse)]
    pub filter: Option<crate::data::SampleFilter>,
    /// Batch mode: at most this many samples.
    #[arg(long, conflicts_with = "id")]
    pub limit: Option<usize>,
}

impl CausalArgs {
    /// Batch mode: a dataset without one sample named.
    fn is_batch(&self) -> bool {
        self.target.data.is_some() && self.target.id.is_none()
    }
}

/// Runs `experiment` over the filtered samples of `--data` into `--run`'s causal rows.
fn run_batch(args: &CausalArgs, experiment: BatchExperiment) -> Result<()> {
    let spec = args.target.data.as_deref().expect("batch mode has --data");
    let run =
        args.run.as_deref().context("batch mode (--data without --id) needs --run RUN: the eval run whose outcomes group the results")?;
    if args.dump.is_some() || args.out.is_some() || args.target_token.is_some() {
        bail!("--dump, --out and --target-token are for one sample (--id); a batch writes RUN/causal/ and `report RUN` sums it up");
    }
    let dir = crate::runs::existing_run(run)?;
    let samples = crate::data::filter::select(spec, args.filter.as_ref(), args.limit)?;
    // Refused before the model loads when the run was made with another model, adapter or data.
    let bound = Binding::of(&args.target.engine.model, args.target.engine.adapter.as_deref(), spec)?;
    bound.check(&dir)?;
    let engine = args.target.engine.load()?;
    let spec = BatchSpec { experiment: &experiment, form: args.answer, policy: &args.target.policy() };
    let written = crate::causal::batch::session(&engine, &samples, &spec, &dir, &bound, &mut |done, total, id| {
        eprintln!("{} {done}/{total} {id}", experiment.experiment().name());
        crate::engine::Flow::Continue
    })?;
    super::warn(&written.notes);
    println!("{written}; `flipscope report {run}` sums them up");
    Ok(())
}

#[derive(Args, Debug)]
pub struct LensArgs {
    #[command(flatten)]
    pub common: CausalArgs,
    /// Top tokens listed per layer.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
}

#[derive(Args, Debug)]
pub struct KnockoutArgs {
    #[command(flatten)]
    pub common: CausalArgs,
    /// Consecutive layers blocked together.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Edge groups, in this order (default: all that apply).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub edges: Vec<EdgeGroup>,
    /// The box of box->last (x0,y0,x1,y1 in original pixels); default: the sample's reference box.
    #[arg(long, value_parser = BoundingBox::parse)]
    pub r#box: Option<BoundingBox>,
}

#[derive(Args, Debug)]
pub struct AblateArgs {
    #[command(flatten)]
    pub common: CausalArgs,
    /// Regions whose image tokens are replaced, in this order.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub regions: Vec<Region>,
    /// blur: the same image blurred; mean: the batch's mean image embeddings (batch mode).
    #[arg(long, value_enum, default_value_t)]
    pub baseline: Baseline,
}

#[derive(Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub common: CausalArgs,
    /// Position groups, in this order (default: all that apply).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub groups: Vec<PositionGroup>,
    /// Below this |LD clean - LD mirrored| (nats) no share of LD restored is shown: it would be a ratio over noise.
    #[arg(long, default_value_t = crate::runs::warnings::DEFAULT_MIN_LD_GAP, value_parser = crate::kv::numbers::non_negative)]
    pub min_ld_gap: f64,
}

/// The target, its prompt and the decision the experiment reads.
fn decide(args: &CausalArgs) -> Result<(Target, Decision)> {
    if let Some(out) = &args.out {
        out_kind(out)?;
    }
    let t = args.target.resolve()?;
    let prompt = t.prompt()?;
    let tok = &t.engine.processor.tokenizer;
    let decision = match (args.target_token, &t.sample) {
        (Some(id), _) => {
            if id < 0 || id >= t.engine.model.config.text.vocab_size {
                bail!("--target-token {id}: not in the vocabulary (0..{})", t.engine.model.config.text.vocab_size);
            }
            Decision::plain(prompt, Some((id, tok.decode(&[id], false)?)))
        }
        (None, Some(s)) if !s.options.is_empty() => causal::decision::for_sample(&t.engine, s, &prompt, args.answer)?,
        _ => Decision::plain(prompt, None),
    };
    if !decision.opening.is_empty() {
        println!("answer opening  {:?} (shared by the answer and its mirror; read after it)", tok.decode(&decision.opening, false)?);
    }
    Ok((t, decision))
}

/// What `--out` asks for, by its extension.
enum OutKind {
    Png,
    Table,
}

fn out_kind(path: &Path) -> Result<OutKind> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Ok(OutKind::Png),
        Some("csv") | Some("parquet") => Ok(OutKind::Table),
        _ => bail!("--out {}: give a .png, .csv or .parquet file", path.display()),
    }
}

/// Writes `frame` as CSV or parquet, by `path`'s extension.
fn write_table(path: &Path, mut frame: DataFrame) -> Result<()> {
    crate::fsutil::check_output(path)?;
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let written =
        if parquet { ParquetWriter::new(&mut file).finish(&mut frame).map(|_| ()) } else { CsvWriter::new(&mut file).finish(&mut frame) };
    anyhow::Context::with_context(written, || format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `--out`: a chart from `png`, or the table from `table`.
fn write_out(out: &Option<PathBuf>, png: impl FnOnce(&Path) -> Result<()>, table: impl FnOnce() -> Result<DataFrame>) -> Result<()> {
    let Some(path) = out else { return Ok(()) };
    match out_kind(path)? {
        OutKind::Png => {
            png(path)?;
            println!("wrote {}", path.display());
            Ok(())
        }
        OutKind::Table => write_table(path, table()?),
    }
}

fn dumped(path: &Option<PathBuf>, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(p) = path {
        write(p)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

pub fn run_lens(args: &LensArgs) -> Result<()> {
    if args.common.is_batch() {
        return run_batch(&args.common, BatchExperiment::Lens);
    }
    let (t, decision) = decide(&args.common)?;
    let vocab = t.engine.model.config.text.vocab_size as usize;
    if args.top > vocab {
        eprintln!("note: --top {}: the vocabulary has {vocab} tokens; listing all of them", args.top);
    }
    let lens = causal::logit_lens(&t.engine, &decision, args.top)?;
    let tok = &t.engine.processor.tokenizer;
    let labels: Vec<String> = lens.candidates.iter().map(|c| c.label.clone()).collect();
    let opening = tok.decode(&decision.opening, false)?;
    println!("compares        {}", causal::decision::compared(decision.form, &labels, &opening));
    println!("layer  {}  top tokens (whole vocabulary)", labels.iter().map(|l| format!("{l:>12}")).collect::<String>());
    for (l, row) in lens.curve.iter().enumerate() {
        let top: Vec<String> =
            lens.top[l].iter().map(|(id, p)| format!("{:?} {:.2}", tok.decode(&[*id], false).unwrap_or_default(), p)).collect();
        println!("{l:>5}  {}  {}", row.iter().map(|p| format!("{p:>12.4}")).collect::<String>(), top.join(", "));
    }
    match (lens.answer, lens.decided_at) {
        (Some(a), Some(at)) => println!("answer          {} leads the candidates from layer {at} on", lens.candidates[a].label),
        (Some(a), None) => println!("answer          {}", lens.candidates[a].label),
        _ => {}
    }
    write_out(
        &args.common.out,
        |png| {
            let series: Vec<(String, Vec<f64>)> = lens
                .candidates
                .iter()
                .enumerate()
                .map(|(c, cand)| {
                    let name = if decision.gold == Some(c) { format!("{} (gold)", cand.label) } else { cand.label.clone() };
                    (name, lens.curve.iter().map(|row| row[c] as f64).collect())
                })
                .collect();
            let sample = t.sample_suffix();
            let gold = decision.gold.map(|g| format!(" · gold {}", lens.candidates[g].label)).unwrap_or_default();
            let at = if opening.is_empty() { "at the answer position".to_string() } else { format!("after {opening:?}") };
            let title = format!("logit lens{sample} · p {at}{gold}");
            let mark = lens.answer.zip(lens.decided_at).map(|(a, at)| (at, format!("{} leads from layer {at}", lens.candidates[a].label)));
            layer_chart(
                &LayerChart { title: &title, y_desc: "probability", series: &series, y_range: (0.0, 1.0), mark, emphasis: decision.gold },
                png,
            )
        },
        || {
            let cells: Vec<(u32, usize, f32)> =
                lens.curve.iter().enumerate().flat_map(|(l, row)| row.iter().enumerate().map(move |(c, &p)| (l as u32, c, p))).collect();
            Ok(df!(
                "layer" => cells.iter().map(|x| x.0).collect::<Vec<_>>(),
                "candidate" => cells.iter().map(|x| lens.candidates[x.1].label.clone()).collect::<Vec<_>>(),
                "token" => cells.iter().map(|x| lens.candidates[x.1].token).collect::<Vec<_>>(),
                "probability" => cells.iter().map(|x| x.2).collect::<Vec<_>>(),
            )?)
        },
    )?;
    dumped(&args.common.dump, |p| lens.dump(p))
}

pub fn run_knockout(args: &KnockoutArgs) -> Result<()> {
    if args.common.is_batch() {
        let edges = if args.edges.is_empty() { EdgeGroup::ALL.to_vec() } else { args.edges.clone() };
        return run_batch(&args.common, BatchExperiment::Knockout { window: args.window, edges });
    }
    let (t, decision) = decide(&args.common)?;
    if let (Some(b), Some(img)) = (&args.r#box, t.images.first()) {
        b.check_within(img.width(), img.height()).map_err(|e| anyhow::anyhow!("--box: {e}"))?;
    }
    let boxed = args.r#box.clone().or_else(|| t.sample.as_ref().and_then(|s| reference_and_target(s).0.cloned()));
    let edges: Vec<EdgeGroup> = if args.edges.is_empty() { EdgeGroup::applicable(boxed.is_some()) } else { args.edges.clone() };
    let target = args.common.target_token;
    let gold = decision.gold.map(|g| decision.candidates[g].token);
    let pass = Pass::run(&t.engine, &decision.prompt)?;
    let spec = KnockoutSpec { window: args.window, edges: &edges, target, gold, boxed: boxed.as_ref() };
    let sweep = causal::knockout(&t.engine, &pass, &spec)?;
    let tok = &t.engine.processor.tokenizer;
    println!(
        "target          {:?} (token {}): log-prob {:.4} unblocked{}",
        tok.decode(&[sweep.target], false)?,
        sweep.target,
        sweep.base_logprob,
        if target.is_none() { ", the model's answer" } else { "" }
    );
    println!("change in the target's log-prob with the edges blocked in layers [start, start + {}):", args.window);
    println!("start  {}", edges.iter().map(|e| format!("{:>16}", e.name())).collect::<String>());
    for (w, row) in sweep.logprob.iter().enumerate() {
        println!("{w:>5}  {}", row.iter().map(|lp| format!("{:>16.4}", lp - sweep.base_logprob)).collect::<String>());
    }
    let names: Vec<String> = edges.iter().map(|e| e.name().to_string()).collect();
    write_out(
        &args.common.out,
        |png| {
            let rows: Vec<String> = (0..sweep.logprob.len()).map(|w| format!("from {w}")).collect();
            let deltas: Vec<Vec<f64>> = sweep.logprob.iter().map(|r| r.iter().map(|lp| lp - sweep.base_logprob).collect()).collect();
            let sample = t.sample_suffix();
            let title = format!("knockout{sample}: change in log p(target), {} layer(s) blocked", args.window);
            heat_table(&title, ("window start", "edges blocked"), &rows, &names, &deltas, true, png)
        },
        || {
            let cells: Vec<(u32, usize)> = (0..sweep.logprob.len()).flat_map(|w| (0..edges.len()).map(move |g| (w as u32, g))).collect();
            Ok(df!(
                "window_start" => cells.iter().map(|c| c.0).collect::<Vec<_>>(),
                "edges" => cells.iter().map(|c| names[c.1].clone()).collect::<Vec<_>>(),
                "target_logprob" => cells.iter().map(|c| sweep.logprob[c.0 as usize][c.1]).collect::<Vec<_>>(),
                "delta" => cells.iter().map(|c| sweep.logprob[c.0 as usize][c.1] - sweep.base_logprob).collect::<Vec<_>>(),
                "gold_logprob" => cells.iter().map(|c| sweep.gold_logprob.as_ref().map(|t| t[c.0 as usize][c.1])).collect::<Vec<_>>(),
            )?)
        },
    )?;
    dumped(&args.common.dump, |p| sweep.dump(p))
}

pub fn run_patch(args: &PatchArgs) -> Result<()> {
    if args.common.is_batch() {
        let groups = if args.groups.is_empty() { PositionGroup::ALL.to_vec() } else { args.groups.clone() };
        return run_batch(&args.common, BatchExperiment::Patch { groups });
    }
    let (t, decision) = decide(&args.common)?;
    let boxes = t.sample.as_ref().map(reference_and_target).unwrap_or((None, None));
    let groups: Vec<PositionGroup> =
        if args.groups.is_empty() { PositionGroup::applicable(boxes.0.is_some(), boxes.1.is_some()) } else { args.groups.clone() };
    if t.images.is_empty() {
        bail!("patching mirrors the image: give an image");
    }
    let corrupt = causal::patch::mirrored_prompt(&t.engine, &t.images, &t.text, &t.policy)
        .context("preparing the mirrored image")?
        .extended(&decision.opening);
    let sweep = causal::patch(&t.engine, &decision, &corrupt, &groups, boxes)?;
    let tok = &t.engine.processor.tokenizer;
    println!(
        "LD              logit({:?}) - logit({:?}), {}: clean {:.4}, mirrored {:.4}",
        tok.decode(&[sweep.plus], false)?,
        tok.decode(&[sweep.minus], false)?,
        sweep.contrast_from,
        sweep.ld_clean,
        sweep.ld_corrupt
    );
    if crate::runs::warnings::ld_gap_too_small(sweep.ld_clean, sweep.ld_corrupt, args.min_ld_gap) {
        let gap = (sweep.ld_clean - sweep.ld_corrupt).abs();
        println!(
            "⚠ small_ld_gap: the mirror moves LD by {gap:.4} nats, under {}: a share of it restored would be a ratio over noise",
            args.min_ld_gap
        );
        println!("no share of LD restored is shown (--min-ld-gap sets the threshold; --dump keeps the raw numbers)");
        dumped(&args.common.dump, |p| sweep.dump(p))?;
        if args.common.out.is_some() {
            bail!("nothing written to --out: this sample has no ratios to draw (--min-ld-gap 0 draws them anyway)");
        }
        return Ok(());
    }
    println!("share of LD restored by patching the clean residual stream into the mirrored run:");
    println!("layer   {}", groups.iter().map(|g| format!("{:>10}", g.name())).collect::<String>());
    let cell = |v: Option<f64>| v.map(|x| format!("{x:>10.3}")).unwrap_or_else(|| format!("{:>10}", "-"));
    println!("vision  {}", sweep.vision_effect.iter().map(|v| cell(*v)).collect::<String>());
    for (l, row) in sweep.effect.iter().enumerate() {
        println!("{l:>5}   {}", row.iter().map(|v| cell(Some(*v))).collect::<String>());
    }
    // The vision tower's row first, then each layer's.
    let rows: Vec<String> = std::iter::once("vision".to_string()).chain((0..sweep.effect.len()).map(|l| l.to_string())).collect();
    let values: Vec<Vec<f64>> =
        std::iter::once(sweep.vision_effect.iter().map(|v| v.unwrap_or(f64::NAN)).collect()).chain(sweep.effect.iter().cloned()).collect();
    let names: Vec<String> = groups.iter().map(|g| g.name().to_string()).collect();
    write_out(
        &args.common.out,
        |png| {
            let sample = t.sample_suffix();
            let title = format!("patching{sample}: share of LD restored (clean -> mirrored)");
            heat_table(&title, ("layer output patched", "positions"), &rows, &names, &values, true, png)
        },
        || {
            let cells: Vec<(usize, usize)> = (0..rows.len()).flat_map(|r| (0..names.len()).map(move |g| (r, g))).collect();
            Ok(df!(
                "layer" => cells.iter().map(|c| rows[c.0].clone()).collect::<Vec<_>>(),
                "group" => cells.iter().map(|c| names[c.1].clone()).collect::<Vec<_>>(),
                "effect" => cells.iter().map(|c| Some(values[c.0][c.1]).filter(|v| v.is_finite())).collect::<Vec<_>>(),
            )?)
        },
    )?;
    dumped(&args.common.dump, |p| sweep.dump(p))
}

pub fn run_ablate(args: &AblateArgs) -> Result<()> {
    let regions = if args.regions.is_empty() { Region::ALL.to_vec() } else { args.regions.clone() };
    if args.common.dump.is_some() {
        bail!("ablate has no --dump: its numbers are the table (--out .csv/.parquet)");
    }
    if args.common.is_batch() {
        return run_batch(&args.common, BatchExperiment::Ablate { regions, baseline: args.baseline });
    }
    if args.baseline == Baseline::Mean {
        bail!("--baseline mean is the mean over a batch's images: give --data without --id (and --run)");
    }
    let (t, decision) = decide(&args.common)?;
    if decision.candidates.is_empty() {
        bail!("ablation reads the options' scores: give a sample with options (--data/--id) or --target-token");
    }
    let sample = t.sample.as_ref().context("ablation needs the sample's boxes: give --data and --id")?;
    let base = causal::ablate::blurred_vision(&t.engine, &t.images, &t.text, &t.policy)?;
    let a = causal::ablate::ablate(&t.engine, &decision, &base, &regions, reference_and_target(sample))?;
    let labels: Vec<String> = decision.candidates.iter().map(|c| c.label.clone()).collect();
    println!("log-probs of the candidates, unablated and with each region's image tokens blurred");
    println!("{:<12} {}", "", labels.iter().map(|l| format!("{l:>14}")).collect::<String>());
    println!("{:<12} {}", "none", a.base.iter().map(|v| format!("{v:>14.4}")).collect::<String>());
    for ((r, row), changed) in regions.iter().zip(&a.ablated).zip(a.changed()) {
        println!(
            "{:<12} {}{}",
            r.name(),
            row.iter().map(|v| format!("{v:>14.4}")).collect::<String>(),
            if changed { "  answer changed" } else { "" }
        );
    }
    write_out(
        &args.common.out,
        |png| {
            let rows: Vec<String> = regions.iter().map(|r| r.name().to_string()).collect();
            let deltas: Vec<Vec<f64>> = a.ablated.iter().map(|row| row.iter().zip(&a.base).map(|(x, b)| x - b).collect()).collect();
            let sample = t.sample_suffix();
            let title = format!("ablation{sample}: change in each candidate's log-prob");
            heat_table(&title, ("region replaced", "candidate"), &rows, &labels, &deltas, true, png)
        },
        || {
            let cells: Vec<(usize, usize)> = (0..regions.len()).flat_map(|r| (0..labels.len()).map(move |c| (r, c))).collect();
            Ok(df!(
                "region" => cells.iter().map(|c| regions[c.0].name()).collect::<Vec<_>>(),
                "candidate" => cells.iter().map(|c| labels[c.1].clone()).collect::<Vec<_>>(),
                "logprob" => cells.iter().map(|c| a.ablated[c.0][c.1]).collect::<Vec<_>>(),
                "delta" => cells.iter().map(|c| a.ablated[c.0][c.1] - a.base[c.1]).collect::<Vec<_>>(),
            )?)
        },
    )?;
    Ok(())
}
