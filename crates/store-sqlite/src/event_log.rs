//! The ids the event log's rows hold instead of text (migration 0010; the
//! row key itself is `log_key`'s): event type
//! and action, and project, app and version, are ids of `log_values`; the
//! actor is an id of `actors`. [`LogIds`] finds or adds those ids for the
//! writer and the migration, remembering them across group commits.

use crate::sql::sql_error;
use auditlog_core::event::Actor;
pub(crate) use auditlog_store::log_key::{account_keys, bound_key, log_key, seq_of};
use auditlog_store::Result;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

/// `log_values.kind` of an event type and action.
pub(crate) const KIND_EVENT: i64 = 1;
/// `log_values.kind` of a project, app and version.
pub(crate) const KIND_PLACE: i64 = 2;

/// The account's highest seq (its tree size), 0 when it has no event.
pub(crate) fn last_seq(conn: &Connection, account: i64) -> Result<u64> {
    let (first, last) = account_keys(account);
    let max: Option<i64> = conn
        .prepare_cached("SELECT MAX(key) FROM event_log WHERE key BETWEEN ?1 AND ?2")
        .map_err(sql_error)?
        .query_row(params![first, last], |r| r.get(0))
        .map_err(sql_error)?;
    Ok(max.map_or(0, seq_of))
}

/// The `log_values` text of an event type and action.
pub(crate) fn event_value(event_type: &str, action: &str) -> String {
    serde_json::json!([event_type, action]).to_string()
}

/// The `log_values` text of a project, app and version; `None` when the
/// event has none of them.
pub(crate) fn place_value(
    project: Option<&str>,
    app: Option<&str>,
    version: Option<&str>,
) -> Option<String> {
    if project.is_none() && app.is_none() && version.is_none() {
        return None;
    }
    Some(serde_json::json!([project, app, version]).to_string())
}

/// The texts of a `log_values` value (`None` for a `null`), or `None` when
/// it is not the JSON array of texts it must be (an edited store).
pub(crate) fn value_parts(value: &str) -> Option<Vec<Option<String>>> {
    serde_json::from_str(value).ok()
}

/// Ids remembered per account before the cache starts over.
const REMEMBERED: usize = 100_000;

/// An actor as the writer last stored it.
struct KnownActor {
    id: i64,
    name: Option<String>,
    email: Option<String>,
}

/// The writer's (and the migration's) ids of values and actors, read from
/// or added to the database inside its transaction.
#[derive(Default)]
pub(crate) struct LogIds {
    values: HashMap<(i64, i64), HashMap<String, i64>>,
    actors: HashMap<i64, HashMap<String, KnownActor>>,
    remembered: usize,
}

impl LogIds {
    /// After a rolled-back transaction: the ids it added are gone.
    pub(crate) fn forget(&mut self) {
        *self = Self::default();
    }

    fn remember_one(&mut self) {
        self.remembered += 1;
        if self.remembered > REMEMBERED {
            self.forget();
            self.remembered = 1;
        }
    }

    /// The id of `value` of `kind` in `account`, added if new.
    pub(crate) fn value_id(
        &mut self,
        tx: &Connection,
        account: i64,
        kind: i64,
        value: &str,
    ) -> Result<i64> {
        if let Some(id) = self
            .values
            .get(&(account, kind))
            .and_then(|known| known.get(value))
        {
            return Ok(*id);
        }
        let found: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM log_values WHERE account_id = ?1 AND kind = ?2 AND value = ?3",
            )
            .map_err(sql_error)?
            .query_row(params![account, kind, value], |r| r.get(0))
            .optional()
            .map_err(sql_error)?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO log_values (account_id, kind, value) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql_error)?
                .execute(params![account, kind, value])
                .map_err(sql_error)?;
                tx.last_insert_rowid()
            }
        };
        self.remember_one();
        self.values
            .entry((account, kind))
            .or_default()
            .insert(value.to_string(), id);
        Ok(id)
    }

    /// The id of `actor` in `account`, added if new. With `latest`, the
    /// actor's name and email become this event's (the console lists an
    /// actor as its latest event names it); the migration, which copies the
    /// names kept before, passes false.
    pub(crate) fn actor_id(
        &mut self,
        tx: &Connection,
        account: i64,
        actor: &Actor,
        latest: bool,
    ) -> Result<i64> {
        let (name, email) = (actor.name.as_deref(), actor.email.as_deref());
        if let Some(known) = self
            .actors
            .get_mut(&account)
            .and_then(|known| known.get_mut(&actor.id))
        {
            if latest && (known.name.as_deref() != name || known.email.as_deref() != email) {
                update_names(tx, known.id, name, email)?;
                known.name = actor.name.clone();
                known.email = actor.email.clone();
            }
            return Ok(known.id);
        }
        let found: Option<(i64, Option<String>, Option<String>)> = tx
            .prepare_cached(
                "SELECT id, name, email FROM actors WHERE account_id = ?1 AND actor_id = ?2",
            )
            .map_err(sql_error)?
            .query_row(params![account, actor.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(sql_error)?;
        let known = match found {
            Some((id, stored_name, stored_email)) => {
                if latest && (stored_name.as_deref() != name || stored_email.as_deref() != email) {
                    update_names(tx, id, name, email)?;
                    KnownActor {
                        id,
                        name: actor.name.clone(),
                        email: actor.email.clone(),
                    }
                } else {
                    KnownActor {
                        id,
                        name: stored_name,
                        email: stored_email,
                    }
                }
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO actors (account_id, actor_id, name, email) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql_error)?
                .execute(params![account, actor.id, name, email])
                .map_err(sql_error)?;
                KnownActor {
                    id: tx.last_insert_rowid(),
                    name: actor.name.clone(),
                    email: actor.email.clone(),
                }
            }
        };
        let id = known.id;
        self.remember_one();
        self.actors
            .entry(account)
            .or_default()
            .insert(actor.id.clone(), known);
        Ok(id)
    }
}

fn update_names(tx: &Connection, id: i64, name: Option<&str>, email: Option<&str>) -> Result<()> {
    tx.prepare_cached("UPDATE actors SET name = ?2, email = ?3 WHERE id = ?1")
        .map_err(sql_error)?
        .execute(params![id, name, email])
        .map_err(sql_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_arrays_that_read_back() {
        assert_eq!(
            event_value("Test Case", "Update"),
            r#"["Test Case","Update"]"#
        );
        assert_eq!(place_value(None, None, None), None);
        let place = place_value(Some("Check\"out"), None, Some("2.3")).unwrap();
        assert_eq!(place, r#"["Check\"out",null,"2.3"]"#);
        assert_eq!(
            value_parts(&place).unwrap(),
            vec![Some("Check\"out".into()), None, Some("2.3".into())]
        );
        assert_eq!(value_parts("not json"), None);
    }
}
