//! ImageFolder datasets, decoding of each format, splits and fingerprints.

use std::path::{Path, PathBuf};

use image::ImageFormat;
use medai_data::{DataError, LabelMode, OpenOptions, load_image, open, stratified_split};

use crate::common::{flat_png, grey_png, grey16, mkdirs, rel_paths, rgb};

/// Classes "benign" (PNG 8-bit, nested PNG 16-bit, TIFF 16-bit), "cyst" (JPEG, BMP) and
/// "adenoma" (RGB PNG), plus files that must be ignored.
fn three_class_folder(root: &Path) {
    grey_png(&root.join("benign/b1.png"), 4, 3, 10);
    grey16(
        &root.join("benign/deeper/nested/b2.png"),
        2,
        2,
        257 * 100,
        ImageFormat::Png,
    );
    grey16(&root.join("benign/b3.TIFF"), 2, 2, 65535, ImageFormat::Tiff);
    rgb(
        &root.join("cyst/c1.jpg"),
        8,
        8,
        [200, 200, 200],
        ImageFormat::Jpeg,
    );
    rgb(&root.join("cyst/c2.bmp"), 3, 2, [1, 2, 3], ImageFormat::Bmp);
    rgb(
        &root.join("adenoma/a1.png"),
        2,
        2,
        [9, 8, 7],
        ImageFormat::Png,
    );
    // Ignored: hidden file, hidden folder, non-image file, file at the root, hidden class.
    flat_png(&root.join("benign/.hidden.png"), 2, 2, 0);
    flat_png(&root.join("cyst/.cache/c9.png"), 2, 2, 0);
    std::fs::write(root.join("adenoma/notes.txt"), "not an image").unwrap();
    flat_png(&root.join("stray.png"), 2, 2, 0);
    flat_png(&root.join(".trash/x.png"), 2, 2, 0);
}

#[test]
fn classes_sorted_recursive_hidden_skipped_and_formats_decode() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    three_class_folder(root);
    let opts = OpenOptions {
        val_split: 0.0,
        ..OpenOptions::default()
    };
    let s = open(root, &opts).unwrap();
    assert_eq!(s.source, "image-folder");
    assert_eq!(s.classes, vec!["adenoma", "benign", "cyst"]);
    assert!(s.test.is_none());
    assert!(s.val.is_empty());
    let expected: Vec<PathBuf> = [
        "adenoma/a1.png",
        "benign/b1.png",
        "benign/b3.TIFF",
        "benign/deeper/nested/b2.png",
        "cyst/c1.jpg",
        "cyst/c2.bmp",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(rel_paths(&s.train, root), expected);
    assert_eq!(s.train.labels(), vec![0, 1, 1, 1, 2, 2]);
    assert_eq!(s.train.class_counts(), vec![1, 3, 2]);
    assert_eq!(
        s.summary(),
        "Found 6 images belonging to 3 classes (train), 0 (val)"
    );

    // Decoding: RGB PNG.
    let a1 = s.train.load(0).unwrap();
    assert_eq!((a1.width, a1.height, a1.channels), (2, 2, 3));
    assert_eq!(&a1.pixels[..3], &[9.0, 8.0, 7.0]);
    // 8-bit grey PNG: pixel (x, y) = 10 + x + 2y.
    let b1 = s.train.load(1).unwrap();
    assert_eq!((b1.width, b1.height, b1.channels), (4, 3, 1));
    assert_eq!(b1.pixels[2 * 4 + 3], 10.0 + 3.0 + 4.0);
    // 16-bit TIFF and PNG: divided by 257.
    assert!(s.train.load(2).unwrap().pixels.iter().all(|&v| v == 255.0));
    let b2 = s.train.load(3).unwrap();
    assert_eq!(b2.channels, 1);
    assert!(b2.pixels.iter().all(|&v| v == 100.0));
    // JPEG (lossy: near 200) and BMP.
    let c1 = s.train.load(4).unwrap();
    assert_eq!((c1.width, c1.height, c1.channels), (8, 8, 3));
    assert!(c1.pixels.iter().all(|&v| (v - 200.0).abs() <= 2.0));
    assert_eq!(&s.train.load(5).unwrap().pixels[..3], &[1.0, 2.0, 3.0]);
    assert!(s.train.describe(5).ends_with("c2.bmp"));
}

