//! Compares every metric with scikit-learn's values recorded in
//! `tests/fixtures/metrics/metrics_cases.json` (see `make_metrics_fixture.py`).

use medai_metrics::{
    ConfusionBinary, average_precision, binary_report, brier_score, log_loss_binary,
    log_loss_multiclass, multiclass_report, quadratic_weighted_kappa, roc_auc, roc_auc_ovr_macro,
    roc_auc_ovr_micro, roc_curve, youden_threshold,
};
use serde::Deserialize;

const TOL: f64 = 1e-12;

#[derive(Deserialize)]
struct Fixture {
    sklearn_version: String,
    binary: Vec<BinaryCase>,
    multiclass: Vec<MulticlassCase>,
}

#[derive(Deserialize)]
struct BinaryCase {
    name: String,
    y_true: Vec<usize>,
    scores: Vec<f64>,
    n: usize,
    positives: usize,
    negatives: usize,
    auc: f64,
    average_precision: f64,
    brier: f64,
    log_loss: f64,
    roc_fpr: Vec<f64>,
    roc_tpr: Vec<f64>,
    /// `None` stands for +infinity.
    roc_thresholds: Vec<Option<f64>>,
    youden_threshold: f64,
    at_threshold: Vec<AtThreshold>,
}

#[derive(Deserialize)]
struct AtThreshold {
    threshold: f64,
    accuracy: f64,
    balanced_accuracy: f64,
    sensitivity: f64,
    specificity: f64,
    ppv: f64,
    npv: f64,
    f1: f64,
    mcc: f64,
    confusion: ConfusionBinary,
}

#[derive(Deserialize)]
struct MulticlassCase {
    name: String,
    y_true: Vec<usize>,
    probs: Vec<Vec<f64>>,
    class_names: Vec<String>,
    y_pred: Vec<usize>,
    n: usize,
    accuracy: f64,
    balanced_accuracy: f64,
    auc_macro_ovr: f64,
    auc_micro_ovr: f64,
    macro_f1: f64,
    weighted_f1: f64,
    log_loss: f64,
    quadratic_kappa: f64,
    per_class: Vec<ClassCase>,
    confusion: Vec<Vec<u64>>,
}

#[derive(Deserialize)]
struct ClassCase {
    class: String,
    support: usize,
    precision: f64,
    recall: f64,
    f1: f64,
    auc: f64,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/metrics/metrics_cases.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("fixture parses")
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got:.17}, sklearn {want:.17} (diff {:e})",
        (got - want).abs()
    );
}

#[test]
fn fixture_has_all_cases() {
    let f = fixture();
    assert!(!f.sklearn_version.is_empty());
    assert_eq!(f.binary.len(), 3);
    assert_eq!(f.multiclass.len(), 2);
}

#[test]
fn binary_reports_match_sklearn() {
    for case in fixture().binary {
        let name = &case.name;
        for at in &case.at_threshold {
            let r = binary_report(&case.y_true, &case.scores, at.threshold).unwrap();
            let what = |field: &str| format!("{name} @ {}: {field}", at.threshold);
            assert_eq!(r.n, case.n, "{}", what("n"));
            assert_eq!(r.positives, case.positives, "{}", what("positives"));
            assert_eq!(r.negatives, case.negatives, "{}", what("negatives"));
            assert_eq!(r.threshold, at.threshold);
            assert_eq!(r.confusion, at.confusion, "{}", what("confusion"));
            close(r.auc, case.auc, &what("auc"));
            close(r.average_precision, case.average_precision, &what("ap"));
            close(r.accuracy, at.accuracy, &what("accuracy"));
            close(
                r.balanced_accuracy,
                at.balanced_accuracy,
                &what("balanced_accuracy"),
            );
            close(r.sensitivity, at.sensitivity, &what("sensitivity"));
            close(r.specificity, at.specificity, &what("specificity"));
            close(r.ppv, at.ppv, &what("ppv"));
            close(r.npv, at.npv, &what("npv"));
            close(r.f1, at.f1, &what("f1"));
            close(r.mcc, at.mcc, &what("mcc"));
            close(r.brier, case.brier, &what("brier"));
            close(r.log_loss, case.log_loss, &what("log_loss"));
        }
    }
}

#[test]
fn binary_standalone_functions_match_sklearn() {
    for case in fixture().binary {
        let name = &case.name;
        let (y, s) = (&case.y_true, &case.scores);
        close(
            roc_auc(y, s).unwrap(),
            case.auc,
            &format!("{name}: roc_auc"),
        );
        close(
            average_precision(y, s).unwrap(),
            case.average_precision,
            &format!("{name}: average_precision"),
        );
        close(
            brier_score(y, s).unwrap(),
            case.brier,
            &format!("{name}: brier"),
        );
        close(
            log_loss_binary(y, s).unwrap(),
            case.log_loss,
            &format!("{name}: log_loss"),
        );
        assert_eq!(
            youden_threshold(y, s).unwrap(),
            case.youden_threshold,
            "{name}: youden"
        );
    }
}

#[test]
fn roc_curve_matches_sklearn() {
    for case in fixture().binary {
        let name = &case.name;
        let (fpr, tpr, thr) = roc_curve(&case.y_true, &case.scores).unwrap();
        assert_eq!(fpr.len(), case.roc_fpr.len(), "{name}: curve length");
        assert_eq!(tpr.len(), case.roc_tpr.len(), "{name}: curve length");
        assert_eq!(thr.len(), case.roc_thresholds.len(), "{name}: curve length");
        for i in 0..fpr.len() {
            close(fpr[i], case.roc_fpr[i], &format!("{name}: fpr[{i}]"));
            close(tpr[i], case.roc_tpr[i], &format!("{name}: tpr[{i}]"));
            match case.roc_thresholds[i] {
                None => assert_eq!(thr[i], f64::INFINITY, "{name}: thresholds[{i}]"),
                Some(t) => close(thr[i], t, &format!("{name}: thresholds[{i}]")),
            }
        }
    }
}

