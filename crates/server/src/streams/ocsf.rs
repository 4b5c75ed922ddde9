//! `format: ocsf`: each event as an OCSF 1.5.0 event (SPEC "Live tail and
//! log streams"):
//!
//! - `Authentication` (3002, category 3) for the actions `Login`, `Logout`
//!   and `Login Failed` (activity 1 Logon, 2 Logoff, 1 with `status_id` 2
//!   Failure);
//! - `Entity Management` (3004, category 3) for events with a target
//!   (`entity` = the target, `type` = the event type; activity 1 Create,
//!   2 Read, 3 Update, 4 Delete, 8 Enable, 9 Disable, else 99 Other);
//! - `API Activity` (6003, category 6) for events without one (activity 1
//!   Create, 2 Read, 3 Update, 4 Delete, else 99 Other).
//!
//! Always set: `category_uid`, `class_uid`, `activity_id`, `type_uid`
//! (class × 100 + activity), `severity_id` (1 Informational), `time` (ms
//! since the epoch), `metadata.product`, `metadata.version` and each
//! class's other required attributes (`entity`; `user` and `service`;
//! `actor`, `api`, `src_endpoint`). `metadata.uid` is the event's id, `metadata.sequence`
//! its seq, `metadata.tenant_uid` its account: a receiver de-duplicates on
//! (`tenant_uid`, `sequence`). What OCSF has no place for (project, app,
//! version, details, the leaf hash, the source) is under `unmapped`.

use serde_json::{json, Map, Value};

/// The OCSF version written in `metadata.version`.
pub const OCSF_VERSION: &str = "1.5.0";

const SEVERITY_INFORMATIONAL: u64 = 1;
const STATUS_SUCCESS: u64 = 1;
const STATUS_FAILURE: u64 = 2;
const OTHER: u64 = 99;

/// The OCSF class, category and activity of an event.
fn classify(action: &str, has_entity: bool) -> (u64, u64, u64, &'static str) {
    let action = action.to_ascii_lowercase();
    match action.as_str() {
        "login" | "login failed" => return (3002, 3, 1, "Logon"),
        "logout" => return (3002, 3, 2, "Logoff"),
        _ => {}
    }
    let common = match action.as_str() {
        "create" => Some((1, "Create")),
        "read" => Some((2, "Read")),
        "update" => Some((3, "Update")),
        "delete" => Some((4, "Delete")),
        _ => None,
    };
    if has_entity {
        let (activity, name) = common
            .or(match action.as_str() {
                "enable" => Some((8, "Enable")),
                "disable" => Some((9, "Disable")),
                _ => None,
            })
            .unwrap_or((OTHER, "Other"));
        (3004, 3, activity, name)
    } else {
        let (activity, name) = common.unwrap_or((OTHER, "Other"));
        (6003, 6, activity, name)
    }
}

fn class_name(class: u64) -> &'static str {
    match class {
        3002 => "Authentication",
        3004 => "Entity Management",
        _ => "API Activity",
    }
}

