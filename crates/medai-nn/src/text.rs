//! Text classifiers: a bidirectional GRU or LSTM with additive attention pooling
//! (`h_t = f(W x_t + U h_{t-1} + b)`, `a = softmax(vᵀ tanh(W_a h + b_a))`, `c = Σ a_t h_t`), a
//! Kim-style CNN (parallel 1-D convolutions, max over time) and a BERT-family encoder
//! ([`crate::bert`]), behind one [`TextModel`] that the one trainer
//! ([`crate::training::fit_objective`]) trains through [`TextSource`].
//!
//! The recurrent layer is our own ([`BiRecurrent`]): both directions in one loop with a
//! block-diagonal recurrent weight, the input projections of every time step hoisted out of the
//! loop (PyTorch's gate equations). The backward direction runs over each sequence reversed
//! within its own length, so right padding never reaches a real token's state in either
//! direction.
//!
//! Explanations: the attention weights of the recurrent models ([`TextModel::attention`]) and
//! gradient × input on the token embeddings for every architecture ([`grad_x_input`]).

use crate::TrainError;
use crate::bert::{BertClassifier, BertClassifierConfig};
use crate::training::{BatchFn, BatchSource, Network, Split};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, softmax, tanh};
use medai_text::{Encoded, pad_batch};
use serde::{Deserialize, Serialize};

/// Text network architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextArch {
    /// Bidirectional GRU + additive attention.
    #[serde(rename = "bigru-attn")]
    BigruAttn,
    /// Bidirectional LSTM + additive attention.
    #[serde(rename = "bilstm-attn")]
    BilstmAttn,
    /// Kim-style CNN (kernel sizes 3/4/5, max over time).
    #[serde(rename = "cnn")]
    Cnn,
    /// A pretrained BERT-family encoder with a classification head.
    #[serde(rename = "bert")]
    Bert,
}

impl TextArch {
    /// Parse a `--arch` value.
    pub fn parse(s: &str) -> Option<TextArch> {
        match s {
            "bigru-attn" => Some(TextArch::BigruAttn),
            "bilstm-attn" => Some(TextArch::BilstmAttn),
            "cnn" => Some(TextArch::Cnn),
            "bert" => Some(TextArch::Bert),
            _ => None,
        }
    }
    /// The `--arch` name.
    pub fn name(self) -> &'static str {
        match self {
            TextArch::BigruAttn => "bigru-attn",
            TextArch::BilstmAttn => "bilstm-attn",
            TextArch::Cnn => "cnn",
            TextArch::Bert => "bert",
        }
    }
}

/// Everything needed to rebuild a text network (stored in the bundle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextModelConfig {
    /// Architecture.
    pub arch: TextArch,
    /// Vocabulary size (word models).
    pub vocab_size: usize,
    /// Embedding width (word models).
    pub embed_dim: usize,
    /// Hidden size per direction (recurrent models).
    pub hidden: usize,
    /// Width of the attention layer (recurrent models).
    pub attn_dim: usize,
    /// Kernel sizes (CNN).
    pub kernel_sizes: Vec<usize>,
    /// Filters per kernel size (CNN).
    pub filters: usize,
    /// Dropout on embeddings and the pooled vector.
    pub dropout: f64,
    /// Outputs (classes; 1 for binary; labels for multi-label).
    pub num_outputs: usize,
    /// The BERT encoder's configuration (`arch = bert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert: Option<BertClassifierConfig>,
}

impl TextModelConfig {
    /// A word-level model with the defaults (embedding 200, hidden 128, attention 128, CNN
    /// 100 filters of widths 3/4/5, dropout 0.5).
    pub fn word(arch: TextArch, vocab_size: usize, num_outputs: usize) -> Self {
        TextModelConfig {
            arch,
            vocab_size,
            embed_dim: 200,
            hidden: 128,
            attn_dim: 128,
            kernel_sizes: vec![3, 4, 5],
            filters: 100,
            dropout: 0.5,
            num_outputs,
            bert: None,
        }
    }

    /// Build the network with random weights.
    pub fn init(&self, device: &Device) -> Result<TextModel, TrainError> {
        Ok(match self.arch {
            TextArch::BigruAttn | TextArch::BilstmAttn => {
                TextModel::Rnn(TextRnn::new(self, device))
            }
            TextArch::Cnn => TextModel::Cnn(TextCnn::new(self, device)),
            TextArch::Bert => TextModel::Bert(
                self.bert
                    .as_ref()
                    .ok_or_else(|| {
                        TrainError::Config("bert architecture without its configuration".into())
                    })?
                    .init(device),
            ),
        })
    }
}

