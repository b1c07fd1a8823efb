//! `flipscope report`: accuracy, error kinds, confusion, letter bias and
//! paired comparisons of runs, computed once as a `Report` and rendered as
//! a table, markdown, CSV/parquet (the accuracy tables) or JSON (all of it).

use crate::runs::report::{AccuracyRow, GroupBy};
use crate::runs::report_model::{Comparison, LoadedRun, Report, RunReport};
use crate::runs::run_dir;
use crate::runs::store::read_records;
use anyhow::{bail, Context, Result};
use clap::Args;
use polars::prelude::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How `report` writes its tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned text for a terminal.
    #[default]
    Table,
    /// Markdown tables.
    Md,
    Csv,
    /// Parquet (needs --out).
    Parquet,
    Json,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run names (under ./runs/) or run directories.
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// Compare the (first) run with this one, sample by sample.
    #[arg(long)]
    pub vs: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub by: GroupBy,
    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
    /// Grouped bar chart of task-wise accuracy across the runs (PNG).
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub plot: Option<PathBuf>,
    /// Where csv/parquet/json go (default: stdout for csv and json).
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub out: Option<PathBuf>,
    /// Compare with --vs even when the runs' datasets differ, pairing only the questions both answered.
    #[arg(long)]
    pub allow_different_data: bool,
    /// Patching samples whose |LD clean - LD mirrored| is below this (nats) get no share of LD restored.
    #[arg(long, default_value_t = crate::runs::warnings::DEFAULT_MIN_LD_GAP, value_parser = crate::kv::numbers::non_negative)]
    pub min_ld_gap: f64,
    /// Treat the arguments as training output folders and plot their loss curves (PNG).
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub loss: Option<PathBuf>,
}

/// `report --loss PNG DIR...`: loss curves and a summary line per training run.
fn loss_report(dirs: &[String], png: &Path) -> Result<()> {
    let mut runs = Vec::new();
    for d in dirs {
        let path = Path::new(d).join(crate::train::checkpoint::METRICS_FILE);
        let steps = crate::train::metrics::read(&path)?;
        if steps.is_empty() {
            bail!("{}: no steps logged", path.display());
        }
        runs.push((d.clone(), steps));
    }
    let series: Vec<crate::runs::plot::LossSeries> = runs
        .iter()
        .map(|(name, steps)| crate::runs::plot::LossSeries {
            name: name.clone(),
            loss: steps.iter().map(|m| (m.step as f64, m.loss)).collect(),
            accuracy: steps.iter().filter_map(|m| Some((m.step as f64, m.eval_accuracy?))).collect(),
        })
        .collect();
    crate::runs::plot::loss_curves(&series, png)?;
    for (name, steps) in &runs {
        let last = steps.last().expect("non-empty");
        let min = steps.iter().map(|m| m.loss).fold(f64::INFINITY, f64::min);
        let eval = steps.iter().rev().find_map(|m| m.eval_accuracy.map(|a| format!("  last eval {:.1}%", 100.0 * a))).unwrap_or_default();
        println!("{name}: {} steps, loss {:.4} (min {min:.4}), {:.0} tok/s{eval}", last.step, last.loss, last.tokens_per_s);
    }
    eprintln!("wrote {}", png.display());
    Ok(())
}

