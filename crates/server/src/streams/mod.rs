//! Log streams: an account's events pushed to destinations its admins
//! configure (`/api/v1/streams`, scope `admin`), at least once and in seq
//! order per stream. Kinds: `webhook` (Standard Webhooks), `splunk_hec`
//! (Splunk HTTP Event Collector, with indexer acknowledgement) and `syslog`
//! (RFC 5424 over TCP or TLS); formats: `native` (the API's event JSON) and
//! `ocsf` (OCSF 1.5.0).
//!
//! - `secrets`: the `whsec_` secrets and HEC tokens, generated or checked,
//!   sealed at rest;
//! - `address`: which destinations are allowed (no loopback, private or
//!   link-local address unless the operator allows it), checked again
//!   before every connection;
//! - `client_cert`: a stream's TLS client certificate (mutual TLS), its
//!   key sealed like the secrets;
//! - `tls`: the TLS client setups (roots, a client certificate);
//! - `http`: one `POST` to a destination, its answer sorted;
//! - `webhook`, `hec`, `syslog`: one batch to one destination of each kind;
//! - `ocsf`: the `ocsf` format;
//! - `worker`: claims streams with a lease and delivers them;
//! - `audit`: the `Auditlog Log Stream` events of stream changes;
//! - `test_event`: **Send test event**, one made-up event sent at once.

pub mod address;
pub mod audit;
pub mod client_cert;
pub mod hec;
pub mod http;
pub mod ocsf;
pub mod secrets;
pub mod syslog;
pub mod test_event;
pub mod tls;
pub mod webhook;
pub mod worker;

/// Seqs examined per webhook or HEC batch at most (SPEC: "batches").
pub const DEFAULT_BATCH_SEQS: u64 = 5_000;
/// The largest webhook or HEC batch body: 1 MiB, nginx's default
/// `client_max_body_size` (a receiver behind it answers larger bodies 413,
/// which would be retried forever).
pub const DEFAULT_BATCH_BYTES: usize = 1 << 20;

/// The TLS client setup of stream destinations (rustls), also what the
/// command-line clients use for `https://` servers.
pub type TlsClientConfig = tokio_rustls::rustls::ClientConfig;

/// The kinds of destination.
pub const KINDS: [&str; 3] = crate::metrics::STREAM_KINDS;
/// The formats.
pub const FORMATS: [&str; 2] = crate::metrics::STREAM_FORMATS;

/// `kind` as a metrics label (one of [`KINDS`], or `other`).
pub fn kind_label(kind: &str) -> &'static str {
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("other")
}

/// `format` as a metrics label (one of [`FORMATS`], or `other`).
pub fn format_label(format: &str) -> &'static str {
    FORMATS
        .into_iter()
        .find(|f| *f == format)
        .unwrap_or("other")
}

use address::AllowList;
use secrets::SecretKey;
use std::sync::Arc;
use std::time::Duration;

/// How this server delivers streams.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Seals the secrets at rest; every server of one database needs the same.
    pub secret_key: SecretKey,
    /// Non-public networks that destinations may be on anyway.
    pub allow: AllowList,
    /// A stream whose server died is taken over after this.
    pub lease: Duration,
    /// After failing for this long a stream shows `failing` (and keeps retrying).
    pub failing_after: Duration,
    /// Seqs examined per webhook or Splunk HEC batch at most. A stream
    /// that is caught up sends what arrived since its last batch; one with
    /// a backlog sends windows this large, so that each durable commit of
    /// its progress covers many events.
    pub batch_seqs: u64,
    /// A webhook or Splunk HEC batch's body stays under this many bytes:
    /// a window whose events would exceed it ends before the event that
    /// would (a single larger event is sent alone).
    pub max_batch_bytes: usize,
    /// Longest one delivery request may take.
    pub request_timeout: Duration,
    /// The first retry's wait; each further one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// TLS for `https://` and syslog `tls://` destinations: the public web PKI roots and
    /// the operator's `stream_tls_ca_file`.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// The operator's extra roots (PEM), kept for the TLS setups of
    /// streams that present a client certificate.
    pub tls_roots: Vec<Vec<u8>>,
    /// How long a Splunk HEC batch may wait for its acknowledgement
    /// before it is sent again.
    pub ack_timeout: Duration,
}

impl StreamSettings {
    /// The defaults, with `secret_key`.
    pub fn new(secret_key: SecretKey) -> Self {
        Self {
            secret_key,
            allow: AllowList::default(),
            lease: Duration::from_secs(30),
            failing_after: Duration::from_secs(600),
            batch_seqs: DEFAULT_BATCH_SEQS,
            max_batch_bytes: DEFAULT_BATCH_BYTES,
            request_timeout: Duration::from_secs(30),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            tls: tls::tls_config(&[]).ok(),
            tls_roots: Vec::new(),
            ack_timeout: Duration::from_secs(300),
        }
    }

    /// Trusts the PEM certificates in `pems` too for TLS destinations.
    pub fn with_tls_roots(mut self, pems: &[Vec<u8>]) -> Result<Self, String> {
        self.tls = Some(tls::tls_config(pems)?);
        self.tls_roots = pems.to_vec();
        Ok(self)
    }

    /// The wait before retry `retry` (1-based): exponential, capped, with
    /// "equal jitter" (half fixed, half random), so that streams failing
    /// together do not retry in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1).min(20));
        let delay = self
            .first_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        let mut random = [0u8; 4];
        crate::tokens::fill_random(&mut random);
        let fraction = f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
        delay / 2 + (delay / 2).mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_with_jitter_up_to_the_cap() {
        let settings = StreamSettings::new(SecretKey::random());
        for retry in 1..30 {
            let full = (Duration::from_millis(500) * 2u32.pow((retry - 1).min(20)))
                .min(Duration::from_secs(300));
            let wait = settings.backoff(retry);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
    }
}
