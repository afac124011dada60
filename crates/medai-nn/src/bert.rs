//! A BERT-family transformer encoder with a classification head, numerically equal to Hugging
//! Face `transformers`' `BertModel` / `BertForSequenceClassification` (post-LayerNorm encoder,
//! absolute position embeddings, erf GELU), and the import of pretrained Hugging Face checkpoint
//! directories ([`load_pretrained`]: `config.json` + `model.safetensors` or `pytorch_model.bin`,
//! including sentence-transformers directories such as all-MiniLM-L6-v2).
//!
//! The network is split so attributions can be taken with respect to the input embeddings:
//! [`BertClassifier::embed`] gives word + position + token-type embeddings (before the
//! embedding LayerNorm) and [`BertClassifier::forward_embeddings`] runs everything after it, so
//! `forward(x) == forward_embeddings(embed(x.ids, x.type_ids), x.mask)`.
//!
//! Weight layout: PyTorch's `nn.Linear` stores `[out, in]`, Burn's `Linear` `[in, out]`; the
//! import transposes. LayerNorm `weight`/`bias` (or the old TF names `gamma`/`beta`) become
//! Burn's `gamma`/`beta`.

use crate::training::Network;
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::prelude::*;
use burn::store::{ModuleStore, PytorchStore, SafetensorsStore};
use burn::tensor::activation::{gelu, gelu_approximate, relu, silu, softmax};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The additive attention bias of padding keys (`(1 - mask) × MASK_BIAS`), as the original
/// BERT; `exp` of it underflows to exactly 0 in `f32`, and it stays finite in `f16`.
const MASK_BIAS: f32 = -10_000.0;

/// Standard deviation of the normal initialisation of fresh weights (HF `initializer_range`).
const INIT_STD: f64 = 0.02;

/// Activations accepted in `hidden_act`.
pub const SUPPORTED_ACTIVATIONS: &[&str] = &[
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "relu",
    "silu",
    "swish",
];

/// The encoder's hyper-parameters: the fields of a Hugging Face BERT `config.json` that shape
/// the network. Deserialises straight from such a file (unknown fields are ignored; absent ones
/// take `BertConfig`'s defaults, which are bert-base-uncased's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Number of word-piece tokens.
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Width of every hidden state.
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    /// Number of transformer layers.
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer (must divide `hidden_size`).
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    /// Feed-forward activation: `gelu` (erf), `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast`
    /// (tanh approximation), `relu`, `silu` / `swish`.
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: String,
    /// Longest sequence the position embeddings cover.
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    #[serde(default = "defaults::type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Dropout after embeddings and after each sub-layer (training only).
    #[serde(default = "defaults::dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    #[serde(default = "defaults::dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Id of the padding token (`null` in the file reads as 0).
    #[serde(default, deserialize_with = "defaults::null_as_zero")]
    pub pad_token_id: usize,
}

mod defaults {
    use serde::{Deserialize, Deserializer};

    pub fn null_as_zero<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        Ok(Option::<usize>::deserialize(d)?.unwrap_or(0))
    }
    pub fn vocab_size() -> usize {
        30522
    }
    pub fn hidden_size() -> usize {
        768
    }
    pub fn num_hidden_layers() -> usize {
        12
    }
    pub fn num_attention_heads() -> usize {
        12
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn hidden_act() -> String {
        "gelu".into()
    }
    pub fn max_position_embeddings() -> usize {
        512
    }
    pub fn type_vocab_size() -> usize {
        2
    }
    pub fn layer_norm_eps() -> f64 {
        1e-12
    }
    pub fn dropout() -> f64 {
        0.1
    }
}

impl Default for BertConfig {
    /// bert-base-uncased.
    fn default() -> Self {
        BertConfig {
            vocab_size: defaults::vocab_size(),
            hidden_size: defaults::hidden_size(),
            num_hidden_layers: defaults::num_hidden_layers(),
            num_attention_heads: defaults::num_attention_heads(),
            intermediate_size: defaults::intermediate_size(),
            hidden_act: defaults::hidden_act(),
            max_position_embeddings: defaults::max_position_embeddings(),
            type_vocab_size: defaults::type_vocab_size(),
            layer_norm_eps: defaults::layer_norm_eps(),
            hidden_dropout_prob: defaults::dropout(),
            attention_probs_dropout_prob: defaults::dropout(),
            pad_token_id: 0,
        }
    }
}

