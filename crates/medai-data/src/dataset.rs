//! Dataset types, the [`open`] entry point, [`validate`], splitting and fingerprints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::image_io::{RawImage, load_image};

/// How labels are interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelMode {
    /// Two classes; class 1 is the positive class.
    Binary,
    /// One of K unordered classes.
    Categorical,
    /// One of K ordered classes (class order as discovered).
    Ordinal,
}

impl LabelMode {
    /// The mode inferred when none is given: 2 classes → [`LabelMode::Binary`], else
    /// [`LabelMode::Categorical`].
    pub fn infer(num_classes: usize) -> LabelMode {
        if num_classes == 2 {
            LabelMode::Binary
        } else {
            LabelMode::Categorical
        }
    }
}

/// Policy for unreadable files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnBadFile {
    /// Fail on the first bad file, naming it.
    #[default]
    Error,
    /// Drop bad files and report them.
    Skip,
}

/// In-memory uint8 images (N,H,W) or (N,H,W,C) as in MedMNIST npz.
#[derive(Debug)]
pub struct U8Images {
    /// Number of images.
    pub n: usize,
    /// Height of each image.
    pub height: usize,
    /// Width of each image.
    pub width: usize,
    /// Channels per pixel (1 or 3).
    pub channels: usize,
    /// `n * height * width * channels` bytes, C order (image, row, column, channel).
    pub data: Vec<u8>,
}

/// Names given to in-memory arrays for [`LabeledImages::describe`], keyed by allocation.
///
/// `U8Images` has no field for its origin (its layout is part of the public API), so the origin
/// is kept here. Holding a `Weak` keeps the allocation's address from being reused while the
/// entry exists, so address equality identifies the array; dead entries are pruned on insert.
static ORIGINS: Mutex<Vec<(Weak<U8Images>, String)>> = Mutex::new(Vec::new());

impl U8Images {
    /// Build an array, checking that `data.len() == n * height * width * channels` and that
    /// channels is 1 or 3.
    pub fn new(
        n: usize,
        height: usize,
        width: usize,
        channels: usize,
        data: Vec<u8>,
    ) -> Result<Self, DataError> {
        let imgs = U8Images {
            n,
            height,
            width,
            channels,
            data,
        };
        imgs.check().map_err(|reason| DataError::BadMemoryImage {
            origin: "U8Images::new".to_string(),
            reason,
        })?;
        Ok(imgs)
    }

    fn image_len(&self) -> Option<usize> {
        self.height
            .checked_mul(self.width)
            .and_then(|p| p.checked_mul(self.channels))
    }

    fn check(&self) -> Result<(), String> {
        if !matches!(self.channels, 1 | 3) {
            return Err(format!("{} channels, expected 1 or 3", self.channels));
        }
        let expected = self.image_len().and_then(|l| l.checked_mul(self.n));
        if expected != Some(self.data.len()) {
            return Err(format!(
                "{} bytes of data, expected n*height*width*channels = {}*{}*{}*{}",
                self.data.len(),
                self.n,
                self.height,
                self.width,
                self.channels
            ));
        }
        Ok(())
    }

    /// The bytes of image `index` (HWC), or `None` when out of range or inconsistent.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        if index >= self.n {
            return None;
        }
        let len = self.image_len()?;
        let start = index.checked_mul(len)?;
        self.data.get(start..start.checked_add(len)?)
    }

    /// Record where this array came from (e.g. `"/data/x.npz:train_images"`), for
    /// [`LabeledImages::describe`] and error messages.
    pub fn set_origin(self: &Arc<Self>, origin: impl Into<String>) {
        let mut reg = ORIGINS.lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|(w, _)| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(self)));
        reg.push((Arc::downgrade(self), origin.into()));
    }

    /// Where this array came from, if recorded with [`U8Images::set_origin`].
    pub fn origin(self: &Arc<Self>) -> Option<String> {
        let reg = ORIGINS.lock().unwrap_or_else(|e| e.into_inner());
        reg.iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(self)))
            .map(|(_, s)| s.clone())
    }

    /// Decode image `index` into a [`RawImage`] (values 0..=255).
    fn to_raw(self: &Arc<Self>, index: usize) -> Result<RawImage, DataError> {
        let bytes = self.image(index).ok_or_else(|| DataError::BadMemoryImage {
            origin: describe_memory(self, index),
            reason: match self.check() {
                Err(r) => r,
                Ok(()) => format!("index {index} out of range for {} images", self.n),
            },
        })?;
        if !matches!(self.channels, 1 | 3) {
            return Err(DataError::BadMemoryImage {
                origin: describe_memory(self, index),
                reason: format!("{} channels, expected 1 or 3", self.channels),
            });
        }
        Ok(RawImage {
            width: self.width,
            height: self.height,
            channels: self.channels,
            pixels: bytes.iter().map(|&b| f32::from(b)).collect(),
        })
    }
}

