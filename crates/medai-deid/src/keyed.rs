//! Keyed hashing (HMAC-SHA256): UID remapping, pseudonyms and date offsets.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::DeidError;

type HmacSha256 = Hmac<Sha256>;

/// Domain prefixes for the non-UID uses of the key. UIDs consist of digits and dots only, so
/// these messages can never collide with a UID's.
const DATE_SHIFT_DOMAIN: &[u8] = b"medai-deid:date-shift:";
const PATIENT_ID_DOMAIN: &[u8] = b"medai-deid:patient-id:";

/// A prepared HMAC-SHA256 instance for one secret key.
#[derive(Clone)]
pub(crate) struct Keyed {
    mac: HmacSha256,
}

impl Keyed {
    pub(crate) fn new(key: &[u8]) -> Result<Self, DeidError> {
        let mac = HmacSha256::new_from_slice(key)
            .map_err(|e| DeidError::InvalidConfig(format!("HMAC key rejected: {e}")))?;
        Ok(Self { mac })
    }

    fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// `2.25.<decimal>` where the 128-bit integer is the first 16 bytes of
    /// HMAC-SHA256(key, uid), with the RFC 9562 version (8, "custom") and variant bits set so
    /// that the number is a valid UUID as the `2.25` arc requires (ISO/IEC 9834-8).
    pub(crate) fn remap_uid(&self, uid: &str) -> String {
        let d = self.digest(&[uid.as_bytes()]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b[6] = (b[6] & 0x0F) | 0x80;
        b[8] = (b[8] & 0x3F) | 0x80;
        format!("2.25.{}", u128::from_be_bytes(b))
    }

    /// A stable pseudonym for a Patient ID: `ANON-` + 16 upper-case hex digits.
    pub(crate) fn pseudonym(&self, patient_id: &str) -> String {
        let d = self.digest(&[PATIENT_ID_DOMAIN, patient_id.as_bytes()]);
        let mut s = String::from("ANON-");
        for byte in &d[..8] {
            s.push_str(&format!("{byte:02X}"));
        }
        s
    }

    /// A day offset in `[-max, -1] ∪ [1, max]` derived from the patient key (never 0, so
    /// dates always move). `max` must be ≥ 1.
    pub(crate) fn date_offset(&self, patient_key: &str, max: i64) -> i64 {
        let d = self.digest(&[DATE_SHIFT_DOMAIN, patient_key.as_bytes()]);
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        let r = u64::from_be_bytes(b);
        let max = max.max(1) as u64;
        let v = r % (2 * max);
        if v < max {
            -((v + 1) as i64)
        } else {
            (v - max + 1) as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_valid_and_deterministic() {
        let k = Keyed::new(b"0123456789abcdef").unwrap();
        let a = k.remap_uid("1.2.3.4");
        assert_eq!(a, k.remap_uid("1.2.3.4"));
        assert_ne!(a, k.remap_uid("1.2.3.5"));
        assert!(a.starts_with("2.25."));
        assert!(a.len() <= 64);
        let digits = &a[5..];
        assert!(digits.bytes().all(|c| c.is_ascii_digit()));
        assert!(!digits.starts_with('0'));
        let n: u128 = digits.parse().unwrap();
        assert_eq!((n >> 76) & 0xF, 8, "UUID version 8");
        assert_eq!((n >> 62) & 0x3, 2, "RFC variant");
        let other = Keyed::new(b"another key, 16+").unwrap();
        assert_ne!(a, other.remap_uid("1.2.3.4"));
    }

    #[test]
    fn date_offset_in_range_and_nonzero() {
        let k = Keyed::new(b"0123456789abcdef").unwrap();
        for i in 0..500 {
            let o = k.date_offset(&format!("patient{i}"), 30);
            assert!((-30..=30).contains(&o) && o != 0, "{o}");
        }
        assert_eq!(k.date_offset("x", 1).abs(), 1);
        assert_eq!(k.date_offset("p", 365), k.date_offset("p", 365));
    }
}
