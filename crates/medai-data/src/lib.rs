//! # medai-data
//!
//! Labelled medical-image datasets for medai, without any deep-learning engine.
//!
//! This crate's job is everything between "a path the user typed" and "a CHW `f32` tensor
//! buffer ready for a model":
//!
//! - **Discovery** ([`open`]): a MedMNIST `.npz` file, a CSV manifest (`path,label[,split]`) or
//!   an ImageFolder directory (one sub-folder per class, optionally under `train/`, `val/`,
//!   `test/`), with class names, label mode checks and a seeded stratified train/val split
//!   when the dataset has no val split.
//! - **Decoding** ([`load_image`], [`LabeledImages::load`], [`validate`]): PNG, JPEG, BMP and
//!   TIFF (8/16-bit grey or RGB, alpha dropped) into [`RawImage`] on the 0..=255 scale,
//!   recognised by content; bad files either fail with the file named or are skipped and
//!   reported ([`OnBadFile`]).
//! - **Preprocessing** ([`PreprocessSpec`]): resize (nearest, bilinear, area), grey↔RGB and
//!   normalisation (rescale, ImageNet torch/caffe, per-channel standardisation with
//!   [`channel_stats`]), as recorded in a model bundle.
//! - **Augmentation** ([`AugmentSpec`]): seeded flips, affine warps, random-resized-crop,
//!   brightness, contrast and noise, for training only.
//! - **DICOM** ([`read_dicom`], [`DicomImage`]): DICOM Part 10 files (native, deflated, RLE,
//!   JPEG baseline/lossless, JPEG 2000) into pydicom-identical stored values with patient
//!   geometry, Hounsfield units, `.npy` export and windowed [`RawImage`] frames
//!   ([`WindowChoice`], [`WindowPreset`]); `.dcm` files load like any other image.
//! - **Volumes** ([`read_nifti`], [`Volume`]): NIfTI-1 and NIfTI-2 `.nii`/`.nii.gz` files in
//!   either byte order, with nibabel's scaling and affine, cut along x, y or z into grey
//!   [`RawImage`] slices (min–max or CT window) for 2-D training ([`Volume::slice`]).
//! - **Identity** ([`DatasetSplits::fingerprint`], [`DatasetSplits::summary`]): a SHA-256
//!   fingerprint of classes, labels and item identity, and a Keras-style one-line summary.
//!
//! Every error is a [`DataError`] whose message names the file (and row, key or field) and
//! what was expected; bad input never panics.
//!
//! ```no_run
//! use medai_data::{open, OpenOptions, PreprocessSpec, ResizeFilter, Normalization};
//! let splits = open("pneumoniamnist.npz".as_ref(), &OpenOptions::default())?;
//! println!("{}", splits.summary());
//! let spec = PreprocessSpec {
//!     height: 28, width: 28, channels: 1,
//!     resize: ResizeFilter::Bilinear, normalization: Normalization::Rescale,
//! };
//! let x: Vec<f32> = spec.apply(&splits.train.load(0)?);
//! assert_eq!(x.len(), 28 * 28);
//! # Ok::<(), medai_data::DataError>(())
//! ```

#![warn(missing_docs)]

mod augment;
mod dataset;
mod dicom;
mod error;
mod folder;
mod image_io;
mod manifest;
mod nifti;
mod npy;
mod npz;
mod preprocess;
mod timeseries;

pub use self::nifti::{Axis, NIFTI_MAX_BYTES, Volume, read_nifti, read_nifti_bytes};
pub use augment::AugmentSpec;
pub use dataset::{
    DatasetSplits, Item, ItemSource, LabelMode, LabeledImages, OnBadFile, OpenOptions, U8Images,
    open, open_with_report, stratified_split, validate,
};
pub use dicom::{
    DicomImage, Geometry, MAX_PIXEL_BYTES, Rescale, StoredValues, Window, WindowChoice,
    WindowPreset, read_dicom, read_dicom_bytes,
};
pub use error::DataError;
pub use image_io::{
    IMAGE_EXTENSIONS, RawImage, decode_image_bytes, from_dynamic, has_image_extension, load_image,
};
pub use npz::{medmnist_class_names, read_npz_bytes};
pub use preprocess::{Normalization, PreprocessSpec, ResizeFilter, channel_stats};
pub use timeseries::{
    Frequency, Gap, TimeSeries, TsColumns, format_datetime, parse_datetime, read_timeseries_csv,
};
