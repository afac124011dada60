//! DICOM reading, checked against pydicom's decoded arrays in `../shared/data/dicom`
//! (see that folder's `MANIFEST.json` and `../shared/data/README.md`).

use std::path::{Path, PathBuf};

use medai_data::{
    DataError, DicomImage, IMAGE_EXTENSIONS, StoredValues, Window, WindowChoice, WindowPreset,
    decode_image_bytes, has_image_extension, load_image, read_dicom, read_dicom_bytes,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dicom")
}

fn dcm(name: &str) -> PathBuf {
    data_dir().join(name)
}

fn read(name: &str) -> DicomImage {
    read_dicom(&dcm(name)).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------
// A small .npy reader for the oracles.

struct Npy {
    descr: String,
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn parse_npy(b: &[u8], what: &str) -> Npy {
    assert_eq!(&b[..6], b"\x93NUMPY", "{what}: not a .npy file");
    let (hlen, start) = match b[6] {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
        _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(&b[start..start + hlen]).expect("ascii header");
    assert!(
        header.contains("'fortran_order': False"),
        "{what}: {header}"
    );
    let descr = header
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("descr")
        .to_string();
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("dimension"))
        .collect();
    let data = &b[start + hlen..];
    fn le<const N: usize>(d: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        d.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk")))
            .collect()
    }
    let values = match descr.as_str() {
        "|u1" => data.iter().map(|&x| f64::from(x)).collect(),
        "|i1" => data.iter().map(|&x| f64::from(x as i8)).collect(),
        "<u2" => le(data, |c| f64::from(u16::from_le_bytes(c))),
        "<i2" => le(data, |c| f64::from(i16::from_le_bytes(c))),
        "<u4" => le(data, |c| f64::from(u32::from_le_bytes(c))),
        "<i4" => le(data, |c| f64::from(i32::from_le_bytes(c))),
        "<f4" => le(data, |c| f64::from(f32::from_le_bytes(c))),
        "<f8" => le(data, f64::from_le_bytes),
        d => panic!("{what}: unexpected dtype {d}"),
    };
    assert_eq!(values.len(), shape.iter().product::<usize>(), "{what}");
    Npy {
        descr,
        shape,
        values,
    }
}

fn read_npy(name: &str) -> Npy {
    let p = dcm(name);
    let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    parse_npy(&b, name)
}

fn numpy_descr(dtype: &str) -> &'static str {
    match dtype {
        "uint8" => "|u1",
        "int8" => "|i1",
        "uint16" => "<u2",
        "int16" => "<i2",
        "uint32" => "<u4",
        "int32" => "<i4",
        "float32" => "<f4",
        "float64" => "<f8",
        d => panic!("unexpected manifest dtype {d}"),
    }
}

fn manifest() -> Vec<serde_json::Value> {
    let p = data_dir().join("MANIFEST.json");
    let text = std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared DICOM data must be present beside the project)",
            p.display()
        )
    });
    let m: serde_json::Value = serde_json::from_slice(&text).expect("MANIFEST.json");
    m["files"].as_array().expect("files").clone()
}

/// Transfer syntaxes whose decoding may differ from pydicom's by a few grey levels.
const LOSSY: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.91",
];

/// Transfer syntaxes this build cannot decode (see the `dicom` module doc), with a word the
/// error must contain.
const UNSUPPORTED: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------------------
// Every file against its oracle.

