//! The `details` paths an account declares personal (SPEC "Leaf version
//! 2"): each event that arrives afterwards commits to the values at these
//! paths with salts of their own, so that an erasure can remove them later
//! while the leaf hash stays. A declaration applies to events from the
//! moment it is stored: the appenders read it in the same transaction that
//! writes the events, so no event sealed after a change misses it.

use crate::{AccountId, Result, StoreError};
use async_trait::async_trait;
use auditlog_core::leaf_v2::DetailsPath;

/// At most this many declared paths per account: each is one commitment
/// per event that has a value there.
pub const MAX_PERSONAL_PATHS: usize = 100;

#[async_trait]
pub trait PersonalPaths: Send + Sync {
    /// The account's declared paths, in the order they were declared.
    async fn personal_paths(&self, account: AccountId) -> Result<Vec<DetailsPath>>;
    /// Replaces the account's declared paths (at most
    /// [`MAX_PERSONAL_PATHS`]); returns the ones it replaced.
    async fn set_personal_paths(
        &self,
        account: AccountId,
        paths: &[DetailsPath],
    ) -> Result<Vec<DetailsPath>>;
}

/// How the backends store a declaration: a JSON array of the paths' text.
pub fn encode(paths: &[DetailsPath]) -> Result<String> {
    if paths.len() > MAX_PERSONAL_PATHS {
        return Err(StoreError::internal(format!(
            "{} personal paths, at most {MAX_PERSONAL_PATHS} are kept",
            paths.len()
        )));
    }
    let texts: Vec<&str> = paths.iter().map(DetailsPath::as_str).collect();
    serde_json::to_string(&texts)
        .map_err(|e| StoreError::internal_caused_by("cannot encode personal paths", e))
}

/// The paths of a stored declaration; a stored text that is not one is an
/// error (it was written by [`encode`], so it was altered).
pub fn decode(stored: &str) -> Result<Vec<DetailsPath>> {
    let texts: Vec<String> = serde_json::from_str(stored).map_err(|e| {
        StoreError::internal_caused_by("the stored personal paths are not a JSON list", e)
    })?;
    texts
        .iter()
        .map(|text| {
            DetailsPath::parse(text).map_err(|e| {
                StoreError::internal_caused_by("a stored personal path is not a details path", e)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_reads_back_in_its_order() {
        let paths: Vec<DetailsPath> = ["details.b", "details.a.x"]
            .iter()
            .map(|p| DetailsPath::parse(p).unwrap())
            .collect();
        let stored = encode(&paths).unwrap();
        assert_eq!(stored, r#"["details.b","details.a.x"]"#);
        assert_eq!(decode(&stored).unwrap(), paths);
        assert!(decode(r#"["actor.email"]"#).is_err());
        assert!(decode("nope").is_err());
    }
}
