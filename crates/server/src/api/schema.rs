//! The API's wire types: what requests carry and what answers hold, each with
//! its OpenAPI schema (`ToSchema`). Answers the handlers build are serialized
//! from these types, so the description cannot drift from what is sent. Two
//! kinds are described here but never serialized: request bodies, which the
//! handlers read field by field to name each broken rule (`NewEvent::parse`,
//! `exports::parse_request`), and stored events, which are served as their
//! exact leaf bytes (never re-serialised, so that the hash holds); tests
//! compare those descriptions with what the code accepts and sends.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

// ---------------------------------------------------------------- events in

/// One event as a client sends it (SPEC.md "Event"). Optional fields may be
/// left out or sent as `null`. `event_type` and `action` must be in the
/// account's taxonomy (matched case-insensitively); unknown fields are
/// rejected (422).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "7f3c9a2e-6d1b-4c55-9a8e-0b6f1f5e2c11",
    "time": "2026-11-25T14:03:07.123456Z",
    "event_type": "Test Case",
    "action": "Update",
    "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
    "project": "Checkout", "app": "Web", "version": "2.3",
    "target": {"id": "TC-1042", "name": "Login with SSO"},
    "details": {"changes": [{"field": "title", "old": "Login", "new": "Login with SSO"}]},
    "context": {"ip": "203.0.113.7", "user_agent": "curl", "request_id": "r-88"}
}))]
pub struct NewEvent {
    /// Unique per account: resending the same id with the same content is
    /// idempotent, with different content a conflict (409). Assigned (a
    /// UUIDv7) when left out.
    #[schema(min_length = 1, max_length = 64, pattern = "^[\\x20-\\x7e]+$")]
    pub id: Option<String>,
    /// RFC 3339, in the years 0000 to 9999 in UTC; the time of receipt when
    /// left out; at most 5 minutes in the future.
    #[schema(format = DateTime, max_length = 64)]
    pub time: Option<String>,
    /// From the account's taxonomy, e.g. `Test Case`, `Authentication`.
    #[schema(max_length = 200, pattern = "\\S", examples("Test Case"))]
    pub event_type: String,
    /// Allowed for the event type, e.g. `Create`, `Update`, `Delete`.
    #[schema(max_length = 200, pattern = "\\S", examples("Update"))]
    pub action: String,
    pub actor: NewActor,
    #[schema(max_length = 200)]
    pub project: Option<String>,
    #[schema(max_length = 200)]
    pub app: Option<String>,
    #[schema(max_length = 200)]
    pub version: Option<String>,
    pub target: Option<NewTarget>,
    /// Any JSON object of at most 64 KiB serialized; by convention
    /// `changes` lists `{field, old, new}`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Map<String, Value>>,
    pub context: Option<NewContext>,
}

/// Who acted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActor {
    /// Not blank.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub id: String,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 200)]
    pub email: Option<String>,
}

/// The entity acted on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    #[schema(max_length = 200)]
    pub id: Option<String>,
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

/// Where the action came from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContext {
    /// An IPv4 or IPv6 address; stored in its normal text form.
    #[schema(max_length = 64)]
    pub ip: Option<String>,
    #[schema(max_length = 1024)]
    pub user_agent: Option<String>,
    #[schema(max_length = 200)]
    pub request_id: Option<String>,
}

/// A batch: 1 to 1,000 events, stored all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<NewEvent>,
}

/// The ingest body: one event, or a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestBody {
    Batch(EventBatch),
    One(Box<NewEvent>),
}

/// What was stored for one event of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub id: String,
    #[schema(minimum = 1)]
    pub seq: u64,
    /// Lowercase hex of the event's leaf hash in the account's Merkle tree.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// False when this id was already stored with the same content: the
    /// original entry's receipt, nothing new stored.
    pub created: bool,
}

/// The answer to an ingest: one receipt per event, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    pub events: Vec<Receipt>,
}

// --------------------------------------------------------------- events out

