//! DICOM de-identification: the DICOM PS3.15 Annex E **Basic Application Level
//! Confidentiality Profile** (Table E.1-1 as of DICOM **2024b**), with keyed, consistent UID
//! remapping and optional per-patient date shifting. Engine-free (no deep-learning
//! dependency); built on the dicom-rs crates.
//!
//! # What is done
//!
//! * Every attribute of Table E.1-1 ([`profile_table`], 621 rows: 617 attributes plus the
//!   curve-data, overlay-comments, overlay-data and private-attributes wildcard rows) gets its
//!   Basic-profile action, **at any nesting depth** (sequence items are processed
//!   recursively): `X` removes, `Z` empties, `D` puts a dummy value consistent with the VR,
//!   `U` remaps UIDs. Combined codes are resolved without per-IOD type tables to the choice
//!   that is conformant for every IOD and always permitted by PS3.15 (see
//!   [`Action::effective`]): `X/Z` → empty, `Z/D`/`X/D`/`X/Z/D` → dummy, `X/Z/U*` → keep the
//!   reference sequence with its instance UIDs remapped. A `D` on a sequence keeps the items
//!   but replaces every textual value inside them (except code strings and UIDs, which follow
//!   the table) with a dummy. Values that are already empty are left empty.
//! * Patient ID (`Z/D`) is replaced by a keyed pseudonym `ANON-<16 hex>` (HMAC of the
//!   original), so one patient's files still group together; other `D` text gets
//!   `"ANONYMIZED"`, dates `19000101`, times `000000`.
//! * **UIDs** (every `U` row: Study/Series/SOP Instance UID, Frame of Reference UID,
//!   Referenced SOP Instance UID, ...) become `2.25.<decimal>`, the 128-bit integer being the
//!   first 16 bytes of HMAC-SHA256(key, original UID) with the UUID version-8/variant bits
//!   set. Same key → same UID, across files and runs, so a series/study still links; another
//!   key → unrelated UIDs. The file meta group's Media Storage SOP Instance UID gets the same
//!   mapping (so it equals the new SOP Instance UID); its AE titles and private information
//!   are cleared.
//! * All **private attributes** (odd groups, including private creators) are removed, unless
//!   [`DeidConfig::retain_private`] (not a standard option: the output is then marked
//!   Patient Identity Removed = `NO`). Group-length elements are dropped (they would be
//!   stale).
//! * With [`DeidConfig::date_shift_days`] = `Some(n)`, the *Retain Longitudinal Temporal
//!   Information with Modified Dates* option (113107) is used instead of removing dates:
//!   every DA value and the date part of every DT value (table rows whose option column is
//!   `C`, and also dates the table does not list, so none can reveal the offset) is moved by
//!   one offset per patient, in `[-n, -1] ∪ [1, n]` days, derived from HMAC(key, original
//!   Patient ID) (falling back to the Study Instance UID when there is no Patient ID). Times
//!   of day are kept, the shift being whole days, so intervals within a patient are exact.
//!   Patient's Birth Date is still emptied (the option does not cover it). Unparsable dates
//!   are emptied. The offset itself is never reported.
//! * The result records what was done: Patient Identity Removed (0012,0062) = `YES`,
//!   De-identification Method (0012,0063), De-identification Method Code Sequence
//!   (0012,0064) with (113100, DCM, "Basic Application Confidentiality Profile") and, when
//!   dates are shifted, 113107; Longitudinal Temporal Information Modified (0028,0303) =
//!   `MODIFIED` or `REMOVED`. A [`DeidReport`] lists what was removed / emptied / replaced.
//! * **Burned-in annotation**: a data set with Burned In Annotation (0028,0301) = `YES` is
//!   refused with [`DeidError::BurnedInAnnotation`] by default
//!   ([`DeidConfig::refuse_burned_in`]); when allowed, it passes with
//!   [`DeidReport::burned_in`] set and Patient Identity Removed = `NO`.
//! * Pixel data is never touched: (7FE0,0010) is carried through byte for byte, native or
//!   encapsulated (no codec is involved), in the input's transfer syntax.
//!
//! # What is NOT covered
//!
//! * **Text burned into the pixels** (ultrasound, secondary capture, screenshots, scanned
//!   documents) and faces in 3D reconstructions — the Clean Pixel Data and Clean
//!   Recognizable Visual Features options are not implemented. Only the declared flag
//!   (0028,0301) is checked; an image *without* that attribute may still carry burned-in
//!   text.
//! * **Free text outside the listed attributes**: Table E.1-1 is a list; identifying text in
//!   an attribute it does not name (for example a site-specific use of a description field
//!   not in the table) passes through. The Clean Descriptors option is not implemented
//!   (descriptions the table marks `X`/`D` are removed/replaced, not cleaned).
//! * **Structured reports** and other content trees: only the listed attributes inside them
//!   are handled (Content Sequence is a `D` row, so its textual leaves become dummies); the
//!   Clean Structured Content option is not implemented, so SR semantics are not preserved.
//! * Encapsulated documents' contents (PDF/CDA bytes), waveform data, and identifying data in
//!   private tags when [`DeidConfig::retain_private`] is set (Retain Safe Private is not
//!   implemented).
//! * UIDs in attributes the table does not mark `U` (e.g. SOP Class UIDs, coding scheme
//!   UIDs) are kept, as the profile requires.
//! * Nothing here is a legal judgement: de-identification per PS3.15 reduces, it does not
//!   eliminate, re-identification risk.
//!
//! # Why not `dicom-anonymization`
//!
//! The crates.io crate `dicom-anonymization` (0.3.1) was reviewed and not used: it is built
//! on dicom-rs 0.8 (this workspace uses 0.10, and its object types are incompatible), its
//! library pulls CLI dependencies (clap, env_logger) unconditionally, its UID and date
//! hashing is an *unkeyed* BLAKE3 hash (anyone with a candidate original UID can confirm a
//! link; no secret), its date shift is a fixed backwards offset of up to 10 years rather than
//! a configurable ±N days, its default configuration removes Patient Identity Removed and
//! the De-identification Method Code Sequence instead of recording the profile (113100),
//! and it keeps Burned In Annotation without flagging or refusing such images. The profile logic is therefore hand-written here.
//!
//! # Example
//!
//! ```no_run
//! use medai_deid::{DeidConfig, deidentify_file};
//! let cfg = DeidConfig::new(b"a secret key of at least 16 bytes".to_vec()).with_date_shift(30);
//! let report = deidentify_file("in.dcm".as_ref(), "out.dcm".as_ref(), &cfg)?;
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! # Ok::<(), medai_deid::DeidError>(())
//! ```

