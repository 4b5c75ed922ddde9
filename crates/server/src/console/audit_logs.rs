//! `/settings/audit-logs`: the filter bar, the activity histogram and the
//! table of events, newest first, with Newer/Older paging. Filters live in
//! the URL as the API's own query parameters, so a page can be shared and
//! the back button works; the page script only converts the From/To pickers
//! between the viewer's time zone and UTC.

use super::export_form::{summarize, ExportForm, CONFIRM_PATH};
use super::histogram::{self, Chart};
use super::page::{render, ConsoleError, Frame};
use super::query_check;
use super::session::Viewer;
use super::url::with_query;
use super::view::Row;
use crate::error::ApiError;
use crate::event_counts::{zoned_histogram_data, TOO_MANY_BUCKETS};
use crate::query_params::{filter_pairs, parse_filter, parse_zone};
use crate::state::AppState;
use askama::Template;
use auditlog_core::search::{Test, TextKey, Zone};
use auditlog_core::{Cursor, ErrorChain, EventFilter, Interval, Taxonomy, Timestamp};
use auditlog_store::Account;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

pub const PATH: &str = "/settings/audit-logs";
/// The Live switch's Server-Sent Events (`console::live`).
pub const LIVE_PATH: &str = "/settings/audit-logs/live";
/// Rows per page.
const PAGE_SIZE: usize = 50;
/// How many earlier pages the Newer link can walk back through.
const MAX_BACK: usize = 100;
/// Type-ahead and select sizes: enough for a person to pick from.
const MAX_ACTORS: usize = 2_000;
const MAX_PROJECTS: usize = 500;

/// One option of a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "audit_logs.html")]
struct AuditLogsPage {
    frame: Option<Frame>,
    error: Option<String>,
    rows: Vec<Row>,
    chart: Option<Chart>,
    chart_width: u32,
    chart_height: u32,
    event_types: Vec<Choice>,
    actions: Vec<Choice>,
    actors: Vec<Choice>,
    projects: Vec<Choice>,
    user: String,
    from: String,
    to: String,
    /// The From/To instants as `datetime-local` values in UTC, for browsers without script.
    from_utc_local: String,
    to_utc_local: String,
    target_id: Option<String>,
    app: Option<String>,
    version: Option<String>,
    has_filters: bool,
    /// Human-readable filters, for the page and the export confirmation.
    summary: Vec<(String, String)>,
    newer_href: Option<String>,
    older_href: Option<String>,
    /// The Export confirmation for these filters (none when they are invalid).
    export: Option<ExportForm>,
    /// The confirmation as a page, for browsers without script.
    export_href: String,
    /// Just back from starting an export.
    export_started: bool,
    /// The Live switch's stream (first page only): new events for these
    /// filters after the highest seq when the page was made.
    live_href: Option<String>,
    /// The search box's query as typed, and the zone its times are read in
    /// (the page script sets the viewer's).
    q: String,
    tz: String,
    /// How the histogram's caption names the zone of its buckets.
    tz_label: String,
    /// Where the page script checks a query before leaving the page.
    check_href: &'static str,
    /// A query that does not read: the parser's message and a `^` under
    /// the position it names.
    query_error: Option<QueryErrorView>,
}

struct QueryErrorView {
    message: String,
    pointer: String,
}

impl AuditLogsPage {
    fn history_href(&self, target_id: &str) -> String {
        history_href(target_id)
    }

    fn user_href(&self, actor_id: &str) -> String {
        user_href(actor_id)
    }
}

/// An entity's activity history (the row template's link).
pub(super) fn history_href(target_id: &str) -> String {
    with_query(PATH, &[("target_id".into(), target_id.into())])
}

/// A user's activity (the row template's link).
pub(super) fn user_href(actor_id: &str) -> String {
    with_query(PATH, &[("user".into(), actor_id.into())])
}

/// The Live switch's stream of new rows for `filter` after seq `after`.
fn live_href(filter: &EventFilter, after: u64) -> String {
    let mut pairs = filter_pairs(filter);
    pairs.push(("after_seq".into(), after.to_string()));
    with_query(LIVE_PATH, &pairs)
}

