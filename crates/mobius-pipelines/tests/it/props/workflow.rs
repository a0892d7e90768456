//! Workflow files: YAML-ish text and mutated starter workflows are parsed or refused, never
//! with a panic, and every diagnostic points at a line and column inside the file.

use std::path::Path;
use std::sync::OnceLock;

use mobius_pipelines::workflow::{self, Diagnostic, Severity};
use proptest::prelude::*;
use proptest::sample::Index;

use super::{config, expression_noise};

/// The starter workflows of the shared corpus, read once.
fn starters() -> &'static [String] {
    static STARTERS: OnceLock<Vec<String>> = OnceLock::new();
    STARTERS.get_or_init(|| {
        let root = crate::shared_corpus().join("starter-workflows");
        let mut files = Vec::new();
        for dir in ["ci", "deployments"] {
            let dir = root.join(dir);
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.expect("a readable corpus").path();
                if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                    files.push(path);
                }
            }
        }
        files.sort();
        assert!(files.len() > 50, "only {} starter workflows", files.len());
        files.iter().map(|path: &std::path::PathBuf| read(path)).collect()
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const KEYS: &[&str] = &[
    "on",
    "jobs",
    "name",
    "runs-on",
    "steps",
    "uses",
    "run",
    "with",
    "env",
    "if",
    "needs",
    "strategy",
    "matrix",
    "include",
    "exclude",
    "push",
    "pull_request",
    "branches",
    "tags",
    "paths",
    "schedule",
    "cron",
    "workflow_dispatch",
    "inputs",
    "outputs",
    "concurrency",
    "group",
    "permissions",
    "defaults",
    "timeout-minutes",
    "continue-on-error",
    "services",
    "container",
    "id",
    "shell",
    "working-directory",
    "fail-fast",
    "type",
    "options",
    "default",
    "<<",
    "build",
    "test",
    "x",
];

/// Scalars and fragments that make YAML, the model or the expression checks work.
const VALUES: &[&str] = &[
    "push",
    "ubuntu-latest",
    "echo hi",
    "actions/checkout@v4",
    "mobius/deploy@v1",
    "docker://alpine",
    "./local",
    "${{ github.ref }}",
    "${{ ((( }}",
    "${{ matrix.os",
    "${{ '}}' }}",
    "${{ fromJSON(needs.a.outputs.m) }}",
    "[build, test]",
    "{a: 1, b: [1, 2]}",
    "[",
    "{",
    "]",
    "&anchor 1",
    "*anchor",
    "*missing",
    "!!str 1",
    "\"esc\\u00e9\\\"\"",
    "'it''s'",
    "\"unterminated",
    "|",
    ">-",
    "|+",
    "null",
    "~",
    "true",
    "yes",
    "0x1F",
    "1e400",
    "-.inf",
    "12:30",
    "é💥",
    "\t",
    "* * * * *",
    "61 25 * * *",
    "- a",
    "? complex",
    "--- ",
    "...",
];

/// One line of YAML-ish text.
fn line() -> impl Strategy<Value = String> {
    let indent = prop_oneof![(0usize..10).prop_map(|n| " ".repeat(n)), Just("\t".to_owned())];
    let key = prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => "[a-z_-]{1,8}"];
    let value = prop_oneof![
        4 => prop::sample::select(VALUES).prop_map(str::to_owned),
        1 => expression_noise().prop_map(|e| format!("${{{{ {} }}}}", e.replace('\n', " "))),
        1 => ".{0,16}",
    ];
    let body = prop_oneof![
        (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k}: {v}")),
        key.clone().prop_map(|k| format!("{k}:")),
        (key, value.clone()).prop_map(|(k, v)| format!("- {k}: {v}")),
        value.clone().prop_map(|v| format!("- {v}")),
        value,
        Just("# comment".to_owned()),
    ];
    (indent, body).prop_map(|(indent, body)| format!("{indent}{body}"))
}

/// Arbitrary YAML-ish text, usually starting as a workflow does.
fn yamlish() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(line(), 0..30), prop::sample::select(&["\n", "\r\n"][..]), any::<bool>())
        .prop_map(|(header, lines, newline, trailing)| {
            let mut text = if header { "on: push\njobs:\n".to_owned() } else { String::new() };
            text.push_str(&lines.join(newline));
            if trailing {
                text.push_str(newline);
            }
            text
        })
}

