-- Log streams' delivery progress in a side database (issue 15): each
-- stream's cursor, batch in flight and failure record are kept, once it
-- delivers, in `stream-progress.db` (`stream_progress.rs`), so that a
-- batch's acceptance never waits for ingest's write lock on this file.
-- `progress_epoch` names the progress the side rows must belong to: it
-- is given a new value on creation and on each replay, and a side row of
-- another epoch is ignored (the values here then hold: the cursor a
-- stream was created or replayed with). Existing streams keep their
-- progress here, under epoch 0, until they deliver again.
ALTER TABLE log_streams ADD COLUMN progress_epoch INTEGER NOT NULL DEFAULT 0;
