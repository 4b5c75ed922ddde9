//! `syslog`: RFC 5424 messages over TCP with octet counting (RFC 6587,
//! `tcp://host:port`) or over TLS (RFC 5425, `tls://host:port`, the
//! server's certificate checked against the public web PKI roots and the
//! operator's `stream_tls_ca_file`; the same setup serves `https://`
//! webhook and Splunk HEC destinations).
//!
//! One message per event:
//! `<110>1 TIME - auditlog - MSGID [auditlog@32473 account=… seq=… …] JSON`
//! — facility 13 (log audit), severity 6 (informational); TIME the event's
//! time; MSGID the event type and action without spaces
//! (`TestCase.Update`, at most 32 characters); the structured data under
//! the SD-ID `auditlog@32473` (32473 is the private enterprise number that
//! RFC 5612 reserves for documentation: Auditlog has none registered);
//! MSG the event in the stream's format, as JSON (no BOM). A message is at
//! most [`MAX_MESSAGE`] octets; none is cut.
//!
//! TCP carries no acknowledgement: the runner keeps the window of seqs
//! sent since the last point it knows was accepted, and sends it again
//! after any reconnect. "Accepted" is when the receiver's TCP has
//! acknowledged every byte written (Linux: nothing left in the socket's
//! send queue, `TIOCOUTQ`) and the connection is still open; only then
//! does the cursor move. Receivers may so see an event twice (after a
//! reconnect) and de-duplicate on (`account`, `seq`), both in the
//! structured data.

use super::address::{self, AllowList, Destination};
use serde_json::Value;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// The private enterprise number in the SD-ID (RFC 5612's documentation number).
pub const ENTERPRISE_NUMBER: u32 = 32473;
/// The SD-ID of the structured data.
pub const SD_ID: &str = "auditlog@32473";
/// The largest message (its octet count), header and structured data
/// included: every event fits (a stored event is at most 65,535 bytes).
/// Receivers must accept messages this long (rsyslog:
/// `global(maxMessageSize="128k")`).
pub const MAX_MESSAGE: usize = 131_072;
/// Facility 13 (log audit) × 8 + severity 6 (informational).
const PRI: u32 = 13 * 8 + 6;
/// RFC 5424's longest MSGID.
const MAX_MSGID: usize = 32;

/// A syslog destination: where, and whether over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogUrl {
    pub destination: Destination,
    pub tls: bool,
}

/// `tcp://host[:port]` (default 514) or `tls://host[:port]` (default 6514).
pub fn parse_url(url: &str) -> Result<SyslogUrl, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
    let (tls, default_port) = match parsed.scheme() {
        "tcp" => (false, 514),
        "tls" => (true, 6514),
        other => {
            return Err(format!(
                "url: a syslog destination is tcp://host:port or tls://host:port, not {other}://"
            ))
        }
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: credentials in the URL are not allowed".into());
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() || parsed.fragment().is_some()
    {
        return Err("url: a syslog destination has no path, query or fragment".into());
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("url {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(SyslogUrl {
        destination: Destination {
            host,
            port: parsed.port().unwrap_or(default_port),
        },
        tls,
    })
}

