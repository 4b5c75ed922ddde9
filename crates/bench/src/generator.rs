//! The deterministic, seeded generator of realistic events that every
//! scenario and every baseline is fed: the same seed and count give the same
//! events, byte for byte, on every machine.
//!
//! Shape (issue 7): 3 accounts, one with 80% of the events; 40 projects with
//! 1–3 apps and 1–4 versions each; 2,000 users with Zipf-like activity; every
//! event type and action of the default taxonomy in realistic shares; Update
//! events with 1–5 field changes; 400–700 bytes of JSON per event; times
//! increasing over one year.

use auditlog_core::Timestamp;
use serde_json::{json, Map, Value};

/// The accounts, their share of the events (per mille), users and projects.
pub const ACCOUNTS: &[(&str, u32, usize, usize)] = &[
    ("acme", 800, 1_600, 28),
    ("globex", 120, 250, 7),
    ("initech", 80, 150, 5),
];
/// 2025-01-01T00:00:00Z: the first event's time.
pub const START_MICROS: i64 = 1_735_689_600_000_000;
pub const DAY_MICROS: i64 = 86_400_000_000;
pub const YEAR_MICROS: i64 = 365 * DAY_MICROS;
/// Smallest and largest size of one event's JSON as a client sends it.
pub const MIN_BYTES: usize = 400;
pub const MAX_BYTES: usize = 700;

/// Event types with their share (per mille) and the code of their entity ids;
/// `None` for types whose events have no target entity.
const EVENT_TYPES: &[(&str, u32, Option<&str>)] = &[
    ("Test Case", 340, Some("TC")),
    ("Test Suite", 90, Some("TS")),
    ("Test Plan", 50, Some("TP")),
    ("Test Data", 70, Some("TD")),
    ("Element", 120, Some("EL")),
    ("Environment", 40, Some("ENV")),
    ("Access Bridge", 20, Some("AB")),
    // 270: it took the 20 of "Audit Log", reserved for Auditlog's own
    // entries now (the API refuses it with 422); the draws are unchanged.
    ("Authentication", 270, None),
];
const ENTITY_ACTIONS: &[(&str, u32)] = &[("Update", 650), ("Create", 250), ("Delete", 100)];
const AUTH_ACTIONS: &[(&str, u32)] = &[("Login", 550), ("Logout", 450)];

const PROJECT_WORDS: &[&str] = &[
    "Checkout",
    "Mobile Banking",
    "Inventory",
    "Onboarding",
    "Payments API",
    "Partner Portal",
    "Loyalty",
    "Search",
    "Billing",
    "Claims",
];
const PROJECT_SUFFIXES: &[&str] = &["", " Next", " Legacy", " EU"];
const APPS: &[&str] = &["Web", "iOS", "Android", "API", "Desktop"];
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
    "Goldwasser",
    "Lamport",
];
const ENTITY_NAMES: &[&str] = &[
    "Login with SSO",
    "Checkout with saved card",
    "Reset password",
    "Search by SKU",
    "Apply coupon",
    "Export invoice PDF",
    "Two-factor enrolment",
    "Guest checkout",
    "Smoke",
    "Regression",
    "Nightly",
    "Release candidate",
    "EU customers",
    "Expired cards",
    "Pay now button",
    "Country select",
    "Staging",
    "Load test",
];
const FIELDS: &[&str] = &[
    "title",
    "description",
    "priority",
    "status",
    "steps",
    "expected_result",
    "tags",
    "assignee",
    "preconditions",
    "timeout_seconds",
    "browser",
    "url",
    "selector",
    "owner",
    "labels",
];
const WORDS: &[&str] = &[
    "verify",
    "the",
    "user",
    "can",
    "complete",
    "payment",
    "after",
    "login",
    "with",
    "valid",
    "card",
    "and",
    "sees",
    "confirmation",
    "page",
    "within",
    "timeout",
    "on",
    "mobile",
    "flow",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "testrunner-cli/4.2.1 (linux; x86_64)",
    "python-requests/2.32.3",
];

