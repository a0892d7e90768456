//! The read side shared by the HTTP API and the CLI: windows, DORA and flow over a store.

use jiff::{SignedDuration, Timestamp};
use mobius_insights::{DoraReport, FlowReport, Window, bands};
use mobius_store::{Scope, Store, StoreError};

/// A query that cannot be answered as asked.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("`{field}`: {problem}")]
    Invalid { field: &'static str, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses `30d`, `12h`, `2w` (days, hours, weeks).
pub fn parse_span(field: &'static str, text: &str) -> Result<SignedDuration, QueryError> {
    let bad = || QueryError::Invalid { field, problem: format!("`{text}` is not a span like 30d, 12h or 2w") };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let hours = match unit {
        "h" => n,
        "d" => n * 24,
        "w" => n * 24 * 7,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    Ok(SignedDuration::from_hours(hours))
}

/// Parses an instant: RFC 3339, or a date (`2024-05-01`, meaning its start in UTC), in the
/// range events may have (`mobius_events::limits::RANGE`).
pub fn parse_instant(field: &'static str, text: &str) -> Result<Timestamp, QueryError> {
    let parsed = mobius_events::time::parse_timestamp(text).ok().or_else(|| {
        text.parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    });
    let at = parsed.ok_or_else(|| QueryError::Invalid {
        field,
        problem: format!("`{text}` is not a timestamp (RFC 3339) or a date (YYYY-MM-DD)"),
    })?;
    // The end of a window may be the range's end itself: windows are half-open.
    if at < mobius_events::limits::EARLIEST || at > mobius_events::limits::LATEST {
        return Err(QueryError::Invalid {
            field,
            problem: format!("`{text}` is outside {}", mobius_events::limits::RANGE),
        });
    }
    Ok(at)
}

/// `--since SPAN` or `--from T --to T` (either end defaulting: `to` = now, `from` = to − 30 d).
pub fn window(since: Option<&str>, from: Option<&str>, to: Option<&str>, now: Timestamp) -> Result<Window, QueryError> {
    if since.is_some() && (from.is_some() || to.is_some()) {
        return Err(QueryError::Invalid { field: "since", problem: "give either since or from/to, not both".into() });
    }
    let to = to.map(|t| parse_instant("to", t)).transpose()?.unwrap_or(now);
    let span = since.map(|s| parse_span("since", s)).transpose()?.unwrap_or(SignedDuration::from_hours(30 * 24));
    let from = match from {
        Some(f) => parse_instant("from", f)?,
        None => to.checked_sub(span).map_err(|e| QueryError::Invalid { field: "since", problem: e.to_string() })?,
    };
    Window::new(from, to).map_err(|e| QueryError::Invalid { field: "from", problem: e.to_string() })
}

/// What to measure: one service or all, in one environment.
#[derive(Debug, Clone)]
pub struct Selection {
    pub service: Option<String>,
    pub environment: String,
    pub window: Window,
}

impl Selection {
    fn scopes(&self, store: &dyn Store) -> Result<Vec<Scope>, QueryError> {
        Ok(match &self.service {
            Some(service) => vec![Scope { service: service.clone(), environment: self.environment.clone() }],
            None => store.scopes()?.into_iter().filter(|s| s.environment == self.environment).collect(),
        })
    }
}

/// DORA's four keys for each selected service.
pub fn dora(
    store: &dyn Store,
    sel: &Selection,
    band_table: &str,
    explain: bool,
) -> Result<Vec<DoraReport>, QueryError> {
    if sel.service.is_none() {
        // The same reports, from one store call rather than one per service.
        return dora_of_environment(store, &sel.environment, sel.window, band_table, explain);
    }
    let table = bands::table(band_table).map_err(|e| QueryError::Invalid { field: "bands", problem: e.to_string() })?;
    sel.scopes(store)?
        .iter()
        .map(|scope| {
            let facts = store.facts(scope, sel.window.from, sel.window.to)?;
            Ok(mobius_insights::dora(&scope.service, &scope.environment, &facts, sel.window, table, explain))
        })
        .collect()
}

/// DORA's four keys for every service of `environment`, as [`dora`] with no service selected
/// gives them (the same reports, in the same order), from one store call however many
/// services there are ([`Store::facts_of_environment`]): what a catalog of every service reads.
pub fn dora_of_environment(
    store: &dyn Store,
    environment: &str,
    window: Window,
    band_table: &str,
    explain: bool,
) -> Result<Vec<DoraReport>, QueryError> {
    let table = bands::table(band_table).map_err(|e| QueryError::Invalid { field: "bands", problem: e.to_string() })?;
    let scopes = store.facts_of_environment(environment, window.from, window.to)?;
    Ok(scopes
        .iter()
        .map(|(scope, facts)| mobius_insights::dora(&scope.service, &scope.environment, facts, window, table, explain))
        .collect())
}

/// The `count` ISO weeks (Monday 00:00 UTC to the next) up to and including the one `now` is
/// in, oldest first: the periods of a trend.
pub fn iso_weeks(count: usize, now: Timestamp) -> Vec<Window> {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let monday = today - jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset()));
    let start = |weeks_back: usize| -> Option<Timestamp> {
        let day = monday.checked_sub(jiff::Span::new().weeks(weeks_back as i64)).ok()?;
        day.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
    };
    (0..count)
        .rev()
        .filter_map(|back| {
            let from = start(back)?;
            let to = from.checked_add(SignedDuration::from_hours(7 * 24)).ok()?;
            Window::new(from, to).ok()
        })
        .collect()
}

