//! The query parameters of the API's reads, parsed in one place for the
//! API and the console: the filters (`parse_filter`, SPEC "Query"), the page
//! size and cursor (`parse_page_params`), the histogram's interval, and the
//! way back (`filter_pairs`: a filter as the same parameters, for the
//! console's links). Errors name the parameter and the rule.

use crate::error::ApiError;
use auditlog_core::filter::parse_query;
use auditlog_core::filter::{DEFAULT_LIMIT, MAX_LIMIT};
use auditlog_core::search::Zone;
use auditlog_core::{Cursor, EventFilter, Interval, Taxonomy};
use serde_json::json;

/// The query parameters of `GET /api/v1/events` besides the filters.
pub const QUERY_PARAMS: &[&str] = &["limit", "cursor"];
/// The query parameter of `GET /api/v1/events/histogram` besides the filters.
pub const HISTOGRAM_PARAMS: &[&str] = &["interval"];

/// Parses the filter parameters shared by queries, histograms and the console.
/// `extra` names the other parameters the caller accepts; they are returned.
pub fn parse_filter(
    pairs: &[(String, String)],
    taxonomy: &Taxonomy,
    extra: &[&str],
) -> Result<(EventFilter, Vec<(String, String)>), ApiError> {
    let mut filter = EventFilter::default();
    let mut rest = Vec::new();
    for (name, value) in pairs {
        if name == "q" || name == "tz" {
            continue;
        }
        if filter.add_param(name, value, taxonomy)? {
            continue;
        }
        if extra.contains(&name.as_str()) {
            rest.push((name.clone(), value.clone()));
            continue;
        }
        let mut allowed: Vec<&str> = auditlog_core::filter::FILTER_PARAMS.to_vec();
        allowed.extend_from_slice(extra);
        return Err(unknown_parameter(name, &allowed));
    }
    filter.check()?;
    filter.query = parse_query(single(pairs, "q")?, single(pairs, "tz")?)?;
    Ok((filter, rest))
}

/// The zone `tz` names among `pairs` (UTC when absent): the histogram's
/// buckets start at its midnights.
pub fn parse_zone(pairs: &[(String, String)]) -> Result<Zone, ApiError> {
    Ok(single(pairs, "tz")?
        .map(Zone::parse)
        .transpose()?
        .unwrap_or_default())
}

/// The 400 for a query parameter the route does not take, naming it and the
/// ones it does take (every read route answers it alike).
pub fn unknown_parameter(name: &str, allowed: &[&str]) -> ApiError {
    ApiError::bad_request(
        "unknown_parameter",
        format!(
            "unknown query parameter {name:?}; allowed: {}",
            allowed.join(", ")
        ),
    )
    .with_details(json!({"field": name, "rule": "unknown_parameter"}))
}

pub fn single<'a>(rest: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = rest
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name} may be given only once"),
        )
        .with_details(json!({"field": name, "rule": "not_repeatable"})));
    }
    Ok(first)
}

pub fn parse_limit(text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_parameter",
                format!("limit must be a whole number from 1 to {MAX_LIMIT}; got {t:?}"),
            )
            .with_details(json!({"field": "limit", "rule": "out_of_range"}))),
        },
    }
}

/// The parameters of `GET /api/v1/events`: the filter, the page size and the
/// cursor. Public so that the fuzz targets check exactly what the handler runs.
pub fn parse_page_params(
    pairs: &[(String, String)],
    taxonomy: &Taxonomy,
) -> Result<(EventFilter, usize, Option<Cursor>), ApiError> {
    let (filter, rest) = parse_filter(pairs, taxonomy, QUERY_PARAMS)?;
    let limit = parse_limit(single(&rest, "limit")?)?;
    let cursor = single(&rest, "cursor")?.map(Cursor::decode).transpose()?;
    Ok((filter, limit, cursor))
}

/// The histogram's `interval` among the parameters left after the filters;
/// a day when absent.
pub fn parse_interval(rest: &[(String, String)]) -> Result<Interval, ApiError> {
    Ok(single(rest, "interval")?
        .map(Interval::parse)
        .transpose()?
        .unwrap_or(Interval::Day))
}

/// The API's query parameters for `filter`, in a fixed order.
pub fn filter_pairs(filter: &EventFilter) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut many = |name: &str, values: &[String]| {
        for v in values {
            pairs.push((name.to_string(), v.clone()));
        }
    };
    many("event_type", &filter.event_types);
    many("action", &filter.actions);
    many("user", &filter.users);
    many("project", &filter.projects);
    for (name, value) in [
        ("app", &filter.app),
        ("version", &filter.version),
        ("target_id", &filter.target_id),
    ] {
        if let Some(v) = value {
            pairs.push((name.into(), v.clone()));
        }
    }
    if let Some(from) = filter.from {
        pairs.push(("from".into(), from.to_rfc3339()));
    }
    if let Some(to) = filter.to {
        pairs.push(("to".into(), to.to_rfc3339()));
    }
    // The canonical form holds instants, so it reads the same in any `tz`.
    if !filter.query.is_empty() {
        pairs.push(("q".into(), filter.query.to_string()));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_repeated_single_parameter_names_field_and_rule() {
        // Found by the query_params fuzz target on its seed with a repeated
        // cursor (fuzz/regressions/query_params/repeated-cursor):
        // this 400 was the only one without details.
        let pairs = [("limit", "5"), ("limit", "6")].map(|(n, v)| (n.to_string(), v.to_string()));
        let e = parse_page_params(&pairs, &Taxonomy::default()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.details,
            Some(json!({"field": "limit", "rule": "not_repeatable"}))
        );
    }

    #[test]
    fn filter_pairs_round_trip_through_the_parser() {
        let taxonomy = Taxonomy::default();
        let given = pairs(&[
            ("event_type", "test case"),
            ("action", "update"),
            ("user", "u-1"),
            ("project", "Checkout"),
            ("target_id", "TC-1"),
            ("from", "2026-01-01T00:00:00Z"),
        ]);
        let (filter, _) = parse_filter(&given, &taxonomy, &[]).unwrap();
        let (again, _) = parse_filter(&filter_pairs(&filter), &taxonomy, &[]).unwrap();
        assert_eq!(filter, again);
    }
}
