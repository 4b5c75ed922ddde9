-- A time summary of each block of consecutive seqs of an account (issue 14),
-- so that free text counts and pages read the full-text index's rowids (the
-- log's keys) and look up only the few events whose block does not settle
-- them (`word_blocks.rs`, docs/SEARCH.md "Block time summary").
--
-- `block` is `seq >> 8` (256 seqs, `word_blocks::BLOCK_SHIFT` says why;
-- `key = account_id << 40 | seq`).
-- `min_time` and `max_time` bound the times of the block's events;
-- `max_time_upto` is the largest `max_time` of this block and every earlier
-- block of the account, so that a newest-first walk over descending keys
-- can stop once it is below the page's last row.
--
-- Kept by the writer in the appending transaction (once per block per group
-- commit). Removing bodies (pruning, erasure) leaves it as it is: the bounds
-- of the remaining events can only be narrower, and wider bounds stay
-- correct (they only make a block straddle where it need not). Filled by the
-- migration (Rust, `word_blocks::migrate`) from the events already stored.
CREATE TABLE word_blocks (
    account_id     INTEGER NOT NULL,
    block          INTEGER NOT NULL,
    min_time       INTEGER NOT NULL,
    max_time       INTEGER NOT NULL,
    max_time_upto  INTEGER NOT NULL,
    PRIMARY KEY (account_id, block)
) WITHOUT ROWID;

-- The highest seq of each account that `word_blocks` accounts for: an
-- account whose events go beyond it (appended by a build without this
-- table, after a downgrade) is summarised again at open.
CREATE TABLE word_blocks_through (
    account_id  INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL
);
