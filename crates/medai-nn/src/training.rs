//! The trainer: one loop for every task type. A task supplies a [`Network`], a [`BatchSource`]
//! (its data) and an [`Objective`] (the loss that trains the network and the validation score
//! that picks the best epoch: cross-entropy and AUC for classifiers, a count likelihood for
//! forecasters). The trainer does optimisation (Adam with Keras' defaults, AdamW, SGD), LR
//! schedules, early stopping on the validation score, best-checkpoint keeping, resumable
//! checkpoints, a progress bar and a JSON-lines log.
//!
//! # Several devices (data parallelism)
//!
//! With more than one device in [`TrainConfig::devices`], every optimiser step cuts its batch
//! into one contiguous shard per device (sizes as equal as possible; `batch_size` stays the
//! global batch). The first (main) device runs its shard on the calling thread with the model
//! itself; every other device gets a copy of the current weights (`Module::fork`) on its own
//! thread. Each device runs forward and backward of its shard; the gradients move to the main
//! device (`GradientsParams::to_device`), where they are summed (`GradientsAccumulator`), each
//! shard's loss weighted by its share of the batch ([`Objective::shard_weight`]), so the sum is
//! the gradient of the whole batch's loss. One optimiser step on the main device follows, and the
//! next step copies the updated weights to the other devices again. Validation, the weight
//! average, checkpoints and the returned model live on the main device.
//!
//! Batch normalisation uses each shard's own statistics in the forward pass (as PyTorch's
//! `DistributedDataParallel` without `SyncBatchNorm`); the running statistics kept are the main
//! device's, updated from its shard only (PyTorch's default `broadcast_buffers`). Dropout masks
//! come from each device's random generator, so a run on several devices is not bit-identical
//! to a run on one when the network has dropout or batch normalisation; without them the two
//! agree up to float rounding of the gradient sum.

use crate::TrainError;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsAccumulator, GradientsParams, SgdConfig};
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A network that maps a batch input to raw outputs `[batch, outputs]`: class logits for a
/// classifier, distribution parameters for a forecaster. Its [`Objective`] reads them.
pub trait Network: Module + Clone + Send {
    /// The on-device batch input (`Send`: with several devices, shards of it move to worker
    /// threads).
    type Input: Send;
    /// Raw outputs for a batch (classifiers: 1 logit column for binary, K for K classes).
    fn outputs(&self, input: Self::Input) -> Tensor<2>;
    /// Freeze everything but the head (for transfer learning).
    fn freeze_backbone(self) -> Self {
        self
    }
    /// Undo [`Network::freeze_backbone`].
    fn unfreeze_all(self) -> Self {
        self
    }
}

/// What a task learns: the training loss on a batch, and the validation figures that choose the
/// best epoch and drive early stopping.
pub trait Objective: Sync {
    /// One sample's target (a class index; the next values of a series).
    type Target: Clone + Send + Sync;
    /// The (differentiable) mean training loss of a batch of outputs.
    fn loss(&self, outputs: Tensor<2>, targets: &[Self::Target]) -> Tensor<1>;
    /// Validation figures from the outputs of every validation sample (one row each).
    fn validate(&self, outputs: &[Vec<f32>], targets: &[Self::Target]) -> Validation;
    /// What [`Objective::loss`] divides by for these targets (default: their number, for a
    /// mean over samples). With several devices the loss of each shard of a batch is weighted
    /// by its share of this figure, which makes the combined gradient that of the whole batch's
    /// loss; a loss averaged over something else (present labels only) says so here.
    fn shard_weight(&self, targets: &[Self::Target]) -> f64 {
        targets.len() as f64
    }
}

/// Validation figures of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    /// The score that picks the best epoch (higher is better): AUC, or minus the mean negative
    /// log-likelihood.
    pub score: f64,
    /// Mean validation loss (unweighted).
    pub loss: f64,
    /// Accuracy, for classifiers.
    pub accuracy: Option<f64>,
}

/// The classification objective: (class-weighted) binary or softmax cross-entropy; validation
/// by AUC (binary: positive class; multi-class: macro one-vs-rest), accuracy and log-loss.
#[derive(Clone, Debug)]
pub struct ClassObjective {
    /// Number of classes.
    pub num_classes: usize,
    /// Weight of each class in the training loss.
    pub weights: Vec<f32>,
    /// Label smoothing ε of the training loss (0: off; see [`TrainConfig::label_smoothing`]).
    pub label_smoothing: f32,
}

impl ClassObjective {
    /// Class weights of `kind` computed from the training `labels`.
    pub fn new(kind: ClassWeights, labels: &[usize], num_classes: usize) -> Self {
        ClassObjective {
            num_classes,
            weights: class_weights(kind, labels, num_classes),
            label_smoothing: 0.0,
        }
    }

    /// The same objective trained against smoothed labels (ε in [0, 1)).
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Self {
        self.label_smoothing = epsilon as f32;
        self
    }
}

impl Objective for ClassObjective {
    type Target = usize;
    fn loss(&self, logits: Tensor<2>, y: &[usize]) -> Tensor<1> {
        let w: Vec<f32> = y.iter().map(|&l| self.weights[l]).collect();
        if self.num_classes == 2 && logits.dims()[1] == 1 {
            crate::loss::bce_with_logits_smoothed(logits, y, &w, self.label_smoothing)
        } else {
            crate::loss::cross_entropy_smoothed(logits, y, &w, self.label_smoothing)
        }
    }
    fn validate(&self, outputs: &[Vec<f32>], labels: &[usize]) -> Validation {
        let probs: Vec<Vec<f64>> = outputs.iter().map(|o| probabilities_row(o)).collect();
        let (auc, acc, loss) = quick_metrics(labels, &probs);
        Validation {
            score: auc,
            loss,
            accuracy: Some(acc),
        }
    }
}

/// [`ClassObjective`] with another validation score choosing the best epoch: accuracy (ties
/// broken by the lower validation loss) or minus the validation log-loss. For many-class
/// problems (text topics) macro AUC keeps rising after accuracy and loss have stopped improving.
#[derive(Clone, Debug)]
pub struct SelectBy {
    /// The loss and figures.
    pub inner: ClassObjective,
    /// `accuracy` or `loss`.
    pub score: Selection,
}

