//! The error type of the crate.

/// Everything that can go wrong when computing a metric.
///
/// Metrics never return NaN and never panic on bad input; they return one of
/// these variants instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// `y_true` and the scores / probabilities / predictions differ in length.
    #[error("length mismatch: y_true has {y_true} entries, the other input has {other}")]
    LengthMismatch {
        /// Length of `y_true`.
        y_true: usize,
        /// Length of the other input.
        other: usize,
    },
    /// The input has no samples.
    #[error("empty input: at least one sample is required")]
    Empty,
    /// A label is not a valid class index.
    #[error("invalid label {label} at index {index}: expected a class index below {n_classes}")]
    InvalidLabel {
        /// Position of the offending label.
        index: usize,
        /// The offending label.
        label: usize,
        /// Number of classes (labels must be `< n_classes`).
        n_classes: usize,
    },
    /// A score or probability is NaN or infinite.
    #[error("non-finite score {value} at index {index}")]
    NonFinite {
        /// Position (flat index for binary scores, row for probabilities).
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A probability lies outside `[0, 1]`.
    #[error("probability {value} at index {index} is outside [0, 1]")]
    ProbabilityOutOfRange {
        /// Position (flat index for binary scores, row for probabilities).
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The threshold is NaN or infinite.
    #[error("threshold must be finite, got {0}")]
    InvalidThreshold(f64),
    /// `y_true` holds only one class, so an AUC (or a curve) is undefined.
    #[error(
        "y_true contains only class {present}; the metric needs both positive and negative samples"
    )]
    SingleClass {
        /// The only class present.
        present: usize,
    },
    /// A class has no sample in `y_true`, so the macro one-vs-rest AUC is
    /// undefined (scikit-learn raises too).
    #[error("class {class} is absent from y_true; macro one-vs-rest AUC needs every class present")]
    MissingClass {
        /// Index of the absent class.
        class: usize,
    },
    /// Fewer than two classes were given for a multiclass metric.
    #[error("at least two classes are required, got {0}")]
    TooFewClasses(usize),
    /// A probability row has the wrong number of columns.
    #[error("probability row {row} has {got} columns, expected {expected}")]
    RaggedRow {
        /// Row index.
        row: usize,
        /// Expected number of columns.
        expected: usize,
        /// Actual number of columns.
        got: usize,
    },
    /// A probability row does not sum to one (within
    /// [`PROB_SUM_TOLERANCE`](crate::PROB_SUM_TOLERANCE)).
    #[error("probability row {row} sums to {sum}, expected 1")]
    RowSumNotOne {
        /// Row index.
        row: usize,
        /// The row's sum.
        sum: f64,
    },
    /// `class_names` does not have one entry per probability column.
    #[error("{got} class names given for {expected} probability columns")]
    ClassNamesMismatch {
        /// Number of probability columns.
        expected: usize,
        /// Number of names given.
        got: usize,
    },
    /// The metric is mathematically undefined for this input (for example
    /// Cohen's kappa when truth and prediction are one and the same class).
    #[error("metric undefined: {0}")]
    Undefined(&'static str),
    /// A confidence level is not strictly between 0 and 1 (or is NaN).
    #[error("confidence level must lie strictly between 0 and 1, got {0}")]
    InvalidLevel(f64),
    /// A quantile is outside `[0, 1]` (or is NaN).
    #[error("quantile must lie in [0, 1], got {0}")]
    InvalidQuantile(f64),
    /// Too few samples of one class for a variance estimate (DeLong needs at
    /// least two positives and two negatives).
    #[error(
        "{positives} positive and {negatives} negative samples: at least {needed} of each are required"
    )]
    TooFewPerClass {
        /// Number of positive samples.
        positives: usize,
        /// Number of negative samples.
        negatives: usize,
        /// Minimum number of samples required in each class.
        needed: usize,
    },
    /// A bootstrap was asked for zero resamples.
    #[error("the number of bootstrap resamples must be at least 1, got {0}")]
    InvalidResamples(usize),
    /// Fewer than half of the bootstrap resamples gave a statistic.
    #[error(
        "bootstrap failed: the statistic was defined on only {succeeded} of {resamples} resamples"
    )]
    BootstrapFailed {
        /// Resamples on which the statistic was computed.
        succeeded: usize,
        /// Resamples drawn.
        resamples: usize,
    },
    /// A count of successes exceeds the number of trials.
    #[error("{successes} successes out of {n} trials")]
    InvalidCount {
        /// Number of successes.
        successes: u64,
        /// Number of trials.
        n: u64,
    },
    /// A target sensitivity or specificity is not in `(0, 1]` (or is NaN).
    #[error("target rate must lie in (0, 1], got {0}")]
    InvalidTarget(f64),
    /// A number of calibration bins is zero.
    #[error("the number of bins must be at least 1, got {0}")]
    InvalidBins(usize),
    /// No label column of a multilabel problem holds both classes, so the
    /// macro AUC is undefined.
    #[error("no label column holds both positive and negative samples")]
    NoLabelWithBothClasses,
}