/// xorshift64*: small, fast and deterministic; statistical quality is ample
/// for picking names and shares.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // A zero state would stay zero; mix the seed so that nearby seeds diverge.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
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
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
    /// Picks by weight from `(item, weight)` pairs.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total as usize) as u32;
        for (item, weight) in items {
            if at < *weight {
                return *item;
            }
            at -= weight;
        }
        items[items.len() - 1].0
    }
    /// Skewed towards 0 (triangular): the popular entities of a project.
    pub fn skewed(&mut self, n: usize) -> usize {
        self.below(n).min(self.below(n))
    }
}

/// Zipf(s) over ranks 0..n by inverse CDF: rank 0 is the most active.
#[derive(Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|c| *c <= u)
            .min(self.cdf.len() - 1)
    }
}

#[derive(Clone)]
pub struct Project {
    pub name: String,
    /// Each app with its versions.
    pub apps: Vec<(String, Vec<String>)>,
}

#[derive(Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub ip: String,
}

/// One account's people and projects.
#[derive(Clone)]
pub struct AccountData {
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    user_zipf: Zipf,
    project_zipf: Zipf,
}

/// One generated event, with the columns the baselines store.
#[derive(Clone, Debug)]
pub struct Event {
    /// Index into [`ACCOUNTS`].
    pub account: usize,
    pub id: String,
    pub time_micros: i64,
    pub event_type: &'static str,
    pub action: &'static str,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_email: String,
    pub project: Option<String>,
    pub app: Option<String>,
    pub version: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    /// Compact JSON object.
    pub details: String,
    pub ip: String,
    pub user_agent: &'static str,
    pub request_id: String,
}

impl Event {
    pub fn account_name(&self) -> &'static str {
        ACCOUNTS[self.account].0
    }

    pub fn time_rfc3339(&self) -> String {
        Timestamp::from_micros(self.time_micros).to_rfc3339()
    }

    /// The event as a client sends it to `POST /api/v1/events`.
    pub fn to_json(&self) -> Value {
        let mut event = Map::new();
        event.insert("id".into(), json!(self.id));
        event.insert("time".into(), json!(self.time_rfc3339()));
        event.insert("event_type".into(), json!(self.event_type));
        event.insert("action".into(), json!(self.action));
        event.insert(
            "actor".into(),
            json!({"id": self.actor_id, "name": self.actor_name, "email": self.actor_email}),
        );
        for (key, value) in [
            ("project", &self.project),
            ("app", &self.app),
            ("version", &self.version),
        ] {
            if let Some(v) = value {
                event.insert(key.into(), json!(v));
            }
        }
        if let Some(id) = &self.target_id {
            event.insert("target".into(), json!({"id": id, "name": self.target_name}));
        }
        let details: Value = serde_json::from_str(&self.details).unwrap_or(Value::Null);
        event.insert("details".into(), details);
        event.insert(
            "context".into(),
            json!({"ip": self.ip, "user_agent": self.user_agent, "request_id": self.request_id}),
        );
        Value::Object(event)
    }

    pub fn json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }
}

/// The accounts, users and projects of a seed, and the events it generates.
pub struct Dataset {
    pub seed: u64,
    pub accounts: Vec<AccountData>,
    /// The words of free text (titles, reasons, changed values, comments):
    /// `None` draws them uniformly from the 20 [`WORDS`] (every benchmark
    /// before search, unchanged); `Some` by Zipf from a large vocabulary
    /// ([`Dataset::with_vocabulary`]).
    vocabulary: Option<Vocabulary>,
}

/// Pseudo-words drawn by Zipf(1.0), as the words of natural text are: the
/// rank-1 word is in most events and thousands of words are each in a few
/// thousand, so that a search benchmark finds words matching any number of
/// events from one to millions.
pub struct Vocabulary {
    pub words: Vec<String>,
    zipf: Zipf,
}

