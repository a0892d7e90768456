//! gitleaks' configuration format (`.gitleaks.toml`), parsed then validated once.
//!
//! The accepted keys are gitleaks v8.30's: `title`, `minVersion`, `[extend]` (`useDefault` or
//! `path`, with `disabledRules`), `[[rules]]` (`id`, `description`, `regex`, `secretGroup`,
//! `entropy`, `keywords`, `path`, `tags`, `[rules.allowlist]` / `[[rules.allowlists]]`) and the
//! global `[allowlist]` / `[[allowlists]]` (with `targetRules`). Anything else is an error at
//! its `file:line:col`, as is a regex that does not compile: a typo in a scanner's config
//! otherwise silently turns a rule off.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::pattern::{Pattern, compile};

/// The built-in rule set, in the same format users write (see `default_rules.toml`).
const DEFAULT_RULES: &str = include_str!("default_rules.toml");
/// The name the built-in rules go by in error messages.
const DEFAULT_RULES_NAME: &str = "<default rules>";
/// gitleaks stops following `[extend]` after two levels; so does this.
const MAX_EXTEND_DEPTH: usize = 2;

/// A validated configuration: the rules to run and the allowlists that apply to all of them.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config's `title`, if it has one.
    pub title: Option<String>,
    /// The rules, in file order (a base config's first when extending).
    pub rules: Vec<Rule>,
    /// Global allowlists (`[allowlist]` and `[[allowlists]]`).
    pub allowlists: Vec<GlobalAllowlist>,
}

/// One detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, e.g. `github-pat`; the `RuleID` of its findings.
    pub id: String,
    /// What the rule finds, for reports.
    pub description: String,
    /// The content regex; `None` for a path-only rule.
    pub regex: Option<Pattern>,
    /// The capture group holding the secret (0: the first non-empty group, or the whole match).
    pub secret_group: usize,
    /// Minimum Shannon entropy of the secret (0: no check).
    pub entropy: f64,
    /// Lower-cased substrings of which at least one must occur for the regex to run.
    pub keywords: Vec<String>,
    /// A regex the file path must match.
    pub path: Option<Pattern>,
    /// Free-form tags copied to findings.
    pub tags: Vec<String>,
    /// Allowlists for this rule only.
    pub allowlists: Vec<Allowlist>,
}

/// How an allowlist's criteria combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Any one criterion allows the finding (gitleaks' default).
    Or,
    /// Every criterion present must allow it.
    And,
}

/// What an allowlist's `regexes` are matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexTarget {
    /// The secret (gitleaks' default).
    Secret,
    /// The whole regex match.
    Match,
    /// The whole line(s) of the match.
    Line,
}

/// Criteria under which a finding is not reported.
#[derive(Debug, Clone)]
pub struct Allowlist {
    /// Why the allowlist exists.
    pub description: Option<String>,
    /// How the criteria combine.
    pub condition: Condition,
    /// Commit SHAs whose findings are allowed.
    pub commits: Vec<String>,
    /// File path regexes.
    pub paths: Vec<Pattern>,
    /// Regexes matched against `regex_target`.
    pub regexes: Vec<Pattern>,
    /// What `regexes` are matched against.
    pub regex_target: RegexTarget,
    /// Lower-cased words which, found in the secret, allow it.
    pub stopwords: Vec<String>,
}

/// A global allowlist, optionally limited to some rules.
#[derive(Debug, Clone)]
pub struct GlobalAllowlist {
    /// The criteria.
    pub allowlist: Allowlist,
    /// Rule ids it applies to; empty means every rule.
    pub target_rules: Vec<String>,
}

/// A configuration that cannot be used, with the place that says so.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}", path.display())]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid gitleaks config; `file:line:col: message`.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The config path (or `<default rules>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The built-in rules.
    pub fn default_rules() -> Config {
        match parse_source(DEFAULT_RULES, DEFAULT_RULES_NAME, None, 0) {
            Ok(config) => config,
            // The built-in file is tested (`default_rules_parse`); a failure here is a build defect.
            Err(err) => panic!("the built-in rules do not parse: {err}"),
        }
    }

    /// Reads and validates a config file, following its `[extend]`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        load_at_depth(path, 0)
    }

    /// Parses config text; `name` is used in error messages and `base_dir` resolves
    /// `[extend] path` (relative paths fail without it).
    pub fn parse(text: &str, name: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
        parse_source(text, name, base_dir, 0)
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }
}

