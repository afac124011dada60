//! Hand-written, deterministic SVG charts for evaluation reports.
//!
//! Every chart is one standalone `<svg>` element (with `xmlns`, a `viewBox` and a
//! `<title>`), meant to be inlined into an HTML page by [`crate::html::Section::figure`]
//! or saved as a `.svg` file. Charts use only system `sans-serif` fonts, no
//! scripts, no external references and no element ids (so any number of charts can
//! share one page).
//!
//! **Determinism.** The same input always gives the same bytes: coordinates are
//! written with exactly two decimals, nothing depends on time, hashing or
//! randomness.
//!
//! **Non-finite input.** NaN and ±infinity never reach the output. Points with a
//! non-finite coordinate are skipped (a line series is broken into separate pieces
//! at such points); non-finite axis ranges fall back to `[0, 1]`; finite values
//! outside an axis range are clamped to the plot's edge. Each function documents
//! what it does with the rest.
//!
//! **Text.** Every piece of user text (titles, labels, series names, colours) is
//! escaped with [`crate::escape`].
//!
//! Charts:
//! - [`LineChart`]: ROC and precision–recall curves, with confidence bands, a
//!   chance diagonal and operating-point markers;
//! - [`reliability_diagram`]: calibration curve(s) over a histogram of bin counts;
//! - [`confusion_matrix`]: row-normalised heat map with counts and row percentages;
//! - [`forest_plot`]: subgroup estimates with confidence intervals and a reference band;
//! - [`bar_chart`]: labelled vertical bars (for example class balance).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::ReportError;
use crate::html::escape;

/// Colour-blind-safe default colours (Okabe–Ito), in the order series should use them.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

/// Colour used for flagged (warning) elements, such as a subgroup below target.
pub const FLAG_COLOUR: &str = "#C62828";

/// A line series with more points than this is downsampled before drawing
/// (see [`downsample`]); the plot area is only a few hundred pixels wide.
pub const MAX_SERIES_POINTS: usize = 2000;

/// Width of the [`LineChart`] and [`bar_chart`] viewBox, in SVG user units (pixels).
pub const CHART_WIDTH: f64 = 440.0;
/// Height of the [`LineChart`] and [`bar_chart`] viewBox.
pub const CHART_HEIGHT: f64 = 380.0;

const FONT: &str = "Helvetica, Arial, sans-serif";
const TEXT: &str = "#222222";
const MUTED: &str = "#555555";
const GRID: &str = "#e6e6e6";
const AXIS: &str = "#444444";
/// Rough average advance of a 12px sans-serif character, for layout estimates.
const CHAR_W: f64 = 6.6;

// ---------------------------------------------------------------------------
// Number formatting and small helpers
// ---------------------------------------------------------------------------

/// Formats a coordinate with two decimals, never `-0.00`.
fn c(v: f64) -> String {
    let s = format!("{v:.2}");
    if s == "-0.00" { "0.00".to_string() } else { s }
}

/// Formats a value with `d` decimals, never a negative zero; `n/a` if not finite.
fn num(v: f64, d: usize) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{v:.d$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|ch| ch == '0' || ch == '.') => rest.to_string(),
        _ => s,
    }
}

fn finite(p: (f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// Replaces an unusable axis range: non-finite → `[0, 1]`, reversed → swapped,
/// empty → widened by 0.5 on each side.
fn sanitize_range((lo, hi): (f64, f64)) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if hi - lo < f64::EPSILON * lo.abs().max(1.0) {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// Cuts a label to `max` characters, ending with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn text_width(s: &str, font_px: f64) -> f64 {
    s.chars().count() as f64 * CHAR_W * font_px / 12.0
}

/// "Nice" tick positions (multiples of 1, 2 or 5 × 10ᵏ) covering `[lo, hi]`, about
/// `target` intervals.
///
/// Returns ticks inside the range, ascending; `[0, 1]` with `target = 5` gives
/// `0, 0.2, 0.4, 0.6, 0.8, 1`. A non-finite or empty range gives no ticks.
///
/// ```
/// let t = medai_report::svg::nice_ticks(0.0, 1.0, 5);
/// assert_eq!(t.len(), 6);
/// assert!((t[1] - 0.2).abs() < 1e-12);
/// ```
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return Vec::new();
    }
    let step = nice_step(lo, hi, target);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| snap(k as f64 * step)).collect()
}

fn nice_step(lo: f64, hi: f64, target: usize) -> f64 {
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Removes floating-point dust such as `0.6000000000000001`.
fn snap(v: f64) -> f64 {
    let r = (v * 1e9).round() / 1e9;
    if r == 0.0 { 0.0 } else { r }
}

/// Decimals needed to write ticks of the given spacing.
fn tick_decimals(ticks: &[f64]) -> usize {
    if ticks.len() < 2 {
        return 2;
    }
    let step = (ticks[1] - ticks[0]).abs();
    (-step.log10() - 1e-9).ceil().clamp(0.0, 6.0) as usize
}

/// Reduces a long polyline to at most `max_points` points while keeping its shape.
///
/// First, interior points that lie on the straight continuation of the previous
/// segment (collinear, same direction) and repeated points are dropped: this is
/// lossless, and for the staircase of a ROC curve it keeps exactly the corners.
/// If that is still too many, evenly spaced points are kept (always including the
/// first and last). Both steps keep a subsequence of the input, so a monotone
/// curve stays monotone. Inputs with at most `max_points` points (or fewer than 3)
/// are returned unchanged; `max_points` below 2 counts as 2.
///
/// ```
/// use medai_report::svg::downsample;
/// let line: Vec<(f64, f64)> = (0..=10_000).map(|i| (i as f64, 2.0 * i as f64)).collect();
/// assert_eq!(downsample(&line, 2000), vec![(0.0, 0.0), (10_000.0, 20_000.0)]);
/// ```
pub fn downsample(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let max_points = max_points.max(2);
    if points.len() <= max_points || points.len() < 3 {
        return points.to_vec();
    }
    let n = points.len();
    let mut kept = Vec::with_capacity(n.min(4 * max_points));
    kept.push(points[0]);
    for i in 1..n - 1 {
        let a = *kept.last().expect("non-empty");
        let b = points[i];
        let nx = points[i + 1];
        if b == a {
            continue;
        }
        let (d1x, d1y) = (b.0 - a.0, b.1 - a.1);
        let (d2x, d2y) = (nx.0 - b.0, nx.1 - b.1);
        let cross = d1x * d2y - d1y * d2x;
        let dot = d1x * d2x + d1y * d2y;
        let scale = d1x.hypot(d1y) * d2x.hypot(d2y);
        if cross.abs() <= 1e-12 * scale && dot >= 0.0 {
            continue;
        }
        kept.push(b);
    }
    kept.push(points[n - 1]);
    if kept.len() <= max_points {
        return kept;
    }
    let m = kept.len();
    (0..max_points)
        .map(|i| kept[(i * (m - 1) + (max_points - 1) / 2) / (max_points - 1)])
        .collect()
}

// ---------------------------------------------------------------------------
// Coordinate mapping
// ---------------------------------------------------------------------------

/// The data-to-pixel mapping of one plot panel.
///
/// SVG's y axis points down, so `y_range.0` maps to the bottom edge
/// (`top + height`) and `y_range.1` to the top edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotArea {
    /// Left edge of the panel, in pixels.
    pub left: f64,
    /// Top edge of the panel, in pixels.
    pub top: f64,
    /// Panel width, in pixels.
    pub width: f64,
    /// Panel height, in pixels.
    pub height: f64,
    /// Data values at the left and right edges.
    pub x_range: (f64, f64),
    /// Data values at the bottom and top edges.
    pub y_range: (f64, f64),
}

