//! The console's administration pages and two-factor sign-in over real
//! HTTP, on both backends (issue 18): Settings > API Keys creates a key
//! whose secret is shown once and works at once, and revokes it (401 on the
//! next request); TOTP enrolment (the page shows the secret, a code of it
//! confirms, ten recovery codes), sign-in then needs a code, a code is
//! never accepted twice, a recovery code works once, wrong codes count
//! toward the sign-in rate limit, an account's requirement leads users
//! without two-factor to enrolment; each change audited, and neither the
//! secret nor a recovery code is anywhere in the store.

use crate::console::{add_user, hidden_value, Visitor, PASSWORD};
use crate::helpers::{error_code, TestServer};
use auditlog_server::two_factor::totp;
use auditlog_store_postgres::test_support::TestDatabase;
use serde_json::{json, Value};

/// The text of the element with `id`, up to its closing tag.
fn element_text(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let after = &html[start..];
    let open_end = after.find('>').unwrap() + 1;
    after[open_end..].split('<').next().unwrap().to_string()
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.chars() {
        buffer = (buffer << 5) | ALPHABET.find(c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn api_keys_page(server: &TestServer) {
    server.account("acme");
    add_user(server, "acme", "ada@acme.test", "admin");
    add_user(server, "acme", "aud@acme.test", "auditor");
    let mut admin = Visitor::new(server);
    assert_eq!(
        admin
            .sign_in("acme", "ada@acme.test", PASSWORD, "/")
            .await
            .0,
        303
    );
    let (status, _, page) = admin.get("/settings/api-keys").await;
    assert_eq!(status, 200);
    let csrf = hidden_value(&page, "csrf");

    // Without the session's CSRF token nothing happens.
    let (status, _, _) = admin
        .post(
            "/settings/api-keys",
            &[("csrf", "nope"), ("name", "x"), ("scope_read", "on")],
        )
        .await;
    assert_eq!(status, 403);
    // A refusal says what to fix.
    let (status, _, page) = admin
        .post("/settings/api-keys", &[("csrf", &csrf), ("name", "ci")])
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("Choose at least one scope"), "{page}");

    // Created: the secret is on this page once; the name is escaped.
    let (status, _, page) = admin
        .post(
            "/settings/api-keys",
            &[
                ("csrf", &csrf),
                ("name", "<b>ci</b>"),
                ("scope_ingest", "on"),
                ("scope_read", "on"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let secret = element_text(&page, "key-secret");
    assert!(secret.starts_with("alk_"), "{secret}");
    assert!(!page.contains("<b>ci</b>") && page.contains("&#60;b&#62;ci&#60;/b&#62;"));
    let (status, _) = server.get("/api/v1/events", &secret).await;
    assert_eq!(status, 200, "the key works at once");
    let (status, _, list) = admin.get("/settings/api-keys").await;
    assert_eq!(status, 200);
    assert!(!list.contains(&secret[8..]), "the secret is shown once");
    assert!(list.contains(&secret[..8]), "the prefix is listed");
    let row = list
        .split("<tr data-key-id=\"")
        .find(|row| row.contains(&secret[..8]))
        .unwrap();
    let id = row.split('"').next().unwrap().to_string();
    assert!(
        list.contains("ingest, read") && list.contains("user:"),
        "{list}"
    );

    // An auditor may not open or use the page.
    let mut auditor = Visitor::new(server);
    assert_eq!(
        auditor
            .sign_in("acme", "aud@acme.test", PASSWORD, "/")
            .await
            .0,
        303
    );
    let (status, _, page) = auditor.get("/settings/api-keys").await;
    assert_eq!(status, 403);
    let auditor_csrf = hidden_value(&page, "csrf");
    let (status, _, _) = auditor
        .post(
            "/settings/api-keys/revoke",
            &[("csrf", &auditor_csrf), ("id", &id)],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(server.get("/api/v1/events", &secret).await.0, 200);

    // Revoked: the next request is 401.
    let (status, headers, _) = admin
        .post("/settings/api-keys/revoke", &[("csrf", &csrf), ("id", &id)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/settings/api-keys?done=revoked");
    let (status, body) = server.get("/api/v1/events", &secret).await;
    assert_eq!((status, error_code(&body)), (401, "invalid_api_key".into()));
    let (_, _, list) = admin.get("/settings/api-keys").await;
    assert!(list.contains("data-status=\"revoked\""), "{list}");

    // Both are `Auditlog API Key` events by the console user.
    let read = server
        .cli(
            &["key", "create", "--account", "acme", "--scope", "read"],
            "",
        )
        .trim()
        .to_string();
    let (_, page) = server
        .get("/api/v1/events?event_type=Auditlog%20API%20Key", &read)
        .await;
    let events = page["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["Revoke", "Create"]);
    for event in events {
        assert_eq!(event["source"]["kind"], "console");
        assert_eq!(event["actor"]["email"], "ada@acme.test");
    }
}

#[tokio::test]
async fn the_console_creates_and_revokes_api_keys() {
    let server = TestServer::start();
    api_keys_page(&server).await;
}

#[tokio::test]
async fn the_console_creates_and_revokes_api_keys_on_postgres() {
    let Some(database) = TestDatabase::create("the_console_creates_and_revokes_api_keys") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    api_keys_page(&server).await;
}

/// Signs in with the password; returns the code step's page.
async fn password_step(visitor: &mut Visitor, email: &str) -> String {
    let (status, headers, page) = visitor.sign_in("acme", email, PASSWORD, "/").await;
    assert_eq!(status, 200, "the code step, not a session: {page}");
    assert!(
        !headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("auditlog_session=")),
        "no session before the code"
    );
    assert!(page.contains("id=\"code\""), "{page}");
    page
}

async fn submit_code(visitor: &mut Visitor, page: &str, code: &str) -> (u16, String) {
    let csrf = hidden_value(page, "csrf");
    let (status, _, page) = visitor
        .post("/login/two-factor", &[("csrf", &csrf), ("code", code)])
        .await;
    (status, page)
}

/// Returns the secret (base32) and the recovery codes, for the store grep.
async fn two_factor_story(server: &TestServer) -> (String, Vec<String>) {
    server.account("acme");
    add_user(server, "acme", "ada@acme.test", "admin");
    add_user(server, "acme", "mia@acme.test", "member");
    let mut ada = Visitor::new(server);
    assert_eq!(
        ada.sign_in("acme", "ada@acme.test", PASSWORD, "/").await.0,
        303
    );
    let (status, _, page) = ada.get("/settings/profile/two-factor").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"start-totp\""), "{page}");
    let csrf = hidden_value(&page, "csrf");

    // Set up: the QR code and the secret, confirmed with a code.
    let (status, _, page) = ada
        .post("/settings/profile/two-factor/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("src=\"data:image/svg+xml;base64,"),
        "a QR code"
    );
    let secret_text = element_text(&page, "totp-secret");
    let secret = base32_decode(&secret_text);
    assert_eq!(secret.len(), totp::SECRET_BYTES);
    let (status, _, page) = ada
        .post(
            "/settings/profile/two-factor/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(status, 422, "a wrong code does not confirm");
    assert!(
        page.contains(&secret_text),
        "the pending secret is shown again"
    );
    let now = unix_now();
    let (status, _, page) = ada
        .post(
            "/settings/profile/two-factor/confirm",
            &[("csrf", &csrf), ("code", &totp::code_at(&secret, now))],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let recovery: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10, "{page}");
    let (_, _, page) = ada.get("/settings/profile/two-factor").await;
    assert!(page.contains("10 recovery code(s) left"), "{page}");
    assert!(
        !page.contains(&secret_text),
        "the secret is never shown again"
    );

    // Sign-in now needs a code: wrong ones are refused, a right one signs in
    // (the next step's: this step's code was used to confirm), and the same
    // code is refused the second time.
    let mut again = Visitor::new(server);
    let page = password_step(&mut again, "ada@acme.test").await;
    let (status, page) = submit_code(&mut again, &page, "123456").await;
    assert_eq!(status, 401, "{page}");
    let code = totp::code_at(&secret, now + 30);
    let (status, _) = submit_code(&mut again, &page, &code).await;
    assert_eq!(status, 303, "signed in with the code");
    assert_eq!(again.get("/settings/audit-logs").await.0, 200);
    let mut replay = Visitor::new(server);
    let page = password_step(&mut replay, "ada@acme.test").await;
    let (status, page) = submit_code(&mut replay, &page, &code).await;
    assert_eq!(status, 401, "a code is accepted once");
    assert!(page.contains("used already"), "{page}");
    // A recovery code works once, typed any way.
    let (status, _) = submit_code(&mut replay, &page, &recovery[0].to_uppercase()).await;
    assert_eq!(status, 303);
    let mut twice = Visitor::new(server);
    let page = password_step(&mut twice, "ada@acme.test").await;
    let (status, _) = submit_code(&mut twice, &page, &recovery[0]).await;
    assert_eq!(status, 401);

    // The admin requires two-factor for the account: a member without it
    // is signed in and led to enrolment.
    let (status, headers, _) = ada
        .post(
            "/settings/profile/two-factor/require",
            &[("csrf", &csrf), ("required", "on")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/settings/profile/two-factor?done=required"
    );
    let mut mia = Visitor::new(server);
    let (status, headers, _) = mia.sign_in("acme", "mia@acme.test", PASSWORD, "/").await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/settings/profile/two-factor?required=1"
    );
    let (status, _, page) = mia.get("/settings/profile/two-factor?required=1").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"required-notice\""), "{page}");
    assert!(
        !page.contains("id=\"require-form\""),
        "only admins set the requirement"
    );
    let mia_csrf = hidden_value(&page, "csrf");
    let (status, _, _) = mia
        .post(
            "/settings/profile/two-factor/require",
            &[("csrf", &mia_csrf)],
        )
        .await;
    assert_eq!(status, 403);

    // Failures count toward the sign-in rate limit: 5 at once (the last
    // sign-in, Mia's, started the count afresh), then 429.
    let mut limited = Visitor::new(server);
    let mut page = password_step(&mut limited, "ada@acme.test").await;
    let mut status = 0;
    for _ in 0..6 {
        (status, page) = submit_code(&mut limited, &page, "999999").await;
        if status == 429 {
            break;
        }
    }
    assert_eq!(status, 429, "{page}");

    // Turning it off takes a code.
    let (status, _, _) = ada
        .post(
            "/settings/profile/two-factor/disable",
            &[("csrf", &csrf), ("code", "nope")],
        )
        .await;
    assert_eq!(status, 422);
    let (status, headers, _) = ada
        .post(
            "/settings/profile/two-factor/disable",
            &[("csrf", &csrf), ("code", &recovery[1])],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/settings/profile/two-factor?done=disabled"
    );

    // Audited: enable, requirement, disable; never a secret or a code.
    let read = server
        .cli(
            &["key", "create", "--account", "acme", "--scope", "read"],
            "",
        )
        .trim()
        .to_string();
    let (_, users) = server
        .get("/api/v1/events?event_type=Auditlog%20User", &read)
        .await;
    let summary: Vec<(String, Value)> = users["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            assert_eq!(e["source"]["kind"], "console");
            (
                e["action"].as_str().unwrap().to_string(),
                e["details"]["changes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Enable Two-Factor".to_string(),
                json!([{"field": "two_factor", "old": false, "new": true}])
            ),
            (
                "Disable Two-Factor".to_string(),
                json!([{"field": "two_factor", "old": true, "new": false}])
            ),
        ]
    );
    let (_, account) = server
        .get("/api/v1/events?event_type=Auditlog%20Account", &read)
        .await;
    assert_eq!(
        account["events"][0]["details"]["changes"],
        json!([{"field": "require_two_factor", "old": false, "new": true}])
    );
    let (_, everything) = server.get("/api/v1/events?limit=1000", &read).await;
    let text = everything.to_string();
    assert!(!text.contains(&secret_text));
    for code in &recovery {
        assert!(!text.contains(code.as_str()), "a recovery code in an event");
    }
    (secret_text, recovery)
}

#[tokio::test]
async fn two_factor_sign_in_enrols_needs_a_code_once_and_is_audited() {
    let server = TestServer::start();
    let (secret, recovery) = two_factor_story(&server).await;
    // Neither the secret nor a recovery code is anywhere in the store.
    let mut needles: Vec<Vec<u8>> = vec![secret.as_bytes().to_vec(), base32_decode(&secret)];
    needles.extend(recovery.iter().map(|c| c.as_bytes().to_vec()));
    needles.extend(recovery.iter().map(|c| c.replace('-', "").into_bytes()));
    for file in walk(&server.data_dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{file:?} holds a secret or recovery code"
            );
        }
    }
}

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

#[tokio::test]
async fn two_factor_sign_in_enrols_needs_a_code_once_and_is_audited_on_postgres() {
    let Some(database) = TestDatabase::create("two_factor_sign_in_enrols") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    two_factor_story(&server).await;
}

/// Signs `email` in with the password and enrols TOTP; returns the secret
/// and the recovery codes.
async fn enrol(server: &TestServer, email: &str) -> (Vec<u8>, Vec<String>) {
    let mut visitor = Visitor::new(server);
    assert_eq!(visitor.sign_in("acme", email, PASSWORD, "/").await.0, 303);
    let (_, _, page) = visitor.get("/settings/profile/two-factor").await;
    let csrf = hidden_value(&page, "csrf");
    let (status, _, page) = visitor
        .post("/settings/profile/two-factor/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "{page}");
    let secret = base32_decode(&element_text(&page, "totp-secret"));
    let code = totp::code_at(&secret, unix_now());
    let (status, _, page) = visitor
        .post(
            "/settings/profile/two-factor/confirm",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let recovery: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10, "{page}");
    (secret, recovery)
}

/// Sets the user's `disabled` flag over the API with an admin key.
async fn set_disabled(server: &TestServer, admin: &str, email: &str, disabled: bool) {
    let (status, list) = server.get("/api/v1/users", admin).await;
    assert_eq!(status, 200, "{list}");
    let id = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no {email} in {list}"))["id"]
        .as_i64()
        .unwrap();
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(admin)
        .json(&json!({ "disabled": disabled }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

fn has_session_cookie(headers: &reqwest::header::HeaderMap) -> bool {
    headers.get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("auditlog_session=") && !c.starts_with("auditlog_session=;")
    })
}

/// A user disabled between the password and the code is refused at the
/// code step, with a TOTP code and with a recovery code alike (neither is
/// used up), and the refusal is a `Login Failed` of reason `disabled`;
/// enabled again, the same recovery code signs in.
async fn disabled_between_the_steps(server: &TestServer) {
    server.account("acme");
    add_user(server, "acme", "ada@acme.test", "admin");
    add_user(server, "acme", "mia@acme.test", "member");
    let admin = server
        .cli(
            &["key", "create", "--account", "acme", "--scope", "admin"],
            "",
        )
        .trim()
        .to_string();
    let (secret, recovery) = enrol(server, "mia@acme.test").await;

    // Two sign-ins pass the password step; then an admin disables Mia.
    let mut with_code = Visitor::new(server);
    let code_page = password_step(&mut with_code, "mia@acme.test").await;
    let mut with_recovery = Visitor::new(server);
    let recovery_page = password_step(&mut with_recovery, "mia@acme.test").await;
    set_disabled(server, &admin, "mia@acme.test", true).await;

    // A right code of a step never used: refused, no session.
    let code = totp::code_at(&secret, unix_now() + 30);
    let csrf = hidden_value(&code_page, "csrf");
    let (status, headers, page) = with_code
        .post("/login/two-factor", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("Sign-in failed"), "{page}");
    assert!(
        !has_session_cookie(&headers),
        "no session for a disabled user"
    );
    assert_eq!(with_code.get("/settings/audit-logs").await.0, 303);
    // The pending sign-in is over: the code step sends back to the password.
    let (status, headers, _) = with_code.get("/login/two-factor").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/login");

    let csrf = hidden_value(&recovery_page, "csrf");
    let (status, headers, page) = with_recovery
        .post(
            "/login/two-factor",
            &[("csrf", &csrf), ("code", &recovery[0])],
        )
        .await;
    assert_eq!(status, 401, "{page}");
    assert!(!has_session_cookie(&headers));

    // Both refusals are audited with the reason class.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let reasons = loop {
        let (_, page) = server
            .get(
                "/api/v1/events?event_type=Authentication&action=Login%20Failed",
                &admin,
            )
            .await;
        let reasons: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["details"]["reason"].as_str().unwrap().to_string())
            .collect();
        if reasons.len() >= 2 || std::time::Instant::now() > deadline {
            break reasons;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(reasons, ["disabled", "disabled"]);

    // Enabled again, Mia signs in with that recovery code: it was not used
    // up by the refused step.
    set_disabled(server, &admin, "mia@acme.test", false).await;
    let mut back = Visitor::new(server);
    let page = password_step(&mut back, "mia@acme.test").await;
    let (status, _) = submit_code(&mut back, &page, &recovery[0]).await;
    assert_eq!(status, 303);
    assert_eq!(back.get("/settings/audit-logs").await.0, 403, "a member");
}

#[tokio::test]
async fn a_user_disabled_after_the_password_is_refused_at_the_code_step() {
    let server = TestServer::start();
    disabled_between_the_steps(&server).await;
}

#[tokio::test]
async fn a_user_disabled_after_the_password_is_refused_at_the_code_step_on_postgres() {
    let Some(database) = TestDatabase::create("disabled_at_the_code_step") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    disabled_between_the_steps(&server).await;
}

async fn put_security(server: &TestServer, key: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(server.url("/api/v1/account/security"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Where a password sign-in of `email` sends the browser.
async fn sign_in_location(server: &TestServer, email: &str) -> String {
    let mut visitor = Visitor::new(server);
    let (status, headers, page) = visitor.sign_in("acme", email, PASSWORD, "/").await;
    assert_eq!(status, 303, "{page}");
    headers["location"].to_str().unwrap().to_string()
}

/// `GET/PUT /api/v1/account/security`: an admin key requires two-factor
/// sign-in for the account (users without it are led to enrolment at their
/// next sign-in) and makes it optional again; each change is an `Auditlog
/// Account` `Update` with the old and new value, by the key; a bad body is
/// a 422 naming the field and the rule; a read key may not.
async fn requirement_over_the_api(server: &TestServer) {
    server.account("acme");
    add_user(server, "acme", "mia@acme.test", "member");
    let key = |scope: &str| {
        server
            .cli(
                &["key", "create", "--account", "acme", "--scope", scope],
                "",
            )
            .trim()
            .to_string()
    };
    let (admin, read) = (key("admin"), key("read"));

    let (status, body) = server.get("/api/v1/account/security", &admin).await;
    assert_eq!((status, body), (200, json!({"require_two_factor": false})));
    assert_eq!(server.get("/api/v1/account/security", &read).await.0, 403);
    let (status, body) = put_security(server, &read, &json!({"require_two_factor": true})).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "insufficient_scope".into())
    );

    for (body, field, rule) in [
        (json!({}), "require_two_factor", "missing"),
        (
            json!({"require_two_factor": "on"}),
            "require_two_factor",
            "not_a_boolean",
        ),
        (
            json!({"require_two_factor": true, "mfa": 1}),
            "mfa",
            "unknown_field",
        ),
        (json!([true]), "body", "not_an_object"),
    ] {
        let (status, answer) = put_security(server, &admin, &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        assert_eq!(answer["error"]["details"]["rule"], rule, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    assert_eq!(sign_in_location(server, "mia@acme.test").await, "/");

    // Required: Mia, without two-factor sign-in, is led to enrolment.
    let (status, body) = put_security(server, &admin, &json!({"require_two_factor": true})).await;
    assert_eq!((status, body), (200, json!({"require_two_factor": true})));
    let (_, body) = server.get("/api/v1/account/security", &admin).await;
    assert_eq!(body, json!({"require_two_factor": true}));
    assert_eq!(
        sign_in_location(server, "mia@acme.test").await,
        "/settings/profile/two-factor?required=1"
    );
    // The same value again changes (and audits) nothing.
    assert_eq!(
        put_security(server, &admin, &json!({"require_two_factor": true}))
            .await
            .0,
        200
    );
    // Optional again.
    let (status, body) = put_security(server, &admin, &json!({"require_two_factor": false})).await;
    assert_eq!((status, body), (200, json!({"require_two_factor": false})));
    assert_eq!(sign_in_location(server, "mia@acme.test").await, "/");

    let (_, page) = server
        .get("/api/v1/events?event_type=Auditlog%20Account", &read)
        .await;
    let events: Vec<&Value> = page["events"].as_array().unwrap().iter().rev().collect();
    let changes: Vec<&Value> = events.iter().map(|e| &e["details"]["changes"]).collect();
    assert_eq!(
        changes,
        [
            &json!([{"field": "require_two_factor", "old": false, "new": true}]),
            &json!([{"field": "require_two_factor", "old": true, "new": false}]),
        ]
    );
    for event in events {
        assert_eq!(event["action"], "Update");
        assert_eq!(event["source"]["kind"], "api_key", "{event}");
        assert!(
            event["actor"]["id"]
                .as_str()
                .unwrap()
                .starts_with("api-key:"),
            "{event}"
        );
    }
}

#[tokio::test]
async fn the_api_requires_two_factor_for_the_account() {
    let server = TestServer::start();
    requirement_over_the_api(&server).await;
}

#[tokio::test]
async fn the_api_requires_two_factor_for_the_account_on_postgres() {
    let Some(database) = TestDatabase::create("the_api_requires_two_factor") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_database(&database.url, scratch.path(), &[]);
    requirement_over_the_api(&server).await;
}
