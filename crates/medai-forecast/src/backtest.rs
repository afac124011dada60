//! Rolling-origin backtests: the test period is cut into blocks of `refit_every` values; before
//! each block the model is refitted on everything known at the block's first forecast origin
//! (an expanding window), then every value of the block is forecast `horizon` steps ahead.
//!
//! Prediction intervals come from the model's own in-sample `horizon`-step residuals on the
//! last year (at most) of the fitting window: point forecast + the residuals' 2.5/10/90/97.5%
//! quantiles (linear interpolation, like NumPy's default), clipped at 0 for a non-negative
//! target. Coverage on the test period says whether they are honest.

use medai_data::{TimeSeries, format_datetime};
use serde::Serialize;

use crate::ForecastError;
use crate::baselines::Forecaster;

/// What to backtest.
#[derive(Clone, Debug)]
pub struct BacktestConfig {
    /// The test period starts at the first value at or after this time (seconds, see
    /// `medai_data::parse_datetime`); everything before is history for the first fit.
    pub train_until: i64,
    /// The test period ends before this time.
    pub test_until: i64,
    /// Steps ahead (1 = one-step-ahead).
    pub horizon: usize,
    /// Values forecast between refits (the expanding window grows by this much).
    pub refit_every: usize,
}

/// One model's scores on the test period.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ModelScore {
    /// The model.
    pub model: String,
    /// Steps ahead.
    pub horizon: usize,
    /// Test values scored.
    pub n: usize,
    /// Coefficient of determination.
    pub r2: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// MAE scaled by the in-sample seasonal-naive MAE (period one week).
    pub mase: f64,
    /// Fraction of test values inside the 80% interval.
    pub coverage80: f64,
    /// Fraction of test values inside the 95% interval.
    pub coverage95: f64,
    /// Mean width of the 80% interval.
    pub width80: f64,
    /// Mean width of the 95% interval.
    pub width95: f64,
}

/// A model's test-period forecasts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Forecasts {
    /// The model.
    pub model: String,
    /// Timestamps of the forecast values.
    pub times: Vec<i64>,
    /// What happened.
    pub actual: Vec<f64>,
    /// Point forecasts.
    pub point: Vec<f64>,
    /// 80% interval.
    pub lo80: Vec<f64>,
    /// 80% interval.
    pub hi80: Vec<f64>,
    /// 95% interval.
    pub lo95: Vec<f64>,
    /// 95% interval.
    pub hi95: Vec<f64>,
}

/// A fitted model's in-sample residuals over (at most) the last year before `end`, and their
/// 2.5/10/90/97.5% quantiles (the offsets of the 95% and 80% intervals).
pub(crate) fn residual_quantiles(
    m: &dyn Forecaster,
    ts: &TimeSeries,
    first: usize,
    end: usize,
) -> Result<(Vec<f64>, [f64; 4]), ForecastError> {
    let from = first.max(end.saturating_sub(ts.frequency.per_week() * 52));
    let res: Vec<f64> = (from..end)
        .map(|t| ts.target[t] - m.predict(ts, t))
        .filter(|r| r.is_finite())
        .collect();
    let mut q = [0.0; 4];
    for (qi, p) in q.iter_mut().zip([0.025, 0.1, 0.9, 0.975]) {
        *qi = medai_metrics::quantile_linear(&res, p)?;
    }
    Ok((res, q))
}

/// Refuse a series with gaps (lags would silently point at the wrong hour).
pub fn check_regular(ts: &TimeSeries) -> Result<(), ForecastError> {
    if let Some(g) = ts.gaps.first() {
        return Err(ForecastError::Gaps {
            path: ts.path.display().to_string(),
            count: ts.gaps.len(),
            row: g.after_row,
            after: format_datetime(g.after),
            missing: g.missing,
        });
    }
    Ok(())
}

