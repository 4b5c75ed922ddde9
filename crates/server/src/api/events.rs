//! Sending and querying events: `POST/GET /api/v1/events`,
//! `GET /api/v1/events/{id}` and `GET /api/v1/events/histogram`.

use crate::api::body::read_json;
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::api::schema::{
    Bucket, EventEnvelope, EventPage, FilterParams, Histogram, HistogramParams, IngestAnswer,
    IngestBody, PageParams, Receipt,
};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use auditlog_core::event::api_json;
use auditlog_core::filter::{DEFAULT_LIMIT, MAX_LIMIT};
use auditlog_core::{leaf, Cursor, EventFilter, Interval, NewEvent, Taxonomy, Timestamp};
use auditlog_store::{AccountId, EventRecord, Scope};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Most events in one request.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// The query parameters of `GET /api/v1/events` besides the filters.
pub const QUERY_PARAMS: &[&str] = &["limit", "cursor"];
/// The query parameter of `GET /api/v1/events/histogram` besides the filters.
pub const HISTOGRAM_PARAMS: &[&str] = &["interval"];

/// Sends one event or a batch; all or nothing, durable once answered.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "ingest_events",
    tag = "events",
    security(("bearer" = [])),
    request_body(
        content = IngestBody,
        description = "One event, or `{\"events\": [...]}` with 1 to 1,000 of them; at most 10 MiB"
    ),
    responses(
        (status = 201, description = "Stored and durable (at least one event was new)", body = IngestAnswer),
        (status = 200, description = "Every event repeated a stored one with the same content; nothing new was stored", body = IngestAnswer),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `ingest` scope", body = ErrorBody),
        (status = 409, description = "An event reuses a stored id with different content; nothing was stored", body = ErrorBody),
        (status = 413, description = "The body is over 10 MiB or holds more than 1,000 events", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "An event breaks a rule; `details` names each bad index and field; nothing was stored", body = ErrorBody),
    )
)]
pub async fn ingest(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Rejections are counted by the metrics middleware, which also sees
    // those answered before this handler runs (bad key, body limits).
    ingest_inner(&state, &caller, &headers, body).await
}

async fn ingest_inner(
    state: &AppState,
    caller: &ApiCaller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Ingest)?;
    let body = read_json(headers, body).await?;
    let raw_events = split_batch(body)?;
    let now = Timestamp::now();
    let events = parse_all(&raw_events, &caller.account.taxonomy, now)?;
    let receipts = state.store.append(&caller.account, events).await?;
    let created = receipts.iter().filter(|r| r.created).count();
    crate::metrics::ingest_accepted(receipts.len(), created);
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = IngestAnswer {
        events: receipts
            .iter()
            .map(|r| Receipt {
                id: r.id.clone(),
                seq: r.seq,
                hash: leaf::to_hex(&r.hash),
            })
            .collect(),
    };
    Ok((status, axum::Json(answer)).into_response())
}

/// A body is one event, or `{"events": [...]}` with 1 to 1,000 of them.
fn split_batch(body: Value) -> Result<Vec<Value>, ApiError> {
    match body {
        Value::Object(mut map) if map.contains_key("events") => {
            if map.len() > 1 {
                let extra: Vec<&String> = map.keys().filter(|k| *k != "events").collect();
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_batch",
                    format!("a batch body holds only \"events\"; remove {extra:?}"),
                ));
            }
            match map.remove("events") {
                Some(Value::Array(items)) if items.is_empty() => Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_batch",
                    "events must hold at least one event",
                )),
                Some(Value::Array(items)) if items.len() > MAX_BATCH_EVENTS => Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_events",
                    format!(
                        "a batch holds at most {MAX_BATCH_EVENTS} events; this one has {}",
                        items.len()
                    ),
                )),
                Some(Value::Array(items)) => Ok(items),
                _ => Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_batch",
                    "events must be an array of event objects",
                )),
            }
        }
        Value::Object(_) => Ok(vec![body]),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be an event object or {\"events\": [...]}",
        )),
    }
}

