//! NIfTI-1 and NIfTI-2 volumes (`.nii`, `.nii.gz`), and 2-D training slices cut from them.
//!
//! [`read_nifti`] and [`read_nifti_bytes`] read a single-file NIfTI volume — NIfTI-1 (348-byte
//! header, magic `n+1`) or NIfTI-2 (540-byte header, magic `n+2`), little- or big-endian,
//! uncompressed or gzip-compressed (recognised by the `1f 8b` magic, not by the extension) —
//! into a [`Volume`]: shape, voxel sizes, on-disk datatype, scaling, affine and the stored voxel
//! values as `f64`. [`Volume::slice`] and friends cut 2-D grey [`RawImage`]s out of it.
//!
//! The exact semantics (nibabel's) are documented on [`Volume`], the limits on
//! [`read_nifti`].
//!
//! # Why part of this is written by hand
//!
//! The NIfTI-1 header is parsed by the `nifti` crate (nifti-rs) 0.18.0, the newest release,
//! including its byte-order detection. That crate cannot read NIfTI-2 at all: it only knows the
//! 348-byte header (magics `ni1`/`n+1`) and `u16` dimensions. So the 540-byte NIfTI-2 header is
//! parsed here, field by field at the offsets of `nifti2.h`. Voxel decoding is written here for
//! both versions: the crate's in-memory volume is NIfTI-1-only (built from its header type, with
//! `u16` dimensions) and reserves the header's byte count before anything compares it with the
//! input, whereas this module checks the count against the limit and the file size first and
//! then decodes as it streams, so that the `Vec<f64>` is the only large allocation.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::error::DataError;
use crate::image_io::RawImage;

/// The largest decoded volume accepted: 2^31 bytes of `f64` voxel values (2^28 voxels).
pub const NIFTI_MAX_BYTES: u64 = 1 << 31;

/// Decompressed bytes allowed after the voxel data in a gzip stream (read to check its CRC).
const MAX_GZIP_TRAILING: u64 = 16 << 20;
/// Deflate's largest compression ratio (258-byte matches in about 2 bits), plus some slack.
const DEFLATE_MAX_RATIO: u64 = 1032;
const DEFLATE_SLACK: u64 = 1 << 16;
/// Bytes decoded per read (a multiple of every datatype's size).
const CHUNK: usize = 1 << 16;

const NIFTI1_HEADER: usize = 348;
const NIFTI2_HEADER: usize = 540;

/// One of the three spatial axes of a volume, for [`Volume::slice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Axis {
    /// The first voxel axis (i); slices are sagittal in a usual RAS-like volume.
    X,
    /// The second voxel axis (j); slices are coronal in a usual RAS-like volume.
    Y,
    /// The third voxel axis (k); slices are axial in a usual RAS-like volume.
    Z,
}

impl Axis {
    /// The axis' position in [`Volume::dims`]: 0, 1 or 2.
    pub fn index(self) -> usize {
        match self {
            Axis::X => 0,
            Axis::Y => 1,
            Axis::Z => 2,
        }
    }
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Axis::X => "x",
            Axis::Y => "y",
            Axis::Z => "z",
        })
    }
}

