-- Per-day event counts by actor (issue 14), so that `user` filters (the
-- `users` parameter and `q`'s `user` terms, with `time`) count one row per
-- day and actor instead of one `event_log_by_actor` entry per event
-- (BENCHMARKS.md, "Rollups for `user`"). `actor` is the `actors` row id,
-- the integer the log holds: no personal value is stored here. Erasure
-- renames the `actors` row (the subject's id becomes the pseudonym), so a
-- `user` term resolved against `actors` finds these rows by the pseudonym
-- and never by the erased id, and nothing here changes. `day` is
-- floor(time / 86,400,000,000), as in `event_rollups`.
--
-- The writer adds to these counts in the appending transaction
-- (rollups::DayCounts), removal of a body (pruning, erasure of a version 1
-- event) subtracts its event and deletes a row that reaches 0, and an
-- account whose total differs from its stored events is recounted at open
-- (rollups::recount_stale), as for `event_rollups`.
--
-- Key order (account, actor, day): a user's count is one range of the
-- primary key. A wider key (actor with event type, action and project)
-- would serve `user` combined with those terms too, but its rows would be
-- about as many as the events of all but the most active actors.
CREATE TABLE actor_rollups (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    actor       INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (account_id, actor, day)
) WITHOUT ROWID;

-- The events already stored, read from the covering (actor, time) index.
INSERT INTO actor_rollups (account_id, actor, day, count)
SELECT key >> 40, actor,
       (time - (((time % 86400000000) + 86400000000) % 86400000000)) / 86400000000,
       COUNT(*)
FROM event_log INDEXED BY event_log_by_actor
GROUP BY actor, 3;
