//! The clinical evaluation report: one [`Evaluation`] rendered as a self-contained HTML page.

use crate::evaluation::{Evaluation, OperatingPointEval};
use crate::html::{Cell, NumFmt, Page};
use crate::svg::{
    CountScale, FLAG_COLOUR, ForestRow, LineChart, PALETTE, ReliabilityBar, Style, bar_chart,
    confusion_matrix, forest_plot, reliability_diagram,
};
use medai_metrics::{ConfidenceInterval, ReliabilityBin};

/// A picture of one case (a heat-map overlay) for the hardest-errors section.
#[derive(Clone, Debug)]
pub struct CaseImage {
    /// `data:image/png;base64,…` URI.
    pub data_uri: String,
    /// Caption (file, true class, predicted class, probability).
    pub caption: String,
    /// `false-positive` or `false-negative` (multi-class: `error`).
    pub kind: String,
}

/// Everything the report shows besides the evaluation itself.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    /// Page title.
    pub title: String,
    /// Facts about the model (name, architecture, bundle, training).
    pub model: Vec<(String, String)>,
    /// Facts about the data (path, format, fingerprint, split sizes).
    pub data: Vec<(String, String)>,
    /// Overlays of the hardest errors.
    pub cases: Vec<CaseImage>,
    /// The explanation method of the overlays, e.g. `Grad-CAM`.
    pub explanation: String,
    /// Footer (tool version, time).
    pub footer: String,
}

fn f3(v: f64) -> String {
    format!("{v:.3}")
}

fn ci(c: &ConfidenceInterval) -> String {
    format!("{:.3} [{:.3}, {:.3}]", c.estimate, c.low, c.high)
}

fn opt_ci(v: f64, c: &Option<ConfidenceInterval>) -> String {
    match c {
        Some(c) => format!("{v:.3} [{:.3}, {:.3}]", c.low, c.high),
        None => f3(v),
    }
}

fn bars(bins: &[ReliabilityBin]) -> Vec<ReliabilityBar> {
    bins.iter()
        .map(|b| ReliabilityBar {
            lower: b.lower,
            upper: b.upper,
            count: b.count as u64,
            mean_predicted: b.mean_predicted,
            fraction_positive: b.fraction_positive,
        })
        .collect()
}

fn op_row(op: &OperatingPointEval) -> Vec<Cell> {
    let p = &op.point;
    vec![
        Cell::text(p.name.clone()),
        Cell::text(format!("{:.4}", p.threshold)),
        Cell::text(op.chosen_on.clone()),
        Cell::text(opt_ci(p.sensitivity, &op.sensitivity_ci)),
        Cell::text(opt_ci(p.specificity, &op.specificity_ci)),
        Cell::num(p.ppv, NumFmt::Fixed(3)),
        Cell::num(p.npv, NumFmt::Fixed(3)),
        Cell::num(p.f1, NumFmt::Fixed(3)),
        Cell::num(p.accuracy, NumFmt::Fixed(3)),
    ]
}

