//! The `${{ }}` expression language: any text is parsed or refused at a column inside it,
//! well-formed expressions always parse and evaluate the same way twice, and nesting past the
//! cap is an error rather than a stack overflow.

use std::sync::OnceLock;

use mobius_pipelines::expr::{
    self, ExprError, JobStatus, MapContext, Segment, evaluate_condition, parse_template, render, uses_status_function,
};
use proptest::prelude::*;
use serde_json::json;

use super::{config, expression_noise};

/// A workspace for `hashFiles`, made once per test binary.
fn workspace() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("a.txt"), "a").expect("write");
        std::fs::write(dir.path().join("src/b.rs"), "fn b() {}").expect("write");
        dir
    })
    .path()
}

fn context(status: JobStatus) -> MapContext {
    MapContext::new()
        .with(
            "github",
            json!({
                "event_name": "push",
                "ref": "refs/heads/main",
                "event": {"commits": [{"id": "c1", "message": "Fix}}"}, {"id": "c2"}], "number": 7},
                "labels": {"x": {"name": "bug"}, "y": {"name": "docs"}},
                "list": [10, 20.5, null, "30"],
            }),
        )
        .with("matrix", json!({"os": "ubuntu-latest", "node": 20, "flags": [true, false]}))
        .with("env", json!({"CI": "true", "EMPTY": ""}))
        .with("steps", json!({"build": {"outputs": {"digest": "sha256:ab"}, "outcome": "success"}}))
        .with_status(status)
        .with_workspace(workspace())
}

fn status() -> impl Strategy<Value = JobStatus> {
    prop::sample::select(&[JobStatus::Success, JobStatus::Failure, JobStatus::Cancelled][..])
}

/// A single-quoted string literal of any text.
fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        prop::sample::select(&["}}", "${{", "{0} {1}", "{", "[1, {\"a\": 2}]", "ab", ""][..]).prop_map(str::to_owned)
    ]
    .prop_map(|s| format!("'{}'", s.replace('\'', "''")))
}

fn property_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &["event", "commits", "id", "ref", "os", "node", "outputs", "build", "CI", "null", "true", "*"][..]
        )
        .prop_map(str::to_owned),
        "[a-zA-Z_][a-zA-Z0-9_-]{0,6}",
    ]
}

/// A context with up to three property accesses or indexes.
fn context_access() -> impl Strategy<Value = String> {
    let context = prop::sample::select(&expr::CONTEXTS[..]);
    let access = prop_oneof![
        property_name().prop_map(|n| format!(".{n}")),
        string_literal().prop_map(|s| format!("[{s}]")),
        (0u8..4).prop_map(|i| format!("[{i}]")),
        Just("[*]".to_owned()),
    ];
    (context, prop::collection::vec(access, 0..4)).prop_map(|(c, accesses)| format!("{c}{}", accesses.concat()))
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &["null", "true", "false", "NaN", "Infinity", "-Infinity", "0x1F", "0o17", "1e3", "-2.5", ".5", "0"][..]
        )
        .prop_map(str::to_owned),
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        string_literal(),
    ]
}

/// A well-formed expression: every function with a valid number of arguments, every bare name
/// a known context. Each level of the strategy adds at most two levels of nesting, so the
/// result stays far below the cap.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![literal(), context_access()];
    leaf.prop_recursive(6, 64, 4, |inner| {
        let op = prop::sample::select(&["==", "!=", "<", "<=", ">", ">=", "&&", "||"][..]);
        prop_oneof![
            inner.clone().prop_map(|e| format!("({e})")),
            inner.clone().prop_map(|e| format!("!{e}")),
            (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (inner.clone(), property_name()).prop_map(|(e, p)| format!("({e}).{p}")),
            (inner.clone(), inner.clone()).prop_map(|(e, i)| format!("({e})[{i}]")),
            (prop::sample::select(&["contains", "startsWith", "endsWith", "join"][..]), inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            (prop::sample::select(&["toJSON", "fromJSON", "join", "toJson"][..]), inner.clone())
                .prop_map(|(f, a)| format!("{f}({a})")),
            (string_literal(), prop::collection::vec(inner.clone(), 0..3)).prop_map(|(t, args)| format!(
                "format({t}{})",
                args.iter().map(|a| format!(", {a}")).collect::<String>()
            )),
            prop::sample::select(
                &[
                    "success()",
                    "failure()",
                    "cancelled()",
                    "always()",
                    "hashFiles('**/*.rs', '!src/x')",
                    "hashFiles('*.txt')"
                ][..]
            )
            .prop_map(str::to_owned),
        ]
    })
}

/// What an evaluation gave, comparable (`NaN` included, through its display form).
fn outcome(result: Result<expr::Value, ExprError>) -> Result<(serde_json::Value, String), ExprError> {
    result.map(|v| (v.to_json(), v.to_display_string()))
}

/// An error's column is a char of the text (or just past its end).
fn assert_inside(error: &ExprError, text: &str) {
    if let Some(column) = error.column() {
        assert!((1..=text.chars().count() + 1).contains(&column), "{error} is outside {text:?}");
    }
}

/// One level of nesting around an expression. Each adds at least one and at most two levels
/// to the parser's count (a property access and the parentheses it needs, an operator and
/// the parentheses that keep its operand from joining the chain).
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Paren,
    Not,
    Call,
    Format,
    Index,
    Property,
    Operand,
}

