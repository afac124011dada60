//! # medai-bundle
//!
//! A model bundle is everything needed to use a trained model again, in one directory:
//!
//! | file | content |
//! |---|---|
//! | `manifest.json` | [`Manifest`]: task, classes, architecture, input and preprocessing spec, training config, dataset fingerprint, metrics, medai version, creation time |
//! | `weights.safetensors` | the model weights (opaque bytes to this crate) |
//! | `model_card.md` | a human-readable model card ([`render_model_card`]) |
//! | any extra files | e.g. a text model's `tokenizer.json` or `vocab.json` ([`Bundle::files`]) |
//! | `checksums.sha256` | `sha256sum`-compatible SHA-256 of every other file |
//!
//! [`Bundle::write`] writes the directory atomically (a temporary sibling directory renamed into
//! place), so a crash never leaves a half-written bundle under the target name.
//! [`Bundle::read`] verifies every checksum and refuses a tampered, truncated or incomplete bundle.
//! `sha256sum -c checksums.sha256` inside the bundle verifies it with standard tools too.
//!
//! This crate knows nothing about the deep-learning engine: architecture, preprocessing and
//! training settings are kept as JSON values that the model crate defines.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The bundle format identifier written in every manifest.
pub const FORMAT: &str = "medai-bundle";
/// The bundle format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const WEIGHTS: &str = "weights.safetensors";
const CARD: &str = "model_card.md";
const CHECKSUMS: &str = "checksums.sha256";

/// Errors reading or writing a bundle. Every message names the bundle path.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// An I/O failure on a file of the bundle.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path is not a medai bundle at all.
    #[error("{path}: not a medai bundle ({reason})")]
    NotABundle {
        /// The path given as a bundle.
        path: PathBuf,
        /// What was missing or wrong.
        reason: String,
    },
    /// A part of the bundle does not match its recorded SHA-256.
    #[error(
        "{path}: checksum mismatch for {file}: expected {expected}, found {found} (the bundle was modified or truncated)"
    )]
    Checksum {
        /// The bundle directory.
        path: PathBuf,
        /// The file whose digest differs.
        file: String,
        /// The recorded digest.
        expected: String,
        /// The digest of the file as found.
        found: String,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("{path}: invalid manifest.json: {reason}")]
    Manifest {
        /// The bundle directory.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The dataset a model was trained on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DatasetInfo {
    /// Kind of source: `npz`, `image-folder`, `csv`, ...
    pub source: String,
    /// Path the dataset was read from, as given.
    pub path: String,
    /// SHA-256 fingerprint of classes, labels and item identities.
    pub fingerprint: String,
    /// Number of samples per split (`train`, `val`, `test`).
    pub counts: serde_json::Map<String, serde_json::Value>,
}

/// The bundle manifest: what the model is, how its inputs must be prepared, how it was made.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for bundles this crate writes.
    pub format_version: u32,
    /// The model's name (used by `medai serve`).
    pub name: String,
    /// Task kind, e.g. `image-classification`.
    pub task: String,
    /// Label mode: `binary`, `categorical` or `ordinal`.
    pub label_mode: String,
    /// Class names, index = class id.
    pub classes: Vec<String>,
    /// Architecture description (defined by the model crate).
    pub architecture: serde_json::Value,
    /// Input preprocessing (defined by the data crate): applying it at prediction reproduces training.
    pub preprocessing: serde_json::Value,
    /// Training configuration and summary.
    pub training: serde_json::Value,
    /// The dataset the model was trained on.
    pub dataset: DatasetInfo,
    /// Evaluation metrics (validation and, when available, test).
    pub metrics: serde_json::Value,
    /// Probability calibration applied at prediction, e.g.
    /// `{"method": "temperature", "temperature": 1.31, "fitted_on": "val", ...}`; `null` when the
    /// model's probabilities are used as they are (bundles written before calibration existed).
    #[serde(default)]
    pub calibration: serde_json::Value,
    /// medai version that wrote the bundle.
    pub medai_version: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
}

