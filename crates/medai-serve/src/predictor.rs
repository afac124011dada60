//! The one thing the service knows about a model: the [`Predictor`] trait.

use medai_data::RawImage;

/// What the service publishes about a served model (metadata endpoints, labels, audit).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    /// The name the model is served under.
    pub name: String,
    /// The bundle's task (`image-classification`, …).
    pub task: String,
    /// Class names, in output order.
    pub classes: Vec<String>,
    /// Network input channels.
    pub channels: usize,
    /// Network input height.
    pub height: usize,
    /// Network input width.
    pub width: usize,
    /// Decision threshold on p(class 1) for a binary model.
    pub threshold: f64,
    /// Calibration temperature applied by the predictor (1 when uncalibrated).
    pub temperature: f64,
    /// SHA-256 of the bundle's weights file (identifies exactly what answered).
    pub bundle_sha256: String,
    /// The bundle's model card (Markdown).
    pub card_markdown: String,
}

impl ModelMeta {
    /// Values in one network input (`channels × height × width`).
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The label for one probability row: for a binary model class 1 when its probability
    /// reaches the threshold, otherwise the most probable class.
    pub fn label_index(&self, probs: &[f64]) -> usize {
        if probs.len() == 2 {
            usize::from(probs[1] >= self.threshold)
        } else {
            probs
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
                    if p > best.1 { (i, p) } else { best }
                })
                .0
        }
    }
}

/// A served model. Implementations live outside this crate (the CLI wraps the Burn models), so
/// the service never depends on the deep-learning engine.
///
/// `predict` is called from one dedicated batching thread per model, never on the async
/// runtime; `explain` from the blocking pool.
pub trait Predictor: Send + Sync + 'static {
    /// Metadata of the model.
    fn meta(&self) -> &ModelMeta;

    /// The network input for a decoded image (the bundle's preprocessing: channel conversion,
    /// resize, normalisation): `meta().input_len()` values, CHW.
    fn preprocess(&self, image: &RawImage) -> Vec<f32>;

    /// Calibrated class probabilities for `n` preprocessed inputs laid out one after another
    /// (`n × input_len` values): `n` rows of `classes.len()` probabilities.
    fn predict(&self, inputs: &[f32], n: usize) -> Result<Vec<Vec<f64>>, String>;

    /// A heat-map overlay (PNG bytes) explaining class `target` for one image; `method` is
    /// `gradcam` or `occlusion`.
    fn explain(&self, image: &RawImage, target: usize, method: &str) -> Result<Vec<u8>, String>;
}
