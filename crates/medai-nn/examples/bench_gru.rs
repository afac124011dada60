//! Throughput of the BiGRU (or BiLSTM) + attention text classifier on synthetic token ids, for `bench/run`
//! (compare with `bench/pytorch_gru.py`, the same network in PyTorch).
//!
//! `cargo run --release -p medai-nn --example bench_gru -- [SEQ] [BATCH] [SECONDS] [VOCAB] [EMBED] [gru|lstm]`
//! prints one JSON object: training steps/s (Adam, cross-entropy, 23 classes, vocabulary 20 000
//! and embedding 200 unless given, hidden 128 per direction, attention 128) and batch inference documents/s. Set
//! `MEDAI_FUSED=0` to run the engine's op-by-op recurrence instead of medai's fused kernel.

use burn::module::Module;
use burn::optim::GradientsParams;
use medai_nn::Device;
use medai_nn::text::{TextArch, TextInput, TextModelConfig};
use medai_text::Encoded;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seq: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let secs: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let vocab: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let embed: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(200);
    let lstm = args.get(6).is_some_and(|a| a == "lstm");
    let classes = 23usize;
    medai_nn::backend::tune_allocator();
    let device = Device::default();
    device.seed(0);
    let ad = device.clone().autodiff();
    let arch = if lstm {
        TextArch::BilstmAttn
    } else {
        TextArch::BigruAttn
    };
    let mut cfg = TextModelConfig::word(arch, vocab, classes);
    cfg.embed_dim = embed;
    let mut model = cfg.init(&ad).expect("model");
    let mut optim = burn::optim::AdamConfig::new().init();
    let docs: Vec<Encoded> = (0..batch)
        .map(|i| {
            let ids: Vec<u32> = (0..seq)
                .map(|j| (2 + (i * 7919 + j * 104_729) % (vocab - 2)) as u32)
                .collect();
            Encoded {
                type_ids: vec![0; ids.len()],
                tokens: vec![String::new(); ids.len()],
                spans: vec![None; ids.len()],
                ids,
            }
        })
        .collect();
    let refs: Vec<&Encoded> = docs.iter().collect();
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let w = vec![1.0f32; batch];
    let mut step = |model: medai_nn::text::TextModel| {
        let input = TextInput::new(&refs, 0, 1, &ad);
        let loss = medai_nn::loss::cross_entropy(model.forward(&input), &labels, &w);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-3, model, grads)
    };
    for _ in 0..2 {
        model = step(model);
    }
    let t = Instant::now();
    let mut steps = 0;
    while t.elapsed().as_secs_f64() < secs || steps < 3 {
        model = step(model);
        steps += 1;
    }
    let train = steps as f64 / t.elapsed().as_secs_f64();

    let m = model.valid();
    let input = TextInput::new(&refs, 0, 1, &device);
    let _ = m.forward(&input).into_data();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < secs / 2.0 || n < 3 * batch {
        let _ = m.forward(&input).into_data();
        n += batch;
    }
    let infer = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{{\"seq\": {seq}, \"batch\": {batch}, \"vocab\": {vocab}, \"embed\": {embed}, \"lstm\": {lstm}, \"train_steps_s\": {train:.2}, \"infer_docs_s\": {infer:.1}, \"peak_rss_mb\": {:.1}}}",
        medai_nn::backend::peak_rss_mb()
    );
}
