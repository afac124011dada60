//! Reads the shared OHSUMED file (`/work/shared/data/text/ohsumed.tsv`, relative to the crate
//! `../../../shared/data/text/ohsumed.tsv`). Skipped with a note when the file is absent, unless
//! `MEDAI_REQUIRE_INTEGRATION` is set.

use medai_text::{LabelSet, ReadOptions, SplitName, TextDataset, Tokenizer, WordPiece};
use std::path::Path;

#[test]
fn ohsumed_splits_and_labels() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/text/ohsumed.tsv");
    if !path.is_file() {
        if std::env::var_os("MEDAI_REQUIRE_INTEGRATION").is_some() {
            panic!(
                "{} is missing and MEDAI_REQUIRE_INTEGRATION is set",
                path.display()
            );
        }
        eprintln!("note: skipping, {} not found", path.display());
        return;
    }
    let opts = ReadOptions {
        text_column: "text".into(),
        label_column: Some("label".into()),
        split_column: Some("split".into()),
        label_separator: Some(';'),
        delimiter: None,
    };
    let ds = TextDataset::read(&path, &opts).unwrap();
    let (train, test) = (ds.split(SplitName::Train), ds.split(SplitName::Test));
    assert_eq!(train.len(), 3357);
    assert_eq!(test.len(), 4043);
    assert!(ds.split(SplitName::Val).is_empty());
    assert_eq!(ds.records.len(), 7400);
    // One record per physical line: the last one is on line 7401.
    assert_eq!(ds.records.last().unwrap().line, 7401);
    let labels = LabelSet::from_records(train.iter().copied());
    assert_eq!(labels.len(), 23);
    assert_eq!(labels.names.first().unwrap(), "C01");
    assert_eq!(labels.names.last().unwrap(), "C23");
    for rec in &test {
        labels.encode(rec, &ds.path).unwrap();
    }
    // The fixture tokenizer handles every abstract within the length limit.
    let wp = WordPiece::from_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wordpiece"),
    )
    .unwrap();
    let tok = Tokenizer::WordPiece(wp);
    for rec in train.iter().take(200) {
        let e = tok.encode(&rec.text, 256);
        assert!(e.len() <= 256 && e.len() > 2);
    }
}
