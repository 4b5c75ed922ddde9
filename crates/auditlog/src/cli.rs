//! The command line. Every default is defined here, once.

use auditlog_server::exports::parse_duration;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "auditlog",
    version,
    about = "Immutable, provable audit log service"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data lives; taken by every command.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded store (created if missing).
    #[arg(
        long,
        env = "AUDITLOG_DATA_DIR",
        default_value = "./auditlog-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…); when set, used instead of the embedded store.
    #[arg(
        long,
        env = "AUDITLOG_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// The log's Ed25519 signing key (C2SP signer-key text); created on first
    /// start if missing. Default: `signing-key` in --data-dir.
    #[arg(long, env = "AUDITLOG_SIGNING_KEY_FILE", global = true)]
    pub signing_key_file: Option<PathBuf>,
    /// The log name in checkpoint origins (`<log name>/<account>`) and the key name of a new key.
    #[arg(long, env = "AUDITLOG_LOG_NAME", default_value = auditlog_core::checkpoint::DEFAULT_LOG_NAME, global = true)]
    pub log_name: String,
}

impl StoreArgs {
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key_file.clone().unwrap_or_else(|| {
            self.data_dir
                .join(auditlog_server::signing_key::DEFAULT_FILE)
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the console and the background workers.
    Serve {
        /// Address to listen on; port 0 picks a free port (printed at start).
        #[arg(long, env = "AUDITLOG_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Create the `demo` account with an admin, keys and sample events (if absent).
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        exports: ExportArgs,
    },
    /// Write an account's events to a file (CSV or JSON Lines), as the
    /// background exports do, with a progress bar on a terminal.
    Export(ExportCommand),
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage console users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Copy every account, key, user and event to another store (e.g. the
    /// embedded store to PostgreSQL), then check the copy event by event.
    /// Resumable: run it again after an interruption.
    Copy {
        /// The store to read: a data directory path or a postgres:// URL.
        #[arg(long)]
        from: String,
        /// The store to write: a postgres:// URL.
        #[arg(long)]
        to: String,
    },
    /// Check the whole store: leaf bytes against the columns queries read,
    /// leaf hashes, Merkle trees and signed checkpoints. Exits 0 only if intact.
    Verify {
        /// The verifier key to check checkpoints with (`name+id+key`, as
        /// /api/v1/public-key serves it). Default: derived from the signing key file.
        #[arg(long)]
        key: Option<String>,
    },
    /// Check an export bundle offline against a pinned verifier key.
    VerifyExport {
        /// The bundle file (.tar).
        file: PathBuf,
        /// The log's verifier key (`name+id+key`, as /api/v1/public-key serves it).
        #[arg(long)]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account with the default taxonomy.
    Create { name: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it once; only its hash is stored.
    Create {
        #[arg(long)]
        account: String,
        /// `ingest` (send events) or `read` (query, export, proofs); repeat for both.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a console user; the password is read from standard input.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        /// `admin` (sees audit logs, manages exports) or `member`.
        #[arg(long)]
        role: String,
    },
}

/// The export worker's settings (`serve`).
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// Directory of export files [default: <data-dir>/exports]. Every server
    /// sharing one database must share this directory.
    #[arg(long, env = "AUDITLOG_EXPORT_DIR")]
    pub export_dir: Option<PathBuf>,
    /// Exports run at once by this server [default: 2].
    #[arg(long, env = "AUDITLOG_EXPORT_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub export_concurrency: Option<u16>,
    /// How long a completed export can be downloaded: 7d, 12h, 30m, 45s or seconds [default: 7d].
    #[arg(long, env = "AUDITLOG_EXPORT_EXPIRY", value_parser = parse_duration)]
    pub export_expiry: Option<Duration>,
    /// How long a running export stays claimed without a renewal; a job
    /// whose server died is taken over after this [default: 30s].
    #[arg(long, env = "AUDITLOG_EXPORT_LEASE", value_parser = parse_duration)]
    pub export_lease: Option<Duration>,
    /// Test-only: pause this many milliseconds after each page of 1,000
    /// events, so that tests can catch an export while it runs.
    #[arg(
        long,
        env = "AUDITLOG_EXPORT_TEST_PAGE_DELAY_MS",
        default_value_t = 0,
        hide = true
    )]
    pub export_test_page_delay_ms: u64,
}

/// `auditlog export`: the same filters as the API, repeatable where the API's are.
#[derive(Debug, Args)]
pub struct ExportCommand {
    #[arg(long)]
    pub account: String,
    /// `csv` or `jsonl`.
    #[arg(long)]
    pub format: String,
    /// Compress the file with gzip.
    #[arg(long)]
    pub gzip: bool,
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    #[arg(long = "action")]
    pub actions: Vec<String>,
    /// Actor id.
    #[arg(long = "user")]
    pub users: Vec<String>,
    #[arg(long = "project")]
    pub projects: Vec<String>,
    #[arg(long)]
    pub app: Option<String>,
    #[arg(long)]
    pub version: Option<String>,
    #[arg(long)]
    pub target_id: Option<String>,
    /// RFC 3339 instant, inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 instant, inclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// The file to write; it appears only once complete.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
}
