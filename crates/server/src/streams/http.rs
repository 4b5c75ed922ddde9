//! One HTTP `POST` to a stream's destination (webhook, Splunk HEC): the
//! address checked just before and the connection pinned to it (no DNS
//! rebinding past the check), redirects not followed, the answer sorted
//! into accepted, retry (after `Retry-After` on 429 and 503) or gone (410).
//! A client is kept per pinned destination, so that connections are kept
//! alive from one batch to the next.

use super::address::{self, AllowList};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_rustls::rustls::ClientConfig;

/// The TLS setup for `https://` destinations (`StreamSettings::tls`).
pub type Tls<'a> = Option<&'a Arc<ClientConfig>>;

/// How the destination answered one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: delivered. The status and the start of the body.
    Accepted(String),
    /// Anything else but 410, or no answer: try again, after `after` when
    /// the destination said (429 or 503 with `Retry-After`).
    Retry {
        reason: String,
        /// The metrics' label: `connection`, `status`, `rate_limited`,
        /// `unacknowledged` or `too_large` (413: the batch is split).
        cause: &'static str,
        after: Option<Duration>,
    },
    /// 410 Gone: the destination wants no more; the stream is disabled.
    Gone(String),
}

impl Answer {
    /// A failure to connect or to get an answer.
    pub fn connection(reason: String) -> Self {
        Answer::Retry {
            reason,
            cause: "connection",
            after: None,
        }
    }
}

/// The most of a response body kept in the batch history.
const EXCERPT: usize = 200;
/// The most of a response body read.
const MAX_BODY: usize = 64 * 1024;

/// What the destination answered.
#[derive(Debug, Clone)]
pub struct Posted {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The body (its first 64 KiB).
    pub body: String,
}

impl Posted {
    /// The status and the start of the body.
    pub fn summary(&self) -> String {
        let excerpt: String = self.body.chars().take(EXCERPT).collect();
        format!("{} {}", self.status, excerpt.trim())
    }

    /// Accepted on 2xx, gone on 410, else retried.
    pub fn answer(&self) -> Answer {
        let summary = self.summary();
        if (200..300).contains(&self.status) {
            Answer::Accepted(summary)
        } else if self.status == 410 {
            Answer::Gone(summary)
        } else {
            Answer::Retry {
                reason: summary,
                cause: match self.status {
                    429 => "rate_limited",
                    413 => "too_large",
                    _ => "status",
                },
                after: self
                    .retry_after
                    .filter(|_| matches!(self.status, 429 | 503)),
            }
        }
    }
}

/// Posts `body` to `url` with `headers`; `Err` when there was no answer.
/// An `https://` URL is reached with `tls` (the server's certificate
/// checked for the URL's host).
pub async fn post(
    url: &str,
    allow: &AllowList,
    tls: Tls<'_>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Posted, Answer> {
    let destination = address::parse_url(url).map_err(Answer::connection)?;
    // Checked now, and the connection pinned to what was checked.
    let addresses = address::resolve(&destination, allow)
        .await
        .map_err(Answer::connection)?;
    let tls = if url.starts_with("https:") {
        Some(
            tls.ok_or_else(|| Answer::connection("TLS is not set up on this server".into()))?
                .clone(),
        )
    } else {
        None
    };
    let client = pinned_client(Pin {
        host: destination.host.clone(),
        addresses,
        tls,
        timeout,
    })?;
    let mut request = client.post(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| Answer::connection(format!("no answer: {e}")))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(3_600)));
    let mut response = response;
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(MAX_BODY);
    Ok(Posted {
        status,
        retry_after,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// What an HTTP client is built for: the destination's host pinned to the
/// addresses checked, the TLS setup (the same `Arc`) and the timeout.
struct Pin {
    host: String,
    addresses: Vec<SocketAddr>,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl Pin {
    fn same(&self, other: &Pin) -> bool {
        self.host == other.host
            && self.addresses == other.addresses
            && self.timeout == other.timeout
            && match (&self.tls, &other.tls) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// The clients kept, most recently built last.
static CLIENTS: Mutex<Vec<(Pin, reqwest::Client)>> = Mutex::new(Vec::new());
/// At most this many clients are kept (the oldest is dropped first).
const KEPT_CLIENTS: usize = 64;

/// The client for `pin`: the one built for the same pin before, so that
/// its connections are kept alive between batches (a client and a
/// connection per batch before), or a new one. The addresses are checked
/// before each post all the same: a destination that resolves elsewhere
/// gets a client of its own, pinned to the new addresses.
fn pinned_client(pin: Pin) -> Result<reqwest::Client, Answer> {
    if let Ok(clients) = CLIENTS.lock() {
        if let Some((_, client)) = clients.iter().find(|(kept, _)| kept.same(&pin)) {
            return Ok(client.clone());
        }
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(pin.timeout)
        .resolve_to_addrs(&pin.host, &pin.addresses);
    if let Some(tls) = &pin.tls {
        builder = builder.use_preconfigured_tls(ClientConfig::clone(tls));
    }
    let client = builder
        .build()
        .map_err(|e| Answer::connection(format!("cannot set up the HTTP client: {e}")))?;
    if let Ok(mut clients) = CLIENTS.lock() {
        if clients.len() >= KEPT_CLIENTS {
            clients.remove(0);
        }
        clients.push((pin, client.clone()));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(status: u16, retry_after: Option<u64>) -> Posted {
        Posted {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: " ok ".into(),
        }
    }

    #[test]
    fn answers_are_sorted_by_status() {
        assert_eq!(
            posted(204, None).answer(),
            Answer::Accepted("204 ok".into())
        );
        assert_eq!(posted(410, None).answer(), Answer::Gone("410 ok".into()));
        assert_eq!(
            posted(429, Some(7)).answer(),
            Answer::Retry {
                reason: "429 ok".into(),
                cause: "rate_limited",
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            posted(500, Some(7)).answer(),
            Answer::Retry {
                reason: "500 ok".into(),
                cause: "status",
                after: None
            },
            "Retry-After only counts on 429 and 503"
        );
        assert!(matches!(
            posted(413, None).answer(),
            Answer::Retry {
                cause: "too_large",
                ..
            }
        ));
    }
}
