//! `medai backtest`: rolling-origin backtests of forecasting models on a CSV time series.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use medai_data::{TimeSeries, TsColumns, format_datetime, parse_datetime, read_timeseries_csv};
use medai_forecast::{BacktestConfig, Forecaster, Linear, MovingAverage, SeasonalNaive};

use crate::commands::Format;

/// Where the series is and which columns hold what (shared by `backtest` and `forecast`).
#[derive(Args, Debug, Clone)]
pub struct SeriesArgs {
    /// The CSV time series.
    #[arg(long)]
    pub data: PathBuf,
    /// The column to forecast.
    #[arg(long)]
    pub target: String,
    /// A timestamp column (`YYYY-MM-DD[ HH:MM[:SS]]`).
    #[arg(long, conflicts_with = "date_column")]
    pub timestamp: Option<String>,
    /// A date column (`YYYY-MM-DD`); with --hour-column for hourly data. Default: `Date`.
    #[arg(long)]
    pub date_column: Option<String>,
    /// An hour-of-day column (0–23) that goes with --date-column. Default: `Hour` when present.
    #[arg(long)]
    pub hour_column: Option<String>,
    /// Covariates known in advance, comma-separated (calendar flags, weather).
    #[arg(long, value_delimiter = ',')]
    pub covariates: Vec<String>,
}

impl SeriesArgs {
    /// Read the series; warn about gaps.
    pub fn load(&self) -> Result<TimeSeries> {
        // Only the header line, to see whether an `Hour` column exists.
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(
                std::fs::File::open(&self.data)
                    .map_err(|e| anyhow!("{}: {e}", self.data.display()))?,
            ),
            &mut first,
        )
        .map_err(|e| anyhow!("{}: {e}", self.data.display()))?;
        let header = first
            .trim_end()
            .split(',')
            .map(|s| s.trim().to_string())
            .collect::<Vec<_>>();
        let (date, hour) = match (&self.timestamp, &self.date_column) {
            (Some(_), _) => (None, None),
            (None, d) => {
                let d = d.clone().unwrap_or_else(|| "Date".into());
                let h = self.hour_column.clone().or_else(|| {
                    header
                        .iter()
                        .any(|c| c == "Hour")
                        .then(|| "Hour".to_string())
                });
                (Some(d), h)
            }
        };
        let ts = read_timeseries_csv(
            &self.data,
            &TsColumns {
                timestamp: self.timestamp.clone(),
                date,
                hour,
                target: self.target.clone(),
                covariates: self.covariates.clone(),
            },
        )?;
        if !ts.gaps.is_empty() {
            eprintln!(
                "warning: {}: {} gap(s) in the series (first: {} step(s) after row {})",
                self.data.display(),
                ts.gaps.len(),
                ts.gaps[0].missing,
                ts.gaps[0].after_row
            );
        }
        Ok(ts)
    }
}

/// A baseline by name; `window` for the moving average.
fn baseline(name: &str, ts: &TimeSeries, window: Option<usize>) -> Box<dyn Forecaster> {
    let window = window.unwrap_or(match ts.frequency {
        medai_data::Frequency::Hourly => 24,
        medai_data::Frequency::Daily => 7,
    });
    match name {
        "seasonal-naive" => Box::new(SeasonalNaive::default()),
        "moving-average" => Box::new(MovingAverage::new(window)),
        _ => Box::new(Linear::default()),
    }
}

/// Options of `medai backtest`.
#[derive(Args, Debug, Clone)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// The test period starts here (`YYYY-MM-DD[ HH:MM]`); earlier values train the first fit.
    #[arg(long)]
    pub train_until: String,
    /// The test period ends before this time.
    #[arg(long)]
    pub test_until: String,
    /// Steps ahead (1 = one-step-ahead; 24 = a day ahead for hourly data).
    #[arg(long, default_value_t = 1)]
    pub horizon: usize,
    /// Values forecast between refits of the expanding window (default: 30 days).
    #[arg(long)]
    pub refit_every: Option<usize>,
    /// Models to backtest.
    #[arg(long, value_delimiter = ',', default_value = "seasonal-naive,moving-average,linear",
          value_parser = ["seasonal-naive", "moving-average", "linear"])]
    pub models: Vec<String>,
    /// Window of the moving average, in steps (default: one day hourly, one week daily).
    #[arg(long)]
    pub window: Option<usize>,
    /// Trained forecasting bundles (`medai train forecast`) to compare with the baselines; each
    /// must have been trained on values before --train-until.
    #[arg(long = "model")]
    pub bundles: Vec<PathBuf>,
    /// Compute device for bundles.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `medai backtest`.
