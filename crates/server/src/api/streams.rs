//! `/api/v1/streams` (scope `admin`): the account's log streams — create,
//! list, read (with recent batches), change (pause, resume, replay, a new
//! URL, filters, secret or token) and delete, each audited as an
//! `Auditlog Log Stream` event; and Send test event. The console calls the
//! same functions (`create_stream`, `change_stream`, `delete_stream`,
//! `test_stream`). Delivery is `crate::streams::worker`.

use crate::api::body::{read_json_within, MAX_SMALL_BODY_BYTES};
use crate::api::path::{PathId, BAD_PATH_ID};
use crate::api::schema::{
    CreatedLogStream, LogStreamChange, LogStreamEnvelope, LogStreamList, LogStreamView,
    NewLogStream, StreamBatch, StreamTestResult,
};
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::exports::audit::AuditActor;
use crate::state::AppState;
use crate::streams::audit::{self, StreamAction};
use crate::streams::test_event::{self, TestOutcome};
use crate::streams::{address, client_cert, hec, secrets, syslog, StreamSettings, FORMATS, KINDS};
use auditlog_core::{EventFilter, Timestamp};
use auditlog_store::streams::MAX_STREAMS_PER_ACCOUNT;
use auditlog_store::{Account, LogStream, NewStream, Scope, StreamChange, StreamStatus};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Batches shown with a stream.
const RECENT_BATCHES: usize = 20;

fn invalid(field: &str, rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_stream", message)
        .with_details(json!({"field": field, "rule": rule}))
}

fn settings(state: &AppState) -> Result<&Arc<StreamSettings>, ApiError> {
    state.streams.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "streams_unavailable",
            "log streams are not set up on this server (no stream secret key)",
        )
    })
}

/// The body's fields, refusing unknown ones by name.
fn fields<'a>(body: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("body", "not_an_object", "the body must be a JSON object"))?;
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(
                key,
                "unknown_field",
                format!("{key} is not a field here; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(object)
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(
            field,
            "not_a_string",
            format!("{field} must be a string"),
        )),
    }
}

fn seq(object: &Map<String, Value>, field: &str) -> Result<Option<u64>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1 && *n <= i64::MAX as u64)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    field,
                    "not_a_seq",
                    format!("{field} must be a seq: a whole number of 1 or more"),
                )
            }),
    }
}

/// A checked destination URL for a stream of `kind`: its form, and every
/// address it resolves to now.
async fn check_url(settings: &StreamSettings, kind: &str, url: &str) -> Result<String, ApiError> {
    let destination = match kind {
        "syslog" => {
            syslog::parse_url(url)
                .map_err(|message| invalid("url", "invalid_url", message))?
                .destination
        }
        _ => {
            let destination = address::parse_url(url)
                .map_err(|message| invalid("url", "invalid_url", message))?;
            if kind == "splunk_hec" {
                hec::check_url(url)
                    .map_err(|message| invalid("url", "not_a_collector_url", message))?;
            }
            destination
        }
    };
    address::resolve(&destination, &settings.allow)
        .await
        .map_err(|message| invalid("url", "address_not_allowed", message))?;
    Ok(url.to_string())
}

/// Refuses `field` on a stream of `kind` that has no use for it.
fn not_for_kind(object: &Map<String, Value>, field: &str, kind: &str) -> Result<(), ApiError> {
    if object.get(field).is_some_and(|v| !v.is_null()) {
        let of = match field {
            "secret" => "webhook",
            _ => "splunk_hec",
        };
        return Err(invalid(
            field,
            "not_for_kind",
            format!("{field} is for {of} streams only, not {kind}"),
        ));
    }
    Ok(())
}

/// A HEC token, checked and sealed.
fn sealed_token(settings: &StreamSettings, token: &str) -> Result<Vec<u8>, ApiError> {
    hec::check_token(token).map_err(|message| invalid("token", "invalid_token", message))?;
    settings
        .secret_key
        .seal(token.as_bytes())
        .map_err(|e| ApiError::internal("sealing a stream token", e))
}

