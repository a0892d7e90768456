//! What `mobius run` tells the engine about the world: the `github` context from the local
//! git repository, `inputs` with their declared defaults, and secrets from flags and files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use mobius_pipelines::workflow::{CallInputKind, InputKind, Workflow};
use serde_json::{Map, Value, json};

/// The `github` context a local run can honestly fill in. `ref` and `sha` are left out when
/// they cannot be known (not a git repository, or no commit yet) rather than invented.
pub(super) fn github_context(root: &Path, event_name: &str, inputs: &Map<String, Value>) -> Value {
    let mut github = Map::new();
    github.insert("event_name".into(), json!(event_name));
    // `symbolic-ref` rather than `rev-parse --abbrev-ref`: it also names the branch of a
    // repository without commits, which is what a freshly `git init`ed project has.
    if let Some(branch) = git(root, &["symbolic-ref", "--short", "HEAD"]) {
        github.insert("ref".into(), json!(format!("refs/heads/{branch}")));
        github.insert("ref_name".into(), json!(branch));
    }
    if let Some(sha) = git(root, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        github.insert("sha".into(), json!(sha));
    }
    let repository = git(root, &["remote", "get-url", "origin"])
        .and_then(|url| owner_and_name(&url))
        .or_else(|| root.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    github.insert("workspace".into(), json!(root.display().to_string()));
    // The user running it both started and triggered the run.
    let actor = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "mobius".to_owned());
    // Without an `owner/` in the remote, the repository is the user's own.
    let owner = repository.split_once('/').map_or(actor.as_str(), |(owner, _)| owner);
    github.insert("repository_owner".into(), json!(owner));
    github.insert("repository".into(), json!(repository));
    github.insert("actor".into(), json!(actor));
    github.insert("triggering_actor".into(), json!(actor));
    // GitHub puts dispatch inputs in the event payload too (`github.event.inputs`).
    let event = if event_name == "workflow_dispatch" { json!({ "inputs": inputs }) } else { json!({}) };
    github.insert("event".into(), event);
    Value::Object(github)
}

/// The branch checked out, if any.
pub(super) fn current_branch(root: &Path) -> Option<String> {
    git(root, &["symbolic-ref", "--short", "HEAD"])
}

/// The repository's default branch: where `origin/HEAD` points, else `main`.
pub(super) fn default_branch(root: &Path) -> String {
    git(root, &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"])
        .and_then(|r| r.strip_prefix("origin/").map(str::to_owned))
        .unwrap_or_else(|| "main".to_owned())
}

/// A git command's trimmed stdout, or `None` if git is missing or the command failed.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `owner/name` from a remote URL in any of git's spellings (`https://host/o/n.git`,
/// `git@host:o/n.git`, `/path/o/n`).
fn owner_and_name(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = trimmed.rsplit(['/', ':']).filter(|p| !p.is_empty());
    let name = parts.next()?;
    Some(match parts.next() {
        Some(owner) => format!("{owner}/{name}"),
        None => name.to_owned(),
    })
}

/// The `inputs` context: the given `KEY=VALUE`s over the workflow's dispatch defaults, or over
/// its `workflow_call` defaults when it runs as if called (`called`: named on the command line
/// and not triggered otherwise, or `--event workflow_call`). Booleans and numbers are typed as
/// GitHub types them, so `inputs.debug == true` works.
pub(super) fn inputs(
    workflow: &Workflow,
    event_name: &str,
    called: bool,
    given: &[(String, String)],
) -> Result<Map<String, Value>> {
    let declared: Vec<(&str, InputKind, bool, Option<String>)> = match &workflow.on.workflow_call {
        Some(call) if called => call
            .inputs
            .iter()
            .map(|i| {
                let kind = match i.kind {
                    CallInputKind::String => InputKind::String,
                    CallInputKind::Boolean => InputKind::Boolean,
                    CallInputKind::Number => InputKind::Number,
                };
                let default = i.default.as_ref().map(|d| match d {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                (i.name.as_str(), kind, i.required, default)
            })
            .collect(),
        _ => workflow
            .on
            .workflow_dispatch
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|i| (i.name.as_str(), i.kind.clone(), i.required, i.default.clone()))
            .collect(),
    };
    let mut inputs = Map::new();
    // Defaults apply only to a dispatch or a call: on `push` GitHub leaves `inputs` empty.
    if event_name == "workflow_dispatch" || called {
        for (name, kind, required, default) in &declared {
            let value = given.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            match value.or_else(|| default.clone()) {
                Some(value) => {
                    inputs.insert((*name).to_owned(), typed(kind, value));
                }
                None if *required => bail!("input `{name}` is required: pass --input {name}=VALUE"),
                // A call's input without a default is its type's zero value, as on GitHub.
                None if called => {
                    let zero = match kind {
                        InputKind::Boolean => Value::Bool(false),
                        InputKind::Number => Value::from(0),
                        _ => Value::String(String::new()),
                    };
                    inputs.insert((*name).to_owned(), zero);
                }
                None => {}
            }
        }
    }
    for (key, value) in given {
        if !inputs.contains_key(key) {
            let kind = declared.iter().find(|(name, ..)| name == key).map_or(&InputKind::String, |(_, kind, ..)| kind);
            inputs.insert(key.clone(), typed(kind, value.clone()));
        }
    }
    Ok(inputs)
}

fn typed(kind: &InputKind, value: String) -> Value {
    match kind {
        InputKind::Boolean if value == "true" || value == "false" => Value::Bool(value == "true"),
        InputKind::Number => {
            value.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::String(value), Value::Number)
        }
        _ => Value::String(value),
    }
}

/// Secrets from `--secrets-file` then `--secret`, so a flag overrides the file.
pub(super) fn secrets(file: Option<&Path>, given: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    let mut secrets = BTreeMap::new();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        secrets.extend(parse_dotenv(&file.display().to_string(), &text)?);
    }
    secrets.extend(given.iter().cloned());
    Ok(secrets)
}