/// A bidirectional recurrent layer (GRU or LSTM, PyTorch's gate equations) over right-padded
/// `[batch, time, input]`, returning `[batch, time, 2 × hidden]` (forward states, then backward
/// states, both aligned with the input positions).
///
/// Both directions run in one loop: the state is `[h_fwd | h_bwd]` and the recurrent weight is
/// block-diagonal, so each step is one `[batch, 2h] × [2h, gates × 2h]` product and a dozen
/// element-wise operations for both directions together. The input projections of every step
/// are one product before the loop; the backward direction reads them reversed within each
/// row's length (projection and reversal commute), so padding never reaches a real position.
/// Gate columns are laid out `[gate][direction][unit]`.
#[derive(Module, Debug)]
pub struct BiRecurrent {
    input: Linear,
    hidden_weight: burn::module::Param<Tensor<2>>,
    hidden_bias: burn::module::Param<Tensor<1>>,
    hidden_size: usize,
    lstm: bool,
}

impl BiRecurrent {
    /// A bidirectional GRU (`lstm = false`, gates r, z, n) or LSTM (gates i, f, g, o),
    /// initialised uniformly in ±1/√hidden as PyTorch does.
    pub fn new(input: usize, hidden: usize, lstm: bool, device: &Device) -> BiRecurrent {
        let gates = if lstm { 4 } else { 3 };
        let k = 1.0 / (hidden as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        let width = gates * 2 * hidden;
        BiRecurrent {
            input: LinearConfig::new(input, width)
                .with_initializer(init.clone())
                .init(device),
            hidden_weight: init.init([2 * hidden, width], device),
            hidden_bias: init.init([width], device),
            hidden_size: hidden,
            lstm,
        }
    }

    /// The layer with PyTorch's `nn.GRU`/`nn.LSTM(bidirectional=True)` weights: for direction
    /// `d` (0 forward, 1 reverse) `w_ih[d]` is `[gates × hidden, input]`, `w_hh[d]` is
    /// `[gates × hidden, hidden]`, `b_ih[d]` and `b_hh[d]` are `[gates × hidden]`, all row-major
    /// (`weight_ih_l0`, `weight_ih_l0_reverse`, …).
    #[allow(clippy::too_many_arguments)]
    pub fn from_pytorch(
        input: usize,
        hidden: usize,
        lstm: bool,
        w_ih: [&[f32]; 2],
        w_hh: [&[f32]; 2],
        b_ih: [&[f32]; 2],
        b_hh: [&[f32]; 2],
        device: &Device,
    ) -> Result<BiRecurrent, TrainError> {
        let g = if lstm { 4 } else { 3 };
        let width = g * 2 * hidden;
        for d in 0..2 {
            for (name, v, n) in [
                ("weight_ih", w_ih[d], g * hidden * input),
                ("weight_hh", w_hh[d], g * hidden * hidden),
                ("bias_ih", b_ih[d], g * hidden),
                ("bias_hh", b_hh[d], g * hidden),
            ] {
                if v.len() != n {
                    return Err(TrainError::Config(format!(
                        "{name} (direction {d}): expected {n} values, found {}",
                        v.len()
                    )));
                }
            }
        }
        let col = |gate: usize, d: usize, u: usize| gate * 2 * hidden + d * hidden + u;
        let mut wi = vec![0f32; input * width];
        let mut bi = vec![0f32; width];
        let mut wh = vec![0f32; 2 * hidden * width];
        let mut bh = vec![0f32; width];
        for d in 0..2 {
            for gate in 0..g {
                for u in 0..hidden {
                    let row = gate * hidden + u;
                    let c = col(gate, d, u);
                    for e in 0..input {
                        wi[e * width + c] = w_ih[d][row * input + e];
                    }
                    for k in 0..hidden {
                        wh[(d * hidden + k) * width + c] = w_hh[d][row * hidden + k];
                    }
                    bi[c] = b_ih[d][row];
                    bh[c] = b_hh[d][row];
                }
            }
        }
        let mut m = BiRecurrent::new(input, hidden, lstm, device);
        let t2 = |v: Vec<f32>, r: usize, c: usize| {
            burn::module::Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(v, [r, c]),
                device,
            ))
        };
        let t1 = |v: Vec<f32>| {
            burn::module::Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(v, [width]),
                device,
            ))
        };
        m.input.weight = t2(wi, input, width);
        m.input.bias = Some(t1(bi));
        m.hidden_weight = t2(wh, 2 * hidden, width);
        m.hidden_bias = t1(bh);
        Ok(m)
    }

    /// 1 where column `c` of a `[gate][direction][unit]` layout belongs to the forward direction.
    fn forward_columns(&self, width: usize, device: &Device) -> Tensor<1> {
        let h = self.hidden_size;
        let v: Vec<f32> = (0..width)
            .map(|c| ((c % (2 * h)) < h) as u8 as f32)
            .collect();
        Tensor::from_data(TensorData::new(v, [width]), device)
    }

    /// States of both directions at every position of right-padded rows of real `lengths`;
    /// `reverse` is [`reverse_index`] of the batch.
    pub fn forward(&self, x: Tensor<3>, reverse: Tensor<1, Int>, lengths: &[usize]) -> Tensor<3> {
        let fused = crate::kernels::fused_available(&x.device());
        self.forward_with(x, reverse, lengths, fused)
    }

    /// [`Self::forward`], through medai's fused GRU/LSTM kernel (`fused`, CPU only) or the engine's
    /// op-by-op recurrence.
    pub(crate) fn forward_with(
        &self,
        x: Tensor<3>,
        reverse: Tensor<1, Int>,
        lengths: &[usize],
        fused: bool,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let h2 = 2 * self.hidden_size;
        let device = x.device();
        let gx = self.input.forward(x);
        let width = gx.dims()[2];
        #[cfg(feature = "flex")]
        if fused {
            // medai's fused kernel: the whole recurrence (and its backward) in one operation,
            // reading and writing the reverse direction at reversed positions itself.
            return crate::kernels::birnn(
                gx,
                self.hidden_weight.val(),
                self.hidden_bias.val(),
                lengths,
            );
        }
        #[cfg(not(feature = "flex"))]
        let _ = (fused, lengths);
        let fwd = self.forward_columns(width, &device).reshape([1, 1, width]);
        let gx_rev = gx
            .clone()
            .reshape([b * t, width])
            .select(0, reverse.clone())
            .reshape([b, t, width]);
        let gx = gx * fwd.clone() + gx_rev * (fwd.ones_like() - fwd);
        let gx = gx.swap_dims(0, 1); // [t, b, width]
        // Block-diagonal recurrent weight: rows of one direction feed only its own columns.
        let rows: Vec<f32> = (0..h2 * width)
            .map(|i| {
                let (r, c) = (i / width, i % width);
                ((r < self.hidden_size) == ((c % h2) < self.hidden_size)) as u8 as f32
            })
            .collect();
        let block = Tensor::<2>::from_data(TensorData::new(rows, [h2, width]), &device);
        let w = self.hidden_weight.val() * block;
        let bias = self.hidden_bias.val().reshape([1, width]);
        let mut h = Tensor::<2>::zeros([b, h2], &device);
        let mut c = Tensor::<2>::zeros([b, h2], &device);
        let mut out = Vec::with_capacity(t);
        // Steps are read from blocks of ~√t steps: the backward pass of a slice fills a zero
        // tensor the size of what it was sliced from, so slicing every step straight from the
        // whole sequence would cost O(t²) memory traffic.
        let block = (t as f64).sqrt().ceil().max(1.0) as usize;
        let steps = (0..t).step_by(block).flat_map(|t0| {
            let t1 = (t0 + block).min(t);
            gx.clone().slice([t0..t1, 0..b, 0..width]).iter_dim(0)
        });
        for gx_t in steps {
            let gx_t = gx_t.reshape([b, width]);
            let gh = h.clone().matmul(w.clone()) + bias.clone();
            if self.lstm {
                let g = gx_t + gh;
                let s_if = sigmoid(g.clone().slice([0..b, 0..2 * h2]));
                let i = s_if.clone().slice([0..b, 0..h2]);
                let f = s_if.slice([0..b, h2..2 * h2]);
                let gg = tanh(g.clone().slice([0..b, 2 * h2..3 * h2]));
                let o = sigmoid(g.slice([0..b, 3 * h2..4 * h2]));
                c = f * c + i * gg;
                h = o * tanh(c.clone());
            } else {
                let rz = sigmoid(
                    gx_t.clone().slice([0..b, 0..2 * h2]) + gh.clone().slice([0..b, 0..2 * h2]),
                );
                let r = rz.clone().slice([0..b, 0..h2]);
                let z = rz.slice([0..b, h2..2 * h2]);
                let n =
                    tanh(gx_t.slice([0..b, 2 * h2..3 * h2]) + r * gh.slice([0..b, 2 * h2..3 * h2]));
                // h' = (1 − z) n + z h = n + z (h − n)
                h = n.clone() + z * (h - n);
            }
            out.push(h.clone());
        }
        self.align(Tensor::stack::<3>(out, 1), reverse)
    }

    /// Put the backward half of `[b, t, 2h]` states (computed in reversed time) back in input
    /// order.
    fn align(&self, out: Tensor<3>, reverse: Tensor<1, Int>) -> Tensor<3> {
        let [b, t, h2] = out.dims();
        let device = out.device();
        let out_rev = out
            .clone()
            .reshape([b * t, h2])
            .select(0, reverse)
            .reshape([b, t, h2]);
        let half: Vec<f32> = (0..h2)
            .map(|i| (i < self.hidden_size) as u8 as f32)
            .collect();
        let half = Tensor::<1>::from_data(TensorData::new(half, [h2]), &device).reshape([1, 1, h2]);
        out * half.clone() + out_rev * (half.ones_like() - half)
    }
}

