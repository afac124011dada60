//! The one evaluator: every task type that predicts class probabilities hands its labels and
//! probabilities here and gets the same [`Evaluation`] — metrics with confidence intervals,
//! operating points, calibration, subgroups, abstention and the hardest errors — which the JSON
//! output, the HTML report and the model card are all rendered from.
//!
//! Conventions:
//! - Binary tasks have two classes; the positive class is class 1 and its probability is the
//!   score.
//! - Probabilities given as `probs` are the ones the model serves (after temperature scaling when
//!   the bundle has it); `uncalibrated` (optional) are the raw ones, used only for the
//!   before/after calibration figures.
//! - Thresholds other than the default one (Youden, target sensitivity/specificity) are chosen on
//!   the validation split when it is given — so the test figures at them are honest — and on the
//!   evaluated split otherwise; [`OperatingPointEval::chosen_on`] says which.

use medai_metrics::{
    BinaryReport, ConfidenceInterval, MetricsError, MulticlassReport, OperatingPoint,
    ReliabilityBin, SubgroupResult,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How AUC confidence intervals are computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum CiMethod {
    /// DeLong's variance (binary AUC and per-class one-vs-rest AUCs).
    Delong,
    /// Stratified percentile bootstrap.
    Bootstrap {
        /// Number of resamples.
        resamples: usize,
        /// Seed of the resampling.
        seed: u64,
    },
}

/// When to refer a case to a human instead of answering.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Abstain {
    /// Binary: refer when `low <= p(positive) <= high`.
    Band {
        /// Lower edge of the band.
        low: f64,
        /// Upper edge of the band.
        high: f64,
    },
    /// Any task: refer when the top class probability is below this.
    MinConfidence {
        /// The confidence needed to answer.
        min: f64,
    },
}

impl Abstain {
    /// Parse `LOW,HIGH` (a band) or `MIN` (a minimum confidence).
    pub fn parse(s: &str) -> Result<Abstain, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| format!("--abstain {s:?}: expected LOW,HIGH or MIN in [0, 1]"))
        };
        match s.split_once(',') {
            Some((a, b)) => {
                let (low, high) = (num(a)?, num(b)?);
                if low > high {
                    return Err(format!("--abstain {s:?}: LOW must not exceed HIGH"));
                }
                Ok(Abstain::Band { low, high })
            }
            None => Ok(Abstain::MinConfidence { min: num(s)? }),
        }
    }

    /// Whether a case with these probabilities is referred.
    pub fn refers(&self, probs: &[f64]) -> bool {
        match *self {
            Abstain::Band { low, high } => {
                let p = probs.get(1).copied().unwrap_or(0.0);
                probs.len() == 2 && (low..=high).contains(&p)
            }
            Abstain::MinConfidence { min } => {
                probs.iter().copied().fold(f64::NEG_INFINITY, f64::max) < min
            }
        }
    }
}

/// Options of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Default decision threshold on p(positive) (binary).
    pub threshold: f64,
    /// Pick a threshold reaching this sensitivity (on validation) and report figures at it.
    pub target_sensitivity: Option<f64>,
    /// Pick a threshold reaching this specificity (on validation) and report figures at it.
    pub target_specificity: Option<f64>,
    /// AUC interval method.
    pub ci: CiMethod,
    /// Confidence level of every interval.
    pub level: f64,
    /// Bins of the reliability diagram and ECE.
    pub bins: usize,
    /// Abstention rule.
    pub abstain: Option<Abstain>,
    /// How many hardest false positives / negatives to list.
    pub hardest: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            threshold: 0.5,
            target_sensitivity: None,
            target_specificity: None,
            ci: CiMethod::Delong,
            level: 0.95,
            bins: 10,
            abstain: None,
            hardest: 6,
        }
    }
}

