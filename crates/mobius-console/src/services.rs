//! The service catalog (`/services`): every service the log has seen or Mobius deployed, one
//! row each, with who owns it, what runs where, its DORA bands, its SLO budget, its open
//! incidents and its last run.
//!
//! The page reads a bounded number of times however many services there are: the scopes, the
//! latest rollouts, every service's facts in one read ([`query::dora_of_environment`]), the
//! SLO statuses, the open incidents and the latest runs, each once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use jiff::Timestamp;
use mobius_deploy::rollout::{Phase, Stored};
use mobius_deploy::spec::ServiceSpec;
use mobius_insights::bands::{self, Band, Metric};
use mobius_insights::{DoraReport, Window};
use mobius_log::query;
use mobius_store::{RolloutQuery, RolloutRow, RunQuery, Store};
use serde::Deserialize;

use crate::Console;
use crate::view::{Who, age, failed, html, not_found_with, query_escape, utc, viewer};

/// The most rollouts the catalog reads (newest first) for owners and live versions: far more
/// than the latest of 50 services in a few environments.
const ROLLOUTS_READ: u32 = 1000;
/// The most runs read (newest first) to find each repository's last one.
const RUNS_READ: u32 = 500;

#[derive(Debug, Deserialize, Default)]
pub(crate) struct CatalogParams {
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    band: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    since: String,
}

#[derive(Template)]
#[template(path = "services.html")]
struct CatalogPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    name: &'a str,
    owner: &'a str,
    band: &'a str,
    environment: &'a str,
    since: &'a str,
    from: String,
    to: String,
    band_table: &'static str,
    band_title: &'static str,
    band_rules: Vec<BandRule>,
    rows: Vec<ServiceRow>,
    /// Services before filtering: "no services yet" differs from "none match".
    seen: usize,
}

/// One service, as the catalog shows it.
pub(crate) struct ServiceRow {
    pub(crate) name: String,
    pub(crate) href: String,
    pub(crate) owner: String,
    pub(crate) runbook: String,
    /// The runbook is a web address (anything else is shown as text, never a link).
    pub(crate) runbook_link: bool,
    pub(crate) repository: String,
    pub(crate) live: Vec<Live>,
    pub(crate) bands: [BandBadge; 4],
    pub(crate) budget: String,
    pub(crate) open_incidents: usize,
    pub(crate) last_run: Option<LastRun>,
}

/// The version serving in one environment, and since when.
pub(crate) struct Live {
    pub(crate) environment: String,
    pub(crate) version: String,
    pub(crate) since: String,
    pub(crate) since_age: String,
}

/// A DORA metric's band as a badge: its name for the colour (`band-elite`…) and the text.
pub(crate) struct BandBadge {
    pub(crate) metric: &'static str,
    pub(crate) class: &'static str,
    pub(crate) text: &'static str,
}

impl BandBadge {
    fn of(metric: &'static str, band: Option<Band>) -> BandBadge {
        match band {
            Some(band) => BandBadge { metric, class: band.as_str(), text: band.as_str() },
            None => BandBadge { metric, class: "none", text: "—" },
        }
    }
}

pub(crate) struct LastRun {
    pub(crate) id: i64,
    pub(crate) state: &'static str,
}

/// The four bands of a report, in DORA's order.
pub(crate) fn badges(report: Option<&DoraReport>) -> [BandBadge; 4] {
    [
        BandBadge::of("deployments", report.map(|r| r.deployment_frequency.band)),
        BandBadge::of("lead time", report.and_then(|r| r.lead_time.band)),
        BandBadge::of("change failure", report.and_then(|r| r.change_failure_rate.band)),
        BandBadge::of("recovery", report.and_then(|r| r.recovery_time.band)),
    ]
}

/// One row of the band table, as the pages state it.
pub(crate) struct BandRule {
    pub(crate) metric: String,
    pub(crate) band: &'static str,
    pub(crate) rule: String,
}

