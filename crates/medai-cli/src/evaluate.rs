//! Glue between a model and the one evaluator ([`medai_report::evaluation`]): score a split
//! (raw and temperature-scaled probabilities), evaluate it, and write `report.html` +
//! `metrics.json` with heat maps of the hardest errors.

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use medai_bundle::Manifest;
use medai_data::LabeledImages;
use medai_nn::Device;
use medai_nn::data::ImageBatcher;
use medai_nn::explain::Method;
use medai_nn::vision::ImageModel;
use medai_report::evaluation::{
    Abstain, CiMethod, EvalInput, EvalOptions, Evaluation, Scored, evaluate,
};
use medai_report::report::{CaseImage, ReportContext};
use serde_json::{Value, json};
use std::path::Path;

/// Evaluation options shared by `eval` (and recorded in reports).
#[derive(Args, Debug, Clone)]
pub struct EvalFlags {
    /// Pick the threshold that reaches this sensitivity on the validation split and report the
    /// evaluated split's figures at it (binary).
    #[arg(long, value_name = "S")]
    pub target_sensitivity: Option<f64>,
    /// Pick the threshold that reaches this specificity on the validation split (binary).
    #[arg(long, value_name = "S")]
    pub target_specificity: Option<f64>,
    /// AUC interval: `delong` (default) or `bootstrap`.
    #[arg(long, default_value = "delong", value_parser = ["delong", "bootstrap"])]
    pub ci: String,
    /// Bootstrap resamples (with `--ci bootstrap`, and for multi-class macro AUC).
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// Confidence level of every interval.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// Calibration bins.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Refer to a human: `LOW,HIGH` (binary band on p(positive)) or `MIN` (top-class
    /// confidence below MIN).
    #[arg(long, value_name = "BAND")]
    pub abstain: Option<String>,
}

impl Default for EvalFlags {
    fn default() -> Self {
        EvalFlags {
            target_sensitivity: None,
            target_specificity: None,
            ci: "delong".into(),
            bootstrap: 2000,
            level: 0.95,
            bins: 10,
            abstain: None,
        }
    }
}

impl EvalFlags {
    /// The evaluator's options, with the decision `threshold`.
    pub fn options(&self, threshold: f64, seed: u64) -> Result<EvalOptions> {
        for (name, v) in [
            ("--target-sensitivity", self.target_sensitivity),
            ("--target-specificity", self.target_specificity),
        ] {
            if let Some(v) = v.filter(|v| !(*v > 0.0 && *v <= 1.0)) {
                bail!("{name} {v}: expected a value in (0, 1]");
            }
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            bail!("--level {}: expected a value in (0, 1)", self.level);
        }
        if self.bins == 0 {
            bail!("--bins 0: expected at least 1");
        }
        Ok(EvalOptions {
            threshold,
            target_sensitivity: self.target_sensitivity,
            target_specificity: self.target_specificity,
            ci: if self.ci == "bootstrap" {
                CiMethod::Bootstrap {
                    resamples: self.bootstrap.max(100),
                    seed,
                }
            } else {
                CiMethod::Delong
            },
            level: self.level,
            bins: self.bins,
            abstain: self
                .abstain
                .as_deref()
                .map(Abstain::parse)
                .transpose()
                .map_err(|e| anyhow!(e))?,
            hardest: 6,
        })
    }
}

/// The temperature recorded in a bundle (1 when it has none).
pub fn temperature_of(m: &Manifest) -> f64 {
    m.calibration
        .get("temperature")
        .and_then(|t| t.as_f64())
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(1.0)
}

/// Apply a temperature to probability rows.
pub fn calibrate(probs: &[Vec<f64>], t: f64) -> Vec<Vec<f64>> {
    if t == 1.0 {
        return probs.to_vec();
    }
    probs
        .iter()
        .map(|p| medai_metrics::apply_temperature(p, t))
        .collect()
}

/// One split's labels and probabilities, before and after calibration.
pub struct SplitScores {
    /// Class per sample.
    pub labels: Vec<usize>,
    /// The model's probabilities.
    pub raw: Vec<Vec<f64>>,
    /// After temperature scaling (what is served).
    pub served: Vec<Vec<f64>>,
    /// The temperature applied (1 = none).
    pub temperature: f64,
}

/// Score every image of `set`.
pub fn score(
    model: &ImageModel,
    set: &LabeledImages,
    batcher: &ImageBatcher,
    device: &Device,
    temperature: f64,
) -> Result<SplitScores> {
    let raw = medai_nn::image::predict_set(model, set, batcher, 256, device)?;
    Ok(SplitScores {
        labels: set.labels(),
        served: calibrate(&raw, temperature),
        raw,
        temperature,
    })
}

/// Evaluate `scores` (split `split`), choosing thresholds on `val` when given.
pub fn run(
    classes: &[String],
    mode: &str,
    split: &str,
    scores: &SplitScores,
    val: Option<&SplitScores>,
    set: &LabeledImages,
    opts: &EvalOptions,
) -> Result<Evaluation> {
    let temperature = scores.temperature;
    let attributes: Vec<Vec<(String, String)>> =
        set.items.iter().map(|i| i.attributes.clone()).collect();
    let has_attributes = attributes.iter().any(|a| !a.is_empty());
    let input = EvalInput {
        classes,
        mode,
        split,
        data: Scored {
            labels: &scores.labels,
            probs: &scores.served,
        },
        uncalibrated: (temperature != 1.0).then_some(&scores.raw[..]),
        val: val.map(|v| Scored {
            labels: &v.labels,
            probs: &v.served,
        }),
        temperature,
        attributes: if has_attributes { &attributes } else { &[] },
    };
    evaluate(&input, opts).map_err(|e| anyhow!("evaluating the {split} split: {e}"))
}

