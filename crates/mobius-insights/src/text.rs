//! Plain-text renderings of reports for a terminal: a block per report, a row per metric
//! with the value in human units and its band, and, when the report carries explanations, a
//! section per kind of fact listing the items behind the numbers.
//!
//! Unknown values print as `—`. With `color`, bands (and, in the value stream, stage kinds)
//! are painted with ANSI escapes; without it the output is plain and stable enough to compare
//! as a string.
//!
//! [`Table`]: rows whose columns line up, which the reports here and the CLI's lists share.

mod table;
mod units;

// Writing to a `String` cannot fail: the `fmt::Result` of each `write!` below is ignored.
use std::fmt::Write as _;

use mobius_events::facts::Attribution;

pub use self::table::{Cell, Table};
use self::units::{UNKNOWN, count, decimal, duration, frequency, percent, short_sha, timestamp};
use crate::bands::Band;
use crate::dora::{DoraExplain, DoraReport};
use crate::flow::{FlowExplain, FlowReport, StageKind, StageName};

/// Renders DORA reports, one block each, separated by a blank line; the metric tables of
/// all blocks share column widths so services can be compared down the page.
pub fn render_dora(reports: &[DoraReport], color: bool) -> String {
    let tables: Vec<Table> = reports.iter().map(dora_table).collect();
    let widths = Table::shared_widths(&tables);
    let blocks: Vec<String> = reports
        .iter()
        .zip(&tables)
        .map(|(report, table)| {
            let mut out = heading(&report.service, &report.environment, report.from, report.to);
            let _ = writeln!(out, ", bands {}\n", report.bands);
            table.render_with(&mut out, color, &widths);
            if let Some(explain) = &report.explain {
                dora_explain(&mut out, explain, color);
            }
            out
        })
        .collect();
    blocks.join("\n")
}

/// Renders value-stream reports like [`render_dora`]. With `color`, stage kinds are painted
/// (waits yellow, work green), the value stream's counterpart of bands.
pub fn render_flow(reports: &[FlowReport], color: bool) -> String {
    let tables: Vec<Table> = reports.iter().map(flow_table).collect();
    let widths = Table::shared_widths(&tables);
    let blocks: Vec<String> = reports
        .iter()
        .zip(&tables)
        .map(|(report, table)| {
            let mut out = heading(&report.service, &report.environment, report.from, report.to);
            let _ = writeln!(out, ", {}\n", count(report.changes, "change", "changes"));
            table.render_with(&mut out, color, &widths);
            let _ = writeln!(
                out,
                "\n  flow efficiency {}, waiting {}",
                known(report.flow_efficiency, percent),
                known(report.waiting_share, percent),
            );
            if let Some(explain) = &report.explain {
                flow_explain(&mut out, explain, color);
            }
            out
        })
        .collect();
    blocks.join("\n")
}

/// A row per metric: value, band and what it was measured from.
fn dora_table(report: &DoraReport) -> Table {
    let df = &report.deployment_frequency;
    let lt = &report.lead_time;
    let cfr = &report.change_failure_rate;
    let rt = &report.recovery_time;
    let mut table = Table::new(2);
    table.row(["metric", "value", "band", "basis"].map(Cell::from));
    table.row([
        Cell::from("deployment frequency"),
        Cell::from(frequency(df.per_day)),
        band(Some(df.band)),
        Cell::from(format!(
            "{}, {}; {} deploy days a week (median)",
            count(df.deployments, "deployment", "deployments"),
            count(df.failed_attempts, "failed attempt", "failed attempts"),
            decimal(df.deploy_days_per_week_median),
        )),
    ]);
    table.row([
        Cell::from("lead time for changes"),
        Cell::from(known(lt.median_seconds, duration)),
        band(lt.band),
        Cell::from(format!("{}; p90 {}", count(lt.changes, "change", "changes"), known(lt.p90_seconds, duration))),
    ]);
    table.row([
        Cell::from("change failure rate"),
        Cell::from(known(cfr.rate, percent)),
        band(cfr.band),
        Cell::from(format!("{} of {} failed", cfr.failed, count(cfr.deployments, "deployment", "deployments"))),
    ]);
    table.row([
        Cell::from("recovery time"),
        Cell::from(known(rt.median_seconds, duration)),
        band(rt.band),
        Cell::from(format!("{} resolved", count(rt.incidents, "incident", "incidents"))),
    ]);
    table
}

