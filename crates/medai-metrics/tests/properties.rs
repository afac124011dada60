//! Property tests (proptest) for the threshold-free metrics.

use medai_metrics::{
    average_precision, binary_report, quadratic_weighted_kappa, roc_auc, roc_curve,
    youden_threshold,
};
use proptest::prelude::*;

/// Two-class labels (both present) with scores on a coarse grid in `[-1, 1]`,
/// so that ties are frequent.
fn two_class_grid() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    (2usize..60)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(0usize..2, n),
                proptest::collection::vec(0u32..=20, n),
            )
        })
        .prop_map(|(mut y, grid)| {
            // Make sure both classes are present.
            y[0] = 0;
            y[1] = 1;
            let s = grid.iter().map(|&g| f64::from(g) / 10.0 - 1.0).collect();
            (y, s)
        })
}

/// O(n^2) Mann-Whitney reference with half credit for ties.
fn pairwise_auc(y: &[usize], s: &[f64]) -> f64 {
    let mut wins = 0.0;
    let mut pairs = 0.0;
    for i in 0..y.len() {
        for j in 0..y.len() {
            if y[i] == 1 && y[j] == 0 {
                pairs += 1.0;
                if s[i] > s[j] {
                    wins += 1.0;
                } else if s[i] == s[j] {
                    wins += 0.5;
                }
            }
        }
    }
    wins / pairs
}

proptest! {
    #[test]
    fn auc_of_negated_scores_is_complement((y, s) in two_class_grid()) {
        let neg: Vec<f64> = s.iter().map(|v| -v).collect();
        let a = roc_auc(&y, &s).unwrap();
        let b = roc_auc(&y, &neg).unwrap();
        prop_assert!((a - (1.0 - b)).abs() <= 1e-12, "{} vs 1 - {}", a, b);
    }

    #[test]
    fn auc_invariant_under_monotone_transforms((y, s) in two_class_grid()) {
        let a = roc_auc(&y, &s).unwrap();
        let transforms: [fn(f64) -> f64; 4] = [
            |x| 3.0 * x + 1.0,
            f64::exp,
            |x| x * x * x + x,
            f64::atan,
        ];
        for t in transforms {
            let ts: Vec<f64> = s.iter().map(|&v| t(v)).collect();
            prop_assert_eq!(roc_auc(&y, &ts).unwrap(), a);
        }
        // A monotone transform leaves average precision unchanged too.
        let ts: Vec<f64> = s.iter().map(|&v| v.exp()).collect();
        prop_assert_eq!(average_precision(&y, &ts).unwrap(), average_precision(&y, &s).unwrap());
    }

    #[test]
    fn auc_equals_pairwise_reference((y, s) in two_class_grid()) {
        let a = roc_auc(&y, &s).unwrap();
        prop_assert!((a - pairwise_auc(&y, &s)).abs() <= 1e-12);
        prop_assert!((0.0..=1.0).contains(&a));
    }

    #[test]
    fn roc_curve_is_monotone_and_complete((y, s) in two_class_grid()) {
        let (fpr, tpr, thr) = roc_curve(&y, &s).unwrap();
        prop_assert_eq!(fpr[0], 0.0);
        prop_assert_eq!(tpr[0], 0.0);
        prop_assert_eq!(*fpr.last().unwrap(), 1.0);
        prop_assert_eq!(*tpr.last().unwrap(), 1.0);
        prop_assert_eq!(thr[0], f64::INFINITY);
        for w in 1..fpr.len() {
            prop_assert!(fpr[w] >= fpr[w - 1] && tpr[w] >= tpr[w - 1]);
            prop_assert!(thr[w] < thr[w - 1]);
        }
    }

    #[test]
    fn youden_threshold_maximises_j((y, s) in two_class_grid()) {
        let t = youden_threshold(&y, &s).unwrap();
        prop_assert!(s.contains(&t));
        let j = |thr: f64| {
            let (mut tp, mut fp, mut p, mut n) = (0.0, 0.0, 0.0, 0.0);
            for (&yi, &si) in y.iter().zip(&s) {
                if yi == 1 { p += 1.0; if si >= thr { tp += 1.0; } }
                else { n += 1.0; if si >= thr { fp += 1.0; } }
            }
            tp / p - fp / n
        };
        let best = j(t);
        for &c in &s {
            prop_assert!(j(c) <= best + 1e-12);
            // Ties go to the highest threshold.
            if c > t { prop_assert!(j(c) < best - 1e-12); }
        }
    }

    #[test]
    fn binary_report_never_nan(
        (y, s) in two_class_grid(),
        threshold in -0.5f64..1.5,
    ) {
        let probs: Vec<f64> = s.iter().map(|v| (v + 1.0) / 2.0).collect();
        let r = binary_report(&y, &probs, threshold).unwrap();
        for v in [r.auc, r.average_precision, r.accuracy, r.balanced_accuracy, r.sensitivity,
                  r.specificity, r.ppv, r.npv, r.f1, r.mcc, r.brier, r.log_loss] {
            prop_assert!(v.is_finite());
        }
        prop_assert_eq!(r.confusion.total() as usize, y.len());
    }

    #[test]
    fn quadratic_kappa_is_symmetric_and_bounded(
        pairs in proptest::collection::vec((0usize..4, 0usize..4), 2..80),
    ) {
        let mut y: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let p: Vec<usize> = pairs.iter().map(|p| p.1).collect();
        y[0] = 0;
        y[1] = 3;
        let a = quadratic_weighted_kappa(&y, &p, 4).unwrap();
        let b = quadratic_weighted_kappa(&p, &y, 4).unwrap();
        prop_assert!((a - b).abs() <= 1e-12);
        prop_assert!((-1.0 - 1e-12..=1.0 + 1e-12).contains(&a));
        prop_assert_eq!(quadratic_weighted_kappa(&y, &y, 4).unwrap(), 1.0);
    }
}
