//! `flipscope runs`: list runs and merge shards.

use crate::runs::run_dir;
use crate::runs::{list_runs, store};
use anyhow::Result;
use clap::Subcommand;
use std::path::{Path, PathBuf};

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
            let runs = list_runs(Path::new("runs"));
            if runs.is_empty() {
                println!("no runs under ./runs/");
            }
            for r in runs {
                match (&r.meta, &r.problem) {
                    (_, Some(problem)) => println!("{:<24} unreadable: {problem}", r.name),
                    (Some(m), None) => println!(
                        "{:<24} {:>6} records  acc {:>6.2}%  {}  {}  {}  {}",
                        m.name,
                        r.records,
                        100.0 * r.accuracy(),
                        m.variant,
                        m.decoding,
                        m.dataset,
                        if r.finished() { "finished" } else { "unfinished" }
                    ),
                    (None, None) => println!("{:<24} (no run.json)", r.dir.display()),
                }
                for n in &r.notes {
                    println!("{:<24} warning: {n}", "");
                }
            }
            Ok(())
        }
        RunsCommand::Merge { out, runs } => {
            let inputs: Vec<PathBuf> = runs.iter().map(|r| run_dir(r)).collect();
            let merged = store::merge(&run_dir(out), &inputs)?;
            super::warn(&merged.notes);
            println!(
                "merged {} runs into {}: {} records, {} duplicate keys dropped",
                inputs.len(),
                run_dir(out).display(),
                merged.written,
                merged.duplicates
            );
            Ok(())
        }
    }
}
