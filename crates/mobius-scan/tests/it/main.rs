//! mobius-scan's integration tests: the built-in rules against their fixtures, gitleaks
//! configs, real git repositories, baselines and reports.

mod configs;
mod default_rules;
mod git;
mod reports;
mod util;
