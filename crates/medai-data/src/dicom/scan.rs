//! A cheap structural pre-scan of a DICOM Part 10 byte stream.
//!
//! `dicom-parser` sizes each value's buffer from the length written in the element header
//! (`try_reserve_exact` + zero fill) before it reads the value, so a garbage or truncated file
//! whose header claims a 4 GiB value makes it allocate and touch 4 GiB before failing, and a
//! crafted file with thousands of nested sequences makes the recursive object builder overflow
//! the stack. Walking the element headers first — no value is copied — rejects both with a
//! message that says where the file is broken: every declared length must fit in the bytes
//! that remain, and sequences may nest at most [`MAX_DEPTH`] deep.

use std::io::Read;

/// Deepest sequence nesting accepted (real files rarely go past 5).
pub(crate) const MAX_DEPTH: usize = 32;

/// Largest inflated data set accepted for the Deflated Explicit VR Little Endian syntax.
const MAX_INFLATED: u64 = 1 << 31;

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQ_END: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);

/// Transfer syntax UIDs with a non-default data set encoding.
pub(crate) const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub(crate) const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
pub(crate) const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Enc {
    ExplicitLe,
    ExplicitBe,
    ImplicitLe,
}

#[derive(Clone, Copy)]
struct Walker<'a> {
    buf: &'a [u8],
    enc: Enc,
    /// Added to offsets in messages (where `buf` starts in the file).
    base: usize,
    /// What `buf` is, for messages ("file" or "inflated data set").
    what: &'static str,
}

/// Check the structure of `data` (which starts at the `DICM` magic, byte `file_base` of the
/// file) and return the transfer syntax UID from the file meta group.
pub(crate) fn prescan(data: &[u8], file_base: usize) -> Result<String, String> {
    if data.len() < 4 || &data[..4] != b"DICM" {
        return Err("no 'DICM' magic".to_string());
    }
    let meta = Walker {
        buf: data,
        enc: Enc::ExplicitLe,
        base: file_base,
        what: "file",
    };
    // Like dicom-object: the meta group starts with its Group Length (0002,0000), and elements
    // are read (explicit VR little endian) until that many bytes have been consumed.
    if data.len() < 4 + 12 {
        return Err(meta.truncated(4));
    }
    let h = meta.header(4)?;
    if (h.group, h.elem) != (0x0002, 0x0000) || h.len != 4 {
        return Err(
            "the file meta group does not start with its Group Length (0002,0000)".to_string(),
        );
    }
    let group_length = meta.u32_at(h.value_start) as usize;
    let mut pos = h.value_start + 4;
    let meta_end = pos.saturating_add(group_length);
    let mut ts: Option<String> = None;
    while pos < meta_end {
        if pos + 8 > data.len() {
            return Err(meta.truncated(pos));
        }
        let h = meta.header(pos)?;
        if h.value_start > data.len() {
            return Err(meta.truncated(pos));
        }
        let len = h.len as usize;
        if h.len == UNDEFINED {
            return Err(format!(
                "file meta element ({:04X},{:04X}) at byte {} has an undefined length",
                h.group,
                h.elem,
                file_base + pos
            ));
        }
        meta.check_fits(&h, pos, data.len())?;
        if (h.group, h.elem) == (0x0002, 0x0010) {
            let raw = &data[h.value_start..h.value_start + len];
            let uid: String = String::from_utf8_lossy(raw)
                .trim_end_matches(['\0', ' '])
                .trim()
                .to_string();
            ts = Some(uid);
        }
        pos = h.value_start + len;
    }
    let Some(ts) = ts else {
        return Err(
            "the file meta group has no Transfer Syntax UID (0002,0010); the file is truncated or not DICOM Part 10"
                .to_string(),
        );
    };
    let rest = &data[pos..];
    let base = file_base + pos;
    match ts.as_str() {
        IMPLICIT_VR_LE => Walker {
            buf: rest,
            enc: Enc::ImplicitLe,
            base,
            what: "file",
        }
        .walk_top()?,
        EXPLICIT_VR_BE => Walker {
            buf: rest,
            enc: Enc::ExplicitBe,
            base,
            what: "file",
        }
        .walk_top()?,
        DEFLATED_EXPLICIT_VR_LE => {
            let mut inflated = Vec::new();
            flate2::read::DeflateDecoder::new(rest)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| format!("the deflated data set does not inflate: {e}"))?;
            if inflated.len() as u64 > MAX_INFLATED {
                return Err(format!(
                    "the deflated data set inflates to more than {MAX_INFLATED} bytes"
                ));
            }
            Walker {
                buf: &inflated,
                enc: Enc::ExplicitLe,
                base: 0,
                what: "inflated data set",
            }
            .walk_top()?
        }
        _ => Walker {
            buf: rest,
            enc: Enc::ExplicitLe,
            base,
            what: "file",
        }
        .walk_top()?,
    }
    Ok(ts)
}

struct Header {
    group: u16,
    elem: u16,
    vr: Option<[u8; 2]>,
    len: u32,
    value_start: usize,
}