fn describe_memory(array: &Arc<U8Images>, index: usize) -> String {
    let origin = array.origin().unwrap_or_else(|| "<in-memory>".to_string());
    format!("{origin}[{index}]")
}

/// Where one sample's pixels come from.
#[derive(Clone, Debug)]
pub enum ItemSource {
    /// An image file on disk.
    File(PathBuf),
    /// Image `index` of an in-memory array.
    Memory {
        /// The shared array.
        array: Arc<U8Images>,
        /// The image's index in the array.
        index: usize,
    },
}

/// One labelled sample.
#[derive(Clone, Debug)]
pub struct Item {
    /// Where the pixels come from.
    pub source: ItemSource,
    /// Class index into the dataset's `classes`.
    pub label: usize,
    /// Extra per-image columns of a CSV manifest, `(column, value)` in column order (e.g.
    /// `("sex", "F")`); empty for image folders and `.npz` arrays. Used for subgroup results.
    pub attributes: Vec<(String, String)>,
}

/// One split of a labelled image dataset.
#[derive(Clone, Debug)]
pub struct LabeledImages {
    /// Class names; a label is an index into this list.
    pub classes: Vec<String>,
    /// The samples, in a deterministic order.
    pub items: Vec<Item>,
}

impl LabeledImages {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The label of every item, in order.
    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|it| it.label).collect()
    }

    /// Number of items per class (length `classes.len()`; out-of-range labels are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for it in &self.items {
            if let Some(c) = counts.get_mut(it.label) {
                *c += 1;
            }
        }
        counts
    }

    /// Decode item `i` (files: by content, not extension; PNG/JPEG/BMP/TIFF 8/16-bit
    /// grey/RGB(A)).
    pub fn load(&self, i: usize) -> Result<RawImage, DataError> {
        let item = self.items.get(i).ok_or(DataError::IndexOutOfRange {
            index: i,
            len: self.items.len(),
        })?;
        match &item.source {
            ItemSource::File(p) => load_image(p),
            ItemSource::Memory { array, index } => array.to_raw(*index),
        }
    }

    /// Short description of item `i` for reports/errors: the file path, or
    /// `"<npz path>:<key>[index]"` for in-memory items.
    pub fn describe(&self, i: usize) -> String {
        match self.items.get(i).map(|it| &it.source) {
            Some(ItemSource::File(p)) => p.display().to_string(),
            Some(ItemSource::Memory { array, index }) => describe_memory(array, *index),
            None => format!("<item {i} out of range: {} items>", self.items.len()),
        }
    }
}

/// Train/val/test splits of one dataset.
#[derive(Clone, Debug)]
pub struct DatasetSplits {
    /// Class names shared by all splits.
    pub classes: Vec<String>,
    /// Training split.
    pub train: LabeledImages,
    /// Validation split (given by the dataset, or split off train).
    pub val: LabeledImages,
    /// Test split, when the dataset has one.
    pub test: Option<LabeledImages>,
    /// Kind of dataset: "npz", "image-folder" or "csv".
    pub source: String,
    /// The path the dataset was opened from.
    pub path: PathBuf,
}

