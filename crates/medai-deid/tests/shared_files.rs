//! End-to-end checks on the real DICOM files in `shared/data/dicom` (29 files from the
//! pydicom test corpus: CT/MR/NM/US/SC/SEG/RTDOSE, native and encapsulated, LE/BE/implicit/
//! deflated).
//!
//! `cargo nextest run -p medai-deid --no-capture -E 'test(profile_attributes_in_shared_files)'`
//! prints the Table E.1-1 attributes found in each file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use medai_deid::{
    DeidConfig, DeidError, Effective, deidentify_dir, deidentify_file, deidentify_object,
    find_profile_attributes, profile_table, read_dicom_file,
};

const KEY: &[u8] = b"medai-deid test key: 32 bytes!!!";
const OTHER_KEY: &[u8] = b"a different key for the same set";

fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dicom");
    assert!(
        dir.is_dir(),
        "shared DICOM test data not found at {} (expected shared/ beside the repository)",
        dir.display()
    );
    dir
}

fn shared_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 29,
        "expected the 29 shared .dcm files, found {}",
        files.len()
    );
    files
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn trim(s: &str) -> String {
    s.trim_matches(|c: char| c == ' ' || c == '\0').to_string()
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.get(tag)?;
    match e.value() {
        Value::Primitive(PrimitiveValue::Empty) => Some(String::new()),
        Value::Primitive(p) => Some(trim(&p.to_str())),
        _ => None,
    }
}

/// Every element at any depth: (tag, primitive value as text if any, number of items if SQ).
#[derive(Debug, Clone)]
struct Flat {
    tag: Tag,
    value: Option<String>,
    items: Option<usize>,
}

fn flatten(obj: &InMemDicomObject, out: &mut Vec<Flat>) {
    for e in obj {
        match e.value() {
            Value::Sequence(seq) => {
                out.push(Flat {
                    tag: e.tag(),
                    value: None,
                    items: Some(seq.items().len()),
                });
                for item in seq.items() {
                    flatten(item, out);
                }
            }
            Value::Primitive(p) => out.push(Flat {
                tag: e.tag(),
                value: Some(match p {
                    PrimitiveValue::Empty => String::new(),
                    p => trim(&p.to_str()),
                }),
                items: None,
            }),
            Value::PixelSequence(_) => out.push(Flat {
                tag: e.tag(),
                value: None,
                items: None,
            }),
        }
    }
}

fn flat(obj: &InMemDicomObject) -> Vec<Flat> {
    let mut v = Vec::new();
    flatten(obj, &mut v);
    v
}

fn entry_for(tag: Tag) -> Option<&'static medai_deid::ProfileEntry> {
    let t = profile_table();
    t.iter()
        .find(|e| e.mask == (0xFFFF, 0xFFFF) && e.tag == (tag.group(), tag.element()))
        .or_else(|| {
            t.iter()
                .find(|e| e.mask != (0xFFFF, 0xFFFF) && e.matches(tag.group(), tag.element()))
        })
}