impl PlotArea {
    /// Right edge, in pixels.
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    /// Bottom edge, in pixels.
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// Maps a data x to a pixel column, clamping to the panel (NaN stays NaN).
    pub fn map_x(&self, x: f64) -> f64 {
        let (lo, hi) = self.x_range;
        let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
        self.left + t * self.width
    }

    /// Maps a data y to a pixel row, clamping to the panel (NaN stays NaN).
    pub fn map_y(&self, y: f64) -> f64 {
        let (lo, hi) = self.y_range;
        let t = ((y - lo) / (hi - lo)).clamp(0.0, 1.0);
        self.bottom() - t * self.height
    }

    /// Maps a data point to pixel coordinates, clamping to the panel.
    ///
    /// ```
    /// use medai_report::svg::LineChart;
    /// let area = LineChart::new("ROC").plot_area();
    /// assert_eq!(area.map(0.0, 0.0), (area.left, area.bottom()));
    /// assert_eq!(area.map(1.0, 1.0), (area.right(), area.top));
    /// ```
    pub fn map(&self, x: f64, y: f64) -> (f64, f64) {
        (self.map_x(x), self.map_y(y))
    }
}

// ---------------------------------------------------------------------------
// SVG writer
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

struct Svg {
    out: String,
}

impl Svg {
    fn new(width: f64, height: f64, title: &str) -> Self {
        let mut out = String::with_capacity(8 * 1024);
        let t = escape(title);
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
             role=\"img\" aria-label=\"{t}\" font-family=\"{FONT}\" font-size=\"12\">",
            w = c(width),
            h = c(height),
        );
        let _ = writeln!(out, "<title>{t}</title>");
        let _ = writeln!(
            out,
            "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
            c(width),
            c(height)
        );
        Svg { out }
    }

    fn line(
        &mut self,
        (x1, y1): (f64, f64),
        (x2, y2): (f64, f64),
        stroke: &str,
        width: f64,
        extra: &str,
    ) {
        let _ = writeln!(
            self.out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{extra}/>",
            c(x1),
            c(y1),
            c(x2),
            c(y2),
            escape(stroke),
            c(width)
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{extra}/>",
            c(x),
            c(y),
            c(w.max(0.0)),
            c(h.max(0.0)),
            escape(fill)
        );
    }

    fn circle(&mut self, (x, y): (f64, f64), r: f64, fill: &str, extra: &str) {
        let _ = writeln!(
            self.out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"{extra}/>",
            c(x),
            c(y),
            c(r),
            escape(fill)
        );
    }

    fn text(&mut self, (x, y): (f64, f64), s: &str, anchor: Anchor, extra: &str) {
        let _ = writeln!(
            self.out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\"{extra}>{}</text>",
            c(x),
            c(y),
            anchor.as_str(),
            escape(s)
        );
    }

    fn polyline(&mut self, pts: &[(f64, f64)], stroke: &str, width: f64, dashed: bool) {
        let mut p = String::with_capacity(pts.len() * 14);
        for (i, &(x, y)) in pts.iter().enumerate() {
            if i > 0 {
                p.push(' ');
            }
            let _ = write!(p, "{},{}", c(x), c(y));
        }
        let dash = if dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = writeln!(
            self.out,
            "<polyline points=\"{p}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" \
             stroke-linejoin=\"round\" stroke-linecap=\"round\"{dash}/>",
            escape(stroke),
            c(width)
        );
    }

    fn polygon(&mut self, pts: &[(f64, f64)], fill: &str, opacity: f64) {
        let mut p = String::with_capacity(pts.len() * 14);
        for (i, &(x, y)) in pts.iter().enumerate() {
            if i > 0 {
                p.push(' ');
            }
            let _ = write!(p, "{},{}", c(x), c(y));
        }
        let _ = writeln!(
            self.out,
            "<polygon points=\"{p}\" fill=\"{}\" fill-opacity=\"{}\" stroke=\"none\"/>",
            escape(fill),
            c(opacity)
        );
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

/// Chart title, centred at the top.
fn draw_title(svg: &mut Svg, width: f64, title: &str) {
    svg.text(
        (width / 2.0, 22.0),
        title,
        Anchor::Middle,
        &format!(" font-size=\"14\" font-weight=\"bold\" fill=\"{TEXT}\""),
    );
}

/// Vertical axis title, rotated, centred on the panel.
fn draw_y_title(svg: &mut Svg, x: f64, area: &PlotArea, label: &str, size: f64) {
    if label.is_empty() {
        return;
    }
    let cy = area.top + area.height / 2.0;
    svg.text(
        (x, cy),
        label,
        Anchor::Middle,
        &format!(
            " transform=\"rotate(-90 {} {})\" font-size=\"{}\" fill=\"{TEXT}\"",
            c(x),
            c(cy),
            c(size)
        ),
    );
}

/// Grid lines, ticks and tick labels for a numeric x axis.
fn draw_x_axis(svg: &mut Svg, area: &PlotArea, ticks: &[f64], labels: bool) {
    let d = tick_decimals(ticks);
    for &t in ticks {
        let x = area.map_x(t);
        svg.line((x, area.top), (x, area.bottom()), GRID, 1.0, "");
        svg.line((x, area.bottom()), (x, area.bottom() + 4.0), AXIS, 1.0, "");
        if labels {
            svg.text(
                (x, area.bottom() + 16.0),
                &num(t, d),
                Anchor::Middle,
                &format!(" fill=\"{MUTED}\""),
            );
        }
    }
}

/// Grid lines, ticks and tick labels for a numeric y axis.
fn draw_y_axis(svg: &mut Svg, area: &PlotArea, ticks: &[f64], label_of: &dyn Fn(f64) -> String) {
    for &t in ticks {
        let y = area.map_y(t);
        svg.line((area.left, y), (area.right(), y), GRID, 1.0, "");
        svg.line((area.left - 4.0, y), (area.left, y), AXIS, 1.0, "");
        svg.text(
            (area.left - 7.0, y + 4.0),
            &label_of(t),
            Anchor::End,
            &format!(" fill=\"{MUTED}\""),
        );
    }
}

fn draw_frame(svg: &mut Svg, area: &PlotArea) {
    svg.rect(
        area.left,
        area.top,
        area.width,
        area.height,
        "none",
        &format!(" stroke=\"{AXIS}\" stroke-width=\"1\""),
    );
}

/// Where a legend box sits inside the plot panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPosition {
    /// Upper-left corner.
    TopLeft,
    /// Upper-right corner.
    TopRight,
    /// Lower-left corner (good for precision–recall curves).
    BottomLeft,
    /// Lower-right corner (good for ROC curves); the default.
    #[default]
    BottomRight,
    /// No legend.
    Hidden,
}

