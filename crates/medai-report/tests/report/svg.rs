use medai_report::ReportError;
use medai_report::svg::{
    CountScale, ForestRow, LegendPosition, LineChart, PALETTE, ReliabilityBar, Style, bar_chart,
    confusion_matrix, downsample, forest_plot, nice_ticks, reliability_diagram,
};

use crate::xml::assert_well_formed;

const NASTY: &str = r#"a<b & "c""#;
const NASTY_ESCAPED: &str = "a&lt;b &amp; &quot;c&quot;";

fn roc_points(n: usize) -> Vec<(f64, f64)> {
    // A concave staircase-ish curve through (0,0) and (1,1).
    (0..=n)
        .map(|i| {
            let x = i as f64 / n as f64;
            (x, 1.0 - (1.0 - x).powi(3))
        })
        .collect()
}

fn line_chart() -> LineChart {
    let roc = roc_points(50);
    let lower: Vec<_> = roc.iter().map(|&(x, y)| (x, (y - 0.05).max(0.0))).collect();
    let upper: Vec<_> = roc.iter().map(|&(x, y)| (x, (y + 0.05).min(1.0))).collect();
    LineChart::new("ROC curve")
        .x_label("False positive rate")
        .y_label("True positive rate")
        .diagonal_label("Chance")
        .band("95% CI", &lower, &upper, PALETTE[0])
        .series("Model (AUC 0.87)", &roc, Style::solid(PALETTE[0]))
        .series(
            "Reader",
            &[(0.0, 0.0), (0.3, 0.7), (1.0, 1.0)],
            Style::dashed(PALETTE[1]).with_width(1.5),
        )
        .marker("Threshold 0.50", (0.2, 0.8), PALETTE[1])
        .marker("Top-right label", (0.98, 0.99), PALETTE[2])
}

fn bins(shift: f64) -> Vec<ReliabilityBar> {
    (0..10)
        .map(|i| {
            let lo = i as f64 / 10.0;
            ReliabilityBar {
                lower: lo,
                upper: lo + 0.1,
                count: if i == 3 { 0 } else { 10u64.pow((i % 4) as u32) },
                mean_predicted: lo + 0.05,
                fraction_positive: (lo + shift).clamp(0.0, 1.0),
            }
        })
        .collect()
}

fn all_charts(label: &str) -> Vec<String> {
    let raw = bins(-0.05);
    let cal = bins(0.03);
    let labels = vec![
        label.to_string(),
        "effusion".to_string(),
        "a-very-long-class-name-indeed".to_string(),
    ];
    let rows = vec![
        ForestRow {
            label: label.to_string(),
            estimate: 0.9,
            low: 0.85,
            high: 0.95,
            flagged: false,
        },
        ForestRow {
            label: "Portable".into(),
            estimate: 0.7,
            low: 0.6,
            high: 0.8,
            flagged: true,
        },
        ForestRow {
            label: "Wide".into(),
            estimate: 0.8,
            low: 0.3,
            high: 1.2,
            flagged: false,
        },
    ];
    vec![
        line_chart()
            .series(label, &[(0.0, 0.1), (1.0, 0.9)], Style::solid(PALETTE[3]))
            .to_svg(),
        LineChart::new(label)
            .x_label(label)
            .y_label(label)
            .marker(label, (0.5, 0.5), "red")
            .to_svg(),
        reliability_diagram(
            label,
            &[
                (label, &raw[..], PALETTE[0]),
                ("Calibrated", &cal[..], PALETTE[1]),
            ],
            CountScale::Log,
        ),
        reliability_diagram(
            label,
            &[("Model", &raw[..], PALETTE[0])],
            CountScale::Linear,
        ),
        confusion_matrix(
            label,
            &labels,
            &[vec![50, 3, 0], vec![4, 20, 6], vec![0, 0, 0]],
        )
        .unwrap(),
        forest_plot(label, label, &rows, Some((0.88, 0.86, 0.9)), (0.5, 1.0)),
        bar_chart(label, &labels, &[812.0, 96.5, 0.0], label).unwrap(),
    ]
}

