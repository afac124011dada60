//! # medai-metrics
//!
//! Evaluation metrics for medai models, with confidence intervals,
//! calibration and subgroup analysis. The numbers are checked against
//! scikit-learn / scipy with oracle fixtures:
//! `tests/fixtures/metrics/metrics_cases.json` (produced by
//! `make_metrics_fixture.py`, compared to 1e-12) and
//! `tests/fixtures/metrics/eval_cases.json` (produced by
//! `make_eval_fixture.py`, compared to 1e-9; DeLong against an independent
//! O(m·n) reference implementation of DeLong et al. 1988).
//!
//! This crate is pure Rust and depends on no deep-learning engine.
//!
//! ## Modules
//!
//! * **Binary** — [`binary_report`], [`roc_auc`], [`roc_curve`],
//!   [`average_precision`], [`brier_score`], [`log_loss_binary`],
//!   [`confusion_binary`], [`youden_threshold`].
//! * **Multiclass** — [`multiclass_report`], [`roc_auc_ovr_macro`],
//!   [`roc_auc_ovr_micro`], [`log_loss_multiclass`],
//!   [`quadratic_weighted_kappa`].
//! * **Multilabel** — [`multilabel_report`].
//! * **Regression** — [`regression_report`], [`regression_bootstrap`].
//! * **Confidence intervals** — [`ConfidenceInterval`]; [`auc_delong`] and
//!   [`delong_paired_test`] (DeLong variance, fast mid-rank algorithm);
//!   [`bootstrap_ci`] (percentile bootstrap of any statistic, optionally
//!   stratified) and [`auc_bootstrap_ci`]; [`wilson_interval`]; the helpers
//!   [`normal_quantile`], [`normal_cdf`], [`quantile_linear`].
//! * **Calibration** — [`reliability_bins`], [`expected_calibration_error`],
//!   [`max_calibration_error`], [`top_label_ece`], temperature scaling with
//!   [`apply_temperature`] and [`fit_temperature`].
//! * **Operating points** — [`operating_point`],
//!   [`threshold_for_sensitivity`], [`threshold_for_specificity`].
//! * **Subgroups** — [`subgroup_binary`]: per-group AUC / sensitivity /
//!   specificity intervals, flagged when disjoint from the overall interval.
//!
//! ## Conventions
//!
//! * **Labels.** Binary labels are `0` (negative) and `1` (positive). Multiclass
//!   labels are class indices `0..k`, where `k` is the number of probability
//!   columns.
//! * **Thresholding.** A sample is predicted positive when
//!   `score >= threshold` (the same rule as the thresholds of
//!   [`roc_curve`]).
//! * **Multiclass prediction.** The predicted class is the argmax of the
//!   probability row; on ties the *first* (lowest-index) maximum wins, like
//!   `numpy.argmax`.
//! * **Zero division.** A ratio whose denominator is zero (for example PPV when
//!   nothing is predicted positive, or per-class precision of a class that is
//!   never predicted) is reported as `0.0`, like scikit-learn's
//!   `zero_division=0`. No metric returns NaN.
//! * **Ties in scores.** ROC AUC gives tied (positive, negative) pairs half
//!   credit, exactly like `sklearn.metrics.roc_auc_score` (trapezoidal rule over
//!   the ROC curve with one point per distinct score). The AUC is computed with
//!   exact integer arithmetic and a single final division.
//! * **Log loss.** Probabilities are clipped to
//!   `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` with [`LOG_LOSS_EPS`] `= 1e-15` before
//!   taking logarithms, so a confident wrong prediction gives a large but finite
//!   loss (about 34.5).
//! * **Confidence levels** are given as fractions (`0.95`), strictly between
//!   0 and 1 (else [`MetricsError::InvalidLevel`]). Normal-approximation
//!   intervals use `z = Phi^-1((1 + level) / 2)`; DeLong intervals are clipped
//!   to `[0, 1]`.
//! * **Bootstrap** intervals are percentile intervals with numpy's default
//!   (`"linear"`) quantile definition, drawn with a ChaCha8 generator from a
//!   caller-given seed: the same seed always gives the same interval.
//! * **Errors, not panics.** Mismatched lengths, empty input, labels out of
//!   range, non-finite scores, probabilities outside `[0, 1]`, a single class
//!   in `y_true` where an AUC is required, and similar misuse all return a
//!   [`MetricsError`]. The only functions that can return NaN are the
//!   pure-math helpers [`normal_quantile`] and [`normal_cdf`], and only for a
//!   NaN argument.
//!
//! ## Example
//!
//! ```
//! use medai_metrics::{binary_report, roc_auc};
//!
//! let y = [0, 0, 1, 1];
//! let p = [0.1, 0.4, 0.35, 0.8];
//! assert_eq!(roc_auc(&y, &p).unwrap(), 0.75);
//! let report = binary_report(&y, &p, 0.5).unwrap();
//! assert_eq!(report.confusion.tp, 1);
//! assert_eq!(report.specificity, 1.0);
//! ```
//!
//! Confidence intervals:
//!
//! ```
//! use medai_metrics::{auc_delong, wilson_interval};
//!
//! let y = [0, 0, 0, 1, 0, 1, 1, 1];
//! let s = [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9];
//! let d = auc_delong(&y, &s, 0.95).unwrap();
//! assert_eq!(d.auc, 0.9375);
//! assert!(d.ci.low < d.auc && d.auc < d.ci.high && d.ci.high <= 1.0);
//! let sens = wilson_interval(3, 4, 0.95).unwrap();
//! assert!(sens.overlaps(&d.ci));
//! ```

