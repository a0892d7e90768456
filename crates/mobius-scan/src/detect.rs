//! The detector: rules and allowlists applied to one fragment of text.
//!
//! A fragment is a whole file (directory scans) or the added lines of one diff hunk (git
//! scans). For each fragment: global path and commit allowlists first, then one
//! case-insensitive keyword pass (Aho-Corasick) that picks the rules worth running, then each
//! picked rule's regex, secret group, entropy, inline `gitleaks:allow` and allowlists.

use std::cell::OnceCell;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use crate::config::{Allowlist, Condition, Config, RegexTarget, Rule};

/// The marker that suppresses findings on its line.
pub const INLINE_ALLOW: &str = "gitleaks:allow";

/// Where a git fragment comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full SHA.
    pub sha: String,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Author date, ISO 8601.
    pub date: String,
    /// Commit message.
    pub message: String,
}

/// Text to scan and where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// The content.
    pub raw: &'a [u8],
    /// The file path (repository-relative for git scans).
    pub path: &'a str,
    /// The line number of the fragment's first line in the file (1-based).
    pub start_line: usize,
    /// The commit, for git scans.
    pub commit: Option<&'a CommitInfo>,
    /// Whether path-only rules may fire on this fragment (once per file and commit).
    pub first_of_file: bool,
}

/// A secret found, with gitleaks' report field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's description.
    #[serde(rename = "Description")]
    pub description: String,
    /// 1-based line of the match's start.
    #[serde(rename = "StartLine")]
    pub start_line: usize,
    /// 1-based line of the match's end.
    #[serde(rename = "EndLine")]
    pub end_line: usize,
    /// 1-based byte column of the match's first byte.
    #[serde(rename = "StartColumn")]
    pub start_column: usize,
    /// 1-based byte column of the match's last byte.
    #[serde(rename = "EndColumn")]
    pub end_column: usize,
    /// The whole regex match.
    #[serde(rename = "Match")]
    pub matched: String,
    /// The secret (the rule's secret group).
    #[serde(rename = "Secret")]
    pub secret: String,
    /// The file.
    #[serde(rename = "File")]
    pub file: String,
    /// The symlink the file was reached through (symlinks are not followed, so empty).
    #[serde(rename = "SymlinkFile", default)]
    pub symlink_file: String,
    /// The commit SHA (git scans).
    #[serde(rename = "Commit", default)]
    pub commit: String,
    /// Shannon entropy of the secret.
    #[serde(rename = "Entropy", default)]
    pub entropy: f32,
    /// Commit author.
    #[serde(rename = "Author", default)]
    pub author: String,
    /// Commit author's email.
    #[serde(rename = "Email", default)]
    pub email: String,
    /// Commit date.
    #[serde(rename = "Date", default)]
    pub date: String,
    /// Commit message.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// The rule's tags.
    #[serde(rename = "Tags", default)]
    pub tags: Vec<String>,
    /// The rule's id.
    #[serde(rename = "RuleID")]
    pub rule_id: String,
    /// `commit:file:rule:line` in git scans, `file:rule:line` otherwise (gitleaks').
    #[serde(rename = "Fingerprint", default)]
    pub fingerprint: String,
}

/// Rules compiled with their keyword prefilter.
#[derive(Debug, Clone)]
pub struct Detector {
    config: Config,
    /// Every keyword of every rule, matched case-insensitively.
    keywords: Option<AhoCorasick>,
    /// For each keyword pattern, the rules that list it.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: they always run.
    unfiltered: Vec<usize>,
}

impl Detector {
    /// Prepares a config for scanning.
    pub fn new(config: Config) -> Detector {
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut unfiltered = Vec::new();
        for (index, rule) in config.rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                unfiltered.push(index);
            }
            for keyword in &rule.keywords {
                match patterns.iter().position(|p| p == keyword) {
                    Some(at) => keyword_rules[at].push(index),
                    None => {
                        patterns.push(keyword.clone());
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        let keywords = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .expect("keywords are plain literals")
        });
        Detector { config, keywords, keyword_rules, unfiltered }
    }

    /// The config this detector runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a global allowlist skips this whole path (so the file need not be read).
    pub fn path_is_allowlisted(&self, path: &str) -> bool {
        self.config.allowlists.iter().any(|global| {
            let a = &global.allowlist;
            global.target_rules.is_empty()
                && !a.paths.is_empty()
                && (a.condition == Condition::Or
                    || (a.commits.is_empty() && a.regexes.is_empty() && a.stopwords.is_empty()))
                && a.paths.iter().any(|p| p.is_match(path.as_bytes()))
        })
    }

