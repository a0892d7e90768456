//! SARIF 2.1.0 logs, as GitHub code scanning reads them: one run, a tool with its rules, and
//! results with a physical location and partial fingerprints.
//!
//! Scanner-neutral: a caller (this crate's secret report, later a dependency scanner) lists its
//! [`Rule`]s and [`Result`]s and gets the log as JSON. It writes what GitHub's subset asks for
//! (`$schema`, `version`, `runs[].tool.driver{name, rules[]{id, shortDescription,
//! fullDescription, help}}`, `results[]{ruleId, ruleIndex, level, message.text, locations[0]
//! .physicalLocation{artifactLocation.uri, region}, partialFingerprints}`) and nothing else;
//! the output is checked against the OASIS schema in the tests.

use std::collections::BTreeMap;

use serde::Serialize;

/// The schema URI GitHub's documentation gives.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// GitHub truncates descriptions past this many characters.
const MAX_DESCRIPTION: usize = 1024;

/// The analysis tool.
#[derive(Debug, Clone)]
pub struct Tool {
    /// `tool.driver.name`.
    pub name: String,
    /// `tool.driver.semanticVersion`.
    pub version: String,
    /// `tool.driver.informationUri`, if any.
    pub information_uri: Option<String>,
}

/// A rule results refer to.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id (`ruleId` of its results).
    pub id: String,
    /// One-line description.
    pub short_description: String,
    /// Longer description (the short one when empty).
    pub full_description: String,
    /// What to do about a result.
    pub help: String,
    /// Tags (`properties.tags`).
    pub tags: Vec<String>,
    /// GitHub's `security-severity`, 0.1..=10.0, if the rule is a security rule.
    pub security_severity: Option<f32>,
}

/// How serious a result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Informational.
    Note,
    /// Worth a look.
    Warning,
    /// Must be fixed.
    Error,
}

/// A region of a file (1-based lines and columns; `end_column` is exclusive in SARIF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Repository-relative path, `/`-separated.
    pub uri: String,
    /// First line.
    pub start_line: usize,
    /// First column.
    pub start_column: usize,
    /// Last line.
    pub end_line: usize,
    /// Column after the last character.
    pub end_column: usize,
    /// The text of the region, if it may be shown.
    pub snippet: Option<String>,
}

/// One result.
#[derive(Debug, Clone)]
pub struct Result {
    /// The rule's id; must be one of the log's rules.
    pub rule_id: String,
    /// Severity.
    pub level: Level,
    /// What was found, in a sentence.
    pub message: String,
    /// Where.
    pub location: Location,
    /// Stable identities of the result (`partialFingerprints`), e.g. `commitSha`.
    pub fingerprints: BTreeMap<String, String>,
    /// Tags (`properties.tags`).
    pub tags: Vec<String>,
}

/// Builds the log; results whose rule is not in `rules` are a caller's bug and panic in debug
/// builds, and get no `ruleIndex` otherwise.
pub fn log(tool: &Tool, rules: &[Rule], results: &[Result]) -> serde_json::Value {
    let sarif_rules: Vec<ReportingDescriptor<'_>> = rules
        .iter()
        .map(|rule| ReportingDescriptor {
            id: &rule.id,
            short_description: Text { text: truncate(&rule.short_description) },
            full_description: Text {
                text: truncate(if rule.full_description.is_empty() {
                    &rule.short_description
                } else {
                    &rule.full_description
                }),
            },
            help: Text { text: truncate(if rule.help.is_empty() { &rule.short_description } else { &rule.help }) },
            properties: RuleProperties {
                tags: &rule.tags,
                security_severity: rule.security_severity.map(|s| format!("{:.1}", s.clamp(0.1, 10.0))),
            },
        })
        .collect();
    let sarif_results: Vec<SarifResult<'_>> = results
        .iter()
        .map(|result| {
            let rule_index = rules.iter().position(|r| r.id == result.rule_id);
            debug_assert!(rule_index.is_some(), "result for unknown rule {}", result.rule_id);
            let loc = &result.location;
            SarifResult {
                rule_id: &result.rule_id,
                rule_index,
                level: result.level,
                message: Text { text: result.message.clone() },
                locations: [SarifLocation {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation { uri: &loc.uri },
                        region: Region {
                            start_line: loc.start_line.max(1),
                            start_column: loc.start_column.max(1),
                            end_line: loc.end_line.max(loc.start_line).max(1),
                            end_column: loc.end_column.max(1),
                            snippet: loc.snippet.as_deref().map(|text| TextRef { text }),
                        },
                    },
                }],
                partial_fingerprints: &result.fingerprints,
                properties: ResultProperties { tags: &result.tags },
            }
        })
        .collect();
    let log = SarifLog {
        schema: SCHEMA_URI,
        version: "2.1.0",
        runs: [Run {
            tool: ToolComponent {
                driver: Driver {
                    name: &tool.name,
                    semantic_version: &tool.version,
                    information_uri: tool.information_uri.as_deref(),
                    rules: sarif_rules,
                },
            },
            results: sarif_results,
        }],
    };
    serde_json::to_value(log).expect("SARIF structs serialize")
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_DESCRIPTION) {
        None => text.to_string(),
        Some((at, _)) => text[..at].to_string(),
    }
}

#[derive(Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'a str,
    version: &'a str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
struct Run<'a> {
    tool: ToolComponent<'a>,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct ToolComponent<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'a str,
    semantic_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    information_uri: Option<&'a str>,
    rules: Vec<ReportingDescriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportingDescriptor<'a> {
    id: &'a str,
    short_description: Text,
    full_description: Text,
    help: Text,
    properties: RuleProperties<'a>,
}

#[derive(Serialize)]
struct RuleProperties<'a> {
    tags: &'a [String],
    #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
    security_severity: Option<String>,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct TextRef<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: Level,
    message: Text,
    locations: [SarifLocation<'a>; 1],
    partial_fingerprints: &'a BTreeMap<String, String>,
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    tags: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    physical_location: PhysicalLocation<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation<'a>,
    region: Region<'a>,
}

#[derive(Serialize)]
struct ArtifactLocation<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region<'a> {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<TextRef<'a>>,
}
