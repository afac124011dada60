//! End-to-end tests of the `medai` binary: train → eval → predict on a synthetic image folder
//! and on the real PneumoniaMNIST file, bundle integrity, resume after `kill -9`, and bad input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{err, http, medai, ok, python_check, serve_start, serve_start_with};
#[path = "../../medai-serve/tests/pg/mod.rs"]
mod pg;

/// A grey 16×16 image: class "lesion" has a bright 5×5 square at a random place, "normal" not.
fn write_png(path: &Path, lesion: bool, seed: u32) {
    let mut img = image::GrayImage::new(16, 16);
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    for p in img.pixels_mut() {
        s = s.wrapping_mul(1103515245).wrapping_add(12345);
        p.0 = [40 + ((s >> 16) % 40) as u8];
    }
    if lesion {
        let (x0, y0) = (1 + (seed % 9), 1 + ((seed / 9) % 9));
        for y in y0..y0 + 5 {
            for x in x0..x0 + 5 {
                img.put_pixel(x, y, image::Luma([230]));
            }
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

fn synthetic_folder(root: &Path, per_class: u32) {
    for i in 0..per_class {
        write_png(&root.join(format!("normal/n{i:03}.png")), false, i);
        write_png(
            &root.join(format!("lesion/sub/l{i:03}.png")),
            true,
            i + 1000,
        );
    }
}

fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "--data",
        data,
        "--out",
        out,
        "--quiet",
        "--arch",
        "small-cnn",
        "--widths",
        "8,16",
        "--convs-per-stage",
        "1",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn image_folder_train_eval_predict_and_bundle_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 60);
    let bundle = dir.path().join("m.medai");
    let (d, b) = (data.to_str().unwrap(), bundle.to_str().unwrap());
    let out = medai(&train_args(
        d,
        b,
        &[
            "--epochs",
            "12",
            "--lr",
            "3e-3",
            "--val-split",
            "0.25",
            "--patience",
            "0",
        ],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Found 90 images belonging to 2 classes (train), 30 (val)"),
        "{stderr}"
    );
    for f in [
        "manifest.json",
        "weights.safetensors",
        "model_card.md",
        "checksums.sha256",
    ] {
        assert!(bundle.join(f).is_file(), "{f} missing");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["classes"], serde_json::json!(["lesion", "normal"]));
    assert_eq!(manifest["preprocessing"]["height"], 16);
    assert!(dir.path().join("m.medai.train.jsonl").is_file());
    assert!(
        !dir.path().join("m.medai.ckpt").exists(),
        "checkpoint kept after a finished run"
    );

    // eval --format json: required keys; the bright square is learnable.
    let v: Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        b,
        "--data",
        d,
        "--split",
        "val",
        "--format",
        "json",
        "--val-split",
        "0.25",
    ]))
    .unwrap();
    for k in [
        "n",
        "auc",
        "accuracy",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "f1",
    ] {
        assert!(v.get(k).is_some(), "eval json lacks {k}: {v}");
    }
    assert_eq!(v["n"], 30);
    assert!(v["auc"].as_f64().unwrap() > 0.9, "val AUC {}", v["auc"]);

    // predict: table, json, csv.
    let f1 = data.join("lesion/sub/l000.png");
    let f2 = data.join("normal/n000.png");
    let (f1, f2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    let t = ok(&["predict", "--model", b, f1, f2]);
    assert!(t.contains("p(lesion)") && t.lines().count() == 3, "{t}");
    let j: Value =
        serde_json::from_str(&ok(&["predict", "--model", b, "--format", "json", f1, f2])).unwrap();
    let p: f64 = j[0]["probabilities"]["lesion"].as_f64().unwrap()
        + j[0]["probabilities"]["normal"].as_f64().unwrap();
    assert!((p - 1.0).abs() < 1e-5);
    let c = ok(&["predict", "--model", b, "--format", "csv", f1]);
    assert!(c.starts_with("file,p_lesion,p_normal,label\n"), "{c}");

    // A tampered bundle is refused with a message naming the part.
    let w = bundle.join("weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&w, &bytes).unwrap();
    let e = err(&["predict", "--model", b, f1]);
    assert!(
        e.contains("checksum mismatch for weights.safetensors"),
        "{e}"
    );
    // A truncated one too.
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(&["eval", "--model", b, "--data", d]);
    assert!(e.contains("checksum mismatch"), "{e}");
    // A non-bundle passed as a bundle.
    let e = err(&["predict", "--model", f2, f1]);
    assert!(
        e.contains("not a medai bundle") && e.contains("n000.png"),
        "{e}"
    );
}

#[test]
fn bad_inputs_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.medai");
    let o = out.to_str().unwrap();
    // Three classes in binary mode.
    let three = dir.path().join("three");
    for c in ["a", "b", "c"] {
        for i in 0..3 {
            write_png(&three.join(format!("{c}/{i}.png")), c == "a", i);
        }
    }
    let e = err(&train_args(
        three.to_str().unwrap(),
        o,
        &["--mode", "binary", "--epochs", "1"],
    ));
    assert!(e.contains("binary") && e.contains("3"), "{e}");
    // A single class.
    let single = dir.path().join("single");
    write_png(&single.join("only/0.png"), false, 0);
    let e = err(&train_args(single.to_str().unwrap(), o, &["--epochs", "1"]));
    assert!(e.contains("class"), "{e}");
    // A truncated PNG: error names it; with --on-bad-file skip it is listed and training goes on.
    let data = dir.path().join("trunc");
    synthetic_folder(&data, 8);
    let bad = data.join("normal/n003.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let e = err(&train_args(data.to_str().unwrap(), o, &["--epochs", "1"]));
    assert!(e.contains("n003.png"), "{e}");
    assert!(!out.exists(), "no bundle may be written on error");
    let res = medai(&train_args(
        data.to_str().unwrap(),
        o,
        &[
            "--epochs",
            "1",
            "--on-bad-file",
            "skip",
            "--val-split",
            "0.3",
        ],
    ));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped 1 unreadable file") && stderr.contains("n003.png"),
        "{stderr}"
    );
    // Missing data path, wrong npz, unknown arch, bad image size.
    let e = err(&train_args("/nonexistent/data", o, &[]));
    assert!(e.contains("/nonexistent/data"), "{e}");
    let fake = dir.path().join("fake.npz");
    std::fs::write(&fake, b"not a zip").unwrap();
    let e = err(&train_args(fake.to_str().unwrap(), o, &[]));
    assert!(e.contains("fake.npz"), "{e}");
    let e = err(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        o,
        "--arch",
        "alexnet",
    ]);
    assert!(e.contains("alexnet") && e.contains("resnet18"), "{e}");
    let e = err(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        o,
        "--img-size",
        "0x3",
    ]);
    assert!(e.contains("--img-size"), "{e}");
    // Predicting a file that is not an image.
    let txt = dir.path().join("notes.png");
    std::fs::write(&txt, b"hello").unwrap();
    let e = err(&["predict", "--model", o, txt.to_str().unwrap()]);
    assert!(e.contains("o.medai") || e.contains("notes.png"), "{e}");
}

