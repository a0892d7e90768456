//! A service's page (`/services/{name}`): its environments and their rollouts, DORA's four
//! keys for the window (exactly the API's `GET /api/v1/dora` report, with the items behind
//! each number), and weekly trends over the last 12 ISO weeks, each week's figures leading to
//! that week's items. Its value stream is [`crate::flow`].

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use jiff::Timestamp;
use mobius_deploy::rollout::{Plan, Stored};
use mobius_deploy::spec::ServiceSpec;
use mobius_insights::bands::{self, Band};
use mobius_insights::{DoraReport, Window};
use mobius_log::query::{self, Selection};
use mobius_store::{RolloutQuery, RolloutRow, Scope, Store};
use serde::Deserialize;

use crate::Console;
use crate::chart::{self, Point};
use crate::services::{BandRule, band_rules, is_web_address, non_empty};
use crate::view::{
    Viewer, Who, age, failed, html, not_found, not_found_with, percent_decode, query_escape, span, utc, viewer,
};

/// The most rollouts a service's page lists (newest first, every environment).
const ROLLOUTS_SHOWN: u32 = 50;
/// The weeks a trend covers.
const TREND_WEEKS: usize = 12;

/// The query string of a service's pages: the environment and the window (`since`, or
/// `from`/`to`).
#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct ServiceParams {
    #[serde(default)]
    pub(crate) environment: String,
    #[serde(default)]
    pub(crate) since: String,
    #[serde(default)]
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) to: String,
}

/// What a service page is about: the service, the environment and the window, read from
/// the path and the query string.
#[derive(Clone)]
pub(crate) struct Asked {
    pub(crate) service: String,
    pub(crate) environment: String,
    pub(crate) window: Window,
    /// The window as the query string gave it, for links that keep it (`since=30d`, or
    /// `from=…&to=…`).
    pub(crate) window_query: String,
}

/// `/services/{service}{tail}?environment=…`, with the window's query when it has one.
fn service_href(service: &str, tail: &str, environment: &str, window_query: &str) -> String {
    let window = if window_query.is_empty() { String::new() } else { format!("&{window_query}") };
    format!("/services/{}{tail}?environment={}{window}", query_escape(service), query_escape(environment))
}

impl Asked {
    /// `/services/{service}{tail}` with this environment and window.
    pub(crate) fn href(&self, tail: &str) -> String {
        service_href(&self.service, tail, &self.environment, &self.window_query)
    }

    /// The service page over `window` exactly (`from`/`to`), at `anchor`.
    fn href_window(&self, window: Window, anchor: &str) -> String {
        format!(
            "/services/{}?environment={}&from={}&to={}#{anchor}",
            query_escape(&self.service),
            query_escape(&self.environment),
            query_escape(&window.from.to_string()),
            query_escape(&window.to.to_string())
        )
    }
}

/// The service named in `/services/{name}…` (read from the path itself: the server's router
/// matched it already).
pub(crate) fn service_name(uri: &Uri) -> Option<String> {
    let segment = uri.path().strip_prefix("/services/")?.split('/').next()?;
    percent_decode(segment).filter(|name| !name.is_empty())
}

/// Who reads a service page and what it asks; `Err` is the answer instead: to sign-in, or the
/// page saying what is wrong with the question.
pub(crate) async fn reader_and_question(
    console: &Console,
    headers: &HeaderMap,
    uri: &Uri,
    params: &ServiceParams,
) -> Result<(Viewer, Asked), Response> {
    let viewer = viewer(console, headers, uri).await?;
    match asked(console, uri, params) {
        Ok(asked) => Ok((viewer, asked)),
        Err((status, what)) => Err(not_found_with(console, status, viewer.who(), &what)),
    }
}

/// What a service page asks, or why it cannot be answered: the status (404 for no service in
/// the path, 400 for a bad window) and what to say.
pub(crate) fn asked(console: &Console, uri: &Uri, params: &ServiceParams) -> Result<Asked, (StatusCode, String)> {
    let Some(service) = service_name(uri) else { return Err((StatusCode::NOT_FOUND, "No such service.".to_owned())) };
    let given = |text: &str| Some(text.trim()).filter(|t| !t.is_empty()).map(str::to_owned);
    let (since, from, to) = (given(&params.since), given(&params.from), given(&params.to));
    let since = if since.is_none() && from.is_none() && to.is_none() { Some("30d".to_owned()) } else { since };
    let window = query::window(since.as_deref(), from.as_deref(), to.as_deref(), console.app.now())
        .map_err(|error| (StatusCode::BAD_REQUEST, error.to_string()))?;
    let window_query = match since {
        Some(since) => format!("since={}", query_escape(&since)),
        None => format!("from={}&to={}", query_escape(&window.from.to_string()), query_escape(&window.to.to_string())),
    };
    let environment = non_empty(&params.environment, mobius_events::DEFAULT_ENVIRONMENT);
    Ok(Asked { service, environment, window, window_query })
}

