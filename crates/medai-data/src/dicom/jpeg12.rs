//! Sequential DCT JPEG (ITU-T T.81, processes 1, 2 and 4: Huffman coded, 8- or 12-bit
//! samples) for single-component (grey) images.
//!
//! DICOM's JPEG Extended transfer syntax (1.2.840.10008.1.2.4.51) carries 12-bit lossy
//! images, which `jpeg-decoder` (8-bit DCT only) and every other pure-Rust JPEG decoder
//! refuse. This decoder covers that case only: one component, one sequential scan, Huffman
//! tables, 8- or 16-bit quantisation tables, restart intervals; the inverse DCT is the exact
//! floating-point one (T.81 A.3.3). Progressive, arithmetic, hierarchical and colour streams
//! are refused with an error. Bounded by the header's image size, which the caller checks
//! against Rows and Columns before anything is allocated.

/// Natural (row-major) index of the k-th coefficient in zig-zag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A canonical Huffman table (T.81 Annex C / F.2.2.3).
#[derive(Clone)]
struct Huffman {
    maxcode: [i32; 17],
    mincode: [i32; 17],
    valptr: [usize; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, String> {
        let mut maxcode = [-1i32; 17];
        let mut mincode = [0i32; 17];
        let mut valptr = [0usize; 17];
        let mut code = 0i32;
        let mut k = 0usize;
        for l in 1..=16 {
            let n = i32::from(counts[l - 1]);
            valptr[l] = k;
            mincode[l] = code;
            code += n;
            k += n as usize;
            if n > 0 {
                maxcode[l] = code - 1;
            }
            if code > (1 << l) {
                return Err("invalid Huffman table (too many codes)".to_string());
            }
            code <<= 1;
        }
        if k != values.len() {
            return Err("Huffman table lengths do not match its values".to_string());
        }
        Ok(Huffman {
            maxcode,
            mincode,
            valptr,
            values,
        })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u8, String> {
        let mut code = 0i32;
        for l in 1..=16 {
            code = (code << 1) | bits.bit() as i32;
            if code <= self.maxcode[l] {
                let i = self.valptr[l] + (code - self.mincode[l]) as usize;
                return self
                    .values
                    .get(i)
                    .copied()
                    .ok_or_else(|| "corrupt Huffman code".to_string());
            }
        }
        Err("invalid Huffman code in the entropy-coded data".to_string())
    }
}

/// Entropy-coded bits with 0xFF00 unstuffing; past a marker or the end, zeros.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u32,
    n: u32,
    at_marker: bool,
}

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        if self.n == 0 {
            let byte = if self.at_marker || self.pos >= self.data.len() {
                0
            } else if self.data[self.pos] == 0xFF {
                if self.data.get(self.pos + 1) == Some(&0) {
                    self.pos += 2;
                    0xFF
                } else {
                    self.at_marker = true;
                    0
                }
            } else {
                self.pos += 1;
                self.data[self.pos - 1]
            };
            self.acc = u32::from(byte);
            self.n = 8;
        }
        self.n -= 1;
        (self.acc >> self.n) & 1
    }

    fn receive_extend(&mut self, s: u8) -> i32 {
        if s == 0 {
            return 0;
        }
        let mut v = 0i32;
        for _ in 0..s {
            v = (v << 1) | self.bit() as i32;
        }
        if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Skip to after the next RSTn marker and drop buffered bits.
    fn restart(&mut self) {
        self.n = 0;
        self.at_marker = false;
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]) {
                self.pos += 2;
                return;
            }
            self.pos += 1;
        }
    }
}

/// The frame header of a JPEG stream: (precision, height, width, components), or `None` if
/// no SOF marker is found before the first scan.
pub(crate) fn sof_info(data: &[u8]) -> Option<(u8, usize, usize, u8)> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return None;
    }
    let mut pos = 2;
    while pos + 3 < data.len() {
        if data[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let marker = data[pos + 1];
        pos += 2;
        match marker {
            0xFF => pos -= 1,
            0x00 | 0x01 | 0xD0..=0xD8 => {}
            0xD9 | 0xDA => return None,
            _ => {
                let len = usize::from(u16::from_be_bytes([data[pos], data[pos + 1]]));
                let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if is_sof {
                    let seg = data.get(pos + 2..pos + 8)?;
                    return Some((
                        seg[0],
                        usize::from(u16::from_be_bytes([seg[1], seg[2]])),
                        usize::from(u16::from_be_bytes([seg[3], seg[4]])),
                        seg[5],
                    ));
                }
                pos += len.max(2);
            }
        }
    }
    None
}

