//! Operating points: metrics at a chosen threshold, and thresholds that reach
//! a target sensitivity or specificity.

use serde::{Deserialize, Serialize};

use crate::binary::ConfusionBinary;
use crate::curve::binary_curve;
use crate::{MetricsError, confusion_binary, ratio};

/// The binary metrics at one named decision threshold (predict positive when
/// `score >= threshold`).
///
/// Ratios with a zero denominator are `0.0` (scikit-learn's
/// `zero_division=0`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OperatingPoint {
    /// A label for the operating point, for example `"youden"` or
    /// `"sens>=0.95"`.
    pub name: String,
    /// Decision threshold.
    pub threshold: f64,
    /// `tp / (tp + fn)`.
    pub sensitivity: f64,
    /// `tn / (tn + fp)`.
    pub specificity: f64,
    /// `tp / (tp + fp)`.
    pub ppv: f64,
    /// `tn / (tn + fn)`.
    pub npv: f64,
    /// `(tp + tn) / n`.
    pub accuracy: f64,
    /// `2 tp / (2 tp + fp + fn)`.
    pub f1: f64,
    /// Counts at the threshold.
    pub confusion: ConfusionBinary,
}

/// Metrics at `threshold` (predict positive when `score >= threshold`),
/// labelled `name`.
///
/// # Errors
///
/// The errors of [`confusion_binary`]: `LengthMismatch`, `Empty`,
/// `InvalidLabel`, `NonFinite`, `InvalidThreshold`.
pub fn operating_point(
    name: &str,
    y_true: &[usize],
    scores: &[f64],
    threshold: f64,
) -> Result<OperatingPoint, MetricsError> {
    let c = confusion_binary(y_true, scores, threshold)?;
    Ok(OperatingPoint {
        name: name.to_string(),
        threshold,
        sensitivity: ratio(c.tp, c.tp + c.fn_),
        specificity: ratio(c.tn, c.tn + c.fp),
        ppv: ratio(c.tp, c.tp + c.fp),
        npv: ratio(c.tn, c.tn + c.fn_),
        accuracy: ratio(c.tp + c.tn, c.total()),
        f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn_),
        confusion: c,
    })
}

fn check_target(target: f64) -> Result<(), MetricsError> {
    if target > 0.0 && target <= 1.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidTarget(target))
    }
}

/// The largest distinct score `t` such that the sensitivity at `t`
/// (positives with `score >= t`, over all positives) is at least `target`.
///
/// This is the most specific threshold that still reaches the target
/// sensitivity. The lowest score always reaches sensitivity 1, so a threshold
/// always exists. The comparison uses the same floating-point ratio
/// `tp / positives` that [`operating_point`] reports.
///
/// # Errors
///
/// `InvalidTarget` unless `0 < target <= 1`; `SingleClass` when there is no
/// positive sample; the input errors `LengthMismatch`, `Empty`,
/// `InvalidLabel`, `NonFinite`.
pub fn threshold_for_sensitivity(
    y_true: &[usize],
    scores: &[f64],
    target: f64,
) -> Result<f64, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    check_target(target)?;
    let p = curve.positives();
    if p == 0 {
        return Err(MetricsError::SingleClass { present: 0 });
    }
    // Thresholds decrease, sensitivity increases along the curve.
    curve
        .tps
        .iter()
        .zip(&curve.thresholds)
        .find(|&(&tp, _)| ratio(tp, p) >= target)
        .map(|(_, &t)| t)
        .ok_or(MetricsError::Undefined(
            "threshold_for_sensitivity: no threshold reaches the target",
        ))
}

/// The smallest distinct score `t` such that the specificity at `t`
/// (negatives with `score < t`, over all negatives) is at least `target`.
///
/// This is the most sensitive threshold that still reaches the target
/// specificity. If no score reaches it (the highest score belongs to a
/// negative and the target needs that negative below the threshold), the
/// result is the next float above the highest score
/// (`max_score.next_up()`), where nothing is predicted positive and the
/// specificity is 1; it is `+inf` only when the highest score is `f64::MAX`.
///
/// # Errors
///
/// `InvalidTarget` unless `0 < target <= 1`; `SingleClass` when there is no
/// negative sample; the input errors `LengthMismatch`, `Empty`,
/// `InvalidLabel`, `NonFinite`.
pub fn threshold_for_specificity(
    y_true: &[usize],
    scores: &[f64],
    target: f64,
) -> Result<f64, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    check_target(target)?;
    let n = curve.negatives();
    if n == 0 {
        return Err(MetricsError::SingleClass { present: 1 });
    }
    // Walk thresholds upwards: specificity increases.
    let found = curve
        .fps
        .iter()
        .zip(&curve.thresholds)
        .rev()
        .find(|&(&fp, _)| ratio(n - fp, n) >= target)
        .map(|(_, &t)| t);
    Ok(found.unwrap_or_else(|| curve.thresholds[0].next_up()))
}
