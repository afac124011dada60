use medai_report::html::{Cell, NumFmt, Page, escape, format_number};
use medai_report::svg::{LineChart, Style};
use medai_report::visualize::png_data_uri;

use crate::xml::assert_well_formed;

fn page(label: &str) -> Page {
    let mut p = Page::new(label);
    p.subtitle(label).footer(label);
    let svg = LineChart::new(label)
        .series(label, &[(0.0, 0.0), (1.0, 1.0)], Style::default())
        .to_svg();
    p.section(label)
        .paragraph(label)
        .note(label)
        .subheading(label)
        .key_values(&[(label, label), ("AUC", "0.91")])
        .table(
            &[label, "Value"],
            vec![
                vec![Cell::text(label), Cell::num(0.91234, NumFmt::Fixed(3))],
                vec![Cell::warn(label), Cell::warn_num(0.5, NumFmt::Percent(1))],
                vec![label.into(), Cell::num(f64::NAN, NumFmt::Integer)],
            ],
        )
        .figure(svg, label);
    p.section("Images")
        .image_grid(vec![
            (png_data_uri(b"\x89PNG fake"), label.to_string()),
            (
                "https://example.org/x.png".to_string(),
                "remote".to_string(),
            ),
        ])
        .raw_html("<p class=\"raw\">raw <b>markup</b></p>");
    p
}

#[test]
fn page_is_well_formed_xhtml() {
    let html = page("Report").render();
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.contains("<meta charset=\"utf-8\"/>"));
    assert_well_formed(&html);
    // Table of contents for two sections; numbered anchors.
    assert!(html.contains("<a href=\"#sec-2\">Images</a>"));
    assert!(html.contains("<h2 id=\"sec-1\">Report</h2>"));
    assert!(html.contains("<td class=\"num\">0.912</td>"));
    assert!(html.contains("<td class=\"warn\">50.0%</td>"));
    assert!(html.contains("<td class=\"num\">n/a</td>"));
    assert!(html.contains("<p class=\"raw\">raw <b>markup</b></p>"));
}

#[test]
fn page_is_self_contained() {
    let html = page("Report").render();
    let lower = html.to_lowercase();
    for banned in ["<script", "<link", "@import", "url(", "https://", "<iframe"] {
        assert!(!lower.contains(banned), "found {banned}");
    }
    // The only http: URL is the SVG namespace.
    assert_eq!(
        lower.matches("http://").count(),
        lower.matches("http://www.w3.org/2000/svg").count()
    );
    // Every img src is a data: URI; the remote image became a placeholder.
    for src in html.split("src=\"").skip(1) {
        assert!(src.starts_with("data:"), "{}", &src[..20]);
    }
    assert!(html.contains("image not embedded"));
}

#[test]
fn page_escapes_user_text() {
    let nasty = r#"a<b & "c" 'd'"#;
    let html = page(nasty).render();
    assert_well_formed(&html);
    assert!(!html.contains(nasty));
    assert!(html.contains("<title>a&lt;b &amp; &quot;c&quot; &#39;d&#39;</title>"));
    assert!(html.contains("<h1>a&lt;b &amp; &quot;c&quot; &#39;d&#39;</h1>"));
    assert_eq!(escape(r#"a<b & "c""#), "a&lt;b &amp; &quot;c&quot;");
    assert_eq!(escape("x\u{0}y\tz"), "x\u{FFFD}y\tz");
}

#[test]
fn render_is_deterministic() {
    assert_eq!(page("x").render(), page("x").render());
    // One section: no table of contents.
    let mut p = Page::new("one");
    p.section("only").paragraph("text");
    let html = p.render();
    assert!(!html.contains("<nav"));
    assert_well_formed(&html);
}

#[test]
fn number_formats() {
    assert_eq!(format_number(0.91234, NumFmt::Fixed(3)), "0.912");
    assert_eq!(format_number(0.91234, NumFmt::Percent(1)), "91.2%");
    assert_eq!(format_number(1234567.4, NumFmt::Integer), "1,234,567");
    assert_eq!(format_number(999.0, NumFmt::Integer), "999");
    assert_eq!(format_number(-0.0001, NumFmt::Fixed(2)), "0.00");
    assert_eq!(format_number(-0.4, NumFmt::Integer), "0");
    assert_eq!(format_number(-12.5, NumFmt::Fixed(1)), "-12.5");
    assert_eq!(format_number(f64::INFINITY, NumFmt::Percent(1)), "n/a");
}
