//! Explanations localise: on a synthetic dataset where only a bright square decides the class,
//! a small CNN trained by the ordinary trainer is explained by Grad-CAM (and by occlusion) at the
//! square.
//!
//! Every image is 32×32 dark noise (0–80) holding one 10×10 square at a random place: bright
//! (200–255) for class 1, dim (100–130) for class 0. The images differ only inside the square, so
//! a square's presence or edges say nothing and only its brightness decides. The test explains
//! class 1 on positive test images and counts how often the map's peak falls inside the square.

use medai_data::{
    Item, ItemSource, LabeledImages, Normalization, PreprocessSpec, ResizeFilter, U8Images,
};
use medai_nn::Device;
use medai_nn::data::ImageBatcher;
use medai_nn::explain::{Method, gradcam, occlusion};
use medai_nn::training::{TrainConfig, TrainIo, fit};
use medai_nn::vision::{Arch, ArchConfig};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const SIZE: usize = 32;
const SQUARE: usize = 10;

/// `n` images with their labels and square corners.
fn synthetic(n: usize, seed: u64) -> (LabeledImages, Vec<(usize, usize)>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n * SIZE * SIZE);
    let mut items = Vec::with_capacity(n);
    let mut corners = Vec::with_capacity(n);
    let array_items: Vec<(usize, (usize, usize))> = (0..n)
        .map(|i| {
            let label = i % 2;
            let y0 = rng.random_range(0..=SIZE - SQUARE);
            let x0 = rng.random_range(0..=SIZE - SQUARE);
            let mut img: Vec<u8> = (0..SIZE * SIZE).map(|_| rng.random_range(0..=80)).collect();
            let (lo, hi) = if label == 1 { (200, 255) } else { (100, 130) };
            for y in y0..y0 + SQUARE {
                for x in x0..x0 + SQUARE {
                    img[y * SIZE + x] = rng.random_range(lo..=hi);
                }
            }
            data.extend(img);
            (label, (y0, x0))
        })
        .collect();
    let array = Arc::new(U8Images::new(n, SIZE, SIZE, 1, data).unwrap());
    for (index, (label, corner)) in array_items.into_iter().enumerate() {
        items.push(Item {
            source: ItemSource::Memory {
                array: array.clone(),
                index,
            },
            label,
            attributes: Vec::new(),
        });
        corners.push(corner);
    }
    (
        LabeledImages {
            classes: vec!["no".into(), "yes".into()],
            items,
        },
        corners,
    )
}

fn inside(peak: (usize, usize), corner: (usize, usize)) -> bool {
    (corner.0..corner.0 + SQUARE).contains(&peak.0)
        && (corner.1..corner.1 + SQUARE).contains(&peak.1)
}

/// Peak of a feature-map-resolution map in input pixels: the centre of the peak cell.
fn to_pixels(peak: (usize, usize), h: usize, w: usize) -> (usize, usize) {
    (
        ((peak.0 as f64 + 0.5) * SIZE as f64 / h as f64) as usize,
        ((peak.1 as f64 + 0.5) * SIZE as f64 / w as f64) as usize,
    )
}

