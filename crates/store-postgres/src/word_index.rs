//! The full-text index (migration 0013, docs/SEARCH.md): each event's words
//! in `event_log.words` (core's words of the values free text searches, each
//! once, sorted, joined by spaces), indexed by a GIN index on
//! `array_to_tsvector` of them ([`WORDS_VECTOR`]). Written by the appending
//! INSERT (`writer::Rows`), so an event is searchable when its 201 is sent;
//! filled by the migration for the events stored before it ([`backfill`]);
//! gone with the row when pruning or erasure removes a body.
//!
//! Erasure keeps an event's row but must remove its personal words:
//! [`replace_event_words`] writes the words of the erased event in their
//! place (through `auditlog_replace_words`, the only change of the log the
//! service role may make).
//!
//! A tsvector lexeme holds at most 2,047 bytes and PostgreSQL's
//! `array_to_tsvector` does not check it, so a word longer than
//! [`MAX_WORD_BYTES`] is stored cut to that length (at a character
//! boundary). A query word that long is searched as the prefix of its cut
//! and confirmed on each candidate ([`tsquery`]); every shorter word or
//! prefix is answered exactly by the index.

use crate::sql::{load_dictionaries, pg_error, to_record, RECORD_COLUMNS, RECORD_DICTIONARY};
use auditlog_core::search::Phrase;
use auditlog_core::NewEvent;
use auditlog_store::leaf_codec::DictionaryCache;
use auditlog_store::search_plan::index_words;
use auditlog_store::{AccountId, Result, StoreError};
use tokio_postgres::GenericClient;

/// The tsvector the index holds, over `event_log l` (the index's own
/// expression, so that the planner uses it).
pub const WORDS_VECTOR: &str = "array_to_tsvector(string_to_array(l.words, ' '))";

/// Words are stored cut to at most this many bytes.
pub const MAX_WORD_BYTES: usize = 255;