/// What the URL asked for, split into the filter and the paging state.
pub(super) struct Request {
    filter_pairs: Vec<(String, String)>,
    cursor: Option<String>,
    back: Vec<String>,
    export_started: bool,
    /// Where the Live stream starts (its own parameter, not a filter).
    pub(super) after_seq: Option<String>,
}

/// Empty values are "no filter" (forms send every field); `from_local` and
/// `to_local` are the pickers' values when no script converted them, read
/// as UTC, and take precedence over the hidden `from`/`to` they replace.
pub(super) fn split_request(pairs: Vec<(String, String)>) -> Request {
    let local_given = |name: &str| pairs.iter().any(|(n, _)| n == name);
    let (from_local, to_local) = (local_given("from_local"), local_given("to_local"));
    let mut request = Request {
        filter_pairs: Vec::new(),
        cursor: None,
        back: Vec::new(),
        export_started: false,
        after_seq: None,
    };
    for (name, value) in pairs {
        match name.as_str() {
            "cursor" if !value.is_empty() => request.cursor = Some(value),
            "cursor" => {}
            "back" => request.back.push(value),
            "export" => request.export_started = value == "started",
            "after_seq" => request.after_seq = Some(value),
            "from" if from_local => {}
            "to" if to_local => {}
            "from_local" | "to_local" if value.is_empty() => {}
            "from_local" => request
                .filter_pairs
                .push(("from".into(), utc_from_local(&value, false))),
            "to_local" => request
                .filter_pairs
                .push(("to".into(), utc_from_local(&value, true))),
            _ if value.is_empty() => {}
            _ => request.filter_pairs.push((name, value)),
        }
    }
    request
}

/// The filter and cursor, checked by the API's own rules (so errors read the same).
pub(super) fn parse_request(
    request: &Request,
    taxonomy: &Taxonomy,
) -> Result<(EventFilter, Option<Cursor>), ApiError> {
    let (filter, _) = parse_filter(&request.filter_pairs, taxonomy, &[])?;
    let cursor = request.cursor.as_deref().map(Cursor::decode).transpose()?;
    Ok((filter, cursor))
}

/// `2026-11-25T14:03` or `…:07` as RFC 3339 UTC; `to` covers its whole second.
fn utc_from_local(value: &str, end_of_second: bool) -> String {
    let with_seconds = if value.len() == 16 {
        format!("{value}:00")
    } else {
        value.to_string()
    };
    if end_of_second && !with_seconds.contains('.') {
        format!("{with_seconds}.999999Z")
    } else {
        format!("{with_seconds}Z")
    }
}

/// RFC 3339 UTC as a `datetime-local` value (UTC wall time, to the second).
fn utc_local_value(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339().chars().take(19).collect())
        .unwrap_or_default()
}

