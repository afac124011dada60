//! The LibTorch backend (`--features libtorch`, opt-in: it needs a local LibTorch 2.9.0) runs the
//! same networks as the default CPU backend: the same weights give the same logits and the same
//! training gradients. Built and run only with the feature, e.g.
//! `LIBTORCH_USE_PYTORCH=1 cargo nextest run --release -p medai-nn --features libtorch --test libtorch`.
#![cfg(feature = "libtorch")]

use burn::prelude::*;
use medai_nn::backend::device;
use medai_nn::training::Network;
use medai_nn::vision::{Arch, ArchConfig};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs {y}");
    }
}

/// Every trained weight's gradient, in visiting order.
struct Grads<'a>(&'a burn::tensor::Gradients, Vec<Vec<f32>>);

impl burn::module::ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.0) {
            self.1.push(values(g));
        }
    }
}

#[test]
fn libtorch_matches_the_default_backend() {
    let flex = device("cpu").unwrap();
    let tch = device("libtorch").unwrap();
    flex.seed(5);
    let mut cfg = ArchConfig::new(Arch::Resnet18, 1, 3);
    cfg.small_stem = true;
    let model = cfg.init(&flex.clone().autodiff());
    let n = 4 * 32 * 32;
    let pixels: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let x = |d: &Device| Tensor::<4>::from_data(TensorData::new(pixels.clone(), [4, 1, 32, 32]), d);

    // Inference: the same logits.
    let a = values(model.valid().outputs(x(&flex)));
    let b = values(model.valid().to_device(&tch).outputs(x(&tch)));
    close(&a, &b, "logits");

    // Training mode (batch statistics): the same loss and the same first-layer gradient.
    let grad = |d: &Device| {
        let ad = d.clone().autodiff();
        let m = model.clone().fork(&ad);
        let loss = m.outputs(x(&ad)).powf_scalar(2.0).mean();
        let grads = loss.clone().backward();
        let mut c = Grads(&grads, Vec::new());
        m.visit(&mut c);
        (values(loss), c.1)
    };
    let (la, ga) = grad(&flex);
    let (lb, gb) = grad(&tch);
    close(&la, &lb, "loss");
    assert_eq!(ga.len(), gb.len());
    assert!(ga.len() > 40, "{} gradients", ga.len());
    for (i, (a, b)) in ga.iter().zip(&gb).enumerate() {
        close(a, b, &format!("gradient {i}"));
    }
}

#[test]
fn libtorch_cuda_is_refused_clearly_without_a_gpu() {
    match device("libtorch-cuda") {
        Ok(d) => {
            // A GPU is present: a tensor round trip works on it.
            let t = Tensor::<1>::from_floats([1.0, 2.0], &d);
            assert_eq!(values(t.mul_scalar(2.0)), vec![2.0, 4.0]);
        }
        Err(e) => assert!(e.contains("no CUDA GPU"), "{e}"),
    }
}
