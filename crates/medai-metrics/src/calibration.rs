//! Calibration: reliability diagrams, expected / maximum calibration error,
//! and temperature scaling.

use serde::{Deserialize, Serialize};

use crate::binary::check_probabilities;
use crate::multiclass::{argmax, validate};
use crate::{MetricsError, binary_labels, check_lengths};

/// Smallest temperature [`fit_temperature`] considers.
pub const TEMPERATURE_MIN: f64 = 0.05;
/// Largest temperature [`fit_temperature`] considers.
pub const TEMPERATURE_MAX: f64 = 20.0;

/// Probabilities are clamped to at least this value before their logarithm is
/// taken in temperature scaling.
const LN_FLOOR: f64 = 1e-300;

/// One bin of a reliability diagram.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReliabilityBin {
    /// Lower edge of the bin.
    pub lower: f64,
    /// Upper edge of the bin.
    pub upper: f64,
    /// Number of samples in the bin.
    pub count: usize,
    /// Mean predicted probability of the bin's samples (`0.0` when empty).
    pub mean_predicted: f64,
    /// Fraction of the bin's samples that are positive (`0.0` when empty).
    pub fraction_positive: f64,
}

/// Result of [`fit_temperature`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TemperatureFit {
    /// The fitted temperature `t` in
    /// `[TEMPERATURE_MIN, TEMPERATURE_MAX]`.
    pub temperature: f64,
    /// Mean negative log-likelihood of the input probabilities (`t = 1`).
    pub nll_before: f64,
    /// Mean negative log-likelihood after scaling with `temperature`.
    pub nll_after: f64,
}

/// Bin edges `linspace(0, 1, n_bins + 1)`, computed like numpy (`i * step`,
/// last edge exactly 1).
fn bin_edges(n_bins: usize) -> Vec<f64> {
    let step = 1.0 / n_bins as f64;
    let mut edges: Vec<f64> = (0..n_bins).map(|i| i as f64 * step).collect();
    edges.push(1.0);
    edges
}

/// Reliability bins of validated input: `correct[i]` is the binary outcome of
/// sample `i`, `probs[i]` its predicted probability in `[0, 1]`.
fn bins_unchecked(correct: &[bool], probs: &[f64], n_bins: usize) -> Vec<ReliabilityBin> {
    let edges = bin_edges(n_bins);
    let interior = &edges[1..n_bins];
    let mut sums = vec![0.0; n_bins];
    let mut trues = vec![0u64; n_bins];
    let mut counts = vec![0u64; n_bins];
    for (&c, &p) in correct.iter().zip(probs) {
        // numpy.searchsorted(interior, p, side="left"): the number of interior
        // edges strictly below p.
        let b = interior.partition_point(|&e| e < p);
        sums[b] += p;
        trues[b] += u64::from(c);
        counts[b] += 1;
    }
    (0..n_bins)
        .map(|b| {
            let count = counts[b];
            let (mean_predicted, fraction_positive) = if count == 0 {
                (0.0, 0.0)
            } else {
                (sums[b] / count as f64, trues[b] as f64 / count as f64)
            };
            ReliabilityBin {
                lower: edges[b],
                upper: edges[b + 1],
                count: count as usize,
                mean_predicted,
                fraction_positive,
            }
        })
        .collect()
}

fn check_bins(n_bins: usize) -> Result<(), MetricsError> {
    if n_bins == 0 {
        Err(MetricsError::InvalidBins(n_bins))
    } else {
        Ok(())
    }
}

/// Validates binary calibration input and returns the labels as booleans.
fn binary_input(y_true: &[usize], probs: &[f64], n_bins: usize) -> Result<Vec<bool>, MetricsError> {
    check_lengths(y_true.len(), probs.len())?;
    let pos = binary_labels(y_true)?;
    check_probabilities(probs)?;
    check_bins(n_bins)?;
    Ok(pos)
}

