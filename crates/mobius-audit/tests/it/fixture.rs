//! A project directory and an OSV database built per test.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mobius_audit::{AuditArgs, Format, Report};
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

/// A temporary directory holding `project/` (lockfiles) and `osv/` (the database).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let fixture = Fixture { dir: tempfile::tempdir().unwrap() };
        fs::create_dir_all(fixture.project()).unwrap();
        fs::create_dir_all(fixture.osv()).unwrap();
        fixture
    }

    pub fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    pub fn osv(&self) -> PathBuf {
        self.dir.path().join("osv")
    }

    /// Writes a file under the project directory and returns its path.
    pub fn lockfile(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.project().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    /// Writes `<osv>/<ecosystem>/all.zip` with one `<id>.json` entry per record.
    pub fn archive(&self, ecosystem: &str, records: &[Value]) -> PathBuf {
        let entries: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|r| (format!("{}.json", r["id"].as_str().unwrap()), serde_json::to_vec_pretty(r).unwrap()))
            .collect();
        self.raw_archive(ecosystem, &entries, zip::CompressionMethod::Deflated)
    }

    /// Writes `<osv>/<ecosystem>/all.zip` with the given entries as they are.
    pub fn raw_archive(
        &self,
        ecosystem: &str,
        entries: &[(String, Vec<u8>)],
        method: zip::CompressionMethod,
    ) -> PathBuf {
        let path = archive_path(&self.osv(), ecosystem);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        for (name, bytes) in entries {
            writer.start_file(name.as_str(), SimpleFileOptions::default().compression_method(method)).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    pub fn args(&self) -> AuditArgs {
        AuditArgs {
            paths: vec![self.project()],
            osv_dir: self.osv(),
            format: Format::Text,
            output: None,
            max_age: None,
            fail_on_old: false,
            fail_on: None,
        }
    }

    /// Runs the audit over the project as of 2024-06-01.
    pub fn report(&self) -> Report {
        mobius_audit::run(&self.args(), now()).unwrap()
    }
}

pub fn archive_path(osv: &Path, ecosystem: &str) -> PathBuf {
    osv.join(ecosystem).join("all.zip")
}

/// The instant audits in these tests run at.
pub fn now() -> Timestamp {
    "2024-06-01T00:00:00Z".parse().unwrap()
}

/// An OSV record with one affected package.
pub fn advisory(id: &str, ecosystem: &str, name: &str, affected: Value) -> Value {
    let mut entry = affected;
    entry["package"] = json!({"ecosystem": ecosystem, "name": name});
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-05-20T10:00:00Z",
        "published": "2024-05-01T10:00:00Z",
        "summary": format!("{id} in {name}"),
        "affected": [entry],
    })
}

/// `(name, version, advisory, fixed)` of each finding, in report order.
pub fn findings(report: &Report) -> Vec<(String, String, String, Option<String>)> {
    report
        .findings
        .iter()
        .map(|f| (f.package.name.clone(), f.package.version.clone(), f.advisory.clone(), f.fixed.clone()))
        .collect()
}

/// A `Cargo.lock` locking `name` at each of `versions` from crates.io.
pub fn cargo_lock(name: &str, versions: &[&str]) -> String {
    let mut text = "version = 4\n".to_owned();
    for version in versions {
        text.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
    }
    text
}
