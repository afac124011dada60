//! Decode every `.dcm` of a directory (stored values, all frames) repeatedly; print files/s.
//!
//! `cargo run --release -p medai-data --example bench_dicom -- DIR [SECONDS]`
//! (`bench/dicom.sh` runs it next to pydicom and prints the ratio.)

use std::time::{Duration, Instant};

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
    let (mut decoded, mut failed, mut samples) = (0u64, 0u64, 0usize);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs_f64(secs) {
        for (bytes, path) in &blobs {
            match medai_data::read_dicom_bytes(bytes, path) {
                Ok(img) => {
                    decoded += 1;
                    samples += img.stored().len();
                }
                Err(_) => failed += 1,
            }
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "medai files={} decoded_per_s={:.1} failed={} samples_per_s={:.3e} threads={}",
        blobs.len(),
        decoded as f64 / s,
        failed,
        samples as f64 / s,
        rayon::current_num_threads()
    );
}