#[test]
fn gradcam_and_occlusion_peak_inside_the_deciding_square() {
    let (train, _) = synthetic(1200, 1);
    let (val, _) = synthetic(200, 2);
    let (test, corners) = synthetic(200, 3);
    let spec = PreprocessSpec {
        height: SIZE,
        width: SIZE,
        channels: 1,
        resize: ResizeFilter::Bilinear,
        normalization: Normalization::Rescale,
    };
    let source = medai_nn::image::ImageSource {
        train: &train,
        val: &val,
        train_batcher: ImageBatcher::eval(spec.clone()),
        eval_batcher: ImageBatcher::eval(spec.clone()),
    };
    let mut arch = ArchConfig::new(Arch::SmallCnn, 1, 1);
    arch.widths = vec![16, 32, 64];
    let device = Device::default();
    let ad = device.clone().autodiff();
    device.seed(7);
    ad.seed(7);
    let cfg = TrainConfig {
        epochs: 6,
        batch_size: 64,
        lr: 3e-3,
        seed: 7,
        ..TrainConfig::default()
    };
    let outcome = fit(arch.init(&ad), &source, 2, &cfg, &ad, &TrainIo::default()).unwrap();
    assert!(
        outcome.history[outcome.best_epoch - 1]
            .val_accuracy
            .unwrap()
            > 0.97,
        "the task is easy; val accuracy {}",
        outcome.history[outcome.best_epoch - 1]
            .val_accuracy
            .unwrap_or_default()
    );
    assert!(
        outcome.best_val_score > 0.99,
        "the task is easy; val AUC {}",
        outcome.best_val_score
    );
    let model = outcome.model;

    let batcher = ImageBatcher::eval(spec);
    let positives: Vec<usize> = (0..test.len())
        .filter(|&i| test.items[i].label == 1)
        .collect();
    let order = positives.clone();
    let mut hits = [0usize; 2];
    let mut seen = 0;
    batcher
        .for_each_batch(&test, &order, 50, 0, 1, |b| {
            let x = batcher.to_tensor(&b, &device);
            let targets = vec![1; b.labels.len()];
            let cams = gradcam(&model, x.clone(), &targets).unwrap();
            let occ = occlusion(&model, x, &targets, 12, 2, 256).unwrap();
            for (j, (cam, occ)) in cams.iter().zip(&occ).enumerate() {
                let corner = corners[b.indices[j]];
                assert!(cam.values.iter().all(|v| v.is_finite()));
                if inside(to_pixels(cam.argmax(), cam.height, cam.width), corner) {
                    hits[0] += 1;
                }
                assert_eq!((occ.height, occ.width), (SIZE, SIZE));
                if inside(occ.argmax(), corner) {
                    hits[1] += 1;
                }
            }
            seen += cams.len();
            Ok::<(), medai_data::DataError>(())
        })
        .unwrap();
    assert_eq!(seen, positives.len());
    let frac = |h: usize| h as f64 / seen as f64;
    eprintln!(
        "peak inside the square: Grad-CAM {:.3}, occlusion {:.3} of {seen} positive test images",
        frac(hits[0]),
        frac(hits[1])
    );
    assert!(frac(hits[0]) >= 0.9, "Grad-CAM {}", frac(hits[0]));
    // Occlusion is coarser (a 12-px patch must hide the whole square before a confident model
    // changes its mind, and it also hides a rim around it); it is the model-agnostic check.
    assert!(frac(hits[1]) >= 0.8, "occlusion {}", frac(hits[1]));
    assert_eq!(Method::parse("grad-cam"), Some(Method::GradCam));
}

/// For a global-average-pooled linear head, `logit_c = b_c + Σ_k w_ck mean(A_k)`, so the signed
/// Grad-CAM map `Σ_k (w_ck / hw) A_k` sums to `logit_c - b_c`: an exact oracle for the gradient
/// path, checked on every architecture, for a sigmoid and a softmax head.
#[test]
fn gradcam_sums_to_the_logit_on_every_architecture() {
    use burn::tensor::{Tensor, TensorData};
    let device = Device::default();
    let mut configs = Vec::new();
    for outputs in [1, 3] {
        let mut small = ArchConfig::new(Arch::SmallCnn, 1, outputs);
        small.widths = vec![8, 16];
        let mut resnet = ArchConfig::new(Arch::Resnet18, 3, outputs);
        resnet.small_stem = true;
        resnet.base_width = 8;
        let mut densenet = ArchConfig::new(Arch::Densenet121, 3, outputs);
        densenet.small_stem = true;
        configs.extend([small, resnet, densenet]);
    }
    configs.push(ArchConfig::new(Arch::Vgg16, 3, 2));
    for cfg in configs {
        let model = cfg.init(&device).inference();
        let n = 2;
        let len = n * cfg.in_channels * SIZE * SIZE;
        let pixels: Vec<f32> = (0..len)
            .map(|i| ((i * 7919) % 255) as f32 / 255.0)
            .collect();
        let x = Tensor::<4>::from_data(
            TensorData::new(pixels, [n, cfg.in_channels, SIZE, SIZE]),
            &device,
        );
        let fmap = model.feature_map(x.clone());
        let dims = fmap.dims();
        let logits: Vec<f32> = model
            .classify(fmap)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let bias: Vec<f32> = model
            .classify(Tensor::<4>::zeros(dims, &device))
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let k = cfg.outputs;
        for target in 0..k.max(2) {
            let maps = medai_nn::explain::gradcam_signed(&model, x.clone(), &[target; 2]).unwrap();
            for (i, map) in maps.iter().enumerate() {
                assert_eq!(
                    (map.height, map.width),
                    (dims[2], dims[3]),
                    "{:?}",
                    cfg.arch
                );
                let sum: f64 = map.values.iter().map(|&v| v as f64).sum();
                let want = if k == 1 {
                    let d = (logits[i] - bias[0]) as f64;
                    if target == 1 { d } else { -d }
                } else {
                    (logits[i * k + target] - bias[target]) as f64
                };
                assert!(
                    (sum - want).abs() <= 1e-3 * (1.0 + want.abs()),
                    "{:?} outputs {k} target {target}: Σ Grad-CAM {sum} vs logit − bias {want}",
                    cfg.arch
                );
            }
            let relu = gradcam(&model, x.clone(), &[target; 2]).unwrap();
            assert!(relu.iter().flat_map(|m| &m.values).all(|v| *v >= 0.0));
        }
    }
}