mod dates;
mod engine;
mod error;
mod io;
mod keyed;
mod profile;

use std::fmt;

use dicom_core::header::Header;
use dicom_core::header::Length;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use serde::Serialize;

pub use engine::ProfileHit;
pub use error::DeidError;
pub use io::{deidentify_dir, deidentify_file, read_dicom_file};
pub use profile::{Action, Effective, PROFILE_LEN, ProfileEntry};

/// The dicom-rs object crate, re-exported so that callers of [`deidentify_object`] need no
/// direct dependency.
pub use dicom_object;

/// The DICOM edition whose Table E.1-1 is encoded in [`profile_table`].
pub const DICOM_EDITION: &str = "2024b";

/// Minimum length of [`DeidConfig::key`] in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// Largest accepted [`DeidConfig::date_shift_days`] (about 100 years).
pub const MAX_DATE_SHIFT_DAYS: i64 = 36_525;

/// Table E.1-1 (Basic Profile column), one [`ProfileEntry`] per row.
pub fn profile_table() -> &'static [ProfileEntry] {
    &profile::PROFILE
}

/// De-identification settings.
#[derive(Clone)]
pub struct DeidConfig {
    /// Secret key of the keyed hash (HMAC-SHA256) used for UIDs, the Patient ID pseudonym and
    /// date offsets. At least [`MIN_KEY_LEN`] bytes; 32 random bytes recommended. Keep it to
    /// de-identify later files of the same studies consistently; keep it secret (whoever has
    /// it can test candidate originals).
    pub key: Vec<u8>,
    /// `Some(n)`: shift dates by a per-patient offset of at most `n` days (1 ..=
    /// [`MAX_DATE_SHIFT_DAYS`]) instead of removing them. `None`: dates get the Basic-profile
    /// actions.
    pub date_shift_days: Option<i64>,
    /// Refuse (error) data sets declaring Burned In Annotation = YES. Default `true`.
    pub refuse_burned_in: bool,
    /// Keep private attributes (not a PS3.15 option; marks the output Patient Identity
    /// Removed = NO). Default `false`.
    pub retain_private: bool,
}

