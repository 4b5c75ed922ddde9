//! The OpenAPI description against the code: every route registered in the
//! source is described (and nothing else is), the document holds together
//! as OpenAPI 3, and the types it describes but the server never serializes
//! (stored events, request bodies) match what the server sends and accepts.

use auditlog_server::api::openapi;
use auditlog_server::api::schema;
use auditlog_server::error::ErrorBody;
use auditlog_server::AppState;
use auditlog_store::{Scope, Store};
use auditlog_store_sqlite::SqliteStore;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

/// The console's routes are left out of the description on purpose: they
/// are HTML pages and form posts for a browser signed in with a session
/// cookie (with CSRF tokens), not part of the JSON API that clients program
/// against. Each must be declared under `src/console/`.
const CONSOLE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/settings"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/settings/audit-logs"),
    ("GET", "/settings/audit-logs/live"),
    ("GET", "/settings/audit-logs/query-check"),
    ("GET", "/settings/exports"),
    ("POST", "/settings/exports"),
    ("GET", "/settings/exports/new"),
    ("GET", "/settings/exports/{id}/download"),
    ("GET", "/console/assets/console.css"),
    ("GET", "/console/assets/console.js"),
    ("GET", "/settings/log-streams"),
    ("GET", "/settings/log-streams/new"),
    ("GET", "/settings/log-streams/{id}"),
    ("GET", "/settings/log-streams/{id}/edit"),
    ("POST", "/settings/log-streams"),
    ("POST", "/settings/log-streams/{id}/delete"),
    ("POST", "/settings/log-streams/{id}/edit"),
    ("POST", "/settings/log-streams/{id}/replay"),
    ("POST", "/settings/log-streams/{id}/status"),
    ("POST", "/settings/log-streams/{id}/test"),
    ("GET", "/settings/event-types"),
    ("POST", "/settings/event-types"),
    ("POST", "/settings/event-types/actions"),
    ("POST", "/settings/event-types/retire"),
    ("POST", "/settings/event-types/retire-action"),
    ("GET", "/settings/api-keys"),
    ("POST", "/settings/api-keys"),
    ("POST", "/settings/api-keys/revoke"),
    ("GET", "/login/two-factor"),
    ("POST", "/login/two-factor"),
    ("GET", "/settings/profile/two-factor"),
    ("POST", "/settings/profile/two-factor/start"),
    ("POST", "/settings/profile/two-factor/confirm"),
    ("POST", "/settings/profile/two-factor/disable"),
    ("POST", "/settings/profile/two-factor/require"),
    ("GET", "/settings/users"),
    ("POST", "/settings/users"),
    ("POST", "/settings/users/{id}/role"),
    ("POST", "/settings/users/{id}/disable"),
    ("POST", "/settings/users/{id}/enable"),
    ("POST", "/settings/users/{id}/reset-password"),
    ("GET", "/settings/profile"),
    ("POST", "/settings/profile/password"),
    ("POST", "/settings/profile/sessions/{id}/end"),
    ("GET", "/welcome/{token}"),
    ("POST", "/welcome/{token}"),
    ("GET", "/settings/retention"),
    ("POST", "/settings/retention"),
    ("GET", "/settings/personal-data"),
    ("POST", "/settings/personal-data"),
    ("POST", "/settings/personal-data/erasures"),
    ("POST", "/settings/retention/holds"),
    ("POST", "/settings/retention/holds/release"),
];

const METHODS: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "trace",
];

fn document() -> Value {
    serde_json::from_str(openapi::json()).expect("the served description is JSON")
}

/// (METHOD, path) of every operation in the description.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

// ------------------------------------------------------------ source scan

/// A `.route(PATH, METHOD_ROUTER)` call found in the source.
#[derive(Debug)]
struct SourceRoute {
    method: String,
    path: String,
    file: PathBuf,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of a call's arguments: from just after `(` to its matching `)`.
fn call_arguments(text: &str) -> &str {
    let mut depth = 1;
    let mut in_string = false;
    let mut previous = ' ';
    for (i, c) in text.char_indices() {
        match c {
            '"' if previous != '\\' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
        previous = c;
    }
    panic!("unbalanced call: {text:.80}");
}

/// The first argument, up to its top-level comma.
fn split_first_argument(arguments: &str) -> (&str, &str) {
    let mut depth = 0;
    for (i, c) in arguments.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return (arguments[..i].trim(), &arguments[i + 1..]),
            _ => {}
        }
    }
    panic!("a route call without a method router: {arguments}");
}