/// The default band table's rows: the rule behind every badge, stated on the page.
pub(crate) fn band_rules() -> Vec<BandRule> {
    bands::default_table()
        .thresholds()
        .iter()
        .map(|t| BandRule {
            metric: t.metric.to_string().replace('_', " "),
            band: t.band.as_str(),
            rule: match &t.meaning {
                Some(meaning) => format!("{} {} ({meaning})", t.comparison, edge(t.metric, t.edge)),
                None => format!("{} {}", t.comparison, edge(t.metric, t.edge)),
            },
        })
        .collect()
}

/// A threshold's edge in its metric's unit, as people read it: `0.143 per day`, `1d 0h`,
/// `15%`.
fn edge(metric: Metric, edge: f64) -> String {
    match metric {
        Metric::DeploymentFrequency => {
            let rounded = format!("{edge:.3}");
            format!("{} per day", rounded.trim_end_matches('0').trim_end_matches('.'))
        }
        Metric::ChangeFailureRate => format!("{}%", (edge * 1000.0).round() / 10.0),
        Metric::LeadTime | Metric::RecoveryTime => crate::view::span(edge),
    }
}

/// What a service's latest deployed `mobius.yaml` says about it.
#[derive(Default)]
struct Described {
    owner: Option<String>,
    runbook: Option<String>,
    repository: Option<String>,
}

/// What the catalog read, once, for every service.
struct Read {
    services: BTreeSet<String>,
    rollouts: Vec<RolloutRow>,
    dora: Vec<DoraReport>,
    /// Lowest budget left of each service's SLOs (a fraction; negative once overspent).
    budgets: HashMap<String, f64>,
    open_incidents: HashMap<String, usize>,
    /// Each repository's newest run.
    last_runs: HashMap<String, (i64, &'static str)>,
}

fn read(console: &Console, store: &dyn Store, environment: &str, window: Window) -> Result<Read, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let now = console.app.now();
    let mut services: BTreeSet<String> = store.scopes().map_err(|e| err(&e))?.into_iter().map(|s| s.service).collect();
    let rollouts =
        store.rollouts(&RolloutQuery { limit: ROLLOUTS_READ, ..RolloutQuery::default() }).map_err(|e| err(&e))?;
    services.extend(rollouts.iter().map(|r| r.service.clone()));
    let dora = query::dora_of_environment(store, environment, window, bands::DEFAULT, false).map_err(|e| err(&e))?;
    let cache = console.app.reliability.series_cache();
    let mut budgets: HashMap<String, f64> = HashMap::new();
    for status in mobius_reliability::slo::statuses_with(store, &cache, now).map_err(|e| err(&e))? {
        if let Some(budget) = status.budget {
            let lowest = budgets.entry(status.service).or_insert(f64::INFINITY);
            *lowest = lowest.min(budget.remaining);
        }
    }
    let mut open_incidents: HashMap<String, usize> = HashMap::new();
    for listed in mobius_reliability::incidents::list(store, true).map_err(|e| err(&e))? {
        *open_incidents.entry(listed.incident.service).or_default() += 1;
    }
    let mut last_runs = HashMap::new();
    for run in store.runs(&RunQuery { limit: RUNS_READ, ..RunQuery::default() }).map_err(|e| err(&e))? {
        last_runs.entry(run.run.repository.clone()).or_insert((run.id, run.state.as_str()));
    }
    Ok(Read { services, rollouts, dora, budgets, open_incidents, last_runs })
}

/// The latest `mobius.yaml` of each service (rollouts are newest first).
fn described(rollouts: &[RolloutRow]) -> HashMap<String, Described> {
    let mut out: HashMap<String, Described> = HashMap::new();
    for row in rollouts {
        if out.contains_key(&row.service) {
            continue;
        }
        let spec = serde_json::from_str::<Stored>(&row.body)
            .ok()
            .and_then(|s| ServiceSpec::parse("mobius.yaml", &s.spec).ok());
        let described = spec
            .map(|spec| Described { owner: spec.owner, runbook: spec.runbook, repository: spec.repository })
            .unwrap_or_default();
        out.insert(row.service.clone(), described);
    }
    out
}

