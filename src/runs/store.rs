//! Opening, resuming and appending to a run directory. Each record is one
//! line, written and synced before the next sample starts, so a kill loses
//! at most the sample in flight; a torn last line is cut off on reopening.

use super::{Record, RunMeta};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub struct RunStore {
    pub dir: PathBuf,
    pub meta: RunMeta,
    file: File,
    /// Keys already recorded (skipped on resume).
    pub done: HashSet<String>,
}

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

fn write_meta(dir: &Path, meta: &RunMeta) -> Result<()> {
    crate::fsutil::atomic_write(&dir.join("run.json"), serde_json::to_string_pretty(meta)?.as_bytes())?;
    Ok(())
}

/// Cuts a torn (unterminated) last line left by a kill mid-write.
fn truncate_torn_tail(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
    OpenOptions::new().write(true).open(path)?.set_len(keep as u64)?;
    Ok(())
}

impl RunStore {
    /// Creates `dir`, or resumes it when its run.json agrees with `meta`.
    pub fn open(dir: &Path, meta: RunMeta) -> Result<RunStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let meta_path = dir.join("run.json");
        let records = dir.join("records.jsonl");
        let meta = if meta_path.exists() {
            let text = std::fs::read_to_string(&meta_path)?;
            let old: RunMeta = serde_json::from_str(&text).with_context(|| format!("{}: not a run.json", meta_path.display()))?;
            let conflicts = old.conflicts(&meta);
            if !conflicts.is_empty() {
                bail!(
                    "run `{}` in {} was made with a different setup; use another --run name:\n  {}",
                    old.name,
                    dir.display(),
                    conflicts.join("\n  ")
                );
            }
            RunMeta { finished: None, ..old }
        } else {
            meta
        };
        write_meta(dir, &meta)?;
        let mut done = HashSet::new();
        if records.exists() {
            truncate_torn_tail(&records)?;
            done = read_records(&records)?.into_iter().map(|r| r.key).collect();
        }
        let file = OpenOptions::new().create(true).append(true).open(&records).with_context(|| format!("opening {}", records.display()))?;
        Ok(RunStore { dir: dir.into(), meta, file, done })
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&mut self, r: &Record) -> Result<()> {
        let mut line = serde_json::to_string(r)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.done.insert(r.key.clone());
        Ok(())
    }

    pub fn finish(&mut self) -> Result<()> {
        self.meta.finished = Some(super::meta::now());
        write_meta(&self.dir, &self.meta)
    }

    pub fn records(&self) -> Result<Vec<Record>> {
        read_records(&self.dir.join("records.jsonl"))
    }
}

/// Merges shard runs (same model, prompt, decoding, variant) into `out`,
/// keeping the first record of each key. Returns (records written, duplicates dropped).
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<(usize, usize)> {
    if inputs.is_empty() {
        bail!("nothing to merge");
    }
    let mut metas = Vec::new();
    for dir in inputs {
        let p = dir.join("run.json");
        let text = std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        let m: RunMeta = serde_json::from_str(&text).with_context(|| format!("{}: not a run.json", p.display()))?;
        metas.push(m);
    }
    for (m, dir) in metas.iter().zip(inputs).skip(1) {
        let c = metas[0].conflicts(m);
        if !c.is_empty() {
            bail!("{} was run with a different setup than {}:\n  {}", dir.display(), inputs[0].display(), c.join("\n  "));
        }
    }
    let mut meta = metas[0].clone();
    meta.name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    meta.finished = metas.iter().filter_map(|m| m.finished.clone()).max();
    let mut store = RunStore::open(out, meta)?;
    let (mut written, mut dupes) = (0, 0);
    for dir in inputs {
        for r in read_records(&dir.join("records.jsonl"))? {
            if store.done.contains(&r.key) {
                dupes += 1;
            } else {
                store.append(&r)?;
                written += 1;
            }
        }
    }
    Ok((written, dupes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(prompt: &str) -> RunMeta {
        RunMeta {
            name: "t".into(),
            model: "m".into(),
            model_fingerprint: "f".into(),
            adapter: None,
            dataset: "d".into(),
            dataset_hash: "h".into(),
            prompt: prompt.into(),
            decoding: "score".into(),
            variant: "plain".into(),
            circular: false,
            flipscope_version: "0".into(),
            device: "cpu".into(),
            started: "now".into(),
            finished: None,
        }
    }

    #[test]
    fn resume_refuse_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RunStore::open(dir.path(), meta("p")).unwrap();
        s.append(&Record { key: "a".into(), id: "a".into(), rule: "scored".into(), ..Default::default() }).unwrap();
        drop(s);
        // A torn line as a kill mid-write would leave.
        let mut f = OpenOptions::new().append(true).open(dir.path().join("records.jsonl")).unwrap();
        f.write_all(b"{\"key\": \"b\", \"id").unwrap();
        let s = RunStore::open(dir.path(), meta("p")).unwrap();
        assert_eq!(s.done, HashSet::from(["a".to_string()]));
        assert_eq!(s.records().unwrap().len(), 1);
        let err = RunStore::open(dir.path(), meta("other")).err().unwrap().to_string();
        assert!(err.contains("different setup") && err.contains("prompt: run has `p`, this command `other`"), "{err}");
    }
}
