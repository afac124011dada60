//! From a forecast to a staffing table: the values after the end of the series with intervals
//! ([`forecast_ahead`]), then per shift the expected arrivals, an upper bound at a chosen service
//! level and the staff that bound needs at a given patients-per-staff-hour ratio
//! ([`staff_plan`]).

use medai_data::TimeSeries;
use serde::Serialize;

use crate::ForecastError;
use crate::backtest::{check_regular, residual_quantiles};
use crate::baselines::Forecaster;

/// One forecast value after the end of the series.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FuturePoint {
    /// Its time (seconds, no zone).
    pub time: i64,
    /// Steps after the last observed value.
    pub step: usize,
    /// Point forecast.
    pub point: f64,
    /// 80% interval.
    pub lo80: f64,
    /// 80% interval.
    pub hi80: f64,
    /// 95% interval.
    pub lo95: f64,
    /// 95% interval.
    pub hi95: f64,
    /// Standard deviation of the model's in-sample errors at this step.
    pub sd: f64,
}

/// Forecast the `horizon` values after the end of `ts`, fitting one model per step `k`
/// (the direct strategy: step `k` uses only lags `≥ k`). Intervals are the step's in-sample
/// residual quantiles (last year at most), clipped at 0 for a non-negative series.
/// Covariates are not supported here yet (their future values would be needed).
pub fn forecast_ahead(
    ts: &TimeSeries,
    make: &dyn Fn() -> Box<dyn Forecaster>,
    horizon: usize,
) -> Result<Vec<FuturePoint>, ForecastError> {
    check_regular(ts)?;
    if !ts.covariates.is_empty() {
        return Err(ForecastError::Config(
            "forecasting ahead with covariates needs their future values, which this command does not read yet: drop --covariates".into(),
        ));
    }
    if horizon == 0 {
        return Err(ForecastError::Config("horizon must be at least 1".into()));
    }
    let n = ts.len();
    let step = ts.frequency.seconds();
    // The series extended by `horizon` unknown values (NaN) at the future times.
    let mut ext = ts.clone();
    for k in 1..=horizon {
        ext.times.push(ts.times[n - 1] + step * k as i64);
        ext.target.push(f64::NAN);
    }
    let non_negative = ts.target.iter().all(|&v| v >= 0.0);
    let mut out = Vec::with_capacity(horizon);
    for k in 1..=horizon {
        let mut m = make();
        m.fit(ts, n, k)?;
        let (res, q) = residual_quantiles(m.as_ref(), ts, m.first_index(ts, k), n)?;
        let mean = res.iter().sum::<f64>() / res.len() as f64;
        let sd = (res.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
            / (res.len().max(2) - 1) as f64)
            .sqrt();
        let t = n - 1 + k;
        let p = m.predict(&ext, t);
        let clip = |v: f64| if non_negative { v.max(0.0) } else { v };
        out.push(FuturePoint {
            time: ext.times[t],
            step: k,
            point: clip(p),
            lo80: clip(p + q[1]),
            hi80: clip(p + q[2]),
            lo95: clip(p + q[0]),
            hi95: clip(p + q[3]),
            sd,
        });
    }
    Ok(out)
}

/// One shift of a staffing plan.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Shift {
    /// Start (seconds, no zone).
    pub start: i64,
    /// Hours covered by the forecast (the last shift may be cut short).
    pub hours: usize,
    /// Expected arrivals (sum of the point forecasts).
    pub expected: f64,
    /// Arrivals not exceeded with probability `service_level`: expected + z·√(Σ sd²)
    /// (hourly errors treated as independent and the total as normal).
    pub upper: f64,
    /// Staff for the shift: ⌈upper / (patients per staff-hour × hours covered)⌉.
    pub staff: u32,
}

/// Plan settings.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// Shift length in hours.
    pub shift_hours: usize,
    /// Hour of day (0–23) at which a shift starts; shifts tile the day from there.
    pub first_shift_hour: usize,
    /// Probability that arrivals stay under the planned bound (e.g. 0.95).
    pub service_level: f64,
    /// Patients one staff member handles per hour.
    pub patients_per_staff_hour: f64,
}

