//! The three reads the monitor makes of a log server's API, with a `read`
//! key: the latest signed checkpoint, a consistency proof between two
//! sizes and an event's inclusion proof. Failures here are "could not
//! check" (network, 5xx), never evidence; what the answers prove is
//! `check`'s business.

use super::check::InclusionProof;
use anyhow::{anyhow, bail, Context};
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// One request's limit: the server answers these reads at once, or signs
/// one checkpoint first.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct LogApi {
    http: reqwest::Client,
    base: Url,
    key: String,
}

/// An answer to `GET /api/v1/events/{id}/proof`.
pub enum EventProof {
    Found(InclusionProof),
    /// 404: the key's account has no event with this id.
    Missing,
}

/// An answer of `GET /api/v1/proofs/root`.
#[derive(serde::Deserialize)]
pub struct Witnessed {
    /// The account's signed checkpoint.
    pub checkpoint: String,
    pub root: RootInclusion,
}

#[derive(serde::Deserialize)]
pub struct RootInclusion {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub hashes: Vec<String>,
    /// The root checkpoint with its cosignatures.
    pub checkpoint: String,
}

#[derive(serde::Deserialize)]
struct ConsistencyProof {
    from: u64,
    to: u64,
    hashes: Vec<String>,
}

impl LogApi {
    pub fn new(url: &str, key: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let base = Url::parse(url).map_err(|e| anyhow!("--url {url:?} is not a URL: {e}"))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            bail!("--url {url:?} must be an http:// or https:// URL");
        }
        let http = crate::https::client_builder(ca_file)?
            .timeout(TIMEOUT)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base,
            key: key.to_string(),
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `new` refused URLs that cannot be a base, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn get(&self, url: Url) -> anyhow::Result<reqwest::Response> {
        self.http
            .get(url.clone())
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("GET {url}"))
    }

    /// The latest signed checkpoint, or `None` while the account has no
    /// events (the server answers 404 `not_found` then).
    pub async fn checkpoint(&self) -> anyhow::Result<Option<String>> {
        let url = self.url(&["api", "v1", "checkpoint"]);
        let response = self.get(url.clone()).await?;
        if response.status() == StatusCode::NOT_FOUND {
            // Only the API's own answer: a 404 from a wrong --url or a
            // proxy must not read as "the log is empty", which after a
            // remembered checkpoint would be a false rollback alarm.
            // The route itself asks for a key first (401 without one),
            // while an auditlog server's unknown paths answer 404 to anyone.
            let body = response.text().await.unwrap_or_default();
            if error_code(&body).as_deref() == Some("not_found") && self.needs_a_key(&url).await? {
                return Ok(None);
            }
            bail!("GET {url}: 404 Not Found: no checkpoint route here (check --url)");
        }
        let response = success(url, response).await?;
        Ok(Some(
            response.text().await.context("reading the checkpoint")?,
        ))
    }

    /// Whether `url` answers 401 to a request without a key: a route of
    /// the API, not a path the server does not know.
    async fn needs_a_key(&self, url: &Url) -> anyhow::Result<bool> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        Ok(response.status() == StatusCode::UNAUTHORIZED)
    }

    /// The consistency proof from size `from` to size `to`.
    pub async fn consistency(&self, from: u64, to: u64) -> anyhow::Result<Vec<String>> {
        let mut url = self.url(&["api", "v1", "proofs", "consistency"]);
        url.query_pairs_mut()
            .append_pair("from", &from.to_string())
            .append_pair("to", &to.to_string());
        let response = success(url.clone(), self.get(url.clone()).await?).await?;
        let proof: ConsistencyProof = response
            .json()
            .await
            .with_context(|| format!("GET {url}: not a consistency proof"))?;
        if (proof.from, proof.to) != (from, to) {
            bail!(
                "GET {url}: asked for sizes {from} to {to}, got {} to {}",
                proof.from,
                proof.to
            );
        }
        Ok(proof.hashes)
    }

    /// The account's latest witnessed checkpoint with its inclusion in a
    /// cosigned root checkpoint (`GET /api/v1/proofs/root`); `None` while
    /// the server has none (404).
    pub async fn witnessed(&self) -> anyhow::Result<Option<Witnessed>> {
        let url = self.url(&["api", "v1", "proofs", "root"]);
        let response = self.get(url.clone()).await?;
        if response.status() == StatusCode::NOT_FOUND {
            let body = response.text().await.unwrap_or_default();
            if error_code(&body).as_deref() == Some("not_found") {
                return Ok(None);
            }
            bail!("GET {url}: 404 Not Found, and not from an auditlog server with a root log (check --url)");
        }
        let response = success(url.clone(), response).await?;
        let witnessed = response
            .json()
            .await
            .with_context(|| format!("GET {url}: not a witnessed checkpoint"))?;
        Ok(Some(witnessed))
    }

    /// The inclusion proof of event `id`.
    pub async fn event_proof(&self, id: &str) -> anyhow::Result<EventProof> {
        let url = self.url(&["api", "v1", "events", id, "proof"]);
        let response = self.get(url.clone()).await?;
        if response.status() == StatusCode::NOT_FOUND {
            let body = response.text().await.unwrap_or_default();
            if error_code(&body).as_deref() == Some("not_found") {
                return Ok(EventProof::Missing);
            }
            bail!("GET {url}: 404 Not Found, and not from an auditlog server (check --url)");
        }
        let response = success(url.clone(), response).await?;
        let proof = response
            .json()
            .await
            .with_context(|| format!("GET {url}: not an inclusion proof"))?;
        Ok(EventProof::Found(proof))
    }
}

/// The `code` of an API error body (`{"error": {"code": …}}`).
fn error_code(body: &str) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(body).ok()?;
    body["error"]["code"].as_str().map(str::to_string)
}

/// The response if it is a 200; otherwise an error with the status and the
/// server's message.
async fn success(url: Url, response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|b| b["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(body);
    bail!("GET {url}: {status}: {}", message.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_under_the_base_with_the_id_escaped() {
        let api = LogApi::new("http://127.0.0.1:9/prefix/", "k", None).unwrap();
        let url = api.url(&["api", "v1", "events", "a/b c", "proof"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/api/v1/events/a%2Fb%20c/proof"
        );
        assert!(LogApi::new("https://x.example", "k", None).is_ok());
        for bad in ["not a url", "ftp://x.example", "mailto:a@b"] {
            let error = LogApi::new(bad, "k", None).err().unwrap().to_string();
            assert!(error.contains("--url"), "{error}");
        }
    }

    #[test]
    fn only_the_apis_own_not_found_means_absent() {
        let body = r#"{"error": {"code": "not_found", "message": "no event"}}"#;
        assert_eq!(error_code(body).as_deref(), Some("not_found"));
        assert_eq!(error_code("<html>404</html>"), None);
    }
}
