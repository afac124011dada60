//! Multiclass classification report.

use serde::{Deserialize, Serialize};

use crate::curve::ClfCurve;
use crate::{LOG_LOSS_EPS, MetricsError, check_lengths, ratio};

/// How far a probability row's sum may stray from 1 before it is rejected
/// with [`MetricsError::RowSumNotOne`]. Loose enough for `f32` softmax output.
pub const PROB_SUM_TOLERANCE: f64 = 1e-3;

/// Per-class figures of a [`MulticlassReport`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassReport {
    /// Class name.
    pub class: String,
    /// Number of samples whose true label is this class.
    pub support: usize,
    /// `tp / (tp + fp)` for this class; `0.0` when the class is never predicted.
    pub precision: f64,
    /// `tp / (tp + fn)` for this class; `0.0` when the class has no support.
    pub recall: f64,
    /// `2 tp / (2 tp + fp + fn)`; `0.0` when the denominator is zero.
    pub f1: f64,
    /// One-vs-rest ROC AUC of this class's probability column; `None` when the
    /// class is absent from `y_true` (or is the only class present).
    pub auc: Option<f64>,
}

/// Full multiclass evaluation; predictions are the argmax of each probability
/// row (the first maximum on ties).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MulticlassReport {
    /// Number of samples.
    pub n: usize,
    /// Fraction of samples whose argmax equals the label.
    pub accuracy: f64,
    /// Mean recall over the classes present in `y_true`.
    pub balanced_accuracy: f64,
    /// Unweighted mean of the per-class one-vs-rest AUCs, equal to
    /// scikit-learn's `roc_auc_score(y, P, multi_class="ovr", average="macro")`;
    /// `None` when a class has no sample in `y_true` (it is undefined there,
    /// and scikit-learn raises), e.g. a subset without a rare class.
    pub auc_macro_ovr: Option<f64>,
    /// Micro-averaged one-vs-rest AUC: the binary AUC of the flattened one-hot
    /// labels against the flattened probabilities (see
    /// [`roc_auc_ovr_micro`]).
    pub auc_micro_ovr: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    /// Support-weighted mean of the per-class F1 scores.
    pub weighted_f1: f64,
    /// Mean cross-entropy `-ln p[y]`, probabilities clipped to
    /// `[1e-15, 1 - 1e-15]`.
    pub log_loss: f64,
    /// Cohen's kappa of label vs argmax with quadratic weights on the class
    /// indices (scikit-learn's `cohen_kappa_score(..., weights="quadratic")`).
    pub quadratic_kappa: f64,
    /// Per-class figures, in class-index order.
    pub per_class: Vec<ClassReport>,
    /// Confusion matrix: rows = true class, columns = predicted class.
    pub confusion: Vec<Vec<u64>>,
}

/// Validates multiclass input; returns the number of classes `k`.
pub(crate) fn validate(y_true: &[usize], probs: &[Vec<f64>]) -> Result<usize, MetricsError> {
    check_lengths(y_true.len(), probs.len())?;
    let k = probs[0].len();
    if k < 2 {
        return Err(MetricsError::TooFewClasses(k));
    }
    for (row, p) in probs.iter().enumerate() {
        if p.len() != k {
            return Err(MetricsError::RaggedRow {
                row,
                expected: k,
                got: p.len(),
            });
        }
        if let Some(&value) = p.iter().find(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite { index: row, value });
        }
        if let Some(&value) = p.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(MetricsError::ProbabilityOutOfRange { index: row, value });
        }
        let sum: f64 = p.iter().sum();
        if (sum - 1.0).abs() > PROB_SUM_TOLERANCE {
            return Err(MetricsError::RowSumNotOne { row, sum });
        }
    }
    check_labels(y_true, k)?;
    Ok(k)
}

fn check_labels(labels: &[usize], k: usize) -> Result<(), MetricsError> {
    match labels.iter().position(|&y| y >= k) {
        Some(index) => Err(MetricsError::InvalidLabel {
            index,
            label: labels[index],
            n_classes: k,
        }),
        None => Ok(()),
    }
}

/// Index of the first maximum.
pub(crate) fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// One-vs-rest AUC of class `c` (validated input); `None` if undefined.
fn ovr_auc(y_true: &[usize], probs: &[Vec<f64>], c: usize) -> Option<f64> {
    let pos: Vec<bool> = y_true.iter().map(|&y| y == c).collect();
    let scores: Vec<f64> = probs.iter().map(|p| p[c]).collect();
    ClfCurve::new(&pos, &scores).auc()
}

