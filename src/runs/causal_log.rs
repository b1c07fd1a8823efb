//! A run's causal results: `RUN/causal/<experiment>.jsonl`, one row per
//! sample, written beside the run's records by the batch experiments
//! (`flipscope lens|knockout|patch --run RUN`), and what `report` makes of
//! them by outcome (right, horizontal flip, ...).
//!
//! Rows are appended and synced one at a time under a lock on the folder;
//! a resume skips the samples already written, cuts a torn last line, and
//! is refused when the settings differ from those the file was made with.

use super::dir::{read_keyed, KeyedLines};
use super::Record;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which experiment a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    Lens,
    Knockout,
    Patch,
    Ablate,
}

impl Experiment {
    pub const ALL: [Experiment; 4] = [Experiment::Lens, Experiment::Knockout, Experiment::Patch, Experiment::Ablate];

    pub fn name(self) -> &'static str {
        match self {
            Experiment::Lens => "lens",
            Experiment::Knockout => "knockout",
            Experiment::Patch => "patch",
            Experiment::Ablate => "ablate",
        }
    }

    pub fn rows_path(self, run: &Path) -> PathBuf {
        run.join("causal").join(format!("{}.jsonl", self.name()))
    }

    fn settings_path(self, run: &Path) -> PathBuf {
        run.join("causal").join(format!("{}.settings.json", self.name()))
    }
}

/// What ties a causal batch to the eval run whose outcomes group its rows:
/// the model (as run.json names it, by fingerprint), its adapter and the
/// data. Rows made with another of these would be summed by the outcomes of
/// other answers or other scenes that share the ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub model_fingerprint: String,
    /// The adapter's folder, canonical.
    pub adapter: Option<PathBuf>,
    pub dataset: String,
    pub dataset_hash: String,
}

impl Binding {
    /// The binding of a batch of the model in `model` (with `adapter`) over the data `spec`.
    pub fn of(model: &Path, adapter: Option<&Path>, spec: &str) -> Result<Binding> {
        Ok(Binding {
            model_fingerprint: super::meta::model_fingerprint(model)?,
            adapter: adapter.map(|a| std::fs::canonicalize(a).unwrap_or_else(|_| a.to_path_buf())),
            dataset: spec.to_string(),
            dataset_hash: super::meta::dataset_hash(spec),
        })
    }

    /// Refuses a batch for `run` that differs from its run.json, naming what differs.
    pub fn check(&self, run: &Path) -> Result<()> {
        let dir = super::RunDir::new(run);
        let meta = dir
            .read_meta()?
            .with_context(|| format!("{}: not a run (no run.json); evaluate the model on the data first", run.display()))?;
        let mut differs = Vec::new();
        if meta.model_fingerprint != self.model_fingerprint {
            differs.push(format!("model fingerprint: run has `{}`, this command `{}`", meta.model_fingerprint, self.model_fingerprint));
        }
        let run_adapter = meta.adapter.as_deref().map(|a| std::fs::canonicalize(a).unwrap_or_else(|_| PathBuf::from(a)));
        if run_adapter != self.adapter {
            let say = |a: Option<&PathBuf>| a.map_or_else(|| "none".to_string(), |p| p.display().to_string());
            differs.push(format!("adapter: run has {}, this command {}", say(run_adapter.as_ref()), say(self.adapter.as_ref())));
        }
        if meta.dataset_hash != self.dataset_hash {
            differs.push(format!(
                "dataset: run has `{}` (hash {}), this command `{}` (hash {})",
                meta.dataset, meta.dataset_hash, self.dataset, self.dataset_hash
            ));
        }
        if !differs.is_empty() {
            bail!(
                "{} was evaluated with another {}; its outcomes would group rows of other answers, so no row is written:\n  {}",
                dir.meta_path().display(),
                if differs.len() == 1 { "setting" } else { "settings" },
                differs.join("\n  ")
            );
        }
        Ok(())
    }
}

/// One sample's logit lens: the candidates' probability by layer at the answer position.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LensRow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// [layers][candidates]
    #[serde(default)]
    pub curve: Vec<Vec<f32>>,
    #[serde(default)]
    pub answer: Option<usize>,
    #[serde(default)]
    pub gold: Option<usize>,
    #[serde(default)]
    pub decided_at: Option<usize>,
}

/// One sample's knockout sweep: the target's log-prob per window start and edge group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KnockoutRow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub edges: Vec<String>,
    #[serde(default)]
    pub base_logprob: f64,
    /// [window starts][edge groups]
    #[serde(default)]
    pub logprob: Vec<Vec<f64>>,
}

/// One sample's patching sweep: the share of LD restored per layer and group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchRow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub ld_clean: f64,
    #[serde(default)]
    pub ld_corrupt: f64,
    /// [layers][groups]; NaN is written as null.
    #[serde(default)]
    pub effect: Vec<Vec<Option<f64>>>,
    #[serde(default)]
    pub vision_effect: Vec<Option<f64>>,
}

