//! Terminal tables, the HTML report and atomic file writes.

use anyhow::{Context, Result};
use medai_bundle::Manifest;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// Write a file atomically (temporary sibling + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
    f.write_all(bytes)
        .with_context(|| tmp.display().to_string())?;
    f.sync_all().with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

const BINARY_KEYS: [&str; 12] = [
    "n",
    "auc",
    "average_precision",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "mcc",
    "brier",
];
const MULTI_KEYS: [&str; 6] = [
    "n",
    "auc",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "weighted_f1",
];

fn fmt(v: &Value) -> String {
    match (v.as_u64(), v.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(x)) => format!("{x:.4}"),
        _ => v.to_string(),
    }
}

/// The metric table for one split, as printed by `eval` and `quickstart`.
pub fn metrics_table(split: &str, v: &Value, classes: &[String]) -> String {
    let mut s = format!("\n== {split} ==\n");
    let keys: &[&str] = if classes.len() == 2 {
        &BINARY_KEYS
    } else {
        &MULTI_KEYS
    };
    for k in keys {
        if let Some(x) = v.get(*k) {
            s.push_str(&format!("{k:<20} {}\n", fmt(x)));
        }
    }
    if let Some(t) = v.get("threshold") {
        s.push_str(&format!("{:<20} {}\n", "threshold", fmt(t)));
    }
    if let Some(c) = v.get("confusion") {
        if classes.len() == 2 {
            s.push_str(&format!(
                "confusion            TP {}  FP {}  TN {}  FN {}\n",
                fmt(&c["tp"]),
                fmt(&c["fp"]),
                fmt(&c["tn"]),
                fmt(&c["fn"])
            ));
        } else if let Some(rows) = c.as_array() {
            s.push_str("confusion (rows = true, cols = predicted)\n");
            for (name, row) in classes.iter().zip(rows) {
                let cells: Vec<String> = row
                    .as_array()
                    .map(|r| r.iter().map(|x| format!("{:>6}", fmt(x))).collect())
                    .unwrap_or_default();
                s.push_str(&format!("  {name:<16}{}\n", cells.join("")));
            }
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained HTML report of a trained bundle (opens offline in any browser).
pub fn html_report(m: &Manifest) -> String {
    let mut body = String::new();
    body.push_str(&format!("<h1>medai report: {}</h1>", esc(&m.name)));
    body.push_str(&format!(
        "<p>Task {} ({}), classes: {}. Data: <code>{}</code> ({}), fingerprint <code>{}</code>. Created {} by medai {}.</p>",
        esc(&m.task),
        esc(&m.label_mode),
        esc(&m.classes.join(", ")),
        esc(&m.dataset.path),
        esc(&Value::Object(m.dataset.counts.clone()).to_string()),
        esc(&m.dataset.fingerprint),
        esc(&m.created),
        esc(&m.medai_version)
    ));
    if let Some(splits) = m.metrics.as_object() {
        for (split, v) in splits {
            body.push_str(&format!(
                "<h2>{}</h2><pre>{}</pre>",
                esc(split),
                esc(&metrics_table(split, v, &m.classes))
            ));
        }
    }
    if let Some(h) = m.training.get("history").and_then(|h| h.as_array()) {
        body.push_str("<h2>Training history</h2><table><tr><th>epoch</th><th>train loss</th><th>val loss</th><th>val AUC</th><th>val acc</th><th>s</th></tr>");
        for e in h {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                fmt(&e["epoch"]),
                fmt(&e["train_loss"]),
                fmt(&e["val_loss"]),
                fmt(&e["val_auc"]),
                fmt(&e["val_accuracy"]),
                fmt(&e["seconds"])
            ));
        }
        body.push_str("</table>");
    }
    body.push_str(&format!(
        "<h2>Architecture</h2><pre>{}</pre><h2>Preprocessing</h2><pre>{}</pre>",
        esc(&serde_json::to_string_pretty(&m.architecture).unwrap_or_default()),
        esc(&serde_json::to_string_pretty(&m.preprocessing).unwrap_or_default())
    ));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>medai report: {}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}pre{{background:#f6f6f6;padding:8px}}</style></head><body>{body}</body></html>\n",
        esc(&m.name)
    )
}