/// A NIfTI volume read by [`read_nifti`] or [`read_nifti_bytes`].
///
/// # Semantics (nibabel's, which the tests use as the oracle)
///
/// - **Shape**: `dim[1..=dim[0]]`, trailing 1s kept; `dim[0]` must be 1..=7 and every used
///   dimension at least 1.
/// - **Voxel order**: [`Volume::data`] is in NIfTI's on-disk order, x fastest (Fortran /
///   column-major order of the `(x, y, z, t, …)` array): voxel `(i, j, k, t)` is at
///   `i + nx·(j + ny·(k + nz·t))`. [`Volume::to_npy_like`] gives the C-order (row-major) copy.
/// - **Zooms** ([`Volume::pixdim`]): `pixdim[1..=dim[0]]`. As nibabel does when it loads a
///   header, negative `pixdim[1..=3]` are replaced by their absolute value and zeros by 1.
/// - **Scaling** ([`Volume::scaled`]): `stored · scl_slope + scl_inter`, computed in `f64` from
///   the header's values (nibabel's `get_fdata`); a slope of 0 or a non-finite slope means "no
///   scaling". A finite, non-zero slope with a non-finite intercept is refused, as nibabel does.
/// - **Affine** ([`Volume::affine`], nibabel's `img.affine`): the sform rows if `sform_code` ≠
///   0, else the qform (quaternion, `pixdim[1..=3]`, `qfac = pixdim[0]`, offsets) if
///   `qform_code` ≠ 0, else the "base" affine (zooms on the diagonal, x flipped, origin at the
///   centre of the first three axes). Codes outside 0..=5 count as 0 and a `qfac` other than ±1
///   as 1, as nibabel's header checks fix them. The quaternion's `w` is 0 when
///   `|1 − (b²+c²+d²)|` is under 3 machine epsilons of the header's float type (`f32` for
///   NIfTI-1, `f64` for NIfTI-2), again as nibabel.
/// - **Data offset**: `vox_offset` must be at least 352 (NIfTI-1) or 544 (NIfTI-2), i.e. past
///   the header and the 4-byte extension flag; header extensions are skipped.
/// - **Datatypes**: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64
///   (int64/uint64 beyond 2^53 lose precision as `f64`). Binary, complex, RGB and float128
///   volumes are refused with an error, as are `.hdr`/`.img` pairs (magic `ni1`/`ni2`).
///
/// # Slices
///
/// A 2-D slice is taken at `index` along an [`Axis`], in the 3-D volume `t` (for 4-D and
/// higher volumes `t` counts the 3-D volumes over all axes past z, in storage order; 3-D
/// volumes have only `t = 0`). Pixel `(row r, column c)` is the voxel
///
/// | axis | voxel | width × height | numpy equivalent |
/// |------|-------|----------------|------------------|
/// | [`Axis::Z`] | `(c, r, index)` | `nx × ny` | `vol[:, :, index].T` |
/// | [`Axis::Y`] | `(c, index, r)` | `nx × nz` | `vol[:, index, :].T` |
/// | [`Axis::X`] | `(index, c, r)` | `ny × nz` | `vol[index, :, :].T` |
///
/// i.e. voxel-array orientation with no flips and the affine not applied: row 0 holds the lowest
/// y (z for the X and Y axes) voxel index, so in an RAS-like volume the anterior / superior side
/// is at the bottom of the image; flip the rows to show it the usual way up. Values are the
/// *scaled* voxel values mapped to the crate's 0..=255 image scale, either min–max over the
/// slice ([`Volume::slice`]) or through a CT-style window ([`Volume::slice_window`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// The file (or name) the volume was read from; used in error messages.
    pub path: PathBuf,
    /// The NIfTI version: 1 or 2.
    pub version: u8,
    /// The shape `(x, y, z[, t, …])`: `dim[1..=dim[0]]` of the header.
    pub dims: Vec<usize>,
    /// The voxel sizes (nibabel's zooms), one per dimension: `pixdim[1..=dim[0]]`, with
    /// negative spatial sizes made positive and zero ones set to 1.
    pub pixdim: Vec<f64>,
    /// The on-disk datatype as numpy names it: `"uint8"`, `"int16"`, `"float32"`, ….
    pub datatype: String,
    /// Whether the file is big-endian.
    pub big_endian: bool,
    /// The header's `scl_slope` (0 or NaN mean "no scaling").
    pub scl_slope: f64,
    /// The header's `scl_inter`.
    pub scl_inter: f64,
    /// The header's `qform_code` (values outside 0..=5 read as 0).
    pub qform_code: i32,
    /// The header's `sform_code` (values outside 0..=5 read as 0).
    pub sform_code: i32,
    /// The voxel-to-world affine (row-major, last row `0 0 0 1`), as nibabel's `img.affine`:
    /// the sform if `sform_code > 0`, else the qform if `qform_code > 0`, else the base affine.
    pub affine: [[f64; 4]; 4],
    /// The spatial and temporal units as nibabel names them, e.g. `("mm", "sec")`;
    /// `"unknown"` for code 0 and `"code N"` for codes outside the standard.
    pub xyzt_units: (String, String),
    /// The stored (unscaled) voxel values, x fastest (see [`Volume::get`] for the layout).
    pub data: Vec<f64>,
}

impl Volume {
    /// The shape, `(x, y, z[, t, …])`.
    pub fn shape(&self) -> &[usize] {
        &self.dims
    }

    /// The scaling that [`Volume::scaled`] applies: `Some((slope, inter))`, or `None` when the
    /// slope is 0 or not finite (no scaling).
    pub fn scaling(&self) -> Option<(f64, f64)> {
        (self.scl_slope != 0.0 && self.scl_slope.is_finite())
            .then_some((self.scl_slope, self.scl_inter))
    }

    /// The scaled voxel values, in the order of [`Volume::data`]: nibabel's `get_fdata()`,
    /// `stored · scl_slope + scl_inter` in `f64`, or the stored values when there is no scaling.
    pub fn scaled(&self) -> Vec<f64> {
        match self.scaling() {
            Some((slope, inter)) => self.data.iter().map(|&v| v * slope + inter).collect(),
            None => self.data.clone(),
        }
    }

    /// The position in [`Volume::data`] of voxel `idx` (one index per dimension):
    /// `idx[0] + dims[0]·(idx[1] + dims[1]·(idx[2] + …))`. `None` if `idx` has the wrong
    /// length or is out of range.
    pub fn offset_of(&self, idx: &[usize]) -> Option<usize> {
        if idx.len() != self.dims.len() {
            return None;
        }
        let mut offset = 0usize;
        for (&i, &n) in idx.iter().zip(&self.dims).rev() {
            if i >= n {
                return None;
            }
            offset = offset.checked_mul(n)?.checked_add(i)?;
        }
        (offset < self.data.len()).then_some(offset)
    }

    /// The stored (unscaled) value of voxel `idx` (one index per dimension, `(x, y, z[, t,
    /// …])`), or `None` if `idx` has the wrong length or is out of range.
    pub fn get(&self, idx: &[usize]) -> Option<f64> {
        self.offset_of(idx).map(|o| self.data[o])
    }

