//! CycloneDX SBOMs: the document's fields, and validation against CycloneDX's JSON schema.
//!
//! The schemas are not in the repository: `MOBIUS_CYCLONEDX_SCHEMAS` (by default
//! `/usr/local/share/cyclonedx`) names a directory holding `bom-1.6.SNAPSHOT.schema.json`,
//! `spdx.SNAPSHOT.schema.json` and `jsf-0.82.SNAPSHOT.schema.json` as the
//! `cyclonedx-python-lib` wheel ships them; `tests/install-cyclonedx-schemas.sh` (which
//! `scripts/test` runs) fills it. Without them the validation test fails and says so.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mobius_audit::lockfile::LockfileKind;
use mobius_audit::{Lockfile, SbomSubject, sbom, sbom_at};
use serde_json::{Value, json};

const SCHEMA_DIR_VAR: &str = "MOBIUS_CYCLONEDX_SCHEMAS";
const DEFAULT_SCHEMA_DIR: &str = "/usr/local/share/cyclonedx";

fn lockfiles() -> Vec<Lockfile> {
    let cargo = "version = 4\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    let npm = json!({"lockfileVersion": 3, "packages": {
        "": {"name": "web"},
        "node_modules/@babel/core": {"version": "7.22.0"},
        "node_modules/lodash": {"version": "4.17.21"},
    }})
    .to_string();
    vec![
        Lockfile::parse(LockfileKind::CargoLock, Path::new("Cargo.lock"), cargo).unwrap(),
        Lockfile::parse(LockfileKind::CargoLock, Path::new("tools/Cargo.lock"), cargo).unwrap(),
        Lockfile::parse(LockfileKind::PackageLock, Path::new("web/package-lock.json"), &npm).unwrap(),
        Lockfile::parse(LockfileKind::Requirements, Path::new("requirements.txt"), "Django_Utils==1.0rc1\n").unwrap(),
        Lockfile::parse(LockfileKind::GoSum, Path::new("go.sum"), "github.com/a/b v2.0.0+incompatible h1:x=\n")
            .unwrap(),
    ]
}

fn subject() -> SbomSubject {
    SbomSubject { name: "mobius".to_owned(), version: Some("0.1.0".to_owned()) }
}

fn document() -> Value {
    let at: Timestamp = "2024-06-01T12:30:00Z".parse().unwrap();
    sbom_at(&lockfiles(), &subject(), at, uuid::Uuid::from_u128(0x3e671687_395b_41f5_a30f_a58921a69b79))
}

#[test]
fn sbom_lists_each_package_once_with_its_purl_and_where_it_was_locked() {
    let bom = document();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["serialNumber"], "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79");
    assert_eq!(bom["version"], 1);
    assert_eq!(bom["metadata"]["timestamp"], "2024-06-01T12:30:00Z");
    assert_eq!(
        bom["metadata"]["component"],
        json!({"type": "application", "bom-ref": "mobius@0.1.0", "name": "mobius", "version": "0.1.0"})
    );
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "mobius");
    let components = bom["components"].as_array().unwrap();
    let purls: Vec<_> = components.iter().map(|c| c["purl"].as_str().unwrap()).collect();
    assert_eq!(
        purls,
        [
            "pkg:cargo/smallvec@1.6.0",
            "pkg:golang/github.com/a/b@v2.0.0%2Bincompatible",
            "pkg:npm/%40babel/core@7.22.0",
            "pkg:npm/lodash@4.17.21",
            "pkg:pypi/django-utils@1.0rc1",
        ]
    );
    assert!(components.iter().all(|c| c["type"] == "library" && c["bom-ref"] == c["purl"]));
    assert_eq!(
        components[0]["evidence"]["occurrences"],
        json!([{"location": "Cargo.lock", "line": 3}, {"location": "tools/Cargo.lock", "line": 3}])
    );
}

#[test]
fn each_sbom_has_its_own_serial_number() {
    let (a, b) = (sbom(&lockfiles(), &subject()), sbom(&lockfiles(), &subject()));
    assert_ne!(a["serialNumber"], b["serialNumber"]);
}

/// Resolves the schemas' relative `$ref`s (`spdx.SNAPSHOT.schema.json`, …) from the directory.
struct SchemaDir(PathBuf);

impl jsonschema::Retrieve for SchemaDir {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.path().as_str().rsplit('/').next().unwrap_or_default().to_owned();
        let path = self.0.join(&name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn schema_dir() -> PathBuf {
    let dir = std::env::var_os(SCHEMA_DIR_VAR).map_or_else(|| PathBuf::from(DEFAULT_SCHEMA_DIR), PathBuf::from);
    assert!(
        dir.join("bom-1.6.SNAPSHOT.schema.json").is_file(),
        "{} has no CycloneDX schemas ({SCHEMA_DIR_VAR} names another directory): run \
         crates/mobius-audit/tests/install-cyclonedx-schemas.sh, as scripts/test does",
        dir.display()
    );
    dir
}

#[test]
fn sbom_validates_against_the_cyclonedx_1_6_schema() {
    let dir = schema_dir();
    let path = dir.join("bom-1.6.SNAPSHOT.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (is {SCHEMA_DIR_VAR} filled by scripts/test?)", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::options().with_retriever(SchemaDir(dir)).build(&schema).unwrap();

    let bom = document();
    let errors: Vec<String> = validator.iter_errors(&bom).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The validator does reject: a component type the schema does not list, and a bad serial.
    let mut wrong = bom.clone();
    wrong["components"][0]["type"] = json!("crate");
    assert!(!validator.is_valid(&wrong));
    let mut wrong = bom;
    wrong["serialNumber"] = json!("urn:uuid:not-a-uuid");
    assert!(!validator.is_valid(&wrong));
}
