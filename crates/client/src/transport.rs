//! The HTTP exchange and nothing else: one request, its status, the headers
//! that steer retries (`Retry-After`) and report the server's clock
//! (`Date`), and the body. Decisions about the answer are `delivery`'s.

use crate::retry::parse_retry_after;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, DATE, RETRY_AFTER};
use std::time::{Duration, SystemTime};

/// One server and the keys to talk to it.
#[derive(Debug)]
pub(crate) struct Transport {
    pub http: reqwest::Client,
    /// The server's base URL without a trailing slash.
    pub base: String,
    /// `Bearer <ingest key>`.
    pub ingest_auth: String,
    /// `Bearer <read key>`, for proofs.
    pub read_auth: Option<String>,
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The server's clock.
    pub date: Option<SystemTime>,
    pub body: Vec<u8>,
}

impl Transport {
    /// `POST /api/v1/events` with a JSON body.
    pub async fn post_events(&self, body: Vec<u8>) -> Result<Answer, reqwest::Error> {
        let response = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .header(AUTHORIZATION, &self.ingest_auth)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?;
        read(response).await
    }

    /// `GET path` with the read key (or no key when none was given).
    pub async fn get(&self, path: &str) -> Result<Answer, reqwest::Error> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(auth) = &self.read_auth {
            request = request.header(AUTHORIZATION, auth);
        }
        read(request.send().await?).await
    }
}

async fn read(response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let now = SystemTime::now();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let date = header(DATE).and_then(|d| httpdate::parse_http_date(&d).ok());
    let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v, date.unwrap_or(now)));
    let status = response.status().as_u16();
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        retry_after,
        date,
        body,
    })
}
