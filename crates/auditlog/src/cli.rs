//! The command line: the commands and their arguments. The flags of the
//! settings are added from `config::SETTINGS`, where each setting (its
//! default, variable, flag and meaning) is defined once; `parse` hands them
//! to the configuration loader, which layers them over file and environment.

use crate::config::{Commands, SETTINGS};
use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "auditlog",
    version,
    about = "Immutable, provable audit log service"
)]
pub struct Cli {
    /// A TOML configuration file (`auditlog config example` prints one);
    /// environment variables and flags win over it. [env: AUDITLOG_CONFIG]
    // The variable is read with the others, in `config::file_to_read`.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags of settings given on the command line, by setting name.
pub type SettingFlags = Vec<(&'static str, String)>;

/// Parses the command line (exiting with clap's message on a mistake) into
/// the command and the settings' flags.
pub fn parse() -> (Cli, SettingFlags) {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (cli, setting_flags(&matches))
}

/// The whole command line: the derived commands plus one flag per setting,
/// global or on the commands that use it.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    for setting in SETTINGS {
        let arg = Arg::new(setting.name)
            .long(setting.flag)
            .value_name(setting.value_name)
            .help_heading("Settings (also in the --config file)")
            .help(format!(
                "{} [env: {}] [default: {}]",
                setting.doc,
                setting.env,
                setting.default_text()
            ));
        command = match setting.commands {
            Commands::All => command.arg(arg.global(true)),
            Commands::Serve => command
                .mut_subcommand("serve", |serve| serve.arg(arg.clone()))
                .mut_subcommand("config", |config| {
                    config.mut_subcommand("show", |show| show.arg(arg))
                }),
        };
    }
    command
}

