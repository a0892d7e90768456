//! `mobius slo status [SERVICE]`: every SLO's error budget, burn rate and alert state;
//! `mobius slo explain SERVICE SLO`: where a budget went; `mobius slo check SERVICE
//! [ENVIRONMENT]`: what the error-budget policy says about a deploy now. Through the
//! reliability interface: the local data directory, or `--server`. `mobius alerts` asks the
//! server, which evaluates them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use mobius_reliability::slo::{Share, SloStatus};
use mobius_slo::policy::Reason;

use super::backend::{self, Backend, Reliability};
use crate::cli::SloCommand;
use crate::output::{print_json, print_table};

pub async fn run(data_dir: Option<&Path>, json: bool, command: SloCommand) -> Result<ExitCode> {
    match command {
        SloCommand::Status { service, remote } => {
            status(Backend::choose(data_dir, &remote, None)?.reliability().as_ref(), json, service.as_deref()).await
        }
        SloCommand::Check { service, environment, reason, remote } => {
            let reliability = Backend::choose(data_dir, &remote, None)?.reliability();
            check(reliability.as_ref(), json, &service, &environment, reason).await
        }
        SloCommand::Explain { service, slo, remote } => {
            explain(Backend::choose(data_dir, &remote, None)?.reliability().as_ref(), json, &service, &slo).await
        }
    }
}

