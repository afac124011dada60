//! Pixel data → [`StoredValues`]: native unpacking, RLE, and the codec adapters.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dicom_core::{DicomValue, PrimitiveValue};
use dicom_dictionary_std::tags;
use dicom_encoding::adapters::PixelDataObject;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_object::DefaultDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rayon::prelude::*;

use super::StoredValues;

/// The header fields that shape the pixel data.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub frames: usize,
    pub samples: usize,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// Planar Configuration 1 (colour-by-plane) for native data.
    pub planar: bool,
    pub photometric: String,
}

impl Layout {
    pub fn frame_samples(&self) -> usize {
        self.rows * self.cols * self.samples
    }

    pub fn total_samples(&self) -> usize {
        self.frame_samples() * self.frames
    }
}

/// Which element holds the pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PixelElement {
    /// Pixel Data (7FE0,0010).
    Int,
    /// Float Pixel Data (7FE0,0008).
    Float,
    /// Double Float Pixel Data (7FE0,0009).
    Double,
}

const JPEG_FAMILY: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const JPEG_2000: &[&str] = &["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"];
const JPEG_LS: &[&str] = &["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"];
const RLE: &str = "1.2.840.10008.1.2.5";
const ENCAPSULATED_UNCOMPRESSED: &str = "1.2.840.10008.1.2.1.98";

/// Decode every frame of the object's pixel data into stored values. Errors are plain
/// messages; the caller wraps them with the file name.
pub(crate) fn decode(
    obj: &DefaultDicomObject,
    ts: &str,
    layout: &Layout,
    which: PixelElement,
) -> Result<StoredValues, String> {
    let tag = match which {
        PixelElement::Int => tags::PIXEL_DATA,
        PixelElement::Float => tags::FLOAT_PIXEL_DATA,
        PixelElement::Double => tags::DOUBLE_FLOAT_PIXEL_DATA,
    };
    let elem = obj
        .get(tag)
        .ok_or_else(|| "the Pixel Data element disappeared".to_string())?;
    match elem.value() {
        DicomValue::Primitive(p) => {
            let bytes = le_bytes(p).ok_or_else(|| {
                format!(
                    "Pixel Data holds {} values, expected binary data (OB/OW/OF/OD)",
                    p.value_type_name()
                )
            })?;
            native(&bytes, layout, which, true)
        }
        DicomValue::PixelSequence(seq) => {
            if which != PixelElement::Int {
                return Err("float pixel data cannot be encapsulated".to_string());
            }
            encapsulated(obj, ts, layout, seq.offset_table(), seq.fragments())
        }
        DicomValue::Sequence(_) => {
            Err("Pixel Data is a sequence of items, expected pixel values".to_string())
        }
    }
}

trait ValueTypeName {
    fn value_type_name(&self) -> &'static str;
}

impl ValueTypeName for PrimitiveValue {
    fn value_type_name(&self) -> &'static str {
        match self {
            PrimitiveValue::Empty => "no",
            PrimitiveValue::Strs(_) | PrimitiveValue::Str(_) => "text",
            PrimitiveValue::Tags(_) => "tag",
            PrimitiveValue::Date(_) | PrimitiveValue::DateTime(_) | PrimitiveValue::Time(_) => {
                "date/time"
            }
            _ => "numeric",
        }
    }
}

/// The value's bytes in little-endian order (the parser already swapped big-endian words).
fn le_bytes(p: &PrimitiveValue) -> Option<Cow<'_, [u8]>> {
    fn cat<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Cow<'static, [u8]> {
        let mut out = Vec::with_capacity(v.len() * N);
        for &x in v {
            out.extend_from_slice(&f(x));
        }
        Cow::Owned(out)
    }
    Some(match p {
        PrimitiveValue::Empty => Cow::Borrowed(&[][..]),
        PrimitiveValue::U8(v) => Cow::Borrowed(&v[..]),
        PrimitiveValue::U16(v) => cat(v, u16::to_le_bytes),
        PrimitiveValue::I16(v) => cat(v, i16::to_le_bytes),
        PrimitiveValue::U32(v) => cat(v, u32::to_le_bytes),
        PrimitiveValue::I32(v) => cat(v, i32::to_le_bytes),
        PrimitiveValue::U64(v) => cat(v, u64::to_le_bytes),
        PrimitiveValue::I64(v) => cat(v, i64::to_le_bytes),
        PrimitiveValue::F32(v) => cat(v, f32::to_le_bytes),
        PrimitiveValue::F64(v) => cat(v, f64::to_le_bytes),
        _ => return None,
    })
}

