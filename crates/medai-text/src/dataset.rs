//! Text classification tables: a CSV or TSV file with a text column, an optional label column
//! (one label per row, or several separated by a character for multi-label tasks) and an
//! optional split column.
//!
//! Fields are read as bytes and checked for UTF-8 one by one, so an encoding problem is reported
//! with its line and column. Line numbers are physical lines of the file (the header is line 1),
//! counted from byte offsets, so they stay right with CRLF line ends and quoted newlines.

use crate::TextError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to read from the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// The column holding the text.
    pub text_column: String,
    /// The column holding the label(s); `None` when only predicting.
    pub label_column: Option<String>,
    /// The column naming each row's split (see [`SplitName::parse`]); `None` if absent.
    pub split_column: Option<String>,
    /// `Some(';')` for multi-label cells such as `C04;C14`; `None`: one label per cell.
    pub label_separator: Option<char>,
    /// Field delimiter; `None`: tab for `.tsv`/`.tab` files, comma otherwise.
    pub delimiter: Option<u8>,
}

impl Default for ReadOptions {
    /// Columns `text` and `label`, no split column, single-label, delimiter from the extension.
    fn default() -> Self {
        ReadOptions {
            text_column: "text".into(),
            label_column: Some("label".into()),
            split_column: None,
            label_separator: None,
            delimiter: None,
        }
    }
}

/// The split a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// Training rows.
    Train,
    /// Validation rows.
    Val,
    /// Test rows.
    Test,
}

impl SplitName {
    /// Parse a split cell, ignoring case and surrounding whitespace: `train`/`training`,
    /// `val`/`valid`/`validation`/`dev`, `test`/`testing`. Anything else is `None`.
    pub fn parse(value: &str) -> Option<SplitName> {
        match value.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(SplitName::Train),
            "val" | "valid" | "validation" | "dev" => Some(SplitName::Val),
            "test" | "testing" => Some(SplitName::Test),
            _ => None,
        }
    }

    /// The canonical name: `train`, `val` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        }
    }
}

impl std::fmt::Display for SplitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextRecord {
    /// 1-based physical line where the record starts (the header is line 1).
    pub line: u64,
    /// The text, as written in the file.
    pub text: String,
    /// The row's labels, trimmed, in file order without duplicates; empty when there is no
    /// label column.
    pub labels: Vec<String>,
    /// The row's split, when there is a split column.
    pub split: Option<SplitName>,
}

/// A text table read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextDataset {
    /// The file read.
    pub path: PathBuf,
    /// Its rows, in file order.
    pub records: Vec<TextRecord>,
}

impl TextDataset {
    /// Read `path` as described by `opts`.
    ///
    /// Errors (each naming the file and the line, and the column where there is one): a missing
    /// column (listing those present), a row with the wrong number of fields, non-UTF-8 bytes,
    /// an empty or whitespace-only text, a label cell without a label, an unknown split value,
    /// and a file without header or rows.
    pub fn read(path: &Path, opts: &ReadOptions) -> Result<Self, TextError> {
        let bytes = std::fs::read(path).map_err(|e| TextError::io(path, e))?;
        let delimiter = opts.delimiter.unwrap_or_else(|| default_delimiter(path));
        let records = parse(&bytes, path, delimiter, opts)?;
        Ok(TextDataset {
            path: path.to_path_buf(),
            records,
        })
    }

    /// The records of one split, in file order (none when the file has no split column).
    pub fn split(&self, s: SplitName) -> Vec<&TextRecord> {
        self.records.iter().filter(|r| r.split == Some(s)).collect()
    }
}

/// Tab for `.tsv` and `.tab` files, comma otherwise.
fn default_delimiter(path: &Path) -> u8 {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("tsv") || e.eq_ignore_ascii_case("tab") => b'\t',
        _ => b',',
    }
}

/// Turns the byte offsets the CSV reader reports into 1-based physical line numbers.
struct LineCounter<'a> {
    bytes: &'a [u8],
    counted_to: usize,
    newlines: u64,
}

impl LineCounter<'_> {
    /// The line on which the record at byte `offset` starts.
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        // A record may be reported at the line break before it (CRLF files, blank lines).
        while at < self.bytes.len() && matches!(self.bytes[at], b'\n' | b'\r') {
            at += 1;
        }
        if at > self.counted_to {
            self.newlines += self.bytes[self.counted_to..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.counted_to = at;
        }
        self.newlines + 1
    }
}

