//! `.npz` (MedMNIST) datasets.

use std::path::Path;
use std::time::Instant;

use medai_data::{
    DataError, LabelMode, Normalization, OpenOptions, PreprocessSpec, ResizeFilter, channel_stats,
    open,
};

use crate::common::{PNEUMONIA_NPZ, medmnist_like, npy, write_npz};

#[test]
fn pneumoniamnist_counts_classes_and_pixels() {
    let t = Instant::now();
    let s = open(Path::new(PNEUMONIA_NPZ), &OpenOptions::default()).unwrap();
    let elapsed = t.elapsed();
    // Numbers from shared/data/README.md.
    assert_eq!(s.classes, vec!["normal", "pneumonia"]);
    assert_eq!(s.source, "npz");
    assert_eq!((s.train.len(), s.val.len()), (4708, 524));
    assert_eq!(s.test.as_ref().unwrap().len(), 624);
    assert_eq!(s.train.class_counts(), vec![1214, 3494]);
    assert_eq!(s.val.class_counts(), vec![135, 389]);
    assert_eq!(s.test.as_ref().unwrap().class_counts(), vec![234, 390]);
    assert_eq!(
        s.summary(),
        "Found 4708 images belonging to 2 classes (train), 524 (val), 624 (test)"
    );
    // Pixel and label values checked against numpy's np.load of the same file.
    assert_eq!(&s.train.labels()[..6], &[1, 1, 1, 1, 1, 0]);
    let img = s.train.load(0).unwrap();
    assert_eq!((img.width, img.height, img.channels), (28, 28, 1));
    assert_eq!(img.pixels.iter().sum::<f32>(), 120758.0);
    assert_eq!(
        &img.pixels[14 * 28..14 * 28 + 6],
        &[42.0, 140.0, 168.0, 129.0, 124.0, 109.0]
    );
    let test = s.split("test").unwrap();
    assert_eq!(test.load(623).unwrap().pixels.iter().sum::<f32>(), 118026.0);
    assert_eq!(test.labels()[623], 0);
    assert!(
        s.train
            .describe(3)
            .ends_with("pneumoniamnist.npz:train_images[3]"),
        "{}",
        s.train.describe(3)
    );
    assert!(matches!(
        s.train.load(4708),
        Err(DataError::IndexOutOfRange {
            index: 4708,
            len: 4708
        })
    ));
    // Generous bound for debug builds on a busy 2-core machine; release is far faster.
    assert!(elapsed.as_secs_f64() < 5.0, "open took {elapsed:?}");

    let fp = s.fingerprint();
    assert_eq!(fp.len(), 64);
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
    let again = open(Path::new(PNEUMONIA_NPZ), &OpenOptions::default()).unwrap();
    assert_eq!(again.fingerprint(), fp);

    // Channel statistics against numpy: train_images.mean()/255 and .std()/255.
    let spec = PreprocessSpec {
        height: 28,
        width: 28,
        channels: 1,
        resize: ResizeFilter::Bilinear,
        normalization: Normalization::Rescale,
    };
    let (mean, std) = channel_stats(&s.train, &spec).unwrap();
    assert!((mean[0] - 0.571_921_6).abs() < 1e-5, "{mean:?}");
    assert!((std[0] - 0.168_351_3).abs() < 1e-5, "{std:?}");
}

#[test]
fn binary_and_categorical_modes_accept_two_classes() {
    for mode in [Some(LabelMode::Binary), Some(LabelMode::Categorical), None] {
        let opts = OpenOptions {
            mode,
            ..OpenOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tiny.npz");
        medmnist_like(&p, [6, 2, 2], (3, 4), |i| (i % 2) as u8);
        let s = open(&p, &opts).unwrap();
        assert_eq!(s.classes, vec!["0", "1"]);
        assert_eq!(s.train.load(1).unwrap().pixels.len(), 12);
    }
}

#[test]
fn missing_key_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("partial.npz");
    let mut members = medmnist_like(&p, [4, 2, 2], (2, 2), |i| (i % 2) as u8);
    members.retain(|(k, _)| *k != "test_labels");
    write_npz(&p, &members);
    let err = open(&p, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::MissingKey { ref key, .. } if key == "test_labels"));
    let msg = err.to_string();
    assert!(
        msg.contains("partial.npz") && msg.contains("test_labels"),
        "{msg}"
    );
    assert!(msg.contains("found: test_images, train_images"), "{msg}");
}

#[test]
fn truncated_and_non_zip_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(PNEUMONIA_NPZ).unwrap();
    let truncated = dir.path().join("truncated.npz");
    std::fs::write(&truncated, &real[..real.len() / 2]).unwrap();
    let err = open(&truncated, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::NotNpz { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated.npz"), "{err}");

    let text = dir.path().join("text.npz");
    std::fs::write(&text, "this is not a zip archive at all").unwrap();
    let err = open(&text, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::NotNpz { .. }), "{err:?}");
    assert!(err.to_string().contains("text.npz"), "{err}");

    let missing = dir.path().join("missing.npz");
    let err = open(&missing, &OpenOptions::default()).unwrap_err();
    assert!(err.to_string().contains("missing.npz"), "{err}");
}

