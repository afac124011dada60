//! The evaluator against direct calls of medai-metrics, and the rendered report and model card.

use medai_report::evaluation::{
    Abstain, CiMethod, EvalInput, EvalOptions, Scored, evaluate, evaluate_regression,
};
use medai_report::report::{CaseImage, ReportContext, render};

/// A deterministic, imperfect binary problem: scores rise with the label plus noise.
fn binary(n: usize, seed: u64) -> (Vec<usize>, Vec<Vec<f64>>) {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut y = Vec::new();
    let mut p = Vec::new();
    for i in 0..n {
        let label = usize::from(i % 3 == 0);
        let score = (0.35 * label as f64 + 0.65 * next()).clamp(0.0, 1.0);
        y.push(label);
        p.push(vec![1.0 - score, score]);
    }
    (y, p)
}

fn classes() -> Vec<String> {
    vec!["normal".into(), "pneumonia".into()]
}

#[test]
fn binary_evaluation_equals_the_metric_functions() {
    let (y, p) = binary(300, 1);
    let (vy, vp) = binary(200, 2);
    let cls = classes();
    let input = EvalInput {
        classes: &cls,
        mode: "binary",
        split: "test",
        data: Scored {
            labels: &y,
            probs: &p,
        },
        uncalibrated: None,
        val: Some(Scored {
            labels: &vy,
            probs: &vp,
        }),
        temperature: 1.0,
        attributes: &[],
    };
    let opts = EvalOptions {
        target_sensitivity: Some(0.9),
        abstain: Some(Abstain::Band {
            low: 0.4,
            high: 0.6,
        }),
        ..EvalOptions::default()
    };
    let ev = evaluate(&input, &opts).unwrap();
    let b = ev.binary.as_ref().unwrap();
    let s: Vec<f64> = p.iter().map(|r| r[1]).collect();
    let vs: Vec<f64> = vp.iter().map(|r| r[1]).collect();
    assert_eq!(b.report, medai_metrics::binary_report(&y, &s, 0.5).unwrap());
    assert_eq!(
        b.auc_ci,
        medai_metrics::auc_delong(&y, &s, 0.95).unwrap().ci
    );
    // Thresholds come from validation, figures from test.
    let youden = medai_metrics::youden_threshold(&vy, &vs).unwrap();
    let t90 = medai_metrics::threshold_for_sensitivity(&vy, &vs, 0.9).unwrap();
    let names: Vec<&str> = b
        .operating_points
        .iter()
        .map(|o| o.point.name.as_str())
        .collect();
    assert_eq!(names, ["default", "youden", "sensitivity>=0.9"]);
    assert_eq!(b.operating_points[1].point.threshold, youden);
    assert_eq!(b.operating_points[2].point.threshold, t90);
    assert_eq!(b.operating_points[2].chosen_on, "val");
    assert_eq!(
        b.operating_points[2].point,
        medai_metrics::operating_point("sensitivity>=0.9", &y, &s, t90).unwrap()
    );
    assert_eq!(
        ev.calibration.ece,
        medai_metrics::expected_calibration_error(&y, &s, 10).unwrap()
    );
    // Abstention counts the band exactly.
    let referred = s.iter().filter(|&&v| (0.4..=0.6).contains(&v)).count();
    assert_eq!(ev.abstention.as_ref().unwrap().referred, referred);
    // Hardest errors: the most confident wrong answers, in order.
    let fp = &ev.hardest_false_positives;
    assert!(!fp.is_empty() && fp.windows(2).all(|w| w[0].confidence >= w[1].confidence));
    for c in fp {
        assert_eq!((y[c.index], c.predicted), (0, 1));
    }
    let max_fp = (0..y.len())
        .filter(|&i| y[i] == 0 && s[i] >= 0.5)
        .map(|i| s[i])
        .fold(0.0, f64::max);
    assert_eq!(fp[0].confidence, max_fp);

    let v = ev.summary();
    for k in [
        "auc",
        "auc_ci",
        "pr_auc",
        "brier",
        "ece",
        "mcc",
        "balanced_accuracy",
        "operating_points",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "f1",
        "n",
    ] {
        assert!(v.get(k).is_some(), "summary lacks {k}");
    }
    assert_eq!(v["auc_ci"][0], b.auc_ci.low);

    // The report renders every section and is well-formed XML.
    let html = render(
        &ev,
        &ReportContext {
            title: "t <&>".into(),
            cases: vec![CaseImage {
                data_uri: "data:image/png;base64,iVBORw0KGgo=".into(),
                caption: "case".into(),
                kind: "false-positive".into(),
            }],
            ..ReportContext::default()
        },
    );
    crate::xml::assert_well_formed(&html);
    for s in [
        "ROC curve",
        "Operating points",
        "Reliability diagram",
        "Referral",
        "False positives",
    ] {
        assert!(html.contains(s), "{s}");
    }
}

