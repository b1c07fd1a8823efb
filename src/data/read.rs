//! Reading dataset files into records: JSON with serde, and JSONL, parquet
//! and TSV with polars. Syntax errors name the file and line.

use super::error::DataError;
use super::table::{frame_records, Record};
use polars::prelude::*;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

pub fn read_json_value(path: &Path) -> Result<serde_json::Value, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| DataError::malformed(path, format!("line {} column {}", e.line(), e.column()), format!("invalid JSON: {e}")))
}

/// A JSON file holding a list of objects, as records "record N".
pub fn read_json_list(path: &Path) -> Result<Vec<Record>, DataError> {
    match read_json_value(path)? {
        serde_json::Value::Array(items) => Ok(items.iter().enumerate().map(|(i, v)| Record::from_json(format!("record {i}"), v)).collect()),
        _ => Err(DataError::malformed(path, "top level", "expected a JSON list of records")),
    }
}

/// Finds the first line that is not a JSON object, so a polars failure can
/// be reported as "file: line N: ...".
fn locate_bad_jsonl_line(path: &Path) -> Option<DataError> {
    let file = File::open(path).ok()?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some(DataError::malformed(path, format!("line {}", i + 1), e)),
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Some(DataError::malformed(path, format!("line {}", i + 1), "expected a JSON object")),
            Err(e) => return Some(DataError::malformed(path, format!("line {}", i + 1), format!("invalid JSON: {e}"))),
        }
    }
    None
}

pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    // Blank lines would shift polars' row numbers off the file's lines.
    let has_blank = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?.lines().any(|l| l.trim().is_empty());
    if has_blank {
        return read_jsonl_by_line(path);
    }
    match JsonReader::new(file).with_json_format(JsonFormat::JsonLines).infer_schema_len(None).finish() {
        Ok(df) => Ok(frame_records(&df, Some(1))),
        // Every line is valid JSON but polars found no common schema (a
        // field that is a list in one row and an object in another): read
        // the rows one by one instead.
        Err(_) => match locate_bad_jsonl_line(path) {
            Some(err) => Err(err),
            None => read_jsonl_by_line(path),
        },
    }
}

/// Line-by-line JSONL with serde: for files with blank lines (polars' row
/// numbers would not match the file's) and rows of differing shapes.
fn read_jsonl_by_line(path: &Path) -> Result<Vec<Record>, DataError> {
    if let Some(err) = locate_bad_jsonl_line(path) {
        return Err(err);
    }
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Record::from_json(format!("line {}", i + 1), &serde_json::from_str(l).expect("checked")))
        .collect())
}

pub fn read_parquet(path: &Path) -> Result<DataFrame, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    ParquetReader::new(file).finish().map_err(|e| DataError::malformed(path, "file", format!("cannot read parquet: {e}")))
}

pub fn parquet_records(path: &Path) -> Result<Vec<Record>, DataError> {
    Ok(frame_records(&read_parquet(path)?, None))
}

/// Column names of a parquet file, read from its footer only.
pub fn parquet_columns(path: &Path) -> Result<Vec<String>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let schema =
        ParquetReader::new(file).schema().map_err(|e| DataError::malformed(path, "footer", format!("cannot read parquet schema: {e}")))?;
    Ok(schema.iter_names().map(|n| n.to_string()).collect())
}

/// A tab-separated file with a header; every column is read as text.
pub fn read_tsv(path: &Path) -> Result<Vec<Record>, DataError> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_parse_options(CsvParseOptions::default().with_separator(b'\t'))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| DataError::malformed(path, "file", format!("cannot read TSV: {e}")))?;
    Ok(frame_records(&df, Some(2)))
}

/// Keys of the first JSON object of a JSONL file (for format detection).
pub fn jsonl_first_keys(path: &Path) -> Result<Vec<String>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| DataError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        return match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(o)) => Ok(o.keys().cloned().collect()),
            _ => Err(DataError::malformed(path, format!("line {}", i + 1), "expected a JSON object")),
        };
    }
    Ok(Vec::new())
}
