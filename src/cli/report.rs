//! `flipscope report`: accuracy, error kinds, confusion, letter bias and
//! paired comparisons of runs.

use crate::runs::report::{self, AccuracyRow, GroupBy};
use crate::runs::run_dir;
use crate::runs::{store::read_records, Record, RunMeta};
use anyhow::{bail, Context, Result};
use clap::Args;
use polars::prelude::*;
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
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Where csv/parquet/json go (default: stdout for csv and json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Treat the arguments as training output folders and plot their loss curves (PNG).
    #[arg(long)]
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

struct Run {
    name: String,
    meta: Option<RunMeta>,
    records: Vec<Record>,
}

fn load(name: &str) -> Result<Run> {
    let dir = crate::runs::RunDir::new(run_dir(name));
    let records = read_records(&dir.records_path()).with_context(|| format!("run `{name}`"))?;
    let meta = dir.read_meta().ok().flatten();
    Ok(Run { name: name.to_string(), meta, records })
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
    let runs: Vec<Run> = args.runs.iter().map(|n| load(n)).collect::<Result<_>>()?;
    let tables: Vec<(String, Vec<AccuracyRow>)> =
        runs.iter().map(|r| Ok((r.name.clone(), report::accuracy(&r.records, args.by)?))).collect::<Result<_>>()?;
    if let Some(png) = &args.plot {
        crate::runs::plot::accuracy_bars(&tables, png)?;
        eprintln!("wrote {}", png.display());
    }
    match args.format {
        ReportFormat::Csv | ReportFormat::Parquet | ReportFormat::Json => {
            let mut df = accuracy_frame(&tables, args.by.column())?;
            let mut sink: Box<dyn std::io::Write> = match &args.out {
                Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
                None if args.format == ReportFormat::Parquet => bail!("--format parquet needs --out FILE"),
                None => Box::new(std::io::stdout()),
            };
            match args.format {
                ReportFormat::Csv => CsvWriter::new(&mut sink).finish(&mut df)?,
                ReportFormat::Json => JsonWriter::new(&mut sink).with_json_format(JsonFormat::Json).finish(&mut df)?,
                _ => {
                    ParquetWriter::new(&mut sink).finish(&mut df)?;
                }
            }
            return Ok(());
        }
        ReportFormat::Table | ReportFormat::Md => {}
    }
    let md = args.format == ReportFormat::Md;
    let row = |cells: Vec<String>| {
        if md {
            format!("| {} |", cells.join(" | "))
        } else {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| if i == 0 { format!("{c:<40}") } else { format!("{c:>14}") })
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    for (run, table) in runs.iter().zip(&tables) {
        println!("\n## {}", run.name);
        if let Some(m) = &run.meta {
            println!("model {}  data {}  variant {}  decoding {}", m.model, m.dataset, m.variant, m.decoding);
        }
        println!("{}", row(vec![args.by.column().to_string(), "n".into(), "accuracy %".into(), "95% CI".into()]));
        if md {
            println!("|---|---|---|---|");
        }
        for r in &table.1 {
            println!("{}", row(vec![r.group.clone(), r.n.to_string(), pct(r.accuracy), format!("{}-{}", pct(r.lo), pct(r.hi))]));
        }
        let (_, (circ, q)) = crate::runs::stats::accuracy(&run.records);
        if run.meta.as_ref().is_some_and(|m| m.circular) {
            println!("circular accuracy {}% ({circ}/{q})", pct(circ as f64 / q.max(1) as f64));
        }
        if run.meta.as_ref().is_some_and(|m| m.prompt.starts_with("viewspatial")) {
            println!("published ViewSpatial overall: Qwen2.5-VL-3B 35.85, 7B 36.85, MVSM 82.09, random 26.33");
        }
        let errors = run.records.iter().filter(|r| r.error.is_some()).count();
        if errors > 0 {
            println!("{errors} record(s) could not be run (counted wrong)");
        }
        println!("\nerror kinds among errors");
        for (k, c, s) in report::error_shares(&run.records)? {
            println!("  {k:<16} {c:>6}  {}%", pct(s));
        }
        println!("\nanswer letters: predicted vs gold");
        for (l, (p, g)) in report::letter_bias(&run.records) {
            println!("  {l:<4} predicted {p:>6}  gold {g:>6}");
        }
        let cats: std::collections::BTreeSet<&str> = run.records.iter().map(|r| r.category.as_str()).collect();
        for cat in cats {
            let m = report::confusion(&run.records, Some(cat))?;
            if m.gold_labels.is_empty() {
                continue;
            }
            println!("\nconfusion (gold rows x predicted columns): {cat}");
            println!("  {:<14} {}", "", m.predicted_labels.iter().map(|p| format!("{p:>12}")).collect::<String>());
            for (g, counts) in m.gold_labels.iter().zip(&m.counts) {
                println!("  {g:<14} {}", counts.iter().map(|c| format!("{c:>12}")).collect::<String>());
            }
        }
    }
    if let Some(vs) = &args.vs {
        let b = load(vs)?;
        let a = &runs[0];
        println!("\n## {} vs {} (paired by sample)", a.name, b.name);
        println!(
            "{}",
            row(vec![
                "category".into(),
                "both right".into(),
                "only A".into(),
                "only B".into(),
                "both wrong".into(),
                "McNemar p".into(),
                "B-A % (95% CI)".into()
            ])
        );
        if md {
            println!("|---|---|---|---|---|---|---|");
        }
        for p in report::paired(&a.records, &b.records, 0) {
            println!(
                "{}",
                row(vec![
                    p.group,
                    p.both.to_string(),
                    p.only_a.to_string(),
                    p.only_b.to_string(),
                    p.neither.to_string(),
                    format!("{:.4}", p.p_mcnemar),
                    format!("{} ({} to {})", pct(p.diff), pct(p.lo), pct(p.hi)),
                ])
            );
        }
        let flipped = |r: &Run| r.meta.as_ref().is_some_and(|m| m.variant == "flipped");
        if flipped(&b) != flipped(a) {
            let (plain, mirror) = if flipped(&b) { (a, &b) } else { (&b, a) };
            println!("\nflip consistency (the mirrored run's answer mirrors the plain one)");
            for (cat, ok, n) in report::flip_consistency(&plain.records, &mirror.records) {
                println!("  {cat:<50} {ok}/{n} ({}%)", pct(ok as f64 / n.max(1) as f64));
            }
        }
    }
    Ok(())
}