fn confusion_matrix(y_true: &[usize], y_pred: &[usize], k: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; k]; k];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        m[t][p] += 1;
    }
    m
}

fn first_missing_class(y_true: &[usize], k: usize) -> Option<usize> {
    let mut seen = vec![false; k];
    for &y in y_true {
        seen[y] = true;
    }
    seen.iter().position(|&s| !s)
}

/// Quadratic-weighted kappa from a square confusion matrix (rows = truth).
fn kappa_from_confusion(m: &[Vec<u64>]) -> Result<f64, MetricsError> {
    let k = m.len();
    let rows: Vec<u128> = m
        .iter()
        .map(|r| r.iter().map(|&v| u128::from(v)).sum())
        .collect();
    let cols: Vec<u128> = (0..k)
        .map(|j| m.iter().map(|r| u128::from(r[j])).sum())
        .collect();
    let n: u128 = rows.iter().sum();
    let w = |i: usize, j: usize| (i.abs_diff(j) as u128).pow(2);
    let mut observed = 0u128;
    let mut expected_times_n = 0u128;
    for i in 0..k {
        for j in 0..k {
            observed += w(i, j) * u128::from(m[i][j]);
            expected_times_n += w(i, j) * rows[i] * cols[j];
        }
    }
    if expected_times_n == 0 {
        return Err(MetricsError::Undefined(
            "quadratic kappa: truth and prediction are one and the same single class",
        ));
    }
    Ok(1.0 - (observed as f64 * n as f64) / expected_times_n as f64)
}

/// Cohen's kappa with quadratic weights `(i - j)^2` on class indices
/// `0..n_classes`, equal to scikit-learn's
/// `cohen_kappa_score(y_true, y_pred, weights="quadratic", labels=range(n_classes))`
/// (and to the default `labels` whenever every class in between appears).
///
/// # Errors
///
/// `LengthMismatch`, `Empty`, `InvalidLabel`, `TooFewClasses`, and
/// `Undefined` when every label and prediction is the same class.
pub fn quadratic_weighted_kappa(
    y_true: &[usize],
    y_pred: &[usize],
    n_classes: usize,
) -> Result<f64, MetricsError> {
    check_lengths(y_true.len(), y_pred.len())?;
    if n_classes < 2 {
        return Err(MetricsError::TooFewClasses(n_classes));
    }
    check_labels(y_true, n_classes)?;
    check_labels(y_pred, n_classes)?;
    kappa_from_confusion(&confusion_matrix(y_true, y_pred, n_classes))
}

/// Macro one-vs-rest ROC AUC, equal to scikit-learn's
/// `roc_auc_score(y_true, probs, multi_class="ovr", average="macro")`.
///
/// # Errors
///
/// `MissingClass` when some class has no sample in `y_true`, and the input
/// errors of [`multiclass_report`].
pub fn roc_auc_ovr_macro(y_true: &[usize], probs: &[Vec<f64>]) -> Result<f64, MetricsError> {
    let k = validate(y_true, probs)?;
    if let Some(class) = first_missing_class(y_true, k) {
        return Err(MetricsError::MissingClass { class });
    }
    let mut sum = 0.0;
    for c in 0..k {
        sum += ovr_auc(y_true, probs, c).ok_or(MetricsError::MissingClass { class: c })?;
    }
    Ok(sum / k as f64)
}

/// Micro-averaged one-vs-rest ROC AUC: the binary AUC of all `n * k`
/// (one-hot label, probability) pairs pooled together. For `k >= 3` classes it
/// equals scikit-learn's
/// `roc_auc_score(label_binarize(y_true, classes=range(k)), probs, average="micro")`;
/// for `k = 2` it uses the two-column one-hot matrix (`label_binarize` would
/// give a single column).
///
/// Unlike the macro average it is defined even when a class is absent from
/// `y_true` (the pool always holds `n` positives and `n (k - 1)` negatives).
///
/// # Errors
///
/// The input errors of [`multiclass_report`] (`MissingClass` excepted).
pub fn roc_auc_ovr_micro(y_true: &[usize], probs: &[Vec<f64>]) -> Result<f64, MetricsError> {
    let k = validate(y_true, probs)?;
    micro_auc(y_true, probs, k)
}

