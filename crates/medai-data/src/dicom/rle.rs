//! DICOM RLE Lossless (PS3.5 Annex G) frame decoding.
//!
//! Written here rather than taken from `dicom-transfer-syntax-registry`'s RLE adapter, whose
//! segment reader `unwrap`s I/O results and so can panic on corrupt fragments.

use super::decode::Layout;

/// Decode one RLE frame (one fragment) and append it to `out` as interleaved little-endian
/// samples of `bits_allocated / 8` bytes.
pub(crate) fn decode_frame(frag: &[u8], l: &Layout, out: &mut Vec<u8>) -> Result<(), String> {
    let bps = usize::from(l.bits_allocated / 8);
    let pixels = l.rows * l.cols;
    let want_segments = l.samples * bps;
    if frag.len() < 64 {
        return Err(format!(
            "RLE fragment of {} bytes is shorter than its 64-byte header",
            frag.len()
        ));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            frag[4 * i],
            frag[4 * i + 1],
            frag[4 * i + 2],
            frag[4 * i + 3],
        ]) as usize
    };
    let n_segments = word(0);
    if n_segments != want_segments {
        return Err(format!(
            "RLE header lists {n_segments} segments, expected {want_segments} (Samples per Pixel {} × {bps} byte(s))",
            l.samples
        ));
    }
    // PackBits expands at most 128 bytes out of 2 in; refuse before allocating if the
    // fragment cannot possibly hold the frame.
    if pixels.saturating_mul(want_segments) / 64 > frag.len() {
        return Err(format!(
            "RLE fragment of {} bytes cannot hold a {}×{} frame of {want_segments} segment(s)",
            frag.len(),
            l.rows,
            l.cols
        ));
    }
    let base = out.len();
    out.resize(base + pixels * want_segments, 0);
    let mut seg_buf = Vec::with_capacity(pixels);
    for seg in 0..n_segments {
        let start = word(1 + seg);
        let end = if seg + 1 < n_segments {
            word(2 + seg)
        } else {
            frag.len()
        };
        if start < 64 || start > end || end > frag.len() {
            return Err(format!(
                "RLE segment {seg} spans bytes {start}..{end} of a {}-byte fragment",
                frag.len()
            ));
        }
        seg_buf.clear();
        packbits(&frag[start..end], pixels, &mut seg_buf);
        if seg_buf.len() < pixels {
            return Err(format!(
                "RLE segment {seg} decodes to {} bytes, expected {pixels} (Rows × Columns)",
                seg_buf.len()
            ));
        }
        // Segments run sample by sample, most significant byte first.
        let sample = seg / bps;
        let byte_in_sample = bps - 1 - seg % bps;
        let stride = l.samples * bps;
        let first = base + sample * bps + byte_in_sample;
        for (px, &b) in seg_buf.iter().take(pixels).enumerate() {
            out[first + px * stride] = b;
        }
    }
    Ok(())
}

/// PackBits-decode `src` into `dst`, stopping once `dst` holds `limit` bytes.
fn packbits(src: &[u8], limit: usize, dst: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() && dst.len() < limit {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let count = n as usize + 1;
            let end = (i + count).min(src.len());
            let take = (end - i).min(limit - dst.len());
            dst.extend_from_slice(&src[i..i + take]);
            i = end;
        } else if n != -128 {
            let count = (1 - isize::from(n)) as usize;
            let Some(&b) = src.get(i) else { break };
            i += 1;
            let take = count.min(limit - dst.len());
            dst.extend(std::iter::repeat_n(b, take));
        }
    }
}
