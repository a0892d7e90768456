//! Reading webhook bodies, shared by the GitHub and GitLab translators.
//!
//! Senders' payloads are large, loosely typed and change shape between versions, so instead
//! of mirroring them in structs we read the few fields we need through [`Object`], whose
//! errors name the field's JSON path (`deployment.sha`, `commits[2].timestamp`): an operator
//! looking at a refused delivery sees exactly what was wrong with it.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::limits::{self, MAX_EVENT_BYTES};
use crate::observation::{CauseHint, IncidentObserved, Observation};
use crate::time::parse_timestamp;
use crate::webhook::WebhookError;

/// The body as text: the log keeps it verbatim, so it must be UTF-8, and one event's worth.
pub(crate) fn text(body: &[u8]) -> Result<&str, WebhookError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(WebhookError::TooLarge { bytes: body.len(), limit: MAX_EVENT_BYTES });
    }
    std::str::from_utf8(body).map_err(|e| WebhookError::field("(body)", format!("is not UTF-8 text ({e})")))
}

/// Parses the body as JSON, reporting where it is malformed.
pub(crate) fn json(text: &str) -> Result<Value, WebhookError> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line L column C"; the error carries those as fields.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        WebhookError::Json { line: e.line(), column: e.column(), message }
    })
}

/// `sha256:<hex>` of the body: the identity of a delivery that carries no better one, so that
/// a re-delivery of the same bytes is still recognised as a duplicate.
pub(crate) fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// A custom CDEvents type for a webhook: `dev.cdeventsx.<tool>-<kind>.<predicate>.0.1.0`.
///
/// Event names and actions come from the sender, so each part is lowercased and anything
/// outside `[a-z0-9_-]` becomes `_`: the result always parses as a CDEvents custom type.
pub(crate) fn custom_type(tool: &str, kind: &str, predicate: &str) -> String {
    format!("dev.cdeventsx.{tool}-{}.{}.0.1.0", type_part(kind), type_part(predicate))
}

fn type_part(s: &str) -> String {
    let part: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if part.is_empty() { "_".to_owned() } else { part }
}

/// The first line of a commit message.
pub(crate) fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim_end().to_owned()
}

/// The commit named by `root cause: <sha>` in an issue's text (7 to 40 hex digits, any case,
/// optionally in backticks), lowercased because stored shas are.
///
/// This is Four Keys' convention for linking an incident to the change that caused it; unlike
/// Four Keys' `[[:alnum:]]*` it only accepts something that can be a commit, so "root cause:
/// unknown" links nothing.
pub(crate) fn root_cause(text: &str) -> Option<String> {
    const MARKER: &str = "root cause:";
    // ASCII lowercasing keeps byte offsets, so indices into `lower` are indices into `text`.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(MARKER) {
        let start = from + found + MARKER.len();
        from = start;
        let rest = lower[start..].trim_start_matches([' ', '\t']);
        let rest = rest.strip_prefix('`').unwrap_or(rest);
        let len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        let bounded = !rest[len..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
        if (7..=40).contains(&len) && bounded {
            return Some(rest[..len].to_owned());
        }
    }
    None
}

