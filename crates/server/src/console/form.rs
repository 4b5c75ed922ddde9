//! The console's form extractor: `application/x-www-form-urlencoded` bodies
//! of at most [`MAX_SMALL_BODY_BYTES`], with every failure (too large, wrong
//! content type, a missing field) answered as a console page with the right
//! status rather than axum's plain-text rejection.

use super::page::ConsoleError;
use crate::api::body::{read_bounded, BodyError, MAX_SMALL_BODY_BYTES};
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// A console form's fields, deserialized into `T`.
pub struct ConsoleForm<T>(pub T);

impl<S, T> FromRequest<S> for ConsoleForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = read_bounded(body, MAX_SMALL_BODY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => ConsoleError::Api {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!(
                        "The form sent more than {}, which no form of the console needs; \
                         nothing was done.",
                        BodyError::limit_text(limit)
                    ),
                    log: None,
                },
                BodyError::Unreadable(e) => {
                    ConsoleError::BadRequest(format!("The form could not be read: {e}"))
                }
            })?;
        // axum's Form checks the content type and decodes; it is handed the
        // bytes already read, so its own (larger) default limit never applies.
        let request = Request::from_parts(parts, Body::from(bytes));
        axum::Form::<T>::from_request(request, state)
            .await
            .map(|axum::Form(value)| ConsoleForm(value))
            .map_err(|rejection| ConsoleError::Api {
                status: rejection.status(),
                message: rejection.body_text(),
                log: None,
            })
    }
}
