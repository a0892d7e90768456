//! `on:` — the events that start a workflow, their filters, dispatch inputs and cron.

use super::build::{check_keys, mapping, string, strings, type_error};
use super::model::{Input, InputKind, RefFilter, Triggers};
use super::yaml::{Kind, Node};
use super::{Report, suggest};
use crate::chain::Chain;

/// Every event GitHub can start a workflow with. Mobius raises push, pull_request, release,
/// workflow_dispatch, schedule and workflow_call (a job calling the workflow); the others are
/// accepted and recorded.
const EVENTS: &[&str] = &[
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "gollum",
    "image_version",
    "issue_comment",
    "issues",
    "label",
    "merge_group",
    "milestone",
    "page_build",
    "project",
    "project_card",
    "project_column",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_target",
    "push",
    "registry_package",
    "release",
    "repository_dispatch",
    "schedule",
    "status",
    "watch",
    "workflow_call",
    "workflow_dispatch",
    "workflow_run",
];
const REF_FILTER_KEYS: &[&str] =
    &["branches", "branches-ignore", "tags", "tags-ignore", "paths", "paths-ignore", "types"];

pub(crate) fn triggers(r: &mut Report, node: &Node) -> Triggers {
    let mut t = Triggers::default();
    match &node.kind {
        Kind::Str(_) => event(r, &mut t, node, None),
        Kind::Seq(items) => {
            for item in items {
                if item.as_str().is_some() {
                    event(r, &mut t, item, None);
                } else {
                    type_error(r, item, "on", "a list of event names");
                }
            }
        }
        Kind::Map(entries) => {
            for (k, v) in entries {
                event(r, &mut t, k, Some(v));
            }
        }
        _ => type_error(r, node, "on", "an event name, a list or a mapping"),
    }
    t
}

fn event(r: &mut Report, t: &mut Triggers, name_node: &Node, config: Option<&Node>) {
    let name = name_node.scalar_string().unwrap_or_default();
    if !EVENTS.contains(&name.as_str()) {
        let hint = suggest(&name, EVENTS.iter().copied()).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
        r.error(name_node.pos, format!("unknown event `{name}` in `on`{hint}"));
        return;
    }
    // `push:` with nothing after it is a null config, the same as the shorthand.
    let config = config.filter(|c| c.kind != Kind::Null);
    match name.as_str() {
        "push" => t.push = Some(config.map(|c| ref_filter(r, c, &name)).unwrap_or_default()),
        "pull_request" => t.pull_request = Some(config.map(|c| ref_filter(r, c, &name)).unwrap_or_default()),
        "release" => t.release = Some(config.map(|c| types_filter(r, c, &name)).unwrap_or_default()),
        "workflow_dispatch" => t.workflow_dispatch = Some(config.map(|c| inputs(r, c)).unwrap_or_default()),
        "workflow_call" => t.workflow_call = Some(super::call::workflow_call(r, config)),
        "schedule" => match config.map(|c| &c.kind) {
            Some(Kind::Seq(items)) => {
                for item in items {
                    if let Some(cron) = cron_entry(r, item) {
                        t.schedule.push(cron);
                    }
                }
            }
            Some(_) => type_error(r, config.unwrap_or(name_node), "schedule", "a sequence of `cron` entries"),
            None => r.error(name_node.pos, "`schedule` needs at least one `cron` entry".into()),
        },
        _ => {
            if let Some(c) = config {
                if name == "pull_request_target" {
                    ref_filter(r, c, &name);
                } else {
                    // Other events only get a shape check: their filters are GitHub's business.
                    mapping(r, c, &name);
                }
            }
            // Valid on GitHub, so not an error; but the workflow will never start on it here.
            r.warning(name_node.pos, format!("event `{name}` is accepted but Mobius never raises it"));
            t.other.push(name);
        }
    }
}