/// DORA's four keys of one service in one environment for each of `periods` (in order,
/// contiguous), each exactly [`dora`]'s report for that period: the facts of the whole span
/// are read once, and [`mobius_insights::dora`] keeps to each period's window itself.
pub fn dora_trend(
    store: &dyn Store,
    scope: &Scope,
    periods: &[Window],
    band_table: &str,
) -> Result<Vec<DoraReport>, QueryError> {
    let table = bands::table(band_table).map_err(|e| QueryError::Invalid { field: "bands", problem: e.to_string() })?;
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else { return Ok(Vec::new()) };
    let facts = store.facts(scope, first.from, last.to)?;
    Ok(periods
        .iter()
        .map(|period| mobius_insights::dora(&scope.service, &scope.environment, &facts, *period, table, false))
        .collect())
}

/// The value stream for each selected service.
pub fn flow(store: &dyn Store, sel: &Selection, explain: bool) -> Result<Vec<FlowReport>, QueryError> {
    sel.scopes(store)?
        .iter()
        .map(|scope| {
            let facts = store.facts(scope, sel.window.from, sel.window.to)?;
            Ok(mobius_insights::flow(&scope.service, &scope.environment, &facts, sel.window, explain))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mobius_store::SqliteStore;

    use super::*;

    /// A store holding every golden DORA history (`crates/mobius/tests/golden`): services in
    /// production and staging, rollbacks, incidents attributed three ways, squashed pushes.
    fn golden_store(dir: &std::path::Path) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        let ingestor = crate::ingest::Ingestor::new(store.clone(), Default::default());
        for history in [
            include_str!("../../mobius/tests/golden/github-incident-with-root-cause/events.ndjson"),
            include_str!("../../mobius/tests/golden/rollback-and-incident-attribution/events.ndjson"),
            include_str!("../../mobius/tests/golden/squash-and-multi-commit-pushes/events.ndjson"),
        ] {
            let items = mobius_events::record::parse_many(history, mobius_events::Origin::Import).unwrap();
            let report = ingestor.ingest(items).unwrap();
            assert_eq!(report.rejected, 0, "{report:?}");
        }
        store
    }

    #[test]
    fn every_service_of_an_environment_in_one_read_is_what_dora_reports_of_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = golden_store(dir.path());
        let windows = [
            window(None, Some("2024-01-01"), Some("2025-01-01"), Timestamp::now()).unwrap(),
            window(None, Some("2024-05-01"), Some("2024-05-11"), Timestamp::now()).unwrap(),
            window(None, Some("2024-06-05"), Some("2024-06-06"), Timestamp::now()).unwrap(),
            window(None, Some("2030-01-01"), Some("2030-02-01"), Timestamp::now()).unwrap(),
        ];
        let mut compared = 0;
        for environment in ["production", "staging", "nowhere"] {
            for window in windows {
                for explain in [false, true] {
                    let services = store.scopes().unwrap().into_iter().filter(|s| s.environment == environment);
                    let mut each = Vec::new();
                    for scope in services {
                        let sel =
                            Selection { service: Some(scope.service), environment: environment.to_owned(), window };
                        each.extend(dora(store.as_ref(), &sel, bands::DEFAULT, explain).unwrap());
                    }
                    let together =
                        dora_of_environment(store.as_ref(), environment, window, bands::DEFAULT, explain).unwrap();
                    assert_eq!(together, each, "{environment} {window:?}");
                    let all = Selection { service: None, environment: environment.to_owned(), window };
                    assert_eq!(dora(store.as_ref(), &all, bands::DEFAULT, explain).unwrap(), each, "every service");
                    compared += each.len();
                }
            }
        }
        assert!(compared >= 12, "the histories have services in both environments: {compared}");
        assert!(dora_of_environment(store.as_ref(), "production", windows[0], "no-such-table", false).is_err());
    }

    #[test]
    fn deployments_read_by_id_are_the_facts_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = golden_store(dir.path());
        let far = Timestamp::from_second(7_000_000_000).unwrap();
        let mut all = Vec::new();
        for scope in store.scopes().unwrap() {
            all.extend(store.facts(&scope, Timestamp::UNIX_EPOCH, far).unwrap().deployments);
        }
        all.sort_by_key(|d| d.id);
        assert!(all.len() >= 6, "{}", all.len());
        let ids: Vec<_> = all.iter().map(|d| d.id).collect();
        assert_eq!(store.deployments(&ids).unwrap(), all);
        let some = [ids[3], ids[0], 999_999];
        assert_eq!(
            store.deployments(&some).unwrap(),
            [all[0].clone(), all[3].clone()],
            "id order; unknown ids left out"
        );
        assert_eq!(store.deployments(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn a_trend_is_dora_of_each_week_from_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = golden_store(dir.path());
        let now: Timestamp = "2024-06-12T09:30:00Z".parse().unwrap();
        let weeks = iso_weeks(12, now);
        assert_eq!(weeks.len(), 12);
        assert_eq!(weeks[11].from.to_string(), "2024-06-10T00:00:00Z", "the week now is in, from its Monday");
        assert_eq!(weeks[0].from.to_string(), "2024-03-25T00:00:00Z");
        assert!(weeks.windows(2).all(|w| w[0].to == w[1].from), "contiguous");
        for scope in store.scopes().unwrap() {
            let trend = dora_trend(store.as_ref(), &scope, &weeks, bands::DEFAULT).unwrap();
            for (week, report) in weeks.iter().zip(&trend) {
                let sel = Selection {
                    service: Some(scope.service.clone()),
                    environment: scope.environment.clone(),
                    window: *week,
                };
                assert_eq!(Some(report), dora(store.as_ref(), &sel, bands::DEFAULT, false).unwrap().first());
            }
        }
        assert!(dora_trend(store.as_ref(), &store.scopes().unwrap()[0], &[], bands::DEFAULT).unwrap().is_empty());
    }

    #[test]
    fn spans_and_windows() {
        assert_eq!(parse_span("since", "30d").unwrap(), SignedDuration::from_hours(720));
        assert_eq!(parse_span("since", "2w").unwrap(), SignedDuration::from_hours(336));
        for bad in ["", "d", "30", "-1d", "0d", "3y", "1.5d"] {
            assert!(parse_span("since", bad).is_err(), "{bad}");
        }
        let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let w = window(Some("7d"), None, None, now).unwrap();
        assert_eq!(w.from.to_string(), "2024-05-25T00:00:00Z");
        let w = window(None, Some("2024-01-01"), Some("2024-02-01T00:00:00Z"), now).unwrap();
        assert_eq!(
            (w.from.to_string(), w.to.to_string()),
            ("2024-01-01T00:00:00Z".into(), "2024-02-01T00:00:00Z".into())
        );
        assert!(window(Some("7d"), Some("2024-01-01"), None, now).is_err());
        assert!(window(None, Some("2024-03-01"), Some("2024-02-01"), now).is_err());
        assert!(window(None, Some("soon"), None, now).is_err());
        assert!(window(None, Some("0001-01-01"), None, now).is_err(), "before 1970");
        assert!(window(None, None, Some("2999-01-01"), now).is_err(), "after 2200");
    }
}
