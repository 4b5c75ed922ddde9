//! Who is looking at a console page. The session cookie holds a random
//! secret; the store knows only its SHA-256. [`SignedIn`] is any signed-in
//! user, [`Viewer`] one allowed to see audit data (admin or auditor),
//! [`Admin`] one allowed to administer; anonymous visitors are sent to
//! `/login?next=…`, others get a 403 page.

use super::page::{ConsoleError, Frame};
use crate::state::AppState;
use crate::tokens::{hash_api_key, random_token};
use auditlog_core::Timestamp;
use auditlog_store::{NewSession, Role, SessionGrant};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "auditlog_session";
/// The login form's CSRF cookie (double submit: there is no session yet).
pub const LOGIN_COOKIE: &str = "auditlog_login";
/// How long a session lasts from sign-in; it is not extended by use.
pub const SESSION_SECONDS: i64 = 12 * 60 * 60;

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value. Secure and HttpOnly always: browsers accept Secure
/// cookies from http://localhost and http://127.0.0.1, so local use works,
/// and elsewhere the console must be served over HTTPS.
pub fn set_cookie(name: &str, value: &str, path: &str, same_site: &str, max_age: i64) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite={same_site}"
    )
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Starts a session for `user_id`; returns the cookie secret.
pub async fn start_session(state: &AppState, user_id: i64) -> Result<String, ConsoleError> {
    let token = random_token(32);
    let now = Timestamp::now();
    state
        .store
        .create_session(NewSession {
            token_hash: hash_api_key(&token),
            user_id,
            csrf_token: random_token(24),
            created_at: now,
            expires_at: Timestamp::from_micros(now.micros() + SESSION_SECONDS * 1_000_000),
        })
        .await?;
    Ok(token)
}

/// A signed-in console user, whatever the role.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub grant: SessionGrant,
    pub token_hash: [u8; 32],
}

impl SignedIn {
    /// The page chrome (navigation, sign-out form) for this user.
    pub fn frame(&self, active: &'static str) -> Frame {
        Frame {
            email: self.grant.user.email.clone(),
            account: self.grant.account.name.clone(),
            csrf: self.grant.csrf_token.clone(),
            is_admin: self.grant.user.role == Role::Admin,
            sees_audit_data: self.grant.user.role.sees_audit_data(),
            active,
        }
    }

    /// Rejects a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ConsoleError> {
        if same_secret(sent, &self.grant.csrf_token) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }

    /// How the user appears as the actor of events Auditlog writes itself.
    pub fn actor_id(&self) -> String {
        format!("user:{}", self.grant.user.id)
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or(ConsoleError::SignIn { next: next.clone() })?;
        let token_hash = hash_api_key(token);
        let grant = state
            .store
            .session_by_token_hash(token_hash, Timestamp::now())
            .await?
            .ok_or(ConsoleError::SignIn { next })?;
        Ok(SignedIn { grant, token_hash })
    }
}

/// A signed-in admin or auditor: the users who see audit data (members
/// get the 403 page).
#[derive(Debug, Clone)]
pub struct Viewer(pub SignedIn);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = SignedIn::from_request_parts(parts, state).await?;
        if user.grant.user.role.sees_audit_data() {
            Ok(Viewer(user))
        } else {
            Err(ConsoleError::AuditDataNeeded(Box::new(user.frame(""))))
        }
    }
}

/// A signed-in administrator: the only kind of user who sees the settings
/// pages and changes anything (auditors and members get the 403 page).
#[derive(Debug, Clone)]
pub struct Admin(pub SignedIn);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = SignedIn::from_request_parts(parts, state).await?;
        if user.grant.user.role == Role::Admin {
            Ok(Admin(user))
        } else {
            Err(ConsoleError::AdminNeeded(Box::new(user.frame(""))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; auditlog_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn compares_secrets() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }

    #[test]
    fn cookies_are_secure_http_only_and_same_site() {
        let c = set_cookie(SESSION_COOKIE, "t", "/", "Lax", 60);
        for part in ["HttpOnly", "Secure", "SameSite=Lax", "Max-Age=60", "Path=/"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
    }
}
