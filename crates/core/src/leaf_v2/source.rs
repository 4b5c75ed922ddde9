//! `source` of a stored event (SPEC "Event"): who made the server store it.
//! Set by the server, never by the client; part of leaf v2.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Sent, or an action taken, with an API key.
    ApiKey {
        /// The key's public id, stable across `auditlog copy`.
        key: String,
        /// The key's name (may be empty until keys carry names).
        name: String,
    },
    /// An action of a console user.
    Console { user: String },
    /// Auditlog's own background work, such as pruning.
    System,
}

impl Source {
    /// The JSON form SPEC fixes: `{"kind": "api_key", "key", "name"}`,
    /// `{"kind": "console", "user"}` or `{"kind": "system"}`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        let mut put = |key: &str, value: &str| {
            object.insert(key.into(), Value::String(value.into()));
        };
        match self {
            Source::ApiKey { key, name } => {
                put("kind", "api_key");
                put("key", key);
                put("name", name);
            }
            Source::Console { user } => {
                put("kind", "console");
                put("user", user);
            }
            Source::System => put("kind", "system"),
        }
        Value::Object(object)
    }

    /// Reads the JSON form back (what a version 2 leaf holds); `None` when
    /// it is not one of the three forms.
    pub fn from_json(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        match value.get("kind")?.as_str()? {
            "api_key" => Some(Source::ApiKey {
                key: text("key")?,
                name: text("name").unwrap_or_default(),
            }),
            "console" => Some(Source::Console {
                user: text("user")?,
            }),
            "system" => Some(Source::System),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_has_the_shape_spec_gives() {
        let key = Source::ApiKey {
            key: "k-1".into(),
            name: "ci".into(),
        };
        assert_eq!(
            key.to_json(),
            json!({"kind": "api_key", "key": "k-1", "name": "ci"})
        );
        let console = Source::Console { user: "7".into() };
        assert_eq!(console.to_json(), json!({"kind": "console", "user": "7"}));
        assert_eq!(Source::System.to_json(), json!({"kind": "system"}));
    }
}
