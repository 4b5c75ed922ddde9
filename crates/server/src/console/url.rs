//! Building and checking console URLs: query strings from filter values, and
//! the `next` target after sign-in, which must stay on this site.

/// Percent-encodes `text` for a query component (RFC 3986 unreserved kept).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `path?name=value&…`, or just `path` without pairs.
pub fn with_query(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode_component(n), encode_component(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Where to go after sign-in: a path on this site, or the default. Anything
/// that could leave the site (`//host`, `/\host`, a scheme, control
/// characters) falls back to the default, so `next` cannot redirect away.
pub fn safe_next(next: Option<&str>) -> String {
    const DEFAULT: &str = "/settings/audit-logs";
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\')
                && n.len() <= 4096 =>
        {
            n.to_string()
        }
        _ => DEFAULT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            with_query("/x", &[("event_type".into(), "Test Case".into())]),
            "/x?event_type=Test%20Case"
        );
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/settings/audit-logs?user=u-1")),
            "/settings/audit-logs?user=u-1"
        );
        for bad in [
            "//evil.test/x",
            "/\\evil.test",
            "https://evil.test",
            "javascript:alert(1)",
            "/x\r\nSet-Cookie: a=b",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/settings/audit-logs", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/settings/audit-logs");
    }
}
