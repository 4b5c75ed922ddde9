//! The web console over real HTTP, without a browser: redirects to sign-in,
//! sessions and their cookies, CSRF rejection, rate limiting, the answer to
//! failed sign-ins, security headers, escaping and member refusal. The
//! browser tests (tests/browser) drive the same pages in Chromium.

use crate::helpers::TestServer;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

pub(crate) const PASSWORD: &str = "correct horse battery";
const USER_AGENT: &str = "console-test/1.0";

/// A browser-like client: no automatic redirects, cookies kept by hand so
/// that tests can look at them.
pub(crate) struct Visitor {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Visitor {
    pub(crate) fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .user_agent(USER_AGENT)
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.into(), value.into()));
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, HeaderMap, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        self.keep_cookies(&headers);
        (status, headers, response.text().await.unwrap())
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        self.keep_cookies(&headers);
        (status, headers, response.text().await.unwrap())
    }

    /// Opens the sign-in form and submits it; returns the answer to the POST.
    pub(crate) async fn sign_in(
        &mut self,
        account: &str,
        email: &str,
        password: &str,
        next: &str,
    ) -> (u16, HeaderMap, String) {
        let (_, _, form) = self.get("/login").await;
        let csrf = hidden_value(&form, "csrf");
        self.post(
            "/login",
            &[
                ("account", account),
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
                ("next", next),
            ],
        )
        .await
    }
}

/// The value of the hidden input `name` in a page.
pub(crate) fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// `text` as the templates escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn location(headers: &HeaderMap) -> String {
    headers[LOCATION].to_str().unwrap().to_string()
}

pub(crate) fn add_user(server: &TestServer, account: &str, email: &str, role: &str) {
    server.cli(
        &[
            "user",
            "create",
            "--account",
            account,
            "--email",
            email,
            "--role",
            role,
        ],
        &format!("{PASSWORD}\n"),
    );
}

#[tokio::test]
async fn anonymous_visitors_sign_in_and_come_back_with_a_secure_session() {
    let server = TestServer::start();
    let account = server.account("acme");
    add_user(&server, "acme", "ada@acme.test", "admin");
    let mut visitor = Visitor::new(&server);

    let (status, headers, _) = visitor.get("/settings/audit-logs?action=Update").await;
    assert_eq!(status, 303);
    assert_eq!(
        location(&headers),
        "/login?next=%2Fsettings%2Faudit-logs%3Faction%3DUpdate"
    );

    let (status, headers, _) = visitor
        .sign_in(
            "acme",
            "Ada@Acme.test",
            PASSWORD,
            "/settings/audit-logs?action=Update",
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location(&headers), "/settings/audit-logs?action=Update");
    let session_cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("auditlog_session="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Max-Age=43200",
        "Path=/",
    ] {
        assert!(
            session_cookie.contains(attribute),
            "{session_cookie} lacks {attribute}"
        );
    }
    let (status, _, page) = visitor.get("/settings/audit-logs?action=Update").await;
    assert_eq!(status, 200);
    assert!(page.contains("ada@acme.test"));

    // The sign-in is an Authentication Login event of the account, with IP and user agent.
    let (_, body) = server
        .get("/api/v1/events?event_type=Authentication", &account.read)
        .await;
    let login = &body["events"][0];
    assert_eq!(login["action"], "Login");
    assert!(login["actor"]["id"].as_str().unwrap().starts_with("user:"));
    assert_eq!(login["actor"]["email"], "ada@acme.test");
    assert_eq!(login["context"]["ip"], "127.0.0.1");
    assert_eq!(login["context"]["user_agent"], USER_AGENT);

    // A `next` that would leave the site is ignored.
    let mut other = Visitor::new(&server);
    let (_, headers, _) = other
        .sign_in("acme", "ada@acme.test", PASSWORD, "//evil.test/phish")
        .await;
    assert_eq!(location(&headers), "/settings/audit-logs");
}