#[test]
fn format_is_detected_by_content_and_alpha_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // A PNG saved under a .jpg name still decodes.
    let p = dir.path().join("really_png.jpg");
    grey_png(&p, 3, 3, 50);
    assert_eq!(load_image(&p).unwrap().pixels[0], 50.0);
    // RGBA → RGB, grey+alpha → grey.
    let rgba = dir.path().join("rgba.png");
    image::RgbaImage::from_pixel(2, 1, image::Rgba([1, 2, 3, 4]))
        .save(&rgba)
        .unwrap();
    let img = load_image(&rgba).unwrap();
    assert_eq!(
        (img.channels, img.pixels.clone()),
        (3, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    );
    let la = dir.path().join("la.png");
    image::GrayAlphaImage::from_pixel(1, 2, image::LumaA([77, 0]))
        .save(&la)
        .unwrap();
    let img = load_image(&la).unwrap();
    assert_eq!((img.channels, img.pixels.clone()), (1, vec![77.0, 77.0]));
    // Missing and undecodable files are named.
    let missing = dir.path().join("nope.png");
    let err = load_image(&missing).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }) && err.to_string().contains("nope.png"));
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"definitely not an image").unwrap();
    let err = load_image(&junk).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.png"), "{err}");
}

#[test]
fn binary_mode_refuses_three_classes() {
    let dir = tempfile::tempdir().unwrap();
    three_class_folder(dir.path());
    let opts = OpenOptions {
        mode: Some(LabelMode::Binary),
        ..OpenOptions::default()
    };
    let msg = open(dir.path(), &opts).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "binary mode needs exactly 2 classes, found 3 in {}: [adenoma, benign, cyst]",
            dir.path().display()
        )
    );
    // Categorical and ordinal are fine.
    for mode in [LabelMode::Categorical, LabelMode::Ordinal] {
        let opts = OpenOptions {
            mode: Some(mode),
            ..OpenOptions::default()
        };
        assert_eq!(open(dir.path(), &opts).unwrap().classes.len(), 3);
    }
    assert_eq!(LabelMode::infer(2), LabelMode::Binary);
    assert_eq!(LabelMode::infer(3), LabelMode::Categorical);
    assert_eq!(
        serde_json::to_string(&LabelMode::Categorical).unwrap(),
        "\"categorical\""
    );
}

#[test]
fn empty_class_folder_single_class_and_empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    flat_png(&root.join("a/1.png"), 2, 2, 1);
    mkdirs(&root.join("b/sub"));
    std::fs::write(root.join("b/readme.txt"), "x").unwrap();
    let err = open(&root, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::EmptyFolder { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&root.join("b").display().to_string()) && msg.contains("class folder 'b'"),
        "{msg}"
    );

    std::fs::remove_dir_all(root.join("b")).unwrap();
    let err = open(&root, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::TooFewClasses { found: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("ds") && err.to_string().contains("[\"a\"]"),
        "{err}"
    );

    let empty = dir.path().join("empty");
    mkdirs(&empty);
    let err = open(&empty, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyFolder { .. }) && err.to_string().contains("empty"),
        "{err:?}"
    );
}

#[test]
fn train_val_test_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (split, n) in [("train", 5), ("validation", 2), ("test", 3)] {
        for class in ["normal", "pneumonia"] {
            for i in 0..n {
                flat_png(
                    &root.join(format!("{split}/{class}/{i}.png")),
                    2,
                    2,
                    i as u8,
                );
            }
        }
    }
    let s = open(root, &OpenOptions::default()).unwrap();
    assert_eq!(s.classes, vec!["normal", "pneumonia"]);
    assert_eq!(
        (s.train.len(), s.val.len(), s.test.as_ref().unwrap().len()),
        (10, 4, 6)
    );
    assert_eq!(
        s.summary(),
        "Found 10 images belonging to 2 classes (train), 4 (val), 6 (test)"
    );
    assert_eq!(s.split("validation").unwrap().len(), 4);
    assert_eq!(s.split("val").unwrap().len(), 4);
    assert_eq!(s.split("test").unwrap().class_counts(), vec![3, 3]);
    assert!(
        s.split("holdout")
            .unwrap_err()
            .to_string()
            .contains("holdout")
    );

    // Without val/, the val split is cut from train; without test/, split("test") errors.
    std::fs::remove_dir_all(root.join("validation")).unwrap();
    std::fs::remove_dir_all(root.join("test")).unwrap();
    let s = open(root, &OpenOptions::default()).unwrap();
    assert_eq!((s.train.len(), s.val.len()), (8, 2));
    assert_eq!(s.val.class_counts(), vec![1, 1]);
    let msg = s.split("test").unwrap_err().to_string();
    assert!(
        msg.contains("no split named 'test'") && msg.contains("no test split"),
        "{msg}"
    );

    // A val split whose classes differ from train's is refused.
    flat_png(&root.join("val/normal/0.png"), 2, 2, 0);
    flat_png(&root.join("val/other/0.png"), 2, 2, 0);
    let err = open(root, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::ClassMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("other"), "{err}");
}

