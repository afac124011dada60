//! A small `.npy` reader (format versions 1, 2 and 3, C order only).
//!
//! The header is parsed here by hand rather than with a crate: only the three keys
//! `descr`, `fortran_order` and `shape` of the header's Python dict literal matter, and doing it
//! ourselves keeps error messages specific ("dtype '<f4' not supported for images, expected uint8").

/// The element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Unsigned integer.
    Unsigned,
    /// Signed integer.
    Signed,
    /// Boolean (1 byte).
    Bool,
    /// IEEE float.
    Float,
}

/// A parsed dtype such as `<i8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DType {
    pub kind: Kind,
    pub size: usize,
    pub big_endian: bool,
}

/// A parsed `.npy` array: its dtype, shape and the offset of its data within the buffer.
#[derive(Debug)]
pub(crate) struct NpyArray {
    pub descr: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Byte offset of the data in the buffer that was parsed.
    pub data_offset: usize,
    /// Number of elements (product of the shape).
    pub count: usize,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parse a `.npy` buffer's header. Errors are plain strings; the caller adds file and key.
pub(crate) fn parse(buf: &[u8]) -> Result<NpyArray, String> {
    if buf.len() < 10 || &buf[..6] != MAGIC {
        return Err("not a .npy array (missing \\x93NUMPY magic)".to_string());
    }
    let major = buf[6];
    let (header_len, header_start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([buf[8], buf[9]])), 10),
        2 | 3 => {
            if buf.len() < 12 {
                return Err("truncated .npy header".to_string());
            }
            let n = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
            (n as usize, 12)
        }
        v => {
            return Err(format!(
                ".npy format version {v} not supported (expected 1, 2 or 3)"
            ));
        }
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| "truncated .npy header".to_string())?;
    let header = std::str::from_utf8(&buf[header_start..header_end])
        .map_err(|_| "the .npy header is not valid text".to_string())?;
    let dict = parse_dict(header).map_err(|e| format!("malformed .npy header {header:?}: {e}"))?;

    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in dict {
        match (k.as_str(), v) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            ("descr" | "fortran_order" | "shape", _) => {
                return Err(format!(
                    "malformed .npy header {header:?}: bad value for '{k}'"
                ));
            }
            _ => {}
        }
    }
    let descr = descr.ok_or_else(|| "the .npy header has no 'descr'".to_string())?;
    let shape = shape.ok_or_else(|| "the .npy header has no 'shape'".to_string())?;
    if fortran.unwrap_or(false) {
        return Err("Fortran-ordered arrays are not supported (expected C order)".to_string());
    }
    let dtype = parse_dtype(&descr)?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    let needed = count
        .checked_mul(dtype.size)
        .and_then(|n| n.checked_add(header_end))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    if buf.len() < needed {
        return Err(format!(
            "truncated data: shape {shape:?} of {descr} needs {} bytes, found {}",
            needed - header_end,
            buf.len() - header_end
        ));
    }
    Ok(NpyArray {
        descr,
        dtype,
        shape,
        data_offset: header_end,
        count,
    })
}

/// Parse a dtype string such as `|u1`, `<i8`, `>u2`, `<f4`.
pub(crate) fn parse_dtype(descr: &str) -> Result<DType, String> {
    let bad = || {
        format!("dtype '{descr}' not supported (expected a simple integer, bool or float dtype)")
    };
    let mut chars = descr.chars().peekable();
    let mut big_endian = false;
    if let Some(&c) = chars.peek()
        && matches!(c, '<' | '>' | '|' | '=')
    {
        big_endian = c == '>';
        chars.next();
    }
    let kind = match chars.next() {
        Some('u') => Kind::Unsigned,
        Some('i') => Kind::Signed,
        Some('b') => Kind::Bool,
        Some('f') => Kind::Float,
        _ => return Err(bad()),
    };
    let size: usize = chars.collect::<String>().parse().map_err(|_| bad())?;
    let ok = match kind {
        Kind::Unsigned | Kind::Signed => matches!(size, 1 | 2 | 4 | 8),
        Kind::Bool => size == 1,
        Kind::Float => matches!(size, 4 | 8),
    };
    if !ok {
        return Err(bad());
    }
    Ok(DType {
        kind,
        size,
        big_endian,
    })
}