    /// The scaled value of voxel `idx` (see [`Volume::scaled`]), or `None` as for
    /// [`Volume::get`].
    pub fn get_scaled(&self, idx: &[usize]) -> Option<f64> {
        let v = self.get(idx)?;
        Some(match self.scaling() {
            Some((slope, inter)) => v * slope + inter,
            None => v,
        })
    }

    /// The shape and the stored values in C order (row-major, last axis fastest), i.e. what
    /// numpy's `np.asarray(img.dataobj).ravel()` gives, or the data of an `.npy` file of the
    /// array written with `fortran_order: False`.
    pub fn to_npy_like(&self) -> (Vec<usize>, Vec<f64>) {
        let dims = self.dims.clone();
        let count = dims.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        if count != Some(self.data.len()) {
            // Inconsistent fields (they are public): nothing sensible to transpose.
            return (dims, self.data.clone());
        }
        let mut out = Vec::with_capacity(self.data.len());
        // Fortran strides of each axis.
        let mut strides = Vec::with_capacity(dims.len());
        let mut s = 1usize;
        for &n in &dims {
            strides.push(s);
            s *= n;
        }
        let mut idx = vec![0usize; dims.len()];
        let mut offset = 0usize;
        for _ in 0..self.data.len() {
            out.push(self.data[offset]);
            // Advance the C-order multi-index (last axis fastest), keeping `offset` in step.
            for axis in (0..dims.len()).rev() {
                idx[axis] += 1;
                offset += strides[axis];
                if idx[axis] < dims[axis] {
                    break;
                }
                offset -= strides[axis] * dims[axis];
                idx[axis] = 0;
            }
        }
        (dims, out)
    }

    /// The number of voxels along `axis` (1 for an axis past the volume's dimensionality).
    pub fn axis_len(&self, axis: Axis) -> usize {
        self.dims.get(axis.index()).copied().unwrap_or(1)
    }

    /// The number of 3-D volumes: the product of the dimensions past z (1 for 1-D to 3-D).
    pub fn volumes(&self) -> usize {
        self.dims
            .iter()
            .skip(3)
            .fold(1usize, |a, &n| a.saturating_mul(n))
    }

    /// The 2-D slice at `index` along `axis` in 3-D volume `t`, as a grey [`RawImage`] whose
    /// scaled values are min–max normalised over the slice to 0..=255:
    /// `(v − min) / (max − min) · 255`, with min and max over the finite values; a constant
    /// slice is all 0, NaN is 0, +∞ is 255 and −∞ is 0. The orientation is described
    /// [on `Volume`](Volume#slices).
    pub fn slice(&self, axis: Axis, index: usize, t: usize) -> Result<RawImage, DataError> {
        let (width, height, values) = self.slice_values(axis, index, t)?;
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let pixels = values
            .iter()
            .map(|&v| {
                if v.is_nan() {
                    0.0
                } else if v == f64::INFINITY {
                    255.0
                } else if v == f64::NEG_INFINITY || hi <= lo {
                    0.0
                } else {
                    to_pixel((v - lo) / (hi - lo) * 255.0)
                }
            })
            .collect();
        Ok(RawImage {
            width,
            height,
            channels: 1,
            pixels,
        })
    }

    /// Like [`Volume::slice`], but maps the scaled values through a window (e.g. a CT window in
    /// Hounsfield units such as center 40, width 400): `(v − (center − width/2)) / width · 255`,
    /// clamped to 0..=255; NaN is 0. `center` must be finite and `width` finite and positive.
    pub fn slice_window(
        &self,
        axis: Axis,
        index: usize,
        t: usize,
        center: f64,
        width: f64,
    ) -> Result<RawImage, DataError> {
        if !center.is_finite() {
            return Err(DataError::InvalidOption {
                field: "window center".into(),
                value: center.to_string(),
                expected: "a finite number".into(),
            });
        }
        if !(width.is_finite() && width > 0.0) {
            return Err(DataError::InvalidOption {
                field: "window width".into(),
                value: width.to_string(),
                expected: "a finite number > 0".into(),
            });
        }
        let (w, h, values) = self.slice_values(axis, index, t)?;
        let lo = center - width / 2.0;
        let pixels = values
            .iter()
            .map(|&v| to_pixel((v - lo) / width * 255.0))
            .collect();
        Ok(RawImage {
            width: w,
            height: h,
            channels: 1,
            pixels,
        })
    }

    /// The slices at every index of `range` along `axis` in 3-D volume `t`, each as
    /// [`Volume::slice`] makes it (normalised on its own). An empty range gives no slices; a
    /// range reaching past the axis is an error.
    pub fn slices(
        &self,
        axis: Axis,
        range: Range<usize>,
        t: usize,
    ) -> Result<Vec<RawImage>, DataError> {
        let len = self.axis_len(axis);
        if range.end > len && !range.is_empty() {
            return Err(self.slice_error(format!(
                "{axis} range {}..{} out of range: the volume has {len} slices along {axis} \
                 (shape {:?})",
                range.start, range.end, self.dims
            )));
        }
        range.map(|i| self.slice(axis, i, t)).collect()
    }

    fn slice_error(&self, reason: String) -> DataError {
        DataError::NiftiSlice {
            path: self.path.clone(),
            reason,
        }
    }

