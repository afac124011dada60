//! Confidence intervals: DeLong's AUC variance and paired test, percentile
//! bootstrap, the Wilson score interval, and the normal-distribution helpers
//! they need.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::curve::{ClfCurve, binary_curve, single_class};
use crate::{MetricsError, binary_labels, check_finite, check_lengths};

/// A two-sided confidence interval around a point estimate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConfidenceInterval {
    /// The point estimate (computed on the full sample).
    pub estimate: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Nominal coverage, for example `0.95`.
    pub level: f64,
    /// How the interval was computed: `"delong"`, `"bootstrap"` or `"wilson"`.
    pub method: String,
}

impl ConfidenceInterval {
    /// `high - low`.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }

    /// Whether the two closed intervals `[low, high]` share at least one point
    /// (touching intervals overlap).
    pub fn overlaps(&self, other: &ConfidenceInterval) -> bool {
        self.low <= other.high && other.low <= self.high
    }

    /// Whether `x` lies in the closed interval `[low, high]`.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// DeLong estimate of an AUC's variance, with its normal-approximation
/// confidence interval.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DelongAuc {
    /// ROC AUC (identical to [`roc_auc`](crate::roc_auc)).
    pub auc: f64,
    /// DeLong variance of the AUC, `S10 / m + S01 / n`.
    pub variance: f64,
    /// Standard error, `sqrt(variance)`.
    pub se: f64,
    /// `auc ± z * se` clipped to `[0, 1]` (method `"delong"`).
    pub ci: ConfidenceInterval,
}

/// DeLong's test for the difference of two correlated AUCs (two scores of the
/// same samples).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DelongComparison {
    /// AUC of `scores_a`.
    pub auc_a: f64,
    /// AUC of `scores_b`.
    pub auc_b: f64,
    /// `auc_a - auc_b`.
    pub diff: f64,
    /// Standard error of `diff`.
    pub se: f64,
    /// `diff / se` (`0.0` when both are zero).
    pub z: f64,
    /// Two-sided p-value `2 * (1 - Phi(|z|))`.
    pub p_value: f64,
}

/// Checks a confidence level lies strictly between 0 and 1.
pub(crate) fn check_level(level: f64) -> Result<(), MetricsError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidLevel(level))
    }
}

/// The two-sided critical value `z_{(1 + level) / 2}`.
pub(crate) fn two_sided_z(level: f64) -> f64 {
    normal_quantile(0.5 + level / 2.0)
}

