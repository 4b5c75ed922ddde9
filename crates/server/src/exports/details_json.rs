//! The `details` cell of a CSV export: the compact JSON that `serde_json`
//! prints for the parsed `details` object (its members in the byte order of
//! their names, numbers as `serde_json` prints them), written from the raw
//! text in the leaf without building the tree.
//!
//! Leaf bytes hold RFC 8785 JSON, which is nearly that text already: no
//! whitespace, strings escaped as `serde_json` escapes them, members sorted.
//! So the writer copies tokens and re-prints only what differs: numbers
//! that are not plain integers (RFC 8785 prints `1e+21`, `serde_json`
//! `1e21`). Where the leaf's text could print differently in a way a token
//! copy cannot fix (member names with escapes or out of byte order: RFC
//! 8785 sorts by UTF-16 code units, which differs for a few characters;
//! escapes `serde_json` would not write), it falls back to parsing the tree.

use serde_json::{Number, Value};

/// Appends to `out` exactly what `serde_json::to_string` gives for
/// `serde_json::from_str::<Value>(raw)`; `raw` must be valid JSON (it comes
/// from `RawValue`, which checked it). `Err` only for text that is not.
pub fn write_compact(raw: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let start = out.len();
    let mut scan = Scan {
        bytes: raw.as_bytes(),
        at: 0,
        out: &mut *out,
    };
    if scan.value().is_some() && scan.at_end() {
        return Ok(());
    }
    out.truncate(start);
    let value: Value = serde_json::from_str(raw)?;
    serde_json::to_writer(&mut *out, &value)
}

/// A copy of JSON text token by token; `None` means "not copyable, use the
/// tree" (the caller discards what was written).
struct Scan<'a, 'o> {
    bytes: &'a [u8],
    at: usize,
    out: &'o mut Vec<u8>,
}

impl Scan<'_, '_> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.at == self.bytes.len()
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.at).copied()
    }

    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then_some(())?;
        self.out.extend_from_slice(word);
        self.at = end;
        Some(())
    }

    fn object(&mut self) -> Option<()> {
        self.at += 1;
        self.out.push(b'{');
        if self.peek()? == b'}' {
            self.at += 1;
            self.out.push(b'}');
            return Some(());
        }
        let mut previous: Option<(usize, usize)> = None;
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            let name = &self.bytes[key.0..key.1];
            // Copying keeps the leaf's member order; serde_json's map prints
            // in byte order of the unescaped names. Equal only when the raw
            // names (no escapes) ascend strictly, which also rules out
            // duplicates (the tree keeps the last).
            if name.contains(&b'\\') {
                return None;
            }
            if let Some((from, to)) = previous {
                if self.bytes[from..to] >= *name {
                    return None;
                }
            }
            previous = Some(key);
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.out.push(b':');
            self.value()?;
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.out.push(b',');
                }
                b'}' => {
                    self.at += 1;
                    self.out.push(b'}');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self) -> Option<()> {
        self.at += 1;
        self.out.push(b'[');
        if self.peek()? == b']' {
            self.at += 1;
            self.out.push(b']');
            return Some(());
        }
        loop {
            self.value()?;
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.out.push(b',');
                }
                b']' => {
                    self.at += 1;
                    self.out.push(b']');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Copies a string whose escapes are the ones serde_json writes (`\"`,
    /// `\\`, the short forms and lowercase `\u00xx` for other control
    /// characters); returns the range of its contents.
    fn string(&mut self) -> Option<(usize, usize)> {
        let start = self.at + 1;
        let mut i = start;
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    match *self.bytes.get(i + 1)? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            let hex = self.bytes.get(i + 2..i + 6)?;
                            let lower_hex = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
                            if hex[..2] != *b"00" || !hex.iter().all(lower_hex) {
                                return None;
                            }
                            // \u0008 and the like have short forms that serde_json uses.
                            if matches!(&hex[2..], b"08" | b"09" | b"0a" | b"0c" | b"0d")
                                || hex[2] > b'1'
                            {
                                return None;
                            }
                            i += 6;
                        }
                        _ => return None,
                    }
                }
                _ => i += 1,
            }
        }
        self.out.extend_from_slice(&self.bytes[self.at..=i]);
        self.at = i + 1;
        Some((start, i))
    }

    /// Plain integers that fit `u64` (or `i64` when negative) print as
    /// written; anything else is parsed as serde_json parses it and printed.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        let mut end = start;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes.get(end) {
            end += 1;
        }
        let token = &self.bytes[start..end];
        if token.is_empty() {
            return None;
        }
        let (negative, digits) = match token.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, token),
        };
        let plain = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            // 19 digits always fit u64; 18 always fit i64 when negative.
            && digits.len() <= if negative { 18 } else { 19 }
            // "-0" is a double (-0.0) to serde_json, printed "-0.0".
            && !(negative && digits.iter().all(|d| *d == b'0'));
        if plain {
            self.out.extend_from_slice(token);
        } else {
            let text = std::str::from_utf8(token).ok()?;
            let number: Number = serde_json::from_str(text).ok()?;
            serde_json::to_writer(&mut *self.out, &number).ok()?;
        }
        self.at = end;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the tree prints: the oracle.
    fn oracle(raw: &str) -> String {
        serde_json::from_str::<Value>(raw).unwrap().to_string()
    }

    fn written(raw: &str) -> String {
        let mut out = b"prefix".to_vec();
        write_compact(raw, &mut out).unwrap();
        String::from_utf8(out[6..].to_vec()).unwrap()
    }

    #[test]
    fn prints_as_the_tree_prints() {
        let canonical = |v: Value| String::from_utf8(auditlog_core::canonical::to_vec(&v)).unwrap();
        let cases = [
            "{}".to_string(),
            "[]".to_string(),
            r#"{"a":1,"b":[true,false,null,"x"],"c":{"d":-5,"e":""}}"#.to_string(),
            // Whitespace, which serde_json leaves out.
            " { \"a\" : [ 1 , 2 ] , \"b\" : { } } ".to_string(),
            // Numbers RFC 8785 prints differently from serde_json.
            canonical(json!({"big": 1e21, "small": 1e-7, "f": 0.1, "i": 18446744073709551615u64, "n": -9007199254740993i64})),
            r#"{"a":-0,"b":-0.0,"c":1E5,"d":12345678901234567890,"e":-123456789012345678,"f":-1234567890123456789,"g":1.0}"#.to_string(),
            // Escapes serde_json writes, and ones it does not.
            r#"{"a":"\"\\\b\f\n\r\t\u0000\u001f","b":"\u00e9","c":"\/","d":"\u0008","e":"\u001F"}"#.to_string(),
            // Members out of byte order (RFC 8785 sorts by UTF-16), duplicates, escaped names.
            canonical(json!({"\u{feff}": 1, "😀": 2, "a": {"\u{fffd}": 3, "\u{10000}": 4}})),
            r#"{"b":1,"a":2}"#.to_string(),
            r#"{"a":1,"a":2}"#.to_string(),
            r#"{"a\"b":1,"a":2}"#.to_string(),
            r#"{"x":{"b":1,"a":2}}"#.to_string(),
            // Non-ASCII copied as is, DEL is not escaped.
            "{\"日本\":\"✓\u{7f}\u{2028}\"}".to_string(),
        ];
        for raw in cases {
            assert_eq!(written(&raw), oracle(&raw), "{raw}");
        }
    }

    #[test]
    fn refuses_text_that_is_not_json() {
        let mut out = Vec::new();
        assert!(write_compact("{\"a\":}", &mut out).is_err());
    }
}
