//! A service's value stream (`/services/{name}/flow`): the API's `GET /api/v1/flow` report
//! drawn as the stages a change goes through, in order, each waiting or being worked on, with
//! its median; then flow efficiency and the share spent waiting. Boxes in HTML and one bar of
//! proportions in SVG, drawn on the server: no script.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use mobius_insights::FlowReport;
use mobius_insights::flow::{Stage, StageKind, StageName};
use mobius_log::query::{self, Selection};
use mobius_store::{RolloutQuery, Store};

use crate::Console;
use crate::service::{EnvironmentLink, ServiceParams, environment_links, environments, reader_and_question, unknown};
use crate::view::{Who, failed, html, not_found, span, utc};

#[derive(Template)]
#[template(path = "flow.html")]
struct FlowPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    service: &'a str,
    environment: &'a str,
    from: String,
    to: String,
    service_href: String,
    environments: Vec<EnvironmentLink>,
    changes: usize,
    stages: Vec<StageBox>,
    /// Inline SVG drawn by [`proportions`], which writes no outside text.
    proportions: String,
    efficiency: String,
    waiting: String,
}

/// One stage as a box of the diagram.
struct StageBox {
    name: &'static str,
    kind: &'static str,
    median: String,
    samples: usize,
}

/// A stage's name in words.
fn stage_words(name: StageName) -> &'static str {
    match name {
        StageName::CommitToQueued => "Commit → pipeline queued",
        StageName::QueuedToStarted => "Queued → started",
        StageName::StartedToFinished => "Pipeline running",
        StageName::FinishedToDeployStarted => "Pipeline done → deploy started",
        StageName::DeployStartedToFinished => "Deploying",
    }
}

fn kind_words(kind: StageKind) -> &'static str {
    match kind {
        StageKind::Wait => "wait",
        StageKind::Work => "work",
    }
}

fn share(value: Option<f64>) -> String {
    value.map_or("—".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The stages' medians as one bar split in proportion, waiting and working told apart by
/// class (colour) and by each part's `<title>` (text). Stages without a median are left out.
fn proportions(stages: &[Stage]) -> String {
    const WIDTH: f64 = 800.0;
    const HEIGHT: f64 = 28.0;
    let total: f64 = stages.iter().filter_map(|s| s.median_seconds).sum();
    let mut out = format!(
        r#"<svg class="chart flow-bar" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Share of the median time in each stage"><title>Share of the median time in each stage</title>"#
    );
    if total <= 0.0 {
        out.push_str("</svg>");
        return out;
    }
    let mut x = 0.0;
    for stage in stages {
        let Some(median) = stage.median_seconds else { continue };
        let width = WIDTH * median / total;
        let _ = write!(
            out,
            r#"<rect class="stage-{kind}" x="{x:.1}" y="0" width="{width:.1}" height="{HEIGHT}"><title>{name} ({kind}): {median}, {share:.0}%</title></rect>"#,
            kind = kind_words(stage.kind),
            name = crate::chart::escape(stage_words(stage.name)),
            median = span(median),
            share = median / total * 100.0,
        );
        x += width;
    }
    out.push_str("</svg>");
    out
}

fn boxes(report: &FlowReport) -> Vec<StageBox> {
    report
        .stages
        .iter()
        .map(|stage| StageBox {
            name: stage_words(stage.name),
            kind: kind_words(stage.kind),
            median: stage.median_seconds.map_or("—".to_owned(), span),
            samples: stage.samples,
        })
        .collect()
}

/// `GET /services/{name}/flow`.
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
    let (store, reading) = (console.app.store.clone(), asked.clone());
    let read = mobius_log::blocking::spawn(move || -> Result<Option<(Vec<String>, FlowReport)>, String> {
        let store: &dyn Store = store.as_ref();
        let scopes = store.scopes().map_err(|e| e.to_string())?;
        let query = RolloutQuery { service: Some(reading.service.clone()), limit: 50, ..RolloutQuery::default() };
        let rollouts = store.rollouts(&query).map_err(|e| e.to_string())?;
        let environments = environments(&scopes, &rollouts, &reading.service);
        if environments.is_empty() {
            return Ok(None);
        }
        let selection = Selection {
            service: Some(reading.service.clone()),
            environment: reading.environment.clone(),
            window: reading.window,
        };
        let report = query::flow(store, &selection, false).map_err(|e| e.to_string())?.into_iter().next();
        Ok(report.map(|report| (environments, report)))
    })
    .await;
    let (environments, report) = match read {
        Ok(Some(read)) => read,
        Ok(None) => return not_found(&console, viewer.who(), &unknown(&asked.service)),
        Err(error) => return failed("read the value stream", &error),
    };
    let page = FlowPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        service: &asked.service,
        environment: &asked.environment,
        from: utc(asked.window.from),
        to: utc(asked.window.to),
        service_href: asked.href(""),
        environments: environment_links(&asked, &environments, "/flow"),
        changes: report.changes,
        stages: boxes(&report),
        proportions: proportions(&report.stages),
        efficiency: share(report.flow_efficiency),
        waiting: share(report.waiting_share),
    };
    html(StatusCode::OK, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: StageName, median: Option<f64>) -> Stage {
        Stage { name, kind: name.kind(), median_seconds: median, samples: usize::from(median.is_some()) }
    }

    #[test]
    fn the_bar_splits_known_medians_in_proportion() {
        let stages = [
            stage(StageName::CommitToQueued, Some(300.0)),
            stage(StageName::QueuedToStarted, None),
            stage(StageName::StartedToFinished, Some(100.0)),
        ];
        let svg = proportions(&stages);
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains(r#"class="stage-wait" x="0.0" y="0" width="600.0""#), "{svg}");
        assert!(svg.contains(r#"class="stage-work" x="600.0" y="0" width="200.0""#), "{svg}");
        assert!(svg.contains("Commit → pipeline queued (wait): 5m 0s, 75%"), "{svg}");
        assert!(!proportions(&[stage(StageName::CommitToQueued, None)]).contains("<rect"));
        assert_eq!(share(Some(0.25)), "25.0%");
        assert_eq!(share(None), "—");
    }
}
