//! Each account's tree as a read-only C2SP tlog-tiles log
//! (<https://c2sp.org/tlog-tiles>) under `/tiles/<account>/`, so that
//! existing tlog clients read checkpoints, proofs and entries without this
//! API (docs/TILES.md). `<account>` is the account's name, as in its
//! checkpoints' origin `<log name>/<account>`; the API key must belong to
//! that account and have scope `read` (entry bundles hold event bodies).
//!
//! Hash tiles are read from the stored tree hashes (`tree_hashes`), one
//! batched read of at most 256 hashes per tile; entry bundles from one
//! seq-range read. Nothing is recomputed per request.

use crate::api::proofs;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use auditlog_core::tiles::{encode_bundle, TilePath, TilePathError};
use auditlog_store::entries::{entry_bodies, EntryBodies};
use auditlog_store::Scope;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::io::Write;

/// A full tile or bundle never changes (the tree only grows).
const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// The checkpoint moves as the tree grows; a partial tile is replaced by a
/// wider one (C2SP lets a log stop serving it), so neither is kept long.
const SHORT_LIVED: &str = "private, max-age=5";
/// Answers depend on the key (which account it may read) and, for entry
/// bundles, on whether the client takes gzip.
const VARY: &str = "authorization, accept-encoding";

const ACCOUNT_DOC: &str =
    "The account's name, as in its checkpoints' origin `<log name>/<account>`; the API key must belong to it";
const BAD_PATH: &str = "The account in the path is not UTF-8 once percent-decoded";
const INDEX_DOC: &str = "The tile index N in C2SP's path encoding (three-digit elements, all but the last starting with `x`: 1234067 is `x001/x234/067`), followed by `.p/<W>` (W from 1 to 255) for a partial tile; its slashes are path separators, not escaped";

/// The route's path parameters, read so that a bad one answers in our
/// error shape (axum's own `Path` rejection is plain text).
pub struct TileParams(Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for TileParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Path(pairs)) => Ok(TileParams(pairs.into_iter().map(|(_, v)| v).collect())),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_path",
                format!(
                    "the tile path must be UTF-8 text once percent-decoded ({})",
                    rejection.body_text()
                ),
            )),
        }
    }
}

impl TileParams {
    fn get(&self, at: usize) -> &str {
        self.0.get(at).map(String::as_str).unwrap_or_default()
    }
}

/// 404 unless `account` is the key's own account: another account's tiles
/// are not there for this key, whether or not that account exists (as an
/// event of another account is not, on the other routes).
fn visible(caller: &ApiCaller, account: &str) -> Result<(), ApiError> {
    if caller.account.name == account {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no tiles of an account named {account:?} are visible to this API key; \
             /tiles/<account>/ takes the key's own account name"
        )))
    }
}

fn bad_tile_path(e: TilePathError) -> ApiError {
    ApiError::bad_request("invalid_tile_path", e.message)
        .with_details(json!({"field": e.part, "rule": e.rule}))
}

fn beyond_the_tree(path: &str, tree_size: u64) -> ApiError {
    ApiError::not_found(format!(
        "tile/{path} is beyond the tree, which has {tree_size} entries"
    ))
}

fn with_headers(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static(VARY));
    response
}

fn octets(body: Vec<u8>, full: bool) -> Response {
    let response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    with_headers(response, if full { IMMUTABLE } else { SHORT_LIVED })
}

/// `GET /tiles/{account}/checkpoint`.
#[utoipa::path(
    get,
    path = "/tiles/{account}/checkpoint",
    operation_id = "tiles_checkpoint",
    tag = "tiles",
    security(("bearer" = [])),
    params(("account" = String, Path, description = ACCOUNT_DOC, example = "demo")),
    responses(
        (status = 200, description = "The account's latest signed checkpoint (C2SP tlog-checkpoint in a signed note), as `GET /api/v1/checkpoint` serves it; `Cache-Control: private, max-age=5`", body = String, content_type = "text/plain"),
        (status = 400, description = BAD_PATH, body = ErrorBody),
        (status = 404, description = "The account is not the key's, or it has no events yet", body = ErrorBody),
        (status = 503, description = "No signing key is configured, or signing is refused because the store was rolled back", body = ErrorBody),
    )
)]
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: TileParams,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    visible(&caller, params.get(0))?;
    let checkpoint = proofs::latest_checkpoint(&state, &caller.account).await?;
    let response = (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        checkpoint.note,
    )
        .into_response();
    Ok(with_headers(response, SHORT_LIVED))
}

