//! The crate's typed error.

use std::path::PathBuf;

/// Everything that can go wrong while opening, validating or decoding a dataset.
///
/// Every message names the file (and, where it applies, the row, key or field) and says what
/// was expected, so that it can be shown to a user as is.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read from disk.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file listed by a dataset does not exist.
    #[error("{}: file not found{}", .path.display(), .context)]
    NotFound {
        /// The missing file.
        path: PathBuf,
        /// Where it was referenced, e.g. " (listed in manifest.csv row 3, line 4)"; may be empty.
        context: String,
    },

    /// A file is empty (0 bytes) where an image was expected.
    #[error("{}: file is empty (0 bytes); expected an image file", .path.display())]
    EmptyFile {
        /// The empty file.
        path: PathBuf,
    },

    /// A file could not be decoded as an image.
    #[error("{}: cannot decode image: {reason} (expected a PNG, JPEG, BMP or TIFF image, 8/16-bit grey or RGB(A), or a DICOM file)", .path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },

    /// A `.npz` file is not a readable zip archive of `.npy` arrays.
    #[error("{}: not a valid .npz archive ({reason}); expected a zip of .npy arrays as written by numpy.savez", .path.display())]
    NotNpz {
        /// The `.npz` file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A required array is missing from a `.npz` file.
    #[error("{}: missing key '{key}'; expected the MedMNIST keys train_images, train_labels, val_images, val_labels, test_images, test_labels (found: {found})", .path.display())]
    MissingKey {
        /// The `.npz` file.
        path: PathBuf,
        /// The missing key (without `.npy`).
        key: String,
        /// The keys that are present, comma separated.
        found: String,
    },

    /// An array inside a `.npz` file is malformed or has an unsupported dtype or shape.
    #[error("{}: array '{key}': {reason}", .path.display())]
    BadArray {
        /// The `.npz` file.
        path: PathBuf,
        /// The array's key.
        key: String,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// Labels with more than one column (multi-label) were found.
    #[error("{}: array '{key}' has shape {shape:?}: multi-label not supported yet (expected labels of shape (N,) or (N, 1))", .path.display())]
    MultiLabel {
        /// The `.npz` file.
        path: PathBuf,
        /// The labels' key.
        key: String,
        /// The labels' shape.
        shape: Vec<usize>,
    },

    /// A CSV manifest's header is unusable.
    #[error("{}: bad header: {reason}", .path.display())]
    ManifestHeader {
        /// The manifest.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A CSV manifest row is unusable.
    #[error("{}: row {row} (line {line}): {reason}", .path.display())]
    ManifestRow {
        /// The manifest.
        path: PathBuf,
        /// 1-based data row number (the header is not counted).
        row: usize,
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A folder (class folder or whole dataset) holds no image files.
    #[error("{}: {what} contains no image files (expected .png .jpg .jpeg .bmp .tif .tiff .dcm files)", .path.display())]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
        /// What the folder is, e.g. "class folder 'normal'".
        what: String,
    },

    /// The dataset's layout is not understood.
    #[error("{}: {reason}", .path.display())]
    Layout {
        /// The dataset path.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A split's class set differs from the training split's.
    #[error("{}: the {split} split's classes {found:?} differ from the train split's classes {expected:?}", .path.display())]
    ClassMismatch {
        /// The dataset path.
        path: PathBuf,
        /// The split name.
        split: String,
        /// The train split's classes.
        expected: Vec<String>,
        /// This split's classes.
        found: Vec<String>,
    },

    /// Fewer than two classes were found.
    #[error("{}: need at least 2 classes, found {found}: {classes:?}", .path.display())]
    TooFewClasses {
        /// The dataset path.
        path: PathBuf,
        /// The number of classes found.
        found: usize,
        /// Their names.
        classes: Vec<String>,
    },

    /// Binary mode was requested for a dataset that does not have exactly two classes.
    #[error("binary mode needs exactly 2 classes, found {found} in {}: [{}]", .path.display(), .classes.join(", "))]
    BinaryNeedsTwoClasses {
        /// The dataset path.
        path: PathBuf,
        /// The number of classes found.
        found: usize,
        /// Their names.
        classes: Vec<String>,
    },

    /// A split name is unknown or the split is absent.
    #[error("{}: no split named '{name}' (expected train, val/validation{})", .path.display(), if *.has_test { ", test" } else { "; this dataset has no test split" })]
    NoSuchSplit {
        /// The dataset path.
        path: PathBuf,
        /// The requested split name.
        name: String,
        /// Whether the dataset has a test split.
        has_test: bool,
    },

    /// A split has no usable items where some are required.
    #[error("{}: the {split} split is empty{reason}", .path.display())]
    EmptySplit {
        /// The dataset path.
        path: PathBuf,
        /// The split name.
        split: String,
        /// Extra explanation; may be empty.
        reason: String,
    },

    /// An item index is out of range.
    #[error("item index {index} out of range: the split has {len} items")]
    IndexOutOfRange {
        /// The requested index.
        index: usize,
        /// The number of items.
        len: usize,
    },

    /// An in-memory image array is inconsistent.
    #[error("{origin}: in-memory image array is inconsistent: {reason}")]
    BadMemoryImage {
        /// Where the array came from (e.g. `data.npz:train_images[3]`).
        origin: String,
        /// What is wrong.
        reason: String,
    },

    /// A computation that needs images was given none.
    #[error("{what}: no images (expected a non-empty split)")]
    NoImages {
        /// What needed the images.
        what: String,
    },

    /// An option has an invalid value.
    #[error("invalid option {field} = {value}: {expected}")]
    InvalidOption {
        /// The option's name.
        field: String,
        /// The given value.
        value: String,
        /// What was expected.
        expected: String,
    },

    /// A NIfTI file is not a readable, supported, intact NIfTI-1/NIfTI-2 volume.
    #[error("{}: cannot read NIfTI volume: {reason}", .path.display())]
    Nifti {
        /// The file (or the name given to `read_nifti_bytes`).
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A 2-D slice was asked of a NIfTI volume that does not have it.
    #[error("{}: cannot slice NIfTI volume: {reason}", .path.display())]
    NiftiSlice {
        /// The volume's file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A file is not a readable DICOM Part 10 file, or its structure is broken.
    #[error("{}: not a readable DICOM file: {reason} (expected a DICOM Part 10 file: 128-byte preamble, 'DICM', file meta group, data set)", .path.display())]
    DicomParse {
        /// The file (or the name given to `read_dicom_bytes`).
        path: PathBuf,
        /// What is wrong, with the byte offset where known.
        reason: String,
    },

    /// A DICOM attribute needed to read the image is missing or malformed.
    #[error("{}: DICOM attribute {attribute}: {reason}", .path.display())]
    DicomAttribute {
        /// The file.
        path: PathBuf,
        /// The attribute's keyword and tag, e.g. `Rows (0028,0010)`.
        attribute: String,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A DICOM file uses a feature (transfer syntax, sample layout, …) that is not supported.
    #[error("{}: unsupported DICOM feature: {what}", .path.display())]
    DicomUnsupported {
        /// The file.
        path: PathBuf,
        /// The feature and why it is not supported.
        what: String,
    },

    /// DICOM pixel data could not be decoded (corrupt or inconsistent with the header).
    #[error("{}: cannot decode DICOM pixel data (transfer syntax {transfer_syntax}): {reason}", .path.display())]
    DicomPixelData {
        /// The file.
        path: PathBuf,
        /// The transfer syntax UID and name.
        transfer_syntax: String,
        /// What went wrong and what was expected.
        reason: String,
    },

    /// A DICOM header describes more pixel data than this reader accepts.
    #[error("{}: DICOM image of {what} needs {bytes} bytes, over the {limit}-byte limit", .path.display())]
    DicomTooLarge {
        /// The file.
        path: PathBuf,
        /// The dimensions, e.g. `512×512 pixels × 3 frame(s) × 1 sample(s) × 2 byte(s)`.
        what: String,
        /// The decoded size the header asks for.
        bytes: u128,
        /// The limit.
        limit: u64,
    },

    /// A frame index is past the last frame of a DICOM image.
    #[error("{}: frame {frame} out of range: the DICOM image has {frames} frame(s)", .path.display())]
    DicomFrame {
        /// The file.
        path: PathBuf,
        /// The requested frame (0-based).
        frame: usize,
        /// The number of frames.
        frames: usize,
    },
}

impl DataError {
    /// Shorthand for [`DataError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// An I/O error opening or reading `path`: [`DataError::NotFound`] for a missing file,
    /// [`DataError::Io`] otherwise.
    pub(crate) fn opening(path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound {
                path: path.to_path_buf(),
                context: String::new(),
            }
        } else {
            DataError::io(path, e)
        }
    }
}
