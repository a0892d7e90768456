//! Dependency audit for Mobius (issue 16, item 6): which locked dependencies have known
//! vulnerabilities, what the build consumed, and how it was built.
//!
//! - [`lockfile`] reads `Cargo.lock`, `package-lock.json`/`npm-shrinkwrap.json` (lockfile
//!   versions 1 to 3), `requirements.txt`, `poetry.lock` and `go.sum` into [`Package`]s that
//!   know the file and line they came from.
//! - [`version`] orders versions per ecosystem: SemVer (crates.io, npm, Go with its `v`) and a
//!   PEP 440 subset (PyPI).
//! - [`osv`] reads an offline OSV database (per-ecosystem `all.zip` exports, as osv-scanner
//!   caches them) and evaluates OSV's affected ranges.
//! - [`audit()`] joins the two into a [`Report`], rendered as text, JSON or SARIF 2.1.0
//!   ([`sarif`]), with an exit code for gates.
//! - [`sbom()`] writes a CycloneDX 1.6 JSON bill of materials; [`provenance()`] an in-toto
//!   Statement v1 carrying SLSA provenance v1.
//!
//! Nothing here touches the network: the database is whatever the operator put on disk, and
//! its age is reported (or refused) rather than refreshed.

mod audit;
pub mod lockfile;
pub mod osv;
mod package;
mod provenance;
mod report;
pub mod sarif;
mod sbom;
pub mod version;

pub use audit::{
    AuditArgs, AuditError, BadAge, EXIT_CLEAN, EXIT_NO_PACKAGES, EXIT_VULNERABLE, Format, audit, audit_at,
    parse_max_age, read_lockfiles, render, run,
};
pub use lockfile::{Lockfile, LockfileError};
pub use package::{Ecosystem, Location, Package};
pub use provenance::{BuildInfo, provenance};
pub use report::{Finding, Report, Severity, Warning};
pub use sbom::{SbomSubject, sbom, sbom_at};