/// Labels and probabilities of one split.
#[derive(Clone, Copy, Debug)]
pub struct Scored<'a> {
    /// Class index per sample.
    pub labels: &'a [usize],
    /// Probability row per sample.
    pub probs: &'a [Vec<f64>],
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalInput<'a> {
    /// Class names.
    pub classes: &'a [String],
    /// Label mode: `binary`, `categorical` or `ordinal`.
    pub mode: &'a str,
    /// Name of the evaluated split.
    pub split: &'a str,
    /// The evaluated split (served probabilities).
    pub data: Scored<'a>,
    /// Raw probabilities of the same samples before calibration, if calibration is applied.
    pub uncalibrated: Option<&'a [Vec<f64>]>,
    /// The validation split, for choosing thresholds.
    pub val: Option<Scored<'a>>,
    /// The temperature applied to `data.probs` (1 when none).
    pub temperature: f64,
    /// Per-sample attributes (`(column, value)`) for subgroups; empty for none.
    pub attributes: &'a [Vec<(String, String)>],
}

/// A threshold, where it was chosen, and the figures at it with intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatingPointEval {
    /// Figures at the threshold.
    #[serde(flatten)]
    pub point: OperatingPoint,
    /// `default`, `val` or the evaluated split's name.
    pub chosen_on: String,
    /// Wilson interval of the sensitivity.
    pub sensitivity_ci: Option<ConfidenceInterval>,
    /// Wilson interval of the specificity.
    pub specificity_ci: Option<ConfidenceInterval>,
}

/// A misclassified case worth looking at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Sample index in the split.
    pub index: usize,
    /// True class.
    pub label: usize,
    /// Predicted class.
    pub predicted: usize,
    /// Probability of the predicted class.
    pub confidence: f64,
}

/// Calibration figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationEval {
    /// Temperature applied (1 = none).
    pub temperature: f64,
    /// Expected calibration error of the served probabilities (binary: of p(positive);
    /// multi-class: top-label).
    pub ece: f64,
    /// Maximum calibration error (binary only; top-label max bin gap for multi-class).
    pub mce: f64,
    /// ECE before temperature scaling, when calibration is applied.
    pub ece_uncalibrated: Option<f64>,
    /// Reliability bins of the served probabilities.
    pub bins: Vec<ReliabilityBin>,
    /// Reliability bins before calibration.
    pub bins_uncalibrated: Option<Vec<ReliabilityBin>>,
    /// What the bins describe: `p(positive)` or `top-label confidence`.
    pub describes: String,
}

/// Referral figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbstentionEval {
    /// The rule.
    pub rule: Abstain,
    /// Cases referred to a human.
    pub referred: usize,
    /// Fraction referred.
    pub referred_fraction: f64,
    /// Accuracy on the cases answered (at the default threshold for binary).
    pub accuracy_answered: f64,
    /// Accuracy on all cases, for comparison.
    pub accuracy_all: f64,
    /// Sensitivity on the cases answered (binary).
    pub sensitivity_answered: Option<f64>,
    /// Specificity on the cases answered (binary).
    pub specificity_answered: Option<f64>,
}

/// Binary figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinaryEval {
    /// Name of the positive class.
    pub positive_class: String,
    /// Report at the default threshold.
    pub report: BinaryReport,
    /// AUC interval; `[0, 1]` with method `none (reason)` when it cannot be computed (fewer than
    /// two cases of a class).
    pub auc_ci: ConfidenceInterval,
    /// Wilson interval of the accuracy at the default threshold.
    pub accuracy_ci: ConfidenceInterval,
    /// Operating points: `default`, `youden`, and the requested targets.
    pub operating_points: Vec<OperatingPointEval>,
    /// ROC curve points `(fpr, tpr)`.
    pub roc: Vec<(f64, f64)>,
    /// Precision-recall points `(recall, precision)`.
    pub pr: Vec<(f64, f64)>,
    /// Subgroup results, one list per attribute.
    pub subgroups: Vec<SubgroupResult>,
    /// Operating points that could not be chosen, and why.
    pub notes: Vec<String>,
    /// Attributes skipped for subgroups, with the reason.
    pub subgroups_skipped: Vec<String>,
}