/// `GET /tiles/{account}/tile/{level}/{index}`.
#[utoipa::path(
    get,
    path = "/tiles/{account}/tile/{level}/{index}",
    operation_id = "tiles_hash_tile",
    tag = "tiles",
    security(("bearer" = [])),
    params(
        ("account" = String, Path, description = ACCOUNT_DOC, example = "demo"),
        ("level" = String, Path, description = "The tile level L, 0 to 63 without leading zeros: level-L tiles hold the roots of complete subtrees of 256^L entries (level 0: leaf hashes)", example = "0"),
        ("index" = String, Path, description = INDEX_DOC, example = "000.p/5"),
    ),
    responses(
        (status = 200, description = "The tile: its W (256 for a full tile) SHA-256 hashes concatenated, 32 bytes each. A full tile is immutable (`Cache-Control: private, max-age=31536000, immutable`), a partial one short-lived (`private, max-age=5`)", body = String, content_type = "application/octet-stream"),
        (status = 400, description = "A malformed level, index or width (`invalid_tile_path`; `details` names the part and the rule), or a path that is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 404, description = "The account is not the key's, or the tile (of that width) is beyond the tree", body = ErrorBody),
    )
)]
pub async fn hash_tile(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: TileParams,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    visible(&caller, params.get(0))?;
    let path = format!("{}/{}", params.get(1), params.get(2));
    let tile = TilePath::parse(&path).map_err(bad_tile_path)?;
    let account = caller.account.id;
    let tree_size = state.store.last_seq(account).await?;
    let indexes = tile
        .stored_hash_indexes(tree_size)
        .ok_or_else(|| beyond_the_tree(&path, tree_size))?;
    let hashes = state.store.read_hashes(account, &indexes).await?;
    Ok(octets(hashes.concat(), tile.is_full()))
}

/// `GET /tiles/{account}/tile/entries/{index}`.
#[utoipa::path(
    get,
    path = "/tiles/{account}/tile/entries/{index}",
    operation_id = "tiles_entry_bundle",
    tag = "tiles",
    security(("bearer" = [])),
    params(
        ("account" = String, Path, description = ACCOUNT_DOC, example = "demo"),
        ("index" = String, Path, description = INDEX_DOC, example = "000.p/5"),
    ),
    responses(
        (status = 200, description = "The entry bundle: for each of its W entries (256 in a full bundle), in leaf order, a big-endian uint16 length and the event's leaf bytes exactly as hashed into the tree (leaf hash SHA-256(0x00 ‖ entry)). Gzipped (`Content-Encoding: gzip`) when the request's `Accept-Encoding` allows it. Full bundles are immutable, partial ones short-lived, as for hash tiles", body = String, content_type = "application/octet-stream"),
        (status = 400, description = "A malformed index or width (`invalid_tile_path`; `details` names the part and the rule), or a path that is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 404, description = "The account is not the key's, or the bundle (of that width) is beyond the tree", body = ErrorBody),
        (status = 410, description = "The body of an entry of the bundle was removed by pruning (or, for a version 1 event, by erasure): `pruned`, `details.seq` the first such seq; its hashes are still in the hash tiles", body = ErrorBody),
    )
)]
pub async fn entry_bundle(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: TileParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    visible(&caller, params.get(0))?;
    let path = format!("entries/{}", params.get(1));
    let tile = TilePath::parse(&path).map_err(bad_tile_path)?;
    let account = caller.account.id;
    let tree_size = state.store.last_seq(account).await?;
    let (first, end) = tile
        .entry_range(tree_size)
        .ok_or_else(|| beyond_the_tree(&path, tree_size))?;
    // Leaf index i is seq i + 1.
    let bodies = match entry_bodies(state.store.as_ref(), account, first, end).await? {
        EntryBodies::Present(bodies) => bodies,
        EntryBodies::Absent { seq } => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "pruned",
                format!(
                    "tile/{path} holds the event with seq {seq}, whose body was removed (pruned, \
                     or erased as a version 1 event); its hashes are still served in the hash tiles"
                ),
            )
            .with_details(json!({"seq": seq})))
        }
    };
    let bundle = encode_bundle(first, bodies.iter().map(Vec::as_slice))
        .map_err(|e| ApiError::internal("entry bundle", e))?;
    let full = tile.is_full();
    if !accepts_gzip(&headers) {
        return Ok(octets(bundle, full));
    }
    let mut response = octets(gzip(&bundle)?, full);
    response
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Ok(response)
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !zero
        })
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| ApiError::internal("gzip of an entry bundle", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_used_only_when_the_client_takes_it() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("br, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
