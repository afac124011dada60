//! Time the D-MPNN on batches of 64 ESOL molecules: forward (inference) and forward + backward +
//! Adam step (training), per batch. `cargo run --release -p medai-nn --example bench_mpnn`.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use medai_chem::{MolDataset, ReadOptions};
use medai_nn::molecule::{MpnnConfig, batch_input};
use std::time::Instant;

fn main() {
    if std::env::var_os("NO_TUNE").is_none() {
        medai_nn::backend::tune_allocator();
    }
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/molecules/esol.csv".into());
    let ds = MolDataset::read_csv(
        std::path::Path::new(&path),
        &ReadOptions {
            smiles_column: "smiles".into(),
            ..Default::default()
        },
    )
    .expect("read");
    let device = Device::default();
    let rows: Vec<usize> = (0..ds.len()).collect();
    let batches: Vec<&[usize]> = rows.chunks(64).collect();
    let cfg = MpnnConfig::new(1, 0);
    let model = cfg.init(&device);
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let t = Instant::now();
    for _ in 0..reps {
        for b in &batches {
            let x = batch_input(&ds.graphs, &[], b, &device);
            let _ = model.forward(&x).into_data();
        }
    }
    let fwd = t.elapsed().as_secs_f64() / reps as f64;
    if std::env::var_os("FWD_ONLY").is_some() {
        println!("forward {:.1} ms/batch", 1e3 * fwd / batches.len() as f64);
        return;
    }
    let ad = device.clone().autodiff();
    let mut model = cfg.init(&ad);
    let mut optim = AdamConfig::new().init();
    let t = Instant::now();
    for b in &batches {
        let x = batch_input(&ds.graphs, &[], b, &ad);
        let loss = model.forward(&x).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    let train = t.elapsed().as_secs_f64();
    println!(
        "{} molecules, {} batches: forward {:.1} ms/batch ({:.0} mol/s); train step {:.1} ms/batch ({:.0} mol/s)",
        ds.len(),
        batches.len(),
        1e3 * fwd / batches.len() as f64,
        ds.len() as f64 / fwd,
        1e3 * train / batches.len() as f64,
        ds.len() as f64 / train
    );
}