/// Multi-class figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MulticlassEval {
    /// The report (argmax predictions).
    pub report: MulticlassReport,
    /// Interval of the macro one-vs-rest AUC (stratified bootstrap); `[0, 1]` with method
    /// `none (reason)` when it cannot be computed.
    pub auc_ci: ConfidenceInterval,
    /// Per-class one-vs-rest AUC intervals (DeLong), `None` for an absent class.
    pub per_class_auc_ci: Vec<Option<ConfidenceInterval>>,
    /// Per-class one-vs-rest ROC curves `(fpr, tpr)`.
    pub roc: Vec<Vec<(f64, f64)>>,
}

/// Everything measured on one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Split name.
    pub split: String,
    /// Label mode.
    pub mode: String,
    /// Class names.
    pub classes: Vec<String>,
    /// Samples per class.
    pub class_counts: Vec<usize>,
    /// The options used.
    pub options: EvalOptions,
    /// Binary figures (two classes).
    pub binary: Option<BinaryEval>,
    /// Multi-class figures (three or more classes).
    pub multiclass: Option<MulticlassEval>,
    /// Calibration.
    pub calibration: CalibrationEval,
    /// Referral, when an abstention rule is set.
    pub abstention: Option<AbstentionEval>,
    /// The most confident false positives (binary) or errors (multi-class).
    pub hardest_false_positives: Vec<Case>,
    /// The most confident false negatives (binary).
    pub hardest_false_negatives: Vec<Case>,
}

/// The interval `[0, 1]` — all an AUC interval can say when too few cases of a class exist for
/// DeLong's variance (fewer than 2) or for the bootstrap — with the reason as its method.
fn uninformative(estimate: f64, level: f64, why: &MetricsError) -> ConfidenceInterval {
    ConfidenceInterval {
        estimate,
        low: 0.0,
        high: 1.0,
        level,
        method: format!("none ({why})"),
    }
}

fn wilson(s: u64, n: u64, level: f64) -> Option<ConfidenceInterval> {
    medai_metrics::wilson_interval(s, n, level).ok()
}

fn op_eval(
    name: &str,
    labels: &[usize],
    scores: &[f64],
    threshold: f64,
    chosen_on: &str,
    level: f64,
) -> Result<OperatingPointEval, MetricsError> {
    let point = medai_metrics::operating_point(name, labels, scores, threshold)?;
    let c = &point.confusion;
    Ok(OperatingPointEval {
        sensitivity_ci: wilson(c.tp, c.tp + c.fn_, level),
        specificity_ci: wilson(c.tn, c.tn + c.fp, level),
        point,
        chosen_on: chosen_on.to_string(),
    })
}

fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best
}