/// The environments a service has facts or rollouts in, in name order; empty for a service
/// Mobius has never heard of.
pub(crate) fn environments(scopes: &[Scope], rollouts: &[RolloutRow], service: &str) -> Vec<String> {
    let mut found: Vec<String> = scopes
        .iter()
        .filter(|s| s.service == service)
        .map(|s| s.environment.clone())
        .chain(rollouts.iter().filter(|r| r.service == service).map(|r| r.environment.clone()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A link to one of the service's environments, marked when it is the one shown.
pub(crate) struct EnvironmentLink {
    pub(crate) name: String,
    pub(crate) href: String,
    pub(crate) current: bool,
}

pub(crate) fn environment_links(asked: &Asked, environments: &[String], tail: &str) -> Vec<EnvironmentLink> {
    let mut names = environments.to_vec();
    if !names.contains(&asked.environment) {
        names.push(asked.environment.clone());
    }
    names
        .into_iter()
        .map(|name| EnvironmentLink {
            href: service_href(&asked.service, tail, &name, &asked.window_query),
            current: name == asked.environment,
            name,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    service: &'a str,
    environment: &'a str,
    since: &'a str,
    from: String,
    to: String,
    from_iso: String,
    to_iso: String,
    flow_href: String,
    /// This page's path, where its window form goes.
    path: String,
    environments: Vec<EnvironmentLink>,
    owner: String,
    runbook: String,
    runbook_link: bool,
    repository: String,
    figures: Vec<Figure>,
    band_table: &'static str,
    band_title: &'static str,
    band_rules: Vec<BandRule>,
    /// Inline SVG from [`chart`], which escapes what it draws.
    trends: Vec<(String, String)>,
    deployments: Vec<DeploymentItem>,
    failed_attempts: Vec<DeploymentItem>,
    changes: Vec<ChangeItem>,
    incidents: Vec<IncidentItem>,
    histories: Vec<History>,
}

/// One environment's rollouts, newest first, and the version it serves.
struct History {
    environment: String,
    href: String,
    /// The latest succeeded rollout's version and when it finished, if any.
    live: Option<(String, String)>,
    rollouts: Vec<RolloutItem>,
}

/// Rollouts (newest first) by environment, in name order.
fn histories(rows: &[RolloutRow], now: Timestamp) -> Vec<History> {
    let mut by: std::collections::BTreeMap<&str, Vec<RolloutItem>> = std::collections::BTreeMap::new();
    for row in rows {
        by.entry(row.environment.as_str()).or_default().push(rollout_item(row, now));
    }
    by.into_iter()
        .map(|(environment, rollouts)| History {
            environment: environment.to_owned(),
            href: rollouts.first().map(|r| r.href.clone()).unwrap_or_default(),
            live: rollouts
                .iter()
                .find(|r| r.state == "succeeded")
                .map(|r| (r.version.clone(), format!("{} ({})", r.finished, r.finished_age))),
            rollouts,
        })
        .collect()
}

/// One of DORA's four numbers as the page shows it: the value (and the raw number in a
/// `<data>` element, equal to the API's), its band, and where its items are listed.
struct Figure {
    id: &'static str,
    title: &'static str,
    value: String,
    raw: String,
    detail: String,
    band: &'static str,
    band_class: &'static str,
    explain: String,
    /// The link's words: what it lists.
    explain_text: String,
}

/// A number as the API's JSON writes it (shortest round trip), or empty for none.
fn raw(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn band(band: Option<Band>) -> (&'static str, &'static str) {
    band.map_or(("—", "none"), |b| (b.as_str(), b.as_str()))
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn figures(report: &DoraReport, asked: &Asked) -> Vec<Figure> {
    let explain = |anchor: &str| asked.href_window(asked.window, anchor);
    let df = &report.deployment_frequency;
    let lt = &report.lead_time;
    let cfr = &report.change_failure_rate;
    let rt = &report.recovery_time;
    let (df_band, df_class) = band(Some(df.band));
    let (lt_band, lt_class) = band(lt.band);
    let (cfr_band, cfr_class) = band(cfr.band);
    let (rt_band, rt_class) = band(rt.band);
    vec![
        Figure {
            id: "deployments",
            title: "Deployment frequency",
            value: format!("{:.2} per day", df.per_day),
            raw: raw(Some(df.per_day)),
            detail: format!(
                "{} deployments, {} failed attempts; median {} deploy days a week",
                df.deployments, df.failed_attempts, df.deploy_days_per_week_median
            ),
            band: df_band,
            band_class: df_class,
            explain: explain("explain-deployments"),
            explain_text: format!("The {} deployments", df.deployments),
        },
        Figure {
            id: "lead-time",
            title: "Lead time for changes",
            value: lt.median_seconds.map_or("—".to_owned(), span),
            raw: raw(lt.median_seconds),
            detail: format!("median of {} changes; p90 {}", lt.changes, lt.p90_seconds.map_or("—".to_owned(), span)),
            band: lt_band,
            band_class: lt_class,
            explain: explain("explain-changes"),
            explain_text: format!("The {} changes", lt.changes),
        },
        Figure {
            id: "change-failure-rate",
            title: "Change failure rate",
            value: cfr.rate.map_or("—".to_owned(), percent),
            raw: raw(cfr.rate),
            detail: format!("{} of {} deployments failed", cfr.failed, cfr.deployments),
            band: cfr_band,
            band_class: cfr_class,
            explain: explain("explain-deployments"),
            explain_text: format!("The {} deployments, failed or not", cfr.deployments),
        },
        Figure {
            id: "recovery-time",
            title: "Failed deployment recovery time",
            value: rt.median_seconds.map_or("—".to_owned(), span),
            raw: raw(rt.median_seconds),
            detail: format!("median of {} incidents resolved", rt.incidents),
            band: rt_band,
            band_class: rt_class,
            explain: explain("explain-incidents"),
            explain_text: format!("The {} incidents", rt.incidents),
        },
    ]
}

/// The four trend charts, each week's mark leading to that week's items.
fn trends(weeks: &[Window], reports: &[DoraReport], asked: &Asked) -> Vec<(String, String)> {
    let label = |w: &Window| w.from.strftime("%G-W%V").to_string();
    let points = |value: &dyn Fn(&DoraReport) -> Option<f64>, anchor: &str| -> Vec<Point> {
        weeks
            .iter()
            .zip(reports)
            .map(|(week, report)| Point::new(label(week), value(report)).linked(asked.href_window(*week, anchor)))
            .collect()
    };
    let count = |v: f64| format!("{v:.0}");
    let seconds = |v: f64| span(v);
    let rate = |v: f64| percent(v);
    let deployments = points(&|r| Some(r.deployment_frequency.deployments as f64), "explain-deployments");
    let lead_median = points(&|r| r.lead_time.median_seconds, "explain-changes");
    let lead_p90 = points(&|r| r.lead_time.p90_seconds, "explain-changes");
    let cfr = points(&|r| r.change_failure_rate.rate, "explain-deployments");
    let recovery = points(&|r| r.recovery_time.median_seconds, "explain-incidents");
    vec![
        ("Deployments per week".to_owned(), chart::bars("Deployments per week", &deployments, 1.0, &count)),
        ("Lead time, median".to_owned(), chart::line("Lead time, median", &lead_median, 60.0, None, &seconds)),
        ("Lead time, 90th percentile".to_owned(), chart::line("Lead time, p90", &lead_p90, 60.0, None, &seconds)),
        ("Change failure rate".to_owned(), chart::line("Change failure rate", &cfr, 0.01, None, &rate)),
        ("Recovery time, median".to_owned(), chart::line("Recovery time, median", &recovery, 60.0, None, &seconds)),
    ]
}

struct DeploymentItem {
    id: String,
    key: String,
    revision: String,
    finished: String,
    finished_age: String,
    failed: bool,
    why: String,
}

struct ChangeItem {
    sha: String,
    summary: String,
    repository: String,
    commit_time: String,
    deployment_id: String,
    lead_time: String,
}

struct IncidentItem {
    key: String,
    href: String,
    detected: String,
    resolved: String,
    recovery: String,
    attribution: String,
    deployment_id: String,
}

struct RolloutItem {
    id: i64,
    href: String,
    version: String,
    digest: String,
    strategy: &'static str,
    state: String,
    started: String,
    started_age: String,
    finished: String,
    finished_age: String,
}

/// Text for a serialisable unit enum (its JSON name).
fn words<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default().trim_matches('"').replace('_', " ")
}

/// The first 12 characters of the digest that ends an artifact id
/// (`pkg:generic/shop@sha256%3Aab12…`) or a release directory (`…/releases/ab12…`).
fn short_digest(text: &str) -> String {
    let tail = text.rsplit(['@', ':', '/']).next().unwrap_or(text);
    let tail = tail.rsplit("%3A").next().unwrap_or(tail);
    tail.chars().take(12).collect()
}

fn rollout_item(row: &RolloutRow, now: Timestamp) -> RolloutItem {
    let href = format!("/rollouts/{}/{}", query_escape(&row.service), query_escape(&row.environment));
    let stored = serde_json::from_str::<Stored>(&row.body).ok();
    let rollout = stored.as_ref().map(|s| &s.rollout);
    let finished = rollout.and_then(|r| r.finished_at);
    let digest = rollout.map(|r| short_digest(r.new.artifact.as_deref().unwrap_or(&r.new.release))).unwrap_or_default();
    RolloutItem {
        id: row.id,
        href,
        version: rollout.map(|r| r.new.version.clone()).unwrap_or_default(),
        digest,
        strategy: match rollout.map(|r| &r.plan) {
            Some(Plan::Rolling) => "rolling",
            Some(Plan::BlueGreen { .. }) => "blue-green",
            Some(Plan::Canary { .. }) => "canary",
            None => "—",
        },
        state: row.phase.clone(),
        started: utc(row.created),
        started_age: age(row.created, now),
        finished: finished.map(utc).unwrap_or_default(),
        finished_age: finished.map(|f| age(f, now)).unwrap_or_default(),
    }
}

/// What the 404 page says of a service nobody has heard of.
pub(crate) fn unknown(service: &str) -> String {
    format!("No service `{service}`: nothing was deployed or measured under that name.")
}

/// What the service page read.
struct Read {
    environments: Vec<String>,
    rollouts: Vec<RolloutRow>,
    report: Option<DoraReport>,
    weeks: Vec<Window>,
    trend: Vec<DoraReport>,
}

fn read(store: &dyn Store, asked: &Asked) -> Result<Option<Read>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let scopes = store.scopes().map_err(|e| err(&e))?;
    let query = RolloutQuery { service: Some(asked.service.clone()), limit: ROLLOUTS_SHOWN, ..RolloutQuery::default() };
    let rollouts = store.rollouts(&query).map_err(|e| err(&e))?;
    let environments = environments(&scopes, &rollouts, &asked.service);
    if environments.is_empty() {
        return Ok(None);
    }
    let selection = Selection {
        service: Some(asked.service.clone()),
        environment: asked.environment.clone(),
        window: asked.window,
    };
    let report = query::dora(store, &selection, bands::DEFAULT, true).map_err(|e| err(&e))?.into_iter().next();
    // The weeks up to the window's end (its last instant: windows are half-open), so a
    // shared link to a past window shows that time's trend.
    let last = asked.window.to.checked_sub(jiff::SignedDuration::from_micros(1)).unwrap_or(asked.window.to);
    let weeks = query::iso_weeks(TREND_WEEKS, last);
    let scope = Scope { service: asked.service.clone(), environment: asked.environment.clone() };
    let trend = query::dora_trend(store, &scope, &weeks, bands::DEFAULT).map_err(|e| err(&e))?;
    Ok(Some(Read { environments, rollouts, report, weeks, trend }))
}

/// `GET /services/{name}`.
pub(crate) async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<ServiceParams>,
) -> Response {
    let (viewer, asked) = match reader_and_question(&console, &headers, &uri, &params).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let now = console.app.now();
    let store = console.app.store.clone();
    let reading = asked.clone();
    let read = match mobius_log::blocking::spawn(move || read(store.as_ref(), &reading)).await {
        Ok(Some(read)) => read,
        Ok(None) => return not_found(&console, viewer.who(), &unknown(&asked.service)),
        Err(error) => return failed("read the service", &error),
    };
    let Some(report) = read.report else { return failed("measure the service", &"no report") };
    let spec = read
        .rollouts
        .first()
        .and_then(|row| serde_json::from_str::<Stored>(&row.body).ok())
        .and_then(|s| ServiceSpec::parse("mobius.yaml", &s.spec).ok());
    let (owner, runbook, repository) = spec.map(|s| (s.owner, s.runbook, s.repository)).unwrap_or_default();
    let runbook = runbook.unwrap_or_default();
    let explain = report.explain.clone().unwrap_or_default();
    let deployment = |id: i64, key: &str, revision: &Option<String>, finished: Timestamp| DeploymentItem {
        id: id.to_string(),
        key: key.to_owned(),
        revision: revision.clone().unwrap_or_default(),
        finished: utc(finished),
        finished_age: age(finished, now),
        failed: false,
        why: String::new(),
    };
    let table = bands::default_table();
    let page = ServicePage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        service: &asked.service,
        environment: &asked.environment,
        since: asked.window_query.strip_prefix("since=").unwrap_or(""),
        from: utc(asked.window.from),
        to: utc(asked.window.to),
        from_iso: asked.window.from.to_string(),
        to_iso: asked.window.to.to_string(),
        flow_href: asked.href("/flow"),
        path: format!("/services/{}", query_escape(&asked.service)),
        environments: environment_links(&asked, &read.environments, ""),
        owner: owner.unwrap_or_default(),
        runbook_link: is_web_address(&runbook),
        runbook,
        repository: repository.unwrap_or_default(),
        figures: figures(&report, &asked),
        band_table: table.name(),
        band_title: table.title(),
        band_rules: band_rules(),
        trends: trends(&read.weeks, &read.trend, &asked),
        deployments: explain
            .deployments
            .iter()
            .map(|d| DeploymentItem {
                failed: d.failed,
                why: d.why.join("; "),
                ..deployment(d.id, &d.key, &d.revision, d.finished)
            })
            .collect(),
        failed_attempts: explain
            .failed_attempts
            .iter()
            .map(|d| deployment(d.id, &d.key, &d.revision, d.finished))
            .collect(),
        changes: explain
            .changes
            .iter()
            .map(|c| ChangeItem {
                sha: c.sha.clone(),
                summary: c.summary.clone(),
                repository: c.repository.clone(),
                commit_time: utc(c.commit_time),
                deployment_id: c.deployment_id.to_string(),
                lead_time: span(c.lead_time_seconds),
            })
            .collect(),
        incidents: explain
            .incidents
            .iter()
            .map(|i| IncidentItem {
                key: i.key.clone(),
                href: format!("/incidents/{}", query_escape(&i.key)),
                detected: utc(i.detected),
                resolved: utc(i.resolved),
                recovery: span(i.recovery_seconds),
                attribution: words(&i.attribution),
                deployment_id: i.deployment_id.map(|d| d.to_string()).unwrap_or_else(|| "—".to_owned()),
            })
            .collect(),
        histories: histories(&read.rollouts, now),
    };
    html(StatusCode::OK, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_read_from_the_path_decoded() {
        let name = |path: &str| service_name(&path.parse().unwrap());
        assert_eq!(name("/services/web").as_deref(), Some("web"));
        assert_eq!(name("/services/web/flow").as_deref(), Some("web"));
        assert_eq!(name("/services/%3Cscript%3Ex").as_deref(), Some("<script>x"));
        assert_eq!(name("/services/a%2Fb/flow").as_deref(), Some("a/b"));
        assert_eq!(name("/services/bad%zz"), None);
        assert_eq!(name("/services/"), None);
    }

    #[test]
    fn environments_come_from_facts_and_rollouts() {
        let scope = |s: &str, e: &str| Scope { service: s.into(), environment: e.into() };
        let scopes = [scope("web", "staging"), scope("api", "production"), scope("web", "production")];
        assert_eq!(environments(&scopes, &[], "web"), ["production", "staging"]);
        assert!(environments(&scopes, &[], "nobody").is_empty());
        assert_eq!(raw(Some(0.2)), "0.2");
        assert_eq!(short_digest("pkg:generic/shop@sha256%3A0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("/data/releases/fedcba9876543210"), "fedcba987654");
        assert_eq!(short_digest("sha256:abc"), "abc");
        assert_eq!(raw(None), "");
        assert_eq!(words(&mobius_events::facts::Attribution::ExplicitCommit), "explicit commit");
    }
}