/// Row-major flat indices that reverse each row of `[batch, len]` within its own length
/// (padding positions map to themselves).
pub fn reverse_index(lengths: &[usize], len: usize) -> Vec<i64> {
    let mut idx = Vec::with_capacity(lengths.len() * len);
    for (b, &l) in lengths.iter().enumerate() {
        let l = l.min(len);
        for t in 0..len {
            let s = if t < l { l - 1 - t } else { t };
            idx.push((b * len + s) as i64);
        }
    }
    idx
}

/// Embedding → bidirectional GRU/LSTM → additive attention → dropout → linear.
#[derive(Module, Debug)]
pub struct TextRnn {
    embedding: Embedding,
    rnn: BiRecurrent,
    attn: Linear,
    attn_v: Linear,
    dropout: Dropout,
    head: Linear,
}

impl TextRnn {
    fn new(c: &TextModelConfig, device: &Device) -> TextRnn {
        let lstm = c.arch == TextArch::BilstmAttn;
        TextRnn {
            embedding: EmbeddingConfig::new(c.vocab_size, c.embed_dim).init(device),
            rnn: BiRecurrent::new(c.embed_dim, c.hidden, lstm, device),
            attn: LinearConfig::new(2 * c.hidden, c.attn_dim).init(device),
            attn_v: LinearConfig::new(c.attn_dim, 1)
                .with_bias(false)
                .init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
            head: LinearConfig::new(2 * c.hidden, c.num_outputs).init(device),
        }
    }