#[test]
fn stratified_split_is_seeded_deterministic_and_stratified() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..20 {
        flat_png(&root.join(format!("a/{i:02}.png")), 1, 1, 0);
    }
    for i in 0..10 {
        flat_png(&root.join(format!("b/{i:02}.png")), 1, 1, 0);
    }
    flat_png(&root.join("c/only.png"), 1, 1, 0);
    let opts = |seed| OpenOptions {
        val_split: 0.2,
        seed,
        ..OpenOptions::default()
    };
    let s1 = open(root, &opts(7)).unwrap();
    let s2 = open(root, &opts(7)).unwrap();
    let s3 = open(root, &opts(8)).unwrap();
    // Per class: round(20*0.2)=4, round(10*0.2)=2, a single-item class stays in train.
    assert_eq!(s1.val.class_counts(), vec![4, 2, 0]);
    assert_eq!(s1.train.class_counts(), vec![16, 8, 1]);
    assert_eq!(rel_paths(&s1.val, root), rel_paths(&s2.val, root));
    assert_eq!(s1.fingerprint(), s2.fingerprint());
    assert_ne!(rel_paths(&s1.val, root), rel_paths(&s3.val, root));
    assert_ne!(s1.fingerprint(), s3.fingerprint());
    // Disjoint, complete, and each side keeps the sorted order.
    let mut all = rel_paths(&s1.train, root);
    all.extend(rel_paths(&s1.val, root));
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n, 31);
    assert_eq!(all.len(), 31);
    for side in [&s1.train, &s1.val] {
        let p = rel_paths(side, root);
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(p, sorted);
    }
    // At least one val item per class with >= 2 items, even for a tiny fraction.
    let (_, val) = stratified_split(&s1.train.items, 0.001, 1);
    let labels: Vec<usize> = val.iter().map(|it| it.label).collect();
    assert_eq!(labels, vec![0, 1]);
    // Invalid fractions are refused.
    let bad = OpenOptions {
        val_split: 1.5,
        ..OpenOptions::default()
    };
    let msg = open(root, &bad).unwrap_err().to_string();
    assert!(msg.contains("val_split") && msg.contains("[0, 1)"), "{msg}");
}

#[test]
fn fingerprint_tracks_labels_and_content_but_not_location() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("one");
    flat_png(&a.join("x/1.png"), 2, 2, 1);
    flat_png(&a.join("y/1.png"), 2, 2, 1);
    let fp = open(&a, &OpenOptions::default()).unwrap().fingerprint();
    // Same dataset elsewhere: same fingerprint.
    let b = dir.path().join("two");
    flat_png(&b.join("x/1.png"), 2, 2, 1);
    flat_png(&b.join("y/1.png"), 2, 2, 1);
    assert_eq!(open(&b, &OpenOptions::default()).unwrap().fingerprint(), fp);
    // A renamed class changes it; so does a file of another size.
    std::fs::rename(b.join("y"), b.join("z")).unwrap();
    let fp_renamed = open(&b, &OpenOptions::default()).unwrap().fingerprint();
    assert_ne!(fp_renamed, fp);
    flat_png(&b.join("z/1.png"), 9, 9, 1);
    assert_ne!(
        open(&b, &OpenOptions::default()).unwrap().fingerprint(),
        fp_renamed
    );
}
