//! CSV manifest loading: columns `path,label[,split]`, plus any other columns, which are kept per
//! image as attributes (e.g. `sex`, `age_band`, `site`) for subgroup evaluation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::dataset::{Item, ItemSource, Loaded, OnBadFile};
use crate::error::DataError;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Split {
    Train,
    Val,
    Test,
}

struct Row {
    path: PathBuf,
    label: String,
    split: Split,
    attributes: Vec<(String, String)>,
    row: usize,
    line: u64,
}

/// Order class names: numerically when every name is an integer (so "10" follows "9"),
/// otherwise as sorted strings.
fn sort_classes(names: BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().collect();
    if v.iter().all(|s| s.parse::<i64>().is_ok()) {
        v.sort_by_key(|s| s.parse::<i64>().unwrap_or(0));
    }
    v
}

pub(crate) fn load(
    path: &Path,
    policy: OnBadFile,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<Loaded, DataError> {
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| csv_io(path, e))?;
    let header_err = |reason: String| DataError::ManifestHeader {
        path: path.to_path_buf(),
        reason,
    };
    let headers = rdr
        .headers()
        .map_err(|e| header_err(e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let found_cols = || headers.iter().collect::<Vec<_>>().join(",");
    let path_col = col("path").ok_or_else(|| {
        header_err(format!(
            "no 'path' column (found: {}); expected columns path,label[,split]",
            found_cols()
        ))
    })?;
    let label_col = col("label").ok_or_else(|| {
        header_err(format!(
            "no 'label' column (found: {}); expected columns path,label[,split]",
            found_cols()
        ))
    })?;
    let split_col = col("split");
    let extra_cols: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != path_col && *i != label_col && Some(*i) != split_col)
        .map(|(i, h)| (i, h.trim_start_matches('\u{feff}').to_string()))
        .filter(|(_, h)| !h.is_empty())
        .collect();

    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            DataError::ManifestRow {
                path: path.to_path_buf(),
                row,
                line,
                reason: e.to_string(),
            }
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let row_err = |reason: String| DataError::ManifestRow {
            path: path.to_path_buf(),
            row,
            line,
            reason,
        };
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let field = |c: usize, name: &str| -> Result<String, DataError> {
            match rec.get(c) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(row_err(format!("empty or missing '{name}' field"))),
            }
        };
        let rel = field(path_col, "path")?;
        let label = field(label_col, "label")?;
        let split = match split_col.and_then(|c| rec.get(c)).unwrap_or("") {
            "" => Split::Train,
            s => match s.to_ascii_lowercase().as_str() {
                "train" | "training" => Split::Train,
                "val" | "valid" | "validation" => Split::Val,
                "test" => Split::Test,
                _ => {
                    return Err(row_err(format!(
                        "unknown split '{s}'; expected train, val/validation or test"
                    )));
                }
            },
        };
        let rel = PathBuf::from(rel);
        let file = if rel.is_absolute() {
            rel
        } else {
            base.join(rel)
        };
        let attributes = extra_cols
            .iter()
            .map(|(c, name)| (name.clone(), rec.get(*c).unwrap_or("").to_string()))
            .collect();
        rows.push(Row {
            path: file,
            label,
            split,
            attributes,
            row,
            line,
        });
    }
    if rows.is_empty() {
        return Err(DataError::EmptySplit {
            path: path.to_path_buf(),
            split: "train".to_string(),
            reason: " (the manifest has no rows)".to_string(),
        });
    }

    // Existence is checked here so that the error can name the row.
    if policy == OnBadFile::Error {
        for r in &rows {
            match std::fs::metadata(&r.path) {
                Ok(m) if m.is_file() => {}
                Ok(_) => {
                    return Err(DataError::ManifestRow {
                        path: path.to_path_buf(),
                        row: r.row,
                        line: r.line,
                        reason: format!("{} is not a regular file", r.path.display()),
                    });
                }
                Err(e) => {
                    return Err(DataError::ManifestRow {
                        path: path.to_path_buf(),
                        row: r.row,
                        line: r.line,
                        reason: format!("cannot read image file {}: {e}", r.path.display()),
                    });
                }
            }
        }
    } else {
        rows.retain(|r| {
            let ok = r.path.is_file();
            if !ok {
                skipped.push((
                    r.path.clone(),
                    format!(
                        "file not found (listed in {} row {})",
                        path.display(),
                        r.row
                    ),
                ));
            }
            ok
        });
    }

    let classes = sort_classes(rows.iter().map(|r| r.label.clone()).collect());
    let has = |s: Split| rows.iter().any(|r| r.split == s);
    let (has_val, has_test) = (has(Split::Val), has(Split::Test));
    let items = |s: Split| -> Vec<Item> {
        rows.iter()
            .filter(|r| r.split == s)
            .map(|r| Item {
                source: ItemSource::File(r.path.clone()),
                label: classes.iter().position(|c| *c == r.label).unwrap_or(0),
                attributes: r.attributes.clone(),
            })
            .collect()
    };
    Ok(Loaded {
        train: items(Split::Train),
        val: has_val.then(|| items(Split::Val)),
        test: has_test.then(|| items(Split::Test)),
        classes,
        source: "csv",
    })
}

fn csv_io(path: &Path, e: csv::Error) -> DataError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DataError::io(path, io),
        other => DataError::ManifestHeader {
            path: path.to_path_buf(),
            reason: format!("{other:?}"),
        },
    }
}
