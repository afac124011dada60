//! Typed stored pixel values and `.npy` writing.

/// A DICOM image's stored pixel values (before the modality LUT), in frames × rows × cols ×
/// samples order, typed like pydicom's `pixel_array`.
///
/// The variant follows Bits Allocated and Pixel Representation: 1-bit → `U8` (0/1, unpacked),
/// 8 → `U8`/`I8`, 16 → `U16`/`I16`, 32 → `U32`/`I32`; Float Pixel Data → `F32`, Double Float
/// Pixel Data → `F64`. Signed samples whose Bits Stored is below Bits Allocated are
/// sign-extended from bit `bits_stored - 1`, as pydicom does.
#[derive(Clone, Debug, PartialEq)]
pub enum StoredValues {
    /// Unsigned 8-bit (also unpacked 1-bit) samples.
    U8(Vec<u8>),
    /// Signed 8-bit samples.
    I8(Vec<i8>),
    /// Unsigned 16-bit samples.
    U16(Vec<u16>),
    /// Signed 16-bit samples.
    I16(Vec<i16>),
    /// Unsigned 32-bit samples.
    U32(Vec<u32>),
    /// Signed 32-bit samples.
    I32(Vec<i32>),
    /// 32-bit float samples (Float Pixel Data).
    F32(Vec<f32>),
    /// 64-bit float samples (Double Float Pixel Data).
    F64(Vec<f64>),
}

impl StoredValues {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            StoredValues::U8(v) => v.len(),
            StoredValues::I8(v) => v.len(),
            StoredValues::U16(v) => v.len(),
            StoredValues::I16(v) => v.len(),
            StoredValues::U32(v) => v.len(),
            StoredValues::I32(v) => v.len(),
            StoredValues::F32(v) => v.len(),
            StoredValues::F64(v) => v.len(),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numpy dtype descriptor of these values (`|u1`, `|i1`, `<u2`, `<i2`, `<u4`, `<i4`,
    /// `<f4`, `<f8`).
    pub fn npy_descr(&self) -> &'static str {
        match self {
            StoredValues::U8(_) => "|u1",
            StoredValues::I8(_) => "|i1",
            StoredValues::U16(_) => "<u2",
            StoredValues::I16(_) => "<i2",
            StoredValues::U32(_) => "<u4",
            StoredValues::I32(_) => "<i4",
            StoredValues::F32(_) => "<f4",
            StoredValues::F64(_) => "<f8",
        }
    }

    /// Sample `i` as `f64` (exact for every variant); `None` past the end.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        Some(match self {
            StoredValues::U8(v) => f64::from(*v.get(i)?),
            StoredValues::I8(v) => f64::from(*v.get(i)?),
            StoredValues::U16(v) => f64::from(*v.get(i)?),
            StoredValues::I16(v) => f64::from(*v.get(i)?),
            StoredValues::U32(v) => f64::from(*v.get(i)?),
            StoredValues::I32(v) => f64::from(*v.get(i)?),
            StoredValues::F32(v) => f64::from(*v.get(i)?),
            StoredValues::F64(v) => *v.get(i)?,
        })
    }

    /// The samples in `range` as `f64`.
    pub(crate) fn slice_f64(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        fn conv<T: Copy + Into<f64>>(v: &[T], r: std::ops::Range<usize>) -> Vec<f64> {
            v.get(r).unwrap_or(&[]).iter().map(|&x| x.into()).collect()
        }
        match self {
            StoredValues::U8(v) => conv(v, range),
            StoredValues::I8(v) => conv(v, range),
            StoredValues::U16(v) => conv(v, range),
            StoredValues::I16(v) => conv(v, range),
            StoredValues::U32(v) => conv(v, range),
            StoredValues::I32(v) => conv(v, range),
            StoredValues::F32(v) => conv(v, range),
            StoredValues::F64(v) => conv(v, range),
        }
    }

    /// The samples as little-endian bytes.
    pub(crate) fn le_bytes(&self) -> Vec<u8> {
        fn bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            let mut out = Vec::with_capacity(v.len() * N);
            for &x in v {
                out.extend_from_slice(&f(x));
            }
            out
        }
        match self {
            StoredValues::U8(v) => v.clone(),
            StoredValues::I8(v) => bytes(v, i8::to_le_bytes),
            StoredValues::U16(v) => bytes(v, u16::to_le_bytes),
            StoredValues::I16(v) => bytes(v, i16::to_le_bytes),
            StoredValues::U32(v) => bytes(v, u32::to_le_bytes),
            StoredValues::I32(v) => bytes(v, i32::to_le_bytes),
            StoredValues::F32(v) => bytes(v, f32::to_le_bytes),
            StoredValues::F64(v) => bytes(v, f64::to_le_bytes),
        }
    }
}

/// A `.npy` file (format version 1.0, C order) holding `data` (already little-endian bytes)
/// with numpy dtype `descr` and `shape`.
pub(crate) fn npy_file(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [one] => format!("({one},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces and ended by
    // a newline to a multiple of 64 bytes, as numpy writes it.
    let unpadded = 10 + header.len() + 1;
    let padded = unpadded.div_ceil(64) * 64;
    header.push_str(&" ".repeat(padded - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    // The header of a v1.0 file is well under 64 KiB: a dtype and a few dimensions.
    let hlen = u16::try_from(header.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}
