//! The Live switch of the Audit Logs page: `GET /settings/audit-logs/live`
//! streams the page's new rows as Server-Sent Events (the same streams as
//! the API's live tail, `crate::live`), for the signed-in administrator's
//! account and the page's filters. Each message's `data` is
//! `{"seq": N, "html": "<tr>…</tr>"}`: the row rendered by the page's own
//! template (every value HTML-escaped there), so that the page script only
//! inserts it, and the row reads exactly like the ones around it.

use super::audit_logs::{history_href, parse_request, split_request, user_href};
use super::page::ConsoleError;
use super::session::Viewer;
use super::view::Row;
use crate::live::{self, Render};
use crate::state::AppState;
use askama::Template;
use auditlog_core::ErrorChain;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

/// One table row, as the page renders it.
#[derive(Template)]
#[template(path = "audit_log_row.html")]
struct LiveRow {
    r: Row,
}

impl LiveRow {
    fn history_href(&self, target_id: &str) -> String {
        history_href(target_id)
    }

    fn user_href(&self, actor_id: &str) -> String {
        user_href(actor_id)
    }
}

pub async fn stream(
    State(state): State<AppState>,
    Viewer(user): Viewer,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let account = user.grant.account.id;
    let request = split_request(pairs);
    let (filter, _cursor) = parse_request(&request, &user.grant.account.taxonomy)?;
    let after = live::start_position(&headers, request.after_seq.as_deref())?;
    let render: Render = Arc::new(|record| {
        let row = Row::from_record(record).map_err(|e| ErrorChain(&e).to_string())?;
        let seq = row.seq;
        let html = LiveRow { r: row }
            .render()
            .map_err(|e| format!("rendering a row: {e}"))?;
        serde_json::to_vec(&serde_json::json!({"seq": seq, "html": html}))
            .map_err(|e| e.to_string())
    });
    Ok(live::respond(
        &state.live,
        state.store.clone(),
        account,
        filter,
        after,
        render,
    )
    .await?)
}