#[test]
fn every_chart_is_well_formed_svg() {
    for svg in all_charts("pneumonia") {
        assert_well_formed(&svg);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "),
            "{}",
            &svg[..80]
        );
        assert!(!svg.contains(" id="), "charts must not define ids");
    }
}

#[test]
fn output_is_deterministic() {
    assert_eq!(all_charts("x"), all_charts("x"));
}

#[test]
fn text_is_escaped_everywhere() {
    for svg in all_charts(NASTY) {
        assert_well_formed(&svg);
        assert!(
            svg.contains(NASTY_ESCAPED),
            "missing escaped label in {svg}"
        );
        assert!(!svg.contains(NASTY), "raw label leaked");
    }
    // A colour is an attribute value: escaped too.
    let svg = LineChart::new("t")
        .series("s", &[(0.0, 0.0), (1.0, 1.0)], Style::solid("\"><script>"))
        .to_svg();
    assert_well_formed(&svg);
    assert!(!svg.contains("<script>"));
}

#[test]
fn roc_corners_map_to_plot_corners() {
    let chart = LineChart::new("ROC");
    let area = chart.plot_area();
    assert_eq!(area.map(0.0, 0.0), (area.left, area.top + area.height));
    assert_eq!(area.map(1.0, 1.0), (area.left + area.width, area.top));
    assert_eq!(
        area.map(0.5, 0.5),
        (area.left + area.width / 2.0, area.top + area.height / 2.0)
    );
    // Out-of-range values clamp to the edges.
    assert_eq!(area.map(-3.0, 7.0), (area.left, area.top));

    // And the drawn polyline uses exactly those pixels.
    let svg = chart
        .series("s", &[(0.0, 0.0), (1.0, 1.0)], Style::default())
        .to_svg();
    let expected = format!(
        "points=\"{:.2},{:.2} {:.2},{:.2}\"",
        area.left,
        area.top + area.height,
        area.left + area.width,
        area.top
    );
    assert!(svg.contains(&expected), "{expected} not in {svg}");

    // General ranges map the same way.
    let area = LineChart::new("r")
        .x_range(10.0, 20.0)
        .y_range(-1.0, 1.0)
        .plot_area();
    assert_eq!(area.map(10.0, -1.0), (area.left, area.bottom()));
    assert_eq!(area.map(20.0, 1.0), (area.right(), area.top));
}

