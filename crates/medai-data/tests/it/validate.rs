//! Bad files: `validate` and `OnBadFile`.

use medai_data::{DataError, OnBadFile, OpenOptions, open, open_with_report, validate};

use crate::common::{flat_png, grey_png};

/// Two classes of 3 good PNGs each, plus `a/bad.png` holding only the first half of a PNG.
fn folder_with_truncated_png(root: &std::path::Path) -> std::path::PathBuf {
    for c in ["a", "b"] {
        for i in 0..3 {
            flat_png(&root.join(format!("{c}/{i}.png")), 2, 2, 9);
        }
    }
    let good = root.join("a/0.png");
    let src = root.join("src.png");
    grey_png(&src, 16, 16, 3);
    let bytes = std::fs::read(&src).unwrap();
    std::fs::remove_file(&src).unwrap();
    let bad = root.join("a/bad.png");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(good.exists());
    bad
}

#[test]
fn truncated_png_error_then_skip() {
    let dir = tempfile::tempdir().unwrap();
    let bad = folder_with_truncated_png(dir.path());
    let opts = OpenOptions {
        val_split: 0.0,
        ..OpenOptions::default()
    };
    // Open does not decode, so the truncated file is still listed.
    let mut s = open(dir.path(), &opts).unwrap();
    assert_eq!(s.train.len(), 7);
    let err = validate(&mut s, OnBadFile::Error).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );
    assert_eq!(s.train.len(), 7, "Error policy leaves the splits alone");
    assert!(s.train.load(3).is_err());

    let skipped = validate(&mut s, OnBadFile::Skip).unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].0, bad);
    assert!(!skipped[0].1.is_empty());
    assert_eq!(s.train.len(), 6);
    assert_eq!(s.train.class_counts(), vec![3, 3]);
    assert!(validate(&mut s, OnBadFile::Error).unwrap().is_empty());

    // Opening with Skip decodes everything and drops the bad file up front.
    let skip = OpenOptions {
        on_bad_file: OnBadFile::Skip,
        ..opts
    };
    let (s, skipped) = open_with_report(dir.path(), &skip).unwrap();
    assert_eq!(s.train.len(), 6);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].0, bad);
}

#[test]
fn empty_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    flat_png(&dir.path().join("a/1.png"), 2, 2, 0);
    flat_png(&dir.path().join("b/1.png"), 2, 2, 0);
    std::fs::write(dir.path().join("b/empty.png"), b"").unwrap();
    let err = open(dir.path(), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.png"), "{err}");
}