    /// Whether a global allowlist skips this whole commit.
    fn commit_is_allowlisted(&self, sha: &str) -> bool {
        self.config.allowlists.iter().any(|global| {
            let a = &global.allowlist;
            global.target_rules.is_empty()
                && (a.condition == Condition::Or
                    || (a.paths.is_empty() && a.regexes.is_empty() && a.stopwords.is_empty()))
                && a.commits.iter().any(|c| c == sha)
        })
    }

    /// The findings in one fragment, in rule order then position.
    pub fn detect(&self, fragment: &Fragment<'_>) -> Vec<Finding> {
        if self.path_is_allowlisted(fragment.path)
            || fragment.commit.is_some_and(|c| self.commit_is_allowlisted(&c.sha))
        {
            return Vec::new();
        }
        let mut selected = vec![false; self.config.rules.len()];
        for &index in &self.unfiltered {
            selected[index] = true;
        }
        if let Some(keywords) = &self.keywords {
            for found in keywords.find_overlapping_iter(fragment.raw) {
                for &index in &self.keyword_rules[found.pattern().as_usize()] {
                    selected[index] = true;
                }
            }
        }
        let mut findings = Vec::new();
        // Built on the first match only: most fragments have none.
        let lines = OnceCell::new();
        for (index, rule) in self.config.rules.iter().enumerate() {
            if selected[index] {
                self.detect_rule(rule, fragment, &lines, &mut findings);
            }
        }
        drop_generic_duplicates(&mut findings);
        findings
    }

    fn detect_rule(&self, rule: &Rule, fragment: &Fragment<'_>, lines: &OnceCell<LineIndex>, out: &mut Vec<Finding>) {
        if let Some(path) = &rule.path
            && !path.is_match(fragment.path.as_bytes())
        {
            return;
        }
        let Some(regex) = &rule.regex else {
            if fragment.first_of_file {
                let mut finding = self.finding(rule, fragment, String::new(), String::new());
                finding.matched = format!("file detected: {}", fragment.path);
                if !self.is_allowlisted(rule, fragment, &finding, "") {
                    out.push(finding);
                }
            }
            return;
        };
        for captures in regex.captures_iter(fragment.raw) {
            let whole = captures.get(0).expect("group 0 always matches");
            let secret = if rule.secret_group > 0 {
                captures.get(rule.secret_group).map_or(&[][..], |m| m.as_bytes())
            } else {
                captures
                    .iter()
                    .skip(1)
                    .flatten()
                    .map(|m| m.as_bytes())
                    .find(|s| !s.is_empty())
                    .unwrap_or(whole.as_bytes())
            };
            if secret.is_empty() {
                continue;
            }
            let secret = String::from_utf8_lossy(secret).into_owned();
            let entropy = shannon_entropy(&secret);
            if rule.entropy > 0.0 && entropy <= rule.entropy {
                continue;
            }
            let (start, end) = (whole.start(), whole.end());
            let lines = lines.get_or_init(|| LineIndex::new(fragment.raw));
            let line_span = lines.line_span(start, end);
            let line_text = &fragment.raw[line_span.clone()];
            if contains_bytes(line_text, INLINE_ALLOW.as_bytes()) {
                continue;
            }
            let mut finding =
                self.finding(rule, fragment, String::from_utf8_lossy(whole.as_bytes()).into_owned(), secret);
            finding.entropy = entropy as f32;
            let (start_line, start_column) = lines.position(start);
            let (end_line, end_column) = lines.position(end.saturating_sub(1).max(start));
            finding.start_line = fragment.start_line + start_line;
            finding.end_line = fragment.start_line + end_line;
            finding.start_column = start_column;
            finding.end_column = end_column;
            finding.fingerprint = fingerprint(&finding);
            let line = String::from_utf8_lossy(line_text);
            if !self.is_allowlisted(rule, fragment, &finding, &line) {
                out.push(finding);
            }
        }
    }

    fn finding(&self, rule: &Rule, fragment: &Fragment<'_>, matched: String, secret: String) -> Finding {
        let commit = fragment.commit.cloned().unwrap_or_default();
        let mut finding = Finding {
            description: rule.description.clone(),
            start_line: fragment.start_line,
            end_line: fragment.start_line,
            start_column: 0,
            end_column: 0,
            matched,
            secret,
            file: fragment.path.to_string(),
            symlink_file: String::new(),
            commit: commit.sha,
            entropy: 0.0,
            author: commit.author,
            email: commit.email,
            date: commit.date,
            message: commit.message,
            tags: rule.tags.clone(),
            rule_id: rule.id.clone(),
            fingerprint: String::new(),
        };
        finding.fingerprint = fingerprint(&finding);
        finding
    }

    fn is_allowlisted(&self, rule: &Rule, fragment: &Fragment<'_>, finding: &Finding, line: &str) -> bool {
        let globals = self
            .config
            .allowlists
            .iter()
            .filter(|g| g.target_rules.is_empty() || g.target_rules.contains(&rule.id))
            .map(|g| &g.allowlist);
        rule.allowlists.iter().chain(globals).any(|a| allows(a, fragment, finding, line))
    }
}

