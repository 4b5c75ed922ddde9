//! The binary's configuration, layered once: defaults → a TOML file
//! (`--config FILE` or `AUDITLOG_CONFIG`) → `AUDITLOG_*` environment
//! variables → command-line flags. A later layer wins.
//!
//! Every setting is one row of [`SETTINGS`]: its name (the file's key), its
//! variable, its flag, what it means and how its value is read and shown.
//! The defaults are those of [`Config::default`], taken from the crates that
//! use them. The flags (`cli`), `config example`, `config show` and the
//! README's table are all made from, or checked against, that one table.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Display` redact, so
//! neither `config show`, nor the start-up log, nor an error prints them.

use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_server::exports::{parse_duration, ExportSettings};
use auditlog_server::limits::Limits;
use auditlog_server::root_log::WitnessSettings;
use auditlog_server::streams::address::AllowList;
use auditlog_server::streams::secrets::SecretKey;
use auditlog_server::streams::StreamSettings;
use auditlog_witness::WitnessEndpoint;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Names the configuration file when `--config` does not.
pub const CONFIG_VARIABLE: &str = "AUDITLOG_CONFIG";

/// `AUDITLOG_*` variables that are not settings yet are expected: they are
/// not reported as unknown.
const OTHER_VARIABLES: &[&str] = &[
    CONFIG_VARIABLE,
    // The export tests' hook, a hidden flag of `serve` in debug builds.
    "AUDITLOG_EXPORT_TEST_PAGE_DELAY_MS",
    // The browser tests name the binary with it, and it reaches the server they start.
    "AUDITLOG_BIN",
    // `auditlog send`'s server and key.
    "AUDITLOG_URL",
    "AUDITLOG_KEY",
];
/// The test suites' own variables (`AUDITLOG_TEST_DATABASE_URL`, …).
const TEST_VARIABLE_PREFIX: &str = "AUDITLOG_TEST_";

/// What is shown in place of a secret.
const REDACTED: &str = "[redacted]";

/// A value that must never be printed (a database URL holds a password).
/// The code that needs it calls [`Secret::expose`]; everything else sees
/// `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one readable line per event (coloured on a terminal).
    Text,
    /// For log collectors: one JSON object per line.
    Json,
}

/// Every setting of the binary, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub signing_key_file: Option<PathBuf>,
    /// The key of erased subjects' pseudonyms; default `<data-dir>/erasure-key`.
    pub erasure_key_file: Option<PathBuf>,
    pub log_name: String,
    pub listen: String,
    pub export_dir: Option<PathBuf>,
    pub export_concurrency: usize,
    pub export_expiry: Duration,
    pub export_lease: Duration,
    pub limits: Limits,
    /// Seals log stream secrets; default `<data-dir>/stream-secret-key`.
    pub stream_secret_key_file: Option<PathBuf>,
    /// Non-public networks log streams may send to anyway.
    pub stream_allow_private: AllowList,
    /// Extra CA certificates (PEM) trusted for `tls://` syslog destinations.
    pub stream_tls_ca_file: Option<PathBuf>,
    pub stream_lease: Duration,
    pub stream_failing_after: Duration,
    /// The smallest and largest `retention_days` an account may set, and
    /// how often the pruner looks at each account.
    pub retention_min_days: usize,
    pub retention_max_days: usize,
    pub prune_interval: Duration,
    /// How long a running pruning stays claimed without renewal.
    pub prune_lease: Duration,
    /// The witnesses root checkpoints are submitted to.
    pub witnesses: Vec<WitnessConfig>,
    /// How many of them must cosign; `None`: a majority.
    pub witness_quorum: Option<usize>,
    pub log_level: String,
    pub log_format: LogFormat,
}

impl Default for Config {
    /// The defaults. Those of the export worker and the limits are the
    /// server crate's, so that they are defined once.
    fn default() -> Self {
        let exports = ExportSettings::new(PathBuf::new());
        let streams = StreamSettings::new(SecretKey::from_bytes([0; 32]));
        let retention = auditlog_server::retention::RetentionSettings::default();
        Self {
            data_dir: PathBuf::from("./auditlog-data"),
            database_url: None,
            signing_key_file: None,
            erasure_key_file: None,
            log_name: auditlog_core::checkpoint::DEFAULT_LOG_NAME.to_string(),
            listen: "127.0.0.1:8080".to_string(),
            export_dir: None,
            export_concurrency: exports.concurrency,
            export_expiry: exports.expiry,
            export_lease: exports.lease,
            limits: Limits::default(),
            stream_secret_key_file: None,
            stream_allow_private: AllowList::default(),
            stream_tls_ca_file: None,
            stream_lease: streams.lease,
            stream_failing_after: streams.failing_after,
            retention_min_days: retention.min_days as usize,
            retention_max_days: retention.max_days as usize,
            prune_interval: retention.interval,
            prune_lease: retention.lease,
            witnesses: Vec::new(),
            witness_quorum: None,
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// The signing key file: `--signing-key-file`, else `signing-key` in the data directory.
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key_file.clone().unwrap_or_else(|| {
            self.data_dir
                .join(auditlog_server::signing_key::DEFAULT_FILE)
        })
    }

    /// The erasure key file: `--erasure-key-file`, else `erasure-key` in
    /// the data directory.
    pub fn erasure_key_path(&self) -> PathBuf {
        self.erasure_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("erasure-key"))
    }

    /// The eraser's settings, with the pseudonym key read (or created).
    pub fn erasure_settings(&self) -> Result<auditlog_server::erasure::ErasureSettings, String> {
        let key = auditlog_server::erasure::PseudonymKey::load_or_create(&self.erasure_key_path())?;
        Ok(auditlog_server::erasure::ErasureSettings::new(
            key,
            self.export_settings(Duration::ZERO).dir,
        ))
    }

