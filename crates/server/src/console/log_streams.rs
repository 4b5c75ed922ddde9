//! Settings > Log Streams (admins): the account's streams with their
//! status, lag and last error; a stream's page with its recent batches
//! (attempts and answers), **Send test event**, pause / resume, replay from
//! a date-time or a seq, edit and delete; and the create form per kind.
//!
//! Every change goes through the API's own functions
//! (`api::streams::create_stream`, …), so that the console checks exactly
//! what the API checks and every change is audited as an `Auditlog Log
//! Stream` event with the console user as actor. Every form carries the
//! session's CSRF token; every value is escaped by the templates.
//!
//! The create and edit forms are built from [`KINDS`]: each kind lists its
//! fields, named as the API's fields, so a new kind is one more entry.

use super::export_form::summarize;
use super::exports::actor;
use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::{Admin, SignedIn};
use crate::api::streams::{change_stream, create_stream, delete_stream, find, test_stream, view};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use auditlog_core::EventFilter;
use auditlog_store::LogStream;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Map, Value};

pub const PATH: &str = "/settings/log-streams";
pub const NEW_PATH: &str = "/settings/log-streams/new";

/// One field of a kind's form, named as the API's field.
#[derive(Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    /// The `<input type>`: `url`, `text`, `password` or `number`; or
    /// `textarea` (PEM, whose line breaks an `<input>` would drop).
    pub input: &'static str,
    /// Required when creating.
    pub required: bool,
    /// Write-only: never shown; left empty on edit, it stays as it is.
    pub secret: bool,
    pub hint: &'static str,
}

/// A kind of destination as the forms offer it.
#[derive(Debug)]
pub struct KindForm {
    pub kind: &'static str,
    pub label: &'static str,
    pub formats: &'static [&'static str],
    pub fields: &'static [FieldSpec],
}

/// The URL field every kind has, with the kind's own hint.
const fn url_field(hint: &'static str) -> FieldSpec {
    FieldSpec {
        name: "url",
        label: "URL",
        input: "text",
        required: true,
        secret: false,
        hint,
    }
}

/// The TLS client certificate (mutual TLS) every kind may present.
const CLIENT_CERTIFICATE: FieldSpec = FieldSpec {
    name: "client_certificate",
    label: "TLS client certificate (mutual TLS)",
    input: "textarea",
    required: false,
    secret: false,
    hint: "Optional, for a destination that requires one (https:// or tls:// only): the certificate chain in PEM, leaf first. Give its key below.",
};

/// The client certificate's key: write-only.
const CLIENT_KEY: FieldSpec = FieldSpec {
    name: "client_key",
    label: "TLS client key",
    input: "textarea",
    required: false,
    secret: true,
    hint: "The client certificate's private key in PEM; stored sealed, never shown again.",
};

/// The kinds the console can create; a new kind adds an entry.
pub const KINDS: &[KindForm] = &[
    KindForm {
        kind: "webhook",
        label: "Webhook (Standard Webhooks)",
        formats: &["native", "ocsf"],
        fields: &[
            url_field("http://… on a public address (the server's stream_allow_private setting may allow others). Each batch is a POST of a JSON array, signed."),
            FieldSpec {
                name: "secret",
                label: "Signing secret",
                input: "password",
                required: false,
                secret: true,
                hint: "whsec_ + base64 of 24 to 64 bytes. Leave empty to have one generated; it is shown once.",
            },
            CLIENT_CERTIFICATE,
            CLIENT_KEY,
        ],
    },
    KindForm {
        kind: "splunk_hec",
        label: "Splunk HTTP Event Collector",
        formats: &["native", "ocsf"],
        fields: &[
            url_field("http://host:8088/services/collector/event. With indexer acknowledgement on, a batch counts once acknowledged."),
            FieldSpec {
                name: "token",
                label: "HEC token",
                input: "password",
                required: true,
                secret: true,
                hint: "The collector's token; write-only, never shown again.",
            },
            FieldSpec {
                name: "index",
                label: "Index",
                input: "text",
                required: false,
                secret: false,
                hint: "Optional: the Splunk index of every event (lowercase letters, digits, _ and -). Empty: the token's default index.",
            },
            FieldSpec {
                name: "sourcetype",
                label: "Sourcetype",
                input: "text",
                required: false,
                secret: false,
                hint: "Optional: letters, digits and _ - . : /. Empty: auditlog (ocsf for the OCSF format).",
            },
            CLIENT_CERTIFICATE,
            CLIENT_KEY,
        ],
    },
    KindForm {
        kind: "syslog",
        label: "Syslog (RFC 5424 over TCP or TLS)",
        formats: &["native", "ocsf"],
        fields: &[
            url_field(
                "tcp://host:514 or tls://host:6514. After a reconnect the unconfirmed window is sent again: de-duplicate on account and seq.",
            ),
            CLIENT_CERTIFICATE,
            CLIENT_KEY,
        ],
    },
];

