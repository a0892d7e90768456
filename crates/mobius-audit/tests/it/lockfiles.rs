//! Lockfile readers through the public API: npm v1 and v3, discovery in a directory.

use std::path::Path;

use mobius_audit::lockfile::{self, LockfileKind};
use mobius_audit::{Ecosystem, Lockfile};
use serde_json::json;

use crate::fixture::{Fixture, advisory, findings};

fn packages(lockfile: &Lockfile) -> Vec<(&str, &str, usize)> {
    lockfile.packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.source.line)).collect()
}

const NPM_V1: &str = r#"{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "lodash": {
      "version": "4.17.20",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz",
      "integrity": "sha512-x"
    },
    "express": {
      "version": "4.17.1",
      "requires": {
        "qs": "6.7.0"
      },
      "dependencies": {
        "qs": {
          "version": "6.7.0"
        }
      }
    },
    "my-fork": {
      "version": "github:me/fork#abc"
    },
    "old-name": {
      "version": "npm:@scope/new-name@2.0.0"
    }
  }
}
"#;

#[test]
fn npm_lockfile_v1_reads_nested_dependencies_at_their_lines() {
    let lockfile = Lockfile::parse(LockfileKind::PackageLock, Path::new("package-lock.json"), NPM_V1).unwrap();
    assert_eq!(
        packages(&lockfile),
        [("lodash", "4.17.20", 7), ("express", "4.17.1", 12), ("qs", "6.7.0", 18), ("@scope/new-name", "2.0.0", 26)]
    );
    assert!(lockfile.packages.iter().all(|p| p.ecosystem == Ecosystem::Npm));
}

const NPM_V3: &str = r#"{
  "name": "app",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "app",
      "workspaces": ["packages/*"]
    },
    "node_modules/@babel/core": {
      "version": "7.22.0",
      "dev": true
    },
    "node_modules/lodash": {
      "version": "4.17.21"
    },
    "node_modules/express/node_modules/qs": {
      "version": "6.7.0"
    },
    "node_modules/lodash-old": {
      "name": "lodash",
      "version": "4.17.20"
    },
    "node_modules/local-lib": {
      "resolved": "packages/local-lib",
      "link": true
    },
    "packages/local-lib": {
      "version": "0.0.1"
    },
    "node_modules/again/node_modules/lodash": {
      "version": "4.17.21"
    }
  }
}
"#;

#[test]
fn npm_lockfile_v3_reads_packages_and_leaves_out_the_project_itself() {
    let lockfile = Lockfile::parse(LockfileKind::PackageLock, Path::new("package-lock.json"), NPM_V3).unwrap();
    assert_eq!(
        packages(&lockfile),
        [("@babel/core", "7.22.0", 10), ("lodash", "4.17.21", 14), ("qs", "6.7.0", 17), ("lodash", "4.17.20", 20)]
    );
}

#[test]
fn npm_v1_and_v3_findings_point_at_their_entries() {
    let fixture = Fixture::new();
    fixture.lockfile("v1/package-lock.json", NPM_V1);
    fixture.lockfile("v3/package-lock.json", NPM_V3);
    let affected = json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]});
    fixture.archive("npm", &[advisory("GHSA-35jh-r3h4-6jhm", "npm", "lodash", affected)]);
    let report = fixture.report();
    let at: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.package.source.file.strip_prefix(fixture.project()).unwrap().to_owned(), f.package.source.line))
        .collect();
    assert_eq!(
        at,
        [(Path::new("v1/package-lock.json").to_owned(), 7), (Path::new("v3/package-lock.json").to_owned(), 20)]
    );
    assert!(findings(&report).iter().all(|(_, v, _, fixed)| v == "4.17.20" && fixed.as_deref() == Some("4.17.21")));
}

#[test]
fn discovery_finds_every_kind_and_skips_vendored_trees() {
    let fixture = Fixture::new();
    for path in [
        "Cargo.lock",
        "web/package-lock.json",
        "web/node_modules/dep/package-lock.json",
        "py/requirements-dev.txt",
        "py/poetry.lock",
        "svc/go.sum",
        "target/Cargo.lock",
        ".git/go.sum",
        "README.md",
    ] {
        fixture.lockfile(path, "");
    }
    let found: Vec<_> = lockfile::discover(&fixture.project())
        .unwrap()
        .into_iter()
        .map(|p| p.strip_prefix(fixture.project()).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        found,
        ["Cargo.lock", "py/poetry.lock", "py/requirements-dev.txt", "svc/go.sum", "web/package-lock.json"]
    );
}

#[test]
fn an_unknown_file_is_refused_by_name() {
    let fixture = Fixture::new();
    let path = fixture.lockfile("yarn.lock", "");
    let error = Lockfile::read(&path).unwrap_err().to_string();
    assert!(error.starts_with(&format!("{}: not a lockfile this audit reads", path.display())), "{error}");
}