impl DatasetSplits {
    /// Look up a split by name: "train", "val"/"validation", "test".
    pub fn split(&self, name: &str) -> Result<&LabeledImages, DataError> {
        let found = match name.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(&self.train),
            "val" | "valid" | "validation" => Some(&self.val),
            "test" => self.test.as_ref(),
            _ => None,
        };
        found.ok_or_else(|| DataError::NoSuchSplit {
            path: self.path.clone(),
            name: name.to_string(),
            has_test: self.test.is_some(),
        })
    }

    /// The splits present, with their names: train, val, and test when present.
    pub fn named_splits(&self) -> Vec<(&'static str, &LabeledImages)> {
        let mut v = vec![("train", &self.train), ("val", &self.val)];
        if let Some(t) = &self.test {
            v.push(("test", t));
        }
        v
    }

    /// Deterministic SHA-256 hex fingerprint over class names, per-split labels, and item
    /// identity (file path + size for files; pixel bytes for in-memory).
    ///
    /// File paths are hashed relative to the dataset's folder (the opened directory, or the
    /// folder of the CSV/npz file) when they lie inside it, so moving a dataset does not change
    /// its fingerprint.
    pub fn fingerprint(&self) -> String {
        let root: &Path = if self.path.is_dir() {
            &self.path
        } else {
            self.path.parent().unwrap_or(Path::new(""))
        };
        let mut h = Sha256::new();
        h.update(b"medai-data fingerprint v1\0");
        put_len(&mut h, self.classes.len());
        for c in &self.classes {
            put_bytes(&mut h, c.as_bytes());
        }
        for (name, split) in self.named_splits() {
            put_bytes(&mut h, name.as_bytes());
            put_len(&mut h, split.items.len());
            for item in &split.items {
                put_len(&mut h, item.label);
                match &item.source {
                    ItemSource::File(p) => {
                        h.update(b"F");
                        let rel = p.strip_prefix(root).unwrap_or(p);
                        put_bytes(&mut h, rel.to_string_lossy().as_bytes());
                        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX);
                        h.update(size.to_le_bytes());
                    }
                    ItemSource::Memory { array, index } => {
                        h.update(b"M");
                        for d in [array.height, array.width, array.channels] {
                            put_len(&mut h, d);
                        }
                        put_bytes(&mut h, array.image(*index).unwrap_or(&[]));
                    }
                }
            }
        }
        hex::encode(h.finalize())
    }

    /// One-line Keras-style summary, e.g.
    /// "Found 4708 images belonging to 2 classes (train), 524 (val), 624 (test)".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "Found {} images belonging to {} classes (train), {} (val)",
            self.train.len(),
            self.classes.len(),
            self.val.len()
        );
        if let Some(t) = &self.test {
            s.push_str(&format!(", {} (test)", t.len()));
        }
        s
    }
}

fn put_len(h: &mut Sha256, n: usize) {
    h.update((n as u64).to_le_bytes());
}

fn put_bytes(h: &mut Sha256, b: &[u8]) {
    put_len(h, b.len());
    h.update(b);
}

/// Options for [`open`].
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Label mode; `None` = infer (2 classes → Binary, else Categorical).
    pub mode: Option<LabelMode>,
    /// Fraction of each class moved from train to val when the dataset has no val split
    /// (default 0.1; 0 leaves val empty).
    pub val_split: f64,
    /// Seed of the stratified train/val split (default 42).
    pub seed: u64,
    /// What to do with unreadable files (default: error).
    pub on_bad_file: OnBadFile,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            mode: None,
            val_split: 0.1,
            seed: 42,
            on_bad_file: OnBadFile::Error,
        }
    }
}

/// What a format-specific loader found, before checks and splitting.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub classes: Vec<String>,
    pub train: Vec<Item>,
    pub val: Option<Vec<Item>>,
    pub test: Option<Vec<Item>>,
    pub source: &'static str,
}

