//! Bidirectional GRU and LSTM recurrences on plain `f32` slices: forward with an optional tape,
//! and back-propagation through time from that tape.
//!
//! Layouts follow [`crate::text::BiRecurrent`]: with `G` gates (GRU: r, z, n; LSTM: i, f, g, o)
//! the input projections `gx` are `[b, t, width]` with `width = G × 2h` and columns
//! `[gate][direction][unit]` (bias of the input projection already added), for right-padded
//! rows of known lengths; the recurrent weight `w` is `[2h, width]` and only its two diagonal
//! blocks (direction `d`'s rows feeding direction `d`'s columns) are read; `bias` is `[width]`.
//! The output is `[b, t, 2h]` (`[direction][unit]` per position, in input order: the kernel
//! reads the reverse direction's inputs and writes its states at the reversed positions itself).
//!
//! The two directions are independent recurrences, so each runs on its own thread for the whole
//! sequence (no synchronisation per step). Per step and direction the recurrent product is one
//! `[b, h] × [h, G·h]` gemm into a packed weight and the gate arithmetic is one fused,
//! vectorised pass, where the engine's op-by-op graph launches a dozen tensor operations and
//! allocations per step. The equations are PyTorch's:
//!
//! - `nn.GRU`: `r = σ(x_r + h W_r + b_r)`, `z = σ(x_z + h W_z + b_z)`,
//!   `n = tanh(x_n + r ⊙ (h W_n + b_n))`, `h' = (1 − z) ⊙ n + z ⊙ h`;
//! - `nn.LSTM`: `i, f, o = σ(x + h W + b)`, `g = tanh(x_g + h W_g + b_g)`, `c' = f ⊙ c + i ⊙ g`,
//!   `h' = o ⊙ tanh c'`.

use super::matmul;

/// Sizes of one bidirectional recurrence call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnDims {
    /// Time steps.
    pub t: usize,
    /// Batch rows.
    pub b: usize,
    /// Hidden units per direction.
    pub h: usize,
    /// LSTM cells (else GRU).
    pub lstm: bool,
}

impl RnnDims {
    /// Gates per cell: 3 (GRU) or 4 (LSTM).
    pub fn gates(&self) -> usize {
        if self.lstm { 4 } else { 3 }
    }

    /// Columns of `gx`, `bias` and `w`: gates × 2 directions × `h`.
    pub fn width(&self) -> usize {
        2 * self.gates() * self.h
    }

    /// Values kept per row and step for the backward pass: GRU `r | z | n | h W_n + b_n`,
    /// LSTM `i | f | g | o | tanh c'`.
    fn tape_width(&self) -> usize {
        if self.lstm { 5 * self.h } else { 4 * self.h }
    }
}

/// What the backward pass needs from the forward pass: the row lengths and, per direction in
/// loop order, every state `h_0..h_t` (`[t + 1, b, h]`, `h_0 = 0`), the LSTM cell states
/// `c_0..c_t` (same shape) and the gate values ([`RnnDims::tape_width`] per row and step).
#[derive(Clone, Debug, Default)]
pub struct RnnTape {
    dims: Option<RnnDims>,
    lengths: Vec<usize>,
    hs: [Vec<f32>; 2],
    cs: [Vec<f32>; 2],
    gates: [Vec<f32>; 2],
}

/// Direction `d`'s diagonal block of `w` packed to `[h, G·h]` (gate-major columns) and its bias
/// `[G·h]`.
fn pack(w: &[f32], bias: &[f32], dims: RnnDims, d: usize) -> (Vec<f32>, Vec<f32>) {
    let (h, width, gates) = (dims.h, dims.width(), dims.gates());
    let mut wd = vec![0f32; h * gates * h];
    let mut bd = vec![0f32; gates * h];
    for g in 0..gates {
        let src = g * 2 * h + d * h;
        for k in 0..h {
            let row = &w[(d * h + k) * width + src..][..h];
            wd[k * gates * h + g * h..][..h].copy_from_slice(row);
        }
        bd[g * h..][..h].copy_from_slice(&bias[src..src + h]);
    }
    (wd, bd)
}

