//! `mobius lint`: validate workflow files and report every problem at its line and column.
//!
//! Also home to workflow discovery, which `mobius run --list` shares.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_pipelines::workflow::{self, Diagnostic, Severity};
use serde::Serialize;

use crate::cli::LintArgs;
use crate::output::{color_stdout, print_json};

/// Where workflow files live, relative to the repository root. GitHub's directory first, so
/// a repository moving to Mobius keeps its files where they are.
const WORKFLOW_DIRS: [&str; 2] = [".github/workflows", ".mobius/workflows"];

/// A workflow file found on disk.
pub(super) struct WorkflowFile {
    /// Where to read it.
    pub path: PathBuf,
    /// How to show it: relative to the repository root when inside it, else as given.
    pub display: String,
}

impl WorkflowFile {
    /// The file's text, or a diagnostic at 1:1 when it cannot be read (a missing or
    /// non-UTF-8 file is a problem of that file, not a reason to stop checking the others).
    pub fn read(&self) -> Result<String, Diagnostic> {
        std::fs::read_to_string(&self.path).map_err(|e| Diagnostic {
            path: self.display.clone(),
            line: 1,
            column: 1,
            severity: Severity::Error,
            message: format!("cannot read the file: {e}"),
        })
    }
}

/// The repository root: the nearest directory at or above the current one that holds
/// `.git`, else the current directory (so `mobius lint` also works outside a clone).
pub(super) fn repo_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot tell the current directory")?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    Ok(cwd.ancestors().find(|dir| dir.join(".git").exists()).unwrap_or(&cwd).to_path_buf())
}

/// Workflow files named by `paths` (files, or directories whose `*.yml|yaml` are taken),
/// or, with no paths, those in the repository's workflow directories. Sorted, deduplicated.
pub(super) fn discover(root: &Path, paths: &[PathBuf]) -> Result<Vec<WorkflowFile>> {
    let mut found = Vec::new();
    if paths.is_empty() {
        for dir in WORKFLOW_DIRS {
            let dir = root.join(dir);
            if dir.is_dir() {
                found.extend(yaml_files(&dir)?);
            }
        }
    } else {
        for path in paths {
            if path.is_dir() {
                // A repository root given as a directory means its workflow directories.
                let nested: Vec<PathBuf> = WORKFLOW_DIRS.iter().map(|d| path.join(d)).filter(|d| d.is_dir()).collect();
                if nested.is_empty() {
                    found.extend(yaml_files(path)?);
                } else {
                    for dir in nested {
                        found.extend(yaml_files(&dir)?);
                    }
                }
            } else if path.exists() {
                found.push(path.clone());
            } else {
                bail!("{} does not exist", path.display());
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found.into_iter().map(|path| WorkflowFile { display: display(root, &path), path }).collect())
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list {}", dir.display()))?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    Ok(files)
}

/// `path` relative to `root` if it lies inside, with `/` separators as in diagnostics of CI
/// tools, so editors and terminals can jump to `path:line:col`.
fn display(root: &Path, path: &Path) -> String {
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    match absolute.strip_prefix(root) {
        Ok(rel) => rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
        Err(_) => path.display().to_string(),
    }
}

/// The message for an empty repository, shared with `mobius run --list`.
pub(super) const NO_WORKFLOWS: &str = "no workflow files under .github/workflows or .mobius/workflows";

#[derive(Serialize)]
struct Report<'a> {
    files: Vec<&'a str>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    path: &'a str,
    line: usize,
    column: usize,
    severity: String,
    message: &'a str,
}

pub fn run(json: bool, args: LintArgs) -> Result<ExitCode> {
    let root = repo_root()?;
    let files = discover(&root, &args.paths)?;
    let mut diagnostics = Vec::new();
    for file in &files {
        match file.read() {
            Ok(text) => diagnostics.extend(workflow::lint(&file.display, &text)),
            Err(unreadable) => diagnostics.push(unreadable),
        }
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.len() - errors;

    if json {
        print_json(&Report {
            files: files.iter().map(|f| f.display.as_str()).collect(),
            diagnostics: diagnostics
                .iter()
                .map(|d| JsonDiagnostic {
                    path: &d.path,
                    line: d.line,
                    column: d.column,
                    severity: d.severity.to_string(),
                    message: &d.message,
                })
                .collect(),
            errors,
            warnings,
        })?;
    } else if files.is_empty() {
        println!("{NO_WORKFLOWS}");
    } else {
        let color = color_stdout();
        for d in &diagnostics {
            println!("{}:{}:{}: {}: {}", d.path, d.line, d.column, severity(d.severity, color), d.message);
        }
        println!(
            "{}, {}, {}",
            plural(files.len(), "workflow file"),
            plural(errors, "error"),
            plural(warnings, "warning")
        );
    }
    // No files is not a failure: a repository without workflows has nothing wrong in them.
    Ok(if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The severity word, bold red or yellow on a terminal.
fn severity(severity: Severity, color: bool) -> String {
    match (color, severity) {
        (false, _) => severity.to_string(),
        (true, Severity::Error) => format!("\x1b[1;31m{severity}\x1b[0m"),
        (true, Severity::Warning) => format!("\x1b[1;33m{severity}\x1b[0m"),
    }
}

pub(super) fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_colours() {
        assert_eq!(plural(1, "error"), "1 error");
        assert_eq!(plural(0, "warning"), "0 warnings");
        assert_eq!(severity(Severity::Error, false), "error");
        assert_eq!(severity(Severity::Warning, true), "\x1b[1;33mwarning\x1b[0m");
    }
}
