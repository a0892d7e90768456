//! The built-in security gates, `mobius/secret-scan` and `mobius/dependency-audit`: the
//! scanners of `mobius-scan` and `mobius-audit` run by the runner itself, a report written into
//! the workspace (its name is the step's `report` output) and the step failed on findings.
//!
//! A confined job's files are read as its user: the scan runs inside [`JobFiles::as_user`], and
//! the scanner's worker threads, started from that thread, inherit its file-system identity
//! (Linux credentials are per thread and copied to the threads a thread creates).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use mobius_audit::Severity;

use super::actions::InputError;
use crate::artifacts::{JobFiles, StoreError};

/// The output naming which scanner a step was (`secret-scan`, `dependency-audit`): what the
/// server reads from a run's steps to record the scans beside its artifacts.
pub const SCANNER: &str = "mobius-scanner";

/// The inputs of `mobius/secret-scan`.
pub const SECRET_SCAN_INPUTS: &[&str] = &["config", "baseline", "format", "fail"];
/// The inputs `mobius/secret-scan` requires.
pub const SECRET_SCAN_REQUIRED: &[&str] = &[];
/// The inputs of `mobius/dependency-audit`.
pub const DEPENDENCY_AUDIT_INPUTS: &[&str] = &["osv-dir", "paths", "fail-on", "max-age", "format", "fail"];
/// The inputs `mobius/dependency-audit` requires.
pub const DEPENDENCY_AUDIT_REQUIRED: &[&str] = &["osv-dir"];

/// What a gate step did: its outputs, its log lines (secrets masked), whether it fails the
/// step, and the secrets it found (for the job's masker).
#[derive(Debug, Default)]
pub(super) struct GateOutcome {
    pub outputs: BTreeMap<String, String>,
    pub log: Vec<String>,
    pub failed: bool,
    pub secrets: Vec<String>,
}

/// Why a gate could not give an answer; the step fails with the message.
#[derive(Debug, thiserror::Error)]
pub(super) enum GateError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("input `{input}`: {message}")]
    BadValue { input: &'static str, message: String },
    #[error("the secret scan could not run")]
    Scan(#[from] mobius_scan::ScanError),
    #[error("the dependency audit could not run")]
    Audit(#[from] mobius_audit::AuditError),
    #[error("cannot write the report")]
    Report(#[from] StoreError),
    #[error("cannot render the report")]
    Render(#[source] std::io::Error),
}

/// A report format of the gates; SARIF by default, for code-scanning dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportFormat {
    Text,
    Json,
    Sarif,
}

impl ReportFormat {
    fn parse(text: &str) -> Result<ReportFormat, GateError> {
        match text {
            "" | "sarif" => Ok(ReportFormat::Sarif),
            "json" => Ok(ReportFormat::Json),
            "text" => Ok(ReportFormat::Text),
            other => Err(GateError::BadValue {
                input: "format",
                message: format!("`{other}` is not a format (sarif, json or text)"),
            }),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ReportFormat::Text => "txt",
            ReportFormat::Json => "json",
            ReportFormat::Sarif => "sarif",
        }
    }
}

fn input<'a>(with: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    with.get(name).map(|v| v.trim()).unwrap_or("")
}

/// Refuses an input the action does not take (lint refuses it first, at its position).
fn known_inputs(with: &BTreeMap<String, String>, known: &'static [&'static str]) -> Result<(), InputError> {
    match with.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(InputError::Unknown { input: unknown.clone(), known }),
        None => Ok(()),
    }
}

/// `fail`, a boolean as workflow inputs spell it; true when not given.
fn fail_input(with: &BTreeMap<String, String>) -> Result<bool, GateError> {
    match input(with, "fail") {
        "" | "true" => Ok(true),
        "false" => Ok(false),
        other => Err(GateError::BadValue { input: "fail", message: format!("`{other}` is not true or false") }),
    }
}

/// A path input: relative to the workspace.
fn path_in(workspace: &Path, text: &str) -> PathBuf {
    let path = Path::new(text);
    if path.is_absolute() { path.to_path_buf() } else { workspace.join(path) }
}

/// The `before..after` range of a push, when the event has one: a new branch (`before` all
/// zeros) or any other event scans the whole checkout instead.
pub(super) fn push_range(github: &Value) -> Option<String> {
    if github.get("event_name").and_then(Value::as_str) != Some("push") {
        return None;
    }
    let sha = |name: &str| {
        github["event"][name]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0'))
            .map(str::to_owned)
    };
    Some(format!("{}..{}", sha("before")?, sha("after")?))
}

