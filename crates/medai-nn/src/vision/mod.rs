//! Image classification networks: a small CNN, ResNet-18/50, VGG16 and DenseNet-121, behind one
//! [`ImageModel`] built from a serialisable [`ArchConfig`] (which the bundle records).

pub mod densenet;
pub mod resnet;
pub mod small_cnn;
pub mod vgg;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The architectures medai can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Small CNN (conv 32/64/128 + BN, GAP, linear): the fast default for 28–64 px.
    SmallCnn,
    /// ResNet-18.
    Resnet18,
    /// ResNet-50.
    Resnet50,
    /// VGG16 convolutions + global-average-pooled head.
    Vgg16,
    /// DenseNet-121.
    Densenet121,
}

impl Arch {
    /// Parse a CLI name (`small-cnn`, `resnet18`, `resnet50`, `vgg16`, `densenet121`).
    pub fn parse(s: &str) -> Option<Arch> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "small-cnn" | "smallcnn" | "cnn" => Some(Arch::SmallCnn),
            "resnet18" | "resnet-18" => Some(Arch::Resnet18),
            "resnet50" | "resnet-50" => Some(Arch::Resnet50),
            "vgg16" | "vgg-16" => Some(Arch::Vgg16),
            "densenet121" | "densenet-121" => Some(Arch::Densenet121),
            _ => None,
        }
    }
    /// Names accepted by [`Arch::parse`].
    pub const NAMES: &'static str = "small-cnn, resnet18, resnet50, vgg16, densenet121";
}

/// Everything needed to rebuild a network (stored in the bundle manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// Which network.
    pub arch: Arch,
    /// Input channels (1 grey, 3 RGB).
    pub in_channels: usize,
    /// Number of outputs: 1 for binary (sigmoid), K for K-class (softmax).
    pub outputs: usize,
    /// Small-image stem for ResNet/DenseNet (3×3 stride-1 first conv, no max-pool).
    #[serde(default)]
    pub small_stem: bool,
    /// Stage widths of the small CNN.
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    /// Convolutions per stage of the small CNN.
    #[serde(default = "one")]
    pub convs_per_stage: usize,
    /// Dropout before the head (small CNN).
    #[serde(default)]
    pub dropout: f64,
    /// Base width of ResNet stages (torchvision: 64; smaller for tests and tiny models).
    #[serde(default = "sixty_four")]
    pub base_width: usize,
}

fn sixty_four() -> usize {
    64
}

fn default_widths() -> Vec<usize> {
    vec![32, 64, 128]
}
fn one() -> usize {
    1
}

impl ArchConfig {
    /// A config with defaults for `arch`.
    pub fn new(arch: Arch, in_channels: usize, outputs: usize) -> Self {
        ArchConfig {
            arch,
            in_channels,
            outputs,
            small_stem: false,
            widths: default_widths(),
            convs_per_stage: 1,
            dropout: 0.0,
            base_width: 64,
        }
    }

    /// Build the network on `device` with freshly initialised weights.
    pub fn init(&self, device: &Device) -> ImageModel {
        match self.arch {
            Arch::SmallCnn => ImageModel::SmallCnn(small_cnn::SmallCnn::new(
                self.in_channels,
                &self.widths,
                self.convs_per_stage,
                self.dropout,
                self.outputs,
                device,
            )),
            Arch::Resnet18 => ImageModel::ResNet(resnet::ResNet::with_width(
                18,
                self.in_channels,
                self.small_stem,
                self.base_width,
                self.outputs,
                device,
            )),
            Arch::Resnet50 => ImageModel::ResNet(resnet::ResNet::with_width(
                50,
                self.in_channels,
                self.small_stem,
                self.base_width,
                self.outputs,
                device,
            )),
            Arch::Vgg16 => ImageModel::Vgg(vgg::Vgg16::new(self.in_channels, self.outputs, device)),
            Arch::Densenet121 => ImageModel::DenseNet(densenet::DenseNet::new121(
                self.in_channels,
                self.small_stem,
                self.outputs,
                device,
            )),
        }
    }

    /// Forward FLOPs per image (multiply-add = 2 FLOPs) of the convolutions and linear layers,
    /// for a `h`×`w` input; used to express throughput as a fraction of peak.
    pub fn small_cnn_flops(&self, h: usize, w: usize) -> f64 {
        let mut flops = 0.0;
        let (mut h, mut w, mut cin) = (h, w, self.in_channels);
        let stages = self.widths.len();
        for (s, &c) in self.widths.iter().enumerate() {
            for _ in 0..self.convs_per_stage.max(1) {
                flops += 2.0 * (h * w * 9 * cin * c) as f64;
                cin = c;
            }
            if s + 1 < stages {
                h /= 2;
                w /= 2;
            }
        }
        flops + 2.0 * (cin * self.outputs) as f64
    }
}

/// An image classifier: any of the supported architectures.
// Built once per run; the variants' size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ImageModel {
    /// The small CNN.
    SmallCnn(small_cnn::SmallCnn),
    /// ResNet-18/50.
    ResNet(resnet::ResNet),
    /// VGG16.
    Vgg(vgg::Vgg16),
    /// DenseNet-121.
    DenseNet(densenet::DenseNet),
}

impl ImageModel {
    /// Logits `[batch, outputs]` for images `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            ImageModel::SmallCnn(m) => m.forward(x),
            ImageModel::ResNet(m) => m.forward(x),
            ImageModel::Vgg(m) => m.forward(x),
            ImageModel::DenseNet(m) => m.forward(x),
        }
    }

    /// The last convolutional feature map `[batch, channels, h, w]`: the layer Grad-CAM explains.
    /// `forward(x) == classify(feature_map(x))`.
    pub fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            ImageModel::SmallCnn(m) => m.feature_map(x),
            ImageModel::ResNet(m) => m.feature_map(x),
            ImageModel::Vgg(m) => m.feature_map(x),
            ImageModel::DenseNet(m) => m.feature_map(x),
        }
    }

    /// Logits `[batch, outputs]` from a [`feature_map`](Self::feature_map).
    pub fn classify(&self, fmap: Tensor<4>) -> Tensor<2> {
        match self {
            ImageModel::SmallCnn(m) => m.classify(fmap),
            ImageModel::ResNet(m) => m.classify(fmap),
            ImageModel::Vgg(m) => m.classify(fmap),
            ImageModel::DenseNet(m) => m.classify(fmap),
        }
    }
}

/// Global average pooling `[b, c, h, w] → [b, c]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([b, c])
}

impl ImageModel {
    /// Freeze every parameter except the classification head (transfer learning), or unfreeze all.
    pub fn freeze_except_head(self, freeze: bool) -> Self {
        use burn::module::Module;
        if !freeze {
            return self.unfreeze();
        }
        match self {
            ImageModel::SmallCnn(m) => ImageModel::SmallCnn(m.freeze_backbone()),
            ImageModel::ResNet(m) => ImageModel::ResNet(m.freeze_backbone()),
            ImageModel::Vgg(m) => ImageModel::Vgg(m.freeze_backbone()),
            ImageModel::DenseNet(m) => ImageModel::DenseNet(m.freeze_backbone()),
        }
    }
}

impl ImageModel {
    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        burn::module::Module::num_params(self)
    }
    /// An inference-mode copy (no autodiff, batch norm on running statistics, no dropout).
    pub fn inference(&self) -> Self {
        burn::module::Module::valid(self)
    }
}
