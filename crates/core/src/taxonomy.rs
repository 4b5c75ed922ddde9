//! The event types of an account and the actions each allows. Clients may
//! send any capitalisation; we store the canonical spelling so that filters
//! and exports see one name per type.

use crate::FieldError;
use serde::{Deserialize, Serialize};

pub mod edit;
pub use edit::{TaxonomyChange, TaxonomyEdit};

/// The event types an account accepts, each with its allowed actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    pub types: Vec<EventTypeRule>,
}

/// One event type and its actions. A retired type or action stays here, so
/// that stored events keep their canonical spelling and stay filterable,
/// but a client can no longer send it (the events API refuses it with 422,
/// see [`Taxonomy::retired_use`]). Both retirement fields are left out of
/// the stored JSON while empty, so a taxonomy without retirements reads and
/// writes exactly as before they existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeRule {
    pub name: String,
    pub actions: Vec<String>,
    /// Retired: refused for new events, valid in stored ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
    /// The actions of `actions` that are retired, in their canonical spelling.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_actions: Vec<String>,
}

/// The event type Auditlog itself writes when exports are created or downloaded.
pub const AUDIT_LOG: &str = "Audit Log";
/// The event type of console sign-ins and sign-outs.
pub const AUTHENTICATION: &str = "Authentication";
/// The event type Auditlog writes when an admin changes a log stream.
pub const LOG_STREAM: &str = "Auditlog Log Stream";
/// The event type of legal holds created and released (issue 16).
pub const LEGAL_HOLD: &str = "Auditlog Legal Hold";
/// The event type of each pruning (`Prune`); see `coverage`.
pub const RETENTION: &str = "Auditlog Retention";
/// The event type of each erasure (`Erase`); see `coverage`.
pub const ERASURE: &str = "Auditlog Erasure";
/// The event type Auditlog writes when an API key is created, revoked or expires.
pub const API_KEY: &str = "Auditlog API Key";
/// The event type Auditlog writes when a console user is changed.
pub const USER: &str = "Auditlog User";
/// The action of a failed console sign-in (type [`AUTHENTICATION`]), which
/// only Auditlog writes: it is not in an account's taxonomy, so a client
/// cannot send one, but filters accept it.
pub const LOGIN_FAILED: &str = "Login Failed";

/// Whether `name` is one of the names only Auditlog may write (SPEC
/// "Default taxonomy"): `Audit Log` and every type starting `Auditlog `,
/// compared as event types are (case-insensitively, trimmed). A client
/// sending one is refused even where an account's stored taxonomy still
/// lists `Audit Log`, so that the log's own entries cannot be forged.
pub fn is_reserved(name: &str) -> bool {
    let name = name.trim();
    name.eq_ignore_ascii_case(AUDIT_LOG)
        || name
            .get(..OWN_PREFIX.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(OWN_PREFIX))
}

/// How every reserved type but `Audit Log` starts.
const OWN_PREFIX: &str = "Auditlog ";
/// The event type Auditlog writes when an account's settings change.
pub const ACCOUNT: &str = "Auditlog Account";

/// Auditlog's own reserved event types (SPEC "Default taxonomy"), which
/// only Auditlog writes: they are not in an account's taxonomy, so a client
/// sending one is refused (422 naming the type), but filters accept them so
/// that their events can be found. Those implemented so far.
pub fn own_types() -> &'static Taxonomy {
    static OWN: std::sync::OnceLock<Taxonomy> = std::sync::OnceLock::new();
    let rule = |name: &str, actions: &[&str]| {
        EventTypeRule::new(name, actions.iter().map(|a| a.to_string()).collect())
    };
    OWN.get_or_init(|| Taxonomy {
        types: vec![
            rule(LOG_STREAM, &["Create", "Update", "Delete", "Replay"]),
            rule(LEGAL_HOLD, &["Create", "Release"]),
            rule(RETENTION, &["Prune"]),
            rule(ERASURE, &["Erase"]),
            rule(API_KEY, &["Create", "Revoke", "Expire"]),
            rule(
                USER,
                &[
                    "Create",
                    "Update",
                    "Disable",
                    "Enable",
                    "Password Reset",
                    "Enable Two-Factor",
                    "Disable Two-Factor",
                    "Password Change",
                ],
            ),
            rule(ACCOUNT, &["Update"]),
        ],
    })
}

impl Default for Taxonomy {
    /// The taxonomy of every new account (SPEC.md, "Default taxonomy").
    fn default() -> Self {
        let crud = ["Create", "Update", "Delete"];
        let mut types: Vec<EventTypeRule> = [
            "Test Case",
            "Test Suite",
            "Test Plan",
            "Test Data",
            "Element",
            "Environment",
            "Access Bridge",
        ]
        .into_iter()
        .map(|name| EventTypeRule::new(name, crud.map(String::from).to_vec()))
        .collect();
        types.push(EventTypeRule::new(
            AUTHENTICATION,
            vec!["Login".into(), "Logout".into()],
        ));
        types.push(EventTypeRule::new(
            AUDIT_LOG,
            vec!["Export".into(), "Download".into()],
        ));
        Self { types }
    }
}

