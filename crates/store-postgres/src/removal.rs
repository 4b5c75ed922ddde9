//! [`Removals`] on PostgreSQL (migration 0011): a body leaves only through
//! `auditlog_remove_body`, the SECURITY DEFINER function the service role
//! may execute (it has no DELETE grant), whose tombstone, deletions and the
//! triggers they fire check the covering record in the same transaction
//! (see `auditlog_store::removal`).

use crate::sql::pg_error;
use crate::tombstones;
use crate::PgStore;
use async_trait::async_trait;
use auditlog_core::coverage::SeqRange;
use auditlog_store::{
    AccountId, RemovalKind, Removals, RemovedBody, Result, SpaceReport, Tombstone,
};

/// The tables a removal deletes rows from (`auditlog_remove_body`).
const BODY_TABLES: &str = "event_log, event_personal";

impl PgStore {
    /// The database's size on disk (every table, index and TOAST file).
    async fn database_bytes(&self) -> Result<Option<u64>> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map_err(pg_error)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).ok())
    }

    /// Runs `VACUUM` with `options` on the body tables. A role that does
    /// not own them gets a warning and nothing is done (autovacuum still
    /// runs), which is no error here.
    async fn vacuum_bodies(&self, options: &str) -> Result<SpaceReport> {
        let bytes_before = self.database_bytes().await?;
        let client = self.client().await?;
        // VACUUM cannot run inside a transaction: a simple query of its own.
        client
            .batch_execute(&format!("VACUUM ({options}) {BODY_TABLES}"))
            .await
            .map_err(pg_error)?;
        Ok(SpaceReport {
            bytes_before,
            bytes_after: self.database_bytes().await?,
            incremental: true,
        })
    }
}

#[async_trait]
impl Removals for PgStore {
    async fn add_coverage(
        &self,
        account: AccountId,
        record_seq: u64,
        ranges: &[SeqRange],
    ) -> Result<()> {
        let client = self.client().await?;
        let firsts: Vec<i64> = ranges.iter().map(|r| r.first as i64).collect();
        let lasts: Vec<i64> = ranges.iter().map(|r| r.last as i64).collect();
        client
            .execute(
                "INSERT INTO removal_coverage (account_id, record_seq, first_seq, last_seq) \
                 SELECT $1, $2, f, l FROM unnest($3::bigint[], $4::bigint[]) AS t(f, l) \
                 ON CONFLICT DO NOTHING",
                &[&account, &(record_seq as i64), &firsts, &lasts],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn coverage_records(&self, account: AccountId) -> Result<Vec<u64>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT record_seq FROM removal_coverage WHERE account_id = $1 ORDER BY record_seq",
                &[&account],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    async fn remove_bodies(
        &self,
        account: AccountId,
        record_seq: u64,
        kind: RemovalKind,
        events: &[RemovedBody],
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let seqs: Vec<i64> = events.iter().map(|e| e.seq as i64).collect();
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        let tx = client.transaction().await.map_err(pg_error)?;
        // The account's sequencer first, as an append locks it before it
        // touches a rollup row: each removed event subtracts from its rollup
        // rows (migration 0022's trigger) in seq order, a group commit adds
        // to them in key order, and without this lock the two could each
        // hold a row the other waits for (a deadlock, which fails the
        // group's requests with 503). With it, removals and appends of one
        // account take their turns; other accounts' appends go on.
        tx.execute(
            "SELECT 1 FROM account_sequencers WHERE account_id = $1 FOR UPDATE",
            &[&account],
        )
        .await
        .map_err(pg_error)?;
        let rows = tx
            .query(
                "SELECT auditlog_remove_body($1, s, e, $4, $5) \
                 FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS t(s, e, n) ORDER BY n",
                &[&account, &seqs, &ids, &(record_seq as i64), &kind.as_str()],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(rows.iter().filter(|r| r.get::<_, bool>(0)).count() as u64)
    }

    async fn reclaim_space(&self) -> Result<SpaceReport> {
        self.vacuum_bodies("ANALYZE").await
    }

    async fn compact(&self) -> Result<SpaceReport> {
        self.vacuum_bodies("FULL, ANALYZE").await
    }

    async fn tombstone(&self, account: AccountId, id: &str) -> Result<Option<Tombstone>> {
        let client = self.client().await?;
        let found = tombstones::find_tombstones(&**client, account, &[id.to_string()]).await?;
        Ok(found.into_iter().next().map(|(_, t)| t))
    }

    async fn removed_count(&self, account: AccountId) -> Result<u64> {
        let client = self.client().await?;
        tombstones::removed_count(&**client, account).await
    }

    async fn removed_under(
        &self,
        account: AccountId,
        record_seq: u64,
        range: SeqRange,
    ) -> Result<u64> {
        let client = self.client().await?;
        tombstones::removed_under(&**client, account, record_seq, range).await
    }
}