/// `mobius/secret-scan`: the added lines of the push range in `source` (the repository the
/// workspace was copied from), else the workspace.
pub(super) fn secret_scan(
    with: &BTreeMap<String, String>,
    github: &Value,
    source: &Path,
    files: &JobFiles,
) -> Result<GateOutcome, GateError> {
    known_inputs(with, SECRET_SCAN_INPUTS)?;
    let format = ReportFormat::parse(input(with, "format"))?;
    let fail = fail_input(with)?;
    let workspace = &files.workspace;
    let (target, scope) = match push_range(github) {
        Some(range) => {
            let scope = format!("the lines added by {range}");
            (mobius_scan::ScanTarget::GitRange { repo: source.to_path_buf(), range: Some(range) }, scope)
        }
        None => (mobius_scan::ScanTarget::Path(workspace.clone()), "the workspace".to_owned()),
    };
    let mut args = mobius_scan::ScanArgs::new(target);
    args.config = Some(input(with, "config")).filter(|c| !c.is_empty()).map(|c| path_in(workspace, c));
    args.baseline = Some(input(with, "baseline")).filter(|b| !b.is_empty()).map(|b| path_in(workspace, b));
    // A report in the workspace may be uploaded as an artifact: it never holds a secret.
    args.redact = true;
    let (config, outcome) = files.as_user(|| -> Result<_, mobius_scan::ScanError> {
        // `.gitleaks.toml` is looked for in the workspace whatever is scanned: the file a step
        // may have written is the one the job means.
        let config = match &args.config {
            Some(_) => mobius_scan::load_config(&args)?,
            None => {
                let local = workspace.join(mobius_scan::CONFIG_FILE_NAME);
                if local.is_file() { mobius_scan::Config::load(&local)? } else { mobius_scan::Config::default_rules() }
            }
        };
        let outcome = mobius_scan::scan_with_config(config.clone(), &args)?;
        Ok((config, outcome))
    })?;
    let findings = &outcome.findings;

    let mut report = Vec::new();
    match format {
        ReportFormat::Text => mobius_scan::report::write_text(&mut report, findings, false),
        ReportFormat::Json => mobius_scan::report::write_json(&mut report, findings, true),
        ReportFormat::Sarif => mobius_scan::report::write_sarif(&mut report, &config, findings, true),
    }
    .map_err(GateError::Render)?;
    let name = format!("mobius-secret-scan.{}", format.extension());
    files.write(&workspace.join(&name), &report)?;

    let mut gate = GateOutcome::default();
    for finding in findings {
        let commit =
            if finding.commit.is_empty() { String::new() } else { format!(" in commit {:.12}", finding.commit) };
        gate.log.push(format!(
            "{}:{}: {} ({}): {}{commit}",
            finding.file,
            finding.start_line,
            finding.rule_id,
            finding.description,
            mobius_scan::report::mask(&finding.secret),
        ));
        gate.secrets.push(finding.secret.clone());
    }
    let accepted = match (outcome.baselined, outcome.ignored) {
        (0, 0) => String::new(),
        (baselined, ignored) => format!(" ({baselined} in the baseline, {ignored} in .gitleaksignore left out)"),
    };
    gate.log.push(match findings.len() {
        0 => format!("no leaks found in {scope}{accepted}; report: {name}"),
        n => format!("{n} leak(s) found in {scope}{accepted}; report: {name}"),
    });
    gate.failed = fail && !findings.is_empty();
    gate.outputs.insert("report".into(), name);
    gate.outputs.insert("findings".into(), findings.len().to_string());
    // What the server records beside the run's artifacts for the gate policies.
    gate.outputs.insert(SCANNER.into(), "secret-scan".into());
    Ok(gate)
}

