//! The command line. Every default is defined here, once.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    },
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
