//! MedMNIST-style `.npz` loading.
//!
//! The archive is read with the `zip` crate and each `.npy` member is parsed by this crate's
//! own small reader ([`crate::npy`]), not `npyz`: only uint8 images and integer labels are
//! needed, and a hand-written header parser gives precise error messages. The file is read into
//! memory once and the six members are inflated in parallel.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use zip::ZipArchive;

use crate::dataset::{Item, ItemSource, Loaded, U8Images};
use crate::error::DataError;
use crate::npy::{self, Kind};

/// Class names of MedMNIST 2D datasets known to this crate (from the MedMNIST v2 `INFO`).
const MEDMNIST_CLASSES: &[(&str, &[&str])] = &[
    ("pneumoniamnist", &["normal", "pneumonia"]),
    ("breastmnist", &["malignant", "normal, benign"]),
];

const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Built-in class names for a MedMNIST file stem such as `pneumoniamnist` or
/// `pneumoniamnist_224` (MedMNIST+ sizes).
pub fn medmnist_class_names(stem: &str) -> Option<&'static [&'static str]> {
    let stem = stem.to_ascii_lowercase();
    let base = match stem.rsplit_once('_') {
        Some((b, size)) if !size.is_empty() && size.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => stem.as_str(),
    };
    MEDMNIST_CLASSES
        .iter()
        .find(|(name, _)| *name == base)
        .map(|(_, c)| *c)
}

pub(crate) fn load(path: &Path) -> Result<Loaded, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    load_bytes(&bytes, path)
}

/// Parse an in-memory MedMNIST `.npz` (the fuzzing entry point; `name` is used in errors) and
/// return the number of images in its train, val and test splits.
pub fn read_npz_bytes(bytes: &[u8], name: &Path) -> Result<[usize; 3], DataError> {
    let l = load_bytes(bytes, name)?;
    let n = |v: &Option<Vec<crate::dataset::Item>>| v.as_ref().map_or(0, Vec::len);
    Ok([l.train.len(), n(&l.val), n(&l.test)])
}

fn load_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, DataError> {
    let not_npz = |reason: String| DataError::NotNpz {
        path: path.to_path_buf(),
        reason,
    };
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| not_npz(e.to_string()))?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let keys: Vec<String> = names
        .iter()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect();
    let mut wanted = Vec::new();
    for split in SPLITS {
        for kind in ["images", "labels"] {
            let key = format!("{split}_{kind}");
            if !keys.contains(&key) {
                let mut found = keys.clone();
                found.sort();
                return Err(DataError::MissingKey {
                    path: path.to_path_buf(),
                    key,
                    found: found.join(", "),
                });
            }
            wanted.push(key);
        }
    }
    let members: Vec<(String, Vec<u8>)> = wanted
        .par_iter()
        .map(|key| {
            let mut ar = archive.clone();
            let entry_name = names
                .iter()
                .zip(&keys)
                .find(|(_, k)| *k == key)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("{key}.npy"));
            let mut f = ar
                .by_name(&entry_name)
                .map_err(|e| not_npz(format!("member '{entry_name}': {e}")))?;
            let mut buf = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0).min(1 << 30));
            f.read_to_end(&mut buf)
                .map_err(|e| not_npz(format!("member '{entry_name}': {e}")))?;
            Ok((key.clone(), buf))
        })
        .collect::<Result<_, DataError>>()?;
    drop(archive);

    let mut members = members.into_iter();
    let mut splits: Vec<(Arc<U8Images>, Vec<usize>)> = Vec::new();
    for split in SPLITS {
        let (img_key, img_buf) = members.next().ok_or_else(|| not_npz("internal".into()))?;
        let (lab_key, lab_buf) = members.next().ok_or_else(|| not_npz("internal".into()))?;
        let images = parse_images(path, &img_key, img_buf)?;
        let labels = parse_labels(path, &lab_key, &lab_buf)?;
        if labels.len() != images.n {
            return Err(DataError::BadArray {
                path: path.to_path_buf(),
                key: lab_key,
                reason: format!(
                    "{} labels but '{img_key}' has {} images; expected one label per image",
                    labels.len(),
                    images.n
                ),
            });
        }
        let images = Arc::new(images);
        images.set_origin(format!("{}:{split}_images", path.display()));
        splits.push((images, labels));
    }

    let max_label = splits
        .iter()
        .flat_map(|(_, l)| l.iter().copied())
        .max()
        .unwrap_or(0);
    let classes = class_names(path, max_label)?;

    let mut items = splits.into_iter().map(|(array, labels)| {
        labels
            .into_iter()
            .enumerate()
            .map(|(index, label)| Item {
                source: ItemSource::Memory {
                    array: Arc::clone(&array),
                    index,
                },
                label,
                attributes: Vec::new(),
            })
            .collect::<Vec<_>>()
    });
    let train = items.next().unwrap_or_default();
    let val = items.next().unwrap_or_default();
    let test = items.next().unwrap_or_default();
    Ok(Loaded {
        classes,
        train,
        val: Some(val),
        test: Some(test),
        source: "npz",
    })
}

