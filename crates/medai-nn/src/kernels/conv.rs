//! 2-D convolution on plain `f32` slices (NCHW), forward and backward.
//!
//! Forward: per image, an im2col matrix built with contiguous row copies, then one
//! `[out, in·kh·kw] × [in·kh·kw, oh·ow]` gemm; images in parallel (a single image parallelises
//! the gemm instead). The engine's CPU convolution converts layouts and builds im2col tiles in
//! per-element closures, which was half of a small CNN's inference time.
//!
//! Backward ([`conv2d_backward`]): the batch is cut into chunks of images, each chunk's column
//! matrix within a core's L2 cache (512 KiB). A chunk lays its images side by side as columns —
//! im2col `[in·kh·kw, nb·oh·ow]` and the output gradient `[out, nb·oh·ow]` — so both gradients
//! are one gemm each: the weight gradient `dY · colᵀ` (added into one buffer per worker, the
//! buffers summed at the end) and the input gradient `col2im(Wᵀ · dY)`, zeroed and accumulated
//! chunk by chunk while it is in cache.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Shape and options of one convolution (groups 1, dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel height and width.
    pub k: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Padding: top, bottom, left, right.
    pub pad: [usize; 4],
}

impl ConvShape {
    /// Output height and width (`None` when the kernel does not fit the padded input).
    pub fn out(&self) -> Option<[usize; 2]> {
        let ph = self.h + self.pad[0] + self.pad[1];
        let pw = self.w + self.pad[2] + self.pad[3];
        if ph < self.k[0] || pw < self.k[1] || self.stride.contains(&0) {
            return None;
        }
        Some([
            (ph - self.k[0]) / self.stride[0] + 1,
            (pw - self.k[1]) / self.stride[1] + 1,
        ])
    }
}

/// Fill `col` (`[c·kh·kw, oh·ow]`) from one image `x` (`[c, h, w]`).
fn im2col(x: &[f32], s: &ConvShape, col: &mut [f32]) {
    let [oh, ow] = s.out().expect("checked by the caller");
    im2col_strided(x, s, col, oh * ow);
}

/// [`im2col`] into rows `ld` apart: row `r` of the image's matrix is `col[r·ld..][..oh·ow]`
/// (several images side by side in one matrix).
fn im2col_strided(x: &[f32], s: &ConvShape, col: &mut [f32], ld: usize) {
    let [oh, ow] = s.out().expect("checked by the caller");
    let [kh, kw] = s.k;
    let (pt, pl) = (s.pad[0] as isize, s.pad[2] as isize);
    let [sh, sw] = s.stride;
    let (h, w) = (s.h as isize, s.w as isize);
    let mut r = 0;
    for plane in x.chunks_exact(s.h * s.w).take(s.c) {
        for ki in 0..kh {
            for kj in 0..kw {
                let dst = &mut col[r * ld..][..oh * ow];
                r += 1;
                for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
                    let iy = (oy * sh) as isize + ki as isize - pt;
                    if iy < 0 || iy >= h {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * s.w..][..s.w];
                    if sw == 1 {
                        // Output x reads input x + kj − pl: zeros, one contiguous copy, zeros.
                        let shift = kj as isize - pl;
                        let lo = (-shift).clamp(0, ow as isize) as usize;
                        let hi = (w - shift).clamp(lo as isize, ow as isize) as usize;
                        out[..lo].fill(0.0);
                        if hi > lo {
                            let at = (lo as isize + shift) as usize;
                            out[lo..hi].copy_from_slice(&src[at..][..hi - lo]);
                        }
                        out[hi..].fill(0.0);
                        continue;
                    }
                    let mut ix = kj as isize - pl;
                    for o in out.iter_mut() {
                        *o = if ix >= 0 && ix < w {
                            src[ix as usize]
                        } else {
                            0.0
                        };
                        ix += sw as isize;
                    }
                }
            }
        }
    }
}