/// `module::NAME` used as a route path, resolved to the string constant it
/// names in the module beside `file`.
fn resolve_constant(file: &Path, expression: &str) -> String {
    let (module, name) = expression
        .rsplit_once("::")
        .unwrap_or_else(|| panic!("cannot resolve route path {expression} in {file:?}"));
    let base = if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    let module = module.rsplit("::").next().unwrap();
    let candidates = [
        base.join(format!("{module}.rs")),
        base.join(module).join("mod.rs"),
    ];
    let needle = format!("const {name}: &str = \"");
    for candidate in candidates {
        if let Ok(text) = std::fs::read_to_string(&candidate) {
            if let Some(start) = text.find(&needle) {
                let rest = &text[start + needle.len()..];
                return rest[..rest.find('"').unwrap()].to_string();
            }
        }
    }
    panic!("cannot resolve route path {expression} in {file:?}: no `{needle}…` beside it");
}

/// The methods a method router such as `get(a).post(b)` answers.
fn methods_of(method_router: &str) -> Vec<String> {
    let mut found = Vec::new();
    for method in METHODS.iter().chain(&["any"]) {
        let needle = format!("{method}(");
        let mut from = 0;
        while let Some(at) = method_router[from..].find(&needle) {
            let at = from + at;
            let before = method_router[..at].chars().last().unwrap_or(' ');
            if !(before.is_alphanumeric() || before == '_') {
                assert_ne!(
                    *method, "any",
                    "a route answers any method; name each so it can be described"
                );
                found.push(method.to_uppercase());
            }
            from = at + needle.len();
        }
    }
    found
}

/// Every route registered anywhere in the crate's source. Axum cannot list
/// a router's routes, so the source is read: every `.route(` call, its
/// path (a literal or a constant) and its methods.
fn routes_in_source() -> Vec<SourceRoute> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut routes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Routers built by unit tests (at the end of a file) serve nothing.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for hidden in [".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !code.contains(hidden),
                "{file:?} registers routes with `{hidden}`, which this test cannot read; use `.route`"
            );
        }
        for (at, _) in code.match_indices(".route(") {
            let arguments = call_arguments(&code[at + ".route(".len()..]);
            let (path, method_router) = split_first_argument(arguments);
            let path = match path.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_string(),
                None => resolve_constant(&file, path),
            };
            // A catch-all `{*index}` (a C2SP tile index holds slashes) is
            // described as the path parameter `{index}`.
            let path = path.replace("{*", "{");
            let methods = methods_of(method_router);
            assert!(
                !methods.is_empty(),
                "no method found in route {path} of {file:?}"
            );
            for method in methods {
                routes.push(SourceRoute {
                    method,
                    path: path.clone(),
                    file: file.clone(),
                });
            }
        }
    }
    routes
}

#[test]
fn the_source_scan_finds_the_routes_it_must() {
    // A scan that finds nothing would make the completeness test pass
    // vacuously: check it sees routes of every kind it has to parse.
    let routes = routes_in_source();
    let has =
        |method: &str, path: &str| routes.iter().any(|r| r.method == method && r.path == path);
    assert!(has("POST", "/api/v1/events") && has("GET", "/api/v1/events"));
    assert!(has("GET", "/metrics"));
    assert!(
        has("GET", "/settings/audit-logs"),
        "a path given as a constant"
    );
    assert!(has("POST", "/logout"));
    assert_eq!(
        methods_of("get(exports::get_one).post(x::create)"),
        vec!["GET", "POST"]
    );
}

#[test]
fn every_route_has_a_description_and_every_description_a_route() {
    let doc = document();
    let documented = documented_operations(&doc);
    let console: BTreeSet<(String, String)> = CONSOLE_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let console_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console");
    let mut registered = BTreeSet::new();
    for route in routes_in_source() {
        let key = (route.method.clone(), route.path.clone());
        if console.contains(&key) {
            assert!(
                route.file.starts_with(&console_dir),
                "{} {} is excluded as a console page but is registered in {:?}",
                route.method,
                route.path,
                route.file
            );
        }
        registered.insert(key);
    }
    let api: BTreeSet<_> = registered.difference(&console).cloned().collect();
    let undocumented: Vec<_> = api.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes without an OpenAPI description (add #[utoipa::path] and list the handler in \
         api::openapi::ApiDoc): {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&api).collect();
    assert!(
        unrouted.is_empty(),
        "described operations that no route serves: {unrouted:?}"
    );
    let stale: Vec<_> = console.difference(&registered).collect();
    assert!(
        stale.is_empty(),
        "console exclusions that match no route: {stale:?}"
    );
}

