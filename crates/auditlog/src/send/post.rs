//! Sending one batch to `POST /api/v1/events` until each of its events is
//! stored, found already present, or rejected: a 422 or 409 names events by
//! index, which are set aside and the rest sent again; a 413 splits the
//! batch; connection errors, timeouts, 429 and 502–504 are retried with
//! backoff (the server's `Retry-After` when it gives one). Resending is
//! safe because every event carries its id: the server stores it once.

use super::lines::{batch_body, Pending, Rejection};
use serde::Deserialize;
use std::time::Duration;

/// How long to wait between attempts, and how many to make.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of one request before giving up (then the run stops).
    pub max_retries: u32,
    /// The first wait; each further one doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry `retry` (1-based) when the server named none:
    /// exponential, capped, with "equal jitter" (half fixed, half random)
    /// so that concurrent senders do not retry in step.
    fn backoff(&self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1));
        let delay = self
            .first_delay
            .saturating_mul(doubling)
            .min(self.max_delay);
        let random = getrandom::u32().unwrap_or(u32::MAX);
        delay / 2 + (delay / 2).mul_f64(f64::from(random) / f64::from(u32::MAX))
    }
}

/// The longest `Retry-After` honoured as given; a longer one is cut to this,
/// so that one odd header cannot park the run for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What became of one batch's events.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stored: u64,
    pub present: u64,
    pub rejected: Vec<Rejection>,
    pub retries: u64,
}

/// Why a batch could not be sent; the run stops, and can be run again.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("the server answered {status} ({code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("gave up after {retries} retries of one batch; the last failure: {last}")]
    GaveUp { retries: u32, last: String },
    #[error("the server's answer ({status}) is not what the API describes: {problem}")]
    BadAnswer { status: u16, problem: String },
}

/// Posts batches to one server with one key; cheap to clone (one
/// connection pool shared by the concurrent batches).
#[derive(Clone)]
pub struct Poster {
    http: reqwest::Client,
    url: String,
    authorization: String,
    retry: RetryPolicy,
}

/// What one request settled.
enum Answer {
    /// One `created` per event, in order.
    Receipts(Vec<bool>),
    /// Events the server refused, by index within the batch, with why.
    Invalid(Vec<(usize, String)>),
    TooLarge,
}

/// The result of one request.
enum Attempt {
    Settled(Answer),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

impl Poster {
    /// `url` is the events route (`…/api/v1/events`); `builder` the HTTP
    /// client's setup (its TLS).
    pub fn new(
        url: String,
        key: &str,
        retry: RetryPolicy,
        timeout: Duration,
        builder: reqwest::ClientBuilder,
    ) -> Result<Self, reqwest::Error> {
        let http = builder.timeout(timeout).build()?;
        Ok(Self {
            http,
            url,
            authorization: format!("Bearer {key}"),
            retry,
        })
    }

    /// Sends `events` until each is stored, present or rejected.
    pub async fn send(&self, events: Vec<Pending>) -> Result<Outcome, PostError> {
        let mut outcome = Outcome::default();
        let mut work = vec![events];
        while let Some(events) = work.pop() {
            match self
                .post_with_retries(&events, &mut outcome.retries)
                .await?
            {
                Answer::Receipts(created) => {
                    if created.len() != events.len() {
                        return Err(bad_answer(format!(
                            "{} receipts for {} events",
                            created.len(),
                            events.len()
                        )));
                    }
                    let new = created.iter().filter(|c| **c).count() as u64;
                    outcome.stored += new;
                    outcome.present += created.len() as u64 - new;
                }
                Answer::Invalid(problems) => {
                    let rest = set_aside(events, problems, &mut outcome.rejected)?;
                    if !rest.is_empty() {
                        work.push(rest);
                    }
                }
                Answer::TooLarge if events.len() == 1 => outcome.rejected.push(Rejection {
                    line: events[0].line,
                    reason: "the server refused the event as too large (413)".into(),
                }),
                Answer::TooLarge => {
                    // The server's limit is below ours: halve until it fits.
                    let mut first = events;
                    let second = first.split_off(first.len() / 2);
                    work.push(second);
                    work.push(first);
                }
            }
        }
        Ok(outcome)
    }

