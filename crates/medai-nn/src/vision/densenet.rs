//! DenseNet-121 (Huang et al. 2017), torchvision layout: `features.conv0/norm0`, four dense
//! blocks (6, 12, 24, 16 layers, growth rate 32, bottleneck 4×), transitions halving channels
//! and resolution, `features.norm5`, then a linear `classifier`. torchvision's
//! `denseblockN.denselayerK` names are remapped to vector indices on import.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
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

/// BN-ReLU-conv1×1-BN-ReLU-conv3×3 producing `growth` new channels.
#[derive(Module, Debug)]
pub struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
    act: Relu,
}

/// BN-ReLU-conv1×1-avgpool 2×2.
#[derive(Module, Debug)]
pub struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
    pool: AvgPool2d,
    act: Relu,
}

/// The convolutional trunk (torchvision's `features`).
#[derive(Module, Debug)]
pub struct DenseFeatures {
    conv0: Conv2d,
    norm0: BatchNorm,
    pool0: Option<MaxPool2d>,
    denseblock1: Vec<DenseLayer>,
    transition1: Transition,
    denseblock2: Vec<DenseLayer>,
    transition2: Transition,
    denseblock3: Vec<DenseLayer>,
    transition3: Transition,
    denseblock4: Vec<DenseLayer>,
    norm5: BatchNorm,
    act: Relu,
}

/// DenseNet-121.
#[derive(Module, Debug)]
pub struct DenseNet {
    features: DenseFeatures,
    classifier: Linear,
}

impl DenseNet {
    /// DenseNet-121 for `in_channels` inputs and `outputs` logits; `small_stem` uses a 3×3
    /// stride-1 first conv and no max-pool (for 28–64 px images).
    pub fn new121(in_channels: usize, small_stem: bool, outputs: usize, device: &Device) -> Self {
        Self::new(
            in_channels,
            small_stem,
            64,
            32,
            4,
            [6, 12, 24, 16],
            outputs,
            device,
        )
    }

    /// A DenseNet of torchvision's layout with the given initial features, growth rate,
    /// bottleneck size and layers per block (DenseNet-121: 64, 32, 4, `[6, 12, 24, 16]`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: usize,
        small_stem: bool,
        init_features: usize,
        growth: usize,
        bn_size: usize,
        blocks: [usize; 4],
        outputs: usize,
        device: &Device,
    ) -> Self {
        let mut c = init_features;
        let block = |n: usize, c: &mut usize| {
            (0..n)
                .map(|_| {
                    let layer = DenseLayer {
                        norm1: BatchNormConfig::new(*c).init(device),
                        conv1: conv(*c, bn_size * growth, 1, 1, device),
                        norm2: BatchNormConfig::new(bn_size * growth).init(device),
                        conv2: conv(bn_size * growth, growth, 3, 1, device),
                        act: Relu::new(),
                    };
                    *c += growth;
                    layer
                })
                .collect::<Vec<_>>()
        };
        let trans = |c: &mut usize| {
            let t = Transition {
                norm: BatchNormConfig::new(*c).init(device),
                conv: conv(*c, *c / 2, 1, 1, device),
                pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                act: Relu::new(),
            };
            *c /= 2;
            t
        };
        let conv0 = if small_stem {
            conv(in_channels, init_features, 3, 1, device)
        } else {
            conv(in_channels, init_features, 7, 2, device)
        };
        let denseblock1 = block(blocks[0], &mut c);
        let transition1 = trans(&mut c);
        let denseblock2 = block(blocks[1], &mut c);
        let transition2 = trans(&mut c);
        let denseblock3 = block(blocks[2], &mut c);
        let transition3 = trans(&mut c);
        let denseblock4 = block(blocks[3], &mut c);
        let features = DenseFeatures {
            conv0,
            norm0: BatchNormConfig::new(init_features).init(device),
            pool0: (!small_stem).then(|| {
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init()
            }),
            denseblock1,
            transition1,
            denseblock2,
            transition2,
            denseblock3,
            transition3,
            denseblock4,
            norm5: BatchNormConfig::new(c).init(device),
            act: Relu::new(),
        };
        DenseNet {
            features,
            classifier: LinearConfig::new(c, outputs).init(device),
        }
    }

    /// Logits `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.classify(self.feature_map(x))
    }

    /// Logits from a feature map: global average pooling and the linear classifier.
    pub fn classify(&self, fmap: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(super::global_avg_pool(fmap))
    }

    /// The output of `features.norm5` + ReLU, `[batch, channels, h, w]` (the Grad-CAM target).
    pub fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        let f = &self.features;
        let mut x = crate::kernels::conv_bn(&f.conv0, &f.norm0, x, true);
        if let Some(p) = &f.pool0 {
            x = crate::kernels::max_pool2d(p, x);
        }
        let dense = |layers: &[DenseLayer], mut x: Tensor<4>| {
            for l in layers {
                let y = l.conv1.forward(l.act.forward(l.norm1.forward(x.clone())));
                let y = l.conv2.forward(l.act.forward(l.norm2.forward(y)));
                x = Tensor::cat(vec![x, y], 1);
            }
            x
        };
        let transition = |t: &Transition, x: Tensor<4>| {
            let y = crate::kernels::conv2d(&t.conv, t.act.forward(t.norm.forward(x)));
            let [_, _, h, w] = y.dims();
            if h >= 2 && w >= 2 {
                t.pool.forward(y)
            } else {
                y
            }
        };
        x = dense(&f.denseblock1, x);
        x = transition(&f.transition1, x);
        x = dense(&f.denseblock2, x);
        x = transition(&f.transition2, x);
        x = dense(&f.denseblock3, x);
        x = transition(&f.transition3, x);
        x = dense(&f.denseblock4, x);
        f.act.forward(f.norm5.forward(x))
    }
}

impl DenseNet {
    /// Freeze all parameters but the head.
    pub fn freeze_backbone(self) -> Self {
        let head = self.classifier.clone();
        let mut m = burn::module::Module::freeze(self);
        m.classifier = head;
        m
    }
}
