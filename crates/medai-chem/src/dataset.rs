//! Molecule tables: a CSV with a SMILES column, target columns (blank cells are missing labels,
//! masked in training) and optional molecule-level feature columns. Rows whose SMILES RDKit
//! would reject, or whose numbers do not parse, are errors naming the line, or are skipped and
//! listed in [`MolDataset::invalid`].

use crate::{ChemError, Mol, MolGraph};
use serde::Serialize;
use std::path::Path;

/// What to read from the CSV.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The SMILES column.
    pub smiles_column: String,
    /// Target columns (none when only predicting).
    pub target_columns: Vec<String>,
    /// Extra molecule-level feature columns.
    pub feature_columns: Vec<String>,
    /// Skip invalid rows (and list them) instead of failing on the first.
    pub skip_invalid: bool,
}

/// A row that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InvalidRow {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    /// The SMILES as written.
    pub smiles: String,
    /// Why it was rejected.
    pub reason: String,
}

/// A parsed molecule table.
#[derive(Clone, Debug)]
pub struct MolDataset {
    /// SMILES of each kept row.
    pub smiles: Vec<String>,
    /// Sanitised molecules.
    pub mols: Vec<Mol>,
    /// Featurised graphs.
    pub graphs: Vec<MolGraph>,
    /// Targets per row and task (`None`: missing label).
    pub targets: Vec<Vec<Option<f64>>>,
    /// Extra features per row.
    pub features: Vec<Vec<f64>>,
    /// Line number of each kept row.
    pub lines: Vec<usize>,
    /// Target column names.
    pub task_names: Vec<String>,
    /// Feature column names.
    pub feature_names: Vec<String>,
    /// Rows skipped as invalid.
    pub invalid: Vec<InvalidRow>,
}

impl MolDataset {
    /// Number of kept rows.
    pub fn len(&self) -> usize {
        self.smiles.len()
    }

    /// True when no row was kept.
    pub fn is_empty(&self) -> bool {
        self.smiles.is_empty()
    }

    /// Read `path` (comma-separated, or tab-separated for `.tsv`).
    pub fn read_csv(path: &Path, opts: &ReadOptions) -> Result<MolDataset, ChemError> {
        let bytes = std::fs::read(path).map_err(|e| ChemError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string(), opts)
    }

    /// Parse CSV bytes; `name` is used in errors.
    pub fn from_bytes(
        bytes: &[u8],
        name: &str,
        opts: &ReadOptions,
    ) -> Result<MolDataset, ChemError> {
        let delim = if name.ends_with(".tsv") { b'\t' } else { b',' };
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(false)
            .from_reader(bytes);
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| ChemError::Csv {
                path: name.into(),
                line: 1,
                message: e.to_string(),
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(ChemError::Empty(name.into()));
        }
        let col = |c: &str| -> Result<usize, ChemError> {
            header
                .iter()
                .position(|h| h == c)
                .ok_or_else(|| ChemError::MissingColumn {
                    path: name.into(),
                    column: c.into(),
                    available: header.join(", "),
                })
        };
        let smiles_col = col(&opts.smiles_column)?;
        let target_cols: Vec<usize> = opts
            .target_columns
            .iter()
            .map(|c| col(c))
            .collect::<Result<_, _>>()?;
        let feature_cols: Vec<usize> = opts
            .feature_columns
            .iter()
            .map(|c| col(c))
            .collect::<Result<_, _>>()?;
        let mut ds = MolDataset {
            smiles: Vec::new(),
            mols: Vec::new(),
            graphs: Vec::new(),
            targets: Vec::new(),
            features: Vec::new(),
            lines: Vec::new(),
            task_names: opts.target_columns.clone(),
            feature_names: opts.feature_columns.clone(),
            invalid: Vec::new(),
        };
        // Line numbers from byte offsets (robust to CRLF and quoted newlines).
        let (mut counted_to, mut newlines) = (0usize, 0usize);
        for (k, rec) in rdr.records().enumerate() {
            let line = match rec.as_ref().ok().and_then(|r| r.position()) {
                Some(p) => {
                    let mut at = (p.byte() as usize).min(bytes.len());
                    // A record may be reported at the line break before it (CRLF files).
                    while at < bytes.len() && (bytes[at] == b'\n' || bytes[at] == b'\r') {
                        at += 1;
                    }
                    if at > counted_to {
                        newlines += bytes[counted_to..at]
                            .iter()
                            .filter(|&&b| b == b'\n')
                            .count();
                        counted_to = at;
                    }
                    newlines + 1
                }
                None => k + 2,
            };
            let rec = rec.map_err(|e| ChemError::Csv {
                path: name.into(),
                line,
                message: e.to_string(),
            })?;
            let smiles = rec.get(smiles_col).unwrap_or("").trim().to_string();
            let parsed = parse_row(&rec, &smiles, &target_cols, &feature_cols, &header);
            match parsed {
                Ok((mol, targets, features)) => {
                    ds.graphs.push(MolGraph::new(&mol));
                    ds.mols.push(mol);
                    ds.smiles.push(smiles);
                    ds.targets.push(targets);
                    ds.features.push(features);
                    ds.lines.push(line);
                }
                Err(reason) => {
                    if !opts.skip_invalid {
                        return Err(ChemError::InvalidRow {
                            path: name.into(),
                            line,
                            smiles,
                            reason,
                        });
                    }
                    ds.invalid.push(InvalidRow {
                        line,
                        smiles,
                        reason,
                    });
                }
            }
        }
        if ds.smiles.is_empty() && ds.invalid.is_empty() {
            return Err(ChemError::Empty(name.into()));
        }
        if ds.smiles.is_empty() {
            return Err(ChemError::NoValidRows {
                path: name.into(),
                invalid: ds.invalid.len(),
            });
        }
        Ok(ds)
    }

