//! Well-formedness checks with quick-xml.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

fn check_attributes(e: &BytesStart<'_>) {
    for a in e.attributes() {
        let a = a.unwrap_or_else(|err| panic!("bad attribute in <{:?}>: {err}", e.name()));
        a.unescape_value()
            .unwrap_or_else(|err| panic!("bad entity in attribute {:?}: {err}", a.key));
    }
}

/// Panics unless `doc` is well-formed XML with exactly one root element
/// (a leading `<!DOCTYPE html>` is allowed). Also checks every entity resolves.
pub fn assert_well_formed(doc: &str) {
    let mut reader = Reader::from_str(doc);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        let pos = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
                check_attributes(&e);
            }
            Ok(Event::Empty(e)) => {
                if depth == 0 {
                    roots += 1;
                }
                check_attributes(&e);
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => {
                let text = t
                    .unescape()
                    .unwrap_or_else(|err| panic!("bad entity in text near byte {pos}: {err}"));
                assert!(
                    depth > 0 || text.trim().is_empty(),
                    "text outside the root element near byte {pos}: {text:?}"
                );
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(err) => {
                let start = (pos as usize).saturating_sub(80);
                let end = (pos as usize + 80).min(doc.len());
                panic!(
                    "not well-formed near byte {pos}: {err}\n...{}...",
                    doc.get(start..end).unwrap_or("")
                );
            }
        }
    }
    assert_eq!(depth, 0, "unclosed elements at end of document");
    assert_eq!(roots, 1, "expected exactly one root element");
}

#[test]
fn checker_rejects_broken_markup() {
    for bad in [
        "<svg><g></svg>",
        "<svg a=1/>",
        "<svg>&nbsp;</svg>",
        "<svg></svg><svg></svg>",
        "<svg>",
        "<svg a=\"1\" a=\"2\"/>",
    ] {
        let r = std::panic::catch_unwind(|| assert_well_formed(bad));
        assert!(r.is_err(), "accepted {bad:?}");
    }
    assert_well_formed("<!DOCTYPE html>\n<html><p>a &amp; b &#39;</p></html>\n");
}
