//! Leaf v2 checked by an implementation that shares no code with ours: the
//! Node.js script `leaf_v2_rebuild.js` (node:crypto's SHA-256, JCS as
//! JSON.stringify with keys sorted by UTF-16 code units) rebuilds each leaf
//! from the served event and its openings, and its leaf hash must equal the
//! `hash` core served. The events are chosen to trip a canonicaliser up:
//! non-ASCII, escapes, keys whose UTF-8 and UTF-16 orders differ, numbers
//! that ECMAScript prints its own way, nested and declared `details` paths.
//!
//! Without `node` the test prints SKIPPED outside CI and fails in CI
//! (`CI=true`), which installs it.

use auditlog_core::leaf;
use auditlog_core::leaf_v2::{self, DetailsPath, LeafV2Error, Salt, SaltSource, Source};
use auditlog_core::{NewEvent, StoredEvent, Taxonomy, Timestamp};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Reproducible salts that still differ per commitment (and per byte).
struct SequenceSalts(u64);

impl SaltSource for SequenceSalts {
    fn next_salt(&mut self) -> Result<Salt, LeafV2Error> {
        self.0 += 1;
        let mut salt = [0u8; 16];
        for (i, byte) in salt.iter_mut().enumerate() {
            *byte = (self.0 as u8).wrapping_mul(31).wrapping_add(i as u8 * 7);
        }
        Ok(salt)
    }
}

/// Each case: the client's event, the account's declared personal paths and
/// who sent it.
fn cases() -> Vec<(Value, Vec<&'static str>, Source)> {
    let key = Source::ApiKey {
        key: "k-\u{e9}\u{1f511}".into(),
        name: "ci \"deploy\"\\bot".into(),
    };
    vec![
        (
            json!({
                "id": "plain", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
                "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
                "project": "Checkout", "app": "Web", "version": "2.3",
                "target": {"id": "TC-1042", "name": "Login with SSO"},
                "details": {"changes": [{"field": "title", "old": "Login", "new": "Login with SSO"}]},
                "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "request_id": "r-88"}
            }),
            vec![],
            key.clone(),
        ),
        (
            json!({
                "id": "non-ascii", "event_type": "Element", "action": "Create",
                "actor": {"id": "\u{fc}ser-\u{4e2d}\u{6587}", "name": "Zo\u{eb} \u{1f600} \u{d7}", "email": "z\u{f6}@b\u{fc}cher.de"},
                "target": {"id": "\u{2028}line\u{2029}sep", "name": "tab\there \"quoted\" back\\slash \u{1} \u{1f} \u{7f}"},
                "details": {
                    "\u{e000}": "private use sorts after the emoji in UTF-8, before it in UTF-16",
                    "\u{1f600}": "emoji",
                    "\u{80}": 1, "\u{f6}": 2, "1": 3, "\r": 4, "": "empty key",
                    "Stra\u{df}e": {"Bewohner": "M\u{fc}ller"}
                },
                "context": {"user_agent": "Ag\u{e9}nt/1.0 (\u{1f916})"}
            }),
            vec!["details.Stra\u{df}e.Bewohner", "details.\u{1f600}"],
            Source::Console { user: "7".into() },
        ),
        (
            json!({
                "id": "numbers", "event_type": "Element", "action": "Update", "actor": {"id": "u"},
                "details": {
                    "big": 1e21, "just_below": 1e20, "tenth": 0.1, "negative_zero": -0.0,
                    "tiny": 1e-7, "micro": 0.000001, "max": 1.7976931348623157e308, "min": 5e-324,
                    "above_2_53": 9007199254740993u64, "u64_max": 18446744073709551615u64,
                    "negative": -123.456, "third": 333333333.3333333, "int": 42, "neg_int": -7,
                    "list": [0.1, 1e21, -0.0, true, false, null, "", [], {}]
                }
            }),
            vec!["details.tenth", "details.list"],
            Source::System,
        ),
        (
            json!({
                "id": "nested", "event_type": "Test Plan", "action": "Delete", "actor": {"id": "u-2", "email": "e@x.io"},
                "details": {
                    "ticket": {"owner": {"name": "Bob", "email": "bob@example.com", "tags": ["a", {"z": 1, "a": 2}]}, "state": "open"},
                    "assignee": null,
                    "deep": {"a": {"b": {"c": {"d": "hidden"}}}}
                },
                "context": {"ip": "2001:DB8::1", "request_id": "r-\u{1f4a9}"}
            }),
            // Inside another declared path, absent, null and deep.
            vec![
                "details.ticket.owner",
                "details.ticket.owner.email",
                "details.missing",
                "details.assignee",
                "details.deep.a.b.c",
            ],
            key,
        ),
    ]
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// Runs the Node verifier over the served events; per event its leaf hash
/// (hex) and rebuilt leaf text.
fn node_rebuild(dir: &Path, served: &[Value]) -> Vec<(String, String)> {
    let input = dir.join("served.jsonl");
    let lines: Vec<String> = served.iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/leaf_v2_rebuild.js");
    let out = Command::new("node")
        .arg(script)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (hash, leaf) = line.split_once('\t').unwrap();
            (hash.to_string(), leaf.to_string())
        })
        .collect()
}

#[test]
fn node_rebuilds_every_v2_leaf_to_its_served_hash() {
    if !node_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI must run the independent leaf v2 check, but `node` is not installed");
        }
        println!("SKIPPED: node is not installed; the independent leaf v2 check did not run");
        return;
    }
    let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
    let mut salts = SequenceSalts(0);
    let mut served = Vec::new();
    let mut leaves = Vec::new();
    for (seq, (body, declared, source)) in cases().into_iter().enumerate() {
        let event = StoredEvent::new(
            "\u{e4}cme \"quoted\"",
            seq as u64 + 1,
            now,
            NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
        );
        let paths: Vec<DetailsPath> = declared
            .iter()
            .map(|p| DetailsPath::parse(p).unwrap())
            .collect();
        let sealed = leaf_v2::seal(&event, &source, &paths, &mut salts).unwrap();
        let hash = leaf::leaf_hash(&sealed.leaf_bytes);
        served.push(Value::Object(leaf_v2::served_event(
            &event,
            &source,
            &sealed.openings,
            &hash,
        )));
        leaves.push(String::from_utf8(sealed.leaf_bytes).unwrap());
    }
    // A control that must not match: a value changed after serving.
    let mut altered = served[0].clone();
    altered["actor"]["email"] = json!("eve@example.com");
    served.push(altered);

    let dir = tempfile::tempdir().unwrap();
    let rebuilt = node_rebuild(dir.path(), &served);
    assert_eq!(rebuilt.len(), served.len());
    for (i, (hash, node_leaf)) in rebuilt.iter().enumerate().take(leaves.len()) {
        assert_eq!(
            hash,
            served[i]["hash"].as_str().unwrap(),
            "case {i} ({}): node rebuilt\n{node_leaf}\ncore built\n{}",
            served[i]["id"],
            leaves[i]
        );
        assert_eq!(node_leaf, &leaves[i]);
    }
    let (control, _) = &rebuilt[leaves.len()];
    assert_ne!(control, served[0]["hash"].as_str().unwrap());
    // The declared paths were committed: no case is trivially plain.
    assert!(leaves[1].contains("\"Bewohner\":{\"c\":"), "{}", leaves[1]);
    assert!(leaves[3].contains("\"owner\":{\"c\":"), "{}", leaves[3]);
    assert!(leaves[2].contains("1e+21"), "{}", leaves[2]);
}
