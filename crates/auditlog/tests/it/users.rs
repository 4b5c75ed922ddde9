//! Console users over HTTP (issue 18), on both backends: `/api/v1/users`
//! (invite with a one-time sign-in link, role, disable, enable, reset),
//! the link setting a password in the console, the last-admin rule, the
//! Profile page (own password, own sessions), `Login Failed` events with a
//! keyed hash of the attempted email, the exact old → new values of every
//! change in its `Auditlog User` event, no password, link token, key
//! secret or attempted email anywhere in the store, the role × route and
//! scope × route tables, the CLI, and on two servers sharing a PostgreSQL
//! database a disabled user's session and a revoked key refused by the
//! other server within 5 s.

use crate::console::{add_user, hidden_value, Visitor, PASSWORD};
use crate::helpers::{error_code, TestServer};
use auditlog_store_postgres::test_support::TestDatabase;
use reqwest::header::LOCATION;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const NEW_PASSWORD: &str = "a much longer passphrase 42";
const THIRD_PASSWORD: &str = "yet another passphrase 77";
/// An email nobody has: it must never be stored in the clear.
const ATTEMPTED: &str = "nobody-7f3q@intruder.test";

async fn request(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn patch(server: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
    request(server, reqwest::Method::PATCH, path, key, Some(body)).await
}

fn admin_key(server: &TestServer) -> String {
    server
        .cli(
            &[
                "key",
                "create",
                "--account",
                "acme",
                "--scope",
                "admin",
                "--name",
                "ops",
            ],
            "",
        )
        .trim()
        .to_string()
}

/// The token of a sign-in link path.
fn token_of(path: &str) -> String {
    path.strip_prefix("/welcome/").unwrap().to_string()
}

/// Opens a sign-in link and sets `password`; returns the POST's answer.
async fn use_link(visitor: &mut Visitor, path: &str, password: &str) -> (u16, String, String) {
    let (status, _, page) = visitor.get(path).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden_value(&page, "csrf");
    let (status, headers, body) = visitor
        .post(
            path,
            &[
                ("csrf", &csrf),
                ("password", password),
                ("confirm_password", password),
            ],
        )
        .await;
    let location = headers
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, body)
}

/// The account's events of `event_type` (and `action`), oldest first.
async fn events_of(server: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let (status, page) = server
        .get(&format!("/api/v1/events?{query}&limit=1000"), key)
        .await;
    assert_eq!(status, 200, "{page}");
    let mut events = page["events"].as_array().unwrap().clone();
    events.reverse();
    events
}

