//! `medai backtest`: rolling-origin backtests of forecasting models on a CSV time series.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use medai_data::{TsColumns, parse_datetime, read_timeseries_csv};
use medai_forecast::{BacktestConfig, Forecaster, Linear, MovingAverage, SeasonalNaive};

use crate::commands::Format;

/// Options of `medai backtest`.
#[derive(Args, Debug, Clone)]
pub struct BacktestArgs {
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
    let header = std::fs::read_to_string(&a.data)
        .map_err(|e| anyhow!("{}: {e}", a.data.display()))?
        .lines()
        .next()
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect::<Vec<_>>();
    let (date, hour) = match (&a.timestamp, &a.date_column) {
        (Some(_), _) => (None, None),
        (None, d) => {
            let d = d.clone().unwrap_or_else(|| "Date".into());
            let h = a.hour_column.clone().or_else(|| {
                header
                    .iter()
                    .any(|c| c == "Hour")
                    .then(|| "Hour".to_string())
            });
            (Some(d), h)
        }
    };
    let ts = read_timeseries_csv(
        &a.data,
        &TsColumns {
            timestamp: a.timestamp.clone(),
            date,
            hour,
            target: a.target.clone(),
            covariates: a.covariates.clone(),
        },
    )?;
    if !ts.gaps.is_empty() {
        eprintln!(
            "warning: {}: {} gap(s) in the series (first: {} step(s) after row {})",
            a.data.display(),
            ts.gaps.len(),
            ts.gaps[0].missing,
            ts.gaps[0].after_row
        );
    }
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
    let window = a.window.unwrap_or(match ts.frequency {
        medai_data::Frequency::Hourly => 24,
        medai_data::Frequency::Daily => 7,
    });
    let mut models: Vec<Box<dyn Forecaster>> = a
        .models
        .iter()
        .map(|m| -> Box<dyn Forecaster> {
            match m.as_str() {
                "seasonal-naive" => Box::new(SeasonalNaive::default()),
                "moving-average" => Box::new(MovingAverage::new(window)),
                _ => Box::new(Linear::default()),
            }
        })
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
