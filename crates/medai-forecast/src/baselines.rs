//! The forecasts every model is compared with: seasonal naive, a moving average, and a linear
//! model on calendar features and lags. Each is fitted for one horizon `h`: the value at `t` is
//! forecast from what was known at `t − h` (values up to index `t − h`) plus covariates known in
//! advance (calendar flags, weather forecasts).

use medai_data::TimeSeries;

use crate::ForecastError;

/// A forecaster for a fixed horizon.
pub trait Forecaster {
    /// Short name (`seasonal-naive`, `moving-average`, `linear`, …).
    fn name(&self) -> String;

    /// Fit on values `[0, end)` of `ts` for forecasts `h` steps ahead.
    fn fit(&mut self, ts: &TimeSeries, end: usize, h: usize) -> Result<(), ForecastError>;

    /// The point forecast of value `t` (known: values `[0, t − h]`).
    fn predict(&self, ts: &TimeSeries, t: usize) -> f64;

    /// The first index this forecaster can predict (enough history behind it).
    fn first_index(&self, ts: &TimeSeries, h: usize) -> usize;

    /// Forecasts of the values `ts_idx`, with the model's own predictive quantiles when it has a
    /// predictive distribution (the backtest otherwise uses in-sample residual quantiles).
    /// Models that predict faster in batches (neural networks) override this.
    fn predict_batch(
        &self,
        ts: &TimeSeries,
        ts_idx: &[usize],
    ) -> Result<Vec<Prediction>, ForecastError> {
        Ok(ts_idx
            .iter()
            .map(|&t| Prediction {
                point: self.predict(ts, t),
                quantiles: None,
            })
            .collect())
    }
}

/// One forecast value.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Point forecast (the predictive mean).
    pub point: f64,
    /// Predictive 2.5%, 10%, 90% and 97.5% quantiles, when the model has them.
    pub quantiles: Option<[f64; 4]>,
}

/// The seasonal lag used for horizon `h`: the smallest multiple of the period `≥ h`.
fn seasonal_lag(period: usize, h: usize) -> usize {
    period * h.div_ceil(period).max(1)
}

/// `y[t − k·period]` for the smallest k with `k·period ≥ h` (same hour last week for hourly data).
#[derive(Clone, Debug, Default)]
pub struct SeasonalNaive {
    lag: usize,
}

impl Forecaster for SeasonalNaive {
    fn name(&self) -> String {
        "seasonal-naive".into()
    }
    fn fit(&mut self, ts: &TimeSeries, _end: usize, h: usize) -> Result<(), ForecastError> {
        self.lag = seasonal_lag(ts.frequency.per_week(), h);
        Ok(())
    }
    fn predict(&self, ts: &TimeSeries, t: usize) -> f64 {
        ts.target[t - self.lag]
    }
    fn first_index(&self, ts: &TimeSeries, h: usize) -> usize {
        seasonal_lag(ts.frequency.per_week(), h)
    }
}

/// The mean of the `window` values up to the forecast origin `t − h`.
#[derive(Clone, Debug)]
pub struct MovingAverage {
    /// Values averaged (default: one day of hourly data, one week of daily data).
    pub window: usize,
    h: usize,
}

impl MovingAverage {
    /// A moving average over `window` values.
    pub fn new(window: usize) -> MovingAverage {
        MovingAverage {
            window: window.max(1),
            h: 1,
        }
    }
}

impl Forecaster for MovingAverage {
    fn name(&self) -> String {
        format!("moving-average-{}", self.window)
    }
    fn fit(&mut self, _ts: &TimeSeries, _end: usize, h: usize) -> Result<(), ForecastError> {
        self.h = h;
        Ok(())
    }
    fn predict(&self, ts: &TimeSeries, t: usize) -> f64 {
        let origin = t - self.h;
        let from = origin + 1 - self.window;
        ts.target[from..=origin].iter().sum::<f64>() / self.window as f64
    }
    fn first_index(&self, _ts: &TimeSeries, h: usize) -> usize {
        self.window + h - 1
    }
}

