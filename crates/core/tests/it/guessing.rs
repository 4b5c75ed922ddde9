//! Issue 16, "a test shows that hashing candidate values cannot confirm
//! them for v2 leaves": an attacker who holds everything an erasure leaves
//! behind — the leaf bytes (served by proofs and tiles), its leaf hash, and
//! a perfect guess of every personal value (here the true ones) — cannot
//! confirm the guess, because each commitment is salted with 16 random
//! bytes that the erasure removes with the values. Hashing the candidates
//! unsalted, with a zero salt, or with any of many guessed salts never
//! gives the commitment; only the true salt does (which is why the salts are
//! erased too). A version 1 leaf, by contrast, commits to the plain values:
//! its leaf hash confirms the guess at once — why an erasure takes a v1
//! event's whole body.

use auditlog_core::leaf_v2::{self, commitment, DetailsPath, OsSalts, Source};
use auditlog_core::{canonical, leaf, NewEvent, StoredEvent, Taxonomy, Timestamp};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn event() -> StoredEvent {
    let now = Timestamp::parse("now", "2026-11-25T15:00:00Z").unwrap();
    let body = json!({
        "id": "e-1", "time": "2026-11-25T14:03:07.123456Z", "event_type": "Test Case", "action": "Update",
        "actor": {"id": "u-17", "name": "Ada Lovelace", "email": "ada@example.com"},
        "details": {"assignee": "Grace Hopper"},
        "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"}
    });
    StoredEvent::new(
        "acme",
        7,
        now,
        NewEvent::parse(&body, &Taxonomy::default(), now).unwrap(),
    )
}

fn sha256_b64(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    BASE64.encode(hasher.finalize())
}

#[test]
fn candidate_values_do_not_confirm_a_v2_commitment_without_its_salt() {
    let stored = event();
    let paths = [DetailsPath::parse("details.assignee").unwrap()];
    let sealed = leaf_v2::seal(&stored, &Source::System, &paths, &mut OsSalts).unwrap();
    let leaf: Value = serde_json::from_slice(&sealed.leaf_bytes).unwrap();
    let committed = leaf["personal"]["c"].as_str().unwrap().to_string();
    let assignee_committed = leaf["details"]["assignee"]["c"]
        .as_str()
        .unwrap()
        .to_string();

    // The attacker's perfect guesses, in every form a guess could take.
    let personal = json!({
        "actor.id": "u-17", "actor.name": "Ada Lovelace", "actor.email": "ada@example.com",
        "context.ip": "203.0.113.7", "context.user_agent": "Mozilla/5.0"
    });
    let mut candidates: Vec<Vec<u8>> = vec![
        canonical::to_vec(&personal),
        serde_json::to_vec(&personal).unwrap(),
        canonical::to_vec(&json!("Grace Hopper")),
        b"Grace Hopper".to_vec(),
    ];
    for text in [
        "u-17",
        "Ada Lovelace",
        "ada@example.com",
        "203.0.113.7",
        "Mozilla/5.0",
    ] {
        candidates.push(text.as_bytes().to_vec());
        candidates.push(canonical::to_vec(&json!(text)));
    }
    let mut tried = 0usize;
    for candidate in &candidates {
        // Unsalted, and with 65,536 guessed salts (of 2^128).
        let mut attempts = vec![sha256_b64(&[candidate])];
        for guess in 0u32..65_536 {
            let mut salt = [0u8; 16];
            salt[..4].copy_from_slice(&guess.to_le_bytes());
            attempts.push(sha256_b64(&[&salt, candidate]));
        }
        for attempt in attempts {
            assert_ne!(attempt, committed);
            assert_ne!(attempt, assignee_committed);
            tried += 1;
        }
    }
    assert_eq!(tried, candidates.len() * 65_537);
    // Nor does the leaf hash confirm them: the leaf rebuilt from the true
    // values with any salt but the erased one hashes to another leaf hash.
    let wrong_salt = [0u8; 16];
    let mut guessed = leaf.as_object().unwrap().clone();
    guessed.insert("personal".into(), commitment(&wrong_salt, &personal));
    guessed.insert(
        "details".into(),
        json!({"assignee": commitment(&wrong_salt, &json!("Grace Hopper"))}),
    );
    let guessed_leaf = canonical::to_vec(&Value::Object(guessed));
    assert_ne!(
        leaf::leaf_hash(&guessed_leaf),
        leaf::leaf_hash(&sealed.leaf_bytes)
    );

    // Only the true salt (which an erasure removes with the values) opens it.
    let served = leaf_v2::served_event(
        &stored,
        &Source::System,
        &sealed.openings,
        &leaf::leaf_hash(&sealed.leaf_bytes),
    );
    let salt = BASE64
        .decode(served["openings"]["personal"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        sha256_b64(&[&salt, &canonical::to_vec(&personal)]),
        committed
    );
}

#[test]
fn a_v1_leaf_hash_confirms_guessed_values_which_is_why_v1_bodies_are_erased_whole() {
    let stored = event();
    let v1_hash = leaf::leaf_hash(&stored.leaf_bytes());
    // Everything but the email is known to the attacker (the rest of the
    // event, or guesses of it): a template with the email left out.
    let text = String::from_utf8(stored.leaf_bytes()).unwrap();
    let template = text.replace("ada@example.com", "\u{0}");
    assert_ne!(template, text);
    let confirmed: Vec<&str> = ["bob@example.com", "ada@example.org", "ada@example.com"]
        .into_iter()
        .filter(|guess| leaf::leaf_hash(template.replace('\u{0}', guess).as_bytes()) == v1_hash)
        .collect();
    assert_eq!(confirmed, ["ada@example.com"]);
}
