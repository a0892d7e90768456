//! Property tests of `mobius.yaml` (`ServiceSpec::parse`): arbitrary text and mutated valid
//! specs are accepted or refused as `mobius.yaml:LINE:COL: …` at a position inside the file,
//! never with a panic.
//!
//! Each property runs a modest number of cases by default so that CI stays fast; set
//! `PROPTEST_CASES` to run many more (`bench/fuzz.sh` does, in release mode).

use mobius_deploy::spec::{STARTER, ServiceSpec, Span, Strategy as Rollout};
use proptest::prelude::*;
use proptest::sample::Index;

/// `cases` cases, unless `PROPTEST_CASES` says otherwise. proptest reads the variable into
/// `ProptestConfig::default()`, but an explicit case count would override it, so the default
/// count is only applied when the variable is unset.
fn config(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() { config } else { ProptestConfig { cases, ..config } }
}

/// Valid specs the mutations start from: the starter, and the shapes it does not show.
const TEMPLATES: &[&str] = &[
    STARTER,
    "service: shop\nrun:\n  command: ./shop\nenvironments:\n  - name: production\n    listen: 127.0.0.1:8080\n",
    "service: shop\nrun:\n  command: ./shop\n  readiness_timeout: 1.5s\n  shutdown_grace: 500ms\n  instances: 3\n\
     environments:\n  - name: staging\n    listen: 127.0.0.1:8081\n    strategy: {blue_green: {scale_down_delay: 1m, analysis: true}}\n\
     \x20 - name: production\n    listen: '[::1]:8080'\n    approval: manual\n    analysis: {count: 2, max_error_rate: 0.05}\n\
     \x20   strategy:\n      canary:\n        steps:\n          - set_weight: 20\n          - pause: {duration: 30s}\n\
     \x20         - pause: {}\n          - analysis: {max_p99_ms: 300}\n\
     slos:\n  - name: latency\n    objective: 99\n    window: 7d\n    environment: staging\n    sli: {latency: {threshold_ms: 250}}\n\
     \x20   alerting: {webhooks: ['https://hooks.example/x'], quiet_period: 10m, for: 2m}\n\
     \x20 - name: prom\n    objective: 99.5\n    sli:\n      prometheus:\n        url: http://127.0.0.1:9090\n\
     \x20       error_query: sum(rate(errors[{{window}}]))\n        total_query: sum(rate(requests[{{window}}]))\n",
];

/// Keys of `mobius.yaml`, and some it does not have.
const KEYS: &[&str] = &[
    "service",
    "owner",
    "runbook",
    "run",
    "command",
    "args",
    "env",
    "port_env",
    "health",
    "readiness_timeout",
    "shutdown_grace",
    "instances",
    "environments",
    "name",
    "listen",
    "strategy",
    "approval",
    "analysis",
    "canary",
    "steps",
    "set_weight",
    "pause",
    "duration",
    "blue_green",
    "scale_down_delay",
    "interval_secs",
    "count",
    "max_error_rate",
    "slos",
    "objective",
    "window",
    "sli",
    "availability",
    "latency",
    "threshold_ms",
    "prometheus",
    "url",
    "good_query",
    "error_query",
    "total_query",
    "alerting",
    "webhooks",
    "slack",
    "quiet_period",
    "for",
    "policy",
    "comand",
    "x",
];