pub async fn page(
    State(state): State<AppState>,
    Viewer(user): Viewer,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let account = &user.grant.account;
    let mut view = empty_page(&state, account, user.frame("audit-logs")).await?;
    let request = split_request(pairs);
    let given = |name: &str| {
        request
            .filter_pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    view.q = given("q");
    view.tz = given("tz");
    if !view.tz.is_empty() {
        view.tz_label = view.tz.clone();
    }
    let (filter, cursor) = match parse_request(&request, &account.taxonomy) {
        Ok(parsed) => parsed,
        Err(e) if e.code == "bad_query" => {
            let position = e
                .details
                .as_ref()
                .and_then(|d| d["position"].as_u64())
                .unwrap_or(0);
            view.query_error = Some(QueryErrorView {
                message: e.message,
                pointer: query_check::pointer(usize::try_from(position).unwrap_or(0)),
            });
            return Ok(render(StatusCode::BAD_REQUEST, &view));
        }
        Err(e) => {
            view.error = Some(format!(
                "{} Change or clear the filters to continue.",
                e.message
            ));
            return Ok(render(StatusCode::BAD_REQUEST, &view));
        }
    };
    fill_filters(&mut view, &filter);
    view.export = Some(ExportForm::new(&user, &filter));
    view.export_href = with_query(CONFIRM_PATH, &filter_pairs(&filter));
    view.export_started = request.export_started;
    if request.cursor.is_none() {
        // Read before the page, so that no event falls between the page and
        // the stream; one stored meanwhile may be in both, and the page
        // script adds a row only once.
        let after = state.store.last_seq(account.id).await?;
        view.live_href = Some(live_href(&filter, after));
    }
    let result = state
        .store
        .query(account.id, &filter, cursor, PAGE_SIZE)
        .await?;
    for record in &result.events {
        view.rows.push(
            Row::from_record(record)
                .map_err(|e| ConsoleError::internal("reading a stored event", ErrorChain(&e)))?,
        );
    }
    // Buckets start at the viewer's midnight (the page script sends its zone).
    let zone = match parse_zone(&request.filter_pairs) {
        Ok(zone) => zone,
        Err(e) => {
            view.error = Some(e.message);
            return Ok(render(StatusCode::BAD_REQUEST, &view));
        }
    };
    view.chart = Some(chart_for(&state, account, &filter, &zone).await?);
    let base = filter_pairs(&filter);
    let mut back = request.back;
    if back.len() > MAX_BACK {
        back.drain(..back.len() - MAX_BACK);
    }
    if let Some(next) = result.next_cursor {
        let mut pairs = base.clone();
        pairs.push(("cursor".into(), next.encode()));
        for b in back
            .iter()
            .chain(std::iter::once(&request.cursor.clone().unwrap_or_default()))
        {
            pairs.push(("back".into(), b.clone()));
        }
        view.older_href = Some(with_query(PATH, &pairs));
    }
    if request.cursor.is_some() {
        let mut pairs = base;
        let previous = back.pop().unwrap_or_default();
        if !previous.is_empty() {
            pairs.push(("cursor".into(), previous));
        }
        for b in &back {
            pairs.push(("back".into(), b.clone()));
        }
        view.newer_href = Some(with_query(PATH, &pairs));
    }
    Ok(render(StatusCode::OK, &view))
}

/// The page with its selects filled and no rows.
async fn empty_page(
    state: &AppState,
    account: &Account,
    frame: Frame,
) -> Result<AuditLogsPage, ConsoleError> {
    let choices = |names: Vec<&str>| {
        names
            .into_iter()
            .map(|n| Choice {
                value: n.to_string(),
                label: n.to_string(),
                selected: false,
            })
            .collect()
    };
    let actors = state
        .store
        .actors(account.id, MAX_ACTORS)
        .await?
        .into_iter()
        .map(|a| {
            let label = match (a.name, a.email) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (Some(n), None) => n,
                (None, Some(e)) => e,
                (None, None) => String::new(),
            };
            Choice {
                value: a.id,
                label,
                selected: false,
            }
        })
        .collect();
    let projects = state
        .store
        .projects(account.id, MAX_PROJECTS)
        .await?
        .into_iter()
        .map(|p| Choice {
            label: p.clone(),
            value: p,
            selected: false,
        })
        .collect();
    Ok(AuditLogsPage {
        frame: Some(frame),
        error: None,
        rows: Vec::new(),
        chart: None,
        chart_width: histogram::WIDTH,
        chart_height: histogram::HEIGHT,
        event_types: choices(account.taxonomy.type_names().collect()),
        actions: choices(account.taxonomy.action_names()),
        actors,
        projects,
        user: String::new(),
        from: String::new(),
        to: String::new(),
        from_utc_local: String::new(),
        to_utc_local: String::new(),
        target_id: None,
        app: None,
        version: None,
        has_filters: false,
        summary: Vec::new(),
        newer_href: None,
        older_href: None,
        export: None,
        export_href: CONFIRM_PATH.to_string(),
        export_started: false,
        live_href: None,
        q: String::new(),
        tz: String::new(),
        tz_label: "UTC".to_string(),
        check_href: query_check::PATH,
        query_error: None,
    })
}

