//! Integration tests of medai-report (one test binary, several modules, to keep linking cheap).

mod evaluation;
mod html;
mod svg;
mod visualize;
mod xml;