#[tokio::test]
async fn failed_sign_ins_look_the_same_whether_or_not_the_email_exists() {
    let server = TestServer::start();
    server.account("acme");
    add_user(&server, "acme", "ada@acme.test", "admin");
    let mut answers = Vec::new();
    for (account, email, password) in [
        ("acme", "ada@acme.test", "wrong password here"),
        ("acme", "nobody@acme.test", "wrong password here"),
        ("no-such-account", "ada@acme.test", PASSWORD),
    ] {
        let mut visitor = Visitor::new(&server);
        let (status, _, page) = visitor.sign_in(account, email, password, "/").await;
        assert_eq!(status, 401);
        assert!(!visitor.cookies.iter().any(|(n, _)| n == "auditlog_session"));
        // Everything but the echoed fields and the fresh CSRF token is identical.
        let csrf = hidden_value(&page, "csrf");
        answers.push(
            page.replace(&csrf, "CSRF")
                .replace(email, "EMAIL")
                .replace(account, "ACCOUNT"),
        );
    }
    assert!(answers[0].contains("Sign-in failed: the account, email or password is not right."));
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_account_and_ip() {
    let server = TestServer::start();
    server.account("acme");
    server.account("other");
    add_user(&server, "acme", "ada@acme.test", "admin");
    add_user(&server, "other", "bob@other.test", "admin");
    let mut visitor = Visitor::new(&server);
    for _ in 0..5 {
        let (status, _, _) = visitor
            .sign_in("acme", "ada@acme.test", "wrong password here", "/")
            .await;
        assert_eq!(status, 401);
    }
    // Blocked now, even with the right password.
    let (status, headers, page) = visitor
        .sign_in("acme", "ada@acme.test", PASSWORD, "/")
        .await;
    assert_eq!(status, 429);
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(page.contains("Too many failed sign-ins"));
    // Another account from the same address is not affected.
    let (status, _, _) = visitor
        .sign_in("other", "bob@other.test", PASSWORD, "/")
        .await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn state_changing_forms_without_the_csrf_token_are_refused() {
    let server = TestServer::start();
    server.account("acme");
    add_user(&server, "acme", "ada@acme.test", "admin");
    let mut visitor = Visitor::new(&server);

    // Sign-in without the form's token (a cross-site form post): refused, no session.
    let (status, _, _) = visitor
        .post(
            "/login",
            &[
                ("account", "acme"),
                ("email", "ada@acme.test"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert!(visitor.cookies.iter().all(|(n, _)| n != "auditlog_session"));

    let (status, _, _) = visitor
        .sign_in("acme", "ada@acme.test", PASSWORD, "/")
        .await;
    assert_eq!(status, 303);
    let (_, _, page) = visitor.get("/settings/audit-logs").await;
    let csrf = hidden_value(&page, "csrf");
    for forged in [vec![], vec![("csrf", "forged")]] {
        let (status, _, body) = visitor.post("/logout", &forged).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("Form expired"));
        let (status, _, _) = visitor.get("/settings/audit-logs").await;
        assert_eq!(status, 200, "the session survives a forged sign-out");
    }
    let (status, headers, _) = visitor.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(location(&headers), "/login");
    let (status, _, _) = visitor.get("/settings/audit-logs").await;
    assert_eq!(status, 303, "signed out");
}

#[tokio::test]
async fn console_pages_carry_security_headers_and_no_inline_script_or_style() {
    let server = TestServer::start();
    server.account("acme");
    add_user(&server, "acme", "ada@acme.test", "admin");
    let mut visitor = Visitor::new(&server);
    let (_, login_headers, login_page) = visitor.get("/login").await;
    visitor
        .sign_in("acme", "ada@acme.test", PASSWORD, "/")
        .await;
    let (status, headers, page) = visitor.get("/settings/audit-logs").await;
    assert_eq!(status, 200);
    for (headers, page) in [(&login_headers, &login_page), (&headers, &page)] {
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        // What the policy forbids is not there to be blocked.
        assert!(!page.contains(" style="), "inline style attribute");
        assert!(!page.contains("<style"), "inline style element");
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=\"/console/assets/console.js\" defer></script>")
                .count(),
            "every script is the embedded file"
        );
        assert!(
            !page.to_lowercase().contains(" onload=") && !page.to_lowercase().contains(" onclick=")
        );
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "nothing from another site"
        );
    }
    // The session secret never appears in a URL or page.
    let token = &visitor
        .cookies
        .iter()
        .find(|(n, _)| n == "auditlog_session")
        .unwrap()
        .1;
    assert!(!page.contains(token.as_str()));
    let (status, headers, css) = visitor.get("/console/assets/console.css").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.contains("body"));
}

#[tokio::test]
async fn event_fields_are_escaped() {
    let server = TestServer::start();
    let account = server.account("acme");
    add_user(&server, "acme", "ada@acme.test", "admin");
    let script = "<script>alert('x')</script>";
    let img = "<img src=x onerror=alert(1)>";
    let quote = "\" onmouseover=\"alert(2)";
    let (status, _) = server
        .post(
            "/api/v1/events",
            &account.ingest,
            &json!({
                "event_type": "Element", "action": "Update",
                "actor": {"id": quote, "name": script, "email": img},
                "project": img, "target": {"id": quote, "name": script},
                "details": {"changes": [{"field": script, "old": img, "new": {"html": script}}]}
            }),
        )
        .await;
    assert_eq!(status, 201);
    let mut visitor = Visitor::new(&server);
    visitor
        .sign_in("acme", "ada@acme.test", PASSWORD, "/")
        .await;
    let (status, _, page) = visitor.get("/settings/audit-logs").await;
    assert_eq!(status, 200);
    assert!(!page.contains(script) && !page.contains(img) && !page.contains(quote));
    // Each payload is there, as text.
    for payload in [script, img, quote] {
        assert!(
            page.contains(&escaped(payload)),
            "{payload} is not shown escaped"
        );
    }
    // Also inside the expandable JSON of a structured value.
    assert!(page.contains(&escaped(&json!({"html": script}).to_string())));
}