    /// Logits and attention weights `[batch, len]` from token embeddings `[batch, len, dim]`.
    pub fn forward_embeddings(&self, emb: Tensor<3>, input: &TextInput) -> (Tensor<2>, Tensor<2>) {
        let [b, t, _] = emb.dims();
        let emb = self.dropout.forward(emb);
        let h = self.rnn.forward(emb, input.reverse.clone(), &input.lengths); // [b, t, 2h]
        let hsz = h.dims()[2] / 2;
        let e = self.attn.forward(h.clone());
        let z = self.attn_v.forward(crate::kernels::tanh(e)).reshape([b, t]);
        let z = z.mask_fill(input.mask.clone().lower_elem(0.5), -1e9);
        let a = softmax(z, 1);
        let ctx = (h * a.clone().unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([b, 2 * hsz]);
        let logits = self.head.forward(self.dropout.forward(ctx));
        (logits, a)
    }
}

/// Embedding → parallel 1-D convolutions (ReLU) → max over the valid positions → dropout →
/// linear (Kim, 2014).
#[derive(Module, Debug)]
pub struct TextCnn {
    embedding: Embedding,
    convs: Vec<Conv1d>,
    kernel_sizes: Vec<usize>,
    dropout: Dropout,
    head: Linear,
}

impl TextCnn {
    fn new(c: &TextModelConfig, device: &Device) -> TextCnn {
        TextCnn {
            embedding: EmbeddingConfig::new(c.vocab_size, c.embed_dim).init(device),
            convs: c
                .kernel_sizes
                .iter()
                .map(|&k| Conv1dConfig::new(c.embed_dim, c.filters, k).init(device))
                .collect(),
            kernel_sizes: c.kernel_sizes.clone(),
            dropout: DropoutConfig::new(c.dropout).init(),
            head: LinearConfig::new(c.filters * c.kernel_sizes.len(), c.num_outputs).init(device),
        }
    }

    /// Logits from token embeddings `[batch, len, dim]` (`len` ≥ the widest kernel).
    pub fn forward_embeddings(&self, emb: Tensor<3>, input: &TextInput) -> Tensor<2> {
        let [b, t, _] = emb.dims();
        let x = self.dropout.forward(emb).swap_dims(1, 2); // [b, dim, t]
        let mut pooled = Vec::new();
        for (conv, &k) in self.convs.iter().zip(&self.kernel_sizes) {
            let y = relu(conv.forward(x.clone())); // [b, f, t - k + 1]
            let w = t + 1 - k;
            // A window is valid when its last token is real (sequences are right-padded).
            let valid = input
                .mask
                .clone()
                .slice([0..b, (k - 1)..t])
                .reshape([b, 1, w]);
            let f = y.dims()[1];
            pooled.push((y * valid).max_dim(2).reshape([b, f]));
        }
        let v = Tensor::cat(pooled, 1);
        self.head.forward(self.dropout.forward(v))
    }

