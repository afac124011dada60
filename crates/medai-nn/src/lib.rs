//! # medai-nn
//!
//! The only crate that knows the deep-learning engine ([Burn](https://burn.dev), pinned to
//! 0.22.1). It holds:
//!
//! - [`vision`]: image networks (small CNN, ResNet-18/50, VGG16, DenseNet-121);
//! - [`bert`]: a BERT-family transformer encoder classifier (CLS or mean pooling) that loads
//!   pretrained Hugging Face checkpoints (`model.safetensors` / `pytorch_model.bin`);
//! - [`training`]: the one trainer every task type uses ([`training::fit_objective`]) through
//!   the [`training::Network`], [`training::BatchSource`] and [`training::Objective`] traits;
//! - [`forecast`]: the sequence forecaster (GRU/LSTM encoder, count likelihood head) and its
//!   data source, objective and [`medai_forecast::Forecaster`] adapter;
//! - [`data`]: preprocessing and augmentation of batches in parallel, with prefetch;
//! - [`image`]: the image-classification task glue and prediction;
//! - [`text`]: text classifiers (BiGRU/BiLSTM + attention, Kim CNN, BERT through [`bert`]),
//!   their data source and token-level explanations (attention, gradient × input);
//! - [`explain`]: Grad-CAM and occlusion-sensitivity heat maps;
//! - [`kernels`]: medai's own CPU kernels (fused bidirectional GRU) plugged in through
//!   Burn's backend-extension mechanism;
//! - [`loss`]: weighted BCE / cross-entropy;
//! - [`weights`]: safetensors / burnpack persistence and torchvision weight import;
//! - [`backend`]: device selection (CPU `flex` by default; `wgpu`, `vulkan`, `cuda` features).

pub mod backend;
pub mod bert;
pub mod data;
pub mod explain;
pub mod forecast;
pub mod image;
pub mod kernels;
pub mod loss;
pub mod molecule;
pub mod text;
pub mod training;
pub mod vision;
pub mod weights;

pub use burn::prelude::Device;
use std::path::PathBuf;

/// Errors from training and inference.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading the data failed.
    #[error(transparent)]
    Data(#[from] medai_data::DataError),
    /// A file could not be written or read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A checkpoint could not be saved or restored.
    #[error("checkpoint {0}: {1}")]
    Checkpoint(PathBuf, String),
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {0} (loss is not finite); lower --lr")]
    Diverged(usize),
    /// An invalid setting.
    #[error("{0}")]
    Config(String),
    /// The worker thread of a data-parallel device (its index in the device list) failed.
    #[error("training on device {0} of the device list failed: {1}")]
    Device(usize, String),
}
