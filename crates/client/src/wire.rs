//! The server's answers as this crate reads them (SPEC "HTTP API"), written
//! here once: the crate is published on its own and cannot share the
//! server's types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the server gives back for a durable event: the proof that it holds
/// it, and the handle for [`crate::Client::verify_receipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
    /// The event's place in the account's log (1, 2, 3, …).
    pub seq: u64,
    /// Lowercase hex of the event's leaf hash.
    pub hash: String,
    /// False when the event was already stored (a retry or a resend).
    pub created: bool,
}

/// `201`/`200` of `POST /api/v1/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct IngestAnswer {
    pub events: Vec<Receipt>,
}

/// SPEC's error shape.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorObject {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Option<Value>,
}

/// One broken rule of one field of an event, as the server named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Such as `time` or `actor.id`.
    pub field: String,
    /// A stable name of the rule, such as `in_future` or `required`.
    pub rule: String,
    pub message: String,
}

/// One bad event of a 422 `invalid_events`.
#[derive(Debug, Deserialize)]
pub(crate) struct InvalidEvent {
    pub index: usize,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// The `details` of a 409 `conflict`.
#[derive(Debug, Deserialize)]
pub(crate) struct ConflictDetails {
    pub index: usize,
}

/// `GET /api/v1/events/{id}/proof`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InclusionProof {
    pub leaf: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub hashes: Vec<String>,
    pub checkpoint: String,
}