/// The convolution of `x` (`[n, c, h, w]`) with `weight` (`[o, c, kh, kw]`), then per output
/// channel `y·scale + shift` (`affine`, `[o]` each: a bias, or a folded batch norm) and ReLU
/// when asked, in the same pass over each image's output: `[n, o, oh, ow]`.
pub fn conv2d_forward(
    x: &[f32],
    weight: &[f32],
    affine: Option<(&[f32], &[f32])>,
    relu: bool,
    s: ConvShape,
) -> Vec<f32> {
    let [oh, ow] = s
        .out()
        .expect("conv2d: kernel larger than the padded input");
    let ck = s.c * s.k[0] * s.k[1];
    assert_eq!(x.len(), s.n * s.c * s.h * s.w, "conv2d: input size");
    assert_eq!(weight.len(), s.o * ck, "conv2d: weight size");
    assert!(
        affine.is_none_or(|(a, b)| a.len() == s.o && b.len() == s.o),
        "conv2d: per-channel scale/shift size"
    );
    let p = oh * ow;
    let per_out = s.o * p;
    // Per output channel `y·a + b`, then ReLU, on rows of output channels from `o0` on.
    let epilogue = |o0: usize, dst: &mut [f32]| {
        if affine.is_some() || relu {
            for (o, row) in dst.chunks_exact_mut(p).enumerate() {
                let (a, b) = affine.map_or((1.0, 0.0), |(a, b)| (a[o0 + o], b[o0 + o]));
                scale_shift_relu(row, a, b, relu);
            }
        }
    };
    // Output channels `rows` of one image, written (not added) into `dst`.
    let product = |rows: std::ops::Range<usize>, dst: &mut [MaybeUninit<f32>], col: &[f32]| {
        let dst = super::matmul_uninit(
            rows.len(),
            p,
            ck,
            dst,
            &weight[rows.start * ck..rows.end * ck],
            (ck, 1),
            col,
            (p, 1),
            false,
        );
        epilogue(rows.start, dst);
    };
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if s.n == 1 {
            // One image (serving latency): im2col once, then the output channels split between
            // two threads when the product is large enough to pay for the hand-off.
            let mut col = vec![0f32; ck * p];
            im2col(x, &s, &mut col);
            let half = s.o / 2;
            if rayon::current_num_threads() > 1 && half > 0 && s.o * p * ck >= 1 << 20 {
                let (top, bottom) = out.split_at_mut(half * p);
                rayon::join(
                    || product(0..half, top, &col),
                    || product(half..s.o, bottom, &col),
                );
            } else {
                product(0..s.o, out, &col);
            }
        } else {
            out.par_chunks_mut(per_out)
                .enumerate()
                .for_each(|(i, dst)| {
                    FORWARD_SCRATCH.with_borrow_mut(|col| {
                        // Every element of `col` is written by im2col: it is not cleared.
                        col.resize(ck * p, 0.0);
                        im2col(&x[i * s.c * s.h * s.w..][..s.c * s.h * s.w], &s, col);
                        product(0..s.o, dst, col);
                    })
                });
        }
    };
    // SAFETY: the gemms write every output channel of every image (`s.n` chunks of `o` rows).
    unsafe { super::uninit_vec(s.n * per_out, fill) }
}

multiversion! {
    /// `v·a + b` (then ReLU) over a row.
    fn scale_shift_relu(row: &mut [f32], a: f32, b: f32, relu: bool) {
        if relu {
            for v in row.iter_mut() {
                *v = (*v * a + b).max(0.0);
            }
        } else {
            for v in row.iter_mut() {
                *v = *v * a + b;
            }
        }
    }
}

thread_local! {
    /// Per-thread im2col matrix of the forward pass, kept between calls.
    static FORWARD_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The adjoint of [`im2col_strided`]: adds every element of the image's matrix (rows `ld`
/// apart) to the input position it was copied from, in `dx` (`[c, h, w]`).
fn col2im_strided(col: &[f32], s: &ConvShape, dx: &mut [f32], ld: usize) {
    let [oh, ow] = s.out().expect("checked by the caller");
    let [kh, kw] = s.k;
    let (pt, pl) = (s.pad[0] as isize, s.pad[2] as isize);
    let [sh, sw] = s.stride;
    let (h, w) = (s.h as isize, s.w as isize);
    let mut r = 0;
    for plane in dx.chunks_exact_mut(s.h * s.w).take(s.c) {
        for ki in 0..kh {
            for kj in 0..kw {
                let src = &col[r * ld..][..oh * ow];
                r += 1;
                for (oy, row) in src.chunks_exact(ow).enumerate() {
                    let iy = (oy * sh) as isize + ki as isize - pt;
                    if iy < 0 || iy >= h {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * s.w..][..s.w];
                    let first = kj as isize - pl;
                    if sw == 1 {
                        // Stride 1: output x adds to input x + first, for the outputs whose
                        // input is inside the row (the padding's are dropped): one vector add.
                        let lo = (-first).clamp(0, ow as isize) as usize;
                        let hi = (w - first).clamp(lo as isize, ow as isize) as usize;
                        if hi > lo {
                            let at = (lo as isize + first) as usize;
                            for (d, v) in dst[at..][..hi - lo].iter_mut().zip(&row[lo..hi]) {
                                *d += v;
                            }
                        }
                        continue;
                    }
                    let mut ix = first;
                    for v in row {
                        if ix >= 0 && ix < w {
                            dst[ix as usize] += v;
                        }
                        ix += sw as isize;
                    }
                }
            }
        }
    }
}

/// Floats in one backward chunk's column matrix (512 KiB: a core's L2 cache on the machines
/// measured).
const COLUMN_BUDGET: usize = 128 << 10;

thread_local! {
    /// Per-thread work matrices of the backward pass (output gradient, im2col, its gradient),
    /// kept between calls so a training step does not allocate and clear them again.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()])
    };
}

