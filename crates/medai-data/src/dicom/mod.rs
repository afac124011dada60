//! DICOM (PS3.10 files) reading: stored pixel values, modality LUT (Hounsfield units),
//! patient geometry, windowing and conversion to [`RawImage`].
//!
//! [`read_dicom`] / [`read_dicom_bytes`] give a [`DicomImage`]: the header fields that shape
//! the pixels, the patient geometry ([`Geometry`]: pixel spacing, orientation, position, slice
//! thickness — kept with the pixels so that nothing downstream has to guess them), rescale
//! and window attributes, and the stored values ([`StoredValues`]) laid out exactly like
//! pydicom's `ds.pixel_array` (frames × rows × cols × samples, singleton frame and sample
//! dimensions dropped; YBR converted to RGB; PALETTE COLOR left as indices; signed samples
//! sign-extended from Bits Stored). [`DicomImage::npy_bytes`] and
//! [`DicomImage::hu_npy_bytes`] write them as `.npy`; [`DicomImage::to_raw_image`] applies the
//! modality LUT, a VOI window ([`WindowChoice`], [`WindowPreset`]), MONOCHROME1 inversion and
//! palette colour, giving a [`RawImage`] on the 0..=255 scale like every other decoder of this
//! crate ([`crate::load_image`] uses it for `.dcm` files).
//!
//! # Transfer syntaxes and why these crates
//!
//! Parsing is `dicom-object` 0.10.1 (with `dicom-dictionary-std`, `dicom-core`,
//! `dicom-encoding`), the newest dicom-rs release; all dicom-rs crates are pinned with `=`
//! because they move in lock step. Pixel data:
//!
//! | transfer syntax | how |
//! | --- | --- |
//! | Implicit / Explicit VR Little Endian, Explicit VR Big Endian | native unpacking here |
//! | Deflated Explicit VR Little Endian | `dicom-object`'s `deflate` feature (flate2, pure Rust) |
//! | Encapsulated Uncompressed | native unpacking here |
//! | RLE Lossless | decoded here (`rle.rs`): the registry's adapter `unwrap`s on corrupt fragments |
//! | JPEG Baseline, JPEG Extended (8-bit), JPEG Lossless (14, 14 SV1) | `dicom-transfer-syntax-registry` feature `jpeg` (`jpeg-decoder`, pure Rust) |
//! | JPEG 2000 (lossless and lossy) | feature `openjpeg-sys-threads`: OpenJPEG 2.5.3, the C library pydicom's `pylibjpeg-openjpeg` also uses, vendored in `openjpeg-sys` and built by `cc` with gcc (no system library, no CMake, no download beyond the crate), decoding code-blocks on every core. The pure-Rust port (`openjp2` feature) gave identical values but was 1.4× slower than pydicom on the 480×640 RGB ultrasound file, which dominated the benchmark (`bench/RESULTS.md`) |
//! | JPEG Extended 12-bit (grey) | decoded here (`jpeg12.rs`, sequential Huffman DCT, exact float IDCT): `jpeg-decoder` and `zune-jpeg` read 8-bit DCT JPEG only |
//! | JPEG-LS (lossless and near-lossless) | feature `charls`: dicom-rs's only JPEG-LS codec. Its `charls-sys` build compiles the vendored CharLS (C++) with the `cmake` program (CMake ≥ 3.13, g++); no download, but CMake is not on a fresh machine, so `.ci/run` installs Debian's `cmake` (pure-Rust JPEG-LS decoders on crates.io are unmaintained or incomplete) |
//!
//! JPEG-LS (C++) and JPEG 2000 (C) are vendored C/C++ built at compile time (JPEG-LS needs CMake); the rest is
//! pure Rust. The frames of a multi-frame object are decoded in parallel (rayon). Unsupported
//! syntaxes fail with [`DataError::DicomUnsupported`] naming the syntax and the reason.
//! Checked against pydicom 3.0.2 on 29 files (`tests/dicom.rs`): every lossless file decodes
//! bit-exactly; JPEG baseline and 12-bit JPEG Extended are within 1 grey level; the lossy
//! JPEG 2000 file is exact.
//!
//! `dicom-pixeldata` is not used: its `DecodedPixelData` turns 1-bit data into 0/255 bytes and
//! otherwise hands back the raw buffer, leaving sign extension from Bits Stored, planar
//! configuration and YBR conversion to the caller, so it would add nothing over the codec
//! adapters it calls internally, which are called directly here.
//!
//! # Robustness
//!
//! Input is untrusted. Before `dicom-object` sees the bytes, a pre-scan (`scan.rs`) checks that
//! every element's declared length fits in the file, that binary values have whole numbers of
//! samples, and that sequences nest at most 32 deep (the parser would otherwise size buffers
//! from garbage lengths, lose its place, or recurse without bound). The decoded size, Rows ×
//! Columns × Frames × Samples × bytes per sample, must not exceed [`MAX_PIXEL_BYTES`]
//! (2 GiB), and a JPEG or JPEG 2000 frame header must agree with Rows, Columns and Samples
//! before its codec runs (a corrupt JPEG 2000 size otherwise keeps OpenJPEG busy for minutes).
//! Panics inside third-party codec or parser code are caught and reported as errors. Every
//! error is a [`DataError`] naming the file.
//!
//! # What is not interpreted
//!
//! The Modality LUT Sequence, VOI LUT Sequence and non-linear VOI LUT Functions (SIGMOID) are
//! ignored (the linear window is used); per-frame rescale and window values of enhanced
//! multi-frame objects are not applied (geometry does fall back to the functional groups);
//! segmented palettes are refused; overlays are not burned in.