fn category_name(category: u64) -> &'static str {
    match category {
        3 => "Identity & Access Management",
        _ => "Application Activity",
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether OCSF's `email_t` pattern takes `email`
/// (`^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$`);
/// an address it does not take stays under `unmapped`.
fn ocsf_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+,-./=?^_`{|}~".contains(c));
    let Some((first, rest)) = domain.split_once('.') else {
        return false;
    };
    local_ok
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The event's actor as an OCSF `user`.
fn user(event: &Value, unmapped: &mut Map<String, Value>) -> Value {
    let mut user = Map::new();
    user.insert(
        "uid".into(),
        json!(text(event, "/actor/id").unwrap_or("unknown")),
    );
    if let Some(name) = text(event, "/actor/name") {
        user.insert("name".into(), json!(name));
    }
    if let Some(email) = text(event, "/actor/email") {
        if ocsf_email(email) {
            user.insert("email_addr".into(), json!(email));
        } else {
            unmapped.insert("actor_email".into(), json!(email));
        }
    }
    Value::Object(user)
}

/// The event (as the API returns it) as an OCSF 1.5.0 event.
pub fn event(event: &Value) -> Value {
    let action = text(event, "/action").unwrap_or("");
    let event_type = text(event, "/event_type").unwrap_or("");
    let target_id = text(event, "/target/id");
    let target_name = text(event, "/target/name");
    let has_entity = target_id.is_some() || target_name.is_some();
    let (class, category, activity, activity_name) = classify(action, has_entity);
    let failed = action.eq_ignore_ascii_case("login failed");
    let time_ms = event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| auditlog_core::Timestamp::parse("time", t).ok())
        .map(|t| t.micros().div_euclid(1000))
        .unwrap_or(0);

    let mut unmapped = Map::new();
    for field in ["project", "app", "version", "details", "hash", "source"] {
        if let Some(value) = event.get(field).filter(|v| !v.is_null()) {
            unmapped.insert(field.into(), value.clone());
        }
    }
    unmapped.insert("event_type".into(), json!(event_type));
    unmapped.insert("action".into(), json!(action));
    let user = user(event, &mut unmapped);

    let mut metadata = Map::new();
    metadata.insert(
        "product".into(),
        json!({
            "name": "Auditlog",
            "vendor_name": "Auditlog",
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    metadata.insert("version".into(), json!(OCSF_VERSION));
    if let Some(id) = text(event, "/id") {
        metadata.insert("uid".into(), json!(id));
    }
    if let Some(seq) = event.get("seq").and_then(Value::as_u64) {
        metadata.insert("sequence".into(), json!(seq));
    }
    if let Some(account) = text(event, "/account") {
        metadata.insert("tenant_uid".into(), json!(account));
    }
    if let Some(received) = text(event, "/received_at")
        .and_then(|t| auditlog_core::Timestamp::parse("received_at", t).ok())
    {
        metadata.insert(
            "logged_time".into(),
            json!(received.micros().div_euclid(1000)),
        );
    }
    metadata.insert("log_name".into(), json!("auditlog"));
    if let Some(request) = text(event, "/context/request_id") {
        metadata.insert("correlation_uid".into(), json!(request));
    }

    let mut out = Map::new();
    out.insert("category_uid".into(), json!(category));
    out.insert("category_name".into(), json!(category_name(category)));
    out.insert("class_uid".into(), json!(class));
    out.insert("class_name".into(), json!(class_name(class)));
    out.insert("activity_id".into(), json!(activity));
    out.insert("activity_name".into(), json!(activity_name));
    out.insert("type_uid".into(), json!(class * 100 + activity));
    out.insert(
        "type_name".into(),
        json!(format!("{}: {activity_name}", class_name(class))),
    );
    out.insert("severity_id".into(), json!(SEVERITY_INFORMATIONAL));
    out.insert("severity".into(), json!("Informational"));
    out.insert("time".into(), json!(time_ms));
    out.insert(
        "status_id".into(),
        json!(if failed {
            STATUS_FAILURE
        } else {
            STATUS_SUCCESS
        }),
    );
    out.insert(
        "status".into(),
        json!(if failed { "Failure" } else { "Success" }),
    );
    out.insert(
        "message".into(),
        json!(format!("{event_type} {action}").trim().to_string()),
    );
    out.insert("metadata".into(), Value::Object(metadata));

    let ip = text(event, "/context/ip");
    let endpoint = match ip {
        Some(ip) => json!({"ip": ip}),
        // API Activity requires one; without a client address, the app.
        None => json!({"name": text(event, "/app").unwrap_or("unknown")}),
    };
    if let Some(agent) = text(event, "/context/user_agent") {
        out.insert("http_request".into(), json!({"user_agent": agent}));
    }
    match class {
        3002 => {
            // The service signed in to (required: it or `dst_endpoint`).
            let mut service = Map::new();
            service.insert(
                "name".into(),
                json!(text(event, "/app")
                    .or(text(event, "/project"))
                    .unwrap_or("unknown")),
            );
            if let Some(version) = text(event, "/version") {
                service.insert("version".into(), json!(version));
            }
            out.insert("service".into(), Value::Object(service));
            out.insert("user".into(), user.clone());
            out.insert("actor".into(), json!({"user": user}));
            if ip.is_some() {
                out.insert("src_endpoint".into(), endpoint);
            }
        }
        3004 => {
            let mut entity = Map::new();
            if let Some(id) = target_id {
                entity.insert("uid".into(), json!(id));
            }
            if let Some(name) = target_name {
                entity.insert("name".into(), json!(name));
            }
            if !event_type.is_empty() {
                entity.insert("type".into(), json!(event_type));
            }
            out.insert("entity".into(), Value::Object(entity));
            out.insert("actor".into(), json!({"user": user}));
            if ip.is_some() {
                out.insert("src_endpoint".into(), endpoint);
            }
        }
        _ => {
            out.insert("actor".into(), json!({"user": user}));
            let mut api = Map::new();
            api.insert("operation".into(), json!(action));
            if let Some(app) = text(event, "/app") {
                let mut service = Map::new();
                service.insert("name".into(), json!(app));
                if let Some(version) = text(event, "/version") {
                    service.insert("version".into(), json!(version));
                }
                api.insert("service".into(), Value::Object(service));
            }
            out.insert("api".into(), Value::Object(api));
            out.insert("src_endpoint".into(), endpoint);
        }
    }
    out.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(action: &str, target: Option<Value>) -> Value {
        let mut e = json!({
            "id": "e-1", "seq": 7, "account": "acme",
            "time": "2026-11-25T14:03:07.123456Z",
            "received_at": "2026-11-25T14:03:08Z",
            "event_type": "Test Case", "action": action,
            "actor": {"id": "u-17", "name": "Ada", "email": "ada@example.com"},
            "project": "Checkout", "app": "Web", "version": "2.3",
            "context": {"ip": "203.0.113.7", "user_agent": "curl", "request_id": "r-1"},
            "hash": "ab", "source": {"kind": "api_key", "key": "k", "name": "n"}
        });
        if let Some(t) = target {
            e["target"] = t;
        }
        e
    }

    fn required(out: &Value) {
        for field in [
            "category_uid",
            "class_uid",
            "activity_id",
            "type_uid",
            "severity_id",
            "time",
        ] {
            assert!(out[field].is_u64(), "{field} in {out}");
        }
        assert_eq!(out["metadata"]["version"], OCSF_VERSION);
        assert_eq!(out["metadata"]["product"]["name"], "Auditlog");
        assert_eq!(
            out["type_uid"].as_u64().unwrap(),
            out["class_uid"].as_u64().unwrap() * 100 + out["activity_id"].as_u64().unwrap()
        );
    }

    #[test]
    fn entity_events_are_entity_management() {
        let out = event(&stored(
            "Update",
            Some(json!({"id": "TC-1", "name": "Login"})),
        ));
        required(&out);
        assert_eq!(out["class_uid"], 3004);
        assert_eq!(out["category_uid"], 3);
        assert_eq!(out["activity_id"], 3);
        assert_eq!(out["type_uid"], 300403);
        assert_eq!(out["time"], 1_795_615_387_123u64);
        assert_eq!(
            out["entity"],
            json!({"uid": "TC-1", "name": "Login", "type": "Test Case"})
        );
        assert_eq!(out["metadata"]["sequence"], 7);
        assert_eq!(out["metadata"]["tenant_uid"], "acme");
        assert_eq!(out["unmapped"]["project"], "Checkout");
        let other = event(&stored("Export", Some(json!({"id": "x"}))));
        assert_eq!(
            (other["class_uid"].clone(), other["activity_id"].clone()),
            (json!(3004), json!(99))
        );
        assert_eq!(other["type_uid"], 300499);
    }

    #[test]
    fn logins_logouts_and_failures_are_authentication() {
        let login = event(&stored("Login", None));
        required(&login);
        assert_eq!(
            (login["class_uid"].clone(), login["activity_id"].clone()),
            (json!(3002), json!(1))
        );
        assert_eq!(login["status_id"], 1);
        assert_eq!(login["user"]["uid"], "u-17");
        assert_eq!(login["service"], json!({"name": "Web", "version": "2.3"}));
        let logout = event(&stored("Logout", None));
        assert_eq!(logout["activity_id"], 2);
        assert_eq!(logout["type_uid"], 300202);
        let failed = event(&stored("Login Failed", None));
        assert_eq!(
            (failed["activity_id"].clone(), failed["status_id"].clone()),
            (json!(1), json!(2))
        );
    }

    #[test]
    fn events_without_an_entity_are_api_activity() {
        let mut e = stored("Download", None);
        e["context"] = json!({});
        e["actor"]["email"] = json!("not an address");
        let out = event(&e);
        required(&out);
        assert_eq!(out["class_uid"], 6003);
        assert_eq!(out["category_uid"], 6);
        assert_eq!(out["activity_id"], 99);
        assert_eq!(out["type_uid"], 600399);
        assert_eq!(out["api"]["operation"], "Download");
        assert_eq!(
            out["src_endpoint"],
            json!({"name": "Web"}),
            "required, even without an IP"
        );
        assert!(out["actor"]["user"].get("email_addr").is_none());
        assert_eq!(out["unmapped"]["actor_email"], "not an address");
        assert_eq!(event(&stored("Create", None))["activity_id"], 1);
    }

    #[test]
    fn emails_follow_ocsf_pattern() {
        assert!(ocsf_email("ada@example.com"));
        assert!(ocsf_email("a.b+c@mail.example.co.uk"));
        assert!(!ocsf_email("ada"));
        assert!(!ocsf_email("ada@localhost"));
        assert!(!ocsf_email("a b@example.com"));
    }
}
