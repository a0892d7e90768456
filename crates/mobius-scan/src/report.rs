//! Reports: text for a terminal, gitleaks' JSON, and SARIF 2.1.0.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::config::Config;
use crate::detect::Finding;
use crate::sarif;

/// What replaces a secret when the report is redacted (gitleaks' `--redact`).
pub const REDACTED: &str = "REDACTED";
/// Characters of a secret the terminal report keeps before masking the rest.
const VISIBLE_PREFIX: usize = 4;

/// `secret` with all but its first few characters replaced by `*`.
pub fn mask(secret: &str) -> String {
    let count = secret.chars().count();
    let keep = if count <= VISIBLE_PREFIX * 2 { count / 4 } else { VISIBLE_PREFIX };
    secret.chars().take(keep).chain(std::iter::repeat_n('*', count - keep)).collect()
}

/// The finding as gitleaks' `--redact` writes it: the secret replaced, in Match too.
pub fn redact(finding: &Finding) -> Finding {
    let mut redacted = finding.clone();
    if !finding.secret.is_empty() {
        redacted.matched = finding.matched.replace(&finding.secret, REDACTED);
        redacted.secret = REDACTED.to_string();
    }
    redacted
}

/// Writes the findings for a terminal, secrets masked; ANSI colour only when `color`.
pub fn write_text(out: &mut dyn Write, findings: &[Finding], color: bool) -> io::Result<()> {
    let paint = |code: &str, text: &str| if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() };
    for finding in findings {
        let masked_secret = mask(&finding.secret);
        let masked_match = finding.matched.replace(&finding.secret, &masked_secret);
        writeln!(out, "{}  {}", paint("1;31", "Finding:"), masked_match.trim_end())?;
        writeln!(out, "Secret:      {}", paint("33", &masked_secret))?;
        writeln!(out, "RuleID:      {}", finding.rule_id)?;
        writeln!(out, "Entropy:     {:.6}", finding.entropy)?;
        writeln!(out, "File:        {}", finding.file)?;
        writeln!(out, "Line:        {}", finding.start_line)?;
        if !finding.commit.is_empty() {
            writeln!(out, "Commit:      {}", finding.commit)?;
            writeln!(out, "Author:      {}", finding.author)?;
            writeln!(out, "Email:       {}", finding.email)?;
            writeln!(out, "Date:        {}", finding.date)?;
        }
        writeln!(out, "Fingerprint: {}", finding.fingerprint)?;
        writeln!(out)?;
    }
    let summary = match findings.len() {
        0 => "no leaks found".to_string(),
        1 => "1 leak found".to_string(),
        n => format!("{n} leaks found"),
    };
    writeln!(out, "{}", if findings.is_empty() { paint("32", &summary) } else { paint("1;31", &summary) })
}

/// Writes gitleaks' JSON report (an array of findings).
pub fn write_json(out: &mut dyn Write, findings: &[Finding], redact_secrets: bool) -> io::Result<()> {
    let findings: Vec<Finding> = if redact_secrets { findings.iter().map(redact).collect() } else { findings.to_vec() };
    serde_json::to_writer_pretty(&mut *out, &findings)?;
    writeln!(out)
}

/// Writes a SARIF 2.1.0 log: every rule of the config, one result per finding.
pub fn write_sarif(out: &mut dyn Write, config: &Config, findings: &[Finding], redact_secrets: bool) -> io::Result<()> {
    let tool = sarif::Tool {
        name: "mobius-scan".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        information_uri: None,
    };
    let rules: Vec<sarif::Rule> = config
        .rules
        .iter()
        .map(|rule| sarif::Rule {
            id: rule.id.clone(),
            short_description: if rule.description.is_empty() { rule.id.clone() } else { rule.description.clone() },
            full_description: String::new(),
            help: format!(
                "Revoke and rotate the credential, remove it from the file (and history), or allowlist it \
                 with a `gitleaks:allow` comment if it is not a secret. Rule: {}.",
                rule.id
            ),
            tags: rule.tags.clone(),
            security_severity: Some(8.0),
        })
        .collect();
    let results: Vec<sarif::Result> = findings
        .iter()
        .map(|finding| {
            let shown = if redact_secrets { redact(finding) } else { finding.clone() };
            let mut fingerprints = BTreeMap::new();
            fingerprints.insert("secretFingerprint/v1".to_string(), finding.fingerprint.clone());
            if !finding.commit.is_empty() {
                fingerprints.insert("commitSha".to_string(), finding.commit.clone());
                fingerprints.insert("author".to_string(), finding.author.clone());
                fingerprints.insert("email".to_string(), finding.email.clone());
                fingerprints.insert("date".to_string(), finding.date.clone());
                fingerprints.insert("commitMessage".to_string(), finding.message.clone());
            }
            sarif::Result {
                rule_id: finding.rule_id.clone(),
                level: sarif::Level::Error,
                message: format!("{} has detected secret for file {}.", finding.rule_id, finding.file),
                location: sarif::Location {
                    uri: finding.file.clone(),
                    start_line: finding.start_line,
                    start_column: finding.start_column,
                    end_line: finding.end_line,
                    // gitleaks' EndColumn is the last byte; SARIF's is the one after it.
                    end_column: finding.end_column + 1,
                    snippet: Some(shown.secret),
                },
                fingerprints,
                tags: finding.tags.clone(),
            }
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &sarif::log(&tool, &rules, &results))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_a_short_prefix() {
        assert_eq!(mask("ghp_abcdefghijklmnop"), "ghp_****************");
        assert_eq!(mask("abcdefgh"), "ab******");
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask("ébcdefghij"), "ébcd******");
        assert_eq!(mask(""), "");
    }
}
