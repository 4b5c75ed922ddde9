//! `serve --demo`: the `demo` account with an admin, keys and about 10,000
//! realistic events over the last 90 days, so that a new user sees the
//! product working at once. Deterministic: the same seed gives the same events.

use crate::admin::{create_key, create_user, find_account};
use crate::error::CliResult;
use anyhow::Context;
use auditlog_core::{Email, FieldError, NewEvent, Taxonomy, Timestamp};
use auditlog_server::tokens;
use auditlog_store::{Role, Scope, Store, StoreError};
use serde_json::{json, Value};

pub const DEMO_ACCOUNT: &str = "demo";
pub const DEMO_ADMIN: &str = "admin@demo.local";
const DEMO_EVENTS: usize = 10_000;
const DAY_MICROS: i64 = 86_400_000_000;

/// Creates the demo account if it is absent, and prints how to use it.
pub async fn ensure_demo(store: &dyn Store) -> CliResult {
    let account = match store.create_account(DEMO_ACCOUNT).await {
        Ok(account) => {
            let password = tokens::random_token(12);
            let admin = Email::parse(DEMO_ADMIN).context("the demo admin's address")?;
            create_user(store, &account, &admin, &password, Role::Admin).await?;
            let now = Timestamp::now();
            let events = demo_events(DEMO_EVENTS, now)?;
            for chunk in events.chunks(1_000) {
                store
                    .append(&account, chunk.to_vec())
                    .await
                    .context("cannot store the demo events")?;
            }
            println!("demo account created with {DEMO_EVENTS} sample events");
            println!("  console admin: {DEMO_ADMIN} / {password}");
            account
        }
        Err(StoreError::AlreadyExists(_)) => {
            let account = find_account(store, DEMO_ACCOUNT).await?;
            println!(
                "demo account already exists (its admin password was printed when it was created)"
            );
            account
        }
        Err(e) => return Err(e).context("cannot create the demo account"),
    };
    // Keys are stored hashed, so earlier ones cannot be shown again: make fresh ones.
    println!(
        "  ingest key: {}",
        create_key(store, &account, &[Scope::Ingest]).await?
    );
    println!(
        "  read key: {}",
        create_key(store, &account, &[Scope::Read]).await?
    );
    Ok(())
}

