//! Opening, resuming and appending to a run directory. Each record is one
//! line, written and synced before the next sample starts, so a kill loses
//! at most the sample in flight; a torn last line is cut off on reopening.

use super::{Record, RunDir, RunMeta};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunStore {
    pub dir: PathBuf,
    run: RunDir,
    pub meta: RunMeta,
    file: File,
    /// Keys already recorded (skipped on resume).
    pub done: HashSet<String>,
    /// What the reader left out of the records already there (duplicates, a
    /// torn line, bad lines), for the caller to show: this layer never prints.
    pub notes: Vec<String>,
    /// Held while the store is open: one writer per run.
    _lock: crate::fsutil::DirLock,
}

pub use super::dir::read_records;

/// Cuts a torn (unterminated) last line left by a kill mid-write, reading
/// back from the end only as far as the last newline.
pub(crate) fn truncate_torn_tail(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = crate::fsutil::open_regular(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let len = f.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk[..n])?;
        if end == len && chunk[n - 1] == b'\n' {
            return Ok(());
        }
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end != len {
        OpenOptions::new().write(true).open(path)?.set_len(end).with_context(|| format!("{}: cannot cut the torn line", path.display()))?;
    }
    Ok(())
}

/// Test hook: with `FLIPSCOPE_KILL_AFTER_RECORDS=N` the process kills itself
/// with SIGKILL right after its N-th record is synced, as `kill -9` would at
/// that point, so resume tests need not race a timer.
fn kill_hook() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static APPENDED: AtomicUsize = AtomicUsize::new(0);
    crate::fsutil::kill_if("FLIPSCOPE_KILL_AFTER_RECORDS", APPENDED.fetch_add(1, Ordering::SeqCst) + 1);
}

impl RunStore {
    /// Creates `dir`, or resumes it when its run.json agrees with `meta`.
    pub fn open(dir: &Path, meta: RunMeta) -> Result<RunStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = crate::fsutil::DirLock::acquire(dir)?;
        let run = RunDir::new(dir);
        let records = run.records_path();
        let meta = if let Some(old) = run.read_meta()? {
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
        run.write_meta(&meta)?;
        let (mut done, mut notes) = (HashSet::new(), Vec::new());
        if records.exists() {
            truncate_torn_tail(&records)?;
            let read = read_records(&records)?;
            notes = read.notes(&records);
            done = read.records.into_iter().map(|r| r.key).collect();
        }
        let file = OpenOptions::new().create(true).append(true).open(&records).with_context(|| format!("opening {}", records.display()))?;
        Ok(RunStore { dir: dir.into(), run, meta, file, done, notes, _lock: lock })
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&mut self, r: &Record) -> Result<()> {
        let mut line = serde_json::to_string(r)?;
        line.push('\n');
        let path = self.run.records_path();
        self.file.write_all(line.as_bytes()).with_context(|| format!("{}: cannot append a record", path.display()))?;
        self.file.sync_data().with_context(|| format!("{}: cannot sync", path.display()))?;
        self.done.insert(r.key.clone());
        kill_hook();
        Ok(())
    }

    pub fn finish(&mut self) -> Result<()> {
        self.meta.finished = Some(super::meta::now());
        self.run.write_meta(&self.meta)
    }

    pub fn records(&self) -> Result<Vec<Record>> {
        Ok(self.run.read_records()?.records)
    }
}

/// What a merge did.
pub struct Merged {
    pub written: usize,
    /// Records of a key already merged, dropped.
    pub duplicates: usize,
    /// What the readers left out of each input (and of `out`), to show.
    pub notes: Vec<String>,
}

/// Merges shard runs (same model, prompt, decoding, variant) into `out`,
/// keeping the first record of each key.
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<Merged> {
    if inputs.is_empty() {
        bail!("nothing to merge");
    }
    let mut metas = Vec::new();
    for dir in inputs {
        let run = RunDir::new(dir);
        metas.push(run.read_meta()?.with_context(|| format!("{}: no run.json", dir.display()))?);
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
    let (mut written, mut dupes, mut notes) = (0, 0, std::mem::take(&mut store.notes));
    for dir in inputs {
        let path = RunDir::new(dir).records_path();
        let read = read_records(&path)?;
        notes.extend(read.notes(&path));
        for r in read.records {
            if store.done.contains(&r.key) {
                dupes += 1;
            } else {
                store.append(&r)?;
                written += 1;
            }
        }
    }
    Ok(Merged { written, duplicates: dupes, notes })
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
        s.append(&Record { key: "a".into(), id: "a".into(), rule: crate::spatial::extract::ExtractRule::Scored, ..Default::default() })
            .unwrap();
        drop(s);
        // A torn line as a kill mid-write would leave.
        let mut f = OpenOptions::new().append(true).open(dir.path().join("records.jsonl")).unwrap();
        f.write_all(b"{\"key\": \"b\", \"id").unwrap();
        let s = RunStore::open(dir.path(), meta("p")).unwrap();
        assert_eq!(s.done, HashSet::from(["a".to_string()]));
        assert_eq!(s.records().unwrap().len(), 1);
        // A torn line longer than the chunk the tail is read back in.
        drop(s);
        let mut f = OpenOptions::new().append(true).open(dir.path().join("records.jsonl")).unwrap();
        f.write_all(&vec![b'x'; 200_000]).unwrap();
        let s = RunStore::open(dir.path(), meta("p")).unwrap();
        assert_eq!(s.records().unwrap().len(), 1);
        assert!(std::fs::read(dir.path().join("records.jsonl")).unwrap().ends_with(b"}\n"));
        drop(s);
        let err = RunStore::open(dir.path(), meta("other")).err().unwrap().to_string();
        assert!(err.contains("different setup") && err.contains("prompt: run has `p`, this command `other`"), "{err}");
    }

    #[test]
    fn a_second_writer_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RunStore::open(dir.path(), meta("p")).unwrap();
        let err = RunStore::open(dir.path(), meta("p")).err().unwrap().to_string();
        assert!(err.contains("in use by another flipscope process") && err.contains(&format!("pid {}", std::process::id())), "{err}");
    }

    #[test]
    fn resuming_with_another_dataset_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(RunStore::open(dir.path(), meta("p")).unwrap());
        let other = RunMeta { dataset: "d2".into(), dataset_hash: "h2".into(), ..meta("p") };
        let err = RunStore::open(dir.path(), other).err().unwrap().to_string();
        assert!(err.contains("dataset: run has `d` (hash h), this command `d2` (hash h2)"), "{err}");
    }
}
