//! The built-in functions other than the status functions.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use sha2::{Digest, Sha256};

use super::parser::Function;
use super::value::{Value, fold};
use super::{Context, ExprError};

/// Calls `function` on already-evaluated arguments; the parser has checked their number.
pub(crate) fn call(function: Function, args: &[Value], ctx: &dyn Context) -> Result<Value, ExprError> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    Ok(match function {
        Function::Contains => Value::Bool(contains(&arg(0), &arg(1))),
        Function::StartsWith => Value::Bool(affix(&arg(0), &arg(1), |s, p| s.starts_with(p))),
        Function::EndsWith => Value::Bool(affix(&arg(0), &arg(1), |s, p| s.ends_with(p))),
        Function::Format => Value::String(format(args)?),
        Function::Join => Value::String(join(&arg(0), args.get(1))),
        Function::ToJson => Value::String(to_json(&arg(0))),
        Function::FromJson => from_json(&arg(0))?,
        Function::HashFiles => Value::String(hash_files(args, ctx.workspace())?),
        // Status functions are answered by the evaluator; reaching here would be a bug, and
        // `false` is the harmless answer.
        Function::Success | Function::Failure | Function::Cancelled | Function::Always => Value::Bool(false),
    })
}

/// `contains`: on an array, loose equality with any element; on a primitive, a
/// case-insensitive substring test of both sides as strings; on an object, `false`.
fn contains(search: &Value, item: &Value) -> bool {
    match search {
        Value::Array(items) => items.iter().any(|element| element.loose_eq(item)),
        Value::Object(_) => false,
        _ if item.is_primitive() => fold(&search.to_display_string()).contains(&fold(&item.to_display_string())),
        _ => false,
    }
}

/// `startsWith`/`endsWith`: both must be primitives; compared case-insensitively as strings.
fn affix(string: &Value, part: &Value, test: fn(&str, &str) -> bool) -> bool {
    string.is_primitive()
        && part.is_primitive()
        && test(&fold(&string.to_display_string()), &fold(&part.to_display_string()))
}

/// `format`: `{N}` is replaced by argument N, `{{` and `}}` are literal braces. An unmatched
/// brace or an index without an argument is an error, as in the runner.
fn format(args: &[Value]) -> Result<String, ExprError> {
    let template = args.first().map(Value::to_display_string).unwrap_or_default();
    let invalid = |reason: &str| ExprError::Format { template: template.clone(), reason: reason.to_string() };
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(invalid("unmatched `}`")),
            '{' => {
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(d) if d.is_ascii_digit() => digits.push(d),
                        _ => return Err(invalid("expected `{N}`")),
                    }
                }
                let index: usize = digits.parse().map_err(|_| invalid("expected `{N}`"))?;
                // Argument 0 is the template itself.
                let value = index
                    .checked_add(1)
                    .and_then(|i| args.get(i))
                    .ok_or_else(|| invalid(&format!("no argument for `{{{index}}}`")))?;
                out.push_str(&value.to_display_string());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `join`: array elements as strings with the separator (default `,`); a primitive joins as
/// its own string; an object gives `''`.
fn join(value: &Value, separator: Option<&Value>) -> String {
    let separator = separator.map_or_else(|| ",".to_string(), Value::to_display_string);
    match value {
        Value::Array(items) => items.iter().map(Value::to_display_string).collect::<Vec<_>>().join(&separator),
        Value::Object(_) => String::new(),
        primitive => primitive.to_display_string(),
    }
}

/// `toJSON`: pretty-printed with two-space indentation, as the runner's serializer.
fn to_json(value: &Value) -> String {
    // Serializing a `serde_json::Value` cannot fail.
    serde_json::to_string_pretty(&value.to_json()).unwrap_or_default()
}

fn from_json(value: &Value) -> Result<Value, ExprError> {
    let text = value.to_display_string();
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ExprError::FromJson { reason: e.to_string() })?;
    Ok(Value::from_json(&json))
}

/// A `hashFiles` pattern: negated patterns exclude what earlier ones included.
struct Pattern {
    negated: bool,
    matcher: GlobMatcher,
}

