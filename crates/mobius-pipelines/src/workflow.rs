//! Workflow files: the model, YAML 1.2 parsing with positions, validation, matrix expansion.
//!
//! - [`parse`] reads a workflow into a [`Workflow`], or returns every error found.
//! - [`lint`] returns all diagnostics of a file (what `mobius lint` prints); [`parse_partial`]
//!   also the model as far as a broken file can be read.
//! - [`expand_matrix`] turns a `strategy.matrix` into its combinations with GitHub's
//!   include/exclude rules.
//! - [`with_default_branch`] substitutes the `$default-branch` placeholder of the starter
//!   workflows.
//!
//! YAML is read with YAML 1.2 core-schema semantics: `on`, `yes` and `off` are strings, anchors
//! and aliases are resolved, and `<<` merge keys are not expanded (GitHub does not support them,
//! so `<<` is reported as an unknown key). Duplicate keys are a YAML error, as on GitHub.

use std::fmt;

mod action;
mod build;
mod call;
mod checks;
mod dispatch;
mod filter;
mod matrix;
mod model;
mod secrets;
mod triggers;
mod yaml;

pub use action::{ActionInput, ActionManifest, ActionRuns, NodeRuns, parse_action};
pub use checks::{SUPPORTED_ACTIONS, unsupported};
pub use dispatch::{DispatchError, dispatch_inputs};
pub use filter::{DEFAULT_PULL_REQUEST_TYPES, PushedRef, glob, pull_request_matches, push_matches, release_matches};
pub use matrix::{Combination, MAX_COMBINATIONS, MatrixEntryError, MatrixError, expand_matrix, matrix_from_entries};
pub use model::*;
pub use secrets::{SecretUse, referenced_secrets};
pub use triggers::{Cron, CronError, CronItemError, check_cron};

use yaml::{Kind, Node};

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The workflow cannot run.
    Error,
    /// Suspicious but runnable.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A problem in a workflow file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    /// The file as given to [`parse`] / [`lint`].
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (chars).
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, naming the key or value.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.path, self.line, self.column, self.severity, self.message)
    }
}

/// Parses and validates a workflow file. `path` only labels the diagnostics.
///
/// Returns the model if there is no error (warnings are dropped; use [`lint`] to see them).
pub fn parse(path: &str, text: &str) -> Result<Workflow, Vec<Diagnostic>> {
    let (workflow, diagnostics) = analyze(path, text);
    match workflow {
        Some(w) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => Ok(w),
        _ => Err(diagnostics.into_iter().filter(|d| d.severity == Severity::Error).collect()),
    }
}

/// Every diagnostic of a workflow file, sorted by position: YAML syntax, unknown keys, types,
/// expressions, `needs`, matrix size, unsupported actions and step shape.
pub fn lint(path: &str, text: &str) -> Vec<Diagnostic> {
    analyze(path, text).1
}

/// The model of a workflow file even when it has errors (a field in error is left at its
/// default, so the model is what the file was meant to say as far as it can be read), with
/// every diagnostic; `None` when the file is not YAML or not a mapping. For deciding what a
/// broken file would have run, never for running it.
pub fn parse_partial(path: &str, text: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
    analyze(path, text)
}

/// Replaces the `$default-branch` placeholder of GitHub's starter workflows with `branch`.
///
/// GitHub substitutes it when a starter is added to a repository; Mobius does the same when
/// it reads a file (the parser itself keeps the literal, which is a valid branch pattern, so
/// starters lint cleanly either way).
pub fn with_default_branch(text: &str, branch: &str) -> String {
    text.replace("$default-branch", branch)
}

fn analyze(path: &str, text: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
    let mut report = Report::new(text);
    let workflow = match yaml::load(text) {
        Ok(root) => {
            let mut workflow = build::workflow(&mut report, &root);
            for call in workflow.iter_mut().flat_map(|w| &mut w.jobs).filter_map(|j| j.uses.as_mut()) {
                call.file = path.to_owned();
            }
            checks::expressions(&mut report, &root);
            if let Some(w) = &workflow {
                checks::workflow(&mut report, w);
            }
            workflow
        }
        Err(err) => {
            report.error(err.pos, format!("invalid YAML: {}", err.message));
            None
        }
    };
    let mut diagnostics: Vec<Diagnostic> = report
        .items
        .into_iter()
        .map(|(pos, severity, message)| Diagnostic {
            path: path.to_string(),
            line: pos.line,
            column: pos.column,
            severity,
            message,
        })
        .collect();
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics.dedup();
    (workflow, diagnostics)
}

