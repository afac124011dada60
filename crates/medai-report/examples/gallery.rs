//! Writes `OUT_DIR/gallery.html`: every chart type and a heat-map overlay grid, on
//! synthetic data, in one self-contained page.
//!
//! ```text
//! cargo run -p medai-report --example gallery -- OUT_DIR
//! ```
//!
//! The data are generated with a fixed seed, so the page is identical on every run.

use std::error::Error;
use std::path::PathBuf;

use medai_report::html::{Cell, NumFmt, Page};
use medai_report::svg::{
    CountScale, ForestRow, LegendPosition, LineChart, PALETTE, ReliabilityBar, Style, bar_chart,
    confusion_matrix, forest_plot, reliability_diagram,
};
use medai_report::visualize::{heat_argmax, overlay, png_bytes, png_data_uri};

/// A tiny deterministic generator (xorshift64*), enough for demo data.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-12);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// Empirical ROC points (FPR, TPR) and PR points (recall, precision), plus the AUC.
#[allow(clippy::type_complexity)]
fn curves(scores: &[(f64, bool)]) -> (Vec<(f64, f64)>, Vec<(f64, f64)>, f64) {
    let mut s = scores.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = s.iter().filter(|x| x.1).count() as f64;
    let neg = s.len() as f64 - pos;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = vec![(0.0, 1.0)];
    let mut auc = 0.0;
    for (_, label) in &s {
        if *label {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let (x, y) = (fp / neg, tp / pos);
        let last = *roc.last().unwrap();
        auc += (x - last.0) * (y + last.1) / 2.0;
        roc.push((x, y));
        pr.push((tp / pos, tp / (tp + fp)));
    }
    (roc, pr, auc)
}

fn reliability(preds: &[(f64, bool)], n_bins: usize) -> Vec<ReliabilityBar> {
    (0..n_bins)
        .map(|b| {
            let (lower, upper) = (b as f64 / n_bins as f64, (b + 1) as f64 / n_bins as f64);
            let inside: Vec<_> = preds
                .iter()
                .filter(|(p, _)| *p >= lower && (*p < upper || (b + 1 == n_bins && *p <= upper)))
                .collect();
            let count = inside.len() as u64;
            let (mean_predicted, fraction_positive) = if count == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (
                    inside.iter().map(|x| x.0).sum::<f64>() / count as f64,
                    inside.iter().filter(|x| x.1).count() as f64 / count as f64,
                )
            };
            ReliabilityBar {
                lower,
                upper,
                count,
                mean_predicted,
                fraction_positive,
            }
        })
        .collect()
}

/// A synthetic 128x128 "radiograph": a bright ellipse (the body) with two darker lobes.
fn phantom(h: usize, w: usize) -> Vec<u8> {
    let mut img = vec![0u8; h * w];
    for r in 0..h {
        for c in 0..w {
            let (y, x) = (r as f64 / h as f64 - 0.5, c as f64 / w as f64 - 0.5);
            let body = ((x / 0.42).powi(2) + (y / 0.47).powi(2) < 1.0) as u8 as f64;
            let lung = |cx: f64| {
                (((x - cx) / 0.15).powi(2) + ((y + 0.03) / 0.3).powi(2) < 1.0) as u8 as f64
            };
            let v = 25.0 + 170.0 * body - 110.0 * (lung(-0.18) + lung(0.18)) + 20.0 * (1.0 - y);
            img[r * w + c] = v.clamp(0.0, 255.0) as u8;
        }
    }
    img
}