pub fn backtest(a: BacktestArgs) -> Result<()> {
    let ts = a.series.load()?;
    let when = |s: &str, flag: &str| {
        parse_datetime(s).ok_or_else(|| anyhow!("{flag} {s:?}: expected YYYY-MM-DD[ HH:MM]"))
    };
    let steps_per_day = 86_400 / ts.frequency.seconds() as usize;
    let cfg = BacktestConfig {
        train_until: when(&a.train_until, "--train-until")?,
        test_until: when(&a.test_until, "--test-until")?,
        horizon: a.horizon,
        refit_every: a.refit_every.unwrap_or(30 * steps_per_day),
    };
    if cfg.test_until <= cfg.train_until {
        bail!(
            "--test-until {} is not after --train-until {}",
            a.test_until,
            a.train_until
        );
    }
    let mut models: Vec<Box<dyn Forecaster>> = a
        .models
        .iter()
        .map(|m| baseline(m, &ts, a.window))
        .collect();
    for b in &a.bundles {
        models.push(Box::new(load_forecaster(b, &a.device)?));
    }
    let results = medai_forecast::backtest(&ts, &mut models, &cfg)?;
    match a.format {
        Format::Json => {
            let scores: Vec<_> = results.iter().map(|(s, _)| s).collect();
            println!("{}", serde_json::to_string_pretty(&scores)?);
        }
        _ => {
            println!(
                "{} values, {} … {}, horizon {} step(s), refit every {} step(s)",
                results.first().map_or(0, |r| r.0.n),
                a.train_until,
                a.test_until,
                cfg.horizon,
                cfg.refit_every
            );
            println!(
                "{:<22} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8}",
                "model", "R2", "MAE", "RMSE", "MASE", "cov80", "cov95"
            );
            for (s, _) in &results {
                println!(
                    "{:<22} {:>7.4} {:>7.3} {:>7.3} {:>7.3} {:>8.3} {:>8.3}",
                    s.model, s.r2, s.mae, s.rmse, s.mase, s.coverage80, s.coverage95
                );
            }
        }
    }
    Ok(())
}

/// Options of `medai forecast`.
#[derive(Args, Debug, Clone)]
pub struct ForecastArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// The baseline model (ignored with --model).
    #[arg(long, default_value = "linear", value_parser = ["seasonal-naive", "moving-average", "linear"])]
    pub baseline: String,
    /// A trained forecasting bundle (`medai train forecast`) instead of a baseline; its covariates
    /// are read from the series (default: the ones it was trained with) and, for the forecast
    /// steps, from --future.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A CSV with the covariates of the forecast steps (same date/time columns as --data, no
    /// target needed), for a bundle trained with covariates.
    #[arg(long)]
    pub future: Option<PathBuf>,
    /// Compute device for --model.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Window of the moving average, in steps.
    #[arg(long)]
    pub window: Option<usize>,
    /// Steps to forecast after the last value (default: 168 for a baseline, the bundle's
    /// horizon for --model).
    #[arg(long)]
    pub horizon: Option<usize>,
    /// Output folder: forecast.csv, forecast.svg (and staff_plan.csv with --plan staff).
    #[arg(long, default_value = "forecast")]
    pub out: PathBuf,
    /// Also plan staff per shift from the forecast.
    #[arg(long, value_parser = ["staff"])]
    pub plan: Option<String>,
    /// Shift length in hours (divides 24).
    #[arg(long, default_value_t = 8)]
    pub shift_hours: usize,
    /// Hour of day at which a shift starts.
    #[arg(long, default_value_t = 7)]
    pub first_shift_hour: usize,
    /// Probability that arrivals stay under the planned bound.
    #[arg(long, default_value_t = 0.95)]
    pub service_level: f64,
    /// Patients one staff member handles per hour.
    #[arg(long, default_value_t = 2.5)]
    pub patients_per_staff_hour: f64,
}