/// The MSGID: visible ASCII of `event_type.action`, spaces left out, at most 32.
pub fn msgid(event_type: &str, action: &str) -> String {
    let keep = |s: &str| -> String { s.chars().filter(|c| c.is_ascii_graphic()).collect() };
    let mut id = format!("{}.{}", keep(event_type), keep(action));
    id.truncate(MAX_MSGID);
    if id == "." {
        "-".into()
    } else {
        id
    }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped (RFC 5424 6.3.3).
fn param_value(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn text<'a>(event: &'a Value, pointer: &str) -> &'a str {
    event.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// One RFC 5424 message, framed with its octet count (RFC 6587 3.4.1).
/// `event` is the event as the API returns it (for the header and the
/// structured data), `body` its JSON in the stream's format.
pub fn frame(event: &Value, body: &[u8], out: &mut Vec<u8>) {
    let seq = event.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let time = text(event, "/time");
    let time = if time.is_empty() { "-" } else { time };
    let mut header = format!(
        "<{PRI}>1 {time} - auditlog - {} [{SD_ID}",
        msgid(text(event, "/event_type"), text(event, "/action"))
    );
    for (name, value) in [
        ("account", text(event, "/account").to_string()),
        ("seq", seq.to_string()),
        ("id", text(event, "/id").to_string()),
        ("event_type", text(event, "/event_type").to_string()),
        ("action", text(event, "/action").to_string()),
        ("actor", text(event, "/actor/id").to_string()),
    ] {
        header.push(' ');
        header.push_str(name);
        header.push_str("=\"");
        param_value(&value, &mut header);
        header.push('"');
    }
    header.push_str("] ");
    let too_long = header.len() + body.len() > MAX_MESSAGE;
    let placeholder;
    let body = if too_long {
        placeholder = serde_json::json!({
            "account": text(event, "/account"), "seq": seq,
            "error": "the event is longer than a syslog message may be; read it from the API",
        })
        .to_string();
        placeholder.as_bytes()
    } else {
        body
    };
    out.extend_from_slice(format!("{} ", header.len() + body.len()).as_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
}

pub use super::tls::tls_config;

/// An open connection to a syslog receiver.
pub enum Connection {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection {
    /// Connects to the addresses `url` resolves to now (each checked).
    pub async fn open(
        url: &SyslogUrl,
        allow: &AllowList,
        tls: &Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let addresses = address::resolve(&url.destination, allow).await?;
        let host = &url.destination.host;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(&addresses[..]))
            .await
            .map_err(|_| format!("cannot connect to {host}: no answer in {timeout:?}"))?
            .map_err(|e| format!("cannot connect to {host}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if !url.tls {
            return Ok(Connection::Tcp(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("url: {host} is not a TLS server name: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| format!("TLS with {host}: no handshake in {timeout:?}"))?
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        Ok(Connection::Tls(Box::new(stream)))
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Connection::Tcp(tcp) => tcp,
            Connection::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Writes `bytes` and flushes them to the socket.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), String> {
        let written = async {
            match self {
                Connection::Tcp(tcp) => {
                    tcp.write_all(bytes).await?;
                    tcp.flush().await
                }
                Connection::Tls(tls) => {
                    tls.write_all(bytes).await?;
                    tls.flush().await
                }
            }
        };
        match tokio::time::timeout(timeout, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("sending: {e}")),
            Err(_) => Err(format!("sending: not written in {timeout:?}")),
        }
    }

    /// Why the connection can no longer be used (the receiver closed it,
    /// reset it or sent something a syslog receiver never sends), if so.
    /// Over TLS, what the receiver sent after the handshake (session
    /// tickets) is taken in here.
    pub async fn broken(&mut self) -> Option<String> {
        let mut buffer = [0u8; 512];
        // A zero timeout: the read is tried once, without waiting.
        let read = match self {
            Connection::Tcp(tcp) => {
                tokio::time::timeout(Duration::ZERO, tcp.peek(&mut buffer[..1])).await
            }
            Connection::Tls(tls) => {
                tokio::time::timeout(Duration::ZERO, tls.read(&mut buffer)).await
            }
        };
        match read {
            Err(_) => None,
            Ok(Ok(0)) => Some("the receiver closed the connection".into()),
            Ok(Ok(_)) => Some("the receiver sent data (a syslog receiver sends none)".into()),
            Ok(Err(e)) => Some(format!("the connection broke: {e}")),
        }
    }

    /// Whether the receiver's TCP acknowledged every byte written: nothing
    /// is left in the send queue. Elsewhere than on Linux, `None`.
    pub fn all_acknowledged(&self) -> Option<bool> {
        unacknowledged(self.tcp()).ok().map(|n| n == 0)
    }
}

#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "TIOCOUTQ has no safe wrapper: one ioctl on a socket this function borrows, \
              writing one c_int it owns"
)]
fn unacknowledged(tcp: &TcpStream) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut queued: libc::c_int = 0;
    // SAFETY: the fd is open for as long as `tcp` is borrowed, and TIOCOUTQ
    // writes exactly one c_int through the pointer, which outlives the call.
    let result = unsafe { libc::ioctl(tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(queued).unwrap_or(0))
}

#[cfg(not(target_os = "linux"))]
fn unacknowledged(_tcp: &TcpStream) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TIOCOUTQ is Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_are_tcp_or_tls() {
        let tcp = parse_url("tcp://127.0.0.1:5140").unwrap();
        assert_eq!((tcp.destination.port, tcp.tls), (5140, false));
        let tls = parse_url("tls://logs.example.com").unwrap();
        assert_eq!(
            (tls.destination.host.as_str(), tls.destination.port, tls.tls),
            ("logs.example.com", 6514, true)
        );
        assert_eq!(
            parse_url("tcp://[::1]:6514").unwrap().destination.host,
            "::1"
        );
        assert!(parse_url("udp://h:514").unwrap_err().contains("tcp://"));
        assert!(parse_url("tcp://h:514/path").is_err());
        assert!(parse_url("tcp://u:p@h:514").is_err());
    }

    #[test]
    fn messages_are_rfc5424_with_octet_counting() {
        let event = json!({
            "account": "acme", "seq": 12, "id": "e\"1]", "time": "2026-11-25T14:03:07.123456Z",
            "event_type": "Test Case", "action": "Login Failed", "actor": {"id": "u\\7"}
        });
        let mut out = Vec::new();
        frame(&event, br#"{"seq":12}"#, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (count, message) = text.split_once(' ').unwrap();
        assert_eq!(count.parse::<usize>().unwrap(), message.len());
        assert_eq!(
            message,
            "<110>1 2026-11-25T14:03:07.123456Z - auditlog - TestCase.LoginFailed \
             [auditlog@32473 account=\"acme\" seq=\"12\" id=\"e\\\"1\\]\" event_type=\"Test Case\" \
             action=\"Login Failed\" actor=\"u\\\\7\"] {\"seq\":12}"
        );
        assert_eq!(SD_ID, format!("auditlog@{ENTERPRISE_NUMBER}"));
    }

    #[test]
    fn msgids_have_no_spaces_and_at_most_32_characters() {
        assert_eq!(
            msgid("Auditlog Log Stream", "Create"),
            "AuditlogLogStream.Create"
        );
        let long = msgid("A very long event type name indeed", "Update");
        assert!(long.len() <= 32 && !long.contains(' '), "{long}");
        assert_eq!(msgid("Tést", "Ü"), "Tst.");
    }

    #[test]
    fn a_message_never_exceeds_the_maximum() {
        let event = json!({"account": "acme", "seq": 1, "event_type": "T", "action": "A"});
        let body = vec![b'x'; MAX_MESSAGE];
        let mut out = Vec::new();
        frame(&event, &body, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (count, message) = text.split_once(' ').unwrap();
        assert!(count.parse::<usize>().unwrap() <= MAX_MESSAGE);
        assert!(message.contains("read it from the API"));
    }

    #[test]
    fn the_tls_setup_takes_extra_roots_and_refuses_garbage() {
        assert!(tls_config(&[]).is_ok());
        assert!(tls_config(&[
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec()
        ])
        .is_err());
    }
}
