//! The `${{ }}` expression language against GitHub's documented results.

use mobius_pipelines::expr::{self, JobStatus, MapContext, evaluate_condition, render};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The contexts most rows read.
fn fixture() -> MapContext {
    MapContext::new()
        .with(
            "github",
            json!({
                "event_name": "push",
                "Ref": "refs/heads/main",
                "event": { "commits": [{ "id": "c1" }, { "id": "c2" }] },
                "items": [{ "name": "a" }, { "other": 1 }, { "name": "b" }],
                "labels": { "x": { "name": "bug" }, "y": { "name": "docs" } },
                "list": [10, 20, 30],
                "empty": "",
            }),
        )
        .with("matrix", json!({ "os": "ubuntu-latest", "node": 20 }))
        .with("env", json!({ "CI": "true" }))
}

/// Evaluates `expression` in `ctx` and compares the result, as JSON, with `expected` (JSON
/// text). An `expected` starting with `error: ` is instead the error's message.
/// `NaN` and the infinities have no JSON form; rows check them through `format`.
fn check_in(ctx: &MapContext, expression: &str, expected: &str) {
    let result = expr::parse(expression).and_then(|e| expr::evaluate(&e, ctx));
    match (expected.strip_prefix("error: "), result) {
        (Some(message), Err(error)) => assert_eq!(error.to_string(), message, "{expression}"),
        (None, Ok(value)) => {
            let expected: serde_json::Value = serde_json::from_str(expected).expect("expected is JSON");
            assert_eq!(value.to_json(), expected, "{expression}");
        }
        (_, result) => panic!("{expression}: expected {expected}, got {result:?}"),
    }
}

fn check(expression: &str, expected: &str) {
    check_in(&fixture(), expression, expected);
}

