//! Data → tensors: preprocessing (and seeded augmentation) of image batches in parallel on all
//! cores, with a bounded prefetch queue so loading overlaps training.

use burn::prelude::*;
use medai_data::{AugmentSpec, DataError, LabeledImages, PreprocessSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::sync::mpsc;

/// One prepared batch on the host: CHW images flattened, and their labels.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// `n × channels × height × width` values.
    pub pixels: Vec<f32>,
    /// Class index per image.
    pub labels: Vec<usize>,
    /// Dataset indices of the images.
    pub indices: Vec<usize>,
}

/// Turns dataset items into network inputs exactly as recorded in a bundle.
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    /// Resize, channels, normalisation.
    pub spec: PreprocessSpec,
    /// Augmentation for training batches (`None` at evaluation).
    pub augment: Option<AugmentSpec>,
    /// Seed of the augmentation stream.
    pub seed: u64,
}

impl ImageBatcher {
    /// A batcher without augmentation.
    pub fn eval(spec: PreprocessSpec) -> Self {
        ImageBatcher {
            spec,
            augment: None,
            seed: 0,
        }
    }

    /// Load and preprocess `indices` of `set` in parallel. Augmentation draws from a per-image
    /// stream seeded by (seed, epoch, index), so results do not depend on thread scheduling.
    pub fn prepare(
        &self,
        set: &LabeledImages,
        indices: &[usize],
        epoch: u64,
    ) -> Result<HostBatch, DataError> {
        let per = self.spec.channels * self.spec.height * self.spec.width;
        let images: Vec<Vec<f32>> = indices
            .par_iter()
            .map(|&i| {
                let raw = set.load(i)?;
                Ok(match &self.augment {
                    Some(aug) if !aug.is_off() => {
                        let s = self.seed
                            ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                            ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                        let mut rng = ChaCha8Rng::seed_from_u64(s);
                        self.spec.apply_augmented(&raw, aug, &mut rng)
                    }
                    _ => self.spec.apply(&raw),
                })
            })
            .collect::<Result<_, DataError>>()?;
        let mut pixels = Vec::with_capacity(per * indices.len());
        for img in images {
            pixels.extend_from_slice(&img);
        }
        let labels = indices.iter().map(|&i| set.items[i].label).collect();
        Ok(HostBatch {
            pixels,
            labels,
            indices: indices.to_vec(),
        })
    }

    /// Move a host batch to `device` as `[n, c, h, w]`.
    pub fn to_tensor(&self, batch: &HostBatch, device: &Device) -> Tensor<4> {
        let n = batch.labels.len();
        let shape = [n, self.spec.channels, self.spec.height, self.spec.width];
        Tensor::<4>::from_data(TensorData::new(batch.pixels.clone(), shape), device)
    }

    /// Iterate over `order` in batches of `batch_size`, preparing up to `prefetch` batches ahead
    /// on a background thread, and call `f` on each in order. Stops at the first error.
    pub fn for_each_batch<E: From<DataError>>(
        &self,
        set: &LabeledImages,
        order: &[usize],
        batch_size: usize,
        epoch: u64,
        prefetch: usize,
        mut f: impl FnMut(HostBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        let (tx, rx) = mpsc::sync_channel::<Result<HostBatch, DataError>>(prefetch.max(1));
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for chunk in order.chunks(batch_size.max(1)) {
                    let b = self.prepare(set, chunk, epoch);
                    let stop = b.is_err();
                    if tx.send(b).is_err() || stop {
                        break;
                    }
                }
            });
            for b in rx {
                f(b?)?;
            }
            Ok(())
        })
    }
}
