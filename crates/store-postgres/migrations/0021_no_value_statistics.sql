-- Erasure (issue 16, docs/ERASURE.md): ANALYZE, autovacuum's included,
-- copies samples of a column's values into the catalog `pg_statistic`
-- (most common values, histogram bounds, a tsvector's most common
-- elements). For the columns that hold personal values those samples would
-- outlive an erasure: the job rewrites its own tables, but it cannot
-- rewrite the catalog, whose replaced rows keep their bytes in its pages.
-- A statistics target of 0 keeps ANALYZE from sampling these columns at
-- all. The planner needs no samples of them: actors and personal objects
-- are read by key, and a word search by the GIN index (PostgreSQL's default
-- selectivity for `@@` stands in for the word samples).
ALTER TABLE actors
    ALTER COLUMN actor_id SET STATISTICS 0,
    ALTER COLUMN name SET STATISTICS 0,
    ALTER COLUMN email SET STATISTICS 0;
ALTER TABLE event_personal ALTER COLUMN personal SET STATISTICS 0;
ALTER TABLE event_log ALTER COLUMN words SET STATISTICS 0;
ALTER INDEX event_log_by_words ALTER COLUMN 1 SET STATISTICS 0;