/// Least squares on: one indicator per hour of the week (hourly) or day of the week (daily),
/// the lags `h, h+1, h+2` and the seasonal lag, and the covariates; a tiny ridge keeps the
/// normal equations solvable. Solved by Cholesky.
#[derive(Clone, Debug, Default)]
pub struct Linear {
    h: usize,
    lags: Vec<usize>,
    coef: Vec<f64>,
}

impl Linear {
    fn n_calendar(ts: &TimeSeries) -> usize {
        ts.frequency.per_week()
    }

    fn features(&self, ts: &TimeSeries, t: usize, out: &mut Vec<f64>) {
        out.clear();
        let nc = Linear::n_calendar(ts);
        let slot = match ts.frequency {
            medai_data::Frequency::Hourly => ts.weekday(t) * 24 + ts.hour(t),
            medai_data::Frequency::Daily => ts.weekday(t),
        };
        out.extend((0..nc).map(|i| if i == slot { 1.0 } else { 0.0 }));
        for &l in &self.lags {
            out.push(ts.target[t - l]);
        }
        for (_, c) in &ts.covariates {
            out.push(c[t]);
        }
    }
}

impl Forecaster for Linear {
    fn name(&self) -> String {
        "linear".into()
    }

    fn fit(&mut self, ts: &TimeSeries, end: usize, h: usize) -> Result<(), ForecastError> {
        self.h = h;
        let season = seasonal_lag(ts.frequency.per_week(), h);
        self.lags = vec![h, h + 1, h + 2];
        if !self.lags.contains(&season) {
            self.lags.push(season);
        }
        let start = self.first_index(ts, h);
        if end <= start + 2 * Linear::n_calendar(ts) {
            return Err(ForecastError::TooShort {
                needed: start + 2 * Linear::n_calendar(ts) + 1,
                have: end,
                what: "the linear baseline".into(),
            });
        }
        let p = Linear::n_calendar(ts) + self.lags.len() + ts.covariates.len();
        let mut xtx = vec![0.0f64; p * p];
        let mut xty = vec![0.0f64; p];
        let mut x = Vec::with_capacity(p);
        for t in start..end {
            self.features(ts, t, &mut x);
            let y = ts.target[t];
            for i in 0..p {
                if x[i] == 0.0 {
                    continue;
                }
                xty[i] += x[i] * y;
                for j in i..p {
                    xtx[i * p + j] += x[i] * x[j];
                }
            }
        }
        for i in 0..p {
            for j in 0..i {
                xtx[i * p + j] = xtx[j * p + i];
            }
        }
        let trace: f64 = (0..p).map(|i| xtx[i * p + i]).sum();
        let ridge = 1e-12 * trace / p as f64;
        for i in 0..p {
            xtx[i * p + i] += ridge;
        }
        self.coef = cholesky_solve(&mut xtx, &xty, p).ok_or(ForecastError::Singular)?;
        Ok(())
    }

    fn predict(&self, ts: &TimeSeries, t: usize) -> f64 {
        let mut x = Vec::with_capacity(self.coef.len());
        self.features(ts, t, &mut x);
        x.iter().zip(&self.coef).map(|(a, b)| a * b).sum()
    }

    fn first_index(&self, ts: &TimeSeries, h: usize) -> usize {
        seasonal_lag(ts.frequency.per_week(), h).max(h + 2)
    }
}

/// Solve `A x = b` for symmetric positive definite `A` (row-major, overwritten by its factor).
fn cholesky_solve(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * y[k];
        }
        y[i] = s / a[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= a[k * n + i] * x[k];
        }
        x[i] = s / a[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        let mut s = vec![1.0, 1.0, 1.0, 1.0];
        assert!(cholesky_solve(&mut s, &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn seasonal_lag_is_the_first_whole_week_at_or_beyond_the_horizon() {
        assert_eq!(seasonal_lag(168, 1), 168);
        assert_eq!(seasonal_lag(168, 168), 168);
        assert_eq!(seasonal_lag(168, 169), 336);
        assert_eq!(seasonal_lag(7, 24), 28);
    }
}
