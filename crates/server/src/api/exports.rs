//! Exports over the API: `POST/GET /api/v1/exports`,
//! `GET /api/v1/exports/{id}` and `GET /api/v1/exports/{id}/download`.
//! Creating and downloading are shared with the console through
//! [`start_export`] and [`download`], which take the acting user as a
//! parameter so that both are audited the same way.

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::exports::audit::{self, AuditActor, ExportAction};
use crate::exports::file::extension;
use crate::state::AppState;
use auditlog_core::{EventFilter, Timestamp};
use auditlog_store::{
    Account, Compression, ExportFormat, ExportJob, ExportStatus, NewExportJob, Scope,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// The export object of SPEC.md.
pub fn export_json(job: &ExportJob) -> Value {
    let time = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339);
    json!({
        "id": job.id,
        "status": job.status.as_str(),
        "format": job.format.as_str(),
        "compression": job.compression.as_str(),
        "filters": job.filters,
        "requested_by": job.requested_by,
        "created_at": job.created_at.to_rfc3339(),
        "completed_at": time(job.completed_at),
        "expires_at": time(job.expires_at),
        "row_count": job.row_count,
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "error": job.error,
    })
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
    let filter = EventFilter::from_json(
        object.get("filters").unwrap_or(&Value::Null),
        &account.taxonomy,
    )?;
    Ok((format, compression, filter))
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
        &AuditActor::api_key(&caller),
        format,
        compression,
        &filter,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"export": export_json(&job)})),
    )
        .into_response())
}

pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let jobs = state.store.exports(caller.account.id).await?;
    let exports: Vec<Value> = jobs.iter().map(export_json).collect();
    Ok(axum::Json(json!({ "exports": exports })).into_response())
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

pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let job = find(&state, &caller.account, &id).await?;
    Ok(axum::Json(json!({"export": export_json(&job)})).into_response())
}

pub async fn download_route(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let job = find(&state, &caller.account, &id).await?;
    download(&state, &caller.account, &AuditActor::api_key(&caller), &job).await
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