/// `eˣ` for `x` clamped to [−87, 88], branch-free so that loops over it vectorise: `x = n ln 2 + r`
/// with |r| ≤ ln 2 / 2, a degree-6 Taylor polynomial for `eʳ` (relative error < 2e-7 there) and
/// `2ⁿ` built in the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding 1.5 × 2²³: the sum's low mantissa bits then hold n itself,
    // which gives 2ⁿ by integer arithmetic on the bits (no float → int conversion, so loops
    // over this vectorise).
    let big = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = big - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4; // ln 2 split in two for exactness
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let bits = big.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23;
    p * f32::from_bits(bits)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 2σ(2x) − 1` (absolute error < 3e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + exp(-2.0 * x)) - 1.0
}

/// One step of the gate arithmetic for one batch row of one direction: reads the input
/// projections `x` (this row's `[6h]`), the recurrent products `g` (`[3h]`, bias not added),
/// the bias `bd` (`[3h]`) and the previous state `hp`; writes the new state `hn` and the tape
/// row `keep` (`r | z | n | h W_n + b_n`, `[4h]`; a scratch row when no tape is kept).
#[inline(always)]
fn gates_row(
    x: &[f32],
    g: &[f32],
    bd: &[f32],
    hp: &[f32],
    hn: &mut [f32],
    keep: &mut [f32],
    d: usize,
) {
    let h = hp.len();
    let (xr, xz, xn) = (
        &x[d * h..][..h],
        &x[2 * h + d * h..][..h],
        &x[4 * h + d * h..][..h],
    );
    let (gr, gz, gn) = (&g[..h], &g[h..2 * h], &g[2 * h..3 * h]);
    let (br, bz, bn) = (&bd[..h], &bd[h..2 * h], &bd[2 * h..3 * h]);
    let hn = &mut hn[..h];
    let (kr, rest) = keep[..4 * h].split_at_mut(h);
    let (kz, rest) = rest.split_at_mut(h);
    let (kn, kg) = rest.split_at_mut(h);
    for u in 0..h {
        let r = sigmoid(xr[u] + gr[u] + br[u]);
        let z = sigmoid(xz[u] + gz[u] + bz[u]);
        let ghn = gn[u] + bn[u];
        let n = tanh(xn[u] + r * ghn);
        hn[u] = n + z * (hp[u] - n);
        kr[u] = r;
        kz[u] = z;
        kn[u] = n;
        kg[u] = ghn;
    }
}

/// One step of back-propagation for one batch row of one direction: from the tape `k`
/// (`[4h]`), the previous state `hp`, the output gradient `go` and the carried state gradient
/// `dh` (replaced by its direct part `dh ⊙ z`), writes `d gx` (`dx`, `[3h]`) and `d gh`
/// (`dg`, `[3h]`).
#[inline(always)]
fn grads_row(k: &[f32], hp: &[f32], go: &[f32], dh: &mut [f32], dx: &mut [f32], dg: &mut [f32]) {
    let h = hp.len();
    let (kr, kz, kn, kg) = (&k[..h], &k[h..2 * h], &k[2 * h..3 * h], &k[3 * h..4 * h]);
    let (go, dh) = (&go[..h], &mut dh[..h]);
    let (dxr, rest) = dx.split_at_mut(h);
    let (dxz, dxn) = rest.split_at_mut(h);
    let (dgr, rest) = dg.split_at_mut(h);
    let (dgz, dgn) = rest.split_at_mut(h);
    for u in 0..h {
        let (r, z, n, ghn) = (kr[u], kz[u], kn[u], kg[u]);
        let dht = dh[u] + go[u];
        let dpn = dht * (1.0 - z) * (1.0 - n * n);
        let dar = dpn * ghn * r * (1.0 - r);
        let daz = dht * (hp[u] - n) * z * (1.0 - z);
        dxr[u] = dar;
        dxz[u] = daz;
        dxn[u] = dpn;
        dgr[u] = dar;
        dgz[u] = daz;
        dgn[u] = dpn * r;
        dh[u] = dht * z;
    }
}

/// One LSTM step for one batch row of one direction: reads the input projections `x` (this
/// row's `[8h]`), the recurrent products `g` (`[4h]`, bias not added), the bias `bd` (`[4h]`)
/// and the previous states `hp`, `cp`; writes `hn`, `cn` and the tape row `keep`
/// (`i | f | g | o | tanh c'`, `[5h]`; a scratch row when no tape is kept).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_row(
    x: &[f32],
    g: &[f32],
    bd: &[f32],
    hp: &[f32],
    cp: &[f32],
    hn: &mut [f32],
    cn: &mut [f32],
    keep: &mut [f32],
    d: usize,
) {
    let h = hp.len();
    let xs = |k: usize| &x[k * 2 * h + d * h..][..h];
    let (xi, xf, xg, xo) = (xs(0), xs(1), xs(2), xs(3));
    let (gi, gf, gg, go) = (&g[..h], &g[h..2 * h], &g[2 * h..3 * h], &g[3 * h..4 * h]);
    let (bi, bf, bg, bo) = (
        &bd[..h],
        &bd[h..2 * h],
        &bd[2 * h..3 * h],
        &bd[3 * h..4 * h],
    );
    let (cp, hn, cn) = (&cp[..h], &mut hn[..h], &mut cn[..h]);
    let (ki, rest) = keep[..5 * h].split_at_mut(h);
    let (kf, rest) = rest.split_at_mut(h);
    let (kg, rest) = rest.split_at_mut(h);
    let (ko, kt) = rest.split_at_mut(h);
    for u in 0..h {
        let i = sigmoid(xi[u] + gi[u] + bi[u]);
        let f = sigmoid(xf[u] + gf[u] + bf[u]);
        let gv = tanh(xg[u] + gg[u] + bg[u]);
        let o = sigmoid(xo[u] + go[u] + bo[u]);
        let c = f * cp[u] + i * gv;
        let tc = tanh(c);
        cn[u] = c;
        hn[u] = o * tc;
        ki[u] = i;
        kf[u] = f;
        kg[u] = gv;
        ko[u] = o;
        kt[u] = tc;
    }
}

