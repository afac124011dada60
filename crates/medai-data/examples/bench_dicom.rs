//! Decode every `.dcm` of a directory (stored values, all frames) repeatedly; print files/s.
//!
//! `cargo run --release -p medai-data --example bench_dicom -- DIR [SECONDS]`
//! (`bench/dicom.sh` runs it next to pydicom and prints the ratio.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "../shared/data/dicom".into());
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    // Read the bytes once: the benchmark measures parsing + decoding, not the disk.
    let blobs: Vec<_> = files
        .iter()
        .map(|p| (std::fs::read(p).unwrap(), p))
        .collect();
    if std::env::var_os("PER_FILE").is_some() {
        // Milliseconds per decode of each file (for finding the slow codecs).
        for (bytes, path) in &blobs {
            let t = Instant::now();
            let mut n = 0u32;
            while t.elapsed() < Duration::from_millis(300) {
                let _ = medai_data::read_dicom_bytes(bytes, path);
                n += 1;
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / f64::from(n);
            println!(
                "{} {ms:.3}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
        }
        return;
    }
    // One file after another (a codec may still use its own threads inside one image) …
    let (decoded, failed, samples, s) = run(
        secs,
        |blobs| blobs.iter().map(|(b, p)| decode(b, p)).collect(),
        &blobs,
    );
    report(
        "medai-sequential",
        blobs.len(),
        decoded,
        failed,
        samples,
        s,
        1,
    );
    // … and the way the dataset readers run: files decoded in parallel on every core.
    let (decoded, failed, samples, s) = run(
        secs,
        |blobs| blobs.par_iter().map(|(b, p)| decode(b, p)).collect(),
        &blobs,
    );
    report(
        "medai-parallel",
        blobs.len(),
        decoded,
        failed,
        samples,
        s,
        rayon::current_num_threads(),
    );
}

type Blobs<'a> = [(Vec<u8>, &'a PathBuf)];

/// Samples decoded from one file, or `None` when it failed.
fn decode(bytes: &[u8], path: &Path) -> Option<usize> {
    medai_data::read_dicom_bytes(bytes, path)
        .ok()
        .map(|img| img.stored().len())
}

/// Decode the whole set with `pass` until `secs` have elapsed: (decoded, failed, samples, seconds).
fn run(
    secs: f64,
    pass: impl Fn(&Blobs) -> Vec<Option<usize>>,
    blobs: &Blobs,
) -> (u64, u64, usize, f64) {
    let (mut decoded, mut failed, mut samples) = (0u64, 0u64, 0usize);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs_f64(secs) {
        for r in pass(blobs) {
            match r {
                Some(n) => {
                    decoded += 1;
                    samples += n;
                }
                None => failed += 1,
            }
        }
    }
    (decoded, failed, samples, t0.elapsed().as_secs_f64())
}

fn report(
    mode: &str,
    files: usize,
    decoded: u64,
    failed: u64,
    samples: usize,
    s: f64,
    threads: usize,
) {
    println!(
        "{mode} files={files} decoded_per_s={:.1} failed={failed} samples_per_s={:.3e} threads={threads}",
        decoded as f64 / s,
        samples as f64 / s,
    );
}
