//! TLS for the API's command-line clients (`send`, `tail`, `monitor`):
//! `https://` server URLs over rustls (ring), the server's certificate
//! checked against the public web PKI roots compiled in (Mozilla's, from
//! `webpki-roots`; the system's certificate store is not read) and the PEM
//! certificates of `--ca-file` (a private CA), the same setup the server's
//! log streams use. `http://` URLs stay plain.

use anyhow::{bail, Context};
use std::path::Path;

/// The base URL `url` (`http://…` or `https://…`), trailing slashes
/// removed; `flag` names the option in errors.
pub fn base_url(url: &str) -> anyhow::Result<String> {
    let base = url.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() => Ok(base.to_string()),
        _ => bail!(
            "--url {base:?} must be the server's base URL, such as http://127.0.0.1:8080 or https://audit.example.com"
        ),
    }
}

/// An HTTP client builder whose TLS trusts the web PKI roots and, with
/// `ca_file`, the PEM certificates in it.
pub fn client_builder(ca_file: Option<&Path>) -> anyhow::Result<reqwest::ClientBuilder> {
    let extra = match ca_file {
        None => Vec::new(),
        Some(path) => vec![std::fs::read(path)
            .with_context(|| format!("--ca-file {}: cannot read it", path.display()))?],
    };
    let tls = auditlog_server::streams::tls::tls_config(&extra).map_err(|e| {
        anyhow::anyhow!(
            "--ca-file {}: {}",
            ca_file.map(|p| p.display().to_string()).unwrap_or_default(),
            e.replace("stream_tls_ca_file: ", "")
        )
    })?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(auditlog_server::streams::TlsClientConfig::clone(&tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_http_or_https() {
        assert_eq!(
            base_url("https://audit.example.com/").unwrap(),
            "https://audit.example.com"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in ["127.0.0.1:8080", "https://", "ftp://x", ""] {
            assert!(
                base_url(bad).unwrap_err().to_string().contains("--url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_ca_file_must_be_pem_certificates() {
        let dir = std::env::temp_dir().join(format!("auditlog-https-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = client_builder(Some(&bad)).err().unwrap().to_string();
        assert!(error.contains("--ca-file"), "{error}");
        let missing = client_builder(Some(&dir.join("missing.pem")))
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
        assert!(client_builder(None).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
