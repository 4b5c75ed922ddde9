//! Instants as microseconds since the Unix epoch, in UTC: the precision SPEC.md
//! promises, and an integer that every backend stores and indexes cheaply.

use crate::FieldError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the instants whose
/// UTC text is RFC 3339 (four-digit years). Text with an offset can name an
/// instant just outside them (`0000-01-01T00:00:00+01:00`), which could not
/// be printed back, so parsing refuses it.
const FIRST_MICROS: i64 = -62_167_219_200_000_000;
const LAST_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64)
    }

    /// Parses an RFC 3339 instant (any offset), truncating below microseconds.
    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            FieldError::new(
                field,
                "invalid_time",
                format!(
                    "{field} must be an RFC 3339 instant such as 2026-11-25T14:03:07.123456Z ({e})"
                ),
            )
        })?;
        let micros = parsed.unix_timestamp_nanos().div_euclid(1_000) as i64;
        if !(FIRST_MICROS..=LAST_MICROS).contains(&micros) {
            return Err(FieldError::new(
                field,
                "out_of_range",
                format!(
                    "{field} must lie between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in UTC"
                ),
            ));
        }
        Ok(Self(micros))
    }

    /// RFC 3339 in UTC with exactly six fractional digits, so that the text
    /// form is fixed for a given instant (it is part of the leaf bytes).
    pub fn to_rfc3339(self) -> String {
        let seconds = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        match OffsetDateTime::from_unix_timestamp(seconds) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                micros
            ),
            // Unreachable for instants that came through `parse` or `now`.
            Err(_) => format!("{}us", self.0),
        }
    }
}

impl Timestamp {
    /// Whether `text` is exactly what [`Timestamp::to_rfc3339`] prints for
    /// some instant (so `parse(text)?.to_rfc3339() == text`), checked
    /// without parsing: the form of stored times, which exports copy as
    /// they are instead of parsing and printing each one again.
    pub fn is_canonical_text(text: &str) -> bool {
        let b = text.as_bytes();
        if b.len() != 27 || b[26] != b'Z' {
            return false;
        }
        let separators = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
        ];
        if separators.iter().any(|&(at, sep)| b[at] != sep) {
            return false;
        }
        let number = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |n, d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        let fields = (
            number(0, 4),
            number(5, 7),
            number(8, 10),
            number(11, 13),
            number(14, 16),
            number(17, 19),
            number(20, 26),
        );
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), Some(_)) =
            fields
        else {
            return false;
        };
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second < 60
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_prints_utc_with_six_digits() {
        let t = Timestamp::parse("time", "2026-11-25T15:03:07.1234567+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T14:03:07.123456Z");
        let t = Timestamp::parse("time", "2026-11-25T14:03:07Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T14:03:07.000000Z");
    }

    /// Every printed instant is canonical text; anything else that is
    /// accepted as canonical prints back as itself.
    #[test]
    fn canonical_text_is_what_to_rfc3339_prints() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let span = (LAST_MICROS - FIRST_MICROS) as u64;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = match i % 4 {
                0 => FIRST_MICROS + (x % 1_000_000_000) as i64,
                1 => LAST_MICROS - (x % 1_000_000_000) as i64,
                _ => FIRST_MICROS + (x % span) as i64,
            };
            let text = Timestamp::from_micros(micros).to_rfc3339();
            assert!(Timestamp::is_canonical_text(&text), "{text}");
        }
        for text in [
            "2024-02-29T00:00:00.000000Z",
            "0000-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
            "2000-02-29T12:00:00.000001Z",
        ] {
            assert!(Timestamp::is_canonical_text(text), "{text}");
            assert_eq!(Timestamp::parse("t", text).unwrap().to_rfc3339(), text);
        }
        for text in [
            "2023-02-29T00:00:00.000000Z",
            "1900-02-29T00:00:00.000000Z",
            "2026-04-31T00:00:00.000000Z",
            "2026-00-10T00:00:00.000000Z",
            "2026-13-10T00:00:00.000000Z",
            "2026-01-00T00:00:00.000000Z",
            "2026-01-01T24:00:00.000000Z",
            "2026-01-01T00:60:00.000000Z",
            "2026-01-01T00:00:60.000000Z",
            "2026-01-01T00:00:00.000000+00:00",
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00.0000000Z",
            "2026-01-01t00:00:00.000000Z",
            "2026-01-01T00:00:00.000000z",
            "2026-01-01T00:00:00,000000Z",
            "+026-01-01T00:00:00.000000Z",
            "2026-01-01T00:00:0x.000000Z",
            "２026-01-01T00:00:00.00000Z",
            "",
        ] {
            assert!(!Timestamp::is_canonical_text(text), "{text}");
        }
    }

    #[test]
    fn rejects_garbage_naming_the_field() {
        let e = Timestamp::parse("from", "yesterday").unwrap_err();
        assert_eq!(e.field, "from");
        assert_eq!(e.rule, "invalid_time");
    }

    #[test]
    fn refuses_instants_whose_utc_text_is_not_rfc_3339() {
        // Found while writing the fuzz properties: these parsed, then printed
        // as "-001-12-31T23:00:00.000000Z" and "253402304399000000us", which
        // neither the leaf reader nor a filter's JSON could read back.
        for text in ["0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"] {
            let e = Timestamp::parse("time", text).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.rule),
                ("time", "out_of_range"),
                "{text}"
            );
        }
        for text in [
            "0000-01-01T00:00:00Z",
            "0000-01-01T01:00:00+01:00",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T22:59:59.999999-01:00",
        ] {
            let t = Timestamp::parse("time", text).unwrap();
            assert_eq!(
                Timestamp::parse("time", &t.to_rfc3339()).unwrap(),
                t,
                "{text}"
            );
        }
    }

    #[test]
    fn round_trips_through_text() {
        for micros in [0, 1, 1_764_000_000_123_456, 999_999] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::parse("t", &t.to_rfc3339()).unwrap(), t);
        }
    }
}
