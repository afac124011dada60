//! Assembly of one self-contained HTML5 page.
//!
//! A [`Page`] holds a title, an optional subtitle and a list of [`Section`]s; each
//! section holds blocks (paragraphs, callout notes, key/value lists, tables,
//! figures, image grids). [`Page::render`] writes the whole document with its CSS
//! inlined: no external stylesheet, font, script or image, so the file opens the
//! same offline, from an e-mail attachment or from an archive years later.
//!
//! The output is also well-formed XML (every element closed, every attribute
//! quoted, only the five XML entities used), so it can be checked with an XML
//! parser and embedded SVG stays valid.
//!
//! ```
//! use medai_report::html::{Cell, NumFmt, Page};
//!
//! let mut page = Page::new("Evaluation report");
//! page.subtitle("chest-xray-v3 on the held-out test split");
//! page.section("Summary")
//!     .paragraph("Overall performance on 1,204 studies.")
//!     .key_values(&[("AUC", "0.912"), ("Threshold", "0.37")])
//!     .table(
//!         &["Class", "Sensitivity"],
//!         vec![
//!             vec![Cell::text("normal"), Cell::num(0.934, NumFmt::Fixed(3))],
//!             vec![Cell::text("effusion"), Cell::warn("0.612")],
//!         ],
//!     );
//! let html = page.render();
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(html.contains("<h2 id=\"sec-1\">Summary</h2>"));
//! ```

use std::fmt::Write as _;

/// Escapes text for use in HTML/XML text and in double- or single-quoted attributes.
///
/// Replaces `&`, `<`, `>`, `"` and `'` by entities (`&amp;`, `&lt;`, `&gt;`,
/// `&quot;`, `&#39;`). Control characters that XML 1.0 forbids (U+0000–U+001F
/// other than tab, newline and carriage return) are replaced by U+FFFD so that
/// the output always stays well-formed.
///
/// ```
/// assert_eq!(medai_report::escape(r#"a<b & "c""#), "a&lt;b &amp; &quot;c&quot;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// How a [`Cell::Number`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumFmt {
    /// Fixed number of decimals: `Fixed(3)` writes `0.912`.
    Fixed(usize),
    /// A fraction written as a percentage: `Percent(1)` writes `0.9123` as `91.2%`.
    Percent(usize),
    /// Rounded to an integer with thousands separators: `12,345`.
    Integer,
}

/// Formats a number for display; non-finite values are written as `n/a`.
///
/// ```
/// use medai_report::html::{format_number, NumFmt};
/// assert_eq!(format_number(0.91234, NumFmt::Fixed(2)), "0.91");
/// assert_eq!(format_number(0.91234, NumFmt::Percent(1)), "91.2%");
/// assert_eq!(format_number(-1234567.0, NumFmt::Integer), "-1,234,567");
/// assert_eq!(format_number(f64::NAN, NumFmt::Fixed(2)), "n/a");
/// ```
pub fn format_number(value: f64, fmt: NumFmt) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let s = match fmt {
        NumFmt::Fixed(d) => format!("{value:.d$}"),
        NumFmt::Percent(d) => format!("{:.d$}%", value * 100.0),
        NumFmt::Integer => group_thousands(&format!("{value:.0}")),
    };
    // Avoid "-0.00": a negative zero after rounding reads as a sign error.
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| matches!(c, '0' | '.' | '%' | ',')) => rest.to_string(),
        _ => s,
    }
}

fn group_thousands(digits: &str) -> String {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Plain text (escaped on output).
    Text(String),
    /// A number, right-aligned and formatted with the given [`NumFmt`].
    Number(f64, NumFmt),
    /// Text highlighted as a warning (for example a subgroup below target).
    Warn(String),
}

impl Cell {
    /// A plain-text cell.
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    /// A formatted number cell.
    pub fn num(value: f64, fmt: NumFmt) -> Self {
        Cell::Number(value, fmt)
    }

    /// A highlighted (warning) text cell.
    pub fn warn(s: impl Into<String>) -> Self {
        Cell::Warn(s.into())
    }

    /// A highlighted (warning) number cell, formatted like [`Cell::num`].
    pub fn warn_num(value: f64, fmt: NumFmt) -> Self {
        Cell::Warn(format_number(value, fmt))
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

#[derive(Debug, Clone)]
enum Block {
    Heading(String),
    Paragraph(String),
    Note(String),
    KeyValues(Vec<(String, String)>),
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
    Figure {
        svg: String,
        caption: String,
    },
    ImageGrid(Vec<(String, String)>),
    Raw(String),
}

/// One titled section of a [`Page`]; its methods append blocks in order and chain.
#[derive(Debug, Clone)]
pub struct Section {
    heading: String,
    blocks: Vec<Block>,
}

impl Section {
    /// Appends a sub-heading (`<h3>`).
    pub fn subheading(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Heading(text.to_string()));
        self
    }

    /// Appends a paragraph of plain text (escaped).
    pub fn paragraph(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Paragraph(text.to_string()));
        self
    }