enum Swatch {
    Line {
        colour: String,
        dashed: bool,
        width: f64,
    },
    Fill {
        colour: String,
        opacity: f64,
    },
    Dot {
        colour: String,
    },
}

fn draw_legend(svg: &mut Svg, area: &PlotArea, pos: LegendPosition, entries: &[(String, Swatch)]) {
    if entries.is_empty() || pos == LegendPosition::Hidden {
        return;
    }
    let row_h = 17.0;
    let text_w = entries
        .iter()
        .map(|(name, _)| text_width(name, 12.0))
        .fold(0.0, f64::max);
    let w = (text_w + 38.0).min(area.width - 8.0);
    let h = entries.len() as f64 * row_h + 8.0;
    let pad = 8.0;
    let x = match pos {
        LegendPosition::TopLeft | LegendPosition::BottomLeft => area.left + pad,
        _ => area.right() - pad - w,
    };
    let y = match pos {
        LegendPosition::TopLeft | LegendPosition::TopRight => area.top + pad,
        _ => area.bottom() - pad - h,
    };
    svg.rect(
        x,
        y,
        w,
        h,
        "#ffffff",
        " fill-opacity=\"0.88\" stroke=\"#cccccc\" stroke-width=\"1\" rx=\"3\"",
    );
    for (i, (name, swatch)) in entries.iter().enumerate() {
        let cy = y + 4.0 + (i as f64 + 0.5) * row_h;
        let sx = x + 8.0;
        match swatch {
            Swatch::Line {
                colour,
                dashed,
                width,
            } => {
                let dash = if *dashed {
                    " stroke-dasharray=\"6 4\""
                } else {
                    ""
                };
                svg.line(
                    (sx, cy),
                    (sx + 20.0, cy),
                    colour,
                    width.clamp(1.0, 4.0),
                    dash,
                );
            }
            Swatch::Fill { colour, opacity } => {
                svg.rect(
                    sx,
                    cy - 5.0,
                    20.0,
                    10.0,
                    colour,
                    &format!(" fill-opacity=\"{}\"", c(*opacity)),
                );
            }
            Swatch::Dot { colour } => {
                svg.circle((sx + 10.0, cy), 4.0, colour, "");
            }
        }
        svg.text(
            (sx + 26.0, cy + 4.0),
            name,
            Anchor::Start,
            &format!(" fill=\"{TEXT}\""),
        );
    }
}

/// Splits a series at non-finite points into runs of finite points.
fn finite_runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for &p in points {
        if finite(p) {
            cur.push(p);
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

// ---------------------------------------------------------------------------
// Line chart
// ---------------------------------------------------------------------------

/// How a line series is stroked.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    /// Any SVG/CSS colour, for example `"#0072B2"` (see [`PALETTE`]).
    pub colour: String,
    /// Draw a dashed line.
    pub dashed: bool,
    /// Stroke width in pixels.
    pub width: f64,
}

impl Style {
    /// A solid 2 px line in `colour`.
    pub fn solid(colour: &str) -> Self {
        Style {
            colour: colour.to_string(),
            dashed: false,
            width: 2.0,
        }
    }

    /// A dashed 2 px line in `colour`.
    pub fn dashed(colour: &str) -> Self {
        Style {
            colour: colour.to_string(),
            dashed: true,
            width: 2.0,
        }
    }

    /// The same style with another stroke width.
    pub fn with_width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }
}

impl Default for Style {
    fn default() -> Self {
        Style::solid(PALETTE[0])
    }
}

#[derive(Debug, Clone)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    style: Style,
}

#[derive(Debug, Clone)]
struct Band {
    name: String,
    lower: Vec<(f64, f64)>,
    upper: Vec<(f64, f64)>,
    colour: String,
}

#[derive(Debug, Clone)]
struct Marker {
    label: String,
    at: (f64, f64),
    colour: String,
}

/// A line chart builder for ROC and precision–recall curves.
///
/// Axis ranges default to `[0, 1]` with ticks every 0.2. Series are drawn as
/// polylines in the order added (pass the points of a step curve, such as a ROC
/// curve's corners, as they are); series of more than [`MAX_SERIES_POINTS`]
/// points are reduced with [`downsample`]. See the [module docs](self) for the
/// handling of non-finite values.
///
/// ```
/// use medai_report::svg::{LineChart, Style, PALETTE};
/// let roc = [(0.0, 0.0), (0.0, 0.5), (0.2, 0.8), (1.0, 1.0)];
/// let svg = LineChart::new("ROC curve")
///     .x_label("False positive rate")
///     .y_label("True positive rate")
///     .diagonal(true)
///     .series("Model (AUC 0.86)", &roc, Style::solid(PALETTE[0]))
///     .marker("Youden threshold 0.42", (0.2, 0.8), PALETTE[1])
///     .to_svg();
/// assert!(svg.starts_with("<svg"));
/// ```
#[derive(Debug, Clone)]
pub struct LineChart {
    title: String,
    x_label: String,
    y_label: String,
    x_range: (f64, f64),
    y_range: (f64, f64),
    series: Vec<Series>,
    bands: Vec<Band>,
    diagonal: bool,
    diagonal_label: Option<String>,
    markers: Vec<Marker>,
    legend: LegendPosition,
}

impl LineChart {
    /// Starts an empty chart with the given title and `[0, 1]` axes.
    pub fn new(title: &str) -> Self {
        LineChart {
            title: title.to_string(),
            x_label: String::new(),
            y_label: String::new(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            series: Vec::new(),
            bands: Vec::new(),
            diagonal: false,
            diagonal_label: None,
            markers: Vec::new(),
            legend: LegendPosition::default(),
        }
    }

    /// Sets the x-axis title.
    pub fn x_label(mut self, label: &str) -> Self {
        self.x_label = label.to_string();
        self
    }

    /// Sets the y-axis title.
    pub fn y_label(mut self, label: &str) -> Self {
        self.y_label = label.to_string();
        self
    }

    /// Sets the x-axis range (default `[0, 1]`). A non-finite range falls back to
    /// `[0, 1]`, a reversed one is swapped, an empty one is widened by ±0.5.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = (lo, hi);
        self
    }

