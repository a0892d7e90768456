//! A blameless post-mortem draft in the shape of the Google SRE template: summary, impact,
//! detection, the change the incident is attributed to, resolution, a UTC timeline from the
//! event log, and the sections only people can write (root causes, action items, lessons
//! learned) left as prompts. It names changes and systems, never people: commits appear with
//! their message, not their author.

// Writing to a `String` cannot fail: the `fmt::Result` of each `write!` below is ignored.
use std::fmt::Write;

use jiff::Timestamp;
use mobius_events::facts::{Attribution, Deployment, Incident, ShippedChange};
use serde::{Deserialize, Serialize};

/// An incident that consumed more of an error budget than this requires a post-mortem.
pub const REQUIRED_ABOVE: f64 = 0.2;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moment {
    pub at: Timestamp,
    pub what: String,
}

/// What the incident cost, as far as it was measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// Requests the service's proxy answered with 5xx during the incident, and all it answered.
    pub failed_requests: Option<(u64, u64)>,
    /// Fraction of an SLO's error budget the incident consumed, with the SLO's name.
    pub budget_consumed: Option<(String, f64)>,
}

/// Everything the draft is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub incident: Incident,
    /// The deployment the incident is attributed to.
    pub deployment: Option<Deployment>,
    /// The changes that deployment shipped first.
    pub changes: Vec<ShippedChange>,
    pub impact: Impact,
    /// Who or what detected it (the incident event's source), e.g. `/mobius/deploy/shop`.
    pub detected_by: Option<String>,
    pub timeline: Vec<Moment>,
    /// The latest change to a flag set of the incident's environment shortly before it was
    /// detected — a release of code that shipped dark is a change like a deployment. `None`
    /// when the incident names its change explicitly (an explicit link wins).
    #[serde(default)]
    pub flag_change: Option<FlagChange>,
}

/// A flag set's change as a post-mortem names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagChange {
    pub at: Timestamp,
    pub set: String,
    /// The flag a one-flag change was about.
    pub flag: Option<String>,
    /// `loaded`, `state`, `default`, `split` or `deleted`.
    pub action: String,
    /// Who made it (a token's name, `cli`, `rollout:<who started it>`, the deployer).
    pub by: String,
    pub reason: Option<String>,
}

impl FlagChange {
    /// One line: `flag checkout of set shop.production (split): rollout of checkout=on to 50%: 20%, by rollout:bob`.
    pub fn describe(&self) -> String {
        let what = match &self.flag {
            Some(flag) => format!("flag `{flag}` of set `{}`", self.set),
            None => format!("flag set `{}`", self.set),
        };
        let why = self.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        format!("{what} changed ({}){why}, by {}", self.action, self.by)
    }
}