/// `medai forecast`.
pub fn forecast(mut a: ForecastArgs) -> Result<()> {
    let (ts, points, model_name) = match &a.model {
        Some(b) => {
            let nf = load_forecaster(b, &a.device)?;
            if a.series.covariates.is_empty() {
                a.series.covariates = nf.spec.covariates.clone();
            }
            let ts = a.series.load()?;
            let horizon = a.horizon.unwrap_or(nf.spec.horizon);
            let points = neural_ahead(&nf, &ts, &a, horizon)?;
            (ts, points, nf.name.clone())
        }
        None => {
            let ts = a.series.load()?;
            let make = || baseline(&a.baseline, &ts, a.window);
            let points = medai_forecast::forecast_ahead(&ts, &make, a.horizon.unwrap_or(168))?;
            (ts, points, a.baseline.clone())
        }
    };
    std::fs::create_dir_all(&a.out).map_err(|e| anyhow!("{}: {e}", a.out.display()))?;
    let mut csv = String::from("time,step,point,lo80,hi80,lo95,hi95\n");
    for p in &points {
        csv.push_str(&format!(
            "{},{},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
            format_datetime(p.time),
            p.step,
            p.point,
            p.lo80,
            p.hi80,
            p.lo95,
            p.hi95
        ));
    }
    let csv_path = a.out.join("forecast.csv");
    crate::report::write_atomic(&csv_path, csv.as_bytes())?;
    let svg_path = a.out.join("forecast.svg");
    crate::report::write_atomic(&svg_path, chart(&ts, &points, &a.series.target).as_bytes())?;
    println!(
        "{} forecast: {} values from {} ({} model); wrote {} and {}",
        a.series.target,
        points.len(),
        points
            .first()
            .map(|p| format_datetime(p.time))
            .unwrap_or_default(),
        model_name,
        csv_path.display(),
        svg_path.display()
    );
    if a.plan.is_some() {
        let plan = medai_forecast::staff_plan(
            &points,
            &medai_forecast::PlanConfig {
                shift_hours: a.shift_hours,
                first_shift_hour: a.first_shift_hour,
                service_level: a.service_level,
                patients_per_staff_hour: a.patients_per_staff_hour,
            },
        )?;
        let mut out = format!(
            "shift_start,hours,expected,upper_{:.0}pct,staff\n",
            a.service_level * 100.0
        );
        println!(
            "{:<17} {:>5} {:>9} {:>9} {:>6}",
            "shift start",
            "hours",
            "expected",
            format!("p{:.0}", a.service_level * 100.0),
            "staff"
        );
        for s in &plan {
            out.push_str(&format!(
                "{},{},{:.2},{:.2},{}\n",
                format_datetime(s.start),
                s.hours,
                s.expected,
                s.upper,
                s.staff
            ));
            println!(
                "{:<17} {:>5} {:>9.1} {:>9.1} {:>6}",
                format_datetime(s.start),
                s.hours,
                s.expected,
                s.upper,
                s.staff
            );
        }
        let plan_path = a.out.join("staff_plan.csv");
        crate::report::write_atomic(&plan_path, out.as_bytes())?;
        println!("wrote {}", plan_path.display());
    }
    Ok(())
}

/// History (the last two weeks), forecast and its 80%/95% bands, x in hours from the forecast
/// origin.
fn chart(ts: &TimeSeries, points: &[medai_forecast::FuturePoint], target: &str) -> String {
    use medai_report::svg::{LineChart, PALETTE, Style};
    let n = ts.len();
    let origin = ts.times[n - 1];
    let hours = |t: i64| (t - origin) as f64 / 3600.0;
    let back = n.saturating_sub(2 * ts.frequency.per_week());
    let hist: Vec<(f64, f64)> = (back..n)
        .map(|i| (hours(ts.times[i]), ts.target[i]))
        .collect();
    let f = |g: &dyn Fn(&medai_forecast::FuturePoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (hours(p.time), g(p))).collect()
    };
    let top = hist
        .iter()
        .map(|p| p.1)
        .chain(points.iter().map(|p| p.hi95))
        .fold(0.0f64, f64::max);
    let x0 = hist.first().map_or(0.0, |p| p.0);
    let x1 = points.last().map_or(1.0, |p| hours(p.time));
    LineChart::new(&format!("{target}: history and forecast"))
        .x_label(&format!("hours from {}", format_datetime(origin)))
        .y_label(target)
        .x_range(x0, x1)
        .y_range(0.0, top * 1.05)
        .band("95% interval", &f(&|p| p.lo95), &f(&|p| p.hi95), "#c6dbef")
        .band("80% interval", &f(&|p| p.lo80), &f(&|p| p.hi80), "#9ecae1")
        .series("observed", &hist, Style::solid(PALETTE[0]))
        .series("forecast", &f(&|p| p.point), Style::solid(PALETTE[1]))
        .to_svg()
}

