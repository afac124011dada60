//! The word vocabulary: deterministic order, options, and a property test that encoding never
//! panics and ids stay in range.

use medai_text::{Tokenizer, VocabOptions, WordVocab, pad_batch};
use proptest::prelude::*;

const TEXTS: [&str; 4] = [
    "The patient's BP was 120/80; the patient felt fine.",
    "Patient denies chest pain. Chest X-ray clear in 2019.",
    "café Café CAFÉ naïve",
    "beta-blocker; Beta blocker 50mg",
];

fn all_once() -> VocabOptions {
    VocabOptions {
        min_freq: 1,
        ..VocabOptions::default()
    }
}

#[test]
fn defaults() {
    let o = VocabOptions::default();
    assert_eq!((o.min_freq, o.max_size), (2, Some(50_000)));
    assert!(o.lowercase && o.normalize_numbers);
}

#[test]
fn order_is_frequency_then_word_and_deterministic() {
    let v = WordVocab::build(TEXTS, &all_once());
    assert_eq!(&v.tokens[..2], ["<pad>", "<unk>"]);
    // <num> (120, 80, 2019, 50mg) 4; café, patient 3; beta, blocker, chest, the 2; ties by word.
    assert_eq!(
        &v.tokens[2..7],
        ["<num>", "café", "patient", "beta", "blocker"]
    );
    let again = WordVocab::build(TEXTS.iter().rev().copied(), &all_once());
    assert_eq!(v.tokens, again.tokens);
    let mut shuffled: Vec<&str> = TEXTS.to_vec();
    shuffled.swap(0, 2);
    assert_eq!(v, WordVocab::build(shuffled, &all_once()));
}

#[test]
fn min_freq_and_max_size() {
    let v = WordVocab::build(TEXTS, &VocabOptions::default());
    // Seen at least twice.
    assert_eq!(
        v.tokens,
        [
            "<pad>", "<unk>", "<num>", "café", "patient", "beta", "blocker", "chest", "the"
        ]
    );
    let small = WordVocab::build(
        TEXTS,
        &VocabOptions {
            max_size: Some(4),
            ..VocabOptions::default()
        },
    );
    assert_eq!(small.tokens, ["<pad>", "<unk>", "<num>", "café"]);
    assert_eq!(small.len(), 4);
    let tiny = WordVocab::build(
        TEXTS,
        &VocabOptions {
            max_size: Some(0),
            ..all_once()
        },
    );
    assert_eq!(tiny.tokens, ["<pad>", "<unk>"]);
    assert!(!tiny.is_empty());
}

#[test]
fn case_and_numbers() {
    let keep = VocabOptions {
        min_freq: 1,
        max_size: None,
        lowercase: false,
        normalize_numbers: false,
    };
    let v = WordVocab::build(TEXTS, &keep);
    for w in ["Café", "CAFÉ", "café", "2019", "50mg", "X"] {
        assert!(v.tokens.iter().any(|t| t == w), "{w}");
    }
    assert!(!v.tokens.iter().any(|t| t == "<num>"));
    let n = WordVocab::build(TEXTS, &all_once());
    assert_eq!(n.id("CAFÉ"), n.id("café"));
    assert_eq!(n.id("1999"), n.id("<num>"));
    assert_eq!(n.id("a1"), 2);
    assert_eq!(n.id("never-seen"), 1);
    assert_eq!(n.id("<pad>"), 0);
}

#[test]
fn words_and_spans() {
    let v = WordVocab::build(TEXTS, &all_once());
    let text = "Ça, l'hôpital: 3 lits!";
    let words = v.words(text);
    let got: Vec<(&str, &str)> = words
        .iter()
        .map(|(w, (s, e))| (w.as_str(), &text[*s..*e]))
        .collect();
    assert_eq!(
        got,
        [
            ("ça", "Ça"),
            ("l", "l"),
            ("hôpital", "hôpital"),
            ("<num>", "3"),
            ("lits", "lits")
        ]
    );
    assert!(v.words("  ...!? ").is_empty());
}

#[test]
fn serde_round_trip_rebuilds_lookup() {
    let v = WordVocab::build(TEXTS, &all_once());
    let json = serde_json::to_string(&v).unwrap();
    assert!(!json.contains("index"));
    let back: WordVocab = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
    assert_eq!(back.id("patient"), v.id("patient"));
    assert_ne!(back.id("patient"), 1);
    // Options default when absent.
    let old: WordVocab = serde_json::from_str(r#"{"tokens":["<pad>","<unk>","x"]}"#).unwrap();
    assert_eq!(old.id("X"), 2);
    assert_eq!(old.options, VocabOptions::default());
}

proptest! {
    #[test]
    fn encode_never_panics(text in any::<String>(), extra in "\\PC{0,80}", max_len in 0usize..64) {
        let v = WordVocab::build(TEXTS, &all_once());
        let tok = Tokenizer::Word(v.clone());
        for t in [text.as_str(), extra.as_str()] {
            let e = tok.encode(t, max_len);
            prop_assert!(e.len() <= max_len);
            prop_assert_eq!(e.ids.len(), e.spans.len());
            prop_assert_eq!(e.ids.len(), e.tokens.len());
            for (&id, span) in e.ids.iter().zip(&e.spans) {
                prop_assert!((id as usize) < v.len());
                prop_assert!(id != 0);
                let (s, end) = span.unwrap();
                prop_assert!(s < end && end <= t.len());
                prop_assert!(t[s..end].chars().all(char::is_alphanumeric));
            }
            let b = pad_batch(&[&e], tok.pad_id(), 0);
            prop_assert_eq!(b.ids.len(), b.len);
        }
    }

    #[test]
    fn build_never_panics(texts in proptest::collection::vec(any::<String>(), 0..8)) {
        let v = WordVocab::build(texts.iter().map(String::as_str), &all_once());
        prop_assert!(v.len() >= 2);
        for t in &texts {
            for (w, _) in v.words(t) {
                prop_assert!(v.id(&w) != 1, "{} should be known", w);
            }
        }
    }
}
