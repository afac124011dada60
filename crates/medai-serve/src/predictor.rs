//! The one thing the service knows about a model: the [`Predictor`] trait, with what the model
//! takes ([`InputKind`]) and what it returns ([`OutputKind`]).

use medai_data::RawImage;

/// What one input of a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// An image, preprocessed to `channels × height × width` FP32 values.
    Image,
    /// A UTF-8 document (clinical text).
    Text,
    /// A molecule written as a SMILES string.
    Smiles,
}

impl InputKind {
    /// The input's name in the API (`image`, `text`, `smiles`).
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Image => "image",
            InputKind::Text => "text",
            InputKind::Smiles => "smiles",
        }
    }

    /// True for inputs that are strings (text, SMILES).
    pub fn is_string(self) -> bool {
        !matches!(self, InputKind::Image)
    }
}

/// What a model returns for one input: one row of numbers, read according to this kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Mutually exclusive classes: probabilities that sum to 1 and one label.
    Classes,
    /// Independent labels (multi-label text, molecule classification tasks): one probability
    /// each; the label is every class at or above the threshold.
    Labels,
    /// Real-valued targets with an uncertainty (the ensemble's spread): the row holds the `k`
    /// predictions, then their `k` standard deviations, `k = classes.len()`.
    Values,
}

/// What the service publishes about a served model (metadata endpoints, labels, audit).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    /// The name the model is served under.
    pub name: String,
    /// The bundle's task (`image-classification`, `text-classification`, …).
    pub task: String,
    /// What one input is.
    pub input: InputKind,
    /// How an output row reads.
    pub output: OutputKind,
    /// Class names (or, for [`OutputKind::Values`], target names), in output order.
    pub classes: Vec<String>,
    /// Network input channels (images; 0 otherwise).
    pub channels: usize,
    /// Network input height (images; 0 otherwise).
    pub height: usize,
    /// Network input width (images; 0 otherwise).
    pub width: usize,
    /// Decision threshold: on p(class 1) for a binary [`OutputKind::Classes`] model, on each
    /// label's probability for [`OutputKind::Labels`].
    pub threshold: f64,
    /// Calibration temperature applied by the predictor (1 when uncalibrated).
    pub temperature: f64,
    /// SHA-256 of the bundle's weights file (identifies exactly what answered).
    pub bundle_sha256: String,
    /// The bundle's model card (Markdown).
    pub card_markdown: String,
}

impl ModelMeta {
    /// Values in one network input (`channels × height × width`; 0 for string inputs).
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Numbers in one output row.
    pub fn output_len(&self) -> usize {
        match self.output {
            OutputKind::Values => 2 * self.classes.len(),
            _ => self.classes.len(),
        }
    }

    /// The label for one probability row of a [`OutputKind::Classes`] model: for a binary
    /// model class 1 when its probability reaches the threshold, otherwise the most probable
    /// class.
    pub fn label_index(&self, probs: &[f64]) -> usize {
        if probs.len() == 2 {
            usize::from(probs[1] >= self.threshold)
        } else {
            argmax(probs)
        }
    }

    /// The label of one output row: the class ([`OutputKind::Classes`]), the present labels
    /// joined by `;` ([`OutputKind::Labels`]), or `None` for regression values.
    pub fn label(&self, row: &[f64]) -> Option<String> {
        match self.output {
            OutputKind::Classes => Some(self.classes[self.label_index(row)].clone()),
            OutputKind::Labels => Some(
                self.classes
                    .iter()
                    .zip(row)
                    .filter(|(_, p)| **p >= self.threshold)
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            OutputKind::Values => None,
        }
    }
}

/// The index of the largest value (the first of ties; 0 for an empty row).
pub fn argmax(row: &[f64]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 { (i, p) } else { best }
        })
        .0
}

/// A batch of model inputs, as queued for one forward pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs {
    /// `n` preprocessed images laid out one after another (`n × input_len` values).
    Tensor {
        /// The values.
        values: Vec<f32>,
        /// How many images.
        n: usize,
    },
    /// Strings: documents or SMILES, each already accepted by [`Predictor::check`].
    Strings(Vec<String>),
}

impl Inputs {
    /// How many inputs.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Tensor { n, .. } => *n,
            Inputs::Strings(s) => s.len(),
        }
    }

    /// True when there is no input.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Several queued batches as one (they must be of the same kind).
    pub fn concat(parts: &[&Inputs]) -> Result<Inputs, String> {
        match parts.first() {
            None => Err("no inputs".into()),
            Some(Inputs::Tensor { .. }) => {
                let mut values = Vec::new();
                let mut n = 0;
                for p in parts {
                    match p {
                        Inputs::Tensor { values: v, n: k } => {
                            values.extend_from_slice(v);
                            n += k;
                        }
                        Inputs::Strings(_) => return Err("mixed input kinds in one batch".into()),
                    }
                }
                Ok(Inputs::Tensor { values, n })
            }
            Some(Inputs::Strings(_)) => {
                let mut all = Vec::new();
                for p in parts {
                    match p {
                        Inputs::Strings(s) => all.extend(s.iter().cloned()),
                        Inputs::Tensor { .. } => {
                            return Err("mixed input kinds in one batch".into());
                        }
                    }
                }
                Ok(Inputs::Strings(all))
            }
        }
    }
}

/// One token of a text explanation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TokenWeight {
    /// The token as the model saw it.
    pub token: String,
    /// Byte offset of its start in the submitted text.
    pub start: usize,
    /// Byte offset just past its end.
    pub end: usize,
    /// Its importance toward the explained class, scaled to 0..1 (1 = the most important).
    pub weight: f32,
}

/// Why a text model chose a class: each token of the document with its weight.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TextExplanation {
    /// `attention` (recurrent models) or `gradient × input` (transformers, CNNs).
    pub method: String,
    /// The document's tokens in order (special tokens left out).
    pub tokens: Vec<TokenWeight>,
}

/// A served model. Implementations live outside this crate (the CLI wraps the Burn models), so
/// the service never depends on the deep-learning engine.
///
/// `predict` is called from one dedicated batching thread per model, never on the async
/// runtime; `explain` and `explain_text` from the blocking pool.
pub trait Predictor: Send + Sync + 'static {
    /// Metadata of the model.
    fn meta(&self) -> &ModelMeta;

    /// The network input for a decoded image (the bundle's preprocessing: channel conversion,
    /// resize, normalisation): `meta().input_len()` values, CHW. Image models only.
    fn preprocess(&self, _image: &RawImage) -> Vec<f32> {
        Vec::new()
    }

    /// Accept or refuse one string input before it is queued (e.g. a SMILES that does not
    /// parse), so that one bad input never fails a batch it shares with others. The message
    /// says what is wrong with it.
    fn check(&self, _input: &str) -> Result<(), String> {
        Ok(())
    }

    /// Output rows (see [`OutputKind`]) for a batch: one row of
    /// [`ModelMeta::output_len`] numbers per input. Probabilities are calibrated.
    fn predict(&self, inputs: &Inputs) -> Result<Vec<Vec<f64>>, String>;

    /// A heat-map overlay (PNG bytes) explaining class `target` for one image; `method` is
    /// `gradcam` or `occlusion`.
    fn explain(&self, _image: &RawImage, _target: usize, _method: &str) -> Result<Vec<u8>, String> {
        Err("this model does not explain images".into())
    }

    /// The tokens of `text` weighted by their importance for class `target`.
    fn explain_text(&self, _text: &str, _target: usize) -> Result<TextExplanation, String> {
        Err("this model does not explain text".into())
    }
}