/// Evaluate one split.
pub fn evaluate(input: &EvalInput<'_>, opts: &EvalOptions) -> Result<Evaluation, MetricsError> {
    let labels = input.data.labels;
    let probs = input.data.probs;
    let k = input.classes.len();
    let mut class_counts = vec![0usize; k];
    for &l in labels {
        if l < k {
            class_counts[l] += 1;
        }
    }
    let (binary, multiclass, calibration) = if k == 2 {
        let (b, c) = binary_eval(input, opts)?;
        (Some(b), None, c)
    } else {
        let (m, c) = multiclass_eval(input, opts)?;
        (None, Some(m), c)
    };

    // Hardest errors at the default decision.
    let predicted = |p: &[f64]| -> usize {
        if k == 2 {
            usize::from(p[1] >= opts.threshold)
        } else {
            argmax(p)
        }
    };
    let mut fps = Vec::new();
    let mut fns = Vec::new();
    for (i, (&l, p)) in labels.iter().zip(probs).enumerate() {
        let pred = predicted(p);
        if pred == l {
            continue;
        }
        let case = Case {
            index: i,
            label: l,
            predicted: pred,
            confidence: p[pred],
        };
        if k == 2 && l == 1 {
            fns.push(case);
        } else {
            fps.push(case);
        }
    }
    for v in [&mut fps, &mut fns] {
        v.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.index.cmp(&b.index))
        });
        v.truncate(opts.hardest);
    }

    let abstention = opts.abstain.map(|rule| {
        let answered: Vec<usize> = (0..labels.len())
            .filter(|&i| !rule.refers(&probs[i]))
            .collect();
        let correct = |i: &usize| predicted(&probs[*i]) == labels[*i];
        let acc = |set: &[usize]| {
            if set.is_empty() {
                0.0
            } else {
                set.iter().filter(|i| correct(i)).count() as f64 / set.len() as f64
            }
        };
        let all: Vec<usize> = (0..labels.len()).collect();
        let rate = |class: usize| -> Option<f64> {
            let of: Vec<&usize> = answered.iter().filter(|&&i| labels[i] == class).collect();
            (!of.is_empty() && k == 2)
                .then(|| of.iter().filter(|i| correct(i)).count() as f64 / of.len() as f64)
        };
        AbstentionEval {
            rule,
            referred: labels.len() - answered.len(),
            referred_fraction: (labels.len() - answered.len()) as f64 / labels.len().max(1) as f64,
            accuracy_answered: acc(&answered),
            accuracy_all: acc(&all),
            sensitivity_answered: rate(1),
            specificity_answered: rate(0),
        }
    });

    Ok(Evaluation {
        split: input.split.to_string(),
        mode: input.mode.to_string(),
        classes: input.classes.to_vec(),
        class_counts,
        options: opts.clone(),
        binary,
        multiclass,
        calibration,
        abstention,
        hardest_false_positives: fps,
        hardest_false_negatives: fns,
    })
}