fn load_at_depth(path: &Path, depth: usize) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_source(&text, &path.display().to_string(), path.parent(), depth)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    title: Option<String>,
    // Accepted for compatibility; nothing here depends on gitleaks' version.
    #[allow(dead_code, reason = "read so that configs declaring it are not rejected")]
    min_version: Option<String>,
    extend: Option<Spanned<RawExtend>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
    allowlist: Option<Spanned<RawAllowlist>>,
    #[serde(default)]
    allowlists: Vec<Spanned<RawAllowlist>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExtend {
    use_default: Option<bool>,
    path: Option<Spanned<String>>,
    #[serde(default)]
    disabled_rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    id: Option<String>,
    description: Option<String>,
    regex: Option<Spanned<String>>,
    secret_group: Option<Spanned<i64>>,
    entropy: Option<Spanned<f64>>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    allowlist: Option<Spanned<RawAllowlist>>,
    #[serde(default)]
    allowlists: Vec<Spanned<RawAllowlist>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAllowlist {
    description: Option<String>,
    condition: Option<Spanned<String>>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    regexes: Vec<Spanned<String>>,
    regex_target: Option<Spanned<String>>,
    #[serde(default)]
    stopwords: Vec<String>,
    target_rules: Option<Spanned<Vec<String>>>,
}

/// Turns byte offsets into `file:line:col` errors.
struct Source<'a> {
    text: &'a str,
    name: &'a str,
}

impl Source<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_column(self.text, offset);
        ConfigError::Invalid { file: self.name.to_string(), line, column, message: message.into() }
    }
}

/// 1-based line and character column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn parse_source(text: &str, name: &str, base_dir: Option<&Path>, depth: usize) -> Result<Config, ConfigError> {
    let source = Source { text, name };
    let raw: RawConfig = toml::from_str(text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start);
        source.error(offset, err.message().trim_end().to_string())
    })?;

    let mut rules = Vec::with_capacity(raw.rules.len());
    // A rule may leave out `regex` and `path` only to amend a base rule of the same id.
    let mut incomplete = Vec::new();
    for raw_rule in raw.rules {
        if is_empty_rule(raw_rule.get_ref()) {
            continue;
        }
        let at = raw_rule.span().start;
        let rule = build_rule(&source, raw_rule)?;
        if rule.regex.is_none() && rule.path.is_none() {
            incomplete.push((rule.id.clone(), at));
        }
        if rules.iter().any(|r: &Rule| r.id == rule.id) {
            return Err(source.error(at, format!("rule `{}` is defined twice", rule.id)));
        }
        rules.push(rule);
    }

    let mut allowlists = Vec::new();
    // Rule ids named by `targetRules`, checked once the base rules are merged in.
    let mut targets = Vec::new();
    for raw_allowlist in one_allowlist_form(&source, raw.allowlist, raw.allowlists, "allowlist")? {
        if let Some(target_rules) = &raw_allowlist.get_ref().target_rules {
            targets.extend(target_rules.get_ref().iter().map(|id| (id.clone(), target_rules.span().start)));
        }
        allowlists.push(build_global_allowlist(&source, raw_allowlist)?);
    }

    let own = Config { title: raw.title, rules, allowlists };
    let merged = match raw.extend {
        None => own,
        Some(extend) => {
            let span = extend.span();
            let extend = extend.into_inner();
            let mut base = match (extend.use_default.unwrap_or(false), extend.path) {
                (true, Some(_)) => {
                    return Err(source.error(span.start, "[extend] takes `useDefault` or `path`, not both"));
                }
                (false, None) => {
                    return Err(source.error(span.start, "[extend] needs `useDefault = true` or `path`"));
                }
                _ if depth >= MAX_EXTEND_DEPTH => {
                    return Err(source.error(
                        span.start,
                        format!("[extend] chains stop at depth {MAX_EXTEND_DEPTH}; this one goes deeper"),
                    ));
                }
                (true, None) => parse_source(DEFAULT_RULES, DEFAULT_RULES_NAME, None, depth + 1)?,
                (false, Some(path)) => {
                    let relative = Path::new(path.get_ref());
                    let resolved = match base_dir {
                        _ if relative.is_absolute() => relative.to_path_buf(),
                        Some(dir) => dir.join(relative),
                        None => {
                            return Err(source.error(
                                path.span().start,
                                "a relative [extend] path needs the config to be read from a file",
                            ));
                        }
                    };
                    match load_at_depth(&resolved, depth + 1) {
                        Err(ConfigError::Read { path: unreadable, source: err }) => {
                            return Err(source.error(
                                path.span().start,
                                format!("cannot read the extended config {}: {err}", unreadable.display()),
                            ));
                        }
                        other => other?,
                    }
                }
            };
            base.rules.retain(|rule| !extend.disabled_rules.contains(&rule.id));
            merge(base, own)
        }
    };
    for (id, at) in targets {
        if merged.rule(&id).is_none() {
            return Err(source.error(at, format!("targetRules names `{id}`, which is not a rule")));
        }
    }
    for (id, at) in incomplete {
        if merged.rule(&id).is_none_or(|rule| rule.regex.is_none() && rule.path.is_none()) {
            return Err(source.error(at, format!("rule `{id}` needs a `regex` or a `path`")));
        }
    }
    Ok(merged)
}