impl Manifest {
    /// A manifest with format fields, version and creation time filled in.
    pub fn new(name: &str, task: &str, label_mode: &str, classes: Vec<String>) -> Self {
        Manifest {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            task: task.to_string(),
            label_mode: label_mode.to_string(),
            classes,
            architecture: serde_json::Value::Null,
            preprocessing: serde_json::Value::Null,
            training: serde_json::Value::Null,
            dataset: DatasetInfo::default(),
            metrics: serde_json::Value::Null,
            calibration: serde_json::Value::Null,
            medai_version: env!("CARGO_PKG_VERSION").to_string(),
            created: now_rfc3339(),
        }
    }
}

/// Current UTC time as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_string())
}

/// A complete bundle in memory.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The manifest.
    pub manifest: Manifest,
    /// The weights, as safetensors bytes.
    pub weights: Vec<u8>,
    /// The model card (Markdown). Empty: rendered from the manifest on write.
    pub model_card: String,
    /// Extra files the model needs (a tokenizer, a vocabulary), by plain file name; checksummed
    /// like the rest. Names must be plain (`[A-Za-z0-9._-]`, not starting with `.`) and must not
    /// be one of the bundle's own files.
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

/// Whether `name` may be an extra file of a bundle.
fn valid_extra_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && ![MANIFEST, WEIGHTS, CARD, CHECKSUMS]
            .iter()
            .any(|own| own.eq_ignore_ascii_case(name))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(())
}