    /// The scaled values of a slice, row-major: `(width, height, values)`.
    fn slice_values(
        &self,
        axis: Axis,
        index: usize,
        t: usize,
    ) -> Result<(usize, usize, Vec<f64>), DataError> {
        let nx = self.axis_len(Axis::X);
        let ny = self.axis_len(Axis::Y);
        let nz = self.axis_len(Axis::Z);
        let nt = self.volumes();
        let expected = self.dims.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        if expected != Some(self.data.len()) {
            return Err(self.slice_error(format!(
                "the volume holds {} values but its shape {:?} needs {}",
                self.data.len(),
                self.dims,
                expected.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string())
            )));
        }
        let (width, height, len) = match axis {
            Axis::Z => (nx, ny, nz),
            Axis::Y => (nx, nz, ny),
            Axis::X => (ny, nz, nx),
        };
        if index >= len {
            return Err(self.slice_error(format!(
                "{axis} index {index} out of range: the volume has {len} slices along {axis} \
                 (shape {:?})",
                self.dims
            )));
        }
        if t >= nt {
            return Err(self.slice_error(format!(
                "volume index t = {t} out of range: the volume has {nt} 3-D volume(s) \
                 (shape {:?})",
                self.dims
            )));
        }
        let base = t * nx * ny * nz;
        let scaling = self.scaling();
        let mut values = Vec::with_capacity(width * height);
        for r in 0..height {
            for c in 0..width {
                let offset = match axis {
                    Axis::Z => base + c + nx * (r + ny * index),
                    Axis::Y => base + c + nx * (index + ny * r),
                    Axis::X => base + index + nx * (c + ny * r),
                };
                let v = self.data[offset];
                values.push(match scaling {
                    Some((slope, inter)) => v * slope + inter,
                    None => v,
                });
            }
        }
        Ok((width, height, values))
    }
}

/// A 0..=255 value as an `f32` pixel (NaN → 0).
fn to_pixel(x: f64) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 255.0) as f32
    }
}

