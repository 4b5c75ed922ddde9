//! A `details` path that an account declared personal, such as
//! `details.assignee` or `details.ticket.owner.email`: the dotted path from
//! the event's root, the same text that keys its opening.
//!
//! A path steps through JSON objects only; a member name holding a dot
//! cannot be named (so declaring `details.a.b` means member `b` of member
//! `a`, never a member called `a.b`).

use serde_json::{Map, Value};

/// The text every path starts with: only `details` holds declared values.
const ROOT: &str = "details";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsPath {
    text: String,
    /// The member names below `details`, at least one.
    members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a personal details path: {reason}")]
pub struct DetailsPathError {
    text: String,
    reason: &'static str,
}

impl DetailsPath {
    pub fn parse(text: &str) -> Result<Self, DetailsPathError> {
        let error = |reason| DetailsPathError {
            text: text.into(),
            reason,
        };
        let mut parts = text.split('.');
        if parts.next() != Some(ROOT) {
            return Err(error("it must start with \"details.\""));
        }
        let members: Vec<String> = parts.map(str::to_string).collect();
        if members.is_empty() {
            return Err(error(
                "it must name a member of details, such as details.assignee",
            ));
        }
        if members.iter().any(String::is_empty) {
            return Err(error("a member name between dots is empty"));
        }
        Ok(Self {
            text: text.into(),
            members,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this path names a value inside the value `outer` names.
    pub fn is_inside(&self, outer: &DetailsPath) -> bool {
        self.members.len() > outer.members.len() && self.members.starts_with(&outer.members)
    }

    /// The value this path names in an event object, if it holds one.
    pub fn value_in<'a>(&self, event: &'a Map<String, Value>) -> Option<&'a Value> {
        let mut value = event.get(ROOT)?;
        for member in &self.members {
            value = value.as_object()?.get(member)?;
        }
        Some(value)
    }

    /// The same, to replace it.
    pub fn value_in_mut<'a>(&self, event: &'a mut Map<String, Value>) -> Option<&'a mut Value> {
        let mut value = event.get_mut(ROOT)?;
        for member in &self.members {
            value = value.as_object_mut()?.get_mut(member)?;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_dotted_paths_below_details_only() {
        let path = DetailsPath::parse("details.ticket.owner").unwrap();
        assert_eq!(path.as_str(), "details.ticket.owner");
        for bad in [
            "details",
            "actor.id",
            "details.",
            "details..x",
            "",
            "detailsx.y",
        ] {
            assert!(DetailsPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_values_through_objects_only() {
        let event = json!({"details": {"a": {"b": 1}, "list": [{"b": 2}]}});
        let event = event.as_object().unwrap();
        let find = |text: &str| DetailsPath::parse(text).unwrap().value_in(event).cloned();
        assert_eq!(find("details.a.b"), Some(json!(1)));
        assert_eq!(find("details.a"), Some(json!({"b": 1})));
        assert_eq!(find("details.list.b"), None);
        assert_eq!(find("details.missing"), None);
    }

    #[test]
    fn knows_which_path_lies_inside_which() {
        let outer = DetailsPath::parse("details.a").unwrap();
        let inner = DetailsPath::parse("details.a.b").unwrap();
        let sibling = DetailsPath::parse("details.ab").unwrap();
        assert!(inner.is_inside(&outer));
        assert!(!outer.is_inside(&inner));
        assert!(!outer.is_inside(&outer));
        assert!(!sibling.is_inside(&outer));
    }
}