/// One sample's region ablation: the candidates' log-probs unablated and with each region ablated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AblateRow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub base: Vec<f64>,
    /// [regions][candidates]
    #[serde(default)]
    pub ablated: Vec<Vec<f64>>,
}

/// The appender of one experiment's rows in a run.
pub struct CausalLog {
    path: PathBuf,
    file: File,
    done: HashSet<String>,
    /// What the reader left out of the rows already there, for the caller to show.
    pub notes: Vec<String>,
    _lock: crate::fsutil::DirLock,
}

impl CausalLog {
    /// Opens (or resumes) `experiment`'s rows in `run`, made with `settings`
    /// (model, data, options: a resume with others is refused). The batch
    /// must be `bound` to the run as its run.json says, before any file is written.
    pub fn open(run: &Path, experiment: Experiment, bound: &Binding, settings: &serde_json::Value) -> Result<CausalLog> {
        bound.check(run)?;
        let dir = run.join("causal");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = crate::fsutil::DirLock::acquire(&dir)?;
        let settings_path = experiment.settings_path(run);
        match crate::fsutil::read_optional_text(&settings_path)? {
            Some(text) => {
                let old: serde_json::Value =
                    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", settings_path.display()))?;
                if &old != settings {
                    bail!(
                        "{} was made with other settings; remove it (and {}) to start over, or use another --run:\n  was  {old}\n  now  {settings}",
                        experiment.rows_path(run).display(),
                        settings_path.display()
                    );
                }
            }
            None => crate::fsutil::atomic_write(&settings_path, serde_json::to_string_pretty(settings)?.as_bytes())?,
        }
        let path = experiment.rows_path(run);
        let (mut done, mut notes) = (HashSet::new(), Vec::new());
        if path.exists() {
            super::store::truncate_torn_tail(&path)?;
            let rows: KeyedLines<serde_json::Value> = read_keyed(&path, row_key)?;
            notes = rows.notes(&path);
            done = rows.records.iter().map(row_key).collect();
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(CausalLog { path, file, done, notes, _lock: lock })
    }

    pub fn is_done(&self, key: &str) -> bool {
        self.done.contains(key)
    }

    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// Appends one row and syncs it.
    pub fn append<T: Serialize>(&mut self, key: &str, row: &T) -> Result<()> {
        let mut line = serde_json::to_string(row)?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).with_context(|| format!("{}: cannot append", self.path.display()))?;
        self.file.sync_data().with_context(|| format!("{}: cannot sync", self.path.display()))?;
        self.done.insert(key.to_string());
        Ok(())
    }
}

fn row_key(v: &serde_json::Value) -> String {
    v.get("key").and_then(|k| k.as_str()).unwrap_or_default().to_string()
}

/// A sample's outcome in the run: `correct`, its error kind, `failed`, or `no record`.
pub fn outcome(record: Option<&Record>) -> String {
    record.map_or("no record", |r| r.verdict.outcome()).to_string()
}

/// Rows of one experiment grouped by their sample's outcome in the run (the
/// majority answer's, for a run of sampled answers).
pub(super) fn by_outcome<'a, T>(rows: &'a [T], key: impl Fn(&T) -> &str, records: &[Record]) -> BTreeMap<String, Vec<&'a T>> {
    let first: BTreeMap<&str, &Record> = super::sampling::one_per_question(records).into_iter().rev().map(|r| (r.id.as_str(), r)).collect();
    let mut out: BTreeMap<String, Vec<&T>> = BTreeMap::new();
    for row in rows {
        out.entry(outcome(first.get(key(row)).copied())).or_default().push(row);
    }
    out
}

/// The measured rows of one experiment in `run` (None when it has none
/// yet): rows that hold a sample's error are left out, and a row that does
/// not decode as `T` is left out with a warning line in `warnings` naming
/// the file and sample (this layer never prints).
pub(super) fn measured<T: serde::de::DeserializeOwned>(run: &Path, e: Experiment, warnings: &mut Vec<String>) -> Result<Option<Vec<T>>> {
    let path = e.rows_path(run);
    if !path.exists() {
        return Ok(None);
    }
    let rows = read_keyed(&path, row_key)?;
    warnings.extend(rows.notes(&path).into_iter().map(|n| format!("warning: {n}")));
    let mut out = Vec::new();
    for v in rows.records.into_iter().filter(|v| v.get("error").is_none()) {
        let key = row_key(&v);
        match serde_json::from_value(v) {
            Ok(row) => out.push(row),
            Err(err) => {
                warnings.push(format!("warning: {}: the row of {key:?} is not a {} row ({err}); left out", path.display(), e.name()))
            }
        }
    }
    Ok(Some(out))
}

/// What the run's causal rows say, by outcome, as `report`'s text lines.
pub fn summary(run: &Path, records: &[Record], min_ld_gap: f64) -> Result<Vec<String>> {
    Ok(super::causal_summary::summarize(run, records, min_ld_gap)?.lines())
}

#[cfg(test)]
mod tests {
    use super::super::warnings;
    use super::*;