impl BertConfig {
    /// Parse a Hugging Face `config.json` (its text). Errors name the offending field. Also
    /// rejects non-absolute `position_embedding_type` and an invalid configuration
    /// ([`BertConfig::validate`]).
    pub fn from_json(text: &str, path: &Path) -> Result<BertConfig, BertError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BertError::BadConfig {
                path: path.to_path_buf(),
                field: "(file)".into(),
                message: format!("not valid JSON: {e}"),
            })?;
        let obj = value.as_object().ok_or_else(|| BertError::BadConfig {
            path: path.to_path_buf(),
            field: "(file)".into(),
            message: "expected a JSON object".into(),
        })?;
        let cfg = match serde_json::from_value::<BertConfig>(value.clone()) {
            Ok(cfg) => cfg,
            Err(e) => {
                // Find the field at fault: deserialise each key on its own (unknown keys pass).
                let field = obj
                    .iter()
                    .find(|(k, v)| {
                        let one = serde_json::Value::Object(
                            [((*k).clone(), (*v).clone())].into_iter().collect(),
                        );
                        serde_json::from_value::<BertConfig>(one).is_err()
                    })
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| "(unknown)".into());
                return Err(BertError::BadConfig {
                    path: path.to_path_buf(),
                    field,
                    message: e.to_string(),
                });
            }
        };
        if let Some(kind) = obj.get("position_embedding_type")
            && !kind.is_null()
            && kind.as_str() != Some("absolute")
        {
            return Err(BertError::BadConfig {
                path: path.to_path_buf(),
                field: "position_embedding_type".into(),
                message: format!("{kind} is not supported (only \"absolute\")"),
            });
        }
        cfg.validate().map_err(|e| match e {
            BertError::InvalidConfig { field, message } => BertError::BadConfig {
                path: path.to_path_buf(),
                field,
                message,
            },
            other => other,
        })?;
        Ok(cfg)
    }

    /// Check that the network can be built: a supported activation, heads dividing the width,
    /// non-zero sizes, dropout probabilities in `[0, 1)`.
    pub fn validate(&self) -> Result<(), BertError> {
        if !SUPPORTED_ACTIVATIONS.contains(&self.hidden_act.as_str()) {
            return Err(BertError::UnsupportedActivation(self.hidden_act.clone()));
        }
        let invalid = |field: &str, message: String| {
            Err(BertError::InvalidConfig {
                field: field.into(),
                message,
            })
        };
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return invalid(field, "must be at least 1".into());
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(
                "num_attention_heads",
                format!(
                    "{} does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            );
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return invalid("layer_norm_eps", "must be positive".into());
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return invalid(field, format!("{p} is not in [0, 1)"));
            }
        }
        Ok(())
    }
}

/// How the sequence is reduced to one vector before the classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// HF `BertPooler`: dense + tanh on the `[CLS]` (first) token's last hidden state, as
    /// `BertForSequenceClassification`.
    Cls,
    /// Mask-weighted mean of the last hidden states, as sentence-transformers.
    Mean,
}

/// Everything needed to rebuild a [`BertClassifier`] (serialisable, for bundles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertClassifierConfig {
    /// The encoder.
    pub bert: BertConfig,
    /// Sequence pooling.
    pub pooling: Pooling,
    /// Number of classifier outputs (1 for binary with a sigmoid, K for K classes).
    pub num_outputs: usize,
    /// Dropout before the classifier (training only).
    pub dropout: f64,
}