/// The settings' flags given, found at whichever level of subcommands took them.
fn setting_flags(matches: &ArgMatches) -> SettingFlags {
    let mut flags = SettingFlags::new();
    let mut level = Some(matches);
    while let Some(current) = level {
        for setting in SETTINGS {
            // `try_get_one` first: a serve setting is not an argument of the
            // other levels, and asking those for its source would panic.
            let Ok(Some(value)) = current.try_get_one::<String>(setting.name) else {
                continue;
            };
            let given =
                current.value_source(setting.name) == Some(clap::parser::ValueSource::CommandLine);
            if given && !flags.iter().any(|(name, _)| *name == setting.name) {
                flags.push((setting.name, value.clone()));
            }
        }
        level = current.subcommand().map(|(_, sub)| sub);
    }
    flags
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the console and the background workers.
    Serve {
        /// Create the `demo` account with an admin, keys and sample events (if absent).
        #[arg(long)]
        demo: bool,
        /// Test-only: pause this many milliseconds after each page of 1,000
        /// events, so that tests can catch an export while it runs.
        ///
        /// Compiled only with debug assertions, so that the shipped (release)
        /// binary has no such flag. Chosen over a cargo feature because the
        /// integration tests run this crate's binary, and cargo cannot turn
        /// on a feature of a binary-only package for its own tests; `cargo
        /// test` builds with debug assertions, so it needs no extra flag.
        #[cfg(debug_assertions)]
        #[arg(
            long,
            env = "AUDITLOG_EXPORT_TEST_PAGE_DELAY_MS",
            default_value_t = 0,
            hide = true
        )]
        export_test_page_delay_ms: u64,
        /// Test-only: pause this many milliseconds after each batch of a
        /// pruning, so that tests can kill a server in the middle of one.
        /// Compiled only with debug assertions, like the export delay.
        #[cfg(debug_assertions)]
        #[arg(
            long,
            env = "AUDITLOG_PRUNE_TEST_BATCH_PAUSE_MS",
            default_value_t = 0,
            hide = true
        )]
        prune_test_batch_pause_ms: u64,
    },
    /// Print an example configuration file, or the effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write an account's events to a file (CSV or JSON Lines), as the
    /// background exports do, with a progress bar on a terminal.
    Export(Box<ExportCommand>),
    /// Search an account's events with the query language of `q` (see
    /// docs/SEARCH.md), newest first, on the store directly.
    Search(Box<SearchCommand>),
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
    /// An account's retention policy: set it, show it with what the next
    /// pruning removes and what holds it back, or give the store's free
    /// space back at once (docs/RETENTION.md).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Legal holds: while a hold matches an event, neither pruning nor
    /// erasure removes it. Each change is audited as `Auditlog Legal Hold`.
    Hold {
        #[command(subcommand)]
        command: HoldCommand,
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
        /// /api/v1/public-key serves it); repeat it for every key the log has
        /// used (after a key rotation, each checkpoint must be signed by one
        /// of them). Default: derived from the signing key file.
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
    },
    /// Erase a data subject's personal values (docs/ERASURE.md): every
    /// event whose actor id is SUBJECT is served with "[erased]" values and
    /// the subject's pseudonym (a version 1 event loses its body), under one
    /// Auditlog Erasure record; held events wait for their hold's release
    /// (a server finishes them). Runs on the store directly, to the end.
    Erase {
        /// The account.
        #[arg(long, value_name = "NAME")]
        account: String,
        /// The data subject: the actor id whose events are erased.
        #[arg(long, value_name = "ID")]
        subject: String,
    },
    /// Send a file of JSON Lines events (one event object per line) to a
    /// server's API in batches; rerunning after an interruption stores
    /// nothing twice. Exit code 0: every line stored or already present;
    /// 2: some lines rejected (listed); 1: stopped by an error.
    Send(Box<SendCommand>),
    /// A C2SP witness for transparency logs (this server's root log or any
    /// other): cosigns a log's checkpoints, never two inconsistent ones.
    /// Needs no store. See docs/WITNESS.md.
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
    /// Watch an account's log from outside: check each signed checkpoint
    /// against the pinned verifier key and prove it extends the last one
    /// verified (kept in --state). Exit code 3: evidence of a rollback, a
    /// fork, a bad signature or proof, or a missing event, printed with the
    /// signed checkpoints; 1: the check could not be made. See docs/MONITOR.md.
    Monitor(Box<MonitorCommand>),
    /// Print a server's new events as they are stored (the live tail,
    /// `GET /api/v1/events/stream`), one JSON object per line or as a table,
    /// until interrupted; a dropped connection is resumed where it stopped,
    /// with no gap and no repeat.
    Tail(Box<TailCommand>),
    /// Check an export bundle offline against a pinned verifier key.
    VerifyExport {
        /// The bundle file (.tar).
        file: PathBuf,
        /// The log's verifier key (`name+id+key`, as /api/v1/public-key serves
        /// it); repeat to pin every key the log has used (after a rotation):
        /// each signature must be by one of them.
        #[arg(long = "key", value_name = "VKEY", required = true)]
        keys: Vec<String>,
        /// A witness's cosignature verifier key (`name+id+key`, as `auditlog
        /// witness key show` prints it); repeat for each. With it, the
        /// bundle's checkpoint must be covered by a root checkpoint that
        /// `--quorum` of these witnesses cosigned.
        #[arg(long = "witness", id = "witness", value_name = "WKEY")]
        witnesses: Vec<String>,
        /// How many of the `--witness` keys must have cosigned (default: a majority).
        #[arg(long, requires = "witness")]
        quorum: Option<usize>,
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
        /// `ingest` (send events), `read` (query, export, proofs, live tail)
        /// or `admin` (users, keys, log streams; implies `read`); repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// What the key is for, shown in listings (default: "cli").
        #[arg(long)]
        name: Option<String>,
        /// The key stops working after this long: a number and `m`, `h` or
        /// `d` (e.g. `90d`); never when left out.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the account's keys: public id, name, prefix, scopes, status,
    /// expiry, creator, creation and last use (never a secret).
    List {
        #[arg(long)]
        account: String,
    },
    /// Revoke a key by its public id (`key_…`, from `auditlog key list`):
    /// refused at once by servers on this store, within 5 s by the others.
    Revoke {
        #[arg(long)]
        account: String,
        /// The key's public id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Set how many days after receipt events are kept (audited as
    /// `Auditlog Account` / Update); `none` keeps them forever. The days
    /// must be within the server's retention_min_days and
    /// retention_max_days (read from the configuration file or environment).
    Set {
        #[arg(long)]
        account: String,
        /// Whole days, or `none`.
        #[arg(long)]
        days: String,
    },
    /// Show the policy, what the next pruning removes, what holds it back
    /// (legal holds, a lagging log stream, running exports) and the latest
    /// prunings with their progress; every account's when --account is left out.
    Show {
        #[arg(long)]
        account: Option<String>,
        /// `text` or `json` (the API's `retention` object per account).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Rewrite the store so that every free page leaves the disk now. On
    /// the embedded store this also converts a file created before
    /// incremental vacuum (after it, each pruning gives its space back by
    /// itself); it needs free disk space of the file's size and holds
    /// appends back while it runs: stop the server first. On PostgreSQL:
    /// `VACUUM (FULL)` of the event tables, as their owner.
    Vacuum,
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Create a legal hold on the events matching the filters and the
    /// query (every event of the account when none is given); audited as
    /// `Auditlog Legal Hold` / Create. Prints the hold's id.
    Create(Box<HoldCreateCommand>),
    /// List the account's holds (active ones; --all for released ones too).
    List {
        #[arg(long)]
        account: String,
        #[arg(long)]
        all: bool,
    },
    /// Release a hold by its id (audited as `Auditlog Legal Hold` /
    /// Release): the next pruning may remove what it kept.
    Release {
        #[arg(long)]
        account: String,
        /// The hold's id, from `auditlog hold list`.
        id: i64,
    },
}

/// `auditlog hold create`: the fields of `POST /api/v1/holds`.
#[derive(Debug, Args)]
pub struct HoldCreateCommand {
    #[arg(long)]
    pub account: String,
    /// Unique among the account's active holds (1 to 200 characters).
    #[arg(long)]
    pub name: String,
    /// Why events are held (1 to 2,000 characters).
    #[arg(long)]
    pub reason: String,
    /// A search query (docs/SEARCH.md), ANDed with the filters.
    #[arg(long, allow_hyphen_values = true)]
    pub query: Option<String>,
    /// The IANA zone --query is read in (default UTC).
    #[arg(long)]
    pub tz: Option<String>,
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
    /// RFC 3339 instant, inclusive (the event's `time`).
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 instant, inclusive (the event's `time`).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a console user; the password is read from standard input.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        /// `admin` (sees audit logs, administers the account), `auditor`
        /// (sees audit logs, exports; changes nothing) or `member`.
        #[arg(long)]
        role: String,
    },
    /// List the account's users: id, email, role, status (active, invited,
    /// disabled), created.
    List {
        #[arg(long)]
        account: String,
    },
    /// Disable a user: sign-in is refused and every session ends at once,
    /// on every server. The last active admin cannot be disabled.
    Disable {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
    },
    /// Change a user's role. The last active admin cannot be demoted.
    SetRole {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        /// `admin`, `auditor` or `member`.
        #[arg(long)]
        role: String,
    },
    /// Print a new one-time sign-in link (valid 24 h) with which the user
    /// sets a new password; the path is printed, to be opened on the
    /// console's address. Any earlier link stops working.
    ResetPassword {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Serve C2SP tlog-witness `POST /add-checkpoint` for the logs in the
    /// --logs file, remembering what it cosigned in the --state directory.
    Serve {
        /// The address to listen on (`:0` picks a free port, printed on start).
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: String,
        /// The witness's key, made by `auditlog witness key create`.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// The logs to cosign: TOML, one `[[log]]` with `origin` and `keys`
        /// per log (docs/WITNESS.md).
        #[arg(long, value_name = "FILE")]
        logs: PathBuf,
        /// The directory holding the latest cosigned checkpoint of each log
        /// (created if absent). Losing it makes this a new witness.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
    },
    /// The witness's key.
    Key {
        #[command(subcommand)]
        command: WitnessKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WitnessKeyCommand {
    /// Create the witness's key file (mode 0600, never overwriting one) and
    /// print its verifier key, which logs and verifiers pin.
    Create {
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// The witness's name, a schema-less URL such as witness.example.com/w1.
        #[arg(long)]
        name: String,
    },
    /// Print the verifier key of an existing key file.
    Show {
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented TOML file of every setting with its default,
    /// environment variable and flag.
    Example,
    /// Print the configuration in effect (secrets redacted) and where each
    /// value came from.
    Show,
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

/// `auditlog search`: `q` on the store, as `GET /api/v1/events?q=` answers.
#[derive(Debug, Args)]
pub struct SearchCommand {
    #[arg(long)]
    pub account: String,
    /// The query, such as `user:u-17 -action:Update time:>=2026-11-01 pay*`
    /// (it may start with `-`, a negation).
    #[arg(allow_hyphen_values = true)]
    pub query: String,
    /// The most events to print (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// `table`, `jsonl` (the API's event JSON) or `csv` (the export's columns).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// The IANA zone of the query's times without an offset (default UTC).
    #[arg(long)]
    pub tz: Option<String>,
}

/// `auditlog send`: a client of the API, so it takes no store settings.
#[derive(Debug, Args)]
pub struct SendCommand {
    /// The server's base URL, such as http://127.0.0.1:8080 or https://audit.example.com.
    #[arg(long, env = "AUDITLOG_URL")]
    pub url: String,
    /// An API key with the `ingest` scope (the variable keeps it out of the
    /// process list).
    #[arg(long, env = "AUDITLOG_KEY", hide_env_values = true)]
    pub key: String,
    /// PEM certificates of a private CA trusted for an https:// --url, in
    /// addition to the public web PKI roots compiled in.
    #[arg(long, value_name = "FILE", env = "AUDITLOG_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The events, one JSON object per line; `-` reads standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// What keeps the ids derived for lines without `id` apart from other
    /// inputs' (default: the file's canonical path and the key's
    /// fingerprint; required for standard input). Keep it the same to rerun.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Events per request (the API takes at most 1,000 and 10 MiB).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Retries of one request (after connection errors, timeouts, 429 and
    /// 502–504) before the run stops.
    #[arg(long, default_value_t = 10)]
    pub max_retries: u32,
}

/// `auditlog monitor`: a client of the API, so it takes no store settings.
#[derive(Debug, Args)]
pub struct MonitorCommand {
    /// The server's base URL, such as http://127.0.0.1:8080 or https://audit.example.com.
    #[arg(long, env = "AUDITLOG_URL")]
    pub url: String,
    /// An API key with the `read` scope (the variable keeps it out of the
    /// process list).
    #[arg(long, env = "AUDITLOG_KEY", hide_env_values = true)]
    pub key: String,
    /// PEM certificates of a private CA trusted for an https:// --url, in
    /// addition to the public web PKI roots compiled in.
    #[arg(long, value_name = "FILE", env = "AUDITLOG_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The key's account: checkpoints must have the origin `<vkey name>/<account>`.
    #[arg(long)]
    pub account: String,
    /// The log's verifier key (`name+id+key`, as /api/v1/public-key serves
    /// it), pinned out of band; repeat it for every key the log has used
    /// (after a key rotation: the old and the new, with the same name).
    #[arg(long = "vkey", value_name = "VKEY", required = true)]
    pub vkeys: Vec<String>,
    /// The file holding the last verified checkpoint (a signed note;
    /// created on the first round). Keep it: it is what a rollback is caught against.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Time between rounds (45s, 5m, 1h).
    #[arg(long, default_value = "30s")]
    pub interval: String,
    /// Run one round and exit.
    #[arg(long)]
    pub once: bool,
    /// Event ids, one per line: prove each round that each is in the log.
    #[arg(long, value_name = "FILE")]
    pub check_ids: Option<PathBuf>,
    /// A witness's cosignature verifier key (`name+id+key`, as `auditlog
    /// witness key show` prints it); repeat for each. With it, the monitor
    /// checks the account's latest witnessed checkpoint
    /// (GET /api/v1/proofs/root): covered by a root checkpoint that
    /// `--quorum` of these witnesses cosigned.
    #[arg(long = "witness", id = "witness", value_name = "WKEY")]
    pub witnesses: Vec<String>,
    /// How many of the `--witness` keys must have cosigned (default: a majority).
    #[arg(long, requires = "witness")]
    pub quorum: Option<usize>,
}

/// `auditlog tail`: a client of the API, so it takes no store settings.
#[derive(Debug, Args)]
pub struct TailCommand {
    /// The server's base URL, such as http://127.0.0.1:8080 or https://audit.example.com.
    #[arg(long, env = "AUDITLOG_URL")]
    pub url: String,
    /// An API key with the `read` scope (the variable keeps it out of the
    /// process list).
    #[arg(long, env = "AUDITLOG_KEY", hide_env_values = true)]
    pub key: String,
    /// PEM certificates of a private CA trusted for an https:// --url, in
    /// addition to the public web PKI roots compiled in.
    #[arg(long, value_name = "FILE", env = "AUDITLOG_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Start after this seq (default: with the next event stored).
    #[arg(long)]
    pub after_seq: Option<u64>,
    /// `jsonl`: each event as the API returns it, one per line; `table`:
    /// time, seq, event type, action, user, entity and project.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "table"])]
    pub format: String,
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
    /// RFC 3339 instant, inclusive (the event's `time`).
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 instant, inclusive (the event's `time`).
    #[arg(long)]
    pub to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(args: &[&str]) -> bool {
        command().try_get_matches_from(args).is_ok()
    }

    /// The export page delay is a hook of the debug builds that tests run;
    /// the release binary refuses it as an unknown flag.
    #[test]
    fn the_test_page_delay_exists_only_with_debug_assertions() {
        let with_delay = ["auditlog", "serve", "--export-test-page-delay-ms", "5"];
        assert_eq!(parses(&with_delay), cfg!(debug_assertions));
        assert!(parses(&["auditlog", "serve"]));
    }
}
