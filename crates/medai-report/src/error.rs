//! The crate's error type.

/// Everything that can go wrong while building report pieces.
///
/// Inputs are validated up front, so a malformed argument is reported here rather
/// than through a panic.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A buffer or list does not have the length its stated shape implies.
    #[error("{what}: expected {expected} values, got {actual}")]
    LengthMismatch {
        /// Which argument is wrong (for example `"heat"`).
        what: &'static str,
        /// The length implied by the other arguments.
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },
    /// A dimension is zero, a shape is inconsistent, or a parameter is out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A pixel buffer has a channel count other than 1 (grey) or 3 (RGB).
    #[error("unsupported channel count {0} (expected 1 for grey or 3 for RGB)")]
    UnsupportedChannels(usize),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] image::ImageError),
}