fn fill_filters(view: &mut AuditLogsPage, filter: &EventFilter) {
    let mark = |choices: &mut Vec<Choice>, picked: &[String]| {
        for c in choices.iter_mut() {
            c.selected = picked.iter().any(|p| p == &c.value);
        }
        // A value from a shared URL that the lists do not hold is still shown as chosen.
        for p in picked {
            if !choices.iter().any(|c| &c.value == p) {
                choices.push(Choice {
                    value: p.clone(),
                    label: p.clone(),
                    selected: true,
                });
            }
        }
    };
    // The dropdowns show the parameters and the query's positive exact
    // terms of their keys alike (the page script keeps them in step).
    let types = in_spelling(&view.event_types, query_values(filter, TextKey::Type));
    let actions = in_spelling(&view.actions, query_values(filter, TextKey::Action));
    mark(
        &mut view.event_types,
        &[filter.event_types.clone(), types].concat(),
    );
    mark(
        &mut view.actions,
        &[filter.actions.clone(), actions].concat(),
    );
    mark(
        &mut view.projects,
        &[
            filter.projects.clone(),
            query_values(filter, TextKey::Project),
        ]
        .concat(),
    );
    view.user = filter
        .users
        .first()
        .cloned()
        .or_else(|| query_values(filter, TextKey::User).into_iter().next())
        .unwrap_or_default();
    view.from = filter.from.map(|t| t.to_rfc3339()).unwrap_or_default();
    view.to = filter.to.map(|t| t.to_rfc3339()).unwrap_or_default();
    view.from_utc_local = utc_local_value(filter.from);
    view.to_utc_local = utc_local_value(filter.to);
    view.target_id = filter.target_id.clone();
    view.app = filter.app.clone();
    view.version = filter.version.clone();
    view.summary = summarize(filter);
    view.has_filters = !view.summary.is_empty();
}

/// The exact values of the query's positive `key:` terms (none when a
/// term of that key has a prefix: a dropdown cannot show one).
fn query_values(filter: &EventFilter, wanted: TextKey) -> Vec<String> {
    let mut out = Vec::new();
    for term in filter.query.terms() {
        if let Test::Text { key, values } = &term.test {
            if *key == wanted && !term.negated && values.iter().all(|v| !v.prefix) {
                out.extend(values.iter().map(|v| v.text.clone()));
            }
        }
    }
    out
}

/// Type and action names match case-insensitively: a query's `type:login`
/// selects the taxonomy's `Login`.
fn in_spelling(choices: &[Choice], values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| {
            choices
                .iter()
                .find(|c| c.value.eq_ignore_ascii_case(&v))
                .map_or(v, |c| c.value.clone())
        })
        .collect()
}

/// The histogram for the filters: hourly for short ranges, weekly when days would be too many.
async fn chart_for(
    state: &AppState,
    account: &Account,
    filter: &EventFilter,
    zone: &Zone,
) -> Result<Chart, ConsoleError> {
    let mut interval = histogram::interval_for(filter, Timestamp::now());
    let mut answer = zoned_histogram_data(state, account.id, filter, interval, zone).await;
    let too_many = match &answer {
        Ok((_, buckets)) => buckets.len() > histogram::MAX_BARS,
        Err(e) => e.code == TOO_MANY_BUCKETS,
    };
    if too_many && interval != Interval::Week {
        interval = Interval::Week;
        answer = zoned_histogram_data(state, account.id, filter, interval, zone).await;
    }
    let (total, buckets) = answer?;
    Ok(histogram::chart(total, interval, &buckets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_fields_are_no_filter_and_local_pickers_win() {
        let request = split_request(pairs(&[
            ("event_type", ""),
            ("action", "Update"),
            ("from", "2026-01-01T00:00:00Z"),
            ("from_local", "2026-02-03T04:05"),
            ("to_local", ""),
            ("to", "2026-03-01T00:00:00Z"),
            ("cursor", ""),
            ("back", ""),
        ]));
        assert_eq!(
            request.filter_pairs,
            pairs(&[("action", "Update"), ("from", "2026-02-03T04:05:00Z")])
        );
        assert_eq!(request.cursor, None);
        assert_eq!(request.back, vec![String::new()]);
        assert_eq!(
            utc_from_local("2026-02-03T04:05:06", true),
            "2026-02-03T04:05:06.999999Z"
        );
    }
}