/// Lays `own` over `base`: a rule with a base rule's id replaces the fields it sets and adds
/// its keywords, tags and allowlists (gitleaks' `extend` semantics).
fn merge(mut base: Config, own: Config) -> Config {
    for rule in own.rules {
        match base.rules.iter_mut().find(|r| r.id == rule.id) {
            None => base.rules.push(rule),
            Some(existing) => {
                if !rule.description.is_empty() {
                    existing.description = rule.description;
                }
                if rule.regex.is_some() {
                    existing.regex = rule.regex;
                    existing.secret_group = rule.secret_group;
                }
                if rule.entropy != 0.0 {
                    existing.entropy = rule.entropy;
                }
                if rule.path.is_some() {
                    existing.path = rule.path;
                }
                for keyword in rule.keywords {
                    if !existing.keywords.contains(&keyword) {
                        existing.keywords.push(keyword);
                    }
                }
                existing.tags.extend(rule.tags);
                existing.allowlists.extend(rule.allowlists);
            }
        }
    }
    base.allowlists.extend(own.allowlists);
    Config { title: own.title.or(base.title), rules: base.rules, allowlists: base.allowlists }
}

/// A rule table with no keys at all, which gitleaks takes as nothing (its issue #1985).
fn is_empty_rule(raw: &RawRule) -> bool {
    raw.id.is_none()
        && raw.description.is_none()
        && raw.regex.is_none()
        && raw.secret_group.is_none()
        && raw.entropy.is_none()
        && raw.keywords.is_empty()
        && raw.path.is_none()
        && raw.tags.is_empty()
        && raw.allowlist.is_none()
        && raw.allowlists.is_empty()
}

/// gitleaks refuses the old singular table beside the new array: which one is meant is unclear.
fn one_allowlist_form(
    source: &Source<'_>,
    old: Option<Spanned<RawAllowlist>>,
    new: Vec<Spanned<RawAllowlist>>,
    old_name: &str,
) -> Result<Vec<Spanned<RawAllowlist>>, ConfigError> {
    match (old, new.first()) {
        (Some(_), Some(second)) => {
            Err(source.error(second.span().start, format!("use `[{old_name}]` or `[[{old_name}s]]`, not both")))
        }
        (Some(old), None) => Ok(vec![old]),
        (None, _) => Ok(new),
    }
}