/// Evaluates `c[0] + c[1] x + ... + c[k] x^k` (Horner's rule).
fn horner(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

/// Quantile function (inverse CDF) of the standard normal distribution,
/// Wichura's algorithm AS 241 (`PPND16`), accurate to a few 1e-16 relative.
///
/// `p <= 0` gives `-inf`, `p >= 1` gives `+inf`. A NaN argument is returned
/// unchanged (this pure-math helper is the only NaN-in, NaN-out function of the
/// crate; every metric validates its input instead).
///
/// ```
/// let z = medai_metrics::normal_quantile(0.975);
/// assert!((z - 1.959963984540054).abs() < 1e-15);
/// ```
// The coefficients are kept digit for digit as published, to ease checking the
// transcription.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];

    if p.is_nan() {
        return p;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q * horner(&A, r) / horner(&B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let value = if r <= 5.0 {
        let r = r - 1.6;
        horner(&C, r) / horner(&D, r)
    } else {
        let r = r - 5.0;
        horner(&E, r) / horner(&F, r)
    };
    if q < 0.0 { -value } else { value }
}

/// Cody's rational approximation of the scaled complementary error function
/// `erfcx(y) = exp(y^2) erfc(y)` for `0.46875 < y` (netlib `specfun/erf`,
/// `CALERF`), accurate to about 1e-16 relative.
// The coefficients are kept digit for digit as published, to ease checking the
// transcription.
#[allow(clippy::excessive_precision)]
fn erfcx_tail(y: f64) -> f64 {
    const C: [f64; 9] = [
        5.641_884_969_886_700_89e-1,
        8.883_149_794_388_375_94,
        6.611_919_063_714_162_95e1,
        2.986_351_381_974_001_31e2,
        8.819_522_212_417_690_9e2,
        1.712_047_612_634_070_58e3,
        2.051_078_377_826_071_47e3,
        1.230_339_354_797_997_25e3,
        2.153_115_354_744_038_46e-8,
    ];
    const D: [f64; 8] = [
        1.574_492_611_070_983_47e1,
        1.176_939_508_913_124_99e2,
        5.371_811_018_620_098_58e2,
        1.621_389_574_566_690_19e3,
        3.290_799_235_733_459_63e3,
        4.362_619_090_143_247_16e3,
        3.439_367_674_143_721_64e3,
        1.230_339_354_803_749_42e3,
    ];
    const P: [f64; 6] = [
        3.053_266_349_612_323_44e-1,
        3.603_448_999_498_044_39e-1,
        1.257_817_261_112_292_46e-1,
        1.608_378_514_874_227_66e-2,
        6.587_491_615_298_378_03e-4,
        1.631_538_713_730_209_78e-2,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822_42,
        1.872_952_849_923_460_47,
        5.279_051_029_514_284_12e-1,
        6.051_834_131_244_131_91e-2,
        2.335_204_976_268_691_85e-3,
    ];
    const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_286_95;
    const XHUGE: f64 = 6.71e7;

    if y <= 4.0 {
        let mut num = C[8] * y;
        let mut den = y;
        for i in 0..7 {
            num = (num + C[i]) * y;
            den = (den + D[i]) * y;
        }
        (num + C[7]) / (den + D[7])
    } else if y >= XHUGE {
        FRAC_1_SQRT_PI / y
    } else {
        let ysq = 1.0 / (y * y);
        let mut num = P[5] * ysq;
        let mut den = ysq;
        for i in 0..4 {
            num = (num + P[i]) * ysq;
            den = (den + Q[i]) * ysq;
        }
        let r = ysq * (num + P[4]) / (den + Q[4]);
        (FRAC_1_SQRT_PI - r) / y
    }
}

/// `exp(-a^2 / k)` for `k` in `{1, 2}` and finite `0 <= a <= 40`, computed
/// as `exp(-h^2 / k) exp(-(a - h)(a + h) / k)` with `h` = `a` truncated to a
/// multiple of 1/16, so that `h^2` is exact and the relative error stays near
/// machine precision even where `a^2` is large (Cody's device).
fn gauss(a: f64, k: f64) -> f64 {
    let h = (a * 16.0).trunc() / 16.0;
    let del = (a - h) * (a + h);
    (-h * h / k).exp() * (-del / k).exp()
}

/// Complementary error function, W. J. Cody's rational Chebyshev
/// approximations (netlib `specfun/erf`), accurate to about 1e-16 relative.
// The coefficients are kept digit for digit as published, to ease checking the
// transcription.
#[allow(clippy::excessive_precision)]
fn erfc(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        1.138_641_541_510_501_56e2,
        3.774_852_376_853_020_21e2,
        3.209_377_589_138_469_47e3,
        1.857_777_061_846_031_53e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_09e1,
        2.440_246_379_344_441_73e2,
        1.282_616_526_077_372_28e3,
        2.844_236_833_439_170_62e3,
    ];
    const XBIG: f64 = 26.543;

    if x.is_nan() {
        return x;
    }
    let y = x.abs();
    if y <= 0.468_75 {
        let ysq = if y > 1.11e-16 { y * y } else { 0.0 };
        let mut num = A[4] * ysq;
        let mut den = ysq;
        for i in 0..3 {
            num = (num + A[i]) * ysq;
            den = (den + B[i]) * ysq;
        }
        return 1.0 - x * (num + A[3]) / (den + B[3]);
    }
    let upper = if y >= XBIG {
        0.0
    } else {
        gauss(y, 1.0) * erfcx_tail(y)
    };
    if x < 0.0 { 2.0 - upper } else { upper }
}

/// `Phi(-a)` for `a >= 0`: the upper tail of the standard normal
/// distribution, accurate to about 1e-15 relative however small it is.
fn normal_tail(a: f64) -> f64 {
    let y = a / std::f64::consts::SQRT_2;
    if y <= 0.468_75 {
        0.5 * erfc(y)
    } else if a > 40.0 {
        0.0 // below the smallest subnormal
    } else {
        // erfc(y) = exp(-y^2) erfcx(y) with exp(-y^2) = exp(-a^2 / 2) taken
        // from `a` itself: rounding `a / sqrt 2` then only perturbs the slowly
        // varying erfcx, not the exponential.
        0.5 * erfcx_tail(y) * gauss(a, 2.0)
    }
}

/// Cumulative distribution function of the standard normal distribution,
/// `Phi(x)`, from Cody's rational approximations of erfc. The lower tail
/// keeps about 1e-15 relative accuracy down to the subnormal range (for
/// example `Phi(-37) = 5.7e-300`), so small p-values are accurate too.
///
/// A NaN argument is returned unchanged.
///
/// ```
/// let p = medai_metrics::normal_cdf(-1.959963984540054);
/// assert!((p - 0.025).abs() < 1e-16);
/// ```
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        normal_tail(-x)
    } else {
        1.0 - normal_tail(x)
    }
}

