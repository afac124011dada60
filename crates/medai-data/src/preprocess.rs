//! Deterministic preprocessing: resize, channel conversion and normalisation to CHW f32.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::augment::{AugmentSpec, augment_hwc};
use crate::dataset::LabeledImages;
use crate::error::DataError;
use crate::image_io::RawImage;

/// Resampling filter used to bring images to the model's input size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeFilter {
    /// Nearest neighbour, source index `floor((x + 0.5) * in / out)`, computed exactly as PIL
    /// does (including its tie-breaking).
    Nearest,
    /// Bilinear with half-pixel centres (align_corners = false). Upscaling equals
    /// cv2/torch bilinear; downscaling widens the triangle filter by the scale factor
    /// (antialiased, exactly like PIL's `Image.resize(..., BILINEAR)`).
    Bilinear,
    /// Box average weighted by exact area coverage (cv2 `INTER_AREA` when downscaling;
    /// equals PIL's `BOX` for integer factors).
    Area,
}

/// Pixel normalisation applied after resizing (values start on the 0..=255 scale).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Normalization {
    /// `x / 255`.
    Rescale,
    /// `x / 255`, then `(x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]` per channel
    /// (grey: the mean of the three, 0.449 / 0.226).
    ImagenetTorch,
    /// RGB→BGR and subtract `[103.939, 116.779, 123.68]`, no scaling (grey: subtract their
    /// mean).
    ImagenetCaffe,
    /// `(x / 255 - mean[c]) / std[c]` per channel (a single value applies to every channel;
    /// a zero or non-finite std is treated as 1).
    Standardize {
        /// Per-channel mean on the 0..1 scale.
        mean: Vec<f32>,
        /// Per-channel standard deviation on the 0..1 scale.
        std: Vec<f32>,
    },
}

const TORCH_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const TORCH_STD: [f32; 3] = [0.229, 0.224, 0.225];
const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];

/// Images larger than this many values are treated as invalid by [`PreprocessSpec::apply`].
const MAX_VALUES: usize = 1 << 30;

/// Preprocessing recorded in the model bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreprocessSpec {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Output channels (1 or 3).
    pub channels: usize,
    /// Resampling filter.
    pub resize: ResizeFilter,
    /// Normalisation.
    pub normalization: Normalization,
}

