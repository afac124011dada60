//! Explanations: where in the image the model looked.
//!
//! - [`gradcam`]: Grad-CAM (Selvaraju et al., 2017) on the last convolutional feature map of any
//!   [`ImageModel`]. The feature map is computed without autodiff, then re-entered into an
//!   autodiff graph as a leaf that requires a gradient; only the classification head runs on that
//!   graph, so the explanation costs one forward pass plus a backward through the head, and the
//!   model's batch norm and dropout stay in inference mode. Channel weights are the spatially
//!   averaged gradients of the target class's *logit* (for a one-output sigmoid model the logit
//!   of class 1, negated for class 0); the map is `ReLU(Σ_k α_k A_k)` at feature-map resolution.
//! - [`occlusion`]: occlusion sensitivity (Zeiler & Fergus, 2014), model-agnostic: a square patch
//!   filled with the image's mean slides over the image and each pixel's score is the mean drop
//!   of the target-class probability over the patches that cover it (negative drops are kept:
//!   they mark evidence *against* the class).
//!
//! Maps come back as [`HeatMap`]s; overlaying them on the image is the report crate's job.

use crate::TrainError;
use crate::data::ImageBatcher;
use crate::vision::ImageModel;
use burn::prelude::*;
use medai_data::RawImage;
use serde::{Deserialize, Serialize};

/// A 2-D saliency map, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeatMap {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height * width` values, row-major. Grad-CAM values are `>= 0`.
    pub values: Vec<f32>,
}

impl HeatMap {
    /// `(row, col)` of the largest value (the first one on ties).
    pub fn argmax(&self) -> (usize, usize) {
        let mut best = 0;
        for (i, &v) in self.values.iter().enumerate() {
            if v > self.values[best] {
                best = i;
            }
        }
        (best / self.width.max(1), best % self.width.max(1))
    }
}

/// The explanation methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Grad-CAM on the last convolutional feature map.
    GradCam,
    /// Occlusion sensitivity.
    Occlusion,
}

impl Method {
    /// Parse `gradcam` / `grad-cam` or `occlusion`.
    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_lowercase().as_str() {
            "gradcam" | "grad-cam" => Some(Method::GradCam),
            "occlusion" => Some(Method::Occlusion),
            _ => None,
        }
    }
    /// Short name used in file names and reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::Occlusion => "occlusion",
        }
    }
}

fn to_vec(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

fn check_targets(model_outputs: usize, n: usize, targets: &[usize]) -> Result<(), TrainError> {
    let classes = model_outputs.max(2);
    if targets.len() != n {
        return Err(TrainError::Config(format!(
            "explanation: {} target classes for {} images",
            targets.len(),
            n
        )));
    }
    if let Some(t) = targets.iter().find(|&&t| t >= classes) {
        return Err(TrainError::Config(format!(
            "explanation: target class {t} but the model has {classes} classes"
        )));
    }
    Ok(())
}

/// Grad-CAM maps `[h, w]` at the feature-map resolution, one per image of `x`
/// (`[batch, channels, height, width]`, preprocessed), for class `targets[i]`:
/// `ReLU(Σ_k α_k A_k)`.
///
/// `model` should be in inference mode ([`ImageModel::inference`]).
pub fn gradcam(
    model: &ImageModel,
    x: Tensor<4>,
    targets: &[usize],
) -> Result<Vec<HeatMap>, TrainError> {
    let mut maps = gradcam_signed(model, x, targets)?;
    for m in &mut maps {
        for v in &mut m.values {
            *v = v.max(0.0);
        }
    }
    Ok(maps)
}

/// Grad-CAM before the ReLU: `Σ_k α_k A_k`, negative where the features argue against the
/// class. For a global-average-pooled linear head (every medai network) its sum over the map
/// equals the target logit minus the head's bias, which the tests use as an oracle.
pub fn gradcam_signed(
    model: &ImageModel,
    x: Tensor<4>,
    targets: &[usize],
) -> Result<Vec<HeatMap>, TrainError> {
    let [b, _, _, _] = x.dims();
    let device = x.device();
    let fmap = model.feature_map(x).detach().inner();
    let [_, c, h, w] = fmap.dims();
    let leaf = fmap.clone().autodiff().require_grad();
    let logits = model.classify(leaf.clone());
    let [_, k] = logits.dims();
    check_targets(k, b, targets)?;
    // Select each image's target logit with a ±1/0 mask so one backward pass serves the batch
    // (in inference mode the images do not interact).
    let mut mask = vec![0f32; b * k];
    for (i, &t) in targets.iter().enumerate() {
        if k == 1 {
            mask[i] = if t == 1 { 1.0 } else { -1.0 };
        } else {
            mask[i * k + t] = 1.0;
        }
    }
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, k]), &device);
    let score = (logits * mask).sum();
    let grads = score.backward();
    let grad = leaf
        .grad(&grads)
        .ok_or_else(|| TrainError::Config("Grad-CAM: no gradient reached the feature map".into()))?
        .inner();
    let alpha = grad.mean_dim(3).mean_dim(2); // [b, c, 1, 1]
    let cam = (fmap * alpha).sum_dim(1);
    let v = to_vec(cam);
    debug_assert_eq!(v.len(), b * h * w, "{c} channels");
    Ok((0..b)
        .map(|i| HeatMap {
            height: h,
            width: w,
            values: v[i * h * w..(i + 1) * h * w].to_vec(),
        })
        .collect())
}