/// The HEC `index` and `sourcetype` of `object` put into `options`
/// (`null` or `""` removes one); refused on other kinds.
fn hec_options(
    object: &Map<String, Value>,
    kind: &str,
    options: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    for (field, check) in [
        (
            hec::INDEX,
            hec::check_index as fn(&str) -> Result<(), String>,
        ),
        (hec::SOURCETYPE, hec::check_sourcetype),
    ] {
        if kind != "splunk_hec" {
            not_for_kind(object, field, kind)?;
            continue;
        }
        if !object.contains_key(field) {
            continue;
        }
        match text(object, field)? {
            None | Some("") => {
                options.remove(field);
            }
            Some(value) => {
                let rule = if field == hec::INDEX {
                    "invalid_index"
                } else {
                    "invalid_sourcetype"
                };
                check(value).map_err(|message| invalid(field, rule, message))?;
                options.insert(field.to_string(), json!(value));
            }
        }
    }
    Ok(())
}

/// The client certificate and key of `object` (mutual TLS), checked: put
/// into `options`, the key sealed. `Ok(None)`: neither given;
/// `Ok(Some(None))`: `client_certificate: null`, removed.
fn client_cert(
    settings: &StreamSettings,
    object: &Map<String, Value>,
    options: &mut Map<String, Value>,
) -> Result<Option<Option<Vec<u8>>>, ApiError> {
    let certificate = text(object, "client_certificate")?;
    let key = text(object, "client_key")?;
    match (certificate, key) {
        (None, None) => {
            if object.contains_key("client_certificate") {
                options.remove(client_cert::OPTION);
                return Ok(Some(None));
            }
            Ok(None)
        }
        // The current certificate again (a form sends it back): unchanged.
        (Some(certificate), None)
            if options.get(client_cert::OPTION) == Some(&json!(certificate)) =>
        {
            Ok(None)
        }
        (Some(_), None) => Err(invalid(
            "client_key",
            "required",
            "client_key is required with client_certificate: the certificate's private key (PEM)",
        )),
        (None, Some(_)) => Err(invalid(
            "client_certificate",
            "required",
            "client_certificate is required with client_key: the certificate chain (PEM)",
        )),
        (Some(certificate), Some(key)) => {
            client_cert::check(settings, certificate, key.as_bytes())
                .map_err(|e| invalid(e.field, e.rule, e.message))?;
            let sealed = settings
                .secret_key
                .seal(key.as_bytes())
                .map_err(|e| ApiError::internal("sealing a stream's client key", e))?;
            options.insert(client_cert::OPTION.to_string(), json!(certificate));
            Ok(Some(Some(sealed)))
        }
    }
}

/// A client certificate is only presented over TLS: refused with a
/// `tcp://` or `http://` URL.
fn client_cert_needs_tls(options: &Map<String, Value>, url: &str) -> Result<(), ApiError> {
    let tls = url.starts_with("https://") || url.starts_with("tls://");
    if options.contains_key(client_cert::OPTION) && !tls {
        return Err(invalid(
            "client_certificate",
            "needs_tls",
            "a client certificate is presented over TLS only: the url must be https:// \
             (webhook, splunk_hec) or tls:// (syslog)",
        ));
    }
    Ok(())
}

fn check_filters(filters: Option<&Value>, account: &Account) -> Result<Value, ApiError> {
    let filters = filters.cloned().unwrap_or(Value::Null);
    let filter = EventFilter::from_json(&filters, &account.taxonomy)?;
    Ok(filter.to_json())
}

fn sealed(settings: &StreamSettings, secret: &str) -> Result<Vec<u8>, ApiError> {
    secrets::hmac_key(secret).map_err(|message| invalid("secret", "invalid_secret", message))?;
    settings
        .secret_key
        .seal(secret.as_bytes())
        .map_err(|e| ApiError::internal("sealing a stream secret", e))
}

