//! `auditlog tail`: a client of the live tail (`GET /api/v1/events/stream`,
//! Server-Sent Events) that prints each event as it is stored, as a JSON
//! line (exactly as the API returns it) or a table row, until interrupted.
//!
//! A dropped connection (the server restarting, a proxy's timeout, the
//! network) is resumed with `Last-Event-ID` set to the last `id` received,
//! so nothing is missed or printed twice. The server's first message is
//! the position the stream starts after, so this holds even when the
//! connection drops before any event arrived. Refusals a retry cannot fix
//! (a bad key, a bad filter) stop the command; 429 and 503 are retried
//! after their `Retry-After`, connection failures with backoff.

use crate::cli::TailCommand;
use crate::error::CliResult;
use anyhow::bail;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// The first wait after a failed connection; doubled on each further
/// failure, up to [`MAX_BACKOFF`], and reset once events flow again.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a connection may stay silent before it is taken for dead: the
/// server sends a keep-alive at least every 15 s.
const SILENCE: Duration = Duration::from_secs(45);

pub async fn run(command: TailCommand) -> CliResult {
    let url = stream_url(&command.url)?;
    if command.key.trim().is_empty() {
        bail!("--key is empty: give an API key with the read scope");
    }
    let query = query_pairs(&command);
    let http = crate::https::client_builder(command.ca_file.as_deref())?
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let table = command.format == "table";
    let mut out = std::io::stdout().lock();
    if table {
        write_or_quit(&mut out, table_header().as_bytes());
    }
    // The resume point: the last `id` the server sent.
    let mut last_id: Option<u64> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut request = http
            .get(&url)
            .bearer_auth(command.key.trim())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .query(&query);
        match last_id {
            Some(id) => request = request.header("Last-Event-ID", id.to_string()),
            None => {
                if let Some(after) = command.after_seq {
                    request = request.query(&[("after_seq", after.to_string())]);
                }
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                eprintln!(
                    "auditlog tail: cannot connect ({e}); retrying in {} ms",
                    backoff.as_millis()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            let message = error_message(response).await;
            if status.as_u16() == 429 || status.is_server_error() {
                let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(300));
                eprintln!(
                    "auditlog tail: the server answered {status}: {message}; retrying in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            bail!("the server answered {status}: {message}");
        }
        let mut parser = SseParser::default();
        let mut response = response;
        loop {
            let chunk = match tokio::time::timeout(SILENCE, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    eprintln!("auditlog tail: the server closed the stream; reconnecting");
                    break;
                }
                Ok(Err(e)) => {
                    eprintln!("auditlog tail: the connection failed ({e}); reconnecting");
                    break;
                }
                Err(_) => {
                    eprintln!(
                        "auditlog tail: nothing received for {} s; reconnecting",
                        SILENCE.as_secs()
                    );
                    break;
                }
            };
            let mut printed = Vec::new();
            for message in parser.feed(&chunk) {
                if let Some(id) = message.id {
                    last_id = Some(id);
                }
                if let Some(data) = message.data {
                    if table {
                        printed.extend_from_slice(table_row(&data).as_bytes());
                    } else {
                        printed.extend_from_slice(data.as_bytes());
                        printed.push(b'\n');
                    }
                }
            }
            if !printed.is_empty() {
                write_or_quit(&mut out, &printed);
            }
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Writes and flushes; a closed standard output (`auditlog tail | head`)
/// ends the command quietly, as other command-line tools do.
fn write_or_quit(out: &mut impl Write, bytes: &[u8]) {
    if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn stream_url(base: &str) -> CliResult<String> {
    Ok(format!(
        "{}/api/v1/events/stream",
        crate::https::base_url(base)?
    ))
}

/// The filters as the API's query parameters (the server checks them).
fn query_pairs(command: &TailCommand) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    for (name, values) in [
        ("event_type", &command.event_types),
        ("action", &command.actions),
        ("user", &command.users),
        ("project", &command.projects),
    ] {
        pairs.extend(values.iter().map(|v| (name, v.clone())));
    }
    for (name, value) in [
        ("app", &command.app),
        ("version", &command.version),
        ("target_id", &command.target_id),
        ("from", &command.from),
        ("to", &command.to),
    ] {
        if let Some(v) = value {
            pairs.push((name, v.clone()));
        }
    }
    pairs
}

/// The server's error message, from the API's error shape when it is one.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

/// One dispatched SSE message: the `id` and `data` fields it carried.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub id: Option<u64>,
    pub data: Option<String>,
}

/// An incremental parser of `text/event-stream` (the parts of the format
/// the server uses: `id`, `data`, comments), fed chunks as they arrive:
/// a message may be split across chunks anywhere, even inside a UTF-8
/// character.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    id: Option<u64>,
    data: Option<String>,
}

impl SseParser {
    /// The messages completed by `chunk`.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Message> {
        self.buffer.extend_from_slice(chunk);
        let mut messages = Vec::new();
        let mut start = 0;
        while let Some(end) = self.buffer[start..].iter().position(|b| *b == b'\n') {
            let line = &self.buffer[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start += end + 1;
            if line.is_empty() {
                if self.id.is_some() || self.data.is_some() {
                    messages.push(Message {
                        id: self.id.take(),
                        data: self.data.take(),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.id = value.parse().ok(),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                },
                _ => {}
            }
        }
        self.buffer.drain(..start);
        messages
    }
}

fn table_header() -> String {
    format!(
        "{:<27} {:>8}  {:<20} {:<10} {:<20} {:<20} {}\n",
        "TIME", "SEQ", "EVENT TYPE", "ACTION", "USER", "ENTITY", "PROJECT"
    )
}

/// One event as a table row; a `data` that is not an event object is shown as is.
fn table_row(data: &str) -> String {
    let Ok(event) = serde_json::from_str::<Value>(data) else {
        return format!("{data}\n");
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    format!(
        "{:<27} {:>8}  {:<20} {:<10} {:<20} {:<20} {}\n",
        text(&event["time"]),
        event["seq"]
            .as_u64()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        text(&event["event_type"]),
        text(&event["action"]),
        text(&event["actor"]["id"]),
        text(&event["target"]["id"]),
        text(&event["project"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_anywhere_are_put_together() {
        let stream = "id: 3\n\n: keep-alive\n\nid: 4\ndata: {\"seq\":4,\"a\":\"é\"}\n\n: keep-alive\nid: 9\n\n";
        let bytes = stream.as_bytes();
        let want = vec![
            Message {
                id: Some(3),
                data: None,
            },
            Message {
                id: Some(4),
                data: Some("{\"seq\":4,\"a\":\"é\"}".into()),
            },
            Message {
                id: Some(9),
                data: None,
            },
        ];
        for split in 0..bytes.len() {
            let mut parser = SseParser::default();
            let mut got = parser.feed(&bytes[..split]);
            got.extend(parser.feed(&bytes[split..]));
            assert_eq!(got, want, "split at byte {split}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            stream_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/api/v1/events/stream"
        );
        assert_eq!(
            stream_url("https://x").unwrap(),
            "https://x/api/v1/events/stream"
        );
        assert!(stream_url("ftp://x").is_err());
        assert!(stream_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn a_row_shows_the_main_fields() {
        let row = table_row(
            r#"{"time":"2026-12-06T10:00:00Z","seq":7,"event_type":"Test Case","action":"Create","actor":{"id":"u-1"},"target":{"id":"TC-1"},"project":"P"}"#,
        );
        for part in [
            "2026-12-06T10:00:00Z",
            " 7 ",
            "Test Case",
            "Create",
            "u-1",
            "TC-1",
            " P\n",
        ] {
            assert!(row.contains(part), "{row:?} lacks {part:?}");
        }
        assert_eq!(table_row("not json"), "not json\n");
    }
}