fn binary_eval(
    input: &EvalInput<'_>,
    opts: &EvalOptions,
) -> Result<(BinaryEval, CalibrationEval), MetricsError> {
    let labels = input.data.labels;
    let scores: Vec<f64> = input.data.probs.iter().map(|p| p[1]).collect();
    let report = medai_metrics::binary_report(labels, &scores, opts.threshold)?;
    let auc_ci = match opts.ci {
        CiMethod::Delong => medai_metrics::auc_delong(labels, &scores, opts.level).map(|d| d.ci),
        CiMethod::Bootstrap { resamples, seed } => {
            medai_metrics::auc_bootstrap_ci(labels, &scores, resamples, seed, opts.level)
        }
    }
    .unwrap_or_else(|e| uninformative(report.auc, opts.level, &e));
    let c = &report.confusion;
    let accuracy_ci = medai_metrics::wilson_interval(c.tp + c.tn, c.total(), opts.level)?;

    // Thresholds chosen on validation when we have it.
    let (sel_labels, sel_scores, chosen_on): (&[usize], Vec<f64>, &str) = match &input.val {
        Some(v) => (v.labels, v.probs.iter().map(|p| p[1]).collect(), "val"),
        None => (labels, scores.clone(), input.split),
    };
    let mut ops = vec![op_eval(
        "default",
        labels,
        &scores,
        opts.threshold,
        "default",
        opts.level,
    )?];
    // A threshold that cannot be chosen (e.g. a validation split with one class) is left out
    // with a note rather than failing the whole evaluation.
    let mut notes = Vec::new();
    let mut chosen: Vec<(String, Result<f64, MetricsError>)> = vec![(
        "youden".into(),
        medai_metrics::youden_threshold(sel_labels, &sel_scores),
    )];
    if let Some(t) = opts.target_sensitivity {
        chosen.push((
            format!("sensitivity>={t}"),
            medai_metrics::threshold_for_sensitivity(sel_labels, &sel_scores, t),
        ));
    }
    if let Some(t) = opts.target_specificity {
        chosen.push((
            format!("specificity>={t}"),
            medai_metrics::threshold_for_specificity(sel_labels, &sel_scores, t),
        ));
    }
    for (name, thr) in chosen {
        match thr {
            Ok(thr) => ops.push(op_eval(&name, labels, &scores, thr, chosen_on, opts.level)?),
            Err(e) => notes.push(format!(
                "operating point {name} not chosen on the {chosen_on} split: {e}"
            )),
        }
    }

    let (fpr, tpr, _) = medai_metrics::roc_curve(labels, &scores)?;
    let roc: Vec<(f64, f64)> = fpr.iter().copied().zip(tpr.iter().copied()).collect();
    let (p, n) = (report.positives as f64, report.negatives as f64);
    let mut pr: Vec<(f64, f64)> = roc
        .iter()
        .skip(1)
        .map(|&(f, t)| {
            let (tp, fp) = (t * p, f * n);
            (t, if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 })
        })
        .collect();
    if let Some(&(_, first)) = pr.first() {
        pr.insert(0, (0.0, first));
    }

    // Subgroups: every attribute column with 2..=20 distinct values.
    let mut subgroups = Vec::new();
    let mut skipped = Vec::new();
    if input.attributes.len() == labels.len() {
        let mut names: Vec<String> = Vec::new();
        for row in input.attributes {
            for (name, _) in row {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        for name in names {
            let groups: Vec<String> = input
                .attributes
                .iter()
                .map(|row| {
                    row.iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| {
                            if v.is_empty() {
                                "(missing)".into()
                            } else {
                                v.clone()
                            }
                        })
                        .unwrap_or_else(|| "(missing)".into())
                })
                .collect();
            let mut distinct = groups.clone();
            distinct.sort();
            distinct.dedup();
            if !(2..=20).contains(&distinct.len()) {
                skipped.push(format!(
                    "{name}: {} distinct values (subgroups need 2 to 20)",
                    distinct.len()
                ));
                continue;
            }
            match medai_metrics::subgroup_binary(
                &name,
                labels,
                &scores,
                &groups,
                opts.threshold,
                opts.level,
            ) {
                Ok(r) => subgroups.extend(r),
                Err(e) => skipped.push(format!("{name}: {e}")),
            }
        }
    }

    let calibration = {
        let bins = medai_metrics::reliability_bins(labels, &scores, opts.bins)?;
        let ece = medai_metrics::expected_calibration_error(labels, &scores, opts.bins)?;
        let mce = medai_metrics::max_calibration_error(labels, &scores, opts.bins)?;
        let (ece_u, bins_u) = match input.uncalibrated {
            Some(raw) => {
                let s: Vec<f64> = raw.iter().map(|p| p[1]).collect();
                (
                    Some(medai_metrics::expected_calibration_error(
                        labels, &s, opts.bins,
                    )?),
                    Some(medai_metrics::reliability_bins(labels, &s, opts.bins)?),
                )
            }
            None => (None, None),
        };
        CalibrationEval {
            temperature: input.temperature,
            ece,
            mce,
            ece_uncalibrated: ece_u,
            bins,
            bins_uncalibrated: bins_u,
            describes: format!("p({})", input.classes[1]),
        }
    };
    Ok((
        BinaryEval {
            positive_class: input.classes[1].clone(),
            report,
            auc_ci,
            accuracy_ci,
            operating_points: ops,
            roc,
            pr,
            subgroups,
            notes,
            subgroups_skipped: skipped,
        },
        calibration,
    ))
}