pub fn view(stream: &LogStream, last_seq: u64) -> LogStreamView {
    let option = |name: &str| {
        stream
            .options
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    LogStreamView {
        id: stream.id,
        kind: stream.kind.clone(),
        format: stream.format.clone(),
        url: stream.url.clone(),
        filters: stream.filters.clone(),
        index: option(hec::INDEX),
        sourcetype: option(hec::SOURCETYPE),
        client_certificate: client_cert::certificate(stream).map(str::to_string),
        status: stream.status.as_str().to_string(),
        cursor: stream.cursor,
        lag: last_seq.saturating_sub(stream.cursor),
        pending: stream.pending.map(|(f, l)| vec![f, l]),
        attempts: stream.attempts,
        last_error: stream.last_error.clone(),
        failing_since: stream.failing_since.map(|t| t.to_rfc3339()),
        created_at: stream.created_at.to_rfc3339(),
        updated_at: stream.updated_at.to_rfc3339(),
    }
}

/// The stream `id` (as the path gave it) of `account`, or 404.
pub async fn find(state: &AppState, account: &Account, id: &str) -> Result<LogStream, ApiError> {
    let missing = || ApiError::not_found(format!("no log stream with id {id:?} in this account"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    state
        .store
        .stream_by_id(account.id, id)
        .await?
        .ok_or_else(missing)
}

/// Creates a stream; a webhook's secret is in the answer, this once.
#[utoipa::path(
    post,
    path = "/api/v1/streams",
    operation_id = "create_stream",
    tag = "streams",
    security(("bearer" = [])),
    request_body(content = NewLogStream, description = "At most 64 KiB"),
    responses(
        (status = 201, description = "Created; delivery starts within a second", body = CreatedLogStream),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 409, description = "The account already has 20 streams (`too_many_streams`)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (`details` names the field and the rule): an unknown kind or format, a URL of the wrong form for the kind (`http://` or `https://` for `webhook` and `splunk_hec`, a collector path for `splunk_hec`, `tcp://` or `tls://` for `syslog`) or on a loopback, private or link-local address the server does not allow, a bad secret or token, a bad `index` (`invalid_index`) or `sourcetype` (`invalid_sourcetype`), a `client_certificate` or `client_key` that is not PEM (`not_a_certificate`, `not_a_private_key`), a key that is not the certificate's (`key_does_not_match`), one without the other (`required`) or a client certificate with a URL that is not TLS (`needs_tls`), a field of another kind, a bad filter", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let (stream, secret) = create_stream(&state, &caller.account, &actor, &body).await?;
    let last_seq = state.store.last_seq(caller.account.id).await?;
    let answer = CreatedLogStream {
        stream: view(&stream, last_seq),
        secret,
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// Creates a stream from the fields of `body` (the API's JSON; the console
/// builds the same) and audits it: the stream, and a webhook's secret in
/// clear, to be shown this once.
pub async fn create_stream(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    body: &Value,
) -> Result<(LogStream, Option<String>), ApiError> {
    let settings = settings(state)?.clone();
    let object = fields(
        body,
        &[
            "kind",
            "url",
            "format",
            "filters",
            "secret",
            "token",
            "index",
            "sourcetype",
            "client_certificate",
            "client_key",
            "from_seq",
        ],
    )?;
    let kinds = KINDS.map(|k| format!("{k:?}")).join(", ");
    let kind = match text(object, "kind")? {
        Some(kind) => KINDS.into_iter().find(|k| *k == kind).ok_or_else(|| {
            invalid(
                "kind",
                "unknown_kind",
                format!("kind {kind:?} is not a kind of stream; use one of {kinds}"),
            )
        })?,
        None => {
            return Err(invalid(
                "kind",
                "required",
                format!("kind is required: one of {kinds}"),
            ))
        }
    };
    let format = match text(object, "format")? {
        None => "native",
        Some(format) => FORMATS.into_iter().find(|f| *f == format).ok_or_else(|| {
            invalid(
                "format",
                "unknown_format",
                format!("format {format:?} is not a format; use \"native\" or \"ocsf\""),
            )
        })?,
    };
    let url = text(object, "url")?.ok_or_else(|| invalid("url", "required", "url is required"))?;
    let url = check_url(&settings, kind, url).await?;
    let filters = check_filters(object.get("filters"), account)?;
    let mut options = Map::new();
    hec_options(object, kind, &mut options)?;
    let sealed_client_key = client_cert(&settings, object, &mut options)?.flatten();
    client_cert_needs_tls(&options, &url)?;
    let (secret, sealed_secret) = match kind {
        "webhook" => {
            not_for_kind(object, "token", kind)?;
            let secret = match text(object, "secret")? {
                Some(s) => s.to_string(),
                None => secrets::generate(),
            };
            let sealed_secret = sealed(&settings, &secret)?;
            (Some(secret), sealed_secret)
        }
        "splunk_hec" => {
            not_for_kind(object, "secret", kind)?;
            let token = text(object, "token")?.ok_or_else(|| {
                invalid(
                    "token",
                    "required",
                    "token is required for a splunk_hec stream: the HEC token",
                )
            })?;
            (None, sealed_token(&settings, token)?)
        }
        _ => {
            not_for_kind(object, "secret", kind)?;
            not_for_kind(object, "token", kind)?;
            let nothing = settings
                .secret_key
                .seal(b"")
                .map_err(|e| ApiError::internal("sealing a stream secret", e))?;
            (None, nothing)
        }
    };
    let last_seq = state.store.last_seq(account.id).await?;
    let cursor = match seq(object, "from_seq")? {
        Some(from) => from - 1,
        None => last_seq,
    };
    if state.store.streams(account.id).await?.len() >= MAX_STREAMS_PER_ACCOUNT {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_streams",
            format!(
                "an account has at most {MAX_STREAMS_PER_ACCOUNT} log streams; delete one first"
            ),
        ));
    }
    let stream = state
        .store
        .create_stream(NewStream {
            account_id: account.id,
            kind: kind.into(),
            format: format.into(),
            url,
            filters,
            sealed_secret,
            options: Value::Object(options),
            sealed_client_key,
            cursor,
            created_at: Timestamp::now(),
        })
        .await?;
    audit::record(
        state.store.as_ref(),
        account,
        actor,
        StreamAction::Create,
        &stream,
        audit::created(&stream),
        None,
    )
    .await?;
    Ok((stream, secret))
}

/// The account's streams, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/streams",
    operation_id = "list_streams",
    tag = "streams",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The streams (secrets are never shown)", body = LogStreamList),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, caller: ApiCaller) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let last_seq = state.store.last_seq(caller.account.id).await?;
    let streams = state.store.streams(caller.account.id).await?;
    Ok(axum::Json(LogStreamList {
        streams: streams.iter().map(|s| view(s, last_seq)).collect(),
    })
    .into_response())
}

/// One stream with its recent batches.
#[utoipa::path(
    get,
    path = "/api/v1/streams/{id}",
    operation_id = "get_stream",
    tag = "streams",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "The stream and its recent batches, newest first", body = LogStreamEnvelope),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No stream with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let stream = find(&state, &caller.account, &id).await?;
    envelope(&state, &caller.account, &stream).await
}

