//! The TLS client setups of stream destinations (`https://` webhook and
//! Splunk HEC, syslog `tls://`) and of the command-line clients: rustls
//! with ring, the public web PKI roots and the operator's extra roots, and
//! optionally a client certificate (mutual TLS, `client_cert`).

use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A parsed certificate chain (leaf first) and its key.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientCert {{ chain: {} certificates, key: [redacted] }}",
            self.chain.len()
        )
    }
}

/// The TLS client setup: the public roots and `extra` (PEM certificates).
pub fn tls_config(extra: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, String> {
    tls_config_with(extra, None)
}

/// The TLS client setup: the public roots and `extra` (PEM certificates),
/// and, with `client`, that certificate chain and key presented to servers
/// that ask for one (mutual TLS; see `client_cert`).
#[allow(
    deprecated,
    reason = "ring's provider, not aws-lc-rs (whose C build the project avoids); \
              no post-quantum key exchange until ring has one"
)]
pub fn tls_config_with(
    extra: &[Vec<u8>],
    client: Option<ClientCert>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| format!("stream_tls_ca_file: not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("stream_tls_ca_file: a certificate is refused: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(client) => builder
            .with_client_auth_cert(client.chain, client.key)
            .map_err(|e| format!("client_certificate: the key does not fit it: {e}"))?,
    };
    Ok(Arc::new(config))
}
