//! One rollout's page, `/rollouts/{service}/{environment}`: the latest rollout of a service in
//! an environment (what `GET /api/v1/rollouts/{service}/{environment}` answers), its plan with
//! the current step marked, the weights, each version's requests, 5xx and p99 as the proxy
//! counted them, every analysis measurement with its verdict, its history, and the older
//! rollouts there. While it is in flight `assets/rollout.js` refetches the page and swaps in
//! the parts that changed (without JavaScript the page refreshes itself); a `deploy` session
//! gets the actions its state allows, with the error-budget policy's answer beside Promote.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use jiff::Timestamp;
use mobius_deploy::analysis::{Check, Measurement, Verdict};
use mobius_deploy::rollout::{Deployed, Phase, Plan, PlanStep, Rollout, Stored};
use mobius_proxy::sli::{BUCKETS_MS, VersionSli};
use mobius_reliability::slo::PolicyCheck;
use mobius_store::{SliMinute, TokenScope};

use crate::Console;
use crate::rollouts::{no_rollout, step_of, target};
use crate::view::{Who, age, failed, html, utc, viewer};

/// How many older rollouts of the same service and environment the page lists.
const OLDER: u32 = 10;
/// How many of the rollout's history lines the page shows (the last ones).
const HISTORY: usize = 50;

#[derive(Template)]
#[template(path = "rollout.html")]
struct RolloutPage<'a> {
    css: &'a str,
    icon: &'a str,
    script: &'a str,
    signed_in: Option<Who>,
    id: i64,
    service: String,
    environment: String,
    strategy: &'static str,
    state: &'static str,
    message: String,
    /// Not finished: the page follows it (script, or a refresh without one).
    in_flight: bool,
    step: String,
    steps: Vec<StepMark>,
    stable_weight: u8,
    new_weight: u8,
    started: String,
    started_age: String,
    started_iso: String,
    finished: String,
    versions: Vec<VersionRow>,
    traffic: Vec<TrafficRow>,
    traffic_since: String,
    measurements: Vec<MeasurementRow>,
    history: Vec<HistoryRow>,
    history_cut: usize,
    older: Vec<OlderRow>,
    can_promote: bool,
    can_abort: bool,
    can_undo: bool,
    csrf: String,
    policy: Option<PolicyCheck>,
}

impl RolloutPage<'_> {
    fn any_action(&self) -> bool {
        self.can_promote || self.can_abort || self.can_undo
    }
}

/// A step of a canary's plan and where the rollout is relative to it.
struct StepMark {
    text: String,
    /// `done`, `current` or `next`.
    mark: &'static str,
}

/// A canary's steps, each marked done, current or next (as `mobius rollout status` marks them).
fn steps(r: &Rollout) -> Vec<StepMark> {
    let Plan::Canary { steps } = &r.plan else { return Vec::new() };
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let text = match step {
                PlanStep::SetWeight(w) => format!("weight {w}%"),
                PlanStep::Pause(Some(ms)) => format!("pause {}", crate::view::span(*ms as f64 / 1000.0)),
                PlanStep::Pause(None) => "pause until promoted".to_owned(),
                PlanStep::Analysis(spec) => format!("analysis ({} passing)", spec.count),
            };
            let mark = if i < r.step || (r.phase == Phase::Succeeded) {
                "done"
            } else if i == r.step && !r.phase.is_final() {
                "current"
            } else {
                "next"
            };
            StepMark { text, mark }
        })
        .collect()
}

/// A version of the rollout: which it is and what it runs.
struct VersionRow {
    role: &'static str,
    version: String,
    digest: String,
    revision: String,
    instances: usize,
}

impl VersionRow {
    fn of(role: &'static str, d: &Deployed) -> VersionRow {
        // A release directory is named by its content digest.
        let digest = std::path::Path::new(&d.release)
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(12).collect::<String>())
            .map_or_else(String::new, |short| format!("sha256:{short}"));
        VersionRow {
            role,
            version: d.version.clone(),
            digest,
            revision: d.revision.as_deref().map(|r| r.chars().take(10).collect()).unwrap_or_default(),
            instances: d.instances.len(),
        }
    }
}

/// One version's requests, 5xx and p99 since the rollout began.
#[derive(Debug, PartialEq)]
struct TrafficRow {
    role: &'static str,
    version: String,
    requests: u64,
    errors: u64,
    error_rate: String,
    p99: String,
}

/// Sums the proxy's recorded minutes of `version` (requests, 5xx, the latency histogram) and
/// reads the p99 from the histogram as the proxy does.
fn traffic(role: &'static str, version: &str, minutes: &[SliMinute]) -> TrafficRow {
    let mut sli = VersionSli { buckets_ms: BUCKETS_MS.to_vec(), ..VersionSli::default() };
    for m in minutes.iter().filter(|m| m.version == version) {
        sli.requests += m.requests;
        sli.errors += m.errors;
        if sli.bucket_counts.len() < m.latency.len() {
            sli.bucket_counts.resize(m.latency.len(), 0);
        }
        for (sum, n) in sli.bucket_counts.iter_mut().zip(&m.latency) {
            *sum += n;
        }
    }
    let error_rate = match sli.requests {
        0 => "—".to_owned(),
        n => format!("{:.2}%", sli.errors as f64 * 100.0 / n as f64),
    };
    TrafficRow {
        role,
        version: version.to_owned(),
        requests: sli.requests,
        errors: sli.errors,
        error_rate,
        p99: sli.quantile_ms(0.99).map_or_else(|| "—".to_owned(), |ms| format!("{ms:.1} ms")),
    }
}

