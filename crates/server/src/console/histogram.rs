//! The activity histogram above the table: the same buckets as
//! `GET /api/v1/events/histogram` for the page's filters, laid out as bars
//! of an inline SVG on the server (no script, no external image).

use auditlog_core::{EventFilter, Interval, Timestamp};

/// Width and height of the SVG's coordinate system.
pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 120;
/// Ranges up to this long are shown per hour.
const HOURLY_UP_TO_MICROS: i64 = 2 * 86_400_000_000;
/// More day buckets than this are shown per week instead.
pub const MAX_BARS: usize = 400;

/// Per hour when the filters bound a range of at most two days, else per day.
pub fn interval_for(filter: &EventFilter, now: Timestamp) -> Interval {
    match filter.from {
        Some(from) if filter.to.unwrap_or(now).micros() - from.micros() <= HOURLY_UP_TO_MICROS => {
            Interval::Hour
        }
        _ => Interval::Day,
    }
}

#[derive(Debug, Clone)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// RFC 3339 start of the bucket and its count, for the hover title.
    pub label: String,
    /// The bucket's first instant and the next bucket's (RFC 3339 UTC), so
    /// that a drag across bars can narrow the time range to them.
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub total: u64,
    pub interval: &'static str,
    pub max: u64,
    pub bars: Vec<Bar>,
    pub first: String,
    pub last: String,
}

/// Lays out `buckets` (oldest first, empty ones included) as bars.
pub fn chart(total: u64, interval: Interval, buckets: &[(Timestamp, u64)]) -> Chart {
    let max = buckets.iter().map(|(_, c)| *c).max().unwrap_or(0);
    let slot = f64::from(WIDTH) / buckets.len().max(1) as f64;
    let gap = if slot > 3.0 { 1.0 } else { 0.0 };
    let bars = buckets
        .iter()
        .enumerate()
        .map(|(i, (start, count))| {
            let height = if max == 0 {
                0.0
            } else {
                (*count as f64 / max as f64) * f64::from(HEIGHT)
            };
            // A bucket with events stays visible however tall the tallest is.
            let height = if *count > 0 { height.max(1.0) } else { 0.0 };
            Bar {
                x: format!("{:.2}", i as f64 * slot),
                y: format!("{:.2}", f64::from(HEIGHT) - height),
                width: format!("{:.2}", (slot - gap).max(0.5)),
                height: format!("{height:.2}"),
                label: format!("{}: {count}", start.to_rfc3339()),
                start: start.to_rfc3339(),
                // The next bucket's start (zone buckets vary in length
                // across a daylight-saving change); the last one's nominal end.
                end: buckets
                    .get(i + 1)
                    .map(|(next, _)| *next)
                    .unwrap_or_else(|| Timestamp::from_micros(start.micros() + interval.micros()))
                    .to_rfc3339(),
            }
        })
        .collect();
    Chart {
        total,
        interval: interval.as_str(),
        max,
        bars,
        first: buckets
            .first()
            .map(|(t, _)| t.to_rfc3339())
            .unwrap_or_default(),
        last: buckets
            .last()
            .map(|(t, _)| t.to_rfc3339())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ranges_are_hourly() {
        let now = Timestamp::from_micros(10 * 86_400_000_000);
        let mut filter = EventFilter {
            from: Some(Timestamp::from_micros(9 * 86_400_000_000)),
            ..Default::default()
        };
        assert_eq!(interval_for(&filter, now), Interval::Hour);
        filter.from = Some(Timestamp::from_micros(5 * 86_400_000_000));
        assert_eq!(interval_for(&filter, now), Interval::Day);
        filter.to = Some(Timestamp::from_micros(6 * 86_400_000_000));
        assert_eq!(interval_for(&filter, now), Interval::Hour);
        assert_eq!(interval_for(&EventFilter::default(), now), Interval::Day);
    }

    #[test]
    fn bars_scale_to_the_tallest() {
        let day = 86_400_000_000;
        let buckets = [
            (Timestamp::from_micros(0), 4),
            (Timestamp::from_micros(day), 0),
            (Timestamp::from_micros(2 * day), 2),
        ];
        let c = chart(6, Interval::Day, &buckets);
        assert_eq!(c.max, 4);
        assert_eq!(c.bars.len(), 3);
        assert_eq!(c.bars[0].height, format!("{:.2}", f64::from(HEIGHT)));
        assert_eq!(c.bars[1].height, "0.00");
        assert_eq!(c.bars[2].height, format!("{:.2}", f64::from(HEIGHT) / 2.0));
        assert!(c.bars[2].label.ends_with(": 2"));
        assert_eq!(c.bars[0].end, c.bars[1].start);
        assert_eq!(c.bars[2].end, Timestamp::from_micros(3 * day).to_rfc3339());
    }
}
