//! Binary classification report and threshold-dependent metrics.

use serde::{Deserialize, Serialize};

use crate::curve::{binary_curve, single_class};
use crate::{LOG_LOSS_EPS, MetricsError, binary_labels, check_finite, check_lengths, ratio};

/// Threshold-dependent binary counts at one threshold (predict positive when
/// `score >= threshold`).
///
/// `fn_` is serialized as `"fn"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ConfusionBinary {
    /// True positives: label 1, predicted 1.
    pub tp: u64,
    /// False positives: label 0, predicted 1.
    pub fp: u64,
    /// True negatives: label 0, predicted 0.
    pub tn: u64,
    /// False negatives: label 1, predicted 0.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl ConfusionBinary {
    /// Total number of samples counted.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }
}

/// Full binary evaluation at one threshold, plus the threshold-free AUC and
/// average precision.
///
/// Every ratio with a zero denominator is `0.0` (scikit-learn's
/// `zero_division=0`); no field is ever NaN.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BinaryReport {
    /// Number of samples.
    pub n: usize,
    /// Number of samples with label 1.
    pub positives: usize,
    /// Number of samples with label 0.
    pub negatives: usize,
    /// Decision threshold: predicted positive when `score >= threshold`.
    pub threshold: f64,
    /// ROC AUC of the positive-class score; ties are handled like
    /// scikit-learn's `roc_auc_score` (half credit).
    pub auc: f64,
    /// Average precision, like scikit-learn's `average_precision_score`.
    pub average_precision: f64,
    /// `(tp + tn) / n`.
    pub accuracy: f64,
    /// `(sensitivity + specificity) / 2`.
    pub balanced_accuracy: f64,
    /// Recall of the positive class, `tp / (tp + fn)`.
    pub sensitivity: f64,
    /// Recall of the negative class, `tn / (tn + fp)`.
    pub specificity: f64,
    /// Positive predictive value (precision), `tp / (tp + fp)`; `0.0` when
    /// nothing is predicted positive.
    pub ppv: f64,
    /// Negative predictive value, `tn / (tn + fn)`; `0.0` when nothing is
    /// predicted negative.
    pub npv: f64,
    /// F1 score of the positive class, `2 tp / (2 tp + fp + fn)`.
    pub f1: f64,
    /// Matthews correlation coefficient; `0.0` when undefined (a constant
    /// prediction), like scikit-learn.
    pub mcc: f64,
    /// Brier score, mean of `(y - score)^2`.
    pub brier: f64,
    /// Mean binary cross-entropy with probabilities clipped to
    /// `[1e-15, 1 - 1e-15]`.
    pub log_loss: f64,
    /// Counts at the threshold.
    pub confusion: ConfusionBinary,
}

