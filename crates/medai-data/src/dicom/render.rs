//! Windowing, palette colour and conversion to [`RawImage`].

use std::path::Path;

use dicom_core::{DicomValue, PrimitiveValue, Tag};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::{DicomImage, StoredValues, attr_name, element_present};
use crate::error::DataError;
use crate::image_io::RawImage;

/// A VOI window: centre and width in modality-LUT units (HU for CT).
///
/// Applied with the DICOM linear function (PS3.3 C.11.2.1.2.1) onto 0..=255: values
/// `x <= center - 0.5 - (width - 1) / 2` map to 0, values `x > center - 0.5 + (width - 1) / 2`
/// map to 255, and in between `((x - (center - 0.5)) / (width - 1) + 0.5) * 255`.
/// The width must be at least 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Window Center.
    pub center: f64,
    /// Window Width (≥ 1).
    pub width: f64,
}

impl Window {
    /// The clamp points `(low, high)`: values `<= low` give 0 and values `>= high` give 255
    /// (the function reaches 255 exactly at `high`).
    pub fn bounds(&self) -> (f64, f64) {
        let half = (self.width - 1.0) / 2.0;
        (self.center - 0.5 - half, self.center - 0.5 + half)
    }

    /// The linear VOI function of one value, on 0..=255.
    pub fn apply(&self, x: f64) -> f32 {
        let (low, high) = self.bounds();
        if x <= low {
            0.0
        } else if x > high {
            255.0
        } else if self.width <= 1.0 {
            // Width 1: the step happens at the centre; `x` is in the empty interval only
            // when low == high, handled above.
            255.0
        } else {
            (((x - (self.center - 0.5)) / (self.width - 1.0) + 0.5) * 255.0).clamp(0.0, 255.0)
                as f32
        }
    }

    fn is_valid(&self) -> bool {
        self.center.is_finite() && self.width.is_finite() && self.width >= 1.0
    }
}

/// Common CT windows (centre, width in HU), as used by radiologists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowPreset {
    /// Lung: centre −600, width 1500 (≤ −1350 HU black, ≥ 149 HU white).
    Lung,
    /// Mediastinum: centre 50, width 350 (≤ −125 HU black, ≥ 224 HU white).
    Mediastinum,
    /// Bone: centre 400, width 1800 (≤ −500 HU black, ≥ 1299 HU white).
    Bone,
    /// Brain: centre 40, width 80 (≤ 0 HU black, ≥ 79 HU white).
    Brain,
    /// Soft tissue: centre 40, width 400 (≤ −160 HU black, ≥ 239 HU white).
    SoftTissue,
}

impl WindowPreset {
    /// Every preset.
    pub const ALL: [WindowPreset; 5] = [
        WindowPreset::Lung,
        WindowPreset::Mediastinum,
        WindowPreset::Bone,
        WindowPreset::Brain,
        WindowPreset::SoftTissue,
    ];

    /// The preset's window.
    pub fn window(self) -> Window {
        let (center, width) = match self {
            WindowPreset::Lung => (-600.0, 1500.0),
            WindowPreset::Mediastinum => (50.0, 350.0),
            WindowPreset::Bone => (400.0, 1800.0),
            WindowPreset::Brain => (40.0, 80.0),
            WindowPreset::SoftTissue => (40.0, 400.0),
        };
        Window { center, width }
    }

    /// Lower-case name (`lung`, `mediastinum`, `bone`, `brain`, `soft-tissue`).
    pub fn name(self) -> &'static str {
        match self {
            WindowPreset::Lung => "lung",
            WindowPreset::Mediastinum => "mediastinum",
            WindowPreset::Bone => "bone",
            WindowPreset::Brain => "brain",
            WindowPreset::SoftTissue => "soft-tissue",
        }
    }
}

/// Which window [`DicomImage::to_raw_image`] applies to monochrome images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowChoice {
    /// The first Window Center/Width pair in the file (if its width is ≥ 1), else
    /// [`WindowChoice::MinMax`].
    FromFile,
    /// A [`WindowPreset`].
    Preset(WindowPreset),
    /// A given centre and width (width ≥ 1), in modality-LUT units.
    Custom {
        /// Window centre.
        center: f64,
        /// Window width (≥ 1).
        width: f64,
    },
    /// The frame's minimum modality-LUT value maps to 0 and its maximum to 255, linearly.
    MinMax,
}

/// A PALETTE COLOR lookup table (red, green, blue).
#[derive(Clone, Debug)]
pub(crate) struct Palette {
    channels: [PaletteLut; 3],
}

#[derive(Clone, Debug)]
struct PaletteLut {
    /// First stored value mapped (values below use entry 0, above the last entry).
    first: i64,
    /// Entries already scaled to 0..=255.
    entries: Vec<f32>,
}