/// Each service's live version per environment: its latest succeeded rollout there.
fn live(rollouts: &[RolloutRow], now: Timestamp) -> HashMap<String, Vec<Live>> {
    let mut seen: BTreeMap<(String, String), Live> = BTreeMap::new();
    for row in rollouts {
        let key = (row.service.clone(), row.environment.clone());
        if seen.contains_key(&key) {
            continue;
        }
        let Ok(stored) = serde_json::from_str::<Stored>(&row.body) else { continue };
        if stored.rollout.phase != Phase::Succeeded {
            continue;
        }
        let at = stored.rollout.finished_at.unwrap_or(row.updated);
        seen.insert(
            key,
            Live {
                environment: row.environment.clone(),
                version: stored.rollout.new.version.clone(),
                since: utc(at),
                since_age: age(at, now),
            },
        );
    }
    let mut out: HashMap<String, Vec<Live>> = HashMap::new();
    for ((service, _), live) in seen {
        out.entry(service).or_default().push(live);
    }
    out
}

/// A budget left as the page shows it: `87.5%`, or `—` without an SLO.
fn budget_text(remaining: Option<f64>) -> String {
    match remaining {
        Some(r) if r.is_finite() => format!("{:.1}%", r * 100.0),
        _ => "—".to_owned(),
    }
}

/// Every service as a row, in name order.
fn rows(read: Read, now: Timestamp, environment: &str, since: &str) -> Vec<ServiceRow> {
    let mut described = described(&read.rollouts);
    let mut live = live(&read.rollouts, now);
    let dora: HashMap<&str, &DoraReport> = read.dora.iter().map(|r| (r.service.as_str(), r)).collect();
    read.services
        .iter()
        .map(|name| {
            let about = described.remove(name).unwrap_or_default();
            let last_run = about
                .repository
                .as_ref()
                .and_then(|repo| read.last_runs.get(repo))
                .map(|&(id, state)| LastRun { id, state });
            ServiceRow {
                href: format!(
                    "/services/{}?environment={}&since={}",
                    query_escape(name),
                    query_escape(environment),
                    query_escape(since)
                ),
                owner: about.owner.unwrap_or_default(),
                runbook_link: about.runbook.as_deref().is_some_and(is_web_address),
                runbook: about.runbook.unwrap_or_default(),
                repository: about.repository.unwrap_or_default(),
                live: live.remove(name).unwrap_or_default(),
                bands: badges(dora.get(name.as_str()).copied()),
                budget: budget_text(read.budgets.get(name).copied()),
                open_incidents: read.open_incidents.get(name).copied().unwrap_or(0),
                last_run,
                name: name.clone(),
            }
        })
        .collect()
}

/// Whether a row passes the filters: `name` a substring, `owner` equal (ignoring case),
/// `band` the band of any of its metrics.
fn keep(row: &ServiceRow, name: &str, owner: &str, band: &str) -> bool {
    (name.is_empty() || row.name.to_lowercase().contains(&name.to_lowercase()))
        && (owner.is_empty() || row.owner.eq_ignore_ascii_case(owner))
        && (band.is_empty() || row.bands.iter().any(|b| b.text == band))
}