/// One LSTM back-propagation step for one batch row of one direction: from the tape `k`
/// (`[5h]`), the previous cell state `cp`, the output gradient `go` and the carried gradients
/// `dh`, `dc`, writes the gate gradients `dx` (`[4h]`, the same for `gx` and `gh`), replaces
/// `dc` by its carry `dc ⊙ f` and zeroes `dh` (its carry is the product with `Wᵀ` that
/// follows).
#[inline(always)]
fn lstm_grads_row(
    k: &[f32],
    cp: &[f32],
    go: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dx: &mut [f32],
) {
    let h = cp.len();
    let (ki, kf, kg, ko, kt) = (
        &k[..h],
        &k[h..2 * h],
        &k[2 * h..3 * h],
        &k[3 * h..4 * h],
        &k[4 * h..5 * h],
    );
    let (go, dh, dc) = (&go[..h], &mut dh[..h], &mut dc[..h]);
    let (dxi, rest) = dx.split_at_mut(h);
    let (dxf, rest) = rest.split_at_mut(h);
    let (dxg, dxo) = rest.split_at_mut(h);
    for u in 0..h {
        let (i, f, g, o, tc) = (ki[u], kf[u], kg[u], ko[u], kt[u]);
        let dht = dh[u] + go[u];
        let dct = dc[u] + dht * o * (1.0 - tc * tc);
        dxi[u] = dct * g * i * (1.0 - i);
        dxf[u] = dct * cp[u] * f * (1.0 - f);
        dxg[u] = dct * i * (1.0 - g * g);
        dxo[u] = dht * tc * o * (1.0 - o);
        dc[u] = dct * f;
        dh[u] = 0.0;
    }
}

