//! The runs on disk, one summary line each (for `runs list` and the TUI).

use super::{RunDir, RunMeta};
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
    /// Why run.json or records.jsonl could not be read, when it could not.
    pub problem: Option<String>,
    /// Duplicates, a torn tail or bad lines the reader left out.
    pub notes: Vec<String>,
}

impl RunSummary {
    pub fn read(dir: &Path) -> RunSummary {
        let run = RunDir::new(dir);
        let (meta, meta_problem) = match run.read_meta() {
            Ok(m) => (m, None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        let (read, problem) = match run.read_records() {
            Ok(r) => (r, meta_problem),
            Err(e) => (Default::default(), Some(format!("{e:#}"))),
        };
        let notes = read.notes(&run.records_path());
        let records = read.records;
        let ((right, questions), _) = super::stats::accuracy(&records);
        let name =
            meta.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| dir.file_name().unwrap_or_default().to_string_lossy().to_string());
        RunSummary {
            dir: dir.to_path_buf(),
            name,
            meta,
            records: records.len(),
            right,
            questions,
            errors: records.iter().filter(|r| r.failure().is_some()).count(),
            problem,
            notes,
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
    RunCatalog::default().refresh(root)
}

fn run_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return vec![] };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| RunDir::new(p).is_run()).collect();
    dirs.sort();
    dirs
}

/// Size and modification time of a run's two files: when neither changed,
/// its summary is still right.
type Stamp = [Option<(u64, std::time::SystemTime)>; 2];

fn stamp(dir: &Path) -> Stamp {
    let run = RunDir::new(dir);
    let of = |p: PathBuf| std::fs::metadata(p).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
    [of(run.meta_path()), of(run.records_path())]
}

/// Run summaries kept between listings: a refresh re-reads only the runs
/// whose run.json or records.jsonl changed, not every record of every run.
#[derive(Default)]
pub struct RunCatalog {
    known: std::collections::HashMap<PathBuf, (Stamp, RunSummary)>,
    /// How many runs the last refresh read again (the rest came from the catalog).
    pub last_reread: usize,
}

impl RunCatalog {
    pub fn refresh(&mut self, root: &Path) -> Vec<RunSummary> {
        let dirs = run_dirs(root);
        self.known.retain(|d, _| dirs.contains(d));
        self.last_reread = 0;
        dirs.into_iter()
            .map(|d| {
                let now = stamp(&d);
                match self.known.get(&d) {
                    Some((s, summary)) if *s == now => summary.clone(),
                    _ => {
                        self.last_reread += 1;
                        let summary = RunSummary::read(&d);
                        self.known.insert(d, (now, summary.clone()));
                        summary
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::Record;

    #[test]
    fn the_catalog_rereads_only_changed_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = |name: &str| RunMeta { name: name.into(), ..serde_json::from_str(crate::runs::meta::tests::MINIMAL).unwrap() };
        for name in ["a", "b"] {
            let run = RunDir::new(tmp.path().join(name));
            std::fs::create_dir_all(run.path()).unwrap();
            run.write_meta(&meta(name)).unwrap();
        }
        let mut catalog = RunCatalog::default();
        assert_eq!(catalog.refresh(tmp.path()).len(), 2);
        assert_eq!(catalog.last_reread, 2);
        assert_eq!(catalog.refresh(tmp.path()).len(), 2);
        assert_eq!(catalog.last_reread, 0, "nothing changed");
        let r = Record { key: "k".into(), id: "k".into(), verdict: crate::spatial::Verdict::Correct, ..Default::default() };
        std::fs::write(RunDir::new(tmp.path().join("b")).records_path(), format!("{}\n", serde_json::to_string(&r).unwrap())).unwrap();
        let listed = catalog.refresh(tmp.path());
        assert_eq!(catalog.last_reread, 1, "only b changed");
        assert_eq!((listed[1].name.as_str(), listed[1].right, listed[1].questions), ("b", 1, 1));
        std::fs::remove_dir_all(tmp.path().join("a")).unwrap();
        assert_eq!(catalog.refresh(tmp.path()).len(), 1);
    }

    #[test]
    fn an_unreadable_run_shows_its_error_not_zero_records() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r"));
        std::fs::create_dir_all(run.records_path()).unwrap(); // a folder where the file should be
        std::fs::write(run.meta_path(), crate::runs::meta::tests::MINIMAL).unwrap();
        let s = RunSummary::read(run.path());
        assert!(s.problem.as_deref().is_some_and(|p| p.contains("records.jsonl")), "{:?}", s.problem);
    }
}
