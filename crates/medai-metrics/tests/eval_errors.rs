//! Edge cases of the evaluation extras: typed errors (never a panic, never
//! NaN) for single-class input, empty input, out-of-range levels and targets.

use medai_metrics::{
    MetricsError, auc_bootstrap_ci, auc_delong, bootstrap_ci, delong_paired_test,
    expected_calibration_error, fit_temperature, max_calibration_error, multilabel_report,
    normal_cdf, normal_quantile, operating_point, quantile_linear, regression_bootstrap,
    regression_report, reliability_bins, roc_auc_ovr_micro, subgroup_binary,
    threshold_for_sensitivity, threshold_for_specificity, top_label_ece, wilson_interval,
};

const BAD_LEVELS: [f64; 5] = [0.0, 1.0, -0.1, 1.5, f64::NAN];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn is_invalid_level(r: Result<impl std::fmt::Debug, MetricsError>) -> bool {
    matches!(r, Err(MetricsError::InvalidLevel(_)))
}

#[test]
fn single_class_is_an_error_not_nan() {
    let y1 = [1, 1, 1, 1];
    let y0 = [0, 0, 0, 0];
    let s = [0.1, 0.4, 0.5, 0.9];
    let one = MetricsError::SingleClass { present: 1 };
    let zero = MetricsError::SingleClass { present: 0 };
    assert_eq!(auc_delong(&y1, &s, 0.95), Err(one.clone()));
    assert_eq!(auc_delong(&y0, &s, 0.95), Err(zero.clone()));
    assert_eq!(delong_paired_test(&y1, &s, &s), Err(one.clone()));
    assert_eq!(auc_bootstrap_ci(&y0, &s, 10, 1, 0.95), Err(zero.clone()));
    assert_eq!(threshold_for_sensitivity(&y0, &s, 0.9), Err(zero.clone()));
    assert_eq!(threshold_for_specificity(&y1, &s, 0.9), Err(one.clone()));
    let g = strings(&["a", "a", "b", "b"]);
    assert_eq!(subgroup_binary("site", &y1, &s, &g, 0.5, 0.95), Err(one));
    // But the single-class-safe metrics work.
    assert_eq!(threshold_for_sensitivity(&y1, &s, 0.5).unwrap(), 0.5);
    assert_eq!(threshold_for_specificity(&y0, &s, 0.5).unwrap(), 0.5);
    assert!(reliability_bins(&y0, &s, 4).is_ok());
}

#[test]
fn delong_needs_two_samples_per_class() {
    let y = [0, 0, 0, 1];
    let s = [0.1, 0.2, 0.3, 0.9];
    assert_eq!(
        auc_delong(&y, &s, 0.95),
        Err(MetricsError::TooFewPerClass {
            positives: 1,
            negatives: 3,
            needed: 2
        })
    );
    // A bootstrap still works with one positive (stratified: it is always drawn).
    let ci = auc_bootstrap_ci(&y, &s, 50, 1, 0.95).unwrap();
    assert_eq!((ci.estimate, ci.low, ci.high), (1.0, 1.0, 1.0));
}

#[test]
fn empty_input_is_an_error() {
    let e = Err(MetricsError::Empty);
    assert_eq!(auc_delong(&[], &[], 0.95).map(|_| ()), e);
    assert_eq!(delong_paired_test(&[], &[], &[]).map(|_| ()), e);
    assert_eq!(auc_bootstrap_ci(&[], &[], 10, 1, 0.95).map(|_| ()), e);
    assert_eq!(
        bootstrap_ci(&[], 10, 1, 0.95, false, |_| Ok(1.0)).map(|_| ()),
        e
    );
    assert_eq!(wilson_interval(0, 0, 0.95).map(|_| ()), e);
    assert_eq!(reliability_bins(&[], &[], 10).map(|_| ()), e);
    assert_eq!(expected_calibration_error(&[], &[], 10).map(|_| ()), e);
    assert_eq!(max_calibration_error(&[], &[], 10).map(|_| ()), e);
    assert_eq!(top_label_ece(&[], &[], 10).map(|_| ()), e);
    assert_eq!(fit_temperature(&[], &[]).map(|_| ()), e);
    assert_eq!(roc_auc_ovr_micro(&[], &[]).map(|_| ()), e);
    assert_eq!(regression_report(&[], &[]).map(|_| ()), e);
    assert_eq!(regression_bootstrap(&[], &[], 10, 1, 0.95).map(|_| ()), e);
    assert_eq!(
        multilabel_report(&[], &[], &strings(&["a"]), 0.5).map(|_| ()),
        e
    );
    assert_eq!(operating_point("x", &[], &[], 0.5).map(|_| ()), e);
    assert_eq!(threshold_for_sensitivity(&[], &[], 0.5).map(|_| ()), e);
    assert_eq!(threshold_for_specificity(&[], &[], 0.5).map(|_| ()), e);
    assert_eq!(quantile_linear(&[], 0.5).map(|_| ()), e);
    assert_eq!(
        subgroup_binary("a", &[], &[], &[], 0.5, 0.95).map(|_| ()),
        e
    );
}

