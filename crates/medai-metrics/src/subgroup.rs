//! Subgroup (fairness) analysis: per-group AUC, sensitivity and specificity
//! with confidence intervals, flagged when they disagree with the whole
//! population.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ci::{ConfidenceInterval, auc_delong, check_level, wilson_interval};
use crate::{MetricsError, binary_labels, check_finite, check_lengths};

/// Results for one group of one attribute (for example attribute `"sex"`,
/// group `"F"`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SubgroupResult {
    /// The attribute the groups partition (for example `"site"`).
    pub attribute: String,
    /// The group's value of the attribute.
    pub group: String,
    /// Number of samples in the group.
    pub n: usize,
    /// Number of positive samples in the group.
    pub positives: usize,
    /// DeLong AUC interval; `None` unless the group has at least two positives
    /// and two negatives.
    pub auc: Option<ConfidenceInterval>,
    /// Wilson interval of the sensitivity at the threshold; `None` when the
    /// group has no positive sample.
    pub sensitivity: Option<ConfidenceInterval>,
    /// Wilson interval of the specificity at the threshold; `None` when the
    /// group has no negative sample.
    pub specificity: Option<ConfidenceInterval>,
    /// Whether any of the group's intervals is disjoint from the
    /// corresponding interval on all samples.
    pub flagged: bool,
    /// One sentence per disjoint interval, for example
    /// `"AUC 0.81 [0.74, 0.88] below overall 0.95 [0.93, 0.97]"`.
    pub flag_reasons: Vec<String>,
}

/// AUC (DeLong, when defined) and Wilson sensitivity / specificity of a set of
/// validated samples.
type Intervals = (
    Option<ConfidenceInterval>,
    Option<ConfidenceInterval>,
    Option<ConfidenceInterval>,
);

fn intervals(
    y: &[usize],
    scores: &[f64],
    threshold: f64,
    level: f64,
) -> Result<Intervals, MetricsError> {
    let (mut tp, mut p, mut tn, mut n) = (0u64, 0u64, 0u64, 0u64);
    for (&label, &s) in y.iter().zip(scores) {
        if label == 1 {
            p += 1;
            tp += u64::from(s >= threshold);
        } else {
            n += 1;
            tn += u64::from(s < threshold);
        }
    }
    // Input is validated, so DeLong only fails for too few samples per class.
    let auc = auc_delong(y, scores, level).ok().map(|d| d.ci);
    let sens = if p > 0 {
        Some(wilson_interval(tp, p, level)?)
    } else {
        None
    };
    let spec = if n > 0 {
        Some(wilson_interval(tn, n, level)?)
    } else {
        None
    };
    Ok((auc, sens, spec))
}

fn describe(ci: &ConfidenceInterval) -> String {
    format!("{:.2} [{:.2}, {:.2}]", ci.estimate, ci.low, ci.high)
}

/// Per-group evaluation of a binary classifier over the groups of one
/// attribute, with flags for groups that differ from the whole population.
///
/// `groups[i]` is sample `i`'s group; the results are sorted by group name.
/// For every group and for all samples together it computes the DeLong AUC
/// interval (when there are at least two positives and two negatives) and
/// Wilson intervals of sensitivity and specificity at `threshold` (predict
/// positive when `score >= threshold`), all at `level`. A group is flagged
/// when one of its intervals does not overlap the corresponding overall
/// interval; each such interval adds a reason like
/// `"sensitivity 0.50 [0.30, 0.70] below overall 0.90 [0.85, 0.94]"`
/// (`"above"` when the group is better).
///
/// # Errors
///
/// * `LengthMismatch` when `scores` or `groups` differ in length from
///   `y_true`; `Empty`, `InvalidLabel`, `NonFinite`, `InvalidThreshold`,
///   `InvalidLevel`;
/// * `SingleClass` when `y_true` holds one class only (the overall
///   sensitivity or specificity is undefined).
pub fn subgroup_binary(
    attribute: &str,
    y_true: &[usize],
    scores: &[f64],
    groups: &[String],
    threshold: f64,
    level: f64,
) -> Result<Vec<SubgroupResult>, MetricsError> {
    check_lengths(y_true.len(), scores.len())?;
    check_lengths(y_true.len(), groups.len())?;
    let pos = binary_labels(y_true)?;
    check_finite(scores)?;
    if !threshold.is_finite() {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    check_level(level)?;
    let positives = pos.iter().filter(|&&p| p).count();
    if positives == 0 || positives == pos.len() {
        return Err(MetricsError::SingleClass {
            present: usize::from(positives > 0),
        });
    }

    let overall = intervals(y_true, scores, threshold, level)?;
    let overall = [overall.0, overall.1, overall.2];

    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g.as_str()).or_default().push(i);
    }

    let mut results = Vec::with_capacity(members.len());
    for (group, idx) in members {
        let y: Vec<usize> = idx.iter().map(|&i| y_true[i]).collect();
        let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        let (auc, sensitivity, specificity) = intervals(&y, &s, threshold, level)?;
        let mut flag_reasons = Vec::new();
        let mine = [&auc, &sensitivity, &specificity];
        for ((name, sub), all) in ["AUC", "sensitivity", "specificity"]
            .iter()
            .zip(mine)
            .zip(&overall)
        {
            if let (Some(sub), Some(all)) = (sub, all)
                && !sub.overlaps(all)
            {
                let side = if sub.high < all.low { "below" } else { "above" };
                flag_reasons.push(format!(
                    "{name} {} {side} overall {}",
                    describe(sub),
                    describe(all)
                ));
            }
        }
        results.push(SubgroupResult {
            attribute: attribute.to_string(),
            group: group.to_string(),
            n: y.len(),
            positives: y.iter().filter(|&&l| l == 1).count(),
            auc,
            sensitivity,
            specificity,
            flagged: !flag_reasons.is_empty(),
            flag_reasons,
        });
    }
    Ok(results)
}
