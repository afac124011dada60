//! Multilabel classification report (several independent binary labels per
//! sample, for example findings on a chest X-ray).

use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::curve::ClfCurve;

/// Per-label figures of a [`MultilabelReport`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LabelReport {
    /// Label name.
    pub label: String,
    /// Number of samples for which this label is positive.
    pub support: usize,
    /// ROC AUC of this label's column; `None` when the column holds one class
    /// only.
    pub auc: Option<f64>,
    /// Average precision of this label's column; `None` when the column holds
    /// one class only.
    pub average_precision: Option<f64>,
}

/// Multilabel evaluation; a label is predicted present when
/// `prob >= threshold`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MultilabelReport {
    /// Number of samples.
    pub n: usize,
    /// Decision threshold applied to every label.
    pub threshold: f64,
    /// Per-label figures, in column order.
    pub per_label: Vec<LabelReport>,
    /// Mean of the per-label AUCs over the labels whose column holds both
    /// classes. Equal to scikit-learn's `roc_auc_score(Y, P, average="macro")`
    /// when every column holds both classes (scikit-learn raises otherwise;
    /// here the undefined labels are skipped).
    pub auc_macro: f64,
    /// AUC of all `n * L` (label, probability) pairs pooled, equal to
    /// scikit-learn's `roc_auc_score(Y, P, average="micro")`.
    pub auc_micro: f64,
    /// Fraction of samples whose whole predicted label set is exactly right
    /// (scikit-learn's `accuracy_score` on multilabel input).
    pub subset_accuracy: f64,
    /// Fraction of wrong (sample, label) predictions (scikit-learn's
    /// `hamming_loss`).
    pub hamming_loss: f64,
}

/// Validates multilabel input.
fn validate(
    y: &[Vec<u8>],
    probs: &[Vec<f64>],
    labels: &[String],
    threshold: f64,
) -> Result<(), MetricsError> {
    crate::check_lengths(y.len(), probs.len())?;
    let k = labels.len();
    if k == 0 {
        return Err(MetricsError::NoLabelWithBothClasses);
    }
    for (row, (yr, pr)) in y.iter().zip(probs).enumerate() {
        for got in [yr.len(), pr.len()] {
            if got != k {
                return Err(MetricsError::RaggedRow {
                    row,
                    expected: k,
                    got,
                });
            }
        }
        if let Some(&v) = yr.iter().find(|&&v| v > 1) {
            return Err(MetricsError::InvalidLabel {
                index: row,
                label: usize::from(v),
                n_classes: 2,
            });
        }
        if let Some(&value) = pr.iter().find(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite { index: row, value });
        }
        if let Some(&value) = pr.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(MetricsError::ProbabilityOutOfRange { index: row, value });
        }
    }
    if !threshold.is_finite() {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    Ok(())
}

/// Multilabel report. `y[i][j]` is `1` when label `j` is present in sample
/// `i` (else `0`); `probs[i][j]` its predicted probability in `[0, 1]`;
/// `labels` names the `L` columns. A label is predicted present when
/// `prob >= threshold`.
///
/// Labels whose column holds one class only get `auc = None` and
/// `average_precision = None` and are left out of `auc_macro`.
///
/// # Errors
///
/// * `LengthMismatch`, `Empty`; `RaggedRow` when a row of `y` or `probs` does
///   not have `labels.len()` entries; `InvalidLabel` (index = row) for a
///   value of `y` other than 0 or 1; `NonFinite` and `ProbabilityOutOfRange`
///   (index = row); `InvalidThreshold`;
/// * `NoLabelWithBothClasses` when no column holds both classes (or `labels`
///   is empty): the macro AUC is then undefined.
pub fn multilabel_report(
    y: &[Vec<u8>],
    probs: &[Vec<f64>],
    labels: &[String],
    threshold: f64,
) -> Result<MultilabelReport, MetricsError> {
    validate(y, probs, labels, threshold)?;
    let n = y.len();
    let k = labels.len();

    let mut per_label = Vec::with_capacity(k);
    for (j, name) in labels.iter().enumerate() {
        let pos: Vec<bool> = y.iter().map(|r| r[j] == 1).collect();
        let scores: Vec<f64> = probs.iter().map(|r| r[j]).collect();
        let curve = ClfCurve::new(&pos, &scores);
        let auc = curve.auc();
        per_label.push(LabelReport {
            label: name.clone(),
            support: pos.iter().filter(|&&p| p).count(),
            auc,
            average_precision: auc.and_then(|_| curve.average_precision()),
        });
    }
    let defined: Vec<f64> = per_label.iter().filter_map(|r| r.auc).collect();
    if defined.is_empty() {
        return Err(MetricsError::NoLabelWithBothClasses);
    }
    let auc_macro = defined.iter().sum::<f64>() / defined.len() as f64;

    let pos: Vec<bool> = y.iter().flatten().map(|&v| v == 1).collect();
    let scores: Vec<f64> = probs.iter().flatten().copied().collect();
    let auc_micro = ClfCurve::new(&pos, &scores)
        .auc()
        .ok_or(MetricsError::NoLabelWithBothClasses)?;

    let mut exact_rows = 0u64;
    let mut wrong = 0u64;
    for (yr, pr) in y.iter().zip(probs) {
        let errors = yr
            .iter()
            .zip(pr)
            .filter(|&(&t, &p)| (t == 1) != (p >= threshold))
            .count() as u64;
        wrong += errors;
        exact_rows += u64::from(errors == 0);
    }
    Ok(MultilabelReport {
        n,
        threshold,
        per_label,
        auc_macro,
        auc_micro,
        subset_accuracy: crate::ratio(exact_rows, n as u64),
        hamming_loss: crate::ratio(wrong, (n * k) as u64),
    })
}
