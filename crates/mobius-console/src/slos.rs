//! The SLO pages: every SLO with its budget, burn rates and alert state (`/slos`, what
//! `GET /api/v1/slos` and `GET /api/v1/alerts` give), and one SLO (`/slos/{service}/{slo}`)
//! with its budget burning down over the window, the last day's error ratio, and where the
//! budget went (`slo::explain`, as `GET /api/v1/slos/explain` gives it).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use jiff::Timestamp;
use jiff::civil::Date;
use mobius_reliability::alerting::AlertView;
use mobius_reliability::slo::{self, Explanation, Share, SloStatus};
use mobius_slo::alerts::RuleState;
use mobius_store::StoreError;
use serde::Deserialize;

use crate::Console;
use crate::chart::{self, Point};
use crate::view::{Who, age, failed, html, not_found, percent_decode, query_escape, span, utc, viewer};

#[derive(Template)]
#[template(path = "slos.html")]
struct SlosPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    service: &'a str,
    slos: Vec<SloRow>,
}

/// One SLO as the list shows it.
struct SloRow {
    href: String,
    service: String,
    slo: String,
    environment: String,
    objective: String,
    budget: String,
    burn_rates: String,
    alert: AlertState,
}

/// An SLO's alert state at the alerter's last evaluation, as a word (and its colour's class).
pub(crate) struct AlertState {
    pub(crate) word: &'static str,
    /// `page` or `ticket`, and since when, when something fires or waits.
    pub(crate) detail: String,
}

impl AlertState {
    /// The state of `service`'s SLO `slo` among the alerter's views (`GET /api/v1/alerts`).
    fn of(views: &[AlertView], service: &str, slo: &str, now: Timestamp) -> AlertState {
        let Some(view) = views.iter().find(|v| v.service == service && v.slo == slo) else {
            return AlertState { word: "unevaluated", detail: "not evaluated yet".to_owned() };
        };
        let since = view.since.map(|at| format!(" since {} ({})", utc(at), age(at, now))).unwrap_or_default();
        match (view.firing, view.pending) {
            (Some(severity), _) => AlertState { word: "firing", detail: format!("{severity}{since}") },
            (None, Some(severity)) => AlertState { word: "pending", detail: format!("{severity}{since}") },
            (None, None) => AlertState { word: "ok", detail: since.trim_start().to_owned() },
        }
    }
}

/// `99.9%`.
fn percent(value: f64) -> String {
    format!("{value}%")
}

/// A fraction as a percentage with one decimal: `62.5%`.
fn share(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A window's length as `mobius.yaml` writes it when it is whole days (`30d`), else a span.
fn window(seconds: i64) -> String {
    if seconds > 0 && seconds % 86_400 == 0 { format!("{}d", seconds / 86_400) } else { span(seconds as f64) }
}

/// The budget left as a fraction and as time: `62.0% · 26m 47s left of 43m 12s (30d)`;
/// overspent, how far.
fn budget_text(status: &SloStatus) -> String {
    let Some(budget) = &status.budget else {
        return format!("unknown: {}", status.unknown.as_deref().unwrap_or("not evaluated"));
    };
    let whole = (1.0 - status.objective / 100.0) * status.window_s as f64;
    let of = format!("of {} ({})", span(whole), window(status.window_s));
    if budget.remaining_time_s >= 0.0 {
        format!("{} · {} left {of}", share(budget.remaining), span(budget.remaining_time_s))
    } else {
        format!("{} · overspent by {} {of}", share(budget.remaining), span(-budget.remaining_time_s))
    }
}

/// The burn rate of each window: `5m 0.0× · 30m 1.2× · …`.
fn burn_rates_text(status: &SloStatus) -> String {
    status.burn_rates.iter().map(|(window, rate)| format!("{window} {rate:.1}×")).collect::<Vec<_>>().join(" · ")
}

/// Where an SLO's page is.
pub(crate) fn slo_href(service: &str, slo: &str) -> String {
    format!("/slos/{}/{}", query_escape(service), query_escape(slo))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SlosParams {
    #[serde(default)]
    service: String,
}

/// Every SLO's status now, read as `GET /api/v1/slos` reads it (through the alerter's series cache).
async fn statuses(console: &Console) -> Result<Vec<SloStatus>, StoreError> {
    let (store, series, now) = (console.app.store.clone(), console.app.reliability.series_cache(), console.app.now());
    mobius_log::blocking::spawn(move || slo::statuses_with(store.as_ref(), &series, now)).await
}

/// `GET /slos[?service=S]`.
pub(crate) async fn list(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<SlosParams>,
) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let mut statuses = match statuses(&console).await {
        Ok(statuses) => statuses,
        Err(error) => return failed("read the SLOs", &error),
    };
    let service = params.service.trim();
    statuses.retain(|s| service.is_empty() || s.service == service);
    let (views, now) = (console.app.reliability.views(), console.app.now());
    let slos = statuses
        .iter()
        .map(|s| SloRow {
            href: slo_href(&s.service, &s.slo),
            service: s.service.clone(),
            slo: s.slo.clone(),
            environment: s.environment.clone(),
            objective: percent(s.objective),
            budget: budget_text(s),
            burn_rates: burn_rates_text(s),
            alert: AlertState::of(&views, &s.service, &s.slo, now),
        })
        .collect();
    let page = SlosPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        service,
        slos,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Template)]