/// One change to a starter workflow.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Shift a line's indentation by a few spaces, or start it with a tab.
    Indent(Index, i8),
    /// A value, an expression or a fragment inserted at a char.
    Insert(Index, String),
    /// The text after a line's `: ` replaced.
    ReplaceValue(Index, String),
    Truncate(Index),
    /// A line repeated many times (long files, duplicate keys).
    Repeat(Index, usize),
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUES).prop_map(str::to_owned),
        1 => expression_noise().prop_map(|e| format!("${{{{ {e} }}}}")),
        1 => ".{0,8}",
        1 => (1usize..100_000).prop_map(|n| "x".repeat(n)),
        1 => (40usize..120).prop_map(|n| format!("${{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n))),
        1 => (1usize..200).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<Index>(), -4i8..=4).prop_map(|(at, by)| Mutation::Indent(at, by)),
        2 => (any::<Index>(), fragment()).prop_map(|(at, f)| Mutation::Insert(at, f)),
        3 => (any::<Index>(), fragment()).prop_map(|(at, f)| Mutation::ReplaceValue(at, f)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 2usize..2000).prop_map(|(at, n)| Mutation::Repeat(at, n)),
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
            return chars[..i].iter().chain(fragment.chars().collect::<Vec<_>>().iter()).chain(&chars[i..]).collect();
        }
        Mutation::ReplaceValue(at, fragment) => {
            let with_values: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains(": ")).collect();
            if !with_values.is_empty() {
                let line = &mut lines[*at.get(&with_values)];
                let key_end = line.find(": ").expect("filtered on it") + 2;
                line.replace_range(key_end.., fragment);
            }
        }
        Mutation::Truncate(at) => {
            let chars: Vec<char> = text.chars().collect();
            return chars[..at.index(chars.len() + 1)].iter().collect();
        }
        Mutation::Repeat(at, n) => {
            let i = at.index(lines.len());
            let repeated = vec![lines[i].clone(); *n];
            lines.splice(i..=i, repeated);
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

/// Every diagnostic is at a line of the file and a column of that line (or just past its
/// end), labelled with the path it was given; `parse` succeeds exactly when lint finds no
/// error, and fails with lint's errors.
fn check(text: &str) {
    let diagnostics = workflow::lint("w.yml", text);
    let lines = lines(text);
    for d in &diagnostics {
        assert_eq!(d.path, "w.yml");
        let line = d.line.checked_sub(1).and_then(|i| lines.get(i));
        let line = line.unwrap_or_else(|| panic!("{d}: line {} of {}", d.line, lines.len()));
        let width = line.chars().count();
        assert!((1..=width + 1).contains(&d.column), "{d}: column {} of a line of {width} chars", d.column);
        assert!(!d.message.is_empty(), "{d}");
    }
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    match workflow::parse("w.yml", text) {
        Ok(_) => assert!(errors.is_empty(), "parsed, but lint says {errors:?}"),
        Err(refused) => {
            assert!(!refused.is_empty(), "refused without a reason");
            assert_eq!(refused.iter().collect::<Vec<_>>(), errors);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// YAML-ish text of workflow keys, values, expressions, anchors and odd indentation.
    #[test]
    fn yamlish_text_is_linted_at_positions_inside_it(text in yamlish()) {
        check(&text);
    }

    /// Starter workflows with lines deleted, moved, re-indented, repeated, cut short, or with
    /// fragments and expressions put in.
    #[test]
    fn mutated_starter_workflows_are_linted_at_positions_inside_them(
        starter in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = mutations.iter().fold(starter.get(starters()).clone(), |text, m| mutate(&text, m));
        check(&text);
    }
}

proptest! {
    // Each case lints up to 1,500 jobs, which takes a while in a debug build.
    #![proptest_config(config(16))]

    /// `needs` chains, closed into a cycle or not: lint finds the cycle, and does not recurse
    /// once per job looking for it. Lint runs on a small stack, so that a search that does
    /// recurse overflows within the lengths tried here.
    #[test]
    fn long_needs_chains_are_checked(jobs in 1usize..1500, cycle in any::<bool>()) {
        let mut text = "on: push\njobs:\n".to_owned();
        for i in 0..jobs {
            let need = match i {
                0 if cycle => format!(", needs: j{}", jobs - 1),
                0 => String::new(),
                i => format!(", needs: j{}", i - 1),
            };
            text.push_str(&format!("  j{i}: {{steps: [{{run: x}}]{need}}}\n"));
        }
        let diagnostics = on_small_stack(|| workflow::lint("w.yml", &text));
        let cycles = diagnostics.iter().filter(|d| d.message.contains("`needs` cycle")).count();
        prop_assert_eq!(cycles, usize::from(cycle), "{:?}", diagnostics.first());
    }
}

/// Runs `f` on a thread with a 512 KiB stack (a quarter of a test thread's).
fn on_small_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new().stack_size(512 * 1024).spawn_scoped(scope, f);
        thread.expect("a thread").join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
