//! `medai dicom …`, `medai nifti …` and `medai deid …`: medical image formats and
//! de-identification on the command line (thin wrappers over `medai-data` and `medai-deid`).

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use medai_data::{Axis, WindowChoice, WindowPreset, read_dicom, read_nifti};
use serde_json::json;
use std::path::{Path, PathBuf};

/// `medai dicom …`.
#[derive(Subcommand, Debug)]
pub enum DicomCommand {
    /// Key tags and the pixel description of a DICOM file.
    Info {
        /// The DICOM file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Render one frame as PNG (modality LUT, VOI window, MONOCHROME1 inversion, palette → RGB).
    ToPng {
        /// The DICOM file.
        file: PathBuf,
        /// Output PNG.
        out: PathBuf,
        /// Frame index (from 0).
        #[arg(long, default_value_t = 0)]
        frame: usize,
        /// Window: `file` (the file's first window), `minmax`, a preset (lung, mediastinum,
        /// bone, brain, soft-tissue) or `CENTER,WIDTH`.
        #[arg(long, default_value = "file")]
        window: String,
    },
    /// Write the decoded stored values (or Hounsfield units with --hu) as .npy, in pydicom's
    /// layout: frames × rows × cols × samples, singleton dimensions dropped.
    ToNpy {
        /// The DICOM file.
        file: PathBuf,
        /// Output .npy.
        out: PathBuf,
        /// Apply the modality LUT (rescale slope/intercept) and write float64.
        #[arg(long)]
        hu: bool,
    },
}

/// `medai nifti …`.
#[derive(Subcommand, Debug)]
pub enum NiftiCommand {
    /// Header summary of a NIfTI-1/2 file (.nii or .nii.gz).
    Info {
        /// The NIfTI file.
        file: PathBuf,
    },
    /// Write 2-D slices along an axis as PNGs (`OUT_DIR/<stem>_<axis><index>.png`).
    ToPng {
        /// The NIfTI file.
        file: PathBuf,
        /// Output directory.
        out_dir: PathBuf,
        /// Axis: x, y or z.
        #[arg(long, default_value = "z")]
        axis: String,
        /// Slice range `START:END` (end exclusive); default: all.
        #[arg(long)]
        range: Option<String>,
        /// Volume index of a 4-D file.
        #[arg(long, default_value_t = 0)]
        t: usize,
    },
}

fn parse_window(s: &str) -> Result<WindowChoice> {
    match s.to_ascii_lowercase().as_str() {
        "file" => return Ok(WindowChoice::FromFile),
        "minmax" => return Ok(WindowChoice::MinMax),
        _ => {}
    }
    if let Some(p) = WindowPreset::ALL
        .iter()
        .find(|p| p.name() == s.to_ascii_lowercase())
    {
        return Ok(WindowChoice::Preset(*p));
    }
    let parts: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("--window {s:?}: expected file, minmax, lung, mediastinum, bone, brain, soft-tissue or CENTER,WIDTH"))?;
    match parts[..] {
        [center, width] if width >= 1.0 && center.is_finite() => {
            Ok(WindowChoice::Custom { center, width })
        }
        _ => bail!("--window {s:?}: expected CENTER,WIDTH with WIDTH >= 1"),
    }
}

fn save_png(img: &medai_data::RawImage, out: &Path) -> Result<()> {
    let bytes: Vec<u8> = img
        .pixels
        .iter()
        .map(|&v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let (w, h) = (img.width as u32, img.height as u32);
    let dynimg = if img.channels == 3 {
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(w, h, bytes).ok_or_else(|| anyhow!("bad image size"))?,
        )
    } else {
        image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w, h, bytes).ok_or_else(|| anyhow!("bad image size"))?,
        )
    };
    let mut png = Vec::new();
    dynimg
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .with_context(|| out.display().to_string())?;
    crate::report::write_atomic(out, &png)
}