/// Reliability diagram with `n_bins` equal-width bins on `[0, 1]`, binned
/// exactly like scikit-learn's `calibration_curve(strategy="uniform")`:
/// edges `linspace(0, 1, n_bins + 1)` and bin
/// `searchsorted(edges[1:-1], p, side="left")`, so a probability equal to an
/// interior edge falls in the bin *below* it, and `p = 1` in the last bin.
///
/// Every bin is returned, empty ones included (with `count = 0` and both
/// means `0.0`); the non-empty bins' `fraction_positive` and `mean_predicted`
/// are scikit-learn's `prob_true` and `prob_pred`.
///
/// # Errors
///
/// `LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`,
/// `ProbabilityOutOfRange`, and `InvalidBins` when `n_bins = 0`.
pub fn reliability_bins(
    y_true: &[usize],
    probs: &[f64],
    n_bins: usize,
) -> Result<Vec<ReliabilityBin>, MetricsError> {
    let pos = binary_input(y_true, probs, n_bins)?;
    Ok(bins_unchecked(&pos, probs, n_bins))
}

fn ece_of_bins(bins: &[ReliabilityBin], n: usize) -> f64 {
    bins.iter()
        .map(|b| (b.count as f64 / n as f64) * (b.fraction_positive - b.mean_predicted).abs())
        .sum()
}

fn mce_of_bins(bins: &[ReliabilityBin]) -> f64 {
    bins.iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.fraction_positive - b.mean_predicted).abs())
        .fold(0.0, f64::max)
}

/// Expected calibration error over the bins of [`reliability_bins`]:
/// `sum_b (count_b / n) * |fraction_positive_b - mean_predicted_b|`.
///
/// # Errors
///
/// The errors of [`reliability_bins`].
pub fn expected_calibration_error(
    y_true: &[usize],
    probs: &[f64],
    n_bins: usize,
) -> Result<f64, MetricsError> {
    let pos = binary_input(y_true, probs, n_bins)?;
    Ok(ece_of_bins(
        &bins_unchecked(&pos, probs, n_bins),
        probs.len(),
    ))
}

/// Maximum calibration error: the largest
/// `|fraction_positive_b - mean_predicted_b|` over the non-empty bins of
/// [`reliability_bins`].
///
/// # Errors
///
/// The errors of [`reliability_bins`].
pub fn max_calibration_error(
    y_true: &[usize],
    probs: &[f64],
    n_bins: usize,
) -> Result<f64, MetricsError> {
    let pos = binary_input(y_true, probs, n_bins)?;
    Ok(mce_of_bins(&bins_unchecked(&pos, probs, n_bins)))
}

/// Top-label (confidence) expected calibration error of multiclass
/// probabilities: each sample's confidence is its largest probability and it
/// counts as correct when the argmax (the first maximum on ties) equals its
/// label; the ECE of (correct, confidence) is then computed with the bins of
/// [`reliability_bins`].
///
/// # Errors
///
/// The input errors of [`multiclass_report`](crate::multiclass_report)
/// (`LengthMismatch`, `Empty`, `InvalidLabel`, `TooFewClasses`, `RaggedRow`,
/// `NonFinite`, `ProbabilityOutOfRange`, `RowSumNotOne`) and `InvalidBins`.
pub fn top_label_ece(
    y_true: &[usize],
    probs: &[Vec<f64>],
    n_bins: usize,
) -> Result<f64, MetricsError> {
    validate(y_true, probs)?;
    check_bins(n_bins)?;
    let mut correct = Vec::with_capacity(probs.len());
    let mut confidence = Vec::with_capacity(probs.len());
    for (&y, row) in y_true.iter().zip(probs) {
        let best = argmax(row);
        correct.push(best == y);
        confidence.push(row[best]);
    }
    Ok(ece_of_bins(
        &bins_unchecked(&correct, &confidence, n_bins),
        probs.len(),
    ))
}

/// Natural logarithms of a probability row, clamped to `[1e-300, f64::MAX]`
/// first (NaN counts as the floor), so every entry is finite.
fn log_row(row: &[f64]) -> Vec<f64> {
    row.iter()
        .map(|&p| {
            let p = if p.is_nan() { LN_FLOOR } else { p };
            p.clamp(LN_FLOOR, f64::MAX).ln()
        })
        .collect()
}

