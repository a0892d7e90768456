//! Policy gates as code: a repository's `policies/*.rego`, conftest-style, decide whether
//! Mobius may make a change (a deploy, a promotion, a GitOps sync, a flag change).
//!
//! Policies are Rego v1 in `package mobius.gate`, evaluated with regorus. They follow
//! conftest's conventions:
//!
//! - `deny` (or `violation`) rules, optionally suffixed (`deny_latest`), are sets of messages:
//!   strings, or objects with a string `msg`. Any message denies.
//! - `warn` rules (`warn_high`) are sets of messages that are reported and never block.
//! - `exception contains rules if { …; rules := ["latest"] }` excepts the rules it names: the
//!   name is the rule's without `deny_`/`violation_`/`warn_` (`"latest"` excepts `deny_latest`,
//!   `violation_latest` and `warn_latest`; `""` excepts the bare `deny`, `violation`, `warn`).
//!   An excepted rule's messages are dropped and the rule is listed in
//!   [`Decision::exceptions`], whether or not it had messages, as conftest tallies them.
//!
//! The gate fails closed: an evaluation error (a division by zero, a builtin given the wrong
//! type, two values for one complete rule, a rule running past its time limit) denies, and the
//! denial says which rule failed and at which `file:line:column`.
//!
//! ```no_run
//! use mobius_policy::{Input, Policies};
//!
//! let policies = Policies::load("policies")?; // refused at file:line:column if broken
//! let input = Input::from_json(&std::fs::read_to_string("input.json").unwrap())?;
//! let decision = policies.decide(&input);
//! if !decision.allow {
//!     eprintln!("refused: {}", decision.deny.join("; "));
//! }
//! # Ok::<(), mobius_policy::PolicyError>(())
//! ```
//!
//! # The input
//!
//! [`Input`] is what `input` holds; each field is documented on its type, and `README.md` has
//! a complete JSON example. In short:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `action` | `"deploy"` \| `"promotion"` \| `"gitops-sync"` \| `"flag-change"` | what is about to happen ([`Action`]) |
//! | `service` | string | the service, as `mobius.yaml` names it |
//! | `environment` | string | where the change lands (`production`) |
//! | `artifact.digest` | string | the artifact's digest, `sha256:…` |
//! | `artifact.commit` | string | the commit it was built from |
//! | `artifact.branch` | string | the branch of that build (empty for a tag) |
//! | `artifact.default_branch` | string | the repository's default branch |
//! | `artifact.workflow` | string | the workflow that built it |
//! | `artifact.run` | string | that workflow's run (empty when unknown) |
//! | `artifact.built_by_mobius` | bool | whether a Mobius run built it |
//! | `artifact.scan.secrets.findings` | integer | secret-scan findings, all |
//! | `artifact.scan.secrets.unresolved` | integer | those not yet resolved |
//! | `artifact.scan.vulnerabilities.{critical,high,medium,low}` | integer | known vulnerabilities by severity |
//! | `artifact.provenance` | any JSON, optional | the provenance recorded for it (SLSA, …) |
//! | `actor.name` | string | who asked |
//! | `actor.token_scope` | string | the scope of the token that asked (`deploy`, `admin`) |
//! | `reason` | string, optional | why, when said: `hotfix`, `security`, … |
//! | `time.rfc3339` | string | when, RFC 3339 in UTC (`2026-12-04T16:30:00Z`) |
//! | `time.weekday` | string | its weekday in UTC, `Monday` … `Sunday` (as OPA's `time.weekday`) |
//! | `time.hour` | integer | its hour in UTC, 0 … 23 |
//! | `slo.status` | `"ok"` \| `"warning"` \| `"frozen"` | the service's error budget state |
//! | `slo.budget_remaining` | number | share of the budget left, `1.0` … `0.0`, negative when overspent |
//! | `flag.set`, `flag.environment` | string | for a flag change ([`FlagChange`]): the set, and the environment it belongs to |
//! | `flag.change` | `"document"` \| `"state"` \| `"default-variant"` \| `"rollout-step"` \| `"delete"` | what the change does ([`FlagChangeKind`]) |
//! | `flag.flag` | string or null | the one flag a `state`, `default-variant` or `rollout-step` change is about |
//! | `flag.version_before`, `flag.version_after` | integer | the set's version now (0: new) and the one the change makes |
//! | `flag.rollout` | object or null | for a `rollout-step`: `variant` and its `weight` after the step, in percent ([`RolloutStep`]) |
//! | `flag.flags[_]` | array | every flag the change alters: `key`, `before`, `after` (flagd definitions, `null` when added or removed) ([`FlagDiff`]) |
//! | `gitops` | object, optional | for a GitOps sync: the deploy `repository`, the `revision` read and the environment `file` ([`GitopsSource`]) |
//!
//! # Tests
//!
//! [`test()`] runs every `test_*` rule of the policy files and of `*_test.rego` files, as
//! `opa test` does, and reports `PASS: n/N` ([`TestReport`]).
//!
//! # Builtins
//!
//! regorus is built with `time`, `regex`, `glob` and `cache` besides its core (strings,
//! numbers, aggregates, objects, sets, arrays, `sprintf`, `json.*`, `print`): `time.*`,
//! `regex.match`, `glob.match` work, with compiled patterns cached; `http.send`, `net.*`,
//! `yaml.*`, `uuid.*`, `json.verify_schema`, crypto and JWT builtins do not, and a rule that
//! calls one fails when it runs (so the decision denies, and [`test()`] reports the error).
//!
//! Modules: `load` (files, package and rule checks, one prepared engine), `decide`
//! ([`Policies`], [`Decision`]), `testing` ([`test()`]), `input` ([`Input`]), `located`
//! (regorus's errors as `file:line:column: message`), `error` ([`PolicyError`]).

#![warn(missing_docs)]

mod decide;
mod error;
mod input;
mod load;
mod located;
mod testing;

pub use decide::{Decision, Policies, eval};
pub use error::{PolicyError, Position};
pub use input::{
    Action, Actor, Artifact, FlagChange, FlagChangeKind, FlagDiff, GitopsSource, Input, RolloutStep, Scan, SecretScan,
    Slo, SloStatus, Time, Vulnerabilities,
};
pub use load::{DEFAULT_TIME_LIMIT, PACKAGE};
pub use testing::{Outcome, TestReport, TestResult, test};
