//! NIfTI reading (`read_nifti`, `read_nifti_bytes`, `Volume`) checked against nibabel 5.4.2.
//!
//! The oracle is `shared/data/nifti/`: five files from nibabel's test data (NIfTI-1 and
//! NIfTI-2, little- and big-endian, 3-D and 4-D, `.nii` and `.nii.gz`) with, for each, the
//! array nibabel reads (`X.unscaled.npy`, on-disk dtype) and its `get_fdata()`
//! (`X.fdata.npy`), plus `MANIFEST.json` (shape, dtype, zooms, codes, affine, units).
//!
//! Exactness: unscaled values are compared exactly, and so are scaled ones: nibabel scales in
//! `f64` (`raw.astype(f64) * f64(slope) + f64(inter)`, slope and intercept widened from the
//! header's `f32`), which is what the crate does, so there is no `f32` arithmetic to allow for.
//! Affines are compared to 1e-6 (nibabel builds the qform in long double).
//!
//! Note: MANIFEST's `scl_slope`/`scl_inter` are `null` for every file because nibabel's
//! `img.header` resets them after loading; `functional.nii` really has slope 0.0754…, inter
//! 3100.76…, which `functional.fdata.npy` reflects and these tests check.

use std::io::Read;
use std::path::{Path, PathBuf};

use medai_data::{Axis, DataError, NIFTI_MAX_BYTES, Volume, read_nifti, read_nifti_bytes};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/nifti");

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(DATA);
    assert!(
        dir.join("MANIFEST.json").is_file(),
        "NIfTI test data not found at {} (expected shared/data/nifti beside the repository)",
        dir.display()
    );
    dir
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("MANIFEST.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array().unwrap().clone()
}

fn stem(file: &str) -> &str {
    file.split('.').next().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The bytes of a file, and its decompressed bytes when it is gzip-compressed.
fn raw_and_plain(file: &str) -> (Vec<u8>, Vec<u8>) {
    let raw = std::fs::read(data_dir().join(file)).unwrap();
    let plain = if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw)
    } else {
        raw.clone()
    };
    (raw, plain)
}

// ---------------------------------------------------------------------------------------------
// A tiny .npy reader (versions 1-3; dtypes b1/u1/i1/i2/u2/i4/u4/i8/u8/f4/f8 in either byte
// order; fortran_order true or false).

struct Npy {
    shape: Vec<usize>,
    fortran: bool,
    /// The values in file order.
    values: Vec<f64>,
}

impl Npy {
    fn read(path: &Path) -> Npy {
        let b = std::fs::read(path).unwrap();
        assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
        let (hlen, start) = match b[6] {
            1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
            2 | 3 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
            v => panic!("npy version {v}"),
        };
        let header = std::str::from_utf8(&b[start..start + hlen]).unwrap();
        let field = |key: &str| {
            let i = header.find(&format!("'{key}':")).unwrap() + key.len() + 3;
            header[i..].trim_start().to_string()
        };
        let descr_field = field("descr");
        let descr = descr_field.split('\'').nth(1).unwrap().to_string();
        let fortran = field("fortran_order").starts_with("True");
        let shape_field = field("shape");
        let shape: Vec<usize> = shape_field[1..shape_field.find(')').unwrap()]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let data = &b[start + hlen..];
        let big = descr.starts_with('>');
        let ty = descr.trim_start_matches(['<', '>', '|', '=']);
        macro_rules! conv {
            ($t:ty, $n:literal) => {
                data.chunks_exact($n)
                    .map(|c| {
                        let a: [u8; $n] = c.try_into().unwrap();
                        (if big {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        }) as f64
                    })
                    .collect::<Vec<f64>>()
            };
        }
        let values = match ty {
            "b1" | "u1" => data.iter().map(|&v| f64::from(v)).collect(),
            "i1" => data.iter().map(|&v| f64::from(v as i8)).collect(),
            "i2" => conv!(i16, 2),
            "u2" => conv!(u16, 2),
            "i4" => conv!(i32, 4),
            "u4" => conv!(u32, 4),
            "i8" => conv!(i64, 8),
            "u8" => conv!(u64, 8),
            "f4" => conv!(f32, 4),
            "f8" => conv!(f64, 8),
            other => panic!("npy dtype {other} not handled"),
        };
        let npy = Npy {
            shape,
            fortran,
            values,
        };
        assert_eq!(npy.values.len(), npy.shape.iter().product::<usize>());
        npy
    }

    /// The value at multi-index `idx`, whatever the file's memory order.
    fn at(&self, idx: &[usize]) -> f64 {
        let pairs = idx.iter().zip(&self.shape);
        let offset = if self.fortran {
            pairs.rev().fold(0, |o, (&i, &n)| o * n + i)
        } else {
            pairs.fold(0, |o, (&i, &n)| o * n + i)
        };
        self.values[offset]
    }