/// What picks the best epoch of a classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// Validation AUC (the default of [`ClassObjective`]).
    Auc,
    /// Validation accuracy.
    Accuracy,
    /// Minus the validation log-loss.
    Loss,
}

impl Objective for SelectBy {
    type Target = usize;
    fn loss(&self, outputs: Tensor<2>, targets: &[usize]) -> Tensor<1> {
        self.inner.loss(outputs, targets)
    }
    fn shard_weight(&self, targets: &[usize]) -> f64 {
        self.inner.shard_weight(targets)
    }
    fn validate(&self, outputs: &[Vec<f32>], targets: &[usize]) -> Validation {
        let mut v = self.inner.validate(outputs, targets);
        v.score = match self.score {
            Selection::Auc => v.score,
            Selection::Accuracy => v.accuracy.unwrap_or(f64::NAN),
            Selection::Loss => -v.loss,
        };
        v
    }
}

/// Class probabilities from one row of logits (sigmoid for one, softmax for several).
fn probabilities_row(o: &[f32]) -> Vec<f64> {
    if o.len() == 1 {
        let p = 1.0 / (1.0 + (-(o[0] as f64)).exp());
        vec![1.0 - p, p]
    } else {
        softmax_row(o)
    }
}

/// Softmax of one row of logits (computed in f64, shifted by the row's maximum).
pub fn softmax_row(o: &[f32]) -> Vec<f64> {
    let m = o.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = o.iter().map(|&x| (x as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Which part of the data a batch comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training data (augmented).
    Train,
    /// Validation data (never augmented).
    Val,
}

/// The per-batch callback of [`BatchSource::for_each_batch`]: `(input, targets)`.
pub type BatchFn<'a, I, T = usize> = dyn FnMut(I, &[T]) -> Result<(), TrainError> + 'a;

/// A task's data, as the trainer sees it.
pub trait BatchSource: Sync {
    /// The on-device batch input it produces.
    type Input;
    /// One sample's target (see [`Objective::Target`]).
    type Target: Clone + Send + Sync;
    /// Targets of every sample of `split`, in index order.
    fn targets(&self, split: Split) -> Vec<Self::Target>;
    /// Prepare the samples `order` of `split` in batches of `batch_size` (augmenting training
    /// batches with a stream seeded by `epoch`) and call `f(input, targets)` on each, in order.
    fn for_each_batch(
        &self,
        split: Split,
        order: &[usize],
        batch_size: usize,
        epoch: u64,
        device: &Device,
        f: &mut BatchFn<'_, Self::Input, Self::Target>,
    ) -> Result<(), TrainError>;
    /// Samples `rows` (a contiguous range of a batch this source prepared) as an input on
    /// `device`: one shard of a data-parallel step (see [`TrainConfig::devices`]). `None` (the
    /// default) where the source's batches cannot be cut; training on several devices then
    /// stops with [`TrainError::Config`] before its first step.
    fn shard(
        &self,
        input: &Self::Input,
        rows: Range<usize>,
        device: &Device,
    ) -> Option<Self::Input> {
        let _ = (input, rows, device);
        None
    }
}

/// Rows `rows` (first dimension) of a float tensor, on `device`: the building block of
/// [`BatchSource::shard`].
pub fn shard_rows<const D: usize>(t: &Tensor<D>, rows: Range<usize>, device: &Device) -> Tensor<D> {
    t.clone()
        .narrow(0, rows.start, rows.len())
        .to_device(device)
}

/// Rows `rows` (first dimension) of an integer tensor, on `device`.
pub fn shard_int_rows<const D: usize>(
    t: &Tensor<D, Int>,
    rows: Range<usize>,
    device: &Device,
) -> Tensor<D, Int> {
    t.clone()
        .narrow(0, rows.start, rows.len())
        .to_device(device)
}

/// Optimiser choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba), L2 weight decay.
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// SGD with momentum.
    Sgd,
}

/// Learning-rate schedule over epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// Constant learning rate.
    Constant,
    /// Cosine decay from `lr` to 0 over the epochs (per step).
    Cosine,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// chemprop's Noam schedule (per step): linear warm-up from `lr × start` to `lr` over
    /// `warmup_epochs`, then exponential decay to `lr × end` at the last step.
    Noam {
        /// Warm-up epochs.
        warmup_epochs: usize,
        /// Starting multiple of `lr`.
        start: f64,
        /// Final multiple of `lr`.
        end: f64,
    },
    /// Linear warm-up from 0 to `lr` over the first `warmup` fraction of all steps, then linear
    /// decay to 0 at the last step (BERT fine-tuning, as `transformers`'
    /// `get_linear_schedule_with_warmup`; the warm-up step count is rounded).
    Linear {
        /// Fraction of the steps spent warming up.
        warmup: f64,
    },
}

/// Class weighting for imbalanced data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeights {
    /// All classes weigh 1.
    None,
    /// `n / (k × count_c)`, as scikit-learn's `compute_class_weight("balanced")`.
    Balanced,
}