multiversion! {
    /// The gate arithmetic of loop step `s` for every batch row of direction `d`: `gh` are the
    /// recurrent products `[b, G·h]`, `prev`/`next` the states `[b, h]` (`cprev`/`cnext` the
    /// LSTM cell states, empty for a GRU), `gates` the step's tape (empty: no tape).
    fn forward_rows(
        gx: &[f32],
        gh: &[f32],
        bd: &[f32],
        prev: &[f32],
        next: &mut [f32],
        cprev: &[f32],
        cnext: &mut [f32],
        gates: &mut [f32],
        step: Step<'_>,
    ) {
        let Step { lengths, s, t, d, dims } = step;
        let (h, lstm, g, kw) = (dims.h, dims.lstm, dims.gates(), dims.tape_width());
        let width = dims.width();
        // Without a tape, each row's gate values go to one reused (cache-resident) row.
        let mut scratch = if gates.is_empty() { vec![0f32; kw] } else { Vec::new() };
        for (bi, &len) in lengths.iter().enumerate() {
            let p = position(s, len, d);
            let keep_row: &mut [f32] = if gates.is_empty() {
                &mut scratch
            } else {
                &mut gates[bi * kw..][..kw]
            };
            let x = &gx[(bi * t + p) * width..][..width];
            let ghr = &gh[bi * g * h..][..g * h];
            if lstm {
                lstm_row(
                    x,
                    ghr,
                    bd,
                    &prev[bi * h..][..h],
                    &cprev[bi * h..][..h],
                    &mut next[bi * h..][..h],
                    &mut cnext[bi * h..][..h],
                    keep_row,
                    d,
                );
            } else {
                gates_row(x, ghr, bd, &prev[bi * h..][..h], &mut next[bi * h..][..h], keep_row, d);
            }
        }
    }
}

multiversion! {
    /// Back-propagation through loop step `s` for every batch row of direction `d`: `gates` is
    /// the step's tape, `hs` the previous states `[b, h]` (`cs` the previous LSTM cell states,
    /// empty for a GRU), `dout` the output gradient `[b, t, 2h]`; `dh` (and `dc`) are the
    /// carried gradients; writes the step's `d gx` and `d gh` (`[b, G·h]` each).
    fn backward_rows(
        gates: &[f32],
        hs: &[f32],
        cs: &[f32],
        dout: &[f32],
        dh: &mut [f32],
        dc: &mut [f32],
        dgx: &mut [f32],
        dgh: &mut [f32],
        step: Step<'_>,
    ) {
        let Step { lengths, s, t, d, dims } = step;
        let (h, lstm, g, kw) = (dims.h, dims.lstm, dims.gates(), dims.tape_width());
        for (bi, &len) in lengths.iter().enumerate() {
            let p = position(s, len, d);
            let go = &dout[(bi * t + p) * 2 * h + d * h..][..h];
            if lstm {
                lstm_grads_row(
                    &gates[bi * kw..][..kw],
                    &cs[bi * h..][..h],
                    go,
                    &mut dh[bi * h..][..h],
                    &mut dc[bi * h..][..h],
                    &mut dgh[bi * g * h..][..g * h],
                );
            } else {
                grads_row(
                    &gates[bi * kw..][..kw],
                    &hs[bi * h..][..h],
                    go,
                    &mut dh[bi * h..][..h],
                    &mut dgx[bi * g * h..][..g * h],
                    &mut dgh[bi * g * h..][..g * h],
                );
            }
        }
    }
}

/// Where a per-step pass is: loop step `s` of direction `d` over rows of these `lengths`.
#[derive(Clone, Copy)]
struct Step<'a> {
    lengths: &'a [usize],
    s: usize,
    t: usize,
    d: usize,
    dims: RnnDims,
}

