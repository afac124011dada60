//! The sequence forecaster: its likelihood loss on the device equals the host likelihood (which
//! is checked against SciPy in `medai-forecast`), and the shared trainer fits it to a Poisson
//! series with a weekly pattern well enough to recover the pattern and cover at the nominal rate.

use burn::prelude::*;
use medai_data::{Frequency, TimeSeries};
use medai_forecast::{Forecaster, Likelihood, WindowSpec};
use medai_nn::forecast::{
    Cell, CountObjective, ForecastNetConfig, ForecastSource, NeuralForecaster,
};
use medai_nn::training::{Objective, Schedule, TrainConfig, TrainIo, fit_objective};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn device_loss_equals_the_host_likelihood() {
    let device = Device::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (b, h) = (5, 3);
    let raw: Vec<f32> = (0..b * h * 2)
        .map(|_| rng.random_range(-1.5..2.5))
        .collect();
    let targets: Vec<Vec<f32>> = (0..b)
        .map(|_| (0..h).map(|_| rng.random_range(0..14) as f32).collect())
        .collect();
    let rows: Vec<Vec<f32>> = raw.chunks(2 * h).map(|c| c.to_vec()).collect();
    for likelihood in [Likelihood::Negbin, Likelihood::Poisson] {
        let obj = CountObjective { likelihood };
        let t = Tensor::<2>::from_data(TensorData::new(raw.clone(), [b, 2 * h]), &device);
        let dev = obj.loss(t, &targets).into_scalar::<f32>() as f64;
        let host = obj.validate(&rows, &targets).loss;
        assert!(
            (dev - host).abs() < 1e-4 * host.abs().max(1.0),
            "{likelihood:?}: device {dev} vs host {host}"
        );
    }
}

/// Poisson counts with rate `3 + 4·[08:00–20:00] + 2·[weekend]` per hour.
fn poisson_series(weeks: usize, seed: u64) -> (TimeSeries, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t0 = 1_704_067_200; // Monday 2024-01-01 00:00
    let n = weeks * 168;
    let rate: Vec<f64> = (0..n)
        .map(|i| {
            let hour = i % 24;
            let weekend = (i / 24) % 7 >= 5;
            3.0 + if (8..20).contains(&hour) { 4.0 } else { 0.0 } + if weekend { 2.0 } else { 0.0 }
        })
        .collect();
    let target = rate
        .iter()
        .map(|&l| {
            // Knuth's Poisson sampler (small rates).
            let (limit, mut k, mut p) = ((-l).exp(), 0u32, 1.0f64);
            loop {
                p *= rng.random::<f64>();
                if p <= limit {
                    return k as f64;
                }
                k += 1;
            }
        })
        .collect();
    (
        TimeSeries {
            path: "synthetic.csv".into(),
            times: (0..n as i64).map(|i| t0 + 3600 * i).collect(),
            target,
            covariates: vec![],
            frequency: Frequency::Hourly,
            gaps: vec![],
        },
        rate,
    )
}

