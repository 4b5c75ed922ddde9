//! The served JSON of a version 2 event spliced from its stored bytes:
//! what [`open`](super::open) and serialising its `Map` give, without
//! building a `Value` tree per event. The leaf's members (and the stored
//! personal values) are copied as the raw JSON text they are stored as,
//! only the members that opening changes (`personal` out; `actor`,
//! `context`, `openings` and `hash` in) are written, in the same order
//! (`serde_json::Map` sorts members by their bytes). What log streams send
//! for each event, where the `Value` round trip was most of the cost.
//!
//! It applies to the common case: the leaf commits to the actor's and the
//! context's personal values only (no `details` path). Anything else (a
//! `details` commitment, bytes it does not expect) answers `None`, and the
//! caller takes the `Map` path, which also reports what is wrong.
//!
//! The one difference from the `Map` path: numbers are written as the leaf
//! stores them (RFC 8785, ECMAScript's form, such as `1e+21`), not as
//! `serde_json` prints the parsed double (`1e21`): the same JSON values.
//! Members of nested objects keep the leaf's RFC 8785 order (by UTF-16 code
//! units), which differs from byte order only for names with characters
//! above U+FFFF. Strings are escaped alike (see `canonical::write_string`).
//!
//! The stored bytes are read by a small scanner that checks them as
//! strictly as `serde_json` does (UTF-8, the JSON grammar, nesting at most
//! 128 deep) but builds nothing: each member is a pair of slices of the
//! input. A name holding an escape, a duplicate member, or anything else
//! unexpected answers `None` (the `Map` path). Parsing the leaf and the
//! personal values into `BTreeMap`s of `RawValue`s was half of a log
//! stream's CPU per event (BENCHMARKS.md, issue 15, 2026-12-07).

use super::openings::PERSONAL;
use super::salt::SALT_BYTES;
use super::VERSION;
use super::{ACTOR_PERSONAL, CONTEXT_PERSONAL};
use crate::leaf;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// An object's members in input order: (name without its quotes, raw value).
type Members<'a> = Vec<(&'a [u8], &'a [u8])>;