/// One analysis measurement: its verdict and each check against its threshold.
struct MeasurementRow {
    number: usize,
    verdict: &'static str,
    checks: Vec<CheckRow>,
}

struct CheckRow {
    name: String,
    value: String,
    threshold: String,
    passed: bool,
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// A check's value or threshold in its own unit: a count, a percentage, milliseconds or a
/// p-value.
fn figure(name: &str, value: f64) -> String {
    match name {
        "min_requests" => format!("{value:.0}"),
        "error_rate" | "success_rate" => format!("{:.2}%", value * 100.0),
        "p50_ms" | "p99_ms" => format!("{value:.1} ms"),
        _ => format!("{value:.3}"),
    }
}

fn measurement(number: usize, m: &Measurement) -> MeasurementRow {
    let check = |c: &Check| CheckRow {
        name: c.name.clone(),
        value: c.value.map_or_else(|| "no data".to_owned(), |v| figure(&c.name, v)),
        threshold: figure(&c.name, c.threshold),
        passed: c.passed,
    };
    MeasurementRow { number, verdict: verdict(m.verdict), checks: m.checks.iter().map(check).collect() }
}

struct HistoryRow {
    at: String,
    iso: String,
    message: String,
}

/// An earlier rollout of the same service to the same environment.
struct OlderRow {
    id: i64,
    version: String,
    strategy: &'static str,
    state: &'static str,
    started: String,
    started_age: String,
}

/// What the page reads, in one trip to the blocking pool.
struct Read {
    latest: Stored,
    older: Vec<Stored>,
    minutes: Vec<SliMinute>,
    policy: Option<PolicyCheck>,
}

/// The first minute whose recorded SLIs count for a rollout, and the end (exclusive) of the
/// last: whole minutes, as the proxy's counters are recorded.
fn counted_minutes(r: &Rollout, now: Timestamp) -> (i64, i64) {
    let from = r.created_at.as_second();
    let to = r.finished_at.unwrap_or(now).as_second();
    (from - from.rem_euclid(60), to - to.rem_euclid(60) + 60)
}

/// `GET /rollouts/{service}/{environment}`.
pub(crate) async fn page(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let Some((service, environment)) = target(&uri) else {
        return crate::view::not_found(&console, viewer.who(), "No such rollout.");
    };
    let (deployer, store, now) = (console.app.delivery.clone(), console.app.store.clone(), console.app.now());
    let (s, e) = (service.clone(), environment.clone());
    let read =
        mobius_log::blocking::spawn(move || -> Result<Option<Read>, Box<dyn std::error::Error + Send + Sync>> {
            let Some(latest) = deployer.status(&s, &e)? else { return Ok(None) };
            let older = deployer.list(Some(&s), Some(&e), Some(latest.rollout.id), OLDER)?;
            let (from, to) = counted_minutes(&latest.rollout, now);
            let minutes = store.sli(&s, &e, from, to)?;
            let policy = if latest.rollout.phase.is_final() {
                None
            } else {
                Some(mobius_reliability::slo::check(store.as_ref(), &s, &e, None, now)?)
            };
            Ok(Some(Read { latest, older, minutes, policy }))
        })
        .await;
    let read = match read {
        Ok(Some(read)) => read,
        Ok(None) => return no_rollout(&console, viewer.who(), &service, &environment),
        Err(error) => return failed("read the rollout", &error),
    };
    let r = &read.latest.rollout;
    let mut versions = Vec::new();
    let mut shown = Vec::new();
    if let Some(stable) = &r.stable {
        versions.push(VersionRow::of("stable", stable));
        shown.push(traffic("stable", &stable.version, &read.minutes));
    }
    versions.push(VersionRow::of("new", &r.new));
    shown.push(traffic("new", &r.new.version, &read.minutes));
    let history_cut = r.history.len().saturating_sub(HISTORY);
    let deploy = viewer.allows(TokenScope::Deploy);
    let page = RolloutPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        script: console.asset("rollout"),
        signed_in: viewer.who(),
        id: r.id,
        service: r.service.clone(),
        environment: r.environment.clone(),
        strategy: r.plan.name(),
        state: r.phase.as_str(),
        message: r.message.clone(),
        in_flight: !r.phase.is_final(),
        step: step_of(r),
        steps: steps(r),
        stable_weight: 100 - r.weight.min(100),
        new_weight: r.weight,
        started: utc(r.created_at),
        started_age: age(r.created_at, now),
        started_iso: r.created_at.to_string(),
        finished: r.finished_at.map(|at| format!("{} ({})", utc(at), age(at, now))).unwrap_or_default(),
        versions,
        traffic: shown,
        traffic_since: utc(Timestamp::from_second(counted_minutes(r, now).0).unwrap_or(r.created_at)),
        measurements: r.measurements.iter().enumerate().map(|(i, m)| measurement(i + 1, m)).collect(),
        history: r.history[history_cut..]
            .iter()
            .map(|e| HistoryRow {
                at: e.at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                iso: e.at.to_string(),
                message: e.message.clone(),
            })
            .collect(),
        history_cut,
        older: read
            .older
            .iter()
            .map(|s| OlderRow {
                id: s.rollout.id,
                version: s.rollout.new.version.clone(),
                strategy: s.rollout.plan.name(),
                state: s.rollout.phase.as_str(),
                started: utc(s.rollout.created_at),
                started_age: age(s.rollout.created_at, now),
            })
            .collect(),
        // What the rollout's state lets each action do (the controller checks again).
        can_promote: deploy && matches!(r.phase, Phase::Pending | Phase::Paused),
        can_abort: deploy && !r.phase.is_final(),
        can_undo: deploy && ((r.phase == Phase::Succeeded && r.stable.is_some()) || r.old_is_warm()),
        csrf: viewer.csrf().to_owned(),
        policy: read.policy,
    };
    html(StatusCode::OK, page.render())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn minute(version: &str, requests: u64, errors: u64, latency: Vec<u64>) -> SliMinute {
        SliMinute {
            service: "shop".into(),
            environment: "production".into(),
            version: version.into(),
            minute: 0,
            requests,
            errors,
            latency,
        }
    }

