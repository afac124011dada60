//! Heat-map overlays (Grad-CAM and similar saliency maps) as embeddable PNGs.
//!
//! The usual pipeline is
//! [`overlay`] (upsample the coarse heat map bilinearly, min-max normalise, colour
//! it with [`colormap_jet`], alpha-blend over the image) → [`png_bytes`] →
//! [`png_data_uri`], whose result goes into
//! [`crate::html::Section::image_grid`]. [`heat_argmax`] locates the peak of the
//! upsampled map, for example to mark or report it.
//!
//! Conventions: images and heat maps are row-major (`index = row * width + col`);
//! pixel buffers are interleaved (`[r, g, b, r, g, b, ...]` for RGB).
//!
//! ```
//! use medai_report::visualize::{overlay, png_bytes, png_data_uri};
//!
//! let image = vec![128u8; 32 * 32]; // 32x32 greyscale
//! let mut heat = vec![0.0f32; 7 * 7]; // 7x7 Grad-CAM
//! heat[3 * 7 + 4] = 1.0;
//! let rgb = overlay(&image, 32, 32, 1, &heat, 7, 7, 0.4)?;
//! let uri = png_data_uri(&png_bytes(&rgb)?);
//! assert!(uri.starts_with("data:image/png;base64,"));
//! # Ok::<(), medai_report::ReportError>(())
//! ```

use std::sync::OnceLock;

use base64::Engine as _;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use crate::error::ReportError;

/// matplotlib's `jet` segment data: `(x, value)` breakpoints per channel.
const JET_RED: [(f64, f64); 5] = [
    (0.0, 0.0),
    (0.35, 0.0),
    (0.66, 1.0),
    (0.89, 1.0),
    (1.0, 0.5),
];
const JET_GREEN: [(f64, f64); 6] = [
    (0.0, 0.0),
    (0.125, 0.0),
    (0.375, 1.0),
    (0.64, 1.0),
    (0.91, 0.0),
    (1.0, 0.0),
];
const JET_BLUE: [(f64, f64); 5] = [
    (0.0, 0.5),
    (0.11, 1.0),
    (0.34, 1.0),
    (0.65, 0.0),
    (1.0, 0.0),
];

/// One channel of matplotlib's 256-entry lookup table, computed the way
/// `matplotlib.colors._create_lookup_table` does, as bytes (`(lut * 255)` truncated).
fn jet_channel(seg: &[(f64, f64)], out: &mut [[u8; 3]; 256], ch: usize) {
    const N: usize = 256;
    let x: Vec<f64> = seg.iter().map(|&(x, _)| x * (N - 1) as f64).collect();
    let step = 1.0 / (N - 1) as f64; // as numpy.linspace(0, 1, N)
    for (i, px) in out.iter_mut().enumerate() {
        let v = if i == 0 {
            seg[0].1
        } else if i == N - 1 {
            seg[seg.len() - 1].1
        } else {
            let xi = (N - 1) as f64 * (i as f64 * step);
            // numpy.searchsorted(x, xi, side="left")
            let k = x.partition_point(|&b| b < xi);
            let distance = (xi - x[k - 1]) / (x[k] - x[k - 1]);
            distance * (seg[k].1 - seg[k - 1].1) + seg[k - 1].1
        };
        px[ch] = (v.clamp(0.0, 1.0) * 255.0) as u8;
    }
}

fn jet_lut() -> &'static [[u8; 3]; 256] {
    static LUT: OnceLock<[[u8; 3]; 256]> = OnceLock::new();
    LUT.get_or_init(|| {
        let mut lut = [[0u8; 3]; 256];
        jet_channel(&JET_RED, &mut lut, 0);
        jet_channel(&JET_GREEN, &mut lut, 1);
        jet_channel(&JET_BLUE, &mut lut, 2);
        lut
    })
}

/// Colours a value in `[0, 1]` with matplotlib's `jet` colormap.
///
/// Bit-identical to `matplotlib.colormaps["jet"](np.float32(v), bytes=True)[:3]`:
/// the 256-entry lookup table from jet's breakpoints, indexed by `⌊256·v⌋`.
/// Values are clamped to `[0, 1]`; NaN counts as 0. `0 → (0, 0, 127)` (dark blue),
/// `0.5 → (124, 255, 121)` (green), `1 → (127, 0, 0)` (dark red).
///
/// ```
/// use medai_report::visualize::colormap_jet;
/// assert_eq!(colormap_jet(0.0), [0, 0, 127]);
/// assert_eq!(colormap_jet(1.0), [127, 0, 0]);
/// ```
pub fn colormap_jet(v: f32) -> [u8; 3] {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let idx = ((v * 256.0) as usize).min(255);
    jet_lut()[idx]
}