fn build_rule(source: &Source<'_>, raw: Spanned<RawRule>) -> Result<Rule, ConfigError> {
    let at = raw.span().start;
    let raw = raw.into_inner();
    let id = match raw.id {
        Some(id) if !id.trim().is_empty() => id,
        _ => return Err(source.error(at, "rule has no `id`")),
    };
    let regex = raw.regex.map(|r| compile_spanned(source, &r, "regex")).transpose()?;
    let path = raw.path.map(|p| compile_spanned(source, &p, "path")).transpose()?;
    let secret_group = match raw.secret_group {
        None => 0,
        Some(group) => {
            let value = *group.get_ref();
            let groups = regex.as_ref().map_or(0, |r| r.captures_len() - 1);
            if value < 0 || value as usize > groups {
                return Err(source.error(
                    group.span().start,
                    format!("rule `{id}`: secretGroup {value} is not one of the regex's {groups} capture group(s)"),
                ));
            }
            value as usize
        }
    };
    let entropy = match raw.entropy {
        None => 0.0,
        Some(entropy) if *entropy.get_ref() >= 0.0 && entropy.get_ref().is_finite() => *entropy.get_ref(),
        Some(entropy) => {
            return Err(source.error(entropy.span().start, format!("rule `{id}`: entropy must be ≥ 0")));
        }
    };
    let mut allowlists = Vec::new();
    for raw_allowlist in one_allowlist_form(source, raw.allowlist, raw.allowlists, "rules.allowlist")? {
        let span = raw_allowlist.span();
        let global = build_global_allowlist(source, raw_allowlist)?;
        if !global.target_rules.is_empty() {
            return Err(source.error(span.start, "`targetRules` belongs in a global [[allowlists]], not a rule's"));
        }
        allowlists.push(global.allowlist);
    }
    Ok(Rule {
        description: raw.description.unwrap_or_default(),
        secret_group,
        entropy,
        keywords: raw.keywords.into_iter().map(|k| k.to_lowercase()).filter(|k| !k.is_empty()).collect(),
        tags: raw.tags,
        id,
        regex,
        path,
        allowlists,
    })
}

fn build_global_allowlist(source: &Source<'_>, raw: Spanned<RawAllowlist>) -> Result<GlobalAllowlist, ConfigError> {
    let at = raw.span().start;
    let raw = raw.into_inner();
    let condition = match &raw.condition {
        None => Condition::Or,
        Some(c) => match c.get_ref().to_ascii_uppercase().as_str() {
            "OR" => Condition::Or,
            "AND" => Condition::And,
            other => {
                return Err(source.error(c.span().start, format!("condition `{other}` is not `OR` or `AND`")));
            }
        },
    };
    let regex_target = match &raw.regex_target {
        None => RegexTarget::Secret,
        Some(t) => match t.get_ref().as_str() {
            "" | "secret" => RegexTarget::Secret,
            "match" => RegexTarget::Match,
            "line" => RegexTarget::Line,
            other => {
                return Err(
                    source.error(t.span().start, format!("regexTarget `{other}` is not `secret`, `match` or `line`"))
                );
            }
        },
    };
    let paths = raw.paths.iter().map(|p| compile_spanned(source, p, "path")).collect::<Result<Vec<_>, _>>()?;
    let regexes = raw.regexes.iter().map(|r| compile_spanned(source, r, "regex")).collect::<Result<Vec<_>, _>>()?;
    let commits: Vec<String> = raw.commits.into_iter().filter(|c| !c.is_empty()).collect();
    let stopwords: Vec<String> =
        raw.stopwords.into_iter().map(|w| w.to_lowercase()).filter(|w| !w.is_empty()).collect();
    if commits.is_empty() && paths.is_empty() && regexes.is_empty() && stopwords.is_empty() {
        return Err(source.error(at, "allowlist has no `commits`, `paths`, `regexes` or `stopwords`"));
    }
    Ok(GlobalAllowlist {
        allowlist: Allowlist {
            description: raw.description,
            condition,
            commits,
            paths,
            regexes,
            regex_target,
            stopwords,
        },
        target_rules: raw.target_rules.map(Spanned::into_inner).unwrap_or_default(),
    })
}

fn compile_spanned(source: &Source<'_>, raw: &Spanned<String>, what: &str) -> Result<Pattern, ConfigError> {
    compile(raw.get_ref()).map_err(|err| {
        // The first line of regex's message is the pattern again; keep its explanation.
        let detail = err.to_string();
        let detail = detail.lines().rfind(|l| l.starts_with("error:")).unwrap_or(&detail).to_string();
        source.error(raw.span().start, format!("{what} does not compile: {detail}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_not_bytes() {
        assert_eq!(line_column("a\nbé c", 0), (1, 1));
        assert_eq!(line_column("a\nbé c", 2), (2, 1));
        assert_eq!(line_column("a\nbé c", 6), (2, 4));
    }

    #[test]
    fn default_rules_parse() {
        let config = Config::default_rules();
        assert!(config.rules.len() >= 50, "only {} default rules", config.rules.len());
    }
}
