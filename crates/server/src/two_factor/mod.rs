//! Two-factor sign-in with TOTP (issue 18): what the console's enrolment
//! page and its sign-in's code step share. A user's secret is sealed with
//! the server's secret key (the stream secret key of the data directory or
//! the config, shared by every server of one database), bound to the user,
//! before the store sees it; ten one-time recovery codes are kept as
//! SHA-256 (they are random, like API keys); a code is accepted once: the
//! store records the step it was accepted in, in the same statement that
//! checks it is later than the last one (`totp` for the algorithm).
//!
//! Between the password and the code, the sign-in is held in a cookie
//! sealed under the same key (user, account, a fingerprint of the password
//! hash, expiry, where to go next), so that any server can take the second
//! step and nothing is stored for a sign-in that is never finished. The
//! code step reads the user again: a user disabled, removed or given a new
//! password since the password step is refused there.

pub mod totp;

use crate::exports::audit::AuditActor;
use crate::state::AppState;
use crate::streams::secrets::SecretKey;
use auditlog_core::taxonomy::{ACCOUNT, USER};
use auditlog_core::{NewEvent, Timestamp};
use auditlog_store::{Account, AccountId, Store, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One-time recovery codes made at each enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The cookie that holds a sign-in between its password and its code.
pub const PENDING_COOKIE: &str = "auditlog_second_step";
/// How long the code step waits for its code.
pub const PENDING_SECONDS: i64 = 5 * 60;
/// The `Auditlog User` actions of enrolment and removal.
pub const ENABLE_ACTION: &str = "Enable Two-Factor";
pub const DISABLE_ACTION: &str = "Disable Two-Factor";

/// The key that seals TOTP secrets and pending sign-ins, if this server
/// has one (every server started by the binary does).
pub fn sealing_key(state: &AppState) -> Option<&SecretKey> {
    state.streams.as_ref().map(|s| &s.secret_key)
}

fn secret_purpose(user_id: i64) -> Vec<u8> {
    format!("auditlog two-factor secret of user {user_id}").into_bytes()
}

const PENDING_PURPOSE: &[u8] = b"auditlog pending second sign-in step";

/// A fresh TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; totp::SECRET_BYTES];
    crate::tokens::fill_random(&mut secret);
    secret
}

/// `secret` sealed for `user_id` (it opens for no one else).
pub fn seal_secret(key: &SecretKey, user_id: i64, secret: &[u8]) -> Result<Vec<u8>, String> {
    key.seal_for(&secret_purpose(user_id), secret)
}

pub fn open_secret(key: &SecretKey, user_id: i64, sealed: &[u8]) -> Result<Vec<u8>, String> {
    key.open_for(&secret_purpose(user_id), sealed)
}

/// Ten fresh recovery codes, `xxxx-xxxx-xxxx` of 60 random bits each.
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 12];
            crate::tokens::fill_random(&mut bytes);
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What a recovery code is stored as: SHA-256 of its characters,
/// lower-cased, without dashes or spaces (so it may be typed either way).
pub fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    Sha256::digest(normal.as_bytes()).into()
}

/// The QR code of `text` as an SVG `data:` URI, for an `<img>` (the
/// console's Content-Security-Policy allows `data:` images).
pub fn qr_data_uri(text: &str) -> Result<String, String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| format!("cannot make the QR code: {e}"))?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(image)
    ))
}

/// What a code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// A TOTP code of a step not used before.
    Totp,
    /// One of the user's unused recovery codes, now used up.
    Recovery,
    /// Wrong, used already, or the user has no confirmed enrolment.
    Refused,
}

/// Why a code could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealed secret does not open (another key, or altered).
    #[error("{0}")]
    Sealing(String),
}

/// Checks `code` for `user_id` at `now`: six digits are a TOTP code, which
/// is accepted once in its step; anything else is tried as a recovery code.
pub async fn check_code(
    store: &dyn Store,
    key: &SecretKey,
    user_id: i64,
    code: &str,
    now: Timestamp,
) -> Result<CodeCheck, CheckError> {
    let Some(record) = store.two_factor(user_id).await? else {
        return Ok(CodeCheck::Refused);
    };
    if record.confirmed_at.is_none() {
        return Ok(CodeCheck::Refused);
    }
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secret =
            open_secret(key, user_id, &record.sealed_secret).map_err(CheckError::Sealing)?;
        let seconds = u64::try_from(now.micros() / 1_000_000).unwrap_or(0);
        let Some(step) = totp::matching_step(&secret, &digits, seconds, record.last_step) else {
            return Ok(CodeCheck::Refused);
        };
        // The store's check-and-set decides a race between two requests.
        return Ok(if store.accept_two_factor_step(user_id, step).await? {
            CodeCheck::Totp
        } else {
            CodeCheck::Refused
        });
    }
    if code.trim().is_empty() {
        return Ok(CodeCheck::Refused);
    }
    Ok(
        if store
            .use_recovery_code(user_id, recovery_hash(code), now)
            .await?
        {
            CodeCheck::Recovery
        } else {
            CodeCheck::Refused
        },
    )
}

/// A sign-in that passed its password and waits for its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub user_id: i64,
    pub account_id: AccountId,
    /// The account as typed on the form: the rate limiter's key.
    pub account_typed: String,
    pub email: String,
    /// [`password_fingerprint`] of the password hash the password step
    /// checked: a password set since then refuses the code step.
    pub password: String,
    pub next: String,
    pub expires_at: Timestamp,
}

