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
