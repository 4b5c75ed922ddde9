//! The properties that the fuzz targets (`fuzz/`) and the property tests
//! check, defined once here so that the two cannot drift apart, and the
//! seeded generators the property tests feed them with.
//!
//! Each `check_*` function takes input as a fuzzer would give it, and panics
//! with a message naming the broken property. Compiled for this crate's tests
//! and behind the `fuzzing` feature (used by `fuzz/` and by the server's tests);
//! never part of a release build.

use crate::event::api_json;
use crate::{canonical, leaf, Cursor, EventFilter, NewEvent, StoredEvent, Taxonomy, Timestamp};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The receipt time of every checked event: fixed, so that a fuzz input means
/// the same thing on every run (an input's `time` is judged against it).
pub fn fixed_now() -> Timestamp {
    // 2026-11-27T12:00:00Z
    Timestamp::from_micros(1_795_780_800_000_000)
}

/// The account and receipt every checked event is stored with.
pub fn store_as(event: NewEvent, seq: u64) -> StoredEvent {
    StoredEvent::new("acme", seq, fixed_now(), event)
}

/// Event parsing and validation (`fuzz_targets/event_parse.rs`): for any
/// bytes that are JSON, the canonical encoding is idempotent; `NewEvent::parse`
/// either names each broken rule, or gives an event within every limit whose
/// leaf bytes are canonical, read back to the same event, and whose JSON
/// parses again to the same event.
pub fn check_event_json(input: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    check_canonical(&value);
    let taxonomy = Taxonomy::default();
    match NewEvent::parse(&value, &taxonomy, fixed_now()) {
        Ok(event) => check_valid_event(&event, &taxonomy),
        Err(errors) => {
            assert!(!errors.is_empty(), "parse failed without naming an error");
            for e in &errors {
                // Only an unknown member may have an empty name ({"": 1}).
                assert!(
                    (!e.field.is_empty() || e.rule == "unknown_field")
                        && !e.rule.is_empty()
                        && (e.message.contains(&e.field)
                            || e.message.contains(&format!("{:?}", e.field)))
                        && e.message.len() > e.field.len(),
                    "an error must name its field, rule and problem: {e:?}"
                );
            }
        }
    }
}