/// `hashFiles` as the runner's `hashFiles.ts`: files under the workspace matching the
/// patterns, in path order; SHA-256 of each file; SHA-256 over the concatenated raw digests,
/// hex-encoded; `''` when nothing matches.
///
/// Matching follows `@actions/glob`: `*` stays within a path segment, `**` spans segments,
/// a pattern matching a directory includes everything beneath it, and the last matching
/// pattern decides (so `!` excludes). Absolute patterns inside the workspace are made
/// relative; symlinked directories are not followed, which avoids cycles.
fn hash_files(args: &[Value], workspace: Option<&Path>) -> Result<String, ExprError> {
    let Some(root) = workspace else {
        return Err(ExprError::HashFiles { reason: "no workspace directory".into() });
    };
    let root_prefix = format!("{}/", root.to_string_lossy().trim_end_matches('/'));
    let mut patterns = Vec::new();
    for arg in args {
        let text = arg.to_display_string();
        let (negated, glob) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.to_string()),
            None => (false, text),
        };
        let glob = glob.strip_prefix(&root_prefix).unwrap_or(&glob).trim_start_matches("./").to_string();
        let matcher = globset::GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map(|g: Glob| g.compile_matcher())
            .map_err(|e| ExprError::HashFiles { reason: e.to_string() })?;
        patterns.push(Pattern { negated, matcher });
    }
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort();
    let mut combined = Sha256::new();
    let mut any = false;
    for (relative, path) in files {
        if !included(&relative, &patterns) {
            continue;
        }
        let bytes =
            std::fs::read(&path).map_err(|e| ExprError::HashFiles { reason: format!("{}: {e}", path.display()) })?;
        combined.update(Sha256::digest(&bytes));
        any = true;
    }
    Ok(if any { hex::encode(combined.finalize()) } else { String::new() })
}

/// Whether the last pattern matching the file, or one of its ancestor directories, is positive.
fn included(relative: &str, patterns: &[Pattern]) -> bool {
    let mut candidates = vec![relative];
    candidates.extend(relative.match_indices('/').map(|(i, _)| &relative[..i]));
    let mut result = false;
    for pattern in patterns {
        if candidates.iter().any(|c| pattern.matcher.is_match(c)) {
            result = !pattern.negated;
        }
    }
    result
}

/// Collects regular files beneath `dir` with their `/`-separated paths relative to `root`.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), ExprError> {
    let io = |e: std::io::Error| ExprError::HashFiles { reason: format!("{}: {e}", dir.display()) };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io)?;
        if file_type.is_dir() {
            walk(root, &path, files)?;
        } else if path.is_file() {
            // Every path walked from `root` is under it.
            let Ok(relative) = path.strip_prefix(root) else { continue };
            let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>();
            files.push((relative.join("/"), path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn format_escapes_and_errors() {
        assert_eq!(format(&[s("{{0}} {0}-{1}"), s("x"), Value::Number(2.0)]), Ok("{0} x-2".into()));
        assert!(format(&[s("{1}"), s("x")]).is_err());
        assert!(format(&[s("{0"), s("x")]).is_err());
        assert!(format(&[s("a}b")]).is_err());
        assert!(format(&[s("{18446744073709551615}")]).is_err());
        assert!(format(&[s("{99999999999999999999999}")]).is_err());
    }

    #[test]
    fn join_and_contains() {
        let array = Value::Array(Rc::new(vec![s("a"), Value::Number(1.0), Value::Null]));
        assert_eq!(join(&array, None), "a,1,");
        assert_eq!(join(&s("x"), Some(&s("-"))), "x");
        assert!(contains(&array, &s("1")));
        assert!(contains(&s("Hello"), &s("ELL")));
    }

    #[test]
    fn negation_and_implicit_descendants() -> Result<(), globset::Error> {
        let pattern = |g: &str, negated| -> Result<Pattern, globset::Error> {
            Ok(Pattern {
                negated,
                matcher: globset::GlobBuilder::new(g).literal_separator(true).build()?.compile_matcher(),
            })
        };
        let patterns = [pattern("src", false)?, pattern("**/*.md", true)?];
        assert!(included("src/a/b.rs", &patterns));
        assert!(!included("src/README.md", &patterns));
        assert!(!included("other/b.rs", &patterns));
        let star = [pattern("*.rs", false)?];
        assert!(included("a.rs", &star));
        assert!(!included("src/a.rs", &star));
        Ok(())
    }
}
