//! The rollouts: every environment's latest rollout (in-flight ones first), and the actions a
//! `deploy` session may take on one — promote, abort, undo — each through the same
//! [`mobius_delivery::Deployer`] calls as the API's, after the gate every action passes.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use mobius_delivery::{DeployError, Refusal};
use mobius_deploy::rollout::{Rollout, Stored};
use mobius_store::TokenScope;
use serde::Deserialize;

use crate::Console;
use crate::pages::CsrfForm;
use crate::view::ActionForm;
use crate::view::{Who, age, authorize, failed, html, not_found, percent_decode, query_escape, utc, viewer};

/// How many recent rollouts `/rollouts` reads to find each environment's latest (one store
/// call; an environment whose latest rollout is older than these is not listed).
const RECENT_ROLLOUTS: u32 = 1000;

#[derive(Template)]
#[template(path = "rollouts.html")]
struct RolloutsPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    service: &'a str,
    environment: &'a str,
    rows: Vec<RolloutRow>,
}

/// One environment's latest rollout, as the list shows it.
struct RolloutRow {
    href: String,
    service: String,
    environment: String,
    version: String,
    strategy: &'static str,
    state: &'static str,
    step: String,
    canary_weight: u8,
    stable_weight: u8,
    started: String,
    started_age: String,
    started_iso: String,
}

impl RolloutRow {
    fn of(r: &Rollout, now: Timestamp) -> RolloutRow {
        RolloutRow {
            href: href(&r.service, &r.environment),
            service: r.service.clone(),
            environment: r.environment.clone(),
            version: r.new.version.clone(),
            strategy: r.plan.name(),
            state: r.phase.as_str(),
            step: step_of(r),
            canary_weight: r.weight,
            stable_weight: 100 - r.weight.min(100),
            started: utc(r.created_at),
            started_age: age(r.created_at, now),
            started_iso: r.created_at.to_string(),
        }
    }
}

/// `3 of 4` for a canary (the step it is at or stopped at, counting from one; the last once
/// it succeeded), `—` for the strategies without steps.
pub(crate) fn step_of(r: &Rollout) -> String {
    match &r.plan {
        mobius_deploy::rollout::Plan::Canary { steps } => {
            let done = r.phase == mobius_deploy::rollout::Phase::Succeeded;
            let at = if done { steps.len() } else { (r.step + 1).min(steps.len()) };
            format!("{at} of {}", steps.len())
        }
        _ => "—".to_owned(),
    }
}

/// A rollout page's path: `/rollouts/{service}/{environment}`, each part escaped.
pub(crate) fn href(service: &str, environment: &str) -> String {
    format!("/rollouts/{}/{}", query_escape(service), query_escape(environment))
}

/// Each (service, environment)'s latest rollout from `newest_first`, in-flight ones first, then
/// by service and environment.
fn latest_per_environment(newest_first: Vec<Stored>) -> Vec<Rollout> {
    let mut seen = std::collections::BTreeSet::new();
    let mut latest: Vec<Rollout> = newest_first
        .into_iter()
        .map(|s| s.rollout)
        .filter(|r| seen.insert((r.service.clone(), r.environment.clone())))
        .collect();
    latest.sort_by(|a, b| {
        (a.phase.is_final(), &a.service, &a.environment).cmp(&(b.phase.is_final(), &b.service, &b.environment))
    });
    latest
}

#[derive(Debug, Deserialize)]
pub(crate) struct RolloutsParams {
    #[serde(default)]
    service: String,
    #[serde(default)]
    environment: String,
}

/// `GET /rollouts?service=&environment=`: each environment's latest rollout (the API's
/// `Deployer::list`, one call).
pub(crate) async fn list(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<RolloutsParams>,
) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let (service, environment) = (params.service.trim(), params.environment.trim());
    let deployer = console.app.delivery.clone();
    let (s, e) =
        (Some(service.to_owned()).filter(|s| !s.is_empty()), Some(environment.to_owned()).filter(|e| !e.is_empty()));
    let listed =
        mobius_log::blocking::spawn(move || deployer.list(s.as_deref(), e.as_deref(), None, RECENT_ROLLOUTS)).await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => return failed("list rollouts", &error),
    };
    let now = console.app.now();
    let page = RolloutsPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        service,
        environment,
        rows: latest_per_environment(listed).iter().map(|r| RolloutRow::of(r, now)).collect(),
    };
    html(StatusCode::OK, page.render())
}

/// The service and environment in `/rollouts/{service}/{environment}…`, unescaped (read from
/// the path itself: the server's router matched it already).
pub(crate) fn target(uri: &Uri) -> Option<(String, String)> {
    let mut parts = uri.path().strip_prefix("/rollouts/")?.split('/');
    let service = percent_decode(parts.next()?)?;
    let environment = percent_decode(parts.next()?)?;
    (!service.is_empty() && !environment.is_empty()).then_some((service, environment))
}

/// The 404 page of a rollout that does not exist.
pub(crate) fn no_rollout(console: &Console, who: Option<Who>, service: &str, environment: &str) -> Response {
    let what = format!("No rollout of `{service}` in `{environment}`: it was never deployed there.");
    not_found(console, who, &what)
}

