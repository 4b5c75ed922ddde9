-- Free text (issue 14, docs/SEARCH.md): the words of each event, as
-- auditlog_core::search::words finds them in the values free text searches,
-- each once, sorted, joined by single spaces (`src/word_index.rs`), in a
-- column of the event log; NULL when the event has none. A word is letters
-- and digits only, so a space never occurs inside one. The GIN index below
-- (`0013_event_words_finish.sql`, built after the words of the events
-- already stored are written) indexes `array_to_tsvector` of them: a
-- tsvector of exactly core's words, without positions, stemming or stop
-- words, so PostgreSQL cannot tokenize differently from the reference. The
-- words are stored as text rather than as a tsvector: the same words in
-- about 3 bytes fewer per word.
--
-- The words are written by the appending INSERT (so an event is searchable
-- when its 201 is sent) and leave with the row when pruning or erasure
-- removes a body (`auditlog_remove_body`, migration 0011). Personal values
-- (the actor's name and email, declared personal details paths) are among
-- the words: `auditlog_replace_words` below is how erasure replaces an
-- event's words with those of the erased event, keeping the others
-- searchable.
ALTER TABLE event_log ADD COLUMN words TEXT;

-- The log stays append-only for every role: an UPDATE that changes
-- anything but `words` is refused as before. The words are derived from
-- the event (they are not part of its leaf or of any hash), and only
-- `auditlog_replace_words` changes them for the service role, which has no
-- UPDATE grant on the log.
CREATE FUNCTION event_log_update_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.key, NEW.time, NEW.received_at, NEW.kind, NEW.place, NEW.actor, NEW.id_hash,
        NEW.target_hash, NEW.leaf_dict, NEW.leaf)
       IS DISTINCT FROM
       (OLD.key, OLD.time, OLD.received_at, OLD.kind, OLD.place, OLD.actor, OLD.id_hash,
        OLD.target_hash, OLD.leaf_dict, OLD.leaf) THEN
        RAISE EXCEPTION 'events are append-only: % is refused (only an event''s search words may be replaced)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER event_log_refuse_update ON event_log;
CREATE TRIGGER event_log_update_only_words BEFORE UPDATE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_update_check();

-- Replaces the search words of the event `seq` of `account` (erasure: the
-- words of the event as it is served once erased). Runs as the owner of the
-- tables; the trigger above still refuses any other change. False when the
-- event has no row (its body was removed).
CREATE FUNCTION auditlog_replace_words(account BIGINT, seq BIGINT, new_words TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE event_log l SET words = new_words WHERE l.key = (account << 40) | seq;
    RETURN FOUND;
END;
$$;
REVOKE ALL ON FUNCTION auditlog_replace_words(BIGINT, BIGINT, TEXT) FROM PUBLIC;
