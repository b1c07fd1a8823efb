//! Reading dataset files into records: JSON and JSONL with serde, parquet
//! and TSV with polars. Only regular files are opened, nesting is bounded,
//! and errors name the file and line.

use super::error::{DataError, RecordIssue};
use super::table::{frame_records, Record};
use polars::prelude::*;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The deepest nesting a dataset record may have. serde_json refuses past
/// 128 on its own; this keeps every reader, and the recursive conversion to
/// cells, far from the stack's end.
pub const MAX_JSON_DEPTH: usize = 64;

/// How deeply `bytes` nest `[` and `{`, strings skipped; stops counting past `cap`.
pub fn json_depth(bytes: &[u8], cap: usize) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
                if max > cap {
                    return max;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn too_deep() -> String {
    format!("nested deeper than {MAX_JSON_DEPTH} levels")
}

pub fn read_json_value(path: &Path) -> Result<serde_json::Value, DataError> {
    let bytes = crate::fsutil::read_regular(path, super::source::max_data_bytes()).map_err(|e| DataError::io(path, e))?;
    if json_depth(&bytes, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
        return Err(DataError::malformed(path, "file", too_deep()));
    }
    // From bytes, so that bad UTF-8 is reported with its line like any other error.
    serde_json::from_slice(&bytes)
        .map_err(|e| DataError::malformed(path, format!("line {} column {}", e.line(), e.column()), format!("invalid JSON: {e}")))
}

/// A JSON file holding a list of objects, as records "record N".
pub fn read_json_list(path: &Path) -> Result<Vec<Record>, DataError> {
    match read_json_value(path)? {
        serde_json::Value::Array(items) => Ok(items.iter().enumerate().map(|(i, v)| Record::from_json(format!("record {i}"), v)).collect()),
        _ => Err(DataError::malformed(path, "top level", "expected a JSON list of records")),
    }
}

/// JSONL, one record per line. A line that is not UTF-8, not JSON, not an
/// object or nested too deep is skipped and reported in `issues` with its
/// line number, like any other bad record; blank lines are skipped.
pub fn read_jsonl(path: &Path, issues: &mut Vec<RecordIssue>) -> Result<Vec<Record>, DataError> {
    let bytes = crate::fsutil::read_regular(path, super::source::max_data_bytes()).map_err(|e| DataError::io(path, e))?;
    let mut records = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let location = format!("line {}", i + 1);
        let mut bad = |message: String| {
            issues.push(RecordIssue { path: path.to_path_buf(), location: location.clone(), field: "(line)".into(), message })
        };
        let text = match std::str::from_utf8(line) {
            Ok(t) if t.trim().is_empty() => continue,
            Ok(t) => t,
            Err(e) => {
                bad(format!("not UTF-8 (byte {} of the line)", e.valid_up_to()));
                continue;
            }
        };
        if json_depth(line, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
            bad(too_deep());
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => records.push(Record::from_json(location.clone(), &v)),
            Ok(_) => bad("expected a JSON object".into()),
            Err(e) => bad(format!("invalid JSON: {e}")),
        }
    }
    Ok(records)
}

pub fn read_parquet(path: &Path) -> Result<DataFrame, DataError> {
    let file = crate::fsutil::open_regular(path).map_err(|e| DataError::io(path, e))?;
    ParquetReader::new(file).finish().map_err(|e| DataError::malformed(path, "file", format!("cannot read parquet: {e}")))
}

pub fn parquet_records(path: &Path) -> Result<Vec<Record>, DataError> {
    Ok(frame_records(&read_parquet(path)?, None))
}

/// Column names of a parquet file, read from its footer only.
pub fn parquet_columns(path: &Path) -> Result<Vec<String>, DataError> {
    let file = crate::fsutil::open_regular(path).map_err(|e| DataError::io(path, e))?;
    let schema =
        ParquetReader::new(file).schema().map_err(|e| DataError::malformed(path, "footer", format!("cannot read parquet schema: {e}")))?;
    Ok(schema.iter_names().map(|n| n.to_string()).collect())
}

/// A tab-separated file with a header; every column is read as text.
pub fn read_tsv(path: &Path) -> Result<Vec<Record>, DataError> {
    crate::fsutil::open_regular(path).map_err(|e| DataError::io(path, e))?;
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        // Bad UTF-8 becomes U+FFFD in its cell instead of failing the whole file.
        .with_parse_options(CsvParseOptions::default().with_separator(b'\t').with_encoding(CsvEncoding::LossyUtf8))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| DataError::malformed(path, "file", format!("cannot read TSV: {e}")))?;
    Ok(frame_records(&df, Some(2)))
}

/// Keys of the first JSON object of a JSONL file (for format detection).
pub fn jsonl_first_keys(path: &Path) -> Result<Vec<String>, DataError> {
    let file = crate::fsutil::open_regular(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    for i in 0.. {
        line.clear();
        // One line at most 1 MiB, so a file without newlines is not read whole here.
        if (&mut reader).take(1 << 20).read_until(b'\n', &mut line).map_err(|e| DataError::io(path, e))? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&line);
        if line.trim().is_empty() {
            continue;
        }
        if json_depth(line.as_bytes(), MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
            return Err(DataError::malformed(path, format!("line {}", i + 1), too_deep()));
        }
        return match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(o)) => Ok(o.keys().cloned().collect()),
            _ => Err(DataError::malformed(path, format!("line {}", i + 1), "expected a JSON object")),
        };
    }
    Ok(Vec::new())
}
