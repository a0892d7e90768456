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
    let table = bands::table(band_table).map_err(|e| QueryError::Invalid { field: "bands", problem: e.to_string() })?;
    sel.scopes(store)?
        .iter()
        .map(|scope| {
            let facts = store.facts(scope, sel.window.from, sel.window.to)?;
            Ok(mobius_insights::dora(&scope.service, &scope.environment, &facts, sel.window, table, explain))
        })
        .collect()
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
    use super::*;

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
