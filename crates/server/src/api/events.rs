//! Sending and querying events: `POST/GET /api/v1/events`,
//! `GET /api/v1/events/{id}` and `GET /api/v1/events/histogram`.

use crate::api::body::read_json;
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::state::{AppState, Metrics};
use auditlog_core::event::api_json;
use auditlog_core::filter::{DEFAULT_LIMIT, MAX_LIMIT};
use auditlog_core::{leaf, Cursor, EventFilter, Interval, NewEvent, Taxonomy, Timestamp};
use auditlog_store::{AccountId, EventRecord, Scope, StoreError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Most events in one request.
pub const MAX_BATCH_EVENTS: usize = 1_000;

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
    state.metrics.ingest_accepted(receipts.len(), created);
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer: Vec<Value> = receipts
        .iter()
        .map(|r| json!({"id": r.id, "seq": r.seq, "hash": leaf::to_hex(&r.hash)}))
        .collect();
    Ok((status, axum::Json(json!({ "events": answer }))).into_response())
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
        ));
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

pub async fn query(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    Metrics::add(&state.metrics.query_requests, 1);
    let (filter, rest) = parse_filter(&pairs, &caller.account.taxonomy, &["limit", "cursor"])?;
    let limit = parse_limit(single(&rest, "limit")?)?;
    let cursor = single(&rest, "cursor")?.map(Cursor::decode).transpose()?;
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

pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
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

/// Counts per bucket with the empty buckets between the first and last filled in.
/// Shared by the API and the console's chart, so that both show the same numbers.
pub async fn histogram_data(
    state: &AppState,
    account: AccountId,
    filter: &EventFilter,
    interval: Interval,
) -> Result<(u64, Vec<(Timestamp, u64)>), StoreError> {
    let buckets = state.store.histogram(account, filter, interval).await?;
    let total = buckets.iter().map(|b| b.count).sum();
    let mut filled = Vec::new();
    if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
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
    }
    Ok((total, filled))
}

pub async fn histogram(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    Metrics::add(&state.metrics.query_requests, 1);
    let (filter, rest) = parse_filter(&pairs, &caller.account.taxonomy, &["interval"])?;
    let interval = single(&rest, "interval")?
        .map(Interval::parse)
        .transpose()?
        .unwrap_or(Interval::Day);
    let (total, buckets) = histogram_data(&state, caller.account.id, &filter, interval).await?;
    let buckets: Vec<Value> = buckets
        .into_iter()
        .map(|(start, count)| json!({"start": start.to_rfc3339(), "count": count}))
        .collect();
    Ok(
        axum::Json(json!({"total": total, "interval": interval.as_str(), "buckets": buckets}))
            .into_response(),
    )
}
