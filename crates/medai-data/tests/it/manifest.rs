//! CSV manifests.

use image::ImageFormat;
use medai_data::{DataError, OnBadFile, OpenOptions, open, open_with_report};

use crate::common::{flat_png, rgb};

#[test]
fn manifest_with_split_column_relative_and_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..4 {
        flat_png(&root.join(format!("img/n{i}.png")), 2, 2, 0);
        flat_png(&root.join(format!("img/p{i}.png")), 2, 2, 255);
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let abs = elsewhere.path().join("abs.jpg");
    rgb(&abs, 2, 2, [5, 5, 5], ImageFormat::Jpeg);
    let csv = format!(
        "path,label,split\n\
         img/n0.png,normal,train\n\
         img/p0.png,pneumonia,train\n\
         img/n1.png,normal,train\n\
         {},pneumonia,train\n\
         img/n2.png,normal,val\n\
         img/p2.png,pneumonia,validation\n\
         img/n3.png,normal,test\n\
         img/p3.png,pneumonia,TEST\n\
         \n",
        abs.display()
    );
    let manifest = root.join("labels.csv");
    std::fs::write(&manifest, csv).unwrap();
    let s = open(&manifest, &OpenOptions::default()).unwrap();
    assert_eq!(s.source, "csv");
    assert_eq!(s.classes, vec!["normal", "pneumonia"]);
    assert_eq!(
        (s.train.len(), s.val.len(), s.test.as_ref().unwrap().len()),
        (4, 2, 2)
    );
    assert_eq!(s.train.labels(), vec![0, 1, 0, 1]);
    assert_eq!(
        s.train.describe(0),
        root.join("img/n0.png").display().to_string()
    );
    assert_eq!(s.train.describe(3), abs.display().to_string());
    assert_eq!(s.train.load(3).unwrap().channels, 3);
    assert_eq!(s.val.labels(), vec![0, 1]);
}

#[test]
fn manifest_without_split_column_gets_a_val_split_and_numeric_classes() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("label,path\n");
    for i in 0..30 {
        let p = dir.path().join(format!("{i}.png"));
        flat_png(&p, 1, 1, i as u8);
        // Ordinal grades "2", "10", "9": integer names sort numerically.
        let grade = ["2", "10", "9"][i % 3];
        csv.push_str(&format!("{grade},{i}.png\n"));
    }
    let manifest = dir.path().join("grades.csv");
    std::fs::write(&manifest, csv).unwrap();
    let s = open(&manifest, &OpenOptions::default()).unwrap();
    assert_eq!(s.classes, vec!["2", "9", "10"]);
    assert_eq!(s.val.class_counts(), vec![1, 1, 1]);
    assert_eq!(s.train.class_counts(), vec![9, 9, 9]);
    assert!(s.test.is_none());
}

#[test]
fn bad_rows_and_headers_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    flat_png(&dir.path().join("a.png"), 1, 1, 0);
    flat_png(&dir.path().join("b.png"), 1, 1, 0);
    let manifest = dir.path().join("m.csv");

    std::fs::write(&manifest, "path,label\na.png,x\nb.png,y\nmissing.png,x\n").unwrap();
    let err = open(&manifest, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::ManifestRow {
                row: 3,
                line: 4,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("m.csv") && msg.contains("row 3") && msg.contains("missing.png"),
        "{msg}"
    );

    // With Skip, the missing row is dropped and reported.
    let opts = OpenOptions {
        on_bad_file: OnBadFile::Skip,
        ..OpenOptions::default()
    };
    let (s, skipped) = open_with_report(&manifest, &opts).unwrap();
    assert_eq!(s.train.len() + s.val.len(), 2);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].0.ends_with("missing.png") && skipped[0].1.contains("row 3"),
        "{skipped:?}"
    );

    std::fs::write(
        &manifest,
        "path,label,split\na.png,x,train\nb.png,y,holdout\n",
    )
    .unwrap();
    let msg = open(&manifest, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("row 2") && msg.contains("unknown split 'holdout'"),
        "{msg}"
    );

    std::fs::write(&manifest, "path,label\na.png,x\nb.png,\n").unwrap();
    let msg = open(&manifest, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("row 2") && msg.contains("'label'"), "{msg}");

    std::fs::write(&manifest, "file,class\na.png,x\n").unwrap();
    let err = open(&manifest, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::ManifestHeader { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("no 'path' column (found: file,class)"),
        "{err}"
    );

    std::fs::write(&manifest, "path,label\n").unwrap();
    let msg = open(&manifest, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("m.csv") && msg.contains("no rows"), "{msg}");

    std::fs::write(&manifest, "path,label\na.png,x\nb.png,x\n").unwrap();
    let err = open(&manifest, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::TooFewClasses { found: 1, .. }),
        "{err:?}"
    );
}
