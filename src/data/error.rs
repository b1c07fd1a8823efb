//! Typed data errors: callers branch on them (the TUI shows a missing image
//! differently from a malformed file), and each one names the file and,
//! where it has one, the line or record and the field.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    // The cause is in the message, not a `source`: with both, `{:#}` says it twice.
    #[error("{path}: cannot read: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    #[error("{path}: {location}: {message}")]
    Malformed { path: PathBuf, location: String, message: String },

    #[error("{path}: {location}: field `{field}`: {message}")]
    Field { path: PathBuf, location: String, field: String, message: String },

    #[error("{path}: cannot tell the dataset format ({reason}); name it as KIND:PATH, one of: {supported}")]
    UnknownFormat { path: PathBuf, reason: String, supported: String },

    #[error("unknown dataset kind `{kind}`; supported: {supported}")]
    UnknownKind { kind: String, supported: String },

    #[error("{path}: no usable samples ({issues} record errors; first: {first})")]
    NoSamples { path: PathBuf, issues: usize, first: String },

    #[error("{path}: {message}")]
    Other { path: PathBuf, message: String },

    #[error("--data is empty: give a dataset path, KIND:PATH, or synth:N")]
    EmptySpec,
}

impl DataError {
    /// The same error, naming `to` where it named `from`.
    pub fn renamed(mut self, from: &std::path::Path, to: &std::path::Path) -> DataError {
        match &mut self {
            DataError::Io { path, .. }
            | DataError::Malformed { path, .. }
            | DataError::Field { path, .. }
            | DataError::UnknownFormat { path, .. }
            | DataError::NoSamples { path, .. }
            | DataError::Other { path, .. } => {
                if path == from {
                    *path = to.to_path_buf();
                }
            }
            DataError::UnknownKind { .. } | DataError::EmptySpec => {}
        }
        self
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DataError {
        DataError::Io { path: path.into(), cause: source }
    }
    pub fn malformed(path: impl Into<PathBuf>, location: impl Into<String>, message: impl ToString) -> DataError {
        DataError::Malformed { path: path.into(), location: location.into(), message: message.to_string() }
    }
}

/// A problem with one record: the record is skipped, the load goes on, and
/// the problem is reported with file, record and field.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordIssue {
    pub path: PathBuf,
    pub location: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RecordIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: field `{}`: {}", self.path.display(), self.location, self.field, self.message)
    }
}

/// A field-level failure inside a loader, before the file and record are
/// attached.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl ToString) -> FieldError {
        FieldError { field: field.to_string(), message: message.to_string() }
    }
    pub fn missing(field: &str) -> FieldError {
        FieldError::new(field, "missing")
    }
}

pub type FieldResult<T> = Result<T, FieldError>;