#[template(path = "slo.html")]
struct SloPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    service: String,
    slo: String,
    environment: String,
    objective: String,
    window: String,
    policy: String,
    budget: String,
    unknown: Option<String>,
    /// When an exhausted budget recovers, and how long what is left lasts at the last hour's
    /// burn rate.
    recovers: Option<String>,
    exhausted_in: Option<String>,
    windows: Vec<WindowRow>,
    alert: AlertState,
    /// The rules of the alerter's last evaluation that fire or wait.
    rules: Vec<String>,
    burn_down: String,
    last_day: String,
    last_day_ratio: String,
    explanation: Option<ExplanationView>,
}

struct WindowRow {
    window: String,
    error_ratio: String,
    burn_rate: String,
}

/// [`Explanation`] as the page shows it.
struct ExplanationView {
    from: String,
    allowed_bad: String,
    versions: Vec<ShareRow>,
    days: Vec<ShareRow>,
    incidents: Vec<IncidentShareRow>,
}

struct ShareRow {
    name: String,
    requests: u64,
    bad: u64,
    share: String,
}

impl ShareRow {
    fn of(s: &Share) -> ShareRow {
        ShareRow { name: s.name.clone(), requests: s.requests, bad: s.bad, share: share(s.budget_share) }
    }
}

struct IncidentShareRow {
    href: String,
    title: String,
    detected: String,
    resolved: String,
    bad: u64,
    share: String,
}

/// The service and the SLO's name in `/slos/{service}/{slo}` (read from the path itself:
/// the server's router matched it), unescaped.
fn slo_path(uri: &Uri) -> Option<(String, String)> {
    let (service, slo) = uri.path().strip_prefix("/slos/")?.split_once('/')?;
    Some((percent_decode(service)?, percent_decode(slo)?))
}

/// One SLO's status and where its budget went (`None` for a Prometheus SLI).
type OneSlo = (SloStatus, Option<Explanation>);