#[test]
fn trainer_fits_a_poisson_series_and_the_backtest_uses_its_quantiles() {
    let (ts, rate) = poisson_series(30, 3);
    let end = 26 * 168;
    let spec = WindowSpec::fit(&ts, end, 24, 6).unwrap();
    let source = ForecastSource::new(&ts, spec.clone(), end, 0.15).unwrap();
    let device = Device::default();
    device.seed(1);
    let ad = device.clone().autodiff();
    let model = ForecastNetConfig::for_spec(&spec, Cell::Gru, 8).init(&ad);
    let cfg = TrainConfig {
        epochs: 6,
        batch_size: 128,
        lr: 1e-2,
        schedule: Schedule::Cosine,
        patience: 0,
        ..TrainConfig::default()
    };
    let obj = CountObjective {
        likelihood: Likelihood::Poisson,
    };
    let out = fit_objective(model, &source, &obj, &cfg, &ad, &TrainIo::default()).unwrap();
    // The likelihood improves over training.
    let first = out.history.first().unwrap().val_loss;
    let best = out.history[out.best_epoch - 1].val_loss;
    assert!(best < first, "validation NLL {first} → {best}");

    let mut nf = NeuralForecaster::new("gru", out.model, spec, Likelihood::Poisson, device);
    nf.fit(&ts, end, 1).unwrap();
    let idx: Vec<usize> = (end..ts.len()).collect();
    let preds = nf.predict_batch(&ts, &idx).unwrap();
    // The forecast mean tracks the true rate (mean absolute error well under the rate's
    // day/night swing of 4), and the 95% interval covers about 95% of the counts.
    let mae: f64 = idx
        .iter()
        .zip(&preds)
        .map(|(&t, p)| (p.point - rate[t]).abs())
        .sum::<f64>()
        / idx.len() as f64;
    assert!(mae < 0.8, "mean |forecast − rate| = {mae}");
    let covered = idx
        .iter()
        .zip(&preds)
        .filter(|(t, p)| {
            let q = p.quantiles.unwrap();
            (q[0]..=q[3]).contains(&ts.target[**t])
        })
        .count() as f64
        / idx.len() as f64;
    assert!((0.91..=0.995).contains(&covered), "95% coverage {covered}");
    // A model trained on values inside the test period is refused.
    assert!(nf.fit(&ts, end - 10, 1).is_err());
}

