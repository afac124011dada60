//! Classification losses with per-sample weights (class weights for imbalance), averaged as Keras
//! does with `class_weight`: mean over the batch of `weight × loss`.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};

/// Binary cross-entropy on logits `[b, 1]` (sigmoid folded in, numerically stable).
pub fn bce_with_logits(logits: Tensor<2>, targets: &[usize], weights: &[f32]) -> Tensor<1> {
    bce_with_logits_smoothed(logits, targets, weights, 0.0)
}

/// [`bce_with_logits`] against smoothed targets `y·(1 − ε) + ε/2` (Keras'
/// `BinaryCrossentropy(label_smoothing=ε)`).
pub fn bce_with_logits_smoothed(
    logits: Tensor<2>,
    targets: &[usize],
    weights: &[f32],
    smoothing: f32,
) -> Tensor<1> {
    let device = logits.device();
    let b = targets.len();
    let y: Vec<f32> = targets
        .iter()
        .map(|&t| (t == 1) as u8 as f32 * (1.0 - smoothing) + 0.5 * smoothing)
        .collect();
    let y = Tensor::<2>::from_data(TensorData::new(y, [b, 1]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights.to_vec(), [b, 1]), &device);
    // -[y log σ(z) + (1-y) log σ(-z)]
    let pos = log_sigmoid(logits.clone()) * y.clone();
    let neg = log_sigmoid(logits.neg()) * y.neg().add_scalar(1.0);
    ((pos + neg).neg() * w).mean()
}

/// Softmax cross-entropy on logits `[b, k]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize], weights: &[f32]) -> Tensor<1> {
    cross_entropy_smoothed(logits, targets, weights, 0.0)
}

/// [`cross_entropy`] against the smoothed target `one_hot·(1 − ε) + ε/k` (Keras'
/// `CategoricalCrossentropy(label_smoothing=ε)`, PyTorch's `cross_entropy(label_smoothing=ε)`):
/// `(1 − ε)·(−log p_y) + ε·mean_k(−log p_k)` per sample.
pub fn cross_entropy_smoothed(
    logits: Tensor<2>,
    targets: &[usize],
    weights: &[f32],
    smoothing: f32,
) -> Tensor<1> {
    let device = logits.device();
    let b = targets.len();
    let idx: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights.to_vec(), [b, 1]), &device);
    let log_p = log_softmax(logits, 1);
    let nll = log_p.clone().gather(1, idx).neg();
    let per_sample = if smoothing > 0.0 {
        nll.mul_scalar(1.0 - smoothing) + log_p.mean_dim(1).neg().mul_scalar(smoothing)
    } else {
        nll
    };
    (per_sample * w).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    /// Oracle: PyTorch 2.15 `F.cross_entropy(z, y, reduction="none", label_smoothing=ε)` and
    /// `F.binary_cross_entropy_with_logits` on `y·(1 − ε) + ε/2`, times the weights, averaged.
    #[test]
    fn smoothed_losses_match_pytorch() {
        let device = Device::default();
        let z = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    1.0f32, -0.5, 0.25, 0.3, 2.0, -1.0, -0.7, 0.1, 0.9, 0.0, 0.0, 0.5,
                ],
                [4, 3],
            ),
            &device,
        );
        let (y, w) = ([0usize, 1, 2, 1], [1.0f32, 2.0, 0.5, 1.0]);
        for (eps, want) in [
            (0.0, 0.622_788_227_674_089_9),
            (0.1, 0.725_704_894_340_756_7),
            (0.3, 0.931_538_227_674_089_8),
        ] {
            let got = value(cross_entropy_smoothed(z.clone(), &y, &w, eps));
            assert!((got - want).abs() < 1e-6, "ε = {eps}: {got} vs {want}");
        }
        let zb = Tensor::<2>::from_data(
            TensorData::new(vec![0.8f32, -1.2, 2.0, 0.1], [4, 1]),
            &device,
        );
        let got = value(bce_with_logits_smoothed(zb, &[1, 0, 1, 0], &w, 0.1));
        assert!((got - 0.477_631_566_554_724_3).abs() < 1e-6, "{got}");
    }
}