/// Backtest each model; returns scores and forecasts in model order.
pub fn backtest(
    ts: &TimeSeries,
    models: &mut [Box<dyn Forecaster>],
    cfg: &BacktestConfig,
) -> Result<Vec<(ModelScore, Forecasts)>, ForecastError> {
    check_regular(ts)?;
    let h = cfg.horizon;
    if h == 0 || cfg.refit_every == 0 {
        return Err(ForecastError::Config(
            "horizon and refit interval must be at least 1".into(),
        ));
    }
    let i0 = ts.index_at_or_after(cfg.train_until);
    let i1 = ts.index_at_or_after(cfg.test_until);
    if i0 >= i1 {
        return Err(ForecastError::Config(format!(
            "the test period {} … {} holds no values of the series ({} … {})",
            format_datetime(cfg.train_until),
            format_datetime(cfg.test_until),
            format_datetime(ts.times[0]),
            format_datetime(*ts.times.last().expect("non-empty"))
        )));
    }
    let period = ts.frequency.per_week();
    if i0 <= period {
        return Err(ForecastError::TooShort {
            needed: period + 1,
            have: i0,
            what: "MASE's seasonal-naive scale".into(),
        });
    }
    let scale = medai_metrics::seasonal_naive_scale(&ts.target[..i0], period).ok_or_else(|| {
        ForecastError::Config(
            "MASE is undefined: the training period repeats exactly every week (seasonal-naive error 0)"
                .into(),
        )
    })?;
    let non_negative = ts.target[..i0].iter().all(|&v| v >= 0.0);
    let mut out = Vec::new();
    for m in models.iter_mut() {
        let first = m.first_index(ts, h);
        let mut f = Forecasts {
            model: m.name(),
            times: Vec::new(),
            actual: Vec::new(),
            point: Vec::new(),
            lo80: Vec::new(),
            hi80: Vec::new(),
            lo95: Vec::new(),
            hi95: Vec::new(),
        };
        let mut block = i0;
        while block < i1 {
            // Known at the block's first origin: values [0, block − h].
            let end = block + 1 - h.min(block + 1);
            if end <= first {
                return Err(ForecastError::TooShort {
                    needed: first + h,
                    have: block,
                    what: m.name(),
                });
            }
            m.fit(ts, end, h)?;
            let stop = (block + cfg.refit_every).min(i1);
            let idx: Vec<usize> = (block.max(first)..stop).collect();
            let preds = m.predict_batch(ts, &idx)?;
            let resid = if preds.iter().any(|p| p.quantiles.is_none()) {
                residual_quantiles(m.as_ref(), ts, first, end)?.1
            } else {
                [0.0; 4]
            };
            for (&t, pr) in idx.iter().zip(&preds) {
                let p = pr.point;
                let q = pr.quantiles.unwrap_or([
                    p + resid[0],
                    p + resid[1],
                    p + resid[2],
                    p + resid[3],
                ]);
                let clip = |v: f64| if non_negative { v.max(0.0) } else { v };
                f.times.push(ts.times[t]);
                f.actual.push(ts.target[t]);
                f.point.push(clip(p));
                f.lo95.push(clip(q[0]));
                f.lo80.push(clip(q[1]));
                f.hi80.push(clip(q[2]));
                f.hi95.push(clip(q[3]));
            }
            block = stop;
        }
        let r = medai_metrics::regression_report(&f.actual, &f.point)?;
        let width = |lo: &[f64], hi: &[f64]| {
            lo.iter().zip(hi).map(|(a, b)| b - a).sum::<f64>() / lo.len().max(1) as f64
        };
        out.push((
            ModelScore {
                model: f.model.clone(),
                horizon: h,
                n: f.actual.len(),
                r2: r.r2,
                mae: r.mae,
                rmse: r.rmse,
                mase: medai_metrics::mase(&f.actual, &f.point, scale)?,
                coverage80: medai_metrics::interval_coverage(&f.actual, &f.lo80, &f.hi80)?,
                coverage95: medai_metrics::interval_coverage(&f.actual, &f.lo95, &f.hi95)?,
                width80: width(&f.lo80, &f.hi80),
                width95: width(&f.lo95, &f.hi95),
            },
            f,
        ));
    }
    Ok(out)
}