    /// The log stream secret key file: `--stream-secret-key-file`, else
    /// `stream-secret-key` in the data directory.
    pub fn stream_secret_key_path(&self) -> PathBuf {
        self.stream_secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("stream-secret-key"))
    }

    /// The log stream settings, with the key read (or created) from its file.
    /// The pruner's settings.
    pub fn retention_settings(
        &self,
    ) -> Result<auditlog_server::retention::RetentionSettings, String> {
        if self.retention_min_days > self.retention_max_days {
            return Err(format!(
                "retention_min_days ({}) must not be above retention_max_days ({})",
                self.retention_min_days, self.retention_max_days
            ));
        }
        Ok(auditlog_server::retention::RetentionSettings {
            min_days: self.retention_min_days as u32,
            max_days: self.retention_max_days as u32,
            interval: self.prune_interval,
            lease: self.prune_lease,
            ..Default::default()
        })
    }

    pub fn stream_settings(&self) -> Result<StreamSettings, String> {
        let key = SecretKey::load_or_create(&self.stream_secret_key_path())?;
        let mut settings = StreamSettings::new(key);
        settings.allow = self.stream_allow_private.clone();
        if let Some(path) = &self.stream_tls_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("stream_tls_ca_file {}: {e}", path.display()))?;
            settings = settings.with_tls_roots(&[pem])?;
        }
        settings.lease = self.stream_lease;
        settings.failing_after = self.stream_failing_after;
        Ok(settings)
    }

    /// The export worker's settings; `page_delay` is the tests' hook.
    pub fn export_settings(&self, page_delay: Duration) -> ExportSettings {
        let dir = self
            .export_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("exports"));
        let mut settings = ExportSettings::new(dir);
        settings.concurrency = self.export_concurrency;
        settings.expiry = self.export_expiry;
        settings.lease = self.export_lease;
        settings.page_delay = page_delay;
        settings
    }
}

/// One witness of the `witnesses` setting: where it takes `add-checkpoint`
/// and its cosignature verifier key (which names it).
#[derive(Debug, Clone, PartialEq)]
pub struct WitnessConfig {
    pub url: String,
    pub key: CosignatureVerifier,
}

impl Config {
    /// The witness settings of the root log's submitter; the quorum may not
    /// exceed the witnesses (the error names both settings).
    pub fn witness_settings(&self) -> Result<WitnessSettings, String> {
        let count = self.witnesses.len();
        let quorum = self
            .witness_quorum
            .unwrap_or(count / 2 + usize::from(count > 0));
        if quorum > count {
            return Err(format!(
                "witness_quorum is {quorum} but witnesses lists {count}; a quorum cannot exceed the witnesses"
            ));
        }
        Ok(WitnessSettings {
            witnesses: self
                .witnesses
                .iter()
                .map(|w| WitnessEndpoint {
                    name: w.key.name().to_string(),
                    url: w.url.clone(),
                    key: w.key.clone(),
                })
                .collect(),
            quorum,
        })
    }
}

/// Reads `witnesses`: comma-separated entries `<URL> <verifier key>`.
fn parse_witnesses(value: &str) -> Result<Vec<WitnessConfig>, InvalidValue> {
    let mut witnesses: Vec<WitnessConfig> = Vec::new();
    for (index, entry) in value.split([',', '\n']).map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let rule = |why: String| InvalidValue(format!("entry {} ({entry:?}): {why}", index + 1));
        let parts: Vec<&str> = entry.split_whitespace().collect();
        let [url, key] = parts[..] else {
            return Err(rule(
                "an entry is a URL and a verifier key separated by a space".into(),
            ));
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(rule(format!("{url:?} is not an http:// or https:// URL")));
        }
        let key = CosignatureVerifier::parse(key).map_err(|e| {
            rule(format!(
                "not a witness verifier key (<name>+<hex id>+<base64 of 0x04 and the key>): {e}"
            ))
        })?;
        if witnesses.iter().any(|w| w.key == key) {
            return Err(rule(format!("witness {} is listed twice", key.name())));
        }
        witnesses.push(WitnessConfig {
            url: url.to_string(),
            key,
        });
    }
    Ok(witnesses)
}

/// Which commands take a setting's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commands {
    /// Every command (where the data is, how to log).
    All,
    /// `serve` (and `config show`, to preview it).
    Serve,
}

/// The TOML type a setting takes in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
}

/// One setting: everything about it but its default, which is
/// [`Config::default`]'s.
pub struct Setting {
    /// The key in the file and the id of the flag.
    pub name: &'static str,
    pub env: &'static str,
    /// The flag, without its `--`.
    pub flag: &'static str,
    /// Other variables read for this setting when `env` is unset, in
    /// falling priority (an older name, a convention such as `RUST_LOG`).
    pub env_fallbacks: &'static [&'static str],
    pub value_name: &'static str,
    /// One sentence for `--help`, `config example` and the README.
    pub doc: &'static str,
    pub commands: Commands,
    pub kind: Kind,
    /// Redacted wherever it is shown, and never quoted in an error.
    pub secret: bool,
    /// For a setting with no default value: what unset means, and a value
    /// to show in the example.
    pub unset: Option<Unset>,
    /// Checks `value` and stores it; the error is the rule it broke.
    set: fn(&mut Config, &str) -> Result<(), InvalidValue>,
    /// The value as it would be written in the file; `None` when unset.
    get: fn(&Config) -> Option<String>,
}

/// What an optional setting does when it is not given.
pub struct Unset {
    pub means: &'static str,
    pub example: &'static str,
}

impl Setting {
    /// The default as the README and `--help` show it.
    pub fn default_text(&self) -> String {
        match (self.get)(&Config::default()) {
            Some(value) => value,
            None => self.unset.as_ref().map_or("none", |u| u.means).to_string(),
        }
    }
}