/// PyTorch's source index and weights for one output coordinate
/// (`align_corners=False`): `(i0, i1, w0, w1)`.
fn source_index(dst: usize, in_size: usize, out_size: usize) -> (usize, usize, f32, f32) {
    // Computed in f32 exactly as ATen does for float tensors, so that the floor
    // decisions and weights agree with PyTorch bit for bit.
    let scale = in_size as f32 / out_size as f32;
    let real = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
    let i0 = (real.floor() as usize).min(in_size - 1);
    let l1 = (real - i0 as f32).clamp(0.0, 1.0);
    let i1 = if i0 < in_size - 1 { i0 + 1 } else { i0 };
    (i0, i1, 1.0 - l1, l1)
}

/// Bilinear resize of a single-channel row-major `h × w` map to `out_h × out_w`.
///
/// Same semantics as PyTorch's
/// `F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False)`
/// (half-pixel centres, edge clamping, no antialiasing); agrees with it to float32
/// rounding. An empty source (`h` or `w` zero) gives an all-zero output.
///
/// # Panics
///
/// If `src.len() != h * w`.
///
/// ```
/// use medai_report::visualize::resize_bilinear;
/// let up = resize_bilinear(&[0.0, 1.0], 1, 2, 1, 4);
/// assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0]);
/// ```
pub fn resize_bilinear(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    assert_eq!(
        src.len(),
        h * w,
        "resize_bilinear: src has {} values, expected {h}x{w}",
        src.len()
    );
    let mut out = vec![0.0f32; out_h * out_w];
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return out;
    }
    let cols: Vec<_> = (0..out_w).map(|x| source_index(x, w, out_w)).collect();
    for (oy, row) in out.chunks_exact_mut(out_w).enumerate() {
        let (y0, y1, wy0, wy1) = source_index(oy, h, out_h);
        let r0 = &src[y0 * w..(y0 + 1) * w];
        let r1 = &src[y1 * w..(y1 + 1) * w];
        for (o, &(x0, x1, wx0, wx1)) in row.iter_mut().zip(&cols) {
            let top = wx0 * r0[x0] + wx1 * r0[x1];
            let bottom = wx0 * r1[x0] + wx1 * r1[x1];
            *o = wy0 * top + wy1 * bottom;
        }
    }
    out
}

/// Checks a heat map's shape and replaces non-finite values by the smallest finite
/// value (or 0 if there is none), so they read as "no attention".
fn sanitize_heat(heat: &[f32], heat_h: usize, heat_w: usize) -> Result<Vec<f32>, ReportError> {
    if heat_h == 0 || heat_w == 0 {
        return Err(ReportError::InvalidInput(format!(
            "heat map is {heat_h}x{heat_w}"
        )));
    }
    let expected = heat_h
        .checked_mul(heat_w)
        .ok_or_else(|| ReportError::InvalidInput("heat map dimensions overflow".into()))?;
    if heat.len() != expected {
        return Err(ReportError::LengthMismatch {
            what: "heat",
            expected,
            actual: heat.len(),
        });
    }
    let min = heat
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min);
    let fill = if min.is_finite() { min } else { 0.0 };
    Ok(heat
        .iter()
        .map(|&v| if v.is_finite() { v } else { fill })
        .collect())
}