/// Native (uncompressed) little-endian bytes → stored values. `colour_fixup` converts
/// planar configuration and YBR_FULL to interleaved RGB (not wanted after codecs, which do
/// that themselves).
fn native(
    bytes: &[u8],
    l: &Layout,
    which: PixelElement,
    colour_fixup: bool,
) -> Result<StoredValues, String> {
    let n = l.total_samples();
    let stored = if l.bits_allocated == 1 {
        let need = n.div_ceil(8);
        if bytes.len() < need {
            return Err(short(bytes.len(), need));
        }
        // Bits are packed little-endian (first pixel in bit 0) across frame boundaries.
        StoredValues::U8((0..n).map(|i| (bytes[i / 8] >> (i % 8)) & 1).collect())
    } else {
        let bps = usize::from(l.bits_allocated / 8);
        let need = n * bps;
        if bytes.len() < need {
            return Err(short(bytes.len(), need));
        }
        let bytes = &bytes[..need];
        match (which, l.bits_allocated, l.signed) {
            (PixelElement::Float, 32, _) => StoredValues::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            (PixelElement::Double, 64, _) => StoredValues::F64(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            (PixelElement::Int, 8, false) => StoredValues::U8(bytes.to_vec()),
            (PixelElement::Int, 8, true) => {
                let s = 8 - l.bits_stored;
                StoredValues::I8(bytes.iter().map(|&b| ((b << s) as i8) >> s).collect())
            }
            (PixelElement::Int, 16, false) => StoredValues::U16(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            (PixelElement::Int, 16, true) => {
                let s = 16 - l.bits_stored;
                StoredValues::I16(
                    bytes
                        .chunks_exact(2)
                        .map(|c| ((u16::from_le_bytes([c[0], c[1]]) << s) as i16) >> s)
                        .collect(),
                )
            }
            (PixelElement::Int, 32, false) => StoredValues::U32(
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            (PixelElement::Int, 32, true) => {
                let s = 32 - l.bits_stored;
                StoredValues::I32(
                    bytes
                        .chunks_exact(4)
                        .map(|c| ((u32::from_le_bytes([c[0], c[1], c[2], c[3]]) << s) as i32) >> s)
                        .collect(),
                )
            }
            (w, b, _) => {
                return Err(format!(
                    "Bits Allocated {b} is not supported for {} (expected 1, 8, 16 or 32 for Pixel Data, 32 for Float Pixel Data, 64 for Double Float Pixel Data)",
                    match w {
                        PixelElement::Int => "Pixel Data",
                        PixelElement::Float => "Float Pixel Data",
                        PixelElement::Double => "Double Float Pixel Data",
                    }
                ));
            }
        }
    };
    if !colour_fixup || l.samples != 3 {
        return Ok(stored);
    }
    let stored = if l.planar {
        deplanarize(stored, l)
    } else {
        stored
    };
    Ok(match (l.photometric.as_str(), stored) {
        ("YBR_FULL", StoredValues::U8(v)) => StoredValues::U8(ybr_full_to_rgb(&v)),
        (_, s) => s,
    })
}

fn short(have: usize, need: usize) -> String {
    format!(
        "Pixel Data holds {have} bytes but Rows × Columns × Samples × Frames × bytes per sample needs {need} (truncated file or wrong header)"
    )
}

/// Colour-by-plane (RRR…GGG…BBB… per frame) → interleaved (RGBRGB…).
fn deplanarize(s: StoredValues, l: &Layout) -> StoredValues {
    fn inter<T: Copy>(v: Vec<T>, frame_px: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len());
        for frame in v.chunks_exact(frame_px * 3) {
            for i in 0..frame_px {
                out.push(frame[i]);
                out.push(frame[frame_px + i]);
                out.push(frame[2 * frame_px + i]);
            }
        }
        out
    }
    let px = l.rows * l.cols;
    match s {
        StoredValues::U8(v) => StoredValues::U8(inter(v, px)),
        StoredValues::I8(v) => StoredValues::I8(inter(v, px)),
        StoredValues::U16(v) => StoredValues::U16(inter(v, px)),
        StoredValues::I16(v) => StoredValues::I16(inter(v, px)),
        StoredValues::U32(v) => StoredValues::U32(inter(v, px)),
        StoredValues::I32(v) => StoredValues::I32(inter(v, px)),
        StoredValues::F32(v) => StoredValues::F32(inter(v, px)),
        StoredValues::F64(v) => StoredValues::F64(inter(v, px)),
    }
}

/// YBR_FULL (ITU-R BT.601 full range, PS3.3 C.7.6.3.1.2) → RGB, as pydicom's
/// `convert_color_space` does for 8-bit data.
pub(crate) fn ybr_full_to_rgb(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for px in v.chunks_exact(3) {
        let y = f64::from(px[0]);
        let cb = f64::from(px[1]) - 128.0;
        let cr = f64::from(px[2]) - 128.0;
        let r = y + 1.402 * cr;
        let g = y - 0.344_136 * cb - 0.714_136 * cr;
        let b = y + 1.772 * cb;
        for c in [r, g, b] {
            out.push(c.round().clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// Encapsulated pixel data: one decoded frame after another.
fn encapsulated(
    obj: &DefaultDicomObject,
    ts: &str,
    l: &Layout,
    offsets: &[u32],
    fragments: &[Vec<u8>],
) -> Result<StoredValues, String> {
    if l.bits_allocated != 8 && l.bits_allocated != 16 {
        return Err(format!(
            "Bits Allocated {} with compressed transfer syntax {ts} (expected 8 or 16)",
            l.bits_allocated
        ));
    }
    let bps = usize::from(l.bits_allocated / 8);
    let frame_bytes = l.frame_samples() * bps;
    let mut all = Vec::new();
    all.try_reserve_exact(frame_bytes * l.frames)
        .map_err(|e| format!("cannot allocate the decoded pixel buffer: {e}"))?;
    if ts == RLE {
        if fragments.len() < l.frames {
            return Err(format!(
                "RLE pixel data has {} fragments for {} frames (expected one fragment per frame)",
                fragments.len(),
                l.frames
            ));
        }
        per_frame(&mut all, l.frames, frame_bytes, |f| {
            let mut out = Vec::new();
            super::rle::decode_frame(&fragments[f], l, &mut out)?;
            Ok(out)
        })?;
        // RLE keeps the photometric interpretation (YBR_FULL stays YBR): convert like native.
        return native(
            &all,
            &Layout {
                planar: false,
                ..l.clone()
            },
            PixelElement::Int,
            true,
        );
    }
    if ts == ENCAPSULATED_UNCOMPRESSED {
        for frag in fragments {
            all.extend_from_slice(frag);
        }
        return native(&all, l, PixelElement::Int, true);
    }
    if ts == JPEG_EXTENDED && l.bits_stored > 8 {
        // 12-bit lossy JPEG: jpeg-decoder reads 8-bit DCT only, so it is decoded here.
        if l.samples != 1 {
            return Err(format!(
                "JPEG Extended ({ts}) colour images with {} bits per sample are not supported (grey only)",
                l.bits_stored
            ));
        }
        per_frame(&mut all, l.frames, frame_bytes, |frame| {
            let data = frame_data(offsets, fragments, l.frames, frame)?;
            let px = super::jpeg12::decode_grey(&data, l.rows, l.cols)?;
            Ok(px.iter().flat_map(|v| v.to_le_bytes()).collect())
        })?;
        return native(&all, l, PixelElement::Int, false);
    }
    if !JPEG_FAMILY.contains(&ts) && !JPEG_2000.contains(&ts) && !JPEG_LS.contains(&ts) {
        return Err(format!(
            "transfer syntax {ts} ({}) has no decoder in this build (supported: native, deflated, RLE, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000)",
            ts_name(ts)
        ));
    }
    let Some(syntax) = TransferSyntaxRegistry.get(ts) else {
        return Err(format!("unknown transfer syntax {ts}"));
    };
    let Codec::EncapsulatedPixelData(Some(reader), _) = syntax.codec() else {
        return Err(format!(
            "transfer syntax {ts} ({}) has no pixel data decoder in this build",
            syntax.name()
        ));
    };
    if JPEG_FAMILY.contains(&ts) {
        // jpeg-decoder's adapter copies the decoded image into a frame-sized buffer and
        // panics if the stream is bigger than the header says: check the JPEG frame header.
        for frame in 0..l.frames {
            let Ok(data) = frame_data(offsets, fragments, l.frames, frame) else {
                continue;
            };
            if let Some((precision, h, w, comps)) = super::jpeg12::sof_info(&data) {
                let want_bytes = if precision > 8 { 2 } else { 1 };
                if (h, w, usize::from(comps)) != (l.rows, l.cols, l.samples) || want_bytes != bps {
                    return Err(format!(
                        "frame {frame}: the JPEG stream is {w}×{h} with {comps} component(s) of {precision} bits, but the header says {}×{} with {} sample(s) of {} bits allocated",
                        l.cols, l.rows, l.samples, l.bits_allocated
                    ));
                }
            }
        }
    }
    if JPEG_2000.contains(&ts) {
        // OpenJPEG decodes whatever size the codestream's SIZ segment claims (a corrupt one can
        // keep it busy for minutes) and the adapter panics on a component count it did not
        // expect: check SIZ against the DICOM header first.
        for frame in 0..l.frames {
            // Fragments that cannot be told apart here are left to the adapter's own logic.
            if let Ok(data) = frame_data(offsets, fragments, l.frames, frame) {
                check_j2k_siz(&data, l).map_err(|e| format!("frame {frame}: {e}"))?;
            }
        }
    }
    let src: &(dyn PixelDataObject + Sync) = obj;
    per_frame(&mut all, l.frames, frame_bytes, |frame| {
        let frame_u32 = u32::try_from(frame).map_err(|_| "too many frames".to_string())?;
        let mut out = Vec::new();
        // The codec crates are third-party code fed with untrusted bytes: a panic in them
        // becomes an error here instead of unwinding into the caller.
        match catch_unwind(AssertUnwindSafe(|| {
            reader.decode_frame(src, frame_u32, &mut out)
        })) {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(_) => Err(format!(
                "the {} decoder failed on this data (corrupt stream)",
                syntax.name()
            )),
        }
    })?;
    // Codecs output interleaved samples, colour already converted to RGB where the codestream
    // says so (JPEG YCbCr, JPEG 2000 multi-component transform).
    native(&all, l, PixelElement::Int, false)
}

/// Decode `frames` frames with `decode_one` — in parallel, frames being independent — and
/// append them in order to `all`, checking each is `frame_bytes` long. The first failing
/// frame (in frame order) gives the error.
fn per_frame(
    all: &mut Vec<u8>,
    frames: usize,
    frame_bytes: usize,
    decode_one: impl Fn(usize) -> Result<Vec<u8>, String> + Sync,
) -> Result<(), String> {
    let check = |frame: usize| -> Result<Vec<u8>, String> {
        let out = decode_one(frame).map_err(|e| format!("frame {frame}: {e}"))?;
        if out.len() != frame_bytes {
            return Err(format!(
                "frame {frame} decoded to {} bytes, expected {frame_bytes}",
                out.len()
            ));
        }
        Ok(out)
    };
    if frames == 1 {
        all.extend_from_slice(&check(0)?);
        return Ok(());
    }
    let decoded: Vec<Vec<u8>> = (0..frames)
        .into_par_iter()
        .map(check)
        .collect::<Result<_, _>>()?;
    for f in decoded {
        all.extend_from_slice(&f);
    }
    Ok(())
}

/// Check a JPEG 2000 codestream's image and tile size (SIZ, T.800 A.5.1) against the header.
fn check_j2k_siz(data: &[u8], l: &Layout) -> Result<(), String> {
    // A JP2 file (not allowed by DICOM, but written by some) wraps the codestream in a box.
    let cs = if data.starts_with(&[0xFF, 0x4F]) {
        data
    } else {
        let at = data
            .windows(4)
            .position(|w| w == b"jp2c")
            .ok_or_else(|| "not a JPEG 2000 codestream (no SOC marker)".to_string())?;
        &data[at + 4..]
    };
    let be32 = |i: usize| -> Option<u64> {
        Some(u64::from(u32::from_be_bytes(
            cs.get(i..i + 4)?.try_into().ok()?,
        )))
    };
    let be16 = |i: usize| -> Option<u64> {
        Some(u64::from(u16::from_be_bytes(
            cs.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    if cs.get(0..4) != Some(&[0xFF, 0x4F, 0xFF, 0x51][..]) {
        return Err("the JPEG 2000 codestream does not start with SOC and SIZ".to_string());
    }
    let truncated = || "truncated JPEG 2000 SIZ segment".to_string();
    // Offsets from the start of the codestream: SIZ marker at 2, Lsiz at 4, Rsiz at 6.
    let (x, y, x0, y0) = (
        be32(8).ok_or_else(truncated)?,
        be32(12).ok_or_else(truncated)?,
        be32(16).ok_or_else(truncated)?,
        be32(20).ok_or_else(truncated)?,
    );
    let (xt, yt, xt0, yt0) = (
        be32(24).ok_or_else(truncated)?,
        be32(28).ok_or_else(truncated)?,
        be32(32).ok_or_else(truncated)?,
        be32(36).ok_or_else(truncated)?,
    );
    let comps = be16(40).ok_or_else(truncated)?;
    let (w, h) = (x.saturating_sub(x0), y.saturating_sub(y0));
    if (w, h, comps) != (l.cols as u64, l.rows as u64, l.samples as u64) {
        return Err(format!(
            "the JPEG 2000 image is {w}×{h} with {comps} component(s), but the header says {}×{} with {} sample(s)",
            l.cols, l.rows, l.samples
        ));
    }
    if xt == 0 || yt == 0 || xt0 > x0 || yt0 > y0 {
        return Err("invalid JPEG 2000 tile grid".to_string());
    }
    let tiles = (x - xt0).div_ceil(xt) * (y - yt0).div_ceil(yt);
    if tiles > 65535 {
        return Err(format!(
            "the JPEG 2000 image has {tiles} tiles (at most 65535)"
        ));
    }
    for c in 0..comps as usize {
        let at = 42 + 3 * c;
        let bits = cs.get(at).ok_or_else(truncated)? & 0x7F;
        let (dx, dy) = (
            cs.get(at + 1).ok_or_else(truncated)?,
            cs.get(at + 2).ok_or_else(truncated)?,
        );
        if u16::from(bits) + 1 > l.bits_allocated || (*dx, *dy) != (1, 1) {
            return Err(format!(
                "JPEG 2000 component {c} has {} bits and subsampling {dx}×{dy} (expected at most {} bits, no subsampling)",
                bits + 1,
                l.bits_allocated
            ));
        }
    }
    Ok(())
}

/// The compressed bytes of one frame: its fragment when there is one per frame, else the
/// fragments the Basic Offset Table assigns to it, else those from one that starts with a
/// JPEG SOI or JPEG 2000 SOC marker to the next.
fn frame_data<'a>(
    offsets: &[u32],
    fragments: &'a [Vec<u8>],
    frames: usize,
    frame: usize,
) -> Result<Cow<'a, [u8]>, String> {
    if fragments.len() == frames {
        return Ok(Cow::Borrowed(&fragments[frame]));
    }
    if frames == 1 {
        return Ok(Cow::Owned(fragments.concat()));
    }
    let range = if offsets.len() == frames {
        // Offsets count from the first fragment's item tag; each item adds 8 header bytes.
        let (start, end) = (
            u64::from(offsets[frame]),
            offsets.get(frame + 1).map_or(u64::MAX, |&o| u64::from(o)),
        );
        let mut at = 0u64;
        let mut first = None;
        let mut last = 0;
        for (i, f) in fragments.iter().enumerate() {
            if at >= start && at < end {
                first.get_or_insert(i);
                last = i + 1;
            }
            at += 8 + f.len() as u64;
        }
        first.map(|f| f..last)
    } else {
        let starts: Vec<usize> = (0..fragments.len())
            .filter(|&i| {
                fragments[i].starts_with(&[0xFF, 0xD8]) || fragments[i].starts_with(&[0xFF, 0x4F])
            })
            .collect();
        (starts.len() == frames)
            .then(|| starts[frame]..starts.get(frame + 1).copied().unwrap_or(fragments.len()))
    };
    let range = range.ok_or_else(|| {
        format!(
            "cannot tell which of the {} fragments hold frame {frame} of {frames}",
            fragments.len()
        )
    })?;
    Ok(Cow::Owned(fragments[range].concat()))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A readable name for a transfer syntax UID.
pub(crate) fn ts_name(ts: &str) -> &'static str {
    TransferSyntaxRegistry
        .get(ts)
        .map(|t| t.name())
        .unwrap_or("unknown transfer syntax")
}