/// The settings, in the order `config example` prints them.
pub static SETTINGS: &[Setting] = &[
    Setting {
        name: "data_dir",
        env: "AUDITLOG_DATA_DIR",
        flag: "data-dir",
        env_fallbacks: &[],
        value_name: "DIR",
        doc: "Directory of the embedded store (created if missing).",
        commands: Commands::All,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.data_dir = PathBuf::from(non_empty(value)?);
            Ok(())
        },
        get: |config| Some(config.data_dir.display().to_string()),
    },
    Setting {
        name: "database_url",
        env: "AUDITLOG_DATABASE_URL",
        flag: "database-url",
        env_fallbacks: &[],
        value_name: "URL",
        doc: "PostgreSQL URL (postgres://…); when set, used instead of the embedded store.",
        commands: Commands::All,
        kind: Kind::Text,
        secret: true,
        unset: Some(Unset {
            means: "none: the embedded store in data_dir",
            example: "postgres://auditlog:PASSWORD@db.internal:5432/auditlog",
        }),
        set: |config, value| {
            config.database_url = Some(Secret::new(non_empty(value)?));
            Ok(())
        },
        get: |config| config.database_url.as_ref().map(|url| url.expose().to_string()),
    },
    Setting {
        name: "signing_key_file",
        env: "AUDITLOG_SIGNING_KEY_FILE",
        flag: "signing-key-file",
        env_fallbacks: &[],
        value_name: "FILE",
        doc: "The log's Ed25519 signing key (C2SP signer-key text); created, mode 0600, on first start if missing.",
        commands: Commands::All,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "<data-dir>/signing-key",
            example: "/etc/auditlog/signing-key",
        }),
        set: |config, value| {
            config.signing_key_file = Some(PathBuf::from(non_empty(value)?));
            Ok(())
        },
        get: |config| {
            config
                .signing_key_file
                .as_ref()
                .map(|path| path.display().to_string())
        },
    },
    Setting {
        name: "erasure_key_file",
        env: "AUDITLOG_ERASURE_KEY_FILE",
        flag: "erasure-key-file",
        env_fallbacks: &[],
        value_name: "FILE",
        doc: "The key of erased subjects' pseudonyms (`erased:` + a keyed hash of the actor id; 64 hex digits); created, mode 0600, on first use if missing. Every server of one database and `auditlog erase` need the same.",
        commands: Commands::All,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "<data-dir>/erasure-key",
            example: "/etc/auditlog/erasure-key",
        }),
        set: |config, value| {
            config.erasure_key_file = Some(PathBuf::from(non_empty(value)?));
            Ok(())
        },
        get: |config| {
            config
                .erasure_key_file
                .as_ref()
                .map(|path| path.display().to_string())
        },
    },
    Setting {
        name: "log_name",
        env: "AUDITLOG_LOG_NAME",
        flag: "log-name",
        env_fallbacks: &[],
        value_name: "NAME",
        doc: "The log name in checkpoint origins (`<log name>/<account>`) and the key name of a new key.",
        commands: Commands::All,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.log_name = non_empty(value)?.to_string();
            Ok(())
        },
        get: |config| Some(config.log_name.clone()),
    },
    Setting {
        name: "listen",
        env: "AUDITLOG_LISTEN",
        flag: "listen",
        env_fallbacks: &[],
        value_name: "ADDR",
        doc: "Address to listen on; port 0 picks a free port (printed at start).",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.listen = non_empty(value)?.to_string();
            Ok(())
        },
        get: |config| Some(config.listen.clone()),
    },
    Setting {
        name: "export_dir",
        env: "AUDITLOG_EXPORT_DIR",
        flag: "export-dir",
        env_fallbacks: &[],
        value_name: "DIR",
        doc: "Directory of export files; every server sharing one database must share it.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "<data-dir>/exports",
            example: "/shared/auditlog/exports",
        }),
        set: |config, value| {
            config.export_dir = Some(PathBuf::from(non_empty(value)?));
            Ok(())
        },
        get: |config| {
            config
                .export_dir
                .as_ref()
                .map(|path| path.display().to_string())
        },
    },
    Setting {
        name: "export_concurrency",
        env: "AUDITLOG_EXPORT_CONCURRENCY",
        flag: "export-concurrency",
        env_fallbacks: &[],
        value_name: "N",
        doc: "Exports run at once by this server.",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.export_concurrency = whole_number(value, 1, 64)?;
            Ok(())
        },
        get: |config| Some(config.export_concurrency.to_string()),
    },
    Setting {
        name: "export_expiry",
        env: "AUDITLOG_EXPORT_EXPIRY",
        flag: "export-expiry",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "How long a completed export can be downloaded (7d, 12h, 30m, 45s).",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.export_expiry = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.export_expiry)),
    },
    Setting {
        name: "export_lease",
        env: "AUDITLOG_EXPORT_LEASE",
        flag: "export-lease",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "How long a running export stays claimed without renewal; a job whose server died is taken over after this.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.export_lease = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.export_lease)),
    },
    Setting {
        name: "rate_limit_per_second",
        env: "AUDITLOG_RATE_LIMIT_PER_SECOND",
        flag: "rate-limit-per-second",
        env_fallbacks: &[],
        value_name: "N",
        doc: "Requests per second one API key may make, sustained; 0 turns the per-key limit off.",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.limits.rate_limit_per_second = whole_number(value, 0, u32::MAX.into())?;
            Ok(())
        },
        get: |config| Some(config.limits.rate_limit_per_second.to_string()),
    },
    Setting {
        name: "rate_limit_burst",
        env: "AUDITLOG_RATE_LIMIT_BURST",
        flag: "rate-limit-burst",
        env_fallbacks: &[],
        value_name: "N",
        doc: "Requests one API key may make at once (the size of its token bucket).",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.limits.rate_limit_burst = whole_number(value, 1, u32::MAX.into())?;
            Ok(())
        },
        get: |config| Some(config.limits.rate_limit_burst.to_string()),
    },
    Setting {
        name: "request_timeout",
        env: "AUDITLOG_REQUEST_TIMEOUT",
        flag: "request-timeout",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "Longest a request may take before it is answered with an error.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.limits.request_timeout = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.limits.request_timeout)),
    },
    Setting {
        name: "max_connections",
        env: "AUDITLOG_MAX_CONNECTIONS",
        flag: "max-connections",
        env_fallbacks: &[],
        value_name: "N",
        doc: "Most TCP connections served at once; further ones wait to be accepted.",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.limits.max_connections = whole_number(value, 1, 1_000_000)?;
            Ok(())
        },
        get: |config| Some(config.limits.max_connections.to_string()),
    },
    Setting {
        name: "max_live_streams",
        env: "AUDITLOG_MAX_LIVE_STREAMS",
        flag: "max-live-streams",
        env_fallbacks: &[],
        value_name: "N",
        doc: "Most live tail streams (GET /api/v1/events/stream, the console's Live switch) served at once; further ones are answered 503.",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.limits.max_live_streams = whole_number(value, 1, 1_000_000)?;
            Ok(())
        },
        get: |config| Some(config.limits.max_live_streams.to_string()),
    },
    Setting {
        name: "stream_secret_key_file",
        env: "AUDITLOG_STREAM_SECRET_KEY_FILE",
        flag: "stream-secret-key-file",
        env_fallbacks: &[],
        value_name: "FILE",
        doc: "The key that seals log stream secrets at rest (64 hex digits); created, mode 0600, on first start if missing. Every server of one database needs the same.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "<data-dir>/stream-secret-key",
            example: "/etc/auditlog/stream-secret-key",
        }),
        set: |config, value| {
            config.stream_secret_key_file = Some(PathBuf::from(non_empty(value)?));
            Ok(())
        },
        get: |config| {
            config
                .stream_secret_key_file
                .as_ref()
                .map(|path| path.display().to_string())
        },
    },
    Setting {
        name: "stream_allow_private",
        env: "AUDITLOG_STREAM_ALLOW_PRIVATE",
        flag: "stream-allow-private",
        env_fallbacks: &[],
        value_name: "NETWORKS",
        doc: "Loopback, private or link-local networks (comma-separated CIDRs or addresses) that log streams may send to; others are refused.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "none: only public addresses",
            example: "127.0.0.1/32,10.0.0.0/8",
        }),
        set: |config, value| {
            config.stream_allow_private = AllowList::parse(value).map_err(InvalidValue)?;
            Ok(())
        },
        get: |config| {
            Some(config.stream_allow_private.to_setting()).filter(|s| !s.is_empty())
        },
    },
    Setting {
        name: "stream_tls_ca_file",
        env: "AUDITLOG_STREAM_TLS_CA_FILE",
        flag: "stream-tls-ca-file",
        env_fallbacks: &[],
        value_name: "FILE",
        doc: "CA certificates (PEM) trusted for log stream TLS destinations (https://, syslog tls://), in addition to the public web PKI roots.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "only the public web PKI roots",
            example: "/etc/auditlog/syslog-ca.pem",
        }),
        set: |config, value| {
            config.stream_tls_ca_file = Some(PathBuf::from(non_empty(value)?));
            Ok(())
        },
        get: |config| {
            config
                .stream_tls_ca_file
                .as_ref()
                .map(|path| path.display().to_string())
        },
    },
    Setting {
        name: "stream_lease",
        env: "AUDITLOG_STREAM_LEASE",
        flag: "stream-lease",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "How long a log stream stays claimed by a server without renewal; a stream whose server died is taken over after this.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.stream_lease = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.stream_lease)),
    },
    Setting {
        name: "retention_min_days",
        env: "AUDITLOG_RETENTION_MIN_DAYS",
        flag: "retention-min-days",
        env_fallbacks: &[],
        value_name: "DAYS",
        doc: "The smallest retention_days an account may set (0 lets events be pruned as soon as every log stream and export has passed them).",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.retention_min_days = whole_number(value, 0, 36_500)?;
            Ok(())
        },
        get: |config| Some(config.retention_min_days.to_string()),
    },
    Setting {
        name: "retention_max_days",
        env: "AUDITLOG_RETENTION_MAX_DAYS",
        flag: "retention-max-days",
        env_fallbacks: &[],
        value_name: "DAYS",
        doc: "The largest retention_days an account may set.",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: None,
        set: |config, value| {
            config.retention_max_days = whole_number(value, 0, 36_500)?;
            Ok(())
        },
        get: |config| Some(config.retention_max_days.to_string()),
    },
    Setting {
        name: "prune_interval",
        env: "AUDITLOG_PRUNE_INTERVAL",
        flag: "prune-interval",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "How often the pruner looks at each account with a retention policy (1h, 30m, 45s).",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.prune_interval = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.prune_interval)),
    },
    Setting {
        name: "prune_lease",
        env: "AUDITLOG_PRUNE_LEASE",
        flag: "prune-lease",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "How long a running pruning stays claimed without renewal (it is renewed after each batch); a pruning whose server died is taken over after this.",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.prune_lease = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.prune_lease)),
    },
    Setting {
        name: "stream_failing_after",
        env: "AUDITLOG_STREAM_FAILING_AFTER",
        flag: "stream-failing-after",
        env_fallbacks: &[],
        value_name: "DURATION",
        doc: "After failing deliveries for this long a log stream shows status failing (it keeps retrying and keeps its place).",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.stream_failing_after = duration(value)?;
            Ok(())
        },
        get: |config| Some(format_duration(config.stream_failing_after)),
    },
    Setting {
        name: "witnesses",
        env: "AUDITLOG_WITNESSES",
        flag: "witnesses",
        env_fallbacks: &[],
        value_name: "LIST",
        doc: "Witnesses that cosign the root log: comma-separated `<URL> <verifier key>` pairs (the URL takes POST <URL>/add-checkpoint; the key is what `auditlog witness key show` prints).",
        commands: Commands::Serve,
        kind: Kind::Text,
        secret: false,
        unset: Some(Unset {
            means: "none: root checkpoints are signed but not witnessed",
            example: "https://witness.example.org/w1 witness.example.org/w1+88acdbe8+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs",
        }),
        set: |config, value| {
            config.witnesses = parse_witnesses(value)?;
            Ok(())
        },
        get: |config| {
            Some(
                config
                    .witnesses
                    .iter()
                    .map(|w| format!("{} {}", w.url, w.key.to_text()))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .filter(|s| !s.is_empty())
        },
    },
    Setting {
        name: "witness_quorum",
        env: "AUDITLOG_WITNESS_QUORUM",
        flag: "witness-quorum",
        env_fallbacks: &[],
        value_name: "N",
        doc: "How many of `witnesses` must cosign a root checkpoint before proofs and bundles carry it (at most their number).",
        commands: Commands::Serve,
        kind: Kind::Integer,
        secret: false,
        unset: Some(Unset {
            means: "a majority of witnesses",
            example: "2",
        }),
        set: |config, value| {
            config.witness_quorum = Some(whole_number(value, 0, 1_000)?);
            Ok(())
        },
        get: |config| config.witness_quorum.map(|q| q.to_string()),
    },
    Setting {
        name: "log_level",
        env: "AUDITLOG_LOG_LEVEL",
        flag: "log-level",
        // `AUDITLOG_LOG` is the older name; `RUST_LOG` what Rust programs read.
        env_fallbacks: &["AUDITLOG_LOG", "RUST_LOG"],
        value_name: "FILTER",
        doc: "Which log lines are written: a level (error, warn, info, debug, trace) or a filter such as `warn,auditlog_server=debug`.",
        commands: Commands::All,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            tracing_subscriber::EnvFilter::try_new(value)
                .map_err(|e| InvalidValue(format!("{value:?} is not a log filter: {e}")))?;
            config.log_level = value.to_string();
            Ok(())
        },
        get: |config| Some(config.log_level.clone()),
    },
    Setting {
        name: "log_format",
        env: "AUDITLOG_LOG_FORMAT",
        flag: "log-format",
        env_fallbacks: &[],
        value_name: "FORMAT",
        doc: "How log lines are written to standard error: `text` (for people) or `json` (one object per line).",
        commands: Commands::All,
        kind: Kind::Text,
        secret: false,
        unset: None,
        set: |config, value| {
            config.log_format = match value {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(InvalidValue(format!(
                        "{value:?} is not a log format; use text or json"
                    )))
                }
            };
            Ok(())
        },
        get: |config| {
            Some(
                match config.log_format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }
                .to_string(),
            )
        },
    },
];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(variable) => write!(f, "environment {variable}"),
            Source::Flag(flag) => write!(f, "flag --{flag}"),
        }
    }
}