/// Min-max normalises to `[0, 1]` in place; a constant (or degenerate) map becomes all zeros.
fn normalise(values: &mut [f32]) {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        values.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    for v in values.iter_mut() {
        let t = (*v - lo) / span;
        *v = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
}

/// Blends a heat map over an image: the standard Grad-CAM visualisation.
///
/// `base` is an `h × w` image with `channels` = 1 (greyscale) or 3 (interleaved RGB).
/// The `heat_h × heat_w` map is upsampled to `h × w` with [`resize_bilinear`],
/// min-max normalised to `[0, 1]` (a constant map becomes all zeros, never NaN),
/// coloured with [`colormap_jet`] and blended as
/// `round((1 − alpha) · base + alpha · jet)` per channel, with `alpha` clamped to
/// `[0, 1]`. Non-finite heat values count as the map's smallest finite value.
///
/// # Errors
///
/// - [`ReportError::UnsupportedChannels`] if `channels` is not 1 or 3;
/// - [`ReportError::InvalidInput`] for a zero or oversized dimension or a non-finite `alpha`;
/// - [`ReportError::LengthMismatch`] if `base.len() != h * w * channels` or
///   `heat.len() != heat_h * heat_w`.
#[allow(clippy::too_many_arguments)] // plain buffers and their shapes, by design
pub fn overlay(
    base: &[u8],
    h: usize,
    w: usize,
    channels: usize,
    heat: &[f32],
    heat_h: usize,
    heat_w: usize,
    alpha: f32,
) -> Result<RgbImage, ReportError> {
    if channels != 1 && channels != 3 {
        return Err(ReportError::UnsupportedChannels(channels));
    }
    if h == 0 || w == 0 {
        return Err(ReportError::InvalidInput(format!("image is {h}x{w}")));
    }
    let (Ok(w32), Ok(h32)) = (u32::try_from(w), u32::try_from(h)) else {
        return Err(ReportError::InvalidInput(format!(
            "image {h}x{w} is too large"
        )));
    };
    let expected = h
        .checked_mul(w)
        .and_then(|n| n.checked_mul(channels))
        .ok_or_else(|| ReportError::InvalidInput(format!("image {h}x{w} is too large")))?;
    if base.len() != expected {
        return Err(ReportError::LengthMismatch {
            what: "base",
            expected,
            actual: base.len(),
        });
    }
    if !alpha.is_finite() {
        return Err(ReportError::InvalidInput(format!(
            "alpha must be finite, got {alpha}"
        )));
    }
    let alpha = alpha.clamp(0.0, 1.0);
    let heat = sanitize_heat(heat, heat_h, heat_w)?;
    let mut up = resize_bilinear(&heat, heat_h, heat_w, h, w);
    normalise(&mut up);

    let mut out = Vec::with_capacity(h * w * 3);
    for (i, &t) in up.iter().enumerate() {
        let px: [u8; 3] = if channels == 1 {
            [base[i]; 3]
        } else {
            [base[3 * i], base[3 * i + 1], base[3 * i + 2]]
        };
        let jet = colormap_jet(t);
        for k in 0..3 {
            let v = (1.0 - alpha) * px[k] as f32 + alpha * jet[k] as f32;
            out.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    Ok(RgbImage::from_raw(w32, h32, out).expect("buffer has h * w * 3 bytes"))
}

/// Location `(row, col)` of the maximum of the heat map after bilinear upsampling
/// to `out_h × out_w`, in output pixel coordinates.
///
/// Ties go to the first maximum in row-major order (so a constant map gives
/// `(0, 0)`). Non-finite heat values count as the map's smallest finite value.
///
/// # Errors
///
/// [`ReportError::InvalidInput`] if a dimension is zero, and
/// [`ReportError::LengthMismatch`] if `heat.len() != heat_h * heat_w`.
///
/// ```
/// use medai_report::visualize::heat_argmax;
/// let mut heat = vec![0.0f32; 4 * 4];
/// heat[2 * 4 + 1] = 5.0; // row 2, col 1
/// assert_eq!(heat_argmax(&heat, 4, 4, 4, 4)?, (2, 1));
/// # Ok::<(), medai_report::ReportError>(())
/// ```
pub fn heat_argmax(
    heat: &[f32],
    heat_h: usize,
    heat_w: usize,
    out_h: usize,
    out_w: usize,
) -> Result<(usize, usize), ReportError> {
    if out_h == 0 || out_w == 0 {
        return Err(ReportError::InvalidInput(format!(
            "output is {out_h}x{out_w}"
        )));
    }
    let heat = sanitize_heat(heat, heat_h, heat_w)?;
    let up = resize_bilinear(&heat, heat_h, heat_w, out_h, out_w);
    let mut best = 0;
    for (i, &v) in up.iter().enumerate() {
        if v > up[best] {
            best = i;
        }
    }
    Ok((best / out_w, best % out_w))
}

/// Encodes an RGB image as PNG (deterministic: the same image gives the same bytes).
///
/// # Errors
///
/// [`ReportError::Png`] if the encoder fails.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>, ReportError> {
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )?;
    Ok(buf)
}

/// Wraps PNG bytes as a `data:image/png;base64,...` URI (standard alphabet, padded),
/// for `<img src>` in a self-contained page.
///
/// ```
/// assert_eq!(medai_report::visualize::png_data_uri(b"abc"), "data:image/png;base64,YWJj");
/// ```
pub fn png_data_uri(png: &[u8]) -> String {
    let mut s = String::from("data:image/png;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(png, &mut s);
    s
}