    fn widest(&self) -> usize {
        self.kernel_sizes.iter().copied().max().unwrap_or(1)
    }
}

/// A batch of tokenised documents on the device (right-padded).
#[derive(Clone, Debug)]
pub struct TextInput {
    /// Token ids `[batch, len]`.
    pub ids: Tensor<2, Int>,
    /// Segment ids `[batch, len]` (BERT; zeros otherwise).
    pub type_ids: Tensor<2, Int>,
    /// 1 for tokens, 0 for padding `[batch, len]`.
    pub mask: Tensor<2>,
    /// Flat indices reversing each row within its length ([`reverse_index`]).
    pub reverse: Tensor<1, Int>,
    /// Real length of each row.
    pub lengths: Vec<usize>,
}

impl TextInput {
    /// Pad `docs` (to at least `min_len`) and move them to `device`.
    pub fn new(docs: &[&Encoded], pad_id: u32, min_len: usize, device: &Device) -> TextInput {
        let p = pad_batch(docs, pad_id, min_len);
        let lengths: Vec<usize> = docs.iter().map(|d| d.ids.len().min(p.len)).collect();
        let rev = reverse_index(&lengths, p.len);
        TextInput {
            ids: Tensor::from_data(TensorData::new(p.ids, [p.batch, p.len]), device),
            type_ids: Tensor::from_data(TensorData::new(p.type_ids, [p.batch, p.len]), device),
            mask: Tensor::from_data(TensorData::new(p.mask, [p.batch, p.len]), device),
            reverse: Tensor::from_data(TensorData::new(rev, [p.batch * p.len]), device),
            lengths,
        }
    }

    /// Documents `rows` (a non-empty range of this batch) on `device`, padded to the batch's
    /// length: one shard of a data-parallel step.
    pub fn shard(&self, rows: std::ops::Range<usize>, device: &Device) -> TextInput {
        use crate::training::{shard_int_rows, shard_rows};
        let len = self.ids.dims()[1];
        let lengths = self.lengths[rows.clone()].to_vec();
        let rev = reverse_index(&lengths, len);
        TextInput {
            ids: shard_int_rows(&self.ids, rows.clone(), device),
            type_ids: shard_int_rows(&self.type_ids, rows.clone(), device),
            mask: shard_rows(&self.mask, rows, device),
            reverse: Tensor::from_data(TensorData::new(rev, [lengths.len() * len]), device),
            lengths,
        }
    }
}

/// A text classifier of any architecture.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum TextModel {
    /// Bidirectional GRU/LSTM with attention.
    Rnn(TextRnn),
    /// Kim CNN.
    Cnn(TextCnn),
    /// BERT-family encoder.
    Bert(BertClassifier),
}

impl TextModel {
    /// The shortest padded length a batch needs (the CNN's widest kernel).
    pub fn min_len(&self) -> usize {
        match self {
            TextModel::Cnn(m) => m.widest(),
            _ => 1,
        }
    }

    /// Token embeddings `[batch, len, dim]`: what gradient × input attributes to (BERT: the
    /// sum of word, position and segment embeddings, before the embedding layer norm).
    pub fn embed(&self, input: &TextInput) -> Tensor<3> {
        match self {
            TextModel::Rnn(m) => m.embedding.forward(input.ids.clone()),
            TextModel::Cnn(m) => m.embedding.forward(input.ids.clone()),
            TextModel::Bert(m) => m.embed(input.ids.clone(), input.type_ids.clone()),
        }
    }

    /// Logits (and, for recurrent models, attention weights) from [`TextModel::embed`]'s output.
    pub fn forward_embeddings(
        &self,
        emb: Tensor<3>,
        input: &TextInput,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        match self {
            TextModel::Rnn(m) => {
                let (l, a) = m.forward_embeddings(emb, input);
                (l, Some(a))
            }
            TextModel::Cnn(m) => (m.forward_embeddings(emb, input), None),
            TextModel::Bert(m) => (m.forward_embeddings(emb, input.mask.clone()), None),
        }
    }

    /// Logits `[batch, outputs]`.
    pub fn forward(&self, input: &TextInput) -> Tensor<2> {
        self.forward_embeddings(self.embed(input), input).0
    }

    /// Attention weights `[batch, len]` of a recurrent model (`None` for the others).
    pub fn attention(&self, input: &TextInput) -> Option<Tensor<2>> {
        self.forward_embeddings(self.embed(input), input).1
    }

    /// Replace the word embedding matrix (`vocab × dim`, row-major) with pretrained vectors.
    pub fn set_word_vectors(self, matrix: Vec<f32>, device: &Device) -> Result<Self, TrainError> {
        let set = |e: Embedding| -> Result<Embedding, TrainError> {
            let [v, d] = e.weight.dims();
            if matrix.len() != v * d {
                return Err(TrainError::Config(format!(
                    "word vectors: expected {v} × {d} values, found {}",
                    matrix.len()
                )));
            }
            Ok(Embedding {
                weight: burn::module::Param::from_tensor(Tensor::from_data(
                    TensorData::new(matrix.clone(), [v, d]),
                    device,
                )),
            })
        };
        Ok(match self {
            TextModel::Rnn(mut m) => {
                m.embedding = set(m.embedding)?;
                TextModel::Rnn(m)
            }
            TextModel::Cnn(mut m) => {
                m.embedding = set(m.embedding)?;
                TextModel::Cnn(m)
            }
            TextModel::Bert(_) => {
                return Err(TrainError::Config(
                    "word vectors apply to word models, not bert".into(),
                ));
            }
        })
    }

