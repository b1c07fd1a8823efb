//! `RunDir`: the one owner of a run directory's layout. Everything that
//! reads or writes `run.json`, `records.jsonl` or `live.jsonl` goes through it.

use super::{Record, RunMeta};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

const META: &str = "run.json";
const RECORDS: &str = "records.jsonl";
const LIVE: &str = "live.jsonl";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's name (what a run is called when its run.json says nothing).
    pub fn dir_name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| self.path.display().to_string())
    }

    pub fn meta_path(&self) -> PathBuf {
        self.path.join(META)
    }

    pub fn records_path(&self) -> PathBuf {
        self.path.join(RECORDS)
    }

    /// Answers saved by hand from the TUI's live pane.
    pub fn live_path(&self) -> PathBuf {
        self.path.join(LIVE)
    }

    /// A run directory is one with a run.json.
    pub fn is_run(&self) -> bool {
        self.meta_path().is_file()
    }

    /// The run.json; None when there is none, an error when it is unreadable.
    pub fn read_meta(&self) -> Result<Option<RunMeta>> {
        let path = self.meta_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}: not a run.json", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
        }
    }

    pub fn write_meta(&self, meta: &RunMeta) -> Result<()> {
        crate::fsutil::atomic_write(&self.meta_path(), serde_json::to_string_pretty(meta)?.as_bytes())
    }

    /// Every record written so far (none when the file does not exist yet).
    pub fn read_records(&self) -> Result<Vec<Record>> {
        let path = self.records_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_records(&path)
    }

    /// Appends one answer to live.jsonl and syncs it.
    pub fn append_live(&self, record: &Record) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.path).with_context(|| format!("creating {}", self.path.display()))?;
        let path = self.live_path();
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(record)?).with_context(|| format!("writing {}", path.display()))?;
        f.sync_data()?;
        Ok(path)
    }
}

/// The records of one records.jsonl; a bad line is an error naming the file and line.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line).with_context(|| format!("{}: line {} is not a record", path.display(), i + 1))?;
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r1"));
        assert!(!run.is_run());
        assert_eq!(run.read_meta().unwrap(), None);
        assert!(run.read_records().unwrap().is_empty());
        let r = Record { key: "k".into(), id: "k".into(), ..Default::default() };
        let live = run.append_live(&r).unwrap();
        assert_eq!(live, tmp.path().join("r1/live.jsonl"));
        std::fs::write(run.meta_path(), "{").unwrap();
        assert!(run.read_meta().unwrap_err().to_string().contains("r1/run.json: not a run.json"));
        assert_eq!(run.dir_name(), "r1");
    }
}