impl BertClassifierConfig {
    /// Build the network with fresh weights (HF's initialisation: normal(0, 0.02) weights and
    /// embeddings, zero biases, LayerNorm 1/0, the padding embedding row zero).
    ///
    /// Panics if the encoder configuration is invalid ([`BertConfig::validate`]).
    pub fn init(&self, device: &Device) -> BertClassifier {
        if let Err(e) = self.bert.validate() {
            panic!("invalid BERT configuration: {e}");
        }
        let c = &self.bert;
        let h = c.hidden_size;
        let mut word = embedding(c.vocab_size, h, device);
        if c.pad_token_id < c.vocab_size {
            let w = word.weight.val();
            let zero_row = Tensor::<2>::zeros([1, h], device);
            // Detached so the parameter is a leaf again on an autodiff device.
            let w = w
                .slice_assign([c.pad_token_id..c.pad_token_id + 1, 0..h], zero_row)
                .detach();
            word.weight = Param::from_tensor(w);
        }
        let embeddings = BertEmbeddings {
            word,
            position: embedding(c.max_position_embeddings, h, device),
            token_type: embedding(c.type_vocab_size, h, device),
            norm: layer_norm(h, c.layer_norm_eps, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
        };
        let layers = (0..c.num_hidden_layers)
            .map(|_| BertLayer {
                query: linear(h, h, device),
                key: linear(h, h, device),
                value: linear(h, h, device),
                attn_dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
                attn_out: linear(h, h, device),
                attn_norm: layer_norm(h, c.layer_norm_eps, device),
                intermediate: linear(h, c.intermediate_size, device),
                output: linear(c.intermediate_size, h, device),
                out_norm: layer_norm(h, c.layer_norm_eps, device),
                dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
                heads: c.num_attention_heads,
                act: c.hidden_act.clone(),
            })
            .collect();
        BertClassifier {
            embeddings,
            layers,
            pooler: (self.pooling == Pooling::Cls).then(|| linear(h, h, device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: linear(h, self.num_outputs, device),
            mean_pooling: self.pooling == Pooling::Mean,
        }
    }
}

fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: INIT_STD,
        })
        .init(device);
    l.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    l
}

fn embedding(n: usize, d: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(n, d)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: INIT_STD,
        })
        .init(device)
}

fn layer_norm(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// Word, position and token-type embeddings, their LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    dropout: Dropout,
}

/// One post-LayerNorm transformer layer: multi-head self-attention and a feed-forward block,
/// each followed by dropout, a residual connection and LayerNorm.
#[derive(Module, Debug)]
pub struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_dropout: Dropout,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
    dropout: Dropout,
    heads: usize,
    act: String,
}

impl BertLayer {
    /// `x`: `[b, s, h]`; `bias`: the additive attention mask `[b, 1, 1, s]`.
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let dh = h / self.heads;
        let heads = |t: Tensor<3>| t.reshape([b, s, self.heads, dh]).swap_dims(1, 2);
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x.clone()));
        let scores = q.matmul(k.transpose()).div_scalar((dh as f64).sqrt()) + bias;
        let probs = self.attn_dropout.forward(softmax(scores, 3));
        let context = probs.matmul(v).swap_dims(1, 2).reshape([b, s, h]);
        let attended = self
            .attn_norm
            .forward(self.dropout.forward(self.attn_out.forward(context)) + x);
        let inner = activation(&self.act, self.intermediate.forward(attended.clone()));
        self.out_norm
            .forward(self.dropout.forward(self.output.forward(inner)) + attended)
    }
}

fn activation(name: &str, x: Tensor<3>) -> Tensor<3> {
    match name {
        "gelu" => gelu(x),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => gelu_approximate(x),
        "relu" => relu(x),
        "silu" | "swish" => silu(x),
        // Rejected by BertConfig::validate before a network is built.
        other => panic!("unsupported hidden_act {other:?}"),
    }
}

/// A BERT encoder, a pooling step ([`Pooling`]) and a linear classifier.
#[derive(Module, Debug)]
pub struct BertClassifier {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    /// HF `BertPooler` dense layer (tanh after it); present with [`Pooling::Cls`] only.
    pooler: Option<Linear>,
    dropout: Dropout,
    classifier: Linear,
    mean_pooling: bool,
}

