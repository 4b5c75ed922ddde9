-- The kind of each event of a block (issue 14): per account and block of
-- `word_blocks` (`seq >> 8`), the block's events' `log_values` ids of
-- `[type, action]` in the canonical encoding of `block_kinds.rs`, so that a
-- count of free text with `type` and `action` terms settles a match from
-- its block's row instead of looking its event up (the 10M benchmark's word
-- in 97,000 events with `type:` and `time:` looked up every match: 230 ms).
-- A table of its own, not a column of `word_blocks`: the time summary is
-- read whole by every word count, and 350 bytes of kinds in each of its
-- rows made that read eight times longer (BENCHMARKS.md, "Users with types
-- and actions, words with types").
--
-- Kept by the writer with the block's times (once per block per group
-- commit). A block begun by a build without this table has no row, or
-- lacks the slots it appended: those matches are looked up, as before.
-- Removing bodies leaves it as it is (a removed event is no longer among
-- the full-text index's matches). The summary is rebuilt after this
-- (Rust, `word_blocks::migrate`), with its kinds, from the events stored.
CREATE TABLE word_block_kinds (
    account_id  INTEGER NOT NULL,
    block       INTEGER NOT NULL,
    kinds       BLOB NOT NULL,
    PRIMARY KEY (account_id, block)
) WITHOUT ROWID;