/// A configuration that cannot be used; the message names the setting,
/// where its value came from and the rule it broke.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A value that breaks its setting's rule, with where it came from.
    #[error("{place}: {rule}")]
    Invalid { place: String, rule: InvalidValue },
    /// Anything else about the layers: an unknown key or variable, a TOML
    /// syntax error (its position only: an excerpt could show a secret).
    #[error("{0}")]
    Layers(String),
}

/// The rule a setting's value broke, in words ("must not be empty; …"):
/// what each setting's `set` says, to which `load` adds where the value
/// came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

/// The configuration file named by `--config`, else by `AUDITLOG_CONFIG`
/// (empty counts as unset, as for every variable); none otherwise: there is
/// no implicit search path, so what is read is always visible.
pub fn file_to_read(flag: Option<&Path>, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| {
        env.get(CONFIG_VARIABLE)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    })
}

/// What the layers above the defaults hold.
pub struct Layers<'a> {
    /// The TOML file, if one was named.
    pub file: Option<&'a Path>,
    /// The process's environment (at least its `AUDITLOG_*` variables and
    /// the settings' fallbacks).
    pub env: &'a BTreeMap<String, String>,
    /// Flags given, by setting name.
    pub flags: &'a [(&'static str, String)],
}

/// The checked configuration and where each value came from.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// One per row of [`SETTINGS`], in its order.
    pub sources: Vec<Source>,
}