/// Input position read at loop step `s` of batch row `bi` by direction `d`: the reverse
/// direction walks each row's real tokens backwards, then its padding forwards (as
/// [`crate::text::reverse_index`] does), so padding never reaches a real position.
#[inline(always)]
fn position(s: usize, len: usize, d: usize) -> usize {
    if d == 1 && s < len { len - 1 - s } else { s }
}

/// One direction's forward pass; returns the states and cell states in loop order
/// (`[t + 1, b, h]`, zero at step 0; no cell states for a GRU) and, with `keep`, the tape.
fn forward_dir(
    gx: &[f32],
    w: &[f32],
    bias: &[f32],
    lengths: &[usize],
    dims: RnnDims,
    d: usize,
    keep: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let RnnDims { t, b, h, lstm } = dims;
    let (g, kw) = (dims.gates(), dims.tape_width());
    let (wd, bd) = pack(w, bias, dims, d);
    let mut hs = vec![0f32; (t + 1) * b * h];
    let mut cs = if lstm {
        vec![0f32; (t + 1) * b * h]
    } else {
        Vec::new()
    };
    let mut gates = if keep {
        vec![0f32; t * b * kw]
    } else {
        Vec::new()
    };
    let mut gh = vec![0f32; b * g * h];
    for s in 0..t {
        let (prev, next) = hs.split_at_mut((s + 1) * b * h);
        let prev = &prev[s * b * h..];
        let next = &mut next[..b * h];
        let (cprev, cnext): (&[f32], &mut [f32]) = if lstm {
            let (cp, cn) = cs.split_at_mut((s + 1) * b * h);
            (&cp[s * b * h..], &mut cn[..b * h])
        } else {
            (&[], &mut [])
        };
        matmul(
            b,
            g * h,
            h,
            &mut gh,
            false,
            prev,
            (h, 1),
            &wd,
            (g * h, 1),
            false,
        );
        let step_gates: &mut [f32] = if keep {
            &mut gates[s * b * kw..][..b * kw]
        } else {
            &mut []
        };
        let step = Step {
            lengths,
            s,
            t,
            d,
            dims,
        };
        forward_rows(gx, &gh, &bd, prev, next, cprev, cnext, step_gates, step);
    }
    (hs, cs, gates)
}

/// The forward pass of both directions over `gx` (`[b, t, G·2h]`, input order) for rows of the
/// given real `lengths` (right padding): the output `[b, t, 2h]` (input order, forward then
/// reverse states) and, with `keep`, the tape for [`backward`].
pub fn forward(
    gx: &[f32],
    w: &[f32],
    bias: &[f32],
    lengths: &[usize],
    dims: RnnDims,
    keep: bool,
) -> (Vec<f32>, RnnTape) {
    let RnnDims { t, b, h, .. } = dims;
    let width = dims.width();
    assert_eq!(gx.len(), t * b * width, "gx must be [b, t, G·2h]");
    assert_eq!(w.len(), 2 * h * width, "w must be [2h, G·2h]");
    assert_eq!(bias.len(), width, "bias must be [G·2h]");
    assert_eq!(lengths.len(), b, "one length per batch row");
    let lengths: Vec<usize> = lengths.iter().map(|&l| l.min(t)).collect();
    let ((hs0, cs0, g0), (hs1, cs1, g1)) = std::thread::scope(|sc| {
        let other = sc.spawn(|| forward_dir(gx, w, bias, &lengths, dims, 1, keep));
        let mine = forward_dir(gx, w, bias, &lengths, dims, 0, keep);
        (
            mine,
            other.join().expect("reverse-direction thread panicked"),
        )
    });
    let mut out = vec![0f32; b * t * 2 * h];
    for s in 0..t {
        for (bi, &len) in lengths.iter().enumerate() {
            let src = (s + 1) * b * h + bi * h;
            out[(bi * t + s) * 2 * h..][..h].copy_from_slice(&hs0[src..][..h]);
            let p = position(s, len, 1);
            out[(bi * t + p) * 2 * h + h..][..h].copy_from_slice(&hs1[src..][..h]);
        }
    }
    let tape = if keep {
        RnnTape {
            dims: Some(dims),
            lengths,
            hs: [hs0, hs1],
            cs: [cs0, cs1],
            gates: [g0, g1],
        }
    } else {
        RnnTape::default()
    };
    (out, tape)
}