/// Training hyper-parameters (recorded in the bundle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε (Keras' default 1e-7, set explicitly; Burn's own default is 1e-5).
    pub epsilon: f32,
    /// Weight decay (L2 for Adam/SGD, decoupled for AdamW).
    pub weight_decay: f32,
    /// SGD momentum.
    pub momentum: f64,
    /// LR schedule.
    pub schedule: Schedule,
    /// Class weights.
    pub class_weights: ClassWeights,
    /// Stop when the validation score (AUC for classifiers) has not improved for this many
    /// epochs (0: never). An epoch that ties the best score with a lower validation loss counts
    /// as an improvement.
    pub patience: usize,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Train only the head for this many epochs, then unfreeze (transfer learning).
    pub freeze_backbone_epochs: usize,
    /// Exponential moving average of the weights with this momentum (Keras' `use_ema` /
    /// `ema_momentum`): after every optimiser step `ema = m·ema + (1 − m)·w` (the first step
    /// copies the weights). The averaged weights are the ones validated, kept and exported.
    /// `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    /// Label smoothing ε of a classifier's training loss (Keras' `label_smoothing`): the target
    /// is `one_hot·(1 − ε) + ε/k` (binary: `y·(1 − ε) + ε/2`). Validation and the reported
    /// metrics use the true labels. 0: off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Devices for data-parallel training. Empty (the default) or one device: the trainer's
    /// `device` alone, exactly as without this field. Several: the first is the main device and
    /// must be the trainer's `device`; each step's batch (`batch_size` samples in all) is cut
    /// into one shard per device (see the [module documentation](self)). Every device after the
    /// first that is not listed earlier is seeded with `seed + its position` (its dropout
    /// stream). The same device may appear twice (two shards on one device, drawing from one
    /// random stream in whatever order the threads run: only useful to test the mechanism).
    /// Not recorded in bundles or checkpoints, as it describes the machine rather than the
    /// model: a resumed run may use other devices.
    #[serde(skip)]
    pub devices: Vec<Device>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
            momentum: 0.9,
            schedule: Schedule::Cosine,
            class_weights: ClassWeights::Balanced,
            patience: 8,
            seed: 42,
            freeze_backbone_epochs: 0,
            ema: None,
            label_smoothing: 0.0,
            devices: Vec::new(),
        }
    }
}

/// One epoch's record (a line of the JSON-lines log).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochLog {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss (unweighted).
    pub val_loss: f64,
    /// Validation score that picks the best epoch (classifiers: AUC, binary on the positive
    /// class, multi-class macro one-vs-rest; forecasters: minus the mean negative log-likelihood).
    #[serde(alias = "val_auc")]
    pub val_score: f64,
    /// Validation accuracy (classifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
    /// Training throughput, images (samples) per second.
    pub train_samples_per_s: f64,
}

/// Resumable training state saved after every epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    best_auc: f64,
    best_epoch: usize,
    history: Vec<EpochLog>,
    config: TrainConfig,
    /// Optimiser steps folded into the weight average so far (0 without `ema`).
    #[serde(default)]
    ema_steps: u64,
}

/// Where training writes its side files.
#[derive(Clone, Debug, Default)]
pub struct TrainIo {
    /// JSON-lines log, one [`EpochLog`] per line (appended).
    pub log: Option<PathBuf>,
    /// Checkpoint directory for `--resume` (model + optimiser + state after every epoch).
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the checkpoint if one exists.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// The result of training.
pub struct TrainOutcome<M> {
    /// The best model (highest validation score), in inference mode.
    pub model: M,
    /// Per-epoch history.
    pub history: Vec<EpochLog>,
    /// Epoch of the best model.
    pub best_epoch: usize,
    /// Validation score of the best model.
    pub best_val_score: f64,
}

/// Per-class weights for `labels`.
pub fn class_weights(kind: ClassWeights, labels: &[usize], k: usize) -> Vec<f32> {
    match kind {
        ClassWeights::None => vec![1.0; k],
        ClassWeights::Balanced => {
            let mut counts = vec![0usize; k];
            for &l in labels {
                counts[l] += 1;
            }
            counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        0.0
                    } else {
                        labels.len() as f32 / (k as f32 * c as f32)
                    }
                })
                .collect()
        }
    }
}

fn lr_at(cfg: &TrainConfig, epoch0: usize, step: usize, steps_per_epoch: usize) -> f64 {
    match &cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Cosine => {
            let total = (cfg.epochs * steps_per_epoch).max(1) as f64;
            let t = (epoch0 * steps_per_epoch + step) as f64 / total;
            cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
        Schedule::Step { every, gamma } => cfg.lr * gamma.powi((epoch0 / (*every).max(1)) as i32),
        Schedule::Noam {
            warmup_epochs,
            start,
            end,
        } => {
            let s = (epoch0 * steps_per_epoch + step) as f64;
            let warm = (warmup_epochs * steps_per_epoch) as f64;
            let total = (cfg.epochs * steps_per_epoch) as f64;
            if s < warm {
                cfg.lr * (start + (1.0 - start) * s / warm)
            } else {
                let t = if total > warm {
                    (s - warm) / (total - warm)
                } else {
                    1.0
                };
                cfg.lr * end.powf(t.min(1.0))
            }
        }
        Schedule::Linear { warmup } => {
            let s = (epoch0 * steps_per_epoch + step) as f64;
            let total = (cfg.epochs * steps_per_epoch).max(1) as f64;
            let warm = (warmup.clamp(0.0, 1.0) * total).round();
            if s < warm {
                cfg.lr * s / warm
            } else {
                cfg.lr * ((total - s) / (total - warm).max(1.0)).max(0.0)
            }
        }
    }
}

/// Class probabilities from logits: sigmoid for one output (as `[1-p, p]`), softmax otherwise.
pub fn probabilities(logits: Tensor<2>) -> Vec<Vec<f64>> {
    let [n, k] = logits.dims();
    if k == 1 {
        let p = burn::tensor::activation::sigmoid(logits);
        let v: Vec<f32> = p
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        v.iter().map(|&p| vec![1.0 - p as f64, p as f64]).collect()
    } else {
        let p = burn::tensor::activation::softmax(logits, 1);
        let v: Vec<f32> = p
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        (0..n)
            .map(|i| v[i * k..(i + 1) * k].iter().map(|&x| x as f64).collect())
            .collect()
    }
}

