//! Connection settings and migrations. Migrations are only ever added, never
//! edited: a store created by an older version upgrades in place.

use rusqlite::Connection;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_tree.sql")),
    (3, include_str!("../migrations/0003_exports.sql")),
    (4, include_str!("../migrations/0004_sessions.sql")),
    (5, include_str!("../migrations/0005_rollups.sql")),
    (6, include_str!("../migrations/0006_leaf_v2.sql")),
    (7, include_str!("../migrations/0007_leaf_compression.sql")),
    (8, include_str!("../migrations/0008_streams.sql")),
    (9, include_str!("../migrations/0009_personal_objects.sql")),
    // 0010 is taken by the storage layout (another branch).
    (11, include_str!("../migrations/0011_root_log.sql")),
];

/// Settings every connection needs: WAL so that readers never block the
/// writer, synchronous=FULL so that a commit survives power loss and kill -9,
/// and a busy timeout so that CLI commands can write while a server runs.
/// The page cache is the writer's when `writer` is set, a reader's otherwise.
pub fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let cache_kib = if writer {
        WRITER_CACHE_KIB
    } else {
        READER_CACHE_KIB
    };
    conn.pragma_update(None, "cache_size", -cache_kib)?;
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

/// The writer's page cache: every append touches pages of ten indexes,
/// several of them random-keyed, so it gains most from a large cache.
pub const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Each pooled reader's page cache. Readers walk one index range per query
/// and the operating system caches the file anyway; a small cache each
/// bounds the process's memory by the pool size (the soak in BENCHMARKS.md
/// grew to 800 MiB with 62.5 MiB per reader), not by how long it has run.
pub const READER_CACHE_KIB: i64 = 8 * 1024;

/// Applies the migrations this store lacks, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
                [version],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