/// Applies the layers in order over the defaults. A bad value is an error
/// even when a later layer overrides it: a broken file should not lie in
/// wait for the day the override goes away.
pub fn load(layers: &Layers<'_>) -> Result<Loaded, ConfigError> {
    let mut config = Config::default();
    let mut sources = vec![Source::Default; SETTINGS.len()];
    if let Some(path) = layers.file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        for (index, value) in read_file(path, &text)? {
            apply(&mut config, index, &value, || {
                format!("{} in {}", SETTINGS[index].name, path.display())
            })?;
            sources[index] = Source::File(path.to_path_buf());
        }
    }
    for (index, setting) in SETTINGS.iter().enumerate() {
        // The setting's own variable first, then its fallbacks; an empty
        // variable counts as unset, so that `AUDITLOG_X= auditlog …` clears it.
        let found = std::iter::once(&setting.env)
            .chain(setting.env_fallbacks)
            .find_map(|&name| {
                layers
                    .env
                    .get(name)
                    .filter(|value| !value.is_empty())
                    .map(|value| (name, value))
            });
        if let Some((variable, value)) = found {
            apply(&mut config, index, value, || {
                format!("{variable} (setting {})", setting.name)
            })?;
            sources[index] = Source::Env(variable);
        }
    }
    for (name, value) in layers.flags {
        let index = SETTINGS
            .iter()
            .position(|setting| setting.name == *name)
            .ok_or_else(|| ConfigError::Layers(format!("{name} is not a setting")))?;
        let setting = &SETTINGS[index];
        apply(&mut config, index, value, || format!("--{}", setting.flag))?;
        sources[index] = Source::Flag(setting.flag);
    }
    Ok(Loaded { config, sources })
}

/// Sets one setting, naming `place` (the key and file, the variable or the
/// flag) in the error.
fn apply(
    config: &mut Config,
    index: usize,
    value: &str,
    place: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    let setting = &SETTINGS[index];
    (setting.set)(config, value).map_err(|rule| ConfigError::Invalid {
        place: place(),
        rule,
    })
}

/// The file's settings as text, by index into [`SETTINGS`]: every key must
/// be a setting and every value of the setting's TOML type.
fn read_file(path: &Path, text: &str) -> Result<Vec<(usize, String)>, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // Only the position and the message: the parser's excerpt of the
        // line could show a secret.
        let place = e
            .span()
            .map(|span| {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        ConfigError::Layers(format!(
            "{}{place} is not valid TOML: {}",
            path.display(),
            e.message()
        ))
    })?;
    let mut values = Vec::new();
    for (key, value) in &table {
        let Some(index) = SETTINGS.iter().position(|s| s.name == key.as_str()) else {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
            return Err(ConfigError::Layers(format!(
                "unknown key {key:?} in {}; the settings are: {}",
                path.display(),
                known.join(", ")
            )));
        };
        let setting = &SETTINGS[index];
        let text = match (setting.kind, value) {
            (Kind::Text, toml::Value::String(text)) => text.clone(),
            (Kind::Integer, toml::Value::Integer(number)) => number.to_string(),
            (kind, other) => {
                return Err(ConfigError::Layers(format!(
                    "{key} in {}: must be {}, not {}",
                    path.display(),
                    match kind {
                        Kind::Text => "a string",
                        Kind::Integer => "an integer",
                    },
                    describe(other)
                )))
            }
        };
        values.push((index, text));
    }
    Ok(values)
}

fn describe(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table (all settings are top-level keys)",
    }
}

/// `AUDITLOG_*` variables that are no setting: most likely a misspelling,
/// which would otherwise be ignored without a word.
pub fn unknown_variables(env: &BTreeMap<String, String>) -> Vec<&str> {
    env.keys()
        .map(String::as_str)
        .filter(|name| name.starts_with("AUDITLOG_") && !name.starts_with(TEST_VARIABLE_PREFIX))
        .filter(|name| !OTHER_VARIABLES.contains(name))
        .filter(|name| {
            !SETTINGS
                .iter()
                .any(|s| s.env == *name || s.env_fallbacks.contains(name))
        })
        .collect()
}

/// A commented TOML file with every setting at its default, which the
/// loader reads back to the defaults (a test makes sure of it).
pub fn example() -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "# Auditlog configuration: pass this file with --config FILE or AUDITLOG_CONFIG=FILE.\n\
         # Each setting may also be given as an environment variable or a flag, which win\n\
         # over this file (flag > environment > file > default). Values shown are the defaults.\n",
    );
    for setting in SETTINGS {
        out.push('\n');
        for line in wrap(setting.doc, 76) {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!(
            "# Environment: {}; flag: --{}",
            setting.env, setting.flag
        ));
        if setting.commands == Commands::Serve {
            out.push_str(" (serve)");
        }
        out.push('\n');
        match ((setting.get)(&defaults), &setting.unset) {
            (Some(value), _) => out.push_str(&format!(
                "{} = {}\n",
                setting.name,
                toml_value(setting, &value)
            )),
            (None, Some(unset)) => out.push_str(&format!(
                "# Default: {}.\n# {} = {}\n",
                unset.means,
                setting.name,
                toml_value(setting, unset.example)
            )),
            (None, None) => out.push_str(&format!("# {} has no default.\n", setting.name)),
        }
    }
    out
}

/// The effective configuration as TOML, secrets redacted, each value with
/// where it came from.
pub fn show(loaded: &Loaded) -> String {
    let mut out = String::from("# The effective configuration (secrets redacted).\n");
    for (setting, source) in SETTINGS.iter().zip(&loaded.sources) {
        match (setting.get)(&loaded.config) {
            Some(_) if setting.secret => {
                out.push_str(&format!("{} = \"{REDACTED}\"  # {source}\n", setting.name))
            }
            Some(value) => out.push_str(&format!(
                "{} = {}  # {source}\n",
                setting.name,
                toml_value(setting, &value)
            )),
            None => out.push_str(&format!(
                "# {} = {}  # {source}\n",
                setting.name,
                setting.unset.as_ref().map_or("no value", |u| u.means)
            )),
        }
    }
    out
}

