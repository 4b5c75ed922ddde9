-- Free text (issue 14): the words of each event (auditlog_core::search::words
-- of the values free text searches, each once), in a contentless FTS5 table
-- whose rowid is the event log's key. Contentless: the words are not stored
-- again as text (the leaf is compressed, so there is no content to point at);
-- contentless_delete: erasure can delete an event's entry by its key and
-- insert the words that remain; secure-delete: a deleted entry's words are
-- overwritten in the index's pages, not left behind. The words are fed
-- already split and lower-cased, separated by spaces; the ascii tokenizer
-- splits on ASCII non-alphanumerics only (every other character is part of
-- a token), so each word is one token exactly as core made it.
CREATE VIRTUAL TABLE event_words USING fts5(
    words,
    content = '',
    contentless_delete = 1,
    tokenize = 'ascii'
);
INSERT INTO event_words (event_words, rank) VALUES ('secure-delete', 1);
