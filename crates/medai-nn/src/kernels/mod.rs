//! medai's own CPU kernels, plugged into the engine through Burn's backend-extension mechanism
//! (`#[backend_extension]`): a custom operation with a forward implementation on the `flex` CPU
//! backend and a hand-written backward pass for `Autodiff<Flex>`. Nothing of the engine is
//! copied or forked; other backends (GPU features) keep the engine's own op-by-op path, chosen
//! at run time by [`fused_available`].
//!
//! - [`rnn`]: the bidirectional GRU and LSTM recurrences (forward and back-propagation through
//!   time) on plain slices, one thread per direction;
//! - [`activation`]: vectorised `tanh` and its gradient;
//! - [`conv`]: 2-D convolution, forward (with a folded batch norm and ReLU for inference) and
//!   backward (input and weight gradients as long gemms over chunks of images);
//! - [`norm`]: training-mode batch norm (+ ReLU), forward and backward;
//! - [`pool`]: max pooling, forward and backward.
//!
//! Engine-level entry points: [`conv2d`], [`conv_bn`] and [`max_pool2d`] (layers' forward
//! passes, training or inference), [`tanh`] (all fall back to the engine's ops off the CPU backend) and `birnn`
//! (CPU `flex` builds; check [`fused_available`] first).

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
pub mod conv;
pub mod norm;
pub mod pool;
pub mod rnn;

use gemm::{Parallelism, gemm};
use std::mem::MaybeUninit;

/// `dst[m, n] (+)= lhs[m, k] × rhs[k, n]` with explicit row/column strides (row-major is
/// `(rs, cs) = (columns, 1)`); `parallel` splits the product over the thread pool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
    parallel: bool,
) {
    assert!(dst.len() >= m * n);
    // SAFETY: `dst` holds `m·n` initialised floats.
    unsafe {
        matmul_raw(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            accumulate,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            parallel,
        )
    }
}

/// [`matmul`] writing (not adding) into uninitialised memory: `dst` is initialised afterwards.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_uninit<'a>(
    m: usize,
    n: usize,
    k: usize,
    dst: &'a mut [MaybeUninit<f32>],
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
    parallel: bool,
) -> &'a mut [f32] {
    let len = m * n;
    assert!(dst.len() >= len);
    let ptr = dst.as_mut_ptr().cast::<f32>();
    // SAFETY: `dst` has room for `m·n` floats; with `accumulate` off gemm only writes them
    // (with `k = 0` it writes zeros).
    unsafe {
        matmul_raw(
            m,
            n,
            k,
            ptr,
            false,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            parallel,
        );
        std::slice::from_raw_parts_mut(ptr, len)
    }
}

/// The gemm call behind [`matmul`] and [`matmul_uninit`].
///
/// # Safety
/// `dst` must be valid for writes of `m·n` floats (and hold initialised values when
/// `accumulate`), and must not alias `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            // SAFETY: the caller's contract: `m·n` writable floats.
            unsafe { std::ptr::write_bytes(dst, 0, m * n) };
        }
        return;
    }
    assert!(lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every index gemm reads inside the slices; `dst` is
    // row-major `[m, n]`, writable by the caller's contract and not aliasing the inputs.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if parallel {
                Parallelism::Rayon(rayon::current_num_threads())
            } else {
                Parallelism::None
            },
        )
    }
}

/// A vector of `len` values written by `write` without first being zeroed (the zeroing of
/// output buffers was 5% of a small CNN's training step).
///
/// # Safety
/// `write` must initialise every element of the buffer it is given.
pub(crate) unsafe fn uninit_vec<T>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller's contract: all `len` elements were written.
    unsafe { v.set_len(len) };
    v
}

