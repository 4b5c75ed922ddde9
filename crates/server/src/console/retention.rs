//! Settings > Retention and Settings > Personal data (admins).
//!
//! Retention: the policy form, what the next pruning will remove and what
//! holds it back (legal holds with the events each keeps, a log stream that
//! has not examined the events yet, exports that are queued or running),
//! the active holds, and the latest prunings with the progress of a running
//! one (the page refreshes itself while one runs). Personal data: the
//! `details` paths the account declares personal, editable.
//!
//! Every change goes through the functions the API and the CLI use
//! (`retention::policy::set_days`, `api::personal_paths::replace`), so the
//! console checks the same rules and audits each change with the console
//! user as actor. Every form carries the session's CSRF token.

use super::exports::actor;
use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::{Admin, SignedIn};
use crate::api::{erasures, personal_paths};
use crate::error::ApiError;
use crate::retention::{plan, policy};
use crate::state::AppState;
use askama::Template;
use auditlog_core::Timestamp;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};

pub const PATH: &str = "/settings/retention";
pub const PERSONAL_DATA_PATH: &str = "/settings/personal-data";

fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim())
        .unwrap_or("")
}

/// A legal hold as the page lists it.
pub struct HoldRow {
    pub id: i64,
    pub name: String,
    pub reason: String,
    /// Its filters and query as text (`every event` when it has none).
    pub matches: String,
    /// Events of the next pruning's range it keeps.
    pub keeps: u64,
}

/// A pruning as the page lists it.
pub struct PruningRow {
    pub id: i64,
    pub status: String,
    pub range: String,
    pub removed: u64,
    pub planned: u64,
    /// Removed of planned, in percent.
    pub percent: u64,
    pub next_seq: u64,
    pub planned_at: String,
    pub finished_at: String,
    pub held: String,
}

#[derive(Template)]
#[template(path = "retention.html")]
struct RetentionPage {
    frame: Option<Frame>,
    csrf: String,
    /// The form's value: the stored days, or what was sent.
    days: String,
    policy: String,
    min_days: u32,
    max_days: u32,
    notice: Option<&'static str>,
    error: Option<String>,
    /// The next pruning: a sentence saying what it removes.
    next: String,
    removes: u64,
    records: u64,
    holds: Vec<HoldRow>,
    /// The log stream that has not examined the events yet: (id, cursor).
    stream: Option<(i64, u64)>,
    exports: Vec<i64>,
    prunings: Vec<PruningRow>,
    /// A pruning is running: the page refreshes itself.
    running: bool,
    /// The hold form's values (what was sent, when it is shown again).
    hold_name: String,
    hold_reason: String,
    hold_q: String,
}

/// What the hold form sent: name, reason, query.
#[derive(Default)]
struct HoldForm {
    name: String,
    reason: String,
    q: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "saved" => "Saved. The pruner applies the policy at its next run.",
        "hold-created" => {
            "Legal hold created: neither pruning nor erasure removes the events it matches."
        }
        "hold-released" => "Legal hold released: pruning and erasure may now remove what it kept.",
        _ => return None,
    })
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a hold's filters and query match, as words.
fn matches_text(filters: &Value, q: Option<&str>) -> String {
    let mut parts: Vec<String> = filters
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| match value {
            Value::Array(items) => format!(
                "{name}: {}",
                items.iter().map(text).collect::<Vec<_>>().join(", ")
            ),
            other => format!("{name}: {}", text(other)),
        })
        .collect();
    if let Some(q) = q {
        parts.push(format!("q: {q}"));
    }
    if parts.is_empty() {
        "every event".into()
    } else {
        parts.join("; ")
    }
}