mod decode;
mod jpeg12;
mod render;
mod rle;
mod scan;
mod stored;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use dicom_core::header::HasLength;
use dicom_core::{DicomValue, Tag};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

use crate::error::DataError;
use crate::image_io::RawImage;

use decode::{Layout, PixelElement};
pub use render::{Window, WindowChoice, WindowPreset};
pub use stored::StoredValues;

/// Largest decoded pixel buffer accepted: Rows × Columns × Frames × Samples per Pixel × bytes
/// per sample must not exceed 2^31 bytes.
pub const MAX_PIXEL_BYTES: u64 = 1 << 31;

/// Rescale Slope (0028,1053) and Rescale Intercept (0028,1052): the modality LUT
/// `output = slope * stored + intercept` (Hounsfield units for CT).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rescale {
    /// Rescale Slope.
    pub slope: f64,
    /// Rescale Intercept.
    pub intercept: f64,
}

/// Patient geometry of the image (first frame), in millimetres, in the DICOM patient
/// coordinate system (LPS).
///
/// Read from the top-level attributes, or for enhanced multi-frame objects from the Shared
/// (then first Per-frame) Functional Groups. `None` where the file does not say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Geometry {
    /// Pixel Spacing (0028,0030): `[row spacing, column spacing]`, i.e. the distance between
    /// the centres of adjacent rows, then of adjacent columns.
    pub pixel_spacing: Option<[f64; 2]>,
    /// Image Orientation (Patient) (0020,0037): direction cosines of the first row, then of
    /// the first column.
    pub image_orientation: Option<[f64; 6]>,
    /// Image Position (Patient) (0020,0032): centre of the first transmitted pixel.
    pub image_position: Option<[f64; 3]>,
    /// Slice Thickness (0018,0050).
    pub slice_thickness: Option<f64>,
    /// Spacing Between Slices (0018,0088).
    pub spacing_between_slices: Option<f64>,
}

/// A decoded DICOM image: header fields, geometry, and the stored pixel values.
#[derive(Clone, Debug)]
pub struct DicomImage {
    /// Rows (0028,0010).
    pub rows: usize,
    /// Columns (0028,0011).
    pub cols: usize,
    /// Number of Frames (0028,0008); 1 when absent.
    pub frames: usize,
    /// Samples per Pixel (0028,0002): 1 or 3.
    pub samples_per_pixel: usize,
    /// Bits Allocated (0028,0100).
    pub bits_allocated: u16,
    /// Bits Stored (0028,0101).
    pub bits_stored: u16,
    /// Pixel Representation (0028,0103) is 1 (two's complement samples).
    pub signed: bool,
    /// Photometric Interpretation (0028,0004) as written in the file. Stored values of
    /// 3-sample images are always RGB whatever this says (YBR is converted on decoding).
    pub photometric: String,
    /// Transfer Syntax UID (0002,0010).
    pub transfer_syntax: String,
    /// Modality (0008,0060), e.g. `CT`.
    pub modality: Option<String>,
    /// Patient geometry.
    pub geometry: Geometry,
    /// Rescale slope and intercept, when the file has both.
    pub rescale: Option<Rescale>,
    /// Window Center / Window Width (0028,1050/1051) pairs, in file order.
    pub windows: Vec<Window>,
    /// Burned In Annotation (0028,0301): `YES` means the pixels may show patient identity.
    pub burned_in_annotation: Option<String>,
    stored: StoredValues,
    palette: Option<render::Palette>,
    path: PathBuf,
}

