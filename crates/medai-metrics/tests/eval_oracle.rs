//! Compares confidence intervals, calibration, operating points, multilabel,
//! regression and subgroup results with the reference values recorded in
//! `tests/fixtures/metrics/eval_cases.json` (see `make_eval_fixture.py`:
//! scikit-learn, scipy, numpy, and an independent O(m·n) DeLong reference).

use medai_metrics::{
    ConfusionBinary, apply_temperature, auc_delong, delong_paired_test, expected_calibration_error,
    fit_temperature, max_calibration_error, multilabel_report, normal_cdf, normal_quantile,
    operating_point, quantile_linear, regression_report, reliability_bins, roc_auc_ovr_micro,
    subgroup_binary, threshold_for_sensitivity, threshold_for_specificity, top_label_ece,
    wilson_interval,
};
use serde::Deserialize;

const TOL: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    sklearn_version: String,
    scipy_version: String,
    normal: Normal,
    quantiles: Vec<QuantileCase>,
    delong: Vec<DelongCase>,
    delong_paired: Vec<PairedCase>,
    wilson: Vec<WilsonCase>,
    calibration: Vec<CalibrationCase>,
    top_label: Vec<TopLabelCase>,
    temperature: Vec<TemperatureCase>,
    multiclass_micro: Vec<MicroCase>,
    multilabel: Vec<MultilabelCase>,
    regression: Vec<RegressionCase>,
    thresholds: Vec<ThresholdCase>,
    subgroup: Vec<SubgroupCase>,
}

#[derive(Deserialize)]
struct Normal {
    ppf: Vec<(f64, f64)>,
    /// `(x, exact Phi(x), scipy's Phi(x))`.
    cdf: Vec<(f64, f64, f64)>,
}

#[derive(Deserialize)]
struct QuantileCase {
    values: Vec<f64>,
    qs: Vec<f64>,
    expected: Vec<f64>,
}

