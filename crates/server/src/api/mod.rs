//! The JSON API under `/api/v1`, and the C2SP tlog-tiles view of each
//! account's tree under `/tiles` (`tiles`).

pub mod account_security;
pub mod body;
pub mod erasures;
pub mod event_types;
pub mod events;
pub mod exports;
pub mod keys;
pub mod live;
pub mod openapi;
pub mod ops;
pub mod path;
pub mod personal_paths;
pub mod proofs;
pub mod retention;
pub mod schema;
pub mod streams;
pub mod tiles;
pub mod users;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;

/// Every route of the API and of operations. Each must have its
/// `#[utoipa::path]` description listed in `openapi::ApiDoc`;
/// `tests/it/openapi.rs` reads these `.route` calls and fails otherwise.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(events::query).post(events::ingest))
        .route("/api/v1/events/histogram", get(events::histogram))
        .route("/api/v1/events/stream", get(live::stream))
        .route("/api/v1/events/{id}", get(events::get_one))
        .route("/api/v1/events/{id}/proof", get(proofs::event_proof))
        .route("/api/v1/public-key", get(proofs::public_key))
        .route("/api/v1/checkpoint", get(proofs::checkpoint))
        .route("/api/v1/proofs/consistency", get(proofs::consistency))
        .route("/api/v1/proofs/root", get(proofs::root_proof))
        .route("/api/v1/root-checkpoint", get(proofs::root_checkpoint))
        .route("/api/v1/exports", get(exports::list).post(exports::create))
        .route("/api/v1/exports/{id}", get(exports::get_one))
        .route(
            "/api/v1/exports/{id}/download",
            get(exports::download_route),
        )
        .route(
            "/api/v1/event-types",
            get(event_types::list).post(event_types::create),
        )
        .route(
            "/api/v1/event-types/{event_type}/actions",
            post(event_types::add_action),
        )
        .route(
            "/api/v1/event-types/{event_type}/retire",
            post(event_types::retire_type),
        )
        .route(
            "/api/v1/event-types/{event_type}/actions/{action}/retire",
            post(event_types::retire_action),
        )
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::get_one).patch(users::change),
        )
        .route(
            "/api/v1/users/{id}/reset-password",
            post(users::reset_password),
        )
        .route("/api/v1/streams", get(streams::list).post(streams::create))
        .route(
            "/api/v1/streams/{id}",
            get(streams::get_one)
                .patch(streams::change)
                .delete(streams::delete),
        )
        .route("/api/v1/streams/{id}/test", post(streams::test))
        .route(
            "/api/v1/retention",
            get(retention::get_retention).put(retention::set_retention),
        )
        .route(
            "/api/v1/holds",
            get(retention::list_holds).post(retention::create_hold),
        )
        .route(
            "/api/v1/holds/{id}",
            get(retention::get_hold).delete(retention::release_hold),
        )
        .route(
            "/api/v1/erasures",
            get(erasures::list).post(erasures::create),
        )
        .route("/api/v1/erasures/{id}", get(erasures::get_one))
        .route(
            "/api/v1/account/personal-paths",
            get(personal_paths::get).put(personal_paths::put),
        )
        .route(
            "/api/v1/account/security",
            get(account_security::get).put(account_security::put),
        )
        .route("/tiles/{account}/checkpoint", get(tiles::checkpoint))
        // The static `entries` wins over `{level}` (matchit's priority).
        .route(
            "/tiles/{account}/tile/entries/{*index}",
            get(tiles::entry_bundle),
        )
        .route(
            "/tiles/{account}/tile/{level}/{*index}",
            get(tiles::hash_tile),
        )
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
}
