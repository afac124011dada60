//! 2-D max pooling (dilation 1, floor mode, padding counts as −∞) on plain `f32` slices
//! `[n, c, h, w]`, forward (optionally recording each window's winner) and backward. Planes run
//! in parallel. The engine's CPU pooling is a generic 3-D loop that recomputes each window's
//! valid range with integer divisions and writes 64-bit indices; in a small CNN's training step
//! it cost as much as a convolution.

use rayon::prelude::*;

/// Shape of one pooling (dilation 1, floor mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height and width.
    pub k: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Padding: top, bottom, left, right.
    pub pad: [usize; 4],
}

impl PoolShape {
    /// Output height and width (`None` when the window does not fit the padded input, or
    /// a stride or window is zero).
    pub fn out(&self) -> Option<[usize; 2]> {
        let ph = self.h + self.pad[0] + self.pad[1];
        let pw = self.w + self.pad[2] + self.pad[3];
        if ph < self.k[0] || pw < self.k[1] || self.stride.contains(&0) || self.k.contains(&0) {
            return None;
        }
        Some([
            (ph - self.k[0]) / self.stride[0] + 1,
            (pw - self.k[1]) / self.stride[1] + 1,
        ])
    }
}

/// One plane's pooling: the maxima, and (when `arg` is given) each window's winning input
/// offset within the plane. The first maximum wins; a NaN wins its window (the first NaN), as
/// the engine's pooling; a window entirely in the padding gives −∞ and offset 0.
fn pool_plane(x: &[f32], s: &PoolShape, out: &mut [f32], arg: Option<&mut [u32]>) {
    if s.k == [2, 2] && s.stride == [2, 2] && s.pad == [0; 4] {
        pool_plane_2x2(x, s.w, out, arg);
    } else {
        pool_plane_any(x, s, out, arg);
    }
}

/// Whether `v` takes the window from the current winner `best` (NaN wins).
#[inline(always)]
fn wins(v: f32, best: f32) -> bool {
    v > best || v.is_nan() && !best.is_nan()
}

multiversion! {
    /// The 2×2, stride-2, unpadded case (the small CNN's and VGG's pools): two input rows per
    /// output row, branch-free selects.
    fn pool_plane_2x2(x: &[f32], w: usize, out: &mut [f32], arg: Option<&mut [u32]>) {
        let ow = w / 2;
        if ow == 0 {
            return;
        }
        let oh = out.len() / ow;
        match arg {
            Some(arg) => {
                for oy in 0..oh {
                    let (r0, r1) = (&x[2 * oy * w..][..2 * ow], &x[(2 * oy + 1) * w..][..2 * ow]);
                    let o = &mut out[oy * ow..][..ow];
                    let a = &mut arg[oy * ow..][..ow];
                    let base = (2 * oy * w) as u32;
                    for ox in 0..ow {
                        let (mut best, mut at) = (r0[2 * ox], base + 2 * ox as u32);
                        for (v, i) in [
                            (r0[2 * ox + 1], base + 2 * ox as u32 + 1),
                            (r1[2 * ox], base + (w + 2 * ox) as u32),
                            (r1[2 * ox + 1], base + (w + 2 * ox) as u32 + 1),
                        ] {
                            let t = wins(v, best);
                            best = if t { v } else { best };
                            at = if t { i } else { at };
                        }
                        o[ox] = best;
                        a[ox] = at;
                    }
                }
            }
            None => {
                for oy in 0..oh {
                    let (r0, r1) = (&x[2 * oy * w..][..2 * ow], &x[(2 * oy + 1) * w..][..2 * ow]);
                    for (ox, o) in out[oy * ow..][..ow].iter_mut().enumerate() {
                        let mut best = r0[2 * ox];
                        for v in [r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]] {
                            best = if wins(v, best) { v } else { best };
                        }
                        *o = best;
                    }
                }
            }
        }
    }
}

/// Any window, stride and padding.
fn pool_plane_any(x: &[f32], s: &PoolShape, out: &mut [f32], mut arg: Option<&mut [u32]>) {
    let [oh, ow] = s.out().expect("checked by the caller");
    let [kh, kw] = s.k;
    let [sh, sw] = s.stride;
    let (pt, pl) = (s.pad[0], s.pad[2]);
    for oy in 0..oh {
        // Rows of the window inside the image.
        let y0 = (oy * sh).saturating_sub(pt);
        let y1 = (oy * sh + kh).saturating_sub(pt).min(s.h);
        for ox in 0..ow {
            let x0 = (ox * sw).saturating_sub(pl);
            let x1 = (ox * sw + kw).saturating_sub(pl).min(s.w);
            let (mut best, mut at) = (f32::NEG_INFINITY, u32::MAX);
            for iy in y0..y1 {
                let row = &x[iy * s.w..][..s.w];
                for (ix, &v) in row.iter().enumerate().take(x1).skip(x0) {
                    if at == u32::MAX || wins(v, best) {
                        best = v;
                        at = (iy * s.w + ix) as u32;
                    }
                }
            }
            out[oy * ow + ox] = best;
            if let Some(a) = arg.as_deref_mut() {
                a[oy * ow + ox] = if at == u32::MAX { 0 } else { at };
            }
        }
    }
}

