//! Format-independent records: parquet, JSONL and TSV rows read by polars,
//! and JSON values, all become [`Record`]s of [`Cell`]s so that each loader
//! is written once against one API.

use polars::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Cell>),
    Map(Vec<(String, Cell)>),
}

impl Cell {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Cell::Str(s) => s.trim().parse().ok(),
            Cell::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            Cell::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    /// Text of a scalar cell: strings as they are, numbers printed.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Cell::Str(s) => Some(s.clone()),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Cell> {
        match self {
            Cell::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => Value::from(*f),
            Cell::Str(s) => Value::String(s.clone()),
            Cell::Bytes(b) => Value::String(format!("<{} bytes>", b.len())),
            Cell::List(l) => Value::Array(l.iter().map(Cell::to_json).collect()),
            Cell::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

impl From<&serde_json::Value> for Cell {
    fn from(v: &serde_json::Value) -> Cell {
        use serde_json::Value;
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Bool(*b),
            Value::Number(n) => n.as_i64().map(Cell::Int).unwrap_or_else(|| Cell::Float(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => Cell::Str(s.clone()),
            Value::Array(a) => Cell::List(a.iter().map(Cell::from).collect()),
            Value::Object(o) => Cell::Map(o.iter().map(|(k, v)| (k.clone(), Cell::from(v))).collect()),
        }
    }
}

fn cell_from_any(av: AnyValue<'_>) -> Cell {
    match av.into_static() {
        AnyValue::Null => Cell::Null,
        AnyValue::Boolean(b) => Cell::Bool(b),
        AnyValue::StringOwned(s) => Cell::Str(s.to_string()),
        AnyValue::String(s) => Cell::Str(s.to_string()),
        AnyValue::Int8(v) => Cell::Int(v as i64),
        AnyValue::Int16(v) => Cell::Int(v as i64),
        AnyValue::Int32(v) => Cell::Int(v as i64),
        AnyValue::Int64(v) => Cell::Int(v),
        AnyValue::UInt8(v) => Cell::Int(v as i64),
        AnyValue::UInt16(v) => Cell::Int(v as i64),
        AnyValue::UInt32(v) => Cell::Int(v as i64),
        AnyValue::UInt64(v) => Cell::Int(v as i64),
        AnyValue::Float32(v) => Cell::Float(v as f64),
        AnyValue::Float64(v) => Cell::Float(v),
        AnyValue::Binary(b) => Cell::Bytes(b.to_vec()),
        AnyValue::BinaryOwned(b) => Cell::Bytes(b),
        AnyValue::List(s) => Cell::List(s.iter().map(cell_from_any).collect()),
        AnyValue::StructOwned(payload) => {
            let (values, fields) = *payload;
            Cell::Map(fields.iter().zip(values).map(|(f, v)| (f.name().to_string(), cell_from_any(v))).collect())
        }
        other => Cell::Str(other.to_string()),
    }
}

/// One row of a dataset file, with where it came from for error messages.
#[derive(Debug, Clone)]
pub struct Record {
    /// "line 17", "row 4", "record 9".
    pub location: String,
    pub fields: Vec<(String, Cell)>,
}

impl Record {
    pub fn get(&self, field: &str) -> Option<&Cell> {
        self.fields.iter().find(|(k, _)| k == field).map(|(_, v)| v).filter(|c| !c.is_null())
    }
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
    pub fn from_json(location: String, v: &serde_json::Value) -> Record {
        let fields = match Cell::from(v) {
            Cell::Map(m) => m,
            other => vec![(String::new(), other)],
        };
        Record { location, fields }
    }
    pub fn keys(&self) -> Vec<&str> {
        self.fields.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Rows of a polars frame as records; `first_line` numbers them (1 for
/// JSONL lines, 2 for a TSV with a header) or `None` to say "row N".
pub fn frame_records(df: &DataFrame, first_line: Option<usize>) -> Vec<Record> {
    let cols = df.columns();
    (0..df.height())
        .map(|i| Record {
            location: match first_line {
                Some(base) => format!("line {}", base + i),
                None => format!("row {i}"),
            },
            fields: cols.iter().map(|c| (c.name().to_string(), c.get(i).map(cell_from_any).unwrap_or(Cell::Null))).collect(),
        })
        .collect()
}