/// Top-label reliability: bins of max-probability vs. whether the argmax was right.
fn top_label_bins(
    labels: &[usize],
    probs: &[Vec<f64>],
    bins: usize,
) -> Result<(Vec<ReliabilityBin>, f64, f64), MetricsError> {
    let correct: Vec<usize> = labels
        .iter()
        .zip(probs)
        .map(|(&l, p)| usize::from(argmax(p) == l))
        .collect();
    let conf: Vec<f64> = probs
        .iter()
        .map(|p| p.iter().copied().fold(0.0, f64::max).clamp(0.0, 1.0))
        .collect();
    Ok((
        medai_metrics::reliability_bins(&correct, &conf, bins)?,
        medai_metrics::expected_calibration_error(&correct, &conf, bins)?,
        medai_metrics::max_calibration_error(&correct, &conf, bins)?,
    ))
}

fn multiclass_eval(
    input: &EvalInput<'_>,
    opts: &EvalOptions,
) -> Result<(MulticlassEval, CalibrationEval), MetricsError> {
    let labels = input.data.labels;
    let probs = input.data.probs;
    let report = medai_metrics::multiclass_report(labels, probs, input.classes)?;
    let k = input.classes.len();
    let (resamples, seed) = match opts.ci {
        CiMethod::Bootstrap { resamples, seed } => (resamples, seed),
        CiMethod::Delong => (1000, 0),
    };
    let auc_ci = medai_metrics::bootstrap_ci(labels, resamples, seed, opts.level, true, |idx| {
        let y: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        let p: Vec<Vec<f64>> = idx.iter().map(|&i| probs[i].clone()).collect();
        medai_metrics::roc_auc_ovr_macro(&y, &p)
    })
    .unwrap_or_else(|e| uninformative(report.auc_macro_ovr.unwrap_or(f64::NAN), opts.level, &e));
    let mut per_class_auc_ci = Vec::with_capacity(k);
    let mut roc = Vec::with_capacity(k);
    for c in 0..k {
        let y: Vec<usize> = labels.iter().map(|&l| usize::from(l == c)).collect();
        let s: Vec<f64> = probs.iter().map(|p| p[c]).collect();
        per_class_auc_ci.push(
            medai_metrics::auc_delong(&y, &s, opts.level)
                .ok()
                .map(|d| d.ci),
        );
        roc.push(
            medai_metrics::roc_curve(&y, &s)
                .map(|(f, t, _)| f.into_iter().zip(t).collect())
                .unwrap_or_default(),
        );
    }
    let (bins, ece, mce) = top_label_bins(labels, probs, opts.bins)?;
    let (ece_u, bins_u) = match input.uncalibrated {
        Some(raw) => {
            let (b, e, _) = top_label_bins(labels, raw, opts.bins)?;
            (Some(e), Some(b))
        }
        None => (None, None),
    };
    Ok((
        MulticlassEval {
            report,
            auc_ci,
            per_class_auc_ci,
            roc,
        },
        CalibrationEval {
            temperature: input.temperature,
            ece,
            mce,
            ece_uncalibrated: ece_u,
            bins,
            bins_uncalibrated: bins_u,
            describes: "top-label confidence".into(),
        },
    ))
}

