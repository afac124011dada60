//! VGG16 (Simonyan & Zisserman 2015), used as Keras' `VGG16(include_top=False)` is: the 13
//! convolutions of torchvision's `features` (with `features.N` indices mapped on import), then
//! global average pooling and a new linear head for the task.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

/// Channels of VGG16's conv layers; 0 marks a 2×2 max-pool.
const CFG: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

/// VGG16 backbone with a global-average-pooled linear head.
#[derive(Module, Debug)]
pub struct Vgg16 {
    features: Vec<Conv2d>,
    pool: MaxPool2d,
    dropout: Dropout,
    head: Linear,
    act: Relu,
}

impl Vgg16 {
    /// Build for `in_channels` inputs and `outputs` logits.
    pub fn new(in_channels: usize, outputs: usize, device: &Device) -> Self {
        Self::with_widths(in_channels, [64, 128, 256, 512, 512], outputs, device)
    }

    /// VGG16's layout with other stage widths (VGG16: `[64, 128, 256, 512, 512]`).
    pub fn with_widths(
        in_channels: usize,
        widths: [usize; 5],
        outputs: usize,
        device: &Device,
    ) -> Self {
        let mut features = Vec::new();
        let mut cin = in_channels;
        let mut stage = 0;
        let scaled: Vec<usize> = CFG
            .iter()
            .filter_map(|&c| {
                if c == 0 {
                    stage += 1;
                    None
                } else {
                    Some(widths[stage.min(4)])
                }
            })
            .collect();
        for c in scaled {
            features.push(
                Conv2dConfig::new([cin, c], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            cin = c;
        }
        Vgg16 {
            features,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dropout: DropoutConfig::new(0.5).init(),
            head: LinearConfig::new(cin, outputs).init(device),
            act: Relu::new(),
        }
    }

    /// Logits `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.classify(self.feature_map(x))
    }

    /// The last convolutional feature map `[batch, 512, h, w]` (the Grad-CAM target layer).
    pub fn feature_map(&self, mut x: Tensor<4>) -> Tensor<4> {
        let mut convs = self.features.iter();
        for &c in CFG.iter() {
            if c == 0 {
                // Skip pools that would shrink a tiny map below 1×1.
                let [_, _, h, w] = x.dims();
                if h >= 2 && w >= 2 {
                    x = crate::kernels::max_pool2d(&self.pool, x);
                }
            } else if let Some(conv) = convs.next() {
                x = self.act.forward(crate::kernels::conv2d(conv, x));
            }
        }
        x
    }

    /// Logits from a feature map: global average pooling, dropout, linear head.
    pub fn classify(&self, fmap: Tensor<4>) -> Tensor<2> {
        self.head
            .forward(self.dropout.forward(super::global_avg_pool(fmap)))
    }
}

impl Vgg16 {
    /// Freeze all parameters but the head.
    pub fn freeze_backbone(self) -> Self {
        let head = self.head.clone();
        let mut m = burn::module::Module::freeze(self);
        m.head = head;
        m
    }
}