    #[test]
    fn a_versions_traffic_sums_its_minutes_and_reads_p99_from_the_histogram() {
        let mut fast = vec![0; BUCKETS_MS.len() + 1];
        fast[3] = 90; // ≤ 10 ms
        let mut slow = vec![0; BUCKETS_MS.len() + 1];
        slow[6] = 10; // ≤ 100 ms
        let minutes =
            [minute("v1", 60, 0, fast.clone()), minute("v2", 10, 1, slow.clone()), minute("v1", 30, 3, fast.clone())];
        let v1 = traffic("stable", "v1", &minutes);
        assert_eq!((v1.requests, v1.errors, v1.error_rate.as_str()), (90, 3, "3.33%"));
        let expected = VersionSli {
            buckets_ms: BUCKETS_MS.to_vec(),
            bucket_counts: fast.iter().map(|n| n * 2).collect(),
            ..VersionSli::default()
        };
        assert_eq!(v1.p99, format!("{:.1} ms", expected.quantile_ms(0.99).unwrap()));
        let v2 = traffic("new", "v2", &minutes);
        assert_eq!((v2.requests, v2.errors, v2.error_rate.as_str()), (10, 1, "10.00%"));
        let none = traffic("new", "v3", &minutes);
        assert_eq!((none.requests, none.error_rate.as_str(), none.p99.as_str()), (0, "—", "—"));
    }

    /// A canary of three steps at `step`, in `phase`.
    pub(crate) fn canary(phase: &str, step: usize) -> Rollout {
        serde_json::from_value(serde_json::json!({
            "id": 1, "service": "shop", "environment": "production",
            "plan": { "canary": { "steps": [{ "set_weight": 50 }, { "pause": 30000 }, { "pause": null }] } },
            "phase": phase, "step": step, "weight": 50, "stable": null,
            "new": { "version": "v2", "release": "/data/releases/0123456789abcdef", "artifact": null, "revision": null, "instances": [] },
            "instances": 2, "paused_until": null, "analysis": null, "retire_at": null, "message": "",
            "history": [], "created_at": "2026-12-06T17:00:00Z", "finished_at": null, "measurements": [],
        }))
        .unwrap()
    }

    #[test]
    fn the_plan_marks_done_steps_and_the_current_one_as_rollout_status_does() {
        let check = |phase: &str, step: usize, marks: &str, at: &str| {
            let r = canary(phase, step);
            let shown: Vec<&str> = steps(&r).iter().map(|s| s.mark).collect();
            assert_eq!((shown.join(" "), step_of(&r).as_str()), (marks.to_owned(), at), "{phase} at {step}");
        };
        check("progressing", 0, "current next next", "1 of 3");
        check("progressing", 1, "done current next", "2 of 3");
        check("paused", 2, "done done current", "3 of 3");
        check("succeeded", 3, "done done done", "3 of 3");
        check("aborted", 2, "done done next", "3 of 3");
        check("aborted", 0, "next next next", "1 of 3");
        let texts: Vec<String> = steps(&canary("paused", 2)).into_iter().map(|s| s.text).collect();
        assert_eq!(texts, ["weight 50%", "pause 30s", "pause until promoted"]);
        assert_eq!(VersionRow::of("new", &canary("paused", 2).new).digest, "sha256:0123456789ab");
    }

    #[test]
    fn check_figures_are_in_their_units() {
        assert_eq!(figure("min_requests", 20.0), "20");
        assert_eq!(figure("error_rate", 0.0125), "1.25%");
        assert_eq!(figure("p99_ms", 12.34), "12.3 ms");
        assert_eq!(figure("latency_vs_stable", 0.04), "0.040");
    }
}
