//! The one time format a spec holds: an RFC 3339 instant in UTC, `2026-12-08T00:00:00Z`
//! (fractional seconds refused: key ends are whole seconds). No calendar crate for one format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `s` as an instant, if it is `YYYY-MM-DDTHH:MM:SSZ` (or with a lower-case `t`/`z`, as RFC 3339
/// allows), a real date and time at or after 1970.
pub(crate) fn parse_rfc3339_utc(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
        || !matches!(b[19], b'Z' | b'z')
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        let digits = &s[from..to];
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days as u64 * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<u64> {
        parse_rfc3339_utc(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn instants_in_utc() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(secs("2026-12-08T00:00:00Z"), Some(1_796_688_000));
        assert_eq!(secs("2000-02-29T12:30:15z"), Some(951_827_415));
        assert_eq!(secs("2024-12-31T23:59:59Z"), Some(1_735_689_599));
        for bad in [
            "2026-12-08",
            "2026-12-08T00:00:00",
            "2026-12-08T00:00:00+01:00",
            "2026-12-08T00:00:00.5Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-08T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "+026-12-08T00:00:00Z",
            "2026-12-0aT00:00:00Z",
        ] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }
}