/// A 7x7 Grad-CAM-like map: a Gaussian blob at (row, col) in cell units.
fn blob(row: f64, col: f64, spread: f64) -> Vec<f32> {
    (0..49)
        .map(|i| {
            let (r, c) = ((i / 7) as f64, (i % 7) as f64);
            (-((r - row).powi(2) + (c - col).powi(2)) / (2.0 * spread * spread)).exp() as f32
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_string()));
    std::fs::create_dir_all(&out_dir)?;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);

    // Binary task: 600 negatives ~ N(0, 1), 300 positives ~ N(1.6, 1).
    let mut model = Vec::new();
    let mut reader = Vec::new();
    for i in 0..900 {
        let positive = i % 3 == 0;
        let mu = if positive { 1.6 } else { 0.0 };
        model.push((mu + rng.normal(), positive));
        reader.push((0.7 * mu + rng.normal(), positive));
    }
    let (roc, pr, auc) = curves(&model);
    let (roc_r, pr_r, auc_r) = curves(&reader);
    let lower: Vec<_> = roc
        .iter()
        .map(|&(x, y)| (x, (y - 0.05 * (1.0 - y) - 0.01).max(0.0)))
        .collect();
    let upper: Vec<_> = roc
        .iter()
        .map(|&(x, y)| (x, (y + 0.05 * (1.0 - y) + 0.01).min(1.0)))
        .collect();
    let op = roc[roc.len() / 4];

    let roc_svg = LineChart::new("ROC curve — test split")
        .x_label("False positive rate (1 − specificity)")
        .y_label("True positive rate (sensitivity)")
        .diagonal_label("Chance")
        .band("95% bootstrap band", &lower, &upper, PALETTE[0])
        .series(
            &format!("Model (AUC {auc:.3})"),
            &roc,
            Style::solid(PALETTE[0]),
        )
        .series(
            &format!("Reader study (AUC {auc_r:.3})"),
            &roc_r,
            Style::dashed(PALETTE[1]).with_width(1.5),
        )
        .marker(
            &format!("Operating point ({:.2}, {:.2})", op.0, op.1),
            op,
            PALETTE[1],
        )
        .to_svg();
    let prevalence = 300.0 / 900.0;
    let pr_svg = LineChart::new("Precision–recall curve")
        .x_label("Recall (sensitivity)")
        .y_label("Precision (PPV)")
        .legend(LegendPosition::BottomLeft)
        .series("Model", &pr, Style::solid(PALETTE[0]))
        .series(
            "Reader study",
            &pr_r,
            Style::dashed(PALETTE[1]).with_width(1.5),
        )
        .series(
            &format!("Prevalence {prevalence:.2}"),
            &[(0.0, prevalence), (1.0, prevalence)],
            Style::dashed("#888888").with_width(1.0),
        )
        .to_svg();

    // Calibration: an over-confident model and the same model after temperature scaling.
    let mut raw = Vec::new();
    let mut scaled = Vec::new();
    for _ in 0..4000 {
        let q = rng.uniform().powf(1.6);
        let y = rng.uniform() < q;
        let p = sigmoid(2.2 * logit(q));
        raw.push((p, y));
        scaled.push((sigmoid(logit(p) / 2.2), y));
    }
    let (raw_bins, scaled_bins) = (reliability(&raw, 10), reliability(&scaled, 10));
    let calib_svg = reliability_diagram(
        "Reliability diagram",
        &[
            ("Uncalibrated", &raw_bins[..], PALETTE[1]),
            ("Temperature-scaled (T = 2.2)", &scaled_bins[..], PALETTE[0]),
        ],
        CountScale::Log,
    );

    // Multiclass confusion matrix and class balance.
    let classes = ["normal", "pneumonia", "effusion", "cardiomegaly <rare>"];
    let cm = vec![
        vec![812, 31, 12, 4],
        vec![40, 265, 18, 3],
        vec![9, 22, 121, 7],
        vec![6, 2, 11, 37],
    ];
    let cm_svg = confusion_matrix("Confusion matrix (test split)", &classes, &cm)?;
    let cm2_svg = confusion_matrix(
        "Binary, at threshold 0.50",
        &["negative", "positive"],
        &[vec![540, 60], vec![48, 252]],
    )?;
    let totals: Vec<f64> = cm.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let balance_svg = bar_chart("Class balance (test split)", &classes, &totals, "Images")?;

    // Subgroups.
    let rows = vec![
        ForestRow {
            label: "Female (n = 468)".into(),
            estimate: 0.902,
            low: 0.874,
            high: 0.928,
            flagged: false,
        },
        ForestRow {
            label: "Male (n = 432)".into(),
            estimate: 0.889,
            low: 0.857,
            high: 0.918,
            flagged: false,
        },
        ForestRow {
            label: "Age < 40 (n = 211)".into(),
            estimate: 0.931,
            low: 0.897,
            high: 0.960,
            flagged: false,
        },
        ForestRow {
            label: "Age 40–65 (n = 402)".into(),
            estimate: 0.897,
            low: 0.866,
            high: 0.925,
            flagged: false,
        },
        ForestRow {
            label: "Age ≥ 65 (n = 287)".into(),
            estimate: 0.861,
            low: 0.817,
            high: 0.900,
            flagged: false,
        },
        ForestRow {
            label: "Portable AP view (n = 96)".into(),
            estimate: 0.781,
            low: 0.702,
            high: 0.851,
            flagged: true,
        },
        ForestRow {
            label: "Site C (n = 41)".into(),
            estimate: 0.842,
            low: 0.713,
            high: 0.948,
            flagged: false,
        },
    ];
    let forest_svg = forest_plot(
        "AUC by subgroup",
        "AUC (95% CI)",
        &rows,
        Some((0.895, 0.874, 0.915)),
        (0.6, 1.0),
    );

    // Heat-map overlays.
    let (h, w) = (128, 128);
    let grey = phantom(h, w);
    let rgb: Vec<u8> = grey
        .iter()
        .flat_map(|&g| [g, (g as f32 * 0.9) as u8, (g as f32 * 0.8) as u8])
        .collect();
    let input =
        image::GrayImage::from_raw(w as u32, h as u32, grey.clone()).ok_or("bad phantom size")?;
    let input = image::DynamicImage::ImageLuma8(input).to_rgb8();
    let mut grid = vec![(png_data_uri(&png_bytes(&input)?), "Input image".to_string())];
    for (name, heat, base, channels) in [
        ("right lower lobe", blob(4.6, 2.0, 1.0), &grey, 1),
        ("left upper lobe", blob(2.2, 4.8, 0.8), &grey, 1),
        ("diffuse, RGB input", blob(3.0, 3.0, 2.5), &rgb, 3),
    ] {
        let img = overlay(base, h, w, channels, &heat, 7, 7, 0.45)?;
        let (r, c) = heat_argmax(&heat, 7, 7, h, w)?;
        grid.push((
            png_data_uri(&png_bytes(&img)?),
            format!("Grad-CAM: {name}; peak at ({r}, {c})"),
        ));
    }

    let mut page = Page::new("medai-report gallery");
    page.subtitle("Every chart and block type, on synthetic data (fixed seed).")
        .footer(
            "Generated by medai-report's gallery example. Synthetic data; not a clinical result.",
        );
    page.section("Summary")
        .paragraph("This page exercises every building block of medai-report. It is self-contained: no scripts, fonts, stylesheets or images are loaded from anywhere.")
        .note("Warning example: the portable AP subgroup performs below the overall AUC (flagged in red).")
        .key_values(&[
            ("Model", "chest-xray-demo v0.1".to_string()),
            ("Test images", "900".to_string()),
            ("AUC", format!("{auc:.3}")),
            ("Escaping check", "a<b & \"c\"".to_string()),
        ]);
    page.section("Discrimination")
        .figure(
            roc_svg,
            "ROC curve with a bootstrap band, a reader comparison and the operating point.",
        )
        .figure(
            pr_svg,
            "Precision–recall curve; the dashed grey line is the prevalence (a random classifier).",
        );
    page.section("Calibration").figure(
        calib_svg,
        "Top: fraction of positives against mean predicted probability per bin. Bottom: predictions per bin (log scale).",
    );
    page.section("Errors")
        .figure(cm_svg, "Rows are true classes, columns predicted; colour and percentage are normalised per row.")
        .figure(cm2_svg, "Binary confusion matrix at the chosen threshold.")
        .figure(balance_svg, "Images per class in the test split.");
    page.section("Subgroups")
        .figure(forest_svg, "Subgroup AUC with 95% confidence intervals; the shaded band is the overall AUC's interval.")
        .table(
            &["Subgroup", "n", "AUC", "Sensitivity", "Note"],
            rows.iter()
                .map(|r| {
                    let n: f64 = r.label.split("n = ").nth(1).and_then(|s| s.trim_end_matches(')').parse().ok()).unwrap_or(f64::NAN);
                    vec![
                        Cell::text(r.label.split(" (").next().unwrap_or(&r.label)),
                        Cell::num(n, NumFmt::Integer),
                        if r.flagged { Cell::warn_num(r.estimate, NumFmt::Fixed(3)) } else { Cell::num(r.estimate, NumFmt::Fixed(3)) },
                        Cell::num(r.estimate - 0.05, NumFmt::Percent(1)),
                        if r.flagged { Cell::warn("below overall CI") } else { Cell::text("") },
                    ]
                })
                .collect(),
        );
    page.section("Explanations")
        .paragraph("Grad-CAM heat maps (7×7) upsampled bilinearly, min-max normalised, coloured with jet and blended at alpha 0.45.")
        .image_grid(grid)
        .raw_html("<p><small>Raw HTML escape hatch: this line was inserted verbatim.</small></p>");

    let path = out_dir.join("gallery.html");
    std::fs::write(&path, page.render())?;
    println!("{}", path.display());
    Ok(())
}