async fn envelope(
    state: &AppState,
    account: &Account,
    stream: &LogStream,
) -> Result<Response, ApiError> {
    let last_seq = state.store.last_seq(account.id).await?;
    let batches = state
        .store
        .stream_batches(account.id, stream.id, RECENT_BATCHES)
        .await?;
    Ok(axum::Json(LogStreamEnvelope {
        stream: view(stream, last_seq),
        batches: batches
            .into_iter()
            .map(|b| StreamBatch {
                first_seq: b.first_seq,
                last_seq: b.last_seq,
                events: b.events,
                attempts: b.attempts,
                status: b.status,
                response: b.response,
                at: b.at.to_rfc3339(),
            })
            .collect(),
    })
    .into_response())
}

/// Changes a stream: pause or resume, replay from a seq, a new URL,
/// filters or secret.
#[utoipa::path(
    patch,
    path = "/api/v1/streams/{id}",
    operation_id = "change_stream",
    tag = "streams",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The stream's id")),
    request_body(content = LogStreamChange, description = "At most 64 KiB"),
    responses(
        (status = 200, description = "The stream as changed", body = LogStreamEnvelope),
        (status = 400, description = "The body is not valid JSON, or the id in the path is not UTF-8", body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No stream with this id in the key's account", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "A field breaks a rule; `details` names it", body = ErrorBody),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let stream = find(&state, &caller.account, &id).await?;
    let body = read_json_within(&headers, body, MAX_SMALL_BODY_BYTES).await?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    let changed = change_stream(&state, &caller.account, &actor, &stream, &body).await?;
    envelope(&state, &caller.account, &changed).await
}

/// Applies the fields of `body` (the API's JSON; the console builds the
/// same) to `stream` and audits it: an `Update` for a new URL, filters,
/// secret, token or status, a `Replay` for `from_seq` / `from_received_at`.
pub async fn change_stream(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    stream: &LogStream,
    body: &Value,
) -> Result<LogStream, ApiError> {
    let settings = settings(state)?.clone();
    let object = fields(
        body,
        &[
            "url",
            "filters",
            "secret",
            "token",
            "index",
            "sourcetype",
            "client_certificate",
            "client_key",
            "status",
            "from_seq",
            "from_received_at",
        ],
    )?;
    let mut change = StreamChange::default();
    if let Some(url) = text(object, "url")? {
        change.url = Some(check_url(&settings, &stream.kind, url).await?);
    }
    let mut options = stream.options.as_object().cloned().unwrap_or_default();
    hec_options(object, &stream.kind, &mut options)?;
    change.sealed_client_key = client_cert(&settings, object, &mut options)?;
    client_cert_needs_tls(&options, change.url.as_deref().unwrap_or(&stream.url))?;
    if Value::Object(options.clone()) != stream.options {
        change.options = Some(Value::Object(options));
    }
    if object.contains_key("filters") {
        change.filters = Some(check_filters(object.get("filters"), account)?);
    }
    if stream.kind != "webhook" {
        not_for_kind(object, "secret", &stream.kind)?;
    }
    if stream.kind != "splunk_hec" {
        not_for_kind(object, "token", &stream.kind)?;
    }
    if let Some(secret) = text(object, "secret")? {
        change.sealed_secret = Some(sealed(&settings, secret)?);
    }
    if let Some(token) = text(object, "token")? {
        change.sealed_secret = Some(sealed_token(&settings, token)?);
    }
    change.status = match text(object, "status")? {
        None => None,
        Some("active") => Some(StreamStatus::Active),
        Some("paused") => Some(StreamStatus::Paused),
        Some(other) => {
            return Err(invalid(
                "status",
                "unknown_status",
                format!("status {other:?} cannot be set; use \"active\" (resume) or \"paused\""),
            ))
        }
    };
    let from_seq = seq(object, "from_seq")?;
    change.cursor = from_seq.map(|from| from - 1);
    let mut replay = from_seq.map(|from| json!({ "from_seq": from }));
    if let Some(since) = text(object, "from_received_at")? {
        if change.cursor.is_some() {
            return Err(invalid(
                "from_received_at",
                "conflicts",
                "give from_seq or from_received_at, not both",
            ));
        }
        let since = Timestamp::parse("from_received_at", since)
            .map_err(|e| invalid("from_received_at", "not_a_time", e.message))?;
        // From the lowest seq received at or after it; nothing to replay
        // when none was: the cursor goes to the end.
        change.cursor = Some(
            match state
                .store
                .first_seq_received_since(account.id, since)
                .await?
            {
                Some(first) => first - 1,
                None => state.store.last_seq(account.id).await?,
            },
        );
        replay = Some(json!({ "from_received_at": since.to_rfc3339() }));
    }
    let changed = state
        .store
        .change_stream(account.id, stream.id, change, Timestamp::now())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no log stream with id {:?} in this account",
                stream.id.to_string()
            ))
        })?;
    let updates = audit::updated(stream, &changed);
    if !updates.is_empty() {
        audit::record(
            state.store.as_ref(),
            account,
            actor,
            StreamAction::Update,
            &changed,
            updates,
            None,
        )
        .await?;
    }
    if let Some(replay) = replay {
        audit::record(
            state.store.as_ref(),
            account,
            actor,
            StreamAction::Replay,
            &changed,
            vec![audit::change(
                "cursor",
                json!(stream.cursor),
                json!(changed.cursor),
            )],
            Some(replay),
        )
        .await?;
    }
    Ok(changed)
}