async fn page(
    state: &AppState,
    user: &SignedIn,
    sent: Option<&str>,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<RetentionPage, ConsoleError> {
    page_with_hold(state, user, sent, notice, error, HoldForm::default()).await
}

async fn page_with_hold(
    state: &AppState,
    user: &SignedIn,
    sent: Option<&str>,
    notice: Option<&'static str>,
    error: Option<String>,
    hold: HoldForm,
) -> Result<RetentionPage, ConsoleError> {
    let account = &user.grant.account;
    let view = policy::view(state.store.as_ref(), &state.retention, account).await?;
    let next = &view.next;
    let holds = state.store.holds(account.id, false).await?;
    let kept = |id: i64| {
        next["held"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["id"] == json!(id))
            .and_then(|h| h["count"].as_u64())
            .unwrap_or(0)
    };
    let holds = holds
        .iter()
        .map(|hold| HoldRow {
            id: hold.id,
            name: hold.name.clone(),
            reason: hold.reason.clone(),
            matches: matches_text(&hold.filters, hold.q.as_deref()),
            keeps: kept(hold.id),
        })
        .collect();
    let has_next = next["first_seq"].is_u64() && next["removes"].as_u64().unwrap_or(0) > 0;
    let next_text = match view.retention_days {
        None => "No policy: events are kept forever, nothing is pruned.".to_string(),
        Some(_) if has_next && next["partial"] == true => format!(
            "Seqs {} to at least {} (every event received before {}): the bodies of at least {} events are removed; their hashes, ids and proofs stay. This count stopped there to answer in time; the pruning goes further.",
            next["first_seq"], next["last_seq"], text(&next["cutoff"]), next["removes"]
        ),
        Some(_) if has_next => format!(
            "Seqs {} to {} (every event received before {}): the bodies of {} events are removed; their hashes, ids and proofs stay.",
            next["first_seq"], next["last_seq"], text(&next["cutoff"]), next["removes"]
        ),
        Some(_) => format!(
            "Nothing to remove now (cutoff {}).",
            text(&next["cutoff"])
        ),
    };
    let prunings: Vec<PruningRow> = view
        .prunings
        .iter()
        .map(|p| {
            let removed = p["removed"].as_u64().unwrap_or(0);
            let planned = p["planned"].as_u64().unwrap_or(0);
            PruningRow {
                id: p["id"].as_i64().unwrap_or(0),
                status: text(&p["status"]),
                range: format!("{} to {}", p["first_seq"], p["last_seq"]),
                removed,
                planned,
                percent: (removed * 100).checked_div(planned).unwrap_or(100).min(100),
                next_seq: p["next_seq"].as_u64().unwrap_or(0),
                planned_at: text(&p["planned_at"]),
                finished_at: text(&p["finished_at"]),
                held: p["held"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| format!("{} ({})", text(&h["name"]), h["count"]))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect();
    let running = prunings.iter().find(|p| p.status != "done");
    let next_text = match running {
        Some(p) => format!(
            "Pruning #{} is running (below); the next one is planned once it is done.",
            p.id
        ),
        None => next_text,
    };
    let running = running.is_some();
    // Only what keeps the pruning from going further than the cutoff would
    // (the same test as the Log Streams page's).
    let stream = match view.retention_days {
        Some(_) => {
            plan::stream_holding_back(state.store.as_ref(), account, Timestamp::now()).await?
        }
        None => None,
    };
    let exports = match view.retention_days {
        Some(_) => next["bounds"]["running_exports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect(),
        None => Vec::new(),
    };
    Ok(RetentionPage {
        frame: Some(user.frame("retention")),
        csrf: user.grant.csrf_token.clone(),
        days: sent.map(str::to_string).unwrap_or_else(|| {
            view.retention_days
                .map(|d| d.to_string())
                .unwrap_or_default()
        }),
        policy: match view.retention_days {
            Some(days) => format!("{days} days after receipt"),
            None => "forever (no policy)".into(),
        },
        min_days: view.min_days,
        max_days: view.max_days,
        notice,
        error,
        next: next_text,
        removes: next["removes"].as_u64().unwrap_or(0),
        records: next["records"].as_u64().unwrap_or(0),
        holds,
        stream,
        exports,
        prunings,
        running,
        hold_name: hold.name,
        hold_reason: hold.reason,
        hold_q: hold.q,
    })
}

pub async fn show(
    State(state): State<AppState>,
    Admin(user): Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let page = page(&state, &user, None, notice(query.done.as_deref()), None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// A form error the user can fix is shown on the form again.
fn fixable(e: &ApiError) -> bool {
    e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::BAD_REQUEST
}

pub async fn save(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(form_value(&pairs, "csrf"))?;
    let sent = form_value(&pairs, "retention_days");
    let days = if sent.is_empty() {
        Ok(None)
    } else {
        sent.parse::<u32>().map(Some).map_err(|_| {
            policy::invalid(
                "retention_days",
                "not_whole_days",
                format!(
                    "Retention must be whole days from {} to {}, or empty to keep events forever; {sent:?} is not.",
                    state.retention.min_days, state.retention.max_days
                ),
            )
        })
    };
    let saved = match days {
        Ok(days) => {
            policy::set_days(
                state.store.as_ref(),
                &state.retention,
                &user.grant.account,
                &actor(&user),
                days,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => Ok(Redirect::to(&format!("{PATH}?done=saved")).into_response()),
        Err(e) if fixable(&e) => {
            let page = page(&state, &user, Some(sent), None, Some(e.message)).await?;
            Ok(render(e.status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// Settings > Retention > Create legal hold: name, reason and a search
/// query (empty: the whole account), checked and audited as the API does
/// (`policy::create_hold`).
pub async fn create_hold(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(form_value(&pairs, "csrf"))?;
    let sent = HoldForm {
        name: form_value(&pairs, "name").to_string(),
        reason: form_value(&pairs, "reason").to_string(),
        q: form_value(&pairs, "q").to_string(),
    };
    let mut body = json!({"name": sent.name, "reason": sent.reason});
    if !sent.q.is_empty() {
        body["q"] = json!(sent.q);
    }
    let created = policy::create_hold(
        state.store.as_ref(),
        &user.grant.account,
        &actor(&user),
        &body,
    )
    .await;
    match created {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?done=hold-created")).into_response()),
        Err(e) if fixable(&e) || e.status == StatusCode::CONFLICT => {
            let message = hold_message(&e);
            let page = page_with_hold(&state, &user, None, None, Some(message), sent).await?;
            Ok(render(e.status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// A refused hold's message, naming the form's field.
fn hold_message(e: &ApiError) -> String {
    let field = e
        .details
        .as_ref()
        .and_then(|d| d["field"].as_str())
        .unwrap_or("");
    let label = match field {
        "name" => "Name",
        "reason" => "Reason",
        f if f.starts_with('q') || f.starts_with("filters") => "Query",
        _ => return format!("The legal hold was not created: {}", e.message),
    };
    format!("The legal hold was not created. {label}: {}", e.message)
}

/// Settings > Retention > Release: the hold named by the form's `id`
/// (`policy::release_hold`, audited).
pub async fn release_hold(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(form_value(&pairs, "csrf"))?;
    let sent = form_value(&pairs, "id");
    let released = match sent.parse::<i64>() {
        Ok(id) => {
            policy::release_hold(state.store.as_ref(), &user.grant.account, &actor(&user), id).await
        }
        Err(_) => Err(ApiError::not_found(format!(
            "{sent:?} is not the id of a legal hold"
        ))),
    };
    match released {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?done=hold-released")).into_response()),
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            let message = format!("Nothing was released: {}.", e.message);
            let page = page(&state, &user, None, None, Some(message)).await?;
            Ok(render(e.status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "personal_data.html")]
struct PersonalDataPage {
    frame: Option<Frame>,
    csrf: String,
    /// One declared path per line.
    paths: String,
    notice: Option<&'static str>,
    error: Option<String>,
    /// The erasure form's subject, when it is shown again after an error.
    subject: String,
    erasure_error: Option<String>,
    erasures: Vec<ErasureRow>,
    /// An erasure is planned or running: the page refreshes itself.
    running: bool,
}

/// An erasure request as the page lists it (never the subject's id: its
/// pseudonym).
pub struct ErasureRow {
    pub id: i64,
    pub status: String,
    pub pseudonym: String,
    pub events: u64,
    pub erased: u64,
    pub held: u64,
    /// Erased of the events, in percent.
    pub percent: u64,
    pub requested_at: String,
    pub requested_by: String,
    pub finished_at: String,
}

/// What the page shows besides the forms' own values.
async fn personal_data_page(
    state: &AppState,
    user: &SignedIn,
    paths: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
    subject: String,
    erasure_error: Option<String>,
) -> Result<PersonalDataPage, ConsoleError> {
    let paths = match paths {
        Some(paths) => paths,
        None => state
            .store
            .personal_paths(user.grant.account.id)
            .await?
            .iter()
            .map(|p| p.as_str().to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let erasures: Vec<ErasureRow> = state
        .store
        .erasures(user.grant.account.id, erasures::LISTED)
        .await?
        .iter()
        .map(|e| {
            let view = erasures::erasure_view(e);
            ErasureRow {
                id: view.id,
                status: view.status,
                pseudonym: view.subject,
                events: view.events,
                erased: view.erased,
                held: view.held,
                percent: (view.erased * 100)
                    .checked_div(view.events)
                    .unwrap_or(100)
                    .min(100),
                requested_at: view.requested_at,
                requested_by: view.requested_by,
                finished_at: view.finished_at.unwrap_or_default(),
            }
        })
        .collect();
    // A waiting erasure waits for a hold's release: no need to refresh.
    let running = erasures
        .iter()
        .any(|e| e.status != "done" && e.status != "waiting");
    Ok(PersonalDataPage {
        frame: Some(user.frame("personal-data")),
        csrf: user.grant.csrf_token.clone(),
        paths,
        notice,
        error,
        subject,
        erasure_error,
        erasures,
        running,
    })
}

pub async fn personal_data(
    State(state): State<AppState>,
    Admin(user): Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let notice = match query.done.as_deref() {
        Some("saved") => Some(
            "Saved. Events that arrive from now on keep these values apart as personal data.",
        ),
        Some("erasure") => Some(
            "Erasure requested: it runs in the background (progress below). One Auditlog Erasure record names the subject by its pseudonym.",
        ),
        _ => None,
    };
    let page = personal_data_page(&state, &user, None, notice, None, String::new(), None).await?;
    Ok(render(StatusCode::OK, &page))
}

pub async fn save_personal_data(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(form_value(&pairs, "csrf"))?;
    let sent = form_value(&pairs, "paths");
    let listed: Vec<&str> = sent
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let saved = match personal_paths::parse(&json!({ "paths": listed })) {
        Ok(paths) => {
            personal_paths::replace(&state, &user.grant.account, &actor(&user), paths).await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(Redirect::to(&format!("{PERSONAL_DATA_PATH}?done=saved")).into_response()),
        Err(e) if fixable(&e) => {
            let page = personal_data_page(
                &state,
                &user,
                Some(sent.to_string()),
                None,
                Some(e.message),
                String::new(),
                None,
            )
            .await?;
            Ok(render(e.status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// Settings > Personal data > Erase: the subject (an actor id) checked and
/// the erasure started as `POST /api/v1/erasures` does.
pub async fn start_erasure(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(form_value(&pairs, "csrf"))?;
    let sent = form_value(&pairs, "subject");
    let subject = (!sent.is_empty()).then(|| json!(sent));
    let started = match erasures::subject_of(subject.as_ref()) {
        Ok(subject) => {
            let by = actor(&user);
            erasures::start(
                &state,
                &user.grant.account,
                &subject,
                by.id.clone(),
                by.source.to_json(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match started {
        Ok(_) => Ok(Redirect::to(&format!("{PERSONAL_DATA_PATH}?done=erasure")).into_response()),
        Err(e) if fixable(&e) => {
            let message = format!("Subject: {}", e.message);
            let page = personal_data_page(
                &state,
                &user,
                None,
                None,
                None,
                sent.to_string(),
                Some(message),
            )
            .await?;
            Ok(render(e.status, &page))
        }
        Err(e) => Err(e.into()),
    }
}