/// Temperature scaling of one probability row: treats `ln p` (with `p`
/// clamped to at least `1e-300`) as logits and returns `softmax(ln p / t)`,
/// computed stably (the maximum logit is subtracted first).
///
/// * `t = 1` returns the (clamped) input renormalised to sum to 1, computed as
///   `p / sum(p)`;
/// * `t > 1` flattens the distribution (`t = +inf` gives the uniform
///   distribution), `t < 1` sharpens it;
/// * `t <= 0` or NaN is treated as the limit `t -> 0+`: all mass on the
///   maximal entries, shared equally on ties. No entry is ever NaN.
///
/// An empty row gives an empty vector.
///
/// ```
/// use medai_metrics::apply_temperature;
///
/// let sharp = apply_temperature(&[0.2, 0.8], 0.5);
/// assert!((sharp[1] - 0.64 / 0.68).abs() < 1e-12);
/// assert_eq!(apply_temperature(&[0.25, 0.25], 3.0), vec![0.5, 0.5]);
/// ```
pub fn apply_temperature(probs_row: &[f64], t: f64) -> Vec<f64> {
    if probs_row.is_empty() {
        return Vec::new();
    }
    if t == 1.0 {
        let clamped: Vec<f64> = probs_row
            .iter()
            .map(|&p| {
                let p = if p.is_nan() { LN_FLOOR } else { p };
                p.clamp(LN_FLOOR, f64::MAX)
            })
            .collect();
        let sum: f64 = clamped.iter().sum();
        if sum.is_finite() {
            return clamped.iter().map(|&p| p / sum).collect();
        }
        // Overflowing sum: fall through to the log-domain computation.
    }
    let logits = log_row(probs_row);
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = if t > 0.0 {
        logits.iter().map(|&l| ((l - max) / t).exp()).collect()
    } else {
        logits
            .iter()
            .map(|&l| if l == max { 1.0 } else { 0.0 })
            .collect()
    };
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|&w| w / sum).collect()
}

/// Mean negative log-likelihood of `softmax(logits / t)` at the labels.
fn mean_nll(y_true: &[usize], logits: &[Vec<f64>], t: f64) -> f64 {
    let total: f64 = y_true
        .iter()
        .zip(logits)
        .map(|(&y, row)| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse: f64 = row.iter().map(|&l| ((l - max) / t).exp()).sum::<f64>().ln();
            lse - (row[y] - max) / t
        })
        .sum();
    total / y_true.len() as f64
}

/// Fits the temperature `t` in `[TEMPERATURE_MIN, TEMPERATURE_MAX]` =
/// `[0.05, 20]` that minimises the mean negative log-likelihood of
/// [`apply_temperature`]`(row, t)` at the labels.
///
/// The search runs a golden-section search on `ln t` down to an interval of
/// width `1e-11` (the NLL is convex in `1 / t`, hence unimodal in `ln t`).
/// Here the NLL is `-ln softmax(ln p / t)[y]` with `p` clamped to at least
/// `1e-300`, so `nll_before` differs from
/// [`log_loss_multiclass`](crate::log_loss_multiclass) (which clips at
/// `1e-15`) only for probabilities below `1e-15`. Perfectly separated data
/// drive `t` to the lower bound.
///
/// # Errors
///
/// The input errors of [`multiclass_report`](crate::multiclass_report):
/// `LengthMismatch`, `Empty`, `InvalidLabel`, `TooFewClasses`, `RaggedRow`,
/// `NonFinite`, `ProbabilityOutOfRange`, `RowSumNotOne`.
pub fn fit_temperature(
    y_true: &[usize],
    probs: &[Vec<f64>],
) -> Result<TemperatureFit, MetricsError> {
    validate(y_true, probs)?;
    let logits: Vec<Vec<f64>> = probs.iter().map(|row| log_row(row)).collect();
    let f = |u: f64| mean_nll(y_true, &logits, u.exp());

    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (TEMPERATURE_MIN.ln(), TEMPERATURE_MAX.ln());
    let mut c = b - inv_phi * (b - a);
    let mut d = a + inv_phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > 1e-11 {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - inv_phi * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + inv_phi * (b - a);
            fd = f(d);
        }
    }
    let u = if fc <= fd { c } else { d };
    let temperature = u.exp().clamp(TEMPERATURE_MIN, TEMPERATURE_MAX);
    Ok(TemperatureFit {
        temperature,
        nll_before: mean_nll(y_true, &logits, 1.0),
        nll_after: mean_nll(y_true, &logits, temperature),
    })
}
