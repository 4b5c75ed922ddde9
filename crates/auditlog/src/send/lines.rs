//! Reading JSON Lines into batches: each line checked to be one JSON object
//! (or rejected here, with its number), given a derived `id` when it has
//! none, and packed into batches that fit the API's limits.

use super::event_id::{self, Namespace};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::io::BufRead;

/// Most bytes of one request body (the API's limit, `api::body`).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// `{"events":[` and `]}` around the events.
const ENVELOPE_BYTES: usize = 13;

/// One event ready to send: its line number and its JSON object, with an `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub line: u64,
    pub json: Vec<u8>,
}

/// A line that will not be stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// What one step of reading gives: a batch to send (may be empty at the end
/// of the input), the lines rejected on the way, and the bytes read.
#[derive(Debug, Default)]
pub struct Chunk {
    pub events: Vec<Pending>,
    pub rejected: Vec<Rejection>,
    pub bytes_read: u64,
}

/// Reads lines and packs them into batches of at most `max_events` events
/// and `MAX_BODY_BYTES` bytes.
pub struct BatchReader<R> {
    input: R,
    namespace: Namespace,
    max_events: usize,
    line_number: u64,
    /// A line read that did not fit the previous batch; it opens the next.
    carried: Option<Pending>,
    buffer: Vec<u8>,
    done: bool,
}

impl<R: BufRead> BatchReader<R> {
    pub fn new(input: R, namespace: Namespace, max_events: usize) -> Self {
        Self {
            input,
            namespace,
            max_events: max_events.max(1),
            line_number: 0,
            carried: None,
            buffer: Vec::new(),
            done: false,
        }
    }

    /// The next batch; `None` once the input is exhausted and sent.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.done && self.carried.is_none() {
            return Ok(None);
        }
        let mut chunk = Chunk::default();
        let mut body_bytes = ENVELOPE_BYTES;
        if let Some(pending) = self.carried.take() {
            body_bytes += pending.json.len() + 1;
            chunk.events.push(pending);
        }
        while chunk.events.len() < self.max_events && !self.done {
            self.buffer.clear();
            let read = self.input.read_until(b'\n', &mut self.buffer)?;
            if read == 0 {
                self.done = true;
                break;
            }
            chunk.bytes_read += read as u64;
            self.line_number += 1;
            let content = without_line_ending(&self.buffer);
            if content.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match prepare(&self.namespace, self.line_number, content) {
                Err(reason) => chunk.rejected.push(Rejection {
                    line: self.line_number,
                    reason,
                }),
                Ok(json) if json.len() + ENVELOPE_BYTES > MAX_BODY_BYTES => {
                    chunk.rejected.push(Rejection {
                        line: self.line_number,
                        reason: format!(
                            "the line is {} bytes; a request to the API holds at most {MAX_BODY_BYTES}",
                            content.len()
                        ),
                    });
                }
                Ok(json) => {
                    let pending = Pending {
                        line: self.line_number,
                        json,
                    };
                    // One byte for the comma before it.
                    if body_bytes + pending.json.len() + 1 > MAX_BODY_BYTES {
                        self.carried = Some(pending);
                        break;
                    }
                    body_bytes += pending.json.len() + 1;
                    chunk.events.push(pending);
                }
            }
        }
        Ok(Some(chunk))
    }
}

/// The request body for `events`: `{"events":[…]}`.
pub fn batch_body(events: &[Pending]) -> Vec<u8> {
    let size = ENVELOPE_BYTES + events.iter().map(|e| e.json.len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(b"{\"events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&event.json);
    }
    body.extend_from_slice(b"]}");
    body
}

fn without_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The line as it will be sent: checked to be one JSON object, and given
/// its derived id after the opening brace when it has no `id`. The line's
/// own bytes are kept (not parsed and written again): the server sees what
/// the file says, and the client spends little time per line.
fn prepare(namespace: &Namespace, line_number: u64, content: &[u8]) -> Result<Vec<u8>, String> {
    let probe: ObjectProbe = serde_json::from_slice(content)
        .map_err(|e| format!("not a JSON object (one event per line): {e}"))?;
    if probe.has_id {
        return Ok(content.to_vec());
    }
    let id = event_id::derive(namespace, line_number, content);
    // The probe succeeded, so the first byte that is not whitespace is `{`.
    let brace = content
        .iter()
        .position(|b| *b == b'{')
        .ok_or_else(|| "not a JSON object (one event per line)".to_string())?;
    let rest = &content[brace + 1..];
    let empty = rest
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'}');
    let mut json = Vec::with_capacity(content.len() + id.len() + 9);
    json.extend_from_slice(b"{\"id\":\"");
    json.extend_from_slice(id.as_bytes());
    json.push(b'"');
    if !empty {
        json.push(b',');
    }
    json.extend_from_slice(rest);
    Ok(json)
}