fn kind_form(kind: &str) -> Option<&'static KindForm> {
    KINDS.iter().find(|k| k.kind == kind)
}

fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim())
        .unwrap_or("")
}

fn form_values(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(n, v)| n == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn csrf(user: &SignedIn, pairs: &[(String, String)]) -> Result<(), ConsoleError> {
    user.check_csrf(form_value(pairs, "csrf"))
}

/// The API body that the form's kind fields and filters make; `creating`
/// includes `kind`, `format` and `from_seq`, and an empty secret is left out.
fn api_body(kind: &KindForm, pairs: &[(String, String)], creating: bool) -> Value {
    let mut body = Map::new();
    if creating {
        body.insert("kind".into(), json!(kind.kind));
        let format = form_value(pairs, "format");
        if !format.is_empty() {
            body.insert("format".into(), json!(format));
        }
        let from = form_value(pairs, "from_seq");
        if !from.is_empty() {
            // A number when it is one; else the text, which the API refuses naming the field.
            body.insert(
                "from_seq".into(),
                from.parse::<u64>().map(|n| json!(n)).unwrap_or(json!(from)),
            );
        }
    }
    for field in kind.fields {
        let value = form_value(pairs, field.name);
        // An empty certificate on edit keeps the current one (the API
        // removes it with `null`).
        if value.is_empty() && (field.secret || creating || field.name == "client_certificate") {
            continue;
        }
        let value = if field.input == "number" {
            value
                .parse::<u64>()
                .map(|n| json!(n))
                .unwrap_or(json!(value))
        } else {
            json!(value)
        };
        body.insert(field.name.into(), value);
    }
    let mut filters = Map::new();
    for name in ["event_type", "action"] {
        let values = form_values(pairs, name);
        if !values.is_empty() {
            filters.insert(name.into(), json!(values));
        }
    }
    body.insert("filters".into(), Value::Object(filters));
    Value::Object(body)
}

/// One field as the form shows it.
pub struct FieldView {
    pub spec: &'static FieldSpec,
    pub value: String,
}

#[derive(Template)]
#[template(path = "log_stream_form.html")]
struct FormPage {
    frame: Option<Frame>,
    csrf: String,
    /// Editing this stream; creating when `None`.
    editing: Option<i64>,
    kinds: &'static [KindForm],
    kind: &'static KindForm,
    /// The kind's formats, the chosen one marked.
    formats: Vec<(String, bool)>,
    fields: Vec<FieldView>,
    event_types: Vec<(String, bool)>,
    actions: Vec<(String, bool)>,
    from_seq: String,
    error: Option<String>,
}

impl FormPage {
    fn new(
        user: &SignedIn,
        kind: &'static KindForm,
        editing: Option<&LogStream>,
        pairs: Option<&[(String, String)]>,
        error: Option<String>,
    ) -> Self {
        let taxonomy = &user.grant.account.taxonomy;
        let (chosen_types, chosen_actions) = match (pairs, editing) {
            (Some(pairs), _) => (
                form_values(pairs, "event_type"),
                form_values(pairs, "action"),
            ),
            (None, Some(stream)) => match EventFilter::from_json(&stream.filters, taxonomy) {
                Ok(f) => (f.event_types, f.actions),
                Err(_) => (Vec::new(), Vec::new()),
            },
            (None, None) => (Vec::new(), Vec::new()),
        };
        let fields = kind
            .fields
            .iter()
            .map(|spec| FieldView {
                spec,
                value: if spec.secret {
                    String::new()
                } else if let Some(pairs) = pairs {
                    form_value(pairs, spec.name).to_string()
                } else if let Some(stream) = editing {
                    match spec.name {
                        "url" => stream.url.clone(),
                        name => stream
                            .options
                            .get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    }
                } else {
                    String::new()
                },
            })
            .collect();
        let mark = |names: Vec<&str>, chosen: &[String]| {
            names
                .into_iter()
                .map(|n| (n.to_string(), chosen.iter().any(|c| c == n)))
                .collect()
        };
        Self {
            frame: Some(user.frame("log-streams")),
            csrf: user.grant.csrf_token.clone(),
            editing: editing.map(|s| s.id),
            kinds: KINDS,
            kind,
            formats: {
                let chosen = pairs
                    .map(|p| form_value(p, "format").to_string())
                    .or_else(|| editing.map(|s| s.format.clone()))
                    .unwrap_or_default();
                kind.formats
                    .iter()
                    .map(|f| (f.to_string(), *f == chosen))
                    .collect()
            },
            fields,
            event_types: mark(taxonomy.type_names().collect(), &chosen_types),
            actions: mark(taxonomy.action_names(), &chosen_actions),
            from_seq: pairs
                .map(|p| form_value(p, "from_seq").to_string())
                .unwrap_or_default(),
            error,
        }
    }
}

/// A row of the list.
pub struct StreamRow {
    pub id: i64,
    pub kind: String,
    pub url: String,
    pub status: String,
    pub lag: u64,
    pub cursor: u64,
    pub last_error: String,
    pub href: String,
    /// It keeps the account's next pruning from going past its cursor.
    pub holds_retention: bool,
}

#[derive(Template)]
#[template(path = "log_streams.html")]
struct ListPage {
    frame: Option<Frame>,
    streams: Vec<StreamRow>,
    notice: Option<&'static str>,
}

#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
    kind: Option<String>,
}

