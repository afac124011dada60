//! Windows for sequence forecasters: from a series and a forecast origin `o` (values `[0, o]`
//! known), the encoder sequence over the last `lookback` steps and the decoder features of each
//! step `o + 1 … o + horizon`. Engine-free, so the features are tested here and the network in
//! `medai-nn` only turns them into tensors.
//!
//! - Encoder, per step: `(ln(1 + y) − m) / s`, and the sine/cosine of the time of day and of the
//!   time of week (5 values).
//! - Decoder, per future step: its slot in the week (hour of week, or weekday for daily data, an
//!   embedding index), the standardised covariates at that step (known in advance), the value one
//!   and two weeks before it and the last three values up to the origin (log-scaled as above), and
//!   the level of the last 4 weeks and of the last week (log of the mean relative to the training
//!   mean).
//!
//! Scaling constants are fitted on the training values only and recorded in the bundle.

use medai_data::{Frequency, TimeSeries};
use serde::{Deserialize, Serialize};

use crate::ForecastError;

/// Encoder features per step.
pub const ENCODER_FEATURES: usize = 5;

/// Everything needed to rebuild the windows a network was trained on (stored in the bundle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Steps the encoder reads.
    pub lookback: usize,
    /// Steps forecast from one origin.
    pub horizon: usize,
    /// Steps per week (168 hourly, 7 daily): the number of week slots.
    pub period: usize,
    /// Seconds per step.
    pub step_seconds: i64,
    /// Covariate columns, in order.
    pub covariates: Vec<String>,
    /// Their training means.
    pub cov_mean: Vec<f64>,
    /// Their training standard deviations (1 where constant).
    pub cov_sd: Vec<f64>,
    /// Mean of `ln(1 + y)` over training.
    pub log_mean: f64,
    /// Standard deviation of `ln(1 + y)` over training.
    pub log_sd: f64,
    /// Mean of the target over training.
    pub mean: f64,
    /// Time of the last training value.
    pub train_end: i64,
}

/// Windows for many origins, laid out for a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    /// Number of origins.
    pub n: usize,
    /// `n × lookback × ENCODER_FEATURES` encoder values.
    pub encoder: Vec<f32>,
    /// `n × horizon` week slots of the future steps.
    pub slots: Vec<i64>,
    /// `n × horizon × decoder_features` decoder values.
    pub decoder: Vec<f32>,
    /// `n × horizon` future values (NaN where beyond the series).
    pub targets: Vec<f32>,
}

fn slot(freq: Frequency, time: i64) -> usize {
    let days = time.div_euclid(86_400);
    // 1970-01-01 was a Thursday; Monday = 0.
    let weekday = (days + 3).rem_euclid(7) as usize;
    match freq {
        Frequency::Hourly => weekday * 24 + (time.rem_euclid(86_400) / 3600) as usize,
        Frequency::Daily => weekday,
    }
}

impl WindowSpec {
    /// Fit the scaling on values `[0, end)` of `ts`.
    pub fn fit(
        ts: &TimeSeries,
        end: usize,
        lookback: usize,
        horizon: usize,
    ) -> Result<WindowSpec, ForecastError> {
        crate::backtest::check_regular(ts)?;
        let period = ts.frequency.per_week();
        if lookback == 0 || horizon == 0 {
            return Err(ForecastError::Config(
                "lookback and horizon must be at least 1".into(),
            ));
        }
        if horizon > period {
            return Err(ForecastError::Config(format!(
                "horizon {horizon} is longer than a week ({period} steps): the decoder's weekly lags would not be known yet"
            )));
        }
        if ts.target[..end.min(ts.len())].iter().any(|&v| v < 0.0) {
            return Err(ForecastError::Config(
                "a count forecaster needs a non-negative target".into(),
            ));
        }
        let mut spec = WindowSpec {
            lookback,
            horizon,
            period,
            step_seconds: ts.frequency.seconds(),
            covariates: ts.covariates.iter().map(|(n, _)| n.clone()).collect(),
            cov_mean: Vec::new(),
            cov_sd: Vec::new(),
            log_mean: 0.0,
            log_sd: 1.0,
            mean: 0.0,
            train_end: 0,
        };
        let need = spec.context() + horizon + 1;
        if end < need || end > ts.len() {
            return Err(ForecastError::TooShort {
                needed: need,
                have: end.min(ts.len()),
                what: format!(
                    "a sequence model with lookback {lookback} and horizon {horizon} (it also reads 4 weeks of level)"
                ),
            });
        }
        let (m, s) = mean_sd(ts.target[..end].iter().map(|&y| y.ln_1p()));
        spec.log_mean = m;
        spec.log_sd = if s > 0.0 { s } else { 1.0 };
        spec.mean = ts.target[..end].iter().sum::<f64>() / end as f64;
        for (_, c) in &ts.covariates {
            let (m, s) = mean_sd(c[..end].iter().copied());
            spec.cov_mean.push(m);
            spec.cov_sd.push(if s > 0.0 { s } else { 1.0 });
        }
        spec.train_end = ts.times[end - 1];
        Ok(spec)
    }