/// Syllables of the vocabulary's pseudo-words (two or three each).
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "tor", "sa", "vel", "dun", "pri", "zo", "ther", "al", "ben", "cor",
    "di", "fen", "gal", "hu", "ix", "jor", "kel", "lum", "mar", "nes", "or", "pel", "quin", "ros",
    "sul", "tam", "ur", "vin", "wex", "yor", "zan",
];

/// Words in the vocabulary.
pub const VOCABULARY_WORDS: usize = 40_000;

impl Vocabulary {
    /// The 20 [`WORDS`] first (the most frequent), then pseudo-words of two
    /// and three [`SYLLABLES`] in a seeded order, each once.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x0000_5EA2_C400);
        let mut seen: std::collections::HashSet<String> =
            WORDS.iter().map(|w| w.to_string()).collect();
        let mut words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        let mut made: Vec<String> = Vec::new();
        for a in SYLLABLES {
            for b in SYLLABLES {
                made.push(format!("{a}{b}"));
                for c in SYLLABLES {
                    made.push(format!("{a}{b}{c}"));
                }
            }
        }
        // Fisher–Yates with the seeded generator.
        for i in (1..made.len()).rev() {
            made.swap(i, rng.below(i + 1));
        }
        for word in made {
            if words.len() >= VOCABULARY_WORDS {
                break;
            }
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        Self {
            zipf: Zipf::new(words.len(), 1.0),
            words,
        }
    }

    fn pick(&self, rng: &mut Rng) -> &str {
        &self.words[self.zipf.sample(rng)]
    }
}

/// One word of free text: uniform over [`WORDS`] or Zipf over the vocabulary.
fn text_word<'v>(rng: &mut Rng, vocabulary: Option<&'v Vocabulary>) -> &'v str {
    match vocabulary {
        Some(v) => v.pick(rng),
        None => rng.pick_str(WORDS),
    }
}

impl Dataset {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xACC0_0000);
        let mut project_index = 0;
        let mut user_index = 0;
        let accounts = ACCOUNTS
            .iter()
            .map(|&(name, _, users, projects)| {
                let users: Vec<User> = (0..users)
                    .map(|_| {
                        user_index += 1;
                        let first = rng.pick(FIRST);
                        let last = rng.pick(LAST);
                        User {
                            id: format!("u-{user_index:04}"),
                            name: format!("{first} {last}"),
                            email: format!(
                                "{}.{}{}@{name}.example.com",
                                first.to_lowercase(),
                                last.to_lowercase(),
                                user_index
                            ),
                            ip: format!(
                                "10.{}.{}.{}",
                                rng.below(256),
                                rng.below(256),
                                1 + rng.below(254)
                            ),
                        }
                    })
                    .collect();
                let projects = (0..projects)
                    .map(|_| {
                        let word = PROJECT_WORDS[project_index % PROJECT_WORDS.len()];
                        let suffix = PROJECT_SUFFIXES
                            [project_index / PROJECT_WORDS.len() % PROJECT_SUFFIXES.len()];
                        project_index += 1;
                        let app_count = 1 + rng.below(3);
                        let mut app_names: Vec<&str> = APPS.to_vec();
                        let apps = (0..app_count)
                            .map(|_| {
                                let app = app_names.remove(rng.below(app_names.len()));
                                let major = 1 + rng.below(5);
                                let minor = rng.below(6);
                                let versions = (0..1 + rng.below(4))
                                    .map(|v| format!("{major}.{}", minor + v))
                                    .collect();
                                (app.to_string(), versions)
                            })
                            .collect();
                        Project {
                            name: format!("{word}{suffix}"),
                            apps,
                        }
                    })
                    .collect::<Vec<Project>>();
                AccountData {
                    user_zipf: Zipf::new(users.len(), 1.0),
                    project_zipf: Zipf::new(projects.len(), 0.8),
                    users,
                    projects,
                }
            })
            .collect();
        Self {
            seed,
            accounts,
            vocabulary: None,
        }
    }

    /// The same accounts, users and projects, with free text drawn from a
    /// Zipf vocabulary ([`Vocabulary`]) instead of 20 words: the search
    /// benchmark's dataset (its events differ from [`Dataset::new`]'s in
    /// their free text only, and in nothing else of their shape).
    pub fn with_vocabulary(mut self) -> Self {
        self.vocabulary = Some(Vocabulary::new(self.seed));
        self
    }

    pub fn vocabulary(&self) -> Option<&Vocabulary> {
        self.vocabulary.as_ref()
    }

    /// `count` events with times spread evenly (plus jitter) over one year.
    pub fn events(&self, count: usize) -> EventIter<'_> {
        EventIter {
            dataset: self,
            rng: Rng::new(self.seed),
            index: 0,
            count,
            step: (YEAR_MICROS / count.max(1) as i64).max(1),
        }
    }

    /// The entity id of `n` in project `project` of one account (shared by
    /// the generator and the "entity's history" filter).
    pub fn entity_id(code: &str, project: usize, n: usize) -> String {
        format!("{code}-{}", project * 100_000 + n + 1)
    }
}