/// A batch of tokenised sequences on the device, all padded to one length `s`.
#[derive(Clone, Debug)]
pub struct BertInput {
    /// Token ids `[b, s]`.
    pub ids: Tensor<2, Int>,
    /// Token-type (segment) ids `[b, s]` (zeros for single sentences).
    pub type_ids: Tensor<2, Int>,
    /// Attention mask `[b, s]`: 1 for a token, 0 for padding.
    pub mask: Tensor<2>,
}

impl BertInput {
    /// A batch from rows of token ids (right-padded with `pad_id`), type ids 0, mask 1 on the
    /// tokens. Every row must be non-empty.
    pub fn from_ids(rows: &[Vec<u32>], pad_id: u32, device: &Device) -> BertInput {
        let b = rows.len();
        let s = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![pad_id as i64; b * s];
        let mut mask = vec![0f32; b * s];
        for (i, row) in rows.iter().enumerate() {
            for (j, &t) in row.iter().enumerate() {
                ids[i * s + j] = t as i64;
                mask[i * s + j] = 1.0;
            }
        }
        BertInput {
            ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            type_ids: Tensor::zeros([b, s], device),
            mask: Tensor::from_data(TensorData::new(mask, [b, s]), device),
        }
    }
}

/// Mask-weighted mean over the sequence: `Σ_t m_t h_t / max(Σ_t m_t, 1e-9)`, `[b, s, h]` →
/// `[b, h]` (sentence-transformers' mean pooling).
pub fn mean_pool(hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [b, _, h] = hidden.dims();
    let m = mask.unsqueeze_dim::<3>(2);
    let sum = (hidden * m.clone()).sum_dim(1).reshape([b, h]);
    let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
    sum / count
}

impl BertClassifier {
    /// Word + position (`0..s`) + token-type embeddings `[b, s, h]`, before the embedding
    /// LayerNorm: the input that gradient × input attributions are taken with respect to.
    ///
    /// Panics if `s` exceeds `max_position_embeddings`.
    pub fn embed(&self, ids: Tensor<2, Int>, type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, s] = ids.dims();
        let max = self.embeddings.position.weight.dims()[0];
        assert!(
            s <= max,
            "sequence of {s} tokens is longer than the model's max_position_embeddings ({max})"
        );
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..s as i64, &device).reshape([1, s]);
        self.embeddings.word.forward(ids)
            + self.embeddings.position.forward(positions)
            + self.embeddings.token_type.forward(type_ids)
    }

    /// The encoder from [`embed`](Self::embed)'s output: embedding LayerNorm and dropout, then
    /// every layer; the last hidden states `[b, s, h]`.
    pub fn encode_embeddings(&self, emb: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let [b, s] = mask.dims();
        let bias = mask
            .neg()
            .add_scalar(1.0)
            .mul_scalar(MASK_BIAS)
            .reshape([b, 1, 1, s]);
        let mut x = self
            .embeddings
            .dropout
            .forward(self.embeddings.norm.forward(emb));
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        x
    }

    /// The pooled sequence vector `[b, h]` from the last hidden states (before the classifier's
    /// dropout): `tanh(pooler(h[:, 0]))` for [`Pooling::Cls`], the masked mean for
    /// [`Pooling::Mean`].
    pub fn pool(&self, hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        match (&self.pooler, self.mean_pooling) {
            (Some(pooler), false) => {
                let [b, _, h] = hidden.dims();
                pooler
                    .forward(hidden.narrow(1, 0, 1).reshape([b, h]))
                    .tanh()
            }
            _ => mean_pool(hidden, mask),
        }
    }

    /// Logits `[b, num_outputs]` from [`embed`](Self::embed)'s output: the rest of the network.
    pub fn forward_embeddings(&self, emb: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let hidden = self.encode_embeddings(emb, mask.clone());
        let pooled = self.pool(hidden, mask);
        self.classifier.forward(self.dropout.forward(pooled))
    }

    /// The last layer's hidden states `[b, s, h]` (HF `last_hidden_state`).
    pub fn hidden_states(&self, input: BertInput) -> Tensor<3> {
        let emb = self.embed(input.ids, input.type_ids);
        self.encode_embeddings(emb, input.mask)
    }

    /// The pooled sequence vectors `[b, h]` (see [`pool`](Self::pool)).
    pub fn pooled(&self, input: BertInput) -> Tensor<2> {
        let mask = input.mask.clone();
        self.pool(self.hidden_states(input), mask)
    }

    /// Logits `[b, num_outputs]`.
    pub fn forward(&self, input: BertInput) -> Tensor<2> {
        let emb = self.embed(input.ids, input.type_ids);
        self.forward_embeddings(emb, input.mask)
    }

    /// Number of scalar parameters.
    pub fn parameters(&self) -> usize {
        Module::num_params(self)
    }

    /// The pooling this network was built with.
    pub fn pooling(&self) -> Pooling {
        if self.mean_pooling {
            Pooling::Mean
        } else {
            Pooling::Cls
        }
    }

    /// An inference-mode copy (no autodiff, no dropout).
    pub fn inference(&self) -> Self {
        Module::valid(self)
    }
}