    /// Values needed before (and at) an origin: the lookback and four weeks of level.
    pub fn context(&self) -> usize {
        self.lookback.max(4 * self.period)
    }

    /// The first origin with a full context.
    pub fn first_origin(&self) -> usize {
        self.context() - 1
    }

    /// Decoder features per step.
    pub fn decoder_features(&self) -> usize {
        self.covariates.len() + 7
    }

    /// Check that `ts` has the columns and frequency this spec was fitted on.
    pub fn check_series(&self, ts: &TimeSeries) -> Result<(), ForecastError> {
        crate::backtest::check_regular(ts)?;
        if ts.frequency.seconds() != self.step_seconds {
            return Err(ForecastError::Config(format!(
                "the model forecasts steps of {} s, the series has steps of {} s",
                self.step_seconds,
                ts.frequency.seconds()
            )));
        }
        let names: Vec<&str> = ts.covariates.iter().map(|(n, _)| n.as_str()).collect();
        if names
            != self
                .covariates
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
        {
            return Err(ForecastError::Config(format!(
                "the model was trained with covariates [{}], the series was read with [{}]: pass --covariates {}",
                self.covariates.join(","),
                names.join(","),
                self.covariates.join(",")
            )));
        }
        Ok(())
    }

    fn scale(&self, y: f64) -> f32 {
        ((y.ln_1p() - self.log_mean) / self.log_sd) as f32
    }

    /// Windows for the origins `origins` (each `≥ first_origin()` and `< ts.len()`). Steps after
    /// the end of `ts` get extrapolated times, covariates at their training mean and NaN targets.
    pub fn windows(&self, ts: &TimeSeries, origins: &[usize]) -> Result<Windows, ForecastError> {
        let (l, h, p) = (self.lookback, self.horizon, self.period);
        let nd = self.decoder_features();
        let n_ts = ts.len();
        let mut w = Windows {
            n: origins.len(),
            encoder: Vec::with_capacity(origins.len() * l * ENCODER_FEATURES),
            slots: Vec::with_capacity(origins.len() * h),
            decoder: Vec::with_capacity(origins.len() * h * nd),
            targets: Vec::with_capacity(origins.len() * h),
        };
        let time_at = |i: usize| {
            if i < n_ts {
                ts.times[i]
            } else {
                ts.times[n_ts - 1] + self.step_seconds * (i - n_ts + 1) as i64
            }
        };
        let tau = std::f64::consts::TAU;
        let ln_mean = (self.mean + 0.5).ln();
        for &o in origins {
            if o < self.first_origin() || o >= n_ts {
                return Err(ForecastError::TooShort {
                    needed: self.context(),
                    have: o.min(n_ts) + 1,
                    what: format!("a forecast from row index {o}"),
                });
            }
            for i in o + 1 - l..=o {
                let t = time_at(i);
                let day = (t.rem_euclid(86_400)) as f64 / 86_400.0;
                let week = slot(Frequency::Hourly, t) as f64 / 168.0
                    + (t.rem_euclid(3600)) as f64 / (3600.0 * 168.0);
                w.encoder.extend_from_slice(&[
                    self.scale(ts.target[i]),
                    (tau * day).sin() as f32,
                    (tau * day).cos() as f32,
                    (tau * week).sin() as f32,
                    (tau * week).cos() as f32,
                ]);
            }
            let level = |k: usize| {
                let s: f64 = ts.target[o + 1 - k..=o].iter().sum();
                ((s / k as f64 + 0.5).ln() - ln_mean) as f32
            };
            let (long, short) = (level(4 * p), level(p));
            let recent = [
                self.scale(ts.target[o]),
                self.scale(ts.target[o - 1]),
                self.scale(ts.target[o - 2]),
            ];
            let freq = if self.step_seconds == 86_400 {
                Frequency::Daily
            } else {
                Frequency::Hourly
            };
            for k in 1..=h {
                let i = o + k;
                w.slots.push(slot(freq, time_at(i)) as i64);
                for (j, (_, c)) in ts.covariates.iter().enumerate() {
                    let v = if i < n_ts {
                        (c[i] - self.cov_mean[j]) / self.cov_sd[j]
                    } else {
                        0.0
                    };
                    w.decoder.push(v as f32);
                }
                w.decoder.push(self.scale(ts.target[i - p]));
                w.decoder.push(self.scale(ts.target[i - 2 * p]));
                w.decoder.extend_from_slice(&recent);
                w.decoder.push(long);
                w.decoder.push(short);
                w.targets.push(if i < n_ts {
                    ts.target[i] as f32
                } else {
                    f32::NAN
                });
            }
        }
        Ok(w)
    }
}