/// Checks that every score is a probability in `[0, 1]` (and finite).
pub(crate) fn check_probabilities(scores: &[f64]) -> Result<(), MetricsError> {
    check_finite(scores)?;
    match scores.iter().position(|s| !(0.0..=1.0).contains(s)) {
        Some(index) => Err(MetricsError::ProbabilityOutOfRange {
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

/// Counts at one threshold for already validated input.
fn confusion_counts(pos: &[bool], scores: &[f64], threshold: f64) -> ConfusionBinary {
    let mut c = ConfusionBinary::default();
    for (&is_pos, &s) in pos.iter().zip(scores) {
        match (is_pos, s >= threshold) {
            (true, true) => c.tp += 1,
            (true, false) => c.fn_ += 1,
            (false, true) => c.fp += 1,
            (false, false) => c.tn += 1,
        }
    }
    c
}

/// Confusion counts at `threshold` (predict positive when
/// `score >= threshold`). Scores may be any finite reals.
///
/// # Errors
///
/// `LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`, and
/// `InvalidThreshold` for a NaN or infinite threshold.
pub fn confusion_binary(
    y_true: &[usize],
    scores: &[f64],
    threshold: f64,
) -> Result<ConfusionBinary, MetricsError> {
    check_lengths(y_true.len(), scores.len())?;
    let pos = binary_labels(y_true)?;
    check_finite(scores)?;
    if !threshold.is_finite() {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    Ok(confusion_counts(&pos, scores, threshold))
}

/// Matthews correlation coefficient from binary counts, with scikit-learn's
/// formula (`0.0` when the denominator is zero).
fn mcc(c: &ConfusionBinary) -> f64 {
    let (tp, fp, tn, fn_) = (c.tp as f64, c.fp as f64, c.tn as f64, c.fn_ as f64);
    let t_sum = [tn + fp, fn_ + tp];
    let p_sum = [tn + fn_, fp + tp];
    let n = p_sum[0] + p_sum[1];
    let cov_ytyp = (tp + tn) * n - (t_sum[0] * p_sum[0] + t_sum[1] * p_sum[1]);
    let cov_ypyp = n * n - (p_sum[0] * p_sum[0] + p_sum[1] * p_sum[1]);
    let cov_ytyt = n * n - (t_sum[0] * t_sum[0] + t_sum[1] * t_sum[1]);
    let denom = cov_ytyt * cov_ypyp;
    if denom == 0.0 {
        0.0
    } else {
        cov_ytyp / denom.sqrt()
    }
}

/// Brier score `mean((y - p)^2)` for binary labels and probabilities of class 1.
///
/// # Errors
///
/// `LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`,
/// `ProbabilityOutOfRange`.
pub fn brier_score(y_true: &[usize], probs: &[f64]) -> Result<f64, MetricsError> {
    check_lengths(y_true.len(), probs.len())?;
    let pos = binary_labels(y_true)?;
    check_probabilities(probs)?;
    Ok(brier_unchecked(&pos, probs))
}

fn brier_unchecked(pos: &[bool], probs: &[f64]) -> f64 {
    let sum: f64 = pos
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let d = f64::from(u8::from(y)) - p;
            d * d
        })
        .sum();
    sum / probs.len() as f64
}

/// Binary log loss (mean cross-entropy) for labels in `{0, 1}` and
/// probabilities of class 1, clipping to `[1e-15, 1 - 1e-15]`
/// ([`LOG_LOSS_EPS`]) like scikit-learn.
///
/// # Errors
///
/// `LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`,
/// `ProbabilityOutOfRange`.
pub fn log_loss_binary(y_true: &[usize], probs: &[f64]) -> Result<f64, MetricsError> {
    check_lengths(y_true.len(), probs.len())?;
    let pos = binary_labels(y_true)?;
    check_probabilities(probs)?;
    Ok(log_loss_unchecked(&pos, probs))
}

fn log_loss_unchecked(pos: &[bool], probs: &[f64]) -> f64 {
    let sum: f64 = pos
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let q = if y { p } else { 1.0 - p };
            -q.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
        })
        .sum();
    sum / probs.len() as f64
}

/// Full binary report. `y_true` holds labels in `{0, 1}`; `scores` the
/// predicted probability of class 1 (must lie in `[0, 1]`, since Brier score and
/// log loss are computed); a sample is predicted positive when
/// `score >= threshold`.
///
/// # Errors
///
/// * `LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`,
///   `ProbabilityOutOfRange` for bad input;
/// * `InvalidThreshold` for a NaN or infinite threshold;
/// * `SingleClass` when `y_true` holds one class only (AUC is undefined).
pub fn binary_report(
    y_true: &[usize],
    scores: &[f64],
    threshold: f64,
) -> Result<BinaryReport, MetricsError> {
    check_lengths(y_true.len(), scores.len())?;
    let pos = binary_labels(y_true)?;
    check_probabilities(scores)?;
    if !threshold.is_finite() {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    let curve = crate::curve::ClfCurve::new(&pos, scores);
    let auc = curve.auc().ok_or_else(|| single_class(&curve))?;
    let average_precision = curve
        .average_precision()
        .ok_or_else(|| single_class(&curve))?;

    let c = confusion_counts(&pos, scores, threshold);
    let n = y_true.len();
    let positives = (c.tp + c.fn_) as usize;
    let sensitivity = ratio(c.tp, c.tp + c.fn_);
    let specificity = ratio(c.tn, c.tn + c.fp);
    Ok(BinaryReport {
        n,
        positives,
        negatives: n - positives,
        threshold,
        auc,
        average_precision,
        accuracy: ratio(c.tp + c.tn, n as u64),
        balanced_accuracy: (specificity + sensitivity) / 2.0,
        sensitivity,
        specificity,
        ppv: ratio(c.tp, c.tp + c.fp),
        npv: ratio(c.tn, c.tn + c.fn_),
        f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn_),
        mcc: mcc(&c),
        brier: brier_unchecked(&pos, scores),
        log_loss: log_loss_unchecked(&pos, scores),
        confusion: c,
    })
}

/// The threshold maximising Youden's J = sensitivity + specificity - 1.
///
/// Candidates are the distinct scores (predict positive when
/// `score >= threshold`); J is compared exactly in integers, and on ties the
/// highest threshold wins. The lowest score always reaches J = 0, so the result
/// is always one of the given scores (never infinite).
///
/// # Errors
///
/// `SingleClass` when `y_true` holds one class only, and the input errors
/// (`LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`).
pub fn youden_threshold(y_true: &[usize], scores: &[f64]) -> Result<f64, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    let (p, n) = (i128::from(curve.positives()), i128::from(curve.negatives()));
    if p == 0 || n == 0 {
        return Err(single_class(&curve));
    }
    // J * p * n = tp * n - fp * p; thresholds are visited in decreasing order,
    // so a strict comparison keeps the highest threshold on ties.
    let mut best: Option<(i128, f64)> = None;
    for ((&fp, &tp), &t) in curve.fps.iter().zip(&curve.tps).zip(&curve.thresholds) {
        let j = i128::from(tp) * n - i128::from(fp) * p;
        if best.is_none_or(|(best_j, _)| j > best_j) {
            best = Some((j, t));
        }
    }
    best.map(|(_, t)| t).ok_or(MetricsError::Empty)
}
