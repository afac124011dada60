//! Seeded augmentation.

use medai_data::{AugmentSpec, Normalization, PreprocessSpec, RawImage, ResizeFilter};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn gradient(w: usize, h: usize) -> RawImage {
    RawImage {
        width: w,
        height: h,
        channels: 1,
        pixels: (0..w * h).map(|i| ((i * 37) % 256) as f32).collect(),
    }
}

fn spec(n: usize) -> PreprocessSpec {
    PreprocessSpec {
        height: n,
        width: n,
        channels: 1,
        resize: ResizeFilter::Bilinear,
        normalization: Normalization::Rescale,
    }
}

#[test]
fn off_equals_apply_and_defaults() {
    let img = gradient(10, 7);
    let s = spec(12);
    assert!(AugmentSpec::default().is_off());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert_eq!(
        s.apply_augmented(&img, &AugmentSpec::default(), &mut rng),
        s.apply(&img)
    );
    // Nothing was drawn from the rng.
    let mut fresh = ChaCha8Rng::seed_from_u64(1);
    use rand::Rng;
    assert_eq!(rng.random::<u64>(), fresh.random::<u64>());

    let med = AugmentSpec::medical_default();
    assert!(!med.is_off());
    assert_eq!((med.hflip, med.vflip, med.rotate_deg), (false, false, 10.0));
    assert_eq!(
        (med.translate, med.scale, med.brightness, med.contrast),
        (0.1, 0.1, 0.1, 0.1)
    );
    // Partial JSON fills the rest with "off".
    let parsed: AugmentSpec =
        serde_json::from_str(r#"{"hflip": true, "crop_scale": [0.8, 1.0]}"#).unwrap();
    assert_eq!(
        parsed,
        AugmentSpec {
            hflip: true,
            crop_scale: Some((0.8, 1.0)),
            ..AugmentSpec::default()
        }
    );
}

#[test]
fn same_seed_same_output_other_seed_differs() {
    let img = gradient(16, 16);
    let s = spec(16);
    let aug = AugmentSpec {
        hflip: true,
        crop_scale: Some((0.6, 1.0)),
        noise_std: 0.02,
        ..AugmentSpec::medical_default()
    };
    let run = |seed| s.apply_augmented(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
    let a = run(3);
    assert_eq!(a, run(3));
    assert_ne!(a, run(4));
    assert_ne!(a, s.apply(&img));
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn hflip_mirrors_exactly() {
    let img = gradient(5, 3);
    let s = spec_rect(3, 5);
    let plain = s.apply(&img);
    let mirrored: Vec<f32> = (0..3)
        .flat_map(|y| (0..5).rev().map(move |x| (y, x)))
        .map(|(y, x)| plain[y * 5 + x])
        .collect();
    let aug = AugmentSpec {
        hflip: true,
        ..AugmentSpec::default()
    };
    let (mut flipped, mut kept) = (0, 0);
    for seed in 0..32 {
        let out = s.apply_augmented(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
        if out.iter().zip(&plain).all(|(a, b)| (a - b).abs() < 1e-5) {
            kept += 1;
        } else {
            assert!(
                out.iter().zip(&mirrored).all(|(a, b)| (a - b).abs() < 1e-5),
                "seed {seed}: {out:?}"
            );
            flipped += 1;
        }
    }
    assert!(flipped > 5 && kept > 5, "flipped {flipped}, kept {kept}");
}

#[test]
fn brightness_scales_and_translation_fills_with_nearest_edge() {
    let img = RawImage {
        width: 4,
        height: 4,
        channels: 1,
        pixels: vec![100.0; 16],
    };
    let s = spec(4);
    let aug = AugmentSpec {
        brightness: 0.5,
        ..AugmentSpec::default()
    };
    let out = s.apply_augmented(&img, &aug, &mut ChaCha8Rng::seed_from_u64(9));
    // A uniform image stays uniform, scaled by a factor in [0.5, 1.5].
    assert!(out.iter().all(|&v| (v - out[0]).abs() < 1e-6));
    let f = out[0] / (100.0 / 255.0);
    assert!(
        (0.5..=1.5).contains(&f) && (f - 1.0).abs() > 1e-4,
        "factor {f}"
    );

    let aug = AugmentSpec {
        translate: 0.5,
        ..AugmentSpec::default()
    };
    // A uniform image stays uniform: the border is filled from the nearest edge, never black.
    for seed in 0..8 {
        let out = s.apply_augmented(&img, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
        assert!(
            out.iter().all(|&v| (v - 100.0 / 255.0).abs() < 1e-6),
            "{out:?}"
        );
    }
    // A horizontal ramp shifted sideways repeats its edge column and stays within its range.
    let ramp = RawImage {
        width: 4,
        height: 4,
        channels: 1,
        pixels: (0..16).map(|i| 50.0 * (i % 4) as f32).collect(),
    };
    let mut shifted_some = false;
    for seed in 0..8 {
        let out = s.apply_augmented(&ramp, &aug, &mut ChaCha8Rng::seed_from_u64(seed));
        assert!(
            out.iter()
                .all(|&v| (-1e-6..=150.0 / 255.0 + 1e-6).contains(&v))
        );
        shifted_some |= out
            .iter()
            .zip(s.apply(&ramp))
            .any(|(a, b)| (a - b).abs() > 1e-3);
    }
    assert!(shifted_some);
}

fn spec_rect(h: usize, w: usize) -> PreprocessSpec {
    PreprocessSpec {
        height: h,
        width: w,
        ..spec(1)
    }
}
