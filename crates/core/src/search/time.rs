//! Times in queries: the zone (`tz`, an IANA name, default UTC) that reads
//! times written without an offset, and the dates, times and ranges of
//! `time:` resolved to instants.
//!
//! A date alone stands for its whole day in the zone. A local time that
//! falls in a daylight-saving gap means the first instant after the gap
//! (the transition); one that occurs twice means the earlier.

use crate::FieldError;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// The first and last instants a `Timestamp` prints as RFC 3339.
pub(super) const FIRST_MICROS: i128 = -62_167_219_200_000_000;
pub(super) const LAST_MICROS: i128 = 253_402_300_799_999_999;

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;

/// An IANA time zone, from the tz database compiled into the binary (so a
/// machine without one reads the same zones).
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Default for Zone {
    fn default() -> Self {
        Self::utc()
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Zone {
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// Reads the `tz` parameter: an IANA name such as `Europe/Paris`.
    pub fn parse(name: &str) -> Result<Self, FieldError> {
        let unknown = || {
            FieldError::new(
                "tz",
                "unknown_time_zone",
                format!("tz must be an IANA time zone name such as Europe/Paris or UTC; {name:?} is not one"),
            )
        };
        if name.is_empty() || name.len() > 64 || name.contains('\0') {
            return Err(unknown());
        }
        if name == "UTC" {
            return Ok(Self::utc());
        }
        let tz = TimeZone::get(name).map_err(|_| unknown())?;
        Ok(Self {
            name: name.into(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's rules (for the histogram's buckets, `zoned_buckets`).
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether this is UTC, whose buckets are plain multiples.
    pub fn is_utc(&self) -> bool {
        self.name == "UTC"
    }

    /// The instant (in microseconds) of a local time in this zone.
    fn instant(&self, c: &Civil) -> Option<i128> {
        let naive = c.naive_micros();
        let dt = jiff::civil::DateTime::new(
            i16::try_from(c.year).ok()?,
            c.month as i8,
            c.day as i8,
            c.hour as i8,
            c.minute as i8,
            c.second as i8,
            0,
        )
        .ok()?;
        let offset_micros = |o: jiff::tz::Offset| i128::from(o.seconds()) * MICROS_PER_SECOND;
        Some(match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => naive - offset_micros(offset),
            AmbiguousOffset::Fold { before, .. } => naive - offset_micros(before),
            AmbiguousOffset::Gap { before, after } => {
                // Read with the later offset, the local time lies before the
                // transition; the transition is the first instant after the gap.
                let early = (naive - offset_micros(after)).div_euclid(MICROS_PER_SECOND);
                let start = jiff::Timestamp::from_second(i64::try_from(early).ok()?).ok()?;
                match self.tz.following(start).next() {
                    Some(t) => i128::from(t.timestamp().as_microsecond()),
                    None => naive - offset_micros(before),
                }
            }
        })
    }
}

/// A date, or a date and time of day, with an offset or without (then read
/// in the zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    year: i64,
    month: i64,
    day: i64,
    /// Whether a time of day was written.
    has_time: bool,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
    /// Seconds east of UTC, when written.
    offset: Option<i64>,
}

impl Civil {
    /// `YYYY-MM-DD`, then optionally `THH:MM`, `:SS`, `.fraction` (digits
    /// past the sixth are cut) and `Z` or `±HH:MM`.
    pub(super) fn parse(text: &str) -> Option<Civil> {
        let b = text.as_bytes();
        let mut at = 0;
        let digits = |n: usize, at: &mut usize| -> Option<i64> {
            let part = b.get(*at..*at + n)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            *at += n;
            Some(part.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0')))
        };
        let expect =
            |c: u8, at: &mut usize| -> Option<()> { (b.get(*at) == Some(&c)).then(|| *at += 1) };
        let year = digits(4, &mut at)?;
        expect(b'-', &mut at)?;
        let month = digits(2, &mut at)?;
        expect(b'-', &mut at)?;
        let day = digits(2, &mut at)?;
        let mut c = Civil {
            year,
            month,
            day,
            has_time: false,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            offset: None,
        };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if at == b.len() {
            return Some(c);
        }
        if !matches!(b.get(at), Some(b'T' | b't')) {
            return None;
        }
        at += 1;
        c.has_time = true;
        c.hour = digits(2, &mut at)?;
        expect(b':', &mut at)?;
        c.minute = digits(2, &mut at)?;
        if b.get(at) == Some(&b':') {
            at += 1;
            c.second = digits(2, &mut at)?;
            if b.get(at) == Some(&b'.') {
                at += 1;
                let start = at;
                while b.get(at).is_some_and(u8::is_ascii_digit) {
                    at += 1;
                }
                let fraction = &b[start..at];
                if fraction.is_empty() {
                    return None;
                }
                c.micros = (0..6).fold(0, |v, i| {
                    v * 10 + fraction.get(i).map_or(0, |d| i64::from(d - b'0'))
                });
            }
        }
        if c.hour > 23 || c.minute > 59 || c.second > 59 {
            return None;
        }
        match b.get(at) {
            None => {}
            Some(b'Z' | b'z') => {
                at += 1;
                c.offset = Some(0);
            }
            Some(&sign @ (b'+' | b'-')) => {
                at += 1;
                let hours = digits(2, &mut at)?;
                expect(b':', &mut at)?;
                let minutes = digits(2, &mut at)?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let seconds = hours * 3600 + minutes * 60;
                c.offset = Some(if sign == b'-' { -seconds } else { seconds });
            }
            Some(_) => return None,
        }
        (at == b.len()).then_some(c)
    }

    #[cfg(test)]
    pub(super) fn is_date(&self) -> bool {
        !self.has_time
    }

    /// The local time read as if it were UTC.
    fn naive_micros(&self) -> i128 {
        let days = i128::from(days_from_civil(self.year, self.month, self.day));
        days * MICROS_PER_DAY
            + i128::from(self.hour * 3600 + self.minute * 60 + self.second) * MICROS_PER_SECOND
            + i128::from(self.micros)
    }

    /// The first instant this text stands for: the instant, or the start of
    /// the day.
    pub(super) fn lower(&self, zone: &Zone) -> Option<i128> {
        match self.offset {
            Some(offset) => Some(self.naive_micros() - i128::from(offset) * MICROS_PER_SECOND),
            None => zone.instant(self),
        }
    }

    /// The last instant this text stands for: the instant, or the end of the
    /// day (the instant before the next day starts).
    pub(super) fn upper(&self, zone: &Zone) -> Option<i128> {
        if self.has_time {
            return self.lower(zone);
        }
        match self.next_day() {
            Some(next) => Some(next.lower(zone)? - 1),
            // 9999-12-31 has no next day that a zone can read.
            None => Some(self.lower(zone)? + MICROS_PER_DAY - 1),
        }
    }

    fn next_day(&self) -> Option<Civil> {
        let (mut year, mut month, mut day) = (self.year, self.month, self.day + 1);
        if day > days_in_month(year, month) {
            day = 1;
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
        (year <= 9999).then_some(Civil {
            year,
            month,
            day,
            ..*self
        })
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn at(text: &str) -> i128 {
        i128::from(Timestamp::parse("t", text).unwrap().micros())
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    #[test]
    fn dates_and_times_read_with_or_without_offset() {
        let utc = Zone::utc();
        let c = Civil::parse("2026-11-30").unwrap();
        assert!(c.is_date());
        assert_eq!(c.lower(&utc), Some(at("2026-11-30T00:00:00Z")));
        assert_eq!(c.upper(&utc), Some(at("2026-11-30T23:59:59.999999Z")));
        let c = Civil::parse("2026-11-05T12:00").unwrap();
        assert_eq!(
            c.lower(&zone("Europe/Paris")),
            Some(at("2026-11-05T11:00:00Z"))
        );
        let c = Civil::parse("2026-11-05T12:00:01.1234567+05:30").unwrap();
        assert_eq!(c.lower(&utc), Some(at("2026-11-05T06:30:01.123456Z")));
        assert_eq!(c.upper(&zone("Asia/Tokyo")), c.lower(&utc));
        for bad in [
            "2026-11-31",
            "2026-13-01",
            "2026-1-01",
            "2026-11-05T24:00",
            "2026-11-05T12",
            "2026-11-05T12:00:00.",
            "2026-11-05T12:00+5",
            "2026-11-05Z",
            "2026-11-05T12:00Zjunk",
            "",
        ] {
            assert_eq!(Civil::parse(bad), None, "{bad}");
        }
        assert!(Civil::parse("2024-02-29").is_some());
        assert!(Civil::parse("2026-02-29").is_none());
    }

    #[test]
    fn a_day_in_a_zone_runs_from_its_midnight_to_the_next() {
        // 2026-03-29 in Paris has 23 hours (02:00 CET → 03:00 CEST).
        let paris = zone("Europe/Paris");
        let c = Civil::parse("2026-03-29").unwrap();
        assert_eq!(c.lower(&paris), Some(at("2026-03-28T23:00:00Z")));
        assert_eq!(c.upper(&paris), Some(at("2026-03-29T21:59:59.999999Z")));
        let last = Civil::parse("9999-12-31").unwrap();
        assert_eq!(last.upper(&Zone::utc()), Some(LAST_MICROS));
    }

    #[test]
    fn a_time_in_a_gap_is_the_first_instant_after_it_and_a_repeated_one_the_earlier() {
        let paris = zone("Europe/Paris");
        // 02:30 does not exist on 2026-03-29 in Paris: the gap ends at 01:00Z (03:00 CEST).
        let gap = Civil::parse("2026-03-29T02:30").unwrap();
        assert_eq!(gap.lower(&paris), Some(at("2026-03-29T01:00:00Z")));
        // 02:30 happens twice on 2026-10-25: first at 00:30Z (CEST), then 01:30Z (CET).
        let fold = Civil::parse("2026-10-25T02:30").unwrap();
        assert_eq!(fold.lower(&paris), Some(at("2026-10-25T00:30:00Z")));
        // A day whose midnight falls in a gap starts when the gap ends
        // (America/Santiago skipped 2026-09-06 00:00 → 01:00).
        let santiago = zone("America/Santiago");
        let day = Civil::parse("2026-09-06").unwrap();
        assert_eq!(day.lower(&santiago), Some(at("2026-09-06T04:00:00Z")));
    }

    #[test]
    fn unknown_zones_are_refused_naming_tz() {
        for bad in ["Mars/Olympus", "", "Europe/Paris\0", "UTC+1"] {
            let e = Zone::parse(bad).unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), ("tz", "unknown_time_zone"));
        }
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::utc());
        assert_eq!(zone("America/New_York").name(), "America/New_York");
    }
}