/// One direction's gradients in loop order: `d gx` for its columns (`[t, b, G·h]`,
/// gate-major), `d W` (`[h, G·h]`) and `d bias` (`[G·h]`).
fn backward_dir(
    dout: &[f32],
    w: &[f32],
    bias: &[f32],
    tape: &RnnTape,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dims = tape.dims.expect("tape recorded");
    let RnnDims { t, b, h, lstm } = dims;
    let (g, kw) = (dims.gates(), dims.tape_width());
    let (wd, _) = pack(w, bias, dims, d);
    let hs = &tape.hs[d];
    let cs = &tape.cs[d];
    let gates = &tape.gates[d];
    // The LSTM's input and recurrent gate gradients are the same: one buffer serves both.
    let mut dgx = if lstm {
        Vec::new()
    } else {
        vec![0f32; t * b * g * h]
    };
    let mut dgh = vec![0f32; t * b * g * h];
    let mut dh = vec![0f32; b * h];
    let mut dc = if lstm { vec![0f32; b * h] } else { Vec::new() };
    for s in (0..t).rev() {
        let rows = s * b..(s + 1) * b;
        let dgx_step: &mut [f32] = if lstm {
            &mut []
        } else {
            &mut dgx[rows.start * g * h..rows.end * g * h]
        };
        backward_rows(
            &gates[rows.start * kw..rows.end * kw],
            &hs[rows.start * h..rows.end * h],
            if lstm {
                &cs[rows.start * h..rows.end * h]
            } else {
                &[]
            },
            dout,
            &mut dh,
            &mut dc,
            dgx_step,
            &mut dgh[rows.start * g * h..rows.end * g * h],
            Step {
                lengths: &tape.lengths,
                s,
                t,
                d,
                dims,
            },
        );
        // dh_{s-1} += dgh_s × W_dᵀ
        let dg = &dgh[s * b * g * h..][..b * g * h];
        matmul(
            b,
            h,
            g * h,
            &mut dh,
            true,
            dg,
            (g * h, 1),
            &wd,
            (1, g * h),
            false,
        );
    }
    // dW_d = Σ_s h_{s-1}ᵀ dgh_s: one product over all steps ([h, t·b] × [t·b, G·h]).
    let mut dw = vec![0f32; h * g * h];
    matmul(
        h,
        g * h,
        t * b,
        &mut dw,
        false,
        hs,
        (1, h),
        &dgh,
        (g * h, 1),
        false,
    );
    let mut db = vec![0f32; g * h];
    for row in dgh.chunks_exact(g * h) {
        for (a, v) in db.iter_mut().zip(row) {
            *a += v;
        }
    }
    if lstm {
        dgx = dgh;
    }
    (dgx, dw, db)
}