/// One member of the served event.
enum Member<'a> {
    Raw(&'a [u8]),
    /// An object written from these members (in order).
    Object(Members<'a>),
    /// `openings`: `{"personal": <salt>}`.
    Openings(&'a [u8]),
    Hash,
}

/// Appends the served JSON of the version 2 leaf `leaf_bytes` opened with
/// `personal_bytes` (and `hash`) to `out`; `None`, with `out` as it was,
/// when this event needs the `Map` path.
pub fn write_opened(
    leaf_bytes: &[u8],
    personal_bytes: &[u8],
    leaf_hash: &[u8],
    out: &mut Vec<u8>,
) -> Option<()> {
    let start = out.len();
    let written = write(leaf_bytes, personal_bytes, leaf_hash, out);
    if written.is_none() {
        out.truncate(start);
    }
    written
}

fn write(
    leaf_bytes: &[u8],
    personal_bytes: &[u8],
    leaf_hash: &[u8],
    out: &mut Vec<u8>,
) -> Option<()> {
    let leaf = object(leaf_bytes)?;
    let stored = object(personal_bytes)?;
    let (mut personal, mut openings, mut details) = (None, None, None);
    for (name, value) in &stored {
        let slot = match *name {
            b"personal" => &mut personal,
            b"openings" => &mut openings,
            b"details" => &mut details,
            _ => continue,
        };
        if slot.replace(*value).is_some() {
            return None;
        }
    }
    let personal = members_of(personal?)?;
    // `details`: absent, `null` or `{}` (no commitment in the details).
    if let Some(details) = details {
        if details != b"null" && !members_of(details)?.is_empty() {
            return None;
        }
    }
    // Only the `personal` commitment, with a salt `Openings` would take.
    let openings = members_of(openings?)?;
    let [(name, salt_raw)] = openings.as_slice() else {
        return None;
    };
    if *name != PERSONAL.as_bytes() {
        return None;
    }
    let salt = salt_raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if salt.contains(&b'\\') {
        return None;
    }
    let mut decoded = [0u8; 3 * SALT_BYTES];
    if BASE64.decode_slice(salt, &mut decoded).ok()? != SALT_BYTES {
        return None;
    }
    let version = std::str::from_utf8(find(&leaf, b"v")?).ok()?;
    if version.parse::<u64>().ok()? != VERSION {
        return None;
    }
    let mut members: Vec<(&[u8], Member<'_>)> = Vec::with_capacity(leaf.len() + 3);
    let mut committed = false;
    for (name, value) in &leaf {
        if *name == PERSONAL.as_bytes() {
            committed = true;
        } else {
            members.push((name, Member::Raw(value)));
        }
    }
    if !committed {
        return None;
    }
    let plain = |name: &str| find(&personal, name.as_bytes());
    let actor: Members<'_> = ACTOR_PERSONAL
        .iter()
        .filter_map(|(member, name)| plain(name).map(|value| (member.as_bytes(), value)))
        .collect();
    if !actor.is_empty() {
        set(&mut members, b"actor", Member::Object(sorted(actor)?));
    }
    let opened: Members<'_> = CONTEXT_PERSONAL
        .iter()
        .filter_map(|(member, name)| plain(name).map(|value| (member.as_bytes(), value)))
        .collect();
    if !opened.is_empty() {
        let mut context = match members.iter().find(|(name, _)| *name == b"context") {
            Some((_, Member::Raw(raw))) => members_of(raw)?,
            _ => Vec::new(),
        };
        for (member, value) in opened {
            match context.iter_mut().find(|(name, _)| *name == member) {
                Some(slot) => slot.1 = value,
                None => context.push((member, value)),
            }
        }
        set(&mut members, b"context", Member::Object(sorted(context)?));
    }
    set(&mut members, b"openings", Member::Openings(salt_raw));
    set(&mut members, b"hash", Member::Hash);
    members.sort_by(|a, b| a.0.cmp(b.0));
    if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return None;
    }
    out.reserve(leaf_bytes.len() + personal_bytes.len() + 80);
    out.push(b'{');
    for (i, (name, member)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_name(name, out);
        match member {
            Member::Raw(raw) => out.extend_from_slice(raw),
            Member::Object(items) => write_object(items, out),
            Member::Openings(salt) => write_object(&[(PERSONAL.as_bytes(), salt)], out),
            Member::Hash => {
                out.push(b'"');
                leaf::write_hex(leaf_hash, out);
                out.push(b'"');
            }
        }
    }
    out.push(b'}');
    Some(())
}

/// The value of member `name` (the last, as a map would keep it).
fn find<'a>(members: &Members<'a>, name: &[u8]) -> Option<&'a [u8]> {
    members
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| *value)
}

/// Replaces member `name`'s value, or adds the member.
fn set<'a>(members: &mut Vec<(&'a [u8], Member<'a>)>, name: &'a [u8], member: Member<'a>) {
    match members.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = member,
        None => members.push((name, member)),
    }
}

/// `members` by name (bytes: as `serde_json::Map` orders them), or `None`
/// when a name is there twice.
fn sorted(mut members: Members<'_>) -> Option<Members<'_>> {
    members.sort_by(|a, b| a.0.cmp(b.0));
    let duplicates = members.windows(2).any(|pair| pair[0].0 == pair[1].0);
    (!duplicates).then_some(members)
}

/// `"name":`. Names come from the scanner without escapes, so they hold no
/// `"`, `\` or control character: `serde_json` would write them as they are.
fn write_name(name: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(name);
    out.extend_from_slice(b"\":");
}

fn write_object(items: &[(&[u8], &[u8])], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_name(name, out);
        out.extend_from_slice(value);
    }
    out.push(b'}');
}

/// The members of the JSON object that is the whole of `bytes` (checked as
/// UTF-8 and JSON); `None` when it is not one, or a name holds an escape.
fn object(bytes: &[u8]) -> Option<Members<'_>> {
    std::str::from_utf8(bytes).ok()?;
    let mut scan = Scan { bytes, at: 0 };
    scan.whitespace();
    let members = scan.members(0)?;
    scan.whitespace();
    (scan.at == bytes.len()).then_some(members)
}

