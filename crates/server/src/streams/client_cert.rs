//! A stream's TLS client certificate (mutual TLS): a webhook or Splunk HEC
//! stream over `https://`, or a syslog stream over `tls://`, may present a
//! certificate to a receiver that requires one. The certificate chain
//! (PEM) is kept in the stream's `options` (`client_certificate`) and shown
//! by the API; its private key (PEM) is write-only: sealed like the
//! secrets (`secrets`), never returned, never logged.

use super::tls::{tls_config_with, ClientCert};
use super::StreamSettings;
use auditlog_store::LogStream;
use serde_json::Value;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ClientConfig;

/// The member of a stream's `options` that holds the certificate chain.
pub const OPTION: &str = "client_certificate";
/// The longest certificate chain or key accepted, in bytes of PEM.
pub const MAX_PEM: usize = 16 * 1024;

/// Why a certificate or key is refused: the API's field and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub rule: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, rule: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        rule,
        message: message.into(),
    }
}

/// Parses `certificate` (one or more PEM certificates, leaf first) and
/// `key` (one PEM private key: PKCS#8, PKCS#1 or SEC1). The messages never
/// quote the key.
pub fn parse(certificate: &str, key: &[u8]) -> Result<ClientCert, Invalid> {
    if certificate.len() > MAX_PEM {
        return Err(invalid(
            "client_certificate",
            "too_long",
            format!("client_certificate is at most {MAX_PEM} bytes of PEM"),
        ));
    }
    if key.len() > MAX_PEM {
        return Err(invalid(
            "client_key",
            "too_long",
            format!("client_key is at most {MAX_PEM} bytes of PEM"),
        ));
    }
    let chain = CertificateDer::pem_slice_iter(certificate.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                "client_certificate",
                "not_a_certificate",
                format!("client_certificate must be PEM certificates (BEGIN CERTIFICATE): {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(invalid(
            "client_certificate",
            "not_a_certificate",
            "client_certificate must hold at least one PEM certificate (BEGIN CERTIFICATE)",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
        invalid(
            "client_key",
            "not_a_private_key",
            "client_key must be one PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        )
    })?;
    Ok(ClientCert { chain, key })
}

/// Checks that `certificate` and `key` parse and belong together.
pub fn check(settings: &StreamSettings, certificate: &str, key: &[u8]) -> Result<(), Invalid> {
    let client = parse(certificate, key)?;
    tls_config_with(&settings.tls_roots, Some(client)).map_err(|_| {
        invalid(
            "client_key",
            "key_does_not_match",
            "client_key is not the private key of the first certificate of client_certificate \
             (or its type is not supported: RSA, ECDSA P-256/P-384 or Ed25519)",
        )
    })?;
    Ok(())
}

/// The stream's certificate chain (PEM), if it has one.
pub fn certificate(stream: &LogStream) -> Option<&str> {
    stream.options.get(OPTION).and_then(Value::as_str)
}

/// The TLS setup for `stream`: the server's, or, for a stream with a client
/// certificate, one that presents it.
pub fn tls(
    settings: &StreamSettings,
    stream: &LogStream,
) -> Result<Option<Arc<ClientConfig>>, String> {
    let (Some(certificate), Some(sealed)) = (certificate(stream), &stream.sealed_client_key) else {
        return Ok(settings.tls.clone());
    };
    let key = settings.secret_key.open(sealed)?;
    let client = parse(certificate, &key).map_err(|e| e.message)?;
    tls_config_with(&settings.tls_roots, Some(client)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_by_field_and_rule() {
        let e = parse("hello", b"").unwrap_err();
        assert_eq!(
            (e.field, e.rule),
            ("client_certificate", "not_a_certificate")
        );
        let e = parse(&"x".repeat(MAX_PEM + 1), b"").unwrap_err();
        assert_eq!((e.field, e.rule), ("client_certificate", "too_long"));
        let debug = format!(
            "{:?}",
            ClientCert {
                chain: Vec::new(),
                key: PrivateKeyDer::Pkcs8(vec![1, 2, 3].into()),
            }
        );
        assert!(
            debug.contains("redacted") && !debug.contains("1, 2, 3"),
            "{debug}"
        );
    }
}