/// Gradients of the loss with respect to `gx` (`[b, t, G·2h]`), `w` (`[2h, G·2h]`, zero outside
/// the diagonal blocks) and `bias` (`[G·2h]`), given its gradient `dout` with respect to the
/// output (`[b, t, 2h]`) and the tape of the forward pass.
pub fn backward(
    dout: &[f32],
    w: &[f32],
    bias: &[f32],
    tape: &RnnTape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dims = tape
        .dims
        .expect("backward needs a tape recorded with keep = true");
    let RnnDims { t, b, h, .. } = dims;
    let (width, g) = (dims.width(), dims.gates());
    assert_eq!(dout.len(), t * b * 2 * h, "dout must be [b, t, 2h]");
    let (p0, p1) = std::thread::scope(|sc| {
        let other = sc.spawn(|| backward_dir(dout, w, bias, tape, 1));
        let mine = backward_dir(dout, w, bias, tape, 0);
        (
            mine,
            other.join().expect("reverse-direction thread panicked"),
        )
    });
    let mut dgx = vec![0f32; b * t * width];
    let mut dw = vec![0f32; 2 * h * width];
    let mut db = vec![0f32; width];
    for (d, (gx_d, w_d, b_d)) in [p0, p1].into_iter().enumerate() {
        for s in 0..t {
            for (bi, &len) in tape.lengths.iter().enumerate() {
                let src = &gx_d[(s * b + bi) * g * h..][..g * h];
                let dst = (bi * t + position(s, len, d)) * width + d * h;
                for k in 0..g {
                    dgx[dst + k * 2 * h..][..h].copy_from_slice(&src[k * h..][..h]);
                }
            }
        }
        for k in 0..h {
            for gate in 0..g {
                dw[(d * h + k) * width + gate * 2 * h + d * h..][..h]
                    .copy_from_slice(&w_d[k * g * h + gate * h..][..h]);
            }
        }
        for gate in 0..g {
            db[gate * 2 * h + d * h..][..h].copy_from_slice(&b_d[gate * h..][..h]);
        }
    }
    (dgx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random vector in ±`scale`.
    fn vals(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// Ragged rows: full, shorter, a single token.
    const LENGTHS: [usize; 3] = [5, 3, 1];

    /// Loss = Σ out ⊙ c, for finite differences.
    fn loss(gx: &[f32], w: &[f32], bias: &[f32], dims: RnnDims, c: &[f32]) -> f64 {
        let (out, _) = forward(gx, w, bias, &LENGTHS, dims, false);
        out.iter()
            .zip(c)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum()
    }

    fn check_gradients(lstm: bool) {
        let dims = RnnDims {
            t: 5,
            b: 3,
            h: 4,
            lstm,
        };
        let width = dims.width();
        let gx = vals(dims.t * dims.b * width, 1, 1.0);
        let w = vals(2 * dims.h * width, 2, 0.5);
        let bias = vals(width, 3, 0.5);
        let c = vals(dims.t * dims.b * 2 * dims.h, 4, 1.0);
        let (_, tape) = forward(&gx, &w, &bias, &LENGTHS, dims, true);
        let (dgx, dw, db) = backward(&c, &w, &bias, &tape);
        let eps = 1e-2f32;
        let perturbed = |which: usize, i: usize, delta: f32| {
            let mut p = [gx.clone(), w.clone(), bias.clone()];
            p[which][i] += delta;
            loss(&p[0], &p[1], &p[2], dims, &c)
        };
        let check = |name: &str, analytic: &[f32], which: usize| {
            for i in (0..analytic.len()).step_by(5) {
                let numeric =
                    (perturbed(which, i, eps) - perturbed(which, i, -eps)) / (2.0 * eps as f64);
                assert!(
                    (numeric - analytic[i] as f64).abs() < 2e-3,
                    "lstm={lstm} {name}[{i}]: numeric {numeric}, analytic {}",
                    analytic[i]
                );
            }
        };
        check("gx", &dgx, 0);
        check("w", &dw, 1);
        check("bias", &db, 2);
        // Off-diagonal blocks of w are not read, so their gradient is exactly zero.
        let h = dims.h;
        assert!((0..h).all(|k| (0..dims.gates()).all(|g| dw[k * width + g * 2 * h + h] == 0.0)));
        assert!(dgx.iter().any(|v| *v != 0.0));
    }

    #[test]
    fn gru_gradients_match_finite_differences() {
        check_gradients(false);
    }

    #[test]
    fn lstm_gradients_match_finite_differences() {
        check_gradients(true);
    }
}
