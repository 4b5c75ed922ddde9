-- Per-day counts of the events (issue 12, docs/SEARCH.md "Counts and
-- histograms from the day rollups"), as the embedded backend keeps them
-- (its 0005_rollups.sql and 0023_actor_rollups.sql), so that a day or week
-- histogram whose filter names only these columns and times reads one row
-- per day and combination instead of one index entry per event.
--
-- `kind` is the log_values id of the event type and action, as the log
-- holds it (0010_event_log.sql). The project is its text (`has_project`
-- false, and `project` '', for an event without one), not the log's
-- `place` id: a place is a project, app and version, and keying by it
-- would multiply the rows of a day by the apps and versions in use, which
-- the unfiltered count reads every one of. `actor` is the actors row id.
-- No personal value is stored here: erasure renames the actors row and
-- leaves these rows as they are. `day` is the UTC day since the epoch
-- (floor(time / 86400000000), negative times included).
CREATE TABLE event_rollups (
    account_id   BIGINT NOT NULL,
    day          BIGINT NOT NULL,
    kind         BIGINT NOT NULL,
    has_project  BOOLEAN NOT NULL,
    project      TEXT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, kind, has_project, project)
);

CREATE TABLE actor_rollups (
    account_id  BIGINT NOT NULL,
    actor       BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (account_id, actor, day)
);

CREATE FUNCTION auditlog_day(micros BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (micros - (((micros % 86400000000) + 86400000000) % 86400000000)) / 86400000000
$$;

-- Kept by the database, in the transaction that adds or removes the rows:
-- every path that writes the log (the writer's group commit, `copy`'s
-- import, a server of an older build during a rolling upgrade) and every
-- removal (`auditlog_remove_body`: pruning, erasure) keeps them exact
-- without knowing of them. Statement-level triggers see all rows of one
-- statement (the writer inserts a group commit in one statement), so a
-- group commit upserts each distinct rollup row once, in key order: two
-- transactions that upsert rows of one account lock them in the same
-- order. SECURITY DEFINER: the service role has no write grant on the
-- rollups (service-role.sql), so it cannot change a count itself.
CREATE FUNCTION event_log_add_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO event_rollups AS r (account_id, day, kind, has_project, project, count)
    SELECT a.account_id, a.day, a.kind, p.value ->> 0 IS NOT NULL,
           COALESCE(p.value ->> 0, ''), SUM(a.n)
    FROM (SELECT key >> 40 AS account_id, auditlog_day(time) AS day, kind, place, COUNT(*) AS n
          FROM added GROUP BY 1, 2, 3, 4) a
    LEFT JOIN log_values p ON p.id = a.place
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (account_id, day, kind, has_project, project)
    DO UPDATE SET count = r.count + excluded.count;
    INSERT INTO actor_rollups AS r (account_id, actor, day, count)
    SELECT key >> 40, actor, auditlog_day(time), COUNT(*)
    FROM added GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (account_id, actor, day) DO UPDATE SET count = r.count + excluded.count;
    RETURN NULL;
END;
$$;
CREATE TRIGGER event_log_rollups_add AFTER INSERT ON event_log
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_add_rollups();

-- A removed body leaves the counts; an actor's row left at 0 is deleted
-- (as on SQLite; an `event_rollups` row at 0 stays, and readers skip
-- empty days).
CREATE FUNCTION event_log_subtract_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE event_rollups r SET count = r.count - d.n
    FROM (SELECT o.key >> 40 AS account_id, auditlog_day(o.time) AS day, o.kind,
                 p.value ->> 0 IS NOT NULL AS has_project, COALESCE(p.value ->> 0, '') AS project,
                 COUNT(*) AS n
          FROM removed o LEFT JOIN log_values p ON p.id = o.place GROUP BY 1, 2, 3, 4, 5) d
    WHERE (r.account_id, r.day, r.kind, r.has_project, r.project)
        = (d.account_id, d.day, d.kind, d.has_project, d.project);
    UPDATE actor_rollups r SET count = r.count - d.n
    FROM (SELECT key >> 40 AS account_id, actor, auditlog_day(time) AS day, COUNT(*) AS n
          FROM removed GROUP BY 1, 2, 3) d
    WHERE (r.account_id, r.actor, r.day) = (d.account_id, d.actor, d.day);
    DELETE FROM actor_rollups r
    USING (SELECT DISTINCT key >> 40 AS account_id, actor, auditlog_day(time) AS day FROM removed) d
    WHERE (r.account_id, r.actor, r.day) = (d.account_id, d.actor, d.day) AND r.count <= 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER event_log_rollups_subtract AFTER DELETE ON event_log
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_subtract_rollups();

-- The events already stored (removed bodies have no row, so they are not
-- counted).
INSERT INTO event_rollups (account_id, day, kind, has_project, project, count)
SELECT e.account_id, e.day, e.kind, p.value ->> 0 IS NOT NULL, COALESCE(p.value ->> 0, ''), SUM(e.n)
FROM (SELECT key >> 40 AS account_id, auditlog_day(time) AS day, kind, place, COUNT(*) AS n
      FROM event_log GROUP BY 1, 2, 3, 4) e
LEFT JOIN log_values p ON p.id = e.place
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO actor_rollups (account_id, actor, day, count)
SELECT key >> 40, actor, auditlog_day(time), COUNT(*)
FROM event_log GROUP BY 1, 2, 3;