#[test]
fn ticks_are_nice() {
    let t = nice_ticks(0.0, 1.0, 5);
    assert_eq!(t, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    assert_eq!(
        nice_ticks(0.0, 837.0, 5),
        vec![0.0, 200.0, 400.0, 600.0, 800.0]
    );
    assert_eq!(nice_ticks(0.5, 1.0, 5), vec![0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
    assert_eq!(nice_ticks(-1.0, 1.0, 4), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
    assert!(nice_ticks(1.0, 1.0, 5).is_empty());
    let svg = LineChart::new("ticks").to_svg();
    for label in [">0.0<", ">0.2<", ">0.4<", ">0.6<", ">0.8<", ">1.0<"] {
        assert!(svg.contains(label), "missing tick {label}");
    }
}

#[test]
fn non_finite_values_never_reach_the_svg() {
    let pts = [
        (0.0, 0.0),
        (0.1, f64::NAN),
        (0.2, 0.5),
        (f64::INFINITY, 0.6),
        (0.5, 0.8),
        (1.0, 1.0),
    ];
    let svgs = vec![
        LineChart::new("t")
            .x_range(f64::NAN, 1.0)
            .y_range(0.0, f64::INFINITY)
            .series("s", &pts, Style::default().with_width(f64::NAN))
            .band("b", &pts, &pts, "#ccc")
            .marker("m", (f64::NAN, 0.5), "red")
            .to_svg(),
        LineChart::new("t")
            .series("s", &[(f64::NAN, f64::NAN)], Style::default())
            .to_svg(),
        LineChart::new("empty range")
            .x_range(0.3, 0.3)
            .y_range(1.0, 0.0)
            .series("s", &pts, Style::default())
            .to_svg(),
        reliability_diagram(
            "t",
            &[(
                "m",
                &[
                    ReliabilityBar {
                        lower: f64::NAN,
                        upper: 0.1,
                        count: 5,
                        mean_predicted: 0.05,
                        fraction_positive: 0.0,
                    },
                    ReliabilityBar {
                        lower: 0.1,
                        upper: 0.2,
                        count: 5,
                        mean_predicted: f64::NAN,
                        fraction_positive: 0.1,
                    },
                    ReliabilityBar {
                        lower: 0.2,
                        upper: 0.3,
                        count: 5,
                        mean_predicted: 0.25,
                        fraction_positive: f64::INFINITY,
                    },
                ][..],
                "blue",
            )],
            CountScale::Log,
        ),
        forest_plot(
            "t",
            "",
            &[
                ForestRow {
                    label: "a".into(),
                    estimate: f64::NAN,
                    low: 0.1,
                    high: 0.2,
                    flagged: false,
                },
                ForestRow {
                    label: "b".into(),
                    estimate: 0.5,
                    low: f64::NAN,
                    high: 0.7,
                    flagged: true,
                },
            ],
            Some((f64::NAN, 0.0, 1.0)),
            (f64::NAN, f64::NAN),
        ),
        bar_chart("t", &["a", "b"], &[f64::NAN, f64::INFINITY], "").unwrap(),
    ];
    for svg in svgs {
        assert_well_formed(&svg);
        let lower = svg.to_lowercase();
        assert!(
            !lower.contains("nan") && !lower.contains("inf"),
            "non-finite leaked: {svg}"
        );
    }
}

#[test]
fn nan_breaks_a_series_into_pieces() {
    let svg = LineChart::new("t")
        .series(
            "s",
            &[
                (0.0, 0.0),
                (0.5, 0.5),
                (0.6, f64::NAN),
                (0.7, 0.7),
                (1.0, 1.0),
            ],
            Style::default(),
        )
        .to_svg();
    assert_eq!(svg.matches("<polyline").count(), 2);
}

#[test]
fn long_series_are_downsampled_keeping_shape() {
    // A ROC staircase with 100k points: only the corners matter.
    let mut stair = vec![(0.0, 0.0)];
    for i in 0..50_000 {
        let (x, y) = (i as f64 / 50_000.0, (i + 1) as f64 / 50_000.0);
        stair.push((x, y));
        stair.push(((i + 1) as f64 / 50_000.0, y));
    }
    let d = downsample(&stair, 2000);
    assert!(d.len() <= 2000);
    assert_eq!(d.first(), stair.first());
    assert_eq!(d.last(), stair.last());
    assert!(
        d.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1),
        "monotone curve stays monotone"
    );

    // Collinear runs collapse to their corners exactly.
    let mut l: Vec<(f64, f64)> = (0..=3000).map(|i| (i as f64 / 3000.0, 0.0)).collect();
    l.extend((1..=3000).map(|i| (1.0, i as f64 / 3000.0)));
    assert_eq!(
        downsample(&l, 2000),
        vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]
    );

    // Short inputs are untouched.
    let short = roc_points(10);
    assert_eq!(downsample(&short, 2000), short);

    // The rendered polyline respects the limit.
    let noisy: Vec<(f64, f64)> = (0..10_000)
        .map(|i| (i as f64 / 10_000.0, ((i * 7919) % 13) as f64 / 13.0))
        .collect();
    let svg = LineChart::new("n")
        .series("s", &noisy, Style::default())
        .to_svg();
    let points = svg
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(points.split(' ').count() <= 2000);
}

#[test]
fn legend_can_move_or_hide() {
    let base = line_chart();
    let hidden = base.clone().legend(LegendPosition::Hidden).to_svg();
    assert!(!hidden.contains(">Model (AUC 0.87)<"));
    let shown = base.legend(LegendPosition::BottomLeft).to_svg();
    assert!(shown.contains(">Model (AUC 0.87)<"));
    assert!(shown.contains(">Chance<"));
}

#[test]
fn confusion_matrix_colours_and_text() {
    let svg = confusion_matrix("cm", &["a", "b"], &[vec![90, 10], vec![0, 0]]).unwrap();
    assert_well_formed(&svg);
    // 90% of row: dark cell, white text; 10%: light cell, dark text; empty row: dash.
    assert!(svg.contains("fill=\"#ffffff\">90<"), "{svg}");
    assert!(svg.contains("fill=\"#222222\">10<"));
    assert!(svg.contains(">90.0%<") && svg.contains(">10.0%<") && svg.contains(">—<"));
    assert!(svg.contains(">True<") && svg.contains(">Predicted<"));
    // Row-normalised colours: 0.9 -> dark blue, 0.0 -> white.
    assert!(svg.contains("fill=\"#21589f\" stroke"), "{svg}");
    assert!(svg.contains("fill=\"#ffffff\" stroke=\"#ffffff\""));
}

#[test]
fn confusion_matrix_shape_errors() {
    let e = confusion_matrix("cm", &["a", "b"], &[vec![1, 2]]).unwrap_err();
    assert!(
        matches!(
            e,
            ReportError::LengthMismatch {
                expected: 2,
                actual: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = confusion_matrix("cm", &["a", "b"], &[vec![1, 2], vec![3]]).unwrap_err();
    assert!(
        matches!(
            e,
            ReportError::LengthMismatch {
                expected: 2,
                actual: 1,
                ..
            }
        ),
        "{e}"
    );
    let empty: [&str; 0] = [];
    assert!(matches!(
        confusion_matrix("cm", &empty, &[]),
        Err(ReportError::InvalidInput(_))
    ));
    // Many classes still render.
    let labels: Vec<String> = (0..20).map(|i| format!("class {i}")).collect();
    let m: Vec<Vec<u64>> = (0..20)
        .map(|i| {
            (0..20)
                .map(|j| if i == j { 50 } else { j as u64 })
                .collect()
        })
        .collect();
    assert_well_formed(&confusion_matrix("big", &labels, &m).unwrap());
}

#[test]
fn forest_plot_flags_and_reference() {
    let rows = vec![
        ForestRow {
            label: "ok".into(),
            estimate: 0.9,
            low: 0.85,
            high: 0.95,
            flagged: false,
        },
        ForestRow {
            label: "bad".into(),
            estimate: 0.7,
            low: 0.6,
            high: 0.8,
            flagged: true,
        },
    ];
    let svg = forest_plot("f", "AUC", &rows, Some((0.88, 0.86, 0.9)), (0.5, 1.0));
    assert_well_formed(&svg);
    assert!(svg.contains("fill=\"#C62828\" font-weight=\"bold\">bad<"));
    assert!(svg.contains(">0.700 [0.600, 0.800]<"));
    assert!(svg.contains(">Overall 0.880 [0.860, 0.900]<"));
    assert!(svg.contains(">flagged subgroup<"));
    let none = forest_plot("f", "", &[], None, (0.0, 1.0));
    assert_well_formed(&none);
}

#[test]
fn bar_chart_values_and_errors() {
    let svg = bar_chart("b", &["x", "y", "z"], &[3.0, 1.25, -2.0], "n").unwrap();
    assert_well_formed(&svg);
    assert!(svg.contains(">3<") && svg.contains(">1.25<") && svg.contains(">-2<"));
    let e = bar_chart("b", &["x"], &[1.0, 2.0], "n").unwrap_err();
    assert!(matches!(
        e,
        ReportError::LengthMismatch {
            expected: 1,
            actual: 2,
            ..
        }
    ));
    let empty: [&str; 0] = [];
    assert_well_formed(&bar_chart("empty", &empty, &[], "").unwrap());
}

#[test]
fn reliability_diagram_draws_bins_and_histogram() {
    let b = bins(0.0);
    let svg = reliability_diagram("r", &[("Model", &b[..], "#123456")], CountScale::Linear);
    assert_well_formed(&svg);
    // 9 non-empty bins: 9 dots in the top panel.
    assert_eq!(
        svg.matches("<circle").count(),
        9 + 1,
        "9 dots + 1 legend dot"
    );
    assert!(svg.contains(">Count<") && svg.contains(">Fraction of positives<"));
    let log = reliability_diagram("r", &[("Model", &b[..], "#123456")], CountScale::Log);
    assert!(log.contains(">Count (log)<") && log.contains(">1000<"));
    assert_well_formed(&reliability_diagram("empty", &[], CountScale::Log));
}
