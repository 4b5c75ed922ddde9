//! `GET /api/v1/events/stream`: the live tail of the key's account, as
//! Server-Sent Events (the streaming itself is `crate::live`).

use crate::api::events::write_event_json;
use crate::api::schema::{EventStream, FilterParams};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::live::{self, Render};
use crate::query_params::{parse_filter, single};
use crate::state::AppState;
use auditlog_core::ErrorChain;
use auditlog_store::Scope;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

/// The parameter of the stream besides the filters.
pub const STREAM_PARAMS: &[&str] = &["after_seq"];

/// New events as they are stored, oldest first, for as long as the client
/// stays connected.
#[utoipa::path(
    get,
    path = "/api/v1/events/stream",
    operation_id = "stream_events",
    tag = "events",
    security(("bearer" = [])),
    params(
        FilterParams,
        ("after_seq" = Option<u64>, Query, minimum = 0, description = "Start after this seq. Without it and without `Last-Event-ID`, the stream starts with the next event stored."),
        ("Last-Event-ID" = Option<u64>, Header, description = "The `id` of the last message received, as an `EventSource` sends it when it reconnects: the stream resumes right after it, with no gap and no repeat. Wins over `after_seq`."),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: one message per matching event, in seq order, `id: <seq>` and `data: <the event as the API returns it>`; a `: keep-alive` comment at least every 15 s. The stream ends only when the client or the server (shutting down) closes it.",
            content((EventStream = "text/event-stream"))),
        (status = 400, description = "An unknown parameter, a bad filter value, or an `after_seq` / `Last-Event-ID` that is not a seq (`details` names it); a malformed `q` is `bad_query` with `details.position` and `details.expected`", body = ErrorBody),
        (status = 429, description = "This API key sent too many requests, or the account already has 32 live streams open on this server (`too_many_streams`); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before the next request"))),
        (status = 503, description = "This server already serves its maximum of live streams (`too_many_streams`, setting `max_live_streams`), or the storage is unavailable; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let (filter, rest) = parse_filter(&pairs, &caller.account.taxonomy, STREAM_PARAMS)?;
    let after = live::start_position(&headers, single(&rest, "after_seq")?)?;
    let render: Render = Arc::new(|record| {
        let mut out = Vec::with_capacity(record.leaf_bytes.len() + 200);
        write_event_json(record, &mut out).map_err(|e| ErrorChain(&e).to_string())?;
        Ok(out)
    });
    live::respond(
        &state.live,
        state.store.clone(),
        caller.account.id,
        filter,
        after,
        render,
    )
    .await
}