    /// Number of scalar parameters.
    pub fn parameters(&self) -> usize {
        burn::module::Module::num_params(self)
    }
}

impl Network for TextModel {
    type Input = TextInput;
    fn outputs(&self, input: TextInput) -> Tensor<2> {
        self.forward(&input)
    }
    fn freeze_backbone(self) -> Self {
        match self {
            TextModel::Bert(m) => TextModel::Bert(m.freeze_backbone()),
            other => other,
        }
    }
    fn unfreeze_all(self) -> Self {
        match self {
            TextModel::Bert(m) => TextModel::Bert(m.unfreeze_all()),
            other => other,
        }
    }
}

/// An inference-mode copy of `model` (no dropout, no autodiff).
pub fn inference(model: &TextModel) -> TextModel {
    burn::module::Module::valid(model)
}

/// Tokenised documents with targets, split into training and validation rows.
pub struct TextSource<'a, T> {
    docs: &'a [Encoded],
    targets: &'a [T],
    pad_id: u32,
    min_len: usize,
    train: Vec<usize>,
    val: Vec<usize>,
    word_dropout: Option<(f64, u32, u64)>,
}

impl<'a, T> TextSource<'a, T> {
    /// Word dropout for training batches: each token becomes `unk_id` with probability `p`
    /// (seeded by `seed`, the epoch and the batch), a regulariser for word models trained from
    /// scratch on small corpora. Validation batches are never changed.
    pub fn with_word_dropout(mut self, p: f64, unk_id: u32, seed: u64) -> Self {
        self.word_dropout = (p > 0.0).then_some((p, unk_id, seed));
        self
    }

    /// `docs[i]` has target `targets[i]`; `train` and `val` are row indices.
    pub fn new(
        docs: &'a [Encoded],
        targets: &'a [T],
        pad_id: u32,
        min_len: usize,
        train: Vec<usize>,
        val: Vec<usize>,
    ) -> Self {
        TextSource {
            docs,
            targets,
            pad_id,
            min_len,
            train,
            val,
            word_dropout: None,
        }
    }
    fn rows(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

impl<T: Clone + Send + Sync> BatchSource for TextSource<'_, T> {
    type Input = TextInput;
    type Target = T;
    fn targets(&self, split: Split) -> Vec<T> {
        self.rows(split)
            .iter()
            .map(|&r| self.targets[r].clone())
            .collect()
    }
    fn for_each_batch(
        &self,
        split: Split,
        order: &[usize],
        batch_size: usize,
        epoch: u64,
        device: &Device,
        f: &mut BatchFn<'_, TextInput, T>,
    ) -> Result<(), TrainError> {
        let rows = self.rows(split);
        let bs = batch_size.max(1);
        let batches: Vec<Vec<usize>> = if split == Split::Train {
            length_buckets(order, bs, |i| self.docs[rows[i]].ids.len(), epoch)
        } else {
            // Validation outputs must come back in `order`.
            order.chunks(bs).map(|c| c.to_vec()).collect()
        };
        let dropout = self.word_dropout.filter(|_| split == Split::Train);
        for (bi, chunk) in batches.iter().enumerate() {
            let r: Vec<usize> = chunk.iter().map(|&i| rows[i]).collect();
            let d: Vec<&Encoded> = r.iter().map(|&i| &self.docs[i]).collect();
            let x = match dropout {
                None => TextInput::new(&d, self.pad_id, self.min_len, device),
                Some((p, unk, seed)) => {
                    use rand::{Rng, SeedableRng};
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                        seed ^ (epoch << 32) ^ (bi as u64).wrapping_mul(0x9e37_79b9),
                    );
                    let dropped: Vec<Encoded> = d
                        .iter()
                        .map(|e| Encoded {
                            ids: e
                                .ids
                                .iter()
                                .map(|&id| if rng.random_bool(p) { unk } else { id })
                                .collect(),
                            type_ids: e.type_ids.clone(),
                            tokens: Vec::new(),
                            spans: Vec::new(),
                        })
                        .collect();
                    let refs: Vec<&Encoded> = dropped.iter().collect();
                    TextInput::new(&refs, self.pad_id, self.min_len, device)
                }
            };
            let y: Vec<T> = r.iter().map(|&i| self.targets[i].clone()).collect();
            f(x, &y)?;
        }
        Ok(())
    }
    fn shard(
        &self,
        input: &TextInput,
        rows: std::ops::Range<usize>,
        device: &Device,
    ) -> Option<TextInput> {
        Some(input.shard(rows, device))
    }
}