/// Micro one-vs-rest AUC of validated input with `k` columns.
fn micro_auc(y_true: &[usize], probs: &[Vec<f64>], k: usize) -> Result<f64, MetricsError> {
    let mut pos = Vec::with_capacity(y_true.len() * k);
    let mut scores = Vec::with_capacity(y_true.len() * k);
    for (&y, row) in y_true.iter().zip(probs) {
        for (c, &p) in row.iter().enumerate() {
            pos.push(y == c);
            scores.push(p);
        }
    }
    ClfCurve::new(&pos, &scores)
        .auc()
        .ok_or(MetricsError::Undefined("micro AUC: one class only"))
}

/// Multiclass log loss `mean(-ln p[i][y_i])`, probabilities clipped to
/// `[1e-15, 1 - 1e-15]`.
///
/// # Errors
///
/// The input errors of [`multiclass_report`].
pub fn log_loss_multiclass(y_true: &[usize], probs: &[Vec<f64>]) -> Result<f64, MetricsError> {
    validate(y_true, probs)?;
    Ok(log_loss_unchecked(y_true, probs))
}

fn log_loss_unchecked(y_true: &[usize], probs: &[Vec<f64>]) -> f64 {
    let sum: f64 = y_true
        .iter()
        .zip(probs)
        .map(|(&y, p)| -p[y].clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln())
        .sum();
    sum / y_true.len() as f64
}

/// Full multiclass report.
///
/// `probs` holds `n` rows of `k >= 2` class probabilities (each in `[0, 1]`,
/// each row summing to 1 within [`PROB_SUM_TOLERANCE`]); `y_true` holds class
/// indices `0..k`; `class_names` has `k` names. The prediction is the argmax of
/// each row (first maximum on ties).
///
/// # Errors
///
/// * `LengthMismatch`, `Empty`, `InvalidLabel`, `TooFewClasses`, `RaggedRow`,
///   `NonFinite`, `ProbabilityOutOfRange`, `RowSumNotOne`,
///   `ClassNamesMismatch` for bad input.
///
/// A class with no sample in `y_true` is not an error: its recall, F1 and AUC
/// are 0, 0 and `None`, it counts in the macro F1 as scikit-learn's
/// `f1_score(average="macro", labels=range(k))` does, and
/// [`MulticlassReport::auc_macro_ovr`] is `None`.
pub fn multiclass_report(
    y_true: &[usize],
    probs: &[Vec<f64>],
    class_names: &[String],
) -> Result<MulticlassReport, MetricsError> {
    let k = validate(y_true, probs)?;
    if class_names.len() != k {
        return Err(MetricsError::ClassNamesMismatch {
            expected: k,
            got: class_names.len(),
        });
    }
    let n = y_true.len();
    let y_pred: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let confusion = confusion_matrix(y_true, &y_pred, k);

    let mut per_class = Vec::with_capacity(k);
    for (c, name) in class_names.iter().enumerate() {
        let tp = confusion[c][c];
        let support: u64 = confusion[c].iter().sum();
        let predicted: u64 = confusion.iter().map(|r| r[c]).sum();
        per_class.push(ClassReport {
            class: name.clone(),
            support: support as usize,
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1: ratio(2 * tp, support + predicted),
            auc: ovr_auc(y_true, probs, c),
        });
    }

    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let present: Vec<&ClassReport> = per_class.iter().filter(|r| r.support > 0).collect();
    let balanced_accuracy = present.iter().map(|r| r.recall).sum::<f64>() / present.len() as f64;
    let auc_macro_ovr = per_class
        .iter()
        .map(|r| r.auc)
        .sum::<Option<f64>>()
        .map(|s| s / k as f64);
    let macro_f1 = per_class.iter().map(|r| r.f1).sum::<f64>() / k as f64;
    let weighted_f1 = per_class
        .iter()
        .map(|r| r.f1 * r.support as f64)
        .sum::<f64>()
        / n as f64;

    Ok(MulticlassReport {
        n,
        accuracy: ratio(correct, n as u64),
        balanced_accuracy,
        auc_macro_ovr,
        auc_micro_ovr: micro_auc(y_true, probs, k)?,
        macro_f1,
        weighted_f1,
        log_loss: log_loss_unchecked(y_true, probs),
        quadratic_kappa: kappa_from_confusion(&confusion)?,
        per_class,
        confusion,
    })
}