    /// Appends a highlighted callout, for warnings and caveats (escaped).
    pub fn note(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Note(text.to_string()));
        self
    }

    /// Appends a two-column list of labels and values (both escaped).
    pub fn key_values<K: AsRef<str>, V: AsRef<str>>(&mut self, pairs: &[(K, V)]) -> &mut Self {
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        self.blocks.push(Block::KeyValues(pairs));
        self
    }

    /// Appends a table with a header row; rows may be shorter or longer than the
    /// header, cells are written as given.
    pub fn table<H: AsRef<str>>(&mut self, headers: &[H], rows: Vec<Vec<Cell>>) -> &mut Self {
        let headers = headers.iter().map(|h| h.as_ref().to_string()).collect();
        self.blocks.push(Block::Table { headers, rows });
        self
    }

    /// Appends a figure: an inline SVG document (as produced by [`crate::svg`]) and a caption.
    ///
    /// The SVG is inserted verbatim (it is markup, not text); the caption is escaped.
    /// Only pass SVG produced by this crate or equally trusted, well-formed SVG without
    /// external references.
    pub fn figure(&mut self, svg: impl Into<String>, caption: &str) -> &mut Self {
        self.blocks.push(Block::Figure {
            svg: svg.into(),
            caption: caption.to_string(),
        });
        self
    }

    /// Appends a responsive grid of images given as `(data_uri, caption)` pairs
    /// (see [`crate::visualize::png_data_uri`]).
    ///
    /// To keep the page self-contained, a source that does not start with `data:`
    /// is not linked: a placeholder saying "image not embedded" is shown instead.
    pub fn image_grid(&mut self, items: Vec<(String, String)>) -> &mut Self {
        self.blocks.push(Block::ImageGrid(items));
        self
    }

    /// Appends markup verbatim: the escape hatch for anything the builder lacks.
    ///
    /// Nothing is checked or escaped. The caller must keep it well-formed (close every
    /// element, quote attributes, XHTML style) and free of external URLs and scripts,
    /// or the page loses its guarantees.
    pub fn raw_html(&mut self, html: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Raw(html.into()));
        self
    }
}

/// A self-contained HTML5 document under construction.
#[derive(Debug, Clone)]
pub struct Page {
    title: String,
    subtitle: Option<String>,
    footer: Option<String>,
    sections: Vec<Section>,
}

impl Page {
    /// Starts a page with the given title (used for `<title>` and the `<h1>`).
    pub fn new(title: &str) -> Self {
        Page {
            title: title.to_string(),
            subtitle: None,
            footer: None,
            sections: Vec::new(),
        }
    }

    /// Sets the line shown under the title (model, data set, date...).
    pub fn subtitle(&mut self, text: &str) -> &mut Self {
        self.subtitle = Some(text.to_string());
        self
    }

    /// Sets a small-print footer (for example the tool version or a disclaimer).
    pub fn footer(&mut self, text: &str) -> &mut Self {
        self.footer = Some(text.to_string());
        self
    }

    /// Appends a new section and returns it for filling.
    ///
    /// Sections are numbered in order and get the anchors `sec-1`, `sec-2`, ...; a page
    /// with two or more sections gets a table of contents.
    pub fn section(&mut self, heading: &str) -> &mut Section {
        self.sections.push(Section {
            heading: heading.to_string(),
            blocks: Vec::new(),
        });
        self.sections.last_mut().expect("just pushed")
    }