/// Options of `medai train forecast`.
#[derive(Args, Debug, Clone)]
pub struct TrainForecastArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Values before this time train the model (`YYYY-MM-DD[ HH:MM]`); the last
    /// `--val-fraction` of them pick the epoch. Later values are never read.
    #[arg(long)]
    pub train_until: String,
    /// Where to write the model bundle (a directory).
    #[arg(long)]
    pub out: PathBuf,
    /// Encoder cell: gru or lstm.
    #[arg(long, default_value = "gru", value_parser = ["gru", "lstm"])]
    pub cell: String,
    /// Steps the encoder reads before each forecast origin.
    #[arg(long, default_value_t = 72)]
    pub lookback: usize,
    /// Steps forecast from each origin (at most a week).
    #[arg(long, default_value_t = 24)]
    pub horizon: usize,
    /// Hidden size of the encoder.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Count likelihood: negbin or poisson.
    #[arg(long, default_value = "negbin", value_parser = ["negbin", "poisson"])]
    pub likelihood: String,
    /// Maximum epochs.
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Batch size (windows).
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Peak learning rate (Adam, cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Stop when the validation likelihood has not improved for this many epochs (0: never).
    #[arg(long, default_value_t = 4)]
    pub patience: usize,
    /// Keep an exponential moving average of the weights with this momentum (e.g. 0.99, as
    /// Keras' `use_ema=True`); the averaged weights are validated and exported.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Fraction of the training windows (the latest) held out to pick the epoch.
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
    /// Seed of initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Compute device (cpu; wgpu/vulkan/cuda with the matching cargo feature), or a
    /// comma-separated list (`cuda:0,cuda:1`) to split each batch between several devices.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Model name in the bundle (default: the bundle's folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Continue an interrupted run from its checkpoint (`BUNDLE.ckpt/`, written after every epoch).
    #[arg(long)]
    pub resume: bool,
}

fn parse_when(s: &str, flag: &str) -> Result<i64> {
    parse_datetime(s).ok_or_else(|| anyhow!("{flag} {s:?}: expected YYYY-MM-DD[ HH:MM]"))
}

