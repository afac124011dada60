use medai_report::ReportError;
use medai_report::visualize::{
    colormap_jet, heat_argmax, overlay, png_bytes, png_data_uri, resize_bilinear,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn jet_endpoints_and_midpoint() {
    assert_eq!(colormap_jet(0.0), [0, 0, 127], "dark blue");
    assert_eq!(colormap_jet(1.0), [127, 0, 0], "dark red");
    assert_eq!(colormap_jet(0.5), [124, 255, 121], "green");
    // Clamping and NaN.
    assert_eq!(colormap_jet(-3.0), colormap_jet(0.0));
    assert_eq!(colormap_jet(7.0), colormap_jet(1.0));
    assert_eq!(colormap_jet(f32::NAN), colormap_jet(0.0));
    assert_eq!(colormap_jet(f32::INFINITY), colormap_jet(1.0));
}

#[test]
fn jet_matches_matplotlib() {
    let fx = fixture("jet.json");
    let lut = fx["lut"].as_array().unwrap();
    assert_eq!(lut.len(), 256);
    for (i, rgb) in lut.iter().enumerate() {
        let want: Vec<u8> = rgb
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as u8)
            .collect();
        // Index i is hit by v = (i + 0.5) / 256.
        let got = colormap_jet((i as f32 + 0.5) / 256.0);
        assert_eq!(got.to_vec(), want, "lut entry {i}");
    }
    for s in fx["samples"].as_array().unwrap() {
        let s = s.as_array().unwrap();
        let v = s[0].as_f64().unwrap() as f32;
        let want = [
            s[1].as_u64().unwrap() as u8,
            s[2].as_u64().unwrap() as u8,
            s[3].as_u64().unwrap() as u8,
        ];
        assert_eq!(colormap_jet(v), want, "v = {v}");
    }
}

#[test]
fn bilinear_matches_pytorch() {
    let fx = fixture("bilinear.json");
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let dim = |k: &str| case[k].as_u64().unwrap() as usize;
        let (h, w, oh, ow) = (dim("h"), dim("w"), dim("out_h"), dim("out_w"));
        let got = resize_bilinear(&f32s(&case["src"]), h, w, oh, ow);
        let want = f32s(&case["out"]);
        assert_eq!(got.len(), want.len());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-6,
                "{h}x{w} -> {oh}x{ow} at {i}: {g} vs {e}"
            );
        }
    }
}

#[test]
fn bilinear_hand_values() {
    // 2x2 -> 4x4 (PyTorch, align_corners=False): edges clamp, inner rows/cols blend 3:1.
    let out = resize_bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4);
    let want = [
        0.0, 0.25, 0.75, 1.0, //
        0.5, 0.75, 1.25, 1.5, //
        1.5, 1.75, 2.25, 2.5, //
        2.0, 2.25, 2.75, 3.0,
    ];
    assert_eq!(out, want);
    assert!(resize_bilinear(&[], 0, 0, 3, 3).iter().all(|&v| v == 0.0));
    assert!(resize_bilinear(&[1.0], 1, 1, 0, 5).is_empty());
}

#[test]
fn overlay_dims_and_peak_is_reddest() {
    let (h, w) = (40, 56);
    let base = vec![100u8; h * w];
    let (hh, hw) = (5, 7);
    let mut heat = vec![0.1f32; hh * hw];
    heat[3 * hw + 5] = 2.0; // brightest heat cell: row 3, col 5
    heat[0] = 0.9;
    let img = overlay(&base, h, w, 1, &heat, hh, hw, 0.5).unwrap();
    assert_eq!((img.height() as usize, img.width() as usize), (h, w));

    let redness = |p: &image::Rgb<u8>| p.0[0] as i32 - p.0[2] as i32;
    let (mut best, mut best_at) = (i32::MIN, (0, 0));
    for (x, y, p) in img.enumerate_pixels() {
        if redness(p) > best {
            best = redness(p);
            best_at = (y as usize, x as usize);
        }
    }
    // The reddest pixel lies inside the upsampled footprint of heat cell (3, 5).
    let (cell_h, cell_w) = (h as f64 / hh as f64, w as f64 / hw as f64);
    let cell = (
        (best_at.0 as f64 / cell_h) as usize,
        (best_at.1 as f64 / cell_w) as usize,
    );
    assert_eq!(cell, (3, 5), "reddest pixel at {best_at:?}");
    // The peak of the upsampled map (heat_argmax) is in the same cell, coloured with
    // jet's top colour (dark red; jet's most saturated red sits just below the top).
    let peak = heat_argmax(&heat, hh, hw, h, w).unwrap();
    assert_eq!(
        (
            (peak.0 as f64 / cell_h) as usize,
            (peak.1 as f64 / cell_w) as usize
        ),
        (3, 5)
    );
    let p = img.get_pixel(peak.1 as u32, peak.0 as u32);
    assert!(p.0[0] > p.0[1] && p.0[0] > p.0[2], "{p:?}");
    // alpha 0.5 over grey 100 with jet(1) = (127, 0, 0) -> (114, 50, 50) (rounded).
    assert_eq!(p.0, [114, 50, 50]);
}