impl Bundle {
    /// Write the bundle directory at `path` atomically, replacing an existing bundle there.
    ///
    /// Refuses to replace something at `path` that is not a medai bundle.
    pub fn write(&self, path: &Path) -> Result<(), BundleError> {
        if path.exists() && !path.join(MANIFEST).is_file() {
            return Err(BundleError::NotABundle {
                path: path.to_path_buf(),
                reason: "the path exists and is not a bundle; refusing to overwrite it".into(),
            });
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let file_name = path
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "bundle".into());
        let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let result = self.write_parts(&tmp).and_then(|_| {
            let old = parent.join(format!(".{file_name}.old-{}", std::process::id()));
            if path.exists() {
                fs::rename(path, &old).map_err(io_err(path))?;
            }
            fs::rename(&tmp, path).map_err(io_err(path))?;
            if old.exists() {
                fs::remove_dir_all(&old).map_err(io_err(&old))?;
            }
            Ok(())
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn write_parts(&self, dir: &Path) -> Result<(), BundleError> {
        let manifest =
            serde_json::to_vec_pretty(&self.manifest).map_err(|e| BundleError::Manifest {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
        let card = if self.model_card.is_empty() {
            render_model_card(&self.manifest)
        } else {
            self.model_card.clone()
        };
        let mut parts: Vec<(&str, &[u8])> = vec![
            (MANIFEST, &manifest),
            (WEIGHTS, &self.weights),
            (CARD, card.as_bytes()),
        ];
        for (name, bytes) in &self.files {
            if !valid_extra_name(name) {
                return Err(BundleError::NotABundle {
                    path: dir.to_path_buf(),
                    reason: format!("{name:?} is not a valid name for an extra bundle file"),
                });
            }
            parts.push((name, bytes));
        }
        let mut sums = String::new();
        for (name, bytes) in parts {
            write_synced(&dir.join(name), bytes)?;
            sums.push_str(&format!("{}  {}\n", sha256_hex(bytes), name));
        }
        write_synced(&dir.join(CHECKSUMS), sums.as_bytes())
    }

    /// Read and verify a bundle directory.
    pub fn read(path: &Path) -> Result<Bundle, BundleError> {
        if !path.is_dir() {
            let reason = if path.exists() {
                "expected a bundle directory (made by `medai train --out`), found a file"
            } else {
                "no such file or directory"
            };
            return Err(BundleError::NotABundle {
                path: path.to_path_buf(),
                reason: reason.into(),
            });
        }
        let sums_path = path.join(CHECKSUMS);
        let sums = fs::read_to_string(&sums_path).map_err(|_| BundleError::NotABundle {
            path: path.to_path_buf(),
            reason: format!("missing {CHECKSUMS}"),
        })?;
        let mut recorded = std::collections::HashMap::new();
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (digest, name) = line
                .split_once("  ")
                .ok_or_else(|| BundleError::NotABundle {
                    path: path.to_path_buf(),
                    reason: format!("malformed line in {CHECKSUMS}: {line:?}"),
                })?;
            recorded.insert(name.to_string(), digest.to_string());
        }
        let extra: Vec<String> = recorded
            .keys()
            .filter(|n| ![MANIFEST, WEIGHTS, CARD, CHECKSUMS].contains(&n.as_str()))
            .cloned()
            .collect();
        let mut read_part = |name: &str| -> Result<Vec<u8>, BundleError> {
            let expected = recorded
                .remove(name)
                .ok_or_else(|| BundleError::NotABundle {
                    path: path.to_path_buf(),
                    reason: format!("{CHECKSUMS} does not list {name}"),
                })?;
            let file = path.join(name);
            let bytes = fs::read(&file).map_err(|_| BundleError::NotABundle {
                path: path.to_path_buf(),
                reason: format!("missing {name}"),
            })?;
            let found = sha256_hex(&bytes);
            if found != expected {
                return Err(BundleError::Checksum {
                    path: path.to_path_buf(),
                    file: name.to_string(),
                    expected,
                    found,
                });
            }
            Ok(bytes)
        };
        let manifest_bytes = read_part(MANIFEST)?;
        let weights = read_part(WEIGHTS)?;
        let card = read_part(CARD)?;
        let mut files = std::collections::BTreeMap::new();
        for name in extra {
            if !valid_extra_name(&name) {
                return Err(BundleError::NotABundle {
                    path: path.to_path_buf(),
                    reason: format!("{CHECKSUMS} lists an invalid file name {name:?}"),
                });
            }
            let bytes = read_part(&name)?;
            files.insert(name, bytes);
        }
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| BundleError::Manifest {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(BundleError::Manifest {
                path: path.to_path_buf(),
                reason: format!(
                    "format {:?} version {} is not {FORMAT} version {FORMAT_VERSION}",
                    manifest.format, manifest.format_version
                ),
            });
        }
        Ok(Bundle {
            manifest,
            weights,
            model_card: String::from_utf8_lossy(&card).into_owned(),
            files,
        })
    }
}

fn fmt_metric(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.4}"),
        None => v.to_string(),
    }
}

/// Render a Markdown model card from a manifest (Mitchell et al., "Model Cards for Model Reporting").
pub fn render_model_card(m: &Manifest) -> String {
    let mut s = String::new();
    s.push_str(&format!("# Model card: {}\n\n", m.name));
    s.push_str("## Model details\n\n");
    s.push_str(&format!(
        "- Task: {} ({})\n- Classes: {}\n- Architecture: `{}`\n- Made by medai {} on {}\n\n",
        m.task,
        m.label_mode,
        m.classes.join(", "),
        m.architecture,
        m.medai_version,
        m.created
    ));
    s.push_str("## Intended use\n\n");
    s.push_str(
        "Decision support for trained clinicians only, on data like the training data below. \
         Not a diagnostic device; not validated for clinical use. Every output must be reviewed \
         by a qualified professional.\n\n",
    );
    s.push_str("## Training data\n\n");
    s.push_str(&format!(
        "- Source: {} (`{}`)\n- Samples per split: {}\n- Fingerprint (SHA-256): `{}`\n\n",
        m.dataset.source,
        m.dataset.path,
        serde_json::Value::Object(m.dataset.counts.clone()),
        m.dataset.fingerprint
    ));
    s.push_str("## Preprocessing\n\n");
    s.push_str(&format!("`{}`\n\n", m.preprocessing));
    s.push_str("## Evaluation\n\n");
    match m.metrics.as_object() {
        Some(splits) if !splits.is_empty() => {
            for (split, vals) in splits {
                s.push_str(&format!("### {split}\n\n| metric | value |\n|---|---|\n"));
                if let Some(obj) = vals.as_object() {
                    for (k, v) in obj {
                        if v.is_number() {
                            s.push_str(&format!("| {k} | {} |\n", fmt_metric(v)));
                        }
                    }
                }
                s.push('\n');
            }
        }
        _ => s.push_str("No evaluation recorded.\n\n"),
    }
    s.push_str("## Limitations and ethical considerations\n\n");
    s.push_str(
        "- Performance may drop on other scanners, hospitals, populations or image sizes than the \
         training data; validate locally before use.\n\
         - Threshold-dependent figures (sensitivity, specificity) hold only at the recorded threshold.\n\
         - Class balance of the training data is shown above; minority-class performance may be lower.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        let mut m = Manifest::new(
            "pneumonia",
            "image-classification",
            "binary",
            vec!["normal".into(), "pneumonia".into()],
        );
        m.metrics = serde_json::json!({"test": {"auc": 0.96, "accuracy": 0.9}});
        Bundle {
            manifest: m,
            weights: vec![1, 2, 3, 4, 5],
            model_card: String::new(),
            files: Default::default(),
        }
    }

    #[test]
    fn roundtrip_and_checksums_match_sha256sum_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.medai");
        let original = sample();
        original.write(&p).unwrap();
        let b = Bundle::read(&p).unwrap();
        assert_eq!(b.weights, vec![1, 2, 3, 4, 5]);
        assert_eq!(b.manifest, original.manifest);
        assert!(b.model_card.contains("| auc | 0.9600 |"));
        let sums = fs::read_to_string(p.join(CHECKSUMS)).unwrap();
        // sha256 of bytes 1..=5, computed independently with `printf '\x01\x02\x03\x04\x05' | sha256sum`
        assert!(sums.contains(
            "74f81fe167d99b4cb41d6d0ccda82278caee9f3e2f25d5e5a3936ff3dcec60d0  weights.safetensors"
        ));
        // nothing temporary left behind
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn tampered_truncated_or_missing_parts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.medai");
        sample().write(&p).unwrap();
        fs::write(p.join(WEIGHTS), [1, 2, 3]).unwrap();
        let e = Bundle::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("checksum mismatch for weights.safetensors"),
            "{e}"
        );
        sample().write(&p).unwrap();
        fs::remove_file(p.join(CARD)).unwrap();
        let e = Bundle::read(&p).unwrap_err().to_string();
        assert!(e.contains("missing model_card.md"), "{e}");
    }

    #[test]
    fn non_bundles_are_refused_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("image.png");
        fs::write(&f, b"not a bundle").unwrap();
        let e = Bundle::read(&f).unwrap_err().to_string();
        assert!(
            e.contains("image.png") && e.contains("not a medai bundle"),
            "{e}"
        );
        assert!(sample().write(&f).is_err());
        assert_eq!(fs::read(&f).unwrap(), b"not a bundle");
        let e = Bundle::read(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
    }

    #[test]
    fn extra_files_roundtrip_and_are_checksummed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.medai");
        let mut b = sample();
        b.files.insert("vocab.json".into(), b"[\"<pad>\"]".to_vec());
        b.write(&p).unwrap();
        let r = Bundle::read(&p).unwrap();
        assert_eq!(r.files["vocab.json"], b"[\"<pad>\"]".to_vec());
        fs::write(p.join("vocab.json"), b"[]").unwrap();
        let e = Bundle::read(&p).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch for vocab.json"), "{e}");
        let mut bad = sample();
        bad.files.insert("../x".into(), vec![1]);
        assert!(bad.write(&dir.path().join("u.medai")).is_err());
        bad.files.clear();
        bad.files.insert(WEIGHTS.into(), vec![1]);
        assert!(bad.write(&dir.path().join("u.medai")).is_err());
    }

    #[test]
    fn overwrite_replaces_an_existing_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.medai");
        sample().write(&p).unwrap();
        let mut b = sample();
        b.weights = vec![9; 10];
        b.write(&p).unwrap();
        assert_eq!(Bundle::read(&p).unwrap().weights, vec![9; 10]);
    }
}
