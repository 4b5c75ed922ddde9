//! Exports from the console: the confirmation (a `<dialog>` on the Audit
//! Logs page, or this module's page without script), creating the export
//! with the page's filters, the Exports page, and Download. Creating and
//! downloading go through the API's own functions, so that both are audited
//! as `Audit Log` `Export`/`Download` events with the console user as actor.

use super::audit_logs;
use super::export_form::{summarize, ExportForm};
use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::{SignedIn, Viewer};
use super::url::with_query;
use crate::api::exports::{download, find, start_export};
use crate::exports::audit::AuditActor;
use crate::query_params::{filter_pairs, parse_filter};
use crate::state::AppState;
use askama::Template;
use auditlog_core::leaf_v2::Source;
use auditlog_core::{EventFilter, Timestamp};
use auditlog_store::{Compression, ExportFormat, ExportJob, ExportStatus};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

pub const PATH: &str = "/settings/exports";

/// The acting console user as the actor of `Audit Log` events.
pub fn actor(user: &SignedIn) -> AuditActor {
    AuditActor {
        id: user.actor_id(),
        name: None,
        email: Some(user.grant.user.email.clone()),
        source: Source::Console {
            user: user.grant.user.id.to_string(),
        },
    }
}

#[derive(Template)]
#[template(path = "export_confirm.html")]
struct ConfirmPage {
    frame: Option<Frame>,
    export: ExportForm,
    back_href: String,
}

/// The confirmation without script (the page's `<dialog>` holds the same form).
pub async fn confirm(
    Viewer(user): Viewer,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let filter = parse_page_filter(&user, &pairs)?;
    Ok(render(
        StatusCode::OK,
        &ConfirmPage {
            frame: Some(user.frame("audit-logs")),
            export: ExportForm::new(&user, &filter),
            back_href: with_query(audit_logs::PATH, &filter_pairs(&filter)),
        },
    ))
}

fn parse_page_filter(
    user: &SignedIn,
    pairs: &[(String, String)],
) -> Result<EventFilter, ConsoleError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    parse_filter(&pairs, &user.grant.account.taxonomy, &[])
        .map(|(filter, _)| filter)
        .map_err(|e| ConsoleError::BadRequest(e.message))
}

/// Creates the export, then returns to the page it was started from with
/// the "Export started" message.
pub async fn create(
    State(state): State<AppState>,
    Viewer(user): Viewer,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let csrf = pairs
        .iter()
        .find(|(n, _)| n == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    user.check_csrf(csrf)?;
    let format = pairs
        .iter()
        .find(|(n, _)| n == "format")
        .and_then(|(_, v)| ExportFormat::parse(v))
        .ok_or_else(|| {
            ConsoleError::BadRequest("Choose CSV or JSON Lines as the export format.".into())
        })?;
    let filter_params: Vec<(String, String)> = pairs
        .iter()
        .filter(|(n, _)| n != "csrf" && n != "format")
        .cloned()
        .collect();
    let filter = parse_page_filter(&user, &filter_params)?;
    let account = &user.grant.account;
    start_export(
        &state,
        account,
        &actor(&user),
        format,
        Compression::None,
        &filter,
    )
    .await
    .map_err(ConsoleError::from)?;
    let mut back = filter_pairs(&filter);
    back.push(("export".into(), "started".into()));
    Ok(Redirect::to(&with_query(audit_logs::PATH, &back)).into_response())
}

/// One row of the Exports page.
pub struct ExportRow {
    pub id: i64,
    pub status: &'static str,
    pub format: &'static str,
    pub filters: Vec<(String, String)>,
    pub rows: String,
    pub size: String,
    pub requested_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub error: String,
    pub download_href: Option<String>,
}

#[derive(Template)]
#[template(path = "exports.html")]
struct ExportsPage {
    frame: Option<Frame>,
    exports: Vec<ExportRow>,
    /// Refresh while an export is still being written.
    pending: bool,
}

/// 1536 → "1.5 KiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn row(job: &ExportJob, user: &SignedIn) -> ExportRow {
    let taxonomy = &user.grant.account.taxonomy;
    let filters = match EventFilter::from_json(&job.filters, taxonomy) {
        Ok(f) => summarize(&f),
        Err(_) => vec![("Filters".into(), job.filters.to_string())],
    };
    let expired = job.status == ExportStatus::Expired
        || job.expires_at.is_some_and(|t| t <= Timestamp::now());
    let status = if expired {
        ExportStatus::Expired
    } else {
        job.status
    };
    ExportRow {
        id: job.id,
        status: status.as_str(),
        format: job.format.as_str(),
        filters,
        rows: job.row_count.map(|n| n.to_string()).unwrap_or_default(),
        size: job.size_bytes.map(human_size).unwrap_or_default(),
        requested_by: if job.requested_by == user.actor_id() {
            format!("{} (you)", user.grant.user.email)
        } else {
            job.requested_by.clone()
        },
        created_at: job.created_at.to_rfc3339(),
        expires_at: job
            .expires_at
            .map(Timestamp::to_rfc3339)
            .unwrap_or_default(),
        error: job.error.clone().unwrap_or_default(),
        download_href: (status == ExportStatus::Completed)
            .then(|| format!("{PATH}/{}/download", job.id)),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Viewer(user): Viewer,
) -> Result<Response, ConsoleError> {
    let jobs = state.store.exports(user.grant.account.id).await?;
    let exports: Vec<ExportRow> = jobs.iter().map(|j| row(j, &user)).collect();
    let pending = exports
        .iter()
        .any(|e| e.status == "queued" || e.status == "running");
    Ok(render(
        StatusCode::OK,
        &ExportsPage {
            frame: Some(user.frame("exports")),
            exports,
            pending,
        },
    ))
}

/// The file, streamed, audited as a `Download` by the console user.
pub async fn download_file(
    State(state): State<AppState>,
    Viewer(user): Viewer,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let account = &user.grant.account;
    let job = find(&state, account, &id)
        .await
        .map_err(ConsoleError::from)?;
    download(&state, account, &actor(&user), &job)
        .await
        .map_err(ConsoleError::from)
}