/// `NAME=VALUE` lines in the dotenv format: blank lines and `#` comment lines are skipped, as
/// is an `export ` prefix; an unquoted value ends at a ` #` comment and is trimmed; a value in
/// single quotes is taken literally, one in double quotes decodes `\n`, `\"` and `\\`; a quoted
/// value may span lines, and only a comment may follow its closing quote. A bad line is an
/// error at `file:line`, because a silently skipped secret shows up much later as an empty
/// string in some step.
pub(super) fn parse_dotenv(file: &str, text: &str) -> Result<Vec<(String, String)>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pairs = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let line = lines[index].trim_start();
        index += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export").filter(|rest| rest.starts_with([' ', '\t'])).unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{file}:{number}: expected NAME=VALUE");
        };
        let key = key.trim();
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            bail!("{file}:{number}: `{key}` is not a valid secret name (letters, digits and _)");
        }
        let value = value.trim_start();
        let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            pairs.push((key.to_owned(), unquoted(value).to_owned()));
            continue;
        };
        // The quoted value, and what follows its closing quote, reading more lines as needed.
        let mut rest = value[1..].to_owned();
        let (decoded, after) = loop {
            if let Some(found) = closing(&rest, quote) {
                break found;
            }
            let Some(next) = lines.get(index) else {
                bail!("{file}:{number}: the value of {key} has no closing {quote}");
            };
            rest.push('\n');
            rest.push_str(next);
            index += 1;
        };
        let after = after.trim();
        if !after.is_empty() && !after.starts_with('#') {
            bail!("{file}:{}: unexpected text after the closing {quote} of {key}", index);
        }
        pairs.push((key.to_owned(), decoded));
    }
    Ok(pairs)
}

/// An unquoted value: up to a comment (` #`), trimmed.
fn unquoted(value: &str) -> &str {
    let end = value
        .char_indices()
        .find(|&(i, c)| c == '#' && value[..i].ends_with([' ', '\t']))
        .map_or(value.len(), |(i, _)| i);
    value[..end].trim()
}

/// The text before the closing `quote` of `text` (which starts after the opening one), decoded
/// (`\n`, `\"`, `\\` in double quotes; nothing in single quotes), and the text after it; `None`
/// when `text` has no closing quote.
fn closing(text: &str, quote: char) -> Option<(String, &str)> {
    let mut decoded = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Some((decoded, &text[i + 1..])),
            '\\' if quote == '"' => match chars.next() {
                Some((_, 'n')) => decoded.push('\n'),
                Some((_, escaped @ ('"' | '\\'))) => decoded.push(escaped),
                Some((_, other)) => {
                    decoded.push('\\');
                    decoded.push(other);
                }
                None => decoded.push('\\'),
            },
            c => decoded.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_comments_quotes_and_errors() {
        let text = "# comment\n\nA=1\nexport B=\"two = 2\"\nC='x'\n";
        let pairs = parse_dotenv("s.env", text).unwrap();
        assert_eq!(pairs, [("A".into(), "1".into()), ("B".into(), "two = 2".into()), ("C".into(), "x".into())]);
        let err = parse_dotenv("s.env", "A=1\nnot a pair\n").unwrap_err();
        assert_eq!(err.to_string(), "s.env:2: expected NAME=VALUE");
        assert!(parse_dotenv("s.env", "1X=y").unwrap_err().to_string().starts_with("s.env:1:"));
    }

    fn check(text: &str, expected: &[(&str, &str)]) {
        let pairs = parse_dotenv("s.env", text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, expected, "{text:?}");
    }

    fn error(text: &str) -> String {
        parse_dotenv("s.env", text).map_or_else(|e| e.to_string(), |p| panic!("{text:?} parsed: {p:?}"))
    }

    #[test]
    fn dotenv_format() {
        check("A=1 # note\nB=x#not-a-comment\n  # indented comment\n", &[("A", "1"), ("B", "x#not-a-comment")]);
        check("export\tA=1\nexporter=2\n", &[("A", "1"), ("exporter", "2")]);
        check("A='lit \\n $X # kept'  # gone\n", &[("A", "lit \\n $X # kept")]);
        check(r#"A="a\nb \"q\" \\ \t""#, &[("A", "a\nb \"q\" \\ \\t")]);
        check(
            "KEY=\"-----BEGIN\nline two\n-----END\"\nNEXT=1\n",
            &[("KEY", "-----BEGIN\nline two\n-----END"), ("NEXT", "1")],
        );
        check("A='one\ntwo' # c\n", &[("A", "one\ntwo")]);
        check("A=\nB= spaced  \n", &[("A", ""), ("B", "spaced")]);
        assert_eq!(error("A=1\nB=\"open\nstill open\n"), "s.env:2: the value of B has no closing \"");
        assert_eq!(error("A='x' trailing\n"), "s.env:1: unexpected text after the closing ' of A");
        assert_eq!(error("A=\"x\ny\" z\n"), "s.env:2: unexpected text after the closing \" of A");
    }

    #[test]
    fn remote_urls_give_owner_and_name() {
        assert_eq!(owner_and_name("https://github.com/acme/app.git").as_deref(), Some("acme/app"));
        assert_eq!(owner_and_name("git@github.com:acme/app.git").as_deref(), Some("acme/app"));
        assert_eq!(owner_and_name("app").as_deref(), Some("app"));
    }
}
