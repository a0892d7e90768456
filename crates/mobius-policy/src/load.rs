//! Reading a policy directory into one prepared regorus engine, and what it declares.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

// regorus's AST is public as `unstable`; reading rule heads from it (and from the engine's
// hidden `get_modules`) is the only way to list a package's rules. Cargo.lock pins the version;
// nothing else in Mobius touches it.
use regorus::unstable::{Module, Parser, Rule, RuleHead};
use regorus::utils::limits::ExecutionTimerConfig;

use crate::error::{PolicyError, Position};
use crate::located::{Sources, locate_in};

/// The package every gate policy declares.
pub const PACKAGE: &str = "mobius.gate";

/// How long one rule may evaluate before the evaluation is an error (and so, in a decision,
/// a denial). Gate policies answer in well under a millisecond; this only stops a runaway
/// comprehension from holding a deploy.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(1);

/// Which files of the directory are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Files {
    /// `*.rego` but not `*_test.rego`: what a decision uses.
    Policies,
    /// Every `*.rego`: what `mobius policy test` runs.
    PoliciesAndTests,
}

/// A rule head as declared, with where.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    /// The package's path, `mobius.gate`.
    pub package: String,
    /// The rule's first name component (`deny_latest` for `deny_latest contains msg if …`).
    pub name: String,
    /// Whether it is a one-name multi-value rule (`name contains x if …`).
    pub is_set: bool,
    /// Whether it is a plain rule (`name if …`, `name := …`), not a function or default.
    pub is_plain: bool,
    pub file: PathBuf,
    pub at: Position,
}

/// A directory's policies, parsed into an engine prepared for evaluation.
pub(crate) struct Loaded {
    pub engine: regorus::Engine,
    pub declared: Vec<Declared>,
    pub sources: Sources,
}

/// Whether a file of that name is a test file (`opa test`'s convention).
pub(crate) fn is_test_file(path: &Path) -> bool {
    path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.ends_with("_test"))
}

/// The `.rego` files of `dir` (not its subdirectories), in name order.
fn rego_files(dir: &Path, files: Files) -> Result<Vec<PathBuf>, PolicyError> {
    let unreadable = |source| PolicyError::Unreadable { path: dir.to_path_buf(), source };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|e| e == "rego")
            && path.is_file()
            && (files == Files::PoliciesAndTests || !is_test_file(&path))
        {
            found.push(path);
        }
    }
    found.sort();
    if found.iter().all(|p| is_test_file(p)) {
        return Err(PolicyError::NoPolicies { dir: dir.to_path_buf() });
    }
    Ok(found)
}

/// Parses every file, checks what the gate relies on, and prepares the engine (rules are
/// scheduled and functions gathered here, once, not at each decision).
///
/// regorus reports an unsafe variable or an unknown builtin only when the rule using it is
/// evaluated: a decision then denies, and [`crate::test()`] reports the error.
pub(crate) fn load(dir: &Path, files: Files, time_limit: Duration) -> Result<Loaded, PolicyError> {
    let mut engine = regorus::Engine::new();
    // Rego v1 is regorus's default; said here because the gate's conventions depend on it.
    engine.set_rego_v0(false);
    // A builtin given the wrong arguments is an error (and so a denial), not undefined.
    engine.set_strict_builtin_errors(true);
    // `print` goes to the test report, never to the server's stderr.
    engine.set_gather_prints(true);
    set_time_limit(&mut engine, time_limit);

    let mut sources = BTreeMap::new();
    for path in rego_files(dir, files)? {
        let text =
            std::fs::read_to_string(&path).map_err(|source| PolicyError::Unreadable { path: path.clone(), source })?;
        let name = path.display().to_string();
        sources.insert(name.clone(), text.clone());
        engine.add_policy(name, text).map_err(|e| refused(&path, &e, &sources))?;
    }

    let mut declared = Vec::new();
    for module in engine.get_modules().iter() {
        let file = PathBuf::from(module.package.span.source.file());
        let package = package_of(module, &file, &sources)?;
        if package != PACKAGE && !is_test_file(&file) {
            let span = &module.package.span;
            let at = position_in(&sources, &file, span.line, span.col);
            return Err(PolicyError::WrongPackage { file, at, package });
        }
        for rule in &module.policy {
            let rule = declared_rule(rule, &package, &file, &sources)?;
            if package == PACKAGE && is_gate_rule(&rule.name) && !rule.is_set {
                return Err(PolicyError::NotASet { file: rule.file, at: rule.at, rule: rule.name });
            }
            declared.push(rule);
        }
    }

    // Prepare: schedule every rule, gather imports and functions.
    engine.eval_query("true".to_owned(), false).map_err(|e| refused(dir, &e, &sources))?;
    Ok(Loaded { engine, declared, sources: std::sync::Arc::new(sources) })
}

pub(crate) fn set_time_limit(engine: &mut regorus::Engine, limit: Duration) {
    // regorus counts work units at interpreter steps (expressions, loop iterations): reading
    // the clock every 16 keeps the check cheap and the overshoot small.
    let check_interval = NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN);
    engine.set_execution_timer_config(ExecutionTimerConfig { limit, check_interval });
}