/// Run `medai dicom …`.
pub fn dicom(cmd: DicomCommand) -> Result<()> {
    match cmd {
        DicomCommand::Info { file, json } => {
            let d = read_dicom(&file)?;
            let (shape, stored) = d.stored_array();
            let g = &d.geometry;
            let v = json!({
                "file": file.display().to_string(),
                "transfer_syntax": d.transfer_syntax,
                "modality": d.modality,
                "rows": d.rows,
                "columns": d.cols,
                "frames": d.frames,
                "samples_per_pixel": d.samples_per_pixel,
                "bits_allocated": d.bits_allocated,
                "bits_stored": d.bits_stored,
                "signed": d.signed,
                "photometric_interpretation": d.photometric,
                "pixel_spacing_mm": g.pixel_spacing,
                "image_orientation_patient": g.image_orientation,
                "image_position_patient_mm": g.image_position,
                "slice_thickness_mm": g.slice_thickness,
                "rescale": d.rescale.map(|r| json!({"slope": r.slope, "intercept": r.intercept})),
                "windows": d.windows.iter().map(|w| json!({"center": w.center, "width": w.width})).collect::<Vec<_>>(),
                "burned_in_annotation": d.burned_in_annotation,
                "array_shape": shape,
                "array_dtype": stored.npy_descr(),
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if let Some(o) = v.as_object() {
                for (k, x) in o {
                    println!("{k:<28} {}", x.to_string().trim_matches('"'));
                }
            }
        }
        DicomCommand::ToPng {
            file,
            out,
            frame,
            window,
        } => {
            let d = read_dicom(&file)?;
            if frame >= d.frames {
                bail!(
                    "--frame {frame}: {} has {} frame(s)",
                    file.display(),
                    d.frames
                );
            }
            let img = d.to_raw_image(frame, parse_window(&window)?)?;
            save_png(&img, &out)?;
            eprintln!(
                "Wrote {} ({}×{}, {} channel(s))",
                out.display(),
                img.width,
                img.height,
                img.channels
            );
        }
        DicomCommand::ToNpy { file, out, hu } => {
            let d = read_dicom(&file)?;
            let bytes = if hu { d.hu_npy_bytes() } else { d.npy_bytes() };
            crate::report::write_atomic(&out, &bytes)?;
            let (shape, stored) = d.stored_array();
            eprintln!(
                "Wrote {} (shape {:?}, {})",
                out.display(),
                shape,
                if hu { "<f8" } else { stored.npy_descr() }
            );
        }
    }
    Ok(())
}

fn parse_axis(s: &str) -> Result<Axis> {
    match s.to_ascii_lowercase().as_str() {
        "x" | "0" => Ok(Axis::X),
        "y" | "1" => Ok(Axis::Y),
        "z" | "2" => Ok(Axis::Z),
        _ => bail!("--axis {s:?}: expected x, y or z"),
    }
}

/// Run `medai nifti …`.
pub fn nifti(cmd: NiftiCommand) -> Result<()> {
    match cmd {
        NiftiCommand::Info { file } => {
            let v = read_nifti(&file)?;
            let info = json!({
                "file": file.display().to_string(),
                "nifti_version": v.version,
                "shape": v.shape(),
                "datatype": v.datatype,
                "pixdim": v.pixdim,
                "scaling": v.scaling().map(|(s, i)| json!({"slope": s, "intercept": i})),
                "qform_code": v.qform_code,
                "sform_code": v.sform_code,
                "affine": v.affine,
            });
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        NiftiCommand::ToPng {
            file,
            out_dir,
            axis,
            range,
            t,
        } => {
            let v = read_nifti(&file)?;
            let axis = parse_axis(&axis)?;
            let n = v.axis_len(axis);
            let range = match range {
                None => 0..n,
                Some(r) => {
                    let (a, b) = r
                        .split_once(':')
                        .ok_or_else(|| anyhow!("--range {r:?}: expected START:END"))?;
                    let a: usize = a.parse().map_err(|_| anyhow!("--range {r:?}: bad START"))?;
                    let b: usize = b.parse().map_err(|_| anyhow!("--range {r:?}: bad END"))?;
                    a..b
                }
            };
            std::fs::create_dir_all(&out_dir).with_context(|| out_dir.display().to_string())?;
            let stem = file
                .file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let stem = stem.trim_end_matches(".gz").trim_end_matches(".nii");
            let name = ["x", "y", "z"][axis.index()];
            let slices = v.slices(axis, range.clone(), t)?;
            for (i, img) in range.zip(&slices) {
                save_png(img, &out_dir.join(format!("{stem}_{name}{i:03}.png")))?;
            }
            eprintln!("Wrote {} slice(s) to {}", slices.len(), out_dir.display());
        }
    }
    Ok(())
}

/// `medai deid …`.
#[derive(Subcommand, Debug)]
pub enum DeidCommand {
    /// De-identify a DICOM file or a directory tree (PS3.15 Annex E Basic Application Level
    /// Confidentiality Profile): identifying attributes removed/emptied/replaced, private tags
    /// removed, UIDs remapped with a keyed hash (consistent across a study), the method recorded.
    Dicom {
        /// Input file or directory.
        input: PathBuf,
        /// Output file or directory (relative paths are kept).
        output: PathBuf,
        /// File holding the secret key (at least 16 bytes); or set MEDAI_DEID_KEY. Keep it to
        /// de-identify later files of the same studies consistently.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Shift dates by a per-patient offset of at most this many days instead of removing them.
        #[arg(long, value_name = "DAYS")]
        shift_dates: Option<i64>,
        /// Let files declaring Burned In Annotation = YES through (marked, not refused).
        #[arg(long)]
        allow_burned_in: bool,
        /// Write the per-file reports as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

/// Run `medai deid …`.
pub fn deid(cmd: DeidCommand) -> Result<()> {
    let DeidCommand::Dicom {
        input,
        output,
        key_file,
        shift_dates,
        allow_burned_in,
        report,
    } = cmd;
    let key = match (&key_file, std::env::var("MEDAI_DEID_KEY")) {
        (Some(f), _) => std::fs::read(f).with_context(|| f.display().to_string())?,
        (None, Ok(k)) => k.into_bytes(),
        (None, Err(_)) => bail!(
            "no de-identification key: pass --key-file FILE (at least 16 secret bytes) or set MEDAI_DEID_KEY"
        ),
    };
    let cfg = medai_deid::DeidConfig {
        key,
        date_shift_days: shift_dates,
        refuse_burned_in: !allow_burned_in,
        retain_private: false,
    };
    let reports = if input.is_dir() {
        medai_deid::deidentify_dir(&input, &output, &cfg)
    } else {
        medai_deid::deidentify_file(&input, &output, &cfg).map(|r| vec![r])
    }
    .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    let burned = reports.iter().filter(|r| r.burned_in.is_some()).count();
    let uids: usize = reports.iter().map(|r| r.uids_remapped).sum();
    let private: usize = reports.iter().map(|r| r.private_removed).sum();
    eprintln!(
        "De-identified {} file(s) into {}: {} UIDs remapped, {} private elements removed{}",
        reports.len(),
        output.display(),
        uids,
        private,
        if burned > 0 {
            format!(", {burned} with burned-in annotation (NOT fully de-identified)")
        } else {
            String::new()
        }
    );
    if let Some(r) = report {
        crate::report::write_atomic(&r, serde_json::to_string_pretty(&reports)?.as_bytes())?;
    }
    Ok(())
}
