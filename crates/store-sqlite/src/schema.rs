//! Connection settings (the migrations are `migrate`'s).

use rusqlite::Connection;

/// Settings every connection needs: WAL so that readers never block the
/// writer, synchronous=FULL so that a commit survives power loss and kill -9,
/// and a busy timeout so that CLI commands can write while a server runs.
/// The page cache is the writer's when `writer` is set, a reader's otherwise.
pub fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten with zeros, in the database and its
    // WAL, whichever connection deletes or moves it: an erasure (issue 16)
    // must leave no erased byte in free space (docs/ERASURE.md).
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Only the checkpointer copies the WAL into the database
    // (`checkpointer.rs`; every process that opens the store runs one, and
    // its periodic pass copies what other connections commit). With SQLite's
    // automatic checkpoints on, any connection's commit copies the whole WAL
    // once it holds 1,000 pages: the pooled connections' small writes
    // (signed checkpoints, sessions) did, on request threads and inside the
    // write gate, and a 1M-event load wrote 14 % more bytes (BENCHMARKS.md,
    // "Automatic checkpoints on pooled connections").
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let cache_kib = if writer {
        WRITER_CACHE_KIB
    } else {
        READER_CACHE_KIB
    };
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    // Queries are built per filter (`query.rs`), so one request can use a
    // dozen statements and a mix of filters many more: rusqlite's default of
    // 16 cached statements made first pages prepare their SQL again (7 % of
    // a first page's CPU, BENCHMARKS.md "First pages").
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans must not depend on bound values: a statement whose plan reads a
    // bound value (`LIMIT ?`, a partial index's condition) expires when it is
    // bound again, so every cached page statement was compiled again on its
    // first step (`sqlite3Reprepare`, 6 % of a first page's CPU). The
    // planner's choices stay what the `EXPLAIN QUERY PLAN` tests check.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    if writer {
        // An INSERT that fires a trigger or may fail a constraint midway
        // keeps a statement journal, a temporary file by default: a quarter
        // of the writer's time went to writing it (BENCHMARKS.md, "The
        // statement journal"). It holds one statement's pages and is never
        // needed after a crash (the WAL is), so memory is the right place.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    Ok(())
}

/// Makes a new file free its pages incrementally (`auto_vacuum =
/// INCREMENTAL`), so that the pruner can give the space of removed bodies
/// back to the file system in small steps (`Removals::reclaim_space`). It
/// can only be chosen before the first table is created: a file created
/// without it is converted once by `auditlog retention vacuum` (a full
/// `VACUUM`, see docs/RETENTION.md "Space"). A no-op on a file with tables.
/// It must run before [`configure`]: switching the journal to WAL writes
/// the new file's header, which fixes the vacuum mode.
pub fn incremental_vacuum_if_new(conn: &Connection) -> rusqlite::Result<()> {
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    Ok(())
}

/// Prepared statements kept per connection (each a few KiB).
pub const STATEMENT_CACHE: usize = 256;

/// The writer's page cache: every append touches pages of six indexes, two
/// of them random-keyed (event ids, targets), so it gains most from a large
/// cache.
pub const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Each pooled reader's page cache. Readers walk one index range per query
/// and the operating system caches the file anyway; a small cache each
/// bounds the process's memory by the pool size (the soak in BENCHMARKS.md
/// grew to 800 MiB with 62.5 MiB per reader), not by how long it has run.
pub const READER_CACHE_KIB: i64 = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_frees_pages_incrementally_and_an_old_one_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let new = Connection::open(dir.path().join("new.db")).unwrap();
        incremental_vacuum_if_new(&new).unwrap();
        configure(&new, true).unwrap();
        new.execute_batch("CREATE TABLE t (x)").unwrap();
        let mode: i64 = new
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "INCREMENTAL");

        let old = Connection::open(dir.path().join("old.db")).unwrap();
        configure(&old, true).unwrap();
        old.execute_batch("CREATE TABLE t (x)").unwrap();
        incremental_vacuum_if_new(&old).unwrap();
        let mode: i64 = old
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 0, "NONE until converted by a VACUUM");
    }

    /// A small write on a second connection, with more than SQLite's
    /// automatic threshold (1,000 pages) in the WAL, leaves the WAL to the
    /// checkpointer: the database file does not grow.
    #[test]
    fn no_connection_checkpoints_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        configure(&writer, true).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v BLOB); CREATE TABLE s (v INTEGER)")
            .unwrap();
        let pooled = Connection::open(&path).unwrap();
        configure(&pooled, false).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        writer
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) \
                 INSERT INTO t SELECT zeroblob(4000) FROM n",
            )
            .unwrap();
        for connection in [&pooled, &writer] {
            connection.execute("INSERT INTO s VALUES (1)", []).unwrap();
        }
        let after = std::fs::metadata(&path).unwrap().len();
        assert_eq!(after, before, "no commit copied the WAL into the database");
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len();
        assert!(wal > 1_500 * 4_096, "the pages are in the WAL: {wal} bytes");
    }

    #[test]
    fn readers_get_the_small_page_cache_and_the_writer_the_large_one() {
        let dir = tempfile::tempdir().unwrap();
        for (writer, kib) in [(false, READER_CACHE_KIB), (true, WRITER_CACHE_KIB)] {
            let conn = Connection::open(dir.path().join("t.db")).unwrap();
            configure(&conn, writer).unwrap();
            let cache: i64 = conn
                .pragma_query_value(None, "cache_size", |r| r.get(0))
                .unwrap();
            assert_eq!(cache, -kib, "writer={writer}");
        }
    }
}