/// The fixed sentences a redirect's `done` may ask for (never text from the URL).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "deleted" => "The log stream was deleted.",
        "paused" => "Paused: nothing is delivered until you resume; the stream keeps its place.",
        "resumed" => "Resumed: delivery continues from the cursor.",
        "replayed" => "Replay set: the matching events from there are delivered again.",
        "updated" => "Saved.",
        _ => return None,
    })
}

pub async fn list(
    State(state): State<AppState>,
    Admin(user): Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let account = &user.grant.account;
    let last_seq = state.store.last_seq(account.id).await?;
    let streams = state.store.streams(account.id).await?;
    let holding_back = crate::retention::plan::stream_holding_back(
        state.store.as_ref(),
        account,
        auditlog_core::Timestamp::now(),
    )
    .await?
    .map(|(id, _)| id);
    let rows = streams
        .iter()
        .map(|s| {
            let v = view(s, last_seq);
            StreamRow {
                id: v.id,
                kind: v.kind,
                url: v.url,
                status: v.status,
                lag: v.lag,
                cursor: v.cursor,
                last_error: v.last_error.unwrap_or_default(),
                href: format!("{PATH}/{}", v.id),
                holds_retention: holding_back == Some(v.id),
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ListPage {
            frame: Some(user.frame("log-streams")),
            streams: rows,
            notice: notice(query.done.as_deref()),
        },
    ))
}

/// The create form, for `?kind=` (default the first kind).
pub async fn new_form(
    Admin(user): Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let kind = match query.kind.as_deref() {
        None | Some("") => &KINDS[0],
        Some(kind) => kind_form(kind).ok_or_else(|| {
            ConsoleError::BadRequest(format!(
                "There is no kind of log stream called {kind:?}; choose one of the form."
            ))
        })?,
    };
    Ok(render(
        StatusCode::OK,
        &FormPage::new(&user, kind, None, None, None),
    ))
}

/// A form error the user can fix (422, 409) is shown on the form again.
fn fixable(e: &ApiError) -> bool {
    e.status == StatusCode::UNPROCESSABLE_ENTITY
        || e.status == StatusCode::CONFLICT
        || e.status == StatusCode::BAD_REQUEST
}

#[derive(Template)]
#[template(path = "log_stream_created.html")]
struct CreatedPage {
    frame: Option<Frame>,
    id: i64,
    href: String,
    /// A webhook's secret, shown this once.
    secret: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    csrf(&user, &pairs)?;
    let kind_name = form_value(&pairs, "kind");
    let kind = kind_form(kind_name).ok_or_else(|| {
        ConsoleError::BadRequest(format!(
            "There is no kind of log stream called {kind_name:?}; choose one of the form."
        ))
    })?;
    let body = api_body(kind, &pairs, true);
    match create_stream(&state, &user.grant.account, &actor(&user), &body).await {
        Ok((stream, secret)) => Ok(render(
            StatusCode::CREATED,
            &CreatedPage {
                frame: Some(user.frame("log-streams")),
                id: stream.id,
                href: format!("{PATH}/{}", stream.id),
                secret,
            },
        )),
        Err(e) if fixable(&e) => Ok(render(
            e.status,
            &FormPage::new(&user, kind, None, Some(&pairs), Some(e.message)),
        )),
        Err(e) => Err(e.into()),
    }
}

/// One batch of the history as shown.
pub struct BatchRow {
    pub seqs: String,
    pub events: u64,
    pub attempts: u32,
    pub status: String,
    pub response: String,
    pub at: String,
}

/// How the test event went, as shown.
pub struct TestView {
    pub delivered: bool,
    pub response: String,
    pub webhook_id: String,
}

#[derive(Template)]
#[template(path = "log_stream.html")]
struct StreamPage {
    frame: Option<Frame>,
    csrf: String,
    id: i64,
    kind: String,
    format: String,
    url: String,
    filters: Vec<(String, String)>,
    status: String,
    cursor: u64,
    lag: u64,
    pending: String,
    attempts: u32,
    last_error: String,
    failing_since: String,
    created_at: String,
    batches: Vec<BatchRow>,
    notice: Option<&'static str>,
    test: Option<TestView>,
    /// Refresh while something is in flight or behind.
    refresh: bool,
}

async fn stream_page(
    state: &AppState,
    user: &SignedIn,
    stream: &LogStream,
    notice: Option<&'static str>,
    test: Option<TestView>,
) -> Result<StreamPage, ConsoleError> {
    let account = &user.grant.account;
    let last_seq = state.store.last_seq(account.id).await?;
    let v = view(stream, last_seq);
    let batches = state
        .store
        .stream_batches(account.id, stream.id, 20)
        .await?;
    let filters = match EventFilter::from_json(&stream.filters, &account.taxonomy) {
        Ok(f) => summarize(&f),
        Err(_) => vec![("Filters".into(), stream.filters.to_string())],
    };
    let delivers = stream.status.delivers();
    Ok(StreamPage {
        frame: Some(user.frame("log-streams")),
        csrf: user.grant.csrf_token.clone(),
        id: v.id,
        kind: v.kind,
        format: v.format,
        url: v.url,
        filters,
        status: v.status,
        cursor: v.cursor,
        lag: v.lag,
        pending: v
            .pending
            .map(|p| format!("seqs {} to {}", p[0], p[1]))
            .unwrap_or_default(),
        attempts: v.attempts,
        last_error: v.last_error.unwrap_or_default(),
        failing_since: v.failing_since.unwrap_or_default(),
        created_at: v.created_at,
        batches: batches
            .into_iter()
            .map(|b| BatchRow {
                seqs: if b.first_seq == b.last_seq {
                    b.first_seq.to_string()
                } else {
                    format!("{}–{}", b.first_seq, b.last_seq)
                },
                events: b.events,
                attempts: b.attempts,
                status: b.status,
                response: b.response,
                at: b.at.to_rfc3339(),
            })
            .collect(),
        notice,
        test,
        refresh: delivers && (v.lag > 0 || stream.pending.is_some()),
    })
}

async fn stream_of(state: &AppState, user: &SignedIn, id: &str) -> Result<LogStream, ConsoleError> {
    find(state, &user.grant.account, id)
        .await
        .map_err(ConsoleError::from)
}

pub async fn show(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let stream = stream_of(&state, &user, &id).await?;
    let page = stream_page(&state, &user, &stream, notice(query.done.as_deref()), None).await?;
    Ok(render(StatusCode::OK, &page))
}

fn back_to(id: i64, done: &str) -> Response {
    Redirect::to(&format!("{PATH}/{id}?done={done}")).into_response()
}

/// Send test event: the stream's page with the destination's answer.
pub async fn test(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    csrf(&user, &pairs)?;
    let stream = stream_of(&state, &user, &id).await?;
    let outcome = test_stream(&state, &user.grant.account, &stream, &user.actor_id()).await?;
    let test = TestView {
        delivered: outcome.delivered,
        response: outcome.response,
        webhook_id: outcome.webhook_id,
    };
    let page = stream_page(&state, &user, &stream, None, Some(test)).await?;
    Ok(render(StatusCode::OK, &page))
}

/// Pause or resume (`status` = `paused` or `active`).
pub async fn status(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    csrf(&user, &pairs)?;
    let stream = stream_of(&state, &user, &id).await?;
    let status = form_value(&pairs, "status");
    let done = match status {
        "paused" => "paused",
        "active" => "resumed",
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "A stream can be paused or resumed, not set to {other:?}."
            )))
        }
    };
    change_stream(
        &state,
        &user.grant.account,
        &actor(&user),
        &stream,
        &json!({ "status": status }),
    )
    .await?;
    Ok(back_to(stream.id, done))
}