/// Gradients of [`conv2d_forward`] without the affine/ReLU epilogue: from the input `x`
/// (`[n, c, h, w]`), the weight (`[o, c, kh, kw]`) and the output gradient `dy`
/// (`[n, o, oh, ow]`), the input gradient (`[n, c, h, w]`, when `need_dx`) and the weight
/// gradient (`[o, c·kh·kw]`, when `need_dw`). The bias gradient is `dy` summed per channel
/// ([`channel_sums`]).
pub fn conv2d_backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    s: ConvShape,
    need_dx: bool,
    need_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    backward_in_chunks(x, weight, dy, s, need_dx, need_dw, COLUMN_BUDGET)
}

/// [`conv2d_backward`] with chunks of images whose column matrices hold at most `budget` floats
/// (or one image).
fn backward_in_chunks(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    s: ConvShape,
    need_dx: bool,
    need_dw: bool,
    budget: usize,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let [oh, ow] = s
        .out()
        .expect("conv2d: kernel larger than the padded input");
    let (p, ck, chw) = (oh * ow, s.c * s.k[0] * s.k[1], s.c * s.h * s.w);
    assert_eq!(x.len(), s.n * chw, "conv2d backward: input size");
    assert_eq!(weight.len(), s.o * ck, "conv2d backward: weight size");
    assert_eq!(
        dy.len(),
        s.n * s.o * p,
        "conv2d backward: output gradient size"
    );
    if s.n == 0 || !(need_dx || need_dw) {
        return (
            need_dx.then(|| vec![0f32; x.len()]),
            need_dw.then(|| vec![0f32; s.o * ck]),
        );
    }
    // Images per chunk: each chunk's column matrix within about half a MiB, so that it, the
    // chunk's output gradient and the input gradient's columns stay in a core's L2 cache from
    // im2col through the gemms to col2im (streaming 16 MiB matrices through memory instead made
    // a 28-px training step a quarter slower); always at least one image.
    let nb = (budget / (ck * p).max(1)).clamp(1, s.n);
    // One chunk: its part of the input gradient written into `dx` (when given), its weight
    // gradient added to `dw` (an empty `dw` is first sized and overwritten).
    let chunk = |first: usize, dx: Option<&mut [MaybeUninit<f32>]>, dw: &mut Vec<f32>| {
        SCRATCH.with_borrow_mut(|[g, col, dcol]| {
            let m = nb.min(s.n - first);
            let cols = m * p;
            // The output gradient of the chunk as one `[o, m·p]` matrix (every element is
            // written: the scratch buffers are not cleared).
            g.resize(s.o * cols, 0.0);
            for j in 0..m {
                let img = &dy[(first + j) * s.o * p..][..s.o * p];
                for (o, row) in img.chunks_exact(p).enumerate() {
                    g[o * cols + j * p..][..p].copy_from_slice(row);
                }
            }
            if need_dw {
                col.resize(ck * cols, 0.0);
                for j in 0..m {
                    im2col_strided(&x[(first + j) * chw..][..chw], &s, &mut col[j * p..], cols);
                }
                // dW[o, ck] (+)= G[o, cols] · colᵀ (col read as `[cols, ck]`).
                let accumulate = !dw.is_empty();
                dw.resize(s.o * ck, 0.0);
                super::matmul(
                    s.o,
                    ck,
                    cols,
                    dw,
                    accumulate,
                    g,
                    (cols, 1),
                    col,
                    (1, cols),
                    false,
                );
            }
            if let Some(dx) = dx {
                // dcol[ck, cols] = Wᵀ · G (W read as `[ck, o]`), then back to image positions.
                dcol.resize(ck * cols, 0.0);
                super::matmul(
                    ck,
                    cols,
                    s.o,
                    dcol,
                    false,
                    weight,
                    (1, ck),
                    g,
                    (cols, 1),
                    false,
                );
                // The chunk's input gradient is zeroed here, while it stays in this core's
                // cache for col2im, rather than in one pass over the whole batch beforehand.
                dx.fill(MaybeUninit::new(0.0));
                // SAFETY: every element was just written.
                let dx = unsafe { super::assume_init(dx) };
                for (j, img) in dx.chunks_exact_mut(chw).enumerate() {
                    col2im_strided(&dcol[j * p..], &s, img, cols);
                }
            }
        })
    };
    // Each worker adds its chunks' weight gradients into one buffer of its own; the buffers are
    // summed at the end.
    let add = |mut a: Vec<f32>, b: Vec<f32>| {
        if a.is_empty() {
            return b;
        }
        for (a, b) in a.iter_mut().zip(&b) {
            *a += b;
        }
        a
    };
    let mut dw = Vec::new();
    let dx = if need_dx {
        let fill = |dx: &mut [MaybeUninit<f32>]| {
            dw = dx
                .par_chunks_mut(nb * chw)
                .enumerate()
                .fold(Vec::new, |mut dw, (i, d)| {
                    chunk(i * nb, Some(d), &mut dw);
                    dw
                })
                .reduce(Vec::new, add);
        };
        // SAFETY: the chunks cover the input gradient and each chunk zeroes its part first.
        Some(unsafe { super::uninit_vec(x.len(), fill) })
    } else {
        dw = (0..s.n.div_ceil(nb))
            .into_par_iter()
            .fold(Vec::new, |mut dw, i| {
                chunk(i * nb, None, &mut dw);
                dw
            })
            .reduce(Vec::new, add);
        None
    };
    (dx, need_dw.then_some(dw))
}

