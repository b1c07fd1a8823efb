//! `flipscope runs`: list runs and merge shards.

use super::eval::run_dir;
use crate::runs::{store, RunMeta};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// The runs under ./runs/ with their setup and record counts.
    List,
    /// Merge shard runs (`eval --shard i/n`) into one run.
    Merge {
        /// The merged run's name or directory.
        #[arg(long)]
        out: String,
        /// Shard runs (names or directories).
        #[arg(required = true)]
        runs: Vec<String>,
    },
}

pub fn run(cmd: &RunsCommand) -> Result<()> {
    match cmd {
        RunsCommand::List => {
            let Ok(entries) = std::fs::read_dir("runs") else {
                println!("no runs/ directory here");
                return Ok(());
            };
            let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("run.json").exists()).collect();
            dirs.sort();
            for d in dirs {
                let meta: Option<RunMeta> = std::fs::read_to_string(d.join("run.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
                let records = store::read_records(&d.join("records.jsonl")).unwrap_or_default();
                let ((right, n), _) = crate::eval::runner::accuracy(&records);
                match meta {
                    Some(m) => println!(
                        "{:<24} {:>6} records  acc {:>6.2}%  {}  {}  {}  {}",
                        m.name,
                        records.len(),
                        100.0 * right as f64 / n.max(1) as f64,
                        m.variant,
                        m.decoding,
                        m.dataset,
                        if m.finished.is_some() { "finished" } else { "unfinished" }
                    ),
                    None => println!("{:<24} (unreadable run.json)", d.display()),
                }
            }
            Ok(())
        }
        RunsCommand::Merge { out, runs } => {
            let inputs: Vec<PathBuf> = runs.iter().map(|r| run_dir(r)).collect();
            let (written, dupes) = store::merge(&run_dir(out), &inputs)?;
            println!("merged {} runs into {}: {written} records, {dupes} duplicate keys dropped", inputs.len(), run_dir(out).display());
            Ok(())
        }
    }
}