// -------------------------------------------------------------- validity

fn resolve_pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_description_is_valid_openapi_3_in_the_basics() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "the document uses components");
    for r in &refs {
        assert!(
            r.starts_with("#/components/") && resolve_pointer(&doc, r).is_some(),
            "unresolved $ref {r}"
        );
    }

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let error_schema = json!({"$ref": "#/components/schemas/Error"});
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let name = format!("{} {path}", method.to_uppercase());
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no operationId"));
            assert!(
                operation_ids.insert(id.to_string()),
                "{name}: operationId {id} is not unique"
            );

            // Every `{param}` of the path template is a required path parameter.
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let param = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    parameters
                        .iter()
                        .any(|p| p["name"] == param && p["in"] == "path" && p["required"] == true),
                    "{name}: path parameter {param} is not described"
                );
            }
            for p in &parameters {
                assert!(
                    p["schema"].is_object(),
                    "{name}: parameter {} has no schema",
                    p["name"]
                );
            }

            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{name}: no success answer"
            );
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{name} {status}: no description"
                );
                let is_error = status.starts_with('4') || status.starts_with('5');
                // `/readyz` answers 503 with its own body, by design.
                if is_error && !(path == "/readyz" && status == "503") {
                    assert_eq!(
                        response["content"]["application/json"]["schema"], error_schema,
                        "{name} {status}: an error answer must have the Error schema"
                    );
                }
            }

            let security = operation["security"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for requirement in &security {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{name}: unknown scheme {scheme}"
                    );
                }
            }
            if (path.starts_with("/api/v1/") || path.starts_with("/tiles/"))
                && !["/api/v1/openapi.json", "/api/v1/public-key"].contains(&path.as_str())
            {
                assert_eq!(
                    security,
                    vec![json!({"bearer": []})],
                    "{name}: takes an API key"
                );
                for status in ["401", "403", "429", "503"] {
                    assert!(responses.contains_key(status), "{name}: no {status} answer");
                }
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "{name}: 429 without Retry-After"
                );
            }
            if path.contains('{') {
                // A path id that does not decode to UTF-8 (`api::path::PathId`).
                assert!(
                    responses.contains_key("400"),
                    "{name}: a path id can earn 400"
                );
            }
            let body_statuses = ["400", "413", "415"];
            if operation.get("requestBody").is_some() {
                for status in body_statuses {
                    assert!(
                        responses.contains_key(status),
                        "{name}: a body can earn {status}"
                    );
                }
            }
        }
    }
    assert!(operation_ids.len() >= 16);
}