/// Checks every event; if any is invalid, answers 422 naming each bad index.
fn parse_all(
    raw: &[Value],
    taxonomy: &Taxonomy,
    now: Timestamp,
) -> Result<Vec<NewEvent>, ApiError> {
    let mut events = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    for (index, value) in raw.iter().enumerate() {
        match NewEvent::parse(value, taxonomy, now) {
            Ok(event) => events.push(event),
            Err(errors) => problems.push(json!({"index": index, "errors": errors})),
        }
    }
    if problems.is_empty() {
        return Ok(events);
    }
    let first = &problems[0];
    let message = format!(
        "{} of {} events are invalid and nothing was stored; first: event {}: {}",
        problems.len(),
        raw.len(),
        first["index"],
        first["errors"][0]["message"].as_str().unwrap_or("invalid")
    );
    Err(
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_events", message)
            .with_details(json!(problems)),
    )
}

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
        if filter.add_param(name, value, taxonomy)? {
            continue;
        }
        if extra.contains(&name.as_str()) {
            rest.push((name.clone(), value.clone()));
            continue;
        }
        let mut allowed: Vec<&str> = auditlog_core::filter::FILTER_PARAMS.to_vec();
        allowed.extend_from_slice(extra);
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!(
                "unknown query parameter {name:?}; allowed: {}",
                allowed.join(", ")
            ),
        )
        .with_details(json!({"field": name, "rule": "unknown_parameter"})));
    }
    filter.check()?;
    Ok((filter, rest))
}

fn single<'a>(rest: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
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

/// A JSON body built from pre-serialised event bytes.
fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn events_array(out: &mut Vec<u8>, events: &[EventRecord]) {
    out.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&api_json(&e.leaf_bytes, &e.leaf_hash));
    }
    out.push(b']');
}

/// Events newest first (by time, then seq), one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "query_events",
    tag = "events",
    security(("bearer" = [])),
    params(FilterParams, PageParams),
    responses(
        (status = 200, description = "One page; follow `next_cursor` for the next", body = EventPage),
        (status = 400, description = "An unknown parameter, a bad value (date, event type, action), `from` after `to`, a bad cursor or an out-of-range limit; `details` names it", body = ErrorBody),
    )
)]
pub async fn query(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let (filter, limit, cursor) = parse_page_params(&pairs, &caller.account.taxonomy)?;
    let page = state
        .store
        .query(caller.account.id, &filter, cursor, limit)
        .await?;
    let mut out = Vec::with_capacity(page.events.len() * 700 + 64);
    out.extend_from_slice(b"{\"events\":");
    events_array(&mut out, &page.events);
    out.extend_from_slice(b",\"next_cursor\":");
    match page.next_cursor {
        Some(c) => out.extend_from_slice(format!("\"{}\"", c.encode()).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(raw_json(StatusCode::OK, out))
}

/// One event of the key's account by its id.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    operation_id = "get_event",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 404, description = "No event with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let record = state
        .store
        .get(caller.account.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event with id {id:?} in this account")))?;
    let mut out = b"{\"event\":".to_vec();
    out.extend_from_slice(&api_json(&record.leaf_bytes, &record.leaf_hash));
    out.push(b'}');
    Ok(raw_json(StatusCode::OK, out))
}

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

/// Events per hour, day or week for the same filters as the query.
#[utoipa::path(
    get,
    path = "/api/v1/events/histogram",
    operation_id = "events_histogram",
    tag = "events",
    security(("bearer" = [])),
    params(FilterParams, HistogramParams),
    responses(
        (status = 200, description = "The buckets, oldest first", body = Histogram),
        (status = 400, description = "An unknown parameter or a bad value (`details` names it), or the matching events span more than 10,000 buckets (`too_many_buckets`: narrow `from`/`to` or choose a larger interval)", body = ErrorBody),
    )
)]
pub async fn histogram(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let (filter, rest) = parse_filter(&pairs, &caller.account.taxonomy, HISTOGRAM_PARAMS)?;
    let interval = single(&rest, "interval")?
        .map(Interval::parse)
        .transpose()?
        .unwrap_or(Interval::Day);
    let (total, buckets) = histogram_data(&state, caller.account.id, &filter, interval).await?;
    let answer = Histogram {
        total,
        interval: interval.into(),
        buckets: buckets
            .into_iter()
            .map(|(start, count)| Bucket {
                start: start.to_rfc3339(),
                count,
            })
            .collect(),
    };
    Ok(axum::Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::Bucket;

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
}