/// `word` cut to at most [`MAX_WORD_BYTES`] at a character boundary.
fn cut(word: &str) -> &str {
    if word.len() <= MAX_WORD_BYTES {
        return word;
    }
    let mut end = MAX_WORD_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

/// Whether the index answers `word` exactly: a stored cut word is at least
/// `MAX_WORD_BYTES - 3` bytes long, so a shorter word (or prefix) can only
/// equal (or begin) a word the event really holds.
fn exact(word: &str) -> bool {
    word.len() + 3 < MAX_WORD_BYTES
}

/// The `words` column of `event`: its index words cut, each once, joined by
/// spaces; `None` when it has none. The words come from values whose sum is
/// bounded by the event's limits (64 KiB of details), far below the 1 MiB
/// a tsvector holds.
pub fn column_text(event: &NewEvent) -> Option<String> {
    column_text_of(index_words(event))
}

/// The `words` column of an event whose index words are `words`.
pub fn column_text_of(words: Vec<String>) -> Option<String> {
    let mut words: Vec<String> = words
        .into_iter()
        .map(|w| {
            if w.len() <= MAX_WORD_BYTES {
                w
            } else {
                cut(&w).to_string()
            }
        })
        .collect();
    words.sort_unstable();
    words.dedup();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The `tsquery` text for `words` (each word quoted, a prefix with `:*`,
/// all joined by `&`), and whether the index only narrows it (a phrase, or
/// a word too long to be stored whole): then each candidate is confirmed.
/// The words are letters and digits only; quoting is escaped all the same,
/// and the text is a bound parameter.
pub fn tsquery(words: &[&Phrase]) -> Option<(String, bool)> {
    let mut parts = Vec::new();
    let mut narrowed = false;
    for phrase in words {
        narrowed |= phrase.words.len() > 1;
        let last = phrase.words.len().saturating_sub(1);
        for (i, word) in phrase.words.iter().enumerate() {
            let prefix = i == last && phrase.prefix;
            let long = !exact(word);
            narrowed |= long;
            let lexeme = cut(word).replace('\\', "\\\\").replace('\'', "''");
            let star = if prefix || long { ":*" } else { "" };
            parts.push(format!("'{lexeme}'{star}"));
        }
    }
    (!parts.is_empty()).then(|| (parts.join(" & "), narrowed))
}

/// Replaces the stored words of the event `seq` of `account` with those of
/// `event` (erasure: the event as it is served once erased, so that its
/// other words stay searchable and its personal ones do not). In the
/// caller's transaction; false when the event has no row (a removed body).
pub async fn replace_event_words(
    client: &(impl GenericClient + Sync),
    account: AccountId,
    seq: u64,
    event: &NewEvent,
) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT auditlog_replace_words($1, $2, $3)",
            &[&account, &(seq as i64), &column_text(event)],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.get(0))
}

/// Migration 0013: the words of every event already stored (read as the
/// API serves it: personal values included), a key-ordered batch at a time,
/// in the migration's transaction.
pub async fn backfill(client: &(impl GenericClient + Sync)) -> Result<u64> {
    const BATCH: i64 = 2_000;
    let dictionaries = DictionaryCache::default();
    let select = client
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM event_log l WHERE l.key > $1 ORDER BY l.key LIMIT $2"
        ))
        .await
        .map_err(pg_error)?;
    let update = client
        .prepare(
            "UPDATE event_log l SET words = t.words \
             FROM unnest($1::bigint[], $2::text[]) AS t(key, words) \
             WHERE l.key = t.key AND t.words IS NOT NULL",
        )
        .await
        .map_err(pg_error)?;
    let mut after = i64::MIN;
    let mut done = 0u64;
    loop {
        let rows = client
            .query(&select, &[&after, &BATCH])
            .await
            .map_err(pg_error)?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        load_dictionaries(client, &dictionaries, &rows, RECORD_DICTIONARY).await?;
        let mut keys = Vec::with_capacity(rows.len());
        let mut texts = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = to_record(row, &dictionaries)?;
            let stored = record.stored().stored_event().map_err(|e| {
                StoreError::internal_caused_by(
                    format!(
                        "event seq {} of account {} cannot be read to index its words",
                        record.seq,
                        row.get::<_, i64>(0) >> auditlog_store::log_key::SEQ_BITS
                    ),
                    e,
                )
            })?;
            keys.push(row.get::<_, i64>(0));
            texts.push(column_text(stored.event()));
        }
        client
            .execute(&update, &[&keys, &texts])
            .await
            .map_err(pg_error)?;
        done += rows.len() as u64;
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(words: &[&str], prefix: bool) -> Phrase {
        Phrase {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn words_and_prefixes_are_exact_and_phrases_and_long_words_narrowed() {
        let (pay, login) = (phrase(&["pay"], true), phrase(&["login", "with"], false));
        assert_eq!(tsquery(&[&pay]), Some(("'pay':*".to_string(), false)));
        assert_eq!(
            tsquery(&[&pay, &login]),
            Some(("'pay':* & 'login' & 'with'".to_string(), true))
        );
        assert_eq!(tsquery(&[]), None);
        let just_short = "a".repeat(MAX_WORD_BYTES - 4);
        assert_eq!(
            tsquery(&[&phrase(&[&just_short], false)]),
            Some((format!("'{just_short}'"), false))
        );
        let long = "é".repeat(200);
        let (text, narrowed) = tsquery(&[&phrase(&[&long], false)]).unwrap();
        assert!(narrowed);
        assert_eq!(text, format!("'{}':*", "é".repeat(127)));
    }

    #[test]
    fn long_words_are_cut_at_a_character_boundary() {
        assert_eq!(cut(&"é".repeat(200)).len(), 254);
        assert_eq!(cut(&"a".repeat(300)).len(), MAX_WORD_BYTES);
        assert_eq!(cut("ada"), "ada");
        // A stored cut word is never shorter than an exact query word.
        for word in ["a".repeat(300), "é".repeat(200), "€".repeat(100)] {
            assert!(!exact(cut(&word)), "{}", cut(&word).len());
        }
    }
}