/// Raw outputs (one row per sample) for every sample of `split`, in index order.
pub fn predict_outputs<M: Network, S: BatchSource<Input = M::Input>>(
    model: &M,
    source: &S,
    split: Split,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let n = source.targets(split).len();
    let order: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(n);
    source.for_each_batch(split, &order, batch_size, 0, device, &mut |x, _| {
        let o = model.outputs(x);
        let [b, k] = o.dims();
        let v: Vec<f32> = o
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        out.extend((0..b).map(|i| v[i * k..(i + 1) * k].to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// Validation AUC (binary: positive class; multi-class: macro OvR), accuracy and mean log-loss.
pub fn quick_metrics(labels: &[usize], probs: &[Vec<f64>]) -> (f64, f64, f64) {
    let n = labels.len().max(1) as f64;
    let acc = labels
        .iter()
        .zip(probs)
        .filter(|(l, p)| argmax(p) == **l)
        .count() as f64
        / n;
    let loss = labels
        .iter()
        .zip(probs)
        .map(|(&l, p)| -(p[l].clamp(1e-15, 1.0)).ln())
        .sum::<f64>()
        / n;
    let auc = if probs.first().map(|p| p.len()).unwrap_or(0) == 2 {
        let s: Vec<f64> = probs.iter().map(|p| p[1]).collect();
        medai_metrics::roc_auc(labels, &s).unwrap_or(f64::NAN)
    } else {
        let names: Vec<String> = (0..probs.first().map(|p| p.len()).unwrap_or(0))
            .map(|i| i.to_string())
            .collect();
        medai_metrics::multiclass_report(labels, probs, &names)
            .ok()
            .and_then(|r| r.auc_macro_ovr)
            .unwrap_or(f64::NAN)
    };
    (auc, acc, loss)
}

/// Index of the largest value (first on ties).
pub fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best
}

fn append_log(path: &Path, rec: &EpochLog) -> Result<(), TrainError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::Io(path.to_path_buf(), e))?;
    let line = serde_json::to_string(rec).unwrap_or_default();
    writeln!(f, "{line}").map_err(|e| TrainError::Io(path.to_path_buf(), e))
}

fn build_optimizer(cfg: &TrainConfig) -> burn::optim::ModuleOptimizer {
    let wd = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay));
    match cfg.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(cfg.beta1)
            .with_beta_2(cfg.beta2)
            .with_epsilon(cfg.epsilon)
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_beta_1(cfg.beta1)
            .with_beta_2(cfg.beta2)
            .with_epsilon(cfg.epsilon)
            .with_weight_decay(cfg.weight_decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(cfg.momentum)))
            .with_weight_decay(wd)
            .init(),
    }
}

/// Train a classifier on `source` with [`ClassObjective`] (class weights from
/// `cfg.class_weights`). `device` must be an autodiff device (`Device::autodiff()`).
pub fn fit<M, S>(
    model: M,
    source: &S,
    num_classes: usize,
    cfg: &TrainConfig,
    device: &Device,
    io: &TrainIo,
) -> Result<TrainOutcome<M>, TrainError>
where
    M: Network,
    S: BatchSource<Input = M::Input, Target = usize>,
{
    let objective = ClassObjective::new(
        cfg.class_weights,
        &source.targets(Split::Train),
        num_classes,
    )
    .with_label_smoothing(cfg.label_smoothing);
    fit_objective(model, source, &objective, cfg, device, io)
}

