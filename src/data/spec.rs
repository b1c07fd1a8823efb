//! Dataset specs (`[KIND:]PATH[#key=value,...]`) and format detection.

use super::error::DataError;
use super::read::{jsonl_first_keys, parquet_columns};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    ViewSpatial,
    WhatsUp,
    AdaptVis,
    Vsr,
    CvBench,
    Sat,
    Clevr,
    VlmEvalTsv,
    Generic,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::ViewSpatial,
        Format::WhatsUp,
        Format::AdaptVis,
        Format::Vsr,
        Format::CvBench,
        Format::Sat,
        Format::Clevr,
        Format::VlmEvalTsv,
        Format::Generic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::ViewSpatial => "viewspatial",
            Format::WhatsUp => "whatsup",
            Format::AdaptVis => "adaptvis",
            Format::Vsr => "vsr",
            Format::CvBench => "cvbench",
            Format::Sat => "sat",
            Format::Clevr => "clevr",
            Format::VlmEvalTsv => "vlmeval",
            Format::Generic => "generic",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        let n = name.to_ascii_lowercase().replace(['-', '_'], "");
        let alias = match n.as_str() {
            "tsv" | "vlmevalkit" => "vlmeval",
            "viewspatialbench" => "viewspatial",
            "clevrcogent" => "clevr",
            "jsonl" | "parquet" => "generic",
            other => other,
        };
        Format::ALL.into_iter().find(|f| f.name() == alias)
    }

    pub fn supported() -> String {
        Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }
}

/// A parsed dataset spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    pub format: Option<Format>,
    pub path: PathBuf,
    /// Where relative image paths are resolved (default: the file's folder).
    pub root: Option<PathBuf>,
    /// Keep only this split.
    pub split: Option<String>,
    /// Other `key=value` options: the generic format's column mapping.
    pub options: Vec<(String, String)>,
}

impl DatasetSpec {
    pub fn parse(spec: &str) -> Result<DatasetSpec, DataError> {
        let (body, opts) = match spec.split_once('#') {
            Some((b, o)) => (b, o),
            None => (spec, ""),
        };
        let (format, path) = match body.split_once(':') {
            Some((kind, rest)) if !kind.contains('/') && !kind.is_empty() => match Format::from_name(kind) {
                Some(f) => (Some(f), rest),
                None if Path::new(body).exists() => (None, body),
                None => return Err(DataError::UnknownKind { kind: kind.to_string(), supported: Format::supported() }),
            },
            _ => (None, body),
        };
        let mut out = DatasetSpec { format, path: PathBuf::from(path), root: None, split: None, options: Vec::new() };
        let pairs =
            crate::kv::pairs(opts, &[]).map_err(|e| DataError::Other { path: out.path.clone(), message: format!("spec option {e}") })?;
        for crate::kv::Pair { key, value } in pairs {
            match key.as_str() {
                "root" => out.root = Some(PathBuf::from(value)),
                "split" => out.split = Some(value),
                _ => out.options.push((key, value)),
            }
        }
        Ok(out)
    }

    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default()
}

pub(super) fn ext(p: &Path) -> String {
    p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default()
}

fn unknown(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::UnknownFormat { path: path.to_path_buf(), reason: reason.into(), supported: Format::supported() }
}

const WHATSUP_FILES: [&str; 6] = [
    "controlled_images_dataset.json",
    "controlled_clevr_dataset.json",
    "coco_qa_one_obj.json",
    "coco_qa_two_obj.json",
    "vg_qa_one_obj.json",
    "vg_qa_two_obj.json",
];

/// Picks the dataset file inside a folder, or says which ones compete.
pub fn resolve_dir(dir: &Path) -> Result<PathBuf, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    let known = |p: &PathBuf| {
        let n = file_name(p);
        n == "viewspatial-bench.json" || WHATSUP_FILES.contains(&n.as_str())
    };
    // data.jsonl.gz counts as data.jsonl (it is decompressed when loaded).
    let data_like = |p: &PathBuf| {
        let inner = if matches!(ext(p).as_str(), "gz" | "zst") { p.with_extension("") } else { p.clone() };
        matches!(ext(&inner).as_str(), "jsonl" | "json" | "parquet" | "tsv") && inner != *p
            || matches!(ext(p).as_str(), "jsonl" | "parquet" | "tsv")
            || known(p)
    };
    let picks: Vec<&PathBuf> =
        if files.iter().any(known) { files.iter().filter(|p| known(p)).collect() } else { files.iter().filter(|p| data_like(p)).collect() };
    match picks.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(unknown(dir, "no dataset file in this folder")),
        many => Err(DataError::Other {
            path: dir.to_path_buf(),
            message: format!("several dataset files here ({}); name one", many.iter().map(|p| file_name(p)).collect::<Vec<_>>().join(", ")),
        }),
    }
}

