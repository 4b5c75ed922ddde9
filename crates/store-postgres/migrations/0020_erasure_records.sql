-- An erasure of a subject with thousands of scattered events lists more
-- ranges than one record can carry (a leaf is at most 65,535 bytes), so a
-- job appends several records, each covering a part of its seqs in order
-- (auditlog_core::coverage::split_for_records). `record_seqs` is their
-- seqs as a JSON array; `record_seq` stays the first (NULL while planned).
ALTER TABLE erasures ADD COLUMN record_seqs JSONB;
UPDATE erasures SET record_seqs = jsonb_build_array(record_seq) WHERE record_seq IS NOT NULL;