/// Render the report page.
pub fn render(ev: &Evaluation, ctx: &ReportContext) -> String {
    let mut page = Page::new(&ctx.title);
    let n: usize = ev.class_counts.iter().sum();
    page.subtitle(&format!(
        "Split “{}” — {} cases, {} classes ({}). Intervals are {:.0}% confidence intervals.",
        ev.split,
        n,
        ev.classes.len(),
        ev.mode,
        ev.options.level * 100.0
    ));

    // Summary.
    {
        let s = page.section("Summary");
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        let mut row = |name: &str, value: String, note: &str| {
            rows.push(vec![Cell::text(name), Cell::text(value), Cell::text(note)]);
        };
        if let Some(b) = &ev.binary {
            let r = &b.report;
            row(
                "ROC AUC",
                ci(&b.auc_ci),
                &format!("{} interval", b.auc_ci.method),
            );
            row("PR AUC (average precision)", f3(r.average_precision), "");
            row(
                "Accuracy",
                ci(&b.accuracy_ci),
                &format!("at threshold {:.3} (Wilson)", r.threshold),
            );
            row("Balanced accuracy", f3(r.balanced_accuracy), "");
            if let Some(op) = b.operating_points.first() {
                row(
                    "Sensitivity",
                    opt_ci(r.sensitivity, &op.sensitivity_ci),
                    &format!("recall of “{}”", b.positive_class),
                );
                row("Specificity", opt_ci(r.specificity, &op.specificity_ci), "");
            }
            row("PPV / NPV", format!("{:.3} / {:.3}", r.ppv, r.npv), "");
            row("F1", f3(r.f1), "");
            row("Matthews correlation", f3(r.mcc), "");
            row("Brier score", format!("{:.4}", r.brier), "lower is better");
        }
        if let Some(m) = &ev.multiclass {
            let r = &m.report;
            row(
                "Macro one-vs-rest AUC",
                ci(&m.auc_ci),
                &format!("{} interval", m.auc_ci.method),
            );
            row("Micro one-vs-rest AUC", f3(r.auc_micro_ovr), "");
            row("Accuracy", f3(r.accuracy), "argmax");
            row("Balanced accuracy", f3(r.balanced_accuracy), "");
            row("Macro F1", f3(r.macro_f1), "");
            if ev.mode == "ordinal" {
                row(
                    "Quadratic-weighted kappa",
                    f3(r.quadratic_kappa),
                    "ordinal labels",
                );
            }
        }
        let c = &ev.calibration;
        row(
            "Expected calibration error",
            format!("{:.4}", c.ece),
            &match c.ece_uncalibrated {
                Some(u) => format!(
                    "{} bins; {:.4} before temperature scaling (T = {:.3})",
                    ev.options.bins, u, c.temperature
                ),
                None => format!("{} bins, {}", ev.options.bins, c.describes),
            },
        );
        s.table(&["Metric", "Value", "Note"], rows);
        if n < 100 {
            s.note(&format!(
                "Only {n} cases: intervals are wide and figures unstable."
            ));
        }
        if let Some(b) = &ev.binary {
            for note in &b.notes {
                s.note(note);
            }
            let flagged: Vec<String> = b
                .subgroups
                .iter()
                .filter(|g| g.flagged)
                .map(|g| format!("{} = {}", g.attribute, g.group))
                .collect();
            if !flagged.is_empty() {
                s.note(&format!(
                    "Subgroups whose interval does not overlap the overall one: {}. See “Subgroups”.",
                    flagged.join(", ")
                ));
            }
        }
    }

    // Data.
    {
        let s = page.section("Data");
        if !ctx.data.is_empty() {
            s.key_values(&ctx.data);
        }
        let counts: Vec<f64> = ev.class_counts.iter().map(|&c| c as f64).collect();
        if let Ok(svg) = bar_chart("Class balance", &ev.classes, &counts, "Cases") {
            s.figure(
                svg,
                &format!("Cases per class in the “{}” split.", ev.split),
            );
        }
    }

    if let Some(b) = &ev.binary {
        // Discrimination.
        {
            let s = page.section("Discrimination");
            let mut roc = LineChart::new("ROC curve")
                .x_label("1 − specificity (false positive rate)")
                .y_label("Sensitivity (true positive rate)")
                .diagonal(true)
                .series(
                    &format!(
                        "AUC {:.3} [{:.3}, {:.3}]",
                        b.auc_ci.estimate, b.auc_ci.low, b.auc_ci.high
                    ),
                    &b.roc,
                    Style::solid(PALETTE[0]),
                );
            for (i, op) in b.operating_points.iter().enumerate() {
                let p = &op.point;
                roc = roc.marker(
                    &format!("{} ({:.2})", p.name, p.threshold),
                    (1.0 - p.specificity, p.sensitivity),
                    PALETTE[(i + 1) % PALETTE.len()],
                );
            }
            s.figure(
                roc.to_svg(),
                "ROC curve with the operating points of the table below.",
            );
            let prevalence = b.report.positives as f64 / b.report.n.max(1) as f64;
            let pr = LineChart::new("Precision–recall curve")
                .x_label("Recall (sensitivity)")
                .y_label("Precision (PPV)")
                .series(
                    &format!("AP {:.3}", b.report.average_precision),
                    &b.pr,
                    Style::solid(PALETTE[0]),
                )
                .series(
                    &format!("Prevalence {prevalence:.3}"),
                    &[(0.0, prevalence), (1.0, prevalence)],
                    Style::dashed("#888888"),
                );
            s.figure(
                pr.to_svg(),
                "Precision–recall curve; the dashed line is a classifier without skill.",
            );
        }
        // Operating points.
        {
            let s = page.section("Operating points");
            s.paragraph(
                "Thresholds other than the default are chosen on the validation split (column “chosen on”) and the figures are measured on this split, so they are not optimistic.",
            );
            s.table(
                &[
                    "Operating point",
                    "Threshold",
                    "Chosen on",
                    "Sensitivity",
                    "Specificity",
                    "PPV",
                    "NPV",
                    "F1",
                    "Accuracy",
                ],
                b.operating_points.iter().map(op_row).collect(),
            );
            for op in &b.operating_points {
                let c = &op.point.confusion;
                if let Ok(svg) = confusion_matrix(
                    &format!("{} (threshold {:.3})", op.point.name, op.point.threshold),
                    &ev.classes,
                    &[vec![c.tn, c.fp], vec![c.fn_, c.tp]],
                ) {
                    s.figure(svg, &format!("Confusion matrix at “{}”.", op.point.name));
                }
            }
        }
    }

    if let Some(m) = &ev.multiclass {
        let s = page.section("Per-class results");
        let rows = m
            .report
            .per_class
            .iter()
            .zip(&m.per_class_auc_ci)
            .map(|(c, auc)| {
                vec![
                    Cell::text(c.class.clone()),
                    Cell::num(c.support as f64, NumFmt::Integer),
                    Cell::text(match (c.auc, auc) {
                        (Some(a), Some(ci)) => format!("{a:.3} [{:.3}, {:.3}]", ci.low, ci.high),
                        (Some(a), None) => f3(a),
                        _ => "n/a".into(),
                    }),
                    Cell::num(c.precision, NumFmt::Fixed(3)),
                    Cell::num(c.recall, NumFmt::Fixed(3)),
                    Cell::num(c.f1, NumFmt::Fixed(3)),
                ]
            })
            .collect();
        s.table(
            &[
                "Class",
                "Support",
                "AUC (one-vs-rest)",
                "Precision",
                "Recall",
                "F1",
            ],
            rows,
        );
        let mut chart = LineChart::new("One-vs-rest ROC curves")
            .x_label("False positive rate")
            .y_label("True positive rate")
            .diagonal(true);
        for (i, (c, curve)) in m.report.per_class.iter().zip(&m.roc).enumerate() {
            if !curve.is_empty() {
                chart = chart.series(
                    &format!("{} ({})", c.class, c.auc.map_or("n/a".into(), f3)),
                    curve,
                    Style::solid(PALETTE[i % PALETTE.len()]),
                );
            }
        }
        s.figure(chart.to_svg(), "One-vs-rest ROC curve of each class.");
        if let Ok(svg) = confusion_matrix(
            "Confusion matrix (argmax)",
            &ev.classes,
            &m.report.confusion,
        ) {
            s.figure(svg, "Rows: true class; columns: predicted class.");
        }
    }

    // Calibration.
    {
        let c = &ev.calibration;
        let s = page.section("Calibration");
        s.paragraph(&format!(
            "Reliability of {}: in a calibrated model, cases given probability p are positive a fraction p of the time. Temperature T = {:.3} {}.",
            c.describes,
            c.temperature,
            if c.temperature == 1.0 {
                "(no scaling)"
            } else {
                "was fitted on the validation split and is applied to every prediction"
            }
        ));
        let served = bars(&c.bins);
        let raw = c.bins_uncalibrated.as_deref().map(bars);
        let mut series: Vec<(&str, &[ReliabilityBar], &str)> = Vec::new();
        let before = c
            .ece_uncalibrated
            .map(|e| format!("Before scaling (ECE {e:.3})"));
        let after = format!(
            "{} (ECE {:.3})",
            if raw.is_some() {
                "After scaling"
            } else {
                "Model"
            },
            c.ece
        );
        series.push((&after, &served, PALETTE[0]));
        if let (Some(r), Some(name)) = (&raw, &before) {
            series.push((name, r, PALETTE[1]));
        }
        s.figure(
            reliability_diagram("Reliability diagram", &series, CountScale::Log),
            "Observed frequency against predicted probability per bin; bars below: cases per bin (log scale).",
        );
    }

    // Subgroups.
    if let Some(b) = ev
        .binary
        .as_ref()
        .filter(|b| !b.subgroups.is_empty() || !b.subgroups_skipped.is_empty())
    {
        {
            let s = page.section("Subgroups");
            let rows = b
                .subgroups
                .iter()
                .map(|g| {
                    let flag = if g.flagged {
                        Cell::warn(g.flag_reasons.join("; "))
                    } else {
                        Cell::text("")
                    };
                    vec![
                        Cell::text(g.attribute.clone()),
                        Cell::text(g.group.clone()),
                        Cell::num(g.n as f64, NumFmt::Integer),
                        Cell::num(g.positives as f64, NumFmt::Integer),
                        Cell::text(g.auc.as_ref().map_or("n/a".into(), ci)),
                        Cell::text(g.sensitivity.as_ref().map_or("n/a".into(), ci)),
                        Cell::text(g.specificity.as_ref().map_or("n/a".into(), ci)),
                        flag,
                    ]
                })
                .collect();
            s.table(
                &[
                    "Attribute",
                    "Group",
                    "n",
                    "Positives",
                    "AUC",
                    "Sensitivity",
                    "Specificity",
                    "Flag",
                ],
                rows,
            );
            let forest: Vec<ForestRow> = b
                .subgroups
                .iter()
                .filter_map(|g| {
                    g.auc.as_ref().map(|a| ForestRow {
                        label: format!("{} = {} (n = {})", g.attribute, g.group, g.n),
                        estimate: a.estimate,
                        low: a.low,
                        high: a.high,
                        flagged: g.flagged,
                    })
                })
                .collect();
            if !forest.is_empty() {
                let lo = forest
                    .iter()
                    .map(|r| r.low)
                    .fold(b.auc_ci.low, f64::min)
                    .min(0.9);
                s.figure(
                    forest_plot(
                        "AUC by subgroup",
                        "AUC",
                        &forest,
                        Some((b.auc_ci.estimate, b.auc_ci.low, b.auc_ci.high)),
                        ((lo * 10.0).floor() / 10.0, 1.0),
                    ),
                    &format!(
                        "Subgroup AUCs (DeLong intervals) against the overall AUC (shaded); flagged rows in red ({FLAG_COLOUR})."
                    ),
                );
            }
            for note in &b.subgroups_skipped {
                s.note(&format!("Not analysed: {note}"));
            }
        }
    }

    // Abstention.
    if let Some(a) = &ev.abstention {
        let s = page.section("Referral to a human");
        let rule = match a.rule {
            crate::evaluation::Abstain::Band { low, high } => {
                format!("refer when {low:.2} ≤ p ≤ {high:.2}")
            }
            crate::evaluation::Abstain::MinConfidence { min } => {
                format!("refer when the top probability is below {min:.2}")
            }
        };
        let mut kv = vec![
            ("Rule".to_string(), rule),
            (
                "Referred".to_string(),
                format!("{} ({:.1}%)", a.referred, a.referred_fraction * 100.0),
            ),
            (
                "Accuracy on answered cases".to_string(),
                format!(
                    "{:.3} (all cases: {:.3})",
                    a.accuracy_answered, a.accuracy_all
                ),
            ),
        ];
        if let (Some(se), Some(sp)) = (a.sensitivity_answered, a.specificity_answered) {
            kv.push((
                "Sensitivity / specificity on answered cases".to_string(),
                format!("{se:.3} / {sp:.3}"),
            ));
        }
        s.key_values(&kv);
    }

    // Hardest errors.
    if !ctx.cases.is_empty() {
        let s = page.section("Hardest errors");
        s.paragraph(&format!(
            "The most confident mistakes at the default threshold, with {} heat maps (red: regions that drove the predicted class).",
            if ctx.explanation.is_empty() { "explanation" } else { &ctx.explanation }
        ));
        for kind in ["false-positive", "false-negative", "error"] {
            let items: Vec<(String, String)> = ctx
                .cases
                .iter()
                .filter(|c| c.kind == kind)
                .map(|c| (c.data_uri.clone(), c.caption.clone()))
                .collect();
            if !items.is_empty() {
                s.subheading(match kind {
                    "false-positive" => "False positives",
                    "false-negative" => "False negatives",
                    _ => "Errors",
                });
                s.image_grid(items);
            }
        }
    }

    if !ctx.model.is_empty() {
        page.section("Model").key_values(&ctx.model);
    }
    if !ctx.footer.is_empty() {
        page.footer(&ctx.footer);
    }
    page.render()
}