pub struct EventIter<'a> {
    dataset: &'a Dataset,
    rng: Rng,
    index: usize,
    count: usize,
    step: i64,
}

impl Iterator for EventIter<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.index >= self.count {
            return None;
        }
        let rng = &mut self.rng;
        let vocabulary = self.dataset.vocabulary.as_ref();
        // Jitter below half a step keeps times strictly increasing.
        let time_micros = START_MICROS
            + self.index as i64 * self.step
            + rng.below((self.step / 2).max(1) as usize) as i64;
        self.index += 1;
        let account = rng.weighted(&[
            (0usize, ACCOUNTS[0].1),
            (1, ACCOUNTS[1].1),
            (2, ACCOUNTS[2].1),
        ]);
        let data = &self.dataset.accounts[account];
        let user = &data.users[data.user_zipf.sample(rng)];
        let (event_type, code) = {
            let picked = rng.below(1000) as u32;
            let mut at = picked;
            let mut chosen = (EVENT_TYPES[0].0, EVENT_TYPES[0].2);
            for (name, weight, code) in EVENT_TYPES {
                if at < *weight {
                    chosen = (*name, *code);
                    break;
                }
                at -= weight;
            }
            chosen
        };
        let action = match (event_type, code) {
            (_, Some(_)) => rng.weighted(ENTITY_ACTIONS),
            (_, None) => rng.weighted(AUTH_ACTIONS),
        };
        let id = format!(
            "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
            rng.next_u64() as u32,
            rng.next_u64() as u16,
            rng.next_u64() as u16 & 0xfff,
            (rng.next_u64() as u16 & 0x3fff) | 0x8000,
            rng.next_u64() & 0xffff_ffff_ffff
        );
        let request_id = format!("req-{:016x}", rng.next_u64());
        let mut event = Event {
            account,
            id,
            time_micros,
            event_type,
            action,
            actor_id: user.id.clone(),
            actor_name: user.name.clone(),
            actor_email: user.email.clone(),
            project: None,
            app: None,
            version: None,
            target_id: None,
            target_name: None,
            details: String::new(),
            ip: user.ip.clone(),
            user_agent: rng.pick_str(USER_AGENTS),
            request_id,
        };
        let mut details = Map::new();
        if let Some(code) = code {
            let project_index = data.project_zipf.sample(rng);
            let project = &data.projects[project_index];
            let (app, versions) = rng.pick(&project.apps);
            event.project = Some(project.name.clone());
            event.app = Some(app.clone());
            event.version = Some(rng.pick(versions).clone());
            // One entity in a hundred edits is to the project's busiest entity, so
            // that "an entity's history" has a realistic few hundred entries.
            let n = if rng.below(100) == 0 {
                0
            } else {
                rng.skewed(2_000)
            };
            event.target_id = Some(Dataset::entity_id(code, project_index, n));
            event.target_name = Some(format!(
                "{} #{}",
                ENTITY_NAMES[n % ENTITY_NAMES.len()],
                n + 1
            ));
            match action {
                "Update" => {
                    let changes: Vec<Value> = (0..1 + rng.below(5))
                        .map(|_| {
                            json!({"field": rng.pick(FIELDS), "old": phrase(rng, 2, vocabulary), "new": phrase(rng, 3, vocabulary)})
                        })
                        .collect();
                    details.insert("changes".into(), Value::Array(changes));
                }
                "Create" => {
                    details.insert("title".into(), json!(phrase(rng, 4, vocabulary)));
                    details.insert(
                        "priority".into(),
                        json!(rng.pick(&["low", "medium", "high"])),
                    );
                }
                _ => {
                    details.insert("reason".into(), json!(phrase(rng, 5, vocabulary)));
                }
            }
        } else if event_type == "Authentication" {
            details.insert(
                "method".into(),
                json!(rng.pick(&["password", "sso", "api_token"])),
            );
            details.insert("mfa".into(), json!(rng.below(2) == 1));
        } else {
            let project = &data.projects[data.project_zipf.sample(rng)];
            event.project = Some(project.name.clone());
            details.insert("format".into(), json!(rng.pick(&["csv", "jsonl"])));
            details.insert("row_count".into(), json!(rng.below(100_000)));
        }
        event.details = Value::Object(details.clone()).to_string();
        fit_size(&mut event, &mut details, rng, vocabulary);
        Some(event)
    }
}

