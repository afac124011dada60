//! How long the data pipeline alone takes for one training epoch (decode + preprocess +
//! augmentation of every training image, batched as the trainer does), to compare with the
//! epoch's training time. `cargo run --release -p medai-nn --example bench_loader -- DATA`
use medai_data::{AugmentSpec, OpenOptions, PreprocessSpec};
use medai_nn::data::ImageBatcher;
use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/medmnist/pneumoniamnist.npz".into());
    let splits = medai_data::open(path.as_ref(), &OpenOptions::default()).expect("open dataset");
    let first = splits.train.load(0).expect("decode");
    let spec = PreprocessSpec {
        height: first.height,
        width: first.width,
        channels: first.channels,
        resize: medai_data::ResizeFilter::Bilinear,
        normalization: medai_data::Normalization::Rescale,
    };
    let b = ImageBatcher {
        spec,
        augment: Some(AugmentSpec::medical_default()),
        seed: 1,
    };
    let order: Vec<usize> = (0..splits.train.len()).collect();
    let t = Instant::now();
    let mut n = 0;
    b.for_each_batch(&splits.train, &order, 128, 1, 3, |batch| {
        n += batch.labels.len();
        Ok::<(), medai_data::DataError>(())
    })
    .expect("prepare");
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"images\": {n}, \"seconds\": {s:.3}, \"images_per_s\": {:.0}}}",
        n as f64 / s
    );
}