/// A stored event: the fields sent (absent ones left out, never `null`),
/// plus `account`, `seq`, `received_at` and `hash`; events stored as leaf
/// version 2 (SPEC "Proofs") also carry `v`, `source` and `openings`. A
/// version 1 event is served as its exact leaf bytes with `hash` appended;
/// a version 2 event's leaf holds commitments instead of the personal
/// values, and is rebuilt from this event and its `openings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// `2` for a leaf version 2 event; absent for version 1.
    #[serde(default)]
    #[schema(minimum = 2, maximum = 2)]
    pub v: Option<u64>,
    /// Who made the server store it (version 2 events).
    #[serde(default)]
    pub source: Option<EventSource>,
    /// The base64 salt of each commitment in the leaf: `personal` (the
    /// actor, `context.ip`, `context.user_agent`) and each committed
    /// `details` path (version 2 events).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub openings: Option<Map<String, Value>>,
    pub id: String,
    #[schema(format = DateTime)]
    pub time: String,
    pub event_type: String,
    pub action: String,
    pub actor: Actor,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
    #[serde(default)]
    pub context: Context,
    /// The account's name.
    pub account: String,
    /// 1, 2, 3, … per account in the order events were accepted, no gaps.
    #[schema(minimum = 1)]
    pub seq: u64,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Lowercase hex of the event's leaf hash.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

/// `source` of a stored event: set by the server, never by the client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSource {
    /// `api_key`, `console` or `system`.
    pub kind: SourceKind,
    /// `api_key`: the key's public id, stable across `auditlog copy` (never the secret).
    #[serde(default)]
    pub key: Option<String>,
    /// `api_key`: the key's name (empty until named).
    #[serde(default)]
    pub name: Option<String>,
    /// `console`: the console user's id.
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    ApiKey,
    Console,
    System,
}

/// Who acted, as stored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
}

/// The entity acted on, as stored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// Where the action came from, as stored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Context {
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub user_agent: String,
    #[serde(default)]
    pub request_id: String,
}

/// One page of events, newest first.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    pub event: Event,
}

/// The filters shared by queries, histograms and exports (SPEC.md "Query
/// events"): all optional, combined with AND; a repeated parameter means OR.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Event type (repeatable), matched case-insensitively.
    #[param(style = Form, explode)]
    pub event_type: Option<Vec<String>>,
    /// Action (repeatable), matched case-insensitively.
    #[param(style = Form, explode)]
    pub action: Option<Vec<String>>,
    /// Actor id (repeatable).
    #[param(style = Form, explode)]
    pub user: Option<Vec<String>>,
    /// Project (repeatable).
    #[param(style = Form, explode)]
    pub project: Option<Vec<String>>,
    pub app: Option<String>,
    pub version: Option<String>,
    /// The entity's id: its activity history.
    pub target_id: Option<String>,
    /// RFC 3339; events at or after it.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; events at or before it (not before `from`).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Search (SPEC "Search"; docs/SEARCH.md has every key and example),
    /// ANDed with the other filters. Terms separated by spaces, all of which
    /// must hold: `key:value`; `-key:value` negates (holds when the field is
    /// absent or different); `key:a,b` or the key repeated is OR; values with
    /// spaces are quoted (`project:"Payments API"`, `\"` and `\\` inside);
    /// a trailing `*` is a prefix on text keys (`target:TC-10*`). Keys:
    /// `type`, `action` (case-insensitive), `user` (actor id), `actor.name`,
    /// `actor.email`, `project`, `app`, `version`, `target` (entity id),
    /// `target.name`, `ip` (address or CIDR), `changed` (a field named in
    /// `details.changes`), `details.<path>` (string or number at that path,
    /// as text), `source` (`api_key`, `console`, `system` or a key's public
    /// id), `id`, and the ranges `time` and `seq` (`>=A`, `>A`, `<=A`, `<A`,
    /// `A..B` inclusive, either end open; a date alone is its whole day in
    /// `tz`). Bare words, prefixes (`pay*`) and quoted phrases are free text:
    /// whole words (maximal runs of Unicode letters and digits, lower-cased,
    /// diacritics kept) in the actor's name and email, the target's id and
    /// name, project, app, version and string values in `details`; a phrase
    /// is consecutive words of one value. Grammar:
    /// `query = term (ws term)*`, `term = "-"? (key ":" value ("," value)* | quoted "*"? | bare)`.
    /// A malformed query is 400 `bad_query` with `details.position` (0-based,
    /// in Unicode code points) and `details.expected`. At most 4,096
    /// characters, 100 terms, 1,000 values.
    #[param(
        max_length = 4096,
        example = "user:u-17 -action:Update time:>=2026-11-01 pay*"
    )]
    pub q: Option<String>,
    /// The IANA time zone (such as `Europe/Paris`) in which times without an
    /// offset in `q` are read (and, for the histogram, in which its buckets
    /// start); default `UTC`. An unknown zone is 400 naming `tz`.
    pub tz: Option<String>,
}