#[test]
fn daily_series_train_and_resume_from_a_checkpoint() {
    // 60 weeks of daily counts: a weekday pattern (weekends busier).
    let (hourly, _) = poisson_series(60, 5);
    let n = 60 * 7;
    let t0 = 1_704_067_200;
    let ts = TimeSeries {
        path: "daily.csv".into(),
        times: (0..n as i64).map(|i| t0 + 86_400 * i).collect(),
        target: (0..n)
            .map(|i| hourly.target[i] + if i % 7 >= 5 { 8.0 } else { 0.0 })
            .collect(),
        covariates: vec![],
        frequency: Frequency::Daily,
        gaps: vec![],
    };
    let end = n - 28;
    let spec = WindowSpec::fit(&ts, end, 14, 7).unwrap();
    assert_eq!((spec.period, spec.first_origin()), (7, 27));
    assert!(
        WindowSpec::fit(&ts, end, 14, 8).is_err(),
        "horizon over a week"
    );
    let source = ForecastSource::new(&ts, spec.clone(), end, 0.2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let io = TrainIo {
        checkpoint_dir: Some(dir.path().join("ckpt")),
        ..TrainIo::default()
    };
    let device = Device::default();
    let ad = device.clone().autodiff();
    let cfg = |epochs| TrainConfig {
        epochs,
        batch_size: 32,
        lr: 1e-2,
        patience: 0,
        ..TrainConfig::default()
    };
    let obj = CountObjective {
        likelihood: Likelihood::Negbin,
    };
    let init = || ForecastNetConfig::for_spec(&spec, Cell::Lstm, 4).init(&ad);
    let two = fit_objective(init(), &source, &obj, &cfg(2), &ad, &io).unwrap();
    assert_eq!(two.history.len(), 2);
    let resumed = TrainIo {
        resume: true,
        ..io.clone()
    };
    let three = fit_objective(init(), &source, &obj, &cfg(3), &ad, &resumed).unwrap();
    assert_eq!(three.history.len(), 3);
    // The first two epochs come from the checkpoint, unchanged.
    assert_eq!(three.history[1].val_loss, two.history[1].val_loss);
    // Weekend days get the higher forecast.
    let mut nf = NeuralForecaster::new("lstm", three.model, spec, Likelihood::Negbin, device);
    nf.fit(&ts, end, 1).unwrap();
    let idx: Vec<usize> = (end..n).collect();
    let p = nf.predict_batch(&ts, &idx).unwrap();
    let mean_of = |weekend: bool| {
        let v: Vec<f64> = idx
            .iter()
            .zip(&p)
            .filter(|(t, _)| (**t % 7 >= 5) == weekend)
            .map(|(_, p)| p.point)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(
        mean_of(true) > mean_of(false) + 3.0,
        "{} vs {}",
        mean_of(true),
        mean_of(false)
    );
}

/// With a weight average (`ema`), the average is what validation scores, and it survives a
/// resume: two epochs + one resumed equal three unbroken ones, bit for bit.
#[test]
fn weight_average_is_validated_and_resumes_exactly() {
    let (hourly, _) = poisson_series(30, 9);
    let n = 30 * 7;
    let ts = TimeSeries {
        path: "daily.csv".into(),
        times: (0..n as i64).map(|i| 1_704_067_200 + 86_400 * i).collect(),
        target: hourly.target[..n].to_vec(),
        covariates: vec![],
        frequency: Frequency::Daily,
        gaps: vec![],
    };
    let end = n - 14;
    let spec = WindowSpec::fit(&ts, end, 14, 7).unwrap();
    let source = ForecastSource::new(&ts, spec.clone(), end, 0.2).unwrap();
    let device = Device::default();
    let ad = device.clone().autodiff();
    let obj = CountObjective {
        likelihood: Likelihood::Poisson,
    };
    let cfg = |epochs, ema| TrainConfig {
        epochs,
        batch_size: 16,
        lr: 1e-2,
        patience: 0,
        ema,
        // Constant: the schedule must not depend on the epoch count of the interrupted run.
        schedule: Schedule::Constant,
        ..TrainConfig::default()
    };
    let run = |epochs, ema, io: &TrainIo| {
        ad.seed(11);
        let model = ForecastNetConfig::for_spec(&spec, Cell::Gru, 4).init(&ad);
        fit_objective(model, &source, &obj, &cfg(epochs, ema), &ad, io).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let io = |name: &str, resume| TrainIo {
        checkpoint_dir: Some(dir.path().join(name)),
        resume,
        ..TrainIo::default()
    };
    let plain = run(3, None, &io("plain", false));
    let unbroken = run(3, Some(0.9), &io("unbroken", false));
    // Same training steps, but the average is what validation scores.
    assert_eq!(plain.history[0].train_loss, unbroken.history[0].train_loss);
    assert_eq!(plain.history[2].train_loss, unbroken.history[2].train_loss);
    assert_ne!(plain.history[2].val_loss, unbroken.history[2].val_loss);
    // The average and its step count are checkpointed and picked up by a resumed run.
    run(2, Some(0.9), &io("broken", false));
    let ckpt = dir.path().join("broken");
    assert!(ckpt.join("ema.bpk").is_file());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("state.json")).unwrap()).unwrap();
    let steps = source_steps(&source, 16);
    assert_eq!(state["ema_steps"], serde_json::json!(2 * steps));
    let resumed = run(3, Some(0.9), &io("broken", true));
    assert_eq!(resumed.history.len(), 3);
    assert_eq!(resumed.history[1].val_loss, unbroken.history[1].val_loss);
    let losses = |h: &[medai_nn::training::EpochLog]| -> Vec<(f64, f64)> {
        h.iter().map(|e| (e.train_loss, e.val_loss)).collect()
    };
    assert_eq!(losses(&resumed.history), losses(&unbroken.history));
    // The same holds without the average (every weight, including zero-initialised ones,
    // is trained and checkpointed with its optimiser state).
    run(1, None, &io("plain-broken", false));
    let plain_resumed = run(3, None, &io("plain-broken", true));
    assert_eq!(losses(&plain_resumed.history), losses(&plain.history));
}

fn source_steps(source: &ForecastSource, batch: usize) -> usize {
    use medai_nn::training::BatchSource;
    source
        .targets(medai_nn::training::Split::Train)
        .len()
        .div_ceil(batch)
}