fn ref_filter(r: &mut Report, node: &Node, event: &str) -> RefFilter {
    let mut f = RefFilter::default();
    let Some(map) = mapping(r, node, event) else { return f };
    check_keys(r, map, REF_FILTER_KEYS, &format!("`{event}`"));
    for (k, v) in map {
        let key = k.as_str().unwrap_or("");
        let list = strings(r, v, key);
        match key {
            "branches" => f.branches = list,
            "branches-ignore" => f.branches_ignore = list,
            "tags" => f.tags = list,
            "tags-ignore" => f.tags_ignore = list,
            "paths" => f.paths = list,
            "paths-ignore" => f.paths_ignore = list,
            "types" => f.types = list,
            _ => {}
        }
    }
    for (a, b) in [("branches", "branches-ignore"), ("paths", "paths-ignore"), ("tags", "tags-ignore")] {
        let has = |name: &str| map.iter().any(|(k, _)| k.as_str() == Some(name));
        if has(a) && has(b) {
            r.error(node.pos, format!("`{event}` cannot have both `{a}` and `{b}`"));
        }
    }
    f
}

/// The filter of an event that only takes `types` (`release`).
fn types_filter(r: &mut Report, node: &Node, event: &str) -> RefFilter {
    let mut f = RefFilter::default();
    let Some(map) = mapping(r, node, event) else { return f };
    check_keys(r, map, &["types"], &format!("`{event}`"));
    if let Some((_, v)) = map.iter().find(|(k, _)| k.as_str() == Some("types")) {
        f.types = strings(r, v, "types");
    }
    f
}

fn inputs(r: &mut Report, node: &Node) -> Vec<Input> {
    let Some(map) = mapping(r, node, "workflow_dispatch") else { return Vec::new() };
    check_keys(r, map, &["inputs"], "`workflow_dispatch`");
    let Some((_, inputs)) = map.iter().find(|(k, _)| k.as_str() == Some("inputs")) else { return Vec::new() };
    let Some(inputs) = mapping(r, inputs, "inputs") else { return Vec::new() };
    inputs.iter().filter_map(|(k, v)| input(r, k, v)).collect()
}

fn input(r: &mut Report, key: &Node, node: &Node) -> Option<Input> {
    let name = key.scalar_string()?;
    let what = format!("input `{name}`");
    // `foo:` with nothing after it is an optional string input, as on GitHub.
    let map: &[(Node, Node)] = if node.kind == Kind::Null { &[] } else { mapping(r, node, &what)? };
    check_keys(r, map, &["description", "required", "default", "type", "options", "deprecationMessage"], &what);
    let mut input = Input { name, description: None, required: false, kind: InputKind::String, default: None };
    let mut options = Vec::new();
    let mut kind_name = "string".to_string();
    let mut kind_pos = node.pos;
    let mut default_node = None;
    for (k, v) in map {
        match k.as_str().unwrap_or("") {
            "description" => input.description = string(r, v, "description"),
            "required" => match v.kind {
                Kind::Bool(b) => input.required = b,
                _ => type_error(r, v, "required", "a boolean"),
            },
            "default" => {
                input.default = string(r, v, "default");
                default_node = Some(v);
            }
            "type" => {
                kind_name = string(r, v, "type").unwrap_or_default();
                kind_pos = v.pos;
            }
            "options" => options = strings(r, v, "options"),
            _ => {}
        }
    }
    input.kind = match kind_name.as_str() {
        "string" => InputKind::String,
        "boolean" => InputKind::Boolean,
        "number" => InputKind::Number,
        "environment" => InputKind::Environment,
        "choice" => {
            if options.is_empty() {
                r.error(node.pos, format!("{what} of type `choice` needs `options`"));
            }
            InputKind::Choice(options)
        }
        other => {
            r.error(
                kind_pos,
                format!("{what} has unknown type `{other}` (string, boolean, choice, number or environment)"),
            );
            InputKind::String
        }
    };
    if let (Some(d), Some(default)) = (default_node, &input.default) {
        let ok = match &input.kind {
            InputKind::Boolean => matches!(d.kind, Kind::Bool(_)) || default == "true" || default == "false",
            InputKind::Number => default.parse::<f64>().is_ok(),
            InputKind::Choice(options) => options.contains(default),
            InputKind::String | InputKind::Environment => true,
        };
        if !ok {
            r.error(d.pos, format!("default `{default}` of {what} does not fit its type"));
        }
    }
    Some(input)
}