/// Mid-ranks (1-based; tied values share the mean of their ranks).
fn midranks(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        // IEEE equality so that -0.0 and 0.0 tie (they sort next to each other).
        while j < n && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = mid;
        }
        i = j;
    }
    ranks
}

/// DeLong placement values, computed with mid-ranks (Sun & Xu 2014) in
/// `O(n log n)`.
struct Placements {
    /// `V10`: for each positive, the fraction of negatives it out-scores (ties
    /// count half).
    v10: Vec<f64>,
    /// `V01`: for each negative, the fraction of positives that out-score it
    /// (ties count half).
    v01: Vec<f64>,
}

impl Placements {
    fn new(pos: &[bool], scores: &[f64]) -> Self {
        let x: Vec<f64> = pos
            .iter()
            .zip(scores)
            .filter(|&(&p, _)| p)
            .map(|(_, &s)| s)
            .collect();
        let y: Vec<f64> = pos
            .iter()
            .zip(scores)
            .filter(|&(&p, _)| !p)
            .map(|(_, &s)| s)
            .collect();
        let (m, n) = (x.len(), y.len());
        let tx = midranks(&x);
        let ty = midranks(&y);
        let z: Vec<f64> = x.iter().chain(&y).copied().collect();
        let tz = midranks(&z);
        let v10 = (0..m).map(|i| (tz[i] - tx[i]) / n as f64).collect();
        let v01 = (0..n)
            .map(|j| 1.0 - (tz[m + j] - ty[j]) / m as f64)
            .collect();
        Placements { v10, v01 }
    }
}

/// Sample covariance (denominator `len - 1`); callers guarantee `len >= 2`.
fn sample_cov(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / len;
    let mean_b = b.iter().sum::<f64>() / len;
    a.iter()
        .zip(b)
        .map(|(&u, &v)| (u - mean_a) * (v - mean_b))
        .sum::<f64>()
        / (len - 1.0)
}

/// Validates DeLong input: binary labels, finite scores, at least two samples
/// per class. Returns the labels as booleans.
fn delong_input(y_true: &[usize], scores: &[f64]) -> Result<Vec<bool>, MetricsError> {
    check_lengths(y_true.len(), scores.len())?;
    let pos = binary_labels(y_true)?;
    check_finite(scores)?;
    let positives = pos.iter().filter(|&&p| p).count();
    let negatives = pos.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(MetricsError::SingleClass {
            present: usize::from(positives > 0),
        });
    }
    if positives < 2 || negatives < 2 {
        return Err(MetricsError::TooFewPerClass {
            positives,
            negatives,
            needed: 2,
        });
    }
    Ok(pos)
}