    /// Writes the complete document.
    ///
    /// The same page always renders to the same bytes (no timestamps, no random ids).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n");
        out.push_str("<meta charset=\"utf-8\"/>\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
        let _ = writeln!(out, "<title>{}</title>", escape(&self.title));
        out.push_str("<style>");
        out.push_str(CSS);
        out.push_str("</style>\n</head>\n<body>\n<main>\n<header>\n");
        let _ = writeln!(out, "<h1>{}</h1>", escape(&self.title));
        if let Some(sub) = &self.subtitle {
            let _ = writeln!(out, "<p class=\"subtitle\">{}</p>", escape(sub));
        }
        out.push_str("</header>\n");
        if self.sections.len() >= 2 {
            out.push_str("<nav class=\"toc\">\n<ol>\n");
            for (i, s) in self.sections.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "<li><a href=\"#sec-{}\">{}</a></li>",
                    i + 1,
                    escape(&s.heading)
                );
            }
            out.push_str("</ol>\n</nav>\n");
        }
        for (i, s) in self.sections.iter().enumerate() {
            let _ = writeln!(
                out,
                "<section>\n<h2 id=\"sec-{}\">{}</h2>",
                i + 1,
                escape(&s.heading)
            );
            for b in &s.blocks {
                render_block(&mut out, b);
            }
            out.push_str("</section>\n");
        }
        if let Some(f) = &self.footer {
            let _ = writeln!(out, "<footer>{}</footer>", escape(f));
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

fn render_block(out: &mut String, block: &Block) {
    match block {
        Block::Heading(t) => {
            let _ = writeln!(out, "<h3>{}</h3>", escape(t));
        }
        Block::Paragraph(t) => {
            let _ = writeln!(out, "<p>{}</p>", escape(t));
        }
        Block::Note(t) => {
            let _ = writeln!(out, "<div class=\"note\" role=\"note\">{}</div>", escape(t));
        }
        Block::KeyValues(pairs) => {
            out.push_str("<table class=\"kv\">\n<tbody>\n");
            for (k, v) in pairs {
                let _ = writeln!(
                    out,
                    "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                    escape(k),
                    escape(v)
                );
            }
            out.push_str("</tbody>\n</table>\n");
        }
        Block::Table { headers, rows } => {
            out.push_str("<div class=\"table-wrap\">\n<table class=\"data\">\n");
            if !headers.is_empty() {
                out.push_str("<thead>\n<tr>");
                for h in headers {
                    let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
                }
                out.push_str("</tr>\n</thead>\n");
            }
            out.push_str("<tbody>\n");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    match cell {
                        Cell::Text(t) => {
                            let _ = write!(out, "<td>{}</td>", escape(t));
                        }
                        Cell::Number(v, f) => {
                            let _ = write!(
                                out,
                                "<td class=\"num\">{}</td>",
                                escape(&format_number(*v, *f))
                            );
                        }
                        Cell::Warn(t) => {
                            let _ = write!(out, "<td class=\"warn\">{}</td>", escape(t));
                        }
                    }
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n</div>\n");
        }
        Block::Figure { svg, caption } => {
            out.push_str("<figure>\n");
            out.push_str(svg.trim());
            out.push('\n');
            if !caption.is_empty() {
                let _ = writeln!(out, "<figcaption>{}</figcaption>", escape(caption));
            }
            out.push_str("</figure>\n");
        }
        Block::ImageGrid(items) => {
            out.push_str("<div class=\"grid\">\n");
            for (src, caption) in items {
                out.push_str("<figure>");
                if src.starts_with("data:") {
                    let _ = write!(
                        out,
                        "<img src=\"{}\" alt=\"{}\"/>",
                        escape(src),
                        escape(caption)
                    );
                } else {
                    out.push_str("<div class=\"missing\">image not embedded</div>");
                }
                if !caption.is_empty() {
                    let _ = write!(out, "<figcaption>{}</figcaption>", escape(caption));
                }
                out.push_str("</figure>\n");
            }
            out.push_str("</div>\n");
        }
        Block::Raw(html) => {
            out.push_str(html);
            out.push('\n');
        }
    }
}

/// The page's stylesheet. Kept free of `<` and `&` so that the document stays valid XML.
const CSS: &str = r#"
:root { --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --zebra: #f6f8fa; --accent: #0b5cad; --warn-bg: #fff4e5; --warn-fg: #8a4b00; --warn-line: #f0a202; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; font: 16px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
header { border-bottom: 2px solid var(--accent); margin-bottom: 1.25rem; }
h1 { font-size: 1.75rem; margin: 0 0 0.25rem; line-height: 1.25; }
h2 { font-size: 1.35rem; margin: 2rem 0 0.75rem; padding-bottom: 0.25rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.25rem 0 0.5rem; }
p { margin: 0.5rem 0 0.75rem; }
.subtitle { color: var(--muted); margin: 0 0 0.75rem; }
.toc ol { margin: 0.25rem 0 1rem; padding-left: 1.5rem; columns: 2 16rem; }
.toc a { color: var(--accent); text-decoration: none; }
.note { background: var(--warn-bg); color: var(--warn-fg); border-left: 4px solid var(--warn-line); padding: 0.6rem 0.9rem; margin: 0.75rem 0; border-radius: 4px; }
table { border-collapse: collapse; font-size: 0.92rem; margin: 0.5rem 0 1rem; }
.table-wrap { overflow-x: auto; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 0.35rem 0.7rem; text-align: left; vertical-align: top; }
table.data thead th { border-bottom: 2px solid var(--fg); background: #fff; }
table.data tbody tr:nth-child(even) { background: var(--zebra); }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.warn { background: var(--warn-bg); color: var(--warn-fg); font-weight: 600; }
table.kv th { text-align: left; color: var(--muted); font-weight: 600; padding: 0.2rem 1.5rem 0.2rem 0; vertical-align: top; }
table.kv td { padding: 0.2rem 0; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 1.5rem; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 0.35rem; overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 1rem; }
.grid figure { margin: 0; }
.grid img { display: block; width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
.missing { padding: 2rem 0.5rem; text-align: center; color: var(--muted); border: 1px dashed var(--line); }
footer { margin-top: 3rem; padding-top: 0.75rem; border-top: 1px solid var(--line); color: var(--muted); font-size: 0.85rem; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .toc { display: none; }
  h2, h3 { break-after: avoid; }
  figure, table, .note, tr { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  a { color: inherit; }
}
"#;
