//! Bad input gives typed errors (never a panic, never NaN), and the documented
//! conventions hold.

use medai_metrics::{
    LOG_LOSS_EPS, MetricsError, average_precision, binary_report, confusion_binary,
    log_loss_binary, multiclass_report, quadratic_weighted_kappa, roc_auc, roc_auc_ovr_macro,
    roc_curve, youden_threshold,
};

fn names(k: usize) -> Vec<String> {
    (0..k).map(|c| format!("c{c}")).collect()
}

#[test]
fn binary_input_errors() {
    assert_eq!(
        roc_auc(&[0, 1], &[0.5]),
        Err(MetricsError::LengthMismatch {
            y_true: 2,
            other: 1
        })
    );
    assert_eq!(roc_auc(&[], &[]), Err(MetricsError::Empty));
    assert_eq!(
        roc_auc(&[1, 1, 1], &[0.1, 0.2, 0.3]),
        Err(MetricsError::SingleClass { present: 1 })
    );
    assert_eq!(
        roc_auc(&[0, 0], &[0.1, 0.2]),
        Err(MetricsError::SingleClass { present: 0 })
    );
    assert!(matches!(
        roc_auc(&[0, 1], &[0.1, f64::NAN]),
        Err(MetricsError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        roc_auc(&[0, 1], &[f64::NEG_INFINITY, 0.3]),
        Err(MetricsError::NonFinite { index: 0, .. })
    ));
    assert_eq!(
        roc_auc(&[0, 2], &[0.1, 0.2]),
        Err(MetricsError::InvalidLabel {
            index: 1,
            label: 2,
            n_classes: 2
        })
    );
    assert!(matches!(
        roc_curve(&[1, 1], &[0.1, 0.2]),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        youden_threshold(&[0, 0], &[0.1, 0.2]),
        Err(MetricsError::SingleClass { .. })
    ));
    assert!(matches!(
        average_precision(&[0, 0], &[0.1, 0.2]),
        Err(MetricsError::SingleClass { .. })
    ));
    // Only positives: AP is well defined.
    assert_eq!(average_precision(&[1, 1], &[0.1, 0.2]), Ok(1.0));
}

#[test]
fn binary_report_errors() {
    let y = [0, 1, 0, 1];
    assert!(matches!(
        binary_report(&y, &[0.1, 1.2, 0.3, 0.4], 0.5),
        Err(MetricsError::ProbabilityOutOfRange { index: 1, .. })
    ));
    assert!(matches!(
        binary_report(&y, &[0.1, 0.2, -0.3, 0.4], 0.5),
        Err(MetricsError::ProbabilityOutOfRange { index: 2, .. })
    ));
    assert!(matches!(
        binary_report(&y, &[0.1, 0.2, 0.3, 0.4], f64::NAN),
        Err(MetricsError::InvalidThreshold(_))
    ));
    assert!(matches!(
        binary_report(&[1, 1], &[0.1, 0.2], 0.5),
        Err(MetricsError::SingleClass { present: 1 })
    ));
    assert!(matches!(
        confusion_binary(&y, &[0.1, 0.2, 0.3, 0.4], f64::INFINITY),
        Err(MetricsError::InvalidThreshold(_))
    ));
}

#[test]
fn zero_division_gives_zero() {
    // Nothing predicted positive: PPV, F1 and MCC are 0, not NaN.
    let r = binary_report(&[0, 1, 0, 1], &[0.1, 0.2, 0.3, 0.4], 0.9).unwrap();
    assert_eq!((r.ppv, r.f1, r.mcc, r.sensitivity), (0.0, 0.0, 0.0, 0.0));
    assert_eq!(r.specificity, 1.0);
    assert_eq!(r.npv, 0.5);
    // Everything predicted positive: NPV is 0.
    let r = binary_report(&[0, 1, 0, 1], &[0.1, 0.2, 0.3, 0.4], 0.0).unwrap();
    assert_eq!((r.npv, r.specificity, r.mcc), (0.0, 0.0, 0.0));
    assert_eq!(r.ppv, 0.5);
}

#[test]
fn log_loss_clips_like_sklearn() {
    let want = -LOG_LOSS_EPS.ln();
    assert_eq!(log_loss_binary(&[1], &[0.0]), Ok(want));
    assert_eq!(log_loss_binary(&[0], &[1.0]), Ok(want));
    let perfect = log_loss_binary(&[0, 1], &[0.0, 1.0]).unwrap();
    assert!(perfect > 0.0 && perfect < 1e-14);
}

#[test]
fn confusion_serializes_fn_as_fn() {
    let r = binary_report(&[0, 1, 1], &[0.2, 0.3, 0.9], 0.5).unwrap();
    let json = serde_json::to_value(&r.confusion).unwrap();
    assert_eq!(json["fn"], 1);
    assert!(json.get("fn_").is_none());
    let back: medai_metrics::ConfusionBinary = serde_json::from_value(json).unwrap();
    assert_eq!(back, r.confusion);
    // The whole report round-trips.
    let text = serde_json::to_string(&r).unwrap();
    let back: medai_metrics::BinaryReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}

#[test]
fn multiclass_input_errors() {
    let p = vec![
        vec![0.7, 0.2, 0.1],
        vec![0.1, 0.8, 0.1],
        vec![0.2, 0.2, 0.6],
    ];
    let y = [0, 1, 2];
    assert!(multiclass_report(&y, &p, &names(3)).is_ok());
    assert_eq!(
        multiclass_report(&y[..2], &p, &names(3)).unwrap_err(),
        MetricsError::LengthMismatch {
            y_true: 2,
            other: 3
        }
    );
    assert_eq!(
        multiclass_report(&[], &[], &names(3)).unwrap_err(),
        MetricsError::Empty
    );
    assert_eq!(
        multiclass_report(&y, &p, &names(2)).unwrap_err(),
        MetricsError::ClassNamesMismatch {
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        multiclass_report(&[0, 1, 3], &p, &names(3)).unwrap_err(),
        MetricsError::InvalidLabel {
            index: 2,
            label: 3,
            n_classes: 3
        }
    );
    // An absent class leaves the macro AUC undefined, not the whole report.
    let r = multiclass_report(&[0, 1, 1], &p, &names(3)).unwrap();
    assert_eq!(r.auc_macro_ovr, None);
    assert_eq!(r.per_class[2].auc, None);
    assert_eq!(r.per_class[2].support, 0);
    assert_eq!(
        roc_auc_ovr_macro(&[0, 0, 1], &p).unwrap_err(),
        MetricsError::MissingClass { class: 2 }
    );
    let mut ragged = p.clone();
    ragged[1] = vec![0.5, 0.5];
    assert_eq!(
        multiclass_report(&y, &ragged, &names(3)).unwrap_err(),
        MetricsError::RaggedRow {
            row: 1,
            expected: 3,
            got: 2
        }
    );
    let mut nan = p.clone();
    nan[2][1] = f64::NAN;
    assert!(matches!(
        multiclass_report(&y, &nan, &names(3)).unwrap_err(),
        MetricsError::NonFinite { index: 2, .. }
    ));
    let mut unnormalised = p.clone();
    unnormalised[0] = vec![0.7, 0.7, 0.1];
    assert!(matches!(
        multiclass_report(&y, &unnormalised, &names(3)).unwrap_err(),
        MetricsError::RowSumNotOne { row: 0, .. }
    ));
    let mut negative = p.clone();
    negative[0] = vec![1.2, -0.1, -0.1];
    assert!(matches!(
        multiclass_report(&y, &negative, &names(3)).unwrap_err(),
        MetricsError::ProbabilityOutOfRange { index: 0, .. }
    ));
    assert_eq!(
        multiclass_report(&[0], &[vec![1.0]], &names(1)).unwrap_err(),
        MetricsError::TooFewClasses(1)
    );
}

#[test]
fn multiclass_argmax_takes_first_maximum() {
    let p = vec![
        vec![0.4, 0.4, 0.2],
        vec![0.2, 0.4, 0.4],
        vec![0.1, 0.1, 0.8],
    ];
    let r = multiclass_report(&[0, 1, 2], &p, &names(3)).unwrap();
    assert_eq!(
        r.confusion,
        vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 1]]
    );
    assert_eq!(r.accuracy, 1.0);
    assert_eq!(r.quadratic_kappa, 1.0);
}

#[test]
fn kappa_errors() {
    assert_eq!(
        quadratic_weighted_kappa(&[1, 1], &[1, 1], 3),
        Err(MetricsError::Undefined(
            "quadratic kappa: truth and prediction are one and the same single class"
        ))
    );
    assert_eq!(
        quadratic_weighted_kappa(&[0, 1], &[0, 5], 3),
        Err(MetricsError::InvalidLabel {
            index: 1,
            label: 5,
            n_classes: 3
        })
    );
    assert_eq!(
        quadratic_weighted_kappa(&[0], &[0], 1),
        Err(MetricsError::TooFewClasses(1))
    );
    // Perfectly reversed ordinal predictions on 3 classes.
    assert_eq!(quadratic_weighted_kappa(&[0, 2], &[2, 0], 3), Ok(-1.0));
}

#[test]
fn errors_display() {
    let e = MetricsError::SingleClass { present: 1 };
    assert!(e.to_string().contains("only class 1"));
}