fn cron_entry(r: &mut Report, node: &Node) -> Option<String> {
    let map = mapping(r, node, "schedule entry")?;
    check_keys(r, map, &["cron", "timezone"], "a `schedule` entry");
    // `timezone`: an IANA name (`America/New_York`) the cron is read in; UTC without it.
    if let Some((_, zone)) = map.iter().find(|(k, _)| k.as_str() == Some("timezone"))
        && let Some(name) = string(r, zone, "timezone")
        && (name.is_empty() || name.contains(char::is_whitespace))
    {
        r.error(zone.pos, format!("timezone {name:?} is not an IANA time zone name such as America/New_York"));
    }
    let (_, value) = map.iter().find(|(k, _)| k.as_str() == Some("cron"))?;
    let cron = string(r, value, "cron")?;
    // Starter workflows carry `$cron-daily`-style placeholders that GitHub fills in when the
    // starter is added, like `$default-branch`.
    if cron.starts_with("$cron-") {
        return Some(cron);
    }
    if let Err(why) = check_cron(&cron) {
        r.error(value.pos, format!("invalid cron `{cron}`: {}", Chain(&why)));
        return None;
    }
    Some(cron)
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Why a `schedule` cron expression is not one GitHub accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five fields.
    #[error("expected 5 fields, found {found}")]
    FieldCount {
        /// How many there are.
        found: usize,
    },
    /// One item of a field is wrong.
    #[error("{field} field `{text}`")]
    Field {
        /// `minute`, `hour`, `day of month`, `month` or `day of week`.
        field: &'static str,
        /// The whole field as written.
        text: String,
        /// What is wrong with the item.
        #[source]
        source: CronItemError,
    },
}

/// What is wrong with one item of a cron field (`*/5`, `1-5`, `MON`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronItemError {
    /// The step after `/` is not a number from 1 to the field's maximum.
    #[error("bad step `{step}`")]
    BadStep {
        /// The step as written.
        step: String,
    },
    /// A value (number or name) outside the field's range.
    #[error("`{value}` is not in {min}-{max}")]
    OutOfRange {
        /// The value as written.
        value: String,
        /// The field's smallest value.
        min: u32,
        /// The field's largest value.
        max: u32,
    },
    /// A range that ends before it starts.
    #[error("range `{range}` is backwards")]
    Backwards {
        /// The range as written.
        range: String,
    },
}

/// Checks a POSIX 5-field cron expression as GitHub accepts it: numbers, `*`, ranges,
/// steps, lists, and month/day names.
pub fn check_cron(cron: &str) -> Result<(), CronError> {
    Cron::parse(cron).map(drop)
}

/// A parsed `schedule` cron expression, in UTC as GitHub reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// One bit per allowed value of each field: minute, hour, day of month, month, day of week
    /// (Sunday is 0; 7 is folded into it).
    fields: [u64; 5],
    /// Whether day of month and day of week were both restricted (not `*`): then a day
    /// matches when either does, as cron has it.
    either_day: bool,
}

impl Cron {
    /// Parses a 5-field cron expression.
    pub fn parse(cron: &str) -> Result<Cron, CronError> {
        let texts: Vec<&str> = cron.split_whitespace().collect();
        if texts.len() != 5 {
            return Err(CronError::FieldCount { found: texts.len() });
        }
        let specs: [(&str, u32, u32, &[&str]); 5] = [
            ("minute", 0, 59, &[]),
            ("hour", 0, 23, &[]),
            ("day of month", 1, 31, &[]),
            ("month", 1, 12, &MONTHS),
            ("day of week", 0, 7, &DAYS),
        ];
        let mut fields = [0u64; 5];
        for (index, (text, (field, min, max, names))) in texts.iter().zip(specs).enumerate() {
            for item in text.split(',') {
                fields[index] |= cron_item(item, min, max, names).map_err(|source| CronError::Field {
                    field,
                    text: (*text).to_owned(),
                    source,
                })?;
            }
        }
        // Sunday is 0 and 7.
        if fields[4] & (1 << 7) != 0 {
            fields[4] = (fields[4] & !(1 << 7)) | 1;
        }
        let restricted = |text: &str| !text.starts_with('*');
        Ok(Cron { fields, either_day: restricted(texts[2]) && restricted(texts[4]) })
    }