/// Paging of `GET /api/v1/events`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size.
    #[param(minimum = 1, maximum = 1000, default = 50)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`, with the same filters.
    pub cursor: Option<String>,
}

/// Histogram bucket width; buckets start on the hour, at midnight or at
/// Monday's midnight in `tz` (default UTC).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntervalName {
    Hour,
    Day,
    Week,
}

impl From<auditlog_core::Interval> for IntervalName {
    fn from(interval: auditlog_core::Interval) -> Self {
        match interval {
            auditlog_core::Interval::Hour => Self::Hour,
            auditlog_core::Interval::Day => Self::Day,
            auditlog_core::Interval::Week => Self::Week,
        }
    }
}

/// The live tail's answer: Server-Sent Events. Each event is one message,
/// `id: <seq>` then `data: <the event's JSON, as the API returns it>`; a
/// comment line `: keep-alive` comes at least every 15 s while no event does.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, example = "id: 42\ndata: {\"seq\":42,\"event_type\":\"Test Case\",…}\n\n")]
pub struct EventStream(pub String);

/// The histogram's own parameter.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistogramParams {
    /// Bucket width (default `day`).
    #[param(inline)]
    pub interval: Option<IntervalName>,
}

/// Events per bucket for the filters; `total` equals the number of events
/// the same filters page through.
#[derive(Debug, Serialize, ToSchema)]
pub struct Histogram {
    pub total: u64,
    pub interval: IntervalName,
    /// Oldest first; empty buckets between the first and the last included.
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    #[schema(format = DateTime)]
    pub start: String,
    pub count: u64,
}

// ------------------------------------------------------------------ exports

/// Export file format. `bundle`: a tar that `auditlog verify-export`
/// checks offline (format `auditlog-bundle/3`: the exact leaf bytes, their
/// inclusion proofs, the signed account checkpoint, its inclusion proof in
/// the latest root checkpoint that has its witnesses' quorum with its
/// cosignatures, and a signed manifest).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormatName {
    Csv,
    Jsonl,
    Bundle,
}

/// Export file compression (`bundle` is never compressed).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompressionName {
    None,
    Gzip,
}

/// Where an export is in its life.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatusName {
    Queued,
    Running,
    Completed,
    Failed,
    Expired,
}

/// A filter value: one string, or an array of strings (meaning OR).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The filters of an export request: the query parameters' names, arrays for
/// the repeatable ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequestFilters {
    pub event_type: Option<OneOrMany>,
    pub action: Option<OneOrMany>,
    pub user: Option<OneOrMany>,
    pub project: Option<OneOrMany>,
    pub app: Option<String>,
    pub version: Option<String>,
    pub target_id: Option<String>,
    #[schema(format = DateTime)]
    pub from: Option<String>,
    #[schema(format = DateTime)]
    pub to: Option<String>,
    /// Search, as the `q` query parameter of `GET /api/v1/events`
    /// (SPEC "Search"); a malformed one is 400 `bad_query`.
    pub q: Option<String>,
    /// The IANA zone of `q`'s times without an offset; default UTC.
    pub tz: Option<String>,
}

/// `POST /api/v1/exports`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"format": "csv", "filters": {"project": ["Checkout"], "action": "Update"}}))]
pub struct ExportRequest {
    pub format: ExportFormatName,
    /// Default `none`.
    pub compression: Option<CompressionName>,
    pub filters: Option<ExportRequestFilters>,
}