    /// A sampled run's rows are summed by each question's majority outcome,
    /// not by its first sample's.
    #[test]
    fn rows_of_a_sampled_run_group_by_the_majority_outcome() {
        use crate::spatial::{ErrorKind, Verdict};
        let dir = tempfile::tempdir().unwrap();
        let row = |key: &str| {
            let r = LensRow { key: key.into(), error: None, labels: vec![], curve: vec![], answer: None, gold: None, decided_at: Some(1) };
            serde_json::to_string(&r).unwrap() + "\n"
        };
        std::fs::create_dir_all(dir.path().join("causal")).unwrap();
        std::fs::write(Experiment::Lens.rows_path(dir.path()), row("q1") + &row("q2")).unwrap();
        let sample = |id: &str, j: usize, letter: &str, verdict: Verdict| Record {
            key: format!("{id}#s{j}"),
            id: id.into(),
            sample: Some(j),
            predicted_letter: Some(letter.into()),
            verdict,
            ..Default::default()
        };
        let flip = || Verdict::Wrong(ErrorKind::HorizontalFlip);
        // q1 and q2: the first sample a flip, the majority right; q3 has no row.
        let records = [
            sample("q1", 0, "B", flip()),
            sample("q1", 1, "A", Verdict::Correct),
            sample("q1", 2, "A", Verdict::Correct),
            sample("q2", 0, "B", flip()),
            sample("q2", 1, "A", Verdict::Correct),
            sample("q2", 2, "A", Verdict::Correct),
            sample("q3", 0, "B", flip()),
        ];
        let lines = summary(dir.path(), &records, warnings::DEFAULT_MIN_LD_GAP).unwrap();
        // "  correct            n    1  mean layer ..."
        let n = |outcome: &str| {
            lines.iter().find_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.first() == Some(&outcome)).then(|| w[2].to_string())
            })
        };
        assert_eq!(n("correct").as_deref(), Some("2"), "{lines:?}");
        assert_eq!(n(flip().outcome()), None, "{lines:?}");
    }

    #[test]
    fn median_ignores_nan_and_averages_the_middle_pair() {
        use super::super::causal_summary::median;
        assert_eq!(median([3.0, f64::NAN, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    /// Patching rows by hand: a sample whose LD barely moves (a huge ratio)
    /// is left out and counted, the share is a median, and "side moves"
    /// counts LD sign changes.
    #[test]
    fn patch_summary_uses_medians_and_counts_side_moves() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [("a", 1.0, -1.0, 1.0), ("b", 2.0, -0.5, 0.9), ("c", 0.30, 0.29, -50.0), ("e", 1.5, 0.5, 0.2)];
        let text: String = rows
            .iter()
            .map(|(key, clean, corrupt, image)| {
                let row = PatchRow {
                    key: key.to_string(),
                    error: None,
                    groups: vec!["image".into()],
                    ld_clean: *clean,
                    ld_corrupt: *corrupt,
                    effect: vec![vec![Some(*image)], vec![Some(0.1)]],
                    vision_effect: vec![Some(1.0)],
                };
                serde_json::to_string(&row).unwrap() + "\n"
            })
            .collect();
        // A row of another shape is left out (with a warning), not counted as zeros.
        let text = text + "{\"key\": \"d\", \"ld_clean\": \"oops\"}\n";
        std::fs::create_dir_all(dir.path().join("causal")).unwrap();
        std::fs::write(Experiment::Patch.rows_path(dir.path()), text).unwrap();
        let records: Vec<Record> = ["a", "b", "c", "e"]
            .iter()
            .map(|id| Record { id: id.to_string(), verdict: crate::spatial::Verdict::Correct, ..Default::default() })
            .collect();
        let lines = summary(dir.path(), &records, warnings::DEFAULT_MIN_LD_GAP).unwrap();
        assert!(lines[0].starts_with("patching (4 samples, 3 with a share of LD restored)"), "{lines:?}");
        assert!(lines[1].starts_with("⚠ small_ld_gap: 1 of 4 samples left out"), "{lines:?}");
        let right = lines.iter().position(|l| l.trim_start().starts_with("correct")).unwrap();
        // The side moves for a and b of all four; only the ratios leave c out.
        assert!(lines[right].contains("n    4 (3 with a ratio)  side moves  50%"), "{lines:?}");
        // Median 0.9 at layer 0 (c's -50 is left out), 0.1 at layer 1.
        assert_eq!(lines[right + 2].split_whitespace().collect::<Vec<_>>(), ["image", "1.00", "0.90", "0.10"], "{lines:?}");
        // With no threshold c counts: the median moves to 0.55 and no warning is printed.
        let lines = summary(dir.path(), &records, 0.0).unwrap();
        assert!(lines[0].starts_with("patching (4 samples, 4 with") && !lines[1].contains("small_ld_gap"), "{lines:?}");
        let right = lines.iter().position(|l| l.trim_start().starts_with("correct")).unwrap();
        assert_eq!(lines[right + 2].split_whitespace().collect::<Vec<_>>(), ["image", "1.00", "0.55", "0.10"], "{lines:?}");
    }
}
