//! Helpers shared by the integration tests: tiny image writers and npz builders.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage};

/// The real MedMNIST file (read-only shared data).
pub const PNEUMONIA_NPZ: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/medmnist/pneumoniamnist.npz"
);

/// The committed PIL resize oracle.
pub const RESIZE_ORACLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/data/resize_oracle.json"
);

pub fn mkdirs(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

/// An 8-bit grey PNG whose pixel (x, y) is `base + x + 2y`.
pub fn grey_png(path: &Path, w: u32, h: u32, base: u8) {
    mkdirs(path.parent().unwrap());
    GrayImage::from_fn(w, h, |x, y| Luma([base.wrapping_add((x + 2 * y) as u8)]))
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

/// A uniformly grey 8-bit PNG.
pub fn flat_png(path: &Path, w: u32, h: u32, v: u8) {
    mkdirs(path.parent().unwrap());
    GrayImage::from_pixel(w, h, Luma([v]))
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

/// A 16-bit grey image in `format` whose pixels are all `v`.
pub fn grey16(path: &Path, w: u32, h: u32, v: u16, format: image::ImageFormat) {
    mkdirs(path.parent().unwrap());
    let img: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_pixel(w, h, Luma([v]));
    img.save_with_format(path, format).unwrap();
}

/// An 8-bit RGB image in `format` whose pixels are all `rgb`.
pub fn rgb(path: &Path, w: u32, h: u32, rgb: [u8; 3], format: image::ImageFormat) {
    mkdirs(path.parent().unwrap());
    RgbImage::from_pixel(w, h, Rgb(rgb))
        .save_with_format(path, format)
        .unwrap();
}

/// Bytes of a v1 `.npy` file.
pub fn npy(descr: &str, shape: &[usize], data: &[u8], fortran: bool) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let fo = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {shape_txt}, }}");
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(data);
    v
}

/// Write an npz (stored, uncompressed) with the given `(key, npy bytes)` members.
pub fn write_npz(path: &Path, members: &[(&str, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (k, bytes) in members {
        z.start_file(format!("{k}.npy"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// A MedMNIST-like grey npz with `n` images of `h x w` per split and labels `label_fn(i)`.
pub fn medmnist_like(
    path: &Path,
    counts: [usize; 3],
    hw: (usize, usize),
    label: impl Fn(usize) -> u8,
) -> Vec<(&'static str, Vec<u8>)> {
    let mut members = Vec::new();
    for (split, n) in ["train", "val", "test"].into_iter().zip(counts) {
        let img: Vec<u8> = (0..n * hw.0 * hw.1).map(|i| (i % 251) as u8).collect();
        let lab: Vec<u8> = (0..n).map(&label).collect();
        members.push((
            leak(format!("{split}_images")),
            npy("|u1", &[n, hw.0, hw.1], &img, false),
        ));
        members.push((
            leak(format!("{split}_labels")),
            npy("|u1", &[n, 1], &lab, false),
        ));
    }
    write_npz(path, &members);
    members
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Paths of a split's file items, relative to `root`.
pub fn rel_paths(set: &medai_data::LabeledImages, root: &Path) -> Vec<PathBuf> {
    set.items
        .iter()
        .map(|it| match &it.source {
            medai_data::ItemSource::File(p) => p.strip_prefix(root).unwrap().to_path_buf(),
            medai_data::ItemSource::Memory { .. } => panic!("expected a file item"),
        })
        .collect()
}
