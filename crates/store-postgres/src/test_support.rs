//! Fresh PostgreSQL databases for tests, each dropped afterwards.
//!
//! Where the server comes from, in order:
//! 1. `AUDITLOG_TEST_DATABASE_URL`: a server URL (CI sets it); a uniquely
//!    named database is created on it.
//! 2. The local binaries (`/usr/lib/postgresql/*/bin/initdb`, `pg_ctl`): a
//!    throwaway cluster in a temporary directory, listening only on a unix
//!    socket inside it, shared by the tests of one process and stopped when
//!    the last of their databases is dropped. `initdb` refuses to run as
//!    root, so as root it runs as the `postgres` user through `runuser`.
//! 3. Neither: [`TestDatabase::create`] prints that the PostgreSQL tests
//!    were skipped and returns `None`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The variable naming a server on which test databases are created.
pub const TEST_DATABASE_URL: &str = "AUDITLOG_TEST_DATABASE_URL";

/// A database that exists for one test and is dropped with this value.
pub struct TestDatabase {
    /// Connects to the fresh database.
    pub url: String,
    name: String,
    server_url: String,
    _cluster: Option<Arc<Cluster>>,
}

impl TestDatabase {
    /// Creates a fresh database, or prints why PostgreSQL tests are skipped
    /// and returns `None`. Panics when a server should be there but fails.
    pub fn create(test: &str) -> Option<Self> {
        let (server_url, cluster) = match std::env::var(TEST_DATABASE_URL) {
            Ok(url) if !url.is_empty() => (url, None),
            _ => match local_binaries() {
                Some(bin) => {
                    let cluster = shared_cluster(&bin);
                    (cluster.url.clone(), Some(cluster))
                }
                None => {
                    eprintln!(
                        "SKIPPED PostgreSQL test {test}: {TEST_DATABASE_URL} is not set and no \
                         PostgreSQL binaries were found under /usr/lib/postgresql/*/bin"
                    );
                    return None;
                }
            },
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "auditlog_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run_admin(&server_url, &format!("CREATE DATABASE {name}"));
        Some(Self {
            url: with_database(&server_url, &name),
            name,
            server_url,
            _cluster: cluster,
        })
    }
}

impl TestDatabase {
    /// The database's name, unique on its server.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl TestDatabase {
    /// Begins a transaction in the server's own database (not this test's)
    /// and gives it a transaction id: a busy neighbour database on the same
    /// cluster, whose running write every snapshot's xmin includes. It
    /// stays open until [`TransactionElsewhere::commit`].
    pub async fn open_transaction_elsewhere(&self) -> TransactionElsewhere {
        let (client, connection) =
            match tokio_postgres::connect(&self.server_url, tokio_postgres::NoTls).await {
                Ok(pair) => pair,
                Err(e) => panic!("test database: cannot connect to {}: {e}", self.server_url),
            };
        let driver = tokio::spawn(connection);
        if let Err(e) = client.batch_execute("BEGIN; SELECT txid_current()").await {
            panic!("test database: cannot begin a transaction elsewhere: {e}");
        }
        TransactionElsewhere {
            client,
            _driver: driver,
        }
    }
}

/// A transaction open in another database of the test server
/// ([`TestDatabase::open_transaction_elsewhere`]).
pub struct TransactionElsewhere {
    client: tokio_postgres::Client,
    _driver: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl TransactionElsewhere {
    /// Commits it, ending its transaction id.
    pub async fn commit(self) {
        if let Err(e) = self.client.batch_execute("COMMIT").await {
            panic!("test database: cannot commit the transaction elsewhere: {e}");
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE ends connections a test left open (a killed server's, a pool's).
        run_admin(
            &self.server_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Why an administrative statement (creating or dropping a test database) failed.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("cannot start a runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        cause: tokio_postgres::Error,
    },
    #[error("{sql}")]
    Statement {
        sql: String,
        #[source]
        cause: tokio_postgres::Error,
    },
}

/// Runs one statement on the server, on a thread of its own so that it works
/// from inside and outside a Tokio runtime (and from `Drop`).
fn run_admin(server_url: &str, sql: &str) {
    let (url, sql) = (server_url.to_string(), sql.to_string());
    let outcome = std::thread::spawn(move || -> Result<(), AdminError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AdminError::Runtime)?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|cause| AdminError::Connect { url, cause })?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute(&sql)
                .await
                .map_err(|cause| AdminError::Statement { sql, cause })?;
            drop(client);
            let _ = driver.await;
            Ok(())
        })
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test database: {}", auditlog_core::ErrorChain(&e)),
        Err(_) => panic!("test database: the admin thread panicked"),
    }
}

/// `url` connecting as `user` (without a password) instead.
pub fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = match rest.split_once('@') {
        Some((_, host)) => host,
        None => rest,
    };
    format!("{scheme}://{user}@{host}")
}

/// `url` with its database replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = location.split('/').next().unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}

/// The newest installed PostgreSQL's bin directory, if any.
fn local_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A throwaway cluster; stopped, and its directory removed, when dropped.
struct Cluster {
    url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

/// The cluster the tests of this process share while any of them runs.
fn shared_cluster(bin: &Path) -> Arc<Cluster> {
    static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(Cluster::start(bin));
    *shared = Arc::downgrade(&cluster);
    cluster
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    fn start(bin: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("auditlog-pg-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a directory for PostgreSQL: {e}"));
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(54329);
        let cluster = Self {
            url: format!(
                "postgres://postgres@{}:{port}/postgres",
                encode_path(dir.path())
            ),
            pg_ctl: bin.join("pg_ctl"),
            data: data.clone(),
            as_postgres,
            _dir: dir,
        };
        let initdb = bin.join("initdb");
        run(cluster
            .command(&initdb)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data));
        // Only a unix socket in the temporary directory: nothing to collide with.
        let options = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=off -c max_connections=200",
            cluster._dir.path().display()
        );
        run(cluster
            .command(&cluster.pg_ctl)
            .args(["-w", "-s", "-D"])
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(cluster._dir.path().join("server.log"))
            .arg("start"));
        cluster
    }

    /// `program`, run as the postgres user when we are root.
    fn command(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command(&self.pg_ctl)
            .args(["-s", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A socket directory as a URL host: percent-encoded, so that it has no '/'.
fn encode_path(path: &Path) -> String {
    path.display()
        .to_string()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