/// What reading needs to know of a line: that it is one JSON object, and
/// whether it has a top-level `id`. Deserialized without building the
/// object (values are skipped), which keeps the client's share of the CPU
/// small beside the server's.
struct ObjectProbe {
    has_id: bool,
}

impl<'de> Deserialize<'de> for ObjectProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = ObjectProbe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectProbe, A::Error> {
                let mut has_id = false;
                while let Some(IsId(is_id)) = map.next_key()? {
                    has_id |= is_id;
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(ObjectProbe { has_id })
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// A key, read only to tell whether it is `id` (no allocation).
struct IsId(bool);

impl<'de> Deserialize<'de> for IsId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = IsId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<IsId, E> {
                Ok(IsId(key == "id"))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn reader(text: &str, max_events: usize) -> BatchReader<&[u8]> {
        let namespace = Namespace::given("test").unwrap();
        BatchReader::new(text.as_bytes(), namespace, max_events)
    }

    fn all_chunks(mut reader: BatchReader<&[u8]>) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            chunks.push(chunk);
        }
        chunks
    }

    fn parsed(pending: &Pending) -> Value {
        serde_json::from_slice(&pending.json).unwrap()
    }

    #[test]
    fn lines_without_an_id_get_the_derived_one_and_keep_their_fields() {
        let text = "{\"action\":\"Create\"}\n{ }\n{\"id\":\"mine\",\"action\":\"Delete\"}\r\n";
        let chunks = all_chunks(reader(text, 10));
        let events = &chunks[0].events;
        let namespace = Namespace::given("test").unwrap();
        assert_eq!(
            parsed(&events[0]),
            json!({"id": event_id::derive(&namespace, 1, br#"{"action":"Create"}"#), "action": "Create"})
        );
        assert_eq!(
            parsed(&events[1]),
            json!({"id": event_id::derive(&namespace, 2, b"{ }")})
        );
        // An id of its own is kept, and the line's bytes are sent as written.
        assert_eq!(events[2].json, br#"{"id":"mine","action":"Delete"}"#);
        assert_eq!(events.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(chunks[0].bytes_read, text.len() as u64);
    }

    #[test]
    fn lines_that_are_not_one_object_are_rejected_with_their_number() {
        let text = "{\"a\":1}\n[1,2]\nnot json\n\n   \n{\"b\":2} trailing\n\"text\"\n{\"c\":3}";
        let chunks = all_chunks(reader(text, 10));
        let rejected: Vec<u64> = chunks[0].rejected.iter().map(|r| r.line).collect();
        // Blank lines (4, 5) are skipped, not rejected.
        assert_eq!(rejected, [2, 3, 6, 7]);
        assert!(chunks[0].rejected[0].reason.contains("not a JSON object"));
        let sent: Vec<u64> = chunks[0].events.iter().map(|e| e.line).collect();
        assert_eq!(sent, [1, 8]);
    }

    #[test]
    fn batches_hold_at_most_max_events_and_cover_every_line_once() {
        let text: String = (0..25).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let chunks = all_chunks(reader(&text, 10));
        let sizes: Vec<usize> = chunks.iter().map(|c| c.events.len()).collect();
        assert_eq!(&sizes[..3], [10, 10, 5]);
        assert!(sizes[3..].iter().all(|s| *s == 0));
        let lines: Vec<u64> = chunks
            .iter()
            .flat_map(|c| &c.events)
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, (1..=25).collect::<Vec<_>>());
    }

    #[test]
    fn batches_stay_under_the_body_limit() {
        // Lines of ~1 MiB: ten fit in a 10 MiB body only if nothing else does.
        let padding = "x".repeat(1024 * 1024 - 40);
        let text: String = (0..25)
            .map(|i| format!("{{\"id\":\"e{i}\",\"p\":\"{padding}\"}}\n"))
            .collect();
        let chunks = all_chunks(reader(&text, 1_000));
        for chunk in &chunks {
            assert!(batch_body(&chunk.events).len() <= MAX_BODY_BYTES);
        }
        let count: usize = chunks.iter().map(|c| c.events.len()).sum();
        assert_eq!(count, 25);
        assert!(chunks[0].events.len() >= 9);
        // A line over the limit by itself is rejected, not sent.
        let huge = format!("{{\"p\":\"{}\"}}\n", "x".repeat(MAX_BODY_BYTES));
        let chunks = all_chunks(reader(&huge, 1_000));
        assert_eq!(chunks[0].rejected[0].line, 1);
        assert!(chunks[0].rejected[0].reason.contains("at most"));
    }

    #[test]
    fn the_body_is_a_batch_of_the_events() {
        let chunks = all_chunks(reader("{\"id\":\"a\"}\n{\"id\":\"b\"}\n", 10));
        let body: Value = serde_json::from_slice(&batch_body(&chunks[0].events)).unwrap();
        assert_eq!(body, json!({"events": [{"id": "a"}, {"id": "b"}]}));
    }
}
