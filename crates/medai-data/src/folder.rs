//! ImageFolder discovery (torchvision `ImageFolder` / Keras `flow_from_directory` layout).

use std::path::{Path, PathBuf};

use crate::dataset::{Item, ItemSource, Loaded};
use crate::error::DataError;
use crate::image_io::has_image_extension;

/// Deepest folder nesting followed inside a class folder (guards against symlink loops).
const MAX_DEPTH: usize = 32;

/// One discovered ImageFolder root: class names (sorted) and items grouped by class.
#[derive(Debug)]
pub(crate) struct ImageFolder {
    pub classes: Vec<String>,
    pub items: Vec<Item>,
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<(PathBuf, std::fs::Metadata)>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let p = entry.path();
        // Follow symlinks; a dangling link is reported as the missing file it points to.
        let meta = std::fs::metadata(&p).map_err(|e| DataError::io(&p, e))?;
        out.push((p, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Image files under `dir`, recursively, sorted by path; hidden files and folders skipped.
fn collect_images(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        return Err(DataError::Layout {
            path: dir.to_path_buf(),
            reason: format!("folders nested deeper than {MAX_DEPTH} levels (symlink loop?)"),
        });
    }
    for (p, meta) in read_dir_sorted(dir)? {
        if meta.is_dir() {
            collect_images(&p, depth + 1, out)?;
        } else if meta.is_file() && has_image_extension(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Discover one ImageFolder root: one sub-folder per class, sorted by name.
pub(crate) fn discover(root: &Path) -> Result<ImageFolder, DataError> {
    let mut classes = Vec::new();
    let mut items = Vec::new();
    for (p, meta) in read_dir_sorted(root)? {
        if !meta.is_dir() {
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = Vec::new();
        collect_images(&p, 0, &mut files)?;
        if files.is_empty() {
            return Err(DataError::EmptyFolder {
                path: p.clone(),
                what: format!("class folder '{name}'"),
            });
        }
        files.sort();
        let label = classes.len();
        items.extend(files.into_iter().map(|f| Item {
            source: ItemSource::File(f),
            label,
            attributes: Vec::new(),
        }));
        classes.push(name);
    }
    if items.is_empty() {
        return Err(DataError::EmptyFolder {
            path: root.to_path_buf(),
            what: "image folder (expected one sub-folder per class)".to_string(),
        });
    }
    Ok(ImageFolder { classes, items })
}

/// Find a split sub-folder among accepted names; error when more than one is present.
fn find_split_dir(root: &Path, names: &[&str]) -> Result<Option<PathBuf>, DataError> {
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| root.join(n))
        .filter(|p| p.is_dir())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(DataError::Layout {
            path: root.to_path_buf(),
            reason: format!(
                "ambiguous layout: found {} split folders ({}); expected only one of them",
                found.len(),
                names.join(", ")
            ),
        }),
    }
}

/// Load a directory dataset: `train/` (+ `val/`|`validation/`|`valid/`, `test/`) roots, or the
/// directory itself as the training root.
pub(crate) fn load(root: &Path) -> Result<Loaded, DataError> {
    let Some(train_dir) = find_split_dir(root, &["train"])? else {
        let f = discover(root)?;
        return Ok(Loaded {
            classes: f.classes,
            train: f.items,
            val: None,
            test: None,
            source: "image-folder",
        });
    };
    let train = discover(&train_dir)?;
    let other = |names: &[&str], split: &str| -> Result<Option<Vec<Item>>, DataError> {
        let Some(dir) = find_split_dir(root, names)? else {
            return Ok(None);
        };
        let f = discover(&dir)?;
        if f.classes != train.classes {
            return Err(DataError::ClassMismatch {
                path: dir,
                split: split.to_string(),
                expected: train.classes.clone(),
                found: f.classes,
            });
        }
        Ok(Some(f.items))
    };
    let val = other(&["val", "validation", "valid"], "val")?;
    let test = other(&["test"], "test")?;
    Ok(Loaded {
        classes: train.classes,
        train: train.items,
        val,
        test,
        source: "image-folder",
    })
}