/// Replay from a seq (`from_seq`) or a time (`from_received_at`, UTC; the
/// page's script converts the viewer's local date-time).
pub async fn replay(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    csrf(&user, &pairs)?;
    let stream = stream_of(&state, &user, &id).await?;
    let from_seq = form_value(&pairs, "from_seq");
    let from_time = form_value(&pairs, "from_received_at");
    let body =
        match (from_seq.is_empty(), from_time.is_empty()) {
            (false, true) => json!({
                "from_seq": from_seq.parse::<u64>().map(|n| json!(n)).unwrap_or(json!(from_seq))
            }),
            (true, false) => json!({ "from_received_at": from_time }),
            _ => return Err(ConsoleError::BadRequest(
                "Give either a seq or a date and time to replay from, not both and not neither."
                    .into(),
            )),
        };
    change_stream(&state, &user.grant.account, &actor(&user), &stream, &body).await?;
    Ok(back_to(stream.id, "replayed"))
}

pub async fn edit_form(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let stream = stream_of(&state, &user, &id).await?;
    let kind = kind_form(&stream.kind).ok_or_else(|| {
        ConsoleError::BadRequest(format!(
            "Streams of kind {:?} cannot be edited in the console yet; use the API.",
            stream.kind
        ))
    })?;
    Ok(render(
        StatusCode::OK,
        &FormPage::new(&user, kind, Some(&stream), None, None),
    ))
}

