//! The run store: `runs/<name>/run.json` (what was run, how) and an
//! append-only `records.jsonl`, one flushed line per sample and rotation.
pub mod causal_log;
pub mod causal_summary;
pub mod dir;
pub mod meta;
pub mod plot;
pub mod record;
pub mod report;
pub mod report_model;
pub mod sampling;
pub mod stats;
pub mod store;
pub mod warnings;

pub use dir::RunDir;
pub use meta::RunMeta;
pub use record::Record;
pub use store::RunStore;
pub mod summary;

pub use summary::{list_runs, RunCatalog, RunSummary};

/// A run name under ./runs/, or a path when it has a slash.
pub fn run_dir(name: &str) -> std::path::PathBuf {
    run_dir_in(std::path::Path::new("runs"), name)
}

/// The folder of `--run NAME` for a command that reads an eval run's
/// outcomes: it must exist (have a run.json).
pub fn existing_run(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = run_dir(name);
    if !RunDir::new(&dir).is_run() {
        anyhow::bail!("--run {name}: {} is not a run (no run.json); evaluate the model on the data first", dir.display());
    }
    Ok(dir)
}

/// A run name under `root`, or a path when it has a slash.
pub fn run_dir_in(root: &std::path::Path, name: &str) -> std::path::PathBuf {
    if name.contains('/') {
        std::path::PathBuf::from(name)
    } else {
        root.join(name)
    }
}