impl Network for BertClassifier {
    type Input = BertInput;
    fn outputs(&self, input: BertInput) -> Tensor<2> {
        self.forward(input)
    }
    /// Freeze the embeddings and the encoder; the pooler and the classifier stay trainable.
    fn freeze_backbone(self) -> Self {
        let pooler = self.pooler.clone();
        let classifier = self.classifier.clone();
        let mut m = Module::freeze(self);
        m.pooler = pooler;
        m.classifier = classifier;
        m
    }
    fn unfreeze_all(self) -> Self {
        Module::unfreeze(self)
    }
}

/// Errors of [`load_pretrained`] and of configuration parsing; each is one line.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    /// The checkpoint directory has no `config.json`.
    #[error("{0}: not found (a Hugging Face checkpoint directory needs config.json)")]
    MissingConfig(PathBuf),
    /// The checkpoint directory has no weights file.
    #[error(
        "no weights in {0}: expected {safetensors} or {bin}",
        safetensors = .0.join("model.safetensors").display(),
        bin = .0.join("pytorch_model.bin").display()
    )]
    MissingWeights(PathBuf),
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `config.json` (or `1_Pooling/config.json`) is malformed or has a bad value.
    #[error("{path}: field `{field}`: {message}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration value is invalid (from [`BertConfig::validate`]).
    #[error("invalid BERT configuration: field `{field}`: {message}")]
    InvalidConfig {
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The activation is not one of [`SUPPORTED_ACTIVATIONS`].
    #[error(
        "unsupported hidden_act {0:?} (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish)"
    )]
    UnsupportedActivation(String),
    /// A checkpoint tensor's shape disagrees with the configuration.
    #[error("tensor {name}: expected {expected:?}, found {found:?} in {path}")]
    ShapeMismatch {
        /// Tensor name in the checkpoint.
        name: String,
        /// Shape the configuration implies (PyTorch layout).
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
        /// The weights file.
        path: PathBuf,
    },
    /// A tensor the encoder needs is not in the checkpoint.
    #[error("tensor {name} is missing from {path}")]
    MissingTensor {
        /// Tensor name (with the checkpoint's prefix).
        name: String,
        /// The weights file.
        path: PathBuf,
    },
    /// The weights file could not be decoded.
    #[error("{path}: cannot read weights: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// What [`load_pretrained`] did with each tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Checkpoint tensors applied to the network (names as in the file).
    pub loaded: Vec<String>,
    /// Network parameters left at their fresh initialisation (HF names, e.g. `classifier.weight`
    /// when the checkpoint has no head or one with another number of labels, `pooler.dense.*`
    /// when a `BertModel` checkpoint without pooler is used with [`Pooling::Cls`]).
    pub initialised: Vec<String>,
    /// Checkpoint tensors not used (names as in the file: buffers such as
    /// `embeddings.position_ids`, other heads, a mismatched classifier, an unused pooler).
    pub ignored: Vec<String>,
}