/// A short fingerprint of a stored password hash (PHC string, salted): it
/// changes whenever the password is set again, even to the same password.
/// Sealed in the pending cookie; it reveals nothing of the password.
pub fn password_fingerprint(password_hash: &str) -> String {
    let digest = Sha256::digest(password_hash.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The cookie value of `pending`: sealed, base64url.
pub fn seal_pending(key: &SecretKey, pending: &Pending) -> Result<String, String> {
    let plain = json!({
        "user": pending.user_id,
        "account": pending.account_id,
        "typed": pending.account_typed,
        "email": pending.email,
        "password": pending.password,
        "next": pending.next,
        "expires": pending.expires_at.micros(),
    })
    .to_string();
    let sealed = key.seal_for(PENDING_PURPOSE, plain.as_bytes())?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// The pending sign-in of a cookie value, if it opens and has not expired.
pub fn open_pending(key: &SecretKey, cookie: &str, now: Timestamp) -> Option<Pending> {
    let sealed = URL_SAFE_NO_PAD.decode(cookie).ok()?;
    let plain = key.open_for(PENDING_PURPOSE, &sealed).ok()?;
    let value: Value = serde_json::from_slice(&plain).ok()?;
    let pending = Pending {
        user_id: value["user"].as_i64()?,
        account_id: value["account"].as_i64()?,
        account_typed: value["typed"].as_str()?.to_string(),
        email: value["email"].as_str()?.to_string(),
        password: value["password"].as_str()?.to_string(),
        next: value["next"].as_str()?.to_string(),
        expires_at: Timestamp::from_micros(value["expires"].as_i64()?),
    };
    (pending.expires_at > now).then_some(pending)
}

fn actor_json(actor: &AuditActor) -> Value {
    let mut value = json!({ "id": actor.id });
    if let Some(name) = &actor.name {
        value["name"] = json!(name);
    }
    if let Some(email) = &actor.email {
        value["email"] = json!(email);
    }
    value
}

async fn append(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    event: Value,
) -> Result<(), StoreError> {
    let event = NewEvent::parse(&event, &account.taxonomy.with_own_types(), Timestamp::now())
        .map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            StoreError::internal(format!(
                "the audit event of a two-factor change is invalid for account {}: {}",
                account.name,
                reasons.join("; ")
            ))
        })?;
    store
        .append_from(account, &actor.source, vec![event])
        .await?;
    Ok(())
}

/// Appends `Auditlog User` `Enable Two-Factor` or `Disable Two-Factor` of
/// the user `user_id` (never the secret or a code).
pub async fn record_user_change(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    user_id: i64,
    email: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    let event = json!({
        "event_type": USER,
        "action": if enabled { ENABLE_ACTION } else { DISABLE_ACTION },
        "actor": actor_json(actor),
        "target": {"id": format!("user:{user_id}"), "name": email},
        "details": {"changes": [{"field": "two_factor", "old": !enabled, "new": enabled}]},
    });
    append(store, account, actor, event).await
}

/// Appends the `Auditlog Account` `Update` of the account's requirement.
pub async fn record_requirement(
    store: &dyn Store,
    account: &Account,
    actor: &AuditActor,
    old: bool,
    new: bool,
) -> Result<(), StoreError> {
    let event = json!({
        "event_type": ACCOUNT,
        "action": "Update",
        "actor": actor_json(actor),
        "target": {"id": format!("account-{}", account.name), "name": account.name},
        "details": {"changes": [{"field": "require_two_factor", "old": old, "new": new}]},
    });
    append(store, account, actor, event).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_hash_however_typed() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(
            recovery_hash(code),
            recovery_hash(&code.replace('-', " ").to_uppercase())
        );
        assert_ne!(recovery_hash(code), recovery_hash(&codes[1]));
    }

    #[test]
    fn secrets_are_sealed_for_their_user() {
        let key = SecretKey::random();
        let secret = new_secret();
        let sealed = seal_secret(&key, 7, &secret).unwrap();
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert_eq!(open_secret(&key, 7, &sealed).unwrap(), secret);
        assert!(open_secret(&key, 8, &sealed).is_err(), "not another user's");
    }

    #[test]
    fn a_pending_sign_in_opens_until_it_expires() {
        let key = SecretKey::random();
        let now = Timestamp::from_micros(1_000_000_000);
        let pending = Pending {
            user_id: 3,
            account_id: 1,
            account_typed: "acme".into(),
            email: "ada@example.com".into(),
            password: password_fingerprint("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            next: "/settings/audit-logs".into(),
            expires_at: Timestamp::from_micros(now.micros() + 1),
        };
        let cookie = seal_pending(&key, &pending).unwrap();
        assert_eq!(open_pending(&key, &cookie, now), Some(pending.clone()));
        assert_eq!(
            open_pending(&key, &cookie, pending.expires_at),
            None,
            "expired"
        );
        assert_eq!(open_pending(&SecretKey::random(), &cookie, now), None);
        assert_eq!(open_pending(&key, "garbage", now), None);
        assert_eq!(pending.password.len(), 24);
        assert_ne!(pending.password, password_fingerprint("$argon2id$other"));
        // A sealed TOTP secret is not a pending sign-in.
        let other = URL_SAFE_NO_PAD.encode(seal_secret(&key, 3, b"{}").unwrap());
        assert_eq!(open_pending(&key, &other, now), None);
    }

    #[test]
    fn the_qr_code_is_an_svg_image() {
        let uri = qr_data_uri("otpauth://totp/Auditlog:acme?secret=GEZDGNBV").unwrap();
        let svg = base64::engine::general_purpose::STANDARD
            .decode(uri.strip_prefix("data:image/svg+xml;base64,").unwrap())
            .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    }
}