/// Class names: sidecar file, else built-in table, else "0".."K-1".
fn class_names(path: &Path, max_label: usize) -> Result<Vec<String>, DataError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new(""));
    let json: PathBuf = dir.join(format!("{stem}.classes.json"));
    let txt: PathBuf = dir.join(format!("{stem}.classes.txt"));
    let sidecar = if json.is_file() {
        let text = std::fs::read_to_string(&json).map_err(|e| DataError::io(&json, e))?;
        let names: Vec<String> = serde_json::from_str(&text).map_err(|e| DataError::Layout {
            path: json.clone(),
            reason: format!("bad class-name sidecar: {e}; expected a JSON array of strings"),
        })?;
        Some((json, names))
    } else if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|e| DataError::io(&txt, e))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Some((txt, names))
    } else {
        None
    };
    if let Some((file, names)) = sidecar {
        if max_label >= names.len() {
            return Err(DataError::Layout {
                path: file,
                reason: format!(
                    "lists {} class names but {} has label {max_label}; expected at least {} names",
                    names.len(),
                    path.display(),
                    max_label + 1
                ),
            });
        }
        return Ok(names);
    }
    if let Some(builtin) = medmnist_class_names(&stem)
        && max_label < builtin.len()
    {
        return Ok(builtin.iter().map(|s| s.to_string()).collect());
    }
    Ok((0..=max_label).map(|i| i.to_string()).collect())
}

fn parse_images(path: &Path, key: &str, mut buf: Vec<u8>) -> Result<U8Images, DataError> {
    let bad = |reason: String| DataError::BadArray {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    let arr = npy::parse(&buf).map_err(bad)?;
    if !(arr.dtype.kind == Kind::Unsigned && arr.dtype.size == 1) {
        return Err(bad(format!(
            "dtype '{}' not supported for images; expected uint8",
            arr.descr
        )));
    }
    let (n, height, width, channels) = match arr.shape[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => {
            return Err(bad(format!(
                "shape {:?} not supported; expected (N, H, W) or (N, H, W, C) with C 1 or 3 (2-D images; 3-D volumes are not supported)",
                arr.shape
            )));
        }
    };
    buf.truncate(arr.data_offset + arr.count);
    buf.drain(..arr.data_offset);
    U8Images::new(n, height, width, channels, buf).map_err(|e| bad(e.to_string()))
}

fn parse_labels(path: &Path, key: &str, buf: &[u8]) -> Result<Vec<usize>, DataError> {
    let bad = |reason: String| DataError::BadArray {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    let arr = npy::parse(buf).map_err(bad)?;
    match arr.shape[..] {
        [_] | [_, 1] => {}
        [_, _] => {
            return Err(DataError::MultiLabel {
                path: path.to_path_buf(),
                key: key.to_string(),
                shape: arr.shape.clone(),
            });
        }
        _ => {
            return Err(bad(format!(
                "shape {:?} not supported; expected labels of shape (N,) or (N, 1)",
                arr.shape
            )));
        }
    }
    let data = &buf[arr.data_offset..];
    (0..arr.count)
        .map(|i| {
            let v = npy::read_integer(data, arr.dtype, i).map_err(&bad)?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v < 1_000_000)
                .ok_or_else(|| {
                    bad(format!(
                        "label {v} at index {i} is not a class index; expected 0 <= label < 1000000"
                    ))
                })
        })
        .collect()
}