impl PreprocessSpec {
    /// Number of values [`PreprocessSpec::apply`] returns: `channels * height * width`.
    pub fn output_len(&self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// Check the spec: positive sizes, 1 or 3 channels, consistent Standardize lengths and
    /// positive stds.
    pub fn check(&self) -> Result<(), DataError> {
        let bad = |field: &str, value: String, expected: &str| DataError::InvalidOption {
            field: field.to_string(),
            value,
            expected: expected.to_string(),
        };
        if self.height == 0 || self.width == 0 || self.output_len() > MAX_VALUES {
            return Err(bad(
                "preprocess size",
                format!("{}x{}", self.height, self.width),
                "a positive height and width",
            ));
        }
        if !matches!(self.channels, 1 | 3) {
            return Err(bad(
                "preprocess channels",
                self.channels.to_string(),
                "1 or 3",
            ));
        }
        if let Normalization::Standardize { mean, std } = &self.normalization {
            for (name, v) in [("standardize mean", mean), ("standardize std", std)] {
                if v.len() != 1 && v.len() != self.channels {
                    return Err(bad(
                        name,
                        format!("{v:?}"),
                        &format!("1 or {} values (one per channel)", self.channels),
                    ));
                }
            }
            if std.iter().any(|s| !(s.is_finite() && *s > 0.0))
                || mean.iter().any(|m| !m.is_finite())
            {
                return Err(bad(
                    "standardize",
                    format!("mean {mean:?} std {std:?}"),
                    "finite means and positive stds",
                ));
            }
        }
        Ok(())
    }

    /// Resize (skipped when the size already matches) and convert channels, without
    /// normalising: HWC values on the 0..=255 scale, `self.height x self.width x self.channels`.
    ///
    /// Inconsistent input (pixel count not matching the sizes, zero sizes) never panics: it is
    /// treated as a black image; non-finite pixel values are treated as 0.
    pub fn prepare(&self, img: &RawImage) -> RawImage {
        let img = sanitize(img);
        let dst_c = self.channels;
        let out_ok =
            self.height > 0 && self.width > 0 && dst_c > 0 && self.output_len() <= MAX_VALUES;
        if !out_ok {
            return RawImage {
                width: self.width,
                height: self.height,
                channels: dst_c,
                pixels: Vec::new(),
            };
        }
        let img = if dst_c < img.channels {
            convert_channels(&img, dst_c)
        } else {
            img
        };
        let img = resize(&img, self.width, self.height, &self.resize);
        if img.channels == dst_c {
            img
        } else {
            convert_channels(&img, dst_c)
        }
    }

    /// Resize (skip when same size), convert channels (grey→RGB by replication, RGB→grey by
    /// ITU-R 601 luma 0.299/0.587/0.114), normalise; output CHW f32 of len
    /// `channels * height * width`.
    ///
    /// Never panics: inconsistent images are treated as black (see
    /// [`PreprocessSpec::prepare`]); a spec that [`PreprocessSpec::check`] refuses for its size
    /// (over 2^30 values) gives an empty vector.
    pub fn apply(&self, img: &RawImage) -> Vec<f32> {
        let prepared = self.prepare(img);
        self.normalize(&prepared)
    }

    /// Like [`PreprocessSpec::apply`], but applies augmentation (geometric on the resized
    /// image before normalisation, photometric on 0..1 values) with the given rng. An
    /// augmentation that [`AugmentSpec::is_off`] gives exactly `apply`'s output and draws
    /// nothing from `rng`.
    pub fn apply_augmented(
        &self,
        img: &RawImage,
        aug: &AugmentSpec,
        rng: &mut impl rand::Rng,
    ) -> Vec<f32> {
        if aug.is_off() {
            return self.apply(img);
        }
        let prepared = self.prepare(img);
        if prepared.pixels.is_empty() {
            return self.normalize(&prepared);
        }
        let augmented = augment_hwc(&prepared, aug, rng);
        self.normalize(&augmented)
    }

    /// Normalise a prepared HWC image (0..=255) into CHW.
    fn normalize(&self, img: &RawImage) -> Vec<f32> {
        if !img.is_consistent() || img.pixels.is_empty() {
            // Only for a spec that `check` refuses (zero channels or absurd size).
            let n = self.output_len();
            return if n <= MAX_VALUES {
                vec![0.0; n]
            } else {
                Vec::new()
            };
        }
        let (c, plane) = (img.channels, img.width * img.height);
        let mut out = vec![0.0f32; c * plane];
        for k in 0..c {
            let (src_k, scale, offset) = self.channel_affine(k, c);
            let dst = &mut out[k * plane..(k + 1) * plane];
            for (p, d) in dst.iter_mut().enumerate() {
                let v = img.pixels[p * c + src_k];
                *d = v * scale + offset;
            }
        }
        out
    }

    /// For output channel `k` of `c`: (source channel, scale, offset) with
    /// `out = in * scale + offset`, `in` on the 0..=255 scale.
    fn channel_affine(&self, k: usize, c: usize) -> (usize, f32, f32) {
        let mean3 = |a: [f32; 3]| (a[0] + a[1] + a[2]) / 3.0;
        match &self.normalization {
            Normalization::Rescale => (k, 1.0 / 255.0, 0.0),
            Normalization::ImagenetTorch => {
                let (m, s) = if c == 1 {
                    (mean3(TORCH_MEAN), mean3(TORCH_STD))
                } else {
                    (TORCH_MEAN[k % 3], TORCH_STD[k % 3])
                };
                (k, 1.0 / (255.0 * s), -m / s)
            }
            Normalization::ImagenetCaffe => {
                if c == 3 {
                    (2 - k, 1.0, -CAFFE_MEAN_BGR[k])
                } else {
                    (k, 1.0, -mean3(CAFFE_MEAN_BGR))
                }
            }
            Normalization::Standardize { mean, std } => {
                let pick = |v: &Vec<f32>, default: f32| match v.len() {
                    0 => default,
                    1 => v[0],
                    n => v[k % n],
                };
                let m = pick(mean, 0.0);
                let m = if m.is_finite() { m } else { 0.0 };
                let s = pick(std, 1.0);
                let s = if s.is_finite() && s != 0.0 { s } else { 1.0 };
                (k, 1.0 / (255.0 * s), -m / s)
            }
        }
    }
}

/// A consistent copy of `img`: sizes at least 1, pixel count matching, finite values.
fn sanitize(img: &RawImage) -> RawImage {
    let ok = img.is_consistent()
        && img.width > 0
        && img.height > 0
        && img.channels > 0
        && img.pixels.len() <= MAX_VALUES;
    if ok && img.pixels.iter().all(|v| v.is_finite()) {
        return img.clone();
    }
    if !ok {
        // Unusable geometry: a 1x1 black image of the same channel count (capped).
        let channels = img.channels.clamp(1, 4);
        return RawImage {
            width: 1,
            height: 1,
            channels,
            pixels: vec![0.0; channels],
        };
    }
    RawImage {
        pixels: img
            .pixels
            .iter()
            .map(|v| if v.is_finite() { *v } else { 0.0 })
            .collect(),
        ..img.clone()
    }
}

/// Convert channels: 2 (grey+alpha) → grey, ≥4 → first three; grey↔RGB; any other target
/// takes source channel `min(k, last)`.
fn convert_channels(img: &RawImage, dst_c: usize) -> RawImage {
    let src_c = img.channels;
    let n = img.width * img.height;
    // Reduce to 1 or 3 base channels.
    let (base_c, base_off): (usize, [usize; 3]) = match src_c {
        1 | 2 => (1, [0, 0, 0]),
        _ => (3, [0, 1, 2]),
    };
    let mut out = Vec::with_capacity(n * dst_c);
    for px in img.pixels.chunks_exact(src_c) {
        match (base_c, dst_c) {
            (3, 1) => out.push(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]),
            (1, _) => out.extend(std::iter::repeat_n(px[0], dst_c)),
            _ => out.extend((0..dst_c).map(|k| px[base_off[k.min(2)]])),
        }
    }
    RawImage {
        width: img.width,
        height: img.height,
        channels: dst_c,
        pixels: out,
    }
}

