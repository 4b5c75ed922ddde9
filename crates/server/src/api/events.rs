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
use crate::event_counts::zoned_histogram_data;
use crate::query_params::{
    parse_filter, parse_interval, parse_page_params, parse_zone, HISTOGRAM_PARAMS,
};
use crate::state::AppState;
use auditlog_core::{leaf, taxonomy, FieldError, NewEvent, Taxonomy, Timestamp};
use auditlog_store::{EventRecord, Scope};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Most events in one request.
pub const MAX_BATCH_EVENTS: usize = 1_000;
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
    let receipts = state
        .store
        .append_from(&caller.account, &caller.source(), events)
        .await?;
    if let Some(last) = receipts.iter().map(|r| r.seq).max() {
        state.live.appended(caller.account.id, last);
    }
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
                created: r.created,
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
        if let Some(error) = reserved_type(value).or_else(|| retired(value, taxonomy)) {
            problems.push(json!({"index": index, "errors": [error]}));
            continue;
        }
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

/// The refusal of an event whose type only Auditlog may write (`Audit
/// Log`, `Auditlog …`), checked before the taxonomy: older accounts'
/// stored taxonomies still list `Audit Log`, for their filters.
fn reserved_type(value: &Value) -> Option<FieldError> {
    let name = value.get("event_type")?.as_str()?;
    taxonomy::is_reserved(name).then(|| {
        FieldError::new(
            "event_type",
            "reserved_event_type",
            format!(
                "event_type {name:?} is reserved for Auditlog's own entries (\"Audit Log\" and every \
                 type starting \"Auditlog \"); use another name for your own type"
            ),
        )
    })
}

/// The refusal of an event whose type or action an admin retired: stored
/// events keep it, new ones may not use it.
fn retired(value: &Value, taxonomy: &Taxonomy) -> Option<FieldError> {
    let name = value.get("event_type")?.as_str()?;
    let action = value.get("action").and_then(Value::as_str);
    taxonomy.retired_use(name, action)
}

/// A JSON body built from pre-serialised event bytes.
fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A stored event as the API serves it, appended to `out`, wherever it
/// serves one (pages, one event, the live tail).
pub fn write_event_json(
    record: &EventRecord,
    out: &mut Vec<u8>,
) -> Result<(), auditlog_core::RecordError> {
    record.stored().write_served_json(&record.leaf_hash, out)
}

fn events_array(out: &mut Vec<u8>, events: &[EventRecord]) -> Result<(), ApiError> {
    out.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event_json(e, out).map_err(|error| unreadable(e.seq, error))?;
    }
    out.push(b']');
    Ok(())
}

/// A stored event that cannot be served (its leaf or personal values were
/// altered outside Auditlog): a fault for `auditlog verify`, never the client's.
fn unreadable(seq: u64, error: auditlog_core::RecordError) -> ApiError {
    ApiError::internal(&format!("stored event seq {seq} cannot be served"), error)
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
        (status = 400, description = "An unknown parameter, a bad value (date, event type, action, `tz`), `from` after `to`, a bad cursor or an out-of-range limit (`details` names it); a malformed `q` is `bad_query` with `details.position` and `details.expected`", body = ErrorBody),
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
    events_array(&mut out, &page.events)?;
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
        (status = 410, description = "The event's body was removed: `pruned` by the account's retention policy, or `erased` (`details` give its `seq` and the `record_seq` of the Auditlog record that covers it); its inclusion proof is still served", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let Some(record) = state.store.get(caller.account.id, &id).await? else {
        return Err(match state.store.tombstone(caller.account.id, &id).await? {
            Some(tombstone) => ApiError::body_removed(&id, &tombstone),
            None => ApiError::not_found(format!("no event with id {id:?} in this account")),
        });
    };
    let mut out = b"{\"event\":".to_vec();
    write_event_json(&record, &mut out).map_err(|error| unreadable(record.seq, error))?;
    out.push(b'}');
    Ok(raw_json(StatusCode::OK, out))
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
        (status = 400, description = "An unknown parameter or a bad value (`details` names it), a malformed `q` (`bad_query`, with `details.position` and `details.expected`), or the matching events span more than 10,000 buckets (`too_many_buckets`: narrow `from`/`to` or choose a larger interval)", body = ErrorBody),
    )
)]
pub async fn histogram(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let (filter, rest) = parse_filter(&pairs, &caller.account.taxonomy, HISTOGRAM_PARAMS)?;
    let interval = parse_interval(&rest)?;
    let zone = parse_zone(&pairs)?;
    let (total, buckets) =
        zoned_histogram_data(&state, caller.account.id, &filter, interval, &zone).await?;
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