/// Read and decode a DICOM Part 10 file.
///
/// Errors: [`DataError::NotFound`]/[`DataError::Io`] for the file itself, then as
/// [`read_dicom_bytes`].
pub fn read_dicom(path: &Path) -> Result<DicomImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::opening(path, e))?;
    read_dicom_bytes(&bytes, path)
}

/// Decode an in-memory DICOM Part 10 file; `name` is only used in error messages.
///
/// The bytes must hold the 128-byte preamble and `DICM` magic (or start at the magic).
/// Truncated, corrupt or hostile input gives an error, never a panic: [`DataError::EmptyFile`],
/// [`DataError::DicomParse`], [`DataError::DicomAttribute`], [`DataError::DicomUnsupported`],
/// [`DataError::DicomPixelData`] or [`DataError::DicomTooLarge`].
pub fn read_dicom_bytes(bytes: &[u8], name: &Path) -> Result<DicomImage, DataError> {
    let path = name.to_path_buf();
    if bytes.is_empty() {
        return Err(DataError::EmptyFile { path });
    }
    let parse_err = |reason: String| DataError::DicomParse {
        path: name.to_path_buf(),
        reason,
    };
    let (data, offset) = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        (&bytes[128..], 128)
    } else if bytes.starts_with(b"DICM") {
        (bytes, 0)
    } else {
        return Err(parse_err(
            "no 'DICM' magic at byte 128 (nor at byte 0)".to_string(),
        ));
    };
    let ts = scan::prescan(data, offset).map_err(parse_err)?;
    let obj = catch_unwind(AssertUnwindSafe(|| {
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(data)
    }))
    .map_err(|_| parse_err("the DICOM parser failed on this data".to_string()))?
    .map_err(|e| parse_err(decode::error_chain(&e)))?;
    from_object(&obj, ts, path)
}

/// Attribute access with errors that name the file.
struct Attrs<'a> {
    obj: &'a InMemDicomObject,
    path: &'a Path,
}

impl Attrs<'_> {
    fn err(&self, tag: Tag, reason: impl Into<String>) -> DataError {
        DataError::DicomAttribute {
            path: self.path.to_path_buf(),
            attribute: attr_name(tag),
            reason: reason.into(),
        }
    }

    fn present(&self, tag: Tag) -> Option<&InMemElement> {
        element_present(self.obj, tag)
    }

    fn uint(&self, tag: Tag) -> Result<Option<u32>, DataError> {
        let Some(e) = self.present(tag) else {
            return Ok(None);
        };
        e.to_int::<u32>()
            .map(Some)
            .map_err(|err| self.err(tag, format!("expected a non-negative integer ({err})")))
    }

    fn required_uint(&self, tag: Tag) -> Result<u32, DataError> {
        self.uint(tag)?
            .ok_or_else(|| self.err(tag, "missing; it is required to decode the pixel data"))
    }

    fn text(&self, tag: Tag) -> Result<Option<String>, DataError> {
        let Some(e) = self.present(tag) else {
            return Ok(None);
        };
        let s = e
            .to_str()
            .map_err(|err| self.err(tag, format!("expected text ({err})")))?;
        let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        Ok((!s.is_empty()).then(|| s.to_string()))
    }

    fn floats(&self, tag: Tag) -> Result<Option<Vec<f64>>, DataError> {
        floats_in(self.obj, tag).map_err(|reason| self.err(tag, reason))
    }

    fn floats_n<const N: usize>(&self, tag: Tag) -> Result<Option<[f64; N]>, DataError> {
        let Some(v) = self.floats(tag)? else {
            return Ok(None);
        };
        <[f64; N]>::try_from(v.as_slice())
            .map(Some)
            .map_err(|_| self.err(tag, format!("expected {N} numbers, found {}", v.len())))
    }

    fn float1(&self, tag: Tag) -> Result<Option<f64>, DataError> {
        Ok(self.floats_n::<1>(tag)?.map(|[x]| x))
    }
}