/// Values each field refuses or barely accepts: huge and negative numbers, durations past
/// what a `Duration` holds, addresses, windows, URLs, YAML oddities.
const VALUES: &[&str] = &[
    "shop",
    "my shop",
    "",
    "./shop",
    "/healthz",
    "healthz",
    "0",
    "1",
    "64",
    "65",
    "-1",
    "100",
    "101",
    "255",
    "256",
    "4294967296",
    "18446744073709551616",
    "1e300",
    "-1e300",
    "1e400",
    ".nan",
    ".inf",
    "0.5",
    "99.9",
    "30s",
    "500ms",
    "1.5s",
    "5m",
    "1h",
    "5d",
    "99999999999999999999h",
    "1e30s",
    "18446744073709551615s",
    "0s",
    "30d",
    "367d",
    "0d",
    "a month",
    "127.0.0.1:8080",
    "[::1]:80",
    "localhost",
    "127.0.0.1:99999",
    "auto",
    "manual",
    "rolling",
    "{blue_green: {}}",
    "{canary: {steps: []}}",
    "{canary: {steps: [{set_weight: 300}]}}",
    "{availability: {}}",
    "{latency: {threshold_ms: 0}}",
    "http://",
    "https://x",
    "rate(x[{{window}}])",
    "{}",
    "[]",
    "[a, b]",
    "{a: 1}",
    "null",
    "~",
    "true",
    "yes",
    "é💥",
    "\t",
    "&a 1",
    "*a",
    "*missing",
    "!!str 1",
    "\"esc\\u00e9\"",
    "'it''s'",
    "\"unterminated",
    "|",
    ">-",
    "- a",
    "? k",
];

/// One line of YAML-ish text.
fn line() -> impl Strategy<Value = String> {
    let indent = prop_oneof![(0usize..10).prop_map(|n| " ".repeat(n)), Just("\t".to_owned())];
    let key = prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => "[a-z_]{1,8}"];
    let value = prop_oneof![4 => prop::sample::select(VALUES).prop_map(str::to_owned), 1 => ".{0,16}"];
    let body = prop_oneof![
        (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k}: {v}")),
        key.clone().prop_map(|k| format!("{k}:")),
        (key, value.clone()).prop_map(|(k, v)| format!("- {k}: {v}")),
        value.clone().prop_map(|v| format!("- {v}")),
        value,
    ];
    (indent, body).prop_map(|(indent, body)| format!("{indent}{body}"))
}

fn yamlish() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..30), prop::sample::select(&["\n", "\r\n", "\r"][..]), any::<bool>()).prop_map(
        |(lines, newline, trailing)| {
            let mut text = lines.join(newline);
            if trailing {
                text.push_str(newline);
            }
            text
        },
    )
}

/// One change to a valid spec.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Indent(Index, i8),
    /// A value or fragment inserted at a char.
    Insert(Index, String),
    /// The text after a line's `: ` replaced.
    ReplaceValue(Index, String),
    /// The value of every line with this key replaced, so that each field meets the values
    /// it refuses.
    SetField(&'static str, String),
    Truncate(Index),
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(VALUES).prop_map(str::to_owned),
        1 => ".{0,8}",
        1 => (1usize..100_000).prop_map(|n| "x".repeat(n)),
        1 => (1usize..100).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        1 => (1usize..100).prop_map(|n| format!("{}{}", "{a: ".repeat(n), "}".repeat(n))),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<Index>(), -4i8..=4).prop_map(|(at, by)| Mutation::Indent(at, by)),
        2 => (any::<Index>(), fragment()).prop_map(|(at, f)| Mutation::Insert(at, f)),
        4 => (any::<Index>(), fragment()).prop_map(|(at, f)| Mutation::ReplaceValue(at, f)),
        4 => (prop::sample::select(KEYS), fragment()).prop_map(|(key, f)| Mutation::SetField(key, f)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    match mutation {
        Mutation::DeleteLine(at) => drop(lines.remove(at.index(lines.len()))),
        Mutation::DuplicateLine(at) => {
            let i = at.index(lines.len());
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapLines(a, b) => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }
        Mutation::Indent(at, by) => {
            let i = at.index(lines.len());
            let line = &mut lines[i];
            match *by {
                0 => line.insert(0, '\t'),
                by if by > 0 => line.insert_str(0, &" ".repeat(by as usize)),
                by => {
                    let spaces = line.len() - line.trim_start_matches(' ').len();
                    line.drain(..spaces.min(by.unsigned_abs() as usize));
                }
            }
        }
        Mutation::Insert(at, fragment) => {
            let chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            return chars[..i].iter().copied().chain(fragment.chars()).chain(chars[i..].iter().copied()).collect();
        }
        Mutation::ReplaceValue(at, fragment) => {
            let with_values: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains(": ")).collect();
            if !with_values.is_empty() {
                let line = &mut lines[*at.get(&with_values)];
                let value = line.find(": ").expect("filtered on it") + 2;
                line.replace_range(value.., fragment);
            }
        }
        Mutation::SetField(key, fragment) => {
            for line in &mut lines {
                let field = line.trim_start().trim_start_matches("- ");
                if field.strip_prefix(key).is_some_and(|rest| rest.starts_with(": ")) {
                    let value = line.find(": ").expect("just seen") + 2;
                    line.replace_range(value.., fragment);
                }
            }
        }
        Mutation::Truncate(at) => {
            let chars: Vec<char> = text.chars().collect();
            return chars[..at.index(chars.len() + 1)].iter().collect();
        }
    }
    lines.join("\n")
}

