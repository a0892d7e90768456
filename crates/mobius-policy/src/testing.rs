//! `opa test` for a policy directory: every `test_*` rule, in the policies and in the
//! `*_test.rego` files, evaluated and reported.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::error::{PolicyError, Position};
use crate::load::{self, DEFAULT_TIME_LIMIT, Files};
use crate::located::one_line;

/// The outcome of running a directory's policy tests.
#[derive(Debug, Serialize)]
pub struct TestReport {
    /// The directory.
    pub dir: PathBuf,
    /// Why no test ran: the policies or the tests did not load.
    #[serde(serialize_with = "display")]
    pub error: Option<PolicyError>,
    /// Each test, by file then name.
    pub tests: Vec<TestResult>,
}

/// One test rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// Its full name, `data.mobius.gate_test.test_friday_needs_a_reason`.
    pub name: String,
    /// The file that declares it.
    pub file: PathBuf,
    /// Where.
    pub at: Position,
    /// Pass, fail or error.
    pub outcome: Outcome,
    /// What its `print` calls printed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prints: Vec<String>,
}

/// What a test rule evaluated to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "outcome", content = "error")]
pub enum Outcome {
    /// `true`.
    Pass,
    /// Undefined or anything but `true`.
    Fail,
    /// The evaluation failed: the error, at `file:line:column`.
    Error(String),
}

impl TestReport {
    /// Whether every test passed (and the directory loaded). No test at all passes, as with
    /// `opa test`.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.tests.iter().all(|t| t.outcome == Outcome::Pass)
    }

    /// How many tests had the outcome.
    pub fn count(&self, outcome: fn(&Outcome) -> bool) -> usize {
        self.tests.iter().filter(|t| outcome(&t.outcome)).count()
    }

    /// The names of the tests that failed or erred.
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.tests.iter().filter(|t| t.outcome != Outcome::Pass).map(|t| t.name.as_str())
    }
}

/// Runs every `test_*` rule of `dir`'s `*.rego` files, `opa test`'s way: a test passes when it
/// evaluates to `true`; undefined or `false` fails; an evaluation error is an error. Policy
/// files must load as for a decision; `*_test.rego` files may be in any package (OPA's
/// convention is `package mobius.gate_test` with `import data.mobius.gate`). Each test runs
/// on a fresh copy of the prepared policies, with no input unless it says `with input as`.
pub fn test(dir: impl AsRef<Path>) -> TestReport {
    let dir = dir.as_ref().to_path_buf();
    let loaded = match load::load(&dir, Files::PoliciesAndTests, DEFAULT_TIME_LIMIT) {
        Ok(loaded) => loaded,
        Err(error) => return TestReport { dir, error: Some(error), tests: Vec::new() },
    };
    let mut seen = BTreeSet::new();
    let mut tests: Vec<_> = loaded
        .declared
        .iter()
        .filter(|d| d.is_plain && d.name.starts_with("test_"))
        .filter(|d| seen.insert((d.package.clone(), d.name.clone())))
        .collect();
    tests.sort_by(|a, b| (&a.file, a.at.line, &a.name).cmp(&(&b.file, b.at.line, &b.name)));

    let tests = tests
        .into_iter()
        .map(|declared| {
            let name = format!("data.{}.{}", declared.package, declared.name);
            let mut engine = loaded.engine.clone();
            let outcome = match engine.eval_rule(name.clone()) {
                Ok(regorus::Value::Bool(true)) => Outcome::Pass,
                Ok(_) => Outcome::Fail,
                Err(e) => Outcome::Error(one_line(&e, &loaded.sources)),
            };
            let prints = engine.take_prints().unwrap_or_default();
            TestResult { name, file: declared.file.clone(), at: declared.at, outcome, prints }
        })
        .collect();
    TestReport { dir, error: None, tests }
}

/// `opa test`'s layout: tests by file, failures with where and what they printed, then
/// `PASS: n/N` and, when some did not pass, `FAIL: n/N` and `ERROR: n/N`.
impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.error {
            return writeln!(f, "{error}");
        }
        if self.tests.is_empty() {
            return writeln!(f, "{}: no tests (rules named test_*)", self.dir.display());
        }
        let mut file = None;
        for test in &self.tests {
            if file != Some(&test.file) {
                if file.is_some() {
                    writeln!(f)?;
                }
                writeln!(f, "{}:", test.file.display())?;
                file = Some(&test.file);
            }
            let at = format!("{}:{}:{}", test.file.display(), test.at.line, test.at.column);
            match &test.outcome {
                Outcome::Pass => writeln!(f, "{}: PASS", test.name)?,
                Outcome::Fail => writeln!(f, "{}: FAIL ({at})", test.name)?,
                Outcome::Error(error) => writeln!(f, "{}: ERROR ({at}): {error}", test.name)?,
            }
            if test.outcome != Outcome::Pass {
                for line in &test.prints {
                    writeln!(f, "  {}", line.trim_end())?;
                }
            }
        }
        writeln!(f, "{}", "-".repeat(80))?;
        let total = self.tests.len();
        writeln!(f, "PASS: {}/{total}", self.count(|o| *o == Outcome::Pass))?;
        let failed = self.count(|o| *o == Outcome::Fail);
        if failed > 0 {
            writeln!(f, "FAIL: {failed}/{total}")?;
        }
        let erred = self.count(|o| matches!(o, Outcome::Error(_)));
        if erred > 0 {
            writeln!(f, "ERROR: {erred}/{total}")?;
        }
        Ok(())
    }
}

fn display<S: Serializer>(error: &Option<PolicyError>, serializer: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.serialize_some(&error.to_string()),
        None => serializer.serialize_none(),
    }
}