/// `mobius slo status`: a row per SLO.
async fn status(reliability: &dyn Reliability, json: bool, service: Option<&str>) -> Result<ExitCode> {
    let mut statuses = reliability.slos().await?;
    if let Some(service) = service {
        statuses.retain(|s| s.service == service);
    }
    if json {
        print_json(&statuses)?;
        return Ok(ExitCode::SUCCESS);
    }
    if statuses.is_empty() {
        println!("No SLOs. Declare them under `slos:` in a service's mobius.yaml (see `mobius init`).");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 10]> = statuses.iter().map(row).collect();
    let header = [
        "SERVICE",
        "SLO",
        "OBJECTIVE",
        "REQUESTS",
        "BUDGET LEFT",
        "BURN 1h",
        "SPENT IN",
        "LAST 24h",
        "ALERT",
        "POLICY",
    ];
    print_table(0, header, &rows);
    for s in statuses.iter().filter(|s| s.unknown.is_some()) {
        println!("\n{} {}: {}", s.service, s.slo, s.unknown.as_deref().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// `mobius slo explain`: where the budget went.
async fn explain(reliability: &dyn Reliability, json: bool, service: &str, name: &str) -> Result<ExitCode> {
    let explanation = reliability.explain(service, name).await?;
    if json {
        print_json(&explanation)?;
        return Ok(ExitCode::SUCCESS);
    }
    let e = &explanation;
    let total: u64 = e.versions.iter().map(|v| v.requests).sum();
    let bad: u64 = e.versions.iter().map(|v| v.bad).sum();
    println!(
        "{} {} in {}, {} to {}: {bad} bad of {total} requests; the budget allows {:.1}",
        e.service,
        e.slo,
        e.environment,
        e.from.strftime("%Y-%m-%d %H:%M"),
        e.to.strftime("%Y-%m-%d %H:%M UTC"),
        e.allowed_bad
    );
    let table = |title: &str, rows: &[Share]| {
        println!("\n{title:<24} {:>10} {:>8} {:>8}", "REQUESTS", "BAD", "BUDGET");
        for r in rows {
            println!("  {:<22} {:>10} {:>8} {:>7.1}%", r.name, r.requests, r.bad, r.budget_share * 100.0);
        }
    };
    table("BY VERSION", &e.versions);
    if !e.days.is_empty() {
        table("BY DAY (with bad ones)", &e.days);
    }
    if !e.incidents.is_empty() {
        println!("\nINCIDENTS");
        for i in &e.incidents {
            let short = i.key.rsplit('#').next().unwrap_or(&i.key);
            let resolved = i.resolved.map_or_else(|| "open".to_owned(), |t| t.strftime("%H:%M").to_string());
            println!(
                "  {short:<22} {} → {resolved}  {} bad, {:.1}% of the budget  {}",
                i.detected.strftime("%Y-%m-%d %H:%M"),
                i.bad,
                i.budget_share * 100.0,
                i.title
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mobius slo check`: prints the policy's answer; exit status 1 when it refuses.
async fn check(
    reliability: &dyn Reliability,
    json: bool,
    service: &str,
    environment: &str,
    reason: Option<Reason>,
) -> Result<ExitCode> {
    let answer = reliability.check(service, environment, reason).await?;
    if json {
        print_json(&answer)?;
    } else {
        let verdict = match answer.decision.as_str() {
            "refuse" => "be refused",
            "warn" => "go ahead, with a warning",
            "exception" => "go ahead as an exception to the policy",
            _ => "go ahead",
        };
        println!("A deploy of {} to {} would {verdict}.", answer.service, answer.environment);
        if let Some(message) = &answer.message {
            println!("{message}");
        }
    }
    Ok(if answer.allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn row(s: &SloStatus) -> [String; 10] {
    let days = s.window_s as f64 / 86_400.0;
    let objective = format!("{}% / {}d", s.objective, days);
    let (requests, left) = match &s.budget {
        Some(b) => {
            let minutes = b.remaining_time_s / 60.0;
            (format!("{} ({} bad)", b.total, b.bad), format!("{:.1}% ({minutes:.1} min)", b.remaining * 100.0))
        }
        None => ("—".to_owned(), "unknown".to_owned()),
    };
    let burn = s.burn_rates.iter().find(|(w, _)| w == "1h").map_or_else(|| "—".to_owned(), |(_, b)| format!("{b:.2}"));
    let alert = match s.alert {
        Some(severity) => format!("{severity:?}").to_lowercase(),
        None => "—".to_owned(),
    };
    [
        s.service.clone(),
        s.slo.clone(),
        objective,
        requests,
        left,
        burn,
        s.exhausted_in_s.map_or_else(|| "—".to_owned(), duration),
        sparkline(&s.hourly_error_ratios),
        alert,
        s.policy.to_string(),
    ]
}

/// `now`, `40 min`, `9.5 h`, `12.3 d`.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s <= 0.0 => "now".to_owned(),
        s if s < 3_600.0 => format!("{:.0} min", s / 60.0),
        s if s < 2.0 * 86_400.0 => format!("{:.1} h", s / 3_600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

/// `▁▂▃▅█`: each value scaled to the largest; all-zero is a flat line.
fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    values
        .iter()
        .map(|v| if max <= 0.0 { BARS[0] } else { BARS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize] })
        .collect()
}

/// `mobius alerts`: the server evaluates alerts, so this asks it.
pub async fn alerts(data_dir: Option<&Path>, json: bool, args: crate::cli::AlertsArgs) -> Result<ExitCode> {
    let views = backend::server(data_dir, &args.remote)?.alerts().await?;
    if json {
        print_json(&views)?;
    } else if views.is_empty() {
        println!("No SLO evaluated yet (the server evaluates them every 30 s, MOBIUS_ALERT_EVERY).");
    } else {
        for v in &views {
            let state = match (v.firing, v.pending) {
                (Some(firing), _) => format!("{firing:?}").to_uppercase(),
                (None, Some(pending)) => format!("pending {}", format!("{pending:?}").to_lowercase()),
                (None, None) => "ok".to_owned(),
            };
            let since = v.since.map(|t| t.strftime(" since %Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
            let incident = v.incident.as_ref().map(|i| format!("  incident {i}")).unwrap_or_default();
            println!("{:<6} {} {}{since}{incident}", state, v.service, v.slo);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_largest_value() {
        assert_eq!(sparkline(&[0.0, 0.5, 1.0]), "▁▅█");
        assert_eq!(sparkline(&[0.0, 0.0]), "▁▁");
    }
}
