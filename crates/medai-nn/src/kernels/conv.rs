//! 2-D convolution for inference on plain `f32` slices (NCHW): per image, an im2col matrix
//! built with contiguous row copies, then one `[out, in·kh·kw] × [in·kh·kw, oh·ow]` gemm;
//! images in parallel (a single image parallelises the gemm instead). The engine's CPU
//! convolution converts layouts and builds im2col tiles in per-element closures, which was half
//! of a small CNN's inference time.

use rayon::prelude::*;

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
    let [kh, kw] = s.k;
    let (pt, pl) = (s.pad[0] as isize, s.pad[2] as isize);
    let [sh, sw] = s.stride;
    let (h, w) = (s.h as isize, s.w as isize);
    let mut rows = col.chunks_exact_mut(oh * ow);
    for plane in x.chunks_exact(s.h * s.w).take(s.c) {
        for ki in 0..kh {
            for kj in 0..kw {
                let dst = rows.next().expect("col has c·kh·kw rows");
                for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
                    let iy = (oy * sh) as isize + ki as isize - pt;
                    if iy < 0 || iy >= h {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * s.w..][..s.w];
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
    let per_out = s.o * oh * ow;
    let mut out = vec![0f32; s.n * per_out];
    let image = |i: usize, dst: &mut [f32], col: &mut Vec<f32>, parallel: bool| {
        // Every element of `col` is written by im2col: no need to zero it.
        col.resize(ck * oh * ow, 0.0);
        im2col(&x[i * s.c * s.h * s.w..][..s.c * s.h * s.w], &s, col);
        super::matmul(
            s.o,
            oh * ow,
            ck,
            dst,
            false,
            weight,
            (ck, 1),
            col,
            (oh * ow, 1),
            parallel,
        );
        if affine.is_some() || relu {
            for (o, row) in dst.chunks_exact_mut(oh * ow).enumerate() {
                let (a, b) = affine.map_or((1.0, 0.0), |(a, b)| (a[o], b[o]));
                for v in row.iter_mut() {
                    *v = *v * a + b;
                    if relu {
                        *v = v.max(0.0);
                    }
                }
            }
        }
    };
    if s.n == 1 {
        image(0, &mut out, &mut Vec::new(), false);
    } else {
        out.par_chunks_mut(per_out)
            .enumerate()
            .for_each_init(Vec::new, |col, (i, dst)| image(i, dst, col, false));
    }
    out
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

    #[test]
    fn matches_direct_convolution_for_strides_paddings_and_kernels() {
        let shapes = [
            // (n, c, h, w, o, k, stride, pad t b l r)
            (3, 2, 7, 6, 4, [3, 3], [1, 1], [1, 1, 1, 1]),
            (1, 3, 9, 9, 5, [3, 3], [2, 2], [1, 1, 1, 1]),
            (2, 3, 11, 10, 4, [7, 7], [2, 2], [3, 3, 3, 3]),
            (2, 4, 5, 5, 3, [1, 1], [2, 2], [0, 0, 0, 0]),
            (1, 1, 4, 6, 2, [3, 2], [1, 3], [0, 2, 1, 0]),
            (2, 2, 3, 3, 2, [3, 3], [1, 1], [0, 0, 0, 0]),
        ];
        for (n, c, h, w, o, k, stride, pad) in shapes {
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
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) / 8.0)
                .collect();
            let wt: Vec<f32> = (0..o * c * k[0] * k[1])
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
                .collect();
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
}