impl Walker<'_> {
    fn u16_at(&self, pos: usize) -> u16 {
        let b = [self.buf[pos], self.buf[pos + 1]];
        if self.enc == Enc::ExplicitBe {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, pos: usize) -> u32 {
        let b = [
            self.buf[pos],
            self.buf[pos + 1],
            self.buf[pos + 2],
            self.buf[pos + 3],
        ];
        if self.enc == Enc::ExplicitBe {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Read the element header at `pos`; the caller made sure 8 bytes are there.
    fn header(&self, pos: usize) -> Result<Header, String> {
        let group = self.u16_at(pos);
        let elem = self.u16_at(pos + 2);
        // Items and delimiters never carry a VR.
        if group == 0xFFFE || self.enc == Enc::ImplicitLe {
            return Ok(Header {
                group,
                elem,
                vr: None,
                len: self.u32_at(pos + 4),
                value_start: pos + 8,
            });
        }
        let vr = [self.buf[pos + 4], self.buf[pos + 5]];
        // PS3.5 7.1.2: these VRs have a 16-bit length; all others (and, as dicom-parser reads
        // them, unknown VRs, taken as UN) have 2 reserved bytes and a 32-bit length.
        let short = matches!(
            &vr,
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FL"
                | b"FD"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        );
        if !short {
            if pos + 12 > self.buf.len() {
                return Err(self.truncated(pos));
            }
            Ok(Header {
                group,
                elem,
                vr: Some(vr),
                len: self.u32_at(pos + 8),
                value_start: pos + 12,
            })
        } else {
            Ok(Header {
                group,
                elem,
                vr: Some(vr),
                len: u32::from(self.u16_at(pos + 6)),
                value_start: pos + 8,
            })
        }
    }

    fn truncated(&self, pos: usize) -> String {
        format!(
            "the {} ends inside an element header at byte {} (truncated?)",
            self.what,
            self.base + pos
        )
    }

    fn check_fits(&self, h: &Header, pos: usize, end: usize) -> Result<(), String> {
        let remaining = end.saturating_sub(h.value_start);
        if h.len as usize > remaining {
            return Err(format!(
                "element ({:04X},{:04X}) at byte {} of the {} declares {} value bytes but only {} remain (truncated or corrupt)",
                h.group,
                h.elem,
                self.base + pos,
                self.what,
                h.len,
                remaining
            ));
        }
        Ok(())
    }

    fn walk_top(&self) -> Result<(), String> {
        let end = self.buf.len();
        let mut pos = 0;
        while pos < end {
            pos = self.walk_dataset(pos, end, 0)?;
            if pos < end {
                // A stray item or sequence delimiter at the top level: step over it.
                pos += 8;
            }
        }
        Ok(())
    }

    /// Walk data elements from `pos` until `end` or an item/sequence delimiter (whose
    /// position is returned, unconsumed).
    fn walk_dataset(&self, mut pos: usize, end: usize, depth: usize) -> Result<usize, String> {
        while pos < end {
            if end - pos < 8 {
                return Err(self.truncated(pos));
            }
            let h = self.header(pos)?;
            if (h.group, h.elem) == ITEM_END || (h.group, h.elem) == SEQ_END {
                return Ok(pos);
            }
            if h.value_start > end {
                return Err(self.truncated(pos));
            }
            if h.len == UNDEFINED {
                let is_seq = match h.vr {
                    None => true,
                    Some(vr) => &vr == b"SQ",
                };
                // dicom-parser reads an unknown VR as UN.
                let is_un = h.vr.is_some_and(|vr| &vr == b"UN" || !is_known_vr(vr));
                if (h.group, h.elem) == PIXEL_DATA {
                    pos = self.walk_fragments(h.value_start, end)?;
                } else if is_un {
                    // An undefined-length UN holds an implicit VR little endian sequence.
                    let implicit = Walker {
                        enc: Enc::ImplicitLe,
                        ..*self
                    };
                    pos = implicit.walk_sequence(h.value_start, end, depth + 1, None)?;
                } else if is_seq {
                    pos = self.walk_sequence(h.value_start, end, depth + 1, None)?;
                } else {
                    return Err(format!(
                        "element ({:04X},{:04X}) at byte {} of the {} has an undefined length, which its VR does not allow",
                        h.group,
                        h.elem,
                        self.base + pos,
                        self.what
                    ));
                }
            } else {
                self.check_fits(&h, pos, end)?;
                // dicom-parser reads len / size binary numbers and would lose its place after
                // a length that is not a multiple of the size.
                let vr = h.vr.or_else(|| dictionary_vr(h.group, h.elem));
                if let Some(size) = vr.and_then(binary_size)
                    && !(h.len as usize).is_multiple_of(size)
                {
                    return Err(format!(
                        "element ({:04X},{:04X}) at byte {} of the {} has length {}, not a multiple of {size} as its VR {} needs (corrupt)",
                        h.group,
                        h.elem,
                        self.base + pos,
                        self.what,
                        h.len,
                        String::from_utf8_lossy(&vr.unwrap_or_default())
                    ));
                }
                let value_end = h.value_start + h.len as usize;
                let is_sq = match h.vr {
                    Some(vr) => &vr == b"SQ",
                    // Implicit VR: the parser takes the VR from the dictionary.
                    None => dictionary_says_sq(h.group, h.elem),
                };
                if is_sq {
                    self.walk_sequence(h.value_start, value_end, depth + 1, Some(value_end))?;
                }
                pos = value_end;
            }
        }
        Ok(pos)
    }

    /// Walk sequence items from `pos`; with `defined_end` the sequence ends there, otherwise
    /// at a sequence delimiter. Returns the position after the sequence.
    fn walk_sequence(
        &self,
        mut pos: usize,
        end: usize,
        depth: usize,
        defined_end: Option<usize>,
    ) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "sequences nest deeper than {MAX_DEPTH} levels at byte {} of the {}",
                self.base + pos,
                self.what
            ));
        }
        loop {
            if defined_end == Some(pos) {
                return Ok(pos);
            }
            if pos >= end || end - pos < 8 {
                return Err(format!(
                    "the {} ends inside a sequence at byte {} (truncated?)",
                    self.what,
                    self.base + pos
                ));
            }
            let h = self.header_no_vr(pos);
            match (h.group, h.elem) {
                SEQ_END => return Ok(pos + 8),
                ITEM => {
                    if h.len == UNDEFINED {
                        let at = self.walk_dataset(pos + 8, end, depth)?;
                        if at + 8 > end || (self.u16_at(at), self.u16_at(at + 2)) != ITEM_END {
                            return Err(format!(
                                "sequence item at byte {} of the {} has no item delimiter",
                                self.base + pos,
                                self.what
                            ));
                        }
                        pos = at + 8;
                    } else {
                        self.check_fits(&h, pos, end)?;
                        let item_end = h.value_start + h.len as usize;
                        // A stray delimiter inside a defined-length item ends the walk of
                        // that item early; the item's length still says where the next is.
                        self.walk_dataset(h.value_start, item_end, depth)?;
                        pos = item_end;
                    }
                }
                (g, e) => {
                    return Err(format!(
                        "expected a sequence item (FFFE,E000) at byte {} of the {}, found ({g:04X},{e:04X})",
                        self.base + pos,
                        self.what
                    ));
                }
            }
        }
    }

    /// An item or delimiter header: tag and 4-byte length, no VR.
    fn header_no_vr(&self, pos: usize) -> Header {
        Header {
            group: self.u16_at(pos),
            elem: self.u16_at(pos + 2),
            vr: None,
            len: self.u32_at(pos + 4),
            value_start: pos + 8,
        }
    }

    /// Walk the items of encapsulated pixel data (offset table + fragments).
    fn walk_fragments(&self, mut pos: usize, end: usize) -> Result<usize, String> {
        loop {
            if pos >= end || end - pos < 8 {
                return Err(format!(
                    "the {} ends inside the encapsulated Pixel Data at byte {} (truncated?)",
                    self.what,
                    self.base + pos
                ));
            }
            let h = self.header_no_vr(pos);
            match (h.group, h.elem) {
                SEQ_END => return Ok(pos + 8),
                ITEM if h.len != UNDEFINED => {
                    self.check_fits(&h, pos, end)?;
                    pos = h.value_start + h.len as usize;
                }
                (g, e) => {
                    return Err(format!(
                        "expected a pixel data fragment (FFFE,E000) of defined length at byte {} of the {}, found ({g:04X},{e:04X})",
                        self.base + pos,
                        self.what
                    ));
                }
            }
        }
    }
}

