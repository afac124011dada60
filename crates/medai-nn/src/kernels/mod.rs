//! medai's own CPU kernels, plugged into the engine through Burn's backend-extension mechanism
//! (`#[backend_extension]`): a custom operation with a forward implementation on the `flex` CPU
//! backend and a hand-written backward pass for `Autodiff<Flex>`. Nothing of the engine is
//! copied or forked; other backends (GPU features) keep the engine's own op-by-op path, chosen
//! at run time by [`fused_available`].
//!
//! - [`rnn`]: the bidirectional GRU and LSTM recurrences (forward and back-propagation through
//!   time) on plain slices, one thread per direction;
//! - [`activation`]: vectorised `tanh` and its gradient.
//!
//! Engine-level entry points: [`tanh`] (falls back to the engine's op off the CPU backend) and
//! `birnn` (CPU `flex` builds; check [`fused_available`] first).

/// Defines `fn $name` twice: compiled for AVX2 + FMA (8-lane vectors for the loops above),
/// used when the CPU has them, and for the build's baseline target otherwise.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

pub mod activation;
pub mod rnn;

use burn::prelude::*;

/// Whether tensors on `device` can use the fused kernels (the `flex` CPU backend, with or
/// without autodiff). `MEDAI_FUSED=0` turns them off, to measure against the engine's ops.
pub fn fused_available(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        if std::env::var("MEDAI_FUSED").is_ok_and(|v| v == "0") {
            return false;
        }
        matches!(
            device.clone().inner().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

#[cfg(feature = "flex")]
mod fused {
    use super::activation;
    use super::rnn::{self, RnnDims, RnnTape};
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Flex, backend_extension};
    use burn::tensor::TensorData;
    use std::borrow::Cow;
    use std::sync::Arc;

    /// medai's kernels as backend operations.
    #[backend_extension(Flex, Autodiff)]
    pub trait KernelBackend: Backend {
        /// `tanh` of every element.
        fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;

        /// Output `[b, t, 2h]` of the GRU (3 gates) or LSTM (4 gates) recurrence over input
        /// projections `gx` `[b, t, G·2h]` of right-padded rows with the given real `lengths`,
        /// with recurrent weight `w` `[2h, G·2h]` and bias `[G·2h]` (layouts: [`super::rnn`]).
        fn fused_birnn(
            gx: FloatTensor<Self>,
            w: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            lengths: Vec<usize>,
        ) -> FloatTensor<Self>;
    }

    /// The tensor's values, borrowed when it is contiguous (else a contiguous copy).
    fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
        match t.as_slice::<f32>() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(
                t.to_contiguous()
                    .as_slice::<f32>()
                    .expect("contiguous")
                    .to_vec(),
            ),
        }
    }

    /// Sizes from `gx` `[b, t, G·2h]` and `w` `[2h, G·2h]`; 4 gates make an LSTM.
    fn dims_of(gx: &FlexTensor, w: &FlexTensor) -> RnnDims {
        let s = gx.layout().shape();
        let h = w.layout().shape()[0] / 2;
        assert_eq!(s.num_dims(), 3, "fused_birnn: gx must be [b, t, G·2h]");
        let gates = s[2] / (2 * h).max(1);
        assert!(
            (gates == 3 || gates == 4) && s[2] == gates * 2 * h,
            "fused_birnn: gx has {} columns, not 3 or 4 gates × 2h = {}",
            s[2],
            2 * h
        );
        RnnDims {
            b: s[0],
            t: s[1],
            h,
            lstm: gates == 4,
        }
    }

    fn tensor(v: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(v, shape))
    }

    fn run(
        gx: &FlexTensor,
        w: &FlexTensor,
        bias: &FlexTensor,
        lengths: &[usize],
        keep: bool,
    ) -> (FlexTensor, RnnTape) {
        let dims = dims_of(gx, w);
        let (out, tape) = rnn::forward(&values(gx), &values(w), &values(bias), lengths, dims, keep);
        (tensor(out, vec![dims.b, dims.t, 2 * dims.h]), tape)
    }

    impl KernelBackend for Flex {
        fn fused_birnn(
            gx: FlexTensor,
            w: FlexTensor,
            bias: FlexTensor,
            lengths: Vec<usize>,
        ) -> FlexTensor {
            run(&gx, &w, &bias, &lengths, false).0
        }

        fn fused_tanh(x: FlexTensor) -> FlexTensor {
            let shape = x.layout().shape().to_vec();
            tensor(activation::tanh_forward(&values(&x)), shape)
        }
    }

    #[derive(Debug)]
    struct TanhStep;

    impl Backward<Flex, 1> for TanhStep {
        type State = FlexTensor;

        fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let g = grads.consume::<Flex>(&ops.node);
            let [parent] = ops.parents;
            if let Some(node) = parent {
                let shape = g.layout().shape().to_vec();
                let d = activation::tanh_backward(&values(&ops.state), &values(&g));
                grads.register::<Flex>(node.id, tensor(d, shape));
            }
        }
    }

    /// What the backward step keeps: the weights it multiplies by (shared, not copied) and the
    /// forward tape.
    #[derive(Clone, Debug)]
    struct Saved {
        w: FlexTensor,
        bias: FlexTensor,
        tape: Arc<RnnTape>,
        dims: RnnDims,
    }

    #[derive(Debug)]
    struct BiRnnStep;

    impl Backward<Flex, 3> for BiRnnStep {
        type State = Saved;

        fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let dout = grads.consume::<Flex>(&ops.node);
            let dout = values(&dout);
            let (dgx, dw, db) = rnn::backward(&dout, &values(&s.w), &values(&s.bias), &s.tape);
            let RnnDims { t, b, h, .. } = s.dims;
            let width = s.dims.width();
            let [pgx, pw, pb] = ops.parents;
            for (parent, grad, shape) in [
                (pgx, dgx, vec![b, t, width]),
                (pw, dw, vec![2 * h, width]),
                (pb, db, vec![width]),
            ] {
                if let Some(node) = parent {
                    grads.register::<Flex>(node.id, tensor(grad, shape));
                }
            }
        }
    }

    impl<C: CheckpointStrategy> KernelBackend for Autodiff<Flex, C> {
        fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
            match TanhStep.prepare::<C>([x.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let y = <Flex as KernelBackend>::fused_tanh(x.primitive().clone());
                    prep.finish(y.clone(), y)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(<Flex as KernelBackend>::fused_tanh(x.primitive().clone()))
                }
            }
        }

        fn fused_birnn(
            gx: FloatTensor<Self>,
            w: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            lengths: Vec<usize>,
        ) -> FloatTensor<Self> {
            match BiRnnStep
                .prepare::<C>([gx.node(), w.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (out, tape) = run(
                        gx.primitive(),
                        w.primitive(),
                        bias.primitive(),
                        &lengths,
                        true,
                    );
                    let saved = Saved {
                        w: w.primitive().clone(),
                        bias: bias.primitive().clone(),
                        tape: Arc::new(tape),
                        dims: dims_of(gx.primitive(), w.primitive()),
                    };
                    prep.finish(saved, out)
                }
                OpsKind::UnTracked(prep) => {
                    let out = run(
                        gx.primitive(),
                        w.primitive(),
                        bias.primitive(),
                        &lengths,
                        false,
                    )
                    .0;
                    prep.finish(out)
                }
            }
        }
    }

    /// `tanh` on engine tensors.
    pub fn tanh<const D: usize>(x: burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D> {
        use burn::backend::Dispatch;
        burn::tensor::Tensor::from_dispatch(<Dispatch as KernelBackend>::fused_tanh(
            x.into_dispatch(),
        ))
    }

    /// The fused recurrence on engine tensors: `gx` `[b, t, G·2h]` for rows of real `lengths`,
    /// `w` `[2h, G·2h]`, `bias` `[G·2h]` (3 gates: GRU, 4: LSTM); returns `[b, t, 2h]` in input
    /// order.
    pub fn birnn(
        gx: burn::tensor::Tensor<3>,
        w: burn::tensor::Tensor<2>,
        bias: burn::tensor::Tensor<1>,
        lengths: &[usize],
    ) -> burn::tensor::Tensor<3> {
        use burn::backend::Dispatch;
        burn::tensor::Tensor::from_dispatch(<Dispatch as KernelBackend>::fused_birnn(
            gx.into_dispatch(),
            w.into_dispatch(),
            bias.into_dispatch(),
            lengths.to_vec(),
        ))
    }
}

#[cfg(feature = "flex")]
pub use fused::birnn;

/// `tanh` of every element: medai's vectorised kernel on the CPU backend, the engine's op
/// elsewhere.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused_available(&x.device()) {
        return fused::tanh(x);
    }
    burn::tensor::activation::tanh(x)
}
