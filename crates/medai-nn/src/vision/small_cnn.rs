//! A small, fast CNN for 28–64 px images: `[conv3×3 → BN → ReLU (→ max-pool)] × blocks`, global
//! average pooling, dropout, linear head.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::prelude::*;

/// One convolution block: conv 3×3 (same padding, no bias) → batch norm → ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    bn: BatchNorm,
    act: Relu,
}

impl ConvBnRelu {
    /// A block mapping `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        ConvBnRelu {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
            act: Relu::new(),
        }
    }

    /// Apply the block (`act` is the ReLU that [`crate::kernels::conv_bn`] applies).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::kernels::conv_bn(&self.conv, &self.bn, x, true)
    }
}

/// The small CNN.
#[derive(Module, Debug)]
pub struct SmallCnn {
    blocks: Vec<ConvBnRelu>,
    pool: MaxPool2d,
    dropout: Dropout,
    head: Linear,
    /// Number of conv layers per stage (pooling after each stage but the last).
    per_stage: usize,
}

impl SmallCnn {
    /// Build with the given stage widths (e.g. `[32, 64, 128]`) and convs per stage.
    pub fn new(
        in_channels: usize,
        widths: &[usize],
        per_stage: usize,
        dropout: f64,
        outputs: usize,
        device: &Device,
    ) -> Self {
        let mut blocks = Vec::new();
        let mut cin = in_channels;
        for &w in widths {
            for _ in 0..per_stage.max(1) {
                blocks.push(ConvBnRelu::new(cin, w, device));
                cin = w;
            }
        }
        SmallCnn {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dropout: DropoutConfig::new(dropout).init(),
            head: LinearConfig::new(cin, outputs).init(device),
            per_stage: per_stage.max(1),
        }
    }

    /// Logits `[batch, outputs]` for images `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.classify(self.feature_map(x))
    }

    /// The last convolutional feature map `[batch, channels, h, w]` (the Grad-CAM target layer).
    pub fn feature_map(&self, mut x: Tensor<4>) -> Tensor<4> {
        let stages = self.blocks.len() / self.per_stage;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            let end_of_stage = (i + 1) % self.per_stage == 0;
            if end_of_stage && (i + 1) / self.per_stage < stages {
                x = crate::kernels::max_pool2d(&self.pool, x);
            }
        }
        x
    }

    /// Logits from a feature map: global average pooling, dropout, linear head.
    pub fn classify(&self, fmap: Tensor<4>) -> Tensor<2> {
        let x = super::global_avg_pool(fmap);
        self.head.forward(self.dropout.forward(x))
    }
}

impl SmallCnn {
    /// Freeze all parameters but the head.
    pub fn freeze_backbone(self) -> Self {
        let head = self.head.clone();
        let mut m = burn::module::Module::freeze(self);
        m.head = head;
        m
    }
}
