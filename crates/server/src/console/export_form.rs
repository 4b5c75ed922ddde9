//! The Export confirmation's form, shown in the Audit Logs page's
//! `<dialog>` and on the confirmation page without script
//! ([`CONFIRM_PATH`]): the page's filters as hidden fields and in words
//! (`summarize`, which the Audit Logs page shows too).

use super::session::SignedIn;
use crate::query_params::filter_pairs;
use auditlog_core::EventFilter;

/// The confirmation page (`exports::confirm`), where the form also posts.
pub const CONFIRM_PATH: &str = "/settings/exports/new";

/// What the confirmation shows and sends: the filters, as words and as the
/// hidden fields of the form.
pub struct ExportForm {
    pub csrf: String,
    pub fields: Vec<(String, String)>,
    pub summary: Vec<(String, String)>,
}

impl ExportForm {
    pub fn new(user: &SignedIn, filter: &EventFilter) -> Self {
        Self {
            csrf: user.grant.csrf_token.clone(),
            fields: filter_pairs(filter),
            summary: summarize(filter),
        }
    }
}

/// The filters in words, e.g. ("Event Type", "Test Case or Element").
pub fn summarize(filter: &EventFilter) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |label: &str, values: &[String]| {
        if !values.is_empty() {
            out.push((label.to_string(), values.join(" or ")));
        }
    };
    add("Event Type", &filter.event_types);
    add("Action", &filter.actions);
    add("User", &filter.users);
    add("Project", &filter.projects);
    add("App", filter.app.as_slice());
    add("Version", filter.version.as_slice());
    add("Entity", filter.target_id.as_slice());
    if !filter.query.is_empty() {
        add("Search", &[filter.query.to_string()]);
    }
    add(
        "From",
        &filter
            .from
            .map(|t| t.to_rfc3339())
            .into_iter()
            .collect::<Vec<_>>(),
    );
    add(
        "To",
        &filter
            .to
            .map(|t| t.to_rfc3339())
            .into_iter()
            .collect::<Vec<_>>(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_params::parse_filter;

    #[test]
    fn the_filters_read_as_words_in_canonical_spelling() {
        let given = [
            ("event_type", "test case"),
            ("action", "update"),
            ("action", "create"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        let (filter, _) = parse_filter(&given, &auditlog_core::Taxonomy::default(), &[]).unwrap();
        assert_eq!(
            summarize(&filter),
            [
                ("Event Type".to_string(), "Test Case".to_string()),
                ("Action".to_string(), "Update or Create".to_string()),
            ]
        );
    }
}