impl Taxonomy {
    /// The canonical spelling of an event type, matched case-insensitively.
    pub fn event_type(&self, name: &str) -> Option<&EventTypeRule> {
        self.types
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name.trim()))
    }

    /// The canonical spelling of an action of any event type.
    pub fn any_action(&self, name: &str) -> Option<&str> {
        self.types
            .iter()
            .flat_map(|t| t.actions.iter())
            .find(|a| a.eq_ignore_ascii_case(name.trim()))
            .map(String::as_str)
    }

    /// [`Self::event_type`], or one of Auditlog's own types ([`own_types`]).
    pub fn event_type_or_own(&self, name: &str) -> Option<&EventTypeRule> {
        self.event_type(name)
            .or_else(|| own_types().event_type(name))
    }

    /// [`Self::any_action`], or an action of one of Auditlog's own types.
    pub fn any_action_or_own(&self, name: &str) -> Option<&str> {
        self.any_action(name)
            .or_else(|| own_types().any_action(name))
            .or_else(|| {
                LOGIN_FAILED
                    .eq_ignore_ascii_case(name.trim())
                    .then_some(LOGIN_FAILED)
            })
    }

    /// This taxonomy with Auditlog's own types added: what Auditlog's own
    /// events are checked against (never a client's).
    pub fn with_own_types(&self) -> Taxonomy {
        let mut all = self.clone();
        for rule in &own_types().types {
            if self.event_type(&rule.name).is_none() {
                all.types.push(rule.clone());
            }
        }
        // `Login Failed` is Auditlog's own action of a type clients share.
        if let Some(authentication) = all
            .types
            .iter_mut()
            .find(|t| t.name.eq_ignore_ascii_case(AUTHENTICATION))
        {
            if authentication.action(LOGIN_FAILED).is_none() {
                authentication.actions.push(LOGIN_FAILED.into());
            }
        }
        all
    }

    /// Why a client may not send a new event of `event_type` / `action`
    /// (as given, any capitalisation): the type or the action is retired.
    /// `None` when both are active, or unknown (which
    /// [`NewEvent::parse`](crate::NewEvent::parse) reports itself).
    pub fn retired_use(&self, event_type: &str, action: Option<&str>) -> Option<FieldError> {
        let rule = self.event_type(event_type)?;
        if rule.retired {
            return Some(FieldError::new(
                "event_type",
                "retired_event_type",
                format!(
                    "event_type {:?} is retired in this account's taxonomy: stored events keep it, \
                     new ones may not use it",
                    rule.name
                ),
            ));
        }
        let action = rule.action(action?)?;
        rule.is_retired_action(action).then(|| {
            FieldError::new(
                "action",
                "retired_action",
                format!(
                    "action {action:?} of event type {:?} is retired in this account's taxonomy: \
                     stored events keep it, new ones may not use it",
                    rule.name
                ),
            )
        })
    }

    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| t.name.as_str())
    }

    /// Every action once, in first-seen order.
    pub fn action_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for action in self.types.iter().flat_map(|t| t.actions.iter()) {
            if !names.contains(&action.as_str()) {
                names.push(action);
            }
        }
        names
    }
}

impl EventTypeRule {
    /// An active type with these actions.
    pub fn new(name: &str, actions: Vec<String>) -> Self {
        Self {
            name: name.into(),
            actions,
            retired: false,
            retired_actions: Vec::new(),
        }
    }

    /// Whether `action` (canonical spelling) is retired.
    pub fn is_retired_action(&self, action: &str) -> bool {
        self.retired_actions.iter().any(|a| a == action)
    }

    /// The canonical spelling of one of this type's actions.
    pub fn action(&self, name: &str) -> Option<&str> {
        self.actions
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name.trim()))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_case_insensitively_and_returns_canonical_spelling() {
        let t = Taxonomy::default();
        let rule = t.event_type("test CASE").unwrap();
        assert_eq!(rule.name, "Test Case");
        assert_eq!(rule.action("uPdAtE"), Some("Update"));
        assert_eq!(rule.action("Login"), None);
        assert!(t.event_type("Test Cases").is_none());
        assert_eq!(
            t.action_names(),
            ["Create", "Update", "Delete", "Login", "Logout", "Export", "Download"]
        );
    }

    #[test]
    fn own_types_are_found_by_filters_but_not_in_an_account_taxonomy() {
        let t = Taxonomy::default();
        assert!(t.event_type("Auditlog Log Stream").is_none());
        assert_eq!(
            t.event_type_or_own("auditlog log stream")
                .map(|r| r.name.as_str()),
            Some(LOG_STREAM)
        );
        assert_eq!(t.any_action_or_own("replay"), Some("Replay"));
        assert_eq!(t.any_action_or_own("Nope"), None);
        let with = t.with_own_types();
        assert_eq!(
            with.event_type(LOG_STREAM).map(|r| r.actions.len()),
            Some(4)
        );
        assert_eq!(with.with_own_types(), with, "added once");
    }

    #[test]
    fn reserved_names_are_audit_log_and_every_auditlog_type_but_not_a_customers_user() {
        for name in [
            "Audit Log",
            "audit log ",
            "Auditlog User",
            "AUDITLOG API Key",
            "Auditlog Anything",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        for name in [
            "User",
            "Account",
            "Auditlogger",
            "Authentication",
            "Audit Logs",
            "Éauditlog x",
        ] {
            assert!(!is_reserved(name), "{name}");
        }
        for rule in &own_types().types {
            assert!(is_reserved(&rule.name), "{}", rule.name);
        }
    }
}