fn load(name: &str) -> Result<LoadedRun> {
    let dir = crate::runs::RunDir::new(run_dir(name));
    let path = dir.records_path();
    let read = read_records(&path).with_context(|| format!("run `{name}`"))?;
    super::warn(&read.notes(&path));
    let records = read.records;
    let meta = dir.read_meta().ok().flatten();
    Ok(LoadedRun { name: name.to_string(), dir: dir.path().to_path_buf(), meta, records })
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn accuracy_frame(runs: &[(String, Vec<AccuracyRow>)], by: &str) -> Result<DataFrame> {
    let rows: Vec<(&str, &AccuracyRow)> = runs.iter().flat_map(|(n, rs)| rs.iter().map(move |r| (n.as_str(), r))).collect();
    Ok(df!(
        "run" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        by => rows.iter().map(|r| r.1.group.as_str()).collect::<Vec<_>>(),
        "n" => rows.iter().map(|r| r.1.n as u64).collect::<Vec<_>>(),
        "correct" => rows.iter().map(|r| r.1.right as u64).collect::<Vec<_>>(),
        "accuracy" => rows.iter().map(|r| r.1.accuracy).collect::<Vec<_>>(),
        "ci95_low" => rows.iter().map(|r| r.1.lo).collect::<Vec<_>>(),
        "ci95_high" => rows.iter().map(|r| r.1.hi).collect::<Vec<_>>(),
    )?)
}

pub fn run(args: &ReportArgs) -> Result<()> {
    if let Some(png) = &args.loss {
        return loss_report(&args.runs, png);
    }
    let runs: Vec<LoadedRun> = args.runs.iter().map(|n| load(n)).collect::<Result<_>>()?;
    let vs = args.vs.as_deref().map(load).transpose()?;
    let report = Report::build(&runs, vs.as_ref(), args.by, args.allow_different_data, args.min_ld_gap)?;
    let tables: Vec<(String, Vec<AccuracyRow>)> = report.runs.iter().map(|r| (r.name.clone(), r.accuracy.clone())).collect();
    if let Some(png) = &args.plot {
        // The plot shows every run it compares: the --vs run beside the others.
        let mut plotted = tables.clone();
        plotted.extend(vs.as_ref().map(|v| (v.name.clone(), crate::runs::report::accuracy_by(&v.records, args.by))));
        crate::runs::plot::accuracy_bars(&plotted, png)?;
        eprintln!("wrote {}", png.display());
    }
    let sink = || -> Result<Box<dyn std::io::Write>> {
        Ok(match &args.out {
            Some(p) => {
                crate::fsutil::check_output(p)?;
                Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
            }
            None if args.format == ReportFormat::Parquet => bail!("--format parquet needs --out FILE"),
            None => Box::new(std::io::stdout()),
        })
    };
    let written = (|| -> Result<()> {
        match args.format {
            // One table fits a CSV or parquet file: the accuracy tables, one row per run and group.
            ReportFormat::Csv => CsvWriter::new(&mut sink()?).finish(&mut accuracy_frame(&tables, args.by.column())?)?,
            ReportFormat::Parquet => {
                ParquetWriter::new(&mut sink()?).finish(&mut accuracy_frame(&tables, args.by.column())?)?;
            }
            // JSON carries the whole report.
            ReportFormat::Json => {
                let mut out = sink()?;
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
                out.flush()?;
            }
            ReportFormat::Table | ReportFormat::Md => {
                print!("{}", render_text(&report, args.format == ReportFormat::Md));
            }
        }
        Ok(())
    })();
    // A full disk names the file it could not write.
    written.with_context(|| args.out.as_ref().map(|p| format!("writing {}", p.display())).unwrap_or_else(|| "writing the report".into()))
}

/// One table row: markdown cells, or aligned text (the first column
/// left-aligned `first` wide, the rest right-aligned `rest` wide).
fn table_row(cells: &[String], md: bool, first: usize, rest: usize) -> String {
    if md {
        format!("| {} |", cells.join(" | "))
    } else {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i == 0 { format!("{c:<first$}") } else { format!("{c:>rest$}") })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The sampled-answer table: pass@k for k = 1, 2, 4, ..., maj@N, entropy, flip rate.
fn sampled_lines(by: &str, rows: &[crate::runs::sampling::SampledRow], md: bool) -> Vec<String> {
    let n = rows.last().map(|r| r.n).unwrap_or(0);
    let max_n = rows.last().map(|r| r.max_n).unwrap_or(0);
    let mut head = vec![by.to_string(), "questions".into()];
    head.extend(rows.last().map(|r| r.pass_at.iter().map(|(k, _)| format!("pass@{k} %")).collect::<Vec<_>>()).unwrap_or_default());
    head.extend([format!("maj@{n} %"), "entropy bits".into(), "flip rate %".into()]);
    let line = |cells: &[String]| table_row(cells, md, 28, 13);
    let per = if n == max_n { format!("{n} per question") } else { format!("{n} to {max_n} per question") };
    let mut out = vec![format!("\nsampled answers ({per}; the accuracy above counts every sample, which is pass@1)"), line(&head)];
    if md {
        out.push(format!("|{}", "---|".repeat(head.len())));
    }
    for r in rows {
        let mut cells = vec![r.group.clone(), r.questions.to_string()];
        cells.extend(r.pass_at.iter().map(|(_, p)| pct(*p)));
        cells.extend([pct(r.maj), format!("{:.3}", r.entropy), pct(r.flip_rate)]);
        out.push(line(&cells));
    }
    out
}

/// The report as aligned text, or as markdown tables.
fn render_text(report: &Report, md: bool) -> String {
    let mut lines: Vec<String> = Vec::new();
    for run in &report.runs {
        lines.extend(run_lines(run, report.by, md));
    }
    if let Some(c) = &report.comparison {
        lines.extend(comparison_lines(c, md));
    }
    // What the batch causal experiments found, by outcome.
    for run in &report.runs {
        if let Some(c) = &run.causal {
            lines.push(format!("\n## {}: causal experiments", run.name));
            lines.extend(c.lines());
        }
    }
    lines.into_iter().map(|l| l + "\n").collect()
}

/// One run: accuracy by group, sampled answers, its warnings, error kinds, letters and confusion.
fn run_lines(run: &RunReport, by: GroupBy, md: bool) -> Vec<String> {
    let row = |cells: Vec<String>| table_row(&cells, md, 40, 14);
    let mut out = vec![format!("\n## {}", run.name)];
    if let Some(m) = &run.meta {
        out.push(format!("model {}  data {}  variant {}  decoding {}", m.model, m.dataset, m.variant, m.decoding));
    }
    if run.records == 0 {
        out.push("no records yet: nothing to report".into());
        return out;
    }
    out.push(row(vec![by.column().to_string(), "n".into(), "accuracy %".into(), "95% CI".into()]));
    if md {
        out.push("|---|---|---|---|".into());
    }
    out.extend(
        run.accuracy.iter().map(|r| row(vec![r.group.clone(), r.n.to_string(), pct(r.accuracy), format!("{}-{}", pct(r.lo), pct(r.hi))])),
    );
    if !run.sampled.is_empty() {
        out.extend(sampled_lines(by.column(), &run.sampled, md));
    }
    if let Some((circ, q)) = run.circular {
        out.push(format!("circular accuracy {}% ({circ}/{q})", pct(circ as f64 / q.max(1) as f64)));
    }
    if run.viewspatial_prompt {
        out.push("published ViewSpatial overall: Qwen2.5-VL-3B 35.85, 7B 36.85, MVSM 82.09, random 26.33".into());
    }
    if run.failed > 0 {
        out.push(format!("{} record(s) could not be run (counted wrong)", run.failed));
    }
    out.extend(run.warnings.iter().map(|w| w.to_string()));
    out.extend(run.notes.iter().cloned());
    out.push("\nerror kinds among errors".into());
    for e in &run.error_kinds {
        // In words, as every pane says them (the JSON keeps the names).
        let kind = crate::spatial::ErrorKind::from_name(&e.kind).map_or(e.kind.as_str(), |k| k.label());
        out.push(format!("  {kind:<16} {:>6}  {}%", e.count, pct(e.share)));
    }
    out.push("\nanswer letters: predicted vs gold".into());
    out.extend(run.letters.iter().map(|l| format!("  {:<4} predicted {:>6}  gold {:>6}", l.letter, l.predicted, l.gold)));
    for c in &run.confusion {
        let m = &c.matrix;
        out.push(format!("\nconfusion (gold rows x predicted columns): {}", c.category));
        out.push(format!("  {:<14} {}", "", m.predicted_labels.iter().map(|p| format!("{p:>12}")).collect::<String>()));
        for (g, counts) in m.gold_labels.iter().zip(&m.counts) {
            out.push(format!("  {g:<14} {}", counts.iter().map(|c| format!("{c:>12}")).collect::<String>()));
        }
    }
    out
}

/// Two runs paired by sample, with flip consistency beside its chance level.
fn comparison_lines(c: &Comparison, md: bool) -> Vec<String> {
    let row = |cells: Vec<String>| table_row(&cells, md, 40, 14);
    let mut out = vec![format!("\n## {} vs {} (paired by sample)", c.a, c.b)];
    if c.different_data || c.only_in_a + c.only_in_b > 0 {
        out.push(format!(
            "{}paired {} questions both runs answered; left out {} only in {} and {} only in {}",
            if c.different_data { "different datasets: " } else { "" },
            c.shared,
            c.only_in_a,
            c.a,
            c.only_in_b,
            c.b
        ));
    }
    let head = ["category", "both right", "only A", "only B", "both wrong", "McNemar p", "B-A % (95% CI)"];
    out.push(row(head.iter().map(|h| h.to_string()).collect()));
    if md {
        out.push("|---|---|---|---|---|---|---|".into());
    }
    for p in &c.paired {
        out.push(row(vec![
            p.group.clone(),
            p.both.to_string(),
            p.only_a.to_string(),
            p.only_b.to_string(),
            p.neither.to_string(),
            format!("{:.4}", p.p_mcnemar),
            format!("{} ({} to {})", pct(p.diff), pct(p.lo), pct(p.hi)),
        ]));
    }
    if let Some(flip) = &c.flip_consistency {
        out.push("\nflip consistency (the mirrored run's answer mirrors the plain one), beside its chance level".into());
        out.push("(the agreement the two runs' answer distributions alone give, with its 95% Wilson interval)".into());
        for f in flip {
            out.push(format!(
                "  {:<40} {:>5}/{:<5} ({:>6}%)   chance {:>6}% ({}-{})",
                f.category,
                f.consistent,
                f.total,
                pct(f.consistent as f64 / f.total.max(1) as f64),
                pct(f.chance.chance),
                pct(f.chance.lo),
                pct(f.chance.hi)
            ));
        }
    }
    out.extend(c.warnings.iter().map(|w| w.to_string()));
    out
}