impl Evaluation {
    /// The flat JSON summary printed by `medai eval --format json` and stored in the bundle:
    /// the foundation keys (`n`, `auc`, `accuracy`, …) plus `auc_ci`, `pr_auc`, `brier`, `ece`,
    /// `mcc`, `balanced_accuracy`, `operating_points`, calibration and subgroup figures.
    /// Curves and bins are left to the full [`Evaluation`] (`metrics.json`).
    pub fn summary(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("split".into(), json!(self.split));
        if let Some(b) = &self.binary {
            if let Value::Object(r) = json!(b.report) {
                o.extend(r);
            }
            o.insert("positive_class".into(), json!(b.positive_class));
            o.insert("auc_ci".into(), json!([b.auc_ci.low, b.auc_ci.high]));
            o.insert("auc_ci_method".into(), json!(b.auc_ci.method));
            o.insert(
                "accuracy_ci".into(),
                json!([b.accuracy_ci.low, b.accuracy_ci.high]),
            );
            o.insert("pr_auc".into(), json!(b.report.average_precision));
            let ops: serde_json::Map<String, Value> = b
                .operating_points
                .iter()
                .map(|op| {
                    let p = &op.point;
                    (
                        p.name.clone(),
                        json!({
                            "threshold": p.threshold,
                            "sensitivity": p.sensitivity,
                            "specificity": p.specificity,
                            "ppv": p.ppv,
                            "npv": p.npv,
                            "accuracy": p.accuracy,
                            "f1": p.f1,
                            "chosen_on": op.chosen_on,
                            "sensitivity_ci": op.sensitivity_ci.as_ref().map(|c| [c.low, c.high]),
                            "specificity_ci": op.specificity_ci.as_ref().map(|c| [c.low, c.high]),
                        }),
                    )
                })
                .collect();
            o.insert("operating_points".into(), Value::Object(ops));
            if !b.subgroups.is_empty() {
                o.insert("subgroups".into(), json!(b.subgroups));
            }
        }
        if let Some(m) = &self.multiclass {
            if let Value::Object(r) = json!(m.report) {
                o.extend(r);
            }
            o.insert("auc".into(), json!(m.report.auc_macro_ovr));
            match m.report.auc_macro_ovr {
                Some(_) => {
                    o.insert("auc_ci".into(), json!([m.auc_ci.low, m.auc_ci.high]));
                    o.insert("auc_ci_method".into(), json!(m.auc_ci.method));
                }
                None => {
                    let absent: Vec<&str> = m
                        .report
                        .per_class
                        .iter()
                        .filter(|c| c.support == 0)
                        .map(|c| c.class.as_str())
                        .collect();
                    o.insert(
                        "auc_note".into(),
                        json!(format!(
                            "macro AUC undefined: no sample of {} in this split",
                            absent.join(", ")
                        )),
                    );
                }
            }
            if self.mode != "ordinal" {
                o.remove("quadratic_kappa");
            }
        }
        o.insert("ece".into(), json!(self.calibration.ece));
        o.insert("mce".into(), json!(self.calibration.mce));
        o.insert("temperature".into(), json!(self.calibration.temperature));
        if let Some(e) = self.calibration.ece_uncalibrated {
            o.insert("ece_uncalibrated".into(), json!(e));
        }
        if let Some(a) = &self.abstention {
            o.insert("abstention".into(), json!(a));
        }
        Value::Object(o)
    }
}

/// Regression figures (molecular properties, forecasts): RMSE, MAE, R² and Pearson r with
/// bootstrap intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionEvaluation {
    /// Split name.
    pub split: String,
    /// Point estimates.
    pub report: medai_metrics::RegressionReport,
    /// Bootstrap intervals of RMSE, MAE and R².
    pub ci: medai_metrics::RegressionCi,
}

/// Evaluate regression predictions (`resamples` bootstrap resamples, seeded).
pub fn evaluate_regression(
    split: &str,
    y: &[f64],
    pred: &[f64],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Result<RegressionEvaluation, MetricsError> {
    Ok(RegressionEvaluation {
        split: split.to_string(),
        report: medai_metrics::regression_report(y, pred)?,
        ci: medai_metrics::regression_bootstrap(y, pred, resamples, seed, level)?,
    })
}

impl RegressionEvaluation {
    /// Flat JSON: `n`, `rmse`, `mae`, `r2`, `pearson` and `rmse_ci`, `mae_ci`, `r2_ci`.
    pub fn summary(&self) -> Value {
        let r = &self.report;
        json!({
            "split": self.split,
            "n": r.n,
            "rmse": r.rmse,
            "mae": r.mae,
            "r2": r.r2,
            "pearson": r.pearson,
            "rmse_ci": [self.ci.rmse.low, self.ci.rmse.high],
            "mae_ci": [self.ci.mae.low, self.ci.mae.high],
            "r2_ci": [self.ci.r2.low, self.ci.r2.high],
        })
    }
}
