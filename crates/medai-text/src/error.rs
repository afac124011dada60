//! The crate's error type. Every variant names the file and, where there is one, the line and
//! column (field) involved, so a message alone says what to fix.

use std::path::PathBuf;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Malformed CSV (for example a row with the wrong number of fields).
    #[error("{}: line {line}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// The file has no header or no data rows.
    #[error("{}: {what}", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// A column asked for is not in the header.
    #[error("{}: line 1: no column {column:?} (columns: {available})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The header's columns, comma-separated.
        available: String,
    },
    /// A field that is not valid UTF-8.
    #[error(
        "{}: line {line}: column {column:?} (field {field}) is not valid UTF-8 (invalid byte at offset {offset} of the field)",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// The column's header name (`"<header>"` for the header row itself).
        column: String,
        /// 1-based field number.
        field: usize,
        /// Byte offset of the first invalid byte inside the field.
        offset: usize,
    },
    /// A text cell that is empty or only whitespace.
    #[error("{}: line {line}: column {column:?} is empty", path.display())]
    EmptyText {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// The text column.
        column: String,
    },
    /// A label cell with no label in it.
    #[error("{}: line {line}: column {column:?} has no label", path.display())]
    EmptyLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// The label column.
        column: String,
    },
    /// A split cell that is not train/val/test (or a spelling of them).
    #[error(
        "{}: line {line}: column {column:?}: unknown split {value:?} (expected train|training, val|valid|validation|dev or test|testing)",
        path.display()
    )]
    BadSplit {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// The split column.
        column: String,
        /// The value found.
        value: String,
    },
    /// A label that the label set (built from the training split) does not know.
    #[error("{}: line {line}: label {label:?} was not seen in the training split", path.display())]
    UnknownLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// The label.
        label: String,
    },
    /// A tokenizer that could not be loaded, built or serialised.
    #[error("{}: {message}", path.display())]
    Tokenizer {
        /// The file (or a description such as `<tokenizer.json string>`).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A malformed line in a word-vector file.
    #[error("{}: line {line}: {message}", path.display())]
    Vectors {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What went wrong.
        message: String,
    },
}

impl TextError {
    /// An [`TextError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TextError::Io {
            path: path.into(),
            source,
        }
    }
}
