//! Exports over the API: `POST/GET /api/v1/exports`,
//! `GET /api/v1/exports/{id}` and `GET /api/v1/exports/{id}/download`.
//! Creating and downloading are shared with the console through
//! [`start_export`] and [`download`], which take the acting user as a
//! parameter so that both are audited the same way.

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::api::schema::{
    CompressionName, Export, ExportEnvelope, ExportFile, ExportFormatName, ExportList,
    ExportRequest, ExportStatusName,
};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::{self, AuditActor, ExportAction};
use crate::exports::file::extension;
use crate::state::AppState;
use auditlog_core::{EventFilter, Timestamp};
use auditlog_store::{
    Account, Compression, ExportFormat, ExportJob, ExportStatus, NewExportJob, Scope,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// The export object of SPEC.md.
pub fn export_view(job: &ExportJob) -> Export {
    let time = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339);
    Export {
        id: job.id,
        status: match job.status {
            ExportStatus::Queued => ExportStatusName::Queued,
            ExportStatus::Running => ExportStatusName::Running,
            ExportStatus::Completed => ExportStatusName::Completed,
            ExportStatus::Failed => ExportStatusName::Failed,
            ExportStatus::Expired => ExportStatusName::Expired,
        },
        format: match job.format {
            ExportFormat::Csv => ExportFormatName::Csv,
            ExportFormat::Jsonl => ExportFormatName::Jsonl,
            ExportFormat::Bundle => ExportFormatName::Bundle,
        },
        compression: match job.compression {
            Compression::None => CompressionName::None,
            Compression::Gzip => CompressionName::Gzip,
        },
        filters: job.filters.clone(),
        requested_by: job.requested_by.clone(),
        created_at: job.created_at.to_rfc3339(),
        completed_at: time(job.completed_at),
        expires_at: time(job.expires_at),
        row_count: job.row_count,
        size_bytes: job.size_bytes,
        sha256: job.sha256.clone(),
        error: job.error.clone(),
    }
}

fn unprocessable(field: &str, rule: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_export", message)
        .with_details(json!({"field": field, "rule": rule}))
}

/// The request body: `{"format", "compression"?, "filters"?}`.
fn parse_request(
    body: &Value,
    account: &Account,
) -> Result<(ExportFormat, Compression, EventFilter), ApiError> {
    let object = body.as_object().ok_or_else(|| {
        unprocessable(
            "body",
            "not_an_object",
            "the body must be {\"format\": \"csv\" | \"jsonl\", \"filters\": {…}}".into(),
        )
    })?;
    for key in object.keys() {
        if !["format", "compression", "filters"].contains(&key.as_str()) {
            return Err(unprocessable(
                key,
                "unknown_field",
                format!("{key} is not a field of an export request; allowed: format, compression, filters"),
            ));
        }
    }
    let format = match object.get("format") {
        Some(Value::String(f)) => ExportFormat::parse(f).ok_or_else(|| {
            unprocessable(
                "format",
                "unknown_format",
                format!("format {f:?} is not supported; use \"csv\", \"jsonl\" or \"bundle\""),
            )
        })?,
        Some(_) => {
            return Err(unprocessable(
                "format",
                "not_a_string",
                "format must be \"csv\", \"jsonl\" or \"bundle\"".into(),
            ))
        }
        None => {
            return Err(unprocessable(
                "format",
                "required",
                "format is required: \"csv\", \"jsonl\" or \"bundle\"".into(),
            ))
        }
    };
    let compression = match object.get("compression") {
        None | Some(Value::Null) => Compression::None,
        Some(Value::String(c)) => Compression::parse(c).ok_or_else(|| {
            unprocessable(
                "compression",
                "unknown_compression",
                format!("compression {c:?} is not supported; use \"gzip\" or \"none\""),
            )
        })?,
        Some(_) => {
            return Err(unprocessable(
                "compression",
                "not_a_string",
                "compression must be \"gzip\" or \"none\"".into(),
            ))
        }
    };
    if format == ExportFormat::Bundle && compression == Compression::Gzip {
        return Err(unprocessable(
            "compression",
            "not_for_bundles",
            "a bundle is a tar file of already compact parts and is never compressed; leave compression out".into(),
        ));
    }
    let filters = object.get("filters").unwrap_or(&Value::Null);
    refuse_lists_for_single_filters(filters)?;
    let filter = EventFilter::from_json(filters, &account.taxonomy)?;
    Ok((format, compression, filter))
}