/// Per channel, the sum of `y` (`[n, channels, per]`) over images and positions (in `f64`).
pub fn channel_sums(y: &[f32], n: usize, channels: usize) -> Vec<f32> {
    let per = y.len().checked_div(n * channels).unwrap_or(0);
    let mut acc = vec![0f64; channels];
    for img in y.chunks_exact(channels * per.max(1)).take(n) {
        for (a, row) in acc.iter_mut().zip(img.chunks_exact(per.max(1))) {
            *a += row.iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    acc.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (seven nested loops) convolution, the reference.
    fn naive(x: &[f32], w: &[f32], s: ConvShape) -> Vec<f32> {
        let [oh, ow] = s.out().unwrap();
        let mut out = vec![0f32; s.n * s.o * oh * ow];
        for n in 0..s.n {
            for o in 0..s.o {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0f64;
                        for c in 0..s.c {
                            for ki in 0..s.k[0] {
                                for kj in 0..s.k[1] {
                                    let iy = (oy * s.stride[0] + ki) as isize - s.pad[0] as isize;
                                    let ix = (ox * s.stride[1] + kj) as isize - s.pad[2] as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((n * s.c + c) * s.h + iy as usize) * s.w + ix as usize];
                                    let wv = w[((o * s.c + c) * s.k[0] + ki) * s.k[1] + kj];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        out[((n * s.o + o) * oh + oy) * ow + ox] = acc as f32;
                    }
                }
            }
        }
        out
    }

    /// (n, c, h, w, o, kernel, stride, padding top/bottom/left/right).
    type Case = (
        usize,
        usize,
        usize,
        usize,
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 4],
    );

    /// Strides 1–3, paddings 0–3 (also asymmetric), kernels 1×1–7×7, batches that cut into
    /// several backward chunks, and one image whose product is large enough (≥ 2^20) for the
    /// forward to split its output channels between two threads.
    const CASES: [Case; 9] = [
        (3, 2, 7, 6, 4, [3, 3], [1, 1], [1, 1, 1, 1]),
        (1, 3, 9, 9, 5, [3, 3], [2, 2], [1, 1, 1, 1]),
        (2, 3, 11, 10, 4, [7, 7], [2, 2], [3, 3, 3, 3]),
        (4, 4, 5, 5, 3, [1, 1], [2, 2], [0, 0, 0, 0]),
        (1, 1, 4, 6, 2, [3, 2], [1, 3], [0, 2, 1, 0]),
        (7, 2, 3, 3, 2, [3, 3], [1, 1], [0, 0, 0, 0]),
        (5, 2, 7, 6, 4, [3, 3], [1, 1], [1, 1, 1, 1]),
        (1, 16, 16, 16, 33, [3, 3], [1, 1], [1, 1, 1, 1]),
        // Stride 1 with kernel columns that fall wholly in the padding of a narrow input.
        (2, 2, 3, 2, 3, [7, 7], [1, 1], [3, 3, 3, 3]),
    ];

    /// The shape of a case and deterministic input and weight values in [-1, 1].
    fn case_inputs((n, c, h, w, o, k, stride, pad): Case) -> (ConvShape, Vec<f32>, Vec<f32>) {
        let s = ConvShape {
            n,
            c,
            h,
            w,
            o,
            k,
            stride,
            pad,
        };
        let x = (0..n * c * h * w)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let wt = (0..o * c * k[0] * k[1])
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
            .collect();
        (s, x, wt)
    }

    #[test]
    fn matches_direct_convolution_for_strides_paddings_and_kernels() {
        for case in CASES {
            let (s, x, wt) = case_inputs(case);
            let o = s.o;
            let got = conv2d_forward(&x, &wt, None, false, s);
            let want = naive(&x, &wt, s);
            // Scale, shift and ReLU in the same pass.
            let shift: Vec<f32> = (0..o).map(|i| i as f32 * 0.25 - 0.5).collect();
            let scale: Vec<f32> = (0..o).map(|i| 1.5 - i as f32 * 0.2).collect();
            let [oh, ow] = s.out().unwrap();
            let fused = conv2d_forward(&x, &wt, Some((&scale, &shift)), true, s);
            for (i, (f, w)) in fused.iter().zip(&want).enumerate() {
                let c = (i / (oh * ow)) % o;
                let expect = (w * scale[c] + shift[c]).max(0.0);
                assert!((f - expect).abs() < 1e-4, "{s:?}: bias + relu at {i}");
            }
            assert_eq!(got.len(), want.len(), "{s:?}");
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{s:?}: max difference {worst}");
        }
    }

    /// Both gradients against the direct sums (in f64): dx[n,c,y,x] = Σ dy·w and
    /// dw[o,c,i,j] = Σ dy·x over every output position the pair meets at.
    #[test]
    fn backward_matches_direct_gradients() {
        for case in CASES {
            let (s, x, wt) = case_inputs(case);
            let ConvShape {
                n,
                c,
                h,
                w,
                o,
                k,
                stride,
                pad,
            } = s;
            let [oh, ow] = s.out().unwrap();
            let dy: Vec<f32> = (0..n * o * oh * ow)
                .map(|i| ((i * 11 % 19) as f32 - 9.0) / 9.0)
                .collect();
            let mut dx = vec![0f64; x.len()];
            let mut dw = vec![0f64; wt.len()];
            for b in 0..n {
                for oc in 0..o {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let g = dy[((b * o + oc) * oh + oy) * ow + ox] as f64;
                            for ci in 0..c {
                                for ki in 0..k[0] {
                                    for kj in 0..k[1] {
                                        let iy = (oy * stride[0] + ki) as isize - pad[0] as isize;
                                        let ix = (ox * stride[1] + kj) as isize - pad[2] as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        let xi = ((b * c + ci) * h + iy as usize) * w + ix as usize;
                                        let wi = ((oc * c + ci) * k[0] + ki) * k[1] + kj;
                                        dx[xi] += g * wt[wi] as f64;
                                        dw[wi] += g * x[xi] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // The default chunks, and one image per chunk (several chunks per worker, their
            // weight gradients added up).
            for budget in [COLUMN_BUDGET, 1] {
                let (gx, gw) = backward_in_chunks(&x, &wt, &dy, s, true, true, budget);
                for (name, got, want) in [("dx", gx.unwrap(), &dx), ("dw", gw.unwrap(), &dw)] {
                    assert_eq!(got.len(), want.len(), "{s:?} {name}");
                    let worst = got
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (*a as f64 - b).abs())
                        .fold(0f64, f64::max);
                    assert!(
                        worst < 1e-4,
                        "{s:?} budget {budget}: {name} max difference {worst}"
                    );
                }
            }
            // Only the weight gradient (a network's first layer): the same values.
            let (none, gw2) = conv2d_backward(&x, &wt, &dy, s, false, true);
            assert!(none.is_none());
            let (gx3, _) = conv2d_backward(&x, &wt, &dy, s, true, false);
            assert_eq!(gw2, conv2d_backward(&x, &wt, &dy, s, false, true).1);
            assert_eq!(gx3.map(|v| v.len()), Some(x.len()));
            // Bias gradient: the per-channel sum.
            let sums = channel_sums(&dy, n, o);
            for (oc, got) in sums.iter().enumerate() {
                let want: f64 = (0..n)
                    .flat_map(|b| dy[(b * o + oc) * oh * ow..][..oh * ow].iter())
                    .map(|&v| v as f64)
                    .sum();
                assert!((*got as f64 - want).abs() < 1e-4);
            }
        }
    }
}
