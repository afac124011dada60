//! Properties of the confidence intervals (bootstrap, DeLong, Wilson),
//! calibration, temperature scaling and operating-point thresholds.

use medai_metrics::{
    MetricsError, apply_temperature, auc_bootstrap_ci, auc_delong, bootstrap_ci,
    delong_paired_test, expected_calibration_error, fit_temperature, max_calibration_error,
    normal_cdf, normal_quantile, operating_point, quantile_linear, regression_bootstrap,
    reliability_bins, roc_auc, threshold_for_sensitivity, threshold_for_specificity,
    wilson_interval,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A standard normal variate (Box-Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` samples, ~35% positives, logistic scores with separation `sep`.
fn binary_data(n: usize, sep: f64, seed: u64) -> (Vec<usize>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut y = Vec::with_capacity(n);
    let mut s = Vec::with_capacity(n);
    for _ in 0..n {
        let label = usize::from(rng.random::<f64>() < 0.35);
        let logit = sep * (2.0 * label as f64 - 1.0) + 1.1 * gaussian(&mut rng);
        y.push(label);
        s.push(1.0 / (1.0 + (-logit).exp()));
    }
    (y, s)
}

#[test]
fn bootstrap_is_deterministic_for_a_seed() {
    let (y, s) = binary_data(200, 1.0, 1);
    let a = auc_bootstrap_ci(&y, &s, 300, 42, 0.95).unwrap();
    let b = auc_bootstrap_ci(&y, &s, 300, 42, 0.95).unwrap();
    assert_eq!(a, b);
    let c = auc_bootstrap_ci(&y, &s, 300, 43, 0.95).unwrap();
    assert_ne!(
        (a.low, a.high),
        (c.low, c.high),
        "another seed, other resamples"
    );
    assert_eq!(a.estimate, c.estimate);
    assert_eq!(a.method, "bootstrap");
}

#[test]
fn bootstrap_estimate_lies_in_its_interval() {
    for seed in 0..5 {
        let (y, s) = binary_data(150, 0.8, 100 + seed);
        let ci = auc_bootstrap_ci(&y, &s, 400, seed, 0.95).unwrap();
        assert_eq!(ci.estimate, roc_auc(&y, &s).unwrap());
        assert!(ci.contains(ci.estimate), "{ci:?}");
        assert!(ci.low < ci.high);
    }
}

#[test]
fn bootstrap_interval_narrows_with_four_times_the_data() {
    let (y1, s1) = binary_data(150, 0.8, 7);
    let (y4, s4) = binary_data(600, 0.8, 8);
    let small = auc_bootstrap_ci(&y1, &s1, 400, 1, 0.95).unwrap();
    let large = auc_bootstrap_ci(&y4, &s4, 400, 1, 0.95).unwrap();
    // The width scales like 1 / sqrt(n): about half.
    let ratio = large.width() / small.width();
    assert!(ratio < 0.75 && ratio > 0.3, "width ratio {ratio}");

    let d1 = auc_delong(&y1, &s1, 0.95).unwrap();
    let d4 = auc_delong(&y4, &s4, 0.95).unwrap();
    assert!(d4.ci.width() < 0.75 * d1.ci.width());
}

#[test]
fn bootstrap_auc_interval_agrees_with_delong_on_600_samples() {
    let (y, s) = binary_data(600, 1.0, 2024);
    let boot = auc_bootstrap_ci(&y, &s, 1000, 5, 0.95).unwrap();
    let delong = auc_delong(&y, &s, 0.95).unwrap();
    assert_eq!(boot.estimate, delong.auc);
    assert!(
        (boot.low - delong.ci.low).abs() < 0.02 && (boot.high - delong.ci.high).abs() < 0.02,
        "bootstrap {boot:?} vs DeLong {:?}",
        delong.ci
    );
    assert!(boot.overlaps(&delong.ci));
}

/// The bounds are numpy-"linear" quantiles of the resampled statistics, and
/// stratified resamples keep every class count.
#[test]
fn bootstrap_bounds_are_linear_quantiles_of_the_resamples() {
    let (y, s) = binary_data(120, 0.7, 3);
    let positives = y.iter().filter(|&&l| l == 1).count();
    let mut seen = Vec::new();
    let ci = bootstrap_ci(&y, 250, 9, 0.9, true, |idx| {
        assert_eq!(idx.len(), y.len());
        assert_eq!(idx.iter().filter(|&&i| y[i] == 1).count(), positives);
        let sub_y: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        let sub_s: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
        let auc = roc_auc(&sub_y, &sub_s)?;
        seen.push(auc);
        Ok(auc)
    })
    .unwrap();
    // The first call is the point estimate on 0..n.
    assert_eq!(seen.len(), 251);
    assert_eq!(seen[0], ci.estimate);
    let resampled = &seen[1..];
    assert_eq!(ci.low, quantile_linear(resampled, 0.05).unwrap());
    assert_eq!(ci.high, quantile_linear(resampled, 0.95).unwrap());
    // Same seed, same resamples, whatever the statistic.
    let ci2 = auc_bootstrap_ci(&y, &s, 250, 9, 0.9).unwrap();
    assert_eq!((ci.low, ci.high), (ci2.low, ci2.high));
}

#[test]
fn bootstrap_skips_failed_resamples_and_fails_below_half() {
    let y = vec![0usize; 50];
    let mut calls = 0usize;
    // Fails on every other resample: exactly half succeed, which is enough.
    let ci = bootstrap_ci(&y, 100, 1, 0.95, false, |idx| {
        calls += 1;
        if calls > 1 && calls.is_multiple_of(2) {
            Err(MetricsError::Undefined("odd resample"))
        } else {
            Ok(idx.iter().sum::<usize>() as f64)
        }
    });
    assert!(ci.is_ok());
    // Fails on all but the estimate.
    let mut calls = 0usize;
    let err = bootstrap_ci(&y, 100, 1, 0.95, false, |_| {
        calls += 1;
        if calls == 1 { Ok(1.0) } else { Ok(f64::NAN) }
    });
    assert_eq!(
        err,
        Err(MetricsError::BootstrapFailed {
            succeeded: 0,
            resamples: 100
        })
    );
}

#[test]
fn regression_bootstrap_contains_the_estimates() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let y: Vec<f64> = (0..200).map(|_| 50.0 + 10.0 * gaussian(&mut rng)).collect();
    let pred: Vec<f64> = y.iter().map(|v| v + 4.0 * gaussian(&mut rng)).collect();
    let r = medai_metrics::regression_report(&y, &pred).unwrap();
    let ci = regression_bootstrap(&y, &pred, 300, 4, 0.95).unwrap();
    assert_eq!(ci.rmse.estimate, r.rmse);
    assert_eq!(ci.mae.estimate, r.mae);
    assert_eq!(ci.r2.estimate, r.r2);
    for c in [&ci.rmse, &ci.mae, &ci.r2] {
        assert!(c.contains(c.estimate), "{c:?}");
    }
    assert_eq!(ci, regression_bootstrap(&y, &pred, 300, 4, 0.95).unwrap());
}

/// O(m n) DeLong with explicit placement values.
fn delong_brute(y: &[usize], s: &[f64]) -> (f64, f64) {
    let pos: Vec<f64> = (0..y.len()).filter(|&i| y[i] == 1).map(|i| s[i]).collect();
    let neg: Vec<f64> = (0..y.len()).filter(|&i| y[i] == 0).map(|i| s[i]).collect();
    let psi = |x: f64, z: f64| {
        if x > z {
            1.0
        } else if x == z {
            0.5
        } else {
            0.0
        }
    };
    let v10: Vec<f64> = pos
        .iter()
        .map(|&x| neg.iter().map(|&z| psi(x, z)).sum::<f64>() / neg.len() as f64)
        .collect();
    let v01: Vec<f64> = neg
        .iter()
        .map(|&z| pos.iter().map(|&x| psi(x, z)).sum::<f64>() / pos.len() as f64)
        .collect();
    let auc = v10.iter().sum::<f64>() / v10.len() as f64;
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
    };
    (
        auc,
        var(&v10) / pos.len() as f64 + var(&v01) / neg.len() as f64,
    )
}

/// Labels with at least two samples per class, scores on a coarse grid (ties).
fn delong_grid() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    (4usize..50)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(0usize..2, n),
                proptest::collection::vec(0u32..=12, n),
            )
        })
        .prop_map(|(mut y, grid)| {
            y[0] = 0;
            y[1] = 0;
            y[2] = 1;
            y[3] = 1;
            (y, grid.iter().map(|&g| f64::from(g) / 12.0).collect())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_delong_equals_brute_force((y, s) in delong_grid()) {
        let d = auc_delong(&y, &s, 0.95).unwrap();
        let (auc, var) = delong_brute(&y, &s);
        prop_assert!((d.auc - auc).abs() < 1e-12);
        prop_assert!((d.variance - var).abs() < 1e-12, "{} vs {}", d.variance, var);
        prop_assert!(d.ci.low >= 0.0 && d.ci.high <= 1.0 && d.ci.low <= d.auc && d.auc <= d.ci.high);
        prop_assert!(d.se.is_finite());
    }

    #[test]
    fn paired_test_is_antisymmetric((y, s) in delong_grid(), shift in proptest::collection::vec(0u32..=12, 50)) {
        let b: Vec<f64> = s.iter().zip(&shift).map(|(&v, &d)| (v + f64::from(d) / 24.0) / 1.5).collect();
        match (delong_paired_test(&y, &s, &b), delong_paired_test(&y, &b, &s)) {
            (Ok(ab), Ok(ba)) => {
                prop_assert_eq!(ab.diff, -ba.diff);
                prop_assert!((ab.z + ba.z).abs() < 1e-12);
                prop_assert!((ab.p_value - ba.p_value).abs() < 1e-12);
                prop_assert!((0.0..=1.0).contains(&ab.p_value));
            }
            (Err(e1), Err(e2)) => {
                prop_assert_eq!(e1.clone(), e2);
                prop_assert!(matches!(e1, MetricsError::Undefined(_)));
            }
            (r1, r2) => prop_assert!(false, "asymmetric outcome {:?} / {:?}", r1, r2),
        }
        let same = delong_paired_test(&y, &s, &s).unwrap();
        prop_assert_eq!((same.diff, same.z, same.p_value), (0.0, 0.0, 1.0));
    }

    #[test]
    fn thresholds_reach_their_targets_and_are_extreme(
        (y, s) in delong_grid(),
        target in 0.01f64..=1.0,
    ) {
        let t = threshold_for_sensitivity(&y, &s, target).unwrap();
        prop_assert!(s.contains(&t));
        prop_assert!(operating_point("s", &y, &s, t).unwrap().sensitivity >= target);
        // Any larger distinct score misses the target.
        for &u in s.iter().filter(|&&u| u > t) {
            prop_assert!(operating_point("s", &y, &s, u).unwrap().sensitivity < target);
        }

        let t = threshold_for_specificity(&y, &s, target).unwrap();
        prop_assert!(operating_point("s", &y, &s, t).unwrap().specificity >= target);
        for &u in s.iter().filter(|&&u| u < t) {
            prop_assert!(operating_point("s", &y, &s, u).unwrap().specificity < target);
        }
    }

    #[test]
    fn wilson_contains_estimate_and_stays_in_unit_interval(n in 1u64..500, frac in 0.0f64..=1.0, level in 0.5f64..0.999) {
        let k = ((n as f64) * frac).round() as u64;
        let ci = wilson_interval(k, n, level).unwrap();
        prop_assert!(0.0 <= ci.low && ci.low <= ci.estimate && ci.estimate <= ci.high && ci.high <= 1.0);
        // Higher level, wider interval.
        let wider = wilson_interval(k, n, (level + 1.0) / 2.0).unwrap();
        prop_assert!(wider.low <= ci.low && wider.high >= ci.high);
    }

    #[test]
    fn quantile_round_trips_through_cdf(p in 1e-12f64..1.0) {
        let z = normal_quantile(p);
        prop_assert!((normal_cdf(z) - p).abs() <= 1e-14 * p.max(1e-3));
    }

    #[test]
    fn temperature_rows_are_distributions(
        row in proptest::collection::vec(0.0f64..1.0, 2..6),
        t in prop_oneof![Just(1.0), 0.01f64..50.0, Just(f64::INFINITY), Just(0.0), Just(-1.0)],
    ) {
        let out = apply_temperature(&row, t);
        prop_assert_eq!(out.len(), row.len());
        prop_assert!(out.iter().all(|v| v.is_finite() && *v >= 0.0));
        prop_assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // The ordering of the entries is preserved.
        for i in 0..row.len() {
            for j in 0..row.len() {
                if row[i] > row[j] {
                    prop_assert!(out[i] >= out[j]);
                }
            }
        }
    }

    #[test]
    fn calibration_bins_partition_the_samples(
        probs in proptest::collection::vec(0u32..=20, 1..80),
        n_bins in 1usize..25,
    ) {
        let p: Vec<f64> = probs.iter().map(|&g| f64::from(g) / 20.0).collect();
        let y: Vec<usize> = probs.iter().map(|&g| usize::from(g % 3 == 0)).collect();
        let bins = reliability_bins(&y, &p, n_bins).unwrap();
        prop_assert_eq!(bins.len(), n_bins);
        prop_assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), p.len());
        prop_assert_eq!(bins[0].lower, 0.0);
        prop_assert_eq!(bins[n_bins - 1].upper, 1.0);
        for b in &bins {
            if b.count == 0 {
                prop_assert_eq!((b.mean_predicted, b.fraction_positive), (0.0, 0.0));
            } else {
                prop_assert!(b.lower - 1e-12 <= b.mean_predicted && b.mean_predicted <= b.upper + 1e-12);
            }
        }
        let ece = expected_calibration_error(&y, &p, n_bins).unwrap();
        let mce = max_calibration_error(&y, &p, n_bins).unwrap();
        prop_assert!(0.0 <= ece && ece <= mce + 1e-15 && mce <= 1.0);
    }
}

#[test]
fn apply_temperature_special_values() {
    let row = [0.2, 0.3, 0.5];
    assert_eq!(apply_temperature(&row, 1.0), vec![0.2, 0.3, 0.5]);
    // Renormalises (and clamps zeros to 1e-300).
    let r = apply_temperature(&[0.0, 2.0, 2.0], 1.0);
    assert_eq!(r[1], 0.5);
    assert!(r[0] > 0.0 && r[0] < 1e-299);
    assert_eq!(apply_temperature(&row, f64::INFINITY), vec![1.0 / 3.0; 3]);
    assert_eq!(apply_temperature(&row, 0.0), vec![0.0, 0.0, 1.0]);
    assert_eq!(
        apply_temperature(&[0.4, 0.4, 0.2], f64::NAN),
        vec![0.5, 0.5, 0.0]
    );
    assert_eq!(apply_temperature(&[0.4, 0.6], 1e-300), vec![0.0, 1.0]);
    assert!(apply_temperature(&[], 2.0).is_empty());
}

#[test]
fn fit_temperature_cools_overconfident_models() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut y = Vec::new();
    let mut probs = Vec::new();
    for _ in 0..300 {
        let label = rng.random_range(0..3usize);
        let logits: Vec<f64> = (0..3)
            .map(|c| 4.0 * (gaussian(&mut rng) + if c == label { 1.0 } else { 0.0 }))
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        y.push(label);
        probs.push(e.iter().map(|v| v / sum).collect::<Vec<_>>());
    }
    let fit = fit_temperature(&y, &probs).unwrap();
    assert!(fit.temperature > 2.0, "{fit:?}");
    assert!(fit.nll_after < fit.nll_before);
    // The fitted temperature is a minimum: nearby temperatures are worse.
    let nll = |t: f64| {
        y.iter()
            .zip(&probs)
            .map(|(&c, p)| -apply_temperature(p, t)[c].ln())
            .sum::<f64>()
            / y.len() as f64
    };
    assert!((nll(fit.temperature) - fit.nll_after).abs() < 1e-12);
    assert!(nll(fit.temperature * 1.01) > fit.nll_after);
    assert!(nll(fit.temperature / 1.01) > fit.nll_after);
}

#[test]
fn delong_perfect_separation_has_zero_width() {
    let y = [0, 0, 0, 1, 1, 1];
    let s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
    let d = auc_delong(&y, &s, 0.95).unwrap();
    assert_eq!((d.auc, d.variance, d.se), (1.0, 0.0, 0.0));
    assert_eq!((d.ci.low, d.ci.high), (1.0, 1.0));
    // Constant scores: AUC 0.5, zero variance too.
    let c = auc_delong(&y, &[0.5; 6], 0.95).unwrap();
    assert_eq!((c.auc, c.se, c.ci.low, c.ci.high), (0.5, 0.0, 0.5, 0.5));
}

#[test]
fn interval_helpers() {
    let a = wilson_interval(5, 10, 0.95).unwrap();
    let b = wilson_interval(9, 10, 0.95).unwrap();
    let c = wilson_interval(990, 1000, 0.95).unwrap();
    let d = wilson_interval(100, 1000, 0.95).unwrap();
    assert!(a.overlaps(&b) && b.overlaps(&a));
    assert!(!c.overlaps(&d) && !d.overlaps(&c));
    assert!((a.width() - (a.high - a.low)).abs() == 0.0);
    let touching = medai_metrics::ConfidenceInterval {
        estimate: 0.5,
        low: a.high,
        high: 1.0,
        level: 0.95,
        method: "wilson".into(),
    };
    assert!(a.overlaps(&touching));
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(
        serde_json::from_str::<medai_metrics::ConfidenceInterval>(&json).unwrap(),
        a
    );
}