/// A JSON object inside a payload, with the path that leads to it.
#[derive(Debug, Clone)]
pub(crate) struct Object<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Object<'a> {
    /// The body's top level, which must be an object.
    pub(crate) fn root(value: &'a Value) -> Result<Object<'a>, WebhookError> {
        match value {
            Value::Object(map) => Ok(Object { map, path: String::new() }),
            _ => Err(WebhookError::field("(body)", "must be a JSON object")),
        }
    }

    /// The JSON path of `key` in this object, as errors name it.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    /// A field's value; JSON `null` counts as absent, as senders use both for "none".
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn missing(&self, key: &str) -> WebhookError {
        WebhookError::field(self.path_of(key), "is required")
    }

    fn wrong(&self, key: &str, expected: &str) -> WebhookError {
        WebhookError::field(self.path_of(key), format!("must be {expected}"))
    }

    pub(crate) fn object(&self, key: &str) -> Result<Object<'a>, WebhookError> {
        self.opt_object(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_object(&self, key: &str) -> Result<Option<Object<'a>>, WebhookError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Object { map, path: self.path_of(key) })),
            Some(_) => Err(self.wrong(key, "an object")),
        }
    }

    /// An array of objects; absent means empty.
    pub(crate) fn objects(&self, key: &str) -> Result<Vec<Object<'a>>, WebhookError> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.wrong(key, "an array")),
        };
        let path = self.path_of(key);
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(Object { map, path: format!("{path}[{i}]") }),
                _ => Err(WebhookError::field(format!("{path}[{i}]"), "must be an object")),
            })
            .collect()
    }

    /// A string, possibly empty.
    pub(crate) fn str(&self, key: &str) -> Result<&'a str, WebhookError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, WebhookError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    /// An identifier: a non-empty string, or an integer (GitHub and GitLab number most
    /// objects) rendered in decimal.
    pub(crate) fn id(&self, key: &str) -> Result<String, WebhookError> {
        self.opt_id(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_id(&self, key: &str) -> Result<Option<String>, WebhookError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Err(self.wrong(key, "a non-empty string")),
            Some(Value::String(s)) => {
                // Identifiers make event ids and keys.
                WebhookError::control_characters(self.path_of(key), s)?;
                Ok(Some(s.clone()))
            }
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            Some(_) => Err(self.wrong(key, "a string or an integer")),
        }
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, WebhookError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    /// A duration in seconds (GitLab sends integers or fractions).
    pub(crate) fn opt_seconds(&self, key: &str) -> Result<Option<SignedDuration>, WebhookError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value
            .as_f64()
            .filter(|secs| *secs >= 0.0)
            .and_then(|secs| SignedDuration::try_from_secs_f64(secs).ok())
            .map(Some)
            .ok_or_else(|| self.wrong(key, "a non-negative number of seconds"))
    }

    /// A timestamp in any format the senders use.
    pub(crate) fn time(&self, key: &str) -> Result<Timestamp, WebhookError> {
        self.opt_time(key)?.ok_or_else(|| self.missing(key))
    }

    /// A timestamp, which must lie in the range events may have ([`limits::in_range`]).
    pub(crate) fn opt_time(&self, key: &str) -> Result<Option<Timestamp>, WebhookError> {
        let Some(s) = self.opt_str(key)? else { return Ok(None) };
        let at = parse_timestamp(s).map_err(|e| WebhookError::field(self.path_of(key), e.to_string()))?;
        if !limits::in_range(at) {
            let problem = format!("`{s}` is outside the supported range {}", limits::RANGE);
            return Err(WebhookError::field(self.path_of(key), problem));
        }
        Ok(Some(at))
    }

    /// The first of `keys` holding a readable timestamp in range, ignoring anything else.
    ///
    /// Only for deliveries Mobius stores without interpreting: refusing one because a field
    /// it merely peeks at has an odd shape would lose the event for nothing.
    pub(crate) fn first_time_lenient(&self, keys: &[&str]) -> Option<Timestamp> {
        keys.iter().find_map(|key| {
            self.get(key)?.as_str().and_then(|s| parse_timestamp(s).ok()).filter(|at| limits::in_range(*at))
        })
    }
}

/// An issue that a team marked as an incident, in either provider's words.
pub(crate) struct IssueIncident<'a> {
    pub(crate) key: String,
    pub(crate) service: &'a str,
    pub(crate) title: &'a str,
    pub(crate) created_at: Timestamp,
    /// Set only when the issue is closed now (a reopened issue keeps its old `closed_at`).
    pub(crate) closed_at: Option<Timestamp>,
    pub(crate) reopened: bool,
    pub(crate) body: Option<&'a str>,
    /// From a label: see [`severity_label`].
    pub(crate) severity: Option<String>,
}

