//! `run.json`: the model fingerprint, dataset and its hash, prompt, decoding
//! and variant, version, device and times. A run name is only reused for the
//! same model, prompt, decoding and variant.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunMeta {
    pub name: String,
    pub model: String,
    /// sha256 of config.json plus the weight index (or the single file's size).
    pub model_fingerprint: String,
    pub adapter: Option<String>,
    pub dataset: String,
    pub dataset_hash: String,
    /// The prompt template ({question}, {choices}).
    pub prompt: String,
    /// "score" or "generate(max_new_tokens=N)".
    pub decoding: String,
    pub variant: String,
    pub circular: bool,
    pub flipscope_version: String,
    pub device: String,
    pub started: String,
    pub finished: Option<String>,
}

fn hex(h: Sha256) -> String {
    format!("{:x}", h.finalize())
}

/// Hash of a model directory's config and weight layout (not the weights' bytes,
/// which would take minutes for a 7B checkpoint).
pub fn model_fingerprint(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let cfg = dir.join("config.json");
    h.update(std::fs::read(&cfg).with_context(|| format!("{}: cannot read", cfg.display()))?);
    let index = dir.join("model.safetensors.index.json");
    if let Ok(bytes) = std::fs::read(&index) {
        h.update(bytes);
    } else if let Ok(m) = std::fs::metadata(dir.join("model.safetensors")) {
        h.update(m.len().to_le_bytes());
    }
    Ok(hex(h)[..16].to_string())
}

/// What a dataset spec names: its options (format, split, column mapping;
/// every option of a `synth:` spec) and its file's or folder's bytes (size
/// plus the first and last MiB, see [`file_hash`]). The folder the file sits
/// in is not part of it, so a moved dataset still resumes.
pub fn dataset_hash(data_spec: &str) -> String {
    let mut h = Sha256::new();
    match crate::data::spec::DatasetSpec::parse(data_spec) {
        Ok(spec) if !data_spec.starts_with("synth:") => {
            h.update(format!("{:?}|{:?}|{:?}|", spec.format.map(|f| f.name()), spec.split, spec.options).as_bytes());
            h.update(file_hash(&spec.path).as_bytes());
        }
        _ => h.update(data_spec.as_bytes()),
    }
    hex(h)[..16].to_string()
}

/// Hash of a dataset file (or folder's files): size plus the first and last MiB.
pub fn file_hash(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut files: Vec<std::path::PathBuf> = if path.is_dir() {
        std::fs::read_dir(path).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect()).unwrap_or_default()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    for f in files {
        if let Ok((len, head, tail)) = ends(&f, 1 << 20) {
            h.update(f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default().as_bytes());
            h.update(len.to_le_bytes());
            h.update(&head);
            h.update(&tail);
        }
    }
    hex(h)[..16].to_string()
}

/// A file's length, its first `n` bytes and its last `n` bytes (overlapping
/// when the file is shorter than 2n), read without touching the middle.
fn ends(path: &Path, n: u64) -> std::io::Result<(u64, Vec<u8>, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = Vec::new();
    (&mut f).take(n).read_to_end(&mut head)?;
    f.seek(SeekFrom::Start(len.saturating_sub(n)))?;
    let mut tail = Vec::new();
    f.take(n).read_to_end(&mut tail)?;
    Ok((len, head, tail))
}

pub fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // UTC, ISO 8601, without pulling in a date crate.
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (y, mo, d) = civil(days as i64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

impl RunMeta {
    /// The metadata of a run starting now; `prompt` and `decoding` as the
    /// evaluator describes them (they decide whether a run may be resumed).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        model: &Path,
        data_spec: &str,
        prompt: String,
        decoding: String,
        variant: &str,
        circular: bool,
        device: &str,
    ) -> Result<RunMeta> {
        Ok(RunMeta {
            name: name.to_string(),
            model: model.display().to_string(),
            model_fingerprint: model_fingerprint(model)?,
            adapter: None,
            dataset: data_spec.to_string(),
            dataset_hash: dataset_hash(data_spec),
            prompt,
            decoding,
            variant: variant.to_string(),
            circular,
            flipscope_version: env!("CARGO_PKG_VERSION").into(),
            device: device.to_string(),
            started: now(),
            finished: None,
        })
    }

    /// Fields that must match for a run to be resumed; each mismatch is named.
    pub fn conflicts(&self, other: &RunMeta) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |field: &str, a: &str, b: &str| {
            if a != b {
                out.push(format!("{field}: run has `{a}`, this command `{b}`"));
            }
        };
        check("model fingerprint", &self.model_fingerprint, &other.model_fingerprint);

        check("adapter", self.adapter.as_deref().unwrap_or("-"), other.adapter.as_deref().unwrap_or("-"));
        check("prompt", &self.prompt, &other.prompt);
        check("decoding", &self.decoding, &other.decoding);
        check("variant", &self.variant, &other.variant);
        check("circular", &self.circular.to_string(), &other.circular.to_string());
        if self.dataset_hash != other.dataset_hash {
            out.push(format!(
                "dataset: run has `{}` (hash {}), this command `{}` (hash {})",
                self.dataset, self.dataset_hash, other.dataset, other.dataset_hash
            ));
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run.json with every field, for tests elsewhere in `runs`.
    pub(crate) const MINIMAL: &str = r#"{"name":"t","model":"m","model_fingerprint":"f","adapter":null,"dataset":"d","dataset_hash":"h","prompt":"p","decoding":"score","variant":"plain","circular":false,"flipscope_version":"0","device":"cpu","started":"now","finished":null}"#;

    #[test]
    fn dataset_hash_reads_the_ends_and_the_length() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("d.jsonl");
        let mut big = vec![b'x'; 3 << 20];
        std::fs::write(&p, &big).unwrap();
        let h0 = file_hash(&p);
        // A change in the middle MiB is (by design) not seen; one at either end, or in length, is.
        big[3 << 19] = b'y';
        std::fs::write(&p, &big).unwrap();
        assert_eq!(file_hash(&p), h0);
        big[10] = b'y';
        std::fs::write(&p, &big).unwrap();
        let h1 = file_hash(&p);
        assert_ne!(h1, h0);
        big.push(b'\n');
        std::fs::write(&p, &big).unwrap();
        assert_ne!(file_hash(&p), h1);
        let (len, head, tail) = ends(&p, 1 << 20).unwrap();
        assert_eq!((len, head.len(), tail.len(), *tail.last().unwrap()), (3 << 20 | 1, 1 << 20, 1 << 20, b'\n'));
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(ends(&p, 1 << 20).unwrap(), (3, b"abc".to_vec(), b"abc".to_vec()));
    }

    #[test]
    fn dataset_hash_tells_specs_apart_but_not_folders() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["x", "y"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
            std::fs::write(tmp.path().join(d).join("d.jsonl"), "{}\n").unwrap();
        }
        let spec = |d: &str, opts: &str| format!("generic:{}{opts}", tmp.path().join(d).join("d.jsonl").display());
        assert_eq!(dataset_hash(&spec("x", "")), dataset_hash(&spec("y", "")), "a moved file is the same dataset");
        assert_ne!(dataset_hash(&spec("x", "")), dataset_hash(&spec("x", "#split=test")));
        assert_ne!(dataset_hash("synth:20#seed=1"), dataset_hash("synth:20#seed=2"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_414), (2025, 11, 22));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert!(now().ends_with('Z') && now().len() == 20);
    }
}
