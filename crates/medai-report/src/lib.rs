//! # medai-report
//!
//! Evaluation and its presentation: the one evaluator of medai ([`evaluation`]), and the
//! self-contained, offline `report.html` and model card rendered from it. The metric
//! arithmetic lives in `medai-metrics` (checked against scikit-learn); this crate assembles
//! it and draws it. Its drawing modules ([`svg`], [`visualize`], [`html`]) take **plain
//! data** (slices of numbers and strings), so they need nothing but a browser to view. It
//! does not depend on the deep-learning engine.
//!
//! Modules:
//! - [`svg`] — deterministic SVG charts: [`svg::LineChart`] (ROC and
//!   precision–recall curves with confidence bands and operating points),
//!   [`svg::reliability_diagram`], [`svg::confusion_matrix`], [`svg::forest_plot`]
//!   and [`svg::bar_chart`];
//! - [`visualize`] — Grad-CAM style heat-map overlays ([`visualize::overlay`]), the
//!   `jet` colormap, PyTorch-compatible bilinear resizing, PNG encoding and
//!   `data:` URIs;
//! - [`html`] — the [`html::Page`] builder that assembles one HTML5 document with
//!   inline CSS, and [`escape`];
//! - [`error`] — the error type, [`ReportError`].
//!
//! ## Why hand-written SVG
//!
//! The charts are a few hundred lines of string formatting, and that is cheaper than
//! a plotting dependency: general plotting crates (such as `plotters` with its SVG
//! backend) bring font handling and a large API, yet still leave out what a clinical
//! report needs: byte-for-byte deterministic output (two-decimal coordinates, no
//! generated ids, so reports can be diffed and checksummed), no element ids that
//! could clash when many charts are inlined in one page, text that stays selectable
//! and is escaped, and specific chart types (reliability diagram with a count
//! histogram, row-normalised confusion matrix, forest plot). Writing it by hand keeps
//! the output small, reviewable and stable across dependency upgrades.
//!
//! ## Example
//!
//! ```
//! use medai_report::html::Page;
//! use medai_report::svg::{LineChart, Style, PALETTE};
//!
//! let roc = LineChart::new("ROC curve")
//!     .x_label("False positive rate")
//!     .y_label("True positive rate")
//!     .diagonal(true)
//!     .series("Model (AUC 0.90)", &[(0.0, 0.0), (0.1, 0.8), (1.0, 1.0)], Style::solid(PALETTE[0]))
//!     .to_svg();
//! let mut page = Page::new("Evaluation report");
//! page.section("Discrimination").figure(roc, "ROC curve on the test split.");
//! let html = page.render();
//! assert!(html.contains("<svg"));
//! ```
#![warn(missing_docs)]

pub mod card;
pub mod error;
pub mod evaluation;
pub mod html;
pub mod report;
pub mod svg;
pub mod visualize;

pub use error::ReportError;
pub use html::escape;