#[derive(Deserialize)]
struct DelongCase {
    name: String,
    y_true: Vec<usize>,
    scores: Vec<f64>,
    level: f64,
    auc: f64,
    variance: f64,
    se: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct PairedCase {
    name: String,
    y_true: Vec<usize>,
    scores_a: Vec<f64>,
    scores_b: Vec<f64>,
    auc_a: f64,
    auc_b: f64,
    diff: f64,
    se: f64,
    z: f64,
    p_value: f64,
}

#[derive(Deserialize)]
struct WilsonCase {
    successes: u64,
    n: u64,
    level: f64,
    estimate: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct BinCase {
    lower: f64,
    upper: f64,
    count: usize,
    mean_predicted: f64,
    fraction_positive: f64,
}

#[derive(Deserialize)]
struct CalibrationCase {
    name: String,
    y_true: Vec<usize>,
    probs: Vec<f64>,
    n_bins: usize,
    bins: Vec<BinCase>,
    ece: f64,
    mce: f64,
}

#[derive(Deserialize)]
struct TopLabelCase {
    name: String,
    y_true: Vec<usize>,
    probs: Vec<Vec<f64>>,
    n_bins: usize,
    ece: f64,
}

#[derive(Deserialize)]
struct Applied {
    row: usize,
    t: f64,
    probs: Vec<f64>,
}

#[derive(Deserialize)]
struct TemperatureCase {
    name: String,
    y_true: Vec<usize>,
    probs: Vec<Vec<f64>>,
    temperature: f64,
    nll_before: f64,
    nll_after: f64,
    applied: Vec<Applied>,
}

#[derive(Deserialize)]
struct MicroCase {
    name: String,
    y_true: Vec<usize>,
    probs: Vec<Vec<f64>>,
    auc_micro: f64,
}

#[derive(Deserialize)]
struct LabelCase {
    label: String,
    support: usize,
    auc: Option<f64>,
    average_precision: Option<f64>,
}

#[derive(Deserialize)]
struct MultilabelCase {
    name: String,
    y: Vec<Vec<u8>>,
    probs: Vec<Vec<f64>>,
    labels: Vec<String>,
    threshold: f64,
    per_label: Vec<LabelCase>,
    auc_macro: f64,
    auc_micro: f64,
    subset_accuracy: f64,
    hamming_loss: f64,
}

#[derive(Deserialize)]
struct RegressionCase {
    name: String,
    y: Vec<f64>,
    pred: Vec<f64>,
    rmse: f64,
    mae: f64,
    r2: f64,
    pearson: f64,
}

#[derive(Deserialize)]
struct TargetCase {
    target: f64,
    threshold: f64,
}

#[derive(Deserialize)]
struct PointCase {
    threshold: f64,
    sensitivity: f64,
    specificity: f64,
    ppv: f64,
    npv: f64,
    accuracy: f64,
    f1: f64,
    confusion: ConfusionBinary,
}

#[derive(Deserialize)]
struct ThresholdCase {
    name: String,
    y_true: Vec<usize>,
    scores: Vec<f64>,
    sensitivity_targets: Vec<TargetCase>,
    specificity_targets: Vec<TargetCase>,
    operating_points: Vec<PointCase>,
}

#[derive(Deserialize)]
struct CiCase {
    estimate: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct GroupCase {
    group: String,
    n: usize,
    positives: usize,
    auc: Option<CiCase>,
    sensitivity: Option<CiCase>,
    specificity: Option<CiCase>,
    flagged: bool,
    flag_reasons: Vec<String>,
}

#[derive(Deserialize)]
struct SubgroupCase {
    name: String,
    attribute: String,
    y_true: Vec<usize>,
    scores: Vec<f64>,
    groups: Vec<String>,
    threshold: f64,
    level: f64,
    results: Vec<GroupCase>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/metrics/eval_cases.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("fixture parses")
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got:.17}, reference {want:.17} (diff {:e})",
        (got - want).abs()
    );
}

#[track_caller]
fn close_rel(got: f64, want: f64, rel: f64, what: &str) {
    let scale = want.abs().max(f64::MIN_POSITIVE);
    assert!(
        (got - want).abs() <= rel * scale,
        "{what}: got {got:e}, reference {want:e} (relative diff {:e})",
        (got - want).abs() / scale
    );
}

#[test]
fn fixture_has_all_sections() {
    let f = fixture();
    assert!(!f.sklearn_version.is_empty() && !f.scipy_version.is_empty());
    assert!(f.delong.len() >= 5 && f.delong_paired.len() >= 5);
    assert!(f.calibration.len() >= 5 && f.temperature.len() >= 3);
    assert!(!f.multilabel.is_empty() && !f.regression.is_empty());
    assert!(!f.thresholds.is_empty() && !f.subgroup.is_empty());
    assert!(!f.top_label.is_empty() && !f.multiclass_micro.is_empty());
}

#[test]
fn normal_quantile_matches_scipy() {
    for (p, z) in fixture().normal.ppf {
        let got = normal_quantile(p);
        close(got, z, &format!("ppf({p:e})"));
        close_rel(got, z, 2e-15, &format!("ppf({p:e})"));
    }
}

#[test]
fn normal_cdf_matches_scipy() {
    for (x, exact, scipy) in fixture().normal.cdf {
        let got = normal_cdf(x);
        close(got, scipy, &format!("cdf({x}) vs scipy"));
        // Relative accuracy in the lower tail too (the p-values depend on it).
        close_rel(got, exact, 2e-15, &format!("cdf({x}) vs exact"));
    }
}

#[test]
fn quantile_matches_numpy() {
    for case in fixture().quantiles {
        for (&q, &want) in case.qs.iter().zip(&case.expected) {
            let got = quantile_linear(&case.values, q).unwrap();
            close(
                got,
                want,
                &format!("quantile(n={}, q={q})", case.values.len()),
            );
        }
    }
}

#[test]
fn delong_matches_reference() {
    for case in fixture().delong {
        let name = &case.name;
        let d = auc_delong(&case.y_true, &case.scores, case.level).unwrap();
        close(d.auc, case.auc, &format!("{name}: auc"));
        close(d.variance, case.variance, &format!("{name}: variance"));
        close(d.se, case.se, &format!("{name}: se"));
        close(d.ci.low, case.low, &format!("{name}: low"));
        close(d.ci.high, case.high, &format!("{name}: high"));
        assert_eq!(d.ci.estimate, d.auc);
        assert_eq!(d.ci.level, case.level);
        assert_eq!(d.ci.method, "delong");
    }
}

#[test]
fn delong_paired_matches_reference() {
    for case in fixture().delong_paired {
        let name = &case.name;
        let c = delong_paired_test(&case.y_true, &case.scores_a, &case.scores_b).unwrap();
        close(c.auc_a, case.auc_a, &format!("{name}: auc_a"));
        close(c.auc_b, case.auc_b, &format!("{name}: auc_b"));
        close(c.diff, case.diff, &format!("{name}: diff"));
        close(c.se, case.se, &format!("{name}: se"));
        close(c.z, case.z, &format!("{name}: z"));
        close(c.p_value, case.p_value, &format!("{name}: p"));
        close_rel(c.p_value, case.p_value, 1e-9, &format!("{name}: p"));
    }
}

#[test]
fn wilson_matches_definition() {
    for case in fixture().wilson {
        let what = format!("wilson({}/{} @ {})", case.successes, case.n, case.level);
        let ci = wilson_interval(case.successes, case.n, case.level).unwrap();
        close(ci.estimate, case.estimate, &what);
        close(ci.low, case.low, &what);
        close(ci.high, case.high, &what);
        assert_eq!(ci.method, "wilson");
        if case.successes == 0 {
            assert_eq!(ci.low, 0.0, "{what}");
        }
        if case.successes == case.n {
            assert_eq!(ci.high, 1.0, "{what}");
        }
    }
}

#[test]
fn reliability_bins_match_sklearn() {
    for case in fixture().calibration {
        let name = &case.name;
        let bins = reliability_bins(&case.y_true, &case.probs, case.n_bins).unwrap();
        assert_eq!(bins.len(), case.n_bins, "{name}: number of bins");
        for (b, (got, want)) in bins.iter().zip(&case.bins).enumerate() {
            let what = |field: &str| format!("{name}: bin {b} {field}");
            assert_eq!(got.count, want.count, "{}", what("count"));
            assert_eq!(got.lower, want.lower, "{}", what("lower"));
            assert_eq!(got.upper, want.upper, "{}", what("upper"));
            // Non-empty bins equal sklearn's prob_pred / prob_true to 1e-12.
            assert!(
                (got.mean_predicted - want.mean_predicted).abs() <= 1e-12,
                "{}",
                what("mean_predicted")
            );
            assert!(
                (got.fraction_positive - want.fraction_positive).abs() <= 1e-12,
                "{}",
                what("fraction_positive")
            );
        }
        close(
            expected_calibration_error(&case.y_true, &case.probs, case.n_bins).unwrap(),
            case.ece,
            &format!("{name}: ece"),
        );
        close(
            max_calibration_error(&case.y_true, &case.probs, case.n_bins).unwrap(),
            case.mce,
            &format!("{name}: mce"),
        );
    }
}

/// Probabilities exactly on interior edges go to the bin below (numpy's
/// `searchsorted(side="left")`), which the edge case exercises.
#[test]
fn edge_probabilities_fall_in_the_lower_bin() {
    let f = fixture();
    let case = f
        .calibration
        .iter()
        .find(|c| c.name == "on_edges_10")
        .unwrap();
    let bins = reliability_bins(&case.y_true, &case.probs, 10).unwrap();
    // 0.1 (an interior edge) is in bin 0, together with 0.0 and 1/7.
    let in_first = case.probs.iter().filter(|&&p| p <= 0.1).count();
    assert_eq!(bins[0].count, in_first);
    // 1.0 is in the last bin.
    assert!(bins[9].count >= 1);
}

#[test]
fn top_label_ece_matches_sklearn_bins() {
    for case in fixture().top_label {
        close(
            top_label_ece(&case.y_true, &case.probs, case.n_bins).unwrap(),
            case.ece,
            &format!("{}: top-label ece", case.name),
        );
    }
}

#[test]
fn temperature_matches_scipy() {
    for case in fixture().temperature {
        let name = &case.name;
        let fit = fit_temperature(&case.y_true, &case.probs).unwrap();
        close_rel(
            fit.temperature,
            case.temperature,
            1e-6,
            &format!("{name}: temperature"),
        );
        close(
            fit.nll_before,
            case.nll_before,
            &format!("{name}: nll_before"),
        );
        // At scipy's optimum the NLL is the reference; ours is as good or
        // better (in the case driven to the bound, scipy stops ~1e-8 inside it
        // where the NLL is steep, so the comparison is relative).
        close_rel(
            fit.nll_after,
            case.nll_after,
            1e-6,
            &format!("{name}: nll_after"),
        );
        assert!(
            fit.nll_after <= case.nll_after + 1e-12,
            "{name}: nll_after {} worse than scipy's {}",
            fit.nll_after,
            case.nll_after
        );
        assert!(
            fit.nll_after <= fit.nll_before + 1e-12,
            "{name}: NLL improves"
        );
        for a in &case.applied {
            // The reference's last temperature is scipy's optimum; use it as is.
            let got = apply_temperature(&case.probs[a.row], a.t);
            assert_eq!(got.len(), a.probs.len());
            for (j, (&g, &w)) in got.iter().zip(&a.probs).enumerate() {
                close(g, w, &format!("{name}: row {} t={} [{j}]", a.row, a.t));
            }
        }
    }
}

#[test]
fn micro_auc_matches_sklearn() {
    for case in fixture().multiclass_micro {
        close(
            roc_auc_ovr_micro(&case.y_true, &case.probs).unwrap(),
            case.auc_micro,
            &format!("{}: micro auc", case.name),
        );
    }
}

#[test]
fn multilabel_matches_sklearn() {
    for case in fixture().multilabel {
        let name = &case.name;
        let r = multilabel_report(&case.y, &case.probs, &case.labels, case.threshold).unwrap();
        assert_eq!(r.n, case.y.len());
        assert_eq!(r.per_label.len(), case.per_label.len());
        for (got, want) in r.per_label.iter().zip(&case.per_label) {
            let what = |f: &str| format!("{name}/{}: {f}", want.label);
            assert_eq!(got.label, want.label);
            assert_eq!(got.support, want.support, "{}", what("support"));
            assert_eq!(got.auc.is_some(), want.auc.is_some(), "{}", what("auc"));
            if let (Some(g), Some(w)) = (got.auc, want.auc) {
                close(g, w, &what("auc"));
            }
            assert_eq!(
                got.average_precision.is_some(),
                want.average_precision.is_some(),
                "{}",
                what("ap")
            );
            if let (Some(g), Some(w)) = (got.average_precision, want.average_precision) {
                close(g, w, &what("ap"));
            }
        }
        close(r.auc_macro, case.auc_macro, &format!("{name}: auc_macro"));
        close(r.auc_micro, case.auc_micro, &format!("{name}: auc_micro"));
        close(
            r.subset_accuracy,
            case.subset_accuracy,
            &format!("{name}: subset_accuracy"),
        );
        close(
            r.hamming_loss,
            case.hamming_loss,
            &format!("{name}: hamming_loss"),
        );
    }
}

#[test]
fn regression_matches_sklearn() {
    for case in fixture().regression {
        let name = &case.name;
        let r = regression_report(&case.y, &case.pred).unwrap();
        assert_eq!(r.n, case.y.len());
        close(r.rmse, case.rmse, &format!("{name}: rmse"));
        close(r.mae, case.mae, &format!("{name}: mae"));
        close(r.r2, case.r2, &format!("{name}: r2"));
        close(r.pearson, case.pearson, &format!("{name}: pearson"));
    }
}

#[test]
fn thresholds_match_brute_force() {
    for case in fixture().thresholds {
        let name = &case.name;
        for t in &case.sensitivity_targets {
            assert_eq!(
                threshold_for_sensitivity(&case.y_true, &case.scores, t.target).unwrap(),
                t.threshold,
                "{name}: sensitivity >= {}",
                t.target
            );
        }
        for t in &case.specificity_targets {
            assert_eq!(
                threshold_for_specificity(&case.y_true, &case.scores, t.target).unwrap(),
                t.threshold,
                "{name}: specificity >= {}",
                t.target
            );
        }
        for p in &case.operating_points {
            let op = operating_point("op", &case.y_true, &case.scores, p.threshold).unwrap();
            let what = |f: &str| format!("{name} @ {}: {f}", p.threshold);
            assert_eq!(op.name, "op");
            assert_eq!(op.threshold, p.threshold);
            assert_eq!(op.confusion, p.confusion, "{}", what("confusion"));
            close(op.sensitivity, p.sensitivity, &what("sensitivity"));
            close(op.specificity, p.specificity, &what("specificity"));
            close(op.ppv, p.ppv, &what("ppv"));
            close(op.npv, p.npv, &what("npv"));
            close(op.accuracy, p.accuracy, &what("accuracy"));
            close(op.f1, p.f1, &what("f1"));
        }
    }
}

#[track_caller]
fn close_ci(got: Option<&medai_metrics::ConfidenceInterval>, want: Option<&CiCase>, what: &str) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            close(g.estimate, w.estimate, &format!("{what} estimate"));
            close(g.low, w.low, &format!("{what} low"));
            close(g.high, w.high, &format!("{what} high"));
        }
        _ => panic!("{what}: presence differs (got {got:?})"),
    }
}

#[test]
fn subgroups_match_reference() {
    for case in fixture().subgroup {
        let name = &case.name;
        let results = subgroup_binary(
            &case.attribute,
            &case.y_true,
            &case.scores,
            &case.groups,
            case.threshold,
            case.level,
        )
        .unwrap();
        assert_eq!(results.len(), case.results.len(), "{name}: groups");
        for (got, want) in results.iter().zip(&case.results) {
            let what = |f: &str| format!("{name}/{}: {f}", want.group);
            assert_eq!(got.attribute, case.attribute);
            assert_eq!(got.group, want.group);
            assert_eq!(got.n, want.n, "{}", what("n"));
            assert_eq!(got.positives, want.positives, "{}", what("positives"));
            close_ci(got.auc.as_ref(), want.auc.as_ref(), &what("auc"));
            close_ci(
                got.sensitivity.as_ref(),
                want.sensitivity.as_ref(),
                &what("sensitivity"),
            );
            close_ci(
                got.specificity.as_ref(),
                want.specificity.as_ref(),
                &what("specificity"),
            );
            assert_eq!(got.flagged, want.flagged, "{}", what("flagged"));
            assert_eq!(got.flag_reasons, want.flag_reasons, "{}", what("reasons"));
        }
    }
}