/// The element if it is present with a non-empty value.
fn element_present(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemElement> {
    let e = obj.get(tag)?;
    match e.value() {
        DicomValue::Primitive(p) if p.is_empty() => None,
        _ => Some(e),
    }
}

/// The element's numbers (DS, IS, FL, FD, US, …); `Ok(None)` if absent or empty.
fn floats_in(obj: &InMemDicomObject, tag: Tag) -> Result<Option<Vec<f64>>, String> {
    let Some(e) = element_present(obj, tag) else {
        return Ok(None);
    };
    let v = e
        .to_multi_float64()
        .map_err(|err| format!("expected decimal numbers ({err})"))?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(format!("expected finite numbers, found {v:?}"));
    }
    Ok((!v.is_empty()).then_some(v))
}

/// "Rows (0028,0010)" style names for messages.
fn attr_name(tag: Tag) -> String {
    use dicom_core::dictionary::DataDictionary;
    let name = dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias)
        .unwrap_or("attribute");
    format!("{name} ({:04X},{:04X})", tag.group(), tag.element())
}

fn from_object(
    obj: &DefaultDicomObject,
    ts: String,
    path: PathBuf,
) -> Result<DicomImage, DataError> {
    let a = Attrs { obj, path: &path };
    let which = if a.present(tags::PIXEL_DATA).is_some() {
        PixelElement::Int
    } else if a.present(tags::FLOAT_PIXEL_DATA).is_some() {
        PixelElement::Float
    } else if a.present(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some() {
        PixelElement::Double
    } else {
        return Err(a.err(
            tags::PIXEL_DATA,
            "missing: this DICOM object holds no image (e.g. a report or presentation state)",
        ));
    };
    let rows = a.required_uint(tags::ROWS)?;
    let cols = a.required_uint(tags::COLUMNS)?;
    let bits_allocated = a.required_uint(tags::BITS_ALLOCATED)?;
    let bits_stored = a.uint(tags::BITS_STORED)?.unwrap_or(bits_allocated);
    let samples = a.uint(tags::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    let frames = a.uint(tags::NUMBER_OF_FRAMES)?.unwrap_or(1);
    let pixel_rep = a.uint(tags::PIXEL_REPRESENTATION)?.unwrap_or(0);
    let planar = a.uint(tags::PLANAR_CONFIGURATION)?.unwrap_or(0);
    let photometric = match a.text(tags::PHOTOMETRIC_INTERPRETATION)? {
        Some(p) => p.to_ascii_uppercase(),
        None if samples == 1 => "MONOCHROME2".to_string(),
        None => {
            return Err(a.err(
                tags::PHOTOMETRIC_INTERPRETATION,
                "missing on a colour image (expected RGB, YBR_FULL, …)",
            ));
        }
    };
    if rows == 0 || cols == 0 || frames == 0 {
        return Err(DataError::DicomAttribute {
            path: path.clone(),
            attribute: "Rows/Columns/Number of Frames".to_string(),
            reason: format!("image of {rows}×{cols} pixels, {frames} frame(s): expected all ≥ 1"),
        });
    }
    let bits_ok = match which {
        PixelElement::Int => matches!(bits_allocated, 1 | 8 | 16 | 32),
        PixelElement::Float => bits_allocated == 32,
        PixelElement::Double => bits_allocated == 64,
    };
    if !bits_ok {
        return Err(a.err(
            tags::BITS_ALLOCATED,
            format!(
                "{bits_allocated} is not supported (expected 1, 8, 16 or 32; 32 for Float Pixel Data; 64 for Double Float Pixel Data)"
            ),
        ));
    }
    if bits_stored == 0 || bits_stored > bits_allocated {
        return Err(a.err(
            tags::BITS_STORED,
            format!(
                "{bits_stored} with Bits Allocated {bits_allocated} (expected 1..={bits_allocated})"
            ),
        ));
    }
    if samples != 1 && samples != 3 {
        return Err(DataError::DicomUnsupported {
            path: path.clone(),
            what: format!("Samples per Pixel {samples} (expected 1 or 3)"),
        });
    }
    if pixel_rep > 1 || planar > 1 {
        return Err(a.err(
            if pixel_rep > 1 {
                tags::PIXEL_REPRESENTATION
            } else {
                tags::PLANAR_CONFIGURATION
            },
            "expected 0 or 1",
        ));
    }
    if photometric == "PALETTE COLOR" && samples != 1 {
        return Err(a.err(
            tags::SAMPLES_PER_PIXEL,
            "PALETTE COLOR needs 1 sample per pixel",
        ));
    }
    if photometric.starts_with("YBR_FULL_422") && !ts.starts_with("1.2.840.10008.1.2.4.") {
        return Err(DataError::DicomUnsupported {
            path: path.clone(),
            what: "uncompressed YBR_FULL_422 (chroma-subsampled) pixel data".to_string(),
        });
    }
    let bytes_per_sample = u128::from(bits_allocated.div_ceil(8));
    let total = u128::from(rows)
        * u128::from(cols)
        * u128::from(frames)
        * u128::from(samples)
        * bytes_per_sample;
    if total > u128::from(MAX_PIXEL_BYTES) {
        return Err(DataError::DicomTooLarge {
            path: path.clone(),
            what: format!(
                "{rows}×{cols} pixels × {frames} frame(s) × {samples} sample(s) × {bytes_per_sample} byte(s)"
            ),
            bytes: total,
            limit: MAX_PIXEL_BYTES,
        });
    }
    let layout = Layout {
        rows: rows as usize,
        cols: cols as usize,
        frames: frames as usize,
        samples: samples as usize,
        bits_allocated: bits_allocated as u16,
        bits_stored: bits_stored as u16,
        signed: pixel_rep == 1,
        planar: planar == 1,
        photometric: photometric.clone(),
    };
    if let Some(DicomValue::PixelSequence(seq)) = obj.get(tags::PIXEL_DATA).map(|e| e.value())
        && seq.fragments().len() < layout.frames
    {
        return Err(DataError::DicomPixelData {
            path: path.clone(),
            transfer_syntax: ts.clone(),
            reason: format!(
                "{} compressed fragment(s) for {} frame(s): every frame needs at least one",
                seq.fragments().len(),
                layout.frames
            ),
        });
    }
    let stored = decode::decode(obj, &ts, &layout, which).map_err(|reason| {
        let unsupported = reason.contains("not supported") || reason.contains("no decoder");
        if unsupported {
            DataError::DicomUnsupported {
                path: path.clone(),
                what: reason,
            }
        } else {
            DataError::DicomPixelData {
                path: path.clone(),
                transfer_syntax: format!("{ts} {}", decode::ts_name(&ts)),
                reason,
            }
        }
    })?;
    let palette = if photometric == "PALETTE COLOR" {
        Some(render::Palette::read(obj, &path)?)
    } else {
        None
    };
    let rescale = match (
        a.float1(tags::RESCALE_SLOPE)?,
        a.float1(tags::RESCALE_INTERCEPT)?,
    ) {
        (Some(slope), Some(intercept)) => Some(Rescale { slope, intercept }),
        _ => None,
    };
    let windows = match (
        a.floats(tags::WINDOW_CENTER)?,
        a.floats(tags::WINDOW_WIDTH)?,
    ) {
        (Some(c), Some(w)) => c
            .into_iter()
            .zip(w)
            .map(|(center, width)| Window { center, width })
            .collect(),
        _ => Vec::new(),
    };
    Ok(DicomImage {
        rows: layout.rows,
        cols: layout.cols,
        frames: layout.frames,
        samples_per_pixel: layout.samples,
        bits_allocated: layout.bits_allocated,
        bits_stored: layout.bits_stored,
        signed: layout.signed,
        photometric,
        transfer_syntax: ts,
        modality: a.text(tags::MODALITY)?,
        geometry: read_geometry(&a)?,
        rescale,
        windows,
        burned_in_annotation: a.text(tags::BURNED_IN_ANNOTATION)?,
        stored,
        palette,
        path,
    })
}

/// Geometry from the top level, else from the functional groups of enhanced objects.
fn read_geometry(a: &Attrs<'_>) -> Result<Geometry, DataError> {
    let mut g = Geometry {
        pixel_spacing: a.floats_n::<2>(tags::PIXEL_SPACING)?,
        image_orientation: a.floats_n::<6>(tags::IMAGE_ORIENTATION_PATIENT)?,
        image_position: a.floats_n::<3>(tags::IMAGE_POSITION_PATIENT)?,
        slice_thickness: a.float1(tags::SLICE_THICKNESS)?,
        spacing_between_slices: a.float1(tags::SPACING_BETWEEN_SLICES)?,
    };
    // Enhanced multi-frame: shared groups first, then the first frame's groups.
    for groups in [
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
    ] {
        let Some(item) = first_item(a.obj, groups) else {
            continue;
        };
        if let Some(m) = first_item(item, tags::PIXEL_MEASURES_SEQUENCE) {
            let sub = Attrs {
                obj: m,
                path: a.path,
            };
            if g.pixel_spacing.is_none() {
                g.pixel_spacing = sub.floats_n::<2>(tags::PIXEL_SPACING)?;
            }
            if g.slice_thickness.is_none() {
                g.slice_thickness = sub.float1(tags::SLICE_THICKNESS)?;
            }
            if g.spacing_between_slices.is_none() {
                g.spacing_between_slices = sub.float1(tags::SPACING_BETWEEN_SLICES)?;
            }
        }
        if g.image_orientation.is_none()
            && let Some(o) = first_item(item, tags::PLANE_ORIENTATION_SEQUENCE)
        {
            g.image_orientation = Attrs {
                obj: o,
                path: a.path,
            }
            .floats_n::<6>(tags::IMAGE_ORIENTATION_PATIENT)?;
        }
        if g.image_position.is_none()
            && let Some(p) = first_item(item, tags::PLANE_POSITION_SEQUENCE)
        {
            g.image_position = Attrs {
                obj: p,
                path: a.path,
            }
            .floats_n::<3>(tags::IMAGE_POSITION_PATIENT)?;
        }
    }
    Ok(g)
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

impl DicomImage {
    /// The oracle layout of [`DicomImage::stored`]: frames × rows × cols × samples with the
    /// frame dimension dropped for single-frame images and the sample dimension dropped for
    /// 1-sample images (pydicom's `pixel_array` shape), and the values.
    pub fn stored_array(&self) -> (Vec<usize>, &StoredValues) {
        (self.shape(), &self.stored)
    }

    /// The stored values (frames × rows × cols × samples, row-major).
    pub fn stored(&self) -> &StoredValues {
        &self.stored
    }

    fn shape(&self) -> Vec<usize> {
        let mut shape = Vec::with_capacity(4);
        if self.frames > 1 {
            shape.push(self.frames);
        }
        shape.push(self.rows);
        shape.push(self.cols);
        if self.samples_per_pixel > 1 {
            shape.push(self.samples_per_pixel);
        }
        shape
    }

    /// The stored values as a `.npy` file (format 1.0, little-endian, C order), with the
    /// shape of [`DicomImage::stored_array`] and the dtype of [`StoredValues::npy_descr`].
    pub fn npy_bytes(&self) -> Vec<u8> {
        stored::npy_file(
            self.stored.npy_descr(),
            &self.shape(),
            &self.stored.le_bytes(),
        )
    }

    /// The modality LUT applied to every stored value: `slope * x + intercept` (Hounsfield
    /// units for CT), the values unchanged when the file has no rescale. Same layout as
    /// [`DicomImage::stored_array`]; equal to pydicom's `apply_modality_lut`.
    pub fn modality_lut(&self) -> Vec<f64> {
        self.stored
            .slice_f64(0..self.stored.len())
            .into_iter()
            .map(|x| self.rescale_value(x))
            .collect()
    }

    pub(crate) fn rescale_value(&self, x: f64) -> f64 {
        match self.rescale {
            Some(r) => x * r.slope + r.intercept,
            None => x,
        }
    }

    /// [`DicomImage::modality_lut`] as a float64 `.npy` file.
    pub fn hu_npy_bytes(&self) -> Vec<u8> {
        let data: Vec<u8> = self
            .modality_lut()
            .into_iter()
            .flat_map(f64::to_le_bytes)
            .collect();
        stored::npy_file("<f8", &self.shape(), &data)
    }

    /// The file this image was read from (or the name given to [`read_dicom_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Render one frame (0-based) as a [`RawImage`] on the 0..=255 scale.
    ///
    /// Monochrome: the modality LUT, then the linear VOI function of PS3.3 C.11.2.1.2.1 with
    /// the chosen window (see [`WindowChoice`]), then inversion for MONOCHROME1; 1 channel.
    /// PALETTE COLOR: each index through the red/green/blue palette LUTs (8- or 16-bit
    /// entries, scaled to 0..=255); RGB (and YBR, already converted): samples scaled from
    /// Bits Stored to 0..=255; 3 channels, windows not applied.
    pub fn to_raw_image(&self, frame: usize, window: WindowChoice) -> Result<RawImage, DataError> {
        render::to_raw_image(self, frame, window)
    }
}
