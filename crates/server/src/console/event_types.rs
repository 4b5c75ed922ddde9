//! Settings > Event Types (admins): the account's event types and their
//! actions with their status; forms to add a type (with its actions), add
//! an action, and retire a type or an action. Every change goes through
//! `crate::event_types::edit`, as the API's does, so it is checked the same
//! way, audited as an `Auditlog Account` event with the console user as
//! actor, and seen at once by this server. Every form carries the session's
//! CSRF token; every value is escaped by the template.

use super::exports::actor;
use super::form::ConsoleForm;
use super::page::{render, ConsoleError, Frame};
use super::session::{Admin, SignedIn};
use crate::event_types::{self, refusal_status, status, EditError};
use crate::state::AppState;
use askama::Template;
use auditlog_core::taxonomy::{is_reserved, TaxonomyEdit};
use auditlog_core::Taxonomy;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/settings/event-types";
pub const ADD_ACTION_PATH: &str = "/settings/event-types/actions";
pub const RETIRE_PATH: &str = "/settings/event-types/retire";
pub const RETIRE_ACTION_PATH: &str = "/settings/event-types/retire-action";

struct ActionRow {
    name: String,
    status: &'static str,
}

struct TypeRow {
    name: String,
    status: &'static str,
    /// Auditlog's own (`Audit Log` in older taxonomies): shown, not editable.
    reserved: bool,
    actions: Vec<ActionRow>,
}

#[derive(Template)]
#[template(path = "event_types.html")]
struct EventTypesPage {
    frame: Option<Frame>,
    csrf: String,
    types: Vec<TypeRow>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// The add-type form's values after a refusal, to fix rather than retype.
    name: String,
    actions: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// The fixed sentences a redirect's `done` may ask for (never text from the URL).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "added" => "Event type added: events of it are accepted now.",
        "action-added" => "Action added: events with it are accepted now.",
        "retired" => {
            "Retired: new events of it are refused; stored ones stay valid and filterable."
        }
        _ => return None,
    })
}

fn rows(taxonomy: &Taxonomy) -> Vec<TypeRow> {
    taxonomy
        .types
        .iter()
        .map(|rule| TypeRow {
            name: rule.name.clone(),
            status: status(rule.retired),
            reserved: is_reserved(&rule.name),
            actions: rule
                .actions
                .iter()
                .map(|a| ActionRow {
                    name: a.clone(),
                    status: status(rule.is_retired_action(a)),
                })
                .collect(),
        })
        .collect()
}

fn page(
    user: &SignedIn,
    taxonomy: &Taxonomy,
    status: StatusCode,
    done: Option<&str>,
    error: Option<String>,
    name: &str,
    actions: &str,
) -> Response {
    render(
        status,
        &EventTypesPage {
            frame: Some(user.frame("event-types")),
            csrf: user.grant.csrf_token.clone(),
            types: rows(taxonomy),
            notice: notice(done),
            error,
            name: name.into(),
            actions: actions.into(),
        },
    )
}

pub async fn list(
    Admin(user): Admin,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let taxonomy = user.grant.account.taxonomy.clone();
    Ok(page(
        &user,
        &taxonomy,
        StatusCode::OK,
        query.done.as_deref(),
        None,
        "",
        "",
    ))
}

#[derive(Deserialize)]
pub struct TypeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// Comma-separated.
    #[serde(default)]
    actions: String,
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub struct RetireForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    action: String,
}

/// Applies `edit` as `user`; a refusal is the page again with the reason.
async fn apply(
    state: &AppState,
    user: &SignedIn,
    edit: TaxonomyEdit,
    done: &str,
    typed: (&str, &str),
) -> Result<Response, ConsoleError> {
    let account = &user.grant.account;
    match event_types::edit(
        state.store.as_ref(),
        &state.api_keys,
        account,
        &actor(user),
        &edit,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?done={done}")).into_response()),
        Err(EditError::Refused(error)) => {
            let status = StatusCode::from_u16(refusal_status(&error))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let fresh = state
                .store
                .account_by_id(account.id)
                .await?
                .map(|a| a.taxonomy)
                .unwrap_or_else(|| account.taxonomy.clone());
            Ok(page(
                user,
                &fresh,
                status,
                None,
                Some(error.message),
                typed.0,
                typed.1,
            ))
        }
        Err(EditError::Store(e)) => Err(e.into()),
    }
}

pub async fn add_type(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(form): ConsoleForm<TypeForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let actions = form
        .actions
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    let edit = TaxonomyEdit::AddType {
        name: form.name.clone(),
        actions,
    };
    apply(&state, &user, edit, "added", (&form.name, &form.actions)).await
}

pub async fn add_action(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(form): ConsoleForm<ActionForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let edit = TaxonomyEdit::AddAction {
        event_type: form.event_type,
        action: form.name,
    };
    apply(&state, &user, edit, "action-added", ("", "")).await
}

pub async fn retire(
    State(state): State<AppState>,
    Admin(user): Admin,
    ConsoleForm(form): ConsoleForm<RetireForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let edit = if form.action.is_empty() {
        TaxonomyEdit::RetireType {
            event_type: form.event_type,
        }
    } else {
        TaxonomyEdit::RetireAction {
            event_type: form.event_type,
            action: form.action,
        }
    };
    apply(&state, &user, edit, "retired", ("", "")).await
}