/// `GET /services`.
pub(crate) async fn catalog(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<CatalogParams>,
) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let environment = non_empty(&params.environment, mobius_events::DEFAULT_ENVIRONMENT);
    let since = non_empty(&params.since, "30d");
    let band = params.band.trim();
    if !band.is_empty() && !["elite", "high", "medium", "low"].contains(&band) {
        let what = format!("No band `{band}`: the bands are elite, high, medium and low.");
        return not_found_with(&console, StatusCode::BAD_REQUEST, viewer.who(), &what);
    }
    let now = console.app.now();
    let window = match query::window(Some(&since), None, None, now) {
        Ok(window) => window,
        Err(error) => return not_found_with(&console, StatusCode::BAD_REQUEST, viewer.who(), &error.to_string()),
    };
    let (store, reader, env) = (console.app.store.clone(), console.clone(), environment.clone());
    let read = match mobius_log::blocking::spawn(move || read(&reader, store.as_ref(), &env, window)).await {
        Ok(read) => read,
        Err(error) => return failed("read the services", &error),
    };
    let seen = read.services.len();
    let (name, owner) = (params.name.trim(), params.owner.trim());
    let rows = rows(read, now, &environment, &since).into_iter().filter(|r| keep(r, name, owner, band)).collect();
    let table = bands::default_table();
    let page = CatalogPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        name,
        owner,
        band,
        environment: &environment,
        since: &since,
        from: utc(window.from),
        to: utc(window.to),
        band_table: table.name(),
        band_title: table.title(),
        band_rules: band_rules(),
        rows,
        seen,
    };
    html(StatusCode::OK, page.render())
}

/// Whether `text` may be a link: only `https://` and `http://` (never `javascript:`).
pub(crate) fn is_web_address(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// `text` trimmed, or `default` when it is empty.
pub(crate) fn non_empty(text: &str, default: &str) -> String {
    let text = text.trim();
    if text.is_empty() { default.to_owned() } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, owner: &str, band: Option<Band>) -> ServiceRow {
        ServiceRow {
            name: name.to_owned(),
            href: String::new(),
            owner: owner.to_owned(),
            runbook: String::new(),
            runbook_link: false,
            repository: String::new(),
            live: Vec::new(),
            bands: [
                BandBadge::of("deployments", band),
                BandBadge::of("lead time", None),
                BandBadge::of("change failure", None),
                BandBadge::of("recovery", None),
            ],
            budget: budget_text(None),
            open_incidents: 0,
            last_run: None,
        }
    }

    #[test]
    fn filters_by_name_owner_and_any_band() {
        let api = row("checkout-api", "Payments", Some(Band::Elite));
        assert!(keep(&api, "", "", ""));
        assert!(keep(&api, "API", "", ""), "a name is a substring, any case");
        assert!(keep(&api, "", "payments", ""), "an owner is equal, any case");
        assert!(!keep(&api, "", "pay", ""));
        assert!(keep(&api, "", "", "elite"));
        assert!(!keep(&api, "", "", "low"));
        assert!(!keep(&row("web", "", None), "", "", "low"), "no data is no band");
    }

    #[test]
    fn budgets_and_missing_bands_read_as_text() {
        assert_eq!(budget_text(Some(0.875)), "87.5%");
        assert_eq!(budget_text(Some(-0.25)), "-25.0%");
        assert_eq!(budget_text(None), "—");
        assert_eq!(budget_text(Some(f64::INFINITY)), "—");
        let none = BandBadge::of("recovery", None);
        assert_eq!((none.class, none.text), ("none", "—"));
        assert_eq!(non_empty("  ", "production"), "production");
        assert!(is_web_address("https://wiki.example/runbook"));
        assert!(!is_web_address("javascript:alert(1)") && !is_web_address("docs/runbook.md"));
        assert!(band_rules().iter().any(|r| r.band == "elite" && r.metric == "lead time"), "the rules are stated");
        assert_eq!(edge(Metric::DeploymentFrequency, 1.0 / 7.0), "0.143 per day");
        assert_eq!(edge(Metric::DeploymentFrequency, 1.0), "1 per day");
        assert_eq!(edge(Metric::ChangeFailureRate, 0.15), "15%");
        assert_eq!(edge(Metric::LeadTime, 86_400.0), "1d 0h");
        assert_eq!(non_empty(" staging ", "production"), "staging");
    }
}
