//! Calendar arithmetic for shifting DA values and the date part of DT values.

/// Days since 1970-01-01 of a proleptic Gregorian date (no validation).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Parse exactly 8 ASCII digits `YYYYMMDD` into a valid calendar date.
fn parse_ymd(s: &str) -> Option<(i64, i64, i64)> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: i64 = s[4..6].parse().ok()?;
    let d: i64 = s[6..8].parse().ok()?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some((y, m, d))
}

fn shift_ymd(s: &str, days: i64) -> Option<String> {
    let (y, m, d) = parse_ymd(s)?;
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d).checked_add(days)?);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!("{y:04}{m:02}{d:02}"))
}

/// Shift one DA value (`YYYYMMDD`, or the legacy ACR-NEMA `YYYY.MM.DD`, written back as
/// `YYYYMMDD`) by `days`. `None` when the value is not a valid date.
pub(crate) fn shift_da(value: &str, days: i64) -> Option<String> {
    let v = value.trim_matches(|c: char| c == ' ' || c == '\0');
    if v.len() == 10 && v.as_bytes()[4] == b'.' && v.as_bytes()[7] == b'.' {
        let compact = format!("{}{}{}", &v[0..4], &v[5..7], &v[8..10]);
        return shift_ymd(&compact, days);
    }
    shift_ymd(v, days)
}

/// Shift the date part of one DT value (`YYYYMMDD[HH[MM[SS[.F]]]][&ZZXX]`) by `days`,
/// keeping the time and UTC-offset parts as they are. Values with less than a full date
/// (`YYYY`, `YYYYMM`) cannot be shifted by days: `None`.
pub(crate) fn shift_dt(value: &str, days: i64) -> Option<String> {
    let v = value.trim_matches(|c: char| c == ' ' || c == '\0');
    if v.len() < 8 || !v.is_char_boundary(8) {
        return None;
    }
    let (date, rest) = v.split_at(8);
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.&".contains(&b))
    {
        return None;
    }
    Some(format!("{}{rest}", shift_ymd(date, days)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_days() {
        for z in [-800_000i64, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn shifts() {
        assert_eq!(shift_da("20240228", 1).as_deref(), Some("20240229"));
        assert_eq!(shift_da("20240229", 1).as_deref(), Some("20240301"));
        assert_eq!(shift_da("20230101", -1).as_deref(), Some("20221231"));
        assert_eq!(shift_da("1999.12.31", 1).as_deref(), Some("20000101"));
        assert_eq!(shift_da("20230230", 1), None);
        assert_eq!(shift_da("2023", 1), None);
        assert_eq!(shift_da("garbage!", 1), None);
        assert_eq!(
            shift_dt("20231231235959.123456+0100", 2).as_deref(),
            Some("20240102235959.123456+0100")
        );
        assert_eq!(shift_dt("20230115", -20).as_deref(), Some("20221226"));
        assert_eq!(shift_dt("2023", 1), None);
        assert_eq!(shift_dt("2023éé", 1), None);
    }
}