/// `GET /slos/{service}/{slo}`.
pub(crate) async fn page(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let Some((service, name)) = slo_path(&uri) else { return not_found(&console, viewer.who(), "No such SLO.") };
    let (store, series, now) = (console.app.store.clone(), console.app.reliability.series_cache(), console.app.now());
    let (wanted_service, wanted) = (service.clone(), name.clone());
    // The definitions once, for the statuses (as the API's list) and the explanation alike.
    let read = mobius_log::blocking::spawn(move || -> Result<Option<OneSlo>, StoreError> {
        let definitions = slo::definitions(store.as_ref())?;
        let Some((_, spec)) = definitions.iter().find(|(s, slo)| *s == wanted_service && slo.name() == wanted) else {
            return Ok(None);
        };
        let statuses = slo::statuses_of(store.as_ref(), &series, &definitions, now)?;
        let Some(status) = statuses.into_iter().find(|s| s.service == wanted_service && s.slo == wanted) else {
            return Ok(None);
        };
        let explanation = slo::explain(store.as_ref(), &wanted_service, spec, now)?;
        Ok(Some((status, explanation)))
    })
    .await;
    let (status, explanation) = match read {
        Ok(Some(found)) => found,
        Ok(None) => {
            let what = format!("{service} has no SLO `{name}`.");
            return not_found(&console, viewer.who(), &what);
        }
        Err(error) => return failed("read the SLO", &error),
    };
    let views = console.app.reliability.views();
    let rules = views
        .iter()
        .find(|v| v.service == service && v.slo == name)
        .map(|v| v.rules.iter().filter(|r| r.firing || r.held_by_min_requests).map(rule_text).collect())
        .unwrap_or_default();
    let windows = status
        .error_ratios
        .iter()
        .zip(&status.burn_rates)
        .map(|((window, ratio), (_, rate))| WindowRow {
            window: window.clone(),
            error_ratio: format!("{:.3}%", ratio * 100.0),
            burn_rate: format!("{rate:.2}×"),
        })
        .collect();
    let burn_down = match &explanation {
        Some(e) => {
            let points: Vec<Point> = burn_down(e.from, e.to, e.allowed_bad, &e.days)
                .into_iter()
                .map(|(day, left)| Point::new(day.to_string(), Some(left)))
                .collect();
            chart::line("Error budget left, by day", &points, 1.0, Some(0.0), &|v| share(v))
        }
        None => String::new(),
    };
    let last_day_ratio = status.error_ratios.iter().find(|(w, _)| w == "1d").map(|(_, r)| *r);
    let page = SloPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        objective: percent(status.objective),
        window: window(status.window_s),
        policy: status.policy.to_string(),
        budget: budget_text(&status),
        unknown: status.unknown.clone(),
        recovers: status.recovers_at.map(|at| format!("{} ({})", utc(at), age(at, now))),
        exhausted_in: status.exhausted_in_s.map(span),
        windows,
        alert: AlertState::of(&views, &service, &name, now),
        rules,
        burn_down,
        last_day: last_day_chart(&status.hourly_error_ratios, now),
        last_day_ratio: last_day_ratio.map_or_else(|| "unknown".to_owned(), |r| format!("{:.3}%", r * 100.0)),
        explanation: explanation.as_ref().map(|e| explanation_view(e, now)),
        environment: status.environment,
        service,
        slo: name,
    };
    html(StatusCode::OK, page.render())
}

/// A rule that fires or waits: `page: 14.4× over 1h and 5m (burning 20.1× and 31.0×)`.
fn rule_text(rule: &RuleState) -> String {
    let state = if rule.firing { "firing" } else { "held: too few requests" };
    format!(
        "{}: {state} — burn {:.1}× over {} and {:.1}× over {} (threshold {:.1}×)",
        rule.severity,
        rule.long_burn,
        span(rule.long_window_s as f64),
        rule.short_burn,
        span(rule.short_window_s as f64),
        rule.threshold
    )
}

/// The error ratio of each of the last 24 hours, oldest first, as bars labelled by the hour
/// they began (UTC).
fn last_day_chart(hourly: &[f64], now: Timestamp) -> String {
    let hours = hourly.len() as i64;
    let points: Vec<Point> = hourly
        .iter()
        .enumerate()
        .map(|(i, ratio)| {
            let began = now - jiff::SignedDuration::from_hours(hours - i as i64);
            Point::new(began.strftime("%H:%M UTC").to_string(), Some(*ratio))
        })
        .collect();
    chart::bars("Error ratio, each of the last 24 hours", &points, 0.001, &|v| format!("{:.3}%", v * 100.0))
}