/// The filters an export was created with, as stored: lists for the
/// repeatable ones, canonical spellings, times in UTC.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportFilters {
    #[serde(default)]
    pub event_type: Vec<String>,
    #[serde(default)]
    pub action: Vec<String>,
    #[serde(default)]
    pub user: Vec<String>,
    #[serde(default)]
    pub project: Vec<String>,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub target_id: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub from: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub to: String,
    /// `q` in its canonical form (times as UTC instants, so no `tz`).
    #[serde(default)]
    pub q: String,
}

/// An export (SPEC.md "Exports").
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    pub id: i64,
    pub status: ExportStatusName,
    pub format: ExportFormatName,
    pub compression: CompressionName,
    #[schema(value_type = ExportFilters)]
    pub filters: Value,
    /// The actor: `api-key:N` or the console user's email.
    pub requested_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime, required = true)]
    pub completed_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
    #[schema(required = true)]
    pub row_count: Option<u64>,
    #[schema(required = true)]
    pub size_bytes: Option<u64>,
    /// Lowercase hex SHA-256 of the file.
    #[schema(pattern = "^[0-9a-f]{64}$", required = true)]
    pub sha256: Option<String>,
    /// Why a failed export failed.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// One export.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportEnvelope {
    pub export: Export,
}

/// The account's exports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportList {
    pub exports: Vec<Export>,
}

// -------------------------------------------------------------- log streams

/// A log stream (SPEC "Live tail and log streams"); its secret is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogStreamView {
    pub id: i64,
    /// `webhook`, `splunk_hec` or `syslog`.
    pub kind: String,
    /// `native` (each event as the API returns it) or `ocsf` (OCSF 1.5.0).
    pub format: String,
    /// `http(s)://…` (`webhook`, `splunk_hec`) or `tcp://host:port` /
    /// `tls://host:port` (`syslog`).
    pub url: String,
    /// The events it delivers: the query filters, as an export's.
    #[schema(value_type = ExportFilters)]
    pub filters: Value,
    /// `splunk_hec` only: the Splunk index each envelope names (absent:
    /// the token's default index).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub index: Option<String>,
    /// `splunk_hec` only: the envelopes' `sourcetype` (`auditlog`, or
    /// `ocsf` for the `ocsf` format, unless set).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sourcetype: Option<String>,
    /// The TLS client certificate chain (PEM) presented to the destination
    /// (mutual TLS), if any. Its key is never shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_certificate: Option<String>,
    /// `active`, `paused`, `failing` (failing for a while; still retried) or
    /// `disabled` (the destination answered 410).
    pub status: String,
    /// The highest seq examined: delivered, or passed over by the filters.
    pub cursor: u64,
    /// Seqs stored after `cursor`, not yet examined.
    pub lag: u64,
    /// The batch in flight: `[first seq, last seq]` examined.
    #[schema(required = true)]
    pub pending: Option<Vec<u64>>,
    /// Failed attempts of the batch in flight.
    pub attempts: u32,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub failing_since: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// One batch of a stream's recent history.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamBatch {
    pub first_seq: u64,
    pub last_seq: u64,
    /// Events sent in it (those the filters kept).
    pub events: u64,
    pub attempts: u32,
    /// `delivered` or `failed`.
    pub status: String,
    /// The destination's answer (status and the start of the body) or the error.
    pub response: String,
    #[schema(format = DateTime)]
    pub at: String,
}

/// One stream, with its recent batches (newest first).
#[derive(Debug, Serialize, ToSchema)]
pub struct LogStreamEnvelope {
    pub stream: LogStreamView,
    pub batches: Vec<StreamBatch>,
}

/// A stream just created; a webhook's secret is in it, shown this once,
/// never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedLogStream {
    pub stream: LogStreamView,
    /// `webhook` only: `whsec_…`; verify each delivery's `webhook-signature`
    /// with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The `details` paths an account declares personal (`GET` answers it,
/// `PUT` takes and answers it): dotted paths from the event's root, each
/// starting `details.`, such as `details.assignee`; at most 100.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"paths": ["details.assignee", "details.ticket.owner.email"]}))]
pub struct PersonalPathList {
    pub paths: Vec<String>,
}