fn dora_explain(out: &mut String, explain: &DoraExplain, color: bool) {
    section(out, "deployments, behind deployment frequency and change failure rate", explain.deployments.len());
    let mut table = Table::new(4);
    if !explain.deployments.is_empty() {
        table.row(["id", "key", "revision", "finished", "failed"]);
    }
    for d in &explain.deployments {
        table.row([
            format!("#{}", d.id),
            d.key.clone(),
            revision(d.revision.as_deref()),
            timestamp(d.finished),
            if d.failed { d.why.join(", ") } else { "no".to_owned() },
        ]);
    }
    table.render(out, color);

    section(out, "failed attempts, not counted as deployments", explain.failed_attempts.len());
    let mut table = Table::new(4);
    if !explain.failed_attempts.is_empty() {
        table.row(["id", "key", "revision", "finished"]);
    }
    for a in &explain.failed_attempts {
        table.row([format!("#{}", a.id), a.key.clone(), revision(a.revision.as_deref()), timestamp(a.finished)]);
    }
    table.render(out, color);

    section(out, "changes, behind lead time", explain.changes.len());
    let mut table = Table::new(4);
    if !explain.changes.is_empty() {
        table.row(["sha", "repository", "committed", "deployment", "lead time"]);
    }
    for c in &explain.changes {
        table.row([
            short_sha(&c.sha).to_owned(),
            c.repository.clone(),
            timestamp(c.commit_time),
            format!("#{}", c.deployment_id),
            duration(c.lead_time_seconds),
        ]);
    }
    table.render(out, color);

    section(out, "incidents, behind recovery time", explain.incidents.len());
    let mut table = Table::new(4);
    if !explain.incidents.is_empty() {
        table.row(["key", "detected", "resolved", "recovery", "deployment"]);
    }
    for i in &explain.incidents {
        table.row([
            i.key.clone(),
            timestamp(i.detected),
            timestamp(i.resolved),
            duration(i.recovery_seconds),
            match i.deployment_id {
                Some(id) => format!("#{id} ({})", attribution(i.attribution)),
                None => UNKNOWN.to_owned(),
            },
        ]);
    }
    table.render(out, color);
}

/// A row per stage: its kind, median and number of samples.
fn flow_table(report: &FlowReport) -> Table {
    let mut table = Table::new(2);
    table.row(["stage", "kind", "median", "samples"].map(Cell::from));
    for stage in &report.stages {
        table.row([
            Cell::from(stage_label(stage.name)),
            kind(stage.kind),
            Cell::from(known(stage.median_seconds, duration)),
            Cell::from(stage.samples.to_string()),
        ]);
    }
    table
}

fn flow_explain(out: &mut String, explain: &FlowExplain, color: bool) {
    section(out, "changes", explain.changes.len());
    let mut table = Table::new(4);
    if !explain.changes.is_empty() {
        table.row(["sha", "deployment", "runs"].into_iter().chain(StageName::ALL.map(stage_column)));
    }
    for c in &explain.changes {
        let fixed = [short_sha(&c.sha).to_owned(), format!("#{}", c.deployment_id), c.pipeline_runs.len().to_string()];
        let stages = StageName::ALL.map(|s| known(c.stages.get(s), duration));
        table.row(fixed.into_iter().chain(stages));
    }
    table.render(out, color);
}

/// `service in environment, from to to UTC (n days)`, without a line end.
fn heading(service: &str, environment: &str, from: jiff::Timestamp, to: jiff::Timestamp) -> String {
    let days = decimal(to.duration_since(from).as_secs_f64() / 86_400.0);
    let unit = if days == "1" { "day" } else { "days" };
    format!("{service} in {environment}, {} to {} UTC ({days} {unit})", timestamp(from), timestamp(to))
}

fn section(out: &mut String, title: &str, items: usize) {
    let _ = writeln!(out, "\n  {title} ({items})");
    if items == 0 {
        out.push_str("    none\n");
    }
}

fn known(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| UNKNOWN.to_owned(), show)
}

fn revision(revision: Option<&str>) -> String {
    revision.map_or_else(|| UNKNOWN.to_owned(), |r| short_sha(r).to_owned())
}

fn band(band: Option<Band>) -> Cell {
    match band {
        Some(band) => {
            // The conventional traffic light, with elite set apart from high.
            let sgr = match band {
                Band::Elite => "1;32",
                Band::High => "32",
                Band::Medium => "33",
                Band::Low => "31",
            };
            Cell::painted(band.as_str(), Some(sgr))
        }
        None => Cell::from(UNKNOWN),
    }
}

/// How an incident was tied to its deployment, in the words of `Attribution`'s JSON.
fn attribution(attribution: Attribution) -> &'static str {
    match attribution {
        Attribution::ExplicitArtifact => "explicit_artifact",
        Attribution::ExplicitCommit => "explicit_commit",
        Attribution::Window => "window",
        Attribution::Unattributed => "unattributed",
    }
}

fn kind(kind: StageKind) -> Cell {
    match kind {
        StageKind::Wait => Cell::painted("wait", Some("33")),
        StageKind::Work => Cell::painted("work", Some("32")),
    }
}

fn stage_label(stage: StageName) -> &'static str {
    match stage {
        StageName::CommitToQueued => "commit → pipeline queued",
        StageName::QueuedToStarted => "pipeline queued → started",
        StageName::StartedToFinished => "pipeline started → finished",
        StageName::FinishedToDeployStarted => "pipeline finished → deploy started",
        StageName::DeployStartedToFinished => "deploy started → finished",
    }
}

/// Short column headings for the per-change table.
fn stage_column(stage: StageName) -> &'static str {
    match stage {
        StageName::CommitToQueued => "to queue",
        StageName::QueuedToStarted => "in queue",
        StageName::StartedToFinished => "pipeline",
        StageName::FinishedToDeployStarted => "to deploy",
        StageName::DeployStartedToFinished => "deploy",
    }
}
