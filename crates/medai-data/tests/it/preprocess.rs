//! Resizing, channel conversion and normalisation.

use medai_data::{Normalization, PreprocessSpec, RawImage, ResizeFilter};
use proptest::prelude::*;
use serde::Deserialize;

use crate::common::RESIZE_ORACLE;

fn spec(
    h: usize,
    w: usize,
    c: usize,
    resize: ResizeFilter,
    normalization: Normalization,
) -> PreprocessSpec {
    PreprocessSpec {
        height: h,
        width: w,
        channels: c,
        resize,
        normalization,
    }
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[derive(Deserialize)]
struct Oracle {
    input: Plane,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Plane {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

#[derive(Deserialize)]
struct Case {
    filter: String,
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

#[test]
fn resize_matches_pil_oracle() {
    let text = std::fs::read_to_string(RESIZE_ORACLE).unwrap();
    let oracle: Oracle = serde_json::from_str(&text).unwrap();
    let img = RawImage {
        width: oracle.input.width,
        height: oracle.input.height,
        channels: 1,
        pixels: oracle.input.pixels,
    };
    assert_eq!(oracle.cases.len(), 8);
    for case in oracle.cases {
        let filter = match case.filter.as_str() {
            "bilinear" => ResizeFilter::Bilinear,
            "nearest" => ResizeFilter::Nearest,
            "area" => ResizeFilter::Area,
            other => panic!("unknown filter {other}"),
        };
        let s = spec(case.height, case.width, 1, filter, Normalization::Rescale);
        let got: Vec<f32> = s.apply(&img).iter().map(|v| v * 255.0).collect();
        assert!(
            close(&got, &case.pixels, 2e-3),
            "{} {}x{}:\n got {got:?}\nwant {:?}",
            case.filter,
            case.width,
            case.height,
            case.pixels
        );
        // prepare() gives the same values, un-normalised, in HWC.
        let prepared = s.prepare(&img);
        assert!(close(&prepared.pixels, &case.pixels, 2e-3));
    }
}

#[test]
fn area_and_bilinear_hand_computed() {
    // 3 -> 2 pixels: output 0 covers source [0, 1.5], output 1 covers [1.5, 3].
    let row = RawImage {
        width: 3,
        height: 1,
        channels: 1,
        pixels: vec![0.0, 30.0, 60.0],
    };
    let s = spec(1, 2, 1, ResizeFilter::Area, Normalization::Rescale);
    assert!(close(&s.prepare(&row).pixels, &[10.0, 50.0], 1e-4));
    // 2 -> 4 bilinear, half-pixel centres: sample positions -0.25, 0.25, 0.75, 1.25 (clamped).
    let two = RawImage {
        width: 2,
        height: 1,
        channels: 1,
        pixels: vec![0.0, 100.0],
    };
    let s = spec(1, 4, 1, ResizeFilter::Bilinear, Normalization::Rescale);
    assert!(close(
        &s.prepare(&two).pixels,
        &[0.0, 25.0, 75.0, 100.0],
        1e-4
    ));
    // Nearest 2 -> 4 duplicates.
    let s = spec(1, 4, 1, ResizeFilter::Nearest, Normalization::Rescale);
    assert_eq!(s.prepare(&two).pixels, vec![0.0, 0.0, 100.0, 100.0]);
    // Same size: untouched.
    let s = spec(1, 3, 1, ResizeFilter::Bilinear, Normalization::Rescale);
    assert_eq!(s.prepare(&row), row);
}

#[test]
fn each_normalization_numbers() {
    let px = RawImage {
        width: 1,
        height: 1,
        channels: 3,
        pixels: vec![255.0, 128.0, 0.0],
    };
    let run = |n: Normalization| spec(1, 1, 3, ResizeFilter::Bilinear, n).apply(&px);
    assert!(close(
        &run(Normalization::Rescale),
        &[1.0, 128.0 / 255.0, 0.0],
        1e-6
    ));
    let torch = [
        (1.0 - 0.485) / 0.229,
        (128.0 / 255.0 - 0.456) / 0.224,
        (0.0 - 0.406) / 0.225,
    ];
    assert!(close(&run(Normalization::ImagenetTorch), &torch, 1e-5));
    // Caffe: BGR order, mean subtracted, no scaling.
    let caffe = [0.0 - 103.939, 128.0 - 116.779, 255.0 - 123.68];
    assert!(close(&run(Normalization::ImagenetCaffe), &caffe, 1e-4));
    let st = Normalization::Standardize {
        mean: vec![0.5, 0.25, 0.0],
        std: vec![0.5, 0.25, 2.0],
    };
    let want = [(1.0 - 0.5) / 0.5, (128.0 / 255.0 - 0.25) / 0.25, 0.0];
    assert!(close(&run(st), &want, 1e-5));
    // A single mean/std broadcasts over channels.
    let st1 = Normalization::Standardize {
        mean: vec![0.5],
        std: vec![0.5],
    };
    assert!(close(
        &run(st1),
        &[1.0, (128.0 / 255.0 - 0.5) / 0.5, -1.0],
        1e-5
    ));

    // Grey images use the mean of the ImageNet constants.
    let g = RawImage {
        width: 1,
        height: 1,
        channels: 1,
        pixels: vec![51.0],
    };
    let grey = |n: Normalization| spec(1, 1, 1, ResizeFilter::Bilinear, n).apply(&g);
    let m = (0.485 + 0.456 + 0.406) / 3.0;
    let sd = (0.229 + 0.224 + 0.225) / 3.0;
    assert!(close(
        &grey(Normalization::ImagenetTorch),
        &[(0.2 - m) / sd],
        1e-5
    ));
    let cm = (103.939 + 116.779 + 123.68) / 3.0;
    assert!(close(
        &grey(Normalization::ImagenetCaffe),
        &[51.0 - cm],
        1e-4
    ));
}

#[test]
fn channel_conversion_and_chw_layout() {
    // 2x1 grey -> RGB: each channel plane is a copy.
    let g = RawImage {
        width: 2,
        height: 1,
        channels: 1,
        pixels: vec![0.0, 255.0],
    };
    let s = spec(1, 2, 3, ResizeFilter::Bilinear, Normalization::Rescale);
    assert_eq!(s.apply(&g), vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    // RGB -> grey with ITU-R 601 luma.
    let c = RawImage {
        width: 1,
        height: 1,
        channels: 3,
        pixels: vec![100.0, 50.0, 200.0],
    };
    let s = spec(1, 1, 1, ResizeFilter::Bilinear, Normalization::Rescale);
    let y = (0.299 * 100.0 + 0.587 * 50.0 + 0.114 * 200.0) / 255.0;
    assert!(close(&s.apply(&c), &[y], 1e-6));
    // HWC -> CHW: pixel (x=1) of channel 2 lands at index 2*plane + 1.
    let hwc = RawImage {
        width: 2,
        height: 1,
        channels: 3,
        pixels: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    };
    let s = spec(1, 2, 3, ResizeFilter::Nearest, Normalization::Rescale);
    let out: Vec<f32> = s.apply(&hwc).iter().map(|v| (v * 255.0).round()).collect();
    assert_eq!(out, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

#[test]
fn serde_tags_and_spec_check() {
    let s = spec(
        224,
        224,
        3,
        ResizeFilter::Bilinear,
        Normalization::ImagenetTorch,
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["resize"], "bilinear");
    assert_eq!(json["normalization"]["kind"], "imagenet-torch");
    let st = Normalization::Standardize {
        mean: vec![0.5],
        std: vec![0.2],
    };
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["kind"], "standardize");
    assert_eq!(serde_json::from_value::<Normalization>(v).unwrap(), st);
    let back: PreprocessSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
    assert!(s.check().is_ok());
    assert_eq!(s.output_len(), 3 * 224 * 224);
    assert!(
        spec(0, 4, 1, ResizeFilter::Area, Normalization::Rescale)
            .check()
            .is_err()
    );
    assert!(
        spec(4, 4, 2, ResizeFilter::Area, Normalization::Rescale)
            .check()
            .is_err()
    );
    let bad = Normalization::Standardize {
        mean: vec![0.1, 0.2],
        std: vec![0.1],
    };
    assert!(
        spec(4, 4, 3, ResizeFilter::Area, bad)
            .check()
            .unwrap_err()
            .to_string()
            .contains("mean")
    );
}

#[test]
fn inconsistent_images_do_not_panic() {
    let s = spec(
        3,
        3,
        3,
        ResizeFilter::Bilinear,
        Normalization::ImagenetTorch,
    );
    let broken = [
        RawImage {
            width: 4,
            height: 4,
            channels: 1,
            pixels: vec![1.0; 3],
        },
        RawImage {
            width: 0,
            height: 0,
            channels: 0,
            pixels: vec![],
        },
        RawImage {
            width: 2,
            height: 1,
            channels: 1,
            pixels: vec![f32::NAN, f32::INFINITY],
        },
        RawImage {
            width: 1,
            height: 1,
            channels: 4,
            pixels: vec![1.0, 2.0, 3.0, 4.0],
        },
    ];
    for img in &broken {
        let out = s.apply(img);
        assert_eq!(out.len(), 27);
        assert!(out.iter().all(|v| v.is_finite()), "{img:?}");
    }
    // Specs that `check` refuses do not panic either.
    let ok = RawImage {
        width: 2,
        height: 2,
        channels: 1,
        pixels: vec![9.0; 4],
    };
    let absurd = spec(usize::MAX, 3, 3, ResizeFilter::Area, Normalization::Rescale);
    assert!(absurd.check().is_err());
    assert!(absurd.apply(&ok).is_empty());
    let no_channels = spec(2, 2, 0, ResizeFilter::Area, Normalization::Rescale);
    assert!(no_channels.apply(&ok).is_empty());
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let aug = medai_data::AugmentSpec::medical_default();
    assert!(absurd.apply_augmented(&ok, &aug, &mut rng).is_empty());
    let two = spec(
        2,
        2,
        2,
        ResizeFilter::Bilinear,
        Normalization::ImagenetTorch,
    );
    assert_eq!(two.apply_augmented(&ok, &aug, &mut rng).len(), 8);
}

fn filter_strategy() -> impl Strategy<Value = ResizeFilter> {
    prop_oneof![
        Just(ResizeFilter::Nearest),
        Just(ResizeFilter::Bilinear),
        Just(ResizeFilter::Area)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn apply_output_is_sized_and_finite(
        (w, h, c, pixels) in (1usize..40, 1usize..40, prop_oneof![Just(1usize), Just(3usize)])
            .prop_flat_map(|(w, h, c)| (Just(w), Just(h), Just(c), proptest::collection::vec(0.0f32..=255.0, w * h * c))),
        oh in 1usize..48,
        ow in 1usize..48,
        oc in prop_oneof![Just(1usize), Just(3usize)],
        filter in filter_strategy(),
        seed in any::<u64>(),
    ) {
        let img = RawImage { width: w, height: h, channels: c, pixels };
        let s = spec(oh, ow, oc, filter, Normalization::ImagenetTorch);
        let out = s.apply(&img);
        prop_assert_eq!(out.len(), oc * oh * ow);
        prop_assert!(out.iter().all(|v| v.is_finite()));
        // Resampling never leaves the input's range (all filters are convex combinations).
        let prepared = s.prepare(&img);
        let (lo, hi) = img.pixels.iter().fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
        prop_assert!(prepared.pixels.iter().all(|&v| v >= lo - 1e-2 && v <= hi + 1e-2));
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let aug = medai_data::AugmentSpec { hflip: true, crop_scale: Some((0.5, 1.0)), noise_std: 0.05, ..medai_data::AugmentSpec::medical_default() };
        let out = s.apply_augmented(&img, &aug, &mut rng);
        prop_assert_eq!(out.len(), oc * oh * ow);
        prop_assert!(out.iter().all(|v| v.is_finite()));
    }
}