fn parse(
    bytes: &[u8],
    path: &Path,
    delimiter: u8,
    opts: &ReadOptions,
) -> Result<Vec<TextRecord>, TextError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let raw_header = rdr
        .byte_headers()
        .map_err(|e| TextError::Csv {
            path: path.into(),
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let mut header = Vec::with_capacity(raw_header.len());
    for (i, field) in raw_header.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|e| TextError::NotUtf8 {
            path: path.into(),
            line: 1,
            column: "<header>".into(),
            field: i + 1,
            offset: e.valid_up_to(),
        })?;
        let name = if i == 0 {
            name.trim_start_matches('\u{feff}')
        } else {
            name
        };
        header.push(name.trim().to_string());
    }
    if header.iter().all(|h| h.is_empty()) {
        return Err(TextError::Empty {
            path: path.into(),
            what: "no header row".into(),
        });
    }
    let column = |name: &str| -> Result<usize, TextError> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| TextError::MissingColumn {
                path: path.into(),
                column: name.into(),
                available: header.join(", "),
            })
    };
    let text_col = column(&opts.text_column)?;
    let label_col = opts.label_column.as_deref().map(column).transpose()?;
    let split_col = opts.split_column.as_deref().map(column).transpose()?;

    let mut lines = LineCounter {
        bytes,
        counted_to: 0,
        newlines: 0,
    };
    let mut records = Vec::new();
    for (k, rec) in rdr.byte_records().enumerate() {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                let (line, message) = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        pos,
                        expected_len,
                        len,
                    } => (
                        pos.as_ref().map(|p| lines.line_at(p.byte())),
                        format!("expected {expected_len} fields (as in the header), found {len}"),
                    ),
                    _ => (e.position().map(|p| lines.line_at(p.byte())), e.to_string()),
                };
                return Err(TextError::Csv {
                    path: path.into(),
                    line: line.unwrap_or(k as u64 + 2),
                    message,
                });
            }
        };
        let line = rec
            .position()
            .map(|p| lines.line_at(p.byte()))
            .unwrap_or(k as u64 + 2);
        let field = |col: usize| -> Result<&str, TextError> {
            let raw = rec.get(col).unwrap_or(b"");
            std::str::from_utf8(raw).map_err(|e| TextError::NotUtf8 {
                path: path.into(),
                line,
                column: header[col].clone(),
                field: col + 1,
                offset: e.valid_up_to(),
            })
        };
        // Check every field, not only the ones used: a broken encoding is worth knowing about.
        for col in 0..rec.len() {
            field(col)?;
        }
        let text = field(text_col)?;
        if text.trim().is_empty() {
            return Err(TextError::EmptyText {
                path: path.into(),
                line,
                column: header[text_col].clone(),
            });
        }
        let labels = match label_col {
            None => Vec::new(),
            Some(col) => {
                let labels = split_labels(field(col)?, opts.label_separator);
                if labels.is_empty() {
                    return Err(TextError::EmptyLabel {
                        path: path.into(),
                        line,
                        column: header[col].clone(),
                    });
                }
                labels
            }
        };
        let split = match split_col {
            None => None,
            Some(col) => {
                let value = field(col)?;
                Some(SplitName::parse(value).ok_or_else(|| TextError::BadSplit {
                    path: path.into(),
                    line,
                    column: header[col].clone(),
                    value: value.into(),
                })?)
            }
        };
        records.push(TextRecord {
            line,
            text: text.to_string(),
            labels,
            split,
        });
    }
    if records.is_empty() {
        return Err(TextError::Empty {
            path: path.into(),
            what: "no data rows after the header".into(),
        });
    }
    Ok(records)
}

/// The trimmed, non-empty, de-duplicated labels of a cell.
fn split_labels(cell: &str, separator: Option<char>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let parts: Vec<&str> = match separator {
        Some(sep) => cell.split(sep).collect(),
        None => vec![cell],
    };
    for part in parts {
        let part = part.trim();
        if !part.is_empty() && !out.iter().any(|l| l == part) {
            out.push(part.to_string());
        }
    }
    out
}

/// The label names of a task: sorted, unique. Build it from the training split and save it with
/// the model, so label indices mean the same at prediction time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSet {
    /// Sorted unique label names; a label's index is its position here.
    pub names: Vec<String>,
}

impl LabelSet {
    /// All labels of `recs`, sorted and de-duplicated.
    pub fn from_records<'a>(recs: impl IntoIterator<Item = &'a TextRecord>) -> Self {
        let mut names: Vec<String> = recs
            .into_iter()
            .flat_map(|r| r.labels.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        LabelSet { names }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there is no label.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of a label, if known.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok()
    }

    /// The indices of a record's labels (in the record's order). `path` is the record's file,
    /// named in the error for a label this set does not contain.
    pub fn encode(&self, rec: &TextRecord, path: &Path) -> Result<Vec<usize>, TextError> {
        rec.labels
            .iter()
            .map(|l| {
                self.index(l).ok_or_else(|| TextError::UnknownLabel {
                    path: path.into(),
                    line: rec.line,
                    label: l.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        assert_eq!(SplitName::parse(" Training "), Some(SplitName::Train));
        assert_eq!(SplitName::parse("DEV"), Some(SplitName::Val));
        assert_eq!(SplitName::parse("valid"), Some(SplitName::Val));
        assert_eq!(SplitName::parse("Testing"), Some(SplitName::Test));
        assert_eq!(SplitName::parse("holdout"), None);
        assert_eq!(SplitName::parse(""), None);
        assert_eq!(SplitName::Val.to_string(), "val");
    }

    #[test]
    fn label_cells() {
        assert_eq!(split_labels(" C04 ; C14;;C04 ", Some(';')), ["C04", "C14"]);
        assert_eq!(split_labels("a;b", None), ["a;b"]);
        assert!(split_labels(" ; ", Some(';')).is_empty());
    }

    #[test]
    fn label_set_sorted_and_indexed() {
        let rec = |labels: &[&str]| TextRecord {
            line: 2,
            text: "x".into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            split: None,
        };
        let recs = [rec(&["b", "a"]), rec(&["c"]), rec(&["a"])];
        let set = LabelSet::from_records(&recs);
        assert_eq!(set.names, ["a", "b", "c"]);
        assert_eq!(set.index("c"), Some(2));
        assert_eq!(set.index("d"), None);
        assert_eq!(set.encode(&recs[0], Path::new("f")).unwrap(), [1, 0]);
    }
}
