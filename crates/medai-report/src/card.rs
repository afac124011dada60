//! The bundle's model card (`model_card.md`), written from the same [`Evaluation`] as the report,
//! so the numbers a reader of the bundle sees are the numbers the evaluation measured.

use crate::evaluation::Evaluation;
use medai_bundle::Manifest;
use std::fmt::Write;

fn s(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(x)) => x.clone(),
        Some(serde_json::Value::Null) | None => "—".into(),
        Some(x) => x.to_string(),
    }
}

/// Markdown model card: intended use, data, training, metrics with intervals, operating points,
/// calibration, subgroups and known limits.
pub fn model_card(m: &Manifest, evals: &[&Evaluation]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Model card: {}\n", m.name);
    let _ = writeln!(
        o,
        "medai {} bundle, created {}. Task: {} ({}), classes: {}.\n",
        m.medai_version,
        m.created,
        m.task,
        m.label_mode,
        m.classes.join(", ")
    );
    o.push_str("## Intended use\n\n");
    let _ = writeln!(
        o,
        "Decision support for trained clinicians: the model estimates the probability of each of \
         the classes ({}) for one input. It is **not** a diagnosis and must not be used without a \
         clinician's review, nor on populations, devices or image types unlike its training data \
         (below). Cases inside the referral band, or flagged subgroups, need a human read.\n",
        m.classes.join(", ")
    );
    o.push_str("## Data\n\n");
    let _ = writeln!(
        o,
        "- Source: {} (`{}`)\n- Fingerprint: `{}`",
        m.dataset.source, m.dataset.path, m.dataset.fingerprint
    );
    for (split, n) in &m.dataset.counts {
        let _ = writeln!(o, "- {split}: {n} cases");
    }
    o.push_str("\n## Model and training\n\n");
    let _ = writeln!(
        o,
        "- Architecture: {}\n- Parameters: {}\n- Epochs run: {} (best epoch {}), {} s",
        s(&m.architecture, "arch"),
        s(&m.training, "parameters"),
        s(&m.training, "epochs_run"),
        s(&m.training, "best_epoch"),
        m.training
            .get("seconds")
            .and_then(|v| v.as_f64())
            .map_or("—".into(), |v| format!("{v:.0}"))
    );
    if let Some(cfg) = m.training.get("config") {
        let _ = writeln!(
            o,
            "- Optimiser: {}, learning rate {}, batch {}, seed {}",
            s(cfg, "optimizer"),
            s(cfg, "lr"),
            s(cfg, "batch_size"),
            s(cfg, "seed")
        );
    }
    for ev in evals {
        let level = ev.options.level * 100.0;
        let _ = writeln!(
            o,
            "\n## Performance on the {} split ({} cases)\n",
            ev.split,
            ev.class_counts.iter().sum::<usize>()
        );
        o.push_str("| metric | value |\n|---|---|\n");
        if let Some(b) = &ev.binary {
            let r = &b.report;
            let _ = writeln!(
                o,
                "| ROC AUC ({level:.0}% CI, {}) | {:.3} [{:.3}, {:.3}] |",
                b.auc_ci.method, b.auc_ci.estimate, b.auc_ci.low, b.auc_ci.high
            );
            let _ = writeln!(o, "| PR AUC | {:.3} |", r.average_precision);
            let _ = writeln!(
                o,
                "| accuracy @ {:.2} ({level:.0}% CI) | {:.3} [{:.3}, {:.3}] |",
                r.threshold, r.accuracy, b.accuracy_ci.low, b.accuracy_ci.high
            );
            let _ = writeln!(o, "| balanced accuracy | {:.3} |", r.balanced_accuracy);
            let _ = writeln!(o, "| MCC | {:.3} |", r.mcc);
            let _ = writeln!(o, "| Brier score | {:.4} |", r.brier);
            let _ = writeln!(o, "| ECE | {:.4} |", ev.calibration.ece);
            o.push_str("\n| operating point | threshold | chosen on | sensitivity | specificity | PPV | NPV |\n|---|---|---|---|---|---|---|\n");
            for op in &b.operating_points {
                let p = &op.point;
                let ci = |c: &Option<medai_metrics::ConfidenceInterval>, v: f64| match c {
                    Some(c) => format!("{v:.3} [{:.3}, {:.3}]", c.low, c.high),
                    None => format!("{v:.3}"),
                };
                let _ = writeln!(
                    o,
                    "| {} | {:.4} | {} | {} | {} | {:.3} | {:.3} |",
                    p.name,
                    p.threshold,
                    op.chosen_on,
                    ci(&op.sensitivity_ci, p.sensitivity),
                    ci(&op.specificity_ci, p.specificity),
                    p.ppv,
                    p.npv
                );
            }
            if !b.subgroups.is_empty() {
                o.push_str("\n| subgroup | n | AUC | flag |\n|---|---|---|---|\n");
                for g in &b.subgroups {
                    let _ = writeln!(
                        o,
                        "| {} = {} | {} | {} | {} |",
                        g.attribute,
                        g.group,
                        g.n,
                        g.auc.as_ref().map_or("n/a".into(), |a| format!(
                            "{:.3} [{:.3}, {:.3}]",
                            a.estimate, a.low, a.high
                        )),
                        if g.flagged {
                            g.flag_reasons.join("; ")
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
        if let Some(mc) = &ev.multiclass {
            let r = &mc.report;
            let _ = writeln!(
                o,
                "| macro OvR AUC ({level:.0}% CI, {}) | {:.3} [{:.3}, {:.3}] |",
                mc.auc_ci.method, mc.auc_ci.estimate, mc.auc_ci.low, mc.auc_ci.high
            );
            let _ = writeln!(o, "| micro OvR AUC | {:.3} |", r.auc_micro_ovr);
            let _ = writeln!(o, "| accuracy | {:.3} |", r.accuracy);
            let _ = writeln!(o, "| balanced accuracy | {:.3} |", r.balanced_accuracy);
            let _ = writeln!(o, "| macro F1 | {:.3} |", r.macro_f1);
            if ev.mode == "ordinal" {
                let _ = writeln!(o, "| quadratic kappa | {:.3} |", r.quadratic_kappa);
            }
            let _ = writeln!(o, "| top-label ECE | {:.4} |", ev.calibration.ece);
        }
    }
    o.push_str("\n## Calibration\n\n");
    match m.calibration.get("temperature").and_then(|t| t.as_f64()) {
        Some(t) => {
            let _ = writeln!(
                o,
                "Temperature scaling, T = {t:.4}, fitted on the {} split (NLL {} → {}); applied to every prediction.",
                s(&m.calibration, "fitted_on"),
                m.calibration
                    .get("nll_before")
                    .and_then(|v| v.as_f64())
                    .map_or("—".into(), |v| format!("{v:.4}")),
                m.calibration
                    .get("nll_after")
                    .and_then(|v| v.as_f64())
                    .map_or("—".into(), |v| format!("{v:.4}")),
            );
        }
        None => o.push_str("None: the model's probabilities are served as they are.\n"),
    }
    o.push_str("\n## Known limits\n\n");
    o.push_str(
        "- Trained and tested on one public dataset; performance on other sites, scanners, \
         populations and prevalences is unknown until measured there.\n\
         - Intervals cover sampling variation of the test split only, not dataset shift.\n\
         - Heat maps (Grad-CAM) show where the model looked, not that its reasoning is sound.\n",
    );
    o
}