/// Occlusion-sensitivity maps at input resolution, one per image of `x` (preprocessed,
/// `[batch, channels, height, width]`), for class `targets[i]`.
///
/// A `patch`×`patch` square (filled with the image's mean value) slides with `stride`; the last
/// position in each direction is clamped to the border so every pixel is covered. Occluded copies
/// are classified in chunks of `batch` images.
pub fn occlusion(
    model: &ImageModel,
    x: Tensor<4>,
    targets: &[usize],
    patch: usize,
    stride: usize,
    batch: usize,
) -> Result<Vec<HeatMap>, TrainError> {
    let [b, ch, h, w] = x.dims();
    let device = x.device();
    if patch == 0 || stride == 0 || patch > h.min(w) {
        return Err(TrainError::Config(format!(
            "occlusion: patch {patch} / stride {stride} do not fit a {h}×{w} image"
        )));
    }
    let pixels = to_vec(x.clone());
    let base = crate::training::probabilities(model.forward(x));
    check_targets(base[0].len(), b, targets)?;
    let positions = |len: usize| -> Vec<usize> {
        let mut p: Vec<usize> = (0..=len - patch).step_by(stride).collect();
        if *p.last().unwrap_or(&0) != len - patch {
            p.push(len - patch);
        }
        p
    };
    let (rows, cols) = (positions(h), positions(w));
    let per = ch * h * w;
    let mut maps = Vec::with_capacity(b);
    for i in 0..b {
        let img = &pixels[i * per..(i + 1) * per];
        let fill = img.iter().sum::<f32>() / per as f32;
        let windows: Vec<(usize, usize)> = rows
            .iter()
            .flat_map(|&r| cols.iter().map(move |&c| (r, c)))
            .collect();
        let mut drops = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(batch.max(1)) {
            let mut data = Vec::with_capacity(chunk.len() * per);
            for &(r0, c0) in chunk {
                let mut copy = img.to_vec();
                for c in 0..ch {
                    for r in r0..r0 + patch {
                        let row = c * h * w + r * w;
                        copy[row + c0..row + c0 + patch].fill(fill);
                    }
                }
                data.extend(copy);
            }
            let t = Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), ch, h, w]), &device);
            for p in crate::training::probabilities(model.forward(t)) {
                drops.push((base[i][targets[i]] - p[targets[i]]) as f32);
            }
        }
        let mut sum = vec![0f32; h * w];
        let mut count = vec![0u32; h * w];
        for (&(r0, c0), &d) in windows.iter().zip(&drops) {
            for r in r0..r0 + patch {
                for c in c0..c0 + patch {
                    sum[r * w + c] += d;
                    count[r * w + c] += 1;
                }
            }
        }
        let values = sum
            .iter()
            .zip(&count)
            .map(|(&s, &n)| if n == 0 { 0.0 } else { s / n as f32 })
            .collect();
        maps.push(HeatMap {
            height: h,
            width: w,
            values,
        });
    }
    Ok(maps)
}

/// Explain decoded images: preprocess with `batcher`, then run `method` for `targets`.
/// Occlusion uses a patch of about 1/7 of the shorter side and half-patch stride.
pub fn explain_images(
    model: &ImageModel,
    images: &[RawImage],
    batcher: &ImageBatcher,
    device: &Device,
    targets: &[usize],
    method: Method,
) -> Result<Vec<HeatMap>, TrainError> {
    if targets.len() != images.len() {
        return Err(TrainError::Config(format!(
            "explanation: {} target classes for {} images",
            targets.len(),
            images.len()
        )));
    }
    let spec = &batcher.spec;
    let mut out = Vec::with_capacity(images.len());
    for (chunk, t) in images.chunks(32).zip(targets.chunks(32)) {
        let mut pixels = Vec::with_capacity(chunk.len() * spec.channels * spec.height * spec.width);
        for img in chunk {
            pixels.extend(spec.apply(img));
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(
                pixels,
                [chunk.len(), spec.channels, spec.height, spec.width],
            ),
            device,
        );
        out.extend(match method {
            Method::GradCam => gradcam(model, x, t)?,
            Method::Occlusion => {
                let patch = (spec.height.min(spec.width) / 7).max(2);
                occlusion(model, x, t, patch, (patch / 2).max(1), 128)?
            }
        });
    }
    Ok(out)
}