/// The account's sign-in policy (`GET` answers it, `PUT` takes and
/// answers it).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"require_two_factor": true}))]
pub struct AccountSecurity {
    /// Every console user of the account must use two-factor sign-in
    /// (TOTP); users without it are led through enrolment at their next
    /// sign-in, not locked out.
    pub require_two_factor: bool,
}

/// The account's streams, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogStreamList {
    pub streams: Vec<LogStreamView>,
}

/// `POST /api/v1/streams`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewLogStream {
    /// `webhook` (Standard Webhooks), `splunk_hec` (Splunk HTTP Event
    /// Collector) or `syslog` (RFC 5424 over TCP or TLS).
    pub kind: String,
    /// `webhook`: `http(s)://…`; `splunk_hec`: `https://host:port/services/collector/event`
    /// (or `http://`);
    /// `syslog`: `tcp://host:port` (octet counting, RFC 6587) or
    /// `tls://host:port` (RFC 5425). On a public address unless the
    /// server's `stream_allow_private` setting allows it.
    pub url: String,
    /// `native` (the default: the API's event JSON) or `ocsf` (OCSF 1.5.0).
    pub format: Option<String>,
    #[schema(value_type = Option<ExportFilters>)]
    pub filters: Option<Value>,
    /// `webhook` only: `whsec_` + base64 of 24 to 64 bytes; generated when left out.
    pub secret: Option<String>,
    /// `splunk_hec` only, required: the HEC token (write-only: stored
    /// sealed, never returned).
    pub token: Option<String>,
    /// `splunk_hec` only, optional: the Splunk index of every envelope:
    /// 1 to 80 lowercase letters, digits, `_` and `-`, not starting with
    /// `_` or `-` (left out: the token's default index).
    pub index: Option<String>,
    /// `splunk_hec` only, optional: the envelopes' `sourcetype`: 1 to 100
    /// ASCII letters, digits and `_ - . : /` (default `auditlog`, or
    /// `ocsf` for the `ocsf` format).
    pub sourcetype: Option<String>,
    /// Mutual TLS, optional: a client certificate chain (PEM, leaf first)
    /// presented to an `https://` webhook or Splunk HEC destination or a
    /// `tls://` syslog receiver that asks for one; at most 16 KiB. Given
    /// with `client_key`.
    pub client_certificate: Option<String>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of
    /// `client_certificate`'s first certificate; write-only (stored
    /// sealed, never returned or logged); at most 16 KiB.
    pub client_key: Option<String>,
    /// Deliver from this seq on (default: the next event stored).
    #[schema(minimum = 1)]
    pub from_seq: Option<u64>,
}

/// `PATCH /api/v1/streams/{id}`: what to change; `from_seq` replays.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogStreamChange {
    /// Of the stream's kind's form (see `NewLogStream`).
    pub url: Option<String>,
    #[schema(value_type = Option<ExportFilters>)]
    pub filters: Option<Value>,
    /// `webhook` only.
    pub secret: Option<String>,
    /// `splunk_hec` only: a new HEC token.
    pub token: Option<String>,
    /// `splunk_hec` only: a new index (`null` or `""`: none, the token's default).
    pub index: Option<String>,
    /// `splunk_hec` only: a new sourcetype (`null` or `""`: the default).
    pub sourcetype: Option<String>,
    /// A new client certificate chain (PEM), with its `client_key`;
    /// `null` (without `client_key`) removes the client certificate.
    pub client_certificate: Option<String>,
    /// The key of the new `client_certificate` (write-only).
    pub client_key: Option<String>,
    /// `active` (resume) or `paused`.
    pub status: Option<String>,
    /// Replay: deliver again every matching event from this seq on.
    #[schema(minimum = 1)]
    pub from_seq: Option<u64>,
    /// Replay from a time: from the lowest seq received at or after it (RFC 3339).
    #[schema(format = DateTime)]
    pub from_received_at: Option<String>,
}