fn shared_npz() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/medmnist/pneumoniamnist.npz");
    p.is_file().then_some(p)
}

#[test]
fn pneumoniamnist_short_run_learns() {
    let Some(npz) = shared_npz() else {
        panic!("../shared/data/medmnist/pneumoniamnist.npz is required for this test");
    };
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("p.medai");
    let b = b.to_str().unwrap();
    let n = npz.to_str().unwrap();
    let out = medai(&[
        "train",
        "--data",
        n,
        "--out",
        b,
        "--quiet",
        "--epochs",
        "2",
        "--convs-per-stage",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&ok(&[
        "eval", "--model", b, "--data", n, "--format", "json",
    ]))
    .unwrap();
    assert_eq!(v["n"], 624);
    // Two epochs of the small CNN already separate pneumonia well (full runs: bench/quickstart.sh).
    assert!(v["auc"].as_f64().unwrap() > 0.85, "test AUC {}", v["auc"]);
    let m: Value =
        serde_json::from_slice(&std::fs::read(Path::new(b).join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["classes"], serde_json::json!(["normal", "pneumonia"]));
    assert_eq!(m["dataset"]["counts"]["train"], 4708);
    // The bundle's test metrics equal what eval computes.
    assert!(
        (m["metrics"]["test"]["auc"].as_f64().unwrap() - v["auc"].as_f64().unwrap()).abs() < 1e-9
    );
}

#[test]
fn resume_after_kill_continues_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 150);
    let bundle = dir.path().join("r.medai");
    let (d, b) = (data.to_str().unwrap(), bundle.to_str().unwrap());
    let args = train_args(
        d,
        b,
        &["--epochs", "40", "--patience", "0", "--batch-size", "16"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_medai"))
        .args(&args)
        .spawn()
        .unwrap();
    let state = dir.path().join("r.medai.ckpt/state.json");
    let t0 = std::time::Instant::now();
    while !state.exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(state.exists(), "no checkpoint after the first epoch");
    assert!(!bundle.exists(), "a killed run must not leave a bundle");
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let done = saved["epoch"].as_u64().unwrap();
    assert!((1..40).contains(&done));
    let mut resumed = args.clone();
    resumed.push("--resume");
    let out = medai(&resumed);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Resuming from"), "{stderr}");
    let m: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let hist = m["training"]["history"].as_array().unwrap();
    assert_eq!(hist.len(), 40, "history must cover every epoch once");
    let epochs: Vec<u64> = hist.iter().map(|h| h["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, (1..=40).collect::<Vec<_>>());
}

#[test]
fn same_seed_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 20);
    let d = data.to_str().unwrap();
    let mut weights = Vec::new();
    for run in ["a", "b"] {
        let b = dir.path().join(format!("{run}.medai"));
        ok(&train_args(
            d,
            b.to_str().unwrap(),
            &["--epochs", "3", "--seed", "7"],
        ));
        weights.push(std::fs::read(b.join("weights.safetensors")).unwrap());
    }
    assert!(
        weights[0] == weights[1],
        "two runs with --seed 7 gave different weights"
    );
    let c = dir.path().join("c.medai");
    ok(&train_args(
        d,
        c.to_str().unwrap(),
        &["--epochs", "3", "--seed", "8"],
    ));
    assert!(std::fs::read(c.join("weights.safetensors")).unwrap() != weights[0]);
}

#[test]
fn train_on_a_device_list_writes_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 12);
    let d = data.to_str().unwrap();
    let b = dir.path().join("two.medai");
    // The CPU twice: every step splits its batch of 8 into two shards on two threads.
    ok(&train_args(
        d,
        b.to_str().unwrap(),
        &["--epochs", "2", "--batch-size", "8", "--device", "cpu,cpu"],
    ));
    for f in ["manifest.json", "weights.safetensors", "model_card.md"] {
        assert!(b.join(f).is_file(), "{f} missing");
    }
    let m: Value =
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["training"]["device"], "cpu,cpu");
    assert_eq!(m["training"]["history"].as_array().unwrap().len(), 2);
    // The bundle serves on one device.
    let img = data.join("lesion/sub/l000.png");
    ok(&[
        "predict",
        "--model",
        b.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    // Bad lists, and a list where one device is expected: one clear line each.
    for (bad, says) in [
        ("cpu,,cpu", "empty entry"),
        ("cpu:1", "no numbered devices"),
    ] {
        let e = err(&train_args(
            d,
            b.to_str().unwrap(),
            &["--epochs", "1", "--device", bad],
        ));
        assert!(e.contains(says), "{bad}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(e.starts_with("error: "), "{e}");
    }
    let e = err(&[
        "predict",
        "--model",
        b.to_str().unwrap(),
        "--device",
        "cpu,cpu",
        img.to_str().unwrap(),
    ]);
    assert!(e.contains("one device"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

#[test]
fn datasets_fetch_uses_a_verified_local_copy() {
    let npz = shared_npz().expect("../shared/data/medmnist/pneumoniamnist.npz is required");
    let dir = npz.parent().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medai"))
        .args(["datasets", "fetch", "pneumoniamnist"])
        .env("MEDAI_DATA", dir)
        .env("MEDAI_CACHE", "/nonexistent/cache")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("MD5 verified") && stderr.contains("nothing downloaded"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .ends_with("pneumoniamnist.npz")
    );
    let e = err(&["datasets", "fetch", "imagenet"]);
    assert!(
        e.contains("unknown dataset") && e.contains("pneumoniamnist"),
        "{e}"
    );
}

/// A grey 16×16 image of mean brightness `level` with per-pixel noise.
fn write_level(path: &Path, level: u8, seed: u32) {
    let mut img = image::GrayImage::new(16, 16);
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(7);
    for p in img.pixels_mut() {
        s = s.wrapping_mul(1103515245).wrapping_add(12345);
        p.0 = [level.saturating_add(((s >> 16) % 30) as u8)];
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

#[test]
fn multiclass_with_train_val_test_folders() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (split, n) in [("train", 30), ("val", 8), ("test", 8)] {
        for (c, level) in [("dark", 20u8), ("mid", 110), ("bright", 200)] {
            for i in 0..n {
                write_level(
                    &data.join(format!("{split}/{c}/{i}.png")),
                    level,
                    i + level as u32,
                );
            }
        }
    }
    let b = dir.path().join("mc.medai");
    let (d, bs) = (data.to_str().unwrap(), b.to_str().unwrap());
    let out = medai(&train_args(
        d,
        bs,
        &[
            "--epochs",
            "10",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--augment",
            "none",
        ],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Found 90 images belonging to 3 classes (train), 24 (val), 24 (test)"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(&ok(&[
        "eval", "--model", bs, "--data", d, "--format", "json",
    ]))
    .unwrap();
    assert_eq!(v["n"], 24);
    assert_eq!(v["per_class"].as_array().unwrap().len(), 3);
    assert_eq!(v["per_class"][0]["class"], "bright");
    assert!(v["auc"].as_f64().unwrap() > 0.95, "{v}");
    assert!(v["accuracy"].as_f64().unwrap() > 0.8, "{v}");
    let m: Value =
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["label_mode"], "categorical");
    assert_eq!(m["architecture"]["outputs"], 3);
}

#[test]
fn transfer_learning_from_a_torchvision_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 12);
    let ckpt = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pretrained/tiny_resnet18.pth");
    let b = dir.path().join("tl.medai");
    let d = data.to_str().unwrap();
    let c = ckpt.to_str().unwrap();
    // Tiny ResNet-18 of the checkpoint's width, head frozen for one epoch.
    let tl = |out: &Path, epochs: &'static str| -> Output {
        let o = out.to_str().unwrap().to_string();
        let args = [
            "train",
            "--data",
            d,
            "--out",
            &o,
            "--quiet",
            "--arch",
            "resnet18",
            "--base-width",
            "8",
            "--img-size",
            "32",
            "--pretrained",
            c,
            "--freeze-backbone",
            "1",
            "--epochs",
            epochs,
        ];
        medai(&args)
    };
    let out = tl(&b, "2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Every backbone tensor is loaded; only the 5-class head (weight, bias) is replaced.
    assert!(
        stderr.contains("2 replaced for the new head, 0 not in the checkpoint"),
        "{stderr}"
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["preprocessing"]["channels"], 3,
        "pretrained RGB weights take 3 channels"
    );
    assert_eq!(
        m["preprocessing"]["normalization"]["kind"],
        "imagenet-torch"
    );
    assert_eq!(m["training"]["config"]["freeze_backbone_epochs"], 1);
    // With the backbone frozen for the whole run, its weights (and BN statistics) are exactly the
    // checkpoint's; the new head was trained.
    let frozen = dir.path().join("frozen.medai");
    let out = tl(&frozen, "1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = std::fs::read(ckpt.with_extension("safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&reference).unwrap();
    let trained = std::fs::read(frozen.join("weights.safetensors")).unwrap();
    let trained = safetensors::SafeTensors::deserialize(&trained).unwrap();
    for (ours, theirs) in [
        ("ResNet.conv1.weight", "conv1.weight"),
        ("ResNet.layer3.1.conv2.weight", "layer3.1.conv2.weight"),
        (
            "ResNet.layer2.0.bn1.running_mean",
            "layer2.0.bn1.running_mean",
        ),
    ] {
        assert_eq!(
            trained.tensor(ours).unwrap().data(),
            reference.tensor(theirs).unwrap().data(),
            "{ours} changed while frozen"
        );
    }
    assert_eq!(
        trained.tensor("ResNet.fc.weight").unwrap().shape(),
        &[64, 1]
    );
    // Without matching weights the import is refused, naming the file.
    let e = err(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--arch",
        "resnet18",
        "--pretrained",
        ckpt.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert!(e.contains("tiny_resnet18.pth"), "{e}");
}

/// The clinical evaluation contract: a CSV manifest with extra columns (subgroups), a test split,
/// `eval --report` with a target sensitivity and an abstention band, `predict --explain`.
#[test]
fn eval_report_calibration_subgroups_and_explanations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut csv = String::from("path,label,split,sex,site\n");
    for i in 0..160u32 {
        let lesion = i % 2 == 0;
        let rel = format!("img/{i:03}.png");
        write_png(&root.join(&rel), lesion, i + 7);
        let split = match i % 10 {
            0..=5 => "train",
            6 | 7 => "val",
            _ => "test",
        };
        let sex = if (i / 2) % 2 == 0 { "F" } else { "M" };
        let site = if i % 3 == 0 { "north" } else { "south" };
        let label = if lesion { "lesion" } else { "normal" };
        csv.push_str(&format!("{rel},{label},{split},{sex},{site}\n"));
    }
    let manifest = root.join("data.csv");
    std::fs::write(&manifest, csv).unwrap();
    let bundle = root.join("m.medai");
    let (d, b) = (manifest.to_str().unwrap(), bundle.to_str().unwrap());
    ok(&train_args(
        d,
        b,
        &["--epochs", "10", "--lr", "3e-3", "--patience", "0"],
    ));
    let m: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let t = m["calibration"]["temperature"].as_f64().unwrap();
    assert!(t > 0.0 && m["calibration"]["fitted_on"] == "val", "{m}");
    assert!(
        m["calibration"]["nll_after"].as_f64().unwrap()
            <= m["calibration"]["nll_before"].as_f64().unwrap() + 1e-12
    );
    assert!(
        m["metrics"]["test"]["auc_ci"].is_array(),
        "{}",
        m["metrics"]
    );
    let card = std::fs::read_to_string(bundle.join("model_card.md")).unwrap();
    for s in [
        "## Intended use",
        "ROC AUC (95% CI",
        "## Calibration",
        "T = ",
        "## Known limits",
    ] {
        assert!(card.contains(s), "model card lacks {s:?}:\n{card}");
    }

    let report = root.join("report");
    let r = report.to_str().unwrap();
    let out = ok(&[
        "eval",
        "--model",
        b,
        "--data",
        d,
        "--format",
        "json",
        "--report",
        r,
        "--target-sensitivity",
        "0.95",
        "--abstain",
        "0.4,0.6",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    for k in [
        "n",
        "auc",
        "auc_ci",
        "pr_auc",
        "brier",
        "ece",
        "mcc",
        "balanced_accuracy",
        "operating_points",
        "accuracy",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "f1",
    ] {
        assert!(v.get(k).is_some(), "eval json lacks {k}: {v}");
    }
    assert_eq!(v["n"], 32);
    let ci = v["auc_ci"].as_array().unwrap();
    let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
    let auc = v["auc"].as_f64().unwrap();
    assert!(lo <= auc && auc <= hi && hi <= 1.0 && lo >= 0.0, "{v}");
    let ops = v["operating_points"].as_object().unwrap();
    for name in ["default", "youden", "sensitivity>=0.95"] {
        let op = &ops[name];
        for k in ["threshold", "sensitivity", "specificity", "ppv", "npv"] {
            assert!(op[k].is_number(), "{name} lacks {k}: {op}");
        }
    }
    assert_eq!(ops["sensitivity>=0.95"]["chosen_on"], "val");
    assert_eq!(ops["default"]["threshold"], 0.5);
    // Subgroups from the manifest's extra columns.
    let groups = v["subgroups"].as_array().expect("subgroups");
    let names: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "{}={}",
                g["attribute"].as_str().unwrap(),
                g["group"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["sex=F", "sex=M", "site=north", "site=south"]);
    let n_sex: u64 = groups[..2].iter().map(|g| g["n"].as_u64().unwrap()).sum();
    assert_eq!(n_sex, 32);
    assert!(v["abstention"]["referred"].is_number());

    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    for s in [
        "<svg",
        "ROC curve",
        "Precision–recall curve",
        "Reliability diagram",
        "Subgroups",
        "Operating points",
        "Referral to a human",
    ] {
        assert!(html.contains(s), "report lacks {s:?}");
    }
    // Self-contained: nothing is fetched (the only URLs are SVG namespace names).
    for needle in ["src=\"http", "href=\"http", "url(http", "<script", "<link"] {
        assert!(
            !html.contains(needle),
            "report must be offline: found {needle}"
        );
    }
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(report.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["summary"]["auc"], v["auc"]);
    assert!(metrics["evaluation"]["binary"]["roc"].is_array());

    // predict --explain writes one overlay per image; --abstain 0,1 refers everything.
    let f1 = root.join("img/000.png");
    let f2 = root.join("img/001.png");
    let ex = root.join("ex");
    let j: Value = serde_json::from_str(&ok(&[
        "predict",
        "--model",
        b,
        "--format",
        "json",
        "--explain",
        "--explain-dir",
        ex.to_str().unwrap(),
        f1.to_str().unwrap(),
        f2.to_str().unwrap(),
    ]))
    .unwrap();
    for (i, stem) in ["000", "001"].iter().enumerate() {
        let p = ex.join(format!("{stem}.gradcam.png"));
        assert_eq!(j[i]["explanation"], p.to_str().unwrap());
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (256, 256));
    }
    let j: Value = serde_json::from_str(&ok(&[
        "predict",
        "--model",
        b,
        "--format",
        "json",
        "--abstain",
        "0,1",
        f1.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(j[0]["label"], "refer");
    let e = err(&[
        "predict",
        "--model",
        b,
        "--abstain",
        "0.7,0.2",
        f1.to_str().unwrap(),
    ]);
    assert!(e.contains("--abstain") && e.contains("LOW"), "{e}");
}

fn shared(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(sub)
}

/// `dicom to-npy` writes pydicom's array (stored values or HU) byte-for-byte as the oracle `.npy`;
/// `dicom info`, `to-png`, `nifti info/to-png` and `deid dicom` work end to end.
#[test]
fn dicom_nifti_and_deid_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = shared("dicom");
    let out = dir.path().join("a.npy");
    for name in [
        "CT_small",
        "emri_small_jpeg_ls_lossless",
        "US1_J2KR",
        "liver",
    ] {
        let dcm = d.join(format!("{name}.dcm"));
        ok(&[
            "dicom",
            "to-npy",
            dcm.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let oracle = std::fs::read(d.join(format!("{name}.pixel_array.npy"))).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), oracle, "{name}");
    }
    let dcm = d.join("CT_small.dcm");
    ok(&[
        "dicom",
        "to-npy",
        "--hu",
        dcm.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(d.join("CT_small.modality_lut.npy")).unwrap()
    );
    let info: Value =
        serde_json::from_str(&ok(&["dicom", "info", "--json", dcm.to_str().unwrap()])).unwrap();
    assert_eq!(
        info["pixel_spacing_mm"],
        serde_json::json!([0.661468, 0.661468])
    );
    assert_eq!(info["rescale"]["intercept"], -1024.0);
    let png = dir.path().join("ct.png");
    ok(&[
        "dicom",
        "to-png",
        dcm.to_str().unwrap(),
        png.to_str().unwrap(),
        "--window",
        "lung",
    ]);
    assert_eq!(image::open(&png).unwrap().width(), 128);
    let e = err(&[
        "dicom",
        "to-png",
        dcm.to_str().unwrap(),
        png.to_str().unwrap(),
        "--frame",
        "3",
    ]);
    assert!(e.contains("--frame 3") && e.contains("1 frame"), "{e}");

    let nii = shared("nifti").join("example_nifti2.nii.gz");
    let v: Value = serde_json::from_str(&ok(&["nifti", "info", nii.to_str().unwrap()])).unwrap();
    assert_eq!(v["nifti_version"], 2);
    assert_eq!(v["shape"], serde_json::json!([32, 20, 12, 2]));
    let slices = dir.path().join("slices");
    ok(&[
        "nifti",
        "to-png",
        nii.to_str().unwrap(),
        slices.to_str().unwrap(),
        "--range",
        "0:3",
    ]);
    assert_eq!(std::fs::read_dir(&slices).unwrap().count(), 3);

    // De-identification: a key is required; the output keeps the pixels and drops the name.
    let src = d.join("MR_small.dcm");
    let anon = dir.path().join("anon.dcm");
    let e = err(&[
        "deid",
        "dicom",
        src.to_str().unwrap(),
        anon.to_str().unwrap(),
    ]);
    assert!(e.contains("key"), "{e}");
    let key = dir.path().join("key");
    std::fs::write(&key, b"0123456789abcdef-test-key").unwrap();
    ok(&[
        "deid",
        "dicom",
        src.to_str().unwrap(),
        anon.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    let orig = std::fs::read(&src).unwrap();
    let new = std::fs::read(&anon).unwrap();
    let name = b"CompressedSamples^MR1";
    assert!(
        orig.windows(name.len()).any(|w| w == name),
        "fixture has the name"
    );
    assert!(
        !new.windows(name.len()).any(|w| w == name),
        "patient name survived"
    );
    ok(&[
        "dicom",
        "to-npy",
        anon.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(d.join("MR_small.pixel_array.npy")).unwrap(),
        "pixels changed"
    );
}

#[test]
fn serve_answers_like_predict_for_tritonclient_and_the_web_page() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 12);
    let bundle = dir.path().join("m.medai");
    let (d, b) = (data.to_str().unwrap(), bundle.to_str().unwrap());
    ok(&train_args(d, b, &["--epochs", "1", "--val-split", "0.25"]));
    let model_arg = format!("lesions={b}");
    let srv = serve_start(dir.path(), &[&model_arg]);
    let (addr, token) = (srv.addr.clone(), srv.token.clone());
    let listed = ok(&["token", "list", "--auth", srv.auth.to_str().unwrap()]);
    assert!(listed.contains("tests") && listed.contains("admin") && !listed.contains(&token));

    // /v1 predict on an upload equals `medai predict` on the same file.
    let img = data.join("lesion/sub/l003.png");
    let auth_h = format!("Bearer {token}");
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/models/lesions/predict",
        &[("Authorization", &auth_h), ("Content-Type", "image/png")],
        &std::fs::read(&img).unwrap(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let served: Value = serde_json::from_slice(&body).unwrap();
    let local: Value = serde_json::from_str(&ok(&[
        "predict",
        "--model",
        b,
        img.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(served["label"], local[0]["label"]);
    for c in ["lesion", "normal"] {
        let (x, y) = (
            served["probabilities"][c].as_f64().unwrap(),
            local[0]["probabilities"][c].as_f64().unwrap(),
        );
        assert!((x - y).abs() < 1e-6, "{c}: served {x}, predict {y}");
    }
    let (status, _) = http(&addr, "GET", "/v1/models", &[], b"");
    assert_eq!(status, 401);

    // The official Triton client (JSON and binary tensors) and the web page in Chromium.
    python_check(
        "tritonclient.http",
        &[
            "tests/serve/tritonclient_check.py",
            &addr,
            &token,
            "lesions",
        ],
    );
    python_check(
        "selenium",
        &[
            "tests/serve/page_check.py",
            &format!("http://{addr}"),
            &token,
            img.to_str().unwrap(),
        ],
    );

    // SIGTERM: graceful shutdown, then the audit chain verifies.
    srv.stop();
    let e = err(&[
        "serve",
        "--model",
        b,
        "--auth",
        dir.path().join("none.json").to_str().unwrap(),
    ]);
    assert!(e.contains("none.json"), "{e}");
}

/// Two stateless replicas behind a (notional) load balancer write one audit chain in a shared
/// PostgreSQL database; a replica that cannot write its audit rows reports itself not ready
/// until the database is back, and no row is lost.
#[test]
fn replicas_share_a_postgres_audit_log() {
    let Some(db) = pg::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synthetic_folder(&data, 12);
    let bundle = dir.path().join("m.medai");
    let (d, b) = (data.to_str().unwrap(), bundle.to_str().unwrap());
    ok(&train_args(d, b, &["--epochs", "1", "--val-split", "0.25"]));
    let model_arg = format!("lesions={b}");
    // The hardened set-up of deploy/README.md: the table is created by its owner, and the
    // service's role may only read and append.
    let init = ok(&["audit", "init", "--audit", &db.url]);
    assert!(
        init.contains("audit table ready") && !init.contains("secret"),
        "{init}"
    );
    db.client()
        .batch_execute(
            "CREATE ROLE medai_serve LOGIN; GRANT SELECT, INSERT ON audit TO medai_serve",
        )
        .unwrap();
    let url = db.url.replace("//medai:", "//medai_serve:");
    let r1 = serve_start_with(dir.path(), &[&model_arg], &url, false);
    let r2 = serve_start_with(dir.path(), &[&model_arg], &url, true);
    assert!(
        r1.started.contains("medai_serve:***@") && !r1.started.contains("secret"),
        "{}",
        r1.started
    );
    let png = std::fs::read(data.join("lesion/sub/l003.png")).unwrap();
    let predict = |r: &common::ServeProcess| {
        let bearer = r.bearer();
        let (status, body) = http(
            &r.addr,
            "POST",
            "/v1/models/lesions/predict",
            &[("Authorization", &bearer), ("Content-Type", "image/png")],
            &png,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    };
    let ready = |r: &common::ServeProcess| http(&r.addr, "GET", "/v2/health/ready", &[], b"").0;
    for _ in 0..10 {
        predict(&r1);
        predict(&r2);
    }
    assert_eq!((ready(&r1), ready(&r2)), (200, 200));

    // The database goes away: requests are still answered, their rows kept, and the replica
    // leaves the rotation until it has written them.
    db.stop_server();
    predict(&r1);
    let t = std::time::Instant::now();
    while ready(&r1) != 503 {
        assert!(
            t.elapsed().as_secs() < 30,
            "r1 stayed ready without its audit log"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    db.start_server();
    while ready(&r1) != 200 {
        assert!(t.elapsed().as_secs() < 60, "r1 never caught up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    r1.stop();
    r2.stop();
    let e = db
        .client()
        .batch_execute("SET ROLE medai_serve; UPDATE audit SET status = 500")
        .unwrap_err();
    assert!(
        e.to_string().contains("permission denied")
            || format!("{e:?}").contains("permission denied"),
        "{e:?}"
    );
    let v = ok(&["audit", "verify", "--audit", &db.url]);
    assert!(v.contains("audit chain intact: 21 rows"), "{v}");
    assert!(!v.contains("secret"), "{v}");
}

#[test]
fn backtest_scores_baselines_and_names_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Six weeks of hourly values (February and half of March 2021) with a daily and a weekly
    // pattern and a trend.
    let mut csv = String::from("Date,Hour,Arrivals,flag\n");
    for d in 0..42u32 {
        let date = if d < 28 {
            format!("2021-02-{:02}", d + 1)
        } else {
            format!("2021-03-{:02}", d - 27)
        };
        for h in 0..24u32 {
            let v = 5 + (h / 6) + (d % 7) / 3 + d / 10;
            csv.push_str(&format!("{date},{h},{v},0\n"));
        }
    }
    let good = dir.path().join("ed.csv");
    std::fs::write(&good, &csv).unwrap();
    let g = good.to_str().unwrap();
    let base = [
        "backtest",
        "--data",
        g,
        "--target",
        "Arrivals",
        "--train-until",
        "2021-03-08",
        "--test-until",
        "2021-03-15",
        "--horizon",
        "24",
    ];
    let out = ok(&[&base[..], &["--format", "json"]].concat());
    let v: Value = serde_json::from_str(&out).unwrap();
    let models: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["seasonal-naive", "moving-average-24", "linear"]);
    for s in v.as_array().unwrap() {
        for k in ["r2", "mae", "mase", "coverage80", "coverage95"] {
            assert!(s[k].is_number(), "{k} in {s}");
        }
        assert_eq!(s["n"], 7 * 24);
    }
    // Seasonal naive (same hour last week) is off only by the trend d / 10, which steps up
    // between the two weeks on 4 of the 7 test days: MAE = 4/7.
    assert!(
        (v[0]["mae"].as_f64().unwrap() - 4.0 / 7.0).abs() < 1e-12,
        "{}",
        v[0]
    );

    // Forecast the next day and plan 8-hour shifts from 07:00.
    let out_dir = dir.path().join("fc");
    let printed = ok(&[
        "forecast",
        "--data",
        g,
        "--target",
        "Arrivals",
        "--horizon",
        "24",
        "--out",
        out_dir.to_str().unwrap(),
        "--plan",
        "staff",
        "--patients-per-staff-hour",
        "2",
    ]);
    assert!(printed.contains("shift start"), "{printed}");
    let fc = std::fs::read_to_string(out_dir.join("forecast.csv")).unwrap();
    assert_eq!(fc.lines().count(), 25);
    assert!(
        fc.lines()
            .nth(1)
            .unwrap()
            .starts_with("2021-03-15 00:00,1,"),
        "{fc}"
    );
    let plan = std::fs::read_to_string(out_dir.join("staff_plan.csv")).unwrap();
    let rows: Vec<&str> = plan.lines().collect();
    assert_eq!(rows[0], "shift_start,hours,expected,upper_95pct,staff");
    // 00–06 (part of the 23:00 shift), 07–14, 15–22, 23:00 (1 h).
    assert_eq!(rows.len(), 5, "{plan}");
    assert!(rows[2].starts_with("2021-03-15 07:00,8,"), "{plan}");
    assert!(
        std::fs::read_to_string(out_dir.join("forecast.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    // Bad rows are named (row 54 = day 3, 05:00).
    let bad = dir.path().join("bad.csv");
    let b = bad.to_str().unwrap();
    for (from, to, want) in [
        (
            "2021-02-03,5,",
            "2021-02-31,5,",
            "\"2021-02-31\" is not a date",
        ),
        ("2021-02-03,5,5,", "2021-02-03,5,five,", "not a number"),
        (
            "2021-02-03,5,",
            "2021-02-03,4,",
            "duplicate timestamp 2021-02-03 04:00",
        ),
    ] {
        std::fs::write(&bad, csv.replace(from, to)).unwrap();
        let mut args = base.to_vec();
        args[2] = b;
        let e = err(&args);
        assert!(e.contains("row 54") && e.contains(want), "{e}");
    }
    // Too little history before the test period for a weekly lag.
    let e = err(&[
        "backtest",
        "--data",
        g,
        "--target",
        "Arrivals",
        "--train-until",
        "2021-02-03",
        "--test-until",
        "2021-03-15",
    ]);
    assert!(e.contains("needs at least"), "{e}");
}

#[test]
fn train_forecast_bundle_backtests_and_forecasts_with_future_covariates() {
    let dir = tempfile::tempdir().unwrap();
    // Six weeks of hourly counts from Monday 2021-02-01 with a daily pattern and a flag.
    let mut csv = String::from("Date,Hour,Arrivals,flag\n");
    let date = |d: u32| {
        if d < 28 {
            format!("2021-02-{:02}", d + 1)
        } else {
            format!("2021-03-{:02}", d - 27)
        }
    };
    for d in 0..42u32 {
        for h in 0..24u32 {
            let flag = (d % 7 == 5) as u32;
            let v = 2 + (h / 6) + 3 * flag + (d * 24 + h) % 5;
            csv.push_str(&format!("{},{h},{v},{flag}\n", date(d)));
        }
    }
    let data = dir.path().join("ed.csv");
    std::fs::write(&data, &csv).unwrap();
    let mut future = String::from("Date,Hour,flag\n");
    for h in 0..6 {
        future.push_str(&format!("2021-03-15,{h},0\n"));
    }
    let fut = dir.path().join("future.csv");
    std::fs::write(&fut, &future).unwrap();
    let (d, f) = (data.to_str().unwrap(), fut.to_str().unwrap());
    let bundle = dir.path().join("ed.medai");
    let b = bundle.to_str().unwrap();
    let train = |until: &'static str| {
        vec![
            "train",
            "forecast",
            "--data",
            d,
            "--target",
            "Arrivals",
            "--covariates",
            "flag",
            "--train-until",
            until,
            "--out",
            b,
            "--lookback",
            "12",
            "--horizon",
            "6",
            "--hidden",
            "4",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--quiet",
        ]
    };
    ok(&train("2021-03-08"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["task"], "forecast");
    assert_eq!(manifest["preprocessing"]["window"]["horizon"], 6);
    assert!(manifest["metrics"]["val_h1"]["coverage95"].is_number());

    // Backtest next to the baselines on the week after training.
    let bt = |h: &'static str, until: &'static str| {
        vec![
            "backtest",
            "--data",
            d,
            "--target",
            "Arrivals",
            "--covariates",
            "flag",
            "--train-until",
            until,
            "--test-until",
            "2021-03-15",
            "--horizon",
            h,
            "--model",
            b,
            "--format",
            "json",
        ]
    };
    let v: Value = serde_json::from_str(&ok(&bt("6", "2021-03-08"))).unwrap();
    let neural = &v.as_array().unwrap()[3];
    assert_eq!(neural["model"], "ed.medai");
    assert_eq!(neural["n"], 7 * 24);
    for k in ["r2", "mae", "mase", "coverage80", "coverage95"] {
        assert!(neural[k].is_number(), "{k} in {neural}");
    }
    assert!(err(&bt("7", "2021-03-08")).contains("forecasts 1 … 6 steps ahead, not 7"));
    // A test period that starts inside the training data is refused.
    assert!(err(&bt("1", "2021-03-05")).contains("trained on values up to 2021-03-07 23:00"));

    // The service takes image, text and molecule bundles; a forecast bundle is refused by name.
    let e = err(&["serve", "--model", b, "--auth", "/nonexistent/auth.json"]);
    assert!(e.contains("auth.json"), "{e}");
    let auth = dir.path().join("auth.json");
    ok(&[
        "token",
        "create",
        "--auth",
        auth.to_str().unwrap(),
        "--role",
        "predict",
        "--name",
        "t",
    ]);
    let e = err(&["serve", "--model", b, "--auth", auth.to_str().unwrap()]);
    assert!(e.contains("a \"forecast\" bundle cannot be served"), "{e}");

    // Forecast the next 6 hours; the flag's future values come from --future.
    let fc = dir.path().join("fc");
    let fc_s = fc.to_str().unwrap();
    let base = [
        "forecast", "--data", d, "--target", "Arrivals", "--model", b, "--out", fc_s,
    ];
    assert!(err(&base).contains("--future"));
    ok(&[
        &base[..],
        &["--future", f, "--plan", "staff", "--shift-hours", "6"],
    ]
    .concat());
    let out = std::fs::read_to_string(fc.join("forecast.csv")).unwrap();
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{out}");
    assert!(rows[0].starts_with("2021-03-15 00:00,1,"), "{out}");
    for r in &rows {
        let x: Vec<f64> = r.split(',').skip(2).map(|s| s.parse().unwrap()).collect();
        // point, lo80, hi80, lo95, hi95: nested intervals around a positive mean.
        assert!(
            x[0] > 0.0 && x[3] <= x[1] && x[1] <= x[2] && x[2] <= x[4],
            "{r}"
        );
    }
    assert!(fc.join("staff_plan.csv").is_file());
    // A future file without the forecast hours names the missing row.
    std::fs::write(&fut, "Date,Hour,flag\n2021-03-15,0,0\n").unwrap();
    assert!(err(&[&base[..], &["--future", f]].concat()).contains("no row for 2021-03-15 01:00"));

    // Too little history for the window, and a bad date.
    assert!(err(&train("2021-02-20")).contains("needs at least"));
    assert!(err(&train("20-02-2021")).contains("--train-until \"20-02-2021\""));
}

const ESOL_Y: &str = "measured log solubility in mols per litre";

#[test]
fn train_molecules_eval_predict_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let esol = shared("molecules/esol.csv");
    let esol = esol.to_str().unwrap();
    let b = dir.path().join("esol.medai");
    let b = b.to_str().unwrap();
    let small = [
        "--epochs",
        "3",
        "--hidden",
        "32",
        "--ffn-hidden",
        "32",
        "--quiet",
    ];
    let mut args = vec![
        "train",
        "molecules",
        "--data",
        esol,
        "--target-columns",
        ESOL_Y,
        "--split",
        "random",
        "--seed",
        "3",
        "--ensemble",
        "2",
        "--out",
        b,
    ];
    args.extend(small);
    ok(&args);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(b).join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["task"], "molecule-property");
    let card = std::fs::read_to_string(Path::new(b).join("model_card.md")).unwrap();
    assert!(
        card.contains("drug discovery") && card.contains("2 member(s)"),
        "{card}"
    );
    let splits = &manifest["training"]["splits"][0];
    let (nt, nv, ns) = (
        splits["train"].as_array().unwrap().len(),
        splits["val"].as_array().unwrap().len(),
        splits["test"].as_array().unwrap().len(),
    );
    assert_eq!((nt, nv, ns), (902, 113, 113));
    // eval on the bundle's own test split reproduces the training-time test metrics.
    let v: Value = serde_json::from_str(&ok(&[
        "eval", "--model", b, "--data", esol, "--split", "test", "--format", "json",
    ]))
    .unwrap();
    assert_eq!(v["n"], 113);
    assert_eq!(v["split"], "test");
    for k in ["rmse", "mae", "r2"] {
        let (a, t) = (
            v[k].as_f64().unwrap(),
            manifest["metrics"]["test"][k].as_f64().unwrap(),
        );
        assert!((a - t).abs() < 1e-9, "{k}: eval {a} vs training {t}");
    }
    // Three epochs of a small net already beat predicting the mean (R² > 0).
    assert!(v["r2"].as_f64().unwrap() > 0.0, "{v}");

    // predict: file order kept, invalid rows reported in place, ensemble spread given.
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "smiles\nCCO\nC1CC\nc1ccccc1O\n").unwrap();
    let pred = dir.path().join("pred.csv");
    ok(&[
        "predict",
        "--model",
        b,
        "--data",
        input.to_str().unwrap(),
        "--out",
        pred.to_str().unwrap(),
    ]);
    let mut rdr = csv::Reader::from_path(&pred).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        vec![
            "line".to_string(),
            "smiles".into(),
            ESOL_Y.into(),
            format!("{ESOL_Y}_uncertainty"),
            "error".into()
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[1][0], "3");
    assert!(rows[1][4].contains("invalid SMILES"), "{:?}", rows[1]);
    let ethanol: f64 = rows[0][2].parse().unwrap();
    let spread: f64 = rows[0][3].parse().unwrap();
    assert!(ethanol.is_finite() && spread > 0.0, "{:?}", rows[0]);

    // Served: SMILES in, the same prediction and spread as `medai predict`, over /v1 and through
    // the Triton client; an invalid SMILES is the caller's 400, naming it.
    let srv = serve_start(dir.path(), &[&format!("esol={b}")]);
    let auth = srv.bearer();
    let th = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/plain"),
    ];
    let (status, body) = http(&srv.addr, "POST", "/v1/models/esol/predict", &th, b"CCO");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        (v["prediction"][ESOL_Y].as_f64().unwrap() - ethanol).abs() < 1e-5,
        "{v}"
    );
    assert!(
        (v["uncertainty"][ESOL_Y].as_f64().unwrap() - spread).abs() < 1e-5,
        "{v}"
    );
    let (status, body) = http(&srv.addr, "POST", "/v1/models/esol/predict", &th, b"C1CC");
    assert_eq!(status, 400);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("invalid SMILES \"C1CC\""),
        "{e}"
    );
    let phenol = (
        rows[2][2].parse::<f64>().unwrap(),
        rows[2][3].parse::<f64>().unwrap(),
    );
    srv.triton_strings_check(
        dir.path(),
        "esol",
        serde_json::json!({"inputs": ["CCO", "c1ccccc1O"],
            "outputs": {"prediction": [[ethanol], [phenol.0]], "uncertainty": [[spread], [phenol.1]]}}),
    );
    srv.stop();

    // Bad input: one clear line naming the row, column or file.
    let bad = dir.path().join("bad.csv");
    let bad_s = bad.to_str().unwrap();
    let train_on = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "molecules",
            "--data",
            bad_s,
            "--out",
            "/nonexistent/x.medai",
        ];
        a.extend_from_slice(extra);
        err(&a)
    };
    std::fs::write(&bad, "smiles,y\nCCO,1.5\nC1CC,2.0\n").unwrap();
    let e = train_on(&["--target-columns", "y"]);
    assert!(
        e.contains("line 3") && e.contains("C1CC") && e.contains("--skip-invalid"),
        "{e}"
    );
    let e = train_on(&["--target-columns", "logS"]);
    assert!(
        e.contains("no column \"logS\"") && e.contains("smiles, y"),
        "{e}"
    );
    std::fs::write(&bad, "smiles,y\nCCO,1.5\nCCN,soluble\n").unwrap();
    let e = train_on(&["--target-columns", "y"]);
    assert!(
        e.contains("line 3") && e.contains("\"y\"") && e.contains("soluble"),
        "{e}"
    );
    std::fs::write(&bad, "").unwrap();
    let e = train_on(&["--target-columns", "y"]);
    assert!(e.contains("empty"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn train_molecules_scaffold_classification_and_kfold() {
    let dir = tempfile::tempdir().unwrap();
    let bbbp = shared("molecules/bbbp.csv");
    let bbbp = bbbp.to_str().unwrap();
    let b = dir.path().join("bbbp.medai");
    let b = b.to_str().unwrap();
    let out = medai(&[
        "train",
        "molecules",
        "--data",
        bbbp,
        "--target-columns",
        "p_np",
        "--split",
        "scaffold",
        "--skip-invalid",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--ffn-hidden",
        "16",
        "--quiet",
        "--out",
        b,
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // The 11 SMILES RDKit rejects are listed by line and skipped.
    assert!(log.contains("Skipped 11 invalid row(s)"), "{log}");
    assert!(log.contains("line 61: invalid SMILES"), "{log}");
    let v: Value = serde_json::from_str(&ok(&[
        "eval", "--model", b, "--data", bbbp, "--split", "test", "--format", "json",
    ]))
    .unwrap();
    assert_eq!(v["invalid_skipped"], 11);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(b).join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["label_mode"], "binary-multitask");
    let n_test = manifest["training"]["splits"][0]["test"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(v["n"].as_u64().unwrap() as usize, n_test);

    // Multi-task classification with missing labels on rules a D-MPNN must learn: "has an
    // aromatic atom" and "has chlorine" (blank for every third molecule).
    let esol = shared("molecules/esol.csv");
    let mut rdr = csv::Reader::from_path(&esol).unwrap();
    let col = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "smiles")
        .unwrap();
    let mut text = String::from("smiles,aromatic,chlorine\n");
    for (i, r) in rdr.records().enumerate() {
        let smi = r.unwrap()[col].trim().to_string();
        let arom = smi.chars().any(|c| matches!(c, 'c' | 'n' | 'o' | 's')) as u8;
        let cl = if i % 3 == 0 {
            String::new()
        } else {
            (smi.contains("Cl") as u8).to_string()
        };
        text.push_str(&format!("{smi},{arom},{cl}\n"));
    }
    let rules = dir.path().join("rules.csv");
    std::fs::write(&rules, text).unwrap();
    let rules = rules.to_str().unwrap();
    let r = dir.path().join("rules.medai");
    let r = r.to_str().unwrap();
    ok(&[
        "train",
        "molecules",
        "--data",
        rules,
        "--target-columns",
        "aromatic,chlorine",
        "--epochs",
        "20",
        "--aggregation",
        "sum",
        "--hidden",
        "32",
        "--ffn-hidden",
        "32",
        "--quiet",
        "--out",
        r,
    ]);
    let v: Value = serde_json::from_str(&ok(&[
        "eval", "--model", r, "--data", rules, "--format", "json",
    ]))
    .unwrap();
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    // The chlorine task is scored only where it has a label.
    assert!(
        tasks[1]["n"].as_u64().unwrap() < tasks[0]["n"].as_u64().unwrap(),
        "{v}"
    );
    for t in tasks {
        assert!(t["auc"].as_f64().unwrap() > 0.9, "{v}");
    }

    // k-fold: per-fold metrics with their spread; its own file has no single test split.
    let esol = esol.to_str().unwrap();
    let k = dir.path().join("kfold.medai");
    let k = k.to_str().unwrap();
    ok(&[
        "train",
        "molecules",
        "--data",
        esol,
        "--target-columns",
        ESOL_Y,
        "--folds",
        "3",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--ffn-hidden",
        "16",
        "--quiet",
        "--out",
        k,
    ]);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(k).join("manifest.json")).unwrap())
            .unwrap();
    let test = &manifest["metrics"]["test"];
    assert_eq!(test["folds"].as_array().unwrap().len(), 3);
    assert!(test["rmse_sd"].as_f64().unwrap() >= 0.0);
    let e = err(&["eval", "--model", k, "--data", esol, "--format", "json"]);
    assert!(e.contains("cross-validation"), "{e}");
}