    /// Sets the y-axis range (default `[0, 1]`), with the same fallbacks as [`LineChart::x_range`].
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = (lo, hi);
        self
    }

    /// Adds a line series; its name appears in the legend (put the AUC there).
    /// Non-finite points break the line; out-of-range points are clamped to the edge.
    pub fn series(mut self, name: &str, points: &[(f64, f64)], style: Style) -> Self {
        self.series.push(Series {
            name: name.to_string(),
            points: points.to_vec(),
            style,
        });
        self
    }

    /// Adds a shaded band between two boundary curves (for example a bootstrap
    /// confidence band around a ROC curve).
    ///
    /// The band is the polygon along `upper` and back along `lower`; both should
    /// run in the same x direction. Non-finite points are skipped. Bands are drawn
    /// beneath all series.
    pub fn band(
        mut self,
        name: &str,
        lower: &[(f64, f64)],
        upper: &[(f64, f64)],
        colour: &str,
    ) -> Self {
        self.bands.push(Band {
            name: name.to_string(),
            lower: lower.to_vec(),
            upper: upper.to_vec(),
            colour: colour.to_string(),
        });
        self
    }

    /// Draws (or not) the dashed `y = x` reference line, clipped to the axes.
    pub fn diagonal(mut self, on: bool) -> Self {
        self.diagonal = on;
        self
    }

    /// Also lists the diagonal in the legend under this name (for example
    /// `"Chance"`); implies [`LineChart::diagonal`]`(true)`.
    pub fn diagonal_label(mut self, label: &str) -> Self {
        self.diagonal = true;
        self.diagonal_label = Some(label.to_string());
        self
    }

    /// Marks an operating point with a dot and a text label next to it.
    /// A non-finite point is not drawn.
    pub fn marker(mut self, label: &str, at: (f64, f64), colour: &str) -> Self {
        self.markers.push(Marker {
            label: label.to_string(),
            at,
            colour: colour.to_string(),
        });
        self
    }

    /// Places the legend (default [`LegendPosition::BottomRight`]).
    pub fn legend(mut self, position: LegendPosition) -> Self {
        self.legend = position;
        self
    }

    /// The data-to-pixel mapping of the plot panel, with the ranges as they will be drawn.
    pub fn plot_area(&self) -> PlotArea {
        PlotArea {
            left: 60.0,
            top: 40.0,
            width: CHART_WIDTH - 60.0 - 18.0,
            height: CHART_HEIGHT - 40.0 - 52.0,
            x_range: sanitize_range(self.x_range),
            y_range: sanitize_range(self.y_range),
        }
    }

    /// Renders the chart as a standalone SVG element.
    pub fn to_svg(&self) -> String {
        let area = self.plot_area();
        let mut svg = Svg::new(CHART_WIDTH, CHART_HEIGHT, &self.title);
        let xt = nice_ticks(area.x_range.0, area.x_range.1, 5);
        let yt = nice_ticks(area.y_range.0, area.y_range.1, 5);
        draw_x_axis(&mut svg, &area, &xt, true);
        let yd = tick_decimals(&yt);
        draw_y_axis(&mut svg, &area, &yt, &|t| num(t, yd));

        let mut legend = Vec::new();
        for b in &self.bands {
            let upper: Vec<_> = b.upper.iter().copied().filter(|&p| finite(p)).collect();
            let lower: Vec<_> = b.lower.iter().copied().filter(|&p| finite(p)).collect();
            let mut poly: Vec<(f64, f64)> = downsample(&upper, MAX_SERIES_POINTS)
                .into_iter()
                .map(|(x, y)| area.map(x, y))
                .collect();
            poly.extend(
                downsample(&lower, MAX_SERIES_POINTS)
                    .into_iter()
                    .rev()
                    .map(|(x, y)| area.map(x, y)),
            );
            if poly.len() >= 3 {
                svg.polygon(&poly, &b.colour, 0.18);
            }
            if !b.name.is_empty() {
                legend.push((
                    b.name.clone(),
                    Swatch::Fill {
                        colour: b.colour.clone(),
                        opacity: 0.3,
                    },
                ));
            }
        }

        if self.diagonal {
            let lo = area.x_range.0.max(area.y_range.0);
            let hi = area.x_range.1.min(area.y_range.1);
            if lo < hi {
                svg.line(
                    area.map(lo, lo),
                    area.map(hi, hi),
                    "#888888",
                    1.2,
                    " stroke-dasharray=\"5 4\"",
                );
            }
            if let Some(label) = &self.diagonal_label {
                legend.push((
                    label.clone(),
                    Swatch::Line {
                        colour: "#888888".into(),
                        dashed: true,
                        width: 1.2,
                    },
                ));
            }
        }

        for s in &self.series {
            let width = if s.style.width.is_finite() {
                s.style.width.clamp(0.5, 8.0)
            } else {
                2.0
            };
            for run in finite_runs(&s.points) {
                let px: Vec<(f64, f64)> = downsample(&run, MAX_SERIES_POINTS)
                    .into_iter()
                    .map(|(x, y)| area.map(x, y))
                    .collect();
                if px.len() == 1 {
                    svg.circle(px[0], width, &s.style.colour, "");
                } else {
                    svg.polyline(&px, &s.style.colour, width, s.style.dashed);
                }
            }
            if !s.name.is_empty() {
                legend.push((
                    s.name.clone(),
                    Swatch::Line {
                        colour: s.style.colour.clone(),
                        dashed: s.style.dashed,
                        width,
                    },
                ));
            }
        }

        for m in &self.markers {
            if !finite(m.at) {
                continue;
            }
            let (px, py) = area.map(m.at.0, m.at.1);
            svg.circle(
                (px, py),
                4.5,
                &m.colour,
                " stroke=\"#ffffff\" stroke-width=\"1.5\"",
            );
            let right_side = px + 8.0 + text_width(&m.label, 11.0) <= area.right();
            let (tx, anchor) = if right_side {
                (px + 8.0, Anchor::Start)
            } else {
                (px - 8.0, Anchor::End)
            };
            let ty = if py - 8.0 < area.top + 12.0 {
                py + 16.0
            } else {
                py - 8.0
            };
            svg.text(
                (tx, ty),
                &m.label,
                anchor,
                &format!(" font-size=\"11\" fill=\"{TEXT}\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\""),
            );
        }

        draw_frame(&mut svg, &area);
        if !self.x_label.is_empty() {
            svg.text(
                (area.left + area.width / 2.0, CHART_HEIGHT - 12.0),
                &self.x_label,
                Anchor::Middle,
                &format!(" fill=\"{TEXT}\""),
            );
        }
        draw_y_title(&mut svg, 16.0, &area, &self.y_label, 12.0);
        draw_legend(&mut svg, &area, self.legend, &legend);
        draw_title(&mut svg, CHART_WIDTH, &self.title);
        svg.finish()
    }
}

// ---------------------------------------------------------------------------
// Reliability diagram
// ---------------------------------------------------------------------------