/// Adds a comment (or trims changes) so that the JSON is 400–700 bytes, as
/// measured on the wire. The details are the only part that changes, so the
/// rest is measured once.
fn fit_size(
    event: &mut Event,
    details: &mut Map<String, Value>,
    rng: &mut Rng,
    vocabulary: Option<&Vocabulary>,
) {
    let rest = event.json_bytes().len() - event.details.len();
    if rest + event.details.len() < MIN_BYTES {
        // Aim for a spread between the floor and about 600 bytes.
        let want = MIN_BYTES - rest - event.details.len() + 12 + rng.below(180);
        let mut comment = String::new();
        while comment.len() < want {
            if !comment.is_empty() {
                comment.push(' ');
            }
            comment.push_str(text_word(rng, vocabulary));
        }
        comment.truncate(want);
        details.insert("comment".into(), json!(comment.trim_end()));
        event.details = Value::Object(details.clone()).to_string();
    }
    while rest + event.details.len() > MAX_BYTES {
        let trimmed = match details.get_mut("changes") {
            Some(Value::Array(changes)) if changes.len() > 1 => {
                changes.pop();
                true
            }
            _ => false,
        };
        if !trimmed {
            // Last resort: shorten the comment or the reason.
            let longest = ["comment", "reason", "title"].into_iter().find(|k| {
                details
                    .get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.len() > 20)
            });
            match longest {
                Some(key) => {
                    let text = details[key].as_str().unwrap_or_default();
                    let shorter = text[..text.len() - 20].to_string();
                    details.insert(key.into(), json!(shorter));
                }
                None => break,
            }
        }
        event.details = Value::Object(details.clone()).to_string();
    }
}