/// A value as the file would hold it: integers bare, text quoted.
fn toml_value(setting: &Setting, value: &str) -> String {
    match setting.kind {
        Kind::Integer => value.to_string(),
        Kind::Text => toml::Value::String(value.to_string()).to_string(),
    }
}

fn non_empty(value: &str) -> Result<&str, InvalidValue> {
    if value.trim().is_empty() {
        Err(InvalidValue(
            "must not be empty; leave the setting out for its default".into(),
        ))
    } else {
        Ok(value)
    }
}

fn whole_number<T: TryFrom<u64>>(value: &str, min: u64, max: u64) -> Result<T, InvalidValue> {
    let rule = || {
        InvalidValue(format!(
            "{value:?} is not a whole number from {min} to {max}"
        ))
    };
    let number: u64 = value.trim().parse().map_err(|_| rule())?;
    if !(min..=max).contains(&number) {
        return Err(rule());
    }
    T::try_from(number).map_err(|_| rule())
}

fn duration(value: &str) -> Result<Duration, InvalidValue> {
    // DurationError has no cause beyond its words, which the message keeps.
    let duration = parse_duration(value).map_err(|e| InvalidValue(e.to_string()))?;
    if duration < Duration::from_secs(1) {
        return Err(InvalidValue(format!(
            "{value:?} is too short; the least is 1s"
        )));
    }
    Ok(duration)
}