/// Whether `vr` is one of the value representations of PS3.5 6.2.
fn is_known_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SQ"
            | b"SS"
            | b"ST"
            | b"SV"
            | b"TM"
            | b"UC"
            | b"UI"
            | b"UL"
            | b"UN"
            | b"UR"
            | b"US"
            | b"UT"
            | b"UV"
    )
}

/// Whether the standard dictionary gives the tag the SQ VR.
fn dictionary_says_sq(group: u16, elem: u16) -> bool {
    dictionary_vr(group, elem) == Some(*b"SQ")
}

/// The tag's VR in the standard dictionary, when it is fixed.
fn dictionary_vr(group: u16, elem: u16) -> Option<[u8; 2]> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    let entry =
        dicom_dictionary_std::StandardDataDictionary.by_tag(dicom_core::Tag(group, elem))?;
    match entry.vr() {
        VirtualVr::Exact(vr) => <[u8; 2]>::try_from(vr.to_string().as_bytes()).ok(),
        _ => None,
    }
}

/// Size of one value of a binary numeric VR.
fn binary_size(vr: [u8; 2]) -> Option<usize> {
    match &vr {
        b"OW" | b"SS" | b"US" => Some(2),
        b"AT" | b"FL" | b"OF" | b"OL" | b"SL" | b"UL" => Some(4),
        b"FD" | b"OD" | b"OV" | b"SV" | b"UV" => Some(8),
        _ => None,
    }
}
