//! The image-classification task: [`ImageModel`] as a [`Network`], dataset splits as a
//! [`BatchSource`], and prediction on arbitrary files.

use crate::TrainError;
use crate::data::ImageBatcher;
use crate::training::{BatchSource, Network, Split};
use crate::vision::ImageModel;
use burn::prelude::*;
use medai_data::{LabeledImages, RawImage};

impl Network for ImageModel {
    type Input = Tensor<4>;
    fn outputs(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward(input)
    }
    fn freeze_backbone(self) -> Self {
        self.freeze_except_head(true)
    }
    fn unfreeze_all(self) -> Self {
        self.freeze_except_head(false)
    }
}

/// Train and validation image sets with the batcher that prepares them.
pub struct ImageSource<'a> {
    /// Training images.
    pub train: &'a LabeledImages,
    /// Validation images.
    pub val: &'a LabeledImages,
    /// Preprocessing for training (with augmentation).
    pub train_batcher: ImageBatcher,
    /// Preprocessing for evaluation (no augmentation).
    pub eval_batcher: ImageBatcher,
}

impl BatchSource for ImageSource<'_> {
    type Input = Tensor<4>;
    type Target = usize;
    fn targets(&self, split: Split) -> Vec<usize> {
        match split {
            Split::Train => self.train.labels(),
            Split::Val => self.val.labels(),
        }
    }
    fn for_each_batch(
        &self,
        split: Split,
        order: &[usize],
        batch_size: usize,
        epoch: u64,
        device: &Device,
        f: &mut crate::training::BatchFn<'_, Tensor<4>>,
    ) -> Result<(), TrainError> {
        let (set, batcher) = match split {
            Split::Train => (self.train, &self.train_batcher),
            Split::Val => (self.val, &self.eval_batcher),
        };
        batcher.for_each_batch(set, order, batch_size, epoch, 3, |b| {
            let x = batcher.to_tensor(&b, device);
            f(x, &b.labels)
        })
    }
    fn shard(
        &self,
        input: &Tensor<4>,
        rows: std::ops::Range<usize>,
        device: &Device,
    ) -> Option<Tensor<4>> {
        Some(crate::training::shard_rows(input, rows, device))
    }
}

/// Class probabilities for every image of `set` (index order) with an inference-mode model.
pub fn predict_set(
    model: &ImageModel,
    set: &LabeledImages,
    batcher: &ImageBatcher,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f64>>, TrainError> {
    let order: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::with_capacity(set.len());
    batcher.for_each_batch(set, &order, batch_size, 0, 2, |b| {
        let x = batcher.to_tensor(&b, device);
        out.extend(crate::training::probabilities(model.forward(x)));
        Ok::<(), TrainError>(())
    })?;
    Ok(out)
}

/// Class probabilities for `n` already preprocessed inputs (`n × C × H × W` values laid out
/// one after another, the shape of `spec`), as the inference service batches them.
pub fn predict_prepared(
    model: &ImageModel,
    pixels: Vec<f32>,
    n: usize,
    spec: &medai_data::PreprocessSpec,
    device: &Device,
) -> Result<Vec<Vec<f64>>, String> {
    let want = n * spec.channels * spec.height * spec.width;
    if pixels.len() != want {
        return Err(format!(
            "{} input values for {n} images of {}×{}×{} ({want} expected)",
            pixels.len(),
            spec.channels,
            spec.height,
            spec.width
        ));
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(pixels, [n, spec.channels, spec.height, spec.width]),
        device,
    );
    Ok(crate::training::probabilities(model.forward(x)))
}

/// Class probabilities for already decoded images.
pub fn predict_images(
    model: &ImageModel,
    images: &[RawImage],
    batcher: &ImageBatcher,
    device: &Device,
) -> Vec<Vec<f64>> {
    let spec = &batcher.spec;
    let mut pixels = Vec::with_capacity(images.len() * spec.channels * spec.height * spec.width);
    for img in images {
        pixels.extend(spec.apply(img));
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(
            pixels,
            [images.len(), spec.channels, spec.height, spec.width],
        ),
        device,
    );
    crate::training::probabilities(model.forward(x))
}