/// The filters that take one value, as in a query (where repeating them is refused).
const SINGLE_VALUE_FILTERS: &[&str] = &["app", "version", "target_id", "from", "to", "q", "tz"];

/// A single-value filter given as an array is refused, not read loosely
/// (the filter reader would take the last of several times, or nothing from
/// an empty array), so that a request means what it says.
fn refuse_lists_for_single_filters(filters: &Value) -> Result<(), ApiError> {
    let Value::Object(filters) = filters else {
        return Ok(());
    };
    for name in SINGLE_VALUE_FILTERS {
        if let Some(value) = filters.get(*name) {
            if !(value.is_string() || value.is_null()) {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("filters.{name} takes one value: a string"),
                )
                .with_details(
                    json!({"field": format!("filters.{name}"), "rule": "not_a_string"}),
                ));
            }
        }
    }
    Ok(())
}

/// Queues an export of `account`'s events matching `filter` as they are
/// now, audits it as `actor`'s, and wakes the worker.
pub async fn start_export(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    format: ExportFormat,
    compression: Compression,
    filter: &EventFilter,
) -> Result<ExportJob, ApiError> {
    let seq_bound = state.store.last_seq(account.id).await?;
    let job = state
        .store
        .create_export(NewExportJob {
            account_id: account.id,
            requested_by: actor.id.clone(),
            format,
            compression,
            filters: filter.to_json(),
            seq_bound,
            created_at: Timestamp::now(),
        })
        .await?;
    audit::record(
        state.store.as_ref(),
        account,
        actor,
        ExportAction::Export,
        &job,
    )
    .await?;
    state.exports.wakeup.notify_one();
    Ok(job)
}

/// Queues an export of the events matching the filters as they are now.
#[utoipa::path(
    post,
    path = "/api/v1/exports",
    operation_id = "create_export",
    tag = "exports",
    security(("bearer" = [])),
    request_body(content = ExportRequest),
    responses(
        (status = 202, description = "Queued; it runs in the background (poll `GET /api/v1/exports/{id}`)", body = ExportEnvelope),
        (status = 400, description = "The body is not valid JSON, or a filter value is bad (`details` names it); a malformed `filters.q` is `bad_query` with `details.position` and `details.expected`", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "The request breaks a rule (unknown field, format, compression); `details` names it", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let (format, compression, filter) = parse_request(&body, &caller.account)?;
    let job = start_export(
        &state,
        &caller.account,
        &AuditActor::api_key(caller.actor_id(), caller.source()),
        format,
        compression,
        &filter,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ExportEnvelope {
            export: export_view(&job),
        }),
    )
        .into_response())
}

/// The account's exports, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/exports",
    operation_id = "list_exports",
    tag = "exports",
    security(("bearer" = [])),
    responses((status = 200, description = "The exports", body = ExportList))
)]
pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let jobs = state.store.exports(caller.account.id).await?;
    let exports = jobs.iter().map(export_view).collect();
    Ok(axum::Json(ExportList { exports }).into_response())
}

