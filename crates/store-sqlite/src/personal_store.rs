//! The writer's side of personal values (migration 0009): each distinct
//! personal object (the canonical JSON a v2 leaf's `personal` commitment is
//! of: actor, IP, user agent) stored once per account, and per event only
//! its openings and a reference, and each object's count of uses (migration
//! 0027). Readers rebuild the stored form (`personal_rows`,
//! `sql::personal_of_log_row!`) byte for byte.

use crate::sql::sql_error;
use auditlog_core::leaf;
use auditlog_store::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Distinct objects remembered by the writer; past this it asks the database.
const REMEMBERED: usize = 100_000;

/// The three canonical JSON pieces of stored personal values, borrowed.
#[derive(Deserialize)]
struct Pieces<'a> {
    #[serde(borrow)]
    details: &'a RawValue,
    #[serde(borrow)]
    openings: &'a RawValue,
    #[serde(borrow)]
    personal: &'a RawValue,
}

#[derive(Default)]
pub(crate) struct PersonalStore {
    ids: HashMap<(i64, [u8; 32]), i64>,
    /// The group's new uses of each object, not yet in `object_uses`.
    uses: HashMap<i64, i64>,
}

impl PersonalStore {
    /// After a rolled-back transaction: the objects it added are gone, and
    /// the uses it counted.
    pub(crate) fn forget(&mut self) {
        self.ids.clear();
        self.uses.clear();
    }

    /// Adds the uses counted since the last call to `object_uses`
    /// (migration 0027), in the group's transaction before it commits: once
    /// per object, after every event's statements. Each statement changes
    /// one row and fires no trigger, so it opens no statement transaction
    /// (at which FTS5 would flush its pending terms: BENCHMARKS.md, "A count
    /// of uses per personal object").
    pub(crate) fn write_uses(&mut self, tx: &Connection) -> Result<()> {
        let mut add = tx
            .prepare_cached("UPDATE object_uses SET uses = uses + ?2 WHERE object_id = ?1")
            .map_err(sql_error)?;
        let mut first = tx
            .prepare_cached("INSERT INTO object_uses (object_id, uses) VALUES (?1, ?2)")
            .map_err(sql_error)?;
        for (object_id, uses) in self.uses.drain() {
            if add.execute(params![object_id, uses]).map_err(sql_error)? == 0 {
                first.execute(params![object_id, uses]).map_err(sql_error)?;
            }
        }
        Ok(())
    }

    /// Stores the personal values of event `seq` (as `leaf_v2` sealed them).
    pub(crate) fn insert(
        &mut self,
        tx: &Connection,
        account_id: i64,
        seq: u64,
        personal: &[u8],
    ) -> Result<()> {
        let pieces: Pieces<'_> = serde_json::from_slice(personal).map_err(|e| {
            StoreError::internal_caused_by("sealed personal values are not in their form", e)
        })?;
        // The reader rebuilds exactly this; a sealing that ever wrote another
        // form must fail here, not come back different.
        let rebuilt = rebuild(
            pieces.details.get(),
            pieces.openings.get(),
            pieces.personal.get(),
        );
        if rebuilt.as_bytes() != personal {
            return Err(StoreError::internal(
                "sealed personal values are not canonical: they would not read back the same",
            ));
        }
        let object = pieces.personal.get().as_bytes();
        let object_id = self.object_id(tx, account_id, object)?;
        let details = (pieces.details.get() != "{}").then(|| pieces.details.get().as_bytes());
        tx.prepare_cached(
            "INSERT INTO event_openings (account_id, seq, openings, object_id, details) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_error)?
        .execute(params![
            account_id,
            seq as i64,
            pieces.openings.get().as_bytes(),
            object_id,
            details
        ])
        .map_err(sql_error)?;
        *self.uses.entry(object_id).or_default() += 1;
        Ok(())
    }

    fn object_id(&mut self, tx: &Connection, account_id: i64, object: &[u8]) -> Result<i64> {
        let digest = leaf::leaf_hash(object);
        if let Some(id) = self.ids.get(&(account_id, digest)) {
            return Ok(*id);
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM personal_objects WHERE account_id = ?1 AND digest = ?2")
            .map_err(sql_error)?
            .query_row(params![account_id, &digest[..]], |r| r.get(0))
            .optional()
            .map_err(sql_error)?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO personal_objects (account_id, digest, object) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql_error)?
                .execute(params![account_id, &digest[..], object])
                .map_err(sql_error)?;
                tx.last_insert_rowid()
            }
        };
        if self.ids.len() >= REMEMBERED {
            self.ids.clear();
        }
        self.ids.insert((account_id, digest), id);
        Ok(id)
    }
}

/// The stored form from its pieces: what `sql::personal_of_events_row!`
/// does in SQL (members in sorted order, as canonical JSON has them).
fn rebuild(details: &str, openings: &str, personal: &str) -> String {
    format!("{{\"details\":{details},\"openings\":{openings},\"personal\":{personal}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::leaf_v2::{seal, OsSalts, Source};
    use auditlog_core::{NewEvent, StoredEvent, Taxonomy, Timestamp};
    use serde_json::json;

    #[test]
    fn sealed_personal_values_rebuild_byte_for_byte() {
        let now = Timestamp::now();
        for body in [
            json!({"event_type": "Element", "action": "Create", "actor": {"id": "u-\u{e9}\"1", "name": "Zo\u{eb}", "email": "z@x.io"},
                   "context": {"ip": "::1", "user_agent": "Mozilla/5.0 \\ (X11)"}}),
            json!({"event_type": "Element", "action": "Create", "actor": {"id": "u"}}),
        ] {
            let event = StoredEvent::new(
                "acme",
                1,
                now,
                NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
            );
            let sealed = seal(&event, &Source::System, &[], &mut OsSalts).unwrap();
            let pieces: Pieces<'_> = serde_json::from_slice(&sealed.personal).unwrap();
            assert_eq!(
                rebuild(
                    pieces.details.get(),
                    pieces.openings.get(),
                    pieces.personal.get()
                )
                .as_bytes(),
                &sealed.personal[..]
            );
        }
    }
}