/// One bin of a reliability (calibration) diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBar {
    /// Lower edge of the bin's predicted-probability interval.
    pub lower: f64,
    /// Upper edge of the bin's predicted-probability interval.
    pub upper: f64,
    /// Number of predictions in the bin.
    pub count: u64,
    /// Mean predicted probability of the bin's predictions.
    pub mean_predicted: f64,
    /// Observed fraction of positives among them.
    pub fraction_positive: f64,
}

/// Scale of the count histogram under a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountScale {
    /// Bar height proportional to the count.
    #[default]
    Linear,
    /// Bar height proportional to `log10(1 + count)`; keeps sparse bins visible.
    Log,
}

/// Width of the [`reliability_diagram`] viewBox.
pub const RELIABILITY_WIDTH: f64 = 440.0;
/// Height of the [`reliability_diagram`] viewBox.
pub const RELIABILITY_HEIGHT: f64 = 470.0;

/// Renders a reliability diagram: calibration curves above a histogram of bin counts.
///
/// `series` holds `(name, bins, colour)` triples, for example the raw model and the
/// model after temperature scaling. In the top panel each series is drawn as dots
/// at (`mean_predicted`, `fraction_positive`) of its non-empty bins, joined by a
/// line, over the dashed perfect-calibration diagonal; the first series also gets
/// light bars spanning each bin's interval up to its fraction of positives. The
/// bottom panel shows each bin's count (series side by side within a bin) on the
/// chosen [`CountScale`]. Both panels span `[0, 1]` on x.
///
/// Bins with a non-finite edge are skipped; empty bins (`count == 0`) and bins with
/// a non-finite mean or fraction get no dot; values outside `[0, 1]` are clamped.
///
/// ```
/// use medai_report::svg::{reliability_diagram, CountScale, ReliabilityBar, PALETTE};
/// let bins: Vec<ReliabilityBar> = (0..10)
///     .map(|i| {
///         let lo = i as f64 / 10.0;
///         ReliabilityBar { lower: lo, upper: lo + 0.1, count: 100, mean_predicted: lo + 0.05, fraction_positive: lo }
///     })
///     .collect();
/// let svg = reliability_diagram("Calibration", &[("Model", &bins[..], PALETTE[0])], CountScale::Log);
/// assert!(svg.contains("Perfect calibration"));
/// ```
pub fn reliability_diagram(
    title: &str,
    series: &[(&str, &[ReliabilityBar], &str)],
    scale: CountScale,
) -> String {
    let top = PlotArea {
        left: 60.0,
        top: 40.0,
        width: RELIABILITY_WIDTH - 60.0 - 18.0,
        height: 270.0,
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
    };
    let max_count = series
        .iter()
        .flat_map(|(_, bins, _)| bins.iter())
        .filter(|b| b.lower.is_finite() && b.upper.is_finite())
        .map(|b| b.count)
        .max()
        .unwrap_or(0);
    let transform = |count: u64| -> f64 {
        match scale {
            CountScale::Linear => count as f64,
            CountScale::Log => (1.0 + count as f64).log10(),
        }
    };
    let (hist_max, hist_ticks): (f64, Vec<(f64, String)>) = match scale {
        CountScale::Linear => {
            let m = (max_count as f64).max(1.0);
            let step = nice_step(0.0, m, 2);
            let hi = (m / step - 1e-9).ceil() * step;
            let ticks = nice_ticks(0.0, hi, 2)
                .into_iter()
                .map(|t| (t, num(t, 0)))
                .collect();
            (hi, ticks)
        }
        CountScale::Log => {
            let hi = transform(max_count.max(1));
            // No tick at 0: on a log(1 + count) axis it would crowd the tick at 1.
            let mut ticks = Vec::new();
            let mut p: u64 = 1;
            while p <= max_count.max(1) {
                ticks.push((transform(p), p.to_string()));
                match p.checked_mul(10) {
                    Some(next) => p = next,
                    None => break,
                }
            }
            (hi, ticks)
        }
    };
    let bottom = PlotArea {
        left: top.left,
        top: top.bottom() + 28.0,
        width: top.width,
        height: 90.0,
        x_range: (0.0, 1.0),
        y_range: (0.0, hist_max),
    };

    let mut svg = Svg::new(RELIABILITY_WIDTH, RELIABILITY_HEIGHT, title);
    let xt = nice_ticks(0.0, 1.0, 5);
    draw_x_axis(&mut svg, &top, &xt, false);
    draw_y_axis(&mut svg, &top, &xt, &|t| num(t, 1));
    draw_x_axis(&mut svg, &bottom, &xt, true);
    for (t, label) in &hist_ticks {
        let y = bottom.map_y(*t);
        svg.line((bottom.left, y), (bottom.right(), y), GRID, 1.0, "");
        svg.line((bottom.left - 4.0, y), (bottom.left, y), AXIS, 1.0, "");
        svg.text(
            (bottom.left - 7.0, y + 4.0),
            label,
            Anchor::End,
            &format!(" fill=\"{MUTED}\""),
        );
    }

    let valid = |b: &&ReliabilityBar| b.lower.is_finite() && b.upper.is_finite();
    // Bars of the first series.
    if let Some((_, bins, colour)) = series.first() {
        for b in bins.iter().filter(valid) {
            if b.count == 0 || !b.fraction_positive.is_finite() {
                continue;
            }
            let x0 = top.map_x(b.lower.min(b.upper));
            let x1 = top.map_x(b.lower.max(b.upper));
            let y = top.map_y(b.fraction_positive);
            svg.rect(
                x0,
                y,
                x1 - x0,
                top.bottom() - y,
                colour,
                &format!(" fill-opacity=\"0.13\" stroke=\"{}\" stroke-opacity=\"0.45\" stroke-width=\"1\"", escape(colour)),
            );
        }
    }
    svg.line(
        top.map(0.0, 0.0),
        top.map(1.0, 1.0),
        "#888888",
        1.2,
        " stroke-dasharray=\"5 4\"",
    );

    let mut legend = vec![(
        "Perfect calibration".to_string(),
        Swatch::Line {
            colour: "#888888".into(),
            dashed: true,
            width: 1.2,
        },
    )];
    let n_series = series.len().max(1) as f64;
    for (si, (name, bins, colour)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = bins
            .iter()
            .filter(valid)
            .filter(|b| {
                b.count > 0 && b.mean_predicted.is_finite() && b.fraction_positive.is_finite()
            })
            .map(|b| top.map(b.mean_predicted, b.fraction_positive))
            .collect();
        if pts.len() > 1 {
            svg.polyline(&pts, colour, 1.8, false);
        }
        for &p in &pts {
            svg.circle(p, 3.5, colour, " stroke=\"#ffffff\" stroke-width=\"1\"");
        }
        // Histogram: series side by side within each bin.
        for b in bins.iter().filter(valid) {
            if b.count == 0 {
                continue;
            }
            let x0 = bottom.map_x(b.lower.min(b.upper));
            let x1 = bottom.map_x(b.lower.max(b.upper));
            let slot = (x1 - x0) / n_series;
            let y = bottom.map_y(transform(b.count));
            let gap = if slot > 3.0 { 0.5 } else { 0.0 };
            svg.rect(
                x0 + slot * si as f64 + gap,
                y,
                slot - 2.0 * gap,
                bottom.bottom() - y,
                colour,
                " fill-opacity=\"0.75\"",
            );
        }
        legend.push((
            name.to_string(),
            Swatch::Dot {
                colour: colour.to_string(),
            },
        ));
    }

    draw_frame(&mut svg, &top);
    draw_frame(&mut svg, &bottom);
    svg.text(
        (top.left + top.width / 2.0, RELIABILITY_HEIGHT - 12.0),
        "Mean predicted probability",
        Anchor::Middle,
        &format!(" fill=\"{TEXT}\""),
    );
    draw_y_title(&mut svg, 16.0, &top, "Fraction of positives", 12.0);
    let count_title = match scale {
        CountScale::Linear => "Count",
        CountScale::Log => "Count (log)",
    };
    draw_y_title(&mut svg, 16.0, &bottom, count_title, 11.0);
    draw_legend(&mut svg, &top, LegendPosition::TopLeft, &legend);
    draw_title(&mut svg, RELIABILITY_WIDTH, title);
    svg.finish()
}

