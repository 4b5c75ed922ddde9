//! `GET /settings/audit-logs/query-check?q=…&tz=…`: whether the search box's
//! query reads, asked by the page script before it leaves the page, so that
//! a bad query shows the parser's message at its position while the table
//! stays as it was. The answer has the API's error shape (400 `bad_query`
//! with `position` and `expected`); the page itself gives the same message
//! when the script is off.

use super::session::Viewer;
use crate::error::ApiError;
use auditlog_core::filter::parse_query;
use auditlog_core::search::Query as SearchQuery;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

pub const PATH: &str = "/settings/audit-logs/query-check";

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    q: String,
    tz: Option<String>,
}

pub async fn check(_: Viewer, Query(params): Query<Params>) -> Response {
    match read(&params.q, params.tz.as_deref()) {
        Ok(query) => Json(json!({"query": query.to_string()})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The query read in the viewer's zone (UTC when none is given), with the
/// API's own reading and errors.
pub fn read(q: &str, tz: Option<&str>) -> Result<SearchQuery, ApiError> {
    Ok(parse_query(Some(q), tz.filter(|name| !name.is_empty()))?)
}

/// A line of spaces and a `^` under the character at `position` (code
/// points), to print beneath the query.
pub fn pointer(position: usize) -> String {
    format!("{}^", " ".repeat(position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_query_names_its_position_and_what_was_expected() {
        let e = read("type:Login user:", None).expect_err("a key without a value");
        assert_eq!(e.code, "bad_query");
        let details = e.details.expect("details");
        assert_eq!(details["position"], 16);
        assert!(details["expected"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(pointer(3), "   ^");
    }

    #[test]
    fn a_good_query_reads_in_the_viewers_zone() {
        let utc = read("time:2026-11-30", None).expect("reads");
        let paris = read("time:2026-11-30", Some("Europe/Paris")).expect("reads");
        assert_ne!(utc, paris, "the day starts at the viewer's midnight");
        assert_eq!(
            read("x", Some("Not/AZone")).expect_err("bad tz").code,
            "invalid_parameter"
        );
    }
}