#[test]
fn bootstrap_ci_subgroups_and_multiclass() {
    let (y, p) = binary(400, 3);
    let cls = classes();
    let attrs: Vec<Vec<(String, String)>> = (0..y.len())
        .map(|i| {
            vec![(
                "site".to_string(),
                if i % 2 == 0 { "a" } else { "b" }.to_string(),
            )]
        })
        .collect();
    let input = EvalInput {
        classes: &cls,
        mode: "binary",
        split: "test",
        data: Scored {
            labels: &y,
            probs: &p,
        },
        uncalibrated: Some(&p),
        val: None,
        temperature: 1.0,
        attributes: &attrs,
    };
    let opts = EvalOptions {
        ci: CiMethod::Bootstrap {
            resamples: 500,
            seed: 9,
        },
        ..EvalOptions::default()
    };
    let ev = evaluate(&input, &opts).unwrap();
    let b = ev.binary.as_ref().unwrap();
    let s: Vec<f64> = p.iter().map(|r| r[1]).collect();
    assert_eq!(
        b.auc_ci,
        medai_metrics::auc_bootstrap_ci(&y, &s, 500, 9, 0.95).unwrap()
    );
    assert_eq!(b.operating_points[1].chosen_on, "test");
    let groups: Vec<&str> = b.subgroups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(groups, ["a", "b"]);
    assert_eq!(b.subgroups.iter().map(|g| g.n).sum::<usize>(), 400);

    // Three classes: macro AUC with a bootstrap interval, per-class DeLong intervals.
    let y3: Vec<usize> = (0..300).map(|i| i % 3).collect();
    let p3: Vec<Vec<f64>> = y3
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let mut r = [0.2, 0.2, 0.2];
            r[l] += 0.2 + 0.3 * ((i * 7919 % 97) as f64 / 97.0);
            r[(l + 1 + i % 2) % 3] += 0.25;
            let t: f64 = r.iter().sum();
            r.iter().map(|v| v / t).collect()
        })
        .collect();
    let cls3: Vec<String> = ["mild", "moderate", "severe"].map(String::from).to_vec();
    let eval3 = |labels: &[usize], probs: &[Vec<f64>], mode: &str| {
        evaluate(
            &EvalInput {
                classes: &cls3,
                mode,
                split: "test",
                data: Scored { labels, probs },
                uncalibrated: None,
                val: None,
                temperature: 1.0,
                attributes: &[],
            },
            &EvalOptions::default(),
        )
        .unwrap()
    };
    let ev3 = eval3(&y3, &p3, "ordinal");
    let m = ev3.multiclass.as_ref().unwrap();
    assert_eq!(
        m.report,
        medai_metrics::multiclass_report(&y3, &p3, &cls3).unwrap()
    );
    assert!(m.auc_ci.contains(m.report.auc_macro_ovr.unwrap()));
    assert_eq!(m.per_class_auc_ci.len(), 3);
    let v = ev3.summary();
    assert_eq!(v["auc"], m.report.auc_macro_ovr.unwrap());
    assert!(v.get("quadratic_kappa").is_some());
    let html = render(&ev3, &ReportContext::default());
    crate::xml::assert_well_formed(&html);
    assert!(html.contains("One-vs-rest ROC curves"));

    // A split without any "severe" case (a subset, an external site): every figure but the
    // macro AUC is still reported, and the summary says why that one is missing.
    let keep: Vec<usize> = (0..300).filter(|&i| y3[i] != 2).collect();
    let (y2, p2): (Vec<usize>, Vec<Vec<f64>>) =
        keep.iter().map(|&i| (y3[i], p3[i].clone())).unzip();
    let ev2 = eval3(&y2, &p2, "multiclass");
    let v = ev2.summary();
    assert_eq!(v["n"], 200);
    assert_eq!(v["auc"], serde_json::Value::Null);
    assert!(v.get("auc_ci").is_none(), "{v}");
    assert_eq!(
        v["auc_note"],
        "macro AUC undefined: no sample of severe in this split"
    );
    let top = |p: &Vec<f64>| (0..3).fold(0, |b, c| if p[c] > p[b] { c } else { b });
    let acc = y2.iter().zip(&p2).filter(|(y, p)| top(p) == **y).count();
    assert_eq!(v["accuracy"], acc as f64 / 200.0);
    crate::xml::assert_well_formed(&render(&ev2, &ReportContext::default()));
}

#[test]
fn regression_and_bad_input() {
    let y: Vec<f64> = (0..50).map(|i| i as f64).collect();
    let pred: Vec<f64> = y
        .iter()
        .map(|v| v + if *v as i64 % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let r = evaluate_regression("test", &y, &pred, 200, 1, 0.95).unwrap();
    assert!((r.report.rmse - 1.0).abs() < 1e-12 && (r.report.mae - 1.0).abs() < 1e-12);
    assert_eq!(r.summary()["rmse"], 1.0);
    assert!(evaluate_regression("test", &y, &pred[..10], 200, 1, 0.95).is_err());
    // A split with one class cannot have an AUC: an error, not NaN.
    let cls = classes();
    let y = vec![1usize; 10];
    let p = vec![vec![0.3, 0.7]; 10];
    let e = evaluate(
        &EvalInput {
            classes: &cls,
            mode: "binary",
            split: "test",
            data: Scored {
                labels: &y,
                probs: &p,
            },
            uncalibrated: None,
            val: None,
            temperature: 1.0,
            attributes: &[],
        },
        &EvalOptions::default(),
    );
    assert!(e.is_err());
    assert!(Abstain::parse("0.7,0.2").is_err());
    assert_eq!(
        Abstain::parse("0.8").unwrap(),
        Abstain::MinConfidence { min: 0.8 }
    );
}
