//! What every handler shares: the store (any backend, behind the traits),
//! the export settings, the metrics, the checkpoint signer and the console's
//! sign-in rate limiter.

use crate::console::rate_limit::LoginLimiter;
use crate::exports::{ExportSettings, Exports};
use crate::signer::CheckpointSigner;
use auditlog_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// Failed console sign-ins per account and IP.
    pub login_limiter: Arc<LoginLimiter>,
    pub exports: Exports,
    /// Recently verified API keys, so that a request does not cost a
    /// storage round trip just to authenticate.
    pub api_keys: Arc<crate::auth::KeyCache>,
    /// Signs checkpoints; `None` when no signing key is configured (proof
    /// endpoints then answer 503).
    pub signer: Option<Arc<CheckpointSigner>>,
    /// Rate, time and connection limits of this process.
    pub limits: crate::limits::Limits,
    /// The token buckets of the per-API-key rate limit.
    pub api_rate_limiter: Arc<crate::limits::api_rate::ApiKeyRateLimiter>,
}

impl AppState {
    /// State with export files under `./auditlog-data/exports`; servers set
    /// their real directory with [`AppState::with_exports`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            metrics: Arc::new(Metrics::default()),
            login_limiter: Arc::new(LoginLimiter::default()),
            exports: Exports::new(ExportSettings::new("auditlog-data/exports".into())),
            api_keys: Arc::default(),
            signer: None,
            limits: crate::limits::Limits::default(),
            api_rate_limiter: Arc::default(),
        }
    }

    pub fn with_exports(mut self, exports: Exports) -> Self {
        self.exports = exports;
        self
    }

    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_signer(mut self, signer: Arc<CheckpointSigner>) -> Self {
        self.signer = Some(signer);
        self
    }
}

/// Counters exposed at `/metrics` in the Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    pub events_stored: AtomicU64,
    pub events_repeated: AtomicU64,
    pub ingest_requests: AtomicU64,
    pub ingest_rejected: AtomicU64,
    pub query_requests: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows = [
            (
                "auditlog_events_stored_total",
                "Events newly stored.",
                &self.events_stored,
            ),
            (
                "auditlog_events_repeated_total",
                "Idempotent repeats of stored events.",
                &self.events_repeated,
            ),
            (
                "auditlog_ingest_requests_total",
                "POST /api/v1/events requests.",
                &self.ingest_requests,
            ),
            (
                "auditlog_ingest_rejected_total",
                "Ingest requests answered with an error.",
                &self.ingest_rejected,
            ),
            (
                "auditlog_query_requests_total",
                "Event query and histogram requests.",
                &self.query_requests,
            ),
        ];
        let mut out = String::new();
        for (name, help, counter) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        out
    }
}
