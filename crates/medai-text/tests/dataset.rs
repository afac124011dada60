//! The CSV/TSV reader on small files: multi-class, multi-label, split column, line numbers with
//! CRLF and quoted newlines, and every error case naming file, line and field.

use medai_text::{LabelSet, ReadOptions, SplitName, TextDataset, TextError};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn opts(label: Option<&str>, split: Option<&str>, sep: Option<char>) -> ReadOptions {
    ReadOptions {
        text_column: "text".into(),
        label_column: label.map(Into::into),
        split_column: split.map(Into::into),
        label_separator: sep,
        delimiter: None,
    }
}

/// Reads and expects an error whose message names the file and contains each of `parts`.
fn read_err(path: &Path, o: &ReadOptions, parts: &[&str]) -> TextError {
    let e = TextDataset::read(path, o).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "no file in: {msg}"
    );
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in: {msg}");
    }
    e
}

#[test]
fn multi_class_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "notes.csv",
        b"id,text,label\n1,Chest pain on exertion.,cardio\n2,\"Cough, fever\",resp\n3,Palpitations,cardio\n",
    );
    let ds = TextDataset::read(&path, &ReadOptions::default()).unwrap();
    assert_eq!(ds.path, path);
    assert_eq!(ds.records.len(), 3);
    assert_eq!(ds.records[1].text, "Cough, fever");
    assert_eq!(ds.records[1].labels, ["resp"]);
    assert_eq!(ds.records[1].line, 3);
    assert_eq!(ds.records[0].split, None);
    let labels = LabelSet::from_records(&ds.records);
    assert_eq!(labels.names, ["cardio", "resp"]);
    assert!(ds.split(SplitName::Train).is_empty());
    // Without a label column the labels are empty.
    let unlabelled = TextDataset::read(&path, &opts(None, None, None)).unwrap();
    assert!(unlabelled.records.iter().all(|r| r.labels.is_empty()));
}

#[test]
fn multi_label_tsv_with_splits() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "ohsumed_like.tsv",
        b"doc\tsplit\tlabel\ttext\n\
          a\ttraining\tC04;C14\tTumour of the heart\n\
          b\tTEST\t C14 \tHypertension\n\
          c\tdev\tC01;C04;C01\tInfection, with a comma\n\
          d\tValidation\tC01\tSepsis\n",
    );
    let ds = TextDataset::read(&path, &opts(Some("label"), Some("split"), Some(';'))).unwrap();
    let lines: Vec<u64> = ds.records.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 4, 5]);
    assert_eq!(ds.records[0].labels, ["C04", "C14"]);
    assert_eq!(ds.records[1].labels, ["C14"]);
    assert_eq!(ds.records[2].labels, ["C01", "C04"]);
    assert_eq!(ds.split(SplitName::Train).len(), 1);
    assert_eq!(ds.split(SplitName::Val).len(), 2);
    assert_eq!(ds.split(SplitName::Test)[0].text, "Hypertension");
    let set = LabelSet::from_records(ds.split(SplitName::Train));
    assert_eq!(set.names, ["C04", "C14"]);
    assert_eq!(set.encode(&ds.records[0], &ds.path).unwrap(), [0, 1]);
    assert_eq!(set.encode(&ds.records[1], &ds.path).unwrap(), [1]);
    // The validation row's C01 was not in training.
    let e = set.encode(&ds.records[2], &ds.path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TextError::UnknownLabel { line: 4, .. }));
    for part in [
        "ohsumed_like.tsv",
        "line 4",
        "\"C01\"",
        "not seen in the training split",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // An explicit delimiter overrides the extension.
    let semi = write(dir.path(), "x.txt", b"text;label\nhello;a\n");
    let o = ReadOptions {
        delimiter: Some(b';'),
        ..ReadOptions::default()
    };
    assert_eq!(
        TextDataset::read(&semi, &o).unwrap().records[0].labels,
        ["a"]
    );
}