/// Deletes a stream and its history.
#[utoipa::path(
    delete,
    path = "/api/v1/streams/{id}",
    operation_id = "delete_stream",
    tag = "streams",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The stream's id")),
    responses(
        (status = 204, description = "Deleted; delivery stops"),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No stream with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let stream = find(&state, &caller.account, &id).await?;
    let actor = AuditActor::api_key(caller.actor_id(), caller.source());
    delete_stream(&state, &caller.account, &actor, &stream).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes `stream` and its history, and audits it.
pub async fn delete_stream(
    state: &AppState,
    account: &Account,
    actor: &AuditActor,
    stream: &LogStream,
) -> Result<(), ApiError> {
    if state.store.delete_stream(account.id, stream.id).await? {
        audit::record(
            state.store.as_ref(),
            account,
            actor,
            StreamAction::Delete,
            stream,
            audit::deleted(stream),
            None,
        )
        .await?;
    }
    Ok(())
}

/// Sends one made-up event to the stream's destination now and says how it
/// answered (`crate::streams::test_event`).
#[utoipa::path(
    post,
    path = "/api/v1/streams/{id}/test",
    operation_id = "test_stream",
    tag = "streams",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "Sent; `delivered` says whether the destination accepted it (webhook, Splunk HEC: 2xx; syslog: one RFC 5424 message on a connection of its own, the receiver's TCP acknowledged every byte and the connection stayed open), `response` what it answered or why not. Not stored, no cursor moved, not retried", body = StreamTestResult),
        (status = 400, description = BAD_PATH_ID, body = ErrorBody),
        (status = 403, description = "The key lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "No stream with this id in the key's account", body = ErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    caller: ApiCaller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let stream = find(&state, &caller.account, &id).await?;
    let outcome = test_stream(&state, &caller.account, &stream, &caller.actor_id()).await?;
    Ok(axum::Json(StreamTestResult {
        delivered: outcome.delivered,
        response: outcome.response,
        webhook_id: outcome.webhook_id,
        event: outcome.event,
    })
    .into_response())
}

/// Sends the test event of `stream` as `actor_id`.
pub async fn test_stream(
    state: &AppState,
    account: &Account,
    stream: &LogStream,
    actor_id: &str,
) -> Result<TestOutcome, ApiError> {
    let settings = settings(state)?.clone();
    test_event::send(&settings, &account.name, stream, actor_id)
        .await
        .map_err(|message| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "stream_not_testable",
                message,
            )
            .with_details(json!({"field": "kind", "rule": "not_testable"}))
        })
}
