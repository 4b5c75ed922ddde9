//! Migrations, applied at start. Migrations are only ever added, never
//! edited: a database created by an older version upgrades in place.
//!
//! Several servers may start together on one database, so the whole check
//! and apply runs in one transaction that first takes a transaction-level
//! advisory lock: the second server waits, then finds everything applied.

use crate::layout_migration::{self, MigrationError};
use tokio_postgres::Client;

const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_tree.sql")),
    (3, include_str!("../migrations/0003_exports.sql")),
    (4, include_str!("../migrations/0004_sessions.sql")),
    (5, include_str!("../migrations/0005_leaf_v2.sql")),
    (7, include_str!("../migrations/0007_streams.sql")),
    (8, include_str!("../migrations/0008_leaf_compression.sql")),
    (9, include_str!("../migrations/0009_root_log.sql")),
    (10, include_str!("../migrations/0010_event_log.sql")),
    (11, include_str!("../migrations/0011_retention.sql")),
    // Named API keys with expiry and revocation (issue 18).
    (12, include_str!("../migrations/0012_api_keys.sql")),
    // The full-text index (issue 14): then `word_index::backfill` and
    // `0013_event_words_finish.sql` ([`WORDS`]).
    (13, include_str!("../migrations/0013_event_words.sql")),
    // Erasure: erased events, erasure jobs (issue 16).
    (14, include_str!("../migrations/0014_erasure.sql")),
    // Console users: disabling, sign-in links, the login hash key (issue 18).
    (16, include_str!("../migrations/0016_users.sql")),
    // Two-factor sign-in (issue 18).
    (17, include_str!("../migrations/0017_two_factor.sql")),
    (18, include_str!("../migrations/0018_personal_paths.sql")),
    // Log streams' per-kind options and TLS client keys (issue 15).
    (19, include_str!("../migrations/0019_stream_options.sql")),
    // An erasure's several records, when its coverage outgrows one (issue 16).
    (20, include_str!("../migrations/0020_erasure_records.sql")),
    // No value samples of personal columns in `pg_statistic` (issue 16).
    (
        21,
        include_str!("../migrations/0021_no_value_statistics.sql"),
    ),
    // Per-day counts for histograms, kept by triggers (issue 12, `rollups`).
    (22, include_str!("../migrations/0022_rollups.sql")),
    // Their planner statistics at once, not at autovacuum's first visit.
    (
        23,
        include_str!("../migrations/0023_rollups_statistics.sql"),
    ),
    // Per-day counts by actor and kind, kept by triggers (issue 14).
    (
        24,
        include_str!("../migrations/0024_actor_kind_rollups.sql"),
    ),
];

/// The migration that moves the events into the event log: the old table's
/// events are checked first (`layout_migration`).
const EVENT_LOG: i32 = 10;

/// The migration that adds the events' words: the words of the events
/// already stored are written (`word_index::backfill`), then indexed.
const WORDS: i32 = 13;

/// An arbitrary constant naming "auditlog migrations" among advisory locks.
const MIGRATION_LOCK: i64 = 0x6175_6469_746c_6f67; // "auditlog"

/// Applies the migrations this database lacks; returns how many it applied.
pub async fn migrate(client: &mut Client) -> Result<usize, MigrationError> {
    migrate_through(client, i32::MAX).await
}

/// Applies the migrations up to `last` (tests build older databases with it).
pub async fn migrate_through(client: &mut Client, last: i32) -> Result<usize, MigrationError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Checked before creating, so that a role without CREATE (the service
    // role of docs/POSTGRES.md) starts on an up-to-date database.
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        tx.batch_execute(
            "CREATE TABLE schema_migrations (\
             version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    }
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= last) {
        let present = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if !present {
            if *version == EVENT_LOG {
                layout_migration::check_events(&tx).await?;
            }
            tx.batch_execute(sql).await?;
            if *version == WORDS {
                let indexed = crate::word_index::backfill(&tx).await?;
                tx.batch_execute(include_str!("../migrations/0013_event_words_finish.sql"))
                    .await?;
                if indexed > 0 {
                    tracing::info!(indexed, "wrote the search words of the stored events");
                }
            }
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            applied += 1;
        }
    }
    tx.commit().await?;
    Ok(applied)
}

/// How many migrations this build knows.
#[cfg(test)]
pub const MIGRATION_COUNT: usize = MIGRATIONS.len();