/// `mobius/dependency-audit`: the lockfiles under `paths` (the workspace by default) against
/// the OSV database in `osv-dir`.
pub(super) fn dependency_audit(with: &BTreeMap<String, String>, files: &JobFiles) -> Result<GateOutcome, GateError> {
    known_inputs(with, DEPENDENCY_AUDIT_INPUTS)?;
    let format = ReportFormat::parse(input(with, "format"))?;
    let fail = fail_input(with)?;
    let workspace = &files.workspace;
    let osv_dir = match input(with, "osv-dir") {
        "" => return Err(InputError::Missing { input: "osv-dir" }.into()),
        dir => path_in(workspace, dir),
    };
    let mut paths: Vec<PathBuf> = input(with, "paths")
        .split(['\n', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| path_in(workspace, p))
        .collect();
    if paths.is_empty() {
        paths.push(workspace.clone());
    }
    let fail_on = match input(with, "fail-on") {
        "" => None,
        text => Some(
            text.parse::<mobius_audit::Severity>()
                .map_err(|e| GateError::BadValue { input: "fail-on", message: e.to_string() })?,
        ),
    };
    let max_age = match input(with, "max-age") {
        "" => None,
        text => Some(
            mobius_audit::parse_max_age(text)
                .map_err(|e| GateError::BadValue { input: "max-age", message: e.to_string() })?,
        ),
    };
    let args = mobius_audit::AuditArgs {
        paths,
        osv_dir,
        format: match format {
            ReportFormat::Text => mobius_audit::Format::Text,
            ReportFormat::Json => mobius_audit::Format::Json,
            ReportFormat::Sarif => mobius_audit::Format::Sarif,
        },
        output: None,
        max_age,
        fail_on_old: false,
        fail_on,
    };
    let report = files.as_user(|| mobius_audit::run(&args, jiff::Timestamp::now()))?;
    let mut rendered = Vec::new();
    mobius_audit::render(&report, args.format, &mut rendered).map_err(GateError::Render)?;
    let name = format!("mobius-dependency-audit.{}", format.extension());
    files.write(&workspace.join(&name), &rendered)?;

    let mut gate = GateOutcome::default();
    for warning in &report.warnings {
        gate.log.push(format!("warning: {warning}"));
    }
    let relative = |file: &Path| file.strip_prefix(workspace).unwrap_or(file).display().to_string();
    let mut failing = 0;
    for finding in &report.findings {
        let package = &finding.package;
        let severity = finding.severity.map_or("unrated".to_owned(), |s| s.to_string());
        let fixed = finding.fixed.as_deref().map_or(String::new(), |f| format!(", fixed in {f}"));
        gate.log.push(format!(
            "{}:{}: {} {}: {} ({severity}{fixed})",
            relative(&package.source.file),
            package.source.line,
            package.name,
            package.version,
            finding.advisory,
        ));
        failing += usize::from(finding.meets(fail_on));
    }
    let packages = report.package_count();
    let threshold = fail_on.map_or("any severity".to_owned(), |s| format!("{s} or above"));
    gate.log.push(format!(
        "{} vulnerabilit{} in {packages} package(s), {failing} at {threshold}; report: {name}",
        report.findings.len(),
        if report.findings.len() == 1 { "y" } else { "ies" },
    ));
    if packages == 0 {
        // A gate that passes because it found nothing to look at would pass by accident.
        gate.log.push(
            "no lockfile found (Cargo.lock, package-lock.json, requirements*.txt, poetry.lock, go.sum)".to_owned(),
        );
    }
    gate.failed = fail && (failing > 0 || packages == 0);
    gate.outputs.insert("report".into(), name);
    gate.outputs.insert("findings".into(), report.findings.len().to_string());
    // By severity, for the gate policies (a finding without one is counted as critical: it
    // fails every threshold here too).
    gate.outputs.insert(SCANNER.into(), "dependency-audit".into());
    for (band, severity) in [
        ("critical", None),
        ("critical", Some(Severity::Critical)),
        ("high", Some(Severity::High)),
        ("medium", Some(Severity::Medium)),
        ("low", Some(Severity::Low)),
    ] {
        let count = report.findings.iter().filter(|f| f.severity == severity).count();
        let before: usize = gate.outputs.get(band).and_then(|n| n.parse().ok()).unwrap_or(0);
        gate.outputs.insert(band.into(), (before + count).to_string());
    }
    Ok(gate)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_push_with_both_shas_scans_a_range() {
        let check = |github: Value, expected: Option<&str>| {
            assert_eq!(push_range(&github).as_deref(), expected, "{github}");
        };
        let (a, b) = ("1".repeat(40), "2".repeat(40));
        check(json!({"event_name": "push", "event": {"before": a, "after": b}}), Some(&format!("{a}..{b}")));
        check(json!({"event_name": "push", "event": {"before": "0".repeat(40), "after": b}}), None);
        check(json!({"event_name": "push", "event": {}}), None);
        check(json!({"event_name": "push", "event": {"before": a}}), None);
        check(json!({"event_name": "pull_request", "event": {"before": a, "after": b}}), None);
        check(json!({"event_name": "push", "event": {"before": "--all", "after": b}}), None);
    }

    #[test]
    fn inputs_are_checked() {
        let with = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert!(matches!(ReportFormat::parse("xml"), Err(GateError::BadValue { input: "format", .. })));
        assert_eq!(ReportFormat::parse("").unwrap(), ReportFormat::Sarif);
        assert!(fail_input(&with(&[])).unwrap());
        assert!(!fail_input(&with(&[("fail", "false")])).unwrap());
        assert!(fail_input(&with(&[("fail", "no")])).is_err());
        let unknown = known_inputs(&with(&[("confg", "x")]), SECRET_SCAN_INPUTS).unwrap_err();
        assert!(unknown.to_string().contains("unknown input `confg`"), "{unknown}");
    }
}
