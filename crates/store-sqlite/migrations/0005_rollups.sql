-- Per-day event counts by (event type, action, project), so that counts and
-- day/week histograms read one row per day and combination instead of one
-- index entry per matching event (BENCHMARKS.md, "Counts and histograms").
-- `day` is floor(time / 86,400,000,000): whole UTC days since the epoch,
-- exact for negative times too. A missing project is kept apart from the
-- empty string (both are valid events) by `has_project`, because a primary
-- key column cannot be NULL.
--
-- The writer adds to these counts in the same transaction as the events
-- (writer.rs, rollups::DayCounts), once per row and group commit. A trigger
-- per event did the same at about 5 % of batch ingest; the writer's sums
-- cost under 1 % (BENCHMARKS.md). Events are append-only, so counts only grow.
CREATE TABLE event_rollups (
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    day          INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    action       TEXT NOT NULL,
    has_project  INTEGER NOT NULL,
    project      TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (account_id, day, event_type, action, has_project, project)
) WITHOUT ROWID;

-- The events already stored (a store created by an older version).
INSERT INTO event_rollups (account_id, day, event_type, action, has_project, project, count)
SELECT account_id,
       (time - (((time % 86400000000) + 86400000000) % 86400000000)) / 86400000000,
       event_type, action, project IS NOT NULL, COALESCE(project, ''), COUNT(*)
FROM events
GROUP BY 1, 2, 3, 4, 5, 6;