/// A small deterministic generator (xorshift64*); no need for a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Skewed towards the front of a list: a few users do most of the work.
    fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Edsger",
    "Frances",
    "Dennis",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
    "Shafi",
    "Leslie",
    "Anita",
    "Bjarne",
    "Sophie",
    "Guido",
    "Mary",
    "James",
    "Joan",
    "Niklaus",
    "Jean",
    "Ivan",
    "Adele",
    "Fran",
    "Carol",
    "Whitfield",
    "Lynn",
    "Robin",
    "Ellen",
    "Yukihiro",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Ritchie",
    "Perlman",
    "Berners-Lee",
];
const PROJECTS: &[(&str, &[&str], &[&str])] = &[
    (
        "Checkout",
        &["Web", "iOS", "Android"],
        &["2.3", "2.4", "3.0"],
    ),
    ("Mobile Banking", &["iOS", "Android"], &["5.1", "5.2"]),
    ("Inventory", &["Web", "API"], &["1.8", "1.9", "2.0", "2.1"]),
    ("Onboarding", &["Web"], &["0.9", "1.0"]),
    ("Payments API", &["API"], &["4.0", "4.1", "4.2"]),
    ("Partner Portal", &["Web", "API"], &["3.3"]),
];
const ENTITY_TYPES: &[(&str, &str, &[&str])] = &[
    (
        "Test Case",
        "TC",
        &[
            "Login with SSO",
            "Checkout with saved card",
            "Reset password",
            "Search by SKU",
            "Apply coupon",
            "Export invoice PDF",
            "Two-factor enrolment",
            "Guest checkout",
        ],
    ),
    (
        "Test Suite",
        "TS",
        &[
            "Smoke",
            "Regression",
            "Payments",
            "Accessibility",
            "Nightly",
            "Release candidate",
        ],
    ),
    (
        "Test Plan",
        "TP",
        &["Sprint 42", "Release 3.0", "Hotfix 2.4.1", "Q4 compliance"],
    ),
    (
        "Test Data",
        "TD",
        &[
            "EU customers",
            "Expired cards",
            "Large carts",
            "Unicode names",
        ],
    ),
    (
        "Element",
        "EL",
        &[
            "Login button",
            "Email field",
            "Cart badge",
            "Pay now",
            "Country select",
        ],
    ),
    (
        "Environment",
        "ENV",
        &["Staging", "QA", "Pre-production", "Load test"],
    ),
    (
        "Access Bridge",
        "AB",
        &[
            "Office VPN bridge",
            "CI runner bridge",
            "Partner sandbox bridge",
        ],
    ),
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

/// Field changes an Update of `event_type` plausibly makes.
fn changes(rng: &mut Rng, event_type: &str) -> Value {
    let statuses = ["Draft", "Ready", "In review", "Approved", "Deprecated"];
    let priorities = ["Low", "Medium", "High", "Critical"];
    let mut all: Vec<Value> = vec![
        json!({"field": "status", "old": rng.pick(&statuses), "new": rng.pick(&statuses)}),
        json!({"field": "priority", "old": rng.pick(&priorities), "new": rng.pick(&priorities)}),
    ];
    match event_type {
        "Test Case" => {
            all.push(json!({"field": "title", "old": "Login", "new": "Login with SSO"}));
            all.push(json!({"field": "steps", "old": ["Open the login page", "Enter credentials"],
                "new": ["Open the login page", "Choose SSO", "Approve in the identity provider"]}));
            all.push(json!({"field": "timeout_seconds", "old": 30, "new": 60}));
        }
        "Environment" => {
            all.push(json!({"field": "base_url", "old": "https://qa.example.com", "new": "https://qa2.example.com"}));
            all.push(json!({"field": "browser", "old": "Chrome 130", "new": "Chrome 131"}));
        }
        "Test Data" => all.push(json!({"field": "rows", "old": 120, "new": 250})),
        "Element" => all.push(json!({"field": "locator", "old": "#login", "new": "[data-test=login]"})),
        "Access Bridge" => all.push(json!({"field": "allowed_ips", "old": ["10.0.0.0/24"], "new": ["10.0.0.0/24", "10.0.8.0/24"]})),
        _ => all.push(json!({"field": "description", "old": "", "new": "Covers the happy path and two error cases"})),
    }
    let keep = 1 + rng.below(all.len().min(3));
    let start = rng.below(all.len() - keep + 1);
    json!({ "changes": all[start..start + keep] })
}

/// A generated demo event that `NewEvent::parse` refused: a bug in this
/// generator, reported rather than stored around the checks.
#[derive(Debug, thiserror::Error)]
#[error("demo event {index} is invalid: {}", describe(errors))]
pub struct InvalidDemoEvent {
    index: usize,
    errors: Vec<FieldError>,
}

fn describe(errors: &[FieldError]) -> String {
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    messages.join("; ")
}

/// `n` demo events over the 90 days before `now`, each checked by
/// `NewEvent::parse` against the default taxonomy like a client's.
pub fn demo_events(n: usize, now: Timestamp) -> Result<Vec<NewEvent>, InvalidDemoEvent> {
    let mut rng = Rng(0x5eed_a0d1_7106_u64);
    let users: Vec<Value> = (0..36)
        .map(|i| {
            let (first, last) = (FIRST[i % FIRST.len()], LAST[(i * 7) % LAST.len()]);
            json!({
                "id": format!("u-{}", 100 + i),
                "name": format!("{first} {last}"),
                "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
            })
        })
        .collect();
    let taxonomy = Taxonomy::default();
    let start = now.micros() - 90 * DAY_MICROS;
    let step = 90 * DAY_MICROS / n as i64;
    (0..n)
        .map(|i| {
            let time =
                Timestamp::from_micros(start + i as i64 * step + (rng.below(1_000_000) as i64));
            let actor = users[rng.skewed(users.len())].clone();
            let ip = format!("203.0.113.{}", 10 + rng.below(200));
            let context = json!({
                "ip": ip,
                "user_agent": rng.pick(AGENTS),
                "request_id": format!("r-{:08x}", rng.next() as u32),
            });
            let mut event = json!({
                "id": format!("demo-{i:05}"),
                "time": time.to_rfc3339(),
                "actor": actor,
                "context": context,
            });
            if rng.below(100) < 12 {
                event["event_type"] = json!("Authentication");
                event["action"] = json!(if rng.below(2) == 0 { "Login" } else { "Logout" });
            } else {
                let (project, apps, versions) = rng.pick(PROJECTS);
                let (event_type, prefix, names) = ENTITY_TYPES[rng.skewed(ENTITY_TYPES.len())];
                let roll = rng.below(100);
                let action = if roll < 25 {
                    "Create"
                } else if roll < 88 {
                    "Update"
                } else {
                    "Delete"
                };
                event["event_type"] = json!(event_type);
                event["action"] = json!(action);
                event["project"] = json!(project);
                event["app"] = json!(rng.pick(apps));
                event["version"] = json!(rng.pick(versions));
                let number = rng.below(40);
                event["target"] = json!({
                    "id": format!("{prefix}-{}", 1000 + number),
                    "name": names[number % names.len()],
                });
                event["details"] = match action {
                    "Update" => changes(&mut rng, event_type),
                    "Create" => {
                        json!({"source": if rng.below(3) == 0 { "import" } else { "editor" }})
                    }
                    _ => json!({"reason": "no longer needed"}),
                };
            }
            NewEvent::parse(&event, &taxonomy, now)
                .map_err(|errors| InvalidDemoEvent { index: i, errors })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_events_are_valid_varied_and_deterministic() {
        let now = Timestamp::parse("now", "2026-11-26T00:00:00Z").unwrap();
        // Each generated event passed the same checks as a client's.
        let events = demo_events(2_000, now).unwrap();
        assert_eq!(events, demo_events(2_000, now).unwrap());
        let kinds: std::collections::HashSet<(&str, &str)> = events
            .iter()
            .map(|e| (e.event_type(), e.action()))
            .collect();
        assert_eq!(
            kinds.len(),
            7 * 3 + 2,
            "every event type and action appears"
        );
        assert!(events.windows(2).all(|w| w[0].time() < w[1].time()));
        assert!(
            events
                .iter()
                .map(|e| &e.actor().id)
                .collect::<std::collections::HashSet<_>>()
                .len()
                >= 30
        );
    }
}