#[test]
fn multi_label_and_count_mismatch_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("multi.npz");
    let mut members = medmnist_like(&p, [4, 2, 2], (2, 2), |_| 0);
    members[1].1 = npy("|u1", &[4, 3], &[0; 12], false);
    write_npz(&p, &members);
    let msg = open(&p, &OpenOptions::default()).unwrap_err().to_string();
    assert!(
        msg.contains("multi-label not supported yet") && msg.contains("train_labels"),
        "{msg}"
    );

    let p = dir.path().join("mismatch.npz");
    let mut members = medmnist_like(&p, [4, 2, 2], (2, 2), |_| 0);
    members[3].1 = npy("|u1", &[3, 1], &[0, 1, 0], false);
    write_npz(&p, &members);
    let msg = open(&p, &OpenOptions::default()).unwrap_err().to_string();
    assert!(
        msg.contains("mismatch.npz") && msg.contains("val_labels"),
        "{msg}"
    );
    assert!(
        msg.contains("3 labels") && msg.contains("2 images"),
        "{msg}"
    );
}

#[test]
fn bad_arrays_are_refused_with_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, usize, Vec<u8>, &str)> = vec![
        (
            "fortran",
            0,
            npy("|u1", &[4, 2, 2], &[0; 16], true),
            "Fortran",
        ),
        (
            "float_images",
            0,
            npy("<f4", &[4, 1, 1], &[0; 16], false),
            "expected uint8",
        ),
        (
            "volume",
            0,
            npy("|u1", &[4, 2, 2, 2], &[0; 32], false),
            "3-D volumes",
        ),
        (
            "short_data",
            0,
            npy("|u1", &[4, 2, 2], &[0; 15], false),
            "truncated",
        ),
        (
            "negative",
            1,
            npy("<i8", &[4], &(-1i64).to_le_bytes().repeat(4), false),
            "label -1",
        ),
    ];
    for (name, member, bytes, expected) in cases {
        let p = dir.path().join(format!("{name}.npz"));
        let mut members = medmnist_like(&p, [4, 2, 2], (2, 2), |_| 0);
        members[member].1 = bytes;
        write_npz(&p, &members);
        let msg = open(&p, &OpenOptions::default()).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("{name}.npz")) && msg.contains(expected),
            "{name}: {msg}"
        );
        assert!(msg.contains(members[member].0), "{name}: {msg}");
    }
}

#[test]
fn rgb_images_int64_labels_and_class_names() {
    let dir = tempfile::tempdir().unwrap();
    // RGB images (N, H, W, 3) with (N,) int64 labels over 3 classes: numeric names.
    let p = dir.path().join("rgb.npz");
    let mut members = Vec::new();
    for (split, n) in [("train", 6usize), ("val", 3), ("test", 3)] {
        let img: Vec<u8> = (0..n * 2 * 2 * 3).map(|i| i as u8).collect();
        let lab: Vec<u8> = (0..n as i64).flat_map(|i| (i % 3).to_le_bytes()).collect();
        members.push((
            format!("{split}_images"),
            npy("|u1", &[n, 2, 2, 3], &img, false),
        ));
        members.push((format!("{split}_labels"), npy("<i8", &[n], &lab, false)));
    }
    let refs: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    write_npz(&p, &refs);
    let s = open(&p, &OpenOptions::default()).unwrap();
    assert_eq!(s.classes, vec!["0", "1", "2"]);
    assert_eq!(s.train.labels(), vec![0, 1, 2, 0, 1, 2]);
    let img = s.train.load(1).unwrap();
    assert_eq!((img.width, img.height, img.channels), (2, 2, 3));
    assert_eq!(img.pixels[0], 12.0);
    // Binary mode with 3 classes is refused.
    let opts = OpenOptions {
        mode: Some(LabelMode::Binary),
        ..OpenOptions::default()
    };
    let msg = open(&p, &opts).unwrap_err().to_string();
    assert!(
        msg.starts_with("binary mode needs exactly 2 classes, found 3 in "),
        "{msg}"
    );
    assert!(msg.ends_with("rgb.npz: [0, 1, 2]"), "{msg}");

    // A sidecar names the classes.
    std::fs::write(
        dir.path().join("rgb.classes.json"),
        r#"["cyst", "normal", "tumour"]"#,
    )
    .unwrap();
    assert_eq!(
        open(&p, &OpenOptions::default()).unwrap().classes,
        vec!["cyst", "normal", "tumour"]
    );
    std::fs::write(dir.path().join("rgb.classes.json"), r#"["only", "two"]"#).unwrap();
    let msg = open(&p, &OpenOptions::default()).unwrap_err().to_string();
    assert!(
        msg.contains("rgb.classes.json") && msg.contains("label 2"),
        "{msg}"
    );

    // Built-in MedMNIST names, also for MedMNIST+ size suffixes.
    let b = dir.path().join("breastmnist_64.npz");
    medmnist_like(&b, [4, 2, 2], (2, 2), |i| (i % 2) as u8);
    assert_eq!(
        open(&b, &OpenOptions::default()).unwrap().classes,
        vec!["malignant", "normal, benign"]
    );
    assert_eq!(
        medai_data::medmnist_class_names("PneumoniaMNIST"),
        Some(&["normal", "pneumonia"][..])
    );
    assert_eq!(medai_data::medmnist_class_names("chestmnist"), None);
}

#[test]
fn single_class_npz_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("one.npz");
    medmnist_like(&p, [4, 2, 2], (2, 2), |_| 0);
    let err = open(&p, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::TooFewClasses { found: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("one.npz"), "{err}");
}