fn mean_sd(it: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = it.collect();
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn series(n: usize) -> TimeSeries {
        // Hourly from Monday 2024-01-01 00:00.
        let t0 = 1_704_067_200;
        TimeSeries {
            path: PathBuf::from("s.csv"),
            times: (0..n as i64).map(|i| t0 + 3600 * i).collect(),
            target: (0..n).map(|i| (i % 7) as f64).collect(),
            covariates: vec![("flag".into(), (0..n).map(|i| (i % 2) as f64).collect())],
            frequency: Frequency::Hourly,
            gaps: vec![],
        }
    }

    #[test]
    fn windows_hold_the_documented_features() {
        let ts = series(800);
        let spec = WindowSpec::fit(&ts, 750, 3, 2).unwrap();
        assert_eq!(spec.first_origin(), 4 * 168 - 1);
        let o = 700;
        let w = spec.windows(&ts, &[o]).unwrap();
        assert_eq!(w.encoder.len(), 3 * ENCODER_FEATURES);
        // Last encoder step is the origin itself: value, then time-of-day phase.
        let last = &w.encoder[2 * ENCODER_FEATURES..];
        assert!((last[0] - spec.scale(ts.target[o])).abs() < 1e-6);
        let hod = (o % 24) as f64 / 24.0;
        assert!((last[1] as f64 - (std::f64::consts::TAU * hod).sin()).abs() < 1e-6);
        // Slots: 2024-01-01 was a Monday, so hour of week = index mod 168.
        assert_eq!(
            w.slots,
            vec![((o + 1) % 168) as i64, ((o + 2) % 168) as i64]
        );
        // Decoder of step 1: covariate, lag 168, lag 336, the last three values, levels.
        let d = &w.decoder[..spec.decoder_features()];
        let flag = ((o + 1) % 2) as f64;
        assert!((d[0] as f64 - (flag - spec.cov_mean[0]) / spec.cov_sd[0]).abs() < 1e-6);
        assert!((d[1] - spec.scale(ts.target[o + 1 - 168])).abs() < 1e-6);
        assert!((d[2] - spec.scale(ts.target[o + 1 - 336])).abs() < 1e-6);
        assert!((d[3] - spec.scale(ts.target[o])).abs() < 1e-6);
        assert!((d[5] - spec.scale(ts.target[o - 2])).abs() < 1e-6);
        let lvl: f64 = ts.target[o + 1 - 168..=o].iter().sum::<f64>() / 168.0;
        assert!((d[7] as f64 - ((lvl + 0.5).ln() - (spec.mean + 0.5).ln())).abs() < 1e-5);
        assert_eq!(
            w.targets,
            vec![ts.target[o + 1] as f32, ts.target[o + 2] as f32]
        );
    }

    #[test]
    fn steps_past_the_end_are_extrapolated() {
        let ts = series(800);
        let spec = WindowSpec::fit(&ts, 750, 3, 2).unwrap();
        let w = spec.windows(&ts, &[799]).unwrap();
        assert_eq!(w.slots, vec![(800 % 168) as i64, (801 % 168) as i64]);
        assert!(w.targets.iter().all(|t| t.is_nan()));
        assert!(spec.windows(&ts, &[10]).is_err());
    }

    #[test]
    fn refuses_short_history_and_long_horizons() {
        let ts = series(800);
        assert!(matches!(
            WindowSpec::fit(&ts, 600, 3, 2),
            Err(ForecastError::TooShort { .. })
        ));
        assert!(WindowSpec::fit(&ts, 750, 3, 169).is_err());
    }
}