/// An uninitialised slice after every element has been written.
///
/// # Safety
/// Every element of `s` must be initialised.
pub(crate) unsafe fn assume_init(s: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the caller's contract.
    unsafe { &mut *(s as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
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
// The convolution operation takes the layer's tensors one by one (the extension macro maps
// each tensor argument across the dispatch boundary).
#[allow(clippy::too_many_arguments)]
mod fused {
    use super::norm::{self, BnStats};
    use super::pool::{self, PoolShape};
    use super::rnn::{self, RnnDims, RnnTape};
    use super::{ConvSpec, PoolSpec, activation, conv};
    use burn::backend::autodiff::NodeId;
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

        /// 2-D convolution (groups 1, dilation 1) of `x` `[n, c, h, w]` with `w`
        /// `[o, c, kh, kw]`, plus `bias` `[o]` (if `spec.bias`), then batch norm with `bn` =
        /// γ, β, running mean, running variance (each `[o]`; if `spec.bn`), then ReLU (if
        /// `spec.relu`). Unused tensors may be any tensor.
        fn fused_conv2d(
            x: FloatTensor<Self>,
            w: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            mean: FloatTensor<Self>,
            var: FloatTensor<Self>,
            spec: ConvSpec,
        ) -> FloatTensor<Self>;

        /// Max pooling of `x` `[n, c, h, w]` (dilation 1, floor mode).
        fn fused_max_pool2d(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self>;

        /// Training-mode batch norm of `x` `[n, c, …]` with its own batch statistics, scaled by
        /// `gamma` and shifted by `beta` (each `[c]`), then ReLU when `relu`: the output and
        /// the batch's mean and (biased) variance `[c]` (not tracked).
        fn fused_bn_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            eps: f64,
            relu: bool,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

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

    /// The convolution's shape from `x` `[n, c, h, w]`, `w` `[o, c, kh, kw]` and the spec.
    fn conv_shape(x: &FlexTensor, w: &FlexTensor, spec: ConvSpec) -> conv::ConvShape {
        let (xs, ws) = (x.layout().shape(), w.layout().shape());
        assert!(
            xs.num_dims() == 4 && ws.num_dims() == 4 && xs[1] == ws[1],
            "fused_conv2d: x must be [n, c, h, w] and w [o, c, kh, kw]"
        );
        conv::ConvShape {
            n: xs[0],
            c: xs[1],
            h: xs[2],
            w: xs[3],
            o: ws[0],
            k: [ws[2], ws[3]],
            stride: spec.stride,
            pad: spec.pad,
        }
    }

    /// Batch norm (+ ReLU) in training mode: the output and the statistics.
    fn bn_run(
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: &FlexTensor,
        eps: f64,
        relu: bool,
    ) -> (FlexTensor, BnStats) {
        let shape = x.layout().shape().to_vec();
        assert!(shape.len() >= 2, "fused_bn_train: x must be [n, c, …]");
        let (y, stats) = norm::bn_train_forward(
            &values(x),
            shape[0],
            shape[1],
            &values(gamma),
            &values(beta),
            eps,
            relu,
        );
        (tensor(y, shape), stats)
    }

    fn pool_shape(x: &FlexTensor, spec: PoolSpec) -> PoolShape {
        let xs = x.layout().shape();
        assert_eq!(xs.num_dims(), 4, "fused_max_pool2d: x must be [n, c, h, w]");
        PoolShape {
            n: xs[0],
            c: xs[1],
            h: xs[2],
            w: xs[3],
            k: spec.k,
            stride: spec.stride,
            pad: spec.pad,
        }
    }

    /// Max pooling: the output, and the winners when `with_arg`.
    fn pool_run(
        x: &FlexTensor,
        spec: PoolSpec,
        with_arg: bool,
    ) -> (FlexTensor, Vec<u32>, PoolShape) {
        let s = pool_shape(x, spec);
        let [oh, ow] = s
            .out()
            .expect("fused_max_pool2d: window larger than the padded input");
        let (y, arg) = pool::max_pool2d_forward(&values(x), s, with_arg);
        (tensor(y, vec![s.n, s.c, oh, ow]), arg, s)
    }

    impl KernelBackend for Flex {
        fn fused_max_pool2d(x: FlexTensor, spec: PoolSpec) -> FlexTensor {
            pool_run(&x, spec, false).0
        }

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

        fn fused_bn_train(
            x: FlexTensor,
            gamma: FlexTensor,
            beta: FlexTensor,
            eps: f64,
            relu: bool,
        ) -> (FlexTensor, FlexTensor, FlexTensor) {
            let (y, stats) = bn_run(&x, &gamma, &beta, eps, relu);
            let c = stats.mean.len();
            (y, tensor(stats.mean, vec![c]), tensor(stats.var, vec![c]))
        }

        fn fused_conv2d(
            x: FlexTensor,
            w: FlexTensor,
            bias: FlexTensor,
            gamma: FlexTensor,
            beta: FlexTensor,
            mean: FlexTensor,
            var: FlexTensor,
            spec: ConvSpec,
        ) -> FlexTensor {
            let s = conv_shape(&x, &w, spec);
            let [oh, ow] = s
                .out()
                .expect("fused_conv2d: kernel larger than the padded input");
            // Per output channel y·scale + shift: the bias, with the batch norm folded in.
            let mut scale = vec![1f32; s.o];
            let mut shift = if spec.bias {
                values(&bias).into_owned()
            } else {
                vec![0f32; s.o]
            };
            if spec.bn {
                let (g, b, m, v) = (values(&gamma), values(&beta), values(&mean), values(&var));
                for o in 0..s.o {
                    scale[o] = g[o] / (v[o] as f64 + spec.eps).sqrt() as f32;
                    shift[o] = (shift[o] - m[o]) * scale[o] + b[o];
                }
            }
            let affine = (spec.bias || spec.bn).then_some((&scale[..], &shift[..]));
            let y = conv::conv2d_forward(&values(&x), &values(&w), affine, spec.relu, s);
            tensor(y, vec![s.n, s.o, oh, ow])
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
            let [pgx, pw, pb] = [pgx, pw, pb].map(|p| p.map(|n| n.id));
            register(
                grads,
                [
                    (pgx, Some(dgx), vec![b, t, width]),
                    (pw, Some(dw), vec![2 * h, width]),
                    (pb, Some(db), vec![width]),
                ],
            );
        }
    }

    /// What the convolution's backward keeps: its input and weight (shared handles).
    #[derive(Clone, Debug)]
    struct ConvSaved {
        x: FlexTensor,
        w: FlexTensor,
        shape: conv::ConvShape,
    }

    /// A gradient for a parent (`None` when the parent does not track one, or it was not
    /// computed), with the gradient's shape.
    type GradFor = (Option<NodeId>, Option<Vec<f32>>, Vec<usize>);

    /// Registers each computed gradient for the parent that tracks it.
    fn register<const K: usize>(grads: &mut Gradients, items: [GradFor; K]) {
        for (parent, grad, shape) in items {
            if let (Some(id), Some(grad)) = (parent, grad) {
                grads.register::<Flex>(id, tensor(grad, shape));
            }
        }
    }

    /// The convolution's backward: gradients for the parents that track them (the bias is
    /// `None` for a convolution without one).
    fn conv_backward(
        s: ConvSaved,
        dy: FlexTensor,
        [px, pw, pb]: [Option<NodeId>; 3],
        grads: &mut Gradients,
    ) {
        let dy = values(&dy);
        let (dx, dw) = conv::conv2d_backward(
            &values(&s.x),
            &values(&s.w),
            &dy,
            s.shape,
            px.is_some(),
            pw.is_some(),
        );
        let sh = s.shape;
        let db = pb.map(|_| conv::channel_sums(&dy, sh.n, sh.o));
        register(
            grads,
            [
                (px, dx, vec![sh.n, sh.c, sh.h, sh.w]),
                (pw, dw, vec![sh.o, sh.c, sh.k[0], sh.k[1]]),
                (pb, db, vec![sh.o]),
            ],
        );
    }

    /// A convolution with a bias (parents: input, weight, bias).
    #[derive(Debug)]
    struct ConvBiasStep;

    impl Backward<Flex, 3> for ConvBiasStep {
        type State = ConvSaved;

        fn backward(self, ops: Ops<ConvSaved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let dy = grads.consume::<Flex>(&ops.node);
            let ids = ops.parents.map(|p| p.map(|n| n.id));
            conv_backward(ops.state, dy, ids, grads);
        }
    }

    /// A convolution without a bias (parents: input, weight).
    #[derive(Debug)]
    struct ConvStep;

    impl Backward<Flex, 2> for ConvStep {
        type State = ConvSaved;

        fn backward(self, ops: Ops<ConvSaved, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let dy = grads.consume::<Flex>(&ops.node);
            let [px, pw] = ops.parents.map(|p| p.map(|n| n.id));
            conv_backward(ops.state, dy, [px, pw, None], grads);
        }
    }

    #[derive(Debug)]
    struct PoolStep;

    impl Backward<Flex, 1> for PoolStep {
        type State = (Arc<Vec<u32>>, PoolShape);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (arg, s) = ops.state;
            let dy = grads.consume::<Flex>(&ops.node);
            let [parent] = ops.parents;
            if let Some(node) = parent {
                let dx = pool::max_pool2d_backward(&values(&dy), &arg, s);
                grads.register::<Flex>(node.id, tensor(dx, vec![s.n, s.c, s.h, s.w]));
            }
        }
    }

    /// What the batch norm's backward keeps: input, output (the ReLU mask), γ and statistics.
    #[derive(Clone, Debug)]
    struct BnSaved {
        x: FlexTensor,
        y: FlexTensor,
        gamma: FlexTensor,
        stats: Arc<BnStats>,
        relu: bool,
    }

    #[derive(Debug)]
    struct BnStep;

    impl Backward<Flex, 3> for BnStep {
        type State = BnSaved;

        fn backward(self, ops: Ops<BnSaved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let dy = grads.consume::<Flex>(&ops.node);
            let shape = s.x.layout().shape().to_vec();
            let (dx, dg, db) = norm::bn_train_backward(
                &values(&s.x),
                &values(&s.y),
                &values(&dy),
                shape[0],
                shape[1],
                &values(&s.gamma),
                &s.stats,
                s.relu,
            );
            let c = shape[1];
            let [px, pg, pb] = ops.parents;
            let [px, pg, pb] = [px, pg, pb].map(|p| p.map(|n| n.id));
            register(
                grads,
                [
                    (px, Some(dx), shape),
                    (pg, Some(dg), vec![c]),
                    (pb, Some(db), vec![c]),
                ],
            );
        }
    }

    impl<C: CheckpointStrategy> KernelBackend for Autodiff<Flex, C> {
        fn fused_max_pool2d(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self> {
            match PoolStep.prepare::<C>([x.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let (y, arg, s) = pool_run(x.primitive(), spec, true);
                    prep.finish((Arc::new(arg), s), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(pool_run(x.primitive(), spec, false).0),
            }
        }

        fn fused_bn_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            eps: f64,
            relu: bool,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            let (y, stats) = bn_run(
                x.primitive(),
                gamma.primitive(),
                beta.primitive(),
                eps,
                relu,
            );
            let c = stats.mean.len();
            let mean = tensor(stats.mean.clone(), vec![c]);
            let var = tensor(stats.var.clone(), vec![c]);
            let out = match BnStep
                .prepare::<C>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let saved = BnSaved {
                        x: x.primitive().clone(),
                        y: y.clone(),
                        gamma: gamma.primitive().clone(),
                        stats: Arc::new(stats),
                        relu,
                    };
                    prep.finish(saved, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            (
                out,
                FloatTensor::<Self>::new(mean),
                FloatTensor::<Self>::new(var),
            )
        }

        /// The convolution alone (the training path) runs medai's kernel with its own
        /// backward; with a batch norm or ReLU folded in, the engine's layers run instead.
        fn fused_conv2d(
            x: FloatTensor<Self>,
            w: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            mean: FloatTensor<Self>,
            var: FloatTensor<Self>,
            spec: ConvSpec,
        ) -> FloatTensor<Self> {
            use burn::backend::ops::{ActivationOps, ConvOptions, ModuleOps};
            if !spec.bn && !spec.relu {
                let saved = ConvSaved {
                    x: x.primitive().clone(),
                    w: w.primitive().clone(),
                    shape: conv_shape(x.primitive(), w.primitive(), spec),
                };
                let forward = || {
                    let b = bias.primitive().clone();
                    <Flex as KernelBackend>::fused_conv2d(
                        saved.x.clone(),
                        saved.w.clone(),
                        b.clone(),
                        b.clone(),
                        b.clone(),
                        b.clone(),
                        b,
                        spec,
                    )
                };
                return if spec.bias {
                    let prep = ConvBiasStep.prepare::<C>([x.node(), w.node(), bias.node()]);
                    match prep.compute_bound().stateful() {
                        OpsKind::Tracked(prep) => prep.finish(saved.clone(), forward()),
                        OpsKind::UnTracked(prep) => prep.finish(forward()),
                    }
                } else {
                    match ConvStep
                        .prepare::<C>([x.node(), w.node()])
                        .compute_bound()
                        .stateful()
                    {
                        OpsKind::Tracked(prep) => prep.finish(saved.clone(), forward()),
                        OpsKind::UnTracked(prep) => prep.finish(forward()),
                    }
                };
            }
            let [t, b, l, r] = spec.pad;
            let options = ConvOptions::new_with_padding(spec.stride, [(t, b), (l, r)], [1, 1], 1);
            let mut y = <Self as ModuleOps<Self>>::conv2d(x, w, spec.bias.then_some(bias), options);
            if spec.bn {
                y = <Self as ModuleOps<Self>>::batch_norm(y, gamma, beta, mean, var, spec.eps);
            }
            if spec.relu {
                y = <Self as ActivationOps<Self>>::relu(y);
            }
            y
        }

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

    /// The forward-only convolution (+ bias, batch norm, ReLU) on engine tensors (see
    /// [`super::conv_bn`]).
    pub fn conv2d(
        x: burn::tensor::Tensor<4>,
        w: burn::tensor::Tensor<4>,
        bias: burn::tensor::Tensor<1>,
        bn: [burn::tensor::Tensor<1>; 4],
        spec: ConvSpec,
    ) -> burn::tensor::Tensor<4> {
        use burn::backend::Dispatch;
        let [gamma, beta, mean, var] = bn;
        burn::tensor::Tensor::from_dispatch(<Dispatch as KernelBackend>::fused_conv2d(
            x.into_dispatch(),
            w.into_dispatch(),
            bias.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            mean.into_dispatch(),
            var.into_dispatch(),
            spec,
        ))
    }

    /// Max pooling on engine tensors.
    pub fn max_pool2d(x: burn::tensor::Tensor<4>, spec: PoolSpec) -> burn::tensor::Tensor<4> {
        use burn::backend::Dispatch;
        burn::tensor::Tensor::from_dispatch(<Dispatch as KernelBackend>::fused_max_pool2d(
            x.into_dispatch(),
            spec,
        ))
    }

    /// Training-mode batch norm (+ ReLU) on engine tensors: output, batch mean, batch variance.
    pub fn bn_train(
        x: burn::tensor::Tensor<4>,
        gamma: burn::tensor::Tensor<1>,
        beta: burn::tensor::Tensor<1>,
        eps: f64,
        relu: bool,
    ) -> (
        burn::tensor::Tensor<4>,
        burn::tensor::Tensor<1>,
        burn::tensor::Tensor<1>,
    ) {
        use burn::backend::Dispatch;
        let (y, mean, var) = <Dispatch as KernelBackend>::fused_bn_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            eps,
            relu,
        );
        (
            burn::tensor::Tensor::from_dispatch(y),
            burn::tensor::Tensor::from_dispatch(mean),
            burn::tensor::Tensor::from_dispatch(var),
        )
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

/// A max pooling's window, stride and padding (top, bottom, left, right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// Window height and width.
    pub k: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Padding: top, bottom, left, right.
    pub pad: [usize; 4],
}

/// A [`MaxPool2d`] layer's forward pass: medai's kernel on the CPU backend (dilation 1, floor
/// mode, explicit or no padding), with its own backward when gradients are tracked; the
/// engine's pooling otherwise.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    use burn::nn::PaddingConfig2d;
    let pad = match pool.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([top, bottom, left, right]),
        PaddingConfig2d::Valid => Some([0; 4]),
        PaddingConfig2d::Same => None,
    };
    let [n, c, h, w] = x.dims();
    #[cfg(feature = "flex")]
    if let Some(pad) = pad {
        let shape = pool::PoolShape {
            n,
            c,
            h,
            w,
            k: pool.kernel_size,
            stride: pool.stride,
            pad,
        };
        if pool.dilation == [1, 1]
            && !pool.ceil_mode
            && shape.out().is_some()
            && fused_available(&x.device())
        {
            let spec = PoolSpec {
                k: pool.kernel_size,
                stride: pool.stride,
                pad,
            };
            return fused::max_pool2d(x, spec);
        }
    }
    let _ = (pad, n, c, h, w);
    pool.forward(x)
}

/// What the fused inference convolution applies after the product.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Padding: top, bottom, left, right.
    pub pad: [usize; 4],
    /// Add the convolution's bias.
    pub bias: bool,
    /// Apply the (inference) batch norm.
    pub bn: bool,
    /// The batch norm's ε.
    pub eps: f64,
    /// Apply ReLU last.
    pub relu: bool,
}

/// A [`Conv2d`] layer's forward pass: medai's im2col + gemm kernel on the CPU backend (groups
/// 1, dilation 1, explicit or no padding) — with its own backward when gradients are tracked —,
/// the engine's convolution otherwise.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    fused_conv(conv, None, &x, false).unwrap_or_else(|| conv.forward(x))
}

/// `conv` then batch norm (then ReLU when `relu`) on the CPU backend:
/// - inference: one kernel call does all three; the batch norm becomes a per-channel scale
///   `γ/√(σ²+ε)` and shift `(b − μ)·scale + β` applied, with the ReLU, in the kernel's pass over
///   the output;
/// - training (autodiff device, batch norm in training mode): the convolution kernel, then the
///   training batch norm kernel with the ReLU folded in, both with their own backward; the
///   running statistics are updated as the engine's layer does (momentum, biased variance).
///
/// Otherwise (other backends, unsupported convolutions) the layers run one after the other.
pub fn conv_bn(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    fused_conv(conv, Some(bn), &x, relu).unwrap_or_else(|| {
        let y = bn.forward(conv.forward(x));
        if relu {
            burn::tensor::activation::relu(y)
        } else {
            y
        }
    })
}

/// The kernels' result, or `None` when they do not apply.
#[allow(unused_variables)]
fn fused_conv(
    conv: &Conv2d,
    bn: Option<&BatchNorm>,
    x: &Tensor<4>,
    relu: bool,
) -> Option<Tensor<4>> {
    let pad = fused_conv_padding(conv, x)?;
    #[cfg(feature = "flex")]
    {
        let w = conv.weight.val();
        // Tensors the spec says are unused get a stand-in (a shared handle, no copy).
        let bias = conv.bias.as_ref().map(|b| b.val());
        let any = bias.clone().unwrap_or_else(|| w.clone().reshape([-1]));
        let mut spec = ConvSpec {
            stride: conv.stride,
            pad,
            bias: conv.bias.is_some(),
            bn: bn.is_some(),
            eps: bn.map_or(0.0, |b| b.epsilon),
            relu,
        };
        if x.device().is_autodiff() {
            // Training: the convolution alone (its backward is the kernel's), then the layers.
            spec.bn = false;
            spec.relu = false;
            let stand_in = [any.clone(), any.clone(), any.clone(), any.clone()];
            let y = fused::conv2d(x.clone(), w, bias.unwrap_or(any), stand_in, spec);
            return Some(match bn {
                None => y,
                Some(bn) if bn.training.is_enabled() => {
                    let (out, mean, var) =
                        fused::bn_train(y, bn.gamma.val(), bn.beta.val(), bn.epsilon, relu);
                    let device = out.device();
                    let m = bn.momentum;
                    let rm = bn.running_mean.value_sync().to_device(&device);
                    let rv = bn.running_var.value_sync().to_device(&device);
                    bn.running_mean
                        .update((rm.mul_scalar(1.0 - m) + mean.detach().mul_scalar(m)).detach());
                    bn.running_var
                        .update((rv.mul_scalar(1.0 - m) + var.detach().mul_scalar(m)).detach());
                    out
                }
                Some(bn) => {
                    let y = bn.forward(y);
                    if relu {
                        burn::tensor::activation::relu(y)
                    } else {
                        y
                    }
                }
            });
        }
        let stats = match bn {
            Some(bn) => [
                bn.gamma.val(),
                bn.beta.val(),
                bn.running_mean.value(),
                bn.running_var.value(),
            ],
            None => [any.clone(), any.clone(), any.clone(), any.clone()],
        };
        Some(fused::conv2d(
            x.clone(),
            w,
            bias.unwrap_or(any),
            stats,
            spec,
        ))
    }
    #[cfg(not(feature = "flex"))]
    None
}

/// The padding (top, bottom, left, right) when `conv` on `x` can take the kernels.
fn fused_conv_padding(conv: &Conv2d, x: &Tensor<4>) -> Option<[usize; 4]> {
    use burn::nn::PaddingConfig2d;
    if !cfg!(feature = "flex") {
        return None;
    }
    let pad = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, bottom, left, right],
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Same => return None,
    };
    let device = x.device();
    let [_, _, h, w] = x.dims();
    let [kh, kw] = conv.kernel_size;
    let fits = h + pad[0] + pad[1] >= kh && w + pad[2] + pad[3] >= kw;
    (fits && conv.groups == 1 && conv.dilation == [1, 1] && fused_available(&device)).then_some(pad)
}

/// `tanh` of every element: medai's vectorised kernel on the CPU backend, the engine's op
/// elsewhere.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused_available(&x.device()) {
        return fused::tanh(x);
    }
    burn::tensor::activation::tanh(x)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::module::{Param, RunningState};
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    fn t1(v: Vec<f32>, device: &Device) -> Tensor<1> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }

    /// Batch norm folded into the kernel's convolution (inference) against the engine's
    /// convolution → batch norm → ReLU, with non-trivial statistics, bias, stride and padding.
    #[test]
    fn folded_conv_bn_relu_matches_the_engine_layers() {
        let device = Device::default();
        assert!(fused_available(&device));
        for (stride, pad, bias) in [(1, 1, false), (2, 3, true), (1, 0, true)] {
            let (c, o, k) = (3, 5, if pad == 3 { 7 } else { 3 });
            let conv = Conv2dConfig::new([c, o], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(bias)
                .init(&device);
            let mut bn = BatchNormConfig::new(o).init(&device);
            bn.gamma = Param::from_tensor(t1(values(o, 1), &device) + 1.5);
            bn.beta = Param::from_tensor(t1(values(o, 2), &device));
            bn.running_mean = RunningState::new(t1(values(o, 3), &device));
            bn.running_var = RunningState::new(t1(values(o, 4), &device) + 1.2);
            let x = Tensor::<4>::from_data(
                TensorData::new(values(2 * c * 13 * 11, 5), [2, c, 13, 11]),
                &device,
            );
            for relu in [false, true] {
                let want = bn.forward(conv.forward(x.clone()));
                let want = if relu {
                    burn::tensor::activation::relu(want)
                } else {
                    want
                };
                let got = conv_bn(&conv, &bn, x.clone(), relu);
                assert_eq!(got.dims(), want.dims());
                let diff: f32 = (got - want).abs().max().into_scalar();
                assert!(
                    diff < 1e-4,
                    "stride {stride} pad {pad} bias {bias} relu {relu}: {diff}"
                );
            }
            let plain = conv2d(&conv, x.clone()) - conv.forward(x.clone());
            assert!(plain.abs().max().into_scalar::<f32>() < 1e-4);
        }
    }

    /// Training path (autodiff device, batch norm in training mode): medai's convolution and
    /// batch norm kernels against the engine's layers — output, every gradient (input, weight,
    /// bias, γ, β) and the running statistics after the step.
    #[test]
    fn training_conv_bn_relu_matches_the_engine_layers() {
        let device = Device::default().autodiff();
        assert!(fused_available(&device));
        for (stride, pad, bias, relu) in
            [(1, 1, false, true), (2, 3, true, false), (1, 0, true, true)]
        {
            let (n, c, o, k, h, w) = (3, 3, 5, if pad == 3 { 7 } else { 3 }, 13, 11);
            let conv = Conv2dConfig::new([c, o], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(bias)
                .init(&device);
            let make_bn = || {
                let mut bn = BatchNormConfig::new(o).init(&device);
                bn.gamma = Param::from_tensor(t1(values(o, 1), &device) + 1.5);
                bn.beta = Param::from_tensor(t1(values(o, 2), &device));
                bn
            };
            let xv = values(n * c * h * w, 5);
            let run = |fused: bool| {
                let bn = make_bn();
                let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [n, c, h, w]), &device)
                    .require_grad();
                let y = if fused {
                    conv_bn(&conv, &bn, x.clone(), relu)
                } else {
                    let y = bn.forward(conv.forward(x.clone()));
                    if relu {
                        burn::tensor::activation::relu(y)
                    } else {
                        y
                    }
                };
                let weights = Tensor::<4>::from_data(
                    TensorData::new(values(y.dims().iter().product(), 6), y.dims()),
                    &device,
                );
                let grads = (y.clone() * weights).sum().backward();
                let v4 = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().unwrap();
                let v1 = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap();
                let mut out = vec![
                    v4(y),
                    v4(x.grad(&grads).unwrap()),
                    v4(conv.weight.grad(&grads).unwrap()),
                    v1(bn.gamma.grad(&grads).unwrap()),
                    v1(bn.beta.grad(&grads).unwrap()),
                    v1(bn.running_mean.value_sync()),
                    v1(bn.running_var.value_sync()),
                ];
                if let Some(b) = &conv.bias {
                    out.push(v1(b.grad(&grads).unwrap()));
                }
                out
            };
            let (got, want) = (run(true), run(false));
            let names = [
                "y",
                "dx",
                "dw",
                "dγ",
                "dβ",
                "running mean",
                "running var",
                "db",
            ];
            assert_eq!(got.len(), want.len());
            for ((name, a), b) in names.iter().zip(&got).zip(&want) {
                assert_eq!(a.len(), b.len(), "{name}");
                // Relative to the largest value: the weight gradients are sums over hundreds of
                // positions (magnitudes in the hundreds), summed in another order.
                let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst / scale < 1e-4,
                    "stride {stride} pad {pad} bias {bias} relu {relu}: {name} {worst} (max {scale})"
                );
                assert!(
                    a.iter().any(|v| *v != 0.0),
                    "{name} is all zero: {a:?} vs {b:?}"
                );
            }
        }
    }

    /// medai's max pooling against the engine's layer, with and without autodiff: output and
    /// input gradient, for the 2×2/2 pool of the small CNN and VGG and the padded 3×3/2 stem
    /// pool of ResNet and DenseNet.
    #[test]
    fn max_pool_matches_the_engine_layer() {
        use burn::nn::pool::MaxPool2dConfig;
        let pools = [
            MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
        ];
        let plain = Device::default();
        let device = plain.clone().autodiff();
        for pool in &pools {
            let (n, c, h, w) = (2, 3, 9, 8);
            let xv = values(n * c * h * w, 7);
            let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [n, c, h, w]), &plain);
            let diff: f32 = (max_pool2d(pool, x.clone()) - pool.forward(x))
                .abs()
                .max()
                .into_scalar();
            assert_eq!(diff, 0.0);
            let grad = |fused: bool| {
                let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [n, c, h, w]), &device)
                    .require_grad();
                let y = if fused {
                    max_pool2d(pool, x.clone())
                } else {
                    pool.forward(x.clone())
                };
                let wts = Tensor::<4>::from_data(
                    TensorData::new(values(y.dims().iter().product(), 8), y.dims()),
                    &device,
                );
                let g = (y * wts).sum().backward();
                x.grad(&g)
                    .unwrap()
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap()
            };
            let (a, b) = (grad(true), grad(false));
            assert_eq!(a, b);
            assert!(a.iter().any(|v| *v != 0.0));
        }
    }
}
