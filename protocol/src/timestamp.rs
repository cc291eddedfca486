//! Message time stamps: microseconds since the Unix epoch, shown on the wire as
//! fixed-width RFC 3339 UTC (`2026-11-24T11:16:27.123456Z`), so that sorting
//! the strings and sorting the numbers agree.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with microsecond resolution, from 1970 to the year 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// 9999-12-31T23:59:59.999999Z: the last instant with a four-digit year.
const MAX_MICROS: i64 = 253_402_300_799_999_999;
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`
const WIRE_LEN: usize = 27;

impl Timestamp {
    /// The time stamp `micros` microseconds after the epoch, clamped to the
    /// range that has a fixed-width form.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros.clamp(0, MAX_MICROS))
    }

    /// The current time.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_micros(i64::try_from(since_epoch.as_micros()).unwrap_or(MAX_MICROS))
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses exactly the fixed-width form this type prints.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != WIRE_LEN
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'.'
            || b[26] != b'Z'
        {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = &b[range];
            digits.iter().all(u8::is_ascii_digit).then(|| {
                digits
                    .iter()
                    .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let micros = num(20..26)?;
        if year < 1970
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
        Some(Self(seconds * MICROS_PER_SECOND + micros))
    }

    /// The wire form, written digit by digit into a fixed buffer: every
    /// message frame carries one, and `write!` with padded fields cost seven
    /// times as much (callgrind).
    fn to_wire(self) -> [u8; WIRE_LEN] {
        let seconds = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut out[0..4], year);
        put_digits(&mut out[5..7], month);
        put_digits(&mut out[8..10], day);
        put_digits(&mut out[11..13], second_of_day / 3600);
        put_digits(&mut out[14..16], second_of_day % 3600 / 60);
        put_digits(&mut out[17..19], second_of_day % 60);
        put_digits(&mut out[20..26], micros);
        out
    }
}

/// Writes `value` in decimal into all of `field`, zero-padded on the left
/// (the value always fits: the range of [`Timestamp`] sees to it).
fn put_digits(field: &mut [u8], mut value: i64) {
    for digit in field.iter_mut().rev() {
        // `rem_euclid` keeps the digit in 0..10, whatever the value.
        *digit = b'0' + value.rem_euclid(10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = self.to_wire();
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&wire).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = self.to_wire();
        let text = std::str::from_utf8(&wire).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom("expected a time stamp like 2026-11-24T11:16:27.123456Z")
        })
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_fixed_width_utc_with_microseconds() {
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        // 2026-11-24T11:16:27.123456Z, worked out by hand from 20,781 days.
        let micros = (20_781 * 86_400 + 11 * 3600 + 16 * 60 + 27) * 1_000_000 + 123_456;
        assert_eq!(
            Timestamp::from_micros(micros).to_string(),
            "2026-11-24T11:16:27.123456Z"
        );
        assert_eq!(
            Timestamp::from_micros(MAX_MICROS).to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn leap_days_round_trip() {
        let ts = Timestamp::parse("2024-02-29T23:59:59.000001Z").expect("valid leap day");
        assert_eq!(ts.to_string(), "2024-02-29T23:59:59.000001Z");
        assert!(Timestamp::parse("2023-02-29T00:00:00.000000Z").is_none());
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "2026-11-24T11:16:27Z",
            "2026-11-24 11:16:27.123456Z",
            "2026-13-24T11:16:27.123456Z",
            "2026-11-24T24:16:27.123456Z",
            "1969-12-31T23:59:59.999999Z",
            "2026-11-24T11:16:27.12345aZ",
        ] {
            assert!(Timestamp::parse(bad).is_none(), "{bad} should not parse");
        }
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(micros in 0..=MAX_MICROS) {
            let ts = Timestamp::from_micros(micros);
            let text = ts.to_string();
            prop_assert_eq!(text.len(), WIRE_LEN);
            prop_assert_eq!(Timestamp::parse(&text), Some(ts));
            let json = serde_json::to_string(&ts).expect("serialises");
            prop_assert_eq!(json, format!("\"{text}\""));
        }

        #[test]
        fn string_order_is_time_order(a in 0..=MAX_MICROS, b in 0..=MAX_MICROS) {
            let (ta, tb) = (Timestamp::from_micros(a), Timestamp::from_micros(b));
            prop_assert_eq!(ta.cmp(&tb), ta.to_string().cmp(&tb.to_string()));
        }
    }
}
