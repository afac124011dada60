//! ResNet-18 / ResNet-50 (He et al. 2016) with torchvision's parameter names, so torchvision
//! state dicts load directly (`conv1`, `bn1`, `layer1.0.conv1`, …, `fc`; `downsample.0/1` are
//! remapped to `downsample.conv/bn` on import). A small-image stem (3×3 stride-1 conv, no
//! max-pool) suits 28–64 px inputs such as MedMNIST.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .init(device)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// The 1×1 projection shortcut (torchvision's `downsample` sequential).
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

impl Downsample {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Downsample {
            conv: conv(cin, cout, 1, stride, device),
            bn: bn(cout, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::kernels::conv_bn(&self.conv, &self.bn, x, false)
    }
}

/// A residual block: basic (two 3×3) for ResNet-18/34, bottleneck (1×1, 3×3, 1×1) for ResNet-50+.
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Option<Conv2d>,
    bn3: Option<BatchNorm>,
    downsample: Option<Downsample>,
    act: Relu,
}

impl Block {
    fn basic(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Block {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: bn(cout, device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: bn(cout, device),
            conv3: None,
            bn3: None,
            downsample: (stride != 1 || cin != cout)
                .then(|| Downsample::new(cin, cout, stride, device)),
            act: Relu::new(),
        }
    }

    fn bottleneck(cin: usize, width: usize, stride: usize, device: &Device) -> Self {
        let cout = width * 4;
        Block {
            conv1: conv(cin, width, 1, 1, device),
            bn1: bn(width, device),
            conv2: conv(width, width, 3, stride, device),
            bn2: bn(width, device),
            conv3: Some(conv(width, cout, 1, 1, device)),
            bn3: Some(bn(cout, device)),
            downsample: (stride != 1 || cin != cout)
                .then(|| Downsample::new(cin, cout, stride, device)),
            act: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.forward(x.clone()),
            None => x.clone(),
        };
        use crate::kernels::conv_bn;
        let mut y = conv_bn(&self.conv1, &self.bn1, x, true);
        let bottleneck = self.conv3.is_some();
        y = conv_bn(&self.conv2, &self.bn2, y, bottleneck);
        if let (Some(c3), Some(b3)) = (&self.conv3, &self.bn3) {
            y = conv_bn(c3, b3, y, false);
        }
        self.act.forward(y + identity)
    }
}

/// ResNet backbone + linear head.
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    maxpool: Option<MaxPool2d>,
    layer1: Vec<Block>,
    layer2: Vec<Block>,
    layer3: Vec<Block>,
    layer4: Vec<Block>,
    fc: Linear,
    act: Relu,
}

impl ResNet {
    /// ResNet with `depth` 18 or 50 (others: 34 basic, 101 bottleneck are accepted too).
    pub fn new(
        depth: usize,
        in_channels: usize,
        small_stem: bool,
        outputs: usize,
        device: &Device,
    ) -> Self {
        Self::with_width(depth, in_channels, small_stem, 64, outputs, device)
    }

    /// ResNet whose stage widths are `base × [1, 2, 4, 8]` (torchvision: base 64).
    pub fn with_width(
        depth: usize,
        in_channels: usize,
        small_stem: bool,
        base: usize,
        outputs: usize,
        device: &Device,
    ) -> Self {
        let (counts, bottleneck) = match depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            _ => ([3, 4, 23, 3], true),
        };
        let widths = [base, base * 2, base * 4, base * 8];
        let expansion = if bottleneck { 4 } else { 1 };
        let mut cin = base;
        let mut layers: Vec<Vec<Block>> = Vec::new();
        for (stage, (&n, &w)) in counts.iter().zip(widths.iter()).enumerate() {
            let mut blocks = Vec::new();
            for i in 0..n {
                let stride = if i == 0 && stage > 0 { 2 } else { 1 };
                blocks.push(if bottleneck {
                    Block::bottleneck(cin, w, stride, device)
                } else {
                    Block::basic(cin, w, stride, device)
                });
                cin = w * expansion;
            }
            layers.push(blocks);
        }
        let layer4 = layers.pop().unwrap_or_default();
        let layer3 = layers.pop().unwrap_or_default();
        let layer2 = layers.pop().unwrap_or_default();
        let layer1 = layers.pop().unwrap_or_default();
        ResNet {
            conv1: if small_stem {
                conv(in_channels, base, 3, 1, device)
            } else {
                conv(in_channels, base, 7, 2, device)
            },
            bn1: bn(base, device),
            maxpool: (!small_stem).then(|| {
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init()
            }),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(cin, outputs).init(device),
            act: Relu::new(),
        }
    }

    /// Logits `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.classify(self.feature_map(x))
    }

    /// Logits from a feature map: global average pooling and the linear `fc` head.
    pub fn classify(&self, fmap: Tensor<4>) -> Tensor<2> {
        self.fc.forward(super::global_avg_pool(fmap))
    }

    /// The output of `layer4`, `[batch, channels, h, w]` (the Grad-CAM target layer).
    pub fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = crate::kernels::conv_bn(&self.conv1, &self.bn1, x, true);
        if let Some(p) = &self.maxpool {
            x = crate::kernels::max_pool2d(p, x);
        }
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x
    }
}

impl ResNet {
    /// Freeze all parameters but the head.
    pub fn freeze_backbone(self) -> Self {
        let head = self.fc.clone();
        let mut m = burn::module::Module::freeze(self);
        m.fc = head;
        m
    }
}
