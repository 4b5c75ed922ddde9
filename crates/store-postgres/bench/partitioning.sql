-- Does monthly partitioning of `events` pay? Run on an empty scratch database:
--   createdb bench && psql -d bench -f crates/store-postgres/bench/partitioning.sql
-- Compares the schema as shipped (one table) with the same table partitioned
-- by month of `time` (24 partitions), on 1,000,000 events over two years:
-- bulk insert, the append path's idempotency lookup by (account_id, event_id),
-- a newest-first page, and a one-month page. Results: docs/POSTGRES.md.
\set ON_ERROR_STOP 1
\timing on
SET max_parallel_workers_per_gather = 0;

CREATE TABLE plain (
    account_id BIGINT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL,
    event_id TEXT NOT NULL, event_type TEXT NOT NULL, leaf BYTEA NOT NULL,
    PRIMARY KEY (account_id, seq));
CREATE UNIQUE INDEX plain_by_id ON plain (account_id, event_id);
CREATE INDEX plain_by_time ON plain (account_id, time, seq);
CREATE INDEX plain_by_type ON plain (account_id, event_type, time, seq);

-- Partitioned: unique indexes must include the partition key, so neither
-- (account_id, seq) nor (account_id, event_id) can be unique any more.
CREATE TABLE parted (
    account_id BIGINT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL,
    event_id TEXT NOT NULL, event_type TEXT NOT NULL, leaf BYTEA NOT NULL,
    PRIMARY KEY (account_id, seq, time)) PARTITION BY RANGE (time);
CREATE INDEX parted_by_id ON parted (account_id, event_id);
CREATE INDEX parted_by_time ON parted (account_id, time, seq);
CREATE INDEX parted_by_type ON parted (account_id, event_type, time, seq);
DO $$
DECLARE m int; lo bigint; hi bigint;
BEGIN
  FOR m IN 0..23 LOOP
    lo := extract(epoch FROM timestamptz '2024-01-01 UTC' + make_interval(months => m))::bigint * 1000000;
    hi := extract(epoch FROM timestamptz '2024-01-01 UTC' + make_interval(months => m + 1))::bigint * 1000000;
    EXECUTE format('CREATE TABLE parted_%s PARTITION OF parted FOR VALUES FROM (%s) TO (%s)', m, lo, hi);
  END LOOP;
END $$;

-- 1,000,000 events of 5 accounts, evenly over 2024-01-01 .. 2025-12-31.
\echo '== bulk insert, plain'
INSERT INTO plain SELECT i % 5, i / 5 + 1,
    1704067200000000 + i::bigint * 63072000, 'ev-' || i,
    (ARRAY['Test Case','Test Suite','Element','Authentication'])[1 + i % 4], repeat('x', 300)::bytea
  FROM generate_series(0, 999999) i;
\echo '== bulk insert, partitioned'
INSERT INTO parted SELECT * FROM plain;
ANALYZE plain; ANALYZE parted;

\echo '== 2,000 idempotency lookups by (account_id, event_id), plain'
DO $$ DECLARE i int; n bigint; BEGIN
  FOR i IN 1..2000 LOOP SELECT seq INTO n FROM plain WHERE account_id = i % 5 AND event_id = 'ev-' || (i * 397 % 1000000); END LOOP;
END $$;
\echo '== 2,000 idempotency lookups by (account_id, event_id), partitioned'
DO $$ DECLARE i int; n bigint; BEGIN
  FOR i IN 1..2000 LOOP SELECT seq INTO n FROM parted WHERE account_id = i % 5 AND event_id = 'ev-' || (i * 397 % 1000000); END LOOP;
END $$;

\echo '== 2,000 newest-first pages (51 rows), plain'
DO $$ DECLARE i int; n bigint; BEGIN
  FOR i IN 1..2000 LOOP SELECT count(*) INTO n FROM (SELECT seq FROM plain WHERE account_id = i % 5 ORDER BY time DESC, seq DESC LIMIT 51) p; END LOOP;
END $$;
\echo '== 2,000 newest-first pages (51 rows), partitioned'
DO $$ DECLARE i int; n bigint; BEGIN
  FOR i IN 1..2000 LOOP SELECT count(*) INTO n FROM (SELECT seq FROM parted WHERE account_id = i % 5 ORDER BY time DESC, seq DESC LIMIT 51) p; END LOOP;
END $$;

\echo '== 200 counts of one type in one month, plain'
DO $$ DECLARE i int; n bigint; BEGIN
  FOR i IN 1..200 LOOP SELECT count(*) INTO n FROM plain WHERE account_id = i % 5 AND event_type = 'Element'
    AND time >= 1719792000000000 AND time < 1722470400000000; END LOOP;
END $$;
\echo '== 200 counts of one type in one month, partitioned'
DO $$ DECLARE i int; n bigint; BEGIN
  FOR i IN 1..200 LOOP SELECT count(*) INTO n FROM parted WHERE account_id = i % 5 AND event_type = 'Element'
    AND time >= 1719792000000000 AND time < 1722470400000000; END LOOP;
END $$;

\echo '== sizes (plain, partitioned)'
SELECT pg_size_pretty(pg_total_relation_size('plain')) AS plain,
       pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'parted'::regclass)::bigint) AS partitioned;
