//! Seeded data augmentation on prepared (resized, channel-converted) images.
//!
//! Geometric augmentations (flips, rotation, translation, zoom, random-resized-crop) are
//! composed into one inverse affine map and applied as a single bilinear warp; samples that
//! fall outside the image take the nearest edge pixel (Keras' default `fill_mode="nearest"`), so
//! augmentation never darkens an image with black borders — black borders shift the intensity
//! statistics that batch norm learns away from those of un-augmented evaluation images. Photometric augmentations (brightness,
//! contrast, Gaussian noise) act on values scaled to 0..1 and clamp to that range.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::image_io::RawImage;

/// Seeded augmentation, off at evaluation. All default to "off"/0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AugmentSpec {
    /// Random horizontal flip (probability 0.5).
    pub hflip: bool,
    /// Random vertical flip (probability 0.5).
    pub vflip: bool,
    /// Rotation drawn uniformly in ±`rotate_deg` degrees.
    pub rotate_deg: f32,
    /// Translation drawn uniformly in ±`translate` of the width/height.
    pub translate: f32,
    /// Zoom factor drawn uniformly in `1 ± scale`.
    pub scale: f32,
    /// Random-resized-crop area range (fractions of the image), e.g. (0.8, 1.0); the aspect
    /// ratio is drawn log-uniformly in [3/4, 4/3] as in torchvision.
    pub crop_scale: Option<(f32, f32)>,
    /// Brightness factor drawn uniformly in `1 ± brightness` (multiplicative).
    pub brightness: f32,
    /// Contrast factor drawn uniformly in `1 ± contrast`, around the image's mean grey level.
    pub contrast: f32,
    /// Standard deviation of additive Gaussian noise on the 0..1 scale.
    pub noise_std: f32,
}

/// A non-negative finite amount from a user value (negative → its magnitude, NaN/inf → 0).
fn amount(v: f32) -> f64 {
    if v.is_finite() {
        f64::from(v).abs()
    } else {
        0.0
    }
}

impl AugmentSpec {
    /// Whether every augmentation is off (then `apply_augmented` equals `apply`).
    pub fn is_off(&self) -> bool {
        !self.geometric_on() && !self.photometric_on()
    }

    /// A sensible default for grey medical images: rotation ±10°, translate 0.1, zoom 0.1,
    /// brightness 0.1, contrast 0.1, no flips, no crop, no noise.
    pub fn medical_default() -> Self {
        AugmentSpec {
            hflip: false,
            vflip: false,
            rotate_deg: 10.0,
            translate: 0.1,
            scale: 0.1,
            crop_scale: None,
            brightness: 0.1,
            contrast: 0.1,
            noise_std: 0.0,
        }
    }

    fn crop_range(&self) -> Option<(f64, f64)> {
        let (a, b) = self.crop_scale?;
        let (a, b) = (amount(a).min(1.0), amount(b).min(1.0));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        (hi > 0.0 && lo < 1.0).then_some((lo.max(1e-4), hi))
    }

    fn geometric_on(&self) -> bool {
        self.hflip
            || self.vflip
            || amount(self.rotate_deg) > 0.0
            || amount(self.translate) > 0.0
            || amount(self.scale) > 0.0
            || self.crop_range().is_some()
    }

