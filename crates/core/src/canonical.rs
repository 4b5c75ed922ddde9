//! RFC 8785 (JSON Canonicalization Scheme) encoding. An event's leaf bytes are
//! this encoding of the stored event, so any verifier that implements JCS
//! recomputes exactly the bytes we hashed.

use serde_json::Value;

/// Encodes `value` in canonical form: object members sorted by their UTF-16
/// code units, no whitespace, numbers as ECMAScript prints them.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// JCS escapes exactly what serde_json escapes (quote, backslash, control
/// characters with the short forms and lowercase `\u00xx`), so reuse it.
fn write_string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    const SAFE: u64 = 1 << 53;
    if let Some(u) = n.as_u64().filter(|u| *u <= SAFE) {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= SAFE) {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        out.extend_from_slice(es6_number(n.as_f64().unwrap_or(0.0)).as_bytes());
    }
}

/// ECMAScript's Number.prototype.toString for a finite double (JSON has no
/// NaN or infinity), built on Rust's shortest round-trip digits.
pub fn es6_number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", v.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{e_sign}{}", e.abs())
        } else {
            format!("{}.{}e{e_sign}{}", &digits[..1], &digits[1..], e.abs())
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_utf16_and_drops_whitespace() {
        // The RFC 8785 section 3.2.3 sorting example.
        let v: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let text = String::from_utf8(to_vec(&v)).unwrap();
        assert_eq!(
            text,
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn prints_numbers_like_ecmascript() {
        // Values from the RFC 8785 appendix and the ECMAScript spec.
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (4.35, "4.35"),
            (0.002, "0.002"),
            (333333333.3333333, "333333333.3333333"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (9007199254740994.0, "9007199254740994"),
        ];
        for (v, want) in cases {
            assert_eq!(es6_number(v), want, "{v}");
        }
    }

    #[test]
    fn shortest_doubles_read_back_to_the_same_text() {
        // Found by the property tests: without serde_json's float_roundtrip
        // these were read one ulp off (…962e+96 as …961e+96), so encoding
        // canonical JSON again gave other bytes.
        for text in [
            "6.273312363528962e+96",
            "1.8726782586994e+262",
            "-6.266654422087438e+134",
            "1.7976931348623157e+308",
            "5e-324",
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(String::from_utf8(to_vec(&v)).unwrap(), text);
        }
    }

    #[test]
    fn encodes_a_nested_value() {
        let v = json!({"b": [1, 2.5, "x\n\"y\""], "a": {"z": null, "y": true}, "n": 18446744073709551615u64});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a":{"y":true,"z":null},"b":[1,2.5,"x\n\"y\""],"n":18446744073709552000}"#
        );
    }
}