/// Max pooling of `x` (`[n, c, h, w]`): the output `[n, c, oh, ow]` and, when `with_arg`, the
/// winning input offset (within its plane) of every output.
pub fn max_pool2d_forward(x: &[f32], s: PoolShape, with_arg: bool) -> (Vec<f32>, Vec<u32>) {
    let [oh, ow] = s
        .out()
        .expect("max_pool2d: window larger than the padded input");
    let (plane_in, plane_out) = (s.h * s.w, oh * ow);
    assert_eq!(x.len(), s.n * s.c * plane_in, "max_pool2d: input size");
    assert!(plane_in <= u32::MAX as usize, "max_pool2d: plane too large");
    let planes = s.n * s.c;
    let mut out = vec![0f32; planes * plane_out];
    let mut arg = vec![0u32; if with_arg { planes * plane_out } else { 0 }];
    if plane_out == 0 {
        return (out, arg);
    }
    if planes * plane_in < 1 << 16 {
        // Small (one image at serving time): no hand-off to other threads.
        for (i, xp) in x.chunks_exact(plane_in).enumerate() {
            let o = &mut out[i * plane_out..][..plane_out];
            let a = with_arg.then(|| &mut arg[i * plane_out..][..plane_out]);
            pool_plane(xp, &s, o, a);
        }
        return (out, arg);
    }
    if with_arg {
        out.par_chunks_mut(plane_out)
            .zip(arg.par_chunks_mut(plane_out))
            .zip(x.par_chunks(plane_in))
            .for_each(|((o, a), xp)| pool_plane(xp, &s, o, Some(a)));
    } else {
        out.par_chunks_mut(plane_out)
            .zip(x.par_chunks(plane_in))
            .for_each(|(o, xp)| pool_plane(xp, &s, o, None));
    }
    (out, arg)
}

/// The input gradient of [`max_pool2d_forward`]: each output's gradient goes to its window's
/// winner (summed where windows overlap).
pub fn max_pool2d_backward(dy: &[f32], arg: &[u32], s: PoolShape) -> Vec<f32> {
    let [oh, ow] = s
        .out()
        .expect("max_pool2d: window larger than the padded input");
    let (plane_in, plane_out) = (s.h * s.w, oh * ow);
    assert!(
        dy.len() == s.n * s.c * plane_out && arg.len() == dy.len(),
        "max_pool2d backward: sizes"
    );
    let mut dx = vec![0f32; s.n * s.c * plane_in];
    if plane_out == 0 || plane_in == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane_in)
        .zip(dy.par_chunks(plane_out).zip(arg.par_chunks(plane_out)))
        .for_each(|(d, (g, a))| {
            for (&gv, &i) in g.iter().zip(a) {
                d[i as usize] += gv;
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a direct definition (windows clipped to the image), for square and odd windows,
    /// strides and paddings; the gradient against the definition "each output's gradient to its
    /// first maximal input".
    #[test]
    fn forward_and_backward_match_the_definition() {
        let cases = [
            // (n, c, h, w, k, stride, pad t b l r)
            (2, 3, 8, 8, [2, 2], [2, 2], [0, 0, 0, 0]),
            (1, 2, 7, 9, [2, 2], [2, 2], [0, 0, 0, 0]),
            (2, 2, 9, 9, [3, 3], [2, 2], [1, 1, 1, 1]),
            (1, 1, 6, 5, [3, 2], [1, 2], [1, 0, 0, 1]),
            // 2^16 inputs: planes in parallel.
            (4, 16, 32, 32, [2, 2], [2, 2], [0, 0, 0, 0]),
            (4, 16, 32, 32, [3, 3], [2, 2], [1, 1, 1, 1]),
        ];
        for (n, c, h, w, k, stride, pad) in cases {
            let s = PoolShape {
                n,
                c,
                h,
                w,
                k,
                stride,
                pad,
            };
            let [oh, ow] = s.out().unwrap();
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 10.0)
                .collect();
            let dy: Vec<f32> = (0..n * c * oh * ow).map(|i| i as f32 * 0.5 + 1.0).collect();
            let (y, arg) = max_pool2d_forward(&x, s, true);
            let (y2, none) = max_pool2d_forward(&x, s, false);
            assert_eq!(y, y2);
            assert!(none.is_empty());
            let mut want_dx = vec![0f32; x.len()];
            for p in 0..n * c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (mut best, mut at) = (f32::NEG_INFINITY, None);
                        for ki in 0..k[0] {
                            for kj in 0..k[1] {
                                let iy = (oy * stride[0] + ki) as isize - pad[0] as isize;
                                let ix = (ox * stride[1] + kj) as isize - pad[2] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let i = p * h * w + iy as usize * w + ix as usize;
                                if at.is_none() || x[i] > best {
                                    best = x[i];
                                    at = Some(i);
                                }
                            }
                        }
                        let o = p * oh * ow + oy * ow + ox;
                        assert_eq!(y[o], best, "{s:?} output {o}");
                        want_dx[at.unwrap()] += dy[o];
                    }
                }
            }
            assert_eq!(max_pool2d_backward(&dy, &arg, s), want_dx, "{s:?}");
        }
    }

    #[test]
    fn nan_wins_its_window() {
        let s = PoolShape {
            n: 1,
            c: 1,
            h: 2,
            w: 2,
            k: [2, 2],
            stride: [2, 2],
            pad: [0; 4],
        };
        let (y, arg) = max_pool2d_forward(&[1.0, f32::NAN, 3.0, f32::NAN], s, true);
        assert!(y[0].is_nan());
        assert_eq!(arg, vec![1]);
        let wide = PoolShape {
            k: [3, 3],
            pad: [1, 1, 1, 1],
            ..s
        };
        let (y, arg) = max_pool2d_forward(&[1.0, f32::NAN, 3.0, f32::NAN], wide, true);
        assert!(y[0].is_nan());
        assert_eq!(arg, vec![1]);
    }
}
