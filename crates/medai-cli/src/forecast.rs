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
    /// The forecasting model (a trained neural bundle comes with issue #8's next step).
    #[arg(long, default_value = "linear", value_parser = ["seasonal-naive", "moving-average", "linear"])]
    pub baseline: String,
    /// Window of the moving average, in steps.
    #[arg(long)]
    pub window: Option<usize>,
    /// Steps to forecast after the last value.
    #[arg(long, default_value_t = 168)]
    pub horizon: usize,
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
pub fn forecast(a: ForecastArgs) -> Result<()> {
    let ts = a.series.load()?;
    let make = || baseline(&a.baseline, &ts, a.window);
    let points = medai_forecast::forecast_ahead(&ts, &make, a.horizon)?;
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
        a.baseline,
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
