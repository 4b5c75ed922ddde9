//! Rendering console pages: the page chrome every page shares, turning a
//! template into a response, and the one console error type, which answers
//! with an HTML page (or a redirect to sign-in) rather than JSON.

use super::url::{encode_component, safe_next};
use crate::error::{ApiError, ErrorLog};
use askama::Template;
use auditlog_core::ErrorChain;
use auditlog_store::StoreError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

/// What the layout shows about the signed-in user.
#[derive(Debug, Clone)]
pub struct Frame {
    pub email: String,
    pub account: String,
    /// For the sign-out form.
    pub csrf: String,
    /// Admins see the settings pages (log streams, users, keys).
    pub is_admin: bool,
    /// Admins and auditors see audit logs and exports; members do not.
    pub sees_audit_data: bool,
    /// Which navigation entry is current.
    pub active: &'static str,
}

/// Renders `page` with `status`; a template failure is logged and answered 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => ConsoleError::internal("template", e).into_response(),
    }
}

/// A page with a heading, a sentence and an optional link onwards.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub frame: Option<Frame>,
    pub title: String,
    pub message: String,
    pub link: Option<(String, String)>,
}

impl MessagePage {
    pub fn new(frame: Option<Frame>, title: &str, message: impl Into<String>) -> Self {
        Self {
            frame,
            title: title.into(),
            message: message.into(),
            link: None,
        }
    }

    pub fn with_link(mut self, href: &str, label: &str) -> Self {
        self.link = Some((href.into(), label.into()));
        self
    }
}

#[derive(Debug)]
pub enum ConsoleError {
    /// Not signed in: go to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// Signed in, but a member: audit data needs the admin or auditor role.
    AuditDataNeeded(Box<Frame>),
    /// Signed in, but not an admin: settings need the admin role.
    AdminNeeded(Box<Frame>),
    /// A state-changing form without this session's CSRF token.
    Csrf,
    /// Input the user can fix; the message says how.
    BadRequest(String),
    /// An answer of the API's shared functions (such as exports), shown as
    /// a page; `log` is the API error's, for `error::log_errors`.
    Api {
        status: StatusCode,
        message: String,
        log: Option<Box<ErrorLog>>,
    },
    /// Storage is temporarily unable to answer.
    Unavailable,
    /// Anything else; logged with this reference.
    Internal { reference: String },
}

impl ConsoleError {
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        let reference = crate::tokens::random_token(6);
        tracing::error!(%reference, context, %error, "console error");
        ConsoleError::Internal { reference }
    }
}

/// The console's answer to a request the server did not answer in time
/// (`limits::timeout`, given the limit as words).
pub fn timed_out(limit: &str) -> Response {
    ConsoleError::Api {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "The server did not answer within {limit}. Try again in a few seconds; \
             what you asked for may already have been done."
        ),
        log: None,
    }
    .into_response()
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } | StoreError::Full { .. } => {
                tracing::warn!(reason = %ErrorChain(&e), "storage unavailable");
                ConsoleError::Unavailable
            }
            other => ConsoleError::internal("storage", ErrorChain(&other)),
        }
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        // An internal failure's log (with the reference that the message
        // repeats) goes on with it, to be logged once the page is answered.
        ConsoleError::Api {
            status: e.status,
            message: e.message,
            log: e.log,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, page) = match self {
            ConsoleError::SignIn { next } => {
                let next = safe_next(Some(&next));
                return Redirect::to(&format!("/login?next={}", encode_component(&next)))
                    .into_response();
            }
            ConsoleError::AuditDataNeeded(frame) => (
                StatusCode::FORBIDDEN,
                MessagePage::new(
                    Some(*frame),
                    "Not allowed",
                    "You are signed in as a member. Audit logs and exports are visible only to \
                     administrators and auditors of this account; ask an administrator for one of those roles.",
                ),
            ),
            ConsoleError::AdminNeeded(frame) => (
                StatusCode::FORBIDDEN,
                MessagePage::new(
                    Some(*frame),
                    "Not allowed: administrator role needed",
                    "Settings pages are only for administrators of this account; your role does not \
                     allow this page. Ask an administrator if you need it.",
                ),
            ),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                MessagePage::new(
                    None,
                    "Form expired",
                    "This form has expired or did not come from this site, so nothing was done. \
                     Go back, reload the page and try again.",
                )
                .with_link("/settings/audit-logs", "Back to the console"),
            ),
            ConsoleError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                MessagePage::new(None, "Bad request", message),
            ),
            ConsoleError::Api {
                status,
                message,
                log,
            } => {
                let mut response = ConsoleError::page_response(
                    status,
                    MessagePage::new(
                        None,
                        status.canonical_reason().unwrap_or("Error"),
                        message,
                    )
                    .with_link("/settings/audit-logs", "Back to the console"),
                );
                if let Some(log) = log {
                    response.extensions_mut().insert(*log);
                }
                return response;
            }
            ConsoleError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                MessagePage::new(
                    None,
                    "Temporarily unavailable",
                    "Storage is temporarily unable to answer; nothing was changed. Try again in a moment.",
                ),
            ),
            ConsoleError::Internal { reference } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                MessagePage::new(
                    None,
                    "Something went wrong",
                    format!("An internal error occurred; quote reference {reference} to the operator."),
                ),
            ),
        };
        ConsoleError::page_response(status, page)
    }
}

impl ConsoleError {
    fn page_response(status: StatusCode, page: MessagePage) -> Response {
        match page.render() {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                status.into_response()
            }
        }
    }
}