/// Per output index along one axis: first source index and its weights.
struct Taps {
    start: usize,
    weights: Vec<f64>,
}

fn taps(in_size: usize, out_size: usize, filter: &ResizeFilter) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    match filter {
        ResizeFilter::Nearest => {
            // PIL accumulates the source position incrementally in f64; doing the same
            // reproduces its choice at exact ties (6 -> 9 rows: output row 4 reads row 2).
            let mut pos = 0.5 * scale;
            (0..out_size)
                .map(|_| {
                    let i = pos.max(0.0) as usize;
                    pos += scale;
                    Taps {
                        start: i.min(in_size - 1),
                        weights: vec![1.0],
                    }
                })
                .collect()
        }
        ResizeFilter::Bilinear => (0..out_size)
            .map(|x| {
                let fs = scale.max(1.0);
                let center = (x as f64 + 0.5) * scale;
                let lo = ((center - fs).floor().max(0.0) as usize).min(in_size - 1);
                let hi = ((center + fs).ceil() as usize).min(in_size);
                let w: Vec<f64> = (lo..hi)
                    .map(|j| {
                        let d = ((j as f64 + 0.5 - center) / fs).abs();
                        if d < 1.0 { 1.0 - d } else { 0.0 }
                    })
                    .collect();
                finish_taps(lo, w)
            })
            .collect(),
        ResizeFilter::Area => (0..out_size)
            .map(|x| {
                let a = x as f64 * scale;
                let b = (x as f64 + 1.0) * scale;
                let lo = (a.floor().max(0.0) as usize).min(in_size - 1);
                let hi = (b.ceil() as usize).min(in_size);
                let w: Vec<f64> = (lo..hi)
                    .map(|j| (b.min(j as f64 + 1.0) - a.max(j as f64)).max(0.0))
                    .collect();
                finish_taps(lo, w)
            })
            .collect(),
    }
}