/// Group hourly forecasts into shifts and size each one.
pub fn staff_plan(points: &[FuturePoint], cfg: &PlanConfig) -> Result<Vec<Shift>, ForecastError> {
    if cfg.shift_hours == 0 || cfg.shift_hours > 24 || 24 % cfg.shift_hours != 0 {
        return Err(ForecastError::Config(format!(
            "shift length {} h must divide 24",
            cfg.shift_hours
        )));
    }
    if !(0.5..1.0).contains(&cfg.service_level) {
        return Err(ForecastError::Config(format!(
            "service level {} must be in [0.5, 1)",
            cfg.service_level
        )));
    }
    if !(cfg.patients_per_staff_hour > 0.0 && cfg.patients_per_staff_hour.is_finite()) {
        return Err(ForecastError::Config(
            "patients per staff-hour must be positive".into(),
        ));
    }
    if cfg.first_shift_hour > 23 {
        return Err(ForecastError::Config(
            "first shift hour must be 0–23".into(),
        ));
    }
    if points.windows(2).any(|w| w[1].time - w[0].time != 3600) {
        return Err(ForecastError::Config(
            "a staffing plan needs an hourly forecast".into(),
        ));
    }
    let z = medai_metrics::normal_quantile(cfg.service_level);
    let shift_of = |t: i64| {
        let hours = t.div_euclid(3600) - cfg.first_shift_hour as i64;
        hours.div_euclid(cfg.shift_hours as i64)
    };
    let mut out: Vec<Shift> = Vec::new();
    let mut var = 0.0f64;
    let mut current = None;
    for p in points {
        let s = shift_of(p.time);
        if current != Some(s) {
            if let Some(last) = out.last_mut() {
                last.upper = last.expected + z * var.sqrt();
            }
            out.push(Shift {
                start: (s * cfg.shift_hours as i64 + cfg.first_shift_hour as i64) * 3600,
                hours: 0,
                expected: 0.0,
                upper: 0.0,
                staff: 0,
            });
            var = 0.0;
            current = Some(s);
        }
        let last = out.last_mut().expect("pushed");
        last.hours += 1;
        last.expected += p.point;
        var += p.sd * p.sd;
    }
    if let Some(last) = out.last_mut() {
        last.upper = last.expected + z * var.sqrt();
    }
    for s in &mut out {
        s.staff = (s.upper / (cfg.patients_per_staff_hour * s.hours as f64)).ceil() as u32;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(hour: i64, point: f64, sd: f64) -> FuturePoint {
        FuturePoint {
            time: hour * 3600,
            step: hour as usize,
            point,
            lo80: 0.0,
            hi80: 0.0,
            lo95: 0.0,
            hi95: 0.0,
            sd,
        }
    }

    #[test]
    fn shifts_sum_hours_and_size_staff() {
        // Hours 5..13 with 8-hour shifts from 07:00: 05–06 (2 h of the 23:00 shift), 07–12.
        let points: Vec<_> = (5..13).map(|h| pt(h, 4.0, 2.0)).collect();
        let cfg = PlanConfig {
            shift_hours: 8,
            first_shift_hour: 7,
            service_level: 0.975,
            patients_per_staff_hour: 1.0,
        };
        let plan = staff_plan(&points, &cfg).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(
            plan[0].start, -3600,
            "the shift began at 23:00 the day before"
        );
        assert_eq!((plan[0].hours, plan[1].hours), (2, 6));
        assert_eq!(plan[1].start, 7 * 3600);
        assert!((plan[1].expected - 24.0).abs() < 1e-12);
        // 24 + 1.959964 · √(6 · 4) = 33.602…
        assert!((plan[1].upper - (24.0 + 1.959963984540054 * 24f64.sqrt())).abs() < 1e-6);
        assert_eq!(
            plan[1].staff, 6,
            "33.6 arrivals over 6 covered hours at 1 per staff-hour"
        );
        // The 2-hour part of the night shift: 8 + 1.96·√8 = 13.54 over 2 h → 7.
        assert_eq!(plan[0].staff, 7);
        assert!(
            staff_plan(
                &points,
                &PlanConfig {
                    shift_hours: 7,
                    ..cfg.clone()
                }
            )
            .is_err()
        );
        assert!(
            staff_plan(
                &points,
                &PlanConfig {
                    service_level: 1.0,
                    ..cfg
                }
            )
            .is_err()
        );
    }
}
