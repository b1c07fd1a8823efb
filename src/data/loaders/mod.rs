//! One loader per on-disk format. Each turns records into [`Sample`]s; a
//! record with a bad field is skipped and reported as a [`RecordIssue`].

mod adaptvis;
mod clevr;
mod cvbench;
pub mod generic;
mod sat;
mod viewspatial;
mod vlmeval;
mod vsr;
mod whatsup;

use super::error::{DataError, FieldError, FieldResult, RecordIssue};
use super::sample::Sample;
use super::spec::{DatasetSpec, Format};
use super::table::{Cell, Record};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// What a loader needs: the file, the image root, and a place for issues.
pub struct LoadCtx<'a> {
    pub spec: &'a DatasetSpec,
    /// The file to read (a decompressed or piped dataset's temporary copy).
    pub path: PathBuf,
    /// The file as the user named it: where companion files are looked for.
    pub origin: PathBuf,
    pub root: PathBuf,
    pub dataset: String,
    pub issues: Vec<RecordIssue>,
}

impl LoadCtx<'_> {
    /// Runs `f` on a record; a field error becomes an issue and `None`.
    pub fn each<T>(&mut self, rec: &Record, f: impl FnOnce(&Record) -> FieldResult<T>) -> Option<T> {
        match f(rec) {
            Ok(v) => Some(v),
            Err(e) => {
                self.issues.push(RecordIssue {
                    path: self.path.clone(),
                    location: rec.location.clone(),
                    field: e.field,
                    message: e.message,
                });
                None
            }
        }
    }
}

/// Builds a sample from every record; bad records become issues.
pub fn build_samples(ctx: &mut LoadCtx, records: &[Record], f: impl Fn(&Record, usize, &Path, &str) -> FieldResult<Sample>) -> Vec<Sample> {
    let (root, dataset) = (ctx.root.clone(), ctx.dataset.clone());
    records.iter().enumerate().filter_map(|(i, r)| ctx.each(r, |r| f(r, i, &root, &dataset))).collect()
}

/// Records of a parquet file, or of JSONL for any other extension.
pub fn table_records(path: &Path, issues: &mut Vec<RecordIssue>) -> Result<Vec<Record>, DataError> {
    if path.extension().is_some_and(|e| e == "parquet") {
        super::read::parquet_records(path)
    } else {
        super::read::read_jsonl(path, issues)
    }
}

pub fn load_samples(format: Format, ctx: &mut LoadCtx) -> Result<Vec<Sample>, DataError> {
    match format {
        Format::ViewSpatial => viewspatial::load(ctx),
        Format::WhatsUp => whatsup::load(ctx),
        Format::AdaptVis => adaptvis::load(ctx),
        Format::Vsr => vsr::load(ctx),
        Format::CvBench => cvbench::load(ctx),
        Format::Sat => sat::load(ctx),
        Format::Clevr => clevr::load(ctx),
        Format::VlmEvalTsv => vlmeval::load(ctx),
        Format::Generic => generic::load(ctx),
    }
}

// ---- field access shared by the loaders ----

pub fn req<'r>(rec: &'r Record, field: &str) -> FieldResult<&'r Cell> {
    rec.get(field).ok_or_else(|| FieldError::missing(field))
}

pub fn req_str<'r>(rec: &'r Record, field: &str) -> FieldResult<&'r str> {
    match req(rec, field)? {
        Cell::Str(s) => Ok(s),
        other => Err(FieldError::new(field, format!("expected text, found {}", kind_of(other)))),
    }
}

/// Text of a scalar field (numbers printed), or None when absent.
pub fn opt_text(rec: &Record, field: &str) -> Option<String> {
    rec.get(field).and_then(Cell::to_text)
}

/// A list of strings; a single string counts as a list of one.
pub fn str_list(rec: &Record, field: &str) -> FieldResult<Vec<String>> {
    match req(rec, field)? {
        Cell::Str(s) => Ok(vec![s.clone()]),
        Cell::List(items) => {
            items.iter().map(|c| c.to_text().ok_or_else(|| FieldError::new(field, format!("list item is {}", kind_of(c))))).collect()
        }
        other => Err(FieldError::new(field, format!("expected a list of text, found {}", kind_of(other)))),
    }
}

pub fn kind_of(c: &Cell) -> &'static str {
    match c {
        Cell::Null => "null",
        Cell::Bool(_) => "a boolean",
        Cell::Int(_) => "an integer",
        Cell::Float(_) => "a number",
        Cell::Str(_) => "text",
        Cell::Bytes(_) => "bytes",
        Cell::List(_) => "a list",
        Cell::Map(_) => "an object",
    }
}

/// A stable per-sample shuffle (options of caption and SAT items), so that
/// the gold answer is not always option A and reruns see the same order.
pub fn seeded_shuffle<T>(items: &mut [T], key: &str) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    items.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(h));
}

/// Parses "(C)", "C", "C." or "C. text" into a letter.
pub fn letter_of(answer: &str) -> Option<char> {
    let t = answer.trim().trim_start_matches('(');
    let mut chars = t.chars();
    let c = chars.next()?;
    let rest = chars.as_str().trim_start();
    (c.is_ascii_uppercase() && (rest.is_empty() || rest.starts_with(')') || rest.starts_with('.'))).then_some(c)
}

pub fn file_stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
