//! # medai-forecast
//!
//! Forecasting for hospital resource management (emergency-department arrivals and the like),
//! without the deep-learning engine:
//!
//! - [`baselines`]: seasonal naive, moving average, and a linear model on calendar features and
//!   lags — what every forecast is compared with.
//! - [`backtest`]: rolling-origin (expanding-window) backtests at a fixed horizon, with R², MAE,
//!   RMSE, MASE and the coverage of 80% and 95% prediction intervals.
//! - [`plan`]: the values after the end of a series with intervals, and a staffing table per
//!   shift (expected arrivals, an upper bound at a service level, staff needed).
//! - [`window`]: encoder/decoder windows for sequence models (features and their scaling).
//! - [`dist`]: Poisson and negative binomial count distributions (likelihood, quantiles).
//!
//! Series come from `medai_data::read_timeseries_csv`; metrics from `medai-metrics`. Neural
//! sequence models live in `medai-nn` and plug in through the same [`baselines::Forecaster`]
//! trait, so the backtest is written once.

pub mod backtest;
pub mod baselines;
pub mod dist;
pub mod plan;
pub mod window;

pub use backtest::{BacktestConfig, ModelScore, backtest};
pub use baselines::{Forecaster, Linear, MovingAverage, Prediction, SeasonalNaive};
pub use dist::{CountDist, Likelihood};
pub use plan::{FuturePoint, PlanConfig, Shift, forecast_ahead, staff_plan};
pub use window::{WindowSpec, Windows};

/// Forecasting errors.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// Not enough history.
    #[error(
        "{what} needs at least {needed} values before the forecast origin, the series has {have}"
    )]
    TooShort {
        /// Values needed.
        needed: usize,
        /// Values available.
        have: usize,
        /// The model or step that needed them.
        what: String,
    },
    /// The series has missing steps.
    #[error(
        "{path}: {count} gap(s) in the series, the first {missing} step(s) missing after row {row} ({after}); fill them before forecasting"
    )]
    Gaps {
        /// The file.
        path: String,
        /// Number of gaps.
        count: usize,
        /// Row after the first gap.
        row: usize,
        /// Its timestamp.
        after: String,
        /// Steps missing there.
        missing: usize,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// The linear model's normal equations are singular.
    #[error(
        "the linear model cannot be fitted (singular design: a constant or duplicated covariate?)"
    )]
    Singular,
    /// A metric could not be computed.
    #[error("metrics: {0}")]
    Metrics(#[from] medai_metrics::MetricsError),
}