fn wrap(inner: &str, how: Wrap) -> String {
    match how {
        Wrap::Paren => format!("({inner})"),
        Wrap::Not => format!("!{inner}"),
        Wrap::Call => format!("toJSON({inner})"),
        Wrap::Format => format!("format('{{0}}', {inner})"),
        Wrap::Index => format!("github[{inner}]"),
        Wrap::Property => format!("({inner}).a"),
        Wrap::Operand => format!("1 == ({inner})"),
    }
}

fn wraps(max: usize) -> impl Strategy<Value = Vec<Wrap>> {
    let how = prop::sample::select(
        &[Wrap::Paren, Wrap::Not, Wrap::Call, Wrap::Format, Wrap::Index, Wrap::Property, Wrap::Operand][..],
    );
    prop::collection::vec(how, 0..max)
}

proptest! {
    #![proptest_config(config(512))]

    /// Any text is an expression, a template or an `if:`, or refused at a column inside it.
    #[test]
    fn any_text_is_parsed_or_refused_at_a_column_inside_it(text in expression_noise(), status in status()) {
        let ctx = context(status);
        match expr::parse(&text) {
            Ok(parsed) => drop(expr::evaluate(&parsed, &ctx)),
            Err(e) => assert_inside(&e, &text),
        }
        match parse_template(&text) {
            Ok(segments) => drop(expr::evaluate_template(&segments, &ctx)),
            Err(e) => assert_inside(&e, &text),
        }
        if let Err(e) = render(&text, &ctx) {
            assert_inside(&e, &text);
        }
        drop(evaluate_condition(&text, &ctx));
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A well-formed expression parses, and evaluates to the same value every time, bare,
    /// inside `${{ }}` in a template, and as an `if:` with its implicit `success() &&`.
    #[test]
    fn well_formed_expressions_parse_and_evaluate_deterministically(text in expression(), status in status()) {
        let ctx = context(status);
        let parsed = expr::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let reparsed = expr::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        prop_assert_eq!(format!("{parsed:?}"), format!("{reparsed:?}"));

        let first = outcome(expr::evaluate(&parsed, &ctx));
        prop_assert_eq!(&first, &outcome(expr::evaluate(&reparsed, &context(status))));

        // `}}` inside a string literal does not end the template's expression.
        let template = format!("${{{{ {text} }}}}");
        let segments = parse_template(&template).unwrap_or_else(|e| panic!("{template}: {e}"));
        prop_assert!(matches!(segments.as_slice(), [Segment::Expression(_)]), "{segments:?}");
        prop_assert_eq!(&first, &outcome(expr::evaluate_template(&segments, &ctx)));
        let rendered = render(&format!("x{template}"), &ctx);
        prop_assert_eq!(rendered.ok(), first.as_ref().ok().map(|(_, display)| format!("x{display}")));

        let truthy = expr::evaluate(&parsed, &ctx).map(|v| v.is_truthy());
        // Without a status function an `if:` is `success() && (expr)`.
        let expected = if uses_status_function(&parsed) || status == JobStatus::Success { truthy } else { Ok(false) };
        prop_assert_eq!(&evaluate_condition(&text, &ctx), &expected);
        prop_assert_eq!(&evaluate_condition(&template, &ctx), &expected);
    }

    /// Nesting is capped at 50 levels: past it an expression is refused as too deep (never a
    /// stack overflow), well within it it parses and evaluates. In a template the error's
    /// column is inside the text.
    #[test]
    fn nesting_beyond_the_cap_is_an_error(wraps in wraps(400), status in status()) {
        let text = wraps.iter().fold("github.event".to_owned(), |inner, how| wrap(&inner, *how));
        let parsed = expr::parse(&text);
        if wraps.len() > 50 {
            prop_assert!(matches!(parsed, Err(ExprError::TooDeep { .. })), "{} wraps: {parsed:?}", wraps.len());
        } else if wraps.len() <= 24 {
            let parsed = parsed.unwrap_or_else(|e| panic!("{text}: {e}"));
            drop(expr::evaluate(&parsed, &context(status)));
        } else {
            prop_assert!(matches!(parsed, Ok(_) | Err(ExprError::TooDeep { .. })), "{parsed:?}");
        }
        let template = format!("é ${{{{ {text} }}}}");
        if let Err(e) = parse_template(&template) {
            prop_assert!(matches!(e, ExprError::TooDeep { .. }), "{e}");
            assert_inside(&e, &template);
        }
        drop(evaluate_condition(&text, &context(status)));
    }
}