#[test]
fn each_operation_describes_exactly_the_query_parameters_it_reads() {
    use auditlog_core::filter::FILTER_PARAMS;
    use auditlog_server::api::{proofs, retention};
    use auditlog_server::query_params;
    let doc = document();
    let with_filters = |extra: &[&str]| {
        FILTER_PARAMS
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    };
    let expected = [
        (
            "/api/v1/events",
            "get",
            with_filters(query_params::QUERY_PARAMS),
        ),
        (
            "/api/v1/events/histogram",
            "get",
            with_filters(query_params::HISTOGRAM_PARAMS),
        ),
        (
            "/api/v1/events/stream",
            "get",
            with_filters(auditlog_server::api::live::STREAM_PARAMS),
        ),
        (
            "/api/v1/checkpoint",
            "get",
            proofs::CHECKPOINT_PARAMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        (
            "/api/v1/proofs/consistency",
            "get",
            proofs::CONSISTENCY_PARAMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        (
            "/api/v1/root-checkpoint",
            "get",
            proofs::ROOT_PARAMS.iter().map(|s| s.to_string()).collect(),
        ),
        (
            "/api/v1/proofs/root",
            "get",
            proofs::ROOT_PARAMS.iter().map(|s| s.to_string()).collect(),
        ),
        (
            "/api/v1/holds",
            "get",
            retention::HOLD_LIST_PARAMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let described: BTreeSet<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let wanted = expected
                .iter()
                .find(|(p, m, _)| p == path && m == method)
                .map(|(_, _, names)| names.clone())
                .unwrap_or_default();
            assert_eq!(described, wanted, "{method} {path}");
        }
    }
    // Repeatable filters are arrays, exploded as `?user=a&user=b`.
    let user = doc["paths"]["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "user")
        .unwrap()
        .clone();
    assert_eq!(user["schema"]["type"], "array");
    assert_eq!(user["explode"], true);
}

/// The live tail is described as what it is: Server-Sent Events, resumed
/// with the `Last-Event-ID` header, refused with 429 and 503 and their
/// `Retry-After`.
#[test]
fn the_live_tail_is_described_as_server_sent_events() {
    let doc = document();
    let stream = &doc["paths"]["/api/v1/events/stream"]["get"];
    assert!(
        stream["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{stream}"
    );
    let header = stream["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["in"] == "header")
        .expect("a header parameter");
    assert_eq!(header["name"], "Last-Event-ID");
    for status in ["429", "503"] {
        let answer = &stream["responses"][status];
        assert!(
            answer["description"]
                .as_str()
                .unwrap()
                .contains("too_many_streams"),
            "{status}: {answer}"
        );
        assert!(answer["headers"]["Retry-After"].is_object(), "{status}");
    }
}

// ------------------------------------------------------ against the server

struct App {
    router: axum::Router,
    ingest: String,
    read: String,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let account = store.create_account("acme").await.unwrap();
    let mut keys = Vec::new();
    for scope in [Scope::Ingest, Scope::Read] {
        let key = auditlog_server::tokens::new_api_key();
        store
            .create_api_key(
                account.id,
                auditlog_server::tokens::hash_api_key(&key),
                &[scope],
            )
            .await
            .unwrap();
        keys.push(key);
    }
    let exports = auditlog_server::exports::Exports::new(
        auditlog_server::exports::ExportSettings::new(dir.path().join("exports")),
    );
    let state = AppState::new(store).with_exports(exports);
    App {
        router: auditlog_server::router(state),
        read: keys.pop().unwrap(),
        ingest: keys.pop().unwrap(),
        _dir: dir,
    }
}

impl App {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }
}

/// The other direction at run time: every described operation reaches a
/// handler (not the 404 fallback, not 405), so no description is of a
/// route that was renamed away.
#[tokio::test]
async fn every_described_operation_is_served() {
    let app = app().await;
    for (method, path) in documented_operations(&document()) {
        let uri = path.replace("{id}", "1");
        let (status, body) = app
            .send(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &uri,
                None,
                None,
            )
            .await;
        let text = String::from_utf8_lossy(&body);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !text.contains("no such route"),
            "{method} {path} fell through to the fallback"
        );
    }
}

/// The README's event, with every field.
fn full_event() -> Value {
    json!({
        "id": "7f3c9a2e-6d1b-4c55-9a8e-0b6f1f5e2c11",
        "time": "2026-11-25T14:03:07.123456Z",
        "event_type": "Test Case", "action": "Update",
        "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
        "project": "Checkout", "app": "Web", "version": "2.3",
        "target": {"id": "TC-1042", "name": "Login with SSO"},
        "details": {"changes": [{"field": "title", "old": "Login", "new": "Login with SSO"}]},
        "context": {"ip": "203.0.113.7", "user_agent": "curl", "request_id": "r-88"}
    })
}

fn property_names(doc: &Value, schema: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema} has properties"))
        .keys()
        .cloned()
        .collect()
}

fn required_names(doc: &Value, schema: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][schema]["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

/// Stored events are served as their leaf bytes, not serialized from the
/// described type: a full event has exactly the described properties, a
/// minimal one exactly the required ones, and both read back into the
/// described types (which refuse unknown fields).
#[tokio::test]
async fn served_events_are_what_the_description_says() {
    let app = app().await;
    let doc = document();

    let body = full_event();
    let request: schema::IngestBody = serde_json::from_value(body.clone()).unwrap();
    assert!(
        matches!(request, schema::IngestBody::One(_)),
        "the example reads as one event"
    );
    let (status, answer) = app
        .send(
            Method::POST,
            "/api/v1/events",
            Some(&app.ingest),
            Some(body),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(keys(&answer["events"][0]), property_names(&doc, "Receipt"));

    let minimal =
        json!({"id": "min-1", "event_type": "Element", "action": "Create", "actor": {"id": "u-1"}});
    let (status, _) = app
        .send(
            Method::POST,
            "/api/v1/events",
            Some(&app.ingest),
            Some(minimal),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, page) = app
        .send(Method::GET, "/api/v1/events", Some(&app.read), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let typed: schema::EventPage =
        serde_json::from_slice(&page).expect("a page reads as EventPage");
    assert_eq!(typed.events.len(), 2);
    let page: Value = serde_json::from_slice(&page).unwrap();
    let full = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "7f3c9a2e-6d1b-4c55-9a8e-0b6f1f5e2c11")
        .unwrap();
    let minimal = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "min-1")
        .unwrap();
    assert_eq!(keys(full), property_names(&doc, "Event"));
    // Optional only because events stored before leaf version 2 lack them:
    // every new event carries `v`, `source` and `openings`.
    let mut new_event_names = required_names(&doc, "Event");
    new_event_names.extend(["v", "source", "openings"].map(String::from));
    assert_eq!(keys(minimal), new_event_names);
    assert_eq!(full["v"], 2);
    assert_eq!(full["source"]["kind"], "api_key");
    assert_eq!(keys(&full["actor"]), property_names(&doc, "Actor"));
    assert_eq!(keys(&full["target"]), property_names(&doc, "Target"));
    assert_eq!(keys(&full["context"]), property_names(&doc, "Context"));
    assert_eq!(keys(&minimal["actor"]), required_names(&doc, "Actor"));

    let (status, one) = app
        .send(Method::GET, "/api/v1/events/min-1", Some(&app.read), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let _: schema::EventEnvelope = serde_json::from_slice(&one).expect("reads as EventEnvelope");
}

/// Export filters are stored as JSON, not serialized from the described type.
#[tokio::test]
async fn served_export_filters_are_what_the_description_says() {
    let app = app().await;
    let doc = document();
    let body = json!({"format": "csv", "filters": {
        "event_type": "Test Case", "action": ["Update", "Create"], "user": "u-17", "project": ["Checkout"],
        "app": "Web", "version": "2.3", "target_id": "TC-1", "from": "2026-01-01T00:00:00Z", "to": "2026-12-31T00:00:00Z",
        "q": "-actor.email:* time:2026-11-30 pay*", "tz": "Europe/Paris"
    }});
    let _: schema::ExportRequest =
        serde_json::from_value(body.clone()).expect("the request reads as ExportRequest");
    let (status, answer) = app
        .send(Method::POST, "/api/v1/exports", Some(&app.read), Some(body))
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let filters = &answer["export"]["filters"];
    let _: schema::ExportFilters =
        serde_json::from_value(filters.clone()).expect("reads as ExportFilters");
    assert_eq!(keys(filters), property_names(&doc, "ExportFilters"));
    // Stored canonical: the day in Paris as UTC instants, no `tz` needed.
    assert_eq!(
        filters["q"],
        "-actor.email:\"\"* time:2026-11-29T23:00:00.000000Z..2026-11-30T22:59:59.999999Z pay*"
    );
    assert_eq!(keys(&answer["export"]), property_names(&doc, "Export"));
}

/// Error answers read back into the described `Error`, with and without details.
#[tokio::test]
async fn error_answers_are_what_the_description_says() {
    let app = app().await;
    for (uri, key, status) in [
        (
            "/api/v1/events?limit=0",
            Some(app.read.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/events", None, StatusCode::UNAUTHORIZED),
        (
            "/api/v1/events",
            Some(app.ingest.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/exports/77",
            Some(app.read.as_str()),
            StatusCode::NOT_FOUND,
        ),
        // A path id that does not decode to UTF-8 is refused in the error shape too.
        (
            "/api/v1/events/%FF",
            Some(app.read.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/exports/%FF/download",
            Some(app.read.as_str()),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, body) = app.send(Method::GET, uri, key, None).await;
        assert_eq!(got, status, "{uri}");
        let error: ErrorBody =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert!(!error.error.message.is_empty());
    } // A known path with a method it does not take: 405 in the error shape, `Allow` kept.
    let response = app
        .router
        .clone()
        .oneshot(
            axum::http::Request::builder()
                .method(Method::DELETE)
                .uri("/api/v1/events")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let error: ErrorBody = serde_json::from_slice(&body).expect("405 in the error shape");
    assert_eq!(error.error.code, "method_not_allowed");
}