impl DeidConfig {
    /// Defaults: no date shifting, refuse burned-in annotation, remove private attributes.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            date_shift_days: None,
            refuse_burned_in: true,
            retain_private: false,
        }
    }

    /// Enable date shifting by at most `max_days`.
    pub fn with_date_shift(mut self, max_days: i64) -> Self {
        self.date_shift_days = Some(max_days);
        self
    }

    /// Check the settings.
    pub fn validate(&self) -> Result<(), DeidError> {
        self.keyed().map(|_| ())
    }

    fn keyed(&self) -> Result<keyed::Keyed, DeidError> {
        if self.key.len() < MIN_KEY_LEN {
            return Err(DeidError::InvalidConfig(format!(
                "key must be at least {MIN_KEY_LEN} bytes (got {})",
                self.key.len()
            )));
        }
        if let Some(n) = self.date_shift_days
            && !(1..=MAX_DATE_SHIFT_DAYS).contains(&n)
        {
            return Err(DeidError::InvalidConfig(format!(
                "date_shift_days must be in 1..={MAX_DATE_SHIFT_DAYS} (got {n})"
            )));
        }
        keyed::Keyed::new(&self.key)
    }

    /// The UID that `uid` is remapped to under this key (`2.25.<decimal>`), e.g. to find a
    /// de-identified study from its original Study Instance UID.
    pub fn remap_uid(&self, uid: &str) -> Result<String, DeidError> {
        Ok(self
            .keyed()?
            .remap_uid(uid.trim_matches(|c: char| c == ' ' || c == '\0')))
    }
}

impl fmt::Debug for DeidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeidConfig")
            .field("key", &format_args!("<{} bytes redacted>", self.key.len()))
            .field("date_shift_days", &self.date_shift_days)
            .field("refuse_burned_in", &self.refuse_burned_in)
            .field("retain_private", &self.retain_private)
            .finish()
    }
}

/// What was done to one object. Entries of `removed` / `emptied` / `replaced` read
/// `"(gggg,eeee) Keyword"`, nested ones `"(gggg,eeee)[item]>(gggg,eeee) Keyword"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeidReport {
    /// Input file (file and directory modes).
    pub input: Option<String>,
    /// Output file (file and directory modes).
    pub output: Option<String>,
    /// The profile and options applied, in words.
    pub profile: String,
    /// The De-identification Method Code Sequence codes written (`"113100"`, ...).
    pub method_codes: Vec<String>,
    /// The value written to Patient Identity Removed (0012,0062): `false` when burned-in
    /// annotation was let through or private attributes were retained.
    pub patient_identity_removed: bool,
    /// Attributes removed (action X).
    pub removed: Vec<String>,
    /// Attributes emptied (action Z, or a date that could not be shifted).
    pub emptied: Vec<String>,
    /// Attributes replaced by dummy values or a pseudonym (action D).
    pub replaced: Vec<String>,
    /// UID values remapped (action U), file meta included.
    pub uids_remapped: usize,
    /// Private data elements removed (top level and nested).
    pub private_removed: usize,
    /// DA/DT values shifted.
    pub dates_shifted: usize,
    /// Set when the object declares Burned In Annotation (0028,0301) = YES (only reachable
    /// with `refuse_burned_in = false`).
    pub burned_in: Option<String>,
}

/// Every Table E.1-1 attribute present in `obj` (nested ones included), in data-set order.
/// Handy for a dry run.
pub fn find_profile_attributes(obj: &InMemDicomObject) -> Vec<ProfileHit> {
    let mut out = Vec::new();
    engine::collect_hits(obj, "", &mut out);
    out
}

/// Whether the top-level Burned In Annotation (0028,0301) is `YES`.
pub fn declares_burned_in(obj: &InMemDicomObject) -> bool {
    obj.get(tags::BURNED_IN_ANNOTATION)
        .and_then(|e| match e.value() {
            Value::Primitive(p) => Some(engine::text_values(p)),
            _ => None,
        })
        .is_some_and(|v| v.iter().any(|s| s.eq_ignore_ascii_case("YES")))
}

fn top_text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let e = obj.get(tag)?;
    match e.value() {
        Value::Primitive(p) => {
            let v = engine::text_values(p).join("\\");
            (!v.is_empty()).then_some(v)
        }
        _ => None,
    }
}

fn code_item(value: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
        DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from("DCM"),
        ),
        DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
    ])
}

/// De-identify an in-memory DICOM file object (data set and file meta group).
///
/// Returns the new object and the report; errors only for an invalid config or a refused
/// burned-in annotation.
pub fn deidentify_object(
    obj: DefaultDicomObject,
    cfg: &DeidConfig,
) -> Result<(DefaultDicomObject, DeidReport), DeidError> {
    deidentify_object_at(obj, cfg, None)
}