/// Waits (the failure is recorded off the request's path) until `n`
/// `Login Failed` events are stored; returns them, oldest first.
async fn login_failures(server: &TestServer, key: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = events_of(
            server,
            key,
            "event_type=Authentication&action=Login%20Failed",
        )
        .await;
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What every secret of the story was, to look for in the store.
struct Secrets(Vec<String>);

/// The whole story on one server; returns what must not be stored.
async fn users_story(server: &TestServer) -> Secrets {
    let mut secrets = vec![
        PASSWORD.to_string(),
        NEW_PASSWORD.to_string(),
        THIRD_PASSWORD.to_string(),
        ATTEMPTED.to_string(),
    ];
    let acme = server.account("acme");
    let admin = admin_key(server);
    secrets.push(admin.clone());
    add_user(server, "acme", "ada@acme.test", "admin");

    // Only the admin scope manages users; a bad key is 401.
    for key in [&acme.ingest, &acme.read] {
        let (status, body) = server.get("/api/v1/users", key).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "insufficient_scope".into())
        );
    }
    let (status, body) = server.get("/api/v1/users", "alk_nope").await;
    assert_eq!((status, error_code(&body)), (401, "invalid_api_key".into()));

    // Bad requests name the field and the rule.
    for (body, field, rule) in [
        (json!({"role": "auditor"}), "email", "required"),
        (json!({"email": "x@acme.test"}), "role", "required"),
        (
            json!({"email": "x@acme.test", "role": "root"}),
            "role",
            "unknown_role",
        ),
        (
            json!({"email": "not an email", "role": "member"}),
            "email",
            "invalid_email",
        ),
        (
            json!({"email": "x@acme.test", "role": "member", "password": "mine"}),
            "password",
            "unknown_field",
        ),
    ] {
        let (status, answer) = server.post("/api/v1/users", &admin, &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(
            answer["error"]["details"],
            json!({"field": field, "rule": rule})
        );
    }

    // Invite an auditor: the answer carries the one-time link, 24 h.
    let (status, created) = server
        .post(
            "/api/v1/users",
            &admin,
            &json!({"email": " Aud@Acme.test", "role": "auditor"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let user = &created["user"];
    let aud_id = user["id"].as_i64().unwrap();
    assert_eq!(
        (
            user["email"].as_str(),
            user["role"].as_str(),
            user["status"].as_str()
        ),
        (Some("aud@acme.test"), Some("auditor"), Some("invited"))
    );
    let link = created["sign_in_link"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    secrets.push(token_of(&link));
    let expires = auditlog_core::Timestamp::parse(
        "t",
        created["sign_in_link"]["expires_at"].as_str().unwrap(),
    )
    .unwrap();
    let hours = (expires.micros() - auditlog_core::Timestamp::now().micros()) as f64 / 3.6e9;
    assert!((23.9..=24.0).contains(&hours), "valid for 24 h: {hours}");
    assert_eq!(
        user["sign_in_link_expires_at"],
        created["sign_in_link"]["expires_at"]
    );
    let (status, body) = server
        .post(
            "/api/v1/users",
            &admin,
            &json!({"email": "aud@acme.test", "role": "member"}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "user_exists".into()));

    // Before the link is used, the invited user cannot sign in.
    let mut aud = Visitor::new(server);
    let (status, _, _) = aud.sign_in("acme", "aud@acme.test", PASSWORD, "/").await;
    assert_eq!(status, 401);

    // The link sets the password (12 characters at least) and signs in, once.
    let (status, _, page) = aud.get(&link).await;
    assert_eq!(status, 200);
    assert!(page.contains("aud@acme.test") && page.contains("acme"));
    let csrf = hidden_value(&page, "csrf");
    let (status, _, page) = aud
        .post(
            &link,
            &[
                ("csrf", &csrf),
                ("password", "short"),
                ("confirm_password", "short"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("at least 12 characters"), "{page}");
    let (status, _, _) = aud
        .post(
            &link,
            &[
                ("csrf", "forged"),
                ("password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 403, "the welcome form needs its CSRF token");
    let (status, location, _) = use_link(&mut aud, &link, NEW_PASSWORD).await;
    assert_eq!((status, location.as_str()), (303, "/"));
    assert_eq!(
        aud.get("/settings/audit-logs").await.0,
        200,
        "signed in by the link"
    );
    let (status, _, page) = Visitor::new(server).get(&link).await;
    assert_eq!(status, 404, "a link works once: {page}");

    // The auditor: audit data yes, settings no.
    for (path, expected) in [
        ("/settings/audit-logs", 200),
        ("/settings/exports", 200),
        ("/settings/users", 403),
        ("/settings/log-streams", 403),
        ("/settings/profile", 200),
    ] {
        assert_eq!(aud.get(path).await.0, expected, "auditor {path}");
    }

    // A role change applies at once to the live session.
    let path = format!("/api/v1/users/{aud_id}");
    let (status, changed) = patch(server, &path, &admin, &json!({"role": "member"})).await;
    assert_eq!(
        (status, changed["user"]["role"].as_str()),
        (200, Some("member"))
    );
    assert_eq!(aud.get("/settings/audit-logs").await.0, 403, "a member now");
    let (status, _) = patch(server, &path, &admin, &json!({"role": "auditor"})).await;
    assert_eq!(status, 200);
    // Unchanged: no event.
    let (status, _) = patch(server, &path, &admin, &json!({"role": "auditor"})).await;
    assert_eq!(status, 200);

    // Disabling ends every session at once and refuses sign-in.
    let mut aud2 = Visitor::new(server);
    assert_eq!(
        aud2.sign_in("acme", "aud@acme.test", NEW_PASSWORD, "/")
            .await
            .0,
        303
    );
    let (status, disabled) = patch(server, &path, &admin, &json!({"disabled": true})).await;
    assert_eq!(
        (status, disabled["user"]["status"].as_str()),
        (200, Some("disabled"))
    );
    for visitor in [&mut aud, &mut aud2] {
        let (status, headers, _) = visitor.get("/settings/audit-logs").await;
        assert_eq!(status, 303, "the session ended");
        assert!(headers[LOCATION].to_str().unwrap().starts_with("/login"));
    }
    let mut again = Visitor::new(server);
    assert_eq!(
        again
            .sign_in("acme", "aud@acme.test", NEW_PASSWORD, "/")
            .await
            .0,
        401
    );
    let (status, enabled) = patch(server, &path, &admin, &json!({"disabled": false})).await;
    assert_eq!(
        (status, enabled["user"]["status"].as_str()),
        (200, Some("active"))
    );
    assert_eq!(
        again
            .sign_in("acme", "aud@acme.test", NEW_PASSWORD, "/")
            .await
            .0,
        303
    );

    // A reset: a new link; the earlier one (used) and the password until used.
    let (status, reset) = request(
        server,
        reqwest::Method::POST,
        &format!("/api/v1/users/{aud_id}/reset-password"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{reset}");
    let reset_link = reset["sign_in_link"]["path"].as_str().unwrap().to_string();
    secrets.push(token_of(&reset_link));
    assert_ne!(reset_link, link);
    let (status, _, _) = use_link(&mut Visitor::new(server), &reset_link, THIRD_PASSWORD).await;
    assert_eq!(status, 303);
    assert_eq!(
        again.get("/settings/audit-logs").await.0,
        303,
        "a reset ends the user's sessions"
    );
    assert_eq!(
        Visitor::new(server)
            .sign_in("acme", "aud@acme.test", NEW_PASSWORD, "/")
            .await
            .0,
        401,
        "the old password is gone"
    );

    // The last active admin can be neither demoted nor disabled.
    let (_, list) = server.get("/api/v1/users", &admin).await;
    let ada_id = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "ada@acme.test")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let ada_path = format!("/api/v1/users/{ada_id}");
    for body in [json!({"role": "auditor"}), json!({"disabled": true})] {
        let (status, answer) = patch(server, &ada_path, &admin, &body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (409, "last_admin".into()),
            "{body}"
        );
    }
    for (method, path, body) in [
        (
            reqwest::Method::PATCH,
            "/api/v1/users/999999".to_string(),
            Some(json!({"role": "member"})),
        ),
        (reqwest::Method::GET, "/api/v1/users/nope".to_string(), None),
        (
            reqwest::Method::POST,
            "/api/v1/users/999999/reset-password".to_string(),
            None,
        ),
    ] {
        let (status, answer) = request(server, method, &path, &admin, body.as_ref()).await;
        assert_eq!(
            (status, error_code(&answer)),
            (404, "user_not_found".into()),
            "{path}"
        );
    }
    let (status, answer) = patch(server, &ada_path, &admin, &json!({})).await;
    assert_eq!(status, 422, "{answer}");

    // Profile: a wrong current password changes nothing; the right one
    // changes it and ends the user's other sessions.
    let mut ada = Visitor::new(server);
    let mut ada_elsewhere = Visitor::new(server);
    assert_eq!(
        ada.sign_in("acme", "ada@acme.test", PASSWORD, "/").await.0,
        303
    );
    assert_eq!(
        ada_elsewhere
            .sign_in("acme", "ada@acme.test", PASSWORD, "/")
            .await
            .0,
        303
    );
    let (_, _, profile) = ada.get("/settings/profile").await;
    let csrf = hidden_value(&profile, "csrf");
    assert_eq!(profile.matches("data-session-id=").count(), 2, "{profile}");
    let (status, _, page) = ada
        .post(
            "/settings/profile/password",
            &[
                ("csrf", &csrf),
                ("current_password", "wrong wrong wrong"),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("current password is not right"), "{page}");
    let (status, _, _) = ada
        .post(
            "/settings/profile/password",
            &[
                ("csrf", "forged"),
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = ada
        .post(
            "/settings/profile/password",
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        ada.get("/settings/users").await.0,
        200,
        "this session stays"
    );
    assert_eq!(
        ada_elsewhere.get("/settings/users").await.0,
        303,
        "the other one ended"
    );

    // Sessions: listed, and one can be ended from another.
    assert_eq!(
        ada_elsewhere
            .sign_in("acme", "ada@acme.test", NEW_PASSWORD, "/")
            .await
            .0,
        303
    );
    let (_, _, profile) = ada.get("/settings/profile").await;
    let other = profile
        .split("data-session-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .find(|id| {
            !profile.contains(&format!(
                "<code>{id}</code> <span class=\"format\">(this browser)"
            ))
        })
        .expect("the other session is listed");
    let (status, _, _) = ada
        .post(
            &format!("/settings/profile/sessions/{other}/end"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(ada_elsewhere.get("/settings/users").await.0, 303, "ended");
    assert_eq!(ada.get("/settings/users").await.0, 200);

    // Failed sign-ins are Login Failed events with a reason class and a
    // keyed hash of the attempted email, never the email.
    let mut stranger = Visitor::new(server);
    for (email, password) in [
        (ATTEMPTED, "guess guess guess"),
        ("ada@acme.test", "guess guess guess"),
    ] {
        assert_eq!(stranger.sign_in("acme", email, password, "/").await.0, 401);
    }
    let failures = login_failures(server, &admin, 5).await;
    let reasons: Vec<&str> = failures
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    // The invited auditor's first try, the disabled one, the old password, then these two.
    assert_eq!(
        reasons,
        [
            "password_not_set",
            "disabled",
            "wrong_password",
            "unknown_email",
            "wrong_password"
        ]
    );
    let unknown = &failures[3];
    assert_eq!(unknown["actor"]["id"], "anonymous");
    assert_eq!(unknown["source"], json!({"kind": "console", "user": ""}));
    let hash = unknown["details"]["email_hash"].as_str().unwrap();
    assert!(
        hash.starts_with("hmac-sha256:") && hash.len() == 76,
        "{hash}"
    );
    assert_eq!(failures[4]["actor"]["id"], json!(format!("user:{ada_id}")));
    assert_eq!(
        failures[4]["source"],
        json!({"kind": "console", "user": ada_id.to_string()})
    );
    assert_ne!(
        failures[4]["details"]["email_hash"],
        unknown["details"]["email_hash"]
    );
    assert_eq!(
        failures[0]["details"]["email_hash"], failures[1]["details"]["email_hash"],
        "one address, one hash"
    );
    assert!(!serde_json::to_string(&failures)
        .unwrap()
        .contains("intruder"));
    // Clients cannot send Login Failed themselves.
    let (status, _) = server
        .post(
            "/api/v1/events",
            &acme.ingest,
            &json!({"event_type": "Authentication", "action": "Login Failed", "actor": {"id": "x"}}),
        )
        .await;
    assert_eq!(status, 422);

    // Every change is an `Auditlog User` event with exact old → new values.
    let events = events_of(server, &admin, "event_type=Auditlog%20User").await;
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    let aud_target = format!("user:{aud_id}");
    let ada_target = format!("user:{ada_id}");
    assert_eq!(
        summary,
        [
            ("Create", aud_target.as_str()),
            ("Password Change", aud_target.as_str()),
            ("Update", aud_target.as_str()),
            ("Update", aud_target.as_str()),
            ("Disable", aud_target.as_str()),
            ("Enable", aud_target.as_str()),
            ("Password Reset", aud_target.as_str()),
            ("Password Change", aud_target.as_str()),
            ("Password Change", ada_target.as_str()),
        ]
    );
    let change =
        |field: &str, old: Value, new: Value| json!({"field": field, "old": old, "new": new});
    let expiry = created["sign_in_link"]["expires_at"].clone();
    assert_eq!(
        events[0]["details"]["changes"],
        json!([
            change("email", Value::Null, json!("aud@acme.test")),
            change("role", Value::Null, json!("auditor")),
            change("sign_in_link_expires_at", Value::Null, expiry.clone()),
        ])
    );
    let first_set = events[1]["details"]["changes"][0]["new"].clone();
    assert_eq!(
        events[1]["details"]["changes"],
        json!([
            change("password_changed_at", Value::Null, first_set.clone()),
            change("sign_in_link_expires_at", expiry, Value::Null),
        ])
    );
    assert_eq!(
        events[2]["details"]["changes"],
        json!([change("role", json!("auditor"), json!("member"))])
    );
    assert_eq!(
        events[3]["details"]["changes"],
        json!([change("role", json!("member"), json!("auditor"))])
    );
    assert_eq!(
        events[4]["details"]["changes"],
        json!([change(
            "disabled_at",
            Value::Null,
            disabled["user"]["disabled_at"].clone()
        )])
    );
    assert_eq!(
        events[5]["details"]["changes"],
        json!([change(
            "disabled_at",
            disabled["user"]["disabled_at"].clone(),
            Value::Null
        )])
    );
    assert_eq!(
        events[6]["details"]["changes"],
        json!([change(
            "sign_in_link_expires_at",
            Value::Null,
            reset["sign_in_link"]["expires_at"].clone()
        )])
    );
    assert_eq!(events[7]["details"]["changes"][0]["old"], first_set);
    assert_eq!(
        events[8]["details"]["changes"][0]["field"],
        "password_changed_at"
    );
    // The API's are the admin key's; the password changes the user's own.
    let (_, keys) = server.get("/api/v1/keys", &admin).await;
    let ops_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ops")
        .unwrap()["id"]
        .clone();
    for event in [&events[0], &events[2], &events[4], &events[6]] {
        assert_eq!(
            event["source"],
            json!({"kind": "api_key", "key": ops_id, "name": "ops"})
        );
        assert!(event["actor"]["id"]
            .as_str()
            .unwrap()
            .starts_with("api-key:"));
    }
    assert_eq!(events[1]["actor"]["id"], json!(aud_target));
    assert_eq!(
        events[1]["source"],
        json!({"kind": "console", "user": aud_id.to_string()})
    );
    assert_eq!(
        events[8]["source"],
        json!({"kind": "console", "user": ada_id.to_string()})
    );
    let all = serde_json::to_string(&events).unwrap();
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "no secret in an audit event"
        );
    }

    // The console's Users page: an admin invites, changes a role, disables,
    // and is refused demoting themselves as the last admin.
    let (status, _, page) = ada.get("/settings/users").await;
    assert_eq!(status, 200);
    assert!(page.contains("aud@acme.test") && page.contains("href=\"/settings/users\""));
    let csrf = hidden_value(&page, "csrf");
    let (status, _, page) = ada
        .post(
            "/settings/users",
            &[
                ("csrf", &csrf),
                ("email", "mia@acme.test"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let url = page
        .split("<code id=\"sign-in-url\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/welcome/"),
        "{url}"
    );
    secrets.push(url.rsplit('/').next().unwrap().to_string());
    let (status, _, _) = ada
        .post(
            "/settings/users",
            &[
                ("csrf", "forged"),
                ("email", "eve@acme.test"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(status, 403, "no CSRF token, no user");
    let (status, _, page) = ada
        .post(
            &format!("/settings/users/{ada_id}/role"),
            &[("csrf", &csrf), ("role", "auditor")],
        )
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("must keep an active administrator"), "{page}");
    let (status, _, _) = ada
        .post(
            &format!("/settings/users/{aud_id}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let (_, _, page) = ada.get("/settings/users?done=disabled").await;
    assert!(page.contains(&format!(
        "data-user-id=\"{aud_id}\" data-email=\"aud@acme.test\" data-status=\"disabled\""
    )));
    let (status, _, _) = ada
        .post(
            &format!("/settings/users/{aud_id}/enable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let events = events_of(server, &admin, "event_type=Auditlog%20User").await;
    let console_events = &events[events.len() - 3..];
    for event in console_events {
        assert_eq!(
            event["source"],
            json!({"kind": "console", "user": ada_id.to_string()})
        );
        assert_eq!(event["actor"]["id"], json!(ada_target));
    }
    Secrets(secrets)
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Where among `haystacks` (name, bytes) any secret appears.
fn found_in(secrets: &Secrets, haystacks: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for secret in &secrets.0 {
        for (name, bytes) in haystacks {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(format!("{secret:?} in {name}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn users_are_invited_changed_disabled_and_audited_and_no_secret_is_stored() {
    let server = TestServer::start();
    let secrets = users_story(&server).await;
    // Every file of the data directory: the database, its WAL, exports, ….
    let files: Vec<(String, Vec<u8>)> = walk(&server.data_dir)
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    assert!(files.iter().any(|(n, _)| n.ends_with("auditlog.db")));
    let found = found_in(&secrets, &files);
    assert!(found.is_empty(), "secrets stored: {found:?}");
    // The search itself finds what is stored (a user's email).
    let control = Secrets(vec!["aud@acme.test".into()]);
    assert!(!found_in(&control, &files).is_empty());
}

#[tokio::test]
async fn users_are_invited_changed_disabled_and_audited_on_postgres() {
    let Some(database) = TestDatabase::create("users_are_invited_changed_disabled") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    let secrets = users_story(&server).await;
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--dbname", &database.url])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(dump.stdout.len() > 1000);
    let dump = [("pg_dump".to_string(), dump.stdout)];
    let found = found_in(&secrets, &dump);
    assert!(found.is_empty(), "secrets stored: {found:?}");
    // The search itself finds what is stored (a user's email).
    let control = Secrets(vec!["aud@acme.test".into()]);
    assert!(!found_in(&control, &dump).is_empty());
}

/// Which scope each API route needs: `None` for the routes every caller
/// may use (no key needed). Every operation of the OpenAPI description
/// must be here, so that a new route cannot skip the table.
const ROUTE_SCOPES: &[(&str, &str, Option<&str>)] = &[
    ("POST", "/api/v1/events", Some("ingest")),
    ("GET", "/api/v1/events", Some("read")),
    ("GET", "/api/v1/events/{id}", Some("read")),
    ("GET", "/api/v1/events/histogram", Some("read")),
    ("GET", "/api/v1/events/stream", Some("read")),
    ("GET", "/api/v1/events/{id}/proof", Some("read")),
    ("GET", "/api/v1/public-key", None),
    ("GET", "/api/v1/checkpoint", Some("read")),
    ("GET", "/api/v1/proofs/consistency", Some("read")),
    ("GET", "/api/v1/root-checkpoint", Some("read")),
    ("GET", "/api/v1/proofs/root", Some("read")),
    ("GET", "/tiles/{account}/checkpoint", Some("read")),
    ("GET", "/tiles/{account}/tile/{level}/{index}", Some("read")),
    ("GET", "/tiles/{account}/tile/entries/{index}", Some("read")),
    ("POST", "/api/v1/exports", Some("read")),
    ("GET", "/api/v1/exports", Some("read")),
    ("GET", "/api/v1/exports/{id}", Some("read")),
    ("GET", "/api/v1/exports/{id}/download", Some("read")),
    ("GET", "/api/v1/keys", Some("admin")),
    ("POST", "/api/v1/keys", Some("admin")),
    ("DELETE", "/api/v1/keys/{id}", Some("admin")),
    ("GET", "/api/v1/users", Some("admin")),
    ("POST", "/api/v1/users", Some("admin")),
    ("GET", "/api/v1/users/{id}", Some("admin")),
    ("PATCH", "/api/v1/users/{id}", Some("admin")),
    ("POST", "/api/v1/users/{id}/reset-password", Some("admin")),
    ("POST", "/api/v1/streams", Some("admin")),
    ("GET", "/api/v1/streams", Some("admin")),
    ("GET", "/api/v1/streams/{id}", Some("admin")),
    ("PATCH", "/api/v1/streams/{id}", Some("admin")),
    ("DELETE", "/api/v1/streams/{id}", Some("admin")),
    ("POST", "/api/v1/streams/{id}/test", Some("admin")),
    ("GET", "/api/v1/retention", Some("admin")),
    ("PUT", "/api/v1/retention", Some("admin")),
    ("POST", "/api/v1/holds", Some("admin")),
    ("GET", "/api/v1/holds", Some("admin")),
    ("GET", "/api/v1/holds/{id}", Some("admin")),
    ("DELETE", "/api/v1/holds/{id}", Some("admin")),
    ("POST", "/api/v1/erasures", Some("admin")),
    ("GET", "/api/v1/erasures", Some("admin")),
    ("GET", "/api/v1/erasures/{id}", Some("admin")),
    ("GET", "/api/v1/event-types", Some("read")),
    ("POST", "/api/v1/event-types", Some("admin")),
    (
        "POST",
        "/api/v1/event-types/{event_type}/retire",
        Some("admin"),
    ),
    (
        "POST",
        "/api/v1/event-types/{event_type}/actions",
        Some("admin"),
    ),
    (
        "POST",
        "/api/v1/event-types/{event_type}/actions/{action}/retire",
        Some("admin"),
    ),
    ("GET", "/api/v1/account/personal-paths", Some("admin")),
    ("PUT", "/api/v1/account/personal-paths", Some("admin")),
    ("GET", "/api/v1/account/security", Some("admin")),
    ("PUT", "/api/v1/account/security", Some("admin")),
    ("GET", "/api/v1/openapi.json", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
];

/// Which console pages each role may use (admin, auditor, member); POSTs
/// are sent without a CSRF token, so an allowed one answers 403 "form
/// expired" — told apart from the role's 403 by the page.
const CONSOLE_ROLES: &[(&str, &str, [u16; 3])] = &[
    ("GET", "/settings/audit-logs", [200, 200, 403]),
    ("GET", "/settings/exports", [200, 200, 403]),
    ("GET", "/settings/exports/new", [200, 200, 403]),
    ("GET", "/settings/log-streams", [200, 403, 403]),
    ("GET", "/settings/log-streams/new", [200, 403, 403]),
    ("GET", "/settings/users", [200, 403, 403]),
    ("GET", "/settings/api-keys", [200, 403, 403]),
    ("GET", "/settings/event-types", [200, 403, 403]),
    ("POST", "/settings/users", [0, 403, 403]),
    ("POST", "/settings/users/1/role", [0, 403, 403]),
    ("POST", "/settings/users/1/disable", [0, 403, 403]),
    ("POST", "/settings/users/1/enable", [0, 403, 403]),
    ("POST", "/settings/users/1/reset-password", [0, 403, 403]),
    (
        "GET",
        "/settings/audit-logs/query-check?q=type:x",
        [200, 200, 403],
    ),
    ("GET", "/settings/exports/1/download", [404, 404, 403]),
    ("GET", "/settings/log-streams/1", [404, 403, 403]),
    ("GET", "/settings/log-streams/1/edit", [404, 403, 403]),
    ("POST", "/settings/log-streams", [0, 403, 403]),
    ("POST", "/settings/log-streams/1/test", [0, 403, 403]),
    ("POST", "/settings/log-streams/1/status", [0, 403, 403]),
    ("POST", "/settings/log-streams/1/replay", [0, 403, 403]),
    ("POST", "/settings/log-streams/1/edit", [0, 403, 403]),
    ("POST", "/settings/log-streams/1/delete", [0, 403, 403]),
    ("POST", "/settings/exports", [0, 0, 403]),
    ("GET", "/settings/profile", [200, 200, 200]),
    ("POST", "/settings/profile/password", [0, 0, 0]),
    (
        "POST",
        "/settings/profile/sessions/0000000000000000/end",
        [0, 0, 0],
    ),
];

/// The OpenAPI description's operations, as (METHOD, path).
async fn operations(server: &TestServer) -> Vec<(String, String)> {
    let (status, doc) = server.get("/api/v1/openapi.json", "").await;
    assert_eq!(status, 200);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.replace("{*index}", "{index}")));
            }
        }
    }
    ops
}

async fn role_and_scope_tables(server: &TestServer) {
    let acme = server.account("acme");
    let admin = admin_key(server);
    // Every documented operation is in the table, and nothing else.
    let mut documented = operations(server).await;
    documented.sort();
    let mut table: Vec<(String, String)> = ROUTE_SCOPES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    table.sort();
    assert_eq!(documented, table, "the scope table covers every route");

    for (method, path, needed) in ROUTE_SCOPES {
        let concrete = path
            .replace("{account}", "acme")
            .replace("{level}", "0")
            .replace("{index}", "000")
            .replace("{id}", "1")
            .replace("{event_type}", "Defect")
            .replace("{action}", "Triage");
        let method: reqwest::Method = method.parse().unwrap();
        for (scope, key) in [
            ("ingest", &acme.ingest),
            ("read", &acme.read),
            ("admin", &admin),
        ] {
            let mut builder = reqwest::Client::new()
                .request(method.clone(), server.url(&concrete))
                .bearer_auth(key)
                .timeout(Duration::from_secs(10));
            if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
                builder = builder.json(&json!({}));
            }
            let response = builder.send().await.unwrap();
            let status = response.status().as_u16();
            let allowed = match needed {
                None => true,
                Some(needed) => *needed == scope || (*needed == "read" && scope == "admin"),
            };
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{scope} {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{scope} {method} {path}");
            }
        }
        // No key at all: 401 wherever a scope is needed.
        let status = reqwest::Client::new()
            .request(method.clone(), server.url(&concrete))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if needed.is_some() {
            assert_eq!(status, 401, "no key {method} {path}");
        }
    }

    // Console pages by role.
    for (email, role) in [
        ("ada@acme.test", "admin"),
        ("aud@acme.test", "auditor"),
        ("mia@acme.test", "member"),
    ] {
        add_user(server, "acme", email, role);
    }
    for (column, email) in ["ada@acme.test", "aud@acme.test", "mia@acme.test"]
        .into_iter()
        .enumerate()
    {
        let mut visitor = Visitor::new(server);
        assert_eq!(visitor.sign_in("acme", email, PASSWORD, "/").await.0, 303);
        let (_, _, profile) = visitor.get("/settings/profile").await;
        for (method, path, expected) in CONSOLE_ROLES {
            let (status, _, page) = if *method == "GET" {
                visitor.get(path).await
            } else {
                visitor.post(path, &[("csrf", "none")]).await
            };
            match expected[column] {
                // Allowed, but the form has no valid CSRF token.
                0 => {
                    assert_eq!(status, 403, "{email} {method} {path}");
                    assert!(
                        page.contains("Form expired"),
                        "{email} {method} {path}: {page}"
                    );
                }
                403 => {
                    assert_eq!(status, 403, "{email} {method} {path}");
                    assert!(
                        page.contains("Not allowed"),
                        "{email} {method} {path}: the 403 page"
                    );
                }
                expected => assert_eq!(status, expected, "{email} {method} {path}"),
            }
        }
        // Navigation offers only what the role may open.
        assert_eq!(
            profile.contains("href=\"/settings/users\""),
            column == 0,
            "{email}: Users link"
        );
        assert!(
            profile.contains("href=\"/settings/profile\""),
            "{email}: Profile link"
        );
        assert_eq!(
            profile.contains("href=\"/settings/exports\""),
            column < 2,
            "{email}: Exports link"
        );
    }
}

#[tokio::test]
async fn every_route_follows_its_scope_and_every_page_its_role() {
    let server = TestServer::start();
    role_and_scope_tables(&server).await;
}

#[tokio::test]
async fn every_route_follows_its_scope_and_every_page_its_role_on_postgres() {
    let Some(database) = TestDatabase::create("every_route_follows_its_scope") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    role_and_scope_tables(&server).await;
}

#[tokio::test]
async fn a_disabled_user_and_a_revoked_key_stop_working_on_the_other_server_within_5_s() {
    let Some(database) = TestDatabase::create("a_disabled_user_stops_on_the_other_server") else {
        return;
    };
    let scratch = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = TestServer::start_on_database(&database.url, scratch[0].path(), &[]);
    let b = TestServer::start_on_database(&database.url, scratch[1].path(), &[]);
    let acme = a.account("acme");
    let admin = admin_key(&a);
    add_user(&a, "acme", "ada@acme.test", "admin");
    add_user(&a, "acme", "aud@acme.test", "auditor");
    let (_, list) = a.get("/api/v1/users", &admin).await;
    let aud_id = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "aud@acme.test")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // Signed in on B; B has verified (and cached) the read key.
    let mut on_b = Visitor::new(&b);
    assert_eq!(
        on_b.sign_in("acme", "aud@acme.test", PASSWORD, "/").await.0,
        303
    );
    assert_eq!(on_b.get("/settings/audit-logs").await.0, 200);
    for _ in 0..3 {
        assert_eq!(b.get("/api/v1/events", &acme.read).await.0, 200);
    }

    // A role change through A applies on B.
    let path = format!("/api/v1/users/{aud_id}");
    let (status, _) = patch(&a, &path, &admin, &json!({"role": "member"})).await;
    assert_eq!(status, 200);
    let changed = Instant::now();
    while on_b.get("/settings/audit-logs").await.0 != 403 {
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "B still shows audit data to a member after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "role change applied on the other server after {:?}",
        changed.elapsed()
    );
    let (status, _) = patch(&a, &path, &admin, &json!({"role": "auditor"})).await;
    assert_eq!(status, 200);

    // Disabled through A: B's session ends.
    let (status, _) = patch(&a, &path, &admin, &json!({"disabled": true})).await;
    assert_eq!(status, 200);
    let disabled = Instant::now();
    loop {
        let (status, _, _) = on_b.get("/settings/audit-logs").await;
        if status == 303 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            disabled.elapsed() < Duration::from_secs(5),
            "B still serves a disabled user's session after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "disabled user's session refused on the other server after {:?}",
        disabled.elapsed()
    );

    // A key revoked through A: B refuses it within 5 s.
    let (_, keys) = a.get("/api/v1/keys", &admin).await;
    let read_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scopes"] == json!(["read"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = request(
        &a,
        reqwest::Method::DELETE,
        &format!("/api/v1/keys/{read_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let revoked = Instant::now();
    assert_eq!(
        a.get("/api/v1/events", &acme.read).await.0,
        401,
        "at once on A"
    );
    loop {
        let status = b.get("/api/v1/events", &acme.read).await.0;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "B still accepts a revoked key after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "revoked key refused on the other server after {:?}",
        revoked.elapsed()
    );

    // The last-admin rule holds across servers: two admins, each demoted
    // through a different server at once — one of the two is refused.
    add_user(&a, "acme", "bob@acme.test", "admin");
    let (_, list) = a.get("/api/v1/users", &admin).await;
    let id_of = |email: &str| {
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (ada, bob) = (id_of("ada@acme.test"), id_of("bob@acme.test"));
    let body = json!({"role": "auditor"});
    let (ada_path, bob_path) = (
        format!("/api/v1/users/{ada}"),
        format!("/api/v1/users/{bob}"),
    );
    let (first, second) = tokio::join!(
        patch(&a, &ada_path, &admin, &body),
        patch(&b, &bob_path, &admin, &body),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{first:?} {second:?}");
    let (_, list) = b.get("/api/v1/users", &admin).await;
    let admins = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "admin" && u["status"] != "disabled")
        .count();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn the_cli_lists_disables_enables_sets_roles_and_resets_passwords() {
    let server = TestServer::start();
    let acme = server.account("acme");
    let _ = acme;
    add_user(&server, "acme", "ada@acme.test", "admin");
    add_user(&server, "acme", "aud@acme.test", "auditor");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec!["user", cmd, "--account", "acme"];
        all.extend_from_slice(extra);
        all
    };
    let table = server.cli(&args("list", &[]), "");
    assert!(
        table.starts_with("ID\tEMAIL\tROLE\tSTATUS\tCREATED\n"),
        "{table}"
    );
    assert!(
        table.contains("\taud@acme.test\tauditor\tactive\t"),
        "{table}"
    );
    server.cli(
        &args(
            "set-role",
            &["--email", "aud@acme.test", "--role", "member"],
        ),
        "",
    );
    server.cli(&args("disable", &["--email", "aud@acme.test"]), "");
    let table = server.cli(&args("list", &[]), "");
    assert!(
        table.contains("\taud@acme.test\tmember\tdisabled\t"),
        "{table}"
    );
    let mut visitor = Visitor::new(&server);
    assert_eq!(
        visitor
            .sign_in("acme", "aud@acme.test", PASSWORD, "/")
            .await
            .0,
        401
    );
    server.cli(&args("enable", &["--email", "aud@acme.test"]), "");
    assert_eq!(
        visitor
            .sign_in("acme", "aud@acme.test", PASSWORD, "/")
            .await
            .0,
        303
    );
    // The last admin.
    let refused = crate::helpers::run_cli_on(
        &crate::helpers::data_dir_args(&server.data_dir),
        &args(
            "set-role",
            &["--email", "ada@acme.test", "--role", "auditor"],
        ),
        "",
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("must keep an active admin"));
    // A reset prints a link that works in the console.
    let link = server.cli(&args("reset-password", &["--email", "aud@acme.test"]), "");
    let link = link.trim();
    assert!(link.starts_with("/welcome/"), "{link}");
    let (status, location, _) = use_link(&mut Visitor::new(&server), link, NEW_PASSWORD).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/settings/profile"),
        "a member lands on Profile"
    );
    // Each change is audited as the operator's (`source` system).
    let admin = admin_key(&server);
    let events = events_of(&server, &admin, "event_type=Auditlog%20User").await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "Update",
            "Disable",
            "Enable",
            "Password Reset",
            "Password Change"
        ]
    );
    for event in &events[..4] {
        assert_eq!(event["source"], json!({"kind": "system"}));
        assert!(event["actor"]["id"].as_str().unwrap().starts_with("cli:"));
    }
}