/// Read element `i` of an integer/bool/float array as an `i128` (floats must be integral).
pub(crate) fn read_integer(data: &[u8], dtype: DType, i: usize) -> Result<i128, String> {
    let start = i * dtype.size;
    let b = data
        .get(start..start + dtype.size)
        .ok_or_else(|| format!("element {i} is out of the data"))?;
    let mut le = [0u8; 8];
    le[..dtype.size].copy_from_slice(b);
    if dtype.big_endian {
        le[..dtype.size].reverse();
    }
    let raw = u64::from_le_bytes(le);
    Ok(match (dtype.kind, dtype.size) {
        (Kind::Unsigned | Kind::Bool, _) => i128::from(raw),
        (Kind::Signed, 1) => i128::from(raw as u8 as i8),
        (Kind::Signed, 2) => i128::from(raw as u16 as i16),
        (Kind::Signed, 4) => i128::from(raw as u32 as i32),
        (Kind::Signed, _) => i128::from(raw as i64),
        (Kind::Float, 4) => float_to_int(f64::from(f32::from_bits(raw as u32)), i)?,
        (Kind::Float, _) => float_to_int(f64::from_bits(raw), i)?,
    })
}

fn float_to_int(v: f64, i: usize) -> Result<i128, String> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        Ok(v as i128)
    } else {
        Err(format!(
            "element {i} is {v}, expected an integer class index"
        ))
    }
}

#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Tuple(Vec<usize>),
    None,
}

/// Parse the header's Python dict literal, e.g.
/// `{'descr': '|u1', 'fortran_order': False, 'shape': (4708, 28, 28), }`.
fn parse_dict(s: &str) -> Result<Vec<(String, Value)>, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    p.ws();
    p.expect(b'{')?;
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let value = p.value()?;
        out.push((key, value));
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        p.expect(b'}')?;
        break;
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at offset {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err("unterminated string".to_string());
        }
        let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(v)
    }
    fn ident(&mut self) -> &[u8] {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
    fn int(&mut self) -> Result<i64, String> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = self.ident();
        // Python 2 era headers may write longs as `28L`.
        let digits = digits.strip_suffix(b"L").unwrap_or(digits);
        let text = std::str::from_utf8(digits).map_err(|_| "bad integer".to_string())?;
        let v: i64 = text
            .parse()
            .map_err(|_| format!("bad integer at offset {start}"))?;
        Ok(if self.s.get(start) == Some(&b'-') {
            -v
        } else {
            v
        })
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.s.get(self.i) {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.ws();
                    if self.eat(b')') {
                        break;
                    }
                    let d = self.int()?;
                    let d = usize::try_from(d).map_err(|_| format!("negative dimension {d}"))?;
                    dims.push(d);
                    self.ws();
                    if self.eat(b',') {
                        continue;
                    }
                    self.expect(b')')?;
                    break;
                }
                Ok(Value::Tuple(dims))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => Ok(Value::Int(self.int()?)),
            Some(_) => match self.ident() {
                b"True" => Ok(Value::Bool(true)),
                b"False" => Ok(Value::Bool(false)),
                b"None" => Ok(Value::None),
                _ => Err(format!("unexpected value at offset {}", self.i)),
            },
            None => Err("unexpected end of header".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_v1_header() {
        let buf = npy(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }",
            &[1, 2, 3, 4, 5, 6],
        );
        let a = parse(&buf).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.count, 6);
        assert_eq!(a.dtype.kind, Kind::Unsigned);
        assert_eq!(&buf[a.data_offset..], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn parses_v2_header_and_one_dim_shape() {
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }\n";
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[2, 0]);
        v.extend_from_slice(&(h.len() as u32).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(&(-3i64).to_le_bytes());
        v.extend_from_slice(&7i64.to_le_bytes());
        let a = parse(&v).unwrap();
        assert_eq!(a.shape, vec![2]);
        let data = &v[a.data_offset..];
        assert_eq!(read_integer(data, a.dtype, 0).unwrap(), -3);
        assert_eq!(read_integer(data, a.dtype, 1).unwrap(), 7);
    }

    #[test]
    fn big_endian_and_float_labels() {
        let be = parse_dtype(">u2").unwrap();
        assert_eq!(read_integer(&[0x01, 0x02], be, 0).unwrap(), 0x0102);
        let f = parse_dtype("<f4").unwrap();
        assert_eq!(read_integer(&2.0f32.to_le_bytes(), f, 0).unwrap(), 2);
        assert!(read_integer(&2.5f32.to_le_bytes(), f, 0).is_err());
    }

    #[test]
    fn rejects_fortran_truncation_and_bad_dtypes() {
        let f = npy(
            "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }",
            &[0; 6],
        );
        assert!(parse(&f).unwrap_err().contains("Fortran"));
        let t = npy(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }",
            &[0; 5],
        );
        assert!(parse(&t).unwrap_err().contains("truncated"));
        assert!(parse_dtype("<c16").is_err());
        assert!(parse_dtype("|O").is_err());
        assert!(parse(b"hello world, not numpy").is_err());
    }
}