/// What a person asks of a rollout.
#[derive(Debug, Clone, Copy)]
enum Change {
    Promote,
    Abort,
    Undo,
}

impl Change {
    /// What the gate's refusal calls it.
    fn doing(self) -> &'static str {
        match self {
            Change::Promote => "promoting a rollout",
            Change::Abort => "aborting a rollout",
            Change::Undo => "undoing a rollout",
        }
    }

    /// What failed, after "cannot".
    fn what(self) -> &'static str {
        match self {
            Change::Promote => "promote the rollout",
            Change::Abort => "abort the rollout",
            Change::Undo => "undo the rollout",
        }
    }
}

/// `POST /rollouts/{service}/{environment}/promote`.
pub(crate) async fn promote(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    change(console, headers, uri, form, Change::Promote).await
}

/// `POST /rollouts/{service}/{environment}/abort`.
pub(crate) async fn abort(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    change(console, headers, uri, form, Change::Abort).await
}

/// `POST /rollouts/{service}/{environment}/undo`.
pub(crate) async fn undo(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    change(console, headers, uri, form, Change::Undo).await
}

/// A rollout action: the session, its `deploy` scope and its CSRF token checked (in that
/// order, before anything is read or changed), then the API's own call; back to the page.
async fn change(console: Console, headers: HeaderMap, uri: Uri, form: CsrfForm, change: Change) -> Response {
    let session = match authorize(&console, &headers, &uri, &form.csrf, TokenScope::Deploy, change.doing()).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let who = || Some(Who::of(&session));
    let Some((service, environment)) = target(&uri) else { return not_found(&console, who(), "No such rollout.") };
    let delivery = &console.app.delivery;
    let done = match change {
        Change::Promote => delivery.promote(&service, &environment).await,
        Change::Abort => delivery.abort(&service, &environment).await,
        Change::Undo => delivery.undo(&service, &environment).await,
    };
    let by = &session.token.name;
    tracing::info!(%service, %environment, action = ?change, %by, ok = done.is_ok(), "console rollout action");
    match done {
        Ok(_) => Redirect::to(&href(&service, &environment)).into_response(),
        Err(DeployError::NeverDeployed { .. }) => no_rollout(&console, who(), &service, &environment),
        Err(error @ DeployError::NotRunningHere { .. }) => not_found(&console, who(), &error.to_string()),
        Err(
            error @ (DeployError::BudgetExhausted { .. }
            | DeployError::RolloutUnfinished { .. }
            | DeployError::AlreadyServing { .. }
            | DeployError::NothingToUndo { .. }
            | DeployError::ChangeRefused(_)
            | DeployError::RolloutOver { .. }
            | DeployError::NoHolder { .. }
            | DeployError::RefusedByHolder {
                refusal: Refusal::Conflict | Refusal::BudgetExhausted | Refusal::Unavailable,
                ..
            }),
        ) => refused(&console, who(), &error, &href(&service, &environment)),
        Err(error) => failed(change.what(), &error),
    }
}

#[derive(Template)]
#[template(path = "rollout_refused.html")]
struct Refused<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    what: &'a str,
    back: &'a str,
}

/// 409: the rollout is not in a state that allows the change (or the error-budget policy
/// refuses it); the page says why, and that nothing changed.
fn refused(console: &Console, who: Option<Who>, error: &DeployError, back: &str) -> Response {
    let what = format!("{error}. Nothing was changed.");
    let page =
        Refused { css: console.asset("console"), icon: console.asset("favicon"), signed_in: who, what: &what, back };
    html(StatusCode::CONFLICT, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_read_from_the_path_and_unescaped() {
        let check = |path: &str, expected: Option<(&str, &str)>| {
            let found = target(&path.parse().unwrap());
            assert_eq!(found.as_ref().map(|(s, e)| (s.as_str(), e.as_str())), expected, "{path}");
        };
        check("/rollouts/shop/production", Some(("shop", "production")));
        check("/rollouts/shop/production/promote", Some(("shop", "production")));
        check("/rollouts/my%20shop/prod%2Fa", Some(("my shop", "prod/a")));
        check("/rollouts/shop", None);
        check("/rollouts//production", None);
        check("/rollouts/shop/%zz", None);
        check("/rollouts/shop/%ff", None);
        assert_eq!(href("my shop", "prod"), "/rollouts/my%20shop/prod");
    }

    #[test]
    fn each_environments_latest_rollout_is_listed_in_flight_first() {
        let stored = |id: i64, service: &str, environment: &str, phase: &str| {
            let mut rollout = crate::rollout::tests::canary(phase, 0);
            (rollout.id, rollout.service, rollout.environment) = (id, service.into(), environment.into());
            Stored { rollout, spec: String::new(), stable_spec: None, host: None }
        };
        let newest_first = vec![
            stored(6, "shop", "production", "succeeded"),
            stored(5, "cart", "staging", "paused"),
            stored(4, "shop", "production", "aborted"),
            stored(3, "cart", "production", "succeeded"),
            stored(2, "cart", "staging", "succeeded"),
            stored(1, "api", "production", "progressing"),
        ];
        let listed: Vec<i64> = latest_per_environment(newest_first).iter().map(|r| r.id).collect();
        assert_eq!(listed, [1, 5, 3, 6]);
    }
}
