//! Image decoding into [`RawImage`].

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader};

use crate::error::DataError;

/// File extensions (lower case, without the dot) that dataset discovery treats as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "dcm"];

/// A decoded image: HWC interleaved f32, values on the 0..=255 scale (8-bit as is; 16-bit
/// divided by 257.0), channels 1 or 3 (grey+alpha→grey, RGBA→RGB, palette→RGB).
#[derive(Clone, Debug, PartialEq)]
pub struct RawImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Number of interleaved channels (1 or 3).
    pub channels: usize,
    /// `height * width * channels` values, row-major, channels interleaved.
    pub pixels: Vec<f32>,
}

impl RawImage {
    /// Whether `pixels.len()` matches `width * height * channels`.
    pub fn is_consistent(&self) -> bool {
        self.width
            .checked_mul(self.height)
            .and_then(|p| p.checked_mul(self.channels))
            .is_some_and(|n| n == self.pixels.len())
    }
}

/// Whether a path has one of the [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Decode one image file (used by `medai predict`).
///
/// The format is recognised by content, not by extension. PNG (incl. palette and 16-bit),
/// JPEG, BMP and TIFF (8/16-bit grey or RGB, with or without alpha) are supported; alpha is
/// dropped. DICOM files (the `DICM` magic at byte 128, or a `.dcm` extension) give their
/// first frame with the file's first window ([`crate::DicomImage::to_raw_image`] with
/// [`crate::WindowChoice::FromFile`]).
pub fn load_image(path: &Path) -> Result<RawImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::opening(path, e))?;
    decode_image_bytes(&bytes, path)
}

/// Decode an in-memory encoded image; `path` is only used in error messages.
pub fn decode_image_bytes(bytes: &[u8], path: &Path) -> Result<RawImage, DataError> {
    if bytes.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if is_dicom(bytes, path) {
        return crate::dicom::read_dicom_bytes(bytes, path)?
            .to_raw_image(0, crate::dicom::WindowChoice::FromFile);
    }
    let decode_err = |reason: String| DataError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(decode_err("unrecognised file format".to_string()));
    }
    let img = reader.decode().map_err(|e| decode_err(e.to_string()))?;
    Ok(from_dynamic(img))
}

/// DICOM by content (`DICM` at byte 128) or by a `.dcm` extension.
fn is_dicom(bytes: &[u8], path: &Path) -> bool {
    bytes.get(128..132) == Some(b"DICM")
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("dcm"))
}

/// Convert a decoded [`DynamicImage`] to a [`RawImage`] on the 0..=255 scale.
pub fn from_dynamic(img: DynamicImage) -> RawImage {
    let (width, height) = (img.width() as usize, img.height() as usize);
    let (channels, pixels): (usize, Vec<f32>) = match img {
        DynamicImage::ImageLuma8(b) => (1, b.into_raw().into_iter().map(f32::from).collect()),
        DynamicImage::ImageLumaA8(b) => (1, keep_channels(b.as_raw(), 2, 1, f32::from)),
        DynamicImage::ImageRgb8(b) => (3, b.into_raw().into_iter().map(f32::from).collect()),
        DynamicImage::ImageRgba8(b) => (3, keep_channels(b.as_raw(), 4, 3, f32::from)),
        DynamicImage::ImageLuma16(b) => (1, keep_channels(b.as_raw(), 1, 1, from16)),
        DynamicImage::ImageLumaA16(b) => (1, keep_channels(b.as_raw(), 2, 1, from16)),
        DynamicImage::ImageRgb16(b) => (3, keep_channels(b.as_raw(), 3, 3, from16)),
        DynamicImage::ImageRgba16(b) => (3, keep_channels(b.as_raw(), 4, 3, from16)),
        DynamicImage::ImageRgb32F(b) => (3, keep_channels(b.as_raw(), 3, 3, from_unit)),
        DynamicImage::ImageRgba32F(b) => (3, keep_channels(b.as_raw(), 4, 3, from_unit)),
        other => {
            let b = other.to_rgb32f();
            (3, keep_channels(b.as_raw(), 3, 3, from_unit))
        }
    };
    RawImage {
        width,
        height,
        channels,
        pixels,
    }
}

fn from16(v: u16) -> f32 {
    f32::from(v) / 257.0
}

fn from_unit(v: f32) -> f32 {
    v * 255.0
}

/// Keep the first `keep` of every `stride` values, converting each.
fn keep_channels<T: Copy>(raw: &[T], stride: usize, keep: usize, f: impl Fn(T) -> f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(raw.len() / stride * keep);
    for px in raw.chunks_exact(stride) {
        out.extend(px[..keep].iter().map(|&v| f(v)));
    }
    out
}
