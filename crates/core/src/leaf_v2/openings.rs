//! `openings` of a served v2 event: the salt of each commitment in its leaf,
//! keyed `personal` or by the committed `details` path. With them and the
//! plain values a verifier recomputes every commitment, hence the leaf.

use super::details_path::DetailsPath;
use super::salt::{Salt, SALT_BYTES};
use super::LeafV2Error;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The key of the commitment to the actor's and the context's personal values.
pub const PERSONAL: &str = "personal";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Openings {
    personal: Option<Salt>,
    /// Kept sorted by path so that the JSON form is stable.
    details: BTreeMap<String, (DetailsPath, Salt)>,
}

impl Openings {
    pub(super) fn set_personal(&mut self, salt: Salt) {
        self.personal = Some(salt);
    }

    pub(super) fn add_details(&mut self, path: DetailsPath, salt: Salt) {
        self.details.insert(path.as_str().to_string(), (path, salt));
    }

    /// The salt of the `personal` commitment.
    pub fn personal(&self) -> Result<&Salt, LeafV2Error> {
        self.personal
            .as_ref()
            .ok_or_else(|| LeafV2Error::BadOpening {
                key: PERSONAL.into(),
                reason: "missing: every version 2 leaf commits to the actor's personal values"
                    .into(),
            })
    }

    /// Each committed `details` path with its salt, by path.
    pub fn details(&self) -> impl Iterator<Item = (&DetailsPath, &Salt)> {
        self.details.values().map(|(path, salt)| (path, salt))
    }

    /// `{"personal": "<base64 salt>", "details.x": "<base64 salt>", …}`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(salt) = &self.personal {
            object.insert(PERSONAL.into(), Value::String(BASE64.encode(salt)));
        }
        for (path, (_, salt)) in &self.details {
            object.insert(path.clone(), Value::String(BASE64.encode(salt)));
        }
        Value::Object(object)
    }

    /// Reads served `openings`, refusing anything the leaf could not have
    /// been built from: a salt that is not 16 bytes of standard base64, a key
    /// that is neither `personal` nor a `details` path, or a path inside
    /// another committed path (its value is hidden in the outer commitment,
    /// so it never gets an opening of its own).
    pub fn from_json(value: &Value) -> Result<Self, LeafV2Error> {
        let object = value.as_object().ok_or_else(|| LeafV2Error::BadOpening {
            key: "openings".into(),
            reason: "must be a JSON object".into(),
        })?;
        let mut openings = Openings::default();
        for (key, salt) in object {
            let salt = decode_salt(key, salt)?;
            if key == PERSONAL {
                openings.set_personal(salt);
                continue;
            }
            let path = DetailsPath::parse(key).map_err(|e| LeafV2Error::BadOpening {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            openings.add_details(path, salt);
        }
        for (outer, _) in openings.details() {
            if let Some((inner, _)) = openings.details().find(|(p, _)| p.is_inside(outer)) {
                return Err(LeafV2Error::BadOpening {
                    key: inner.as_str().into(),
                    reason: format!(
                        "lies inside {}, whose commitment already covers it",
                        outer.as_str()
                    ),
                });
            }
        }
        Ok(openings)
    }
}

fn decode_salt(key: &str, value: &Value) -> Result<Salt, LeafV2Error> {
    let bad = |reason: &str| LeafV2Error::BadOpening {
        key: key.into(),
        reason: reason.into(),
    };
    let text = value
        .as_str()
        .ok_or_else(|| bad("must be a base64 string"))?;
    let bytes = BASE64
        .decode(text)
        .map_err(|_| bad("is not standard base64 with padding"))?;
    Salt::try_from(bytes.as_slice())
        .map_err(|_| bad(&format!("must be {SALT_BYTES} bytes, is {}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip() {
        let mut openings = Openings::default();
        openings.set_personal([1; 16]);
        openings.add_details(DetailsPath::parse("details.a.b").unwrap(), [2; 16]);
        let json = openings.to_json();
        assert_eq!(
            json,
            json!({"personal": "AQEBAQEBAQEBAQEBAQEBAQ==", "details.a.b": "AgICAgICAgICAgICAgICAg=="})
        );
        assert_eq!(Openings::from_json(&json).unwrap(), openings);
    }

    #[test]
    fn refuses_what_no_leaf_was_built_from() {
        let refused = |value: Value| Openings::from_json(&value).unwrap_err().to_string();
        assert!(refused(json!([])).contains("JSON object"));
        assert!(refused(json!({"personal": "AQEB"})).contains("16 bytes, is 3"));
        assert!(refused(json!({"personal": "not base64!"})).contains("base64"));
        assert!(refused(json!({"personal": 7})).contains("base64 string"));
        assert!(refused(json!({"actor.id": "AQEBAQEBAQEBAQEBAQEBAQ=="})).contains("details"));
        let nested = refused(json!({
            "details.a": "AQEBAQEBAQEBAQEBAQEBAQ==",
            "details.a.b": "AQEBAQEBAQEBAQEBAQEBAQ=="
        }));
        assert!(nested.contains("details.a.b"), "{nested}");
        assert!(Openings::default().personal().is_err());
    }
}
