//! Histogram buckets in a time zone (`tz`, SPEC "Query events"): an hour
//! starts on the zone's hour, a day at its midnight (or the first instant
//! after a daylight-saving gap that swallows midnight), a week at Monday's
//! midnight. Days are 23, 24 or 25 hours long, so buckets are found by the
//! zone's rules, not by division.

use crate::search::Zone;
use crate::{Interval, Timestamp};
use jiff::ToSpan;

/// The start of the bucket that holds `t` in `zone`; in UTC (or where the
/// zone's rules cannot say, far outside the tz database's years) the
/// plain multiple.
pub fn bucket_start(zone: &Zone, interval: Interval, t: Timestamp) -> Timestamp {
    if zone.is_utc() {
        return interval.bucket_start(t);
    }
    zoned_start(zone, interval, t).unwrap_or_else(|| interval.bucket_start(t))
}

fn zoned_start(zone: &Zone, interval: Interval, t: Timestamp) -> Option<Timestamp> {
    let instant = jiff::Timestamp::from_microsecond(t.micros()).ok()?;
    let zoned = instant.to_zoned_datetime(zone.time_zone().clone());
    let micros = match interval {
        Interval::Hour => {
            // The zone's hour: floor in local time at this instant's offset,
            // so that both hours of a repeated one are buckets of their own.
            let offset = i64::from(zoned.offset().seconds()) * 1_000_000;
            let local = t.micros() + offset;
            let hour = Interval::Hour.micros();
            local.div_euclid(hour) * hour - offset
        }
        Interval::Day => zoned.start_of_day().ok()?.timestamp().as_microsecond(),
        Interval::Week => {
            let date = zoned.date();
            let back = i64::from(date.weekday().to_monday_zero_offset());
            let monday = date.checked_sub(back.days()).ok()?;
            monday
                .to_zoned_datetime(zone.time_zone().clone())
                .ok()?
                .timestamp()
                .as_microsecond()
        }
    };
    Some(Timestamp::from_micros(micros))
}

/// The start of the bucket after the one starting at `start`.
pub fn next_bucket_start(zone: &Zone, interval: Interval, start: Timestamp) -> Timestamp {
    let width = interval.micros();
    if zone.is_utc() || interval == Interval::Hour {
        // A zone's hours are an hour apart (a repeated hour is a bucket of
        // its own, one hour after the first).
        return Timestamp::from_micros(start.micros() + width);
    }
    // The bucket holding the instant a day or week past this start's
    // bucket's middle: the next one, however long this one was.
    let probe = Timestamp::from_micros(start.micros() + width + width / 2);
    bucket_start(zone, interval, probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse("t", text).unwrap()
    }

    #[test]
    fn days_start_at_the_zones_midnight_whatever_their_length() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        // 2026-03-29 is 23 hours long in Paris.
        let start = bucket_start(&paris, Interval::Day, at("2026-03-29T12:00:00Z"));
        assert_eq!(start, at("2026-03-28T23:00:00Z"));
        let next = next_bucket_start(&paris, Interval::Day, start);
        assert_eq!(next, at("2026-03-29T22:00:00Z"));
        let week = bucket_start(&paris, Interval::Week, at("2026-11-25T10:00:00Z"));
        assert_eq!(week, at("2026-11-22T23:00:00Z"));
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        assert_eq!(
            bucket_start(&kolkata, Interval::Hour, at("2026-11-25T10:10:00Z")),
            at("2026-11-25T09:30:00Z")
        );
        assert_eq!(
            bucket_start(&Zone::utc(), Interval::Day, at("2026-11-25T10:10:00Z")),
            at("2026-11-25T00:00:00Z")
        );
    }
}