/// Heat-map overlays of the hardest errors of `ev` (cases of `set`).
pub fn case_images(
    ev: &Evaluation,
    model: &ImageModel,
    set: &LabeledImages,
    batcher: &ImageBatcher,
    device: &Device,
    method: Method,
) -> Result<Vec<CaseImage>> {
    let binary = ev.classes.len() == 2;
    let cases: Vec<(&str, &medai_report::evaluation::Case)> = ev
        .hardest_false_positives
        .iter()
        .map(|c| (if binary { "false-positive" } else { "error" }, c))
        .chain(
            ev.hardest_false_negatives
                .iter()
                .map(|c| ("false-negative", c)),
        )
        .collect();
    let mut images = Vec::with_capacity(cases.len());
    for (_, c) in &cases {
        images.push(set.load(c.index)?);
    }
    let targets: Vec<usize> = cases.iter().map(|(_, c)| c.predicted).collect();
    let maps =
        medai_nn::explain::explain_images(model, &images, batcher, device, &targets, method)?;
    let mut out = Vec::with_capacity(cases.len());
    for (((kind, c), img), heat) in cases.iter().zip(&images).zip(&maps) {
        let png = crate::explain::overlay_png(img, heat)?;
        out.push(CaseImage {
            data_uri: medai_report::visualize::png_data_uri(&png),
            caption: format!(
                "{} — true {}, predicted {} (p = {:.3})",
                short_name(&set.describe(c.index)),
                ev.classes[c.label],
                ev.classes[c.predicted],
                c.confidence
            ),
            kind: kind.to_string(),
        });
    }
    Ok(out)
}

/// The last path component of a sample's description (`…/x.npz:test_images[67]` →
/// `x.npz:test_images[67]`), so captions stay short.
fn short_name(describe: &str) -> &str {
    describe.rsplit(['/', '\\']).next().unwrap_or(describe)
}

/// Facts about a bundle for the report's "Model" section.
pub fn model_facts(m: &Manifest, bundle: &Path) -> Vec<(String, String)> {
    let get = |v: &Value, k: &str| {
        v.get(k)
            .map(|x| x.to_string().trim_matches('"').to_string())
    };
    let mut kv = vec![
        ("Name".to_string(), m.name.clone()),
        ("Bundle".to_string(), bundle.display().to_string()),
        ("Task".to_string(), format!("{} ({})", m.task, m.label_mode)),
    ];
    if let Some(a) = get(&m.architecture, "arch") {
        kv.push(("Architecture".into(), a));
    }
    if let Some(p) = get(&m.training, "parameters") {
        kv.push(("Parameters".into(), p));
    }
    if let Some(e) = get(&m.training, "best_epoch") {
        kv.push((
            "Best epoch".into(),
            format!(
                "{e} of {}",
                get(&m.training, "epochs_run").unwrap_or_default()
            ),
        ));
    }
    kv.push((
        "Calibration".into(),
        match m.calibration.get("temperature").and_then(|t| t.as_f64()) {
            Some(t) => format!("temperature {t:.4} (fitted on validation)"),
            None => "none".into(),
        },
    ));
    kv.push((
        "Created".into(),
        format!("{} by medai {}", m.created, m.medai_version),
    ));
    kv
}

/// Write `dir/report.html` and `dir/metrics.json` for `ev` (`extra`'s keys are added to the
/// top level of `metrics.json`).
#[allow(clippy::too_many_arguments)]
pub fn write_report(
    dir: &Path,
    ev: &Evaluation,
    manifest: &Manifest,
    bundle: &Path,
    data: &Path,
    data_facts: Vec<(String, String)>,
    cases: Vec<CaseImage>,
    extra: Value,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut data_kv = vec![("Data".to_string(), data.display().to_string())];
    data_kv.extend(data_facts);
    let ctx = ReportContext {
        title: format!("Evaluation report — {}", manifest.name),
        model: model_facts(manifest, bundle),
        data: data_kv,
        cases,
        explanation: "Grad-CAM".into(),
        footer: format!(
            "medai {} · {} · self-contained report, no network needed",
            env!("CARGO_PKG_VERSION"),
            medai_bundle::now_rfc3339()
        ),
    };
    let html = medai_report::report::render(ev, &ctx);
    crate::report::write_atomic(&dir.join("report.html"), html.as_bytes())?;
    let mut metrics = json!({
        "summary": ev.summary(),
        "evaluation": ev,
        "model": bundle.display().to_string(),
        "data": data.display().to_string(),
    });
    if let (Some(o), Value::Object(extra)) = (metrics.as_object_mut(), extra) {
        o.extend(extra);
    }
    crate::report::write_atomic(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)?.as_bytes(),
    )?;
    Ok(())
}