#[test]
fn overlay_rgb_base_and_alpha_extremes() {
    let (h, w) = (4, 3);
    let base: Vec<u8> = (0..h * w * 3).map(|i| (i * 7 % 256) as u8).collect();
    let heat = [0.0, 1.0, 2.0, 3.0];
    let img = overlay(&base, h, w, 3, &heat, 2, 2, 0.0).unwrap();
    assert_eq!(img.as_raw(), &base, "alpha 0 keeps the image");
    let img = overlay(&base, h, w, 3, &heat, 2, 2, 5.0).unwrap();
    // alpha clamps to 1: pure colormap; top-left is the minimum, bottom-right the maximum.
    assert_eq!(img.get_pixel(0, 0).0, colormap_jet(0.0));
    assert_eq!(img.get_pixel(2, 3).0, colormap_jet(1.0));
}

#[test]
fn constant_or_nan_heat_is_safe() {
    let base = vec![50u8; 8 * 8];
    let img = overlay(&base, 8, 8, 1, &[0.7; 4], 2, 2, 1.0).unwrap();
    assert!(
        img.pixels().all(|p| p.0 == colormap_jet(0.0)),
        "constant heat normalises to zeros"
    );
    // Non-finite cells count as the smallest finite value (0.5 here).
    let heat = [f32::NAN, 0.5, f32::NEG_INFINITY, 2.0];
    let img = overlay(&base, 8, 8, 1, &heat, 2, 2, 1.0).unwrap();
    assert_eq!(img.get_pixel(7, 7).0, colormap_jet(1.0));
    assert_eq!(img.get_pixel(0, 0).0, colormap_jet(0.0));
    let img = overlay(&base, 8, 8, 1, &[f32::NAN; 4], 2, 2, 1.0).unwrap();
    assert!(img.pixels().all(|p| p.0 == colormap_jet(0.0)));
    assert_eq!(heat_argmax(&[f32::NAN; 4], 2, 2, 8, 8).unwrap(), (0, 0));
}

#[test]
fn overlay_rejects_bad_shapes() {
    let base = vec![0u8; 16];
    let heat = [0.0f32; 4];
    let e = overlay(&base[..15], 4, 4, 1, &heat, 2, 2, 0.5).unwrap_err();
    assert!(
        matches!(
            e,
            ReportError::LengthMismatch {
                what: "base",
                expected: 16,
                actual: 15
            }
        ),
        "{e}"
    );
    let e = overlay(&base, 4, 4, 1, &heat[..3], 2, 2, 0.5).unwrap_err();
    assert!(
        matches!(
            e,
            ReportError::LengthMismatch {
                what: "heat",
                expected: 4,
                actual: 3
            }
        ),
        "{e}"
    );
    let e = overlay(&base, 4, 4, 3, &heat, 2, 2, 0.5).unwrap_err();
    assert!(
        matches!(
            e,
            ReportError::LengthMismatch {
                what: "base",
                expected: 48,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        overlay(&base, 4, 4, 4, &heat, 2, 2, 0.5),
        Err(ReportError::UnsupportedChannels(4))
    ));
    assert!(matches!(
        overlay(&base, 4, 4, 1, &heat, 2, 2, f32::NAN),
        Err(ReportError::InvalidInput(_))
    ));
    assert!(matches!(
        overlay(&[], 0, 4, 1, &heat, 2, 2, 0.5),
        Err(ReportError::InvalidInput(_))
    ));
    assert!(matches!(
        overlay(&base, 4, 4, 1, &[], 0, 0, 0.5),
        Err(ReportError::InvalidInput(_))
    ));
    assert!(matches!(
        overlay(&base, usize::MAX, 2, 1, &heat, 2, 2, 0.5),
        Err(ReportError::InvalidInput(_))
    ));
    assert!(matches!(
        heat_argmax(&heat, 2, 3, 4, 4),
        Err(ReportError::LengthMismatch { .. })
    ));
    assert!(matches!(
        heat_argmax(&heat, 2, 2, 0, 4),
        Err(ReportError::InvalidInput(_))
    ));
}

#[test]
fn heat_argmax_first_max_and_coordinates() {
    // Two equal peaks: the first in row-major order wins.
    let mut heat = vec![0.0f32; 16];
    heat[4 + 3] = 1.0; // (1, 3)
    heat[2 * 4] = 1.0; // (2, 0)
    assert_eq!(heat_argmax(&heat, 4, 4, 4, 4).unwrap(), (1, 3));
    // Upsampled 2x: the single peak cell (1, 3) covers output rows 2-3, cols 6-7;
    // with half-pixel centres the maximum is at its first output pixel of max value.
    let mut heat = vec![0.0f32; 16];
    heat[4 + 3] = 1.0;
    let (r, c) = heat_argmax(&heat, 4, 4, 8, 8).unwrap();
    assert!((2..=3).contains(&r) && (6..=7).contains(&c), "({r}, {c})");
    assert_eq!(heat_argmax(&[3.0; 9], 3, 3, 10, 10).unwrap(), (0, 0));
}

#[test]
fn png_round_trip_and_data_uri() {
    use base64::Engine as _;
    let base: Vec<u8> = (0..6 * 5 * 3).map(|i| (i * 11 % 256) as u8).collect();
    let img = overlay(&base, 6, 5, 3, &[0.0, 1.0], 1, 2, 0.3).unwrap();
    let png = png_bytes(&img).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(png, png_bytes(&img).unwrap(), "deterministic");
    let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(decoded, img);
    let uri = png_data_uri(&png);
    let b64 = uri.strip_prefix("data:image/png;base64,").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        png
    );
}
