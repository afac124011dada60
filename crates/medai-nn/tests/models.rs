//! Every architecture builds, runs forward to the right shape, and — with a 1000-class head —
//! has exactly torchvision's parameter count, which checks the layer layout against the reference
//! implementation. Burn counts batch-norm running statistics as module state, so the oracle is
//! torchvision's `parameters()` plus its `running_mean`/`running_var` buffers (values printed by
//! torchvision 0.29 for `resnet18()`, `resnet50()`, `densenet121()`).

use medai_nn::Device;
use medai_nn::training::Network;
use medai_nn::vision::{Arch, ArchConfig};

fn forward_shape(cfg: &ArchConfig, size: usize) -> [usize; 2] {
    let device = Device::default();
    let m = cfg.init(&device).inference();
    let x = burn::tensor::Tensor::<4>::ones([2, cfg.in_channels, size, size], &device);
    m.outputs(x).dims()
}

#[test]
fn torchvision_parameter_counts() {
    let device = Device::default();
    // (arch, torchvision parameters + batch-norm running statistics, 1000-class head)
    for (arch, expected) in [
        (Arch::Resnet18, 11_689_512 + 9_600),
        (Arch::Resnet50, 25_557_032 + 53_120),
        (Arch::Densenet121, 7_978_856 + 83_648),
    ] {
        let n = ArchConfig::new(arch, 3, 1000).init(&device).param_count();
        assert_eq!(n, expected, "{arch:?}");
    }
    // VGG16: torchvision's 13 convolutions (14,714,688 parameters) + a 512→1000 linear head on
    // global average pooling (Keras `include_top=False` + a new head).
    let n = ArchConfig::new(Arch::Vgg16, 3, 1000)
        .init(&device)
        .param_count();
    assert_eq!(n, 14_714_688 + 512 * 1000 + 1000);
}

#[test]
fn every_architecture_runs_forward() {
    let mut small = ArchConfig::new(Arch::SmallCnn, 1, 1);
    small.convs_per_stage = 2;
    assert_eq!(forward_shape(&small, 28), [2, 1]);
    let mut r18 = ArchConfig::new(Arch::Resnet18, 3, 3);
    r18.small_stem = true;
    r18.base_width = 16;
    assert_eq!(forward_shape(&r18, 28), [2, 3]);
    let mut r50 = ArchConfig::new(Arch::Resnet50, 1, 2);
    r50.base_width = 8;
    assert_eq!(forward_shape(&r50, 64), [2, 2]);
    assert_eq!(
        forward_shape(&ArchConfig::new(Arch::Vgg16, 3, 4), 32),
        [2, 4]
    );
    let mut dn = ArchConfig::new(Arch::Densenet121, 1, 5);
    dn.small_stem = true;
    assert_eq!(forward_shape(&dn, 16), [2, 5]);
}

#[test]
fn arch_names_parse() {
    for (s, a) in [
        ("small-cnn", Arch::SmallCnn),
        ("ResNet18", Arch::Resnet18),
        ("resnet-50", Arch::Resnet50),
        ("vgg16", Arch::Vgg16),
        ("densenet121", Arch::Densenet121),
    ] {
        assert_eq!(Arch::parse(s), Some(a));
    }
    assert_eq!(Arch::parse("alexnet"), None);
}