/// The pixel data as comparable bytes: native value bytes, or offset table + fragments.
fn pixel_bytes(obj: &InMemDicomObject) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let e = obj.get(tags::PIXEL_DATA)?;
    Some(match e.value() {
        Value::Primitive(p) => (p.to_bytes().into_owned(), Vec::new()),
        Value::PixelSequence(seq) => {
            let ot: Vec<u8> = seq
                .offset_table()
                .iter()
                .flat_map(|o| o.to_le_bytes())
                .collect();
            (ot, seq.fragments().to_vec())
        }
        Value::Sequence(_) => panic!("pixel data as a sequence"),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn has_code(obj: &InMemDicomObject, code: &str) -> bool {
    obj.get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .is_some_and(|items| {
            items
                .iter()
                .any(|i| text(i, tags::CODE_VALUE).as_deref() == Some(code))
        })
}

fn days(da: &str) -> i64 {
    let (y, m, d): (i64, i64, i64) = (
        da[0..4].parse().unwrap(),
        da[4..6].parse().unwrap(),
        da[6..8].parse().unwrap(),
    );
    // Days since 1970-01-01 (proleptic Gregorian), independent of the crate's implementation.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// (1) The Table E.1-1 attributes present in each shared file — printed for the issue.
#[test]
fn profile_attributes_in_shared_files() {
    let files = shared_files();
    let mut totals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    println!(
        "Table E.1-1 (Basic Profile, DICOM {}) attributes present in shared/data/dicom \
         ({} files; * = non-empty value):",
        medai_deid::DICOM_EDITION,
        files.len()
    );
    for f in &files {
        let obj = read_dicom_file(f).unwrap();
        let hits = find_profile_attributes(&obj);
        let private = hits
            .iter()
            .filter(|h| h.keyword == "PrivateAttributes")
            .count();
        let listed: BTreeSet<String> = hits
            .iter()
            .filter(|h| h.keyword != "PrivateAttributes")
            .map(|h| {
                format!(
                    "{}{}[{}]{}",
                    if h.path.contains('>') { "nested " } else { "" },
                    h.keyword,
                    h.action,
                    if h.has_value { "*" } else { "" }
                )
            })
            .collect();
        println!(
            "{} ({} attributes + {} private elements): {}",
            name(f),
            listed.len(),
            private,
            listed.into_iter().collect::<Vec<_>>().join(", ")
        );
        for h in &hits {
            let key = if h.keyword == "PrivateAttributes" {
                "(odd group,xxxx) PrivateAttributes [X]".to_string()
            } else {
                format!("{} {} [{}]", h.tag, h.keyword, h.action)
            };
            totals.entry(key).or_default().insert(name(f));
        }
    }
    println!("Summary: attribute [Basic-profile action] -> number of files containing it");
    for (k, v) in &totals {
        println!("    {k}: {}", v.len());
    }
    assert!(totals.keys().any(|k| k.contains("PatientName")));
    assert!(totals.keys().any(|k| k.contains("StudyInstanceUID")));
}

/// (2) De-identify every shared file to disk and verify the result.
#[test]
fn deidentify_shared_files() {
    let files = shared_files();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = DeidConfig::new(KEY);
    let mut study_groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut total_removed = 0;
    for f in &files {
        let orig = read_dicom_file(f).unwrap();
        let out_path = tmp.path().join(name(f));
        let report =
            deidentify_file(f, &out_path, &cfg).unwrap_or_else(|e| panic!("{}: {e}", name(f)));
        let out = read_dicom_file(&out_path).unwrap_or_else(|e| panic!("{}: {e}", name(f)));
        let ctx = name(f);
        total_removed += report.removed.len() + report.emptied.len() + report.replaced.len();

        // Nothing identifying survives with its original value.
        let before = flat(&orig);
        let after = flat(&out);
        let after_values: BTreeSet<(Tag, String)> = after
            .iter()
            .filter_map(|x| x.value.clone().map(|v| (x.tag, v)))
            .collect();
        for x in &before {
            if x.tag.group() % 2 == 1 {
                continue;
            }
            let Some(entry) = entry_for(x.tag) else {
                continue;
            };
            match (entry.action.effective(), &x.value, x.items) {
                (Effective::KeepRecurse, _, _) => {}
                (Effective::Remove, _, _) => assert!(
                    after.iter().all(|y| y.tag != x.tag),
                    "{ctx}: {} {} should be removed",
                    x.tag,
                    entry.keyword
                ),
                (Effective::Empty, None, Some(_)) => assert!(
                    after
                        .iter()
                        .filter(|y| y.tag == x.tag)
                        .all(|y| y.items == Some(0)),
                    "{ctx}: sequence {} should be empty",
                    entry.keyword
                ),
                (_, Some(v), _) if !v.is_empty() => {
                    assert!(
                        !after_values.contains(&(x.tag, v.clone())),
                        "{ctx}: {} {} kept its original value {v:?}",
                        x.tag,
                        entry.keyword
                    );
                }
                _ => {}
            }
        }
        // No private tags anywhere.
        assert!(
            after.iter().all(|y| y.tag.group() % 2 == 0),
            "{ctx}: private tag survived"
        );
        if before.iter().any(|y| y.tag.group() % 2 == 1) {
            assert!(report.private_removed > 0, "{ctx}");
        }

        // Pixel data identical, parsed and as raw bytes in the written file.
        let (pb, frags) = pixel_bytes(&orig).unwrap_or_else(|| panic!("{ctx}: no pixel data"));
        assert_eq!(
            pixel_bytes(&out),
            Some((pb.clone(), frags.clone())),
            "{ctx}: pixel data changed"
        );
        let ts = orig
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string();
        let raw_out = std::fs::read(&out_path).unwrap();
        if ts == "1.2.840.10008.1.2.1" || ts == "1.2.840.10008.1.2" {
            assert!(
                contains(&raw_out, &pb),
                "{ctx}: raw pixel bytes not found in output"
            );
        }
        for fr in &frags {
            assert!(
                contains(&raw_out, fr),
                "{ctx}: fragment bytes not in output"
            );
        }
        assert_eq!(orig.meta().transfer_syntax(), out.meta().transfer_syntax());

        // The profile is recorded.
        assert_eq!(
            text(&out, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
            Some("YES")
        );
        assert!(has_code(&out, "113100"), "{ctx}: 113100 missing");
        assert!(!has_code(&out, "113107"));
        assert!(report.patient_identity_removed);
        assert!(report.burned_in.is_none());
        assert!(
            report
                .profile
                .contains("Basic Application Level Confidentiality")
        );

        // UIDs remapped, deterministically, and the file meta follows the SOP Instance UID.
        let old_sop = text(&orig, tags::SOP_INSTANCE_UID).unwrap();
        let new_sop = text(&out, tags::SOP_INSTANCE_UID).unwrap();
        assert_ne!(old_sop, new_sop);
        assert!(new_sop.starts_with("2.25."), "{ctx}: {new_sop}");
        assert_eq!(new_sop, cfg.remap_uid(&old_sop).unwrap());
        assert_eq!(
            trim(out.meta().media_storage_sop_instance_uid()),
            new_sop,
            "{ctx}: MediaStorageSOPInstanceUID"
        );
        for t in [
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::FRAME_OF_REFERENCE_UID,
        ] {
            if let (Some(a), Some(b)) = (text(&orig, t), text(&out, t))
                && !a.is_empty()
            {
                assert_eq!(b, cfg.remap_uid(&a).unwrap(), "{ctx}: {t}");
            }
        }
        assert!(report.uids_remapped >= 3, "{ctx}: {}", report.uids_remapped);
        if let (Some(old), Some(new)) = (
            text(&orig, tags::STUDY_INSTANCE_UID),
            text(&out, tags::STUDY_INSTANCE_UID),
        ) {
            study_groups
                .entry(old)
                .or_default()
                .insert(format!("{new}|{ctx}"));
        }
    }
    assert!(total_removed > 0);

    // Files sharing a Study Instance UID still share the new one.
    let mut shared = 0;
    for members in study_groups.values() {
        let news: BTreeSet<&str> = members
            .iter()
            .map(|m| m.split('|').next().unwrap())
            .collect();
        assert_eq!(
            news.len(),
            1,
            "study split after de-identification: {members:?}"
        );
        if members.len() > 1 {
            shared += 1;
        }
    }
    assert!(
        shared > 0,
        "expected some shared files to share a study (twins)"
    );
}

/// Same key → same UIDs (in memory, twice); different key → different UIDs; two instances
/// of one series (made from one shared file) keep a common Study/Series UID and distinct
/// SOP Instance UIDs.
#[test]
fn uid_remapping_is_keyed_and_consistent() {
    let path = data_dir().join("CT_small.dcm");
    let cfg = DeidConfig::new(KEY);
    let other = DeidConfig::new(OTHER_KEY);
    let a = deidentify_object(read_dicom_file(&path).unwrap(), &cfg)
        .unwrap()
        .0;
    let b = deidentify_object(read_dicom_file(&path).unwrap(), &cfg)
        .unwrap()
        .0;
    let c = deidentify_object(read_dicom_file(&path).unwrap(), &other)
        .unwrap()
        .0;
    for t in [
        tags::STUDY_INSTANCE_UID,
        tags::SERIES_INSTANCE_UID,
        tags::SOP_INSTANCE_UID,
        tags::FRAME_OF_REFERENCE_UID,
    ] {
        assert_eq!(text(&a, t), text(&b, t));
        assert_ne!(text(&a, t), text(&c, t));
    }

    // A second instance of the same series.
    let mut second = read_dicom_file(&path).unwrap();
    second.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from("1.2.3.4.5.6.7.8.9"),
    ));
    second.meta_mut().media_storage_sop_instance_uid = "1.2.3.4.5.6.7.8.9".to_string();
    let d = deidentify_object(second, &cfg).unwrap().0;
    assert_eq!(
        text(&a, tags::STUDY_INSTANCE_UID),
        text(&d, tags::STUDY_INSTANCE_UID)
    );
    assert_eq!(
        text(&a, tags::SERIES_INSTANCE_UID),
        text(&d, tags::SERIES_INSTANCE_UID)
    );
    assert_ne!(
        text(&a, tags::SOP_INSTANCE_UID),
        text(&d, tags::SOP_INSTANCE_UID)
    );
    assert_eq!(
        trim(d.meta().media_storage_sop_instance_uid()),
        text(&d, tags::SOP_INSTANCE_UID).unwrap()
    );
}

fn top_dates(obj: &InMemDicomObject) -> BTreeMap<Tag, String> {
    obj.iter()
        .filter(|e| e.vr() == VR::DA && e.tag().group() % 2 == 0)
        .filter_map(|e| {
            let v = trim(&e.value().to_str().ok()?);
            (v.len() == 8).then_some((e.tag(), v))
        })
        .collect()
}

/// Date shifting: one offset per patient, within ±N days, applied to every date.
#[test]
fn date_shift_is_per_patient() {
    let max = 30;
    let cfg = DeidConfig::new(KEY).with_date_shift(max);
    let mut offsets_by_patient: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut checked = 0;
    for f in shared_files() {
        let orig = read_dicom_file(&f).unwrap();
        let (out, report) = deidentify_object(orig.clone(), &cfg).unwrap();
        assert!(has_code(&out, "113100") && has_code(&out, "113107"));
        assert_eq!(
            text(&out, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).as_deref(),
            Some("MODIFIED")
        );
        assert_eq!(text(&out, tags::PATIENT_BIRTH_DATE).unwrap_or_default(), "");
        let before = top_dates(&orig);
        let after = top_dates(&out);
        let mut offsets = BTreeSet::new();
        for (tag, old) in &before {
            if *tag == tags::PATIENT_BIRTH_DATE {
                continue;
            }
            let new = after
                .get(tag)
                .unwrap_or_else(|| panic!("{}: date {tag} lost", name(&f)));
            offsets.insert(days(new) - days(old));
        }
        if offsets.is_empty() {
            continue;
        }
        assert!(report.dates_shifted > 0);
        assert_eq!(
            offsets.len(),
            1,
            "{}: inconsistent shift {offsets:?}",
            name(&f)
        );
        let off = *offsets.iter().next().unwrap();
        assert!(off != 0 && off.abs() <= max, "{}: offset {off}", name(&f));
        let pid = text(&orig, tags::PATIENT_ID).unwrap_or_default();
        offsets_by_patient.entry(pid).or_default().insert(off);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} files had dates");
    for (pid, offs) in &offsets_by_patient {
        assert_eq!(
            offs.len(),
            1,
            "patient {pid:?} got several offsets {offs:?}"
        );
    }

    // Same patient, different file: same offset; study dates in a made-up second study move
    // by it too.
    let path = data_dir().join("CT_small.dcm");
    let mut a = read_dicom_file(&path).unwrap();
    a.put(DataElement::new(
        tags::STUDY_DATE,
        VR::DA,
        PrimitiveValue::from("20200301"),
    ));
    a.put(DataElement::new(
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        PrimitiveValue::from("20200301123456.5+0100"),
    ));
    let mut b = read_dicom_file(&path).unwrap();
    b.put(DataElement::new(
        tags::STUDY_DATE,
        VR::DA,
        PrimitiveValue::from("20210815"),
    ));
    let a = deidentify_object(a, &cfg).unwrap().0;
    let b = deidentify_object(b, &cfg).unwrap().0;
    let da = days(&text(&a, tags::STUDY_DATE).unwrap()) - days("20200301");
    let db = days(&text(&b, tags::STUDY_DATE).unwrap()) - days("20210815");
    assert_eq!(da, db);
    let dt = text(&a, tags::ACQUISITION_DATE_TIME).unwrap();
    assert_eq!(days(&dt[..8]) - days("20200301"), da);
    assert_eq!(&dt[8..], "123456.5+0100", "time part of DT kept");

    // A different patient (almost surely) gets a different offset; the same key always the same.
    let mut c = read_dicom_file(&path).unwrap();
    c.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from("SOMEONE-ELSE-0001"),
    ));
    c.put(DataElement::new(
        tags::STUDY_DATE,
        VR::DA,
        PrimitiveValue::from("20200301"),
    ));
    let c1 = deidentify_object(c.clone(), &cfg).unwrap().0;
    let c2 = deidentify_object(c, &cfg).unwrap().0;
    assert_eq!(text(&c1, tags::STUDY_DATE), text(&c2, tags::STUDY_DATE));
    assert_ne!(text(&c1, tags::PATIENT_ID), text(&a, tags::PATIENT_ID));
}