/// The pooling a sentence-transformers directory asks for: [`Pooling::Mean`] when
/// `dir/1_Pooling/config.json` has `pooling_mode_mean_tokens: true`, else [`Pooling::Cls`].
pub fn detect_pooling(dir: &Path) -> Result<Pooling, BertError> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.is_file() {
        return Ok(Pooling::Cls);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| BertError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BertError::BadConfig {
            path: path.clone(),
            field: "(file)".into(),
            message: format!("not valid JSON: {e}"),
        })?;
    Ok(
        if value
            .get("pooling_mode_mean_tokens")
            .and_then(|v| v.as_bool())
            == Some(true)
        {
            Pooling::Mean
        } else {
            Pooling::Cls
        },
    )
}

/// Load a Hugging Face BERT checkpoint directory (`config.json` + `model.safetensors` or
/// `pytorch_model.bin`) into a [`BertClassifier`] with `num_outputs` outputs.
///
/// - `pooling`: `None` detects it ([`detect_pooling`]: mean for sentence-transformers
///   directories that ask for it, else CLS).
/// - Tensor names may carry the `bert.` prefix (`BertForSequenceClassification`) or none
///   (`BertModel`, sentence-transformers).
/// - `classifier.weight`/`bias` are used when present with shape `[num_outputs, hidden]`;
///   otherwise the classifier is freshly initialised and reported. So is the pooler when absent
///   and `pooling` is CLS.
/// - The classifier dropout is `classifier_dropout` from `config.json`, else
///   `hidden_dropout_prob`.
///
/// Every encoder tensor must be present with the shape the configuration implies.
pub fn load_pretrained(
    dir: &Path,
    num_outputs: usize,
    pooling: Option<Pooling>,
    device: &Device,
) -> Result<(BertClassifierConfig, BertClassifier, LoadReport), BertError> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(BertError::MissingConfig(config_path));
    }
    let text = std::fs::read_to_string(&config_path).map_err(|e| BertError::Io {
        path: config_path.clone(),
        message: e.to_string(),
    })?;
    let bert = BertConfig::from_json(&text, &config_path)?;
    let classifier_dropout = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("classifier_dropout").and_then(|d| d.as_f64()))
        .unwrap_or(bert.hidden_dropout_prob);
    let pooling = match pooling {
        Some(p) => p,
        None => detect_pooling(dir)?,
    };
    if num_outputs == 0 {
        return Err(BertError::InvalidConfig {
            field: "num_outputs".into(),
            message: "must be at least 1".into(),
        });
    }
    let weights_path = [dir.join("model.safetensors"), dir.join("pytorch_model.bin")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| BertError::MissingWeights(dir.to_path_buf()))?;
    let tensors = read_tensors(&weights_path)?;
    let config = BertClassifierConfig {
        bert,
        pooling,
        num_outputs,
        dropout: classifier_dropout.clamp(0.0, 0.99),
    };
    let mut loader = Loader::new(tensors, weights_path, device.clone());
    let model = loader.build(&config)?;
    let report = loader.finish();
    Ok((config, model, report))
}

/// All tensors of a safetensors or PyTorch file, by name, as `f32` data.
fn read_tensors(path: &Path) -> Result<BTreeMap<String, TensorData>, BertError> {
    if path.extension().and_then(|e| e.to_str()) == Some("safetensors") {
        collect_tensors(&mut SafetensorsStore::from_file(path), path)
    } else {
        collect_tensors(&mut PytorchStore::from_file(path), path)
    }
}

