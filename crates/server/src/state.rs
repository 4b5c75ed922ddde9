//! What every handler shares: the store (any backend, behind the traits),
//! the export settings, the metrics, the checkpoint signer, the console's
//! sign-in rate limiter and the live tail's streams.

use crate::exports::{ExportSettings, Exports};
use crate::key_cache::KeyCache;
use crate::limits::login_rate::LoginLimiter;
use crate::signer::CheckpointSigner;
use auditlog_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The process's Prometheus recorder, which `/metrics` renders.
    pub metrics: crate::metrics::Recorder,
    /// Failed console sign-ins per account and IP.
    pub login_limiter: Arc<LoginLimiter>,
    pub exports: Exports,
    /// Recently verified API keys, so that a request does not cost a
    /// storage round trip just to authenticate.
    pub api_keys: Arc<KeyCache>,
    /// Signs checkpoints; `None` when no signing key is configured (proof
    /// endpoints then answer 503).
    pub signer: Option<Arc<CheckpointSigner>>,
    /// Root checkpoints and their witnesses; `None` without a signing key
    /// (the root checkpoint route then answers 503).
    pub root_log: Option<Arc<crate::root_log::RootLog>>,
    /// Rate, time and connection limits of this process.
    pub limits: crate::limits::Limits,
    /// The per-API-key rate limit, built from `limits`.
    pub api_rate_limiter: Arc<crate::limits::api_rate::ApiKeyRateLimiter>,
    /// The live tail's streams: woken by the append path, capped by `limits`.
    pub live: crate::live::LiveTail,
    /// How log streams are checked and sealed; `None` where they are not
    /// set up (the API then answers 503).
    pub streams: Option<Arc<crate::streams::StreamSettings>>,
    /// The retention policy's bounds and the pruner's settings.
    pub retention: Arc<crate::retention::RetentionSettings>,
    /// The pseudonym key and the eraser's wakeup.
    pub erasure: Arc<crate::erasure::ErasureSettings>,
}

impl AppState {
    /// State with export files under `./auditlog-data/exports`; servers set
    /// their real directory with [`AppState::with_exports`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            metrics: crate::metrics::Recorder::global(),
            login_limiter: Arc::new(LoginLimiter::default()),
            exports: Exports::new(ExportSettings::new("auditlog-data/exports".into())),
            api_keys: Arc::default(),
            signer: None,
            root_log: None,
            limits: crate::limits::Limits::default(),
            api_rate_limiter: Arc::default(),
            retention: Arc::default(),
            erasure: Arc::new(crate::erasure::ErasureSettings::new(
                crate::erasure::PseudonymKey::random(),
                "auditlog-data/exports".into(),
            )),
            live: crate::live::LiveTail::default(),
            streams: None,
        }
    }

    pub fn with_exports(mut self, exports: Exports) -> Self {
        self.exports = exports;
        self
    }

    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.api_rate_limiter = Arc::new(crate::limits::api_rate::ApiKeyRateLimiter::new(&limits));
        self.live = crate::live::LiveTail::new(&limits);
        self.limits = limits;
        self
    }

    pub fn with_erasure(mut self, settings: crate::erasure::ErasureSettings) -> Self {
        self.erasure = Arc::new(settings);
        self
    }

    pub fn with_retention(mut self, settings: crate::retention::RetentionSettings) -> Self {
        self.retention = Arc::new(settings);
        self
    }

    pub fn with_streams(mut self, settings: crate::streams::StreamSettings) -> Self {
        self.streams = Some(Arc::new(settings));
        self
    }

    pub fn with_root_log(mut self, root_log: Arc<crate::root_log::RootLog>) -> Self {
        self.root_log = Some(root_log);
        self
    }

    pub fn with_signer(mut self, signer: Arc<CheckpointSigner>) -> Self {
        self.signer = Some(signer);
        self
    }
}
