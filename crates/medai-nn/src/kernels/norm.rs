//! Training-mode batch normalisation (batch statistics), optionally followed by ReLU, forward
//! and backward on plain `f32` slices `[n, channels, per]` (NCHW with `per` = h·w).
//!
//! The engine's default runs the statistics as swap-dims → contiguous copy → mean chains and
//! the backward as a dozen element-wise operations, each its own pass and allocation. Here the
//! statistics are one read-only pass per channel (channels in parallel, sums in `f64`), and the
//! output or input gradient one pass per image (images in parallel). The variance is the biased
//! one, as in the engine (and PyTorch's normalisation; only its running variance is unbiased).

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Per-channel statistics of a batch: mean, biased variance and `1/√(var + ε)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BnStats {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Biased variance per channel.
    pub var: Vec<f32>,
    /// `1/√(var + ε)` per channel.
    pub inv_std: Vec<f32>,
}

/// `f(channel, image, sums)` accumulated over images, per channel, in parallel over channels.
fn per_channel<F>(n: usize, c: usize, f: F) -> Vec<[f64; 2]>
where
    F: Fn(usize, usize, &mut [f64; 2]) + Sync,
{
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut acc = [0f64; 2];
            for img in 0..n {
                f(ch, img, &mut acc);
            }
            acc
        })
        .collect()
}

multiversion! {
    /// Adds Σ (x − m) and Σ (x − m)² of a row to `out` (8 lanes in `f32`, then `f64`).
    fn row_moments(x: &[f32], m: f32, out: &mut [f64; 2]) {
        let (mut s, mut q) = ([0f32; 8], [0f32; 8]);
        let chunks = x.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                let d = c[l] - m;
                s[l] += d;
                q[l] += d * d;
            }
        }
        let (mut ss, mut qq) = (0f64, 0f64);
        for l in 0..8 {
            ss += s[l] as f64;
            qq += q[l] as f64;
        }
        for &v in rest {
            let d = (v - m) as f64;
            ss += d;
            qq += d * d;
        }
        out[0] += ss;
        out[1] += qq;
    }
}

/// `g` where `y > floor`, else `0.0` (and for a NaN `y`), as a bit mask (vectorised in
/// [`row_dx`]; [`row_grad_sums`] uses it for its scalar tail).
#[inline(always)]
fn pass_above(g: f32, y: f32, floor: f32) -> f32 {
    f32::from_bits(g.to_bits() & ((y > floor) as u32).wrapping_neg())
}

/// Adds Σ g and Σ g·(x − m) of a row to `out`, with `g` the output gradient below the ReLU
/// (zero where `y ≤ 0`, when `relu`).
fn row_grad_sums(x: &[f32], y: &[f32], dy: &[f32], m: f32, relu: bool, out: &mut [f64; 2]) {
    let n = x.len().min(y.len()).min(dy.len());
    // Below the ReLU a zero output passes no gradient.
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        done = n - n % 16;
        // SAFETY: the CPU has AVX2 and FMA; the function reads the first `done` ≤ `n` values of
        // each slice.
        let [s, q] = unsafe { grad_sums_avx2(x.as_ptr(), y.as_ptr(), dy.as_ptr(), done, m, floor) };
        out[0] += s;
        out[1] += q;
    }
    let (mut ss, mut qq) = (0f64, 0f64);
    for k in done..n {
        let g = pass_above(dy[k], y[k], floor);
        ss += g as f64;
        qq += (g * (x[k] - m)) as f64;
    }
    out[0] += ss;
    out[1] += qq;
}

/// The body of [`row_grad_sums`] over `n` values (a multiple of 16) in AVX2: `g` masked with
/// a vector compare, two pairs of 8-lane accumulators (the compiler turned the scalar select
/// into per-lane branches, a tenth of a 28-px training step).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_sums_avx2(
    x: *const f32,
    y: *const f32,
    dy: *const f32,
    n: usize,
    m: f32,
    floor: f32,
) -> [f64; 2] {
    use std::arch::x86_64::*;
    let (mv, fv) = (_mm256_set1_ps(m), _mm256_set1_ps(floor));
    let (mut s0, mut s1, mut q0, mut q1) = (
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
    );
    let mut k = 0;
    while k < n {
        // SAFETY: `k + 16 ≤ n` and the caller guarantees `n` readable values in each pointer.
        let (g0, g1, x0, x1) = unsafe {
            let keep0 = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(y.add(k)), fv);
            let keep1 = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(y.add(k + 8)), fv);
            (
                _mm256_and_ps(_mm256_loadu_ps(dy.add(k)), keep0),
                _mm256_and_ps(_mm256_loadu_ps(dy.add(k + 8)), keep1),
                _mm256_loadu_ps(x.add(k)),
                _mm256_loadu_ps(x.add(k + 8)),
            )
        };
        s0 = _mm256_add_ps(s0, g0);
        s1 = _mm256_add_ps(s1, g1);
        q0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(x0, mv), q0);
        q1 = _mm256_fmadd_ps(g1, _mm256_sub_ps(x1, mv), q1);
        k += 16;
    }
    let (mut s, mut q) = ([0f32; 8], [0f32; 8]);
    // SAFETY: each array holds 8 floats.
    unsafe {
        _mm256_storeu_ps(s.as_mut_ptr(), _mm256_add_ps(s0, s1));
        _mm256_storeu_ps(q.as_mut_ptr(), _mm256_add_ps(q0, q1));
    }
    [
        s.iter().map(|&v| v as f64).sum(),
        q.iter().map(|&v| v as f64).sum(),
    ]
}

multiversion! {
    /// `dx = a·(g − mb − (x − m)·s·mg)` over a row (`g` as in [`row_grad_sums`]).
    fn row_dx(dx: &mut [MaybeUninit<f32>], x: &[f32], y: &[f32], dy: &[f32], m: f32, s: f32, a: f32, mb: f32, mg: f32, relu: bool) {
        let n = dx.len();
        let (x, y, dy) = (&x[..n], &y[..n], &dy[..n]);
        let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
        let (sm, c) = (s * mg, mb);
        for k in 0..n {
            let g = pass_above(dy[k], y[k], floor);
            dx[k] = MaybeUninit::new(a * (g - c - (x[k] - m) * sm));
        }
    }
}

/// Normalise `x` with its own batch statistics, scale by `gamma`, shift by `beta`, then ReLU
/// when `relu`: `(y, statistics)`.
pub fn bn_train_forward(
    x: &[f32],
    n: usize,
    c: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    relu: bool,
) -> (Vec<f32>, BnStats) {
    let per = x.len().checked_div(n * c).unwrap_or(0);
    assert_eq!(x.len(), n * c * per, "batch norm: input size");
    assert!(gamma.len() == c && beta.len() == c, "batch norm: γ/β size");
    let count = (n * per).max(1) as f64;
    let row = |ch: usize, img: usize| &x[(img * c + ch) * per..][..per];
    // One pass, shifted by the channel's first value (no cancellation when |mean| ≫ spread):
    // mean = k + Σd/N, var = Σd²/N − (Σd/N)² with d = x − k.
    let shift: Vec<f32> = (0..c)
        .map(|ch| if per > 0 && n > 0 { row(ch, 0)[0] } else { 0.0 })
        .collect();
    let moments = per_channel(n, c, |ch, img, acc| {
        row_moments(row(ch, img), shift[ch], acc)
    });
    let means: Vec<f64> = (0..c)
        .map(|ch| shift[ch] as f64 + moments[ch][0] / count)
        .collect();
    let vars: Vec<f64> = moments
        .iter()
        .map(|m| (m[1] / count - (m[0] / count).powi(2)).max(0.0))
        .collect();
    let inv_std: Vec<f32> = vars
        .iter()
        .map(|v| (1.0 / (v + eps).sqrt()) as f32)
        .collect();
    // y = x·scale + shift per channel.
    let scale: Vec<f32> = (0..c).map(|ch| gamma[ch] * inv_std[ch]).collect();
    let shift: Vec<f32> = (0..c)
        .map(|ch| beta[ch] - means[ch] as f32 * scale[ch])
        .collect();
    let fill = |y: &mut [MaybeUninit<f32>]| {
        if per > 0 {
            y.par_chunks_mut(c * per)
                .zip(x.par_chunks(c * per))
                .for_each(|(yi, xi)| affine_rows(yi, xi, per, &scale, &shift, relu));
        }
    };
    // SAFETY: `affine_rows` writes every value of every image (none when `per` is 0).
    let y = unsafe { super::uninit_vec(x.len(), fill) };
    let stats = BnStats {
        mean: means.iter().map(|&m| m as f32).collect(),
        var: vars.iter().map(|&v| v as f32).collect(),
        inv_std,
    };
    (y, stats)
}

multiversion! {
    /// `y = x·scale[ch] + shift[ch]` (then ReLU) over one image's rows of `per` values.
    fn affine_rows(y: &mut [MaybeUninit<f32>], x: &[f32], per: usize, scale: &[f32], shift: &[f32], relu: bool) {
        for (ch, (yr, xr)) in y.chunks_exact_mut(per).zip(x.chunks_exact(per)).enumerate() {
            let (a, b) = (scale[ch], shift[ch]);
            if relu {
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = MaybeUninit::new((v * a + b).max(0.0));
                }
            } else {
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = MaybeUninit::new(v * a + b);
                }
            }
        }
    }
}

/// Gradients of [`bn_train_forward`]: from `x`, its output `y` (for the ReLU mask), the output
/// gradient `dy` and the forward's statistics, `(dx, dγ, dβ)`:
/// `dβ = Σ g`, `dγ = Σ g·x̂`, `dx = γ·inv_std/N · (N·g − dβ − x̂·dγ)` with `g` the gradient
/// below the ReLU and `x̂ = (x − mean)·inv_std`.
#[allow(clippy::too_many_arguments)]
pub fn bn_train_backward(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    n: usize,
    c: usize,
    gamma: &[f32],
    stats: &BnStats,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let per = x.len().checked_div(n * c).unwrap_or(0);
    assert!(
        x.len() == n * c * per && y.len() == x.len() && dy.len() == x.len(),
        "batch norm backward: sizes"
    );
    let at = |ch: usize, img: usize| (img * c + ch) * per;
    let sums = per_channel(n, c, |ch, img, acc| {
        let i = at(ch, img);
        let r = i..i + per;
        row_grad_sums(
            &x[r.clone()],
            &y[r.clone()],
            &dy[r],
            stats.mean[ch],
            relu,
            acc,
        )
    });
    // dβ = Σ g, dγ = inv_std · Σ g·(x − mean).
    let dbeta: Vec<f32> = sums.iter().map(|s| s[0] as f32).collect();
    let dgamma: Vec<f32> = sums
        .iter()
        .zip(&stats.inv_std)
        .map(|(s, &is)| (s[1] * is as f64) as f32)
        .collect();
    let count = (n * per).max(1) as f32;
    let fill = |dx: &mut [MaybeUninit<f32>]| {
        if per == 0 {
            return;
        }
        dx.par_chunks_mut(c * per).enumerate().for_each(|(img, d)| {
            for (ch, dr) in d.chunks_exact_mut(per).enumerate() {
                let i = at(ch, img);
                let r = i..i + per;
                row_dx(
                    dr,
                    &x[r.clone()],
                    &y[r.clone()],
                    &dy[r],
                    stats.mean[ch],
                    stats.inv_std[ch],
                    gamma[ch] * stats.inv_std[ch],
                    dbeta[ch] / count,
                    dgamma[ch] / count,
                    relu,
                );
            }
        });
    };
    // SAFETY: `row_dx` writes every value of every image (none when `per` is 0).
    let dx = unsafe { super::uninit_vec(x.len(), fill) };
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward against the definition and backward against central finite differences of
    /// L = Σ w·y (in f64 on the definition), with and without ReLU.
    #[test]
    fn forward_and_backward_match_the_definition() {
        let (n, c, per) = (3, 4, 5);
        let x: Vec<f32> = (0..n * c * per)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.3).collect();
        let beta: Vec<f32> = (0..c).map(|i| i as f32 * 0.2 - 0.3).collect();
        let w: Vec<f32> = (0..x.len())
            .map(|i| ((i * 13 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let eps = 1e-5;
        // The definition in f64.
        let reference = |x: &[f64], gamma: &[f64], beta: &[f64], relu: bool| -> Vec<f64> {
            let mut y = vec![0f64; x.len()];
            for ch in 0..c {
                let idx: Vec<usize> = (0..n)
                    .flat_map(|i| ((i * c + ch) * per)..((i * c + ch) * per + per))
                    .collect();
                let m = idx.iter().map(|&k| x[k]).sum::<f64>() / idx.len() as f64;
                let v = idx.iter().map(|&k| (x[k] - m).powi(2)).sum::<f64>() / idx.len() as f64;
                for &k in &idx {
                    let o = (x[k] - m) / (v + eps).sqrt() * gamma[ch] + beta[ch];
                    y[k] = if relu { o.max(0.0) } else { o };
                }
            }
            y
        };
        let loss = |x: &[f64], g: &[f64], b: &[f64], relu: bool| -> f64 {
            reference(x, g, b, relu)
                .iter()
                .zip(&w)
                .map(|(y, w)| y * *w as f64)
                .sum()
        };
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let gd: Vec<f64> = gamma.iter().map(|&v| v as f64).collect();
        let bd: Vec<f64> = beta.iter().map(|&v| v as f64).collect();
        for relu in [false, true] {
            let (y, stats) = bn_train_forward(&x, n, c, &gamma, &beta, eps, relu);
            for (a, b) in y.iter().zip(reference(&xd, &gd, &bd, relu)) {
                assert!((*a as f64 - b).abs() < 1e-5, "forward {a} vs {b}");
            }
            let (dx, dg, db) = bn_train_backward(&x, &y, &w, n, c, &gamma, &stats, relu);
            let h = 1e-6;
            let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
            for k in 0..x.len() {
                let want = fd(&|e| {
                    let mut xp = xd.clone();
                    xp[k] += e;
                    loss(&xp, &gd, &bd, relu)
                });
                assert!(
                    (dx[k] as f64 - want).abs() < 1e-3,
                    "dx[{k}] {} vs {want}",
                    dx[k]
                );
            }
            for ch in 0..c {
                let want_g = fd(&|e| {
                    let mut gp = gd.clone();
                    gp[ch] += e;
                    loss(&xd, &gp, &bd, relu)
                });
                let want_b = fd(&|e| {
                    let mut bp = bd.clone();
                    bp[ch] += e;
                    loss(&xd, &gd, &bp, relu)
                });
                assert!((dg[ch] as f64 - want_g).abs() < 1e-3, "dγ[{ch}]");
                assert!((db[ch] as f64 - want_b).abs() < 1e-3, "dβ[{ch}]");
            }
            assert!((stats.var[0] as f64) > 0.0);
        }
        // A large common offset: the statistics come out the same (no cancellation).
        let shifted: Vec<f32> = x.iter().map(|v| v + 300.0).collect();
        let (_, plain) = bn_train_forward(&x, n, c, &gamma, &beta, eps, false);
        let (_, off) = bn_train_forward(&shifted, n, c, &gamma, &beta, eps, false);
        for ch in 0..c {
            assert!((off.mean[ch] - plain.mean[ch] - 300.0).abs() < 1e-3);
            assert!((off.var[ch] - plain.var[ch]).abs() < 1e-4 * plain.var[ch].max(1.0));
        }
    }
}