#[test]
fn levels_outside_the_open_unit_interval_are_errors() {
    let y = [0, 0, 1, 1, 0, 1];
    let s = [0.1, 0.3, 0.4, 0.8, 0.5, 0.6];
    let g = strings(&["a", "b", "a", "b", "a", "b"]);
    let yr = [1.0, 2.0, 3.0];
    for level in BAD_LEVELS {
        assert!(is_invalid_level(auc_delong(&y, &s, level)), "{level}");
        assert!(is_invalid_level(auc_bootstrap_ci(&y, &s, 10, 1, level)));
        assert!(is_invalid_level(bootstrap_ci(
            &y,
            10,
            1,
            level,
            true,
            |_| Ok(0.0)
        )));
        assert!(is_invalid_level(wilson_interval(3, 10, level)));
        assert!(is_invalid_level(regression_bootstrap(
            &yr, &yr, 10, 1, level
        )));
        assert!(is_invalid_level(subgroup_binary(
            "a", &y, &s, &g, 0.5, level
        )));
    }
}

#[test]
fn other_parameter_errors() {
    let y = [0, 0, 1, 1];
    let s = [0.1, 0.3, 0.4, 0.8];
    assert_eq!(
        auc_bootstrap_ci(&y, &s, 0, 1, 0.95),
        Err(MetricsError::InvalidResamples(0))
    );
    assert_eq!(
        wilson_interval(11, 10, 0.95),
        Err(MetricsError::InvalidCount {
            successes: 11,
            n: 10
        })
    );
    for target in [0.0, -0.1, 1.1, f64::NAN] {
        assert!(matches!(
            threshold_for_sensitivity(&y, &s, target),
            Err(MetricsError::InvalidTarget(_))
        ));
        assert!(matches!(
            threshold_for_specificity(&y, &s, target),
            Err(MetricsError::InvalidTarget(_))
        ));
    }
    assert_eq!(
        reliability_bins(&y, &s, 0),
        Err(MetricsError::InvalidBins(0))
    );
    assert_eq!(
        expected_calibration_error(&y, &[0.1, 0.3, 1.4, 0.8], 5),
        Err(MetricsError::ProbabilityOutOfRange {
            index: 2,
            value: 1.4
        })
    );
    for q in [-0.01, 1.01, f64::NAN] {
        assert!(matches!(
            quantile_linear(&[1.0, 2.0], q),
            Err(MetricsError::InvalidQuantile(_))
        ));
    }
    assert!(matches!(
        quantile_linear(&[1.0, f64::NAN], 0.5),
        Err(MetricsError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        operating_point("x", &y, &s, f64::NAN),
        Err(MetricsError::InvalidThreshold(_))
    ));
    assert!(matches!(
        operating_point("x", &y, &s, f64::INFINITY),
        Err(MetricsError::InvalidThreshold(_))
    ));
    assert_eq!(
        delong_paired_test(&y, &s, &[0.1, 0.2]),
        Err(MetricsError::LengthMismatch {
            y_true: 4,
            other: 2
        })
    );
}

#[test]
fn paired_test_with_zero_variance_difference_is_undefined() {
    // A perfect score against a constant one: AUC 1 vs 0.5 with zero variance.
    let y = [0, 0, 1, 1];
    let perfect = [0.1, 0.2, 0.8, 0.9];
    let constant = [0.5; 4];
    assert!(matches!(
        delong_paired_test(&y, &perfect, &constant),
        Err(MetricsError::Undefined(_))
    ));
}

#[test]
fn specificity_target_beyond_the_scores_gives_the_next_float() {
    // The highest score belongs to a negative: full specificity needs a
    // threshold above every score.
    let y = [1, 0, 1, 0];
    let s = [0.3, 0.9, 0.6, 0.1];
    let t = threshold_for_specificity(&y, &s, 1.0).unwrap();
    assert_eq!(t, 0.9f64.next_up());
    let op = operating_point("spec=1", &y, &s, t).unwrap();
    assert_eq!((op.specificity, op.sensitivity), (1.0, 0.0));
}

#[test]
fn multilabel_errors() {
    let labels = strings(&["a", "b"]);
    let y = vec![vec![0u8, 1], vec![1, 0]];
    let p = vec![vec![0.2, 0.7], vec![0.6, 0.1]];
    assert!(multilabel_report(&y, &p, &labels, 0.5).is_ok());
    assert_eq!(
        multilabel_report(&[vec![0, 2], vec![1, 0]], &p, &labels, 0.5),
        Err(MetricsError::InvalidLabel {
            index: 0,
            label: 2,
            n_classes: 2
        })
    );
    assert_eq!(
        multilabel_report(&y, &[vec![0.2, 0.7], vec![0.6]], &labels, 0.5),
        Err(MetricsError::RaggedRow {
            row: 1,
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        multilabel_report(&y, &p, &strings(&["a"]), 0.5),
        Err(MetricsError::RaggedRow {
            row: 0,
            expected: 1,
            got: 2
        })
    );
    assert_eq!(
        multilabel_report(&y, &[vec![0.2, 1.7], vec![0.6, 0.1]], &labels, 0.5),
        Err(MetricsError::ProbabilityOutOfRange {
            index: 0,
            value: 1.7
        })
    );
    assert!(matches!(
        multilabel_report(&y, &p, &labels, f64::NAN),
        Err(MetricsError::InvalidThreshold(_))
    ));
    // Every column single-class: the macro AUC is undefined.
    let y1 = vec![vec![1u8, 0], vec![1, 0]];
    assert_eq!(
        multilabel_report(&y1, &p, &labels, 0.5),
        Err(MetricsError::NoLabelWithBothClasses)
    );
    assert_eq!(
        multilabel_report(&[vec![], vec![]], &[vec![], vec![]], &[], 0.5),
        Err(MetricsError::NoLabelWithBothClasses)
    );
}

#[test]
fn regression_edge_cases() {
    assert_eq!(
        regression_report(&[1.0, 2.0], &[1.0]),
        Err(MetricsError::LengthMismatch {
            y_true: 2,
            other: 1
        })
    );
    assert!(matches!(
        regression_report(&[1.0, f64::INFINITY], &[1.0, 2.0]),
        Err(MetricsError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        regression_report(&[1e300, -1e300], &[-1e300, 1e300]),
        Err(MetricsError::Undefined(_))
    ));
    // A single sample: constant target, so R^2 is 1 if perfect else 0.
    let r = regression_report(&[3.0], &[2.0]).unwrap();
    assert_eq!((r.rmse, r.mae, r.r2, r.pearson), (1.0, 1.0, 0.0, 0.0));
    assert_eq!(regression_report(&[3.0], &[3.0]).unwrap().r2, 1.0);
    // A constant whose mean is not exact still counts as constant.
    let r = regression_report(&[0.1, 0.1, 0.1], &[0.1, 0.2, 0.1]).unwrap();
    assert_eq!((r.r2, r.pearson), (0.0, 0.0));
}

#[test]
fn temperature_and_top_label_validate_like_multiclass() {
    assert_eq!(
        fit_temperature(&[0, 1], &[vec![0.5, 0.5], vec![0.9, 0.3]]),
        Err(MetricsError::RowSumNotOne { row: 1, sum: 1.2 })
    );
    assert_eq!(
        top_label_ece(&[0, 2], &[vec![0.5, 0.5], vec![0.7, 0.3]], 5),
        Err(MetricsError::InvalidLabel {
            index: 1,
            label: 2,
            n_classes: 2
        })
    );
    assert_eq!(
        top_label_ece(&[0, 1], &[vec![0.5, 0.5], vec![0.7, 0.3]], 0),
        Err(MetricsError::InvalidBins(0))
    );
}

#[test]
fn normal_helpers_at_the_edges() {
    assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(1.0), f64::INFINITY);
    assert_eq!(normal_quantile(-1.0), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(0.5), 0.0);
    assert!(normal_quantile(f64::NAN).is_nan());
    assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    assert_eq!(normal_cdf(f64::INFINITY), 1.0);
    assert_eq!(normal_cdf(-50.0), 0.0);
    assert_eq!(normal_cdf(0.0), 0.5);
    assert!(normal_cdf(f64::NAN).is_nan());
}

#[test]
fn subgroups_handle_tiny_and_one_class_groups() {
    let y = [1, 0, 1, 0, 1, 0, 1, 0, 0, 1];
    let s = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.45, 0.55];
    let g = strings(&["b", "b", "b", "b", "b", "b", "a", "a", "c", "d"]);
    let r = subgroup_binary("site", &y, &s, &g, 0.5, 0.95).unwrap();
    let names: Vec<&str> = r.iter().map(|x| x.group.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    // "a": one positive and one negative, so no DeLong AUC.
    assert!(r[0].auc.is_none() && r[0].sensitivity.is_some() && r[0].specificity.is_some());
    // "c": negatives only; "d": positives only.
    assert!(r[2].sensitivity.is_none() && r[2].specificity.is_some() && r[2].auc.is_none());
    assert!(r[3].sensitivity.is_some() && r[3].specificity.is_none());
    assert!(r.iter().all(|x| x.attribute == "site"));
    assert_eq!(r.iter().map(|x| x.n).sum::<usize>(), y.len());
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<medai_metrics::SubgroupResult>>(&json).unwrap(),
        r
    );
    assert_eq!(
        subgroup_binary("site", &y, &s, &g[..3], 0.5, 0.95),
        Err(MetricsError::LengthMismatch {
            y_true: 10,
            other: 3
        })
    );
}