/// Without date shifting the listed dates are emptied / replaced, never kept.
#[test]
fn dates_removed_without_shift() {
    let path = data_dir().join("CT_small.dcm");
    let orig = read_dicom_file(&path).unwrap();
    let (out, report) = deidentify_object(orig.clone(), &DeidConfig::new(KEY)).unwrap();
    assert_eq!(report.dates_shifted, 0);
    assert_eq!(
        text(&out, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).as_deref(),
        Some("REMOVED")
    );
    let study_date = text(&orig, tags::STUDY_DATE).unwrap();
    assert!(!study_date.is_empty());
    assert_eq!(text(&out, tags::STUDY_DATE).as_deref(), Some(""));
    // Patient ID becomes a keyed pseudonym; name emptied.
    let pid = text(&out, tags::PATIENT_ID).unwrap();
    assert!(pid.starts_with("ANON-") && pid.len() == 21, "{pid}");
    assert_eq!(text(&out, tags::PATIENT_NAME).as_deref(), Some(""));
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"removed\""));
}

fn with_burned_in(path: &Path) -> DefaultDicomObject {
    let mut obj = read_dicom_file(path).unwrap();
    obj.put(DataElement::new(
        tags::BURNED_IN_ANNOTATION,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    obj
}

/// BurnedInAnnotation = YES is refused by default, flagged when allowed.
#[test]
fn burned_in_annotation_refused() {
    let path = data_dir().join("US1_UNCR.dcm");
    let cfg = DeidConfig::new(KEY);
    assert!(cfg.refuse_burned_in);
    let err = deidentify_object(with_burned_in(&path), &cfg).unwrap_err();
    assert!(matches!(err, DeidError::BurnedInAnnotation { .. }), "{err}");

    // File mode: refused, nothing written.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("burned.dcm");
    with_burned_in(&path).write_to_file(&src).unwrap();
    let dst = tmp.path().join("out.dcm");
    let err = deidentify_file(&src, &dst, &cfg).unwrap_err();
    assert!(err.to_string().contains("burned.dcm"), "{err}");
    assert!(!dst.exists());

    let lenient = DeidConfig {
        refuse_burned_in: false,
        ..DeidConfig::new(KEY)
    };
    let (out, report) = deidentify_object(with_burned_in(&path), &lenient).unwrap();
    assert!(report.burned_in.is_some());
    assert!(!report.patient_identity_removed);
    assert_eq!(
        text(&out, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
        Some("NO")
    );
}

/// Garbage, truncated and missing inputs are errors, never panics, and write nothing.
#[test]
fn bad_input_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = DeidConfig::new(KEY);
    let out = tmp.path().join("out.dcm");

    let garbage = tmp.path().join("garbage.dcm");
    let bytes: Vec<u8> = (0u32..5000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, &bytes).unwrap();
    assert!(deidentify_file(&garbage, &out, &cfg).is_err());

    let mut fake = vec![0u8; 128];
    fake.extend_from_slice(b"DICM");
    fake.extend_from_slice(&bytes);
    std::fs::write(&garbage, &fake).unwrap();
    assert!(deidentify_file(&garbage, &out, &cfg).is_err());

    let real = std::fs::read(data_dir().join("CT_small.dcm")).unwrap();
    for cut in [132, 300, real.len() / 2] {
        std::fs::write(&garbage, &real[..cut]).unwrap();
        assert!(
            deidentify_file(&garbage, &out, &cfg).is_err(),
            "truncated at {cut} accepted"
        );
    }

    assert!(deidentify_file(&tmp.path().join("missing.dcm"), &out, &cfg).is_err());
    std::fs::write(&garbage, b"").unwrap();
    assert!(deidentify_file(&garbage, &out, &cfg).is_err());
    assert!(!out.exists());

    // Bad configs.
    let src = data_dir().join("CT_small.dcm");
    let short = DeidConfig::new(b"short".to_vec());
    assert!(matches!(
        deidentify_file(&src, &out, &short),
        Err(DeidError::InvalidConfig(_))
    ));
    for n in [0, -5, 1_000_000] {
        let c = DeidConfig {
            date_shift_days: Some(n),
            ..DeidConfig::new(KEY)
        };
        assert!(matches!(c.validate(), Err(DeidError::InvalidConfig(_))));
    }
    assert!(
        !format!("{cfg:?}").contains("test key"),
        "key leaked in Debug"
    );
}

/// Directory mode keeps relative paths and skips non-DICOM files.
#[test]
fn directory_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("series/a")).unwrap();
    let src = data_dir();
    std::fs::copy(src.join("MR_small.dcm"), input.join("series/a/1.dcm")).unwrap();
    std::fs::copy(src.join("MR_small_RLE.dcm"), input.join("series/2.dcm")).unwrap();
    std::fs::copy(src.join("image_dfl.dcm"), input.join("3.dcm")).unwrap();
    std::fs::write(input.join("notes.txt"), b"patient John Doe").unwrap();
    let output = tmp.path().join("out");
    let reports = deidentify_dir(&input, &output, &DeidConfig::new(KEY)).unwrap();
    assert_eq!(reports.len(), 3);
    for rel in ["series/a/1.dcm", "series/2.dcm", "3.dcm"] {
        let p = output.join(rel);
        assert!(p.is_file(), "{rel}");
        let obj = read_dicom_file(&p).unwrap();
        assert_eq!(
            text(&obj, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
            Some("YES")
        );
    }
    assert!(!output.join("notes.txt").exists());
    // No temp files left behind.
    let leftovers: Vec<_> = walk(&output)
        .into_iter()
        .filter(|p| name(p).ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(matches!(
        deidentify_dir(&input, &input, &DeidConfig::new(KEY)),
        Err(DeidError::InvalidPath(_))
    ));
    // Output inside input is allowed and not descended into.
    let inner = input.join("deid");
    assert_eq!(
        deidentify_dir(&input, &inner, &DeidConfig::new(KEY))
            .unwrap()
            .len(),
        3
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Attributes inside sequences are processed too (names, UIDs, private tags, dates).
#[test]
fn nested_sequences_are_processed() {
    let path = data_dir().join("MR_small.dcm");
    let mut obj = read_dicom_file(&path).unwrap();
    let item = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.826.0.1.3680043.2.1125.1"),
        ),
        DataElement::new(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.4"),
        ),
        DataElement::new(
            tags::PERFORMING_PHYSICIAN_NAME,
            VR::PN,
            PrimitiveValue::from("Doe^Jane"),
        ),
        DataElement::new(
            Tag(0x0029, 0x0010),
            VR::LO,
            PrimitiveValue::from("ACME PRIVATE"),
        ),
        DataElement::new(Tag(0x0029, 0x1001), VR::LO, PrimitiveValue::from("secret")),
    ]);
    obj.put(DataElement::new(
        tags::REFERENCED_IMAGE_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![item]),
    ));
    let cfg = DeidConfig::new(KEY);
    let (out, report) = deidentify_object(obj, &cfg).unwrap();
    let seq = out
        .get(tags::REFERENCED_IMAGE_SEQUENCE)
        .expect("X/Z/U* keeps it");
    let item = &seq.items().unwrap()[0];
    assert_eq!(
        text(item, tags::REFERENCED_SOP_INSTANCE_UID).unwrap(),
        cfg.remap_uid("1.2.826.0.1.3680043.2.1125.1").unwrap()
    );
    assert_eq!(
        text(item, tags::REFERENCED_SOP_CLASS_UID).as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.4"),
        "SOP Class UIDs are not remapped"
    );
    assert!(item.get(tags::PERFORMING_PHYSICIAN_NAME).is_none());
    assert!(item.get(Tag(0x0029, 0x1001)).is_none());
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.starts_with("(0008,1140)[0]>(0008,1050) PerformingPhysicianName"))
    );
    assert!(report.private_removed >= 2);

    // retain_private keeps them (and says identity is not fully removed).
    let mut obj = read_dicom_file(&path).unwrap();
    obj.put(DataElement::new(
        Tag(0x0029, 0x0010),
        VR::LO,
        PrimitiveValue::from("ACME PRIVATE"),
    ));
    let keep = DeidConfig {
        retain_private: true,
        ..DeidConfig::new(KEY)
    };
    let (out, report) = deidentify_object(obj, &keep).unwrap();
    assert!(out.get(Tag(0x0029, 0x0010)).is_some());
    assert!(!report.patient_identity_removed);
}

#[test]
fn table_is_complete() {
    let t = profile_table();
    assert_eq!(t.len(), medai_deid::PROFILE_LEN);
    assert_eq!(t.len(), 621);
    let mut seen = BTreeSet::new();
    for e in t {
        assert!(
            seen.insert((e.tag, e.mask)),
            "duplicate row {}",
            e.tag_string()
        );
        assert_ne!(e.action, medai_deid::Action::K);
    }
    let find = |kw: &str| t.iter().find(|e| e.keyword == kw).unwrap().action.code();
    assert_eq!(find("PatientName"), "Z");
    assert_eq!(find("StudyInstanceUID"), "U");
    assert_eq!(find("InstitutionName"), "X/Z/D");
    assert_eq!(find("ReferencedImageSequence"), "X/Z/U*");
    assert_eq!(find("AccessionNumber"), "Z");
    assert_eq!(find("DeviceSerialNumber"), "X/Z/D");
    assert_eq!(find("PrivateAttributes"), "X");
}
