//! Classification losses with per-sample weights (class weights for imbalance), averaged as Keras
//! does with `class_weight`: mean over the batch of `weight × loss`.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};

/// Binary cross-entropy on logits `[b, 1]` (sigmoid folded in, numerically stable).
pub fn bce_with_logits(logits: Tensor<2>, targets: &[usize], weights: &[f32]) -> Tensor<1> {
    let device = logits.device();
    let b = targets.len();
    let y: Vec<f32> = targets.iter().map(|&t| (t == 1) as u8 as f32).collect();
    let y = Tensor::<2>::from_data(TensorData::new(y, [b, 1]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights.to_vec(), [b, 1]), &device);
    // -[y log σ(z) + (1-y) log σ(-z)]
    let pos = log_sigmoid(logits.clone()) * y.clone();
    let neg = log_sigmoid(logits.neg()) * y.neg().add_scalar(1.0);
    ((pos + neg).neg() * w).mean()
}

/// Softmax cross-entropy on logits `[b, k]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize], weights: &[f32]) -> Tensor<1> {
    let device = logits.device();
    let b = targets.len();
    let idx: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights.to_vec(), [b, 1]), &device);
    let nll = log_softmax(logits, 1).gather(1, idx).neg();
    (nll * w).mean()
}