/// Whether conftest reads a rule of that name: `deny`, `violation` or `warn`, optionally
/// followed by `_name` parts (`^(deny|violation|warn)(_[a-zA-Z0-9]+)*$`), or `exception`.
pub(crate) fn is_gate_rule(name: &str) -> bool {
    name == "exception" || is_failure(name) || is_warning(name)
}

/// `^(deny|violation)(_[a-zA-Z0-9]+)*$`, conftest's failures.
pub(crate) fn is_failure(name: &str) -> bool {
    ["deny", "violation"].iter().any(|kind| name.strip_prefix(kind).is_some_and(is_suffix))
}

/// `^warn(_[a-zA-Z0-9]+)*$`, conftest's warnings.
pub(crate) fn is_warning(name: &str) -> bool {
    name.strip_prefix("warn").is_some_and(is_suffix)
}

/// `(_[a-zA-Z0-9]+)*`
fn is_suffix(rest: &str) -> bool {
    rest.is_empty()
        || rest.strip_prefix('_').is_some_and(|parts| {
            parts.split('_').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
}

/// The name an `exception` uses for a rule, as conftest derives it: `deny`, `violation` and
/// `warn` are `""`; otherwise `violation_`, then `deny_`, then `warn_` is taken off the front
/// (so `deny_friday_afternoon` is `friday_afternoon`, and `warn_high` is `high`).
pub(crate) fn exception_name(rule: &str) -> &str {
    if matches!(rule, "deny" | "violation" | "warn") {
        return "";
    }
    let rule = rule.strip_prefix("violation_").unwrap_or(rule);
    let rule = rule.strip_prefix("deny_").unwrap_or(rule);
    rule.strip_prefix("warn_").unwrap_or(rule)
}

/// The distinct names of the declared rules that `keep` accepts, in name order.
pub(crate) fn names(declared: &[Declared], keep: impl Fn(&Declared) -> bool) -> Vec<String> {
    declared.iter().filter(|d| keep(d)).map(|d| d.name.clone()).collect::<BTreeSet<_>>().into_iter().collect()
}

fn package_of(module: &Module, file: &Path, sources: &BTreeMap<String, String>) -> Result<String, PolicyError> {
    let parts = Parser::get_path_ref_components(&module.package.refr).map_err(|e| refused(file, &e, sources))?;
    Ok(parts.iter().map(|span| span.text()).collect::<Vec<_>>().join("."))
}

fn declared_rule(
    rule: &Rule,
    package: &str,
    file: &Path,
    sources: &BTreeMap<String, String>,
) -> Result<Declared, PolicyError> {
    let (refr, is_set, is_plain) = match rule {
        Rule::Spec { head: RuleHead::Set { refr, .. }, .. } => (refr, true, false),
        Rule::Spec { head: RuleHead::Compr { refr, .. }, .. } => (refr, false, true),
        Rule::Spec { head: RuleHead::Func { refr, .. }, .. } => (refr, false, false),
        Rule::Default { refr, .. } => (refr, false, false),
    };
    let parts = Parser::get_path_ref_components(refr).map_err(|e| refused(file, &e, sources))?;
    let span = rule.span();
    let name = parts.first().map(|s| s.text().to_owned()).unwrap_or_default();
    Ok(Declared {
        package: package.to_owned(),
        name,
        is_set: is_set && parts.len() == 1,
        is_plain: is_plain && parts.len() == 1,
        file: file.to_path_buf(),
        at: position_in(sources, file, span.line, span.col),
    })
}

fn position(line: u32, column: u32) -> Position {
    Position { line, column }
}

/// regorus's `line:col` in `file`, with the column in characters.
fn position_in(sources: &BTreeMap<String, String>, file: &Path, line: u32, col: u32) -> Position {
    let rendered = format!("--> {}:{line}:{col}\n", file.display());
    locate_in(&rendered, sources).map_or(position(line, col), |located| located.at)
}

/// What regorus refused while loading `path`, at the position it gives.
fn refused(path: &Path, error: &impl std::fmt::Display, sources: &BTreeMap<String, String>) -> PolicyError {
    let rendered = format!("{error:#}");
    match locate_in(&rendered, sources) {
        Some(located) => {
            PolicyError::Rego { file: PathBuf::from(located.file), at: located.at, message: located.message }
        }
        None => PolicyError::Refused {
            path: path.to_path_buf(),
            message: rendered.split_whitespace().collect::<Vec<_>>().join(" "),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conftest_rule_names() {
        for name in ["deny", "deny_x", "deny_friday_afternoon", "violation", "violation_a1", "warn", "warn_high"] {
            assert!(is_gate_rule(name), "{name}");
        }
        for name in ["denylist", "deny_", "deny__x", "deny_x-y", "warning", "allow", "exceptions", "test_deny"] {
            assert!(!is_gate_rule(name), "{name}");
        }
        assert!(is_failure("violation_x") && !is_failure("warn_x"));
        assert!(is_warning("warn_x") && !is_warning("deny_x"));
    }

    #[test]
    fn exception_names_as_conftest_derives_them() {
        for (rule, name) in [
            ("deny", ""),
            ("violation", ""),
            ("warn", ""),
            ("deny_friday_afternoon", "friday_afternoon"),
            ("violation_latest", "latest"),
            ("warn_high", "high"),
            // conftest trims the three prefixes one after the other.
            ("deny_warn_x", "x"),
        ] {
            assert_eq!(exception_name(rule), name, "{rule}");
        }
    }
}