#[test]
fn expressions() {
    let table: &[(&str, &str)] = &[
        // Literals.
        ("null", "null"),
        ("true", "true"),
        ("false", "false"),
        ("711", "711"),
        ("-9.2", "-9.2"),
        ("0x1F", "31"),
        ("1e3", "1000"),
        ("-2.5e-1", "-0.25"),
        ("'it''s'", r#""it's""#),
        ("format('{0} {1} {2}', NaN, Infinity, -Infinity)", r#""NaN Infinity -Infinity""#),
        // Truthiness and `!`: false, 0, -0, '', null and NaN are falsy.
        ("!''", "true"),
        ("!'0'", "false"),
        ("!0", "true"),
        ("!-0", "true"),
        ("!NaN", "true"),
        ("!null", "true"),
        ("!fromJSON('[]')", "false"),
        ("!fromJSON('{}')", "false"),
        ("!!'x'", "true"),
        // `&&` and `||` return an operand.
        ("'a' && 'b'", r#""b""#),
        ("'' && 'b'", r#""""#),
        ("0 || 'x'", r#""x""#),
        ("null || false", "false"),
        ("'first' || 'second'", r#""first""#),
        // Precedence: `!` > comparisons > equality > `&&` > `||`; parentheses group.
        ("true || false && false", "true"),
        ("(true || false) && false", "false"),
        ("!true == false", "true"),
        ("1 < 2 == true", "true"),
        ("!(1 == 2)", "true"),
        // Loose equality: different kinds compare as numbers.
        ("null == 0", "true"),
        ("false == 0", "true"),
        ("true == 1", "true"),
        ("true == 2", "false"),
        ("'' == 0", "true"),
        ("' 12 ' == 12", "true"),
        ("'0x10' == 16", "true"),
        ("' 0xFF ' == 255", "true"),
        ("' 0o10 ' == 8", "true"),
        ("' +123456.789 ' == 123456.789", "true"),
        ("' -Infinity ' == -Infinity", "true"),
        ("' NaN ' == NaN", "false"),
        ("'abc' == 0", "false"),
        ("1 == '1'", "true"),
        ("'1.0' == 1", "true"),
        ("null == false", "true"),
        ("null == ''", "true"),
        ("fromJSON('[]') == 0", "false"),
        ("fromJSON('{}') == fromJSON('{}')", "false"),
        ("github == github", "true"),
        ("github.list == github.list", "true"),
        // Strings compare case-insensitively.
        ("'abc' == 'ABC'", "true"),
        ("'abc' != 'ABD'", "true"),
        ("'a' < 'B'", "true"),
        ("'b' >= 'A'", "true"),
        // NaN compares false with everything, itself included.
        ("NaN == NaN", "false"),
        ("NaN != NaN", "true"),
        ("NaN < 1", "false"),
        ("NaN >= NaN", "false"),
        ("'abc' < 1", "false"),
        ("'abc' >= 1", "false"),
        // Orderings of other kinds are numeric.
        ("'10' < 9", "false"),
        ("'10' > 9", "true"),
        ("null < 1", "true"),
        ("false < true", "true"),
        ("2 <= 2", "true"),
        ("3 > 2", "true"),
        // Contexts and properties: case-insensitive, null when missing.
        ("github.event_name", r#""push""#),
        ("GITHUB.ref", r#""refs/heads/main""#),
        ("github['REF']", r#""refs/heads/main""#),
        ("github.missing", "null"),
        ("github.missing.deeper['x']", "null"),
        ("github.event_name.length", "null"),
        ("vars", "null"),
        ("vars.anything", "null"),
        ("matrix.node == 20", "true"),
        ("env.CI == 'TRUE'", "true"),
        ("github.list[1]", "20"),
        ("github.list['2']", "30"),
        ("github.list[3]", "null"),
        ("github.list[-1]", "null"),
        ("github.list[0.5]", "null"),
        // Array indexes coerce to numbers.
        ("github.list[null]", "10"),
        ("github.list[true]", "20"),
        ("github.list[' 0x02 ']", "30"),
        ("github.list['x']", "null"),
        ("(!github).ref", "null"),
        ("!2 < 3", "true"),
        ("github.event.commits[1].id", r#""c2""#),
        ("github['event']['commits'][0]['id']", r#""c1""#),
        // The object filter maps over arrays and object values, skipping missing properties.
        ("github.items.*.name", r#"["a", "b"]"#),
        ("github.labels.*.name", r#"["bug", "docs"]"#),
        ("github.event.commits[*].id", r#"["c1", "c2"]"#),
        ("github.list.*", "[10, 20, 30]"),
        ("github.labels.*", r#"[{"name": "bug"}, {"name": "docs"}]"#),
        ("github.event_name.*", "[]"),
        ("contains(github.items.*.name, 'B')", "true"),
        // contains.
        ("contains('Hello world', 'WORLD')", "true"),
        ("contains('Hello', 'x')", "false"),
        ("contains(fromJSON('[1,2]'), '2')", "true"),
        ("contains(fromJSON('[1,2]'), 3)", "false"),
        ("contains(fromJSON('[\"Bug\"]'), 'bug')", "true"),
        ("contains(12345, 34)", "true"),
        ("contains(fromJSON('{\"a\":1}'), 'a')", "false"),
        ("contains(null, '')", "true"),
        // startsWith / endsWith.
        ("startsWith('Hello world', 'he')", "true"),
        ("startsWith('Hello', 'lo')", "false"),
        ("endsWith('Hello', 'LO')", "true"),
        ("endsWith(12, 2)", "true"),
        ("startsWith(fromJSON('[]'), '')", "false"),
        // Function names are case-insensitive.
        ("TOJSON(1)", r#""1""#),
        ("StartsWith('ab', 'A')", "true"),
        // format.
        ("format('{{0}} {0}', 'x')", r#""{0} x""#),
        ("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", r#""Hello Mona the Octocat""#),
        ("format('{0}/{1}/{2}/{3}', 1.5, true, null, 3)", r#""1.5/true//3""#),
        ("format('{{{0}}}', 'x')", r#""{x}""#),
        ("format('{0}{0}', 'a')", r#""aa""#),
        ("format('{1}', 'x')", "error: invalid format string `{1}`: no argument for `{1}`"),
        ("format('{0', 'x')", "error: invalid format string `{0`: expected `{N}`"),
        ("format('}', 'x')", "error: invalid format string `}`: unmatched `}`"),
        // join.
        ("join(fromJSON('[1, \"a\", true, null]'))", r#""1,a,true,""#),
        ("join(fromJSON('[1,2]'), ' + ')", r#""1 + 2""#),
        ("join(github.items.*.name, ', ')", r#""a, b""#),
        ("join('abc', '-')", r#""abc""#),
        ("join(fromJSON('[]'))", r#""""#),
        // String conversion of numbers: integers without `.0`.
        ("format('{0}', 3.0)", r#""3""#),
        ("format('{0}', -0)", r#""0""#),
        ("format('{0} {1}', .5, -.5)", r#""0.5 -0.5""#),
        ("toJSON(-0)", r#""0""#),
        ("format('{0}', 0x10)", r#""16""#),
        ("format('{0} {1}', fromJSON('[]'), github)", r#""Array Object""#),
        // toJSON / fromJSON.
        ("toJSON(fromJSON('{\"a\":[1,2]}'))", r#""{\n  \"a\": [\n    1,\n    2\n  ]\n}""#),
        ("toJSON('x')", r#""\"x\"""#),
        ("toJSON(null)", r#""null""#),
        ("toJSON(matrix)", r#""{\n  \"node\": 20,\n  \"os\": \"ubuntu-latest\"\n}""#),
        ("fromJSON('{\"a\":{\"B\":2}}').A.b", "2"),
        ("fromJSON('true')", "true"),
        ("fromJSON(' 1.5 ')", "1.5"),
        ("fromJSON('')", "error: fromJSON: EOF while parsing a value at line 1 column 0"),
        // Status functions with a successful job.
        ("success()", "true"),
        ("failure()", "false"),
        ("cancelled()", "false"),
        ("always()", "true"),
        // Parse errors name the problem and the column.
        ("1 == )", "error: unexpected `)` at column 6"),
        ("(1 == 2))", "error: unexpected `)` at column 9"),
        ("foo(1)", "error: unknown function `foo` at column 1"),
        ("1 && bar()", "error: unknown function `bar` at column 6"),
        ("contains('a')", "error: wrong number of arguments to `contains` (expected 2) at column 1"),
        ("join()", "error: wrong number of arguments to `join` (expected 1 to 2) at column 1"),
        ("always(1)", "error: wrong number of arguments to `always` (expected 0) at column 1"),
        ("format()", "error: wrong number of arguments to `format` (expected at least 1) at column 1"),
        ("bogus.x", "error: unrecognized named-value `bogus` at column 1"),
        ("'abc", "error: unterminated string starting at column 1"),
        ("1 = 2", "error: unexpected `=` at column 3"),
        ("12ab", "error: invalid number `12ab` at column 1"),
        ("github.", "error: unexpected end of expression"),
        ("github.list[1", "error: unexpected end of expression"),
        ("1 2", "error: unexpected `2` at column 3"),
        ("", "error: empty expression"),
    ];
    for (expression, expected) in table {
        check(expression, expected);
    }
}

#[test]
fn templates() {
    let ctx = fixture();
    let table: &[(&str, &str)] = &[
        ("plain text", "plain text"),
        ("${{ matrix.os }}", "ubuntu-latest"),
        ("node-${{ matrix.node }}-${{ github.event_name }}", "node-20-push"),
        ("${{ 'a}}b' }}!", "a}}b!"),
        ("${{ format('{{}}') }}", "{}"),
        ("${{ github.missing }}", ""),
        ("${{ true }}/${{ 1.50 }}", "true/1.5"),
    ];
    for (text, expected) in table {
        assert_eq!(render(text, &ctx).as_deref(), Ok(*expected), "{text}");
    }
    // A lone expression keeps its type; anything around it makes a string.
    let lone = expr::parse_template("${{ github.list }}").and_then(|s| expr::evaluate_template(&s, &ctx));
    assert_eq!(lone.map(|v| v.to_json()), Ok(json!([10, 20, 30])));
    let mixed = expr::parse_template(" ${{ matrix.node }}").and_then(|s| expr::evaluate_template(&s, &ctx));
    assert_eq!(mixed.map(|v| v.to_json()), Ok(json!(" 20")));
    assert_eq!(render("x ${{ 1 ==", &ctx).map_err(|e| e.to_string()), Err("unterminated `${{` at column 3".into()));
}

#[test]
fn if_conditions() {
    use JobStatus::{Cancelled, Failure, Success};
    let table: &[(&str, JobStatus, bool)] = &[
        ("github.event_name == 'push'", Success, true),
        ("${{ github.event_name == 'push' }}", Success, true),
        ("github.event_name == 'push'", Failure, false),
        ("github.event_name == 'push'", Cancelled, false),
        ("", Success, true),
        ("", Failure, false),
        ("always()", Failure, true),
        ("${{ always() }}", Cancelled, true),
        ("failure()", Success, false),
        ("failure()", Failure, true),
        ("failure() && github.event_name == 'push'", Failure, true),
        ("cancelled()", Cancelled, true),
        ("success()", Failure, false),
        ("!cancelled()", Failure, true),
        ("'false'", Success, true),
        ("github.missing", Success, false),
    ];
    for (condition, status, expected) in table {
        let ctx = fixture().with_status(*status);
        assert_eq!(evaluate_condition(condition, &ctx), Ok(*expected), "{condition} under {status:?}");
    }
}

#[test]
fn hash_files_matches_githubs_algorithm() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/nested"))?;
    std::fs::write(root.join("Cargo.lock"), "lock")?;
    std::fs::write(root.join("src/a.rs"), "fn a() {}")?;
    std::fs::write(root.join("src/nested/b.rs"), "fn b() {}")?;
    std::fs::write(root.join("src/notes.md"), "notes")?;
    let ctx = fixture().with_workspace(root);

    // Per-file digests concatenated as raw bytes, then hashed, in path order.
    let expected = |contents: &[&str]| {
        let mut outer = Sha256::new();
        for content in contents {
            outer.update(Sha256::digest(content.as_bytes()));
        }
        hex::encode(outer.finalize())
    };
    let rows: &[(&str, String)] = &[
        ("hashFiles('**/*.rs')", expected(&["fn a() {}", "fn b() {}"])),
        ("hashFiles('Cargo.lock')", expected(&["lock"])),
        ("hashFiles('src/*.rs')", expected(&["fn a() {}"])),
        ("hashFiles('src', '!**/*.md')", expected(&["fn a() {}", "fn b() {}"])),
        ("hashFiles('**', '!src/**', 'src/notes.md')", expected(&["lock", "notes"])),
        ("hashFiles('**/*.rs', 'Cargo.lock')", expected(&["lock", "fn a() {}", "fn b() {}"])),
        ("hashFiles('**/*.py')", String::new()),
    ];
    for (expression, digest) in rows {
        check_in(&ctx, expression, &serde_json::Value::String(digest.clone()).to_string());
    }
    check_in(&fixture(), "hashFiles('*')", "error: hashFiles: no workspace directory");
    Ok(())
}
