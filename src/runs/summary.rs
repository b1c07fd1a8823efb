//! The runs on disk, one summary line each (for `runs list` and the TUI).

use super::{store, RunMeta};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub name: String,
    /// None when run.json cannot be read.
    pub meta: Option<RunMeta>,
    pub records: usize,
    pub right: usize,
    /// Rotation-0 records.
    pub questions: usize,
    pub errors: usize,
}

impl RunSummary {
    pub fn read(dir: &Path) -> RunSummary {
        let meta: Option<RunMeta> = std::fs::read_to_string(dir.join("run.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
        let records = store::read_records(&dir.join("records.jsonl")).unwrap_or_default();
        let ((right, questions), _) = crate::eval::runner::accuracy(&records);
        let name =
            meta.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| dir.file_name().unwrap_or_default().to_string_lossy().to_string());
        RunSummary {
            dir: dir.to_path_buf(),
            name,
            meta,
            records: records.len(),
            right,
            questions,
            errors: records.iter().filter(|r| r.error.is_some()).count(),
        }
    }

    pub fn accuracy(&self) -> f64 {
        self.right as f64 / self.questions.max(1) as f64
    }

    pub fn finished(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.finished.is_some())
    }
}

/// Every run directory (one with a run.json) under `root`, by name.
pub fn list_runs(root: &Path) -> Vec<RunSummary> {
    let Ok(entries) = std::fs::read_dir(root) else { return vec![] };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("run.json").exists()).collect();
    dirs.sort();
    dirs.iter().map(|d| RunSummary::read(d)).collect()
}