fn phrase(rng: &mut Rng, words: usize, vocabulary: Option<&Vocabulary>) -> String {
    (0..words)
        .map(|_| text_word(rng, vocabulary))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The seed filter combinations of issue 7, all on the big account: the
/// values are the most active user and project and the most edited entity,
/// so that counts are as large as realistic data makes them.
#[derive(Clone, Debug, Default)]
pub struct Combination {
    pub name: &'static str,
    pub event_type: Option<&'static str>,
    pub action: Option<&'static str>,
    pub user: Option<String>,
    pub project: Option<String>,
    /// Inclusive bounds in micros.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub target_id: Option<String>,
}

impl Combination {
    /// The query string of `GET /api/v1/events` (without `?`).
    pub fn query_string(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(v) = self.event_type {
            pairs.push(("event_type", v.into()));
        }
        if let Some(v) = self.action {
            pairs.push(("action", v.into()));
        }
        if let Some(v) = &self.user {
            pairs.push(("user", v.clone()));
        }
        if let Some(v) = &self.project {
            pairs.push(("project", v.clone()));
        }
        if let Some(v) = &self.target_id {
            pairs.push(("target_id", v.clone()));
        }
        if let Some(v) = self.from {
            pairs.push(("from", Timestamp::from_micros(v).to_rfc3339()));
        }
        if let Some(v) = self.to {
            pairs.push(("to", Timestamp::from_micros(v).to_rfc3339()));
        }
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(&v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `(column, text value)` equality conditions, for the baselines' SQL.
    pub fn text_conditions(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(v) = self.event_type {
            out.push(("event_type", v.to_string()));
        }
        if let Some(v) = self.action {
            out.push(("action", v.to_string()));
        }
        if let Some(v) = &self.user {
            out.push(("actor_id", v.clone()));
        }
        if let Some(v) = &self.project {
            out.push(("project", v.clone()));
        }
        if let Some(v) = &self.target_id {
            out.push(("target_id", v.clone()));
        }
        out
    }
}

/// The nine seed combinations on the big account (index 0).
pub fn seed_combinations(dataset: &Dataset) -> Vec<Combination> {
    let acme = &dataset.accounts[0];
    let top_user = acme.users[0].id.clone();
    let top_project = acme.projects[0].name.clone();
    let week_from = START_MICROS + 180 * DAY_MICROS;
    let week_to = week_from + 7 * DAY_MICROS - 1;
    vec![
        Combination {
            name: "none",
            ..Default::default()
        },
        Combination {
            name: "event type",
            event_type: Some("Test Case"),
            ..Default::default()
        },
        Combination {
            name: "action",
            action: Some("Update"),
            ..Default::default()
        },
        Combination {
            name: "user",
            user: Some(top_user.clone()),
            ..Default::default()
        },
        Combination {
            name: "project",
            project: Some(top_project.clone()),
            ..Default::default()
        },
        Combination {
            name: "one week",
            from: Some(week_from),
            to: Some(week_to),
            ..Default::default()
        },
        Combination {
            name: "type+action+project",
            event_type: Some("Test Case"),
            action: Some("Update"),
            project: Some(top_project),
            ..Default::default()
        },
        Combination {
            name: "user+week",
            user: Some(top_user),
            from: Some(week_from),
            to: Some(week_to),
            ..Default::default()
        },
        Combination {
            name: "entity history",
            target_id: Some(Dataset::entity_id("TC", 0, 0)),
            ..Default::default()
        },
    ]
}

pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
        let a: Vec<Vec<u8>> = Dataset::new(7)
            .events(500)
            .map(|e| e.json_bytes())
            .collect();
        let b: Vec<Vec<u8>> = Dataset::new(7)
            .events(500)
            .map(|e| e.json_bytes())
            .collect();
        let c: Vec<Vec<u8>> = Dataset::new(8)
            .events(500)
            .map(|e| e.json_bytes())
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn events_have_the_sizes_shares_and_shape_of_the_issue() {
        let n = 5_000;
        let dataset = Dataset::new(42);
        let events: Vec<Event> = dataset.events(n).collect();
        assert_eq!(events.len(), n);
        let mut per_account = [0usize; 3];
        let mut types: HashMap<&str, usize> = HashMap::new();
        let mut actions: HashSet<(&str, &str)> = HashSet::new();
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        let mut projects = HashSet::new();
        let mut last_time = i64::MIN;
        let mut ids = HashSet::new();
        for e in &events {
            let size = e.json_bytes().len();
            assert!(
                (MIN_BYTES..=MAX_BYTES).contains(&size),
                "{size} bytes: {}",
                String::from_utf8_lossy(&e.json_bytes())
            );
            assert!(e.time_micros > last_time, "times must increase");
            last_time = e.time_micros;
            assert!(ids.insert(e.id.clone()), "ids are unique");
            per_account[e.account] += 1;
            *types.entry(e.event_type).or_default() += 1;
            actions.insert((e.event_type, e.action));
            *per_user.entry(&e.actor_id).or_default() += 1;
            if let Some(p) = &e.project {
                projects.insert((e.account, p.clone()));
            }
            if e.action == "Update" {
                let details: Value = serde_json::from_str(&e.details).unwrap();
                let changes = details["changes"].as_array().unwrap().len();
                assert!((1..=5).contains(&changes));
            }
        }
        // One account holds about 80%.
        let big = per_account[0] as f64 / n as f64;
        assert!((0.77..0.83).contains(&big), "big account share {big}");
        // Every event type and every action of the default taxonomy occurs.
        assert_eq!(types.len(), EVENT_TYPES.len());
        assert_eq!(actions.len(), 7 * 3 + 2);
        // The year is covered.
        let span = last_time - events[0].time_micros;
        assert!(span > YEAR_MICROS - 2 * DAY_MICROS && span <= YEAR_MICROS);
        // Zipf-like: the most active user does far more than the median one.
        let mut counts: Vec<usize> = per_user.values().copied().collect();
        counts.sort_unstable();
        let top = *counts.last().unwrap();
        let median = counts[counts.len() / 2];
        assert!(top > 20 * median.max(1), "top {top}, median {median}");
        assert!(projects.len() > 30, "{} projects used", projects.len());
        // Versions per app and apps per project within the issue's bounds.
        for account in &dataset.accounts {
            for project in &account.projects {
                assert!((1..=3).contains(&project.apps.len()));
                for (_, versions) in &project.apps {
                    assert!((1..=4).contains(&versions.len()));
                }
            }
        }
        let total_projects: usize = dataset.accounts.iter().map(|a| a.projects.len()).sum();
        let total_users: usize = dataset.accounts.iter().map(|a| a.users.len()).sum();
        assert_eq!((total_projects, total_users), (40, 2_000));
    }

    #[test]
    fn every_seed_combination_matches_some_events() {
        let dataset = Dataset::new(42);
        let events: Vec<Event> = dataset.events(20_000).collect();
        for combination in seed_combinations(&dataset) {
            let matching = events
                .iter()
                .filter(|e| e.account == 0)
                .filter(|e| {
                    combination
                        .text_conditions()
                        .iter()
                        .all(|(column, value)| column_value(e, column) == Some(value.as_str()))
                        && combination.from.is_none_or(|f| e.time_micros >= f)
                        && combination.to.is_none_or(|t| e.time_micros <= t)
                })
                .count();
            assert!(matching > 0, "{} matches nothing", combination.name);
        }
    }

    fn column_value<'a>(e: &'a Event, column: &str) -> Option<&'a str> {
        match column {
            "event_type" => Some(e.event_type),
            "action" => Some(e.action),
            "actor_id" => Some(&e.actor_id),
            "project" => e.project.as_deref(),
            "target_id" => e.target_id.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn query_strings_are_percent_encoded() {
        let c = Combination {
            event_type: Some("Test Case"),
            project: Some("Mobile Banking".into()),
            ..Default::default()
        };
        assert_eq!(
            c.query_string(),
            "event_type=Test%20Case&project=Mobile%20Banking"
        );
    }
}