// ---------------------------------------------------------------------------
// Confusion matrix
// ---------------------------------------------------------------------------

/// Linear blend from white to a dark blue (`t` clamped to `[0, 1]`), as `#rrggbb`.
fn blues(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(255.0, 8.0),
        lerp(255.0, 69.0),
        lerp(255.0, 148.0)
    )
}

/// Renders a confusion matrix as a heat map.
///
/// Rows are the true classes, columns the predicted classes, both in `labels`
/// order. Each cell is coloured by its row-normalised fraction (white → blue)
/// and shows its count and, when cells are large enough, its row percentage;
/// the text switches to white on dark cells. A row with no samples shows `—` as
/// its percentage. Labels longer than 16 characters are shortened with `…` (the
/// full label is in the cell's tooltip).
///
/// # Errors
///
/// [`ReportError::InvalidInput`] if `labels` is empty, and
/// [`ReportError::LengthMismatch`] if `matrix` is not `labels.len()` rows of
/// `labels.len()` counts.
///
/// ```
/// let svg = medai_report::svg::confusion_matrix(
///     "Confusion matrix",
///     &["normal", "pneumonia"],
///     &[vec![90, 10], vec![5, 45]],
/// )
/// .unwrap();
/// assert!(svg.contains(">90<"));
/// ```
pub fn confusion_matrix<S: AsRef<str>>(
    title: &str,
    labels: &[S],
    matrix: &[Vec<u64>],
) -> Result<String, ReportError> {
    let n = labels.len();
    if n == 0 {
        return Err(ReportError::InvalidInput(
            "confusion matrix needs at least one class".into(),
        ));
    }
    if matrix.len() != n {
        return Err(ReportError::LengthMismatch {
            what: "confusion matrix rows",
            expected: n,
            actual: matrix.len(),
        });
    }
    if let Some(row) = matrix.iter().find(|r| r.len() != n) {
        return Err(ReportError::LengthMismatch {
            what: "confusion matrix row",
            expected: n,
            actual: row.len(),
        });
    }
    const MAX_LABEL: usize = 16;
    let short: Vec<String> = labels
        .iter()
        .map(|l| truncate(l.as_ref(), MAX_LABEL))
        .collect();
    let label_w = short
        .iter()
        .map(|s| text_width(s, 11.0))
        .fold(0.0, f64::max);
    let cell = (320.0 / n as f64).min(90.0);
    let grid = cell * n as f64;
    let rotate = short.iter().any(|s| text_width(s, 11.0) > cell - 4.0);
    let col_label_h = if rotate { label_w * 0.72 + 14.0 } else { 20.0 };
    let left = 34.0 + label_w + 8.0;
    let top = 44.0;
    let width = (left + grid + 24.0).max(300.0);
    let height = top + grid + col_label_h + 30.0;

    let mut svg = Svg::new(width, height, title);
    let font = (cell * 0.22).clamp(8.0, 14.0);
    let show_pct = cell >= 34.0;
    for (i, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (j, &count) in row.iter().enumerate() {
            let frac = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            let x = left + j as f64 * cell;
            let y = top + i as f64 * cell;
            let pct = if total > 0 {
                format!("{}%", num(100.0 * frac, 1))
            } else {
                "—".to_string()
            };
            let _ = writeln!(
                svg.out,
                "<g><title>{}</title>",
                escape(&format!(
                    "True {}, predicted {}: {} ({} of row)",
                    labels[i].as_ref(),
                    labels[j].as_ref(),
                    count,
                    pct
                ))
            );
            svg.rect(
                x,
                y,
                cell,
                cell,
                &blues(frac),
                " stroke=\"#ffffff\" stroke-width=\"1\"",
            );
            let fg = if frac >= 0.5 { "#ffffff" } else { TEXT };
            let cx = x + cell / 2.0;
            let cy = y + cell / 2.0;
            if show_pct {
                svg.text(
                    (cx, cy - 1.0),
                    &count.to_string(),
                    Anchor::Middle,
                    &format!(
                        " font-size=\"{}\" font-weight=\"bold\" fill=\"{fg}\"",
                        c(font)
                    ),
                );
                svg.text(
                    (cx, cy + font * 0.95),
                    &pct,
                    Anchor::Middle,
                    &format!(" font-size=\"{}\" fill=\"{fg}\"", c(font * 0.8)),
                );
            } else {
                svg.text(
                    (cx, cy + font * 0.35),
                    &count.to_string(),
                    Anchor::Middle,
                    &format!(" font-size=\"{}\" fill=\"{fg}\"", c(font)),
                );
            }
            svg.raw("</g>\n");
        }
    }
    svg.rect(
        left,
        top,
        grid,
        grid,
        "none",
        &format!(" stroke=\"{AXIS}\" stroke-width=\"1\""),
    );
    for (i, s) in short.iter().enumerate() {
        let y = top + (i as f64 + 0.5) * cell;
        svg.text(
            (left - 6.0, y + 4.0),
            s,
            Anchor::End,
            &format!(" font-size=\"11\" fill=\"{TEXT}\""),
        );
        let x = left + (i as f64 + 0.5) * cell;
        let ly = top + grid + 14.0;
        if rotate {
            svg.text(
                (x, ly),
                s,
                Anchor::End,
                &format!(
                    " font-size=\"11\" fill=\"{TEXT}\" transform=\"rotate(-45 {} {})\"",
                    c(x),
                    c(ly)
                ),
            );
        } else {
            svg.text(
                (x, ly),
                s,
                Anchor::Middle,
                &format!(" font-size=\"11\" fill=\"{TEXT}\""),
            );
        }
    }
    let area = PlotArea {
        left,
        top,
        width: grid,
        height: grid,
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
    };
    svg.text(
        (left + grid / 2.0, height - 10.0),
        "Predicted",
        Anchor::Middle,
        &format!(" font-weight=\"bold\" fill=\"{TEXT}\""),
    );
    let tx = 16.0;
    let ty = area.top + area.height / 2.0;
    svg.text(
        (tx, ty),
        "True",
        Anchor::Middle,
        &format!(
            " font-weight=\"bold\" fill=\"{TEXT}\" transform=\"rotate(-90 {} {})\"",
            c(tx),
            c(ty)
        ),
    );
    draw_title(&mut svg, width, title);
    Ok(svg.finish())
}