/// `medai train forecast`: fit a sequence forecaster with the shared trainer and write a bundle.
pub fn train_forecast(a: TrainForecastArgs) -> Result<()> {
    use medai_nn::forecast::{Cell, CountObjective, ForecastNetConfig, ForecastSource};
    use medai_nn::training::{OptimizerKind, Schedule, TrainConfig, TrainIo};
    let t0 = std::time::Instant::now();
    let ts = a.series.load()?;
    let until = parse_when(&a.train_until, "--train-until")?;
    let end = ts.index_at_or_after(until);
    if !(0.0..0.9).contains(&a.val_fraction) || a.val_fraction == 0.0 {
        bail!(
            "--val-fraction {}: expected a value in (0, 0.9)",
            a.val_fraction
        );
    }
    let likelihood = medai_forecast::Likelihood::parse(&a.likelihood).ok_or_else(|| {
        anyhow!(
            "--likelihood {:?}: expected negbin or poisson",
            a.likelihood
        )
    })?;
    let cell = if a.cell == "lstm" {
        Cell::Lstm
    } else {
        Cell::Gru
    };
    let spec = medai_forecast::WindowSpec::fit(&ts, end, a.lookback, a.horizon)?;
    let source = ForecastSource::new(&ts, spec.clone(), end, a.val_fraction)?;
    let net_cfg = ForecastNetConfig::for_spec(&spec, cell, a.hidden);
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Cosine,
        patience: a.patience,
        seed: a.seed,
        ema: crate::commands::ema_momentum(a.ema)?,
        ..TrainConfig::default()
    };
    let (device, devices) = crate::commands::train_devices(&a.device)?;
    let cfg = TrainConfig { devices, ..cfg };
    device.seed(a.seed);
    let ad = device.clone().autodiff();
    let model = net_cfg.init(&ad);
    let n_params = model.parameters();
    let stem = a
        .out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "forecast".into());
    let ckpt = a.out.with_file_name(format!("{stem}.ckpt"));
    let io = TrainIo {
        log: Some(a.out.with_file_name(format!("{stem}.train.jsonl"))),
        checkpoint_dir: Some(ckpt.clone()),
        resume: a.resume,
        progress: !a.quiet,
    };
    if !a.resume {
        if let Some(l) = &io.log {
            let _ = std::fs::remove_file(l);
        }
        medai_nn::training::remove_checkpoint(&ckpt);
    }
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| anyhow!("{}: {e}", parent.display()))?;
    }
    eprintln!(
        "Training a {} forecaster ({} parameters, {} likelihood) on {} windows ({} validate), lookback {}, horizon {}",
        a.cell, n_params, a.likelihood, source.train.n, source.val.n, a.lookback, a.horizon
    );
    let objective = CountObjective { likelihood };
    let outcome = medai_nn::training::fit_objective(model, &source, &objective, &cfg, &ad, &io)?;
    let model = outcome.model;

    // Validation backtest of the chosen model: one step and `horizon` steps ahead over the
    // held-out windows, for the bundle's metrics.
    // The first value that no training window had as a target.
    let val_from = spec.first_origin() + source.train.n + spec.horizon;
    let mut metrics = serde_json::Map::new();
    for h in [1, a.horizon] {
        let nf = medai_nn::forecast::NeuralForecaster::new(
            "neural",
            model.clone(),
            spec.clone(),
            likelihood,
            device.clone(),
        );
        let mut models: Vec<Box<dyn Forecaster>> = vec![Box::new(SkipFitCheck(nf))];
        let bt = medai_forecast::backtest(
            &ts,
            &mut models,
            &BacktestConfig {
                train_until: ts.times[val_from],
                test_until: ts.times[end - 1] + 1,
                horizon: h,
                refit_every: usize::MAX / 4,
            },
        )?;
        metrics.insert(format!("val_h{h}"), serde_json::to_value(&bt[0].0)?);
        if !a.quiet {
            let s = &bt[0].0;
            eprintln!(
                "validation h={h}: R² {:.4}  MAE {:.3}  MASE {:.3}  cov80 {:.3}  cov95 {:.3}",
                s.r2, s.mae, s.mase, s.coverage80, s.coverage95
            );
        }
    }

    let name = a.name.clone().unwrap_or_else(|| stem.clone());
    let mut manifest = medai_bundle::Manifest::new(
        &name,
        "forecast",
        &a.likelihood,
        vec![a.series.target.clone()],
    );
    manifest.architecture = serde_json::to_value(&net_cfg)?;
    manifest.preprocessing = serde_json::json!({"window": spec, "likelihood": likelihood});
    manifest.training = serde_json::json!({
        "config": cfg,
        "epochs_run": outcome.history.len(),
        "best_epoch": outcome.best_epoch,
        "best_val_score": outcome.best_val_score,
        "score": "minus the mean negative log-likelihood per value",
        "seconds": t0.elapsed().as_secs_f64(),
        "parameters": n_params,
        "device": a.device,
        "train_until": a.train_until,
        "history": outcome.history,
    });
    manifest.dataset = medai_bundle::DatasetInfo {
        source: "csv-timeseries".into(),
        path: a.series.data.display().to_string(),
        fingerprint: series_fingerprint(&ts, end),
        counts: [
            ("train".to_string(), serde_json::json!(source.train.n)),
            ("val".to_string(), serde_json::json!(source.val.n)),
        ]
        .into_iter()
        .collect(),
    };
    manifest.metrics = serde_json::Value::Object(metrics);
    let weights =
        medai_nn::weights::save_safetensors(&model).map_err(|e| anyhow!("saving weights: {e}"))?;
    let card = forecast_card(&manifest, &a);
    medai_bundle::Bundle {
        manifest,
        weights,
        model_card: card,
        files: Default::default(),
    }
    .write(&a.out)?;
    // The run is complete: its resume checkpoint is no longer needed.
    medai_nn::training::remove_checkpoint(&ckpt);
    eprintln!(
        "Wrote bundle {} ({:.1} s)",
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The validation backtest runs inside the training period, which `NeuralForecaster::fit`
/// rightly refuses for a finished model; this wrapper skips only that check.
struct SkipFitCheck(medai_nn::forecast::NeuralForecaster);

impl Forecaster for SkipFitCheck {
    fn name(&self) -> String {
        self.0.name()
    }
    fn fit(
        &mut self,
        _ts: &TimeSeries,
        _end: usize,
        h: usize,
    ) -> Result<(), medai_forecast::ForecastError> {
        self.0.set_horizon(h)
    }
    fn predict(&self, ts: &TimeSeries, t: usize) -> f64 {
        self.0.predict(ts, t)
    }
    fn first_index(&self, ts: &TimeSeries, h: usize) -> usize {
        self.0.first_index(ts, h)
    }
    fn predict_batch(
        &self,
        ts: &TimeSeries,
        idx: &[usize],
    ) -> Result<Vec<medai_forecast::Prediction>, medai_forecast::ForecastError> {
        self.0.predict_batch(ts, idx)
    }
}

/// SHA-256 of the training part of a series (times, target, covariates).
fn series_fingerprint(ts: &TimeSeries, end: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for i in 0..end {
        h.update(ts.times[i].to_le_bytes());
        h.update(ts.target[i].to_le_bytes());
        for (_, c) in &ts.covariates {
            h.update(c[i].to_le_bytes());
        }
    }
    format!("{:x}", h.finalize())
}

fn forecast_card(m: &medai_bundle::Manifest, a: &TrainForecastArgs) -> String {
    let mut o = format!("# Model card: {}\n\n", m.name);
    o.push_str(&format!(
        "medai {} bundle, created {}. Task: forecast `{}` from `{}`, {} steps ahead, {} likelihood.\n\n",
        m.medai_version,
        m.created,
        a.series.target,
        a.series.data.display(),
        a.horizon,
        a.likelihood
    ));
    o.push_str("## Intended use\n\nPlanning support (staffing, capacity) from forecasts of counts such as emergency-department arrivals, with 80% and 95% prediction intervals. Not for decisions about individual patients. Re-check the backtest after any change in how the counts are recorded.\n\n");
    o.push_str(&format!(
        "## Data\n\n- Values before {} (fingerprint `{}`); the latest {:.0}% of the windows validate.\n- Covariates: {}\n\n",
        a.train_until,
        m.dataset.fingerprint,
        a.val_fraction * 100.0,
        if a.series.covariates.is_empty() {
            "none".to_string()
        } else {
            a.series.covariates.join(", ")
        }
    ));
    o.push_str(&format!(
        "## Model\n\n{} encoder (hidden {}) over {} steps; decoder with week-slot and step embeddings, covariates, weekly lags and level; outputs a {} distribution per step.\n\n## Validation (held-out windows)\n\n| horizon | R² | MAE | MASE | cov80 | cov95 |\n|---|---|---|---|---|---|\n",
        a.cell.to_uppercase(),
        a.hidden,
        a.lookback,
        a.likelihood
    ));
    if let Some(obj) = m.metrics.as_object() {
        for v in obj.values() {
            let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            o.push_str(&format!(
                "| {} | {:.4} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                v["horizon"],
                g("r2"),
                g("mae"),
                g("mase"),
                g("coverage80"),
                g("coverage95")
            ));
        }
    }
    o.push_str("\n## Limits\n\nArrivals are close to Poisson given their rate, so even a perfect rate forecast leaves the Poisson noise: R² is bounded by 1 − mean/variance of the counts. Intervals assume the future resembles the training period; holidays absent from the covariates are not anticipated.\n");
    o
}

/// Load a forecasting bundle as a [`Forecaster`].
pub fn load_forecaster(
    path: &std::path::Path,
    device_name: &str,
) -> Result<medai_nn::forecast::NeuralForecaster> {
    use medai_nn::forecast::{ForecastNetConfig, NeuralForecaster};
    let bundle = medai_bundle::Bundle::read(path)?;
    let m = &bundle.manifest;
    if m.task != "forecast" {
        bail!(
            "{}: task {:?} is not a forecasting model (train one with `medai train forecast`)",
            path.display(),
            m.task
        );
    }
    let field =
        |e: serde_json::Error, f: &str| anyhow!("{}: manifest field `{f}`: {e}", path.display());
    let cfg: ForecastNetConfig =
        serde_json::from_value(m.architecture.clone()).map_err(|e| field(e, "architecture"))?;
    let spec: medai_forecast::WindowSpec =
        serde_json::from_value(m.preprocessing["window"].clone())
            .map_err(|e| field(e, "preprocessing.window"))?;
    let likelihood: medai_forecast::Likelihood =
        serde_json::from_value(m.preprocessing["likelihood"].clone())
            .map_err(|e| field(e, "preprocessing.likelihood"))?;
    let device = medai_nn::backend::device(device_name).map_err(|e| anyhow!(e))?;
    let model = medai_nn::weights::load_safetensors(cfg.init(&device), &bundle.weights)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(NeuralForecaster::new(
        &m.name, model, spec, likelihood, device,
    ))
}

/// The `horizon` values after the end of `ts` from a trained network, one forward pass from the
/// last origin; covariates of the forecast steps come from `--future`.
fn neural_ahead(
    nf: &medai_nn::forecast::NeuralForecaster,
    ts: &TimeSeries,
    a: &ForecastArgs,
    horizon: usize,
) -> Result<Vec<medai_forecast::FuturePoint>> {
    nf.spec.check_series(ts)?;
    if horizon == 0 || horizon > nf.spec.horizon {
        bail!(
            "--horizon {horizon}: the model forecasts 1 … {} steps",
            nf.spec.horizon
        );
    }
    let n = ts.len();
    let mut ext = ts.clone();
    let step = ts.frequency.seconds();
    for k in 1..=nf.spec.horizon {
        ext.times.push(ts.times[n - 1] + step * k as i64);
        ext.target.push(f64::NAN);
    }
    if !nf.spec.covariates.is_empty() {
        let Some(fut) = &a.future else {
            bail!(
                "{} was trained with covariates ({}): give their values for the forecast steps with --future FILE",
                nf.name,
                nf.spec.covariates.join(",")
            );
        };
        let mut fa = a.series.clone();
        fa.data = fut.clone();
        fa.target = nf.spec.covariates[0].clone();
        let f = fa.load()?;
        for (j, (name, col)) in ext.covariates.iter_mut().enumerate() {
            for k in 1..=nf.spec.horizon {
                let t = ts.times[n - 1] + step * k as i64;
                let v = match f.times.binary_search(&t) {
                    Ok(i) => f.covariates[j].1[i],
                    Err(_) if k <= horizon => bail!(
                        "{}: no row for {} (covariate {name} of forecast step {k})",
                        fut.display(),
                        format_datetime(t)
                    ),
                    Err(_) => nf.spec.cov_mean[j],
                };
                col.push(v);
            }
        }
    } else {
        for (_, col) in ext.covariates.iter_mut() {
            col.extend(std::iter::repeat_n(0.0, nf.spec.horizon));
        }
    }
    let dists = medai_nn::forecast::predict_distributions(
        &nf.model,
        &nf.spec,
        nf.likelihood,
        &ext,
        &[n - 1],
        &nf.device,
    )?;
    Ok(dists[0][..horizon]
        .iter()
        .enumerate()
        .map(|(k, d)| {
            let (lo95, hi95) = d.interval(0.95);
            let (lo80, hi80) = d.interval(0.8);
            medai_forecast::FuturePoint {
                time: ext.times[n + k],
                step: k + 1,
                point: d.mean,
                lo80,
                hi80,
                lo95,
                hi95,
                sd: d.sd(),
            }
        })
        .collect())
}
