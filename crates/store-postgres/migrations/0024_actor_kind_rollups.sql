-- Per-day counts by actor and kind (issue 14; the embedded store's
-- 0025_actor_kind_rollups.sql), so that `user` filters combined with
-- `type` and `action` (parameters and `q`'s terms, negated, OR lists,
-- prefixes, with times) count rollup rows instead of every event of the
-- other terms: a named user is its rows, a negated one the kinds' day
-- totals (`event_rollups`) less the named actors' rows (`rollups.rs`).
--
-- `actor` is the actors row id and `kind` the log_values id of the event
-- type and action, the integers the log holds: no personal value is stored
-- here, and erasure (which renames the actors row) changes nothing. `day`
-- is auditlog_day(time), as in 0022_rollups.sql. Its rows are at most one
-- per event and fewer the busier an actor is.
CREATE TABLE actor_kind_rollups (
    account_id  BIGINT NOT NULL,
    actor       BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    kind        BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (account_id, actor, day, kind)
);

-- Kept by the database as 0022's rollups are: statement-level triggers in
-- the transaction that adds or removes log rows, each distinct row upserted
-- once per statement in key order (so that two transactions lock an
-- account's rows in the same order), SECURITY DEFINER (the service role has
-- no write grant on it). These triggers fire after 0022's of the same event
-- (triggers fire in name order), in every transaction the same order.
CREATE FUNCTION event_log_add_actor_kinds() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO actor_kind_rollups AS r (account_id, actor, day, kind, count)
    SELECT key >> 40, actor, auditlog_day(time), kind, COUNT(*)
    FROM added GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (account_id, actor, day, kind) DO UPDATE SET count = r.count + excluded.count;
    RETURN NULL;
END;
$$;
CREATE TRIGGER event_log_rollups_add_actor_kinds AFTER INSERT ON event_log
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_add_actor_kinds();

-- A removed body leaves the counts; a row left at 0 is deleted.
CREATE FUNCTION event_log_subtract_actor_kinds() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE actor_kind_rollups r SET count = r.count - d.n
    FROM (SELECT key >> 40 AS account_id, actor, auditlog_day(time) AS day, kind, COUNT(*) AS n
          FROM removed GROUP BY 1, 2, 3, 4) d
    WHERE (r.account_id, r.actor, r.day, r.kind) = (d.account_id, d.actor, d.day, d.kind);
    DELETE FROM actor_kind_rollups r
    USING (SELECT DISTINCT key >> 40 AS account_id, actor, auditlog_day(time) AS day, kind
           FROM removed) d
    WHERE (r.account_id, r.actor, r.day, r.kind) = (d.account_id, d.actor, d.day, d.kind)
      AND r.count <= 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER event_log_rollups_subtract_actor_kinds AFTER DELETE ON event_log
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_subtract_actor_kinds();

-- The events already stored (removed bodies have no row), and the
-- planner's statistics at once (as 0023_rollups_statistics.sql; no column
-- holds a personal value).
INSERT INTO actor_kind_rollups (account_id, actor, day, kind, count)
SELECT key >> 40, actor, auditlog_day(time), kind, COUNT(*)
FROM event_log GROUP BY 1, 2, 3, 4;
ANALYZE actor_kind_rollups;