#[tokio::test]
async fn members_are_refused_and_bad_filters_are_explained() {
    let server = TestServer::start();
    server.account("acme");
    add_user(&server, "acme", "mia@acme.test", "member");
    add_user(&server, "acme", "ada@acme.test", "admin");
    let mut member = Visitor::new(&server);
    let (status, _, _) = member.sign_in("acme", "mia@acme.test", PASSWORD, "/").await;
    assert_eq!(status, 303);
    let (status, _, page) = member.get("/settings/audit-logs").await;
    assert_eq!(status, 403);
    assert!(page.contains("Not allowed") && page.contains("administrators and auditors"));
    assert!(!page.contains("<table"));

    let mut admin = Visitor::new(&server);
    admin.sign_in("acme", "ada@acme.test", PASSWORD, "/").await;
    let (status, _, page) = admin.get("/settings/audit-logs?event_type=Nope").await;
    assert_eq!(status, 400);
    assert!(page.contains(&escaped(
        "event_type \"Nope\" is not in this account's taxonomy"
    )));
    let (status, _, page) = admin
        .get("/settings/audit-logs?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("Change or clear the filters"));
}

#[tokio::test]
async fn a_session_sees_only_its_own_account() {
    let server = TestServer::start();
    let acme = server.account("acme");
    let other = server.account("other");
    add_user(&server, "acme", "ada@acme.test", "admin");
    for (account, actor, project) in [
        (&acme, "u-acme", "AcmeProject"),
        (&other, "u-other", "OtherProject"),
    ] {
        let (status, _) = server.post("/api/v1/events",
            &account.ingest,
            &json!({"event_type": "Element", "action": "Create", "actor": {"id": actor}, "project": project, "target": {"id": format!("T-{actor}")}}),
        )
        .await;
        assert_eq!(status, 201);
    }
    let mut visitor = Visitor::new(&server);
    visitor
        .sign_in("acme", "ada@acme.test", PASSWORD, "/")
        .await;
    let (_, _, page) = visitor.get("/settings/audit-logs").await;
    assert!(page.contains("u-acme") && page.contains("AcmeProject"));
    assert!(
        !page.contains("u-other") && !page.contains("OtherProject"),
        "nothing of another account, not even in the filter lists"
    );
    let (_, _, page) = visitor
        .get("/settings/audit-logs?target_id=T-u-other")
        .await;
    assert!(page.contains("No events match these filters"));
}

#[tokio::test]
async fn exports_from_the_console_need_the_csrf_token_and_the_admin_role() {
    let server = TestServer::start();
    let acme = server.account("acme");
    server.account("other");
    add_user(&server, "acme", "ada@acme.test", "admin");
    add_user(&server, "acme", "mia@acme.test", "member");
    add_user(&server, "other", "bob@other.test", "admin");
    let (status, _) = server
        .post(
            "/api/v1/events",
            &acme.ingest,
            &json!({"event_type": "Element", "action": "Create", "actor": {"id": "u-1"}}),
        )
        .await;
    assert_eq!(status, 201);
    let mut admin = Visitor::new(&server);
    admin.sign_in("acme", "ada@acme.test", PASSWORD, "/").await;

    // Without script, Export opens a confirmation page that states the filters.
    let (status, _, page) = admin
        .get("/settings/exports/new?event_type=Element&action=Create")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("<b>Event Type</b>: Element") && page.contains("<b>Action</b>: Create"));
    let csrf = hidden_value(&page, "csrf");

    let form = [("format", "csv"), ("event_type", "Element")];
    let (status, _, body) = admin
        .post(
            "/settings/exports",
            &[&form[..], &[("csrf", "forged")]].concat(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (_, jobs) = server.get("/api/v1/exports", &acme.read).await;
    assert_eq!(
        jobs["exports"].as_array().unwrap().len(),
        0,
        "nothing was exported"
    );

    let (status, headers, _) = admin
        .post(
            "/settings/exports",
            &[&form[..], &[("csrf", csrf.as_str())]].concat(),
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location(&headers),
        "/settings/audit-logs?event_type=Element&export=started"
    );
    let (_, jobs) = server.get("/api/v1/exports", &acme.read).await;
    let job = &jobs["exports"][0];
    assert_eq!(job["format"], "csv");
    assert_eq!(job["filters"]["event_type"], json!(["Element"]));
    assert!(job["requested_by"].as_str().unwrap().starts_with("user:"));
    let (_, _, page) = admin.get("/settings/exports").await;
    assert!(page.contains(&format!("data-export-id=\"{}\"", job["id"])));

    // A member sees neither the list nor a file; another account's admin gets no file.
    let mut member = Visitor::new(&server);
    member.sign_in("acme", "mia@acme.test", PASSWORD, "/").await;
    let download = format!("/settings/exports/{}/download", job["id"]);
    for path in ["/settings/exports", download.as_str()] {
        let (status, _, page) = member.get(path).await;
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("Not allowed") && page.contains("administrators and auditors"));
    }
    let mut stranger = Visitor::new(&server);
    stranger
        .sign_in("other", "bob@other.test", PASSWORD, "/")
        .await;
    let (status, _, _) = stranger.get(&download).await;
    assert_eq!(status, 404);
    let (_, _, page) = stranger.get("/settings/exports").await;
    assert!(page.contains("No exports yet"));
}