/// The Markdown draft.
pub fn render(d: &Draft) -> String {
    let i = &d.incident;
    let mut out = String::new();
    let utc = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let _ = writeln!(out, "# Post-mortem: {}\n", i.title);
    let state = if i.resolved.is_some() { "resolved" } else { "ongoing" };
    let _ = writeln!(
        out,
        "**Status:** draft, incident {state}. Blameless: this describes what happened and what the system allowed, not who did what.\n"
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| incident | `{}` |", i.key);
    let _ = writeln!(out, "| service | `{}` in `{}` |", i.service, i.environment);
    if let Some(severity) = &i.severity {
        let _ = writeln!(out, "| severity | {severity} |");
    }
    let _ = writeln!(out, "| detected | {} |", utc(i.detected));
    if let Some(at) = i.acknowledged {
        let _ = writeln!(out, "| acknowledged | {} |", utc(at));
    }
    match i.resolved {
        Some(at) => {
            let _ = writeln!(out, "| resolved | {} |", utc(at));
            let _ = writeln!(out, "| duration | {} |", span(at.duration_since(i.detected).as_secs_f64()));
        }
        None => {
            let _ = writeln!(out, "| resolved | not yet |");
        }
    }

    let _ = writeln!(out, "\n## Summary\n");
    let title = i.title.trim_end_matches('.');
    let mut chars = title.chars();
    let sentence: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    let _ = write!(out, "{sentence}.");
    if let Some(dep) = &d.deployment {
        let _ = write!(
            out,
            " It is attributed to the deployment of {} to `{}` finished {} ({}).",
            artifact(dep),
            dep.environment,
            utc(dep.finished),
            rule(i.attribution)
        );
    }
    if let Some(change) = &d.flag_change {
        let _ = write!(out, " A flag change shortly before detection is a suspect: {}.", change.describe());
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "\n## Impact\n");
    match i.resolved {
        Some(at) => {
            let _ = writeln!(out, "- Duration: {}.", span(at.duration_since(i.detected).as_secs_f64()));
        }
        None => {
            let _ = writeln!(out, "- Duration: ongoing.");
        }
    }
    match d.impact.failed_requests {
        Some((failed, total)) if total > 0 => {
            let share = failed as f64 * 100.0 / total as f64;
            let _ = writeln!(
                out,
                "- Failed requests: {failed} of {total} ({share:.2}%) answered by the service's proxy from 5 minutes before detection to the end."
            );
        }
        _ => {
            let _ = writeln!(out, "- Failed requests: not measured (no traffic through Mobius's proxy in that time).");
        }
    }
    match &d.impact.budget_consumed {
        Some((slo, fraction)) => {
            let _ = writeln!(out, "- Error budget consumed: {:.1}% of SLO `{slo}`.", fraction * 100.0);
            if *fraction > REQUIRED_ABOVE {
                let _ = writeln!(
                    out,
                    "- **A post-mortem is required**: the incident consumed more than {:.0}% of the error budget.",
                    REQUIRED_ABOVE * 100.0
                );
            }
        }
        None => {
            let _ = writeln!(out, "- Error budget consumed: no SLO is defined for the service.");
        }
    }

    let _ = writeln!(out, "\n## Detection\n");
    let _ = writeln!(
        out,
        "{}",
        match d.detected_by.as_deref() {
            Some(source) if source.starts_with("/mobius/deploy/") => {
                "Detected by Mobius's canary analysis, which judged the new version on its own requests and rolled it back automatically.".to_owned()
            }
            Some(source) => format!("Reported by `{source}`."),
            None => "_How was it detected? Add it here._".to_owned(),
        }
    );

    let _ = writeln!(out, "\n## Trigger: the change\n");
    match &d.deployment {
        Some(dep) => {
            let _ = writeln!(
                out,
                "Deployment of {} to `{}` (started {}, finished {}).",
                artifact(dep),
                dep.environment,
                utc(dep.started),
                utc(dep.finished)
            );
            if d.changes.is_empty() {
                let _ = writeln!(out, "\nNo commits are recorded for it.");
            } else {
                let _ = writeln!(out, "\nCommits it shipped first:\n");
                for c in &d.changes {
                    let sha: String = c.sha.chars().take(10).collect();
                    let _ = writeln!(out, "- `{sha}` {} ({})", c.message, c.repository);
                }
            }
        }
        None if d.flag_change.is_none() => {
            let _ = writeln!(out, "Not attributed to a deployment. _What changed? Add it here._");
        }
        None => {
            let _ = writeln!(out, "Not attributed to a deployment.");
        }
    }
    if let Some(change) = &d.flag_change {
        let _ = writeln!(out, "\nSuspect flag change at {}: {}.", utc(change.at), change.describe());
    }

    let _ = writeln!(out, "\n## Resolution\n");
    let resolution = d
        .timeline
        .iter()
        .rev()
        .find(|m| m.what.starts_with("rolled back"))
        .or_else(|| d.timeline.iter().rev().find(|m| m.what.starts_with("incident resolved")));
    let _ = writeln!(
        out,
        "{}",
        match (i.resolved, resolution) {
            (Some(at), Some(m)) => format!("Resolved {}: {}.", utc(at), m.what),
            (Some(at), None) => format!("Resolved {}. _How? Add it here._", utc(at)),
            (None, _) => "Not resolved yet.".to_owned(),
        }
    );

    let _ = writeln!(out, "\n## Timeline (UTC)\n");
    if d.timeline.is_empty() {
        let _ = writeln!(out, "_No events recorded around the incident._");
    } else {
        let _ = writeln!(out, "| time | what happened |\n|---|---|");
        for m in &d.timeline {
            let _ = writeln!(out, "| {} | {} |", m.at.strftime("%Y-%m-%d %H:%M:%S"), m.what.replace('|', "\\|"));
        }
    }

    let _ = writeln!(out, "\n## Root causes\n");
    let _ = writeln!(
        out,
        "_What conditions allowed this to happen? Ask \"why\" until the answer is a system or a process, not a person._"
    );
    let _ = writeln!(out, "\n## Action items\n");
    let _ = writeln!(
        out,
        "| action | type (mitigate / prevent / process) | owner | tracking |\n|---|---|---|---|\n| | | | |"
    );
    let _ = writeln!(out, "\n## Lessons learned\n");
    let _ = writeln!(out, "### What went well\n\n_…_\n\n### What went wrong\n\n_…_\n\n### Where we got lucky\n\n_…_");
    out
}

fn artifact(dep: &Deployment) -> String {
    match (&dep.artifact_id, &dep.revision) {
        (Some(a), Some(r)) => format!("`{a}` (commit `{}`)", r.chars().take(10).collect::<String>()),
        (Some(a), None) => format!("`{a}`"),
        (None, Some(r)) => format!("commit `{}`", r.chars().take(10).collect::<String>()),
        (None, None) => format!("deployment {}", dep.id),
    }
}

fn rule(a: Attribution) -> &'static str {
    match a {
        Attribution::ExplicitArtifact => "the incident names its artifact",
        Attribution::ExplicitCommit => "the incident names one of its commits",
        Attribution::Window => "the latest deployment before detection, within the attribution window",
        Attribution::Unattributed => "unattributed",
    }
}