#[test]
fn every_manifest_file_matches_its_pydicom_oracle() {
    let files = manifest();
    assert_eq!(files.len(), 29, "MANIFEST.json lists 29 files");
    let mut report = Vec::new();
    for f in &files {
        let name = f["file"].as_str().expect("file");
        let ts = f["transfer_syntax"].as_str().expect("transfer_syntax");
        let result = read_dicom(&dcm(name));
        if let Some((_, word)) = UNSUPPORTED.iter().find(|(uid, _)| *uid == ts) {
            match result {
                Err(e @ DataError::DicomUnsupported { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(word) && msg.contains(name), "{msg}");
                    report.push(format!("{name}: unsupported ({word})"));
                    continue;
                }
                Ok(_) => panic!("{name}: {word} decoded; move it out of UNSUPPORTED"),
                Err(e) => panic!("{name}: expected DicomUnsupported, got {e}"),
            }
        }
        let img = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let npy = read_npy(f["npy"].as_str().expect("npy"));

        // Header fields as the manifest lists them.
        assert_eq!(img.transfer_syntax, ts, "{name}");
        assert_eq!(img.rows as u64, f["rows"].as_u64().unwrap(), "{name}");
        assert_eq!(img.cols as u64, f["cols"].as_u64().unwrap(), "{name}");
        assert_eq!(img.frames as u64, f["frames"].as_u64().unwrap(), "{name}");
        assert_eq!(
            u64::from(img.bits_allocated),
            f["bits_allocated"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(img.bits_stored),
            f["bits_stored"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            img.signed,
            f["pixel_representation"].as_u64() == Some(1),
            "{name}"
        );
        assert_eq!(
            img.photometric,
            f["photometric"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            img.samples_per_pixel as u64,
            f["samples_per_pixel"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(img.modality.as_deref(), f["modality"].as_str(), "{name}");
        match (f["rescale_slope"].as_str(), f["rescale_intercept"].as_str()) {
            (Some(s), Some(i)) => {
                let r = img.rescale.unwrap_or_else(|| panic!("{name}: no rescale"));
                assert_eq!(r.slope, s.parse::<f64>().unwrap(), "{name}");
                assert_eq!(r.intercept, i.parse::<f64>().unwrap(), "{name}");
            }
            _ => assert_eq!(img.rescale, None, "{name}"),
        }

        // Shape and dtype as the oracle's.
        let (shape, values) = img.stored_array();
        let want_shape: Vec<usize> = f["npy_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, want_shape, "{name}: shape");
        assert_eq!(shape, npy.shape, "{name}: shape");
        assert_eq!(
            values.npy_descr(),
            numpy_descr(f["npy_dtype"].as_str().unwrap()),
            "{name}: dtype"
        );
        assert_eq!(values.npy_descr(), npy.descr, "{name}: dtype");
        assert_eq!(values.len(), npy.values.len(), "{name}: length");

        // Values: bit-exact for lossless syntaxes, within 8 grey levels for lossy ones.
        let mut max_diff = 0f64;
        let mut differing = 0usize;
        for (i, &want) in npy.values.iter().enumerate() {
            let d = (values.get_f64(i).unwrap() - want).abs();
            if d > 0.0 {
                differing += 1;
                max_diff = max_diff.max(d);
            }
        }
        if LOSSY.contains(&ts) {
            assert!(
                max_diff <= 8.0,
                "{name} (lossy {ts}): max abs diff {max_diff} over 8 grey levels ({differing} samples differ)"
            );
            report.push(format!(
                "{name}: lossy, max abs diff {max_diff} ({differing} of {} samples differ)",
                npy.values.len()
            ));
        } else {
            assert_eq!(
                differing, 0,
                "{name} (lossless {ts}): {differing} samples differ, max abs diff {max_diff}"
            );
            // The .npy we write is the oracle's file, byte for byte.
            let oracle = std::fs::read(dcm(f["npy"].as_str().unwrap())).unwrap();
            let ours = img.npy_bytes();
            let ours_parsed = parse_npy(&ours, name);
            assert_eq!(ours_parsed.shape, npy.shape, "{name}: npy_bytes shape");
            assert_eq!(ours_parsed.descr, npy.descr, "{name}: npy_bytes dtype");
            assert!(ours_parsed.values == npy.values, "{name}: npy_bytes values");
            assert_eq!(
                ours, oracle,
                "{name}: npy_bytes differs from the oracle file"
            );
            report.push(format!("{name}: exact"));
        }

        // Modality LUT: exactly pydicom's apply_modality_lut.
        if let Some(m) = f["modality_npy"].as_str() {
            let hu = read_npy(m);
            assert_eq!(hu.descr, "<f8", "{m}");
            assert!(
                img.modality_lut() == hu.values,
                "{name}: modality LUT differs"
            );
            let ours = parse_npy(&img.hu_npy_bytes(), name);
            assert_eq!(ours.shape, hu.shape, "{name}: hu_npy_bytes shape");
            assert!(ours.values == hu.values, "{name}: hu_npy_bytes values");
            let mn = hu.values.iter().copied().fold(f64::INFINITY, f64::min);
            let mx = hu.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(mn, f["modality_min"].as_f64().unwrap(), "{name}");
            assert_eq!(mx, f["modality_max"].as_f64().unwrap(), "{name}");
        }

        // Every frame renders.
        for frame in 0..img.frames {
            let raw = img
                .to_raw_image(frame, WindowChoice::FromFile)
                .unwrap_or_else(|e| panic!("{name} frame {frame}: {e}"));
            assert!(raw.is_consistent(), "{name}");
            assert!(
                raw.pixels.iter().all(|p| (0.0..=255.0).contains(p)),
                "{name}: pixel off the 0..=255 scale"
            );
            let want_channels = if img.samples_per_pixel == 3 || img.photometric == "PALETTE COLOR"
            {
                3
            } else {
                1
            };
            assert_eq!(
                (raw.width, raw.height, raw.channels),
                (img.cols, img.rows, want_channels)
            );
        }
    }
    println!("{}", report.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Geometry (values from the files' headers, as pydicom 3.0.2 shows them).

#[test]
fn geometry_is_read_with_the_pixels() {
    let ct = read("CT_small.dcm");
    let g = &ct.geometry;
    assert_eq!(g.pixel_spacing, Some([0.661468, 0.661468]));
    assert_eq!(g.image_orientation, Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
    assert_eq!(
        g.image_position,
        Some([-158.135803, -179.035797, -75.699997])
    );
    assert_eq!(g.slice_thickness, Some(5.0));
    assert_eq!(g.spacing_between_slices, Some(5.0));

    for name in [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
    ] {
        let mr = read(name);
        let g = &mr.geometry;
        assert_eq!(g.pixel_spacing, Some([0.3125, 0.3125]), "{name}");
        assert_eq!(
            g.image_orientation,
            Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            "{name}"
        );
        assert_eq!(g.image_position, Some([-83.9063, -91.2, 6.6406]), "{name}");
        assert_eq!(g.slice_thickness, Some(0.8), "{name}");
        assert_eq!(g.spacing_between_slices, None, "{name}");
        assert_eq!(
            mr.windows,
            vec![Window {
                center: 600.0,
                width: 1600.0
            }],
            "{name}"
        );
    }

    let ct2 = read("693_UNCI.dcm");
    assert_eq!(ct2.geometry.pixel_spacing, Some([0.478516, 0.478516]));
    assert_eq!(ct2.geometry.image_position, Some([-122.5, -112.4, 47.0]));
    assert_eq!(ct2.geometry.spacing_between_slices, Some(20.0));
    assert_eq!(
        ct2.windows,
        vec![Window {
            center: 40.0,
            width: 100.0
        }]
    );

    // Enhanced multi-frame (SEG): from the shared / first per-frame functional groups.
    let seg = read("liver.dcm");
    let g = &seg.geometry;
    assert_eq!(g.pixel_spacing, Some([0.810547, 0.810547]));
    assert_eq!(g.image_orientation, Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
    assert_eq!(g.image_position, Some([-235.2, -226.8, -128.69]));
    assert_eq!(g.slice_thickness, Some(1.0));
    assert_eq!(g.spacing_between_slices, Some(1.0));

    let emri = read("emri_small.dcm");
    assert_eq!(emri.geometry.pixel_spacing, None);
    assert_eq!(emri.geometry.spacing_between_slices, Some(1.2));
    assert_eq!(emri.burned_in_annotation.as_deref(), Some("NO"));

    let dose = read("rtdose.dcm");
    assert_eq!(dose.geometry.pixel_spacing, Some([10.0, 10.0]));
    assert_eq!(
        dose.geometry.image_position,
        Some([189.43125, 199.43125, -761.87])
    );
}

// ---------------------------------------------------------------------------------------
// Windowing.

/// The linear VOI function of PS3.3 C.11.2.1.2.1, written out independently.
fn linear_voi(x: f64, c: f64, w: f64) -> f64 {
    if x <= c - 0.5 - (w - 1.0) / 2.0 {
        0.0
    } else if x > c - 0.5 + (w - 1.0) / 2.0 {
        255.0
    } else {
        ((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
    }
}

#[test]
fn window_presets_have_the_documented_clamp_points() {
    let documented = [
        (WindowPreset::Lung, -600.0, 1500.0, -1350.0, 149.0),
        (WindowPreset::Mediastinum, 50.0, 350.0, -125.0, 224.0),
        (WindowPreset::Bone, 400.0, 1800.0, -500.0, 1299.0),
        (WindowPreset::Brain, 40.0, 80.0, 0.0, 79.0),
        (WindowPreset::SoftTissue, 40.0, 400.0, -160.0, 239.0),
    ];
    assert_eq!(WindowPreset::ALL.len(), documented.len());
    for (p, c, w, low, high) in documented {
        let win = p.window();
        assert_eq!((win.center, win.width), (c, w), "{p:?}");
        assert_eq!(win.bounds(), (low, high), "{p:?}");
        assert_eq!(win.apply(low), 0.0, "{p:?}: the low clamp point is black");
        assert_eq!(win.apply(low - 1000.0), 0.0, "{p:?}");
        assert!(
            win.apply(low + 0.5) > 0.0,
            "{p:?}: just above low is not black"
        );
        assert_eq!(
            win.apply(high),
            255.0,
            "{p:?}: the high clamp point is white"
        );
        assert_eq!(
            win.apply(high + 1000.0),
            255.0,
            "{p:?}: above high is white"
        );
        assert!(
            win.apply(high - 0.5) < 255.0,
            "{p:?}: just below high is not white"
        );
        assert!(
            (f64::from(win.apply(c)) - linear_voi(c, c, w)).abs() < 1e-3,
            "{p:?}"
        );
        assert!(!p.name().is_empty());
    }

    // On a real CT, every pixel follows the function on Hounsfield units.
    let ct = read("CT_small.dcm");
    let hu = ct.modality_lut();
    for p in WindowPreset::ALL {
        let raw = ct.to_raw_image(0, WindowChoice::Preset(p)).unwrap();
        let w = p.window();
        for (i, &x) in hu.iter().enumerate() {
            let want = linear_voi(x, w.center, w.width);
            assert!(
                (f64::from(raw.pixels[i]) - want).abs() < 1e-3,
                "{p:?}: pixel {i} HU {x} gave {} want {want}",
                raw.pixels[i]
            );
        }
    }
    let custom = ct
        .to_raw_image(
            0,
            WindowChoice::Custom {
                center: 0.0,
                width: 2000.0,
            },
        )
        .unwrap();
    for (i, &x) in hu.iter().enumerate() {
        assert!((f64::from(custom.pixels[i]) - linear_voi(x, 0.0, 2000.0)).abs() < 1e-3);
    }
}

#[test]
fn from_file_window_and_min_max() {
    // MR_small has Window 600/1600.
    let mr = read("MR_small.dcm");
    let raw = mr.to_raw_image(0, WindowChoice::FromFile).unwrap();
    let stored = mr.modality_lut();
    for (i, &x) in stored.iter().enumerate() {
        assert!((f64::from(raw.pixels[i]) - linear_voi(x, 600.0, 1600.0)).abs() < 1e-3);
    }
    // CT_small has no window: FromFile falls back to min–max of the HU values.
    let ct = read("CT_small.dcm");
    let from_file = ct.to_raw_image(0, WindowChoice::FromFile).unwrap();
    let minmax = ct.to_raw_image(0, WindowChoice::MinMax).unwrap();
    assert_eq!(from_file, minmax);
    let hu = ct.modality_lut();
    let (lo, hi) = (-896.0, 1167.0);
    for (i, &x) in hu.iter().enumerate() {
        let want = (x - lo) / (hi - lo) * 255.0;
        assert!((f64::from(minmax.pixels[i]) - want).abs() < 1e-3);
    }
    assert_eq!(
        minmax.pixels.iter().copied().fold(f32::INFINITY, f32::min),
        0.0
    );
    assert_eq!(minmax.pixels.iter().copied().fold(0.0, f32::max), 255.0);

    // Bad requests are errors naming the problem.
    let e = ct
        .to_raw_image(
            0,
            WindowChoice::Custom {
                center: 0.0,
                width: 0.5,
            },
        )
        .unwrap_err();
    assert!(matches!(e, DataError::InvalidOption { .. }), "{e}");
    let e = ct.to_raw_image(1, WindowChoice::FromFile).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::DicomFrame {
                frame: 1,
                frames: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("CT_small.dcm"), "{e}");
    let emri = read("emri_small.dcm");
    assert!(emri.to_raw_image(9, WindowChoice::MinMax).is_ok());
    assert!(emri.to_raw_image(10, WindowChoice::MinMax).is_err());
}

// ---------------------------------------------------------------------------------------
// Palette colour on the real ultrasound file, its LUT read independently with dicom-object.

#[test]
fn palette_color_maps_indices_through_the_file_luts() {
    use dicom_dictionary_std::tags;
    let path = dcm("OBXXXX1A.dcm");
    let obj = dicom_object::open_file(&path).unwrap();
    let lut = |desc, data| -> (Vec<i64>, Vec<u16>) {
        let d: Vec<i64> = obj.element(desc).unwrap().to_multi_int().unwrap();
        let v: Vec<u16> = obj.element(data).unwrap().to_multi_int().unwrap();
        (d, v)
    };
    let luts = [
        lut(
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ),
        lut(
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ),
        lut(
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ),
    ];
    for (d, v) in &luts {
        assert_eq!(
            d,
            &vec![256, 0, 16],
            "this file has 256 16-bit entries from 0"
        );
        assert_eq!(v.len(), 256);
    }
    let img = read("OBXXXX1A.dcm");
    let StoredValues::U8(idx) = img.stored() else {
        panic!("palette indices are 8-bit")
    };
    let raw = img.to_raw_image(0, WindowChoice::FromFile).unwrap();
    assert_eq!(raw.channels, 3);
    let mut colourful = 0;
    for (i, &k) in idx.iter().enumerate() {
        let want: Vec<f32> = luts
            .iter()
            .map(|(_, v)| f32::from(v[usize::from(k)]) / 257.0)
            .collect();
        assert_eq!(
            &raw.pixels[3 * i..3 * i + 3],
            &want[..],
            "pixel {i} index {k}"
        );
        if want[0] != want[1] || want[1] != want[2] {
            colourful += 1;
        }
    }
    assert!(colourful > 0, "the palette gives colour, not grey");
}

// ---------------------------------------------------------------------------------------
// Synthetic files: MONOCHROME1, palettes, 1-bit, sign extension, planar RGB, YBR.

/// One data element for [`dicom_file`]: group, element, VR, value.
type Elem = (u16, u16, &'static str, Vec<u8>);

fn us(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// An explicit VR little endian Part 10 file with the given (sorted) data set elements.
fn dicom_file(ts: &str, elems: &[Elem]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, (g, e, vr, value): &Elem) {
        let mut value = value.clone();
        if value.len() % 2 == 1 {
            value.push(if *vr == "UI" || *vr == "OB" { 0 } else { b' ' });
        }
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(vr.as_bytes());
        if ["OB", "OW", "OF", "OD", "SQ", "UN", "UT"].contains(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(&value);
    }
    let mut meta = Vec::new();
    for el in [
        (0x0002, 0x0001, "OB", vec![0, 1]),
        (0x0002, 0x0002, "UI", text("1.2.840.10008.5.1.4.1.1.7")),
        (0x0002, 0x0003, "UI", text("1.2.3.4.5")),
        (0x0002, 0x0010, "UI", text(ts)),
    ] {
        put(&mut meta, &el);
    }
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    put(
        &mut out,
        &(
            0x0002,
            0x0000,
            "UL",
            (meta.len() as u32).to_le_bytes().to_vec(),
        ),
    );
    out.extend_from_slice(&meta);
    for el in elems {
        put(&mut out, el);
    }
    out
}

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// Image pixel module elements (sorted by tag) followed by the pixel data; `bits` is
/// (allocated, stored).
fn image(
    photometric: &str,
    (rows, cols, samples): (u16, u16, u16),
    bits: (u16, u16),
    signed: bool,
    extra: &[Elem],
    pixels: Vec<u8>,
) -> Vec<u8> {
    let mut elems: Vec<Elem> = vec![
        (0x0008, 0x0060, "CS", text("OT")),
        (0x0028, 0x0002, "US", us(&[samples])),
        (0x0028, 0x0004, "CS", text(photometric)),
        (0x0028, 0x0010, "US", us(&[rows])),
        (0x0028, 0x0011, "US", us(&[cols])),
        (0x0028, 0x0100, "US", us(&[bits.0])),
        (0x0028, 0x0101, "US", us(&[bits.1])),
        (0x0028, 0x0102, "US", us(&[bits.1 - 1])),
        (0x0028, 0x0103, "US", us(&[u16::from(signed)])),
    ];
    elems.extend(extra.iter().cloned());
    elems.sort_by_key(|(g, e, _, _)| (*g, *e));
    elems.push((0x7FE0, 0x0010, if bits.0 > 8 { "OW" } else { "OB" }, pixels));
    dicom_file(EXPLICIT_LE, &elems)
}

fn decode(bytes: &[u8]) -> DicomImage {
    read_dicom_bytes(bytes, Path::new("synthetic.dcm")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn monochrome1_is_inverted() {
    let px: Vec<u8> = (0u16..16).flat_map(|v| (v * 100).to_le_bytes()).collect();
    let mono2 = decode(&image(
        "MONOCHROME2",
        (4, 4, 1),
        (16, 12),
        false,
        &[],
        px.clone(),
    ));
    let mono1 = decode(&image("MONOCHROME1", (4, 4, 1), (16, 12), false, &[], px));
    assert_eq!(
        mono1.stored(),
        mono2.stored(),
        "inversion is a display step"
    );
    for choice in [
        WindowChoice::MinMax,
        WindowChoice::FromFile,
        WindowChoice::Custom {
            center: 700.0,
            width: 600.0,
        },
    ] {
        let a = mono2.to_raw_image(0, choice).unwrap();
        let b = mono1.to_raw_image(0, choice).unwrap();
        for (x, y) in a.pixels.iter().zip(&b.pixels) {
            assert_eq!(*y, 255.0 - x, "{choice:?}");
        }
    }
    // The darkest stored value is white in MONOCHROME1.
    let b = mono1.to_raw_image(0, WindowChoice::MinMax).unwrap();
    assert_eq!(b.pixels[0], 255.0);
    assert_eq!(b.pixels[15], 0.0);
}

#[test]
fn palette_with_first_mapped_value_and_8_bit_entries() {
    // 4 entries starting at stored value 10; 8-bit entries packed two per OW word.
    let desc = us(&[4, 10, 8]);
    let red = vec![0u8, 85, 170, 255];
    let green = vec![255u8, 170, 85, 0];
    let blue = vec![7u8, 7, 7, 7];
    let extra = vec![
        (0x0028, 0x1101, "US", desc.clone()),
        (0x0028, 0x1102, "US", desc.clone()),
        (0x0028, 0x1103, "US", desc),
        (0x0028, 0x1201, "OW", red.clone()),
        (0x0028, 0x1202, "OW", green.clone()),
        (0x0028, 0x1203, "OW", blue.clone()),
    ];
    // Indices below the first mapped value take entry 0, above the last take the last.
    let px = vec![10u8, 11, 12, 13, 0, 200];
    let img = decode(&image(
        "PALETTE COLOR",
        (2, 3, 1),
        (8, 8),
        false,
        &extra,
        px.clone(),
    ));
    assert_eq!(
        img.stored(),
        &StoredValues::U8(px.clone()),
        "indices are kept"
    );
    let raw = img.to_raw_image(0, WindowChoice::FromFile).unwrap();
    let entry = |k: u8| usize::from(k.clamp(10, 13) - 10);
    for (i, &k) in px.iter().enumerate() {
        let e = entry(k);
        let want = [f32::from(red[e]), f32::from(green[e]), f32::from(blue[e])];
        assert_eq!(&raw.pixels[3 * i..3 * i + 3], &want, "index {k}");
    }

    // 16-bit entries scale by 1/257.
    let desc = us(&[2, 0, 16]);
    let extra = vec![
        (0x0028, 0x1101, "US", desc.clone()),
        (0x0028, 0x1102, "US", desc.clone()),
        (0x0028, 0x1103, "US", desc),
        (0x0028, 0x1201, "OW", us(&[0, 65535])),
        (0x0028, 0x1202, "OW", us(&[65535, 0])),
        (0x0028, 0x1203, "OW", us(&[257 * 100, 257 * 100])),
    ];
    let img = decode(&image(
        "PALETTE COLOR",
        (1, 2, 1),
        (8, 8),
        false,
        &extra,
        vec![0, 1],
    ));
    let raw = img.to_raw_image(0, WindowChoice::MinMax).unwrap();
    assert_eq!(raw.pixels, vec![0.0, 255.0, 100.0, 255.0, 0.0, 100.0]);

    // A palette image without its LUT is an error naming the attribute.
    let e = read_dicom_bytes(
        &image("PALETTE COLOR", (1, 2, 1), (8, 8), false, &[], vec![0, 1]),
        Path::new("nolut.dcm"),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::DicomAttribute { .. }), "{msg}");
    assert!(
        msg.contains("nolut.dcm") && msg.contains("(0028,1101)"),
        "{msg}"
    );
}

#[test]
fn one_bit_frames_unpack_across_byte_boundaries() {
    // 3×3, 2 frames = 18 bits, little-endian bit order; frame 1 starts at bit 9.
    let bits: Vec<u8> = (0..18).map(|i| u8::from(i % 3 == 0 || i == 10)).collect();
    let mut packed = vec![0u8; 3];
    for (i, &b) in bits.iter().enumerate() {
        packed[i / 8] |= b << (i % 8);
    }
    let img = decode(&image(
        "MONOCHROME2",
        (3, 3, 1),
        (1, 1),
        false,
        &[(0x0028, 0x0008, "IS", text("2"))],
        packed,
    ));
    assert_eq!(img.frames, 2);
    assert_eq!(img.stored(), &StoredValues::U8(bits));
    assert_eq!(img.stored_array().0, vec![2, 3, 3]);
    let npy = parse_npy(&img.npy_bytes(), "1-bit");
    assert_eq!((npy.descr.as_str(), npy.shape), ("|u1", vec![2, 3, 3]));
}

#[test]
fn signed_samples_are_sign_extended_from_bits_stored() {
    // 12 bits stored in 16: 0x0FFF is -1, 0x0800 is -2048, 0x07FF is 2047; high bits ignored.
    let words = [0x0FFFu16, 0x0800, 0x07FF, 0x0001, 0xF001, 0x0000];
    let img = decode(&image(
        "MONOCHROME2",
        (2, 3, 1),
        (16, 12),
        true,
        &[
            (0x0028, 0x1052, "DS", text("-1024")),
            (0x0028, 0x1053, "DS", text("2")),
        ],
        us(&words),
    ));
    assert_eq!(
        img.stored(),
        &StoredValues::I16(vec![-1, -2048, 2047, 1, 1, 0])
    );
    assert_eq!(
        img.modality_lut(),
        vec![-1026.0, -5120.0, 3070.0, -1022.0, -1022.0, -1024.0]
    );
    let hu = parse_npy(&img.hu_npy_bytes(), "hu");
    assert_eq!((hu.descr.as_str(), hu.shape), ("<f8", vec![2, 3]));
    // 8 bits stored in 8, signed.
    let img = decode(&image(
        "MONOCHROME2",
        (1, 2, 1),
        (8, 8),
        true,
        &[],
        vec![0xFF, 0x7F],
    ));
    assert_eq!(img.stored(), &StoredValues::I8(vec![-1, 127]));
    assert_eq!(img.stored().npy_descr(), "|i1");
}

#[test]
fn planar_rgb_and_ybr_full_become_interleaved_rgb() {
    // 2 pixels, colour-by-plane: R R G G B B.
    let img = decode(&image(
        "RGB",
        (1, 2, 3),
        (8, 8),
        false,
        &[(0x0028, 0x0006, "US", us(&[1]))],
        vec![10, 20, 30, 40, 50, 60],
    ));
    assert_eq!(
        img.stored(),
        &StoredValues::U8(vec![10, 30, 50, 20, 40, 60])
    );
    assert_eq!(img.stored_array().0, vec![1, 2, 3]);
    let raw = img.to_raw_image(0, WindowChoice::FromFile).unwrap();
    assert_eq!(raw.pixels, vec![10.0, 30.0, 50.0, 20.0, 40.0, 60.0]);

    // YBR_FULL grey (Cb = Cr = 128) stays grey; pure red's YCbCr comes back red.
    let img = decode(&image(
        "YBR_FULL",
        (1, 2, 3),
        (8, 8),
        false,
        &[(0x0028, 0x0006, "US", us(&[0]))],
        vec![100, 128, 128, 76, 85, 255],
    ));
    let StoredValues::U8(v) = img.stored() else {
        panic!()
    };
    assert_eq!(&v[..3], &[100, 100, 100]);
    assert!(v[3] >= 253 && v[4] <= 2 && v[5] <= 2, "{v:?}");
}

// ---------------------------------------------------------------------------------------
// load_image / decode_image_bytes / folder discovery.

#[test]
fn load_image_accepts_dicom() {
    assert!(IMAGE_EXTENSIONS.contains(&"dcm"));
    assert!(has_image_extension(Path::new("a/b/scan.DCM")));
    let ct = read("CT_small.dcm");
    let want = ct.to_raw_image(0, WindowChoice::FromFile).unwrap();
    let got = load_image(&dcm("CT_small.dcm")).unwrap();
    assert_eq!(got, want);
    assert_eq!((got.width, got.height, got.channels), (128, 128, 1));
    // Recognised by the magic whatever the name.
    let bytes = std::fs::read(dcm("SC_rgb.dcm")).unwrap();
    let rgb = decode_image_bytes(&bytes, Path::new("no_extension")).unwrap();
    assert_eq!(rgb.channels, 3);
    // A `.dcm` that is not DICOM fails as DICOM, naming the file.
    let e = decode_image_bytes(b"not dicom at all", Path::new("x.dcm")).unwrap_err();
    assert!(matches!(e, DataError::DicomParse { .. }), "{e}");
    assert!(e.to_string().contains("x.dcm"), "{e}");
    // PNGs still decode.
    let png = {
        let mut buf = Vec::new();
        image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([9])))
            .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        buf
    };
    assert_eq!(
        decode_image_bytes(&png, Path::new("a.png")).unwrap().pixels,
        vec![9.0; 4]
    );

    // An image folder with a .dcm next to PNGs.
    let dir = tempfile::tempdir().unwrap();
    for class in ["a", "b"] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        std::fs::write(dir.path().join(class).join("1.png"), &png).unwrap();
    }
    std::fs::copy(dcm("CT_small.dcm"), dir.path().join("a").join("2.dcm")).unwrap();
    let splits = medai_data::open(dir.path(), &medai_data::OpenOptions::default()).unwrap();
    let total = splits.train.len() + splits.val.len();
    assert_eq!(total, 3, "the .dcm is discovered with the PNGs");
}

// ---------------------------------------------------------------------------------------
// Bad input: errors, never panics.

#[test]
fn missing_and_empty_files() {
    let e = read_dicom(Path::new("/nonexistent/x.dcm")).unwrap_err();
    assert!(matches!(e, DataError::NotFound { .. }), "{e}");
    let e = read_dicom_bytes(&[], Path::new("empty.dcm")).unwrap_err();
    assert!(matches!(e, DataError::EmptyFile { .. }), "{e}");
    let e = read_dicom_bytes(&[0u8; 300], Path::new("zeros.dcm")).unwrap_err();
    assert!(e.to_string().contains("DICM"), "{e}");
}

#[test]
fn huge_headers_are_refused_before_allocating() {
    let e = read_dicom_bytes(
        &image(
            "MONOCHROME2",
            (65535, 65535, 1),
            (16, 16),
            false,
            &[(0x0028, 0x0008, "IS", text("1000"))],
            vec![0; 64],
        ),
        Path::new("huge.dcm"),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::DicomTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("huge.dcm"), "{e}");
    // Under the cap but more than the file holds: a clear length error.
    let e = read_dicom_bytes(
        &image(
            "MONOCHROME2",
            (1000, 1000, 1),
            (16, 16),
            false,
            &[],
            vec![0; 64],
        ),
        Path::new("short.dcm"),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::DicomPixelData { .. }), "{e}");
    assert!(e.to_string().contains("2000000"), "{e}");
    // Missing Rows.
    let mut f = image("MONOCHROME2", (1, 1, 1), (8, 8), false, &[], vec![0, 0]);
    let at = f
        .windows(4)
        .position(|w| w == [0x28, 0x00, 0x10, 0x00])
        .unwrap();
    f[at + 2] = 0x12; // (0028,0010) → (0028,0012), an unrelated tag
    let e = read_dicom_bytes(&f, Path::new("norows.dcm")).unwrap_err();
    assert!(e.to_string().contains("Rows (0028,0010)"), "{e}");
}

/// Decoding must return (Ok or Err), never panic or hang, whatever the bytes.
fn must_not_panic(bytes: &[u8], what: &str) -> bool {
    match std::panic::catch_unwind(|| read_dicom_bytes(bytes, Path::new("fuzz.dcm")).is_ok()) {
        Ok(ok) => ok,
        Err(_) => panic!("{what}: read_dicom_bytes panicked"),
    }
}

#[test]
fn every_prefix_of_small_files_is_an_error_not_a_panic() {
    for (name, stride) in [
        ("MR_small.dcm", 3),
        ("MR_small_RLE.dcm", 7),
        ("SC_rgb_jpeg_dcmtk.dcm", 5),
        ("JPEG2000.dcm", 5),
        ("MR_small_jp2klossless.dcm", 9),
        ("image_dfl.dcm", 5),
        ("rtdose.dcm", 7),
    ] {
        let bytes = std::fs::read(dcm(name)).unwrap();
        assert!(
            must_not_panic(&bytes, name),
            "{name}: the whole file decodes"
        );
        for len in (0..bytes.len()).step_by(stride) {
            let ok = must_not_panic(&bytes[..len], &format!("{name}[..{len}]"));
            // Only a prefix that cuts trailing padding (or the end of a deflate stream whose
            // data is already out) can still be a whole image.
            assert!(
                !ok || len + 16 >= bytes.len(),
                "{name}: the prefix of {len} of {} bytes decoded",
                bytes.len()
            );
        }
    }
}

#[test]
fn random_byte_flips_and_garbage_are_errors_not_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xD1C0);
    for name in [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_rgb_rle.dcm",
        "JPEG2000.dcm",
        "MR_small_jp2klossless.dcm",
        "image_dfl.dcm",
        "rtdose.dcm",
    ] {
        let orig = std::fs::read(dcm(name)).unwrap();
        let t0 = std::time::Instant::now();
        let mut slowest = (0.0f64, 0);
        let rounds = 400;
        for round in 0..rounds {
            let t1 = std::time::Instant::now();
            let mut b = orig.clone();
            let flips = rng.random_range(1..=6);
            for _ in 0..flips {
                // Mostly the header region, where lengths and sizes live.
                let at = if rng.random_bool(0.7) {
                    rng.random_range(128..orig.len().min(1200))
                } else {
                    rng.random_range(0..orig.len())
                };
                b[at] = rng.random();
            }
            must_not_panic(&b, &format!("{name} round {round}"));
            let dt = t1.elapsed().as_secs_f64();
            if dt > slowest.0 {
                slowest = (dt, round);
            }
        }
        // Garbage lengths must be refused before anything is allocated from them.
        assert!(
            slowest.0 < 2.0,
            "{name}: round {} took {:.1} s",
            slowest.1,
            slowest.0
        );
        println!("{name}: {rounds} corrupted copies in {:?}", t0.elapsed());
    }
    // Garbage after a valid magic, and random lengths of noise.
    for round in 0..200 {
        let len = rng.random_range(0..4000);
        let mut b: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if round % 2 == 0 && b.len() >= 132 {
            b[128..132].copy_from_slice(b"DICM");
            // A plausible meta group start.
            if b.len() >= 140 {
                b[132..136].copy_from_slice(&[0x02, 0x00, 0x00, 0x00]);
                b[136..138].copy_from_slice(b"UL");
            }
        }
        assert!(!must_not_panic(&b, &format!("garbage round {round}")));
    }
}

#[test]
fn deeply_nested_sequences_are_refused() {
    // 1000 nested undefined-length sequences.
    let mut body = Vec::new();
    for _ in 0..1000 {
        body.extend_from_slice(&[0x08, 0x00, 0x15, 0x11]); // (0008,1115) SQ
        body.extend_from_slice(b"SQ\0\0");
        body.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]); // item
        body.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    }
    let mut f = dicom_file(EXPLICIT_LE, &[]);
    f.extend_from_slice(&body);
    let e = read_dicom_bytes(&f, Path::new("deep.dcm")).unwrap_err();
    assert!(e.to_string().contains("nest"), "{e}");
}
