//! WordPiece ids, type ids and byte offsets against Python's `tokenizers` (the oracle made by
//! `tests/fixtures/make_wordpiece_oracle.py`): OHSUMED abstracts from both splits, truncated to
//! 128 tokens, and awkward strings. The tokenizer is loaded from `tokenizer.json`, rebuilt from
//! `vocab.txt` alone, rebuilt cased via `tokenizer_config.json`, and restored from its JSON.

use medai_text::{Encoded, TextError, Tokenizer, WordPiece};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn oracle() -> Value {
    let text = std::fs::read_to_string(fixtures().join("wordpiece_oracle.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn spans(v: &Value) -> Vec<Option<(usize, usize)>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o.as_array().map(|p| {
                (
                    p[0].as_u64().unwrap() as usize,
                    p[1].as_u64().unwrap() as usize,
                )
            })
        })
        .collect()
}

/// Checks every oracle case; returns the number checked.
fn check_all(tok: &Tokenizer, label: &str) -> usize {
    let o = oracle();
    let max_len = o["max_len"].as_u64().unwrap() as usize;
    let cases = o["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let text = case["text"].as_str().unwrap();
        let got: Encoded = tok.encode(text, max_len);
        assert_eq!(got.ids, u32s(&case["ids"]), "{label}: ids of {name}");
        assert_eq!(
            got.type_ids,
            u32s(&case["type_ids"]),
            "{label}: type ids of {name}"
        );
        assert_eq!(
            got.spans,
            spans(&case["offsets"]),
            "{label}: offsets of {name}"
        );
        if let Some(tokens) = case.get("tokens") {
            let want: Vec<&str> = tokens
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert_eq!(got.tokens, want, "{label}: tokens of {name}");
        }
        assert!(got.len() <= max_len);
        for span in got.spans.iter().flatten() {
            assert!(text.is_char_boundary(span.0) && text.is_char_boundary(span.1));
        }
    }
    cases.len()
}

#[test]
fn tokenizer_json_matches_python() {
    let wp = WordPiece::from_dir(&fixtures().join("wordpiece")).unwrap();
    let o = oracle();
    assert_eq!(wp.vocab_size() as u64, o["vocab_size"].as_u64().unwrap());
    assert_eq!(u64::from(wp.pad_id()), o["pad_id"].as_u64().unwrap());
    let n = check_all(&Tokenizer::WordPiece(wp), "tokenizer.json");
    assert!(n >= 60, "{n} cases");
}

#[test]
fn vocab_txt_alone_matches_python() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("wordpiece/vocab.txt"),
        dir.path().join("vocab.txt"),
    )
    .unwrap();
    let wp = WordPiece::from_dir(dir.path()).unwrap();
    assert_eq!(wp.vocab_size(), 2000);
    check_all(&Tokenizer::WordPiece(wp), "vocab.txt");
}

#[test]
fn cased_config_matches_python() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("wordpiece/vocab.txt"),
        dir.path().join("vocab.txt"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"do_lower_case": false, "pad_token": {"content": "[PAD]"}, "model_max_length": 512}"#,
    )
    .unwrap();
    let tok = Tokenizer::WordPiece(WordPiece::from_dir(dir.path()).unwrap());
    let o = oracle();
    let mut checked = 0;
    for case in o["cases"].as_array().unwrap() {
        if let Some(want) = case.get("cased_ids") {
            let text = case["text"].as_str().unwrap();
            assert_eq!(tok.encode(text, 128).ids, u32s(want), "{}", case["name"]);
            checked += 1;
        }
    }
    assert!(checked > 10);
}

#[test]
fn json_round_trip_keeps_ids_and_pad() {
    let wp = WordPiece::from_dir(&fixtures().join("wordpiece")).unwrap();
    let json = wp.to_json().unwrap();
    let back = WordPiece::from_json(&json).unwrap();
    assert_eq!(back.pad_id(), wp.pad_id());
    assert_eq!(back.vocab_size(), wp.vocab_size());
    check_all(&Tokenizer::WordPiece(back.clone()), "round trip");
    // Restoring does not re-enable padding or truncation.
    let long = "patient ".repeat(50);
    let restored = Tokenizer::WordPiece(back).encode(&long, 1000);
    assert_eq!(restored, Tokenizer::WordPiece(wp).encode(&long, 1000));
    assert_eq!(restored.len(), 52);
}

#[test]
fn truncation_keeps_sep() {
    let wp = WordPiece::from_dir(&fixtures().join("wordpiece")).unwrap();
    let (cls, sep) = (
        wp.token_to_id("[CLS]").unwrap(),
        wp.token_to_id("[SEP]").unwrap(),
    );
    let tok = Tokenizer::WordPiece(wp);
    let text = "the patient was treated with antibiotics for infection";
    let full = tok.encode(text, 512);
    assert!(full.len() > 6);
    let cut = tok.encode(text, 5);
    assert_eq!(cut.len(), 5);
    assert_eq!(cut.ids[..4], full.ids[..4]);
    assert_eq!(cut.ids[4], sep);
    assert_eq!(tok.encode(text, 2).ids, [cls, sep]);
    assert_eq!(tok.encode(text, 1).ids, [cls]);
    assert!(tok.encode(text, 0).is_empty());
    assert_eq!(tok.encode("", 8).ids, [cls, sep]);
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = WordPiece::from_dir(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("vocab.txt"), "{e}");

    std::fs::write(dir.path().join("vocab.txt"), "[PAD]\n[UNK]\nhello\n").unwrap();
    let e = WordPiece::from_dir(dir.path()).unwrap_err();
    assert!(matches!(e, TextError::Tokenizer { .. }));
    assert!(
        e.to_string().contains("vocab.txt") && e.to_string().contains("[CLS]"),
        "{e}"
    );

    std::fs::write(dir.path().join("tokenizer.json"), "{ not json").unwrap();
    let e = WordPiece::from_dir(dir.path()).unwrap_err();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
    assert!(WordPiece::from_json("[]").is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn encode_never_panics(text in proptest::prelude::any::<String>(), max_len in 0usize..40) {
        let wp = WordPiece::from_dir(&fixtures().join("wordpiece")).unwrap();
        let size = wp.vocab_size();
        let e = Tokenizer::WordPiece(wp).encode(&text, max_len);
        proptest::prop_assert!(e.len() <= max_len);
        proptest::prop_assert_eq!(e.len(), e.spans.len());
        for (&id, span) in e.ids.iter().zip(&e.spans) {
            proptest::prop_assert!((id as usize) < size);
            if let Some((s, end)) = *span {
                proptest::prop_assert!(s <= end && end <= text.len());
                proptest::prop_assert!(text.is_char_boundary(s) && text.is_char_boundary(end));
            }
        }
    }
}