    /// Whether the minute starting at `at` (UTC) is one of the expression's.
    pub fn matches(&self, at: jiff::Timestamp) -> bool {
        let t = at.to_zoned(jiff::tz::TimeZone::UTC);
        let has = |field: usize, value: i64| u32::try_from(value).is_ok_and(|v| self.fields[field] & (1 << v) != 0);
        let day_of_month = has(2, t.day().into());
        let day_of_week = has(4, t.weekday().to_sunday_zero_offset().into());
        let day = if self.either_day { day_of_month || day_of_week } else { day_of_month && day_of_week };
        has(0, t.minute().into()) && has(1, t.hour().into()) && has(3, t.month().into()) && day
    }
}

/// The values one item of a field allows, as bits.
fn cron_item(item: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, CronItemError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let step = match step {
        Some(step) => match step.parse::<u32>() {
            Ok(n) if n > 0 && n <= max => n,
            _ => return Err(CronItemError::BadStep { step: step.to_owned() }),
        },
        None => 1,
    };
    let value = |s: &str| -> Result<u32, CronItemError> {
        let named = names.iter().position(|n| n.eq_ignore_ascii_case(s)).map(|i| i as u32 + min);
        // A value that is neither a name nor a number is out of range like any other.
        match named.or_else(|| s.parse::<u32>().ok()) {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(CronItemError::OutOfRange { value: s.to_owned(), min, max }),
        }
    };
    let (first, last) = match (range, range.split_once('-')) {
        ("*", _) => (min, max),
        (_, Some((a, b))) => {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(CronItemError::Backwards { range: range.to_owned() });
            }
            (a, b)
        }
        // `5/15` is every 15th from 5 to the end, as cron reads it.
        (_, None) if step > 1 => (value(range)?, max),
        (_, None) => {
            let v = value(range)?;
            (v, v)
        }
    };
    Ok((first..=last).step_by(step as usize).fold(0, |bits, v| bits | (1 << v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron() {
        for ok in ["0 0 * * *", "*/15 1-5 1,15 JAN-MAR mon", "30 5 * * 1-5", "0 0 1 */2 7"] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap();
        let every_15 = Cron::parse("*/15 9-17 * * MON-FRI").unwrap();
        assert!(every_15.matches(at("2026-12-07T09:45:00Z")), "a Monday");
        assert!(!every_15.matches(at("2026-12-07T09:46:00Z")));
        assert!(!every_15.matches(at("2026-12-06T09:45:00Z")), "a Sunday");
        let either = Cron::parse("0 0 1 * 0").unwrap();
        assert!(either.matches(at("2026-12-01T00:00:00Z")), "the 1st, a Tuesday");
        assert!(either.matches(at("2026-12-06T00:00:00Z")), "a Sunday, the 6th");
        assert!(!either.matches(at("2026-12-02T00:00:00Z")));
        assert!(Cron::parse("0 12 * * 7").unwrap().matches(at("2026-12-06T12:00:00Z")), "7 is Sunday");
        for bad in [
            "0 0 * *",
            "60 0 * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "x * * * *",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
        let minute = |source| CronError::Field { field: "minute", text: "5-1".into(), source };
        assert_eq!(check_cron("5-1 * * * *"), Err(minute(CronItemError::Backwards { range: "5-1".into() })));
        assert_eq!(check_cron("0 0 * *"), Err(CronError::FieldCount { found: 4 }));
        let why = check_cron("* * * 13 *").unwrap_err();
        assert_eq!(Chain(&why).to_string(), "month field `13`: `13` is not in 1-12");
    }
}
