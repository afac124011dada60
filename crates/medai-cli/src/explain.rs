//! Heat-map overlays for `medai predict --explain` and the evaluation report: the model's
//! explanation ([`medai_nn::explain`]) drawn over the image ([`medai_report::visualize`]).

use anyhow::{Result, anyhow};
use medai_data::{Normalization, PreprocessSpec, RawImage, ResizeFilter};
use medai_nn::explain::HeatMap;

/// Longest side of an overlay: small inputs (28 px MedMNIST) are enlarged so a reader can see
/// them, large ones reduced.
pub const DISPLAY_SIDE: usize = 256;

/// Blend weight of the heat map over the image.
pub const ALPHA: f32 = 0.45;

/// The image resized so its longer side is [`DISPLAY_SIDE`], as 0..=255 bytes.
fn display_image(img: &RawImage) -> RawImage {
    let long = img.width.max(img.height).max(1) as f64;
    let scale = DISPLAY_SIDE as f64 / long;
    let spec = PreprocessSpec {
        height: ((img.height as f64 * scale).round() as usize).max(1),
        width: ((img.width as f64 * scale).round() as usize).max(1),
        channels: if img.channels == 3 { 3 } else { 1 },
        resize: ResizeFilter::Bilinear,
        normalization: Normalization::Rescale,
    };
    spec.prepare(img)
}

/// A PNG of `heat` (any resolution; it covers the whole image, as the model's input did) over
/// `img`.
pub fn overlay_png(img: &RawImage, heat: &HeatMap) -> Result<Vec<u8>> {
    let base = display_image(img);
    let bytes: Vec<u8> = base
        .pixels
        .iter()
        .map(|&v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let rgb = medai_report::visualize::overlay(
        &bytes,
        base.height,
        base.width,
        base.channels,
        &heat.values,
        heat.height,
        heat.width,
        ALPHA,
    )
    .map_err(|e| anyhow!("heat-map overlay: {e}"))?;
    medai_report::visualize::png_bytes(&rgb).map_err(|e| anyhow!("heat-map overlay: {e}"))
}