impl Palette {
    pub(crate) fn read(obj: &InMemDicomObject, path: &Path) -> Result<Palette, DataError> {
        if obj
            .get(tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA)
            .is_some()
        {
            return Err(DataError::DicomUnsupported {
                path: path.to_path_buf(),
                what: "segmented palette colour lookup tables".to_string(),
            });
        }
        let red = PaletteLut::read(
            obj,
            path,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?;
        let green = PaletteLut::read(
            obj,
            path,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?;
        let blue = PaletteLut::read(
            obj,
            path,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?;
        Ok(Palette {
            channels: [red, green, blue],
        })
    }

    fn rgb(&self, index: f64, out: &mut Vec<f32>) {
        for lut in &self.channels {
            let i = (index as i64 - lut.first).clamp(0, lut.entries.len() as i64 - 1);
            out.push(lut.entries[i as usize]);
        }
    }
}

impl PaletteLut {
    fn read(
        obj: &InMemDicomObject,
        path: &Path,
        desc_tag: Tag,
        data_tag: Tag,
    ) -> Result<PaletteLut, DataError> {
        let err = |tag: Tag, reason: String| DataError::DicomAttribute {
            path: path.to_path_buf(),
            attribute: attr_name(tag),
            reason,
        };
        let desc = element_present(obj, desc_tag)
            .ok_or_else(|| err(desc_tag, "missing on a PALETTE COLOR image".to_string()))?
            .to_multi_int::<i64>()
            .map_err(|e| err(desc_tag, format!("expected 3 integers ({e})")))?;
        let [n, first, bits] = <[i64; 3]>::try_from(desc.as_slice()).map_err(|_| {
            err(
                desc_tag,
                format!("expected 3 integers, found {}", desc.len()),
            )
        })?;
        // Entries: 0 means 65536; the value may have been read as SS (negative).
        let n = match n {
            0 => 65536,
            n if n < 0 => n + 65536,
            n => n,
        } as usize;
        // First mapped value is US or SS depending on Pixel Representation.
        if bits != 8 && bits != 16 {
            return Err(err(
                desc_tag,
                format!("{bits} bits per entry (expected 8 or 16)"),
            ));
        }
        let words: Vec<u16> = match element_present(obj, data_tag).map(|e| e.value()) {
            Some(DicomValue::Primitive(PrimitiveValue::U16(w))) => w.to_vec(),
            Some(DicomValue::Primitive(PrimitiveValue::I16(w))) => {
                w.iter().map(|&x| x as u16).collect()
            }
            Some(DicomValue::Primitive(PrimitiveValue::U8(b))) => b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
            Some(_) => return Err(err(data_tag, "expected OW lookup table data".to_string())),
            None => {
                return Err(err(
                    data_tag,
                    "missing on a PALETTE COLOR image".to_string(),
                ));
            }
        };
        let entries: Vec<f32> = if bits == 16 {
            if words.len() < n {
                return Err(err(
                    data_tag,
                    format!("{} entries, the descriptor says {n}", words.len()),
                ));
            }
            words[..n].iter().map(|&w| f32::from(w) / 257.0).collect()
        } else if words.len() * 2 == n || (words.len() * 2 == n + 1 && n % 2 == 1) {
            // 8-bit entries packed two per word, first entry in the low byte.
            words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .take(n)
                .map(f32::from)
                .collect()
        } else if words.len() >= n {
            // One 8-bit entry per word; some writers put it in the high byte.
            let high = words[..n].iter().any(|&w| w > 255);
            words[..n]
                .iter()
                .map(|&w| f32::from(if high { w >> 8 } else { w }))
                .collect()
        } else {
            return Err(err(
                data_tag,
                format!(
                    "{} bytes of 8-bit entries, the descriptor says {n}",
                    words.len() * 2
                ),
            ));
        };
        Ok(PaletteLut { first, entries })
    }
}

pub(super) fn to_raw_image(
    img: &DicomImage,
    frame: usize,
    choice: WindowChoice,
) -> Result<RawImage, DataError> {
    if frame >= img.frames {
        return Err(DataError::DicomFrame {
            path: img.path.clone(),
            frame,
            frames: img.frames,
        });
    }
    let px = img.rows * img.cols;
    let spp = img.samples_per_pixel;
    let range = frame * px * spp..(frame + 1) * px * spp;
    let values = img.stored.slice_f64(range);
    if let Some(palette) = &img.palette {
        let mut pixels = Vec::with_capacity(px * 3);
        for &v in &values {
            palette.rgb(v, &mut pixels);
        }
        return Ok(RawImage {
            width: img.cols,
            height: img.rows,
            channels: 3,
            pixels,
        });
    }
    if spp == 3 {
        let scale = match &img.stored {
            StoredValues::F32(_) | StoredValues::F64(_) => 255.0,
            _ => 255.0 / ((1u64 << img.bits_stored) - 1) as f64,
        };
        let pixels = values
            .iter()
            .map(|&v| (v * scale).clamp(0.0, 255.0) as f32)
            .collect();
        return Ok(RawImage {
            width: img.cols,
            height: img.rows,
            channels: 3,
            pixels,
        });
    }
    let values: Vec<f64> = values.into_iter().map(|x| img.rescale_value(x)).collect();
    let window = match choice {
        WindowChoice::FromFile => img.windows.first().copied().filter(Window::is_valid),
        WindowChoice::Preset(p) => Some(p.window()),
        WindowChoice::Custom { center, width } => {
            let w = Window { center, width };
            if !w.is_valid() {
                return Err(DataError::InvalidOption {
                    field: "window".to_string(),
                    value: format!("center {center}, width {width}"),
                    expected: "finite numbers with width ≥ 1 (DICOM PS3.3 C.11.2.1.2)".to_string(),
                });
            }
            Some(w)
        }
        WindowChoice::MinMax => None,
    };
    let mut pixels: Vec<f32> = match window {
        Some(w) => values.iter().map(|&x| w.apply(x)).collect(),
        None => {
            let (lo, hi) = values
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            let span = hi - lo;
            values
                .iter()
                .map(|&x| {
                    if span > 0.0 && span.is_finite() {
                        (((x - lo) / span) * 255.0).clamp(0.0, 255.0) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        }
    };
    if img.photometric == "MONOCHROME1" {
        for p in &mut pixels {
            *p = 255.0 - *p;
        }
    }
    Ok(RawImage {
        width: img.cols,
        height: img.rows,
        channels: 1,
        pixels,
    })
}