/// Training batches with little padding: the (shuffled) `order` is cut into pools of 50
/// batches, each pool is sorted by length and cut into batches, and the batches are shuffled
/// (seeded by `epoch`). Every sample appears once; batches stay random from epoch to epoch.
pub fn length_buckets(
    order: &[usize],
    batch_size: usize,
    len: impl Fn(usize) -> usize,
    epoch: u64,
) -> Vec<Vec<usize>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut batches = Vec::new();
    for pool in order.chunks(batch_size * 50) {
        let mut p = pool.to_vec();
        p.sort_by_key(|&i| len(i));
        batches.extend(p.chunks(batch_size).map(|c| c.to_vec()));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x7e47 ^ epoch);
    batches.shuffle(&mut rng);
    batches
}

/// Documents per inference batch.
pub const PREDICT_BATCH: usize = 64;

/// Order of `docs` by length (longest first), so inference batches carry little padding.
fn by_length(docs: &[&Encoded]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(docs[i].ids.len()));
    order
}

fn rows_of(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [b, k] = t.dims();
    let v: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    (0..b).map(|i| v[i * k..(i + 1) * k].to_vec()).collect()
}

/// Raw outputs (logits) of every document, in input order. `model` should be in inference mode.
pub fn predict_logits(
    model: &TextModel,
    docs: &[&Encoded],
    pad_id: u32,
    device: &Device,
) -> Vec<Vec<f32>> {
    let order = by_length(docs);
    let mut out = vec![Vec::new(); docs.len()];
    for chunk in order.chunks(PREDICT_BATCH) {
        let d: Vec<&Encoded> = chunk.iter().map(|&i| docs[i]).collect();
        let x = TextInput::new(&d, pad_id, model.min_len(), device);
        for (row, &i) in rows_of(model.forward(&x)).into_iter().zip(chunk) {
            out[i] = row;
        }
    }
    out
}

/// One document's explanation: a weight per token (attention, or gradient × input summed over
/// the embedding dimension).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenWeights {
    /// `attention` or `gradient-x-input`.
    pub method: String,
    /// The class explained.
    pub target: usize,
    /// One weight per token of the encoded document.
    pub weights: Vec<f32>,
}

/// Attention weights of a recurrent model for each document (`None` for other architectures).
pub fn attention_weights(
    model: &TextModel,
    docs: &[&Encoded],
    pad_id: u32,
    device: &Device,
) -> Option<Vec<Vec<f32>>> {
    if !matches!(model, TextModel::Rnn(_)) {
        return None;
    }
    let mut out = Vec::with_capacity(docs.len());
    for chunk in docs.chunks(PREDICT_BATCH) {
        let x = TextInput::new(chunk, pad_id, model.min_len(), device);
        let a = rows_of(model.attention(&x)?);
        for (d, row) in chunk.iter().zip(a) {
            out.push(row[..d.ids.len().min(row.len())].to_vec());
        }
    }
    Some(out)
}