/// The shortest of `7d`, `12h`, `30m`, `45s` that [`parse_duration`] reads back exactly.
fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn flags(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs
            .iter()
            .map(|(name, value)| (*name, value.to_string()))
            .collect()
    }

    /// Loads with an optional file holding `file_text`.
    fn load_with(
        file_text: Option<&str>,
        env: &BTreeMap<String, String>,
        flags: &[(&'static str, String)],
    ) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auditlog.toml");
        if let Some(text) = file_text {
            std::fs::write(&path, text).unwrap();
        }
        load(&Layers {
            file: file_text.map(|_| path.as_path()),
            env,
            flags,
        })
    }

    fn source_of(loaded: &Loaded, name: &str) -> Source {
        let index = SETTINGS.iter().position(|s| s.name == name).unwrap();
        loaded.sources[index].clone()
    }

    fn error_of(result: Result<Loaded, ConfigError>) -> String {
        match result {
            Ok(loaded) => panic!("expected an error, loaded {:?}", loaded.config),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn nothing_given_means_the_defaults() {
        let loaded = load_with(None, &env(&[]), &[]).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.sources.iter().all(|s| *s == Source::Default));
        // The defaults the server crate defines, not copies of them.
        assert_eq!(loaded.config.limits, Limits::default());
        assert_eq!(
            loaded.config.export_lease,
            ExportSettings::new(PathBuf::new()).lease
        );
    }

    #[test]
    fn a_file_beats_the_defaults() {
        let loaded = load_with(
            Some("listen = \"0.0.0.0:9000\"\nexport_concurrency = 7\nrequest_timeout = \"2m\"\n"),
            &env(&[]),
            &[],
        )
        .unwrap();
        assert_eq!(loaded.config.listen, "0.0.0.0:9000");
        assert_eq!(loaded.config.export_concurrency, 7);
        assert_eq!(
            loaded.config.limits.request_timeout,
            Duration::from_secs(120)
        );
        assert!(matches!(source_of(&loaded, "listen"), Source::File(_)));
        assert_eq!(source_of(&loaded, "data_dir"), Source::Default);
        assert_eq!(loaded.config.data_dir, Config::default().data_dir);
    }

    #[test]
    fn the_environment_beats_the_file() {
        let loaded = load_with(
            Some("listen = \"0.0.0.0:9000\"\nexport_concurrency = 7\n"),
            &env(&[("AUDITLOG_LISTEN", "127.0.0.1:7000")]),
            &[],
        )
        .unwrap();
        assert_eq!(loaded.config.listen, "127.0.0.1:7000");
        assert_eq!(source_of(&loaded, "listen"), Source::Env("AUDITLOG_LISTEN"));
        // What the environment does not name keeps the file's value.
        assert_eq!(loaded.config.export_concurrency, 7);
        assert!(matches!(
            source_of(&loaded, "export_concurrency"),
            Source::File(_)
        ));
    }

    #[test]
    fn a_flag_beats_the_environment_and_the_file() {
        let loaded = load_with(
            Some("listen = \"0.0.0.0:9000\"\nrate_limit_burst = 3\n"),
            &env(&[
                ("AUDITLOG_LISTEN", "127.0.0.1:7000"),
                ("AUDITLOG_RATE_LIMIT_BURST", "4"),
            ]),
            &flags(&[("listen", "127.0.0.1:6000")]),
        )
        .unwrap();
        assert_eq!(loaded.config.listen, "127.0.0.1:6000");
        assert_eq!(source_of(&loaded, "listen"), Source::Flag("listen"));
        assert_eq!(loaded.config.limits.rate_limit_burst, 4);
        assert_eq!(
            source_of(&loaded, "rate_limit_burst"),
            Source::Env("AUDITLOG_RATE_LIMIT_BURST")
        );
    }

    #[test]
    fn every_setting_is_read_from_each_layer() {
        // The example's value of each setting, set once per layer: each
        // layer reaches every field (no row forgets to store its value).
        let example = |setting: &Setting| -> String {
            match setting.name {
                "data_dir" => "/srv/data".into(),
                "database_url" => "postgres://a:b@c/d".into(),
                "signing_key_file" => "/srv/key".into(),
                "log_name" => "audit.example".into(),
                "listen" => "0.0.0.0:1".into(),
                "export_dir" => "/srv/exports".into(),
                "export_concurrency" => "3".into(),
                "export_expiry" => "2h".into(),
                "export_lease" => "5m".into(),
                "rate_limit_per_second" => "0".into(),
                "rate_limit_burst" => "9".into(),
                "request_timeout" => "45s".into(),
                "max_connections" => "12".into(),
                "max_live_streams" => "7".into(),
                "stream_secret_key_file" => "/srv/stream-key".into(),
                "erasure_key_file" => "/srv/erasure-key".into(),
                "stream_allow_private" => "127.0.0.1/32".into(),
                "stream_lease" => "45s".into(),
                "stream_failing_after" => "20m".into(),
                "retention_min_days" => "0".into(),
                "retention_max_days" => "400".into(),
                "prune_interval" => "10m".into(),
                "prune_lease" => "2m".into(),
                "stream_tls_ca_file" => "/srv/stream-ca.pem".into(),
                "witnesses" => "http://127.0.0.1:7380 witness.example.org/w1+88acdbe8+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs".into(),
                "witness_quorum" => "1".into(),
                "log_level" => "warn".into(),
                "log_format" => "json".into(),
                other => panic!("no example value for {other}; add one here"),
            }
        };
        let mut file = String::new();
        let mut variables = BTreeMap::new();
        let mut given = Vec::new();
        for setting in SETTINGS {
            let value = example(setting);
            let literal = match setting.kind {
                Kind::Integer => value.clone(),
                Kind::Text => format!("{value:?}"),
            };
            file.push_str(&format!("{} = {literal}\n", setting.name));
            variables.insert(setting.env.to_string(), value.clone());
            given.push((setting.name, value));
        }
        let from_file = load_with(Some(&file), &env(&[]), &[]).unwrap();
        let from_env = load_with(None, &variables, &[]).unwrap();
        let from_flags = load_with(None, &env(&[]), &given).unwrap();
        for (loaded, layer) in [
            (&from_file, "file"),
            (&from_env, "env"),
            (&from_flags, "flag"),
        ] {
            for (setting, source) in SETTINGS.iter().zip(&loaded.sources) {
                assert_eq!(
                    (setting.get)(&loaded.config).as_deref(),
                    Some(example(setting).as_str()),
                    "{} from the {layer}",
                    setting.name
                );
                assert_ne!(
                    *source,
                    Source::Default,
                    "{} from the {layer}",
                    setting.name
                );
            }
        }
        assert_eq!(from_file.config, from_env.config);
        assert_eq!(from_env.config, from_flags.config);
        assert_ne!(from_flags.config, Config::default());
    }

    #[test]
    fn log_level_falls_back_to_older_and_conventional_variables() {
        let level = |pairs: &[(&str, &str)]| {
            let loaded = load_with(None, &env(pairs), &[]).unwrap();
            (
                loaded.config.log_level.clone(),
                source_of(&loaded, "log_level"),
            )
        };
        assert_eq!(
            level(&[("RUST_LOG", "debug")]),
            ("debug".into(), Source::Env("RUST_LOG"))
        );
        assert_eq!(
            level(&[("RUST_LOG", "debug"), ("AUDITLOG_LOG", "warn")]),
            ("warn".into(), Source::Env("AUDITLOG_LOG"))
        );
        assert_eq!(
            level(&[
                ("RUST_LOG", "debug"),
                ("AUDITLOG_LOG", "warn"),
                ("AUDITLOG_LOG_LEVEL", "error")
            ]),
            ("error".into(), Source::Env("AUDITLOG_LOG_LEVEL"))
        );
        // An empty variable is unset: the next one counts.
        assert_eq!(
            level(&[("AUDITLOG_LOG_LEVEL", ""), ("AUDITLOG_LOG", "warn")]),
            ("warn".into(), Source::Env("AUDITLOG_LOG"))
        );
    }

    #[test]
    fn an_unknown_key_names_the_key_the_file_and_the_settings() {
        let message = error_of(load_with(
            Some("listen = \"x:1\"\nlisten_addr = \"y\"\n"),
            &env(&[]),
            &[],
        ));
        assert!(message.contains("unknown key \"listen_addr\""), "{message}");
        assert!(message.contains("auditlog.toml"), "{message}");
        assert!(message.contains("the settings are: data_dir"), "{message}");
        let message = error_of(load_with(
            Some("[limits]\nmax_connections = 3\n"),
            &env(&[]),
            &[],
        ));
        assert!(message.contains("unknown key \"limits\""), "{message}");
    }

    #[test]
    fn bad_values_name_the_setting_where_it_came_from_and_the_rule() {
        let cases: Vec<(Result<Loaded, ConfigError>, &[&str])> = vec![
            (
                load_with(Some("export_concurrency = \"2\"\n"), &env(&[]), &[]),
                &[
                    "export_concurrency in ",
                    "auditlog.toml",
                    "must be an integer, not a string",
                ],
            ),
            (
                load_with(Some("listen = 8080\n"), &env(&[]), &[]),
                &["listen in ", "must be a string, not an integer"],
            ),
            (
                load_with(Some("export_concurrency = 65\n"), &env(&[]), &[]),
                &[
                    "export_concurrency in ",
                    "\"65\" is not a whole number from 1 to 64",
                ],
            ),
            (
                load_with(None, &env(&[("AUDITLOG_MAX_CONNECTIONS", "many")]), &[]),
                &[
                    "AUDITLOG_MAX_CONNECTIONS (setting max_connections)",
                    "not a whole number",
                ],
            ),
            (
                load_with(None, &env(&[("AUDITLOG_RATE_LIMIT_BURST", "0")]), &[]),
                &["AUDITLOG_RATE_LIMIT_BURST", "from 1 to 4294967295"],
            ),
            (
                load_with(None, &env(&[]), &flags(&[("request_timeout", "soon")])),
                &["--request-timeout", "is not a duration"],
            ),
            (
                load_with(None, &env(&[]), &flags(&[("export_lease", "0s")])),
                &["--export-lease", "too short; the least is 1s"],
            ),
            (
                load_with(None, &env(&[("AUDITLOG_LOG_FORMAT", "xml")]), &[]),
                &["AUDITLOG_LOG_FORMAT", "use text or json"],
            ),
            (
                load_with(Some("log_level = \"auditlog=loud\"\n"), &env(&[]), &[]),
                &["log_level in ", "is not a log filter"],
            ),
            (
                load_with(Some("data_dir = \"\"\n"), &env(&[]), &[]),
                &["data_dir in ", "must not be empty"],
            ),
            (
                load_with(Some("listen = \n"), &env(&[]), &[]),
                &["auditlog.toml:1:", "is not valid TOML"],
            ),
        ];
        for (result, expected) in cases {
            let message = error_of(result);
            for part in expected {
                assert!(message.contains(part), "{message:?} lacks {part:?}");
            }
        }
        let missing = load(&Layers {
            file: Some(Path::new("/nonexistent/auditlog.toml")),
            env: &env(&[]),
            flags: &[],
        });
        let message = error_of(missing);
        assert!(
            message.contains("cannot read the configuration file /nonexistent/auditlog.toml"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_value_in_the_file_is_an_error_even_when_overridden() {
        let message = error_of(load_with(
            Some("export_concurrency = 0\n"),
            &env(&[("AUDITLOG_EXPORT_CONCURRENCY", "2")]),
            &[],
        ));
        assert!(message.contains("export_concurrency in "), "{message}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let password = "hunter2-correct-horse";
        let url = format!("postgres://auditlog:{password}@db.internal:5432/auditlog");
        let loaded = load_with(None, &env(&[("AUDITLOG_DATABASE_URL", &url)]), &[]).unwrap();
        assert_eq!(
            loaded.config.database_url.as_ref().map(Secret::expose),
            Some(url.as_str()),
            "the code that connects still gets the URL"
        );
        let debug = format!("{:?}", loaded.config);
        let pretty = format!("{:#?}", loaded);
        let shown = show(&loaded);
        for printed in [&debug, &pretty, &shown] {
            assert!(
                !printed.contains(password),
                "the password leaked: {printed}"
            );
            assert!(printed.contains("[redacted]"), "{printed}");
        }
        assert!(
            shown.contains("environment AUDITLOG_DATABASE_URL"),
            "{shown}"
        );
        assert_eq!(format!("{}", Secret::new(password)), "[redacted]");
        // A syntax error on the secret's own line names the place, not the line.
        let broken = format!("database_url = \"{url}\" trailing\n");
        let message = error_of(load_with(Some(&broken), &env(&[]), &[]));
        assert!(message.contains("is not valid TOML"), "{message}");
        assert!(
            !message.contains(password),
            "the password leaked: {message}"
        );
    }

    #[test]
    fn the_example_reads_back_as_the_defaults() {
        let example = example();
        let loaded = load_with(Some(&example), &env(&[]), &[]).unwrap();
        assert_eq!(loaded.config, Config::default());
        for setting in SETTINGS {
            assert!(
                example.contains(setting.env),
                "{} lacks its variable",
                setting.name
            );
            assert!(
                example.contains(&format!("flag: --{}", setting.flag)),
                "{} lacks its flag",
                setting.name
            );
        }
        // The settings without a default are commented out; their example
        // lines are valid too once uncommented.
        let uncommented: String = example
            .lines()
            .map(|line| {
                let optional = SETTINGS
                    .iter()
                    .filter(|s| s.unset.is_some())
                    .any(|s| line.starts_with(&format!("# {} = ", s.name)));
                if optional {
                    format!("{}\n", &line[2..])
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let loaded = load_with(Some(&uncommented), &env(&[]), &[]).unwrap();
        for (setting, source) in SETTINGS.iter().zip(&loaded.sources) {
            assert!(
                matches!(source, Source::File(_)),
                "{} is not in the example",
                setting.name
            );
        }
    }

    #[test]
    fn names_follow_one_convention() {
        let mut names = std::collections::BTreeSet::new();
        for setting in SETTINGS {
            assert!(names.insert(setting.name), "{} twice", setting.name);
            assert_eq!(
                setting.env,
                format!("AUDITLOG_{}", setting.name.to_ascii_uppercase())
            );
            assert_eq!(setting.flag, setting.name.replace('_', "-"));
            assert_eq!(
                setting.unset.is_some(),
                (setting.get)(&Config::default()).is_none(),
                "{}: a setting has a default value or says what unset means",
                setting.name
            );
        }
    }

    #[test]
    fn the_readme_lists_every_setting_with_its_variable_flag_and_default() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        for setting in SETTINGS {
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `{}` |", setting.name)))
                .unwrap_or_else(|| panic!("README has no row for {}", setting.name));
            for part in [
                format!("`{}`", setting.env),
                format!("`--{}`", setting.flag),
                format!("`{}`", setting.default_text()),
            ] {
                assert!(row.contains(&part), "README's row {row:?} lacks {part}");
            }
        }
    }

    #[test]
    fn the_file_is_named_by_the_flag_else_the_variable() {
        let named = env(&[("AUDITLOG_CONFIG", "/etc/auditlog.toml")]);
        let flag = Path::new("/tmp/mine.toml");
        assert_eq!(file_to_read(Some(flag), &named), Some(flag.to_path_buf()));
        assert_eq!(
            file_to_read(None, &named),
            Some(PathBuf::from("/etc/auditlog.toml"))
        );
        assert_eq!(file_to_read(None, &env(&[("AUDITLOG_CONFIG", "")])), None);
        assert_eq!(file_to_read(None, &env(&[])), None);
    }

    #[test]
    fn unknown_auditlog_variables_are_reported() {
        let variables = env(&[
            ("AUDITLOG_DATA_DIRR", "x"),
            ("AUDITLOG_DATA_DIR", "x"),
            ("AUDITLOG_LOG", "warn"),
            ("AUDITLOG_CONFIG", "x"),
            ("AUDITLOG_TEST_DATABASE_URL", "x"),
            ("HOME", "/root"),
        ]);
        assert_eq!(unknown_variables(&variables), vec!["AUDITLOG_DATA_DIRR"]);
    }

    #[test]
    fn durations_are_shown_as_they_are_read() {
        for (seconds, text) in [
            (604_800, "7d"),
            (7_200, "2h"),
            (90, "90s"),
            (120, "2m"),
            (30, "30s"),
        ] {
            let duration = Duration::from_secs(seconds);
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }

    #[test]
    fn witnesses_are_url_and_key_pairs_and_the_quorum_defaults_to_a_majority() {
        const KEY: &str =
            "witness.example.org/w1+88acdbe8+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs";
        let w2 = auditlog_core::cosignature::CosignatureSigner::from_seed("w2", [2; 32])
            .unwrap()
            .verifier()
            .to_text();
        let list = format!("http://127.0.0.1:7380 {KEY}, https://w2.example/ {w2}");
        let loaded = load_with(None, &env(&[("AUDITLOG_WITNESSES", &list)]), &[]).unwrap();
        let settings = loaded.config.witness_settings().unwrap();
        assert_eq!(settings.quorum, 2);
        assert_eq!(settings.witnesses[0].name, "witness.example.org/w1");
        assert_eq!(settings.witnesses[1].url, "https://w2.example/");
        assert_eq!(Config::default().witness_settings().unwrap().quorum, 0);

        let quorum = flags(&[("witnesses", &list), ("witness_quorum", "3")]);
        let too_many = load_with(None, &env(&[]), &quorum).unwrap();
        let error = too_many.config.witness_settings().unwrap_err();
        assert!(
            error.contains("witness_quorum is 3") && error.contains("lists 2"),
            "{error}"
        );

        for (bad, rule) in [
            (format!("127.0.0.1:7380 {KEY}"), "entry 1"),
            (format!("http://a {KEY}, http://b {KEY}"), "listed twice"),
            ("http://a".to_string(), "URL and a verifier key"),
            (format!("http://a {}", KEY.replace("+BO", "+AO")), "entry 1"),
        ] {
            let error = load_with(None, &env(&[]), &flags(&[("witnesses", &bad)])).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains("--witnesses") && message.contains(rule),
                "{bad}: {message}"
            );
        }
    }
}
