//! An account's event counts per hour, day or week, with the empty buckets
//! between the first and the last filled in: what `GET
//! /api/v1/events/histogram` answers and the console's chart draws, so that
//! both show the same numbers.

use crate::error::ApiError;
use crate::state::AppState;
use auditlog_core::search::Zone;
use auditlog_core::zoned_buckets::{bucket_start, next_bucket_start};
use auditlog_core::{EventFilter, Interval, Timestamp};
use auditlog_store::AccountId;
use serde_json::json;
use std::collections::BTreeMap;

/// Most buckets one histogram holds. Empty buckets between the first and the
/// last are filled in, so one event far in the past (times are only bounded
/// in the future) would otherwise make millions of them: an hour histogram
/// from year 1 is 17.7 million buckets and close to a gigabyte of JSON.
pub const MAX_HISTOGRAM_BUCKETS: i64 = 10_000;
/// The error code of a histogram that would hold more buckets than that.
pub const TOO_MANY_BUCKETS: &str = "too_many_buckets";

/// Counts per bucket with the empty buckets between the first and last filled in.
/// Shared by the API and the console's chart, so that both show the same numbers.
pub async fn histogram_data(
    state: &AppState,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
) -> Result<(u64, Vec<(Timestamp, u64)>), ApiError> {
    let buckets = state.store.histogram(account, filter, interval).await?;
    let total = buckets.iter().map(|b| b.count).sum();
    Ok((total, fill_buckets(&buckets, interval)?))
}

/// [`histogram_data`] with buckets in `zone` (SPEC "Query events": days
/// start at its midnights, weeks at Monday's, hours on its hours). The
/// store counts per UTC hour; an hour wholly inside one of the zone's
/// buckets counts there, and an hour that a bucket starts inside (zones
/// at :30 or :45, or an hour interval there) is split by counting its
/// part before the boundary, so every count is exact.
pub async fn zoned_histogram_data(
    state: &AppState,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
    zone: &Zone,
) -> Result<(u64, Vec<(Timestamp, u64)>), ApiError> {
    if zone.is_utc() {
        return histogram_data(state, account, filter, interval).await;
    }
    let hours = state
        .store
        .histogram(account, filter, Interval::Hour)
        .await?;
    let hour = Interval::Hour.micros();
    let mut counts: BTreeMap<Timestamp, u64> = BTreeMap::new();
    for h in &hours {
        let first = bucket_start(zone, interval, h.start);
        let last = bucket_start(
            zone,
            interval,
            Timestamp::from_micros(h.start.micros() + hour - 1),
        );
        if first == last {
            *counts.entry(first).or_default() += h.count;
            continue;
        }
        // `last` starts inside this hour: count the part before it.
        let mut before = filter.clone();
        before.from = Some(before.from.map_or(h.start, |f| f.max(h.start)));
        let end = Timestamp::from_micros(last.micros() - 1);
        before.to = Some(before.to.map_or(end, |t| t.min(end)));
        let early: u64 = if before.from <= before.to {
            state
                .store
                .histogram(account, &before, Interval::Hour)
                .await?
                .iter()
                .map(|b| b.count)
                .sum()
        } else {
            0
        };
        *counts.entry(first).or_default() += early;
        *counts.entry(last).or_default() += h.count.saturating_sub(early);
    }
    counts.retain(|_, count| *count > 0);
    let total = counts.values().sum();
    Ok((total, fill_zoned(&counts, interval, zone)?))
}

/// The zone's buckets from the first to the last non-empty one, the empty
/// ones between them filled in (at most [`MAX_HISTOGRAM_BUCKETS`]).
fn fill_zoned(
    counts: &BTreeMap<Timestamp, u64>,
    interval: Interval,
    zone: &Zone,
) -> Result<Vec<(Timestamp, u64)>, ApiError> {
    let (Some((first, _)), Some((last, _))) = (counts.first_key_value(), counts.last_key_value())
    else {
        return Ok(Vec::new());
    };
    // Buckets are at least 23 hours long for days (a week at least 167),
    // so this bounds their number before any is made.
    let shortest = match interval {
        Interval::Hour => interval.micros(),
        other => other.micros() - Interval::Hour.micros(),
    };
    let span = (last.micros() - first.micros()) / shortest + 1;
    if span > MAX_HISTOGRAM_BUCKETS {
        return Err(too_many(span, interval, *first, *last));
    }
    let mut filled = Vec::new();
    let mut at = *first;
    while at <= *last {
        filled.push((at, counts.get(&at).copied().unwrap_or(0)));
        let next = next_bucket_start(zone, interval, at);
        if next <= at {
            break;
        }
        at = next;
    }
    if filled.len() as i64 > MAX_HISTOGRAM_BUCKETS {
        return Err(too_many(filled.len() as i64, interval, *first, *last));
    }
    Ok(filled)
}