/// Gradient × input attributions: for each document, `Σ_d ∂ logit_target / ∂ e_{t,d} · e_{t,d}`
/// per token (for one sigmoid output and target 0, the logit's negative). `model` should be in
/// inference mode.
pub fn grad_x_input(
    model: &TextModel,
    docs: &[&Encoded],
    targets: &[usize],
    pad_id: u32,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TrainError> {
    if targets.len() != docs.len() {
        return Err(TrainError::Config(format!(
            "{} targets for {} documents",
            targets.len(),
            docs.len()
        )));
    }
    let mut out = Vec::with_capacity(docs.len());
    for (chunk, tchunk) in docs
        .chunks(PREDICT_BATCH)
        .zip(targets.chunks(PREDICT_BATCH))
    {
        let x = TextInput::new(chunk, pad_id, model.min_len(), device);
        let emb = model.embed(&x).detach().inner();
        let [b, t, _] = emb.dims();
        let leaf = emb.clone().autodiff().require_grad();
        let (logits, _) = model.forward_embeddings(leaf.clone(), &x);
        let [_, k] = logits.dims();
        let mut sel = vec![0f32; b * k];
        for (i, &c) in tchunk.iter().enumerate() {
            if k == 1 {
                sel[i] = if c == 1 { 1.0 } else { -1.0 };
            } else if c < k {
                sel[i * k + c] = 1.0;
            } else {
                return Err(TrainError::Config(format!(
                    "explain: class {c} but the model has {k} outputs"
                )));
            }
        }
        let sel = Tensor::<2>::from_data(TensorData::new(sel, [b, k]), &logits.device());
        let grads = (logits * sel).sum().backward();
        let g = leaf
            .grad(&grads)
            .ok_or_else(|| {
                TrainError::Config("explain: no gradient reached the embeddings".into())
            })?
            .inner();
        let attr = (g * emb).sum_dim(2).reshape([b, t]);
        for (d, row) in chunk.iter().zip(rows_of(attr)) {
            out.push(row[..d.ids.len().min(row.len())].to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused GRU and LSTM kernels against the engine's op-by-op recurrence: outputs and the
    /// gradients of every parameter and of the input agree to 1e-4 on ragged lengths.
    #[cfg(feature = "flex")]
    #[test]
    fn fused_rnn_matches_engine_ops_forward_and_backward() {
        for lstm in [false, true] {
            fused_matches_engine(lstm);
        }
    }

    #[cfg(feature = "flex")]
    fn fused_matches_engine(lstm: bool) {
        assert!(crate::kernels::fused_available(&Device::default()));
        let device = Device::default().autodiff();
        let (b, t, e, h) = (5, 9, 7, 6);
        let lengths = [9, 4, 1, 7, 9];
        let x: Vec<f32> = (0..b * t * e)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let weights: Vec<f32> = (0..b * t * 2 * h)
            .map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0)
            .collect();
        let layer = BiRecurrent::new(e, h, lstm, &device);
        let run = |fused: bool| {
            let x = Tensor::<3>::from_data(TensorData::new(x.clone(), [b, t, e]), &device)
                .require_grad();
            let rev = Tensor::<1, Int>::from_data(
                TensorData::new(reverse_index(&lengths, t), [b * t]),
                &device,
            );
            let out = layer.forward_with(x.clone(), rev, &lengths, fused);
            let c =
                Tensor::<3>::from_data(TensorData::new(weights.clone(), [b, t, 2 * h]), &device);
            let grads = (out.clone() * c).sum().backward();
            let flat = |v: Option<Tensor<3>>| v.unwrap().into_data().try_into_vec::<f32>().unwrap();
            let flat2 =
                |v: Option<Tensor<2>>| v.unwrap().into_data().try_into_vec::<f32>().unwrap();
            let flat1 =
                |v: Option<Tensor<1>>| v.unwrap().into_data().try_into_vec::<f32>().unwrap();
            vec![
                out.into_data().try_into_vec::<f32>().unwrap(),
                flat(x.grad(&grads)),
                flat2(layer.hidden_weight.grad(&grads)),
                flat1(layer.hidden_bias.grad(&grads)),
                flat2(layer.input.weight.grad(&grads)),
            ]
        };
        let (fused, engine) = (run(true), run(false));
        for (name, (a, b)) in ["output", "d input", "d w_hh", "d b_hh", "d w_ih"]
            .iter()
            .zip(fused.iter().zip(&engine))
        {
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "lstm={lstm} {name}: max difference {worst}");
            assert!(
                a.iter().any(|v| *v != 0.0),
                "lstm={lstm} {name} is all zero"
            );
        }
    }

    #[test]
    fn a_shard_is_the_batch_of_its_documents() {
        let device = Device::default();
        let doc = |ids: Vec<u32>| Encoded {
            type_ids: vec![0; ids.len()],
            tokens: Vec::new(),
            spans: Vec::new(),
            ids,
        };
        let docs = [
            doc(vec![4, 5, 6]),
            doc(vec![7, 8, 9, 10, 11]),
            doc(vec![12, 13]),
            doc(vec![14, 15, 16, 17]),
        ];
        let refs: Vec<&Encoded> = docs.iter().collect();
        let full = TextInput::new(&refs, 0, 1, &device);
        let ints = |t: &Tensor<2, Int>| t.clone().into_data().convert::<i64>().try_to_vec::<i64>();
        let rev = |t: &Tensor<1, Int>| t.clone().into_data().convert::<i64>().try_to_vec::<i64>();
        for rows in [0..2, 1..3, 3..4] {
            let got = full.shard(rows.clone(), &device);
            // The same documents on their own, padded to the whole batch's length.
            let want = TextInput::new(&refs[rows.clone()], 0, 5, &device);
            assert_eq!(
                ints(&got.ids).unwrap(),
                ints(&want.ids).unwrap(),
                "{rows:?}"
            );
            assert_eq!(ints(&got.type_ids).unwrap(), ints(&want.type_ids).unwrap());
            assert_eq!(
                got.mask.clone().into_data().try_to_vec::<f32>().unwrap(),
                want.mask.clone().into_data().try_to_vec::<f32>().unwrap()
            );
            assert_eq!(rev(&got.reverse).unwrap(), rev(&want.reverse).unwrap());
            assert_eq!(got.lengths, want.lengths);
        }
    }

    #[test]
    fn reverse_index_reverses_within_length() {
        assert_eq!(reverse_index(&[3, 1], 4), vec![2, 1, 0, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn length_buckets_cover_every_sample_once_with_sorted_batches() {
        let order: Vec<usize> = (0..1000).rev().collect();
        let b = length_buckets(&order, 16, |i| (i * 7919) % 300, 3);
        let mut all: Vec<usize> = b.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(b.iter().all(|c| c.len() <= 16));
        assert!(b.iter().all(|c| {
            c.windows(2)
                .all(|w| (w[0] * 7919) % 300 <= (w[1] * 7919) % 300)
        }));
        assert_ne!(b, length_buckets(&order, 16, |i| (i * 7919) % 300, 4));
    }
}