#[test]
fn multiclass_reports_match_sklearn() {
    for case in fixture().multiclass {
        let name = &case.name;
        let r = multiclass_report(&case.y_true, &case.probs, &case.class_names).unwrap();
        assert_eq!(r.n, case.n, "{name}: n");
        assert_eq!(r.confusion, case.confusion, "{name}: confusion");
        close(r.accuracy, case.accuracy, &format!("{name}: accuracy"));
        close(
            r.balanced_accuracy,
            case.balanced_accuracy,
            &format!("{name}: balanced_accuracy"),
        );
        close(
            r.auc_macro_ovr.unwrap(),
            case.auc_macro_ovr,
            &format!("{name}: auc_macro_ovr"),
        );
        close(
            r.auc_micro_ovr,
            case.auc_micro_ovr,
            &format!("{name}: auc_micro_ovr"),
        );
        close(r.macro_f1, case.macro_f1, &format!("{name}: macro_f1"));
        close(
            r.weighted_f1,
            case.weighted_f1,
            &format!("{name}: weighted_f1"),
        );
        close(r.log_loss, case.log_loss, &format!("{name}: log_loss"));
        close(
            r.quadratic_kappa,
            case.quadratic_kappa,
            &format!("{name}: quadratic_kappa"),
        );
        assert_eq!(r.per_class.len(), case.per_class.len());
        for (got, want) in r.per_class.iter().zip(&case.per_class) {
            let what = |field: &str| format!("{name}/{}: {field}", want.class);
            assert_eq!(got.class, want.class);
            assert_eq!(got.support, want.support, "{}", what("support"));
            close(got.precision, want.precision, &what("precision"));
            close(got.recall, want.recall, &what("recall"));
            close(got.f1, want.f1, &what("f1"));
            close(got.auc.expect("class present"), want.auc, &what("auc"));
        }

        // Standalone functions agree with the report.
        close(
            roc_auc_ovr_macro(&case.y_true, &case.probs).unwrap(),
            case.auc_macro_ovr,
            &format!("{name}: roc_auc_ovr_macro"),
        );
        close(
            roc_auc_ovr_micro(&case.y_true, &case.probs).unwrap(),
            case.auc_micro_ovr,
            &format!("{name}: roc_auc_ovr_micro"),
        );
        close(
            log_loss_multiclass(&case.y_true, &case.probs).unwrap(),
            case.log_loss,
            &format!("{name}: log_loss_multiclass"),
        );
        close(
            quadratic_weighted_kappa(&case.y_true, &case.y_pred, case.class_names.len()).unwrap(),
            case.quadratic_kappa,
            &format!("{name}: quadratic_weighted_kappa"),
        );
    }
}

/// The ties case must separate a correct implementation from naive ones: an
/// AUC that ignores ties (strict pairs only) or uses ordinal ranks without
/// averaging tied ranks differs from sklearn's value, while ours matches.
#[test]
fn ties_case_rejects_naive_auc() {
    let f = fixture();
    let case = f.binary.iter().find(|c| c.name == "binary_ties").unwrap();
    let (y, s) = (&case.y_true, &case.scores);
    let pos: Vec<f64> = (0..y.len()).filter(|&i| y[i] == 1).map(|i| s[i]).collect();
    let neg: Vec<f64> = (0..y.len()).filter(|&i| y[i] == 0).map(|i| s[i]).collect();
    let pairs = (pos.len() * neg.len()) as f64;

    // Naive 1: count strictly-greater pairs only.
    let strict = pos
        .iter()
        .map(|p| neg.iter().filter(|&&n| p > &n).count())
        .sum::<usize>() as f64
        / pairs;

    // Naive 2: Mann-Whitney with ordinal ranks (stable sort, ties not averaged).
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    let mut rank_sum = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        if y[i] == 1 {
            rank_sum += (rank + 1) as f64;
        }
    }
    let np = pos.len() as f64;
    let ordinal = (rank_sum - np * (np + 1.0) / 2.0) / pairs;

    let ours = roc_auc(y, s).unwrap();
    close(ours, case.auc, "ties: roc_auc");
    assert!(
        (strict - case.auc).abs() > 1e-3,
        "strict-pairs AUC {strict} should differ from sklearn {}",
        case.auc
    );
    assert!(
        (ordinal - case.auc).abs() > 1e-3,
        "ordinal-rank AUC {ordinal} should differ from sklearn {}",
        case.auc
    );

    // And the ROC curve has one point per distinct score, not per sample.
    let (fpr, _, _) = roc_curve(y, s).unwrap();
    assert!(fpr.len() < s.len() / 10, "ties must collapse curve points");
    assert_eq!(fpr.len(), case.roc_fpr.len());
}

/// At a threshold equal to tied scores, `>=` puts all of them positive; `>`
/// would give different counts.
#[test]
fn threshold_is_inclusive_on_ties() {
    let f = fixture();
    let case = f.binary.iter().find(|c| c.name == "binary_ties").unwrap();
    let at = case
        .at_threshold
        .iter()
        .find(|a| a.threshold == 0.5)
        .unwrap();
    assert!(case.scores.contains(&0.5));
    let r = binary_report(&case.y_true, &case.scores, 0.5).unwrap();
    assert_eq!(r.confusion, at.confusion);
    let strict_tp = case
        .y_true
        .iter()
        .zip(&case.scores)
        .filter(|&(&y, &s)| y == 1 && s > 0.5)
        .count() as u64;
    assert_ne!(strict_tp, at.confusion.tp);
}