// ---------------------------------------------------------------------------
// Forest plot
// ---------------------------------------------------------------------------

/// One row of a [`forest_plot`]: a subgroup's estimate and confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestRow {
    /// Subgroup name, for example `"Age ≥ 65 (n = 312)"`.
    pub label: String,
    /// Point estimate (for example the subgroup's AUC).
    pub estimate: f64,
    /// Lower confidence bound.
    pub low: f64,
    /// Upper confidence bound.
    pub high: f64,
    /// Draw the row in red (for example: significantly below the overall value).
    pub flagged: bool,
}

/// Width of the [`forest_plot`] viewBox.
pub const FOREST_WIDTH: f64 = 520.0;

/// Renders a forest plot of subgroup estimates with confidence intervals.
///
/// One row per [`ForestRow`], top to bottom: the label on the left, the interval
/// (a line with end caps) and the estimate (a square) in the middle, and the text
/// `estimate [low, high]` (3 decimals) on the right. Flagged rows are drawn in
/// [`FLAG_COLOUR`]. `reference` = `(estimate, low, high)`, for example the overall
/// AUC, is drawn as a dashed vertical line over a shaded band and explained
/// under the axis.
///
/// The height grows with the number of rows. An interval reaching beyond
/// `x_range` is clamped and loses its end cap on that side; a non-finite estimate
/// draws nothing and reads `n/a`; a non-finite bound draws no interval. Labels
/// longer than 28 characters are shortened with `…`.
///
/// ```
/// use medai_report::svg::{forest_plot, ForestRow};
/// let rows = vec![
///     ForestRow { label: "Female".into(), estimate: 0.91, low: 0.88, high: 0.94, flagged: false },
///     ForestRow { label: "Portable AP".into(), estimate: 0.78, low: 0.72, high: 0.84, flagged: true },
/// ];
/// let svg = forest_plot("AUC by subgroup", "AUC", &rows, Some((0.90, 0.88, 0.92)), (0.5, 1.0));
/// assert!(svg.contains("0.780 [0.720, 0.840]"));
/// ```
pub fn forest_plot(
    title: &str,
    x_label: &str,
    rows: &[ForestRow],
    reference: Option<(f64, f64, f64)>,
    x_range: (f64, f64),
) -> String {
    const ROW_H: f64 = 24.0;
    const MAX_LABEL: usize = 28;
    let rows_top = 58.0;
    let n = rows.len();
    let area = PlotArea {
        left: 200.0,
        top: rows_top,
        width: 180.0,
        height: (n.max(1) as f64) * ROW_H,
        x_range: sanitize_range(x_range),
        y_range: (0.0, 1.0),
    };
    let has_legend =
        reference.is_some_and(|(e, _, _)| e.is_finite()) || rows.iter().any(|r| r.flagged);
    let height = area.bottom()
        + 24.0
        + (if x_label.is_empty() { 0.0 } else { 18.0 })
        + (if has_legend { 22.0 } else { 0.0 })
        + 12.0;
    let mut svg = Svg::new(FOREST_WIDTH, height, title);

    // Column headers.
    let head = format!(" font-weight=\"bold\" fill=\"{TEXT}\"");
    svg.text((12.0, rows_top - 10.0), "Subgroup", Anchor::Start, &head);
    svg.text(
        (area.right() + 12.0, rows_top - 10.0),
        "Estimate [CI]",
        Anchor::Start,
        &head,
    );

    // Zebra rows.
    for i in (1..n).step_by(2) {
        svg.rect(
            8.0,
            rows_top + i as f64 * ROW_H,
            FOREST_WIDTH - 16.0,
            ROW_H,
            "#f4f6f8",
            "",
        );
    }
    let xt = nice_ticks(area.x_range.0, area.x_range.1, 5);
    let xd = tick_decimals(&xt);
    for &t in &xt {
        let x = area.map_x(t);
        svg.line((x, area.top), (x, area.bottom()), GRID, 1.0, "");
    }

    let mut reference_text = None;
    if let Some((e, lo, hi)) = reference {
        if lo.is_finite() && hi.is_finite() {
            let x0 = area.map_x(lo.min(hi));
            let x1 = area.map_x(lo.max(hi));
            svg.rect(
                x0,
                area.top,
                x1 - x0,
                area.height,
                "#777777",
                " fill-opacity=\"0.15\"",
            );
        }
        if e.is_finite() {
            let x = area.map_x(e);
            svg.line(
                (x, area.top),
                (x, area.bottom()),
                "#555555",
                1.2,
                " stroke-dasharray=\"5 4\"",
            );
            reference_text = Some(format!(
                "Overall {} [{}, {}]",
                num(e, 3),
                num(lo, 3),
                num(hi, 3)
            ));
        }
    }

    for (i, r) in rows.iter().enumerate() {
        let cy = rows_top + (i as f64 + 0.5) * ROW_H;
        let colour = if r.flagged { FLAG_COLOUR } else { TEXT };
        let weight = if r.flagged {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let _ = writeln!(svg.out, "<g><title>{}</title>", escape(&r.label));
        svg.text(
            (12.0, cy + 4.0),
            &truncate(&r.label, MAX_LABEL),
            Anchor::Start,
            &format!(" fill=\"{colour}\"{weight}"),
        );
        if r.estimate.is_finite() {
            if r.low.is_finite() && r.high.is_finite() {
                let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
                let (x0, x1) = (area.map_x(lo), area.map_x(hi));
                svg.line((x0, cy), (x1, cy), colour, 1.6, "");
                if lo >= area.x_range.0 {
                    svg.line((x0, cy - 5.0), (x0, cy + 5.0), colour, 1.6, "");
                }
                if hi <= area.x_range.1 {
                    svg.line((x1, cy - 5.0), (x1, cy + 5.0), colour, 1.6, "");
                }
            }
            let x = area.map_x(r.estimate);
            svg.rect(x - 4.5, cy - 4.5, 9.0, 9.0, colour, "");
        }
        let value = if r.estimate.is_finite() {
            format!(
                "{} [{}, {}]",
                num(r.estimate, 3),
                num(r.low, 3),
                num(r.high, 3)
            )
        } else {
            "n/a".to_string()
        };
        svg.text(
            (area.right() + 12.0, cy + 4.0),
            &value,
            Anchor::Start,
            &format!(" fill=\"{colour}\"{weight}"),
        );
        svg.raw("</g>\n");
    }

    // Axis line, ticks and labels.
    svg.line(
        (area.left, area.bottom()),
        (area.right(), area.bottom()),
        AXIS,
        1.0,
        "",
    );
    for &t in &xt {
        let x = area.map_x(t);
        svg.line((x, area.bottom()), (x, area.bottom() + 4.0), AXIS, 1.0, "");
        svg.text(
            (x, area.bottom() + 16.0),
            &num(t, xd),
            Anchor::Middle,
            &format!(" fill=\"{MUTED}\""),
        );
    }
    let mut y = area.bottom() + 24.0;
    if !x_label.is_empty() {
        y += 12.0;
        svg.text(
            (area.left + area.width / 2.0, y),
            x_label,
            Anchor::Middle,
            &format!(" fill=\"{TEXT}\""),
        );
        y += 6.0;
    }
    if has_legend {
        y += 16.0;
        let mut x = 12.0;
        if let Some(t) = &reference_text {
            svg.rect(x, y - 9.0, 18.0, 10.0, "#777777", " fill-opacity=\"0.15\"");
            svg.line(
                (x + 9.0, y - 11.0),
                (x + 9.0, y + 3.0),
                "#555555",
                1.2,
                " stroke-dasharray=\"3 2\"",
            );
            svg.text(
                (x + 24.0, y),
                t,
                Anchor::Start,
                &format!(" font-size=\"11\" fill=\"{TEXT}\""),
            );
            x += 24.0 + text_width(t, 11.0) + 20.0;
        }
        if rows.iter().any(|r| r.flagged) {
            svg.rect(x, y - 8.5, 9.0, 9.0, FLAG_COLOUR, "");
            svg.text(
                (x + 15.0, y),
                "flagged subgroup",
                Anchor::Start,
                &format!(" font-size=\"11\" fill=\"{FLAG_COLOUR}\""),
            );
        }
    }
    draw_title(&mut svg, FOREST_WIDTH, title);
    svg.finish()
}

// ---------------------------------------------------------------------------
// Bar chart
// ---------------------------------------------------------------------------

/// Renders a simple vertical bar chart (for example class balance), one bar per label.
///
/// The y axis starts at zero (or at the most negative value) and ends at a nice
/// tick above the largest value; each bar is labelled with its value (integers
/// without decimals, other values with 2). A non-finite value draws no bar and
/// reads `n/a`. Long or many labels are rotated; labels longer than 18
/// characters are shortened with `…`.
///
/// # Errors
///
/// [`ReportError::LengthMismatch`] if `labels` and `values` differ in length.
///
/// ```
/// let svg = medai_report::svg::bar_chart("Class balance", &["normal", "effusion"], &[812.0, 96.0], "Images")
///     .unwrap();
/// assert!(svg.contains(">812<"));
/// ```
pub fn bar_chart<S: AsRef<str>>(
    title: &str,
    labels: &[S],
    values: &[f64],
    y_label: &str,
) -> Result<String, ReportError> {
    if labels.len() != values.len() {
        return Err(ReportError::LengthMismatch {
            what: "bar chart values",
            expected: labels.len(),
            actual: values.len(),
        });
    }
    const MAX_LABEL: usize = 18;
    let n = labels.len();
    let short: Vec<String> = labels
        .iter()
        .map(|l| truncate(l.as_ref(), MAX_LABEL))
        .collect();
    let fin = values.iter().copied().filter(|v| v.is_finite());
    let vmax = fin.clone().fold(0.0f64, f64::max);
    let vmin = fin.fold(0.0f64, f64::min);
    let (lo, hi) = {
        let span_hi = if vmax > vmin { vmax } else { vmin + 1.0 };
        let step = nice_step(vmin, span_hi, 5);
        (
            (vmin / step + 1e-9).floor() * step,
            (span_hi / step - 1e-9).ceil() * step,
        )
    };
    let plot_w = CHART_WIDTH - 64.0 - 18.0;
    let slot = plot_w / n.max(1) as f64;
    let label_w = short
        .iter()
        .map(|s| text_width(s, 11.0))
        .fold(0.0, f64::max);
    let rotate = label_w > slot - 4.0;
    let extra = if rotate {
        (label_w * 0.72 - 14.0).max(0.0)
    } else {
        0.0
    };
    let height = CHART_HEIGHT + extra;
    let area = PlotArea {
        left: 64.0,
        top: 40.0,
        width: plot_w,
        height: CHART_HEIGHT - 40.0 - 52.0,
        x_range: (0.0, 1.0),
        y_range: (lo, hi),
    };
    let mut svg = Svg::new(CHART_WIDTH, height, title);
    let yt = nice_ticks(lo, hi, 5);
    let yd = tick_decimals(&yt);
    draw_y_axis(&mut svg, &area, &yt, &|t| num(t, yd));
    let zero = area.map_y(0.0);
    let bar_w = (slot * 0.7).min(60.0);
    for (i, (&v, s)) in values.iter().zip(&short).enumerate() {
        let cx = area.left + (i as f64 + 0.5) * slot;
        let colour = PALETTE[0];
        let text = if v.is_finite() {
            let y = area.map_y(v);
            let (top, h) = if v >= 0.0 {
                (y, zero - y)
            } else {
                (zero, y - zero)
            };
            svg.rect(cx - bar_w / 2.0, top, bar_w, h, colour, "");
            let d = if v.fract() == 0.0 && v.abs() < 1e15 {
                0
            } else {
                2
            };
            let ty = if v >= 0.0 { y - 5.0 } else { y + 14.0 };
            (num(v, d), ty)
        } else {
            ("n/a".to_string(), zero - 5.0)
        };
        svg.text(
            (cx, text.1),
            &text.0,
            Anchor::Middle,
            &format!(" font-size=\"11\" fill=\"{TEXT}\""),
        );
        let ly = area.bottom() + 15.0;
        if rotate {
            svg.text(
                (cx, ly),
                s,
                Anchor::End,
                &format!(
                    " font-size=\"11\" fill=\"{TEXT}\" transform=\"rotate(-45 {} {})\"",
                    c(cx),
                    c(ly)
                ),
            );
        } else {
            svg.text(
                (cx, ly),
                s,
                Anchor::Middle,
                &format!(" font-size=\"11\" fill=\"{TEXT}\""),
            );
        }
    }
    svg.line((area.left, zero), (area.right(), zero), AXIS, 1.0, "");
    svg.line(
        (area.left, area.top),
        (area.left, area.bottom()),
        AXIS,
        1.0,
        "",
    );
    draw_y_title(&mut svg, 16.0, &area, y_label, 12.0);
    draw_title(&mut svg, CHART_WIDTH, title);
    Ok(svg.finish())
}