pub(crate) fn deidentify_object_at(
    obj: DefaultDicomObject,
    cfg: &DeidConfig,
    path: Option<&std::path::Path>,
) -> Result<(DefaultDicomObject, DeidReport), DeidError> {
    let keyed = cfg.keyed()?;
    let burned_in = declares_burned_in(&obj);
    if burned_in && cfg.refuse_burned_in {
        return Err(DeidError::BurnedInAnnotation {
            path: path.map(|p| p.to_path_buf()),
        });
    }

    let shift = cfg.date_shift_days.map(|n| {
        let patient_key = top_text(&obj, tags::PATIENT_ID)
            .map(|id| format!("PatientID={id}"))
            .or_else(|| top_text(&obj, tags::STUDY_INSTANCE_UID).map(|s| format!("Study={s}")))
            .unwrap_or_default();
        keyed.date_offset(&patient_key, n)
    });

    let mut meta = obj.meta().clone();
    let inner = obj.into_inner();
    let mut engine = engine::Engine {
        keyed: &keyed,
        retain_private: cfg.retain_private,
        shift,
        report: DeidReport::default(),
    };
    let mut out = engine.process_dataset(inner, "", false);
    let mut report = engine.report;

    // File meta group.
    let media_uid = meta
        .media_storage_sop_instance_uid
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_string();
    // It must identify the same instance as the data set's (remapped) SOP Instance UID; a file
    // whose two values disagree gets the data set's.
    let new_sop = top_text(&out, tags::SOP_INSTANCE_UID);
    if let Some(uid) = new_sop {
        if !media_uid.is_empty() {
            report.uids_remapped += 1;
        }
        meta.media_storage_sop_instance_uid = uid;
    } else if !media_uid.is_empty() {
        meta.media_storage_sop_instance_uid = keyed.remap_uid(&media_uid);
        report.uids_remapped += 1;
    }
    for (value, label) in [
        (
            &mut meta.source_application_entity_title,
            "(0002,0016) SourceApplicationEntityTitle",
        ),
        (
            &mut meta.sending_application_entity_title,
            "(0002,0017) SendingApplicationEntityTitle",
        ),
        (
            &mut meta.receiving_application_entity_title,
            "(0002,0018) ReceivingApplicationEntityTitle",
        ),
        (
            &mut meta.private_information_creator_uid,
            "(0002,0100) PrivateInformationCreatorUID",
        ),
    ] {
        if value.take().is_some() {
            report.removed.push(label.to_string());
        }
    }
    if meta.private_information.take().is_some() {
        report
            .removed
            .push("(0002,0102) PrivateInformation".to_string());
    }
    meta.update_information_group_length();

    // Record the profile and options.
    let identity_removed = !(burned_in || cfg.retain_private);
    let mut codes = vec![("113100", "Basic Application Confidentiality Profile")];
    let mut methods = vec![
        "DICOM PS3.15 E.1 Basic Profile".to_string(),
        format!("medai-deid {}", env!("CARGO_PKG_VERSION")),
    ];
    let mut profile = format!(
        "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile \
         (Table E.1-1, DICOM {DICOM_EDITION})"
    );
    if let Some(n) = cfg.date_shift_days {
        codes.push((
            "113107",
            "Retain Longitudinal Temporal Information Modified Dates Option",
        ));
        methods.push(format!("Dates shifted per patient, max {n} days"));
        profile.push_str(&format!(
            "; option: Retain Longitudinal Temporal Information with Modified Dates \
             (per-patient shift, at most {n} days)"
        ));
    }
    if cfg.retain_private {
        methods.push("Private attributes retained".to_string());
        profile.push_str("; private attributes retained (not a PS3.15 option)");
    }
    if burned_in {
        methods.push("Burned-in annotation not removed".to_string());
        report.burned_in = Some(
            "BurnedInAnnotation (0028,0301) = YES: pixel data may contain identifying text \
             that was not removed"
                .to_string(),
        );
    }
    out.put(DataElement::new(
        tags::PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from(if identity_removed { "YES" } else { "NO" }),
    ));
    out.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::Strs(methods.into()),
    ));
    let items: Vec<InMemDicomObject> = codes.iter().map(|(v, m)| code_item(v, m)).collect();
    out.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
    out.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from(if cfg.date_shift_days.is_some() {
            "MODIFIED"
        } else {
            "REMOVED"
        }),
    ));

    report.profile = profile;
    report.method_codes = codes.iter().map(|(v, _)| v.to_string()).collect();
    report.patient_identity_removed = identity_removed;
    debug_assert!(
        out.iter()
            .all(|e| e.tag().group() % 2 == 0 || cfg.retain_private)
    );
    Ok((out.with_exact_meta(meta), report))
}