    /// Targets of one task as `(row, value)` pairs, missing labels left out.
    pub fn task_values(&self, task: usize, rows: &[usize]) -> Vec<(usize, f64)> {
        rows.iter()
            .filter_map(|&r| self.targets[r][task].map(|v| (r, v)))
            .collect()
    }
}

type RowValues = (Mol, Vec<Option<f64>>, Vec<f64>);

fn parse_row(
    rec: &csv::StringRecord,
    smiles: &str,
    target_cols: &[usize],
    feature_cols: &[usize],
    header: &[String],
) -> Result<RowValues, String> {
    let mol = Mol::from_smiles(smiles).map_err(|e| format!("invalid SMILES {smiles:?}: {e}"))?;
    let mut targets = Vec::with_capacity(target_cols.len());
    for &c in target_cols {
        let cell = rec.get(c).unwrap_or("").trim();
        if cell.is_empty() {
            targets.push(None);
        } else {
            let v: f64 = cell
                .parse()
                .map_err(|_| format!("column {:?}: {cell:?} is not a number", header[c]))?;
            if !v.is_finite() {
                return Err(format!("column {:?}: {cell:?} is not finite", header[c]));
            }
            targets.push(Some(v));
        }
    }
    let mut features = Vec::with_capacity(feature_cols.len());
    for &c in feature_cols {
        let cell = rec.get(c).unwrap_or("").trim();
        let v: f64 = cell
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                format!(
                    "feature column {:?}: {cell:?} is not a finite number",
                    header[c]
                )
            })?;
        features.push(v);
    }
    Ok((mol, targets, features))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(skip: bool) -> ReadOptions {
        ReadOptions {
            smiles_column: "smiles".into(),
            target_columns: vec!["y".into(), "z".into()],
            feature_columns: vec![],
            skip_invalid: skip,
        }
    }

    #[test]
    fn blank_cells_are_missing_labels() {
        let ds =
            MolDataset::from_bytes(b"smiles,y,z\nCCO,1,\nc1ccccc1,,0\n", "t.csv", &opts(false))
                .unwrap();
        assert_eq!(
            ds.targets,
            vec![vec![Some(1.0), None], vec![None, Some(0.0)]]
        );
        assert_eq!(ds.lines, vec![2, 3]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = MolDataset::from_bytes(b"smiles,y,z\nCCO,1,0\nC1CC,1,0\n", "t.csv", &opts(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv: line 3") && e.contains("C1CC"), "{e}");
        let e = MolDataset::from_bytes(b"smiles,y,z\nCCO,high,0\n", "t.csv", &opts(false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("\"y\"") && e.contains("high"),
            "{e}"
        );
        let e = MolDataset::from_bytes(b"smiles,y\nCCO,1\n", "t.csv", &opts(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column \"z\""), "{e}");
        let e = MolDataset::from_bytes(b"", "t.csv", &opts(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let e = MolDataset::from_bytes(b"smiles,y,z\n", "t.csv", &opts(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn line_numbers_survive_crlf_and_quoted_newlines() {
        let ds = MolDataset::from_bytes(
            b"name,smiles,y,z\r\n\"two\nlines\",CCO,1,0\r\nb,CCN,2,1\r\n",
            "t.csv",
            &opts(false),
        )
        .unwrap();
        assert_eq!(ds.lines, vec![2, 4]);
    }

    #[test]
    fn invalid_rows_can_be_skipped_with_a_report() {
        let ds = MolDataset::from_bytes(
            b"smiles,y,z\nCCO,1,0\nC1CC,1,0\nCN(C)(C)(C)C,0,1\n",
            "t.csv",
            &opts(true),
        )
        .unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds.invalid.len(), 2);
        assert_eq!(ds.invalid[0].line, 3);
        assert!(
            ds.invalid[1].reason.contains("valence"),
            "{:?}",
            ds.invalid[1]
        );
    }
}
