//! `auditlog`: one binary for the server and the operator's commands. The
//! storage backend is picked once, in `commands`, and everything else works
//! against the storage traits.
//!
//! # Layout
//!
//! - This root: `main`, loading the configuration and setting up logging.
//! - `config`: every setting defined once, layered defaults → TOML file →
//!   `AUDITLOG_*` variables → flags; `cli`: the commands and their flags.
//! - `commands`: runs `serve` (with graceful shutdown) or the command asked
//!   for; `backend`: picks the storage backend, once.
//! - `admin`: accounts, API keys and console users, for the commands and
//!   the demo data; `demo`: deterministic sample data.
//! - `export`, `search`, `verify`, `copy`: those commands; `retention`:
//!   `auditlog retention` and `auditlog hold`.
//! - `send`: a client of the API that loads a file of JSON Lines events.
//! - `witness`: `auditlog witness`, a C2SP witness for other logs.
//! - `monitor`: `auditlog monitor`, a customer's check that the log only grows.
//! - `error`: what every command returns.

mod admin;
mod backend;
mod cli;
mod commands;
mod config;
mod copy;
mod demo;
mod erase;
mod error;
mod export;
mod https;
mod monitor;
mod retention;
mod search;
mod send;
mod tail;
mod verify;
mod witness;

use config::{Config, LogFormat};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

/// glibc's `malloc` and `free` were about 13 % of the event writer's samples
/// (BENCHMARKS.md, "A count of uses per personal object"); with mimalloc a
/// 1M-event ingest ran 17 % faster (BENCHMARKS.md, "mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cap_allocator_arenas();
    let (cli, flags) = cli::parse();
    let loaded = match load_configuration(cli.config.as_deref(), &flags) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli, &loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the message, then each cause after a colon.
            eprintln!("error: {e:#}");
            // `send` finished, but with rejected lines: not the same as stopped.
            if e.downcast_ref::<send::LinesRejected>().is_some() {
                ExitCode::from(2)
            } else if e.downcast_ref::<monitor::Alarm>().is_some() {
                // Evidence against the log, not a failure to check it.
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// glibc gives every thread that allocates under contention an arena of
/// its own (up to 8 per core) and keeps freed memory in it. SQLite reads run
/// on Tokio's blocking threads, which come and go, so a long-running server
/// kept growing: the soak in BENCHMARKS.md ended at 576 MiB with the default
/// and 167 MiB with two arenas, at the same latencies. Rust's allocations
/// now go to mimalloc ([`ALLOCATOR`]), but SQLite's and zstd's C code still
/// allocates with glibc's `malloc`, on those same threads, so the cap
/// stays. Done before any thread starts; other C libraries (musl) have no
/// arenas to cap.
#[allow(
    unsafe_code,
    reason = "mallopt is a C function, so calling it is unsafe; the workspace denies unsafe code elsewhere"
)]
fn cap_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists, and a refusal (0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Loads the configuration from its layers and sets up logging from it.
fn load_configuration(
    flag_file: Option<&std::path::Path>,
    flags: &cli::SettingFlags,
) -> anyhow::Result<config::Loaded> {
    let env = environment()?;
    let file = config::file_to_read(flag_file, &env);
    let loaded = config::load(&config::Layers {
        file: file.as_deref(),
        env: &env,
        flags,
    })?;
    init_logging(&loaded.config);
    for variable in config::unknown_variables(&env) {
        tracing::warn!(
            variable,
            "ignoring an AUDITLOG_ variable that is no setting"
        );
    }
    Ok(loaded)
}

/// The environment variables the configuration may read: every
/// `AUDITLOG_*` one and the settings' fallbacks (`RUST_LOG`). A value that
/// is not UTF-8 is an error rather than silently ignored.
fn environment() -> anyhow::Result<BTreeMap<String, String>> {
    let wanted = |name: &str| {
        name.starts_with("AUDITLOG_")
            || config::SETTINGS
                .iter()
                .any(|setting| setting.env_fallbacks.contains(&name))
    };
    let mut env = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|name| wanted(name)) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| anyhow::anyhow!("the environment variable {name} is not valid UTF-8"))?;
        env.insert(name.to_string(), value);
    }
    Ok(env)
}

/// Log lines go to standard error (standard output is the commands'
/// answer): readable text, coloured on a terminal, or JSON lines. Lines
/// written while serving a request carry its `request_id` (the `request`
/// span of `auditlog_server::request_id`).
fn init_logging(config: &Config) {
    // The level was checked when the configuration was loaded.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