    fn photometric_on(&self) -> bool {
        amount(self.brightness) > 0.0 || amount(self.contrast) > 0.0 || amount(self.noise_std) > 0.0
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// One standard normal sample (Box–Muller).
fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Augment a prepared HWC image (0..=255 scale), returning the same geometry.
pub(crate) fn augment_hwc<R: Rng + ?Sized>(
    img: &RawImage,
    aug: &AugmentSpec,
    rng: &mut R,
) -> RawImage {
    let mut out = if aug.geometric_on() {
        let map = draw_affine(aug, img.width, img.height, rng);
        warp(img, &map)
    } else {
        img.clone()
    };
    if aug.photometric_on() {
        photometric(&mut out, aug, rng);
    }
    out
}

/// Inverse map from output pixel to source pixel: `src = m * (out - o) + s0`.
struct InverseAffine {
    m: [[f64; 2]; 2],
    o: [f64; 2],
    s0: [f64; 2],
}

fn draw_affine<R: Rng + ?Sized>(
    aug: &AugmentSpec,
    w: usize,
    h: usize,
    rng: &mut R,
) -> InverseAffine {
    let (wf, hf) = (w as f64, h as f64);
    let c = [(wf - 1.0) / 2.0, (hf - 1.0) / 2.0];
    let fx = if aug.hflip && rng.random::<f64>() < 0.5 {
        -1.0
    } else {
        1.0
    };
    let fy = if aug.vflip && rng.random::<f64>() < 0.5 {
        -1.0
    } else {
        1.0
    };
    let rot = amount(aug.rotate_deg);
    let theta = if rot > 0.0 {
        uniform(rng, -rot, rot).to_radians()
    } else {
        0.0
    };
    let tr = amount(aug.translate);
    let (tx, ty) = if tr > 0.0 {
        (uniform(rng, -tr, tr) * wf, uniform(rng, -tr, tr) * hf)
    } else {
        (0.0, 0.0)
    };
    let sc = amount(aug.scale);
    let zoom = if sc > 0.0 {
        uniform(rng, 1.0 - sc, 1.0 + sc).max(0.05)
    } else {
        1.0
    };
    // Random resized crop: region (cw x ch) centred at cc, stretched to the full frame.
    let (mut d, mut cc) = ([1.0, 1.0], c);
    if let Some((lo, hi)) = aug.crop_range() {
        for _ in 0..10 {
            let area = uniform(rng, lo, hi) * wf * hf;
            let log_ratio = uniform(rng, (3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
            let ratio = log_ratio.exp();
            let cw = (area * ratio).sqrt();
            let ch = (area / ratio).sqrt();
            if cw <= wf && ch <= hf && cw > 0.0 && ch > 0.0 {
                let x0 = uniform(rng, 0.0, wf - cw);
                let y0 = uniform(rng, 0.0, hf - ch);
                d = [cw / wf, ch / hf];
                cc = [x0 + cw / 2.0 - 0.5, y0 + ch / 2.0 - 0.5];
                break;
            }
        }
    }
    // Forward: out = c + t + R(theta) * zoom * F * (u - c); inverse of A = R zoom F is
    // F (1/zoom) R(-theta). Then the crop maps u to the source: src = cc + D (u - c).
    let (s, co) = theta.sin_cos();
    let rinv = [[co, s], [-s, co]];
    let mut m = [[0.0; 2]; 2];
    let f = [fx, fy];
    for i in 0..2 {
        for j in 0..2 {
            m[i][j] = d[i] * f[i] * rinv[i][j] / zoom;
        }
    }
    InverseAffine {
        m,
        o: [c[0] + tx, c[1] + ty],
        s0: cc,
    }
}

fn warp(img: &RawImage, map: &InverseAffine) -> RawImage {
    let (w, h, c) = (img.width, img.height, img.channels);
    let mut out = vec![0.0f32; w * h * c];
    let (wf, hf) = (w as f64, h as f64);
    for y in 0..h {
        for x in 0..w {
            let dx = x as f64 - map.o[0];
            let dy = y as f64 - map.o[1];
            let sx = map.m[0][0] * dx + map.m[0][1] * dy + map.s0[0];
            let sy = map.m[1][0] * dx + map.m[1][1] * dy + map.s0[1];
            let sx = sx.clamp(0.0, wf - 1.0);
            let sy = sy.clamp(0.0, hf - 1.0);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (ax, ay) = (sx - x0 as f64, sy - y0 as f64);
            let o = &mut out[(y * w + x) * c..(y * w + x + 1) * c];
            for (k, d) in o.iter_mut().enumerate() {
                let p = |yy: usize, xx: usize| f64::from(img.pixels[(yy * w + xx) * c + k]);
                let top = p(y0, x0) * (1.0 - ax) + p(y0, x1) * ax;
                let bottom = p(y1, x0) * (1.0 - ax) + p(y1, x1) * ax;
                *d = (top * (1.0 - ay) + bottom * ay) as f32;
            }
        }
    }
    RawImage {
        width: w,
        height: h,
        channels: c,
        pixels: out,
    }
}

fn photometric<R: Rng + ?Sized>(img: &mut RawImage, aug: &AugmentSpec, rng: &mut R) {
    let c = img.channels.max(1);
    let mut v: Vec<f64> = img.pixels.iter().map(|&p| f64::from(p) / 255.0).collect();
    let clamp = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = x.clamp(0.0, 1.0));
    let b = amount(aug.brightness);
    if b > 0.0 {
        let f = uniform(rng, 1.0 - b, 1.0 + b).max(0.0);
        v.iter_mut().for_each(|x| *x *= f);
        clamp(&mut v);
    }
    let ct = amount(aug.contrast);
    if ct > 0.0 {
        let f = uniform(rng, 1.0 - ct, 1.0 + ct).max(0.0);
        let n = (v.len() / c).max(1) as f64;
        let mean = if c == 3 {
            v.chunks_exact(3)
                .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
                .sum::<f64>()
                / n
        } else {
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        v.iter_mut().for_each(|x| *x = (*x - mean) * f + mean);
        clamp(&mut v);
    }
    let ns = amount(aug.noise_std);
    if ns > 0.0 {
        v.iter_mut().for_each(|x| *x += ns * normal(rng));
        clamp(&mut v);
    }
    for (p, x) in img.pixels.iter_mut().zip(v) {
        *p = (x * 255.0) as f32;
    }
}
