//! Files and directories: reading defensively, atomic writes, directory walking.

use std::fs;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::{DeidConfig, DeidError, DeidReport, deidentify_object_at};

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "parser panicked".to_string())
}

/// Read a DICOM Part 10 file (with or without the 128-byte preamble) completely into memory.
/// A parser panic on malformed input is turned into [`DeidError::Malformed`].
pub fn read_dicom_file(path: &Path) -> Result<DefaultDicomObject, DeidError> {
    match catch_unwind(AssertUnwindSafe(|| OpenFileOptions::new().open_file(path))) {
        Ok(Ok(obj)) => Ok(obj),
        Ok(Err(e)) => Err(DeidError::Read {
            path: path.to_path_buf(),
            source: Box::new(e),
        }),
        Err(p) => Err(DeidError::Malformed {
            path: path.to_path_buf(),
            message: panic_message(p),
        }),
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DeidError {
    let path = path.to_path_buf();
    move |source| DeidError::Io { op, path, source }
}

/// Write `obj` to `output` atomically: a temporary file in the same directory, flushed to
/// disk, then renamed over `output`. Parent directories are created.
fn write_atomic(obj: &DefaultDicomObject, output: &Path) -> Result<(), DeidError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err("create directory", &parent))?;
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| DeidError::InvalidPath(format!("{} has no file name", output.display())))?;
    let tmp = parent.join(format!(
        ".{name}.medai-deid-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = match catch_unwind(AssertUnwindSafe(|| {
        obj.write_to_file(&tmp).map_err(Box::new)
    })) {
        Ok(Ok(())) => fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("sync", &tmp)),
        Ok(Err(source)) => Err(DeidError::Write {
            path: output.to_path_buf(),
            source,
        }),
        Err(p) => Err(DeidError::Malformed {
            path: output.to_path_buf(),
            message: format!("encoder panicked: {}", panic_message(p)),
        }),
    };
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, output).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("rename into", output)(e)
    })
}

/// De-identify one DICOM file into `output` (written atomically; `output` may equal
/// `input`). Nothing is written when an error is returned.
pub fn deidentify_file(
    input: &Path,
    output: &Path,
    cfg: &DeidConfig,
) -> Result<DeidReport, DeidError> {
    cfg.validate()?;
    let obj = read_dicom_file(input)?;
    let (out, mut report) = deidentify_object_at(obj, cfg, Some(input))?;
    write_atomic(&out, output)?;
    report.input = Some(input.display().to_string());
    report.output = Some(output.display().to_string());
    Ok(report)
}

/// Whether the file starts like a DICOM Part 10 file ("DICM" after the 128-byte preamble).
fn looks_like_part10(path: &Path) -> bool {
    let mut head = [0u8; 132];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..] == b"DICM"
}

fn walk(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) -> Result<(), DeidError> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err("read directory", dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err("read directory", dir))?;
    entries.sort();
    for p in entries {
        let md = fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
        if md.is_dir() {
            if p != skip {
                walk(&p, skip, out)?;
            }
        } else if md.is_file() {
            out.push(p);
        }
        // Symbolic links and special files are not followed.
    }
    Ok(())
}

/// De-identify every DICOM Part 10 file under `input_dir` (recursively, in sorted order)
/// into `output_dir`, keeping relative paths. Files that do not start with the Part 10
/// preamble + "DICM" are skipped (not copied); symbolic links are not followed. Stops at the
/// first error (files already written stay, each written atomically). `output_dir` may lie
/// inside `input_dir` (it is not descended into) but may not be the same directory.
pub fn deidentify_dir(
    input_dir: &Path,
    output_dir: &Path,
    cfg: &DeidConfig,
) -> Result<Vec<DeidReport>, DeidError> {
    cfg.validate()?;
    if !input_dir.is_dir() {
        return Err(DeidError::InvalidPath(format!(
            "{} is not a directory",
            input_dir.display()
        )));
    }
    fs::create_dir_all(output_dir).map_err(io_err("create directory", output_dir))?;
    let input_abs = fs::canonicalize(input_dir).map_err(io_err("resolve", input_dir))?;
    let output_abs = fs::canonicalize(output_dir).map_err(io_err("resolve", output_dir))?;
    if input_abs == output_abs {
        return Err(DeidError::InvalidPath(
            "output directory must differ from the input directory".to_string(),
        ));
    }
    let mut files = Vec::new();
    walk(&input_abs, &output_abs, &mut files)?;
    let mut reports = Vec::new();
    for file in files {
        if !looks_like_part10(&file) {
            continue;
        }
        let rel = file.strip_prefix(&input_abs).unwrap_or(&file);
        let dest = output_dir.join(rel);
        reports.push(deidentify_file(&file, &dest, cfg)?);
    }
    Ok(reports)
}