/// A severity label's severity: `sev1`, `SEV-2`, `sev 3` → `sev1`…; `severity::high`,
/// `severity:high`, `severity/high` (GitLab's scoped labels and common forms) → `high`.
pub(crate) fn severity_label(label: &str) -> Option<String> {
    let lower = label.trim().to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("sev") {
        let digits = rest.trim_start_matches(['-', '_', ' ']);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return Some(format!("sev{digits}"));
        }
    }
    let rest = lower.strip_prefix("severity")?;
    let value = rest.trim_start_matches([':', '/', ' ', '=']);
    (!value.is_empty() && value.len() < rest.len()).then(|| value.to_owned())
}

/// One rule for both providers: detected when opened, resolved when closed, in the default
/// environment, caused by the commit a `root cause: <sha>` line names.
pub(crate) fn issue_incident(issue: IssueIncident<'_>) -> Observation {
    Observation::Incident(IncidentObserved {
        key: issue.key,
        service: issue.service.to_owned(),
        environment: crate::DEFAULT_ENVIRONMENT.to_owned(),
        title: issue.title.to_owned(),
        detected: Some(issue.created_at),
        acknowledged: None,
        resolved: issue.closed_at,
        reopened: issue.reopened,
        cause: issue.body.and_then(root_cause).map(|sha| CauseHint::Commit { sha }),
        severity: issue.severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_labels() {
        for (label, severity) in [
            ("sev1", Some("sev1")),
            ("SEV-2", Some("sev2")),
            ("Sev 3", Some("sev3")),
            ("severity::high", Some("high")),
            ("Severity: Critical", Some("critical")),
            ("severity/low", Some("low")),
            ("several", None),
            ("sev", None),
            ("severity", None),
            ("incident", None),
        ] {
            assert_eq!(severity_label(label).as_deref(), severity, "{label}");
        }
    }

    #[test]
    fn root_cause_takes_the_first_commit_like_token() {
        let check = |text: &str, expected: Option<&str>| assert_eq!(root_cause(text).as_deref(), expected, "{text:?}");
        check("root cause: abc1234", Some("abc1234"));
        check("Root Cause: ABC1234DEF\nmore", Some("abc1234def"));
        check(
            "Summary.\n\nroot cause:`f95f852bd8fca8fcc58a9a2d6c842781e32a215e`.",
            Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e"),
        );
        check("root cause: unknown, root cause: 1234567", Some("1234567"));
        check("root cause: abc12", None);
        check("root cause: abc1234xyz", None);
        check("root cause: 0123456789012345678901234567890123456789a", None);
        check("no marker abc1234", None);
        check("root cause: é", None);
    }

    #[test]
    fn custom_types_always_parse() {
        assert_eq!(custom_type("github", "push", "received"), "dev.cdeventsx.github-push.received.0.1.0");
        assert_eq!(
            custom_type("gitlab", "Merge Request", "Ünapproved!"),
            "dev.cdeventsx.gitlab-merge_request._napproved_.0.1.0"
        );
        assert_eq!(custom_type("github", "", ""), "dev.cdeventsx.github-_._.0.1.0");
    }

    #[test]
    fn errors_name_the_json_path() {
        let value: Value = serde_json::json!({"a": {"list": [{"t": "yesterday"}, 3]}, "n": 1.5});
        let root = Object::root(&value).unwrap();
        let a = root.object("a").unwrap();
        let err = a.objects("list").unwrap_err();
        assert_eq!(err, WebhookError::field("a.list[1]", "must be an object"));
        let value: Value = serde_json::json!({"a": {"list": [{"t": "yesterday"}]}, "n": 1.5});
        let root = Object::root(&value).unwrap();
        let item = &root.object("a").unwrap().objects("list").unwrap()[0];
        assert!(matches!(item.time("t"), Err(WebhookError::Field { field, .. }) if field == "a.list[0].t"));
        assert!(matches!(root.id("n"), Err(WebhookError::Field { field, .. }) if field == "n"));
        assert!(
            matches!(root.str("missing"), Err(WebhookError::Field { field, problem }) if field == "missing" && problem == "is required")
        );
    }
}
