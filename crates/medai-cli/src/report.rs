//! Terminal tables and atomic file writes (the HTML report is `medai_report::report`).

use anyhow::{Context, Result};
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
    if let Some(ci) = v.get("auc_ci").and_then(|c| c.as_array()) {
        let b: Vec<String> = ci.iter().map(fmt).collect();
        s.push_str(&format!(
            "{:<20} [{}] ({})\n",
            "auc_ci",
            b.join(", "),
            v.get("auc_ci_method")
                .and_then(|m| m.as_str())
                .unwrap_or("")
        ));
    }
    for k in ["ece", "ece_uncalibrated", "temperature"] {
        if let Some(x) = v.get(k) {
            s.push_str(&format!("{k:<20} {}\n", fmt(x)));
        }
    }
    if let Some(t) = v.get("threshold") {
        s.push_str(&format!("{:<20} {}\n", "threshold", fmt(t)));
    }
    if let Some(ops) = v.get("operating_points").and_then(|o| o.as_object()) {
        s.push_str("operating points     threshold  sens    spec    ppv     npv     (chosen on)\n");
        for (name, op) in ops {
            s.push_str(&format!(
                "  {name:<18} {:>9}  {:<7} {:<7} {:<7} {:<7} ({})\n",
                fmt(&op["threshold"]),
                fmt(&op["sensitivity"]),
                fmt(&op["specificity"]),
                fmt(&op["ppv"]),
                fmt(&op["npv"]),
                op["chosen_on"].as_str().unwrap_or("")
            ));
        }
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