/// `POST /api/v1/streams/{id}/test`: how the destination answered the test event.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTestResult {
    /// The destination answered 2xx.
    pub delivered: bool,
    /// The destination's status and the start of its body, or why there was no answer.
    pub response: String,
    /// The `webhook-id` the test event was sent with (a fresh one each time).
    pub webhook_id: String,
    /// The event sent: not stored, `seq` 0, `"test": true`.
    #[schema(value_type = Object)]
    pub event: Value,
}

/// The bytes of an export file.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ExportFile(pub Vec<u8>);

// ------------------------------------------------------------------- proofs

/// `GET /api/v1/checkpoint`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointParams {
    /// A tree size: the checkpoint signed at exactly this size (default: the latest).
    #[param(minimum = 0)]
    pub size: Option<u64>,
}

/// `GET /api/v1/proofs/consistency`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size, at least 1.
    #[param(minimum = 1)]
    pub from: u64,
    /// The newer tree size, at least `from` and at most the tree's size.
    #[param(minimum = 1)]
    pub to: u64,
}

/// Everything needed to verify one event offline (RFC 9162 hashing).
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    /// Standard base64 of the event's leaf bytes (its canonical JSON);
    /// absent when the event's body was removed (pruned by retention, or
    /// erased): then `leaf_hash` is what the proof includes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(content_encoding = "base64", nullable = false)]
    pub leaf: Option<String>,
    /// Standard base64 of the leaf hash (SHA-256 of 0x00 ‖ leaf bytes): the
    /// hash the inclusion proof starts from.
    pub leaf_hash: String,
    /// `seq` − 1.
    pub leaf_index: u64,
    #[schema(minimum = 1)]
    pub tree_size: u64,
    /// The inclusion proof, standard base64.
    pub hashes: Vec<String>,
    /// The signed checkpoint (C2SP) of size `tree_size`.
    pub checkpoint: String,
    /// `checkpoint`'s inclusion in the latest root checkpoint that has its
    /// witnesses' quorum; absent while no such root checkpoint covers a
    /// checkpoint of this event (it is then `checkpoint` that is newer
    /// than what the witnesses cosigned: ask again in a few seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub root: Option<RootInclusion>,
}

/// An account checkpoint's inclusion in the root log (SPEC "Witnesses"):
/// its leaf is the account checkpoint's body (origin, size and root lines,
/// as signed), hashed as every leaf (RFC 9162).
#[derive(Debug, Serialize, ToSchema)]
pub struct RootInclusion {
    /// The account checkpoint's index in the root log.
    pub leaf_index: u64,
    /// The root checkpoint's size.
    #[schema(minimum = 1)]
    pub tree_size: u64,
    /// The inclusion proof, standard base64.
    pub hashes: Vec<String>,
    /// The root checkpoint (origin `<log name>`) signed by the log, with
    /// every witness cosignature stored for it.
    pub checkpoint: String,
}

/// `GET /api/v1/proofs/root`: an account checkpoint and its inclusion in a
/// cosigned root checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WitnessedCheckpoint {
    /// The account's signed checkpoint.
    pub checkpoint: String,
    pub root: RootInclusion,
}

/// `GET /api/v1/root-checkpoint`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RootCheckpointParams {
    /// A root tree size: the root checkpoint signed at exactly this size (default: the latest).
    #[param(minimum = 1)]
    pub size: Option<u64>,
}

/// `GET /api/v1/proofs/root`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RootProofParams {
    /// The account checkpoint's tree size (default: the account's latest
    /// checkpoint covered by a root checkpoint that has its quorum).
    #[param(minimum = 1)]
    pub size: Option<u64>,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Standard base64.
    pub hashes: Vec<String>,
}

// -------------------------------------------------------------- operations

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AliveStatus {
    Ok,
}

/// `GET /healthz`: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: AliveStatus,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessStatus {
    Ready,
    Unavailable,
    SigningRefused,
    /// A witness refused the root log: its history contradicts what the
    /// witness cosigned (a rollback or a fork).
    WitnessRefused,
}