/// The account's export `id`, or 404 (also for another account's export,
/// so that nothing reveals that it exists).
pub async fn find(state: &AppState, account: &Account, id: &str) -> Result<ExportJob, ApiError> {
    let missing = || ApiError::not_found(format!("no export {id:?} in this account"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    state
        .store
        .export_by_id(account.id, id)
        .await?
        .ok_or_else(missing)
}

/// One export of the key's account.
#[utoipa::path(
    get,
    path = "/api/v1/exports/{id}",
    operation_id = "get_export",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The export", body = ExportEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 404, description = "No export with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let job = find(&state, &caller.account, &id).await?;
    Ok(axum::Json(ExportEnvelope {
        export: export_view(&job),
    })
    .into_response())
}

/// The file of a completed export, streamed; the download is audited.
#[utoipa::path(
    get,
    path = "/api/v1/exports/{id}/download",
    operation_id = "download_export",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The file, as `format` and `compression` say",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"auditlog-<account>-export-<id>.<ext>\"`")),
            content(
                (ExportFile = "text/csv"),
                (ExportFile = "application/x-ndjson"),
                (ExportFile = "application/gzip"),
                (ExportFile = "application/x-tar"),
            )
        ),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 404, description = "No export with this id in the key's account", body = ErrorBody),
        (status = 409, description = "The export is not completed (yet, or it failed)", body = ErrorBody),
        (status = 410, description = "The export has expired and its file was deleted", body = ErrorBody),
    )
)]
pub async fn download_route(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let job = find(&state, &caller.account, &id).await?;
    download(
        &state,
        &caller.account,
        &AuditActor::api_key(caller.actor_id(), caller.source()),
        &job,
    )
    .await
}

fn gone(job: &ExportJob) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "export_expired",
        format!(
            "export {} has expired and its file was deleted; create a new export",
            job.id
        ),
    )
}

/// The file of a completed export, streamed; 409 while it is not ready,
/// 410 once expired. The download is audited before the first byte.
pub async fn download(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    job: &ExportJob,
) -> Result<Response, ApiError> {
    let expired = job.status == ExportStatus::Expired
        || (job.status == ExportStatus::Completed
            && job.expires_at.is_some_and(|t| t <= Timestamp::now()));
    if expired {
        return Err(gone(job));
    }
    let (ExportStatus::Completed, Some(name)) = (job.status, &job.file_name) else {
        let hint = match job.status {
            ExportStatus::Failed => format!(
                "it failed ({}); create a new export",
                job.error.as_deref().unwrap_or("no reason recorded")
            ),
            _ => "poll GET /api/v1/exports/{id} until its status is \"completed\"".to_string(),
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_not_ready",
            format!(
                "export {} is {}, not completed: {hint}",
                job.id,
                job.status.as_str()
            ),
        ));
    };
    let path = state.exports.settings.dir.join(name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone(job)),
        Err(e) => {
            return Err(ApiError::internal(
                "opening an export file",
                format!("{}: {e}", path.display()),
            ))
        }
    };
    audit::record(
        state.store.as_ref(),
        account,
        actor,
        ExportAction::Download,
        job,
    )
    .await?;
    let content_type = match (job.compression, job.format) {
        (Compression::Gzip, _) => "application/gzip",
        (Compression::None, ExportFormat::Csv) => "text/csv; charset=utf-8",
        (Compression::None, ExportFormat::Jsonl) => "application/x-ndjson",
        (Compression::None, ExportFormat::Bundle) => "application/x-tar",
    };
    let download_name = format!(
        "auditlog-{}-export-{}.{}",
        account.name,
        job.id,
        extension(job.format, job.compression)
    );
    let mut response = Response::new(Body::from_stream(file_chunks(file)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{download_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(size) = job.size_bytes {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    Ok(response)
}

/// The file as a stream of 64 KiB chunks, so that a download of any size
/// needs a fixed amount of memory.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: 1,
            name: "acme".into(),
            taxonomy: Default::default(),
        }
    }

    /// Regression: `{"from": ["2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"]}`
    /// was read as the last time, and `{"app": []}` as no filter, although
    /// the description has a string there.
    #[test]
    fn single_value_filters_refuse_arrays() {
        for filters in [
            json!({"from": ["2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"]}),
            json!({"app": []}),
            json!({"target_id": ["TC-1"]}),
            json!({"version": 2}),
        ] {
            let body = json!({"format": "csv", "filters": filters});
            let error = parse_request(&body, &account()).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error.details.unwrap()["rule"], "not_a_string");
        }
        let body =
            json!({"format": "csv", "filters": {"app": "Web", "to": null, "user": ["u-1", "u-2"]}});
        let (_, _, filter) = parse_request(&body, &account()).unwrap();
        assert_eq!(filter.app.as_deref(), Some("Web"));
        assert_eq!(filter.users, ["u-1", "u-2"]);
    }
}
