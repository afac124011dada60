//! The attribute-level de-identification pass over an in-memory data set.

use std::collections::HashMap;
use std::sync::OnceLock;

use dicom_core::header::{Header, Length};
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;

use crate::keyed::Keyed;
use crate::profile::{Effective, PROFILE, ProfileEntry};
use crate::{DeidReport, dates};

/// The dummy text used for action `D` (fits every textual VR's length limit).
pub(crate) const DUMMY_TEXT: &str = "ANONYMIZED";

const PATIENT_ID: (u16, u16) = (0x0010, 0x0020);

fn exact_index() -> &'static HashMap<(u16, u16), &'static ProfileEntry> {
    static INDEX: OnceLock<HashMap<(u16, u16), &'static ProfileEntry>> = OnceLock::new();
    INDEX.get_or_init(|| {
        PROFILE
            .iter()
            .filter(|e| e.mask == (0xFFFF, 0xFFFF))
            .map(|e| (e.tag, e))
            .collect()
    })
}

/// The Table E.1-1 row for a tag: exact rows first, then the repeating-group rows, then (odd
/// groups) the private-attributes row.
pub(crate) fn lookup(group: u16, element: u16) -> Option<&'static ProfileEntry> {
    exact_index().get(&(group, element)).copied().or_else(|| {
        PROFILE
            .iter()
            .find(|e| e.mask != (0xFFFF, 0xFFFF) && e.matches(group, element))
    })
}

/// Trim DICOM padding (spaces and NULs) from one value.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || c == '\0')
}

/// The individual textual values of a primitive value, trimmed.
pub(crate) fn text_values(v: &PrimitiveValue) -> Vec<String> {
    match v {
        PrimitiveValue::Empty => Vec::new(),
        PrimitiveValue::Str(s) => s.split('\\').map(|x| trim(x).to_string()).collect(),
        PrimitiveValue::Strs(ss) => ss
            .iter()
            .flat_map(|s| s.split('\\'))
            .map(|x| trim(x).to_string())
            .collect(),
        PrimitiveValue::U8(bytes) => String::from_utf8_lossy(bytes)
            .split('\\')
            .map(|x| trim(x).to_string())
            .collect(),
        other => other
            .to_multi_str()
            .iter()
            .map(|x| trim(x).to_string())
            .collect(),
    }
}

/// Whether an element carries no information (zero length / no items / only padding).
pub(crate) fn is_empty_value(
    v: &Value<InMemDicomObject, dicom_object::mem::InMemFragment>,
) -> bool {
    match v {
        Value::Primitive(p) => match p {
            PrimitiveValue::Empty => true,
            PrimitiveValue::Str(_) | PrimitiveValue::Strs(_) => {
                text_values(p).iter().all(|s| s.is_empty())
            }
            other => other.calculate_byte_len() == 0,
        },
        Value::Sequence(s) => s.items().is_empty(),
        Value::PixelSequence(_) => false,
    }
}

fn is_textual(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::UC
            | VR::UT
            | VR::UR
            | VR::DA
            | VR::DT
            | VR::TM
            | VR::DS
            | VR::IS
    )
}

/// A non-zero-length dummy value consistent with the VR (action `D`).
fn dummy_value(vr: VR) -> PrimitiveValue {
    match vr {
        VR::AE | VR::CS | VR::LO | VR::LT | VR::PN | VR::SH | VR::ST | VR::UC | VR::UT | VR::UR => {
            PrimitiveValue::from(DUMMY_TEXT)
        }
        VR::AS => PrimitiveValue::from("000D"),
        VR::DA => PrimitiveValue::from("19000101"),
        VR::DT => PrimitiveValue::from("19000101000000"),
        VR::TM => PrimitiveValue::from("000000"),
        VR::DS | VR::IS => PrimitiveValue::from("0"),
        VR::US | VR::OW => PrimitiveValue::from(0u16),
        VR::SS => PrimitiveValue::from(0i16),
        VR::UL | VR::OL => PrimitiveValue::from(0u32),
        VR::SL => PrimitiveValue::from(0i32),
        VR::UV | VR::OV => PrimitiveValue::from(0u64),
        VR::SV => PrimitiveValue::from(0i64),
        VR::FL | VR::OF => PrimitiveValue::from(0f32),
        VR::FD | VR::OD => PrimitiveValue::from(0f64),
        VR::AT => PrimitiveValue::from(Tag(0, 0)),
        VR::UN => PrimitiveValue::from(DUMMY_TEXT.as_bytes()),
        VR::OB | VR::UI | VR::SQ => PrimitiveValue::from(vec![0u8, 0u8]),
    }
}