/// Exact AUC of validated input with both classes present.
fn exact_auc(pos: &[bool], scores: &[f64]) -> Result<f64, MetricsError> {
    let curve = ClfCurve::new(pos, scores);
    curve.auc().ok_or_else(|| single_class(&curve))
}

/// ROC AUC with DeLong's variance and a normal-approximation confidence
/// interval at `level` (for example `0.95`).
///
/// The variance is DeLong, DeLong & Clarke-Pearson (1988),
/// `S10 / m + S01 / n` with sample variances of the placement values, computed
/// in `O(n log n)` from mid-ranks (Sun & Xu 2014). The interval is
/// `auc ± z * se` with `z = Phi^-1((1 + level) / 2)`, clipped to `[0, 1]` like
/// pROC. Ties get half credit. Perfect separation gives `se = 0` and the
/// interval `[1, 1]`.
///
/// # Errors
///
/// * `SingleClass` when `y_true` holds one class only;
/// * `TooFewPerClass` with fewer than two positives or two negatives (a
///   sample variance needs two values);
/// * `InvalidLevel` unless `0 < level < 1`;
/// * the input errors `LengthMismatch`, `Empty`, `InvalidLabel`, `NonFinite`.
pub fn auc_delong(y_true: &[usize], scores: &[f64], level: f64) -> Result<DelongAuc, MetricsError> {
    let pos = delong_input(y_true, scores)?;
    check_level(level)?;
    let auc = exact_auc(&pos, scores)?;
    let pl = Placements::new(&pos, scores);
    let (m, n) = (pl.v10.len() as f64, pl.v01.len() as f64);
    let variance = (sample_cov(&pl.v10, &pl.v10) / m + sample_cov(&pl.v01, &pl.v01) / n).max(0.0);
    let se = variance.sqrt();
    let z = two_sided_z(level);
    Ok(DelongAuc {
        auc,
        variance,
        se,
        ci: ConfidenceInterval {
            estimate: auc,
            low: (auc - z * se).clamp(0.0, 1.0),
            high: (auc + z * se).clamp(0.0, 1.0),
            level,
            method: "delong".to_string(),
        },
    })
}

/// DeLong's paired test of `H0: AUC(scores_a) = AUC(scores_b)` for two scores
/// of the same samples, with a two-sided p-value.
///
/// The variance of the difference is
/// `Var(A) + Var(B) - 2 Cov(A, B)`, each term from the placement values'
/// sample (co)variances (`S10 / m + S01 / n`). When the two scores give
/// identical placement values (for example one is a monotone transform of the
/// other) the difference and its standard error are both zero: then `z = 0`
/// and `p_value = 1`.
///
/// # Errors
///
/// * `Undefined` when the difference is non-zero but its standard error is
///   zero (for example a perfect score against a constant one), since `z`
///   would be infinite;
/// * `LengthMismatch` when `scores_b` and `y_true` differ in length;
/// * the errors of [`auc_delong`] (other than `InvalidLevel`).
pub fn delong_paired_test(
    y_true: &[usize],
    scores_a: &[f64],
    scores_b: &[f64],
) -> Result<DelongComparison, MetricsError> {
    let pos = delong_input(y_true, scores_a)?;
    check_lengths(y_true.len(), scores_b.len())?;
    check_finite(scores_b)?;
    let auc_a = exact_auc(&pos, scores_a)?;
    let auc_b = exact_auc(&pos, scores_b)?;
    let a = Placements::new(&pos, scores_a);
    let b = Placements::new(&pos, scores_b);
    let (m, n) = (a.v10.len() as f64, a.v01.len() as f64);
    let var_part = |u: &[f64], v: &[f64], len: f64| {
        (sample_cov(u, u) + sample_cov(v, v) - 2.0 * sample_cov(u, v)) / len
    };
    let variance = (var_part(&a.v10, &b.v10, m) + var_part(&a.v01, &b.v01, n)).max(0.0);
    let se = variance.sqrt();
    let diff = auc_a - auc_b;
    let (z, p_value) = if se > 0.0 {
        let z = diff / se;
        (z, (2.0 * normal_tail(z.abs())).min(1.0))
    } else if diff == 0.0 {
        (0.0, 1.0)
    } else {
        return Err(MetricsError::Undefined(
            "DeLong test: the AUCs differ but the difference has zero variance",
        ));
    };
    Ok(DelongComparison {
        auc_a,
        auc_b,
        diff,
        se,
        z,
        p_value,
    })
}

