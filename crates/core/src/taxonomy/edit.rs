//! Changes an admin makes to an account's taxonomy (SPEC "Default
//! taxonomy"): adding an event type with its actions, adding an action to a
//! type, retiring a type or an action. An edit is plain data, so that a
//! backend can apply it inside the transaction that reads and writes the
//! taxonomy ([`Taxonomy::apply`]), and each applied edit says exactly what
//! changed (old → new) for its `Auditlog Account` event.

use super::{is_reserved, EventTypeRule, Taxonomy};
use crate::FieldError;
use serde_json::{json, Value};

/// Longest type or action name an admin may add, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most event types an account's taxonomy holds, retired ones included.
pub const MAX_TYPES: usize = 200;
/// Most actions one event type holds, retired ones included.
pub const MAX_ACTIONS: usize = 50;

/// One change to a taxonomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaxonomyEdit {
    /// A new event type with at least one action.
    AddType { name: String, actions: Vec<String> },
    /// A new action of an existing, active type.
    AddAction { event_type: String, action: String },
    /// Retires a type: refused for new events, valid in stored ones.
    RetireType { event_type: String },
    /// Retires one action of a type.
    RetireAction { event_type: String, action: String },
}

/// What an applied edit changed: `field` names it the way `details.changes`
/// of the audit event does, with the exact values before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxonomyChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl TaxonomyChange {
    /// As one entry of an audit event's `details.changes`.
    pub fn to_json(&self) -> Value {
        json!({"field": self.field, "old": self.old, "new": self.new})
    }
}

/// A new name, checked: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no
/// control characters.
fn checked_name(field: &str, text: &str) -> Result<String, FieldError> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            field,
            "invalid_length",
            format!("{field} must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "control_character",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(name.to_string())
}

fn reserved(field: &str, name: &str) -> FieldError {
    FieldError::new(
        field,
        "reserved_event_type",
        format!(
            "event type {name:?} is reserved for Auditlog's own entries (\"Audit Log\" and every \
             type starting \"Auditlog \"); use another name for your own type"
        ),
    )
}

fn unknown_type(name: &str) -> FieldError {
    FieldError::new(
        "event_type",
        "not_found",
        format!("there is no event type {name:?} in this account's taxonomy"),
    )
}