/// Detects the format of a file from its name, then from its columns.
pub fn detect(path: &Path) -> Result<Format, DataError> {
    let name = file_name(path);
    let has = |keys: &[String], want: &[&str]| want.iter().all(|w| keys.iter().any(|k| k == w));
    if name.contains("viewspatial") && ext(path) == "json" {
        return Ok(Format::ViewSpatial);
    }
    if WHATSUP_FILES.contains(&name.as_str()) {
        return Ok(Format::WhatsUp);
    }
    if (name.contains("_with_answer_") || name.ends_with("_with_answer.jsonl")) && ext(path) == "jsonl" {
        return Ok(Format::AdaptVis);
    }
    if name.starts_with("sat_") && ext(path) == "parquet" {
        return Ok(Format::Sat);
    }
    match ext(path).as_str() {
        "tsv" => Ok(Format::VlmEvalTsv),
        "json" => {
            let v = super::read::read_json_value(path)?;
            let first = v.as_array().and_then(|a| a.first());
            match first {
                Some(serde_json::Value::Object(o)) if o.contains_key("question_type") && o.contains_key("image_path") => {
                    Ok(Format::ViewSpatial)
                }
                Some(serde_json::Value::Object(o)) if o.contains_key("caption_options") => Ok(Format::WhatsUp),
                Some(serde_json::Value::Array(_)) => Ok(Format::WhatsUp),
                _ => Err(unknown(path, "a JSON file of neither ViewSpatial nor WhatsUp shape")),
            }
        }
        "jsonl" => {
            let keys = jsonl_first_keys(path)?;
            detect_from_columns(path, &keys)
        }
        "parquet" => {
            let cols = parquet_columns(path)?;
            if has(&cols, &["image_bytes", "correct_answer"]) {
                return Ok(Format::Sat);
            }
            detect_from_columns(path, &cols)
        }
        other => Err(unknown(path, format!("unsupported file extension `.{other}`"))),
    }
}

fn detect_from_columns(path: &Path, keys: &[String]) -> Result<Format, DataError> {
    let has = |want: &[&str]| want.iter().all(|w| keys.iter().any(|k| k == w));
    if has(&["caption", "label", "relation"]) {
        Ok(Format::Vsr)
    } else if has(&["task", "choices", "answer"]) && (has(&["filename"]) || has(&["image"])) {
        Ok(Format::CvBench)
    } else if has(&["problem", "solution"]) {
        Ok(Format::Clevr)
    } else if has(&["question"]) && (has(&["image"]) || has(&["images"]) || has(&["image_path"])) {
        Ok(Format::Generic)
    } else if has(&["id", "question", "answer"]) {
        Ok(Format::AdaptVis)
    } else {
        Err(unknown(path, format!("columns [{}] match no known format", keys.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_path_and_options() {
        let s = DatasetSpec::parse("vsr:data/vsr/test.jsonl#root=/coco,split=test,x=y").unwrap();
        assert_eq!(s.format, Some(Format::Vsr));
        assert_eq!(s.path, PathBuf::from("data/vsr/test.jsonl"));
        assert_eq!(s.root, Some(PathBuf::from("/coco")));
        assert_eq!(s.split.as_deref(), Some("test"));
        assert_eq!(s.option("x"), Some("y"));
        let plain = DatasetSpec::parse("some/file.json").unwrap();
        assert_eq!(plain.format, None);
        assert_eq!(Format::from_name("TSV"), Some(Format::VlmEvalTsv));
        assert_eq!(Format::from_name("ViewSpatial-Bench"), Some(Format::ViewSpatial));
    }

    #[test]
    fn unknown_kind_lists_supported() {
        let err = DatasetSpec::parse("nope:x.json").unwrap_err().to_string();
        assert!(err.contains("unknown dataset kind `nope`"), "{err}");
        assert!(err.contains("viewspatial") && err.contains("vlmeval") && err.contains("generic"), "{err}");
    }
}
