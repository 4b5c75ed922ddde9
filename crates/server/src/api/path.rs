//! The `{id}` of a route, read so that a bad one answers in our error shape
//! (axum's own `Path` rejection is plain text).

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

/// The route's single path parameter, percent-decoded.
pub struct PathId(pub String);

/// What every route with an `{id}` answers when the id is not UTF-8.
pub const BAD_PATH_ID: &str = "The id in the path is not UTF-8 once percent-decoded";

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_path",
                format!(
                    "the id in the path must be UTF-8 text once percent-decoded ({})",
                    rejection.body_text()
                ),
            )),
        }
    }
}
