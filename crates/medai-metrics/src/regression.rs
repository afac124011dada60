//! Regression metrics (for example a predicted age or lesion size) and their
//! bootstrap confidence intervals.

use serde::{Deserialize, Serialize};

use crate::ci::{ConfidenceInterval, bootstrap_ci};
use crate::{MetricsError, check_finite, check_lengths};

/// Regression metrics of predictions against targets.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RegressionReport {
    /// Number of samples.
    pub n: usize,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination, like scikit-learn's `r2_score` with
    /// `force_finite=True`: `1 - SS_res / SS_tot`; for constant targets
    /// `1.0` when the predictions are perfect and `0.0` otherwise.
    pub r2: f64,
    /// Pearson correlation of targets and predictions; `0.0` when undefined
    /// (targets or predictions constant).
    pub pearson: f64,
}

/// Bootstrap confidence intervals of [`RegressionReport`]'s error metrics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RegressionCi {
    /// Interval of the root mean squared error.
    pub rmse: ConfidenceInterval,
    /// Interval of the mean absolute error.
    pub mae: ConfidenceInterval,
    /// Interval of R².
    pub r2: ConfidenceInterval,
}

fn validate(y: &[f64], pred: &[f64]) -> Result<(), MetricsError> {
    check_lengths(y.len(), pred.len())?;
    check_finite(y)?;
    check_finite(pred)
}

/// Deviations from the mean (exactly `0.0` for constant input) and whether the
/// input is constant.
fn centered(values: &[f64]) -> (Vec<f64>, bool) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let constant = values.iter().all(|&v| v == values[0]);
    let dev = if constant {
        vec![0.0; values.len()]
    } else {
        values.iter().map(|&v| v - mean).collect()
    };
    (dev, constant)
}

/// Metrics of already validated, non-empty pairs.
fn report_of(y: &[f64], pred: &[f64]) -> Result<RegressionReport, MetricsError> {
    let n = y.len();
    let nf = n as f64;
    let ss_res: f64 = y.iter().zip(pred).map(|(&a, &b)| (a - b) * (a - b)).sum();
    let abs_sum: f64 = y.iter().zip(pred).map(|(&a, &b)| (a - b).abs()).sum();
    let (dy, y_constant) = centered(y);
    let (dp, p_constant) = centered(pred);
    let ss_tot: f64 = dy.iter().map(|d| d * d).sum();
    let r2 = if ss_res == 0.0 {
        1.0
    } else if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    };
    let pearson = if y_constant || p_constant {
        0.0
    } else {
        let sxy: f64 = dy.iter().zip(&dp).map(|(a, b)| a * b).sum();
        let spp: f64 = dp.iter().map(|d| d * d).sum();
        (sxy / (ss_tot.sqrt() * spp.sqrt())).clamp(-1.0, 1.0)
    };
    let report = RegressionReport {
        n,
        rmse: (ss_res / nf).sqrt(),
        mae: abs_sum / nf,
        r2,
        pearson,
    };
    let all_finite = [report.rmse, report.mae, report.r2, report.pearson]
        .iter()
        .all(|v| v.is_finite());
    if all_finite {
        Ok(report)
    } else {
        Err(MetricsError::Undefined(
            "regression metrics overflow for values of this magnitude",
        ))
    }
}

/// Regression report of `pred` against the targets `y`.
///
/// R² follows scikit-learn's `r2_score` (`force_finite=True`): with
/// `SS_res = sum (y - pred)^2` and `SS_tot = sum (y - mean y)^2`, it is `1.0`
/// when `SS_res = 0`, `0.0` when the targets are constant (`SS_tot = 0`) but
/// the predictions are not perfect, and `1 - SS_res / SS_tot` otherwise.
/// Constant targets are detected exactly (all values equal), so a constant
/// whose mean is not exactly representable still gives `SS_tot = 0` (where
/// scikit-learn would divide by a rounding residue). The Pearson correlation
/// is `0.0` when either side is constant.
///
/// # Errors
///
/// `LengthMismatch`, `Empty`, `NonFinite`, and `Undefined` when the values
/// are so large that the squared errors overflow.
pub fn regression_report(y: &[f64], pred: &[f64]) -> Result<RegressionReport, MetricsError> {
    validate(y, pred)?;
    report_of(y, pred)
}

/// Percentile-bootstrap confidence intervals of RMSE, MAE and R² (samples
/// resampled with replacement, not stratified; see
/// [`bootstrap_ci`]). The three intervals use the same `resamples` resamples
/// (same `seed`), and their estimates are the values of
/// [`regression_report`].
///
/// # Errors
///
/// The errors of [`regression_report`] and of [`bootstrap_ci`]
/// (`InvalidLevel`, `InvalidResamples`, `BootstrapFailed`).
pub fn regression_bootstrap(
    y: &[f64],
    pred: &[f64],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Result<RegressionCi, MetricsError> {
    validate(y, pred)?;
    report_of(y, pred)?;
    let strata = vec![0usize; y.len()];
    let mut ys = Vec::with_capacity(y.len());
    let mut ps = Vec::with_capacity(y.len());
    let mut ci_of = |pick: fn(&RegressionReport) -> f64| {
        bootstrap_ci(&strata, resamples, seed, level, false, |idx| {
            ys.clear();
            ps.clear();
            ys.extend(idx.iter().map(|&i| y[i]));
            ps.extend(idx.iter().map(|&i| pred[i]));
            report_of(&ys, &ps).map(|r| pick(&r))
        })
    };
    Ok(RegressionCi {
        rmse: ci_of(|r| r.rmse)?,
        mae: ci_of(|r| r.mae)?,
        r2: ci_of(|r| r.r2)?,
    })
}