fn too_many(span: i64, interval: Interval, first: Timestamp, last: Timestamp) -> ApiError {
    ApiError::bad_request(
        TOO_MANY_BUCKETS,
        format!(
            "the matching events span {span} {} buckets ({first} to {last}); a histogram holds at most \
             {MAX_HISTOGRAM_BUCKETS}: narrow from and to, or choose a larger interval",
            interval.as_str(),
        ),
    )
    .with_details(json!({"field": "interval", "rule": TOO_MANY_BUCKETS}))
}

/// The non-empty buckets (oldest first) with the empty ones between them;
/// 400 when that is more than [`MAX_HISTOGRAM_BUCKETS`], checked before any
/// is made.
fn fill_buckets(
    buckets: &[auditlog_store::Bucket],
    interval: Interval,
) -> Result<Vec<(Timestamp, u64)>, ApiError> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Ok(Vec::new());
    };
    let span = (last.start.micros() - first.start.micros()) / interval.micros() + 1;
    if span > MAX_HISTOGRAM_BUCKETS {
        return Err(ApiError::bad_request(
            TOO_MANY_BUCKETS,
            format!(
                "the matching events span {span} {} buckets ({} to {}); a histogram holds at most \
                 {MAX_HISTOGRAM_BUCKETS}: narrow from and to, or choose a larger interval",
                interval.as_str(),
                first.start,
                last.start,
            ),
        )
        .with_details(json!({"field": "interval", "rule": TOO_MANY_BUCKETS})));
    }
    let mut filled = Vec::with_capacity(span as usize);
    let mut next = buckets.iter().peekable();
    let mut at = first.start.micros();
    while at <= last.start.micros() {
        let count = match next.peek() {
            Some(b) if b.start.micros() == at => next.next().map(|b| b.count).unwrap_or(0),
            _ => 0,
        };
        filled.push((Timestamp::from_micros(at), count));
        at += interval.micros();
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::Bucket;
    use axum::http::StatusCode;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse("t", text).unwrap()
    }

    #[test]
    fn buckets_between_the_first_and_the_last_are_filled_in() {
        let buckets = [
            Bucket {
                start: at("2026-11-01T00:00:00Z"),
                count: 2,
            },
            Bucket {
                start: at("2026-11-04T00:00:00Z"),
                count: 1,
            },
        ];
        let filled = fill_buckets(&buckets, Interval::Day).unwrap();
        let counts: Vec<u64> = filled.iter().map(|(_, c)| *c).collect();
        assert_eq!(counts, [2, 0, 0, 1]);
        assert_eq!(filled[1].0, at("2026-11-02T00:00:00Z"));
        assert!(fill_buckets(&[], Interval::Hour).unwrap().is_empty());
    }

    /// Regression: one event in year 1 made an hour histogram fill 17.7
    /// million buckets (888 MB of JSON, 1.6 GB of memory, 40 s).
    #[test]
    fn a_histogram_spanning_too_many_buckets_is_refused_before_filling() {
        let buckets = [
            Bucket {
                start: at("0001-01-01T00:00:00Z"),
                count: 1,
            },
            Bucket {
                start: at("2026-11-27T00:00:00Z"),
                count: 5,
            },
        ];
        for interval in [Interval::Hour, Interval::Day, Interval::Week] {
            let error = fill_buckets(&buckets, interval).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, TOO_MANY_BUCKETS);
            assert!(
                error.message.contains("narrow from and to"),
                "{}",
                error.message
            );
        }
        // Exactly the limit is still answered.
        let last = at("2026-01-01T00:00:00Z").micros();
        let first = last - (MAX_HISTOGRAM_BUCKETS - 1) * Interval::Hour.micros();
        let edge = [
            Bucket {
                start: Timestamp::from_micros(first),
                count: 1,
            },
            Bucket {
                start: Timestamp::from_micros(last),
                count: 1,
            },
        ];
        let filled = fill_buckets(&edge, Interval::Hour).unwrap();
        assert_eq!(filled.len() as i64, MAX_HISTOGRAM_BUCKETS);
    }
}