struct Frame {
    precision: u8,
    width: usize,
    height: usize,
    component_id: u8,
    qtable: usize,
}

/// Decode a single-component sequential JPEG of `rows` × `cols` into samples.
pub(crate) fn decode_grey(data: &[u8], rows: usize, cols: usize) -> Result<Vec<u16>, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("the frame does not start with a JPEG SOI marker".to_string());
    }
    let mut qt: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac: [Option<Huffman>; 4] = [None, None, None, None];
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0usize;
    let mut pos = 2;
    loop {
        if pos + 1 >= data.len() {
            return Err("the JPEG stream ends before its scan".to_string());
        }
        if data[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let marker = data[pos + 1];
        pos += 2;
        match marker {
            0xFF => {
                pos -= 1;
                continue;
            }
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            0xD9 => return Err("the JPEG stream ends (EOI) before its scan".to_string()),
            _ => {}
        }
        if pos + 2 > data.len() {
            return Err("truncated JPEG marker segment".to_string());
        }
        let len = usize::from(u16::from_be_bytes([data[pos], data[pos + 1]]));
        if len < 2 || pos + len > data.len() {
            return Err(format!(
                "JPEG marker FF{marker:02X} segment of {len} bytes overruns the data"
            ));
        }
        let seg = &data[pos + 2..pos + len];
        pos += len;
        match marker {
            0xDB => read_dqt(seg, &mut qt)?,
            0xC4 => read_dht(seg, &mut dc, &mut ac)?,
            0xC0 | 0xC1 => frame = Some(read_sof(seg, rows, cols)?),
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(format!(
                    "JPEG process SOF{} (progressive, lossless, hierarchical or arithmetic) is not supported by the 12-bit decoder",
                    marker - 0xC0
                ));
            }
            0xDD => {
                if seg.len() < 2 {
                    return Err("short DRI segment".to_string());
                }
                restart_interval = usize::from(u16::from_be_bytes([seg[0], seg[1]]));
            }
            0xDA => {
                let f = frame
                    .as_ref()
                    .ok_or_else(|| "JPEG scan before its frame header".to_string())?;
                if seg.len() < 6 || seg[0] != 1 {
                    return Err(
                        "only single-component JPEG scans are supported by the 12-bit decoder"
                            .to_string(),
                    );
                }
                if seg[1] != f.component_id {
                    return Err("the JPEG scan names an unknown component".to_string());
                }
                let (td, ta) = (usize::from(seg[2] >> 4), usize::from(seg[2] & 15));
                let q = qt
                    .get(f.qtable)
                    .copied()
                    .flatten()
                    .ok_or_else(|| "missing JPEG quantisation table".to_string())?;
                let dct = dc
                    .get(td)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| "missing JPEG DC Huffman table".to_string())?;
                let act = ac
                    .get(ta)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| "missing JPEG AC Huffman table".to_string())?;
                let bits = Bits {
                    data,
                    pos,
                    acc: 0,
                    n: 0,
                    at_marker: false,
                };
                return decode_scan(f, &q, dct, act, restart_interval, bits);
            }
            _ => {}
        }
    }
}

fn read_dqt(mut seg: &[u8], qt: &mut [Option<[u16; 64]>; 4]) -> Result<(), String> {
    while !seg.is_empty() {
        let (pq, tq) = (seg[0] >> 4, usize::from(seg[0] & 15));
        let size = if pq == 0 { 64 } else { 128 };
        if tq > 3 || pq > 1 || seg.len() < 1 + size {
            return Err("invalid JPEG quantisation table".to_string());
        }
        let mut t = [0u16; 64];
        for (k, v) in t.iter_mut().enumerate() {
            *v = if pq == 0 {
                u16::from(seg[1 + k])
            } else {
                u16::from_be_bytes([seg[1 + 2 * k], seg[2 + 2 * k]])
            };
        }
        qt[tq] = Some(t);
        seg = &seg[1 + size..];
    }
    Ok(())
}

