//! Threshold-free binary metrics: ROC curve, ROC AUC and average precision.

use crate::{MetricsError, binary_labels, check_finite, check_lengths};

/// A ROC curve as `(fpr, tpr, thresholds)`, the tuple scikit-learn's
/// `roc_curve` returns.
pub type RocCurve = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Cumulative counts at each distinct score, scores in decreasing order
/// (scikit-learn's `_binary_clf_curve`): entry `i` holds the numbers of false
/// and true positives when predicting positive for `score >= thresholds[i]`.
#[derive(Debug)]
pub(crate) struct ClfCurve {
    /// Cumulative false positives.
    pub fps: Vec<u64>,
    /// Cumulative true positives.
    pub tps: Vec<u64>,
    /// Distinct scores, decreasing.
    pub thresholds: Vec<f64>,
}

impl ClfCurve {
    /// Builds the curve. `pos` and `scores` must have equal length and the
    /// scores must be finite (callers validate).
    pub(crate) fn new(pos: &[bool], scores: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut curve = ClfCurve {
            fps: Vec::new(),
            tps: Vec::new(),
            thresholds: Vec::new(),
        };
        let (mut tp, mut fp) = (0u64, 0u64);
        for (rank, &i) in order.iter().enumerate() {
            if pos[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            // IEEE equality (not total order) so that -0.0 and 0.0 form one group.
            let group_ends = order
                .get(rank + 1)
                .is_none_or(|&next| scores[next] != scores[i]);
            if group_ends {
                curve.fps.push(fp);
                curve.tps.push(tp);
                curve.thresholds.push(scores[i]);
            }
        }
        curve
    }

    /// Total positives.
    pub(crate) fn positives(&self) -> u64 {
        self.tps.last().copied().unwrap_or(0)
    }

    /// Total negatives.
    pub(crate) fn negatives(&self) -> u64 {
        self.fps.last().copied().unwrap_or(0)
    }

    /// ROC AUC with half credit for ties (trapezoidal rule over one point per
    /// distinct score), computed exactly in integers. `None` when one class is
    /// missing.
    pub(crate) fn auc(&self) -> Option<f64> {
        let (p, n) = (self.positives(), self.negatives());
        if p == 0 || n == 0 {
            return None;
        }
        let (mut prev_fp, mut prev_tp) = (0u128, 0u128);
        let mut twice_area = 0u128;
        for (&fp, &tp) in self.fps.iter().zip(&self.tps) {
            let (fp, tp) = (u128::from(fp), u128::from(tp));
            twice_area += (fp - prev_fp) * (tp + prev_tp);
            prev_fp = fp;
            prev_tp = tp;
        }
        let denom = 2 * u128::from(p) * u128::from(n);
        Some(twice_area as f64 / denom as f64)
    }

    /// Average precision (step-wise area under the precision-recall curve).
    /// `None` when there are no positives.
    pub(crate) fn average_precision(&self) -> Option<f64> {
        let p = self.positives();
        if p == 0 {
            return None;
        }
        let mut prev_tp = 0u64;
        let mut ap = 0.0;
        for (&fp, &tp) in self.fps.iter().zip(&self.tps) {
            if tp > prev_tp {
                let recall_step = (tp - prev_tp) as f64 / p as f64;
                let precision = tp as f64 / (tp + fp) as f64;
                ap += recall_step * precision;
            }
            prev_tp = tp;
        }
        Some(ap)
    }
}

/// Validates binary input and builds its curve.
pub(crate) fn binary_curve(y_true: &[usize], scores: &[f64]) -> Result<ClfCurve, MetricsError> {
    check_lengths(y_true.len(), scores.len())?;
    let pos = binary_labels(y_true)?;
    check_finite(scores)?;
    Ok(ClfCurve::new(&pos, scores))
}

/// The error for a curve lacking one class.
pub(crate) fn single_class(curve: &ClfCurve) -> MetricsError {
    MetricsError::SingleClass {
        present: usize::from(curve.positives() > 0),
    }
}

/// ROC AUC of `scores` for the positive class `1`, equal to scikit-learn's
/// `roc_auc_score(y_true, scores)`.
///
/// Tied scores give half credit to each tied (positive, negative) pair, so the
/// result is the Mann-Whitney U statistic divided by `positives * negatives`.
/// Scores may be any finite reals (they need not be probabilities).
///
/// # Errors
///
/// [`MetricsError::SingleClass`] when `y_true` holds only one class, and the
/// input errors (`LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`).
pub fn roc_auc(y_true: &[usize], scores: &[f64]) -> Result<f64, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    curve.auc().ok_or_else(|| single_class(&curve))
}

/// ROC curve `(fpr, tpr, thresholds)` like scikit-learn's
/// `roc_curve(y_true, scores, drop_intermediate=False)`.
///
/// Thresholds are the distinct scores in decreasing order, preceded by
/// `f64::INFINITY` (the point `(0, 0)`); point `i` is the false and true
/// positive rate when predicting positive for `score >= thresholds[i]`.
///
/// # Errors
///
/// [`MetricsError::SingleClass`] when `y_true` holds only one class (a rate
/// would divide by zero), and the input errors (`LengthMismatch`, `Empty`,
/// `InvalidLabel`, `NonFinite`).
pub fn roc_curve(y_true: &[usize], scores: &[f64]) -> Result<RocCurve, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    let (p, n) = (curve.positives(), curve.negatives());
    if p == 0 || n == 0 {
        return Err(single_class(&curve));
    }
    let fpr = std::iter::once(0.0)
        .chain(curve.fps.iter().map(|&fp| fp as f64 / n as f64))
        .collect();
    let tpr = std::iter::once(0.0)
        .chain(curve.tps.iter().map(|&tp| tp as f64 / p as f64))
        .collect();
    let thresholds = std::iter::once(f64::INFINITY)
        .chain(curve.thresholds.iter().copied())
        .collect();
    Ok((fpr, tpr, thresholds))
}

/// Average precision, equal to scikit-learn's
/// `average_precision_score(y_true, scores)`:
/// `sum_i (R_i - R_{i-1}) * P_i` over the distinct scores in decreasing order
/// (no interpolation).
///
/// Samples of only the positive class give `1.0`.
///
/// # Errors
///
/// [`MetricsError::SingleClass`] when `y_true` has no positive sample (recall
/// is undefined), and the input errors (`LengthMismatch`, `Empty`,
/// `InvalidLabel`, `NonFinite`).
pub fn average_precision(y_true: &[usize], scores: &[f64]) -> Result<f64, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    curve
        .average_precision()
        .ok_or(MetricsError::SingleClass { present: 0 })
}