/// Open a dataset, auto-detecting its kind from `path`:
///
/// - a `.npz` file: MedMNIST layout (keys `train_images`/`val_images`/`test_images` and
///   `*_labels`; labels (N,1) or (N,) integer). Classes are named from a sidecar
///   `<stem>.classes.json` (JSON array of names) or `<stem>.classes.txt` (one name per line)
///   next to the file if present, else from a built-in table (pneumoniamnist, breastmnist),
///   else "0".."K-1".
/// - a `.csv` file: header with columns `path,label` and optionally `split`
///   (train/val/test); paths relative to the CSV's folder or absolute.
/// - a directory: `train/` (+ optional `val/`/`validation/`, `test/`) ImageFolder roots, or
///   the directory itself as the training ImageFolder root.
///
/// Without a val split, a seeded stratified split of train by `opts.val_split` is made.
/// With [`OnBadFile::Error`] files are not decoded (fast) but must exist and be non-empty; use
/// [`validate`] to decode them. With [`OnBadFile::Skip`] every file is decoded and bad ones
/// are dropped (see [`open_with_report`] for the list).
pub fn open(path: &Path, opts: &OpenOptions) -> Result<DatasetSplits, DataError> {
    open_with_report(path, opts).map(|(splits, _)| splits)
}

/// Like [`open`], also returning the `(path, reason)` of every file dropped under
/// [`OnBadFile::Skip`] (always empty with [`OnBadFile::Error`]).
pub fn open_with_report(
    path: &Path,
    opts: &OpenOptions,
) -> Result<(DatasetSplits, Vec<(PathBuf, String)>), DataError> {
    if !opts.val_split.is_finite() || !(0.0..1.0).contains(&opts.val_split) {
        return Err(DataError::InvalidOption {
            field: "val_split".to_string(),
            value: opts.val_split.to_string(),
            expected: "a fraction in [0, 1)".to_string(),
        });
    }
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound {
                path: path.to_path_buf(),
                context: " (expected a .npz file, a .csv manifest or an image folder)".to_string(),
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    let mut skipped = Vec::new();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let loaded = if meta.is_dir() {
        crate::folder::load(path)?
    } else {
        match ext.as_deref() {
            Some("npz") => crate::npz::load(path)?,
            Some("csv") => crate::manifest::load(path, opts.on_bad_file, &mut skipped)?,
            _ => {
                return Err(DataError::Layout {
                    path: path.to_path_buf(),
                    reason: "unrecognised dataset: expected a .npz file, a .csv manifest or an image folder".to_string(),
                });
            }
        }
    };
    let splits = finish(path, loaded, opts, &mut skipped)?;
    Ok((splits, skipped))
}

/// Checks, bad-file policy and the val split, shared by all loaders.
fn finish(
    path: &Path,
    loaded: Loaded,
    opts: &OpenOptions,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<DatasetSplits, DataError> {
    let Loaded {
        classes,
        mut train,
        mut val,
        mut test,
        source,
    } = loaded;
    let k = classes.len();
    if opts.mode == Some(LabelMode::Binary) && k != 2 {
        return Err(DataError::BinaryNeedsTwoClasses {
            path: path.to_path_buf(),
            found: k,
            classes,
        });
    }
    if k < 2 {
        return Err(DataError::TooFewClasses {
            path: path.to_path_buf(),
            found: k,
            classes,
        });
    }
    for items in [Some(&mut train), val.as_mut(), test.as_mut()]
        .into_iter()
        .flatten()
    {
        match opts.on_bad_file {
            OnBadFile::Error => check_files_exist(items)?,
            OnBadFile::Skip => skipped.extend(drop_bad_files(items)),
        }
    }
    if train.is_empty() {
        return Err(DataError::EmptySplit {
            path: path.to_path_buf(),
            split: "train".to_string(),
            reason: if skipped.is_empty() {
                String::new()
            } else {
                format!(" after skipping {} unreadable files", skipped.len())
            },
        });
    }
    let val = match val.take() {
        Some(v) => v,
        None => {
            let (t, v) = stratified_split(&train, opts.val_split, opts.seed);
            train = t;
            v
        }
    };
    let wrap = |items| LabeledImages {
        classes: classes.clone(),
        items,
    };
    Ok(DatasetSplits {
        train: wrap(train),
        val: wrap(val),
        test: test.take().map(wrap),
        classes: classes.clone(),
        source: source.to_string(),
        path: path.to_path_buf(),
    })
}

/// Every file item must exist and be non-empty (no decoding). Checked in parallel; the first
/// failing item in order is reported.
fn check_files_exist(items: &[Item]) -> Result<(), DataError> {
    let bad = items.par_iter().find_map_first(|it| match &it.source {
        ItemSource::File(p) => match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.len() > 0 => None,
            Ok(m) if m.is_file() => Some(DataError::EmptyFile { path: p.clone() }),
            Ok(_) => Some(DataError::NotFound {
                path: p.clone(),
                context: " (it is not a regular file)".to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(DataError::NotFound {
                path: p.clone(),
                context: String::new(),
            }),
            Err(e) => Some(DataError::io(p, e)),
        },
        ItemSource::Memory { .. } => None,
    });
    match bad {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Decode every file item in parallel; returns the error of each item that fails, by index.
fn decode_errors(items: &[Item]) -> Vec<(usize, PathBuf, DataError)> {
    items
        .par_iter()
        .enumerate()
        .filter_map(|(i, it)| match &it.source {
            ItemSource::File(p) => load_image(p).err().map(|e| (i, p.clone(), e)),
            ItemSource::Memory { .. } => None,
        })
        .collect()
}

/// Drop items whose file does not decode; return `(path, reason)` of each dropped one.
fn drop_bad_files(items: &mut Vec<Item>) -> Vec<(PathBuf, String)> {
    let bad = decode_errors(items);
    if bad.is_empty() {
        return Vec::new();
    }
    let bad_idx: BTreeSet<usize> = bad.iter().map(|(i, _, _)| *i).collect();
    let mut i = 0;
    items.retain(|_| {
        let keep = !bad_idx.contains(&i);
        i += 1;
        keep
    });
    bad.into_iter()
        .map(|(_, p, e)| (p, e.to_string()))
        .collect()
}

/// Check every file item decodes (in parallel). With [`OnBadFile::Error`]: return the first
/// bad file's error (train, then val, then test, in item order). With [`OnBadFile::Skip`]:
/// drop bad items and return the list of `(path, reason)` skipped.
pub fn validate(
    splits: &mut DatasetSplits,
    policy: OnBadFile,
) -> Result<Vec<(PathBuf, String)>, DataError> {
    let mut skipped = Vec::new();
    let DatasetSplits {
        train, val, test, ..
    } = splits;
    for set in [Some(train), Some(val), test.as_mut()]
        .into_iter()
        .flatten()
    {
        match policy {
            OnBadFile::Error => {
                let first = set.items.par_iter().find_map_first(|it| match &it.source {
                    ItemSource::File(p) => load_image(p).err(),
                    ItemSource::Memory { .. } => None,
                });
                if let Some(e) = first {
                    return Err(e);
                }
            }
            OnBadFile::Skip => skipped.extend(drop_bad_files(&mut set.items)),
        }
    }
    Ok(skipped)
}

/// Seeded stratified split of `items` into `(train, val)`: per class, the class's items are
/// shuffled (one ChaCha8 stream from `seed`, classes in index order) and
/// `round(n * fraction)` of them go to val — at least one when the class has ≥ 2 items and
/// `fraction > 0`, and never all of them. Both outputs keep the input's order.
pub fn stratified_split(items: &[Item], fraction: f64, seed: u64) -> (Vec<Item>, Vec<Item>) {
    let mut per_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        per_class.entry(it.label).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut in_val = vec![false; items.len()];
    if fraction > 0.0 && fraction.is_finite() {
        for idx in per_class.values_mut() {
            let n = idx.len();
            if n < 2 {
                continue;
            }
            let want = ((n as f64) * fraction).round() as usize;
            let n_val = want.clamp(1, n - 1);
            idx.shuffle(&mut rng);
            for &i in &idx[..n_val] {
                in_val[i] = true;
            }
        }
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (it, v) in items.iter().zip(in_val) {
        if v {
            val.push(it.clone());
        } else {
            train.push(it.clone());
        }
    }
    (train, val)
}
