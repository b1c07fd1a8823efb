//! `RunDir`: the one owner of a run directory's layout. Everything that
//! reads or writes `run.json`, `records.jsonl` or `live.jsonl` goes through it.

use super::{Record, RunMeta};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};

/// The longest line a records.jsonl may hold; a longer one is skipped as bad
/// instead of being read into memory whole.
const MAX_RECORD_LINE: u64 = 16 << 20;
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
        match crate::fsutil::read_optional_text(&path)? {
            Some(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}: not a run.json", path.display()))?)),
            None => Ok(None),
        }
    }

    pub fn write_meta(&self, meta: &RunMeta) -> Result<()> {
        crate::fsutil::atomic_write(&self.meta_path(), serde_json::to_string_pretty(meta)?.as_bytes())
    }

    /// Every record written so far (none when the file does not exist yet).
    pub fn read_records(&self) -> Result<RecordFile> {
        let path = self.records_path();
        if !path.exists() {
            return Ok(RecordFile::default());
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

/// A JSONL file of keyed rows as read (records.jsonl, a run's causal
/// results): each key once, and what was wrong with the rest, so a reader
/// can go on and still say so.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedLines<T> {
    pub records: Vec<T>,
    /// Later records of a key already read (two writers, or a resume after
    /// a wrapper was killed): dropped, the first kept.
    pub duplicates: usize,
    /// The last line has no newline (a kill mid-write): left out, as resume cuts it.
    pub torn: bool,
    /// Lines that are not records, as "line N: why".
    pub bad: Vec<String>,
}

/// records.jsonl as read.
pub type RecordFile = KeyedLines<Record>;

impl<T> Default for KeyedLines<T> {
    fn default() -> Self {
        KeyedLines { records: Vec::new(), duplicates: 0, torn: false, bad: Vec::new() }
    }
}

impl<T> KeyedLines<T> {
    /// One line per thing a reader should know, each naming the file.
    pub fn notes(&self, path: &Path) -> Vec<String> {
        let p = path.display();
        let mut out = Vec::new();
        if self.duplicates > 0 {
            out.push(format!("{p}: dropped {} duplicate record(s) of keys already read (kept the first)", self.duplicates));
        }
        if self.torn {
            out.push(format!("{p}: the last line is torn (a write was cut off); left out, and a resume will redo it"));
        }
        for b in self.bad.iter().take(5) {
            out.push(format!("{p}: skipped {b}"));
        }
        if self.bad.len() > 5 {
            out.push(format!("{p}: skipped {} more bad lines", self.bad.len() - 5));
        }
        out
    }
}

/// The records of one records.jsonl. Only an unreadable file is an error: a
/// bad line, a torn tail or a duplicate key is left out and counted.
pub fn read_records(path: &Path) -> Result<RecordFile> {
    read_keyed(path, |r: &Record| r.key.clone())
}

/// The rows of a JSONL file, the first of each `key` kept. Only an
/// unreadable file is an error; bad, torn and duplicate lines are counted.
pub fn read_keyed<T: serde::de::DeserializeOwned>(path: &Path, key: impl Fn(&T) -> String) -> Result<KeyedLines<T>> {
    let f = crate::fsutil::open_regular(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut out = KeyedLines::default();
    let mut seen = std::collections::HashSet::new();
    let mut reader = BufReader::new(f);
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        let read = |reader: &mut BufReader<std::fs::File>, line: &mut Vec<u8>| {
            reader.take(MAX_RECORD_LINE + 1).read_until(b'\n', line).with_context(|| format!("{}: reading line {n}", path.display()))
        };
        if read(&mut reader, &mut line)? == 0 {
            break;
        }
        if line.len() as u64 > MAX_RECORD_LINE && line.last() != Some(&b'\n') {
            // Skip the rest of the overlong line.
            while !line.ends_with(b"\n") {
                line.clear();
                if read(&mut reader, &mut line)? == 0 {
                    break;
                }
            }
            out.bad.push(format!("line {n}: longer than {} MiB", MAX_RECORD_LINE >> 20));
            continue;
        }
        if line.last() != Some(&b'\n') {
            out.torn = true;
            break;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) if t.trim().is_empty() => continue,
            Ok(t) => t,
            Err(e) => {
                out.bad.push(format!("line {n}: not UTF-8 ({e})"));
                continue;
            }
        };
        match serde_json::from_str::<T>(text) {
            Ok(r) if !seen.insert(key(&r)) => out.duplicates += 1,
            Ok(r) => out.records.push(r),
            Err(e) => out.bad.push(format!("line {n}: not a record ({e})")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::{ErrorKind, Verdict};

    #[test]
    fn layout_and_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r1"));
        assert!(!run.is_run());
        assert_eq!(run.read_meta().unwrap(), None);
        assert!(run.read_records().unwrap().records.is_empty());
        let r = Record { key: "k".into(), id: "k".into(), ..Default::default() };
        let live = run.append_live(&r).unwrap();
        assert_eq!(live, tmp.path().join("r1/live.jsonl"));
        std::fs::write(run.meta_path(), "{").unwrap();
        assert!(run.read_meta().unwrap_err().to_string().contains("r1/run.json: not a run.json"));
        assert_eq!(run.dir_name(), "r1");
    }

    #[test]
    fn readers_drop_duplicates_torn_tails_and_bad_lines_and_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("records.jsonl");
        let rec = |k: &str, c: bool| {
            let verdict = if c { Verdict::Correct } else { Verdict::Wrong(ErrorKind::Other) };
            serde_json::to_string(&Record { key: k.into(), id: k.into(), verdict, ..Default::default() }).unwrap()
        };
        let mut bytes = format!("{}\n{}\n{}\n", rec("a", true), rec("b", false), rec("a", false)).into_bytes();
        bytes.extend_from_slice(b"{\"key\": \"\xff\xfe\"}\n");
        bytes.extend_from_slice(b"[1, 2]\n");
        bytes.extend_from_slice(rec("c", true).as_bytes());
        std::fs::write(&path, bytes).unwrap();
        let read = read_records(&path).unwrap();
        let keys: Vec<(&str, bool)> = read.records.iter().map(|r| (r.key.as_str(), r.is_correct())).collect();
        assert_eq!(keys, [("a", true), ("b", false)], "first of a kept, torn c left out");
        assert_eq!((read.duplicates, read.torn, read.bad.len()), (1, true, 2));
        assert!(read.bad[0].starts_with("line 4: not UTF-8"), "{:?}", read.bad);
        assert!(read.bad[1].starts_with("line 5: not a record"), "{:?}", read.bad);
        let notes = read.notes(&path).join("\n");
        assert!(
            notes.contains("dropped 1 duplicate") && notes.contains("torn") && notes.contains("records.jsonl: skipped line 4"),
            "{notes}"
        );
    }
}
