//! SARIF 2.1.0 for a [`Report`], in the subset GitHub code scanning reads: one rule per
//! advisory (with `security-severity`, so GitHub treats it as a security rule), one result per
//! affected package located at its lockfile line, and a `partialFingerprints` entry derived from
//! what the finding is (file, package, version, advisory) rather than the line's text, so an
//! alert keeps its identity when the lockfile's lines move.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::report::{Finding, Report, Severity};

/// GitHub shows at most this many characters of a rule's descriptions.
const DESCRIPTION_LIMIT: usize = 1024;

/// The report as a SARIF 2.1.0 log with one run.
pub fn to_sarif(report: &Report) -> Value {
    let mut rules: BTreeMap<&str, &Finding> = BTreeMap::new();
    for finding in &report.findings {
        rules.entry(&finding.advisory).or_insert(finding);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let results: Vec<Value> = report.findings.iter().map(|f| result(f, index[f.advisory.as_str()])).collect();
    let notifications: Vec<Value> =
        report.warnings.iter().map(|w| json!({"level": "warning", "message": {"text": w.to_string()}})).collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mobius-audit",
                "informationUri": "https://osv.dev",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules.values().map(|f| rule(f)).collect::<Vec<_>>(),
            }},
            "invocations": [{"executionSuccessful": true, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    })
}

fn level(severity: Option<Severity>) -> &'static str {
    match severity {
        Some(Severity::Critical | Severity::High) => "error",
        Some(Severity::Medium) | None => "warning",
        Some(Severity::Low) => "note",
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(DESCRIPTION_LIMIT - 1) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn rule(finding: &Finding) -> Value {
    let short = finding.summary.clone().unwrap_or_else(|| finding.advisory.clone());
    let full = finding.details.clone().unwrap_or_else(|| short.clone());
    let mut help = format!("{}: {short}", finding.advisory);
    if !finding.aliases.is_empty() {
        help.push_str(&format!("\nAliases: {}", finding.aliases.join(", ")));
    }
    help.push_str(&format!("\nhttps://osv.dev/vulnerability/{}", finding.advisory));
    let security_severity = finding.score.or(finding.severity.map(Severity::representative_score));
    let mut tags = vec!["security".to_owned(), "vulnerability".to_owned()];
    tags.extend(finding.severity.map(|s| s.to_string()));
    let mut properties = json!({"tags": tags});
    if let Some(score) = security_severity {
        properties["security-severity"] = json!(format!("{score:.1}"));
    }
    json!({
        "id": finding.advisory,
        "shortDescription": {"text": truncate(&short)},
        "fullDescription": {"text": truncate(&full)},
        "help": {"text": help},
        "helpUri": format!("https://osv.dev/vulnerability/{}", finding.advisory),
        "defaultConfiguration": {"level": level(finding.severity)},
        "properties": properties,
    })
}

fn result(finding: &Finding, rule_index: usize) -> Value {
    let package = &finding.package;
    let uri = artifact_uri(&package.source.file);
    let fix = match &finding.fixed {
        Some(fixed) => format!(" Fixed in {fixed}."),
        None => " No fixed version is known.".to_owned(),
    };
    let summary = finding.summary.as_deref().map(|s| format!(": {s}")).unwrap_or_default();
    let identity =
        format!("{}\0{}\0{}\0{}\0{}", uri, package.ecosystem, package.name, package.version, finding.advisory);
    let fingerprint = hex::encode(&Sha256::digest(identity.as_bytes())[..16]);
    json!({
        "ruleId": finding.advisory,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": {"text": format!(
            "{} {} ({}) is affected by {}{summary}.{fix}",
            package.name, package.version, package.ecosystem, finding.advisory
        )},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": package.source.line, "endLine": package.source.line},
        }}],
        "partialFingerprints": {"primaryLocationLineHash": format!("{fingerprint}:1")},
    })
}

/// The URI of a lockfile: relative paths stay relative and `/`-separated (GitHub wants
/// repository-relative ones: give the audit relative paths), absolute ones become `file://`.
fn artifact_uri(path: &std::path::Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("./").unwrap_or(&text);
    let encoded = text.split('/').map(percent_encode).collect::<Vec<_>>().join("/");
    if path.is_absolute() { format!("file://{encoded}") } else { encoded }
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