/// `1 h 5 min`, `3 min 20 s`, `12 s`.
fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use mobius_events::facts::{ChangeSource, DeploymentOutcome};

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The whole draft for a rollback incident, as a snapshot (`src/postmortem/rollback.md`):
    /// a change in wording shows here.
    #[test]
    fn a_rollback_incident_draft() {
        let deployment = Deployment {
            id: 7,
            key: "cdevents:/mobius/deploy/shop/rollout:3:attempt".into(),
            service: "shop".into(),
            environment: "production".into(),
            repository: Some("acme/shop".into()),
            revision: Some("a919b225ff00aa".into()),
            artifact_id: Some("pkg:generic/shop@sha256%3A52878bf7".into()),
            started: at("2026-11-26T05:11:53Z"),
            finished: at("2026-11-26T05:11:53Z"),
            outcome: DeploymentOutcome::Success,
            rolled_back: Some(at("2026-11-26T05:11:55Z")),
            changes_from: ChangeSource::GitAncestry,
        };
        let draft = Draft {
            incident: Incident {
                key: "cdevents:/mobius/deploy/shop#rollout-3".into(),
                service: "shop".into(),
                environment: "production".into(),
                title: "automatic rollback of shop in production: analysis failed".into(),
                detected: at("2026-11-26T05:11:53Z"),
                acknowledged: None,
                resolved: Some(at("2026-11-26T05:11:55Z")),
                deployment_id: Some(7),
                attribution: Attribution::ExplicitArtifact,
                severity: Some("sev3".into()),
            },
            changes: vec![ShippedChange {
                repository: "acme/shop".into(),
                sha: "a919b225ff00aa".into(),
                commit_time: at("2026-11-26T05:11:50Z"),
                author_time: None,
                message: "Release v3".into(),
                deployment_id: 7,
            }],
            deployment: Some(deployment),
            impact: Impact { failed_requests: Some((10, 1534)), budget_consumed: None },
            detected_by: Some("/mobius/deploy/shop".into()),
            timeline: vec![
                Moment { at: at("2026-11-26T05:11:53Z"), what: "weight 20% to v3".into() },
                Moment { at: at("2026-11-26T05:11:55Z"), what: "rolled back to v2".into() },
            ],
            flag_change: None,
        };
        let text = render(&draft);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/postmortem/rollback.md");
        if std::env::var_os("MOBIUS_WRITE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(text == expected, "the draft changed; if on purpose, rerun with MOBIUS_WRITE_SNAPSHOTS=1:\n{text}");
    }

    #[test]
    fn spans() {
        assert_eq!(span(12.4), "12 s");
        assert_eq!(span(200.0), "3 min 20 s");
        assert_eq!(span(3900.0), "1 h 5 min");
    }

    /// An incident no deployment explains, a flag rollout's step shortly before it: the step is
    /// named in the summary and as the trigger (`src/postmortem/flag_change.md`).
    #[test]
    fn an_incident_after_a_flag_change_names_it_as_a_suspect() {
        let change = FlagChange {
            at: at("2026-12-07T10:20:00Z"),
            set: "shop.production".into(),
            flag: Some("checkout".into()),
            action: "split".into(),
            by: "rollout:bob".into(),
            reason: Some("rollout of checkout=on to 50%: 30%".into()),
        };
        let draft = Draft {
            incident: Incident {
                key: "cdevents:/mobius/slo/shop#availability-1".into(),
                service: "shop".into(),
                environment: "production".into(),
                title: "shop availability is burning its error budget".into(),
                detected: at("2026-12-07T10:24:00Z"),
                acknowledged: None,
                resolved: None,
                deployment_id: None,
                attribution: Attribution::Unattributed,
                severity: Some("page".into()),
            },
            changes: Vec::new(),
            deployment: None,
            impact: Impact::default(),
            detected_by: Some("/mobius/slo/shop".into()),
            timeline: vec![Moment { at: change.at, what: change.describe() }],
            flag_change: Some(change),
        };
        let text = render(&draft);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/postmortem/flag_change.md");
        if std::env::var_os("MOBIUS_WRITE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        assert!(text.contains("A flag change shortly before detection is a suspect: flag `checkout` of set `shop.production` changed (split): rollout of checkout=on to 50%: 30%, by rollout:bob."), "{text}");
        assert!(
            text.contains("Not attributed to a deployment.\n\nSuspect flag change at 2026-12-07 10:20:00 UTC"),
            "{text}"
        );
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(text == expected, "the draft changed; if on purpose, rerun with MOBIUS_WRITE_SNAPSHOTS=1:\n{text}");
    }
}