fn strs(values: Vec<String>) -> PrimitiveValue {
    PrimitiveValue::Strs(values.into())
}

fn tag_label(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

/// State of one pass over one object.
pub(crate) struct Engine<'a> {
    pub(crate) keyed: &'a Keyed,
    pub(crate) retain_private: bool,
    /// The day offset of this object's patient, when date shifting is on.
    pub(crate) shift: Option<i64>,
    pub(crate) report: DeidReport,
}

impl Engine<'_> {
    /// Process every element of a data set (recursively into sequences).
    ///
    /// `deep` is set inside a sequence whose own action is `D`: there, textual values that no
    /// table row covers are replaced by dummies too.
    pub(crate) fn process_dataset(
        &mut self,
        obj: InMemDicomObject,
        path: &str,
        deep: bool,
    ) -> InMemDicomObject {
        let mut out: Vec<InMemElement> = Vec::new();
        for elem in obj {
            let tag = elem.tag();
            let (g, e) = (tag.group(), tag.element());
            if e == 0x0000 {
                // Group length (retired outside group 0002): would be stale after editing.
                continue;
            }
            if g % 2 == 1 {
                if !self.retain_private {
                    self.report.private_removed += 1;
                    continue;
                }
                // Retained private data still gets nested cleaning and date shifting.
                let here = format!("{path}{}", tag_label(tag));
                out.push(self.unlisted(elem, &here, deep));
                continue;
            }
            let here = format!("{path}{}", tag_label(tag));
            match lookup(g, e) {
                Some(entry) => {
                    if let Some(new) = self.apply(entry, elem, &here, deep) {
                        out.push(new);
                    }
                }
                None => out.push(self.unlisted(elem, &here, deep)),
            }
        }
        InMemDicomObject::from_element_iter(out)
    }

    /// Keep an element; a sequence's items are processed recursively.
    fn keep_recurse(&mut self, elem: InMemElement, here: &str, deep: bool) -> InMemElement {
        let tag = elem.tag();
        let vr = elem.vr();
        match elem.into_value() {
            Value::Sequence(seq) => {
                let items: Vec<InMemDicomObject> = seq
                    .into_items()
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.process_dataset(item, &format!("{here}[{i}]>"), deep))
                    .collect();
                DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
            }
            value => DataElement::new(tag, vr, value),
        }
    }

    /// An element that Table E.1-1 does not list.
    fn unlisted(&mut self, elem: InMemElement, here: &str, deep: bool) -> InMemElement {
        let vr = elem.vr();
        if matches!(elem.value(), Value::Sequence(_)) {
            return self.keep_recurse(elem, here, deep);
        }
        if self.shift.is_some() && matches!(vr, VR::DA | VR::DT) {
            // Shift every date, listed or not, so that no unshifted date can reveal the offset.
            return self.shift_dates(elem, here, "(unlisted date)");
        }
        if deep && is_textual(vr) && !is_empty_value(elem.value()) {
            if vr == VR::TM && self.shift.is_some() {
                return elem;
            }
            return DataElement::new(elem.tag(), vr, dummy_value(vr));
        }
        elem
    }

    /// Apply a Table E.1-1 row. `None` removes the element.
    fn apply(
        &mut self,
        entry: &'static ProfileEntry,
        elem: InMemElement,
        here: &str,
        deep: bool,
    ) -> Option<InMemElement> {
        let tag = elem.tag();
        let vr = elem.vr();
        let label = format!("{here} {}", entry.keyword);
        let is_seq = matches!(elem.value(), Value::Sequence(_));

        if self.shift.is_some() && entry.modified_dates_option && !is_seq {
            match vr {
                VR::DA | VR::DT => return Some(self.shift_dates(elem, here, entry.keyword)),
                // Whole-day shifts leave times of day unchanged.
                VR::TM => return Some(elem),
                _ => {}
            }
        }

        let empty = is_empty_value(elem.value());
        match entry.action.effective() {
            Effective::Remove => {
                self.report.removed.push(label);
                None
            }
            Effective::Empty => {
                if !empty {
                    self.report.emptied.push(label);
                }
                Some(if is_seq {
                    DataElement::new(tag, VR::SQ, DataSetSequence::<InMemDicomObject>::empty())
                } else {
                    DataElement::new(tag, vr, PrimitiveValue::Empty)
                })
            }
            Effective::Dummy => {
                if is_seq {
                    if !empty {
                        self.report.replaced.push(label);
                    }
                    return Some(self.keep_recurse(elem, here, true));
                }
                if empty {
                    return Some(elem);
                }
                if vr == VR::UI {
                    return Some(self.remap_uids(elem));
                }
                self.report.replaced.push(label);
                if (tag.group(), tag.element()) == PATIENT_ID {
                    let original = match elem.value() {
                        Value::Primitive(p) => text_values(p).join("\\"),
                        _ => String::new(),
                    };
                    return Some(DataElement::new(
                        tag,
                        VR::LO,
                        PrimitiveValue::from(self.keyed.pseudonym(&original)),
                    ));
                }
                Some(DataElement::new(tag, vr, dummy_value(vr)))
            }
            Effective::RemapUid => {
                if is_seq {
                    // Not expected for a U row; keep the structure, clean inside.
                    return Some(self.keep_recurse(elem, here, deep));
                }
                Some(self.remap_uids(elem))
            }
            Effective::KeepRecurse => Some(self.keep_recurse(elem, here, deep)),
        }
    }

    /// Replace every UID of the element by its keyed remapping (the VR becomes UI).
    fn remap_uids(&mut self, elem: InMemElement) -> InMemElement {
        let tag = elem.tag();
        let values = match elem.value() {
            Value::Primitive(p) => text_values(p),
            _ => Vec::new(),
        };
        if values.iter().all(|v| v.is_empty()) {
            return DataElement::new(tag, VR::UI, PrimitiveValue::Empty);
        }
        let mapped: Vec<String> = values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    String::new()
                } else {
                    self.report.uids_remapped += 1;
                    self.keyed.remap_uid(v)
                }
            })
            .collect();
        DataElement::new(tag, VR::UI, strs(mapped))
    }

    /// Shift a DA/DT element by the patient's offset; unparsable values empty it.
    fn shift_dates(&mut self, elem: InMemElement, here: &str, keyword: &str) -> InMemElement {
        let (tag, vr) = (elem.tag(), elem.vr());
        let Some(days) = self.shift else {
            return elem;
        };
        let values = match elem.value() {
            Value::Primitive(p) => text_values(p),
            _ => return elem,
        };
        if values.iter().all(|v| v.is_empty()) {
            return elem;
        }
        let mut shifted = Vec::with_capacity(values.len());
        for v in &values {
            let s = if vr == VR::DA {
                dates::shift_da(v, days)
            } else {
                dates::shift_dt(v, days)
            };
            match s {
                Some(s) => shifted.push(s),
                None => {
                    self.report
                        .emptied
                        .push(format!("{here} {keyword} (date not shiftable)"));
                    return DataElement::new(tag, vr, PrimitiveValue::Empty);
                }
            }
        }
        self.report.dates_shifted += shifted.len();
        DataElement::new(tag, vr, strs(shifted))
    }
}