impl Taxonomy {
    /// The taxonomy after `edit`, with what changed; `Ok(None)` when the
    /// edit changes nothing (retiring what is already retired). The error
    /// names the field and the rule: `not_found` and `already_exists` are
    /// the caller's 404 and 409, the others 422.
    pub fn apply(
        &self,
        edit: &TaxonomyEdit,
    ) -> Result<Option<(Taxonomy, TaxonomyChange)>, FieldError> {
        let mut next = self.clone();
        let change = match edit {
            TaxonomyEdit::AddType { name, actions } => {
                let name = checked_name("name", name)?;
                if is_reserved(&name) {
                    return Err(reserved("name", &name));
                }
                if let Some(existing) = self.event_type(&name) {
                    return Err(FieldError::new(
                        "name",
                        "already_exists",
                        format!(
                            "event type {:?} already exists{}",
                            existing.name,
                            if existing.retired { " (retired)" } else { "" }
                        ),
                    ));
                }
                if self.types.len() >= MAX_TYPES {
                    return Err(FieldError::new(
                        "name",
                        "too_many",
                        format!("a taxonomy holds at most {MAX_TYPES} event types"),
                    ));
                }
                if actions.is_empty() || actions.len() > MAX_ACTIONS {
                    return Err(FieldError::new(
                        "actions",
                        "invalid_length",
                        format!("actions must list 1 to {MAX_ACTIONS} actions"),
                    ));
                }
                let mut checked: Vec<String> = Vec::new();
                for action in actions {
                    let action = checked_name("actions", action)?;
                    if checked.iter().any(|a| a.eq_ignore_ascii_case(&action)) {
                        return Err(FieldError::new(
                            "actions",
                            "repeated",
                            format!("action {action:?} is listed twice"),
                        ));
                    }
                    checked.push(action);
                }
                let rule = EventTypeRule::new(&name, checked.clone());
                next.types.push(rule);
                TaxonomyChange {
                    field: "event_types".into(),
                    old: Value::Null,
                    new: json!({"name": name, "actions": checked}),
                }
            }
            TaxonomyEdit::AddAction { event_type, action } => {
                let rule = self
                    .event_type(event_type)
                    .ok_or_else(|| unknown_type(event_type))?;
                if is_reserved(&rule.name) {
                    return Err(reserved("event_type", &rule.name));
                }
                if rule.retired {
                    return Err(FieldError::new(
                        "event_type",
                        "retired_event_type",
                        format!(
                            "event type {:?} is retired; actions cannot be added to it",
                            rule.name
                        ),
                    ));
                }
                let action = checked_name("name", action)?;
                if let Some(existing) = rule.action(&action) {
                    return Err(FieldError::new(
                        "name",
                        "already_exists",
                        format!(
                            "event type {:?} already has action {existing:?}{}",
                            rule.name,
                            if rule.is_retired_action(existing) {
                                " (retired)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                if rule.actions.len() >= MAX_ACTIONS {
                    return Err(FieldError::new(
                        "name",
                        "too_many",
                        format!("an event type holds at most {MAX_ACTIONS} actions"),
                    ));
                }
                let old = json!(rule.actions);
                let name = rule.name.clone();
                let target = next
                    .types
                    .iter_mut()
                    .find(|t| t.name == name)
                    .ok_or_else(|| unknown_type(event_type))?;
                target.actions.push(action);
                TaxonomyChange {
                    field: format!("event_types.{name}.actions"),
                    old,
                    new: json!(target.actions),
                }
            }
            TaxonomyEdit::RetireType { event_type } => {
                let rule = self
                    .event_type(event_type)
                    .ok_or_else(|| unknown_type(event_type))?;
                if is_reserved(&rule.name) {
                    return Err(reserved("event_type", &rule.name));
                }
                if rule.retired {
                    return Ok(None);
                }
                let name = rule.name.clone();
                if let Some(target) = next.types.iter_mut().find(|t| t.name == name) {
                    target.retired = true;
                }
                TaxonomyChange {
                    field: format!("event_types.{name}.status"),
                    old: json!("active"),
                    new: json!("retired"),
                }
            }
            TaxonomyEdit::RetireAction { event_type, action } => {
                let rule = self
                    .event_type(event_type)
                    .ok_or_else(|| unknown_type(event_type))?;
                if is_reserved(&rule.name) {
                    return Err(reserved("event_type", &rule.name));
                }
                let canonical = rule.action(action).ok_or_else(|| {
                    FieldError::new(
                        "action",
                        "not_found",
                        format!("event type {:?} has no action {action:?}", rule.name),
                    )
                })?;
                if rule.is_retired_action(canonical) {
                    return Ok(None);
                }
                let (name, canonical) = (rule.name.clone(), canonical.to_string());
                if let Some(target) = next.types.iter_mut().find(|t| t.name == name) {
                    target.retired_actions.push(canonical.clone());
                }
                TaxonomyChange {
                    field: format!("event_types.{name}.actions.{canonical}.status"),
                    old: json!("active"),
                    new: json!("retired"),
                }
            }
        };
        Ok(Some((next, change)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_type(name: &str, actions: &[&str]) -> TaxonomyEdit {
        TaxonomyEdit::AddType {
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn rule(result: Result<Option<(Taxonomy, TaxonomyChange)>, FieldError>) -> &'static str {
        result.unwrap_err().rule
    }

    #[test]
    fn types_and_actions_are_added_with_exact_changes() {
        let t = Taxonomy::default();
        let (t, change) = t
            .apply(&add_type(" Defect ", &["Triage"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            change.to_json(),
            json!({"field": "event_types", "old": null, "new": {"name": "Defect", "actions": ["Triage"]}})
        );
        let (t, change) = t
            .apply(&TaxonomyEdit::AddAction {
                event_type: "defect".into(),
                action: "Close".into(),
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            change.to_json(),
            json!({"field": "event_types.Defect.actions", "old": ["Triage"], "new": ["Triage", "Close"]})
        );
        assert_eq!(
            t.event_type("DEFECT").unwrap().action("close"),
            Some("Close")
        );
        // A customer's own `User` type is theirs.
        assert!(t.apply(&add_type("User", &["Create"])).unwrap().is_some());
    }

    #[test]
    fn bad_edits_name_their_rule() {
        let t = Taxonomy::default();
        assert_eq!(
            rule(t.apply(&add_type("Audit Log", &["X"]))),
            "reserved_event_type"
        );
        assert_eq!(
            rule(t.apply(&add_type("Auditlog User", &["X"]))),
            "reserved_event_type"
        );
        assert_eq!(
            rule(t.apply(&add_type("test case", &["X"]))),
            "already_exists"
        );
        assert_eq!(rule(t.apply(&add_type("", &["X"]))), "invalid_length");
        assert_eq!(
            rule(t.apply(&add_type("A\tB", &["X"]))),
            "control_character"
        );
        assert_eq!(rule(t.apply(&add_type("Defect", &[]))), "invalid_length");
        assert_eq!(rule(t.apply(&add_type("Defect", &["A", "a"]))), "repeated");
        let add = |event_type: &str, action: &str| TaxonomyEdit::AddAction {
            event_type: event_type.into(),
            action: action.into(),
        };
        assert_eq!(rule(t.apply(&add("Nope", "X"))), "not_found");
        assert_eq!(rule(t.apply(&add("Test Case", "update"))), "already_exists");
        assert_eq!(
            rule(t.apply(&add("Audit Log", "Peek"))),
            "reserved_event_type"
        );
    }

    #[test]
    fn retired_types_and_actions_stay_known_but_are_refused_for_new_events() {
        let t = Taxonomy::default();
        let retire_action = TaxonomyEdit::RetireAction {
            event_type: "test case".into(),
            action: "delete".into(),
        };
        let (t, change) = t.apply(&retire_action).unwrap().unwrap();
        assert_eq!(change.field, "event_types.Test Case.actions.Delete.status");
        assert_eq!(
            (change.old, change.new),
            (json!("active"), json!("retired"))
        );
        assert_eq!(t.apply(&retire_action).unwrap(), None, "once");
        assert_eq!(
            t.retired_use("Test Case", Some("DELETE")).unwrap().rule,
            "retired_action"
        );
        assert!(t.retired_use("Test Case", Some("Update")).is_none());

        let retire = TaxonomyEdit::RetireType {
            event_type: "Element".into(),
        };
        let (t, _) = t.apply(&retire).unwrap().unwrap();
        let refusal = t.retired_use("element", Some("Create")).unwrap();
        assert_eq!(
            (refusal.field.as_str(), refusal.rule),
            ("event_type", "retired_event_type")
        );
        assert!(
            refusal.message.contains("\"Element\""),
            "{}",
            refusal.message
        );
        // Still known: stored events keep their spelling and filters find them.
        assert_eq!(
            t.event_type("element").map(|r| r.name.as_str()),
            Some("Element")
        );
        assert!(t.type_names().any(|n| n == "Element"));
        assert_eq!(
            rule(t.apply(&TaxonomyEdit::AddAction {
                event_type: "Element".into(),
                action: "Move".into()
            })),
            "retired_event_type"
        );
        assert_eq!(
            rule(t.apply(&TaxonomyEdit::RetireType {
                event_type: "Audit Log".into()
            })),
            "reserved_event_type"
        );
    }

    #[test]
    fn a_taxonomy_without_retirements_is_stored_as_before() {
        let text = serde_json::to_string(&Taxonomy::default()).unwrap();
        assert!(!text.contains("retired"), "{text}");
        let back: Taxonomy = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Taxonomy::default());
        let (retired, _) = back
            .apply(&TaxonomyEdit::RetireType {
                event_type: "Element".into(),
            })
            .unwrap()
            .unwrap();
        let text = serde_json::to_string(&retired).unwrap();
        let again: Taxonomy = serde_json::from_str(&text).unwrap();
        assert_eq!(again, retired);
    }
}