/// Train `model` on `source` for `objective`. `device` must be an autodiff device; the model
/// lives on it. With several [`TrainConfig::devices`] (the first of them `device`), each step
/// is data-parallel over them (see the [module documentation](self)).
pub fn fit_objective<M, S, O>(
    mut model: M,
    source: &S,
    objective: &O,
    cfg: &TrainConfig,
    device: &Device,
    io: &TrainIo,
) -> Result<TrainOutcome<M>, TrainError>
where
    M: Network,
    S: BatchSource<Input = M::Input, Target = O::Target>,
    O: Objective,
{
    let n_train = source.targets(Split::Train).len();
    let val_targets = source.targets(Split::Val);
    if n_train == 0 {
        return Err(TrainError::Config("the training split is empty".into()));
    }
    let devices = training_devices(cfg, device)?;
    let mut optim = build_optimizer(cfg);
    let steps_per_epoch = n_train.div_ceil(cfg.batch_size.max(1));
    let mut history: Vec<EpochLog> = Vec::new();
    let mut best_auc = f64::NEG_INFINITY;
    let mut best_epoch = 0;
    let mut best_model = model.valid();
    let mut start_epoch = 0;
    // The weight average (inference mode), when `cfg.ema` asks for one.
    let mut ema = cfg.ema.map(|_| model.valid());
    let mut ema_steps = 0u64;

    // Resume from a checkpoint.
    if let (true, Some(dir)) = (
        io.resume,
        io.checkpoint_dir.as_deref().and_then(checkpoint_to_resume),
    ) {
        let dir = &dir;
        {
            let state: CheckpointState = serde_json::from_slice(
                &std::fs::read(dir.join("state.json"))
                    .map_err(|e| TrainError::Io(dir.clone(), e))?,
            )
            .map_err(|e| TrainError::Checkpoint(dir.clone(), e.to_string()))?;
            model = crate::weights::load_burnpack(
                model,
                &std::fs::read(dir.join("model.bpk"))
                    .map_err(|e| TrainError::Io(dir.clone(), e))?,
            )
            .map_err(|e| TrainError::Checkpoint(dir.clone(), e))?;
            let ob =
                std::fs::read(dir.join("optim.bpk")).map_err(|e| TrainError::Io(dir.clone(), e))?;
            optim = optim
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(ob))
                .map_err(|e| TrainError::Checkpoint(dir.clone(), format!("{e:?}")))?;
            best_model = crate::weights::load_burnpack(
                model.valid(),
                &std::fs::read(dir.join("best.bpk")).map_err(|e| TrainError::Io(dir.clone(), e))?,
            )
            .map_err(|e| TrainError::Checkpoint(dir.clone(), e))?;
            if let Some(e) = ema.take() {
                ema = Some(
                    crate::weights::load_burnpack(
                        e,
                        &std::fs::read(dir.join("ema.bpk"))
                            .map_err(|e| TrainError::Io(dir.join("ema.bpk"), e))?,
                    )
                    .map_err(|e| TrainError::Checkpoint(dir.clone(), e))?,
                );
                ema_steps = state.ema_steps;
            }
            start_epoch = state.epoch;
            best_auc = state.best_auc;
            best_epoch = state.best_epoch;
            history = state.history;
            tracing::info!(
                "resuming from {} at epoch {}",
                dir.display(),
                start_epoch + 1
            );
            eprintln!("Resuming from {} after epoch {start_epoch}", dir.display());
        }
    }

    let mut frozen = false;
    if cfg.freeze_backbone_epochs > start_epoch {
        model = model.freeze_backbone();
        frozen = true;
    }

    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // Advance the shuffling stream past completed epochs so a resumed run matches an unbroken one.
    let mut order: Vec<usize> = (0..n_train).collect();
    for _ in 0..start_epoch {
        order.shuffle(&mut rng);
    }
    for epoch0 in start_epoch..cfg.epochs {
        if frozen && epoch0 >= cfg.freeze_backbone_epochs {
            model = model.unfreeze_all();
            frozen = false;
        }
        let t0 = Instant::now();
        order.shuffle(&mut rng);
        let bar = if io.progress {
            let b = indicatif::ProgressBar::new(steps_per_epoch as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{}/{}", epoch0 + 1, cfg.epochs));
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut loss_sum = 0.0f64;
        let mut seen = 0usize;
        let mut step = 0usize;
        let mut lr = cfg.lr;
        source.for_each_batch(
            Split::Train,
            &order,
            cfg.batch_size,
            epoch0 as u64 + 1,
            device,
            &mut |x, y| {
                let (lv, grads) = if devices.len() > 1 {
                    parallel_gradients(&model, source, objective, x, y, &devices, epoch0 + 1)?
                } else {
                    let loss = objective.loss(model.outputs(x), y);
                    let lv = loss.clone().into_scalar::<f32>() as f64;
                    if !lv.is_finite() {
                        return Err(TrainError::Diverged(epoch0 + 1));
                    }
                    (lv, GradientsParams::from_grads(loss.backward(), &model))
                };
                lr = lr_at(cfg, epoch0, step, steps_per_epoch);
                model = optim.step(lr, model.clone(), grads);
                if let (Some(m), Some(avg)) = (cfg.ema, ema.take()) {
                    ema = Some(ema_update(
                        avg,
                        &model,
                        if ema_steps == 0 { 0.0 } else { m },
                    ));
                    ema_steps += 1;
                }
                loss_sum += lv * y.len() as f64;
                seen += y.len();
                step += 1;
                bar.inc(1);
                bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
                Ok(())
            },
        )?;
        bar.finish_and_clear();
        let train_secs = t0.elapsed().as_secs_f64();
        let valid = match &ema {
            // `valid` rather than `clone`: a clone would share its running statistics with the
            // average, which the next step overwrites.
            Some(avg) => avg.valid(),
            None => model.valid(),
        };
        let outputs = predict_outputs(
            &valid,
            source,
            Split::Val,
            cfg.batch_size.max(256),
            &device.clone().inner(),
        )?;
        let v = objective.validate(&outputs, &val_targets);
        let (auc, vloss) = (v.score, v.loss);
        let rec = EpochLog {
            epoch: epoch0 + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss: vloss,
            val_score: auc,
            val_accuracy: v.accuracy,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
            train_samples_per_s: seen as f64 / train_secs.max(1e-9),
        };
        // Ties in AUC (common once validation is separated perfectly) go to the lower validation
        // loss, so a later, better-calibrated model is kept over an early one.
        let best_loss = history
            .get(best_epoch.wrapping_sub(1))
            .map_or(f64::INFINITY, |h| h.val_loss);
        let improved = auc > best_auc
            || (auc == best_auc && vloss < best_loss)
            || (best_auc.is_nan() && !auc.is_nan());
        if improved || best_epoch == 0 {
            best_auc = auc;
            best_epoch = epoch0 + 1;
            best_model = valid;
        }
        if io.progress {
            let acc = rec
                .val_accuracy
                .map(|a| format!("  val_acc {a:.4}"))
                .unwrap_or_default();
            eprintln!(
                "epoch {:>3}/{} loss {:.4}  val_loss {:.4}  val_score {:.4}{}  lr {:.2e}  {:.1}s ({:.0} samples/s){}",
                rec.epoch,
                cfg.epochs,
                rec.train_loss,
                rec.val_loss,
                rec.val_score,
                acc,
                rec.lr,
                rec.seconds,
                rec.train_samples_per_s,
                if improved { "  *best" } else { "" }
            );
        }
        if let Some(p) = &io.log {
            append_log(p, &rec)?;
        }
        history.push(rec);
        if let Some(dir) = &io.checkpoint_dir {
            let state = CheckpointState {
                epoch: epoch0 + 1,
                best_auc,
                best_epoch,
                history: history.clone(),
                config: cfg.clone(),
                ema_steps,
            };
            save_checkpoint(dir, &model, &best_model, ema.as_ref(), &optim, &state)?;
        }
        if cfg.patience > 0 && epoch0 + 1 - best_epoch >= cfg.patience {
            if io.progress {
                eprintln!(
                    "early stopping: no validation score gain for {} epochs",
                    cfg.patience
                );
            }
            break;
        }
    }
    Ok(TrainOutcome {
        model: best_model,
        history,
        best_epoch,
        best_val_score: best_auc,
    })
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The devices of a run: `[device]`, or `device` followed by the other
/// [`TrainConfig::devices`] (with autodiff).
fn training_devices(cfg: &TrainConfig, device: &Device) -> Result<Vec<Device>, TrainError> {
    match cfg.devices.split_first() {
        None => Ok(vec![device.clone()]),
        Some((first, _)) if first != device => Err(TrainError::Config(format!(
            "the first training device ({first:?}) must be the device the model is on ({device:?})"
        ))),
        Some((_, rest)) => {
            let mut all = vec![device.clone()];
            for (k, d) in rest.iter().enumerate() {
                // A device of its own gets its own random stream (dropout), seeded from the run's
                // seed; a device listed again shares the stream it already has.
                if !all.contains(d) {
                    d.seed(cfg.seed.wrapping_add(k as u64 + 1));
                }
                all.push(d.clone().autodiff());
            }
            Ok(all)
        }
    }
}

/// `n` samples cut into at most `parts` contiguous, non-empty ranges whose sizes differ by at
/// most one (the first ones take the remainder).
pub fn shard_ranges(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|k| {
            let len = base + usize::from(k < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// Forward and backward of one shard: its loss value and, when that is finite, the gradients
/// of `weight` × its loss, moved to `main`.
fn shard_gradients<M: Network, O: Objective>(
    model: &M,
    objective: &O,
    x: M::Input,
    y: &[O::Target],
    weight: f64,
    main: &Device,
) -> (f64, Option<GradientsParams>) {
    let loss = objective.loss(model.outputs(x), y);
    let lv = loss.clone().into_scalar::<f32>() as f64;
    if !lv.is_finite() {
        return (lv, None);
    }
    let grads = GradientsParams::from_grads(loss.mul_scalar(weight).backward(), model)
        .to_device(main, model);
    (lv, Some(grads))
}

/// One data-parallel step's loss and gradients (on the main device, `devices[0]`): the batch
/// `x`/`y` is cut into a shard per device; the main device runs its shard with `model` on this
/// thread (so only its running statistics are kept), each other device a fresh copy of the
/// weights on its own thread. `epoch` (from 1) names a divergence.
fn parallel_gradients<M, S, O>(
    model: &M,
    source: &S,
    objective: &O,
    x: M::Input,
    y: &[O::Target],
    devices: &[Device],
    epoch: usize,
) -> Result<(f64, GradientsParams), TrainError>
where
    M: Network,
    S: BatchSource<Input = M::Input, Target = O::Target>,
    O: Objective,
{
    let main = devices[0].clone().inner();
    let ranges = shard_ranges(y.len(), devices.len());
    let mut shards = Vec::with_capacity(ranges.len());
    for (r, d) in ranges.iter().zip(devices) {
        shards.push(source.shard(&x, r.clone(), d).ok_or_else(|| {
            TrainError::Config(
                "this task's batches cannot be split across devices; train on one device".into(),
            )
        })?);
    }
    drop(x);
    let parts: Vec<f64> = ranges
        .iter()
        .map(|r| objective.shard_weight(&y[r.clone()]))
        .collect();
    let total: f64 = parts.iter().sum();
    let weights: Vec<f64> = parts
        .iter()
        .map(|&p| if total > 0.0 { p / total } else { 0.0 })
        .collect();
    // `valid` gives each copy running statistics of its own (a clone would share the main
    // model's, and their updates from other threads would be averaged into it).
    let copies: Vec<M> = (1..ranges.len()).map(|_| model.valid()).collect();
    let mut shards = shards.into_iter();
    let first = shards.next();
    let results: Vec<(f64, Option<GradientsParams>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .zip(copies)
            .zip(ranges.iter().zip(&weights).zip(devices).skip(1))
            .map(|((xs, copy), ((r, &w), d))| {
                let (main, ys) = (&main, &y[r.clone()]);
                scope.spawn(move || {
                    let replica = copy.fork(&d.clone().inner()).train();
                    shard_gradients(&replica, objective, xs, ys, w, main)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(ranges.len());
        if let Some(x0) = first {
            out.push(shard_gradients(
                model,
                objective,
                x0,
                &y[ranges[0].clone()],
                weights[0],
                &main,
            ));
        }
        // Join every worker before answering, even after one failed.
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        for (k, j) in joined.into_iter().enumerate() {
            out.push(j.map_err(|p| {
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the worker thread panicked".into());
                TrainError::Device(k + 1, why)
            })?);
        }
        Ok::<_, TrainError>(out)
    })?;
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut loss = 0.0;
    for ((lv, grads), w) in results.into_iter().zip(&weights) {
        let Some(grads) = grads else {
            return Err(TrainError::Diverged(epoch));
        };
        loss += w * lv;
        accumulator.accumulate(model, grads);
    }
    Ok((loss, accumulator.grads()))
}

/// Whether the optimiser trains each float tensor of a module, in visiting order (running
/// statistics and frozen weights it does not).
struct CollectTrained(Vec<bool>);

impl burn::module::ModuleVisitor for CollectTrained {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.0.push(param.val().is_require_grad());
    }
}

/// Every float tensor of a module in visiting order, flattened.
struct CollectWeights(Vec<Tensor<1>>);

impl burn::module::ModuleVisitor for CollectWeights {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Folds the collected weights into a module of the same structure: trained tensors are
/// averaged with momentum `m`, the others (running statistics, frozen weights) copied.
struct FoldWeights {
    current: std::vec::IntoIter<(Tensor<1>, bool)>,
    m: f64,
}

impl burn::module::ModuleMapper for FoldWeights {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let Some((w, trained)) = self.current.next() else {
            return param;
        };
        let m = self.m;
        param.map(|avg| {
            let w = w.reshape(avg.shape());
            if trained && m > 0.0 {
                avg.mul_scalar(m).add(w.mul_scalar(1.0 - m))
            } else {
                w
            }
        })
    }
}

/// One step of the exponential moving average of `model`'s weights into `avg` (an
/// inference-mode copy of the same network): `avg = m·avg + (1 − m)·w`.
pub fn ema_update<M: Module>(avg: M, model: &M, m: f64) -> M {
    let mut trained = CollectTrained(Vec::new());
    model.visit(&mut trained);
    // `valid` detaches the weights and folds in pending running-statistics updates.
    let mut weights = CollectWeights(Vec::new());
    model.valid().visit(&mut weights);
    let current: Vec<(Tensor<1>, bool)> = weights.0.into_iter().zip(trained.0).collect();
    avg.map(&mut FoldWeights {
        current: current.into_iter(),
        m,
    })
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The checkpoint directory to resume from: `dir`, or its `.old` sibling if a kill struck
/// between the two renames of [`save_checkpoint`].
fn checkpoint_to_resume(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), sibling(dir, "old")]
        .into_iter()
        .find(|d| d.join("state.json").is_file())
}

/// Save a complete checkpoint into a fresh sibling directory, then swap it in, so that the
/// checkpoint on disk is always one whole epoch's state.
fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    best: &M,
    ema: Option<&M>,
    optim: &burn::optim::ModuleOptimizer,
    state: &CheckpointState,
) -> Result<(), TrainError> {
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| TrainError::Io(p, e)
    };
    let ck = |e: String| TrainError::Checkpoint(dir.to_path_buf(), e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let ob = optim.into_bytes().map_err(|e| ck(format!("{e:?}")))?;
    let mut parts: Vec<(&str, Vec<u8>)> = vec![
        (
            "model.bpk",
            crate::weights::save_burnpack(model).map_err(ck)?,
        ),
        ("best.bpk", crate::weights::save_burnpack(best).map_err(ck)?),
        ("optim.bpk", ob.to_vec()),
        (
            "state.json",
            serde_json::to_vec_pretty(state).unwrap_or_default(),
        ),
    ];
    if let Some(e) = ema {
        parts.push(("ema.bpk", crate::weights::save_burnpack(e).map_err(ck)?));
    }
    for (name, bytes) in parts {
        crate::weights::write_atomic(&tmp.join(name), &bytes).map_err(io(&tmp.join(name)))?;
    }
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// Remove a run's checkpoint directory (and any leftovers of an interrupted save).
pub fn remove_checkpoint(dir: &Path) {
    for d in [dir.to_path_buf(), sibling(dir, "tmp"), sibling(dir, "old")] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Net {
        fc: Linear,
        bn: BatchNorm,
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// A two-layer perceptron with weights given as numbers (no batch norm, no dropout).
    #[derive(Module, Debug)]
    struct Mlp {
        w1: burn::module::Param<Tensor<2>>,
        b1: burn::module::Param<Tensor<1>>,
        w2: burn::module::Param<Tensor<2>>,
        /// Optional batch norm on the output (the running-statistics test).
        bn: Option<BatchNorm>,
    }

    impl Mlp {
        fn new(bn: bool, device: &Device) -> Mlp {
            let w = |n: usize, scale: f32| -> Vec<f32> {
                (0..n)
                    .map(|i| ((i * 37 % 11) as f32 - 5.0) * scale)
                    .collect()
            };
            let p2 = |v: Vec<f32>, shape: [usize; 2]| {
                burn::module::Param::from_tensor(Tensor::<2>::from_data(
                    TensorData::new(v, shape),
                    device,
                ))
            };
            Mlp {
                w1: p2(w(12, 0.1), [3, 4]),
                b1: burn::module::Param::from_tensor(Tensor::<1>::from_data(
                    TensorData::new(vec![0.1f32, -0.2, 0.05, 0.0], [4]),
                    device,
                )),
                w2: p2(w(12, 0.07), [4, 3]),
                bn: bn.then(|| BatchNormConfig::new(3).init(device)),
            }
        }
        fn weights(&self) -> Vec<f32> {
            let mut v = values(self.w1.val());
            v.extend(self.b1.val().into_data().try_to_vec::<f32>().unwrap());
            v.extend(values(self.w2.val()));
            v
        }
    }

    impl Network for Mlp {
        type Input = Tensor<2>;
        fn outputs(&self, x: Tensor<2>) -> Tensor<2> {
            let h =
                burn::tensor::activation::relu(x.matmul(self.w1.val()) + self.b1.val().unsqueeze());
            let o = h.matmul(self.w2.val());
            match &self.bn {
                Some(bn) => bn.forward(o.unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2),
                None => o,
            }
        }
    }

    /// `n` samples of 3 features in 3 classes, held in memory; validation is the same set.
    struct Toy {
        x: Vec<f32>,
        y: Vec<usize>,
    }

    impl Toy {
        fn new(n: usize) -> Toy {
            let x = (0..n * 3)
                .map(|i| ((i * 53 % 17) as f32 - 8.0) / 4.0)
                .collect();
            // Unbalanced classes, so the balanced class weights differ between samples.
            let y = (0..n).map(|i| [0, 1, 2, 0, 0][i % 5]).collect();
            Toy { x, y }
        }
    }

    impl BatchSource for Toy {
        type Input = Tensor<2>;
        type Target = usize;
        fn targets(&self, _: Split) -> Vec<usize> {
            self.y.clone()
        }
        fn for_each_batch(
            &self,
            _: Split,
            order: &[usize],
            batch_size: usize,
            _: u64,
            device: &Device,
            f: &mut BatchFn<'_, Tensor<2>>,
        ) -> Result<(), TrainError> {
            for c in order.chunks(batch_size) {
                let x: Vec<f32> = c
                    .iter()
                    .flat_map(|&i| self.x[i * 3..i * 3 + 3].to_vec())
                    .collect();
                let y: Vec<usize> = c.iter().map(|&i| self.y[i]).collect();
                f(
                    Tensor::from_data(TensorData::new(x, [c.len(), 3]), device),
                    &y,
                )?;
            }
            Ok(())
        }
        fn shard(&self, x: &Tensor<2>, rows: Range<usize>, device: &Device) -> Option<Tensor<2>> {
            Some(shard_rows(x, rows, device))
        }
    }

    /// Train an [`Mlp`] for one epoch on `n` samples in batches of `batch` over `devices`
    /// handles of the CPU device; the trained network.
    fn train_toy(n: usize, batch: usize, devices: usize, bn: bool) -> Mlp {
        train_toy_with(n, batch, devices, bn, OptimizerKind::Sgd)
    }

    fn train_toy_with(
        n: usize,
        batch: usize,
        devices: usize,
        bn: bool,
        optimizer: OptimizerKind,
    ) -> Mlp {
        let cpu = Device::default();
        let ad = cpu.clone().autodiff();
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: batch,
            lr: if optimizer == OptimizerKind::Sgd {
                0.5
            } else {
                0.05
            },
            optimizer,
            schedule: Schedule::Constant,
            patience: 0,
            seed: 11,
            devices: vec![cpu; devices],
            ..TrainConfig::default()
        };
        fit(
            Mlp::new(bn, &ad),
            &Toy::new(n),
            3,
            &cfg,
            &ad,
            &TrainIo::default(),
        )
        .unwrap()
        .model
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn shard_ranges_are_contiguous_and_balanced() {
        assert_eq!(shard_ranges(5, 2), vec![0..3, 3..5]);
        assert_eq!(shard_ranges(7, 3), vec![0..3, 3..5, 5..7]);
        assert_eq!(shard_ranges(2, 4), vec![0..1, 1..2]);
        assert_eq!(shard_ranges(4, 1), vec![0..4]);
        assert!(shard_ranges(0, 2).is_empty());
    }

    #[test]
    fn two_devices_train_the_same_weights_as_one() {
        let init = Mlp::new(false, &Device::default()).weights();
        // (samples, batch): one step of an even batch, one step of 5 samples cut 3 + 2, and
        // several steps whose last batch (3) is cut 2 + 1.
        for (n, batch) in [(4, 4), (5, 5), (13, 5)] {
            let one = train_toy(n, batch, 1, false).weights();
            let two = train_toy(n, batch, 2, false).weights();
            let moved = max_diff(&one, &init);
            assert!(
                moved > 1e-2,
                "{n}/{batch}: training barely moved the weights ({moved})"
            );
            let d = max_diff(&one, &two);
            assert!(
                d < 1e-5,
                "{n}/{batch}: 2 devices differ from 1 by {d}\n{one:?}\n{two:?}"
            );
        }
        // Three devices, one with a single sample.
        let one = train_toy(5, 5, 1, false).weights();
        let three = train_toy(5, 5, 3, false).weights();
        assert!(max_diff(&one, &three) < 1e-5);
        // Adam and AdamW divide by the gradient's running magnitude, which amplifies rounding
        // where a gradient is near zero; still within 1e-5 here.
        for opt in [OptimizerKind::Adam, OptimizerKind::Adamw] {
            let one = train_toy_with(13, 5, 1, false, opt).weights();
            let two = train_toy_with(13, 5, 2, false, opt).weights();
            let d = max_diff(&one, &two);
            assert!(max_diff(&one, &init) > 1e-2);
            assert!(d < 1e-5, "{opt:?}: 2 devices differ from 1 by {d}");
        }
    }

    #[test]
    fn one_listed_device_is_bit_identical_to_none() {
        let none = train_toy(13, 5, 0, false).weights();
        let one = train_toy(13, 5, 1, false).weights();
        assert_eq!(none, one);
    }

    #[test]
    fn running_statistics_come_from_the_main_device_shard() {
        // One step of 4 samples over 2 devices: the main device sees the first two samples of
        // the epoch's order. Its running statistics must equal those of a one-device step on
        // just those two samples (they depend only on the weights before the step).
        let mut order: Vec<usize> = (0..4).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(11));
        let stats = |m: &Mlp| -> Vec<f32> {
            let bn = m.bn.as_ref().unwrap();
            let mut v = bn
                .running_mean
                .value()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            v.extend(
                bn.running_var
                    .value()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
            v
        };
        let two = stats(&train_toy(4, 4, 2, true));
        let full = Toy::new(4);
        let main_shard = Toy {
            x: order[..2]
                .iter()
                .flat_map(|&i| full.x[i * 3..i * 3 + 3].to_vec())
                .collect(),
            y: order[..2].iter().map(|&i| full.y[i]).collect(),
        };
        let cpu = Device::default();
        let ad = cpu.clone().autodiff();
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 2,
            optimizer: OptimizerKind::Sgd,
            class_weights: ClassWeights::None,
            patience: 0,
            ..TrainConfig::default()
        };
        let alone = fit(
            Mlp::new(true, &ad),
            &main_shard,
            3,
            &cfg,
            &ad,
            &TrainIo::default(),
        )
        .unwrap()
        .model;
        let expect = stats(&alone);
        let untouched = stats(&Mlp::new(true, &cpu));
        assert!(
            max_diff(&expect, &untouched) > 1e-3,
            "the step moved no statistics"
        );
        assert!(max_diff(&two, &expect) < 1e-6, "{two:?} vs {expect:?}");
    }

    #[test]
    fn a_source_that_cannot_shard_is_an_error_on_several_devices() {
        struct NoShard(Toy);
        impl BatchSource for NoShard {
            type Input = Tensor<2>;
            type Target = usize;
            fn targets(&self, s: Split) -> Vec<usize> {
                self.0.targets(s)
            }
            fn for_each_batch(
                &self,
                s: Split,
                order: &[usize],
                batch_size: usize,
                epoch: u64,
                device: &Device,
                f: &mut BatchFn<'_, Tensor<2>>,
            ) -> Result<(), TrainError> {
                self.0
                    .for_each_batch(s, order, batch_size, epoch, device, f)
            }
        }
        let cpu = Device::default();
        let ad = cpu.clone().autodiff();
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 4,
            devices: vec![cpu.clone(), cpu],
            ..TrainConfig::default()
        };
        let e = fit(
            Mlp::new(false, &ad),
            &NoShard(Toy::new(8)),
            3,
            &cfg,
            &ad,
            &TrainIo::default(),
        )
        .err()
        .unwrap();
        assert!(matches!(e, TrainError::Config(_)), "{e}");
        assert!(e.to_string().contains("cannot be split"), "{e}");
    }

    #[test]
    fn ema_averages_trained_weights_and_copies_running_statistics() {
        let ad = Device::default().autodiff();
        ad.seed(3);
        let net = |d: &Device| Net {
            fc: LinearConfig::new(3, 2).init(d),
            bn: BatchNormConfig::new(2).init(d),
        };
        let a = net(&ad);
        let avg0 = a.valid();
        // A second network: other weights, and running statistics moved by one training batch.
        let b = net(&ad);
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 0.5, 3.0, 0.0, -1.0], [2, 3]),
            &ad,
        );
        let _ = b.bn.forward(b.fc.forward(x).unsqueeze_dim::<3>(2));
        let (wa, wb) = (values(a.fc.weight.val()), values(b.fc.weight.val()));
        assert_ne!(wa, wb);

        let avg = ema_update(avg0.valid(), &b, 0.75);
        let got = values(avg.fc.weight.val());
        for ((g, x), y) in got.iter().zip(&wa).zip(&wb) {
            assert!((g - (0.75 * x + 0.25 * y)).abs() < 1e-6, "{g} vs {x}, {y}");
        }
        let rm = |n: &Net| -> Vec<f32> {
            n.bn.running_mean
                .value()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        // (`valid` copies; a clone would share the running statistics with `avg`.)
        assert_ne!(rm(&avg0), rm(&b.valid()));
        assert_eq!(rm(&avg), rm(&b.valid()), "running statistics are copied");
        assert!(!avg.fc.weight.val().is_require_grad());
        // The first step (momentum 0) copies every weight.
        assert_eq!(values(ema_update(avg0, &b, 0.0).fc.weight.val()), wb);
    }
}