/// The `q`-quantile of ascending, finite `sorted` values with numpy's default
/// (`method="linear"`) definition, reproducing numpy's interpolation
/// arithmetic.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len() - 1;
    let virtual_index = last as f64 * q;
    if virtual_index >= last as f64 {
        return sorted[last];
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let i = below as usize;
    let (a, b) = (sorted[i], sorted[i + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// The `q`-quantile (`0 <= q <= 1`) of `values`, equal to
/// `numpy.quantile(values, q)` (numpy's default `method="linear"`, type 7 of
/// Hyndman & Fan): linear interpolation between the order statistics around
/// the virtual index `(n - 1) * q`.
///
/// # Errors
///
/// `Empty`, `NonFinite`, and `InvalidQuantile` when `q` is outside `[0, 1]`.
///
/// ```
/// let q = medai_metrics::quantile_linear(&[4.0, 1.0, 3.0, 2.0], 0.25).unwrap();
/// assert_eq!(q, 1.75);
/// ```
pub fn quantile_linear(values: &[f64], q: f64) -> Result<f64, MetricsError> {
    if values.is_empty() {
        return Err(MetricsError::Empty);
    }
    check_finite(values)?;
    if !(0.0..=1.0).contains(&q) {
        return Err(MetricsError::InvalidQuantile(q));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(quantile_sorted(&sorted, q))
}

/// Percentile-bootstrap confidence interval of a statistic.
///
/// `statistic` receives the sample **indices** of one resample (with
/// repetitions; `0..n` for the point estimate) and returns the statistic on
/// those samples. `y_true` only defines `n` and, when `stratified` is true,
/// the strata: each label value is then resampled separately, keeping its
/// count (so every resample holds every class of the original data).
///
/// * The point estimate is `statistic(0..n)`.
/// * `resamples` resamples are drawn with a ChaCha8 generator seeded with
///   `seed`, so the result is deterministic for a given seed (and the same
///   seed draws the same resamples for any statistic).
/// * Resamples on which the statistic errors (or returns a non-finite value)
///   are skipped; if fewer than half of them succeed the bootstrap fails.
/// * The bounds are the `(1 - level) / 2` and `(1 + level) / 2` quantiles of
///   the resampled statistics, with numpy's default (`"linear"`) quantile
///   definition (see [`quantile_linear`]).
///
/// # Errors
///
/// `Empty`, `InvalidLevel`, `InvalidResamples` (zero resamples),
/// `BootstrapFailed`, `Undefined` when the point estimate is not finite, and
/// any error of `statistic` on the full sample.
///
/// ```
/// use medai_metrics::bootstrap_ci;
///
/// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
/// let labels = [0; 8];
/// let mean = |idx: &[usize]| Ok(idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64);
/// let ci = bootstrap_ci(&labels, 500, 7, 0.9, false, mean).unwrap();
/// assert_eq!(ci.estimate, 4.5);
/// assert!(ci.low < 4.5 && 4.5 < ci.high);
/// ```
pub fn bootstrap_ci<F>(
    y_true: &[usize],
    resamples: usize,
    seed: u64,
    level: f64,
    stratified: bool,
    mut statistic: F,
) -> Result<ConfidenceInterval, MetricsError>
where
    F: FnMut(&[usize]) -> Result<f64, MetricsError>,
{
    let n = y_true.len();
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    check_level(level)?;
    if resamples == 0 {
        return Err(MetricsError::InvalidResamples(resamples));
    }
    let all: Vec<usize> = (0..n).collect();
    let estimate = statistic(&all)?;
    if !estimate.is_finite() {
        return Err(MetricsError::Undefined(
            "bootstrap: the statistic on the full sample is not finite",
        ));
    }
    let strata: Vec<Vec<usize>> = if stratified {
        let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, &label) in y_true.iter().enumerate() {
            by_label.entry(label).or_default().push(i);
        }
        by_label.into_values().collect()
    } else {
        vec![all]
    };

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut indices = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        indices.clear();
        for stratum in &strata {
            for _ in 0..stratum.len() {
                indices.push(stratum[rng.random_range(0..stratum.len())]);
            }
        }
        if let Ok(v) = statistic(&indices)
            && v.is_finite()
        {
            values.push(v);
        }
    }
    if values.is_empty() || 2 * values.len() < resamples {
        return Err(MetricsError::BootstrapFailed {
            succeeded: values.len(),
            resamples,
        });
    }
    values.sort_by(f64::total_cmp);
    Ok(ConfidenceInterval {
        estimate,
        low: quantile_sorted(&values, (1.0 - level) / 2.0),
        high: quantile_sorted(&values, (1.0 + level) / 2.0),
        level,
        method: "bootstrap".to_string(),
    })
}

/// Stratified percentile-bootstrap confidence interval of the ROC AUC
/// (see [`bootstrap_ci`]; each class is resampled separately so that every
/// resample holds both classes). The estimate equals
/// [`roc_auc`](crate::roc_auc).
///
/// # Errors
///
/// `SingleClass`, the input errors of [`roc_auc`](crate::roc_auc), and the
/// errors of [`bootstrap_ci`].
pub fn auc_bootstrap_ci(
    y_true: &[usize],
    scores: &[f64],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Result<ConfidenceInterval, MetricsError> {
    let curve = binary_curve(y_true, scores)?;
    if curve.positives() == 0 || curve.negatives() == 0 {
        return Err(single_class(&curve));
    }
    let mut pos = Vec::with_capacity(y_true.len());
    let mut sub = Vec::with_capacity(y_true.len());
    bootstrap_ci(y_true, resamples, seed, level, true, |idx| {
        pos.clear();
        sub.clear();
        pos.extend(idx.iter().map(|&i| y_true[i] == 1));
        sub.extend(idx.iter().map(|&i| scores[i]));
        exact_auc(&pos, &sub)
    })
}

/// Wilson score interval for a binomial proportion `successes / n` at
/// `level`: the set of `p` not rejected by the score test,
/// `(p_hat - p)^2 <= z^2 p (1 - p) / n`, that is
/// `(p_hat + z^2 / 2n ± z sqrt(p_hat (1 - p_hat) / n + z^2 / 4n^2)) / (1 + z^2 / n)`.
///
/// The bounds are exactly `0` when `successes = 0` and exactly `1` when
/// `successes = n`. The estimate is `successes / n`.
///
/// # Errors
///
/// `Empty` when `n = 0`, `InvalidCount` when `successes > n`, and
/// `InvalidLevel` unless `0 < level < 1`.
///
/// ```
/// let ci = medai_metrics::wilson_interval(8, 10, 0.95).unwrap();
/// assert!((ci.low - 0.4901624).abs() < 1e-6 && (ci.high - 0.9433178).abs() < 1e-6);
/// ```
pub fn wilson_interval(
    successes: u64,
    n: u64,
    level: f64,
) -> Result<ConfidenceInterval, MetricsError> {
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if successes > n {
        return Err(MetricsError::InvalidCount { successes, n });
    }
    check_level(level)?;
    let z = two_sided_z(level);
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z / denom * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    let low = if successes == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let high = if successes == n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Ok(ConfidenceInterval {
        estimate: p,
        low,
        high,
        level,
        method: "wilson".to_string(),
    })
}
