-- Migration 0013, after the words of the events already stored are written
-- (`src/word_index.rs`): the full-text index. `array_to_tsvector` of the
-- words split at spaces is exactly core's words as lexemes; queries use the
-- same expression (`word_index::WORDS_VECTOR`), so the planner matches it.
-- A small pending list: every search reads the whole list, so it is kept
-- short (256 kB, not the default 4 MB) for first pages to stay fast while
-- ingest goes on; appends still batch their entries into it.
CREATE INDEX event_log_by_words ON event_log
    USING gin (array_to_tsvector(string_to_array(words, ' ')))
    WITH (gin_pending_list_limit = 256);