/// Read a NIfTI-1 or NIfTI-2 file (`.nii` or `.nii.gz`, gzip recognised by content).
///
/// # Limits (checked before anything large is allocated)
///
/// The voxel count is computed from the header with checked arithmetic; a volume whose decoded
/// data would exceed [`NIFTI_MAX_BYTES`] (2 GiB of `f64`, i.e. 2^28 voxels) is refused. An
/// uncompressed file must hold `vox_offset` plus the declared data (bytes after the data are
/// ignored, as nibabel ignores them); a gzip stream must be able to hold it at deflate's
/// maximum ratio, must actually hold it, and must be intact to its end (CRC checked, at most
/// 16 MiB of decompressed bytes after the data). Bad input gives a [`DataError::Nifti`] naming
/// the file and what was expected; it never panics.
///
/// # Errors
///
/// [`DataError::NotFound`] for a missing file, [`DataError::Io`] when it cannot be read,
/// [`DataError::Nifti`] when its content is not a supported, intact NIfTI volume.
pub fn read_nifti(path: &Path) -> Result<Volume, DataError> {
    let file = File::open(path).map_err(|e| DataError::opening(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut file = BufReader::new(file);
    let mut head = [0u8; 2];
    let n = fill(&mut file, &mut head).map_err(|e| DataError::io(path, e))?;
    let reader = (&head[..n]).chain(file);
    if head[..n] == [0x1f, 0x8b] {
        read_stream(MultiGzDecoder::new(reader), path, len, true)
    } else {
        read_stream(reader, path, len, false)
    }
}

/// Read a NIfTI-1 or NIfTI-2 volume from memory (gzip-compressed if it starts with `1f 8b`);
/// `name` is used in error messages and as [`Volume::path`]. The limits are those of
/// [`read_nifti`]; truncated or garbage input gives a [`DataError::Nifti`], never a panic.
pub fn read_nifti_bytes(bytes: &[u8], name: &Path) -> Result<Volume, DataError> {
    let len = bytes.len() as u64;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_stream(MultiGzDecoder::new(bytes), name, len, true)
    } else {
        read_stream(bytes, name, len, false)
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Nifti {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Map an error met while reading `what` to a [`DataError`]: content problems (early end,
/// corrupt gzip) become [`DataError::Nifti`], anything else [`DataError::Io`].
fn read_error(path: &Path, gz: bool, what: &str, e: io::Error) -> DataError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => bad(
            path,
            format!(
                "{what}: the {} ends early (truncated file)",
                if gz { "gzip stream" } else { "file" }
            ),
        ),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput if gz => bad(
            path,
            format!("{what}: corrupt gzip stream ({e}); expected an intact .nii.gz"),
        ),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            bad(path, format!("{what}: {e}"))
        }
        _ => DataError::io(path, e),
    }
}

/// Read into `buf` until it is full or the input ends; the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Read a volume from `r` (already decompressed if `gz`); `len` is the size of the file (the
/// compressed size if `gz`).
fn read_stream<R: Read>(mut r: R, path: &Path, len: u64, gz: bool) -> Result<Volume, DataError> {
    let mut buf = [0u8; NIFTI2_HEADER];
    let n = fill(&mut r, &mut buf[..NIFTI1_HEADER])
        .map_err(|e| read_error(path, gz, "reading the header", e))?;
    let which = if gz { "decompressed data" } else { "file" };
    if n == 0 {
        return Err(bad(
            path,
            format!("the {which} is empty; expected a NIfTI-1 or NIfTI-2 header"),
        ));
    }
    if n < NIFTI1_HEADER {
        return Err(bad(
            path,
            format!(
                "the {which} ends after {n} bytes, inside the header (truncated file); expected \
                 at least a 348-byte NIfTI-1 header"
            ),
        ));
    }
    let sizeof_le = i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let sizeof_be = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let (version, big_endian) = match (sizeof_le, sizeof_be) {
        (348, _) => (1, false),
        (_, 348) => (1, true),
        (540, _) => (2, false),
        (_, 540) => (2, true),
        _ => {
            return Err(bad(
                path,
                format!(
                    "sizeof_hdr is {sizeof_le} (little-endian) / {sizeof_be} (big-endian); \
                     expected 348 (NIfTI-1) or 540 (NIfTI-2); not a NIfTI file"
                ),
            ));
        }
    };
    let header = if version == 1 {
        parse_nifti1(&buf[..NIFTI1_HEADER], big_endian).map_err(|e| bad(path, e))?
    } else {
        let m = fill(&mut r, &mut buf[NIFTI1_HEADER..])
            .map_err(|e| read_error(path, gz, "reading the header", e))?;
        if m < NIFTI2_HEADER - NIFTI1_HEADER {
            return Err(bad(
                path,
                format!(
                    "the {which} ends after {} bytes, inside the header (truncated file); \
                     expected a 540-byte NIfTI-2 header",
                    NIFTI1_HEADER + m
                ),
            ));
        }
        parse_nifti2(&buf, big_endian).map_err(|e| bad(path, e))?
    };
    let header = validate(header).map_err(|e| bad(path, e))?;

    // Size checks, before any allocation.
    let shape = dims_text(&header.dims);
    let dt = header.dtype;
    let count = header
        .dims
        .iter()
        .try_fold(1u64, |a, &n| a.checked_mul(n as u64))
        .filter(|&c| c.checked_mul(8).is_some_and(|b| b <= NIFTI_MAX_BYTES))
        .ok_or_else(|| {
            bad(
                path,
                format!(
                    "the header declares a {shape} volume: too large (decoded as f64 it would \
                     need more than the {NIFTI_MAX_BYTES}-byte limit); a corrupt dim field?"
                ),
            )
        })?;
    let nbytes = count * dt.size() as u64;
    let offset = header.vox_offset;
    let end = offset.checked_add(nbytes).ok_or_else(|| {
        bad(
            path,
            format!("vox_offset {offset} plus the data size overflows; a corrupt header?"),
        )
    })?;
    if !gz && end > len {
        return Err(bad(
            path,
            format!(
                "the header declares {shape} {} voxels = {nbytes} bytes at offset {offset}, \
                 but the file is only {len} bytes long (truncated file, or a corrupt \
                 dim/datatype/vox_offset field)",
                dt.name()
            ),
        ));
    }
    if gz
        && end
            > len
                .saturating_mul(DEFLATE_MAX_RATIO)
                .saturating_add(DEFLATE_SLACK)
    {
        return Err(bad(
            path,
            format!(
                "the header declares {shape} {} voxels = {nbytes} bytes at offset {offset}, \
                 more than a {len}-byte gzip stream can hold (corrupt dim/datatype/vox_offset \
                 field?)",
                dt.name()
            ),
        ));
    }

    // Skip extensions up to the data.
    let header_len = if version == 1 {
        NIFTI1_HEADER
    } else {
        NIFTI2_HEADER
    } as u64;
    let skip = offset - header_len;
    let skipped = io::copy(&mut (&mut r).take(skip), &mut io::sink())
        .map_err(|e| read_error(path, gz, "reading the header extensions", e))?;
    if skipped < skip {
        return Err(bad(
            path,
            format!(
                "the {which} ends after {} bytes, before the voxel data at vox_offset {offset} \
                 (truncated file)",
                header_len + skipped
            ),
        ));
    }

    // Decode the voxels as they stream in.
    let count = usize::try_from(count).map_err(|_| {
        bad(
            path,
            format!("the {shape} volume has more voxels than this platform can address"),
        )
    })?;
    let mut data: Vec<f64> = Vec::new();
    data.try_reserve_exact(count).map_err(|_| {
        bad(
            path,
            format!("cannot allocate {} bytes for the {shape} volume", count * 8),
        )
    })?;
    let mut chunk = vec![0u8; CHUNK.min(nbytes as usize)];
    let mut remaining = nbytes as usize;
    while remaining > 0 {
        let k = remaining.min(chunk.len());
        r.read_exact(&mut chunk[..k]).map_err(|e| {
            let what = format!(
                "reading voxel data ({shape} {} = {nbytes} bytes at offset {offset}; {} bytes \
                 read)",
                dt.name(),
                nbytes as usize - remaining
            );
            read_error(path, gz, &what, e)
        })?;
        decode(&chunk[..k], dt, header.big_endian, &mut data);
        remaining -= k;
    }

    // A gzip stream must be intact to its end (this checks its CRC and length).
    if gz {
        let trailing = io::copy(&mut (&mut r).take(MAX_GZIP_TRAILING + 1), &mut io::sink())
            .map_err(|e| read_error(path, gz, "reading the end of the gzip stream", e))?;
        if trailing > MAX_GZIP_TRAILING {
            return Err(bad(
                path,
                format!(
                    "more than {MAX_GZIP_TRAILING} bytes follow the voxel data in the gzip \
                     stream; expected the data to end the file"
                ),
            ));
        }
    }

    Ok(Volume {
        path: path.to_path_buf(),
        version,
        affine: header.affine,
        pixdim: header.pixdim[1..=header.dims.len()].to_vec(),
        dims: header.dims,
        datatype: dt.name().to_string(),
        big_endian: header.big_endian,
        scl_slope: header.scl_slope,
        scl_inter: header.scl_inter,
        qform_code: header.qform_code,
        sform_code: header.sform_code,
        xyzt_units: header.xyzt_units,
        data,
    })
}

fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// The supported on-disk datatypes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Dtype {
    fn from_code(code: i32) -> Result<Self, String> {
        let unsupported = match code {
            2 => return Ok(Dtype::U8),
            256 => return Ok(Dtype::I8),
            4 => return Ok(Dtype::I16),
            512 => return Ok(Dtype::U16),
            8 => return Ok(Dtype::I32),
            768 => return Ok(Dtype::U32),
            1024 => return Ok(Dtype::I64),
            1280 => return Ok(Dtype::U64),
            16 => return Ok(Dtype::F32),
            64 => return Ok(Dtype::F64),
            1 => "binary (1 bit per voxel)",
            32 => "complex64",
            128 => "RGB24",
            1536 => "float128",
            1792 => "complex128",
            2048 => "complex256",
            2304 => "RGBA32",
            _ => {
                return Err(format!(
                    "datatype code {code} is not a NIfTI datatype; expected uint8, int8, int16, \
                     uint16, int32, uint32, int64, uint64, float32 or float64"
                ));
            }
        };
        Err(format!(
            "datatype {code} ({unsupported}) is not supported; expected a real scalar type: \
             uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32 or float64"
        ))
    }

    fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::U16 => "uint16",
            Dtype::I32 => "int32",
            Dtype::U32 => "uint32",
            Dtype::I64 => "int64",
            Dtype::U64 => "uint64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// Append the values of `bytes` (a whole number of elements) to `out`.
fn decode(bytes: &[u8], dt: Dtype, big: bool, out: &mut Vec<f64>) {
    macro_rules! conv {
        ($t:ty, $n:literal) => {{
            let (elems, _) = bytes.as_chunks::<$n>();
            if big {
                out.extend(elems.iter().map(|e| <$t>::from_be_bytes(*e) as f64));
            } else {
                out.extend(elems.iter().map(|e| <$t>::from_le_bytes(*e) as f64));
            }
        }};
    }
    match dt {
        Dtype::U8 => out.extend(bytes.iter().map(|&b| f64::from(b))),
        Dtype::I8 => out.extend(bytes.iter().map(|&b| f64::from(b as i8))),
        Dtype::I16 => conv!(i16, 2),
        Dtype::U16 => conv!(u16, 2),
        Dtype::I32 => conv!(i32, 4),
        Dtype::U32 => conv!(u32, 4),
        Dtype::I64 => conv!(i64, 8),
        Dtype::U64 => conv!(u64, 8),
        Dtype::F32 => conv!(f32, 4),
        Dtype::F64 => conv!(f64, 8),
    }
}

/// The header fields this module uses, as read (before validation).
struct RawHeader {
    version: u8,
    big_endian: bool,
    dim: [i64; 8],
    pixdim: [f64; 8],
    datatype: i32,
    /// `None` when the NIfTI-1 `f32` value is not a finite number.
    vox_offset: Option<i64>,
    scl_slope: f64,
    scl_inter: f64,
    qform_code: i32,
    sform_code: i32,
    quatern: [f64; 3],
    qoffset: [f64; 3],
    srow: [[f64; 4]; 3],
    xyzt_units: i32,
}

/// A validated header.
struct Header {
    big_endian: bool,
    dims: Vec<usize>,
    pixdim: [f64; 8],
    dtype: Dtype,
    vox_offset: u64,
    scl_slope: f64,
    scl_inter: f64,
    qform_code: i32,
    sform_code: i32,
    affine: [[f64; 4]; 4],
    xyzt_units: (String, String),
}

/// Parse a 348-byte NIfTI-1 header with the `nifti` crate; `big_endian` is the byte order
/// that `sizeof_hdr` showed.
fn parse_nifti1(b: &[u8], big_endian: bool) -> Result<RawHeader, String> {
    check_magic(&b[344..348], b"n+1\0", b"ni1\0", "NIfTI-1")?;
    let dim0 = if big_endian {
        i16::from_be_bytes([b[40], b[41]])
    } else {
        i16::from_le_bytes([b[40], b[41]])
    };
    if !(1..=7).contains(&dim0) {
        return Err(format!(
            "dim[0] is {dim0}; expected the number of dimensions, 1 to 7 (corrupt header?)"
        ));
    }
    let h = ::nifti::NiftiHeader::from_reader(b)
        .map_err(|e| format!("NIfTI-1 header not readable: {e}"))?;
    if (h.endianness == ::nifti::Endianness::Big) != big_endian {
        return Err("the byte order of sizeof_hdr and of dim[0] disagree (corrupt header?)".into());
    }
    let f = |v: [f32; 4]| v.map(f64::from);
    Ok(RawHeader {
        version: 1,
        big_endian,
        // NIfTI-1 dims are signed 16-bit; the crate stores them as u16.
        dim: h.dim.map(|d| i64::from(d as i16)),
        pixdim: h.pixdim.map(f64::from),
        datatype: i32::from(h.datatype),
        vox_offset: h
            .vox_offset
            .is_finite()
            // Truncated like nibabel's int(vox_offset); saturates for huge values.
            .then_some(h.vox_offset as i64),
        scl_slope: f64::from(h.scl_slope),
        scl_inter: f64::from(h.scl_inter),
        qform_code: i32::from(h.qform_code),
        sform_code: i32::from(h.sform_code),
        quatern: [h.quatern_b, h.quatern_c, h.quatern_d].map(f64::from),
        qoffset: [h.quatern_x, h.quatern_y, h.quatern_z].map(f64::from),
        srow: [f(h.srow_x), f(h.srow_y), f(h.srow_z)],
        xyzt_units: i32::from(h.xyzt_units),
    })
}

fn check_magic(magic: &[u8], single: &[u8], pair: &[u8], version: &str) -> Result<(), String> {
    if magic == single {
        Ok(())
    } else if magic == pair {
        Err(format!(
            "magic '{}' marks a {version} .hdr/.img pair, which is not supported; expected a \
             single-file .nii (magic '{}')",
            String::from_utf8_lossy(&pair[..3]),
            String::from_utf8_lossy(&single[..3]),
        ))
    } else {
        Err(format!(
            "magic is {:?}; expected {:?} (single-file {version})",
            String::from_utf8_lossy(magic),
            String::from_utf8_lossy(single),
        ))
    }
}

/// Parse a 540-byte NIfTI-2 header (field offsets of `nifti2.h`).
fn parse_nifti2(b: &[u8; NIFTI2_HEADER], big_endian: bool) -> Result<RawHeader, String> {
    check_magic(&b[4..8], b"n+2\0", b"ni2\0", "NIfTI-2")?;
    let eol = &b[8..12];
    if eol != b"\r\n\x1a\n" && eol != [0, 0, 0, 0] {
        return Err(format!(
            "the magic's end-of-line check bytes are {eol:?}, expected [13, 10, 26, 10]; the \
             file was probably corrupted by a text-mode (EOL) conversion"
        ));
    }
    let arr = |off: usize| -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[off..off + 8]);
        a
    };
    let i16_at = |off: usize| {
        let a = [b[off], b[off + 1]];
        if big_endian {
            i16::from_be_bytes(a)
        } else {
            i16::from_le_bytes(a)
        }
    };
    let i32_at = |off: usize| {
        let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
        if big_endian {
            i32::from_be_bytes(a)
        } else {
            i32::from_le_bytes(a)
        }
    };
    let i64_at = |off: usize| {
        if big_endian {
            i64::from_be_bytes(arr(off))
        } else {
            i64::from_le_bytes(arr(off))
        }
    };
    let f64_at = |off: usize| {
        if big_endian {
            f64::from_be_bytes(arr(off))
        } else {
            f64::from_le_bytes(arr(off))
        }
    };
    let dim = std::array::from_fn(|i| i64_at(16 + 8 * i));
    let pixdim = std::array::from_fn(|i| f64_at(104 + 8 * i));
    let srow = |off: usize| std::array::from_fn(|i| f64_at(off + 8 * i));
    Ok(RawHeader {
        version: 2,
        big_endian,
        dim,
        pixdim,
        datatype: i32::from(i16_at(12)),
        vox_offset: Some(i64_at(168)),
        scl_slope: f64_at(176),
        scl_inter: f64_at(184),
        qform_code: i32_at(344),
        sform_code: i32_at(348),
        quatern: [f64_at(352), f64_at(360), f64_at(368)],
        qoffset: [f64_at(376), f64_at(384), f64_at(392)],
        srow: [srow(400), srow(432), srow(464)],
        xyzt_units: i32_at(500),
    })
}

