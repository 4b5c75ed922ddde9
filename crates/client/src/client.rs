//! [`Client`]: one server, one ingest key; `send` and `send_batch` await
//! durability (the server answers only once the events survive a crash),
//! and `verify_receipt` checks a receipt's inclusion proof.

use crate::delivery::{deliver, Outcome, Stop};
use crate::error::SendError;
use crate::event::Event;
use crate::retry::RetryPolicy;
use crate::transport::Transport;
use crate::verify::{check, VerifiedReceipt, VerifierKey, VerifyError};
use crate::wire::{InclusionProof, Receipt};
use reqwest::header::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A handle on one Auditlog server. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    transport: Arc<Transport>,
    retry: RetryPolicy,
}

/// Settings of a [`Client`]; see [`Client::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    ingest_key: String,
    read_key: Option<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
}

/// What became of a batch sent with [`Client::send_batch`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// The stored events' receipts, in the order the events were given.
    pub receipts: Vec<Receipt>,
    /// The events the server refused, each with its reason; the others were stored.
    pub rejected: Vec<crate::Rejection>,
}

impl ClientBuilder {
    /// A key with the `read` scope, needed by [`Client::verify_receipt`]
    /// (the proof route is a read).
    pub fn read_key(mut self, key: impl Into<String>) -> Self {
        self.read_key = Some(key.into());
        self
    }

    /// How long one request may take before it counts as failed and is
    /// retried (default 30 s, the server's own request timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn build(self) -> Result<Client, SendError> {
        let base = self.base_url.trim_end_matches('/').to_string();
        let https = base.starts_with("https://");
        if !https && !base.starts_with("http://") {
            return Err(SendError::Config(format!(
                "the server URL must start with http:// or https://; got {base:?}"
            )));
        }
        if https && !cfg!(feature = "rustls") {
            return Err(SendError::Config(
                "an https:// URL needs the crate's `rustls` feature".into(),
            ));
        }
        let auth = |key: &str, which: &str| {
            let value = format!("Bearer {key}");
            HeaderValue::from_str(&value).map(|_| value).map_err(|_| {
                SendError::Config(format!(
                    "the {which} key holds characters a header cannot carry"
                ))
            })
        };
        let ingest_auth = auth(&self.ingest_key, "ingest")?;
        let read_auth = self
            .read_key
            .as_deref()
            .map(|k| auth(k, "read"))
            .transpose()?;
        let http = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("auditlog-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Config(e.to_string()))?;
        Ok(Client {
            transport: Arc::new(Transport {
                http,
                base,
                ingest_auth,
                read_auth,
            }),
            retry: self.retry,
        })
    }
}

impl Client {
    /// A client with the default settings.
    pub fn new(
        base_url: impl Into<String>,
        ingest_key: impl Into<String>,
    ) -> Result<Self, SendError> {
        Self::builder(base_url, ingest_key).build()
    }

    pub fn builder(base_url: impl Into<String>, ingest_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            ingest_key: ingest_key.into(),
            read_key: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// Sends one event and returns its receipt once it is durable, retrying
    /// (with the same id) through outages up to the retry policy's
    /// `give_up_after`.
    pub async fn send(&self, event: Event) -> Result<Receipt, SendError> {
        let mut result = self.send_batch(vec![event]).await?;
        match (result.receipts.pop(), result.rejected.pop()) {
            (Some(receipt), _) => Ok(receipt),
            (None, Some(rejection)) => Err(SendError::Rejected(Box::new(rejection))),
            (None, None) => Err(SendError::Protocol("no receipt and no refusal".into())),
        }
    }

    /// Sends events (split into requests of at most 1,000) and returns once
    /// every one is stored durably or refused. Refused events are reported
    /// by id with the server's reason; the others are stored.
    pub async fn send_batch(&self, events: Vec<Event>) -> Result<BatchResult, SendError> {
        let mut stop = Stop {
            deadline: Some(Instant::now() + self.retry.give_up_after),
            shutdown: None,
        };
        let outcome = self.deliver(&events, &mut stop).await;
        if let Some(failure) = outcome.failure {
            return Err(failure);
        }
        let mut receipts = outcome.receipts;
        receipts.sort_by_key(|(index, _)| *index);
        let mut rejected = outcome.rejected;
        rejected.sort_by_key(|(index, _)| *index);
        Ok(BatchResult {
            receipts: receipts.into_iter().map(|(_, r)| r).collect(),
            rejected: rejected.into_iter().map(|(_, r)| r).collect(),
        })
    }

    pub(crate) async fn deliver(&self, events: &[Event], stop: &mut Stop) -> Outcome {
        deliver(&self.transport, &self.retry, events, stop).await
    }

    /// The server's verifier key as it serves it today. Pin the key you
    /// trust out of band and compare: a key fetched from the server you
    /// are checking proves nothing by itself.
    pub async fn fetch_public_key(&self) -> Result<String, SendError> {
        let answer = self
            .transport
            .get("/api/v1/public-key")
            .await
            .map_err(|e| SendError::Protocol(e.to_string()))?;
        if answer.status != 200 {
            return Err(SendError::Protocol(format!(
                "GET /api/v1/public-key answered {}",
                answer.status
            )));
        }
        Ok(String::from_utf8_lossy(&answer.body).trim().to_string())
    }

    /// Fetches the receipt's inclusion proof (with the read key) and checks
    /// it against `key`: the stored event hashes to the receipt's hash and
    /// is entry `seq − 1` of a tree whose checkpoint `key` signed.
    pub async fn verify_receipt(
        &self,
        receipt: &Receipt,
        key: &VerifierKey,
    ) -> Result<VerifiedReceipt, VerifyError> {
        if self.transport.read_auth.is_none() {
            return Err(VerifyError::Fetch(
                "proofs need a key with the read scope: ClientBuilder::read_key".into(),
            ));
        }
        let id: String = receipt
            .id
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = self
            .transport
            .get(&format!("/api/v1/events/{id}/proof"))
            .await
            .map_err(|e| VerifyError::Fetch(e.to_string()))?;
        if answer.status != 200 {
            return Err(VerifyError::Fetch(format!(
                "GET /api/v1/events/{id}/proof answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )));
        }
        let proof: InclusionProof = serde_json::from_slice(&answer.body).map_err(|e| {
            VerifyError::Malformed(format!("the proof is not the expected JSON: {e}"))
        })?;
        check(receipt, &proof, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_urls_it_cannot_use() {
        for bad in ["127.0.0.1:8080", "ftp://x"] {
            assert!(
                matches!(Client::new(bad, "k"), Err(SendError::Config(_))),
                "{bad}"
            );
        }
        if !cfg!(feature = "rustls") {
            let error = Client::new("https://audit.example", "k").unwrap_err();
            assert!(error.to_string().contains("rustls"), "{error}");
        }
        assert!(matches!(
            Client::new("http://x", "bad\nkey"),
            Err(SendError::Config(_))
        ));
        let client = Client::new("http://127.0.0.1:1/", "k").unwrap();
        assert_eq!(client.transport.base, "http://127.0.0.1:1");
    }
}