    /// All values in Fortran order (first index fastest) or C order (last index fastest),
    /// whatever the file's own order.
    fn ordered(&self, fortran: bool) -> Vec<f64> {
        if fortran == self.fortran {
            return self.values.clone();
        }
        let n = self.shape.len();
        let total = self.values.len();
        let mut idx = vec![0usize; n];
        (0..total)
            .map(|mut flat| {
                // Decompose `flat` in the requested order, then look the value up.
                let mut put = |(slot, &n): (&mut usize, &usize)| {
                    *slot = flat % n;
                    flat /= n;
                };
                if fortran {
                    idx.iter_mut().zip(&self.shape).for_each(&mut put);
                } else {
                    idx.iter_mut().zip(&self.shape).rev().for_each(&mut put);
                }
                self.at(&idx)
            })
            .collect()
    }
}

fn oracle(file: &str, kind: &str) -> Npy {
    Npy::read(&data_dir().join(format!("{}.{kind}.npy", stem(file))))
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_affine(got: &[[f64; 4]; 4], want: &[[f64; 4]; 4], what: &str) {
    for i in 0..4 {
        for j in 0..4 {
            assert!(
                (got[i][j] - want[i][j]).abs() <= 1e-6,
                "{what}: affine[{i}][{j}] = {} but expected {}\ngot {got:?}\nwant {want:?}",
                got[i][j],
                want[i][j]
            );
        }
    }
}

fn manifest_affine(v: &Value) -> [[f64; 4]; 4] {
    let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(f64s).collect();
    std::array::from_fn(|i| std::array::from_fn(|j| rows[i][j]))
}

// ---------------------------------------------------------------------------------------------
// The five nibabel files.

#[test]
fn every_manifest_file_matches_nibabel() {
    let entries = manifest();
    assert_eq!(entries.len(), 5);
    for e in &entries {
        let file = e["file"].as_str().unwrap();
        let path = data_dir().join(file);
        let vol = read_nifti(&path).unwrap_or_else(|err| panic!("{file}: {err}"));

        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(vol.dims, shape, "{file}: shape");
        assert_eq!(vol.shape(), &shape[..], "{file}: shape()");

        // Datatype: numpy's name; a '>' prefix means a big-endian file.
        let dtype = e["on_disk_dtype"].as_str().unwrap();
        let (name, big) = match dtype.strip_prefix('>') {
            Some(code) => (code, true),
            None => (dtype.trim_start_matches(['<', '|']), false),
        };
        let name = match name {
            "i2" => "int16",
            "u1" => "uint8",
            "i4" => "int32",
            "f4" => "float32",
            "f8" => "float64",
            other => other,
        };
        assert_eq!(vol.datatype, name, "{file}: datatype");
        assert_eq!(vol.big_endian, big, "{file}: byte order");
        let version = if e["format"] == "Nifti2Image" { 2 } else { 1 };
        assert_eq!(vol.version, version, "{file}: version");

        assert_eq!(vol.pixdim, f64s(&e["zooms"]), "{file}: zooms");
        assert_eq!(i64::from(vol.qform_code), e["qform_code"].as_i64().unwrap());
        assert_eq!(i64::from(vol.sform_code), e["sform_code"].as_i64().unwrap());
        assert_affine(&vol.affine, &manifest_affine(&e["affine"]), file);
        let units = e["xyzt_units"].as_array().unwrap();
        assert_eq!(
            vol.xyzt_units.0,
            units[0].as_str().unwrap(),
            "{file}: units"
        );
        assert_eq!(
            vol.xyzt_units.1,
            units[1].as_str().unwrap(),
            "{file}: units"
        );

        // Stored values, element by element in the oracle's (Fortran) order.
        let unscaled = oracle(file, "unscaled");
        assert_eq!(unscaled.shape, shape, "{file}: oracle shape");
        assert_eq!(vol.data.len(), unscaled.values.len());
        assert!(
            vol.data == unscaled.ordered(true),
            "{file}: stored values differ from {}.unscaled.npy",
            stem(file)
        );
        let min = vol.data.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vol.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(min, e["unscaled_min"].as_f64().unwrap(), "{file}: min");
        assert_eq!(max, e["unscaled_max"].as_f64().unwrap(), "{file}: max");

        // Scaled values (get_fdata), exactly.
        let fdata = oracle(file, "fdata");
        assert!(
            vol.scaled() == fdata.ordered(true),
            "{file}: scaled values differ from {}.fdata.npy",
            stem(file)
        );

        // C order, as numpy's ravel().
        let (npy_shape, c_values) = vol.to_npy_like();
        assert_eq!(npy_shape, shape);
        assert!(
            c_values == unscaled.ordered(false),
            "{file}: to_npy_like differs"
        );

        // Point access at the corners and the middle.
        let last: Vec<usize> = shape.iter().map(|&n| n - 1).collect();
        let mid: Vec<usize> = shape.iter().map(|&n| n / 2).collect();
        let first = vec![0; shape.len()];
        for idx in [&first, &mid, &last] {
            assert_eq!(vol.get(idx), Some(unscaled.at(idx)), "{file}: get({idx:?})");
            assert_eq!(
                vol.get_scaled(idx),
                Some(fdata.at(idx)),
                "{file}: get_scaled({idx:?})"
            );
        }
        let mut out = last.clone();
        out[0] += 1;
        assert_eq!(vol.get(&out), None);
        assert_eq!(vol.get(&last[..last.len() - 1]), None);

        // The same from memory.
        let raw = std::fs::read(&path).unwrap();
        let from_bytes = read_nifti_bytes(&raw, &path).unwrap();
        assert!(
            from_bytes == vol,
            "{file}: read_nifti_bytes differs from read_nifti"
        );
    }
}

#[test]
fn functional_has_real_scaling_and_big_endian_anatomical_reads() {
    let vol = read_nifti(&data_dir().join("functional.nii")).unwrap();
    assert_eq!(vol.scl_slope, f64::from(0.075_406_97_f32));
    assert_eq!(vol.scl_inter, 3_100.761_718_75);
    assert_eq!(vol.scaling(), Some((vol.scl_slope, vol.scl_inter)));
    assert_ne!(vol.scaled(), vol.data);
    assert_eq!(vol.volumes(), 20);

    let anat = read_nifti(&data_dir().join("anatomical.nii")).unwrap();
    assert!(anat.big_endian);
    assert_eq!(
        anat.scaling(),
        Some((1.0, 0.0)),
        "slope 1, inter 0 (as nibabel)"
    );
}

// ---------------------------------------------------------------------------------------------
// Slices.

/// The expected min–max slice from the fdata oracle, per the documented orientation.
fn expected_slice(fdata: &Npy, axis: Axis, index: usize, t: usize) -> (usize, usize, Vec<f64>) {
    let s = &fdata.shape;
    let (nx, ny, nz) = (
        s[0],
        s.get(1).copied().unwrap_or(1),
        s.get(2).copied().unwrap_or(1),
    );
    let (w, h) = match axis {
        Axis::Z => (nx, ny),
        Axis::Y => (nx, nz),
        Axis::X => (ny, nz),
    };
    let mut values = Vec::new();
    for r in 0..h {
        for c in 0..w {
            let (x, y, z) = match axis {
                Axis::Z => (c, r, index),
                Axis::Y => (c, index, r),
                Axis::X => (index, c, r),
            };
            let mut idx = vec![x, y, z];
            // Remaining axes: t decomposed (x fastest) over dims[3..].
            let mut rest = t;
            for &n in s.iter().skip(3) {
                idx.push(rest % n);
                rest /= n;
            }
            idx.truncate(s.len());
            values.push(fdata.at(&idx));
        }
    }
    (w, h, values)
}

fn minmax(values: &[f64]) -> Vec<f32> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|&v| {
            if hi > lo {
                ((v - lo) / (hi - lo) * 255.0) as f32
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn slices_match_the_oracle() {
    for e in manifest() {
        let file = e["file"].as_str().unwrap();
        let vol = read_nifti(&data_dir().join(file)).unwrap();
        let fdata = oracle(file, "fdata");
        for axis in [Axis::X, Axis::Y, Axis::Z] {
            let len = vol.axis_len(axis);
            assert_eq!(len, vol.dims[axis.index()]);
            for t in [0, vol.volumes() - 1] {
                for index in [0, len / 2, len - 1] {
                    let img = vol.slice(axis, index, t).unwrap();
                    let (w, h, values) = expected_slice(&fdata, axis, index, t);
                    assert_eq!((img.width, img.height, img.channels), (w, h, 1), "{file}");
                    assert!(img.is_consistent());
                    assert_eq!(img.pixels, minmax(&values), "{file} {axis} {index} t={t}");
                    let (lo, hi) = img
                        .pixels
                        .iter()
                        .fold((f32::MAX, f32::MIN), |(a, b), &p| (a.min(p), b.max(p)));
                    if values.iter().any(|&v| v != values[0]) {
                        assert_eq!((lo, hi), (0.0, 255.0), "{file}: min–max spans 0..=255");
                    }

                    // A CT-like window over the middle of the value range.
                    let (vmin, vmax) = values
                        .iter()
                        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                    let (center, width) = ((vmin + vmax) / 2.0, (vmax - vmin).max(1.0) / 2.0);
                    let win = vol.slice_window(axis, index, t, center, width).unwrap();
                    let lo_w = center - width / 2.0;
                    let want: Vec<f32> = values
                        .iter()
                        .map(|&v| ((v - lo_w) / width * 255.0).clamp(0.0, 255.0) as f32)
                        .collect();
                    assert_eq!(win.pixels, want, "{file} {axis} {index} window");
                }
                let all = vol.slices(axis, 0..len, t).unwrap();
                assert_eq!(all.len(), len);
                assert_eq!(all[len / 2], vol.slice(axis, len / 2, t).unwrap());
                assert!(vol.slices(axis, 1..1, t).unwrap().is_empty());
            }
        }
    }
}

#[test]
fn slice_orientation_is_documented_one() {
    // functional.nii: 17×21×3×20. Axis::Z gives 17 wide × 21 high, pixel (r, c) = voxel (c, r).
    let vol = read_nifti(&data_dir().join("functional.nii")).unwrap();
    let img = vol.slice(Axis::Z, 1, 4).unwrap();
    assert_eq!((img.width, img.height), (17, 21));
    let img = vol.slice(Axis::Y, 0, 0).unwrap();
    assert_eq!((img.width, img.height), (17, 3));
    let img = vol.slice(Axis::X, 0, 0).unwrap();
    assert_eq!((img.width, img.height), (21, 3));
}

#[test]
fn bad_slice_requests_are_errors_naming_the_file() {
    let path = data_dir().join("functional.nii");
    let vol = read_nifti(&path).unwrap();
    let is_slice_err = |r: Result<(), DataError>| match r {
        Err(e @ DataError::NiftiSlice { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("functional.nii") || msg.contains("anatomical.nii"),
                "{msg}"
            );
            true
        }
        _ => false,
    };
    assert!(is_slice_err(vol.slice(Axis::Z, 3, 0).map(|_| ())));
    assert!(is_slice_err(vol.slice(Axis::X, 17, 0).map(|_| ())));
    assert!(is_slice_err(vol.slice(Axis::Y, 0, 20).map(|_| ())));
    assert!(is_slice_err(vol.slices(Axis::Z, 0..4, 0).map(|_| ())));
    for (center, width) in [
        (0.0, 0.0),
        (0.0, -1.0),
        (0.0, f64::NAN),
        (f64::INFINITY, 1.0),
    ] {
        assert!(matches!(
            vol.slice_window(Axis::Z, 0, 0, center, width),
            Err(DataError::InvalidOption { .. })
        ));
    }
    // 3-D volume: only t = 0.
    let anat = read_nifti(&data_dir().join("anatomical.nii")).unwrap();
    assert_eq!(anat.volumes(), 1);
    assert!(is_slice_err(anat.slice(Axis::Z, 0, 1).map(|_| ())));
    // Inconsistent public fields give an error, not a panic.
    let mut broken = anat.clone();
    broken.data.truncate(10);
    assert!(is_slice_err(broken.slice(Axis::Z, 0, 0).map(|_| ())));
}

// ---------------------------------------------------------------------------------------------
// Synthetic files: a small header writer (NIfTI-1 and NIfTI-2, either byte order).

#[derive(Clone)]
struct Synth {
    version: u8,
    big: bool,
    dim: Vec<i64>,
    datatype: i16,
    bitpix: i16,
    pixdim: [f64; 8],
    vox_offset: i64,
    slope: f64,
    inter: f64,
    qform_code: i32,
    sform_code: i32,
    quatern: [f64; 6],
    srow: [[f64; 4]; 3],
    xyzt_units: i32,
    magic: Option<Vec<u8>>,
    data: Vec<u8>,
}

impl Synth {
    fn new(version: u8, big: bool, dim: &[i64], datatype: i16, bitpix: i16) -> Synth {
        Synth {
            version,
            big,
            dim: dim.to_vec(),
            datatype,
            bitpix,
            pixdim: [1.0; 8],
            vox_offset: if version == 1 { 352 } else { 544 },
            slope: 0.0,
            inter: 0.0,
            qform_code: 0,
            sform_code: 0,
            quatern: [0.0; 6],
            srow: [[0.0; 4]; 3],
            xyzt_units: 10,
            magic: None,
            data: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let hlen = if self.version == 1 { 348 } else { 540 };
        let mut b = vec![0u8; (self.vox_offset.max(hlen as i64 + 4)) as usize];
        let big = self.big;
        let mut put = |off: usize, bytes: &[u8]| b[off..off + bytes.len()].copy_from_slice(bytes);
        macro_rules! num {
            ($off:expr, $v:expr) => {
                put(
                    $off,
                    &if big {
                        $v.to_be_bytes()
                    } else {
                        $v.to_le_bytes()
                    },
                )
            };
        }
        let mut dims = [1i64; 8];
        dims[0] = self.dim.len() as i64;
        for (i, &d) in self.dim.iter().enumerate() {
            dims[i + 1] = d;
        }
        if self.version == 1 {
            num!(0, 348i32);
            for (i, &d) in dims.iter().enumerate() {
                num!(40 + 2 * i, d as i16);
            }
            num!(70, self.datatype);
            num!(72, self.bitpix);
            for (i, &p) in self.pixdim.iter().enumerate() {
                num!(76 + 4 * i, p as f32);
            }
            num!(108, self.vox_offset as f32);
            num!(112, self.slope as f32);
            num!(116, self.inter as f32);
            put(123, &[self.xyzt_units as u8]);
            num!(252, self.qform_code as i16);
            num!(254, self.sform_code as i16);
            for (i, &q) in self.quatern.iter().enumerate() {
                num!(256 + 4 * i, q as f32);
            }
            for (r, row) in self.srow.iter().enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    num!(280 + 16 * r + 4 * c, v as f32);
                }
            }
            put(344, self.magic.as_deref().unwrap_or(b"n+1\0"));
        } else {
            num!(0, 540i32);
            put(4, self.magic.as_deref().unwrap_or(b"n+2\0\r\n\x1a\n"));
            num!(12, self.datatype);
            num!(14, self.bitpix);
            for (i, &d) in dims.iter().enumerate() {
                num!(16 + 8 * i, d);
            }
            for (i, &p) in self.pixdim.iter().enumerate() {
                num!(104 + 8 * i, p);
            }
            num!(168, self.vox_offset);
            num!(176, self.slope);
            num!(184, self.inter);
            num!(344, self.qform_code);
            num!(348, self.sform_code);
            for (i, &q) in self.quatern.iter().enumerate() {
                num!(352 + 8 * i, q);
            }
            for (r, row) in self.srow.iter().enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    num!(400 + 32 * r + 8 * c, v);
                }
            }
            num!(500, self.xyzt_units);
        }
        b.extend_from_slice(&self.data);
        b
    }

    fn read(&self) -> Result<Volume, DataError> {
        read_nifti_bytes(&self.bytes(), Path::new("synthetic.nii"))
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn nifti_reason(r: Result<Volume, DataError>) -> String {
    match r {
        Err(e @ DataError::Nifti { .. }) => e.to_string(),
        Err(e) => panic!("expected DataError::Nifti, got {e:?}"),
        Ok(v) => panic!("expected an error, got a {:?} volume", v.dims),
    }
}

#[test]
fn every_datatype_in_both_byte_orders_and_versions() {
    macro_rules! case {
        ($code:expr, $t:ty, $name:expr, [$($v:expr),*]) => {{
            let values: Vec<$t> = vec![$($v),*];
            for version in [1u8, 2] {
                for big in [false, true] {
                    let mut s = Synth::new(
                        version, big, &[values.len() as i64], $code,
                        (8 * std::mem::size_of::<$t>()) as i16,
                    );
                    s.data = values
                        .iter()
                        .flat_map(|v| if big { v.to_be_bytes().to_vec() } else { v.to_le_bytes().to_vec() })
                        .collect();
                    let vol = s.read().unwrap_or_else(|e| panic!("{}: {e}", $name));
                    assert_eq!(vol.datatype, $name);
                    assert_eq!(vol.big_endian, big);
                    assert_eq!(vol.version, version);
                    let want: Vec<f64> = values.iter().map(|&v| v as f64).collect();
                    assert_eq!(vol.data, want, "{} v{version} big={big}", $name);
                    // Also through gzip.
                    let gz = read_nifti_bytes(&gzip(&s.bytes()), Path::new("s.nii.gz")).unwrap();
                    assert_eq!(gz.data, want);
                }
            }
        }};
    }
    case!(2, u8, "uint8", [0, 1, 128, 255]);
    case!(256, i8, "int8", [-128, -1, 0, 127]);
    case!(4, i16, "int16", [-32768, -2, 0, 300, 32767]);
    case!(512, u16, "uint16", [0, 1, 40000, 65535]);
    case!(8, i32, "int32", [i32::MIN, -7, 0, i32::MAX]);
    case!(768, u32, "uint32", [0, 7, u32::MAX]);
    case!(1024, i64, "int64", [i64::MIN, -1, 1 << 40]);
    case!(1280, u64, "uint64", [0, 1 << 52, u64::MAX]);
    case!(16, f32, "float32", [-1.5, 0.0, 0.1, f32::MAX]);
    case!(64, f64, "float64", [-0.25, 1e300, 0.1]);
}

#[test]
fn scaling_follows_nibabel() {
    let values: [f32; 4] = [-2.0, 0.0, 0.5, 1000.0];
    let mut s = Synth::new(1, false, &[4], 16, 32);
    s.data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    // The header's f32 slope and intercept, widened to f64, then v * slope + inter in f64.
    s.slope = 0.1;
    s.inter = -3.3;
    let vol = s.read().unwrap();
    let (slope, inter) = (f64::from(0.1f32), f64::from(-3.3f32));
    assert_eq!(vol.scaling(), Some((slope, inter)));
    let want: Vec<f64> = values
        .iter()
        .map(|&v| f64::from(v) * slope + inter)
        .collect();
    assert_eq!(vol.scaled(), want);
    assert_eq!(vol.get_scaled(&[3]), Some(want[3]));

    // Slope 0 or NaN: no scaling (whatever the intercept).
    for slope in [0.0, f64::NAN, f64::INFINITY] {
        s.slope = slope;
        s.inter = 5.0;
        let vol = s.read().unwrap();
        assert_eq!(vol.scaling(), None);
        assert_eq!(vol.scaled(), vol.data);
    }
    // A valid slope with a non-finite intercept is refused (nibabel raises too).
    s.slope = 2.0;
    s.inter = f64::NAN;
    assert!(nifti_reason(s.read()).contains("scl_inter"));

    // NIfTI-2 keeps f64 scaling fields.
    let mut s2 = Synth::new(2, true, &[2], 4, 16);
    s2.data = [7i16, -7].iter().flat_map(|v| v.to_be_bytes()).collect();
    s2.slope = 0.1;
    s2.inter = 0.2;
    assert_eq!(
        s2.read().unwrap().scaled(),
        vec![7.0 * 0.1 + 0.2, -7.0 * 0.1 + 0.2]
    );
}

#[test]
fn qform_and_base_affines_match_nibabel() {
    // Reference values: nibabel 5.4.2, Nifti1Image/Nifti2Image.from_file_map on the same
    // bytes with sform_code (and qform_code) patched to 0, then `img.affine`.
    let (_, ex4) = raw_and_plain("example4d.nii.gz");
    let mut b = ex4.clone();
    b[254..256].copy_from_slice(&0i16.to_le_bytes());
    let v = read_nifti_bytes(&b, Path::new("ex4")).unwrap();
    assert_eq!(v.sform_code, 0);
    assert_affine(
        &v.affine,
        &[
            [
                -2.0,
                7.754818083349146e-26,
                -6.938240866840628e-27,
                117.8551025390625,
            ],
            [
                7.754818083349146e-26,
                1.9737114380100416,
                -0.3555282251099068,
                -35.72294235229492,
            ],
            [
                6.307494294641728e-27,
                0.3232076104740321,
                2.1710816877290404,
                -7.248798370361328,
            ],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "example4d qform",
    );

    // NIfTI-2 keeps f64 quaternions: w is not snapped to 0, hence the small off-diagonals.
    let (_, n2) = raw_and_plain("example_nifti2.nii.gz");
    let mut b = n2.clone();
    b[348..352].copy_from_slice(&0i32.to_le_bytes());
    let v = read_nifti_bytes(&b, Path::new("n2")).unwrap();
    assert_affine(
        &v.affine,
        &[
            [
                -1.999999995978187,
                1.0282396754185892e-05,
                0.00013905980362440367,
                117.8551025390625,
            ],
            [
                -1.0282396754185892e-05,
                1.9737114380364735,
                -0.3555282247524397,
                -35.72294235229492,
            ],
            [
                0.00012641805535562603,
                0.32320761014906196,
                2.1710816833341227,
                -7.248798370361328,
            ],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "example_nifti2 qform",
    );

    // Big-endian qform.
    let mut b = std::fs::read(data_dir().join("anatomical.nii")).unwrap();
    b[254..256].copy_from_slice(&0i16.to_be_bytes());
    let v = read_nifti_bytes(&b, Path::new("anat")).unwrap();
    assert_affine(
        &v.affine,
        &[
            [-2.0, 0.0, 0.0, 32.0],
            [0.0, 2.0, 0.0, -40.0],
            [0.0, 0.0, 2.0, -16.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "anatomical qform",
    );

    // No transform at all: the base affine (centred, x flipped), 4-D.
    let mut b = std::fs::read(data_dir().join("functional.nii")).unwrap();
    b[252..256].copy_from_slice(&[0; 4]);
    let v = read_nifti_bytes(&b, Path::new("func")).unwrap();
    assert_affine(
        &v.affine,
        &[
            [-4.0, 0.0, 0.0, 32.0],
            [0.0, 4.0, 0.0, -40.0],
            [0.0, 0.0, 8.0, -8.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "functional base",
    );

    // 2-D and 4-D synthetic base affines (nibabel: Nifti1Header with set_data_shape/set_zooms,
    // get_base_affine()).
    let mut s = Synth::new(1, false, &[3, 2], 2, 8);
    s.pixdim = [1.0, 1.5, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    s.data = vec![0; 6];
    assert_affine(
        &s.read().unwrap().affine,
        &[
            [-1.5, 0.0, 0.0, 1.5],
            [0.0, 2.0, 0.0, -1.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "2-D base",
    );
    let mut s = Synth::new(2, true, &[4, 5, 6, 2], 2, 8);
    s.pixdim = [1.0, 1.5, 2.0, 2.5, 3.0, 1.0, 1.0, 1.0];
    s.data = vec![0; 240];
    assert_affine(
        &s.read().unwrap().affine,
        &[
            [-1.5, 0.0, 0.0, 2.25],
            [0.0, 2.0, 0.0, -4.0],
            [0.0, 0.0, 2.5, -6.25],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "4-D base",
    );

    // nibabel's load-time fixes: negative pixdim → abs, zero → 1, qfac not ±1 → 1; codes
    // outside 0..=5 → 0.
    let mut s = Synth::new(1, false, &[2, 2, 2], 2, 8);
    s.pixdim = [0.0, -2.0, 0.0, 3.0, 1.0, 1.0, 1.0, 1.0];
    s.qform_code = 1;
    s.sform_code = 9;
    s.quatern[3..].copy_from_slice(&[10.0, 20.0, 30.0]);
    s.data = vec![0; 8];
    let v = s.read().unwrap();
    assert_eq!(v.pixdim, vec![2.0, 1.0, 3.0]);
    assert_eq!(v.sform_code, 0);
    assert_affine(
        &v.affine,
        &[
            [2.0, 0.0, 0.0, 10.0],
            [0.0, 1.0, 0.0, 20.0],
            [0.0, 0.0, 3.0, 30.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        "fixed pixdims",
    );
    // A quaternion longer than 1 is refused, as nibabel refuses it.
    s.quatern[..3].copy_from_slice(&[0.9, 0.9, 0.0]);
    assert!(nifti_reason(s.read()).contains("quaternion"));
}

// ---------------------------------------------------------------------------------------------
// Bad input: errors, never panics, and no allocation beyond the limits.

#[test]
fn truncated_files_are_errors() {
    for e in manifest() {
        let file = e["file"].as_str().unwrap();
        let (raw, plain) = raw_and_plain(file);
        for bytes in [&raw, &plain] {
            let n = bytes.len();
            let mut lengths = vec![0, 1, 2, 4, 100, 347, 348, 351, 352, 539, 540, 544, 600];
            lengths.extend([n / 4, n / 2, n - 9, n - 8, n - 4, n - 1]);
            for len in lengths.into_iter().filter(|&l| l < n) {
                let reason = nifti_reason(read_nifti_bytes(&bytes[..len], Path::new(file)));
                assert!(reason.contains(file), "{reason}");
            }
        }
    }
    // Through the file system too.
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = raw_and_plain("example4d.nii.gz");
    let path = dir.path().join("cut.nii.gz");
    std::fs::write(&path, &raw[..raw.len() / 2]).unwrap();
    assert!(nifti_reason(read_nifti(&path)).contains("cut.nii.gz"));
    let path = dir.path().join("cut.nii");
    let anat = std::fs::read(data_dir().join("anatomical.nii")).unwrap();
    std::fs::write(&path, &anat[..anat.len() - 1]).unwrap();
    let reason = nifti_reason(read_nifti(&path));
    assert!(reason.contains("truncated"), "{reason}");
    assert!(matches!(
        read_nifti(&dir.path().join("missing.nii")),
        Err(DataError::NotFound { .. })
    ));
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn byte_flips_and_garbage_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = (0usize, 0usize);
    for e in manifest() {
        let file = e["file"].as_str().unwrap();
        let (raw, plain) = raw_and_plain(file);
        let variants: Vec<&Vec<u8>> = if raw == plain {
            vec![&raw]
        } else {
            vec![&raw, &plain]
        };
        for bytes in variants {
            for trial in 0..120 {
                let mut b = bytes.clone();
                for _ in 0..1 + rng.below(4) {
                    // Mostly in the header, where flips matter most.
                    let pos = if trial % 4 == 0 {
                        rng.below(b.len())
                    } else {
                        rng.below(b.len().min(560))
                    };
                    b[pos] ^= 1 << rng.below(8);
                }
                match read_nifti_bytes(&b, Path::new(file)) {
                    Ok(v) => {
                        outcomes.0 += 1;
                        assert_eq!(v.data.len(), v.dims.iter().product::<usize>());
                        assert_eq!(v.pixdim.len(), v.dims.len());
                        let _ = v.slice(Axis::Z, 0, 0);
                        let _ = v.scaled();
                    }
                    Err(err) => {
                        outcomes.1 += 1;
                        assert!(err.to_string().contains(file), "{err}");
                    }
                }
            }
        }
    }
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");

    // Pure garbage, and garbage after a plausible first word.
    for len in [0usize, 1, 3, 347, 348, 540, 1000, 5000] {
        for _ in 0..20 {
            let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(read_nifti_bytes(&b, Path::new("junk")).is_err());
            if len >= 4 {
                b[..4].copy_from_slice(&348i32.to_le_bytes());
                assert!(read_nifti_bytes(&b, Path::new("junk")).is_err());
                b[..2].copy_from_slice(&[0x1f, 0x8b]);
                assert!(read_nifti_bytes(&b, Path::new("junk")).is_err());
            }
        }
    }
}

#[test]
fn huge_or_inconsistent_sizes_are_refused_before_allocating() {
    assert_eq!(NIFTI_MAX_BYTES, 1 << 31);
    // 32767³ int16: far over the limit.
    let s = Synth::new(1, false, &[32767, 32767, 32767], 4, 16);
    assert!(nifti_reason(s.read()).contains("too large"));
    // 2^28 + 1 voxels of uint8: just over the limit as f64.
    let s = Synth::new(1, true, &[16385, 16384], 2, 8);
    assert!(nifti_reason(s.read()).contains("too large"));
    // NIfTI-2 i64 dims whose product overflows.
    let s = Synth::new(2, false, &[1 << 62, 1 << 62, 4], 2, 8);
    assert!(nifti_reason(s.read()).contains("too large"));
    // Within the limit, but the file does not hold it.
    let mut s = Synth::new(1, false, &[1000, 1000, 100], 4, 16);
    s.data = vec![0; 10];
    let reason = nifti_reason(s.read());
    assert!(
        reason.contains("only") && reason.contains("200000000 bytes"),
        "{reason}"
    );
    // A gzip stream far too small for what its header declares.
    let reason = nifti_reason(read_nifti_bytes(&gzip(&s.bytes()), Path::new("s.nii.gz")));
    assert!(reason.contains("gzip stream can hold"), "{reason}");
    // A gzip stream that could hold it but does not.
    let mut s = Synth::new(1, false, &[100, 100, 10], 4, 16);
    let mut rng = Rng(7);
    s.data = (0..150_000).map(|_| rng.next() as u8).collect();
    let reason = nifti_reason(read_nifti_bytes(&gzip(&s.bytes()), Path::new("s.nii.gz")));
    assert!(reason.contains("truncated"), "{reason}");
    // Bytes after the data are ignored (nibabel ignores them too).
    s.data = vec![0; 200_000 + 7];
    assert_eq!(s.read().unwrap().data.len(), 100_000);
}

#[test]
fn unsupported_or_malformed_headers_are_explained() {
    let ok = |v: u8| {
        let mut s = Synth::new(v, false, &[2, 2], 2, 8);
        s.data = vec![1, 2, 3, 4];
        s
    };
    assert_eq!(ok(1).read().unwrap().data, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ok(2).read().unwrap().data, vec![1.0, 2.0, 3.0, 4.0]);

    let check = |s: Synth, needle: &str| {
        let reason = nifti_reason(s.read());
        assert!(reason.contains(needle), "expected {needle:?} in: {reason}");
        assert!(reason.contains("synthetic.nii"), "{reason}");
    };
    let mut s = ok(1);
    s.magic = Some(b"ni1\0".to_vec());
    check(s, ".hdr/.img pair");
    let mut s = ok(2);
    s.magic = Some(b"ni2\0\r\n\x1a\n".to_vec());
    check(s, ".hdr/.img pair");
    let mut s = ok(1);
    s.magic = Some(b"abc\0".to_vec());
    check(s, "magic");
    let mut s = ok(2);
    s.magic = Some(b"n+2\0\n\n\x1a\n".to_vec());
    check(s, "EOL");
    let mut s = ok(1);
    s.datatype = 32;
    check(s, "complex64");
    let mut s = ok(2);
    s.datatype = 128;
    check(s, "RGB24");
    let mut s = ok(1);
    s.datatype = 3;
    check(s, "not a NIfTI datatype");
    let mut s = ok(1);
    s.vox_offset = 0;
    check(s, "vox_offset");
    let mut s = ok(2);
    s.vox_offset = 540;
    check(s, "vox_offset");
    let mut s = ok(1);
    s.dim = vec![2, 0];
    check(s, "dim[2] is 0");
    let mut s = ok(2);
    s.dim = vec![2, -5];
    check(s, "dim[2] is -5");
    let mut b = ok(1).bytes();
    b[40..42].copy_from_slice(&8i16.to_le_bytes());
    let reason = nifti_reason(read_nifti_bytes(&b, Path::new("x.nii")));
    assert!(reason.contains("dim[0] is 8"), "{reason}");
    let mut b = ok(1).bytes();
    b[..4].copy_from_slice(&349i32.to_le_bytes());
    let reason = nifti_reason(read_nifti_bytes(&b, Path::new("x.nii")));
    assert!(reason.contains("sizeof_hdr"), "{reason}");

    // Extensions between the header and the data are skipped (example4d has one); a synthetic
    // one too, with vox_offset 400.
    let mut s = ok(1);
    s.vox_offset = 400;
    assert_eq!(s.read().unwrap().data, vec![1.0, 2.0, 3.0, 4.0]);
}