/// Collects diagnostics while the model is built, and maps positions inside values back to
/// the source.
pub(crate) struct Report<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    items: Vec<(Pos, Severity, String)>,
}

impl<'a> Report<'a> {
    fn new(text: &'a str) -> Self {
        // YAML's line breaks, as the parser counts them in positions: `\n`, `\r\n` (one
        // break) and a lone `\r`.
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(
            (0..bytes.len())
                .filter(|&i| bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
                .map(|i| i + 1),
        );
        Report { text, line_starts, items: Vec::new() }
    }

    pub(crate) fn error(&mut self, pos: Pos, message: String) {
        self.items.push((pos, Severity::Error, message));
    }

    pub(crate) fn warning(&mut self, pos: Pos, message: String) {
        self.items.push((pos, Severity::Warning, message));
    }

    /// Byte offset of a position, if it is inside the text.
    fn offset(&self, pos: Pos) -> Option<usize> {
        let start = *self.line_starts.get(pos.line.checked_sub(1)?)?;
        let line = &self.text[start..];
        let skip = pos.column.checked_sub(1)?;
        match line.char_indices().nth(skip) {
            Some((i, _)) => Some(start + i),
            None => Some(self.text.len()),
        }
    }

    fn pos_of_offset(&self, offset: usize) -> Pos {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        Pos { line, column }
    }

    /// The source position of the char at 1-based `column` of the string value of `node`.
    ///
    /// The value is not the source text (quotes, block-scalar indentation), so the line of the
    /// value holding that char is searched for in the source from the node on; if it is not
    /// found verbatim (escapes), the node's own position is the best we have.
    pub(crate) fn locate(&self, node: &Node, value: &str, column: usize) -> Pos {
        let before: String = value.chars().take(column.saturating_sub(1)).collect();
        let line_index = before.matches('\n').count();
        let column_in_line = before.rsplit('\n').next().map_or(0, |s| s.chars().count());
        let Some(line_text) = value.split('\n').nth(line_index) else { return node.pos };
        let Some(start) = self.offset(node.pos) else { return node.pos };
        let found = if line_text.is_empty() { None } else { self.text[start..].find(line_text) };
        match found {
            Some(i) => {
                let at = self.pos_of_offset(start + i);
                Pos { line: at.line, column: at.column + column_in_line }
            }
            None => node.pos,
        }
    }
}

/// The closest of `candidates` to `word` by edit distance, if close enough to be a typo.
pub(crate) fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    // Two edits catch transpositions (`nmae`), but on very short words they match anything.
    let len = word.chars().count();
    let limit = if len <= 3 { 1 } else { (len / 3).clamp(2, 3) };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Helpers shared by the builders: `Kind::Map` entries of a node.
pub(crate) fn entries(node: &Node) -> Option<&[(Node, Node)]> {
    match &node.kind {
        Kind::Map(entries) => Some(entries),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_suggestion() {
        assert_eq!(edit_distance("runs_on", "runs-on"), 1);
        assert_eq!(suggest("runs_on", ["runs-on", "needs"]), Some("runs-on"));
        assert_eq!(suggest("zzz", ["runs-on"]), None);
    }

    /// Found while checking why the property `mutated_starter_workflows_are_linted_at_positions_inside_them`
    /// put diagnostics past the last `\n` line: the parser counts a lone `\r` as a line break
    /// (YAML does), the expression locator did not, so an error in a file with `\r` line ends
    /// was put on the wrong line.
    #[test]
    fn expression_errors_are_located_in_files_with_any_line_break() {
        for newline in ["\n", "\r\n", "\r"] {
            let text = ["on: push", "x: |", "  ab", "  cd ${{ 1 ) }}", ""].join(newline);
            let errors: Vec<String> = lint("w.yml", &text)
                .iter()
                .filter(|d| d.message.contains("expression"))
                .map(ToString::to_string)
                .collect();
            assert_eq!(errors, ["w.yml:4:12: error: invalid expression: unexpected `)` at column 13"], "{newline:?}");
        }
    }

    #[test]
    fn locate_inside_block_scalar() {
        let text = "run: |\n  echo ${{ 1 }}\n";
        let report = Report::new(text);
        let node = Node { pos: Pos { line: 1, column: 6 }, kind: Kind::Null };
        assert_eq!(report.locate(&node, "echo ${{ 1 }}\n", 6), Pos { line: 2, column: 8 });
    }
}