/// Check a raw header and apply nibabel's load-time fixes (see the module documentation).
fn validate(h: RawHeader) -> Result<Header, String> {
    let ndim = h.dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(format!(
            "dim[0] is {ndim}; expected the number of dimensions, 1 to 7 (corrupt header?)"
        ));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for (i, &d) in h.dim.iter().enumerate().skip(1).take(ndim as usize) {
        match usize::try_from(d) {
            Ok(n) if n >= 1 => dims.push(n),
            _ => {
                return Err(format!(
                    "dim[{i}] is {d}; expected every used dimension (dim[1..={ndim}]) to be at \
                     least 1"
                ));
            }
        }
    }
    let dtype = Dtype::from_code(h.datatype)?;
    let min_offset = if h.version == 1 { 352 } else { 544 };
    let vox_offset = match h.vox_offset {
        Some(o) if o >= min_offset => o as u64,
        other => {
            return Err(format!(
                "vox_offset is {}; expected at least {min_offset} for a single-file NIfTI-{} \
                 (the data follows the header)",
                other.map_or_else(|| "not a number".to_string(), |o| o.to_string()),
                h.version
            ));
        }
    };
    if h.scl_slope != 0.0 && h.scl_slope.is_finite() && !h.scl_inter.is_finite() {
        return Err(format!(
            "scl_slope is {} but scl_inter is {}; expected a finite intercept with a valid slope",
            h.scl_slope, h.scl_inter
        ));
    }

    let mut pixdim = h.pixdim;
    for p in &mut pixdim[1..=3] {
        if *p == 0.0 {
            *p = 1.0;
        } else if *p < 0.0 {
            *p = -*p;
        }
    }
    if pixdim[0] != 1.0 && pixdim[0] != -1.0 {
        pixdim[0] = 1.0;
    }
    let code = |c: i32| if (0..=5).contains(&c) { c } else { 0 };
    let (qform_code, sform_code) = (code(h.qform_code), code(h.sform_code));

    let affine = if sform_code != 0 {
        let s = h.srow;
        [s[0], s[1], s[2], [0.0, 0.0, 0.0, 1.0]]
    } else if qform_code != 0 {
        let eps = if h.version == 1 {
            f64::from(f32::EPSILON)
        } else {
            f64::EPSILON
        };
        qform_affine(h.quatern, h.qoffset, &pixdim, 3.0 * eps)?
    } else {
        base_affine(&dims, &pixdim)
    };

    // nibabel: the spatial code is units % 8, the temporal code the rest.
    let xyz = h.xyzt_units.rem_euclid(8);
    let xyzt_units = (unit_label(xyz), unit_label(h.xyzt_units - xyz));

    Ok(Header {
        big_endian: h.big_endian,
        dims,
        pixdim,
        dtype,
        vox_offset,
        scl_slope: h.scl_slope,
        scl_inter: h.scl_inter,
        qform_code,
        sform_code,
        affine,
        xyzt_units,
    })
}

