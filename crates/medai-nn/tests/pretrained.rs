//! Transfer learning: a torchvision-layout checkpoint made by PyTorch
//! (tests/fixtures/pretrained/make_tiny_resnet.py) loads into medai's ResNet-18 and gives
//! PyTorch's logits to 1e-4, from both the `.pth` and the `.safetensors` file.

use medai_nn::Device;
use medai_nn::training::Classifier;
use medai_nn::vision::{Arch, ArchConfig};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pretrained")
        .join(name)
}

fn io() -> (Vec<f32>, [usize; 4], Vec<f32>, usize, usize) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("tiny_resnet18_io.json")).unwrap()).unwrap();
    let f = |k: &str| {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect::<Vec<_>>()
    };
    let s: Vec<usize> = v["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    (
        f("input"),
        [s[0], s[1], s[2], s[3]],
        f("logits"),
        v["base_width"].as_u64().unwrap() as usize,
        v["num_classes"].as_u64().unwrap() as usize,
    )
}

fn check(file: &str) {
    let (input, shape, expected, base, classes) = io();
    let device = Device::default();
    let mut cfg = ArchConfig::new(Arch::Resnet18, 3, classes);
    cfg.base_width = base;
    let (model, report) =
        medai_nn::weights::import_pretrained(cfg.init(&device), &fixture(file)).unwrap();
    assert!(
        report.missing.is_empty() && report.reshaped.is_empty(),
        "missing: {:?} {:?}",
        report.missing,
        report.reshaped
    );
    let model = model.inference();
    let x =
        burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(input, shape), &device);
    let got: Vec<f32> = model
        .logits(x)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            (g - e).abs() < 1e-4,
            "{file}: logits {got:?} vs PyTorch {expected:?}"
        );
    }
}

#[test]
fn pth_state_dict_matches_pytorch() {
    check("tiny_resnet18.pth");
}

#[test]
fn safetensors_matches_pytorch() {
    check("tiny_resnet18.safetensors");
}

#[test]
fn new_head_is_left_fresh_and_backbone_loaded() {
    let (_, _, _, base, _) = io();
    let mut cfg = ArchConfig::new(Arch::Resnet18, 3, 1);
    cfg.base_width = base;
    let (_, report) = medai_nn::weights::import_pretrained(
        cfg.init(&Device::default()),
        &fixture("tiny_resnet18.pth"),
    )
    .unwrap();
    // fc.weight / fc.bias have the wrong shape for a 1-output head: skipped, everything else applied.
    assert!(report.applied > 50, "applied {}", report.applied);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    assert_eq!(report.reshaped.len(), 2, "{:?}", report.reshaped);
    assert!(
        report.reshaped.iter().all(|m| m.contains("fc.")),
        "{:?}",
        report.reshaped
    );
}

#[test]
fn wrong_architecture_is_refused() {
    let cfg = ArchConfig::new(Arch::SmallCnn, 3, 2);
    let err = medai_nn::weights::import_pretrained(
        cfg.init(&Device::default()),
        &fixture("tiny_resnet18.pth"),
    )
    .err()
    .unwrap();
    assert!(err.contains("tiny_resnet18.pth"), "{err}");
}
