//! Time ranges and UTC days for the per-day rollups that both backends keep
//! (SQLite's `rollups.rs`, PostgreSQL's `rollups.rs`): the times a filter
//! accepts (`from`/`to` and `q`'s `time` terms, OR lists and negations
//! included) as a few disjoint ranges ([`time_ranges`]), and each range split
//! into the whole days a rollup answers and the partial edges the events'
//! index counts ([`split`]). Pure: no I/O, so both backends use one copy.

use auditlog_core::search::Test;
use auditlog_core::{EventFilter, Timestamp};

/// Microseconds in a rollup day (UTC days since the epoch).
pub const DAY: i64 = 86_400_000_000;

/// The UTC day (since the epoch) that holds `micros`.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(DAY)
}

/// The most disjoint time ranges a histogram reads from the rollups (each
/// is one rollup statement and up to two edges from the index).
pub const MAX_RANGES: usize = 16;

/// Inclusive time ranges (µs), sorted, disjoint and not adjacent;
/// `i64::MIN` and `i64::MAX` stand for open ends.
pub type Ranges = Vec<(i64, i64)>;

/// The times `filter` accepts: its `from`/`to` and every `time` term of
/// `q` (a list accepts any of its ranges; negated, none of them), as
/// disjoint ranges; `None` when there are more than [`MAX_RANGES`].
pub fn time_ranges(filter: &EventFilter) -> Option<Ranges> {
    let from = filter.from.map_or(i64::MIN, Timestamp::micros);
    let to = filter.to.map_or(i64::MAX, Timestamp::micros);
    let mut accepted = if from <= to { vec![(from, to)] } else { vec![] };
    for term in filter.query.terms() {
        let Test::Time(ranges) = &term.test else {
            continue;
        };
        let mut set = merged(
            ranges
                .iter()
                .map(|r| {
                    (
                        r.from.map_or(i64::MIN, Timestamp::micros),
                        r.to.map_or(i64::MAX, Timestamp::micros),
                    )
                })
                .collect(),
        );
        if term.negated {
            set = complement(&set);
        }
        accepted = intersection(&accepted, &set);
    }
    (accepted.len() <= MAX_RANGES).then_some(accepted)
}