fn unit_label(code: i32) -> String {
    match code {
        0 => "unknown",
        1 => "meter",
        2 => "mm",
        3 => "micron",
        8 => "sec",
        16 => "msec",
        24 => "usec",
        32 => "hz",
        40 => "ppm",
        48 => "rads",
        other => return format!("code {other}"),
    }
    .to_string()
}

/// nibabel's `get_qform`: rotation from the quaternion `(w, b, c, d)` (w filled in as
/// `sqrt(1 − b² − c² − d²)`), times the voxel sizes with z multiplied by qfac, plus the offsets.
fn qform_affine(
    bcd: [f64; 3],
    offset: [f64; 3],
    pixdim: &[f64; 8],
    w2_threshold: f64,
) -> Result<[[f64; 4]; 4], String> {
    let [x, y, z] = bcd;
    let w2 = 1.0 - (x * x + y * y + z * z);
    let w = if w2.abs() < w2_threshold {
        0.0
    } else if w2 < 0.0 {
        return Err(format!(
            "qform quaternion (b, c, d) = ({x}, {y}, {z}) has b² + c² + d² > 1; expected the \
             vector part of a unit quaternion"
        ));
    } else {
        w2.sqrt()
    };
    let nq = w * w + x * x + y * y + z * z;
    let r = if nq < f64::EPSILON {
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    } else {
        let s = 2.0 / nq;
        let (xs, ys, zs) = (x * s, y * s, z * s);
        let (wx, wy, wz) = (w * xs, w * ys, w * zs);
        let (xx, xy, xz) = (x * xs, x * ys, x * zs);
        let (yy, yz, zz) = (y * ys, y * zs, z * zs);
        [
            [1.0 - (yy + zz), xy - wz, xz + wy],
            [xy + wz, 1.0 - (xx + zz), yz - wx],
            [xz - wy, yz + wx, 1.0 - (xx + yy)],
        ]
    };
    let vox = [pixdim[1], pixdim[2], pixdim[3] * pixdim[0]];
    let mut a = [[0.0; 4]; 4];
    for i in 0..3 {
        for j in 0..3 {
            a[i][j] = r[i][j] * vox[j];
        }
        a[i][3] = offset[i];
    }
    a[3][3] = 1.0;
    Ok(a)
}

/// nibabel's `get_base_affine`: zooms on the diagonal (x negated), origin at the centre of the
/// first three axes (missing axes count as size 1, zoom 1).
fn base_affine(dims: &[usize], pixdim: &[f64; 8]) -> [[f64; 4]; 4] {
    let mut a = [[0.0; 4]; 4];
    for i in 0..3 {
        let (n, zoom) = match dims.get(i) {
            Some(&n) => (n as f64, pixdim[i + 1]),
            None => (1.0, 1.0),
        };
        let zoom = if i == 0 { -zoom } else { zoom };
        a[i][i] = zoom;
        a[i][3] = -((n - 1.0) / 2.0) * zoom;
    }
    a[3][3] = 1.0;
    a
}
