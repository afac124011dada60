//! Transfer learning: torchvision-layout checkpoints made by PyTorch
//! (tests/fixtures/pretrained/make_tiny_resnet.py, make_tiny_vgg_densenet.py) load into medai's
//! ResNet-18 (`.pth` and `.safetensors`), VGG16 and DenseNet and give PyTorch's logits to 1e-4.

use medai_nn::Device;
use medai_nn::training::Network;
use medai_nn::vision::{Arch, ArchConfig};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pretrained")
        .join(name)
}

fn resnet(classes: usize) -> medai_nn::vision::ImageModel {
    let io = json("tiny_resnet18_io.json");
    let mut cfg = ArchConfig::new(Arch::Resnet18, 3, classes);
    cfg.base_width = io["base_width"].as_u64().unwrap() as usize;
    cfg.init(&Device::default())
}

fn check(file: &str) {
    let io = json("tiny_resnet18_io.json");
    let model = resnet(io["num_classes"].as_u64().unwrap() as usize);
    assert_logits(model, file, &io, |m, x| m.outputs(x));
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
    let (_, report) =
        medai_nn::weights::import_pretrained(resnet(1), &fixture("tiny_resnet18.pth")).unwrap();
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

fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_logits<M: burn::module::Module>(
    model: M,
    file: &str,
    io: &serde_json::Value,
    forward: impl Fn(&M, burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2>,
) {
    let device = Device::default();
    let (model, report) = medai_nn::weights::import_pretrained(model, &fixture(file)).unwrap();
    assert!(
        report.missing.is_empty() && report.reshaped.is_empty(),
        "{file}: missing {:?} reshaped {:?}",
        report.missing,
        report.reshaped
    );
    let model = burn::module::Module::valid(&model);
    let s: Vec<usize> = io["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let x = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(floats(&io["input"]), [s[0], s[1], s[2], s[3]]),
        &device,
    );
    let got: Vec<f32> = forward(&model, x)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    let expected = floats(&io["logits"]);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            (g - e).abs() < 1e-4,
            "{file}: logits {got:?} vs PyTorch {expected:?}"
        );
    }
}

#[test]
fn vgg16_layout_matches_pytorch() {
    let io = json("tiny_vgg16_io.json");
    let w: Vec<usize> = io["widths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let model = medai_nn::vision::vgg::Vgg16::with_widths(
        3,
        [w[0], w[1], w[2], w[3], w[4]],
        io["num_classes"].as_u64().unwrap() as usize,
        &Device::default(),
    );
    assert_logits(model, "tiny_vgg16.pth", &io, |m, x| m.forward(x));
}

#[test]
fn densenet_layout_matches_pytorch() {
    let io = json("tiny_densenet_io.json");
    let u = |k: &str| io[k].as_u64().unwrap() as usize;
    let b: Vec<usize> = io["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let model = medai_nn::vision::densenet::DenseNet::new(
        3,
        false,
        u("init_features"),
        u("growth"),
        u("bn_size"),
        [b[0], b[1], b[2], b[3]],
        u("num_classes"),
        &Device::default(),
    );
    assert_logits(model, "tiny_densenet.pth", &io, |m, x| m.forward(x));
}
