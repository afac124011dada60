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

/// The winner of one 2×2 window given in the scalar order (top-left, top-right, bottom-left,
/// bottom-right): its value and position 0–3.
#[inline(always)]
fn window4(v: [f32; 4]) -> (f32, u32) {
    let (mut best, mut at) = (v[0], 0);
    for (i, &x) in v.iter().enumerate().skip(1) {
        let t = wins(x, best);
        best = if t { x } else { best };
        at = if t { i as u32 } else { at };
    }
    (best, at)
}

thread_local! {
    /// Per-thread copies of a plane's top and bottom window rows (the 2×2 pooling's inputs as
    /// two contiguous streams).
    static ROWS: std::cell::RefCell<[Vec<f32>; 2]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new()])
    };
}

/// The 2×2, stride-2, unpadded case (the small CNN's and VGG's pools). The window rows are
/// copied one after another into two streams (tops and bottoms, an odd width's last column
/// left out), so every window is two neighbours in each stream whatever the width: the windows
/// then run 8 at a time in AVX2 ([`windows_2x2_avx2`]; at 28 px rows are only 7–14 windows
/// wide), the rest one by one. The winners' positions (0–3) become plane offsets at the end.
fn pool_plane_2x2(x: &[f32], w: usize, out: &mut [f32], arg: Option<&mut [u32]>) {
    let ow = w / 2;
    if ow == 0 {
        return;
    }
    let oh = out.len() / ow;
    let mut arg = arg;
    ROWS.with_borrow_mut(|[top, bottom]| {
        let span = 2 * ow;
        top.clear();
        bottom.clear();
        for oy in 0..oh {
            top.extend_from_slice(&x[2 * oy * w..][..span]);
            bottom.extend_from_slice(&x[(2 * oy + 1) * w..][..span]);
        }
        let n = oh * ow;
        let done = windows_2x2_simd(top, bottom, &mut out[..n], arg.as_deref_mut());
        for o in done..n {
            let (v, at) = window4([top[2 * o], top[2 * o + 1], bottom[2 * o], bottom[2 * o + 1]]);
            out[o] = v;
            if let Some(a) = arg.as_deref_mut() {
                a[o] = at;
            }
        }
    });
    if let Some(a) = arg {
        // Position p of output (oy, ox) → offset 2·oy·w + 2·ox + (p & 1) + (p >> 1)·w.
        for (oy, row) in a.chunks_exact_mut(ow).take(oh).enumerate() {
            let base = (2 * oy * w) as u32;
            for (ox, p) in row.iter_mut().enumerate() {
                *p = base + 2 * ox as u32 + (*p & 1) + (*p >> 1) * w as u32;
            }
        }
    }
}

/// The first windows of [`pool_plane_2x2`]'s streams in AVX2 when the CPU has it: how many
/// were written (a multiple of 8; 0 without AVX2).
#[inline(always)]
fn windows_2x2_simd(
    top: &[f32],
    bottom: &[f32],
    out: &mut [f32],
    arg: Option<&mut [u32]>,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let n = out.len() - out.len() % 8;
        assert!(top.len() >= 2 * n && bottom.len() >= 2 * n);
        assert!(arg.as_ref().is_none_or(|a| a.len() >= n));
        // SAFETY: the CPU has AVX2; the asserts keep the `2n` inputs of each stream, the `n`
        // outputs and the `n` positions in bounds.
        unsafe {
            windows_2x2_avx2(
                top.as_ptr(),
                bottom.as_ptr(),
                out.as_mut_ptr(),
                arg.map(|a| a.as_mut_ptr()),
                n,
            )
        };
        return n;
    }
    let _ = (top, bottom, out, arg);
    0
}

/// `n` (a multiple of 8) 2×2 windows: each window's four values (even and odd elements of
/// both streams, de-interleaved by shuffles) compared in [`window4`]'s order with the same rule
/// ([`wins`]: strictly greater, or a NaN over a number), so values, signed zeros and winning
/// positions are those of the scalar code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn windows_2x2_avx2(
    top: *const f32,
    bottom: *const f32,
    out: *mut f32,
    arg: Option<*mut u32>,
    n: usize,
) {
    use std::arch::x86_64::*;
    // Even and odd elements of 16 consecutive values, in order.
    let split = |p: *const f32| {
        // SAFETY: the caller keeps 16 values from `p` readable.
        let (a, b) = unsafe { (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) };
        let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(v)));
        (
            fix(_mm256_shuffle_ps::<0x88>(a, b)),
            fix(_mm256_shuffle_ps::<0xDD>(a, b)),
        )
    };
    let wins = |v: __m256, best: __m256| {
        _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_GT_OQ>(v, best),
            _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
                _mm256_cmp_ps::<_CMP_ORD_Q>(best, best),
            ),
        )
    };
    let mut o = 0;
    while o < n {
        // SAFETY: `o + 8 ≤ n`: values `2·o .. 2·o + 16` of each stream are in bounds.
        let ((v0, v1), (v2, v3)) = unsafe { (split(top.add(2 * o)), split(bottom.add(2 * o))) };
        let (mut best, mut at) = (v0, _mm256_setzero_ps());
        for (k, v) in [v1, v2, v3].into_iter().enumerate() {
            let t = wins(v, best);
            best = _mm256_blendv_ps(best, v, t);
            at = _mm256_blendv_ps(at, _mm256_castsi256_ps(_mm256_set1_epi32(k as i32 + 1)), t);
        }
        // SAFETY: outputs and positions `o .. o + 8` are in bounds.
        unsafe {
            _mm256_storeu_ps(out.add(o), best);
            if let Some(arg) = arg {
                _mm256_storeu_si256(arg.add(o) as *mut __m256i, _mm256_castps_si256(at));
            }
        }
        o += 8;
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

    /// The vectorised 2×2 windows (8 at a time, then the scalar tail) against the rule
    /// "first strict maximum, a NaN over a number" on values full of ties, signed zeros,
    /// infinities and NaNs, with the winner's offset.
    #[test]
    fn vector_windows_follow_the_scalar_rule() {
        let pool = [
            0.0,
            -0.0,
            1.5,
            -1.5,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.5,
        ];
        // 3 × 21 windows: 7 vector blocks and a tail of 7; the odd width drops a column.
        let (h, w) = (6, 43);
        let x: Vec<f32> = (0..h * w)
            .map(|i: usize| pool[(i.wrapping_mul(2_654_435_761) >> 7) % 8])
            .collect();
        let s = PoolShape {
            n: 1,
            c: 1,
            h,
            w,
            k: [2, 2],
            stride: [2, 2],
            pad: [0; 4],
        };
        let (y, arg) = max_pool2d_forward(&x, s, true);
        let (y2, _) = max_pool2d_forward(&x, s, false);
        let (oh, ow) = (h / 2, w / 2);
        for oy in 0..oh {
            for ox in 0..ow {
                let at = [0, 1, w, w + 1].map(|d| 2 * oy * w + 2 * ox + d);
                let mut win = at[0];
                for &i in &at[1..] {
                    if x[i] > x[win] || x[i].is_nan() && !x[win].is_nan() {
                        win = i;
                    }
                }
                let o = oy * ow + ox;
                assert_eq!(arg[o] as usize, win, "output ({oy}, {ox})");
                for got in [y[o], y2[o]] {
                    assert_eq!(got.to_bits(), x[win].to_bits(), "output ({oy}, {ox})");
                }
            }
        }
    }
}