pub async fn edit(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    csrf(&user, &pairs)?;
    let stream = stream_of(&state, &user, &id).await?;
    let kind = kind_form(&stream.kind).ok_or_else(|| {
        ConsoleError::BadRequest(format!(
            "Streams of kind {:?} cannot be edited in the console yet; use the API.",
            stream.kind
        ))
    })?;
    let body = api_body(kind, &pairs, false);
    match change_stream(&state, &user.grant.account, &actor(&user), &stream, &body).await {
        Ok(_) => Ok(back_to(stream.id, "updated")),
        Err(e) if fixable(&e) => Ok(render(
            e.status,
            &FormPage::new(&user, kind, Some(&stream), Some(&pairs), Some(e.message)),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    csrf(&user, &pairs)?;
    let stream = stream_of(&state, &user, &id).await?;
    delete_stream(&state, &user.grant.account, &actor(&user), &stream).await?;
    Ok(Redirect::to(&format!("{PATH}?done=deleted")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_api_body() {
        let form = pairs(&[
            ("csrf", "x"),
            ("kind", "webhook"),
            ("format", "native"),
            ("url", " http://siem.example.net/h "),
            ("secret", ""),
            ("event_type", "Test Case"),
            ("event_type", "Element"),
            ("action", ""),
            ("from_seq", "5"),
        ]);
        assert_eq!(
            api_body(&KINDS[0], &form, true),
            json!({
                "kind": "webhook", "format": "native", "from_seq": 5,
                "url": "http://siem.example.net/h",
                "filters": {"event_type": ["Test Case", "Element"]},
            })
        );
        // Editing: no kind or from_seq; an empty secret stays as it is,
        // an emptied URL is sent (and refused by the API naming it).
        let form = pairs(&[("url", ""), ("secret", "")]);
        assert_eq!(
            api_body(&KINDS[0], &form, false),
            json!({"url": "", "filters": {}})
        );
        let form = pairs(&[("from_seq", "five")]);
        assert_eq!(api_body(&KINDS[0], &form, true)["from_seq"], "five");
    }

    #[test]
    fn notices_are_fixed_sentences() {
        assert_eq!(notice(Some("<script>")), None);
        assert!(notice(Some("paused")).is_some());
        assert_eq!(notice(None), None);
    }
}