#![warn(missing_docs)]

mod binary;
mod calibration;
mod ci;
mod curve;
mod error;
mod forecast;
mod multiclass;
mod multilabel;
mod regression;
mod subgroup;
mod threshold;

pub use binary::{
    BinaryReport, ConfusionBinary, binary_report, brier_score, confusion_binary, log_loss_binary,
    youden_threshold,
};
pub use calibration::{
    ReliabilityBin, TEMPERATURE_MAX, TEMPERATURE_MIN, TemperatureFit, apply_temperature,
    expected_calibration_error, fit_temperature, max_calibration_error, reliability_bins,
    top_label_ece,
};
pub use ci::{
    ConfidenceInterval, DelongAuc, DelongComparison, auc_bootstrap_ci, auc_delong, bootstrap_ci,
    delong_paired_test, normal_cdf, normal_quantile, quantile_linear, wilson_interval,
};
pub use curve::{RocCurve, average_precision, roc_auc, roc_curve};
pub use error::MetricsError;
pub use forecast::{interval_coverage, mase, seasonal_naive_scale};
pub use multiclass::{
    ClassReport, MulticlassReport, PROB_SUM_TOLERANCE, log_loss_multiclass, multiclass_report,
    quadratic_weighted_kappa, roc_auc_ovr_macro, roc_auc_ovr_micro,
};
pub use multilabel::{LabelReport, MultilabelReport, multilabel_report};
pub use regression::{RegressionCi, RegressionReport, regression_bootstrap, regression_report};
pub use subgroup::{SubgroupResult, subgroup_binary};
pub use threshold::{
    OperatingPoint, operating_point, threshold_for_sensitivity, threshold_for_specificity,
};

/// Clipping bound for log loss: probabilities are clipped to
/// `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` before the logarithm (scikit-learn's
/// historical `eps=1e-15`).
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Divides, returning `0.0` when the denominator is zero (scikit-learn's
/// `zero_division=0`).
pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Checks that a slice is non-empty and that its length matches `y_true`.
pub(crate) fn check_lengths(n_true: usize, n_other: usize) -> Result<(), MetricsError> {
    if n_true != n_other {
        return Err(MetricsError::LengthMismatch {
            y_true: n_true,
            other: n_other,
        });
    }
    if n_true == 0 {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

/// Checks that every score is finite.
pub(crate) fn check_finite(scores: &[f64]) -> Result<(), MetricsError> {
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(MetricsError::NonFinite {
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

/// Checks binary labels and turns them into booleans (`true` = positive).
pub(crate) fn binary_labels(y_true: &[usize]) -> Result<Vec<bool>, MetricsError> {
    y_true
        .iter()
        .enumerate()
        .map(|(index, &label)| match label {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(MetricsError::InvalidLabel {
                index,
                label,
                n_classes: 2,
            }),
        })
        .collect()
}
