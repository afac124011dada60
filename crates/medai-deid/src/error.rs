//! Typed errors.

use std::path::PathBuf;

/// Everything that can go wrong while de-identifying.
#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    /// The configuration is unusable (key too short, bad date-shift range, ...).
    #[error("invalid de-identification config: {0}")]
    InvalidConfig(String),

    /// The input could not be parsed as a DICOM Part 10 file.
    #[error("cannot read DICOM file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// dicom-rs' reason.
        #[source]
        source: Box<dicom_object::ReadError>,
    },

    /// The input made the DICOM parser fail in an unexpected way (malformed data).
    #[error("malformed DICOM file {path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was reported.
        message: String,
    },

    /// The de-identified object could not be encoded.
    #[error("cannot write DICOM file {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// dicom-rs' reason.
        #[source]
        source: Box<dicom_object::WriteError>,
    },

    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted ("create directory", "rename", ...).
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The object declares BurnedInAnnotation (0028,0301) = YES and
    /// [`crate::DeidConfig::refuse_burned_in`] is set: the pixel data may show identifying
    /// text that this profile implementation does not remove.
    #[error(
        "{}BurnedInAnnotation (0028,0301) = YES: the pixel data may contain burned-in \
         identifying text, which attribute-level de-identification does not remove; refusing \
         (set refuse_burned_in = false to pass it through flagged, with PatientIdentityRemoved = NO)",
        path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default()
    )]
    BurnedInAnnotation {
        /// The file, when known.
        path: Option<PathBuf>,
    },

    /// Directory mode: input and output directories overlap, or a path is not a directory.
    #[error("invalid directory arguments: {0}")]
    InvalidPath(String),
}