/// Normalise weights to sum 1 and trim zero weights at both ends (no positive weight: the
/// single pixel `lo`).
fn finish_taps(lo: usize, w: Vec<f64>) -> Taps {
    let (Some(first), Some(last)) = (
        w.iter().position(|&v| v > 0.0),
        w.iter().rposition(|&v| v > 0.0),
    ) else {
        return Taps {
            start: lo,
            weights: vec![1.0],
        };
    };
    let sum: f64 = w[first..=last].iter().sum();
    Taps {
        start: lo + first,
        weights: w[first..=last].iter().map(|v| v / sum).collect(),
    }
}

/// Resize a consistent HWC image to `out_w x out_h` with `filter` (identity when equal).
pub(crate) fn resize(
    img: &RawImage,
    out_w: usize,
    out_h: usize,
    filter: &ResizeFilter,
) -> RawImage {
    if img.width == out_w && img.height == out_h {
        return img.clone();
    }
    let c = img.channels;
    // Horizontal pass: (h, in_w) -> (h, out_w).
    let horizontal = if img.width == out_w {
        img.pixels.clone()
    } else {
        let tx = taps(img.width, out_w, filter);
        let mut out = vec![0.0f32; img.height * out_w * c];
        let mut acc = vec![0.0f64; c];
        for y in 0..img.height {
            let row = &img.pixels[y * img.width * c..(y + 1) * img.width * c];
            for (x, t) in tx.iter().enumerate() {
                acc.iter_mut().for_each(|a| *a = 0.0);
                for (j, w) in t.weights.iter().enumerate() {
                    let px = &row[(t.start + j) * c..(t.start + j + 1) * c];
                    for (a, v) in acc.iter_mut().zip(px) {
                        *a += w * f64::from(*v);
                    }
                }
                let o = &mut out[(y * out_w + x) * c..(y * out_w + x + 1) * c];
                for (d, a) in o.iter_mut().zip(&acc) {
                    *d = *a as f32;
                }
            }
        }
        out
    };
    // Vertical pass: (in_h, out_w) -> (out_h, out_w).
    let pixels = if img.height == out_h {
        horizontal
    } else {
        let ty = taps(img.height, out_h, filter);
        let stride = out_w * c;
        let mut out = vec![0.0f32; out_h * stride];
        let mut acc = vec![0.0f64; stride];
        for (y, t) in ty.iter().enumerate() {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (j, w) in t.weights.iter().enumerate() {
                let row = &horizontal[(t.start + j) * stride..(t.start + j + 1) * stride];
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += w * f64::from(*v);
                }
            }
            for (d, a) in out[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
                *d = *a as f32;
            }
        }
        out
    };
    RawImage {
        width: out_w,
        height: out_h,
        channels: c,
        pixels,
    }
}

/// Compute per-channel mean/std (on the 0..1 scale, after resize & channel conversion) over a
/// dataset split, in parallel; used for [`Normalization::Standardize`]. The std is the
/// population standard deviation over all pixels of all images.
pub fn channel_stats(
    set: &LabeledImages,
    spec: &PreprocessSpec,
) -> Result<(Vec<f32>, Vec<f32>), DataError> {
    if set.is_empty() {
        return Err(DataError::NoImages {
            what: "channel statistics".to_string(),
        });
    }
    let c = spec.channels.max(1);
    let zero = || (0u64, vec![0.0f64; c], vec![0.0f64; c]);
    let (count, sum, sumsq) = (0..set.len())
        .into_par_iter()
        .map(|i| -> Result<_, DataError> {
            let img = spec.prepare(&set.load(i)?);
            let (mut s, mut q) = (vec![0.0f64; c], vec![0.0f64; c]);
            for px in img.pixels.chunks_exact(c) {
                for k in 0..c {
                    let v = f64::from(px[k]) / 255.0;
                    s[k] += v;
                    q[k] += v * v;
                }
            }
            Ok(((img.pixels.len() / c) as u64, s, q))
        })
        .try_reduce(zero, |a, b| {
            Ok((
                a.0 + b.0,
                a.1.iter().zip(&b.1).map(|(x, y)| x + y).collect(),
                a.2.iter().zip(&b.2).map(|(x, y)| x + y).collect(),
            ))
        })?;
    let n = count.max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std: Vec<f32> = sum
        .iter()
        .zip(&sumsq)
        .map(|(s, q)| {
            let m = s / n;
            ((q / n - m * m).max(0.0)).sqrt() as f32
        })
        .collect();
    Ok((mean, std))
}