/// The members of `raw`, a value already checked by [`object`]'s scan
/// (so valid JSON and UTF-8); `None` when it is not an object.
fn members_of(raw: &[u8]) -> Option<Members<'_>> {
    let mut scan = Scan { bytes: raw, at: 0 };
    let members = scan.members(0)?;
    (scan.at == raw.len()).then_some(members)
}

/// Nesting deeper than this is refused (as `serde_json` refuses it).
const MAX_DEPTH: u32 = 128;

/// A cursor over JSON text that checks it without building anything.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// An object's members (at its `{`), keeping names and raw values.
    fn members(&mut self, depth: u32) -> Option<Members<'a>> {
        self.eat(b'{')?;
        let mut members = Vec::with_capacity(16);
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(members);
        }
        loop {
            self.whitespace();
            let start = self.at;
            if self.string()? {
                return None;
            }
            let name = &self.bytes[start + 1..self.at - 1];
            self.whitespace();
            self.eat(b':')?;
            self.whitespace();
            let start = self.at;
            self.value(depth + 1)?;
            members.push((name, &self.bytes[start..self.at]));
            self.whitespace();
            match self.next()? {
                b',' => {}
                b'}' => return Some(members),
                _ => return None,
            }
        }
    }

    /// Skips one value, checking it.
    fn value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.at += 1;
                self.whitespace();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.whitespace();
                    self.string()?;
                    self.whitespace();
                    self.eat(b':')?;
                    self.whitespace();
                    self.value(depth + 1)?;
                    self.whitespace();
                    match self.next()? {
                        b',' => {}
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.whitespace();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.whitespace();
                    self.value(depth + 1)?;
                    self.whitespace();
                    match self.next()? {
                        b',' => {}
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Skips a string (at its `"`); whether it holds an escape.
    fn string(&mut self) -> Option<bool> {
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            self.plain();
            match self.next()? {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                if !self.next()?.is_ascii_hexdigit() {
                                    return None;
                                }
                            }
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// Skips the bytes of a string that need no look (neither `"`, `\\`
    /// nor a control character), eight at a time while a word holds none:
    /// most of the leaf's bytes are in strings, and the byte-by-byte loop
    /// was the scanner's largest cost (BENCHMARKS.md, issue 15). The word
    /// test has no false negatives (it may have false positives, which
    /// the byte test settles).
    fn plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // High bit set in some byte of the answer iff a byte of `v` is
        // below `n` (for `n` up to 128).
        let below = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGH;
        loop {
            if let Some(word) = self
                .bytes
                .get(self.at..self.at + 8)
                .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
            {
                let v = u64::from_le_bytes(word);
                if below(v ^ (ONES * 0x22), 1) | below(v ^ (ONES * 0x5c), 1) | below(v, 0x20) == 0 {
                    self.at += 8;
                    continue;
                }
            }
            match self.peek() {
                Some(byte) if byte != b'"' && byte != b'\\' && byte >= 0x20 => self.at += 1,
                _ => return,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at.checked_add(word.len())?;
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_v2::{seal, DetailsPath, OsSalts, Source};
    use crate::{NewEvent, StoredEvent, Taxonomy, Timestamp};
    use serde_json::{json, Value};

    fn sealed(body: Value, paths: &[&str]) -> crate::leaf_v2::SealedLeaf {
        let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
        let event = StoredEvent::new(
            "acme",
            7,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        );
        let paths: Vec<DetailsPath> = paths
            .iter()
            .map(|p| DetailsPath::parse(p).unwrap())
            .collect();
        let source = Source::ApiKey {
            key: "key_1".into(),
            name: "ci \"key\"".into(),
        };
        seal(&event, &source, &paths, &mut OsSalts).unwrap()
    }

    /// What `StoredRecord::write_api_json` writes for a version 2 leaf.
    fn map_path(leaf: &crate::leaf_v2::SealedLeaf, hash: &[u8]) -> Vec<u8> {
        let mut served = crate::leaf_v2::open(&leaf.leaf_bytes, &leaf.personal).unwrap();
        served.insert("hash".into(), Value::String(leaf::to_hex(hash)));
        serde_json::to_vec(&served).unwrap()
    }

    fn spliced(leaf: &crate::leaf_v2::SealedLeaf, hash: &[u8]) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        let done = write_opened(&leaf.leaf_bytes, &leaf.personal, hash, &mut out);
        assert!(out.starts_with(b"prefix"));
        done.map(|()| out[6..].to_vec())
    }

    fn base() -> Value {
        json!({
            "id": "e-1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case",
            "action": "Update",
            "actor": {"id": "u-17", "name": "Ada \"the\" Lovelace\t\u{1}é😀", "email": "ada@example.com"},
            "project": "Checkout", "target": {"id": "TC-1042", "name": "ünïcode\n"},
            "details": {"assignee": "Grace", "n": 42, "neg": -7, "changes": [{"field": "title", "old": "a", "new": "b"}], "ключ": true, "z": null},
            "context": {"ip": "203.0.113.7", "request_id": "r-88", "user_agent": "curl/8 \\ x"}
        })
    }

    #[test]
    fn the_spliced_json_is_the_map_paths_byte_for_byte() {
        let mut cases = vec![base()];
        // No context at all; context with only personal members; only
        // other members; an actor with its id only.
        let mut v = base();
        v.as_object_mut().unwrap().remove("context");
        cases.push(v);
        let mut v = base();
        v["context"] = json!({"ip": "::1"});
        cases.push(v);
        let mut v = base();
        v["context"] = json!({"request_id": "r"});
        cases.push(v);
        let mut v = base();
        v["actor"] = json!({"id": "u"});
        cases.push(v);
        for body in cases {
            let leaf = sealed(body.clone(), &[]);
            let hash = leaf::leaf_hash(&leaf.leaf_bytes);
            let fast = spliced(&leaf, &hash).expect("the common case is spliced");
            let slow = map_path(&leaf, &hash);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap(),
                "for {body}"
            );
        }
    }

    #[test]
    fn numbers_keep_their_stored_form_and_the_same_values() {
        let mut v = base();
        v["details"] = json!({"big": 1e21, "small": 1.5e-7, "f": 0.1, "i": 12345678901234567u64});
        let leaf = sealed(v, &[]);
        let hash = leaf::leaf_hash(&leaf.leaf_bytes);
        let fast: Value = serde_json::from_slice(&spliced(&leaf, &hash).unwrap()).unwrap();
        let slow: Value = serde_json::from_slice(&map_path(&leaf, &hash)).unwrap();
        assert_eq!(fast, slow);
        // And the served event still rebuilds its leaf.
        assert_eq!(
            crate::leaf_v2::rebuild_leaf(&fast).unwrap(),
            leaf.leaf_bytes
        );
    }

    #[test]
    fn details_commitments_and_unexpected_bytes_take_the_map_path() {
        let leaf = sealed(base(), &["details.assignee"]);
        let hash = leaf::leaf_hash(&leaf.leaf_bytes);
        assert!(spliced(&leaf, &hash).is_none(), "a details commitment");
        let plain = sealed(base(), &[]);
        let mut out = b"x".to_vec();
        assert!(write_opened(b"{\"a\":1}", &plain.personal, &hash, &mut out).is_none());
        assert!(write_opened(&plain.leaf_bytes, b"[]", &hash, &mut out).is_none());
        let bad_salt = String::from_utf8(plain.personal.clone()).unwrap();
        let salt = bad_salt
            .split("\"openings\":{\"personal\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let bad_salt = bad_salt.replace(salt, "c2hvcnQ=");
        assert!(write_opened(&plain.leaf_bytes, bad_salt.as_bytes(), &hash, &mut out).is_none());
        assert_eq!(out, b"x", "nothing left behind");
    }

    #[test]
    fn nested_and_escaped_values_are_spliced_as_the_map_path_writes_them() {
        let mut v = base();
        v["details"] = json!({
            "empty_list": [], "empty_object": {}, "deep": [[1, [2, {"d": null, "e": [true, false]}]]],
            "n": -0.5e-3, "zero": 0, "text": "a\\b\"c\u{7f}\u{2028}/", "list": ["x", {"y": "z"}]
        });
        v["context"] = json!({"ip": "10.0.0.1", "request_id": "r\"1", "user_agent": "ua"});
        let leaf = sealed(v, &[]);
        let hash = leaf::leaf_hash(&leaf.leaf_bytes);
        assert_eq!(
            String::from_utf8(spliced(&leaf, &hash).unwrap()).unwrap(),
            String::from_utf8(map_path(&leaf, &hash)).unwrap()
        );
    }

    /// The string scan before the word-at-a-time skip: one byte at a time.
    fn string_bytewise(bytes: &[u8]) -> Option<(bool, usize)> {
        let mut at = 1;
        let mut escaped = false;
        (bytes.first()? == &b'"').then_some(())?;
        loop {
            let byte = *bytes.get(at)?;
            at += 1;
            match byte {
                b'"' => return Some((escaped, at)),
                b'\\' => {
                    escaped = true;
                    let next = *bytes.get(at)?;
                    at += 1;
                    match next {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                if !bytes.get(at)?.is_ascii_hexdigit() {
                                    return None;
                                }
                                at += 1;
                            }
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    #[test]
    fn the_string_scan_skips_words_as_the_byte_loop_reads_bytes() {
        // Every special byte (and bytes around the word tests' edges) at
        // every offset of the eight-byte words, in strings of 0 to 40 bytes.
        let specials: [&[u8]; 12] = [
            b"\"",
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            b"\\x",
            b"\x1f",
            b"\x00",
            b"\x20",
            b"!",
            b"#",
            "é😀".as_bytes(),
            b"\x7f",
        ];
        for len in 0..40 {
            for at in 0..=len {
                for special in specials {
                    let mut text = vec![b'"'];
                    text.extend(std::iter::repeat_n(b'a', at));
                    text.extend_from_slice(special);
                    text.extend(std::iter::repeat_n(b'b', len - at));
                    text.push(b'"');
                    text.extend_from_slice(b",\"tail\"");
                    for end in [text.len(), text.len() - 7] {
                        let input = &text[..end];
                        let mut scan = Scan {
                            bytes: input,
                            at: 0,
                        };
                        let fast = scan.string().map(|escaped| (escaped, scan.at));
                        assert_eq!(
                            fast,
                            string_bytewise(input),
                            "{:?}",
                            String::from_utf8_lossy(input)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_scanner_refuses_what_serde_json_refuses() {
        let plain = sealed(base(), &[]);
        let hash = leaf::leaf_hash(&plain.leaf_bytes);
        let text = String::from_utf8(plain.leaf_bytes.clone()).unwrap();
        assert!(text.starts_with('{') && text.ends_with('}'));
        let body = &text[1..text.len() - 1];
        let broken = [
            format!("{text}x"),
            format!("{{{body},\"zz\":tru}}"),
            format!("{{{body},\"zz\":01}}"),
            format!("{{{body},\"zz\":1.}}"),
            format!("{{{body},\"zz\":-}}"),
            format!("{{{body},\"zz\":\"a\u{1}\"}}"),
            format!("{{{body},\"zz\":\"\\x\"}}"),
            format!("{{{body},\"zz\":[1,]}}"),
            format!("{{{body},\"zz\":{{\"a\" 1}}}}"),
            format!("{{{body},\"zz\":\"open}}"),
            // A name with an escape, and a duplicate member: the Map path.
            format!("{{{body},\"z\\u007a\":1}}"),
            format!("{{{body},\"v\":2}}"),
            text[..text.len() - 1].to_string(),
        ];
        for leaf_bytes in &broken {
            let mut out = b"x".to_vec();
            assert!(
                write_opened(leaf_bytes.as_bytes(), &plain.personal, &hash, &mut out).is_none(),
                "{leaf_bytes}"
            );
            assert_eq!(out, b"x");
        }
        let mut deep = "[".repeat(200);
        deep.push_str(&"]".repeat(200));
        let too_deep = format!("{{{body},\"zz\":{deep}}}");
        let mut out = Vec::new();
        assert!(write_opened(too_deep.as_bytes(), &plain.personal, &hash, &mut out).is_none());
        // Whitespace around members is allowed, as in any JSON.
        let spaced = format!("{{ {} , \"zz\" : [ 1 , 2 ] }}", body);
        assert!(write_opened(spaced.as_bytes(), &plain.personal, &hash, &mut out).is_some());
    }
}
