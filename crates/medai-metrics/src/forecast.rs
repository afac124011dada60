//! Forecast accuracy: MASE and prediction-interval coverage (point errors are in
//! [`crate::regression_report`]).

use crate::{MetricsError, check_finite, check_lengths};

/// The scale of MASE: the in-sample mean absolute error of the seasonal-naive forecast
/// `y[t - period]` over `train` (Hyndman & Koehler 2006). `None` when `train` is not longer than
/// `period` or the scale is 0.
pub fn seasonal_naive_scale(train: &[f64], period: usize) -> Option<f64> {
    if period == 0 || train.len() <= period {
        return None;
    }
    let s = train
        .iter()
        .skip(period)
        .zip(train)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / (train.len() - period) as f64;
    (s > 0.0 && s.is_finite()).then_some(s)
}

/// Mean absolute scaled error: MAE of `pred` divided by `scale` (see [`seasonal_naive_scale`]).
pub fn mase(y: &[f64], pred: &[f64], scale: f64) -> Result<f64, MetricsError> {
    check_lengths(y.len(), pred.len())?;
    check_finite(y)?;
    check_finite(pred)?;
    if y.is_empty() {
        return Err(MetricsError::Empty);
    }
    let mae = y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64;
    Ok(mae / scale)
}

/// Fraction of `y` inside `[lo, hi]` (inclusive).
pub fn interval_coverage(y: &[f64], lo: &[f64], hi: &[f64]) -> Result<f64, MetricsError> {
    check_lengths(y.len(), lo.len())?;
    check_lengths(y.len(), hi.len())?;
    if y.is_empty() {
        return Err(MetricsError::Empty);
    }
    let inside = y
        .iter()
        .zip(lo.iter().zip(hi))
        .filter(|(v, (l, h))| **l <= **v && **v <= **h)
        .count();
    Ok(inside as f64 / y.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mase_and_coverage_by_hand() {
        // Seasonal naive with period 2 on [1, 2, 3, 5]: |3-1| + |5-2| = 5 over 2 → 2.5.
        assert_eq!(seasonal_naive_scale(&[1.0, 2.0, 3.0, 5.0], 2), Some(2.5));
        assert_eq!(seasonal_naive_scale(&[1.0, 2.0], 2), None);
        assert_eq!(seasonal_naive_scale(&[1.0, 1.0, 1.0], 1), None);
        assert!((mase(&[1.0, 2.0], &[2.0, 4.0], 2.5).unwrap() - 0.6).abs() < 1e-15);
        let c = interval_coverage(
            &[1.0, 2.0, 3.0, 4.0],
            &[0.0, 2.5, 3.0, 0.0],
            &[1.0, 3.0, 3.0, 3.9],
        )
        .unwrap();
        assert_eq!(c, 0.5);
        assert!(mase(&[], &[], 1.0).is_err());
    }
}
