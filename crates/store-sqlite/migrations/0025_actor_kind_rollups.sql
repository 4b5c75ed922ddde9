-- Per-day event counts by actor and kind (issue 14), so that `user` filters
-- combined with `type` and `action` (the parameters and `q`'s terms,
-- negated, OR lists, prefixes, with `time`) count rollup rows instead of
-- every event of the other terms: the 10M benchmark's
-- `type:"Test Case" -action:Update -user:u-0001` read 833,000 events
-- (1.6 s) and `action:Login,Logout -user:u-0001,u-0002 time:<week>` 34,000
-- (52 ms). A negated user is then the kind's day totals (`event_rollups`)
-- less the named actors' rows here; a named one is its rows.
--
-- `actor` is the `actors` row id and `kind` the `log_values` id of the
-- event's `[type, action]`, the integers the log holds: no personal value
-- and no text is stored here. `day` is floor(time / 86,400,000,000), as in
-- `event_rollups` and `actor_rollups`.
--
-- Kept like `actor_rollups` (migration 0023): the writer adds to it in the
-- appending transaction, removal of a body subtracts its event and deletes
-- a row that reaches 0, an account whose total differs from its stored
-- events is recounted at open.
--
-- Its rows are at most one per event, and fewer the busier an actor is:
-- about 3.7 rows per 10 events in the benchmark's 10M-event Zipf year
-- (measured in BENCHMARKS.md, "User with type and action counts"). Key
-- order (account, actor, day, kind): an actor's rows are one range of the
-- primary key, and the writer's upserts touch each active actor's newest
-- page, as `actor_rollups`' do.
CREATE TABLE actor_kind_rollups (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    actor       INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (account_id, actor, day, kind)
) WITHOUT ROWID;

-- The events already stored: one pass over the log (the kind is not in
-- the actor index), grouped by a sort.
INSERT INTO actor_kind_rollups (account_id, actor, day, kind, count)
SELECT key >> 40, actor,
       (time - (((time % 86400000000) + 86400000000) % 86400000000)) / 86400000000,
       kind, COUNT(*)
FROM event_log NOT INDEXED
GROUP BY 1, 2, 3, 4;
