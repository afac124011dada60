//! Throughput of the small CNN (or ResNet-18) on synthetic data, for `bench/run` and
//! `bench/gpu.sh` (compare with `bench/pytorch_cnn.py`, which builds the same networks in
//! PyTorch).
//!
//! `cargo run --release -p medai-nn --example bench_cnn -- [SIZE] [TRAIN_BATCH] [SECONDS]
//! [ARCH] [DEVICE]` (ARCH `small-cnn` (default) or `resnet18`, one grey input channel, one
//! logit; DEVICE as `medai --device`, default `cpu`) prints one JSON object: train images/s,
//! batch-256 inference images/s, batch-1 p50 latency (ms) and the process's peak RSS (MiB).

use medai_nn::Device;
use medai_nn::training::Network;
use medai_nn::vision::{Arch, ArchConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(28);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let secs: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let arch_name = args.get(4).map_or("small-cnn", String::as_str);
    let arch = Arch::parse(arch_name).unwrap_or_else(|| panic!("unknown ARCH {arch_name:?}"));
    // As `medai` itself does at start-up (keeps freed tensor buffers in the heap).
    medai_nn::backend::tune_allocator();
    let device = match args.get(5) {
        Some(name) => medai_nn::backend::device(name).unwrap_or_else(|e| panic!("{e}")),
        None => Device::default(),
    };
    device.seed(0);
    let ad = device.clone().autodiff();
    let mut cfg = ArchConfig::new(arch, 1, 1);
    cfg.widths = vec![32, 64, 128];
    cfg.convs_per_stage = 1;
    let mut model = cfg.init(&ad);
    let mut optim = burn::optim::AdamConfig::new().with_epsilon(1e-7).init();
    let mk = |n: usize, dev: &Device| {
        let data: Vec<f32> = (0..n * size * size)
            .map(|i| ((i * 7919) % 255) as f32 / 255.0)
            .collect();
        burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(data, [n, 1, size, size]),
            dev,
        )
    };
    let labels: Vec<usize> = (0..batch).map(|i| i % 2).collect();
    let w = vec![1.0f32; batch];
    let step = |model: medai_nn::vision::ImageModel, optim: &mut burn::optim::ModuleOptimizer| {
        let loss = medai_nn::loss::bce_with_logits(model.outputs(mk(batch, &ad)), &labels, &w);
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-3, model, grads)
    };
    // GPU backends queue work: wait for it before reading the clock.
    let sync = || device.sync().expect("device sync");
    for _ in 0..3 {
        model = step(model, &mut optim);
    }
    sync();
    let t = Instant::now();
    let mut steps = 0;
    while t.elapsed().as_secs_f64() < secs {
        model = step(model, &mut optim);
        steps += 1;
    }
    sync();
    let train = (steps * batch) as f64 / t.elapsed().as_secs_f64();

    let m = model.inference();
    let x256 = mk(256, &device);
    let _ = m.outputs(x256.clone()).into_data();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < secs / 2.0 {
        let _ = m.outputs(x256.clone()).into_data();
        n += 256;
    }
    let infer = n as f64 / t.elapsed().as_secs_f64();
    let x1 = mk(1, &device);
    let mut lat = Vec::new();
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < secs / 2.0 || lat.len() < 20 {
        let s = Instant::now();
        let _ = m.outputs(x1.clone()).into_data();
        lat.push(s.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let p50 = lat[lat.len() / 2];
    // Forward + backward ≈ 3× the forward FLOPs (counted for the small CNN; ResNet-18's count
    // comes from PyTorch's FLOP counter in `bench/pytorch_cnn.py`).
    let flops = match arch {
        Arch::SmallCnn => 3.0 * cfg.small_cnn_flops(size, size),
        _ => 0.0,
    };
    println!(
        "{{\"arch\": \"{arch_name}\", \"size\": {size}, \"batch\": {batch}, \"train_img_s\": {train:.1}, \"infer256_img_s\": {infer:.1}, \"latency1_ms_p50\": {p50:.4}, \"train_flop_per_img\": {flops:.0}, \"peak_rss_mb\": {:.1}}}",
        medai_nn::backend::peak_rss_mb()
    );
}