/// `ranges` (each `from <= to`) as sorted disjoint ranges.
fn merged(mut ranges: Vec<(i64, i64)>) -> Ranges {
    ranges.retain(|(from, to)| from <= to);
    ranges.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match out.last_mut() {
            Some(last) if from <= last.1.saturating_add(1) => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

/// Every time not in `set`.
fn complement(set: &[(i64, i64)]) -> Ranges {
    let mut out = Vec::with_capacity(set.len() + 1);
    let mut next = Some(i64::MIN);
    for &(from, to) in set {
        if let Some(start) = next {
            if from > start {
                out.push((start, from - 1));
            }
        }
        next = to.checked_add(1);
    }
    if let Some(start) = next {
        out.push((start, i64::MAX));
    }
    out
}

/// The times in both `a` and `b`.
fn intersection(a: &[(i64, i64)], b: &[(i64, i64)]) -> Ranges {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let from = a[i].0.max(b[j].0);
        let to = a[i].1.min(b[j].1);
        if from <= to {
            out.push((from, to));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// How an inclusive `[from, to]` range splits: the whole days read from the
/// rollups, and the partial days at either edge read from the events.
#[derive(Debug, PartialEq, Eq)]
pub struct DaySplit {
    /// First and last whole day (inclusive; `None` = unbounded).
    pub whole_days: (Option<i64>, Option<i64>),
    /// Time ranges (inclusive) counted from the events index.
    pub edges: Vec<(Option<i64>, Option<i64>)>,
}

/// Splits `[from, to]` (microseconds, both inclusive, `None` = unbounded)
/// into whole days and edges; `None` when no day lies inside it whole.
pub fn split(from: Option<i64>, to: Option<i64>) -> Option<DaySplit> {
    // i128 so that the day edges of extreme times cannot overflow.
    let day = i128::from(DAY);
    let first = from.map(|f| (i128::from(f) + day - 1).div_euclid(day));
    let last = to.map(|t| (i128::from(t) + 1).div_euclid(day) - 1);
    if let (Some(first), Some(last)) = (first, last) {
        if first > last {
            return None;
        }
    }
    let mut edges = Vec::new();
    if let (Some(from), Some(first)) = (from, first) {
        let first_start = first * day;
        if i128::from(from) < first_start {
            edges.push((Some(from), Some(to_i64(first_start - 1))));
        }
    }
    if let (Some(to), Some(last)) = (to, last) {
        let after_last = (last + 1) * day;
        if after_last <= i128::from(to) {
            edges.push((Some(to_i64(after_last)), Some(to)));
        }
    }
    Some(DaySplit {
        whole_days: (first.map(to_i64), last.map(to_i64)),
        edges,
    })
}

/// A day number or edge time back in i64: they lie between `from` and `to`
/// (or within a day of them), so they always fit.
fn to_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_inside_one_day_has_no_whole_day() {
        assert_eq!(split(Some(10), Some(DAY - 2)), None);
        assert_eq!(split(Some(DAY + 1), Some(2 * DAY - 1)), None);
    }

    #[test]
    fn whole_days_and_edges_cover_the_range_exactly() {
        // [00:00 of day 1, 23:59:59.999999 of day 3]: days 1..=3, no edges.
        assert_eq!(
            split(Some(DAY), Some(4 * DAY - 1)),
            Some(DaySplit {
                whole_days: (Some(1), Some(3)),
                edges: vec![]
            })
        );
        // `to` inclusive at midnight: that microsecond is an edge of its own.
        assert_eq!(
            split(Some(DAY), Some(4 * DAY)),
            Some(DaySplit {
                whole_days: (Some(1), Some(3)),
                edges: vec![(Some(4 * DAY), Some(4 * DAY))]
            })
        );
        assert_eq!(
            split(Some(-DAY - 5), None),
            Some(DaySplit {
                whole_days: (Some(-1), None),
                edges: vec![(Some(-DAY - 5), Some(-DAY - 1))]
            })
        );
        assert_eq!(
            split(None, Some(DAY + 7)),
            Some(DaySplit {
                whole_days: (None, Some(0)),
                edges: vec![(Some(DAY), Some(DAY + 7))]
            })
        );
        assert!(split(Some(i64::MIN), Some(i64::MAX)).is_some());
    }

    fn filter(q: &str) -> EventFilter {
        EventFilter {
            query: auditlog_core::search::Query::parse(q, &auditlog_core::search::Zone::utc())
                .unwrap(),
            ..EventFilter::default()
        }
    }

    fn at(s: &str) -> i64 {
        Timestamp::parse("time", s).unwrap().micros()
    }

    #[test]
    fn time_terms_become_disjoint_ranges() {
        let ranges = time_ranges(&filter(
            "time:2026-01-01..2026-01-10,2026-01-05..2026-01-20 -time:2026-01-03",
        ))
        .unwrap();
        assert_eq!(
            ranges,
            vec![
                (
                    at("2026-01-01T00:00:00Z"),
                    at("2026-01-02T23:59:59.999999Z")
                ),
                (
                    at("2026-01-04T00:00:00Z"),
                    at("2026-01-20T23:59:59.999999Z")
                ),
            ]
        );
        assert_eq!(
            time_ranges(&filter("-time:..2026-01-01")).unwrap(),
            vec![(at("2026-01-02T00:00:00Z"), i64::MAX)]
        );
        let mut bounded = filter("-time:2026-01-05");
        bounded.from = Some(Timestamp::from_micros(at("2026-01-05T12:00:00Z")));
        assert_eq!(
            time_ranges(&bounded).unwrap(),
            vec![(at("2026-01-06T00:00:00Z"), i64::MAX)]
        );
        assert_eq!(
            time_ranges(&filter("time:>2026-01-05 time:<2026-01-05")).unwrap(),
            vec![]
        );
        let days: Vec<String> = (0..17)
            .map(|d| {
                Timestamp::from_micros(at("2026-01-01T00:00:00Z") + 2 * d * DAY).to_rfc3339()[..10]
                    .to_string()
            })
            .collect();
        assert_eq!(
            time_ranges(&filter(&format!("time:{}", days.join(",")))),
            None
        );
    }

    #[test]
    fn days_of_negative_times_round_down() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY - 1), 0);
        assert_eq!(day_of(-DAY), -1);
        assert_eq!(day_of(-DAY - 1), -2);
    }
}