fn read_dht(
    mut seg: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Result<(), String> {
    while !seg.is_empty() {
        if seg.len() < 17 {
            return Err("truncated JPEG Huffman table".to_string());
        }
        let (tc, th) = (seg[0] >> 4, usize::from(seg[0] & 15));
        let mut counts = [0u8; 16];
        counts.copy_from_slice(&seg[1..17]);
        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if tc > 1 || th > 3 || n > 256 || seg.len() < 17 + n {
            return Err("invalid JPEG Huffman table".to_string());
        }
        let table = Huffman::new(&counts, seg[17..17 + n].to_vec())?;
        if tc == 0 {
            dc[th] = Some(table);
        } else {
            ac[th] = Some(table);
        }
        seg = &seg[17 + n..];
    }
    Ok(())
}

fn read_sof(seg: &[u8], rows: usize, cols: usize) -> Result<Frame, String> {
    if seg.len() < 6 {
        return Err("truncated JPEG frame header".to_string());
    }
    let precision = seg[0];
    let height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
    let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
    let components = seg[5];
    if precision != 8 && precision != 12 {
        return Err(format!(
            "JPEG sample precision {precision} (expected 8 or 12)"
        ));
    }
    if components != 1 || seg.len() < 9 {
        return Err(format!(
            "{components}-component 12-bit JPEG is not supported (grey images only)"
        ));
    }
    if (width, height) != (cols, rows) {
        return Err(format!(
            "the JPEG stream is {width}×{height}, but Columns × Rows say {cols}×{rows}"
        ));
    }
    Ok(Frame {
        precision,
        width,
        height,
        component_id: seg[6],
        qtable: usize::from(seg[8] & 3),
    })
}

fn decode_scan(
    f: &Frame,
    q: &[u16; 64],
    dc: &Huffman,
    ac: &Huffman,
    restart_interval: usize,
    mut bits: Bits<'_>,
) -> Result<Vec<u16>, String> {
    let (bw, bh) = (f.width.div_ceil(8), f.height.div_ceil(8));
    let mut out = vec![0u16; f.width * f.height];
    let basis = idct_basis();
    let level_shift = f64::from(1u32 << (f.precision - 1));
    let max = f64::from((1u32 << f.precision) - 1);
    let mut pred = 0i32;
    let mut coef = [0f64; 64];
    for mcu in 0..bw * bh {
        if restart_interval > 0 && mcu > 0 && mcu % restart_interval == 0 {
            bits.restart();
            pred = 0;
        }
        coef.fill(0.0);
        let t = dc.decode(&mut bits)?;
        if t > 16 {
            return Err("corrupt JPEG DC coefficient".to_string());
        }
        pred = pred.wrapping_add(bits.receive_extend(t));
        coef[0] = f64::from(pred) * f64::from(q[0]);
        let mut k = 1;
        while k < 64 {
            let rs = ac.decode(&mut bits)?;
            let (r, s) = (usize::from(rs >> 4), rs & 15);
            if s == 0 {
                if r != 15 {
                    break;
                }
                k += 16;
                continue;
            }
            k += r;
            if k > 63 {
                return Err("corrupt JPEG block (coefficient past 63)".to_string());
            }
            coef[ZIGZAG[k]] = f64::from(bits.receive_extend(s)) * f64::from(q[k]);
            k += 1;
        }
        let block = idct(&coef, &basis);
        let (bx, by) = (mcu % bw * 8, mcu / bw * 8);
        for y in 0..8 {
            let py = by + y;
            if py >= f.height {
                break;
            }
            for x in 0..8 {
                let px = bx + x;
                if px >= f.width {
                    break;
                }
                let v = (block[y * 8 + x] + level_shift).round().clamp(0.0, max);
                out[py * f.width + px] = v as u16;
            }
        }
    }
    Ok(out)
}

/// `basis[x][u] = C(u) / 2 * cos((2x + 1) u π / 16)`, C(0) = 1/√2, else 1.
fn idct_basis() -> [[f64; 8]; 8] {
    let mut b = [[0f64; 8]; 8];
    for (x, row) in b.iter_mut().enumerate() {
        for (u, v) in row.iter_mut().enumerate() {
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            *v = c / 2.0 * ((2.0 * x as f64 + 1.0) * u as f64 * std::f64::consts::PI / 16.0).cos();
        }
    }
    b
}

/// The exact 2-D inverse DCT of one block (coefficients row-major: vertical frequency, then
/// horizontal).
fn idct(coef: &[f64; 64], b: &[[f64; 8]; 8]) -> [f64; 64] {
    let mut tmp = [0f64; 64];
    for v in 0..8 {
        for x in 0..8 {
            tmp[v * 8 + x] = (0..8).map(|u| b[x][u] * coef[v * 8 + u]).sum();
        }
    }
    let mut out = [0f64; 64];
    for y in 0..8 {
        for x in 0..8 {
            out[y * 8 + x] = (0..8).map(|v| b[y][v] * tmp[v * 8 + x]).sum();
        }
    }
    out
}
