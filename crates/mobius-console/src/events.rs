//! The events page: the raw log, newest first, filtered by type, subject and time, each
//! event's JSON a click away — the audit trail. The same store query as
//! `GET /api/v1/events?order=newest`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use jiff::Timestamp;
use mobius_events::StoredEvent;
use mobius_store::EventQuery;
use serde::Deserialize;

use crate::Console;
use crate::view::{Who, age, failed, html, not_found_with, query_escape, utc, viewer};

/// Events a page shows.
const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventParams {
    #[serde(default, rename = "type")]
    ty: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    ty: &'a str,
    subject: &'a str,
    from: &'a str,
    to: &'a str,
    events: Vec<EventRow>,
    /// The next (older) page, when there is one.
    older: Option<String>,
    /// Whether this is a later page (a way back to the newest).
    paged: bool,
}

/// One event as a row: its envelope, and its JSON pretty-printed for the expandable part.
struct EventRow {
    seq: i64,
    ty: String,
    subject: String,
    source: String,
    id: String,
    origin: &'static str,
    happened: String,
    happened_age: String,
    happened_iso: String,
    json: String,
}

impl EventRow {
    fn of(event: StoredEvent, now: Timestamp) -> EventRow {
        // Stored raw as received; shown indented when it is JSON (it always is, but the
        // page shows what is there rather than failing).
        let json = serde_json::from_str::<serde_json::Value>(&event.raw)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(event.raw);
        EventRow {
            seq: event.seq,
            happened: utc(event.timestamp),
            happened_age: age(event.timestamp, now),
            happened_iso: event.timestamp.to_string(),
            ty: event.ty,
            subject: event.subject,
            source: event.source,
            id: event.id,
            origin: event.origin.as_str(),
            json,
        }
    }
}

/// `GET /events?type=&subject=&from=&to=&before=`.
pub(crate) async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<EventParams>,
) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let instant = |field: &'static str, text: &str| match text.trim() {
        "" => Ok(None),
        text => mobius_log::query::parse_instant(field, text).map(Some),
    };
    let window = match (instant("from", &params.from), instant("to", &params.to)) {
        (Ok(from), Ok(to)) => match (from, to) {
            (None, None) => None,
            (from, to) => {
                Some((from.unwrap_or(mobius_events::limits::EARLIEST), to.unwrap_or(mobius_events::limits::LATEST)))
            }
        },
        (Err(error), _) | (_, Err(error)) => {
            return not_found_with(&console, StatusCode::BAD_REQUEST, viewer.who(), &error.to_string());
        }
    };
    let query = EventQuery {
        before_seq: params.before,
        ty: Some(params.ty.trim().to_owned()).filter(|t| !t.is_empty()),
        subject: Some(params.subject.trim().to_owned()).filter(|s| !s.is_empty()),
        happened: window,
        newest_first: true,
        limit: PAGE + 1,
        ..EventQuery::default()
    };
    let store = console.app.store.clone();
    let mut events = match mobius_log::blocking::spawn(move || store.events(&query)).await {
        Ok(events) => events,
        Err(error) => return failed("read the event log", &error),
    };
    let more = events.len() > PAGE as usize;
    events.truncate(PAGE as usize);
    let older = events.last().filter(|_| more).map(|last| {
        let mut link = format!("/events?before={}", last.seq);
        for (name, value) in
            [("type", &params.ty), ("subject", &params.subject), ("from", &params.from), ("to", &params.to)]
        {
            if !value.trim().is_empty() {
                link.push_str(&format!("&{name}={}", query_escape(value.trim())));
            }
        }
        link
    });
    let now = console.app.now();
    let page = EventsPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        ty: params.ty.trim(),
        subject: params.subject.trim(),
        from: params.from.trim(),
        to: params.to.trim(),
        events: events.into_iter().map(|e| EventRow::of(e, now)).collect(),
        older,
        paged: params.before.is_some(),
    };
    html(StatusCode::OK, page.render())
}