fn collect_tensors<S: ModuleStore>(
    store: &mut S,
    path: &Path,
) -> Result<BTreeMap<String, TensorData>, BertError> {
    let err = |message: String| BertError::Weights {
        path: path.to_path_buf(),
        message,
    };
    let all = store.get_all_tensors().map_err(|e| err(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, t) in all {
        let data = burn::store::bridge::to_data(t)
            .map_err(|e| err(format!("{name}: {e:?}")))?
            .try_cast_as::<f32>()
            .map_err(|e| err(format!("{name}: {e:?}")))?;
        out.insert(name.clone(), data);
    }
    Ok(out)
}

/// Builds the network from checkpoint tensors, recording what it used.
struct Loader {
    tensors: BTreeMap<String, TensorData>,
    path: PathBuf,
    device: Device,
    prefix: String,
    used: BTreeSet<String>,
    loaded: Vec<String>,
    initialised: Vec<String>,
}

impl Loader {
    fn new(tensors: BTreeMap<String, TensorData>, path: PathBuf, device: Device) -> Self {
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert.".to_string()
        } else {
            String::new()
        };
        Loader {
            tensors,
            path,
            device,
            prefix,
            used: BTreeSet::new(),
            loaded: Vec::new(),
            initialised: Vec::new(),
        }
    }

    /// The full name of `name` (prefix added) among `alternatives` (suffix spellings) present
    /// in the file.
    fn find(&self, name: &str) -> Option<String> {
        let full = format!("{}{name}", self.prefix);
        if self.tensors.contains_key(&full) {
            return Some(full);
        }
        // TF-converted checkpoints name LayerNorm parameters gamma/beta.
        let alt = if let Some(stem) = full.strip_suffix("LayerNorm.weight") {
            format!("{stem}LayerNorm.gamma")
        } else if let Some(stem) = full.strip_suffix("LayerNorm.bias") {
            format!("{stem}LayerNorm.beta")
        } else {
            return None;
        };
        self.tensors.contains_key(&alt).then_some(alt)
    }

    /// The tensor `name` with shape `expected` (PyTorch layout), flat.
    fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, BertError> {
        let full = self.find(name).ok_or_else(|| BertError::MissingTensor {
            name: format!("{}{name}", self.prefix),
            path: self.path.clone(),
        })?;
        self.take_full(&full, expected)
    }

    fn take_full(&mut self, full: &str, expected: &[usize]) -> Result<Vec<f32>, BertError> {
        let data = &self.tensors[full];
        let found = data.shape().to_vec();
        if found != expected {
            return Err(BertError::ShapeMismatch {
                name: full.to_string(),
                expected: expected.to_vec(),
                found,
                path: self.path.clone(),
            });
        }
        let values = data
            .clone()
            .try_into_vec::<f32>()
            .map_err(|e| BertError::Weights {
                path: self.path.clone(),
                message: format!("{full}: {e:?}"),
            })?;
        self.used.insert(full.to_string());
        self.loaded.push(full.to_string());
        Ok(values)
    }

    fn tensor1(&self, v: Vec<f32>, n: usize) -> Param<Tensor<1>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), &self.device))
    }

    fn tensor2(&self, v: Vec<f32>, shape: [usize; 2]) -> Param<Tensor<2>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), &self.device))
    }

    /// A PyTorch `nn.Linear` (`weight [out, in]`, transposed to Burn's `[in, out]`, `bias`).
    fn linear(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Linear, BertError> {
        let w = self.take(&format!("{name}.weight"), &[d_out, d_in])?;
        let b = self.take(&format!("{name}.bias"), &[d_out])?;
        Ok(self.make_linear(w, b, d_in, d_out))
    }

    fn make_linear(&self, w: Vec<f32>, b: Vec<f32>, d_in: usize, d_out: usize) -> Linear {
        let mut t = vec![0f32; w.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = w[o * d_in + i];
            }
        }
        Linear {
            weight: self.tensor2(t, [d_in, d_out]),
            bias: Some(self.tensor1(b, d_out)),
        }
    }

    fn layer_norm(&mut self, name: &str, d: usize, eps: f64) -> Result<LayerNorm, BertError> {
        let g = self.take(&format!("{name}.weight"), &[d])?;
        let b = self.take(&format!("{name}.bias"), &[d])?;
        let mut ln = layer_norm(d, eps, &self.device);
        ln.gamma = self.tensor1(g, d);
        ln.beta = Some(self.tensor1(b, d));
        Ok(ln)
    }

    fn embedding(&mut self, name: &str, n: usize, d: usize) -> Result<Embedding, BertError> {
        let w = self.take(&format!("{name}.weight"), &[n, d])?;
        Ok(Embedding {
            weight: self.tensor2(w, [n, d]),
        })
    }

    /// An optional Linear at the full name `full` (no prefix added): `Some` when both tensors
    /// are present with the right shapes; otherwise `None`, the file's tensors left unused.
    fn optional_linear(
        &mut self,
        full: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Option<Linear>, BertError> {
        let (wn, bn) = (format!("{full}.weight"), format!("{full}.bias"));
        let fits = |n: &str, shape: &[usize]| {
            self.tensors
                .get(n)
                .is_some_and(|t| t.shape().as_slice() == shape)
        };
        if !(fits(&wn, &[d_out, d_in]) && fits(&bn, &[d_out])) {
            return Ok(None);
        }
        let w = self.take_full(&wn, &[d_out, d_in])?;
        let b = self.take_full(&bn, &[d_out])?;
        Ok(Some(self.make_linear(w, b, d_in, d_out)))
    }

    fn build(&mut self, config: &BertClassifierConfig) -> Result<BertClassifier, BertError> {
        let c = &config.bert;
        let h = c.hidden_size;
        let eps = c.layer_norm_eps;
        let fresh = config.init(&self.device);
        let embeddings = BertEmbeddings {
            word: self.embedding("embeddings.word_embeddings", c.vocab_size, h)?,
            position: self.embedding(
                "embeddings.position_embeddings",
                c.max_position_embeddings,
                h,
            )?,
            token_type: self.embedding("embeddings.token_type_embeddings", c.type_vocab_size, h)?,
            norm: self.layer_norm("embeddings.LayerNorm", h, eps)?,
            dropout: fresh.embeddings.dropout.clone(),
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for (i, f) in fresh.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            layers.push(BertLayer {
                query: self.linear(&format!("{p}.attention.self.query"), h, h)?,
                key: self.linear(&format!("{p}.attention.self.key"), h, h)?,
                value: self.linear(&format!("{p}.attention.self.value"), h, h)?,
                attn_dropout: f.attn_dropout.clone(),
                attn_out: self.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: self.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: self.linear(
                    &format!("{p}.intermediate.dense"),
                    h,
                    c.intermediate_size,
                )?,
                output: self.linear(&format!("{p}.output.dense"), c.intermediate_size, h)?,
                out_norm: self.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                dropout: f.dropout.clone(),
                heads: c.num_attention_heads,
                act: c.hidden_act.clone(),
            });
        }
        let pooler = match config.pooling {
            Pooling::Mean => None,
            Pooling::Cls => {
                let full = format!("{}pooler.dense", self.prefix);
                let present = self.tensors.contains_key(&format!("{full}.weight"))
                    || self.tensors.contains_key(&format!("{full}.bias"));
                if present {
                    // Part of the encoder: a wrong shape is an error, not a silent re-init.
                    Some(self.linear("pooler.dense", h, h)?)
                } else {
                    self.initialised.push("pooler.dense.weight".into());
                    self.initialised.push("pooler.dense.bias".into());
                    fresh.pooler.clone()
                }
            }
        };
        let classifier = match self.optional_linear("classifier", h, config.num_outputs)? {
            Some(l) => l,
            None => {
                self.initialised.push("classifier.weight".into());
                self.initialised.push("classifier.bias".into());
                fresh.classifier.clone()
            }
        };
        Ok(BertClassifier {
            embeddings,
            layers,
            pooler,
            dropout: fresh.dropout.clone(),
            classifier,
            mean_pooling: config.pooling == Pooling::Mean,
        })
    }

    fn finish(self) -> LoadReport {
        let ignored = self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect();
        LoadReport {
            loaded: self.loaded,
            initialised: self.initialised,
            ignored,
        }
    }
}