/// One Table E.1-1 attribute found in a data set (see [`crate::find_profile_attributes`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfileHit {
    /// Location: `(gggg,eeee)`, nested as `(gggg,eeee)[item]>(gggg,eeee)`.
    pub path: String,
    /// The element's own tag `(gggg,eeee)`.
    pub tag: String,
    /// The table row's keyword.
    pub keyword: &'static str,
    /// The Basic-profile action code (`"X/Z/D"`, ...).
    pub action: &'static str,
    /// Whether the element has a non-empty value.
    pub has_value: bool,
}

pub(crate) fn collect_hits(obj: &InMemDicomObject, path: &str, out: &mut Vec<ProfileHit>) {
    for elem in obj {
        let tag = elem.tag();
        let (g, e) = (tag.group(), tag.element());
        let here = format!("{path}{}", tag_label(tag));
        if e != 0x0000
            && let Some(entry) = lookup(g, e)
        {
            out.push(ProfileHit {
                path: here.clone(),
                tag: tag_label(tag),
                keyword: entry.keyword,
                action: entry.action.code(),
                has_value: !is_empty_value(elem.value()),
            });
        }
        if let Value::Sequence(seq) = elem.value() {
            for (i, item) in seq.items().iter().enumerate() {
                collect_hits(item, &format!("{here}[{i}]>"), out);
            }
        }
    }
}