/// The file's lines as YAML counts them: a line break is `\r\n`, `\n` or a lone `\r`.
fn lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let (mut start, bytes) = (0, text.as_bytes());
    let mut i = 0;
    while i < bytes.len() {
        let width = match (bytes[i], bytes.get(i + 1)) {
            (b'\r', Some(b'\n')) => 2,
            (b'\r' | b'\n', _) => 1,
            _ => 0,
        };
        if width > 0 {
            lines.push(&text[start..i]);
            start = i + width;
            i = start;
        } else {
            i += 1;
        }
    }
    lines.push(&text[start..]);
    lines
}

/// A refusal is `mobius.yaml:LINE:COL: message` at a char of the file (or just past the end
/// of a line); an acceptance holds what validation promises.
fn check(text: &str) {
    match ServiceSpec::parse("mobius.yaml", text) {
        Ok(spec) => {
            assert!(!spec.name().is_empty());
            assert!((1..=64).contains(&spec.run.instances.value));
            assert!(!spec.environments.value.is_empty());
            for environment in &spec.environments.value {
                assert!(environment.listen.value.parse::<std::net::SocketAddr>().is_ok());
                if let Rollout::Canary(canary) = &environment.strategy {
                    for step in &canary.steps {
                        assert!(!matches!(step.value, mobius_deploy::spec::Step::SetWeight(w) if w > 100));
                    }
                }
            }
        }
        Err(e) => {
            let rendered = e.to_string();
            let prefix = format!("mobius.yaml:{}:{}: ", e.line, e.column);
            assert!(rendered.starts_with(&prefix) && rendered.len() > prefix.len(), "{rendered}");
            let lines = lines(text);
            let line = usize::try_from(e.line).ok().and_then(|l| l.checked_sub(1)).and_then(|i| lines.get(i));
            let line = line.unwrap_or_else(|| panic!("{rendered}: line {} of {}", e.line, lines.len()));
            let width = line.chars().count() as u64;
            assert!((1..=width + 1).contains(&e.column), "{rendered}: column {} of a line of {width} chars", e.column);
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// YAML-ish text made of `mobius.yaml`'s keys and values.
    #[test]
    fn yamlish_text_is_parsed_or_refused_at_a_position_inside_it(text in yamlish()) {
        check(&text);
    }

    /// Valid specs with lines deleted, moved or re-indented, values replaced, fragments put in,
    /// or cut short.
    #[test]
    fn mutated_specs_are_parsed_or_refused_at_a_position_inside_them(
        template in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = mutations.iter().fold(template.get(TEMPLATES).to_string(), |text, m| mutate(&text, m));
        check(&text);
    }

    /// A duration is read or refused whatever its text.
    #[test]
    fn any_span_text_is_read_or_refused(text in prop_oneof![".{0,24}", "[0-9]{1,40}(\\.[0-9]{0,10})?(ms|s|m|h|d|)"]) {
        if let Some(span) = Span::parse(&text) {
            // What is read prints as a duration that reads back the same, to the millisecond.
            let printed = span.to_string();
            let again = Span::parse(&printed).unwrap_or_else(|| panic!("{text} printed as {printed}"));
            prop_assert_eq!(again.0.as_millis(), span.0.as_millis());
        }
    }
}

/// The templates are valid: the mutations start from specs that parse.
#[test]
fn the_templates_parse() {
    for template in TEMPLATES {
        if let Err(e) = ServiceSpec::parse("mobius.yaml", template) {
            panic!("{e}\n{template}");
        }
    }
}