fn explanation_view(e: &Explanation, now: Timestamp) -> ExplanationView {
    ExplanationView {
        from: format!("{} ({})", utc(e.from), age(e.from, now)),
        allowed_bad: format!("{:.0}", e.allowed_bad),
        versions: e.versions.iter().map(ShareRow::of).collect(),
        days: e.days.iter().map(ShareRow::of).collect(),
        incidents: e
            .incidents
            .iter()
            .map(|i| IncidentShareRow {
                href: crate::incidents::incident_href(&i.key),
                title: i.title.clone(),
                detected: format!("{} ({})", utc(i.detected), age(i.detected, now)),
                resolved: i.resolved.map_or_else(|| "open".to_owned(), utc),
                bad: i.bad,
                share: share(i.budget_share),
            })
            .collect(),
    }
}

/// The budget left at the end of each UTC day of the window `[from, to]`, oldest first: one
/// minus the bad requests up to that day's end (the explanation's days, which list only days
/// with bad requests) over the budget in bad requests. Without requests nothing was allowed
/// and nothing spent: the whole budget is left, as [`mobius_reliability::slo`] counts it.
pub(crate) fn burn_down(from: Timestamp, to: Timestamp, allowed_bad: f64, days: &[Share]) -> Vec<(Date, f64)> {
    let utc_date = |at: Timestamp| at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let (first, last) = (utc_date(from), utc_date(to));
    let mut out = Vec::new();
    let mut spent = 0u64;
    let mut day = first;
    while day <= last {
        let name = day.to_string();
        spent += days.iter().filter(|d| d.name == name).map(|d| d.bad).sum::<u64>();
        let left = if allowed_bad > 0.0 { 1.0 - spent as f64 / allowed_bad } else { 1.0 };
        out.push((day, left));
        let Ok(next) = day.tomorrow() else { break };
        day = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(name: &str, bad: u64) -> Share {
        Share { name: name.to_owned(), requests: 1000, bad, budget_share: 0.0 }
    }

    #[test]
    fn the_burn_down_spends_each_days_bad_requests_from_the_budget() {
        let from: Timestamp = "2026-11-06T17:00:00Z".parse().unwrap();
        let to: Timestamp = "2026-12-06T17:00:00Z".parse().unwrap();
        // 200 bad requests allowed; 50 spent on Nov 10, 100 on Dec 1: a quarter, then three.
        let points = burn_down(from, to, 200.0, &[day("2026-11-10", 50), day("2026-12-01", 100)]);
        assert_eq!(points.len(), 31, "one point per UTC day, the window's first and last included");
        assert_eq!(points[0], ("2026-11-06".parse().unwrap(), 1.0));
        assert_eq!(points[3].1, 1.0, "Nov 9: nothing spent yet");
        assert_eq!(points[4].1, 0.75, "Nov 10");
        assert_eq!(points[24].1, 0.75, "Nov 30");
        assert_eq!(points[25].1, 0.25, "Dec 1");
        assert_eq!(points[30], ("2026-12-06".parse().unwrap(), 0.25));
        // Overspent goes below zero; without traffic nothing is spent.
        assert_eq!(burn_down(from, to, 40.0, &[day("2026-11-10", 50)])[30].1, -0.25);
        assert!(burn_down(from, to, 0.0, &[]).iter().all(|(_, left)| *left == 1.0));
    }

    #[test]
    fn paths_and_budgets_read_as_written() {
        let uri: Uri = "/slos/shop%20front/avail%2Fability".parse().unwrap();
        assert_eq!(slo_path(&uri), Some(("shop front".to_owned(), "avail/ability".to_owned())));
        assert_eq!(slo_path(&"/slos/shop".parse().unwrap()), None);
        assert_eq!(slo_href("a b", "c/d"), "/slos/a%20b/c%2Fd");
        assert_eq!(window(30 * 86_400), "30d");
        assert_eq!(window(3_600), "1h 0m");
    }
}
