//! Migrations, only ever added, never edited: a store created by an older
//! version upgrades in place, each migration in its own transaction.

use crate::layout_migration;
use crate::sql::sql_error;
use crate::word_blocks;
use crate::word_index;
use auditlog_store::Result;
use rusqlite::Connection;

/// What one migration runs.
enum Step {
    /// A SQL script.
    Sql(&'static str),
    /// Rust code (with SQL scripts of its own) in the migration's transaction.
    Code(fn(&Connection) -> Result<()>),
}

const MIGRATIONS: &[(i64, Step)] = &[
    (1, Step::Sql(include_str!("../migrations/0001_init.sql"))),
    (2, Step::Sql(include_str!("../migrations/0002_tree.sql"))),
    (3, Step::Sql(include_str!("../migrations/0003_exports.sql"))),
    (
        4,
        Step::Sql(include_str!("../migrations/0004_sessions.sql")),
    ),
    (5, Step::Sql(include_str!("../migrations/0005_rollups.sql"))),
    (6, Step::Sql(include_str!("../migrations/0006_leaf_v2.sql"))),
    (
        7,
        Step::Sql(include_str!("../migrations/0007_leaf_compression.sql")),
    ),
    (8, Step::Sql(include_str!("../migrations/0008_streams.sql"))),
    (
        9,
        Step::Sql(include_str!("../migrations/0009_personal_objects.sql")),
    ),
    // The event log (0010_event_log.sql, then 0010_event_log_finish.sql).
    (10, Step::Code(layout_migration::migrate)),
    // The root log of checkpoints (issue 17).
    (
        11,
        Step::Sql(include_str!("../migrations/0011_root_log.sql")),
    ),
    // Retention, legal holds and removed bodies (issue 16).
    (
        12,
        Step::Sql(include_str!("../migrations/0012_retention.sql")),
    ),
    // Named API keys with expiry and revocation (issue 18).
    (
        13,
        Step::Sql(include_str!("../migrations/0013_api_keys.sql")),
    ),
    // The full-text index of search (issue 14), built for the events stored.
    (14, Step::Code(word_index::migrate)),
    // Erasure: erased events, erasure jobs (issue 16).
    (
        15,
        Step::Sql(include_str!("../migrations/0015_erasure.sql")),
    ),
    // Console users: disabling, sign-in links, the login hash key (issue 18).
    (17, Step::Sql(include_str!("../migrations/0017_users.sql"))),
    // Two-factor sign-in: sealed TOTP secrets, recovery codes, the
    // account's requirement (issue 18).
    (
        18,
        Step::Sql(include_str!("../migrations/0018_two_factor.sql")),
    ),
    // The account's declared personal details paths (issue 16).
    (
        19,
        Step::Sql(include_str!("../migrations/0019_personal_paths.sql")),
    ),
    // Log streams' per-kind options and TLS client keys (issue 15).
    (
        20,
        Step::Sql(include_str!("../migrations/0020_stream_options.sql")),
    ),
    // An erasure's several records, when its coverage outgrows one (issue 16).
    (
        21,
        Step::Sql(include_str!("../migrations/0021_erasure_records.sql")),
    ),
    // Log streams' progress epoch: their progress lives in a side
    // database, `stream-progress.db` (issue 15).
    (
        22,
        Step::Sql(include_str!("../migrations/0022_stream_progress_epoch.sql")),
    ),
    // Per-day counts by actor, for `user` counts and histograms (issue 14).
    (
        23,
        Step::Sql(include_str!("../migrations/0023_actor_rollups.sql")),
    ),
    // The block time summary that free text counts and pages read (issue
    // 14); its rows are built by migration 0026, with their kinds.
    (
        24,
        Step::Sql(include_str!("../migrations/0024_word_blocks.sql")),
    ),
    // Per-day counts by actor and kind, for `user` with `type` and
    // `action` (issue 14).
    (
        25,
        Step::Sql(include_str!("../migrations/0025_actor_kind_rollups.sql")),
    ),
    // The kinds of each block's events, for free text with `type` and
    // `action` (issue 14); the block summary built from the events stored.
    (26, Step::Code(word_blocks::migrate)),
    // A count of each personal object's uses in place of an index entry
    // per event (issue 12: 13 % of ingest's WAL frames).
    (
        27,
        Step::Sql(include_str!("../migrations/0027_object_uses.sql")),
    ),
    // A count of deleted personal objects, so that readers may keep
    // objects across transactions (issue 12: export speed).
    (
        28,
        Step::Sql(include_str!(
            "../migrations/0028_personal_object_deletions.sql"
        )),
    ),
];

/// The highest migration this build knows.
#[cfg(test)]
pub const LATEST: i64 = 28;

/// Applies the migrations this store lacks, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, i64::MAX)
}

/// Applies the migrations up to `last` (tests build stores of older
/// versions with it).
pub fn migrate_to(conn: &mut Connection, last: i64) -> Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .map_err(sql_error)?;
    for (version, step) in MIGRATIONS.iter().filter(|(v, _)| *v <= last) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let applied: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        if !applied {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql).map_err(sql_error)?,
                Step::Code(run) => run(&tx)?,
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
                [version],
            )
            .map_err(sql_error)?;
        }
        tx.commit().map_err(sql_error)?;
    }
    Ok(())
}