/// `GET /readyz`: `ready`, or why not (503).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadinessStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// How the last append transaction ended; present when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub storage_writes: Option<StorageWrites>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageWriteStatus {
    /// The last append committed (or none has run yet).
    Ok,
    /// The last append failed because the disk is full.
    Full,
    /// The last append failed for another reason (an I/O error, ...).
    Failing,
}

/// `storage_writes` of `GET /readyz`: a full or failing disk keeps the
/// server ready (it still serves reads) but shows here.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageWrites {
    pub status: StorageWriteStatus,
    /// What the last failure said.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// Since when appends have been failing (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub since: Option<String>,
}

/// An API key as listings show it: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The key's public id (`key_…`): what `source.key` of its events
    /// holds, and what `DELETE /api/v1/keys/{id}` takes.
    pub id: String,
    pub name: String,
    /// The secret's first 8 characters (`alk_` and four more), to tell keys apart.
    pub prefix: String,
    /// `ingest`, `read` and/or `admin`.
    pub scopes: Vec<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Who created it: `user:<id>` (console), `api-key:<id>` (API) or `cli`.
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// To the minute; null if never used.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

/// The account's keys, oldest first, revoked and expired ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKeyView>,
}

/// One key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyEnvelope {
    pub key: ApiKeyView,
}

/// A key just created, with its secret: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    /// `alk_…`: send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// `POST /api/v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewApiKeyBody {
    /// 1 to 100 characters.
    pub name: String,
    /// One or more of `ingest`, `read`, `admin`.
    pub scopes: Vec<String>,
    /// When the key stops working (RFC 3339, in the future); never if left out.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// One action of an event type.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventActionView {
    pub name: String,
    /// `active`, or `retired` (refused for new events, valid in stored ones).
    pub status: String,
}

/// One event type of the account's taxonomy.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    pub name: String,
    /// `active`, or `retired` (refused for new events, valid in stored ones).
    pub status: String,
    pub actions: Vec<EventActionView>,
}

/// The account's taxonomy: its event types in the order they were added,
/// retired ones included. Auditlog's own reserved types (`Audit Log`,
/// `Auditlog …`) are not listed unless an older account's taxonomy holds one.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub event_types: Vec<EventTypeView>,
}

/// One event type.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeEnvelope {
    pub event_type: EventTypeView,
}

/// `POST /api/v1/event-types`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewEventTypeBody {
    /// 1 to 100 characters, not yet in the taxonomy (compared
    /// case-insensitively), not reserved (`Audit Log`, `Auditlog …`).
    pub name: String,
    /// 1 to 50 action names of 1 to 100 characters each.
    pub actions: Vec<String>,
}

/// `POST /api/v1/event-types/{event_type}/actions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewEventActionBody {
    /// 1 to 100 characters, not yet an action of the type.
    pub name: String,
}

/// A console user as the API shows one: never a password nor its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// The user's id: `/api/v1/users/{id}`; events name the user `user:<id>`.
    pub id: i64,
    pub email: String,
    /// `admin`, `auditor` or `member`.
    pub role: String,
    /// `active`, `invited` (no password set yet) or `disabled`.
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
    /// When the password was last set; null until a sign-in link set one.
    #[schema(format = DateTime)]
    pub password_changed_at: Option<String>,
    /// When the user's unused sign-in link stops working; null if none.
    #[schema(format = DateTime)]
    pub sign_in_link_expires_at: Option<String>,
}

/// `GET /api/v1/users`: oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// One user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

/// A one-time sign-in link: opened in a browser, it lets the user set a
/// password (once, within 24 hours). Shown in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInLinkView {
    /// `/welcome/<token>`, on this server's console.
    pub path: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A user with a new sign-in link (created, or a password reset).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWithLink {
    pub user: UserView,
    pub sign_in_link: SignInLinkView,
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserBody {
    /// The user's email address (how they sign in); unique in the account.
    pub email: String,
    /// `admin`, `auditor` or `member`.
    pub role: String,
}

/// `PATCH /api/v1/users/{id}`: at least one field.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserChangeBody {
    /// `admin`, `auditor` or `member`.
    pub role: Option<String>,
    /// true disables the user (every session ends at once); false enables.
    pub disabled: Option<bool>,
}