/// RFC 8785 output is JSON, and encoding it again changes nothing.
pub fn check_canonical(value: &Value) {
    let bytes = canonical::to_vec(value);
    let again: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => panic!(
            "canonical JSON does not parse ({e}): {}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    let twice = canonical::to_vec(&again);
    assert_eq!(
        String::from_utf8_lossy(&twice),
        String::from_utf8_lossy(&bytes),
        "canonical JSON is not idempotent"
    );
}

/// What every accepted event must satisfy.
pub fn check_valid_event(event: &NewEvent, taxonomy: &Taxonomy) {
    use crate::event::{MAX_ID_CHARS, MAX_NAME_CHARS, MAX_USER_AGENT_CHARS};
    assert!(
        (1..=MAX_ID_CHARS).contains(&event.id().len())
            && event.id().bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "accepted a bad id {:?}",
        event.id()
    );
    assert!(
        event.time().micros() <= fixed_now().micros() + crate::event::MAX_FUTURE_MICROS,
        "accepted a time too far in the future"
    );
    let rule = taxonomy
        .event_type(event.event_type())
        .filter(|rule| rule.name == event.event_type())
        .unwrap_or_else(|| panic!("event_type {:?} is not canonical", event.event_type()));
    assert!(
        rule.actions.iter().any(|a| a == event.action()),
        "action {:?} is not a canonical action of {:?}",
        event.action(),
        rule.name
    );
    let names = [
        Some(event.actor().id.as_str()),
        event.actor().name.as_deref(),
        event.actor().email.as_deref(),
        event.project(),
        event.app(),
        event.version(),
        event.target().and_then(|t| t.id.as_deref()),
        event.target().and_then(|t| t.name.as_deref()),
        event.context().and_then(|c| c.request_id.as_deref()),
    ];
    for name in names.into_iter().flatten() {
        assert!(
            name.chars().count() <= MAX_NAME_CHARS,
            "accepted a value over {MAX_NAME_CHARS} characters"
        );
    }
    if let Some(agent) = event.context().and_then(|c| c.user_agent.as_ref()) {
        assert!(agent.chars().count() <= MAX_USER_AGENT_CHARS);
    }
    if let Some(ip) = event.context().and_then(|c| c.ip.as_ref()) {
        let parsed: std::net::IpAddr = ip
            .parse()
            .unwrap_or_else(|_| panic!("stored ip {ip:?} is not an address"));
        assert_eq!(&parsed.to_string(), ip, "stored ip is not in normal form");
    }

    if let Some(details) = event.details() {
        let size = canonical::to_vec(&Value::Object(details.clone())).len();
        assert!(
            size <= crate::event::MAX_DETAILS_BYTES,
            "accepted {size} bytes of details"
        );
    }

    let stored = store_as(event.clone(), 1);
    let leaf_bytes = stored.leaf_bytes();
    let leaf_value: Value = serde_json::from_slice(&leaf_bytes).expect("leaf bytes are JSON");
    assert_eq!(
        crate::event::nul_path("event", &leaf_value),
        None,
        "accepted an event holding U+0000"
    );
    assert_eq!(
        canonical::to_vec(&leaf_value),
        leaf_bytes,
        "leaf bytes are not in canonical form"
    );

    // What exports and `verify` do: read the event back from its leaf bytes.
    let back = StoredEvent::from_leaf_bytes(&leaf_bytes).unwrap_or_else(|e| {
        panic!(
            "leaf bytes do not read back ({e}): {}",
            String::from_utf8_lossy(&leaf_bytes)
        )
    });
    // The leaf always holds the time, so what is read back always "gave" it.
    let expected = event.clone().into_builder().time(event.time()).build();
    assert_eq!(
        back.event(),
        &expected,
        "leaf bytes read back to another event"
    );
    assert_eq!(back.leaf_bytes(), leaf_bytes, "leaf bytes are not stable");

    // What a client does when it resends the event as the API showed it.
    let again = NewEvent::parse(&Value::Object(event.to_json_map()), taxonomy, fixed_now())
        .unwrap_or_else(|e| panic!("an accepted event's own JSON is refused: {e:?}"));
    assert_eq!(
        again, expected,
        "an accepted event's JSON parses to another event"
    );
    assert!(again.same_content_as(event) && event.same_content_as(&again));

    let hash = stored.leaf_hash();
    let served: Map<String, Value> = serde_json::from_slice(&api_json(&leaf_bytes, &hash))
        .expect("the API's JSON of an event is a JSON object");
    let mut without_hash = served.clone();
    assert_eq!(
        without_hash.remove("hash"),
        Some(Value::String(leaf::to_hex(&hash)))
    );
    assert_eq!(Value::Object(without_hash), leaf_value);
}

/// Cursor decoding (`fuzz_targets/query_params.rs`): junk is refused naming
/// `cursor`, never a panic; whatever is accepted re-encodes to a cursor that
/// decodes to the same position.
pub fn check_cursor_text(text: &str) {
    match Cursor::decode(text) {
        Ok(cursor) => {
            assert!(cursor.seq <= cursor.snapshot_seq, "accepted seq > snapshot");
            check_cursor_round_trip(cursor);
        }
        Err(e) => assert_eq!(e.field, "cursor"),
    }
}

/// Every cursor the server issues (seq at most the snapshot) decodes to
/// itself; any other is refused.
pub fn check_cursor_round_trip(cursor: Cursor) {
    let decoded = Cursor::decode(&cursor.encode());
    if cursor.seq <= cursor.snapshot_seq {
        assert_eq!(decoded.ok(), Some(cursor), "cursor does not round-trip");
    } else {
        assert!(decoded.is_err(), "decoded a cursor with seq > snapshot");
    }
}

/// An export request's `filters` object: refused naming a `filters.*`
/// field, or a filter whose `to_json` reads back to the same filter.
pub fn check_filter_json(value: &Value) {
    let taxonomy = Taxonomy::default();
    match EventFilter::from_json(value, &taxonomy) {
        Ok(filter) => check_filter(&filter, &taxonomy),
        Err(crate::filter::FilterError::Field(e)) => assert!(
            e.field.starts_with("filters") || e.field == "from",
            "filter error names no filter field: {e:?}"
        ),
        // A malformed `q` says where: inside it.
        Err(crate::filter::FilterError::Query(e)) => {
            let q = value.get("q").and_then(Value::as_str).unwrap_or_default();
            assert!(
                e.position <= q.chars().count(),
                "q error past the query: {e:?}"
            )
        }
    }
}

/// What every accepted filter must satisfy: consistent, and stored (as
/// `to_json`, with export jobs) in a form that reads back to itself.
pub fn check_filter(filter: &EventFilter, taxonomy: &Taxonomy) {
    assert!(filter.check().is_ok(), "accepted from after to");
    let json = filter.to_json();
    let again = EventFilter::from_json(&json, taxonomy)
        .unwrap_or_else(|e| panic!("a filter's own JSON {json} is refused: {e:?}"));
    assert_eq!(&again, filter, "filter JSON does not round-trip");
    assert_eq!(again.to_json(), json);
}

/// Search queries (`fuzz_targets/search_query.rs`): any bytes that are UTF-8
/// as `q`, read in UTC and in a zone with daylight saving. The parser never
/// panics; a refusal names a position within the query (in code points) and
/// what was expected; an accepted query prints to a canonical text that
/// parses back to the same query in any zone and prints the same again, and
/// a negated term matches exactly the table's events the term does not.
pub fn check_query_text(input: &[u8]) {
    use crate::search::{cases, Query, Zone};
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let chars = text.chars().count();
    static ZONES: std::sync::OnceLock<[Zone; 3]> = std::sync::OnceLock::new();
    let [utc, new_york, other] = ZONES.get_or_init(|| {
        let zone = |name| Zone::parse(name).expect("a known zone");
        [
            Zone::utc(),
            zone("America/New_York"),
            zone("Asia/Kathmandu"),
        ]
    });
    for zone in [utc, new_york] {
        let query = match Query::parse(text, zone) {
            Ok(query) => query,
            Err(e) => {
                assert!(
                    e.position <= chars && !e.expected.is_empty(),
                    "a refusal must point into the query and say what was expected: {e:?} for {text:?}"
                );
                continue;
            }
        };
        let printed = query.to_string();
        let again = Query::parse(&printed, other).unwrap_or_else(|e| {
            panic!("the canonical form {printed:?} of {text:?} does not parse: {e}")
        });
        assert_eq!(
            again, query,
            "{text:?} printed as {printed:?} parses to another query"
        );
        assert_eq!(
            again.to_string(),
            printed,
            "the canonical form is not stable"
        );
        static EVENTS: std::sync::OnceLock<Vec<(StoredEvent, Option<crate::leaf_v2::Source>)>> =
            std::sync::OnceLock::new();
        check_query_on(&query, EVENTS.get_or_init(cases::events));
    }
}

/// On each event: the query holds exactly when each of its terms does, and
/// a term and the same term negated never agree.
pub fn check_query_on(
    query: &crate::search::Query,
    events: &[(StoredEvent, Option<crate::leaf_v2::Source>)],
) {
    {
        for (event, source) in events {
            let all = query.matches(event, source.as_ref());
            let mut each = true;
            for term in query.terms() {
                let holds = term.matches(event, source.as_ref());
                let mut negated = term.clone();
                negated.negated = !negated.negated;
                assert_ne!(
                    holds,
                    negated.matches(event, source.as_ref()),
                    "a term and its negation agree on {}",
                    event.event().id()
                );
                each &= holds;
            }
            assert_eq!(all, each, "a query is not the AND of its terms");
        }
    }
}

/// The free-text tokenizer: every word is a non-empty run of lower-case
/// letters and digits that tokenizes to itself, and the words printed with
/// spaces tokenize to the same words (so a printed phrase reads back).
pub fn check_words(text: &str) {
    use crate::search::words::words;
    let all: Vec<String> = words(text).collect();
    for word in &all {
        assert!(
            !word.is_empty() && word.chars().all(char::is_alphanumeric),
            "word {word:?} of {text:?} is not letters and digits"
        );
        assert_eq!(
            word.to_lowercase(),
            *word,
            "word {word:?} is not lower-case"
        );
        assert_eq!(
            words(word).collect::<Vec<_>>(),
            std::slice::from_ref(word),
            "word {word:?} splits"
        );
    }
    assert_eq!(words(&all.join(" ")).collect::<Vec<_>>(), all);
}

/// Runs `check` on every file of `fuzz/corpus/<target>/` and
/// `fuzz/regressions/<target>/` (the committed corpus and the inputs of past
/// findings), naming the file that breaks a property; the number of files.
pub fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        for path in corpus_files(&fuzz.join(dir).join(target)) {
            let input = std::fs::read(&path).expect("a corpus file is readable");
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(outcome.is_ok(), "{} breaks a property", path.display());
            count += 1;
        }
    }
    count
}

fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

/// Seeded generators for the property tests: realistic values with the
/// awkward cases (formula prefixes, quotes, line breaks, non-ASCII, numbers
/// at the edges of doubles, instants at the edges of RFC 3339) over-weighted.
pub mod generate {
    use crate::Taxonomy;
    use serde_json::{json, Map, Number, Value};

    /// xorshift64*, as in the demo generator: deterministic from its seed.
    pub struct Rng(u64);

    impl Rng {
        /// Seeds 1, 2, 3, … start far apart (splitmix64 of the seed): raw
        /// small seeds would give xorshift correlated first values.
        pub fn new(seed: u64) -> Self {
            let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            Self((z ^ (z >> 31)).max(1))
        }
        pub fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n.max(1) as u64) as usize
        }
        pub fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
        pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    const AWKWARD: &[char] = &[
        '=',
        '+',
        '-',
        '@',
        '\t',
        '\r',
        '\n',
        ',',
        '"',
        '\'',
        '\\',
        ' ',
        '\u{1}',
        '\u{7f}',
        'é',
        'Ü',
        '日',
        '✓',
        '\u{2028}',
        '\u{feff}',
        '😀',
        '\u{10ffff}',
    ];

    /// A string of up to `max` characters, often empty or short.
    pub fn text(rng: &mut Rng, max: usize) -> String {
        let len = match rng.below(4) {
            0 => rng.below(4),
            1 | 2 => rng.below(24),
            _ => rng.below(max + 1),
        }
        .min(max);
        let mut text: String = (0..len)
            .map(|_| {
                if rng.chance(25) {
                    *rng.pick(AWKWARD)
                } else {
                    char::from(b' ' + rng.below(95) as u8)
                }
            })
            .collect();
        // U+0000 is refused wherever it appears (PostgreSQL cannot store
        // it); rare, so that most generated events are still accepted.
        if len > 0 && rng.chance(1) {
            text.pop();
            text.push('\u{0}');
        }
        text
    }

    /// A name with the capitalisation scrambled, as clients send them.
    pub fn scramble_case(rng: &mut Rng, name: &str) -> String {
        name.chars()
            .map(|c| {
                if rng.chance(30) {
                    c.to_ascii_uppercase()
                } else if rng.chance(30) {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// An RFC 3339 instant as text, mostly recent, sometimes at the edges of
    /// the format (years 0000 and 9999, offsets up to ±23:59, nanoseconds).
    pub fn instant_text(rng: &mut Rng) -> String {
        let year = match rng.below(8) {
            0 => 0,
            1 => 9999,
            2 => rng.below(10_000),
            3 => 1970,
            _ => 2020 + rng.below(7),
        };
        // The first and last moments of the format, where an offset can
        // carry the instant outside it.
        let (month, day, hour) = match year {
            0 if rng.chance(50) => (1, 1, rng.below(3)),
            9999 if rng.chance(50) => (12, 31, 21 + rng.below(3)),
            _ => (1 + rng.below(12), 1 + rng.below(28), rng.below(24)),
        };
        let fraction = match rng.below(4) {
            0 => String::new(),
            1 => format!(".{:03}", rng.below(1000)),
            2 => format!(".{:06}", rng.below(1_000_000)),
            _ => format!(".{:09}", rng.below(1_000_000_000)),
        };
        let offset = match rng.below(3) {
            0 => "Z".to_string(),
            1 => "+00:00".to_string(),
            _ => format!(
                "{}{:02}:{:02}",
                if rng.chance(50) { '+' } else { '-' },
                rng.below(24),
                rng.below(60)
            ),
        };
        format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{:02}:{:02}{fraction}{offset}",
            rng.below(60),
            rng.below(60)
        )
    }

    /// A JSON number: small and large integers, and doubles from their bits.
    pub fn number(rng: &mut Rng) -> Value {
        match rng.below(6) {
            0 => json!(rng.below(1000)),
            1 => json!(-(rng.below(1_000_000) as i64)),
            2 => json!(rng.next_u64()),
            3 => json!((1u64 << 53) + rng.below(4) as u64),
            4 => json!(rng.below(100_000) as f64 / 100.0),
            _ => Number::from_f64(f64::from_bits(rng.next_u64()))
                .map(Value::Number)
                .unwrap_or(Value::Null),
        }
    }

    /// Any JSON value, nested at most `depth` deep.
    pub fn json_value(rng: &mut Rng, depth: usize) -> Value {
        match rng.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(50)),
            2 => number(rng),
            3 | 4 => Value::String(text(rng, 40)),
            5 => Value::Array(
                (0..rng.below(4))
                    .map(|_| json_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(json_object(rng, depth - 1)),
        }
    }

    pub fn json_object(rng: &mut Rng, depth: usize) -> Map<String, Value> {
        (0..rng.below(5))
            .map(|_| (text(rng, 12), json_value(rng, depth)))
            .collect()
    }

    /// An IP address as clients write it (any case, v4, v6, mapped), or junk.
    pub fn ip_text(rng: &mut Rng) -> String {
        let bits = rng.next_u64();
        match rng.below(5) {
            0 => std::net::Ipv4Addr::from(bits as u32).to_string(),
            1 => std::net::Ipv6Addr::from(((bits as u128) << 64) | rng.next_u64() as u128)
                .to_string()
                .to_uppercase(),
            2 => std::net::Ipv4Addr::from(bits as u32)
                .to_ipv6_mapped()
                .to_string(),
            3 => format!("2001:db8::{:x}", bits as u16),
            _ => text(rng, 20),
        }
    }

    /// An event as a client sends it: mostly valid, sometimes with one rule
    /// broken, so that both answers of `NewEvent::parse` are exercised.
    pub fn event_value(rng: &mut Rng) -> Value {
        let taxonomy = Taxonomy::default();
        let rule = rng.pick(&taxonomy.types).clone();
        let mut event = Map::new();
        let mut put = |rng: &mut Rng, key: &str, value: Value, percent: usize| {
            if rng.chance(percent) {
                event.insert(key.into(), value);
            }
        };
        let id = if rng.chance(90) {
            (0..1 + rng.below(64))
                .map(|_| char::from(b' ' + rng.below(95) as u8))
                .collect()
        } else {
            text(rng, 70)
        };
        put(rng, "id", json!(id), 70);
        let time = instant_text(rng);
        put(rng, "time", json!(time), 70);
        let event_type = if rng.chance(95) {
            scramble_case(rng, &rule.name)
        } else {
            text(rng, 20)
        };
        put(rng, "event_type", json!(event_type), 98);
        let action = if rng.chance(95) {
            let canonical = rng.pick(&rule.actions).clone();
            scramble_case(rng, &canonical)
        } else {
            text(rng, 10)
        };
        put(rng, "action", json!(action), 98);
        let mut actor = Map::new();
        actor.insert("id".into(), json!(text(rng, 200)));
        if rng.chance(60) {
            actor.insert("name".into(), json!(text(rng, 200)));
        }
        if rng.chance(40) {
            actor.insert("email".into(), json!(text(rng, 60)));
        }
        put(rng, "actor", Value::Object(actor), 98);
        for key in ["project", "app", "version"] {
            let value = json!(text(rng, 200));
            put(rng, key, value, 60);
        }
        let mut target = Map::new();
        if rng.chance(80) {
            target.insert("id".into(), json!(text(rng, 200)));
        }
        if rng.chance(60) {
            target.insert("name".into(), json!(text(rng, 200)));
        }
        put(rng, "target", Value::Object(target), 70);
        let mut details = json_object(rng, 3);
        if rng.chance(50) {
            let change = json!({"field": text(rng, 20), "old": json_value(rng, 1), "new": json_value(rng, 1)});
            details.insert("changes".into(), json!([change]));
        }
        put(rng, "details", Value::Object(details), 60);
        let mut context = Map::new();
        if rng.chance(70) {
            context.insert("ip".into(), json!(ip_text(rng)));
        }
        if rng.chance(50) {
            context.insert("user_agent".into(), json!(text(rng, 300)));
        }
        if rng.chance(30) {
            context.insert("request_id".into(), json!(text(rng, 40)));
        }
        put(rng, "context", Value::Object(context), 50);
        let extra = text(rng, 8);
        put(rng, &extra, json!(1), 3);
        Value::Object(event)
    }

    /// A value of one filter parameter: names from the taxonomy in any case,
    /// instants, or any text.
    pub fn filter_param_value(rng: &mut Rng, name: &str) -> String {
        let taxonomy = Taxonomy::default();
        match name {
            "event_type" if rng.chance(85) => {
                let name = rng.pick(&taxonomy.types).name.clone();
                scramble_case(rng, &name)
            }
            "action" if rng.chance(85) => {
                let actions = taxonomy.action_names();
                let name = rng.pick(&actions).to_string();
                scramble_case(rng, &name)
            }
            "from" | "to" if rng.chance(90) => instant_text(rng),
            _ => text(rng, 30),
        }
    }

    /// An export request's `filters` object: known names (sometimes an
    /// unknown one), strings, arrays of strings, `null`, sometimes a number.
    pub fn filter_value(rng: &mut Rng) -> Value {
        let mut filters = Map::new();
        for _ in 0..rng.below(5) {
            let name = if rng.chance(95) {
                rng.pick(crate::filter::FILTER_PARAMS).to_string()
            } else {
                text(rng, 10)
            };
            let value = match rng.below(10) {
                0 => Value::Null,
                1 => json!(rng.below(10)),
                2..=5 => json!(filter_param_value(rng, &name)),
                _ => Value::Array(
                    (0..rng.below(3))
                        .map(|_| json!(filter_param_value(rng, &name)))
                        .collect(),
                ),
            };
            filters.insert(name, value);
        }
        Value::Object(filters)
    }

    /// Text for `q`: mostly terms as people write them (every key, negation,
    /// OR lists, quotes, prefixes, ranges, dates in and around daylight-saving
    /// changes, free text), sometimes cut short, with junk spliced in, or junk.
    pub fn query_text(rng: &mut Rng) -> String {
        let terms = 1 + rng.below(5);
        let mut q: Vec<String> = (0..terms).map(|_| query_term(rng)).collect();
        let mut text = q.join(if rng.chance(80) { " " } else { "  " });
        match rng.below(10) {
            0 => {
                let cut = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(rng.below(text.chars().count() + 1));
                text.truncate(cut.unwrap_or(text.len()));
            }
            1 => {
                let at = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(rng.below(text.chars().count() + 1))
                    .unwrap_or(text.len());
                text.insert_str(at, &super::generate::text(rng, 6));
            }
            2 => text = super::generate::text(rng, 40),
            _ => {}
        }
        q.clear();
        text
    }

    /// The values search queries and search events are drawn from, so that
    /// random queries find some of the random events.
    pub const SEARCH_WORDS: &[&str] = &[
        "Checkout",
        "test case",
        "Ada",
        "ada@example.com",
        "pay",
        "payment-gateway",
        "TC-10",
        "Zürich QA",
        "ünï",
        "İstanbul",
        "ΟΔΟΣ",
        "日本",
        "1.5",
        "a,b",
        "say \"hi\"",
        "",
        "*",
        "-",
    ];

    /// An event for search properties, stored with `seq`: its fields drawn
    /// from `SEARCH_WORDS` (or absent), times around the daylight-saving
    /// changes of 2026, sources of every kind or none; built field by field,
    /// so every combination occurs.
    pub fn search_event(
        rng: &mut Rng,
        seq: u64,
    ) -> (crate::StoredEvent, Option<crate::leaf_v2::Source>) {
        use crate::event::{Actor, Context, NewEventBuilder, Target};
        use crate::leaf_v2::Source;
        let word = |rng: &mut Rng| -> String {
            if rng.chance(10) {
                text(rng, 12)
            } else {
                (*rng.pick(SEARCH_WORDS)).to_string()
            }
        };
        let maybe = |rng: &mut Rng| rng.chance(70).then(|| word(rng));
        let taxonomy = Taxonomy::default();
        let rule = rng.pick(&taxonomy.types).clone();
        let action = rng.pick(&rule.actions).clone();
        // 2026-11-01T04:00:00Z (midnight in New York, the day it falls back)
        // or 2026-03-29T01:00:00Z (the Paris gap), give or take two days.
        let base: i64 = if rng.chance(70) {
            1_793_505_600
        } else {
            1_774_746_000
        };
        let time = crate::Timestamp::from_micros(
            (base + rng.below(4 * 86_400) as i64 - 2 * 86_400) * 1_000_000
                + rng.below(1_000_000) as i64,
        );
        let actor = Actor {
            id: if rng.chance(50) {
                format!("u-{}", rng.below(4))
            } else {
                word(rng)
            },
            name: maybe(rng),
            email: maybe(rng),
        };
        let mut details = Map::new();
        if rng.chance(60) {
            details.insert("status".into(), json!(word(rng)));
        }
        if rng.chance(30) {
            let priority = if rng.chance(50) {
                json!(1.5)
            } else {
                json!(rng.below(3))
            };
            details.insert("priority".into(), priority);
        }
        if rng.chance(30) {
            details.insert("owner".into(), json!({"team": word(rng)}));
        }
        if rng.chance(50) {
            let change = json!({"field": word(rng), "old": word(rng), "new": word(rng)});
            details.insert("changes".into(), json!([change]));
        }
        let target = rng.chance(80).then(|| Target {
            id: maybe(rng),
            name: maybe(rng),
        });
        let ip = match rng.below(3) {
            0 => format!("10.{}.0.{}", rng.below(2), rng.below(256)),
            1 => format!("2001:db8::{:x}", rng.below(65536)),
            _ => "192.168.1.20".to_string(),
        };
        let context = rng.chance(70).then_some(Context {
            ip: Some(ip),
            user_agent: None,
            request_id: None,
        });
        let project = maybe(rng);
        let app = maybe(rng);
        let version = maybe(rng);
        let event = NewEventBuilder::new(format!("e{seq}"), time, rule.name.clone(), action, actor)
            .project(project)
            .app(app)
            .version(version)
            .target(target)
            .details((!details.is_empty()).then_some(details))
            .context(context)
            .build();
        let source = match rng.below(5) {
            0 => None,
            1 => Some(Source::System),
            2 => Some(Source::Console { user: "7".into() }),
            _ => Some(Source::ApiKey {
                key: (*rng.pick(&["k-ci", "k 1"])).to_string(),
                name: String::new(),
            }),
        };
        let stored = crate::StoredEvent::new("acme", seq, super::fixed_now(), event);
        (stored, source)
    }

    fn query_term(rng: &mut Rng) -> String {
        const TEXT_KEYS: &[&str] = &[
            "type",
            "action",
            "user",
            "actor.name",
            "actor.email",
            "project",
            "app",
            "version",
            "target",
            "target.name",
            "changed",
            "id",
            "details.status",
            "details.owner.team",
            "details.priority",
            "details..x",
            "details",
            "colour",
            "TYPE",
        ];
        const DATES: &[&str] = &[
            "2026-11-30",
            "2026-11-01T01:30",
            "2026-03-08T02:30",
            "2026-11-25T14:03:07.123456Z",
            "2026-11-24T10:00+01:00",
            "0000-01-01",
            "9999-12-31",
            "9999-12-31T23:59:59.999999-01:00",
            "2026-02-29",
            "2026-11-30T24:00",
            "yesterday",
        ];
        let negate = if rng.chance(20) { "-" } else { "" };
        let value = |rng: &mut Rng| -> String {
            let word = (*rng.pick(SEARCH_WORDS)).to_string();
            let word = if rng.chance(10) {
                super::generate::text(rng, 8)
            } else {
                word
            };
            let star = if rng.chance(20) { "*" } else { "" };
            if rng.chance(40) || word.contains([' ', ',']) {
                format!(
                    "\"{}\"{star}",
                    word.replace('\\', "\\\\").replace('"', "\\\"")
                )
            } else {
                format!("{word}{star}")
            }
        };
        let list = |rng: &mut Rng, one: &dyn Fn(&mut Rng) -> String| -> String {
            (0..1 + rng.below(3))
                .map(|_| one(rng))
                .collect::<Vec<_>>()
                .join(",")
        };
        let range = |rng: &mut Rng, ends: &dyn Fn(&mut Rng) -> String| -> String {
            match rng.below(7) {
                0 => format!(">={}", ends(rng)),
                1 => format!(">{}", ends(rng)),
                2 => format!("<={}", ends(rng)),
                3 => format!("<{}", ends(rng)),
                4 => format!("{}..{}", ends(rng), ends(rng)),
                5 => format!("..{}", ends(rng)),
                _ => ends(rng),
            }
        };
        let body = match rng.below(9) {
            0 | 1 => format!("{}:{}", rng.pick(TEXT_KEYS), list(rng, &value)),
            2 => {
                let ip = |rng: &mut Rng| match rng.below(4) {
                    0 => format!("10.{}.0.0/{}", rng.below(256), rng.below(34)),
                    1 => format!("2001:db8::{:x}/{}", rng.below(65536), rng.below(130)),
                    2 => super::generate::ip_text(rng),
                    _ => "10.0.0.9".to_string(),
                };
                format!("ip:{}", list(rng, &ip))
            }
            3 => {
                let src = |rng: &mut Rng| {
                    (*rng.pick(&["api_key", "console", "system", "k-ci", "\"k 1\""])).to_string()
                };
                format!("source:{}", list(rng, &src))
            }
            4 => {
                let date = |rng: &mut Rng| (*rng.pick(DATES)).to_string();
                format!("time:{}", list(rng, &|rng: &mut Rng| range(rng, &date)))
            }
            5 => {
                let n = |rng: &mut Rng| match rng.below(4) {
                    0 => u64::MAX.to_string(),
                    1 => "18446744073709551616".to_string(),
                    _ => rng.below(20).to_string(),
                };
                format!("seq:{}", list(rng, &|rng: &mut Rng| range(rng, &n)))
            }
            6 => format!(
                "\"{}\"{}",
                rng.pick(SEARCH_WORDS),
                if rng.chance(20) { "*" } else { "" }
            ),
            _ => value(rng).trim_matches('"').to_string(),
        };
        format!("{negate}{body}")
    }

    /// A cursor: mostly as the server issues them (seq at most the snapshot).
    pub fn cursor(rng: &mut Rng) -> crate::Cursor {
        let snapshot_seq = match rng.below(3) {
            0 => rng.next_u64(),
            _ => rng.below(1_000_000) as u64,
        };
        let seq = if rng.chance(90) {
            snapshot_seq.saturating_sub(rng.below(1000) as u64)
        } else {
            rng.next_u64()
        };
        crate::Cursor {
            time: crate::Timestamp::from_micros(rng.next_u64() as i64),
            seq,
            snapshot_seq,
        }
    }

    /// Text for a `cursor` parameter: issued cursors, damaged ones, junk.
    pub fn cursor_text(rng: &mut Rng) -> String {
        let issued = cursor(rng).encode();
        match rng.below(5) {
            0 | 1 => issued,
            2 => issued[..rng.below(issued.len() + 1)].to_string(),
            3 => {
                use base64::Engine;
                let plain = format!("v1:{}:{}:{}", text(rng, 6), rng.below(9), text(rng, 4));
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain)
            }
            _ => text(rng, 40),
        }
    }
}
