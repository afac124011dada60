//! # medai-metrics
//!
//! Evaluation metrics for medai models: binary (one positive class scored by a
//! probability) and multiclass (one probability row per sample). The numbers are
//! checked against scikit-learn with an oracle fixture
//! (`tests/fixtures/metrics/metrics_cases.json`, produced by
//! `tests/fixtures/metrics/make_metrics_fixture.py`) to 1e-12.
//!
//! This crate is pure Rust and depends on no deep-learning engine.
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
//!   `zero_division=0`. No function of this crate returns NaN.
//! * **Ties in scores.** ROC AUC gives tied (positive, negative) pairs half
//!   credit, exactly like `sklearn.metrics.roc_auc_score` (trapezoidal rule over
//!   the ROC curve with one point per distinct score). The AUC is computed with
//!   exact integer arithmetic and a single final division.
//! * **Log loss.** Probabilities are clipped to
//!   `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` with [`LOG_LOSS_EPS`] `= 1e-15` before
//!   taking logarithms, so a confident wrong prediction gives a large but finite
//!   loss (about 34.5).
//! * **Errors, not panics.** Mismatched lengths, empty input, labels out of
//!   range, non-finite scores, probabilities outside `[0, 1]`, a single class
//!   in `y_true` where an AUC is required, and similar misuse all return a
//!   [`MetricsError`].
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

#![warn(missing_docs)]

mod binary;
mod curve;
mod error;
mod multiclass;

pub use binary::{
    BinaryReport, ConfusionBinary, binary_report, brier_score, confusion_binary, log_loss_binary,
    youden_threshold,
};
pub use curve::{RocCurve, average_precision, roc_auc, roc_curve};
pub use error::MetricsError;
pub use multiclass::{
    ClassReport, MulticlassReport, PROB_SUM_TOLERANCE, log_loss_multiclass, multiclass_report,
    quadratic_weighted_kappa, roc_auc_ovr_macro,
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