#[test]
fn line_numbers_with_crlf_and_quoted_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "crlf.csv",
        b"\xef\xbb\xbftext,label\r\n\"first line\r\nsecond line\",a\r\nplain,b\r\n\r\n\"three\nline\nnote\",a\r\nlast,b",
    );
    let ds = TextDataset::read(&path, &ReadOptions::default()).unwrap();
    let lines: Vec<u64> = ds.records.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4, 6, 9]);
    assert_eq!(ds.records[0].text, "first line\r\nsecond line");
    assert_eq!(ds.records[2].text, "three\nline\nnote");
    // An error after them still points at the right line.
    let bad = write(
        dir.path(),
        "crlf_bad.csv",
        b"text,label\r\n\"a\r\nb\",x\r\nok,y\r\n  ,z\r\n",
    );
    let e = read_err(
        &bad,
        &ReadOptions::default(),
        &["line 5", "\"text\"", "empty"],
    );
    assert!(matches!(e, TextError::EmptyText { line: 5, .. }));
}

#[test]
fn missing_column_lists_available() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"note,label\nhi,a\n");
    let e = read_err(&path, &ReadOptions::default(), &["\"text\"", "note, label"]);
    assert!(matches!(e, TextError::MissingColumn { .. }));
    let path = write(dir.path(), "b.csv", b"text,label\nhi,a\n");
    read_err(
        &path,
        &opts(Some("label"), Some("split"), None),
        &["\"split\"", "text, label"],
    );
}

#[test]
fn empty_text_and_label_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"text,label\nfine,a\n \t ,b\n");
    let e = read_err(
        &path,
        &ReadOptions::default(),
        &["line 3", "\"text\"", "empty"],
    );
    assert!(matches!(e, TextError::EmptyText { line: 3, .. }));
    let path = write(dir.path(), "l.csv", b"text,label\nfine,a\nalso fine,\n");
    let e = read_err(
        &path,
        &ReadOptions::default(),
        &["line 3", "\"label\"", "no label"],
    );
    assert!(matches!(e, TextError::EmptyLabel { line: 3, .. }));
    let path = write(
        dir.path(),
        "m.csv",
        b"text,labels\nfine,a;b\nalso fine, ; \n",
    );
    let o = ReadOptions {
        label_column: Some("labels".into()),
        label_separator: Some(';'),
        ..ReadOptions::default()
    };
    read_err(&path, &o, &["line 3", "\"labels\""]);
}

#[test]
fn non_utf8_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "latin1.csv",
        b"text,label,site\nok,a,x\ncaf\xe9 au lait,b,y\n",
    );
    let e = read_err(
        &path,
        &ReadOptions::default(),
        &["line 3", "\"text\"", "UTF-8"],
    );
    assert!(matches!(
        e,
        TextError::NotUtf8 {
            line: 3,
            field: 1,
            offset: 3,
            ..
        }
    ));
    // An unused column is checked too.
    let path = write(dir.path(), "site.csv", b"text,label,site\nok,a,\xff\n");
    read_err(
        &path,
        &ReadOptions::default(),
        &["line 2", "\"site\"", "field 3"],
    );
    // And the header.
    let path = write(dir.path(), "head.csv", b"text,lab\xc3\n ok,a\n");
    read_err(&path, &ReadOptions::default(), &["line 1", "<header>"]);
}

#[test]
fn bad_split_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "s.tsv",
        b"text\tlabel\tsplit\nx\ta\ttrain\ny\tb\tholdout\n",
    );
    let e = read_err(
        &path,
        &opts(Some("label"), Some("split"), None),
        &["line 3", "\"split\"", "\"holdout\""],
    );
    assert!(matches!(e, TextError::BadSplit { line: 3, .. }));
    let path = write(dir.path(), "e.tsv", b"text\tlabel\tsplit\nx\ta\t\n");
    read_err(
        &path,
        &opts(Some("label"), Some("split"), None),
        &["line 2", "\"\""],
    );
}

#[test]
fn wrong_field_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "f.csv",
        b"text,label\nok,a\n\"multi\nline\",b\ntoo,many,fields\n",
    );
    let e = read_err(
        &path,
        &ReadOptions::default(),
        &["line 5", "expected 2 fields", "found 3"],
    );
    assert!(matches!(e, TextError::Csv { line: 5, .. }));
}

#[test]
fn empty_files_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.csv", b"");
    read_err(&path, &ReadOptions::default(), &["no header"]);
    let path = write(dir.path(), "header_only.csv", b"text,label\n");
    read_err(&path, &ReadOptions::default(), &["no data rows"]);
    let missing = dir.path().join("nope.csv");
    let e = read_err(&missing, &ReadOptions::default(), &[]);
    assert!(matches!(e, TextError::Io { .. }));
}
