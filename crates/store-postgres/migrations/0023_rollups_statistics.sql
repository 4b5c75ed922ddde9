-- Statistics for the rollups of 0022_rollups.sql, which filled them from the
-- events already stored: until autovacuum's first ANALYZE of a new table
-- (a minute or more after it commits, later on a busy server) the planner
-- guesses a few hundred rows per account instead of one per day and
-- combination, and a histogram's plan for those guesses was measured twice
-- as slow (BENCHMARKS.md, "per-day rollups for counts"). No column of
-- these tables holds a personal value, so sampling them is harmless
-- (0021_no_value_statistics.sql).
ANALYZE event_rollups;
ANALYZE actor_rollups;