    async fn post_with_retries(
        &self,
        events: &[Pending],
        retries: &mut u64,
    ) -> Result<Answer, PostError> {
        let body = batch_body(events);
        let mut retry = 0;
        loop {
            match self.post_once(body.clone()).await? {
                Attempt::Settled(answer) => return Ok(answer),
                Attempt::Retry { reason, after } => {
                    retry += 1;
                    if retry > self.retry.max_retries {
                        return Err(PostError::GaveUp {
                            retries: self.retry.max_retries,
                            last: reason,
                        });
                    }
                    let wait = after
                        .map(|after| after.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| self.retry.backoff(retry));
                    tracing::warn!(
                        first_line = events.first().map_or(0, |e| e.line),
                        retry,
                        wait_ms = wait.as_millis() as u64,
                        %reason,
                        "retrying a batch"
                    );
                    *retries += 1;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn post_once(&self, body: Vec<u8>) -> Result<Attempt, PostError> {
        let sent = self
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Ok(connection_failure(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Ok(connection_failure(&e)),
        };
        let answer = match status {
            200 | 201 => Answer::Receipts(receipts(&bytes, status)?),
            413 => Answer::TooLarge,
            422 | 409 => match invalid_events(&bytes) {
                Some(problems) => Answer::Invalid(problems),
                None => return Err(refused(status, &bytes)),
            },
            429 | 502..=504 => {
                let error = error_of(&bytes);
                return Ok(Attempt::Retry {
                    reason: format!("{status} {}: {}", error.code, error.message),
                    after: retry_after,
                });
            }
            _ => return Err(refused(status, &bytes)),
        };
        Ok(Attempt::Settled(answer))
    }
}

/// A request that got no answer: retried, since nothing or everything of
/// it may have been stored and resending is idempotent.
fn connection_failure(error: &reqwest::Error) -> Attempt {
    // The whole chain: reqwest's own text ("error sending request") hides
    // the cause (connection refused, reset, timed out).
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    Attempt::Retry {
        reason,
        after: None,
    }
}

fn bad_answer(problem: String) -> PostError {
    PostError::BadAnswer {
        status: 201,
        problem,
    }
}

/// `created` of each receipt of a 200/201 answer.
fn receipts(bytes: &[u8], status: u16) -> Result<Vec<bool>, PostError> {
    #[derive(Deserialize)]
    struct Receipt {
        created: bool,
    }
    #[derive(Deserialize)]
    struct IngestAnswer {
        events: Vec<Receipt>,
    }
    serde_json::from_slice::<IngestAnswer>(bytes)
        .map(|answer| answer.events.into_iter().map(|r| r.created).collect())
        .map_err(|e| PostError::BadAnswer {
            status,
            problem: format!("receipts with `created` expected: {e}"),
        })
}

/// The error object every non-2xx answer has (SPEC: `{"error": {…}}`).
#[derive(Debug, Default, Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: serde_json::Value,
}

fn error_of(bytes: &[u8]) -> ErrorObject {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorObject,
    }
    serde_json::from_slice::<ErrorBody>(bytes)
        .map(|body| body.error)
        .unwrap_or_else(|_| ErrorObject {
            code: "unknown".into(),
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned(),
            details: serde_json::Value::Null,
        })
}

fn refused(status: u16, bytes: &[u8]) -> PostError {
    let error = error_of(bytes);
    PostError::Refused {
        status,
        code: error.code,
        message: error.message,
    }
}

/// The events a 422 `invalid_events` (each bad index with its field errors)
/// or a 409 `conflict` (one index and id) names; `None` for any other 422
/// or 409, which is no fault of particular events.
fn invalid_events(bytes: &[u8]) -> Option<Vec<(usize, String)>> {
    let error = error_of(bytes);
    let index = |value: &serde_json::Value| value["index"].as_u64().map(|i| i as usize);
    match error.code.as_str() {
        "invalid_events" => error
            .details
            .as_array()?
            .iter()
            .map(|problem| {
                let reasons: Vec<String> = problem["errors"]
                    .as_array()
                    .map(|errors| {
                        errors
                            .iter()
                            .map(|e| {
                                let field = e["field"].as_str().unwrap_or("");
                                let message = e["message"].as_str().unwrap_or("invalid");
                                // Messages mostly start with the field, or quote it.
                                let quoted = format!("{field:?}");
                                if message.starts_with(field) || message.contains(&quoted) {
                                    message.to_string()
                                } else {
                                    format!("{field}: {message}")
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Some((index(problem)?, reasons.join("; ")))
            })
            .collect(),
        // The server's message counts events within the batch; the reader
        // knows lines, so the reason is said again without the index.
        "conflict" => Some(vec![(
            index(&error.details)?,
            format!(
                "id {} is already stored with different content (409 conflict)",
                error.details["id"]
            ),
        )]),
        _ => None,
    }
}

/// Records the named events as rejected and returns the others, in order.
fn set_aside(
    events: Vec<Pending>,
    problems: Vec<(usize, String)>,
    rejected: &mut Vec<Rejection>,
) -> Result<Vec<Pending>, PostError> {
    if problems.is_empty() {
        return Err(PostError::BadAnswer {
            status: 422,
            problem: "a refusal that names no event".into(),
        });
    }
    let mut bad = vec![None; events.len()];
    for (index, reason) in problems {
        let slot = bad.get_mut(index).ok_or_else(|| PostError::BadAnswer {
            status: 422,
            problem: format!("event index {index} in a batch of {}", events.len()),
        })?;
        *slot = Some(reason);
    }
    let mut rest = Vec::with_capacity(events.len());
    for (event, reason) in events.into_iter().zip(bad) {
        match reason {
            Some(reason) => rejected.push(Rejection {
                line: event.line,
                reason,
            }),
            None => rest.push(event),
        }
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending(lines: &[u64]) -> Vec<Pending> {
        lines
            .iter()
            .map(|line| Pending {
                line: *line,
                json: b"{}".to_vec(),
            })
            .collect()
    }

    #[test]
    fn a_422_names_events_by_index_with_their_field_errors() {
        let body = json!({"error": {"code": "invalid_events", "message": "2 of 3 events are invalid", "details": [
            {"index": 0, "errors": [{"field": "actor.id", "rule": "required", "message": "actor.id is required"}]},
            {"index": 2, "errors": [{"field": "action", "rule": "unknown", "message": "no such action"},
                                    {"field": "project", "rule": "too_long", "message": "at most 200 characters"}]}
        ]}});
        let problems = invalid_events(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            problems,
            [
                (0, "actor.id is required".to_string()),
                (
                    2,
                    "action: no such action; project: at most 200 characters".to_string()
                )
            ]
        );
        let mut rejected = Vec::new();
        let rest = set_aside(pending(&[10, 11, 12]), problems, &mut rejected).unwrap();
        assert_eq!(rest, pending(&[11]));
        let lines: Vec<u64> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [10, 12]);
    }

    #[test]
    fn a_409_names_one_event_and_other_refusals_name_none() {
        let conflict = json!({"error": {"code": "conflict", "message": "id x was stored with other content", "details": {"index": 1, "id": "x"}}});
        assert_eq!(
            invalid_events(&serde_json::to_vec(&conflict).unwrap()),
            Some(vec![(
                1,
                "id \"x\" is already stored with different content (409 conflict)".to_string()
            )])
        );
        let batch = json!({"error": {"code": "invalid_batch", "message": "no"}});
        assert_eq!(invalid_events(&serde_json::to_vec(&batch).unwrap()), None);
        assert_eq!(invalid_events(b"not json"), None);
    }

    #[test]
    fn an_index_outside_the_batch_is_a_bad_answer_not_a_panic() {
        let mut rejected = Vec::new();
        let out = set_aside(pending(&[1]), vec![(3, "x".into())], &mut rejected);
        assert!(matches!(out, Err(PostError::BadAnswer { .. })));
        let out = set_aside(pending(&[1]), vec![], &mut rejected);
        assert!(matches!(out, Err(PostError::BadAnswer { .. })));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy {
            max_retries: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        for (retry, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1600),
            (6, 2000),
            (30, 2000),
        ] {
            let wait = policy.backoff(retry);
            let full = Duration::from_millis(full);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
    }

    /// A stand-in for the server on a loopback port: a batch of more than
    /// two events is too large (413); an event with `"bad": true` is named
    /// in a 422; otherwise every event is stored, except ids starting with
    /// `old`, which are already present. Returns the base URL and the
    /// number of events in each request it received.
    async fn scripted_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        stream.read_exact(&mut body).await.unwrap();
                        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let events = body["events"].as_array().unwrap();
                        log.lock().unwrap().push(events.len());
                        let bad: Vec<serde_json::Value> = events
                            .iter()
                            .enumerate()
                            .filter(|(_, e)| e["bad"] == true)
                            .map(|(i, _)| json!({"index": i, "errors": [{"field": "bad", "rule": "r", "message": "bad is bad"}]}))
                            .collect();
                        let (status, answer) = if events.len() > 2 {
                            (
                                413,
                                json!({"error": {"code": "too_large", "message": "too large"}}),
                            )
                        } else if !bad.is_empty() {
                            (
                                422,
                                json!({"error": {"code": "invalid_events", "message": "invalid", "details": bad}}),
                            )
                        } else {
                            let receipts: Vec<serde_json::Value> = events
                                .iter()
                                .map(|e| {
                                    json!({"id": e["id"], "seq": 1, "hash": "00",
                                    "created": !e["id"].as_str().unwrap().starts_with("old")})
                                })
                                .collect();
                            (201, json!({"events": receipts}))
                        };
                        let answer = answer.to_string();
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            answer.len()
                        );
                        let stream = stream.get_mut();
                        stream.write_all(head.as_bytes()).await.unwrap();
                        stream.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (base, seen)
    }

    #[tokio::test]
    async fn a_batch_is_halved_on_413_and_resent_without_the_events_a_422_names() {
        let (base, seen) = scripted_server().await;
        let retry = RetryPolicy {
            max_retries: 0,
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        };
        let poster = Poster::new(
            format!("{base}/api/v1/events"),
            "alk_test",
            retry,
            Duration::from_secs(10),
            reqwest::Client::builder(),
        )
        .unwrap();
        let events: Vec<Pending> = [
            (1, r#"{"id":"a"}"#),
            (2, r#"{"id":"old-b"}"#),
            (3, r#"{"id":"c","bad":true}"#),
            (4, r#"{"id":"d"}"#),
            (5, r#"{"id":"e"}"#),
        ]
        .iter()
        .map(|(line, json)| Pending {
            line: *line,
            json: json.as_bytes().to_vec(),
        })
        .collect();
        let outcome = poster.send(events).await.unwrap();
        assert_eq!((outcome.stored, outcome.present), (3, 1));
        assert_eq!(
            outcome.rejected,
            [Rejection {
                line: 3,
                reason: "bad is bad".into()
            }]
        );
        // 5 → 413; halves of 2 and 3: [a, old-b] stored; [c, d, e] → 413;
        // [c] → 422 and nothing left; [d, e] stored.
        assert_eq!(*seen.lock().unwrap(), [5, 2, 3, 1, 2]);
    }

    #[test]
    fn receipts_need_created() {
        let answer = json!({"events": [{"id": "a", "seq": 1, "hash": "00", "created": true},
                                        {"id": "b", "seq": 2, "hash": "00", "created": false}]});
        assert_eq!(
            receipts(&serde_json::to_vec(&answer).unwrap(), 201).unwrap(),
            [true, false]
        );
        let old = json!({"events": [{"id": "a", "seq": 1, "hash": "00"}]});
        assert!(receipts(&serde_json::to_vec(&old).unwrap(), 201).is_err());
    }
}