/// A generic rule's finding is dropped where a specific rule found the same secret on the same
/// line (`token = "ghp_…"` is a GitHub token, reported once).
fn drop_generic_duplicates(findings: &mut Vec<Finding>) {
    let is_generic = |f: &Finding| f.rule_id.starts_with("generic");
    if findings.iter().all(|f| !is_generic(f)) {
        return;
    }
    let specific: Vec<(usize, String)> =
        findings.iter().filter(|f| !is_generic(f)).map(|f| (f.start_line, f.secret.clone())).collect();
    findings.retain(|f| {
        !is_generic(f)
            || !specific.iter().any(|(line, secret)| {
                *line == f.start_line && (secret.contains(f.secret.as_str()) || f.secret.contains(secret.as_str()))
            })
    });
}

/// Whether an allowlist allows a finding (gitleaks' OR/AND semantics: with AND, every
/// criterion the allowlist has must hold).
fn allows(allowlist: &Allowlist, fragment: &Fragment<'_>, finding: &Finding, line: &str) -> bool {
    let commit = fragment.commit.map_or("", |c| c.sha.as_str());
    let mut checks: Vec<bool> = Vec::with_capacity(4);
    if !allowlist.commits.is_empty() {
        checks.push(!commit.is_empty() && allowlist.commits.iter().any(|c| c == commit));
    }
    if !allowlist.paths.is_empty() {
        checks.push(allowlist.paths.iter().any(|p| p.is_match(fragment.path.as_bytes())));
    }
    if !allowlist.regexes.is_empty() {
        let target = match allowlist.regex_target {
            RegexTarget::Secret => finding.secret.as_str(),
            RegexTarget::Match => finding.matched.as_str(),
            RegexTarget::Line => line,
        };
        checks.push(allowlist.regexes.iter().any(|r| r.is_match(target.as_bytes())));
    }
    if !allowlist.stopwords.is_empty() {
        let secret = finding.secret.to_lowercase();
        checks.push(allowlist.stopwords.iter().any(|w| secret.contains(w.as_str())));
    }
    match allowlist.condition {
        Condition::Or => checks.iter().any(|&c| c),
        Condition::And => !checks.is_empty() && checks.iter().all(|&c| c),
    }
}

/// gitleaks' fingerprint: `commit:file:rule:line`, or `file:rule:line` outside git.
pub fn fingerprint(finding: &Finding) -> String {
    if finding.commit.is_empty() {
        format!("{}:{}:{}", finding.file, finding.rule_id, finding.start_line)
    } else {
        format!("{}:{}:{}:{}", finding.commit, finding.file, finding.rule_id, finding.start_line)
    }
}

/// Shannon entropy in bits per character: minus the sum of p·log2 p over the characters.
pub fn shannon_entropy(text: &str) -> f64 {
    let mut counts: Vec<(char, usize)> = Vec::new();
    let mut total = 0usize;
    for ch in text.chars() {
        total += 1;
        match counts.iter_mut().find(|(c, _)| *c == ch) {
            Some((_, n)) => *n += 1,
            None => counts.push((ch, 1)),
        }
    }
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .iter()
        .map(|&(_, n)| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Line starts of a fragment, computed once and searched for each match.
struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    fn new(raw: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(raw.iter().enumerate().filter(|&(_, &b)| b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts, len: raw.len() }
    }

    /// 0-based line and 1-based byte column of an offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        (line, offset - self.starts[line] + 1)
    }

    /// The byte range of the whole lines containing `start..end`, without the final newline.
    fn line_span(&self, start: usize, end: usize) -> std::ops::Range<usize> {
        let (first, _) = self.position(start);
        let (last, _) = self.position(end.saturating_sub(1).max(start));
        let from = self.starts[first];
        let to = self.starts.get(last + 1).map_or(self.len, |&next| next - 1);
        from..to.max(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_matches_the_definition() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("ab") - 1.0).abs() < 1e-12);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-12);
        assert!((shannon_entropy("0123456789abcdef") - 4.0).abs() < 1e-12);
    }

    #[test]
    fn positions_are_one_based_columns_on_zero_based_lines() {
        let index = LineIndex::new(b"ab\ncde\n\nf");
        assert_eq!(index.position(0), (0, 1));
        assert_eq!(index.position(4), (1, 2));
        assert_eq!(index.position(8), (3, 1));
        assert_eq!(index.line_span(4, 5), 3..6);
        assert_eq!(index.line_span(1, 5), 0..6);
        assert_eq!(index.line_span(8, 9), 8..9);
    }
}
