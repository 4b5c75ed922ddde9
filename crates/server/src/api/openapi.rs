//! The OpenAPI 3 description served at `GET /api/v1/openapi.json`,
//! generated from the code: each handler's `#[utoipa::path]` annotation
//! (path, parameters, request body, its own answers) and the wire types of
//! `api::schema` and `error`. What every authenticated route shares (the
//! bearer scheme and the answers of the `ApiCaller` extractor and the rate
//! limiter) is added here once, so no handler can forget it.
//! `tests/it/openapi.rs` fails when a route has no description.

use crate::api::schema;
use crate::api::{
    account_security, erasures, event_types, events, exports, keys, live, ops, personal_paths,
    proofs, retention, streams, tiles, users,
};
use crate::error::ErrorBody;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

/// The name of the security scheme of API keys.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Auditlog API",
        description = "Immutable, provable audit log (SPEC.md). Routes with a lock take \
            `Authorization: Bearer <API key>`; a key has the scopes `ingest` (send events), \
            `read` (everything else) and/or `admin` (administration; it implies `read`, since \
            an admin key can send the account's events anywhere). Every error answer is \
            `{\"error\": {\"code\", \"message\", \"details\"?}}`."
    ),
    paths(
        events::ingest,
        events::query,
        events::get_one,
        events::histogram,
        live::stream,
        proofs::event_proof,
        proofs::public_key,
        proofs::checkpoint,
        proofs::consistency,
        proofs::root_checkpoint,
        proofs::root_proof,
        tiles::checkpoint,
        tiles::hash_tile,
        tiles::entry_bundle,
        exports::create,
        exports::list,
        exports::get_one,
        exports::download_route,
        event_types::list,
        event_types::create,
        event_types::add_action,
        event_types::retire_type,
        event_types::retire_action,
        keys::list,
        keys::create,
        keys::revoke,
        users::list,
        users::get_one,
        users::create,
        users::change,
        users::reset_password,
        streams::create,
        streams::list,
        streams::get_one,
        streams::change,
        streams::delete,
        streams::test,
        retention::get_retention,
        retention::set_retention,
        retention::create_hold,
        retention::list_holds,
        retention::get_hold,
        retention::release_hold,
        personal_paths::get,
        personal_paths::put,
        account_security::get,
        account_security::put,
        erasures::create,
        erasures::list,
        erasures::get_one,
        serve,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(ErrorBody, schema::Event)),
    modifiers(&SharedAnswers, &ClosedObjects),
    tags(
        (name = "events", description = "Send, query and count events"),
        (name = "proofs", description = "Tamper evidence: verifier key, signed checkpoints, inclusion and consistency proofs, the witnessed root checkpoint"),
        (name = "tiles", description = "Each account's tree as a read-only C2SP tlog-tiles log under `/tiles/<account>/` (scope `read`), for existing tlog clients"),
        (name = "exports", description = "Background exports of the events matching filters"),
        (name = "event types", description = "The account's taxonomy: list its event types (scope `read`), add types and actions and retire them (scope `admin`); retired ones are refused for new events and stay valid in stored ones"),
        (name = "keys", description = "The account's API keys: list, create (the secret is shown once) and revoke (scope `admin`)"),
        (name = "users", description = "The account's console users: list, invite with a role and a one-time sign-in link, change the role, disable and enable, reset the password with a new link (scope `admin`)"),
        (name = "streams", description = "Log streams: the account's events pushed to its destinations (scope `admin`)"),
        (name = "retention", description = "The retention policy and legal holds (scope `admin`)"),
        (name = "personal data", description = "The `details` paths the account declares personal, whose values each new event commits to so that an erasure can remove them, and erasure requests for a data subject (scope `admin`)"),
        (name = "account", description = "The account's sign-in policy: whether every console user must use two-factor sign-in (scope `admin`)"),
        (name = "operations", description = "Liveness, readiness, metrics and this description"),
    )
)]
struct ApiDoc;

/// The description as a typed document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The description as JSON, built once: it only changes with the code.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serializing a tree of strings, maps and numbers cannot fail; an
        // empty object would still be valid JSON if it somehow did.
        document()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_string())
    })
}

/// This API's OpenAPI 3 description (generated from the code).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", body = Object))
)]
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}

/// The bearer scheme, and on every route that takes an API key the answers
/// its extractor and the rate limiter give, unless the handler describes
/// them more precisely itself.
struct SharedAnswers;

/// The answers every authenticated route can give: (status, description).
const AUTHENTICATED_ANSWERS: &[(u16, &str)] = &[
    (
        401,
        "No API key, a malformed `Authorization` header, or an unknown key",
    ),
    (403, "The key lacks the scope this route needs"),
    (
        429,
        "This API key sent too many requests; retry after `Retry-After` seconds",
    ),
    (
        500,
        "An unexpected failure; `message` holds a reference for the operator",
    ),
    (
        503,
        "The storage is temporarily unavailable; nothing was stored, retry later",
    ),
];

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            BEARER.to_string(),
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if takes_api_key(operation) {
                    add_authenticated_answers(operation);
                }
            }
        }
    }
}

fn takes_api_key(operation: &Operation) -> bool {
    let Some(requirements) = &operation.security else {
        return false;
    };
    // `SecurityRequirement` keeps its map private; its JSON names the schemes.
    serde_json::to_value(requirements)
        .map(|v| v.to_string().contains(&format!("\"{BEARER}\"")))
        .unwrap_or(false)
}

fn add_authenticated_answers(operation: &mut Operation) {
    for (status, description) in AUTHENTICATED_ANSWERS {
        let mut response = ResponseBuilder::new().description(*description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        );
        if *status == 429 {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before the next request"))
                    .build(),
            );
        }
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(response.build()));
    }
}

/// Every object schema of the components lists all of its properties
/// (`additionalProperties: false`): the server rejects unknown fields in
/// requests, and a field added to an answer must be described before a
/// schema check passes. Free-form values (`details`) are properties, not
/// components, and stay open.
struct ClosedObjects;

impl Modify for ClosedObjects {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            if let RefOr::T(Schema::Object(object)) = schema {
                if !object.properties.is_empty() && object.additional_properties.is_none() {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}
