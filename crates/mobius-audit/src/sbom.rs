//! CycloneDX 1.6 JSON bills of materials from lockfiles: one `library` component per locked
//! package (by package URL, once however many lockfiles lock it), with the lockfile lines it
//! was found at as evidence.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use crate::lockfile::Lockfile;
use crate::package::{Ecosystem, Package, normalise_pypi_name};

/// The CycloneDX version written.
pub const SPEC_VERSION: &str = "1.6";

/// What the bill of materials describes: the application being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomSubject {
    /// Its name.
    pub name: String,
    /// Its version, when it has one.
    pub version: Option<String>,
}

#[derive(Serialize)]
struct Bom<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    #[serde(rename = "serialNumber")]
    serial_number: String,
    version: u32,
    metadata: Metadata<'a>,
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    timestamp: String,
    tools: Tools,
    component: Subject<'a>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Tool>,
}

#[derive(Serialize)]
struct Tool {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Subject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    version: String,
    purl: String,
    evidence: Evidence,
}

#[derive(Serialize)]
struct Evidence {
    occurrences: Vec<Occurrence>,
}

#[derive(Serialize)]
struct Occurrence {
    location: String,
    line: usize,
}

/// A CycloneDX 1.6 document for `lockfiles`, stamped now with a random serial number.
pub fn sbom(lockfiles: &[Lockfile], subject: &SbomSubject) -> serde_json::Value {
    sbom_at(lockfiles, subject, Timestamp::now(), Uuid::new_v4())
}

/// A CycloneDX 1.6 document for `lockfiles` with the given timestamp and serial number.
pub fn sbom_at(lockfiles: &[Lockfile], subject: &SbomSubject, timestamp: Timestamp, serial: Uuid) -> serde_json::Value {
    let mut components: BTreeMap<String, Component> = BTreeMap::new();
    for package in lockfiles.iter().flat_map(|l| &l.packages) {
        let purl = purl(package);
        let occurrence =
            Occurrence { location: package.source.file.to_string_lossy().into_owned(), line: package.source.line };
        components
            .entry(purl.clone())
            .or_insert_with(|| Component {
                kind: "library",
                bom_ref: purl.clone(),
                name: package.name.clone(),
                version: package.version.clone(),
                purl,
                evidence: Evidence { occurrences: Vec::new() },
            })
            .evidence
            .occurrences
            .push(occurrence);
    }
    let bom = Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: format!("urn:uuid:{}", serial.hyphenated()),
        version: 1,
        metadata: Metadata {
            timestamp: timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            tools: Tools {
                components: vec![Tool { kind: "application", name: "mobius", version: env!("CARGO_PKG_VERSION") }],
            },
            component: Subject {
                kind: "application",
                bom_ref: match &subject.version {
                    Some(version) => format!("{}@{version}", subject.name),
                    None => subject.name.clone(),
                },
                name: &subject.name,
                version: subject.version.as_deref(),
            },
        },
        components: components.into_values().collect(),
    };
    serde_json::to_value(bom).expect("a bill of materials always serialises")
}

/// The package URL of a package (purl-spec's `cargo`, `npm`, `pypi` and `golang` types).
pub fn purl(package: &Package) -> String {
    let (kind, path) = match package.ecosystem {
        Ecosystem::CratesIo => ("cargo", encode_segment(&package.name)),
        // `@scope/name`: the scope is the namespace, its `@` encoded.
        Ecosystem::Npm => ("npm", package.name.split('/').map(encode_segment).collect::<Vec<_>>().join("/")),
        // purl-spec: PyPI names are lowercased, `_` written as `-`.
        Ecosystem::PyPi => ("pypi", encode_segment(&normalise_pypi_name(&package.name))),
        // The module path's segments are the namespace and the name.
        Ecosystem::Go => ("golang", package.name.split('/').map(encode_segment).collect::<Vec<_>>().join("/")),
    };
    format!("pkg:{kind}/{path}@{}", encode_segment(&package.version))
}

/// Percent-encodes everything but purl's unreserved characters.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Location;

    fn check(ecosystem: Ecosystem, name: &str, version: &str, expected: &str) {
        let package = Package {
            ecosystem,
            name: name.to_owned(),
            version: version.to_owned(),
            source: Location { file: "x".into(), line: 1 },
        };
        assert_eq!(purl(&package), expected);
    }

    #[test]
    fn purls_per_ecosystem() {
        check(Ecosystem::CratesIo, "smallvec", "1.6.0", "pkg:cargo/smallvec@1.6.0");
        check(Ecosystem::Npm, "@babel/core", "7.0.0-beta.1", "pkg:npm/%40babel/core@7.0.0-beta.1");
        check(Ecosystem::PyPi, "Django_Rest.Framework", "3.14.0", "pkg:pypi/django-rest-framework@3.14.0");
        check(Ecosystem::Go, "github.com/gin-gonic/gin", "v1.9.1", "pkg:golang/github.com/gin-gonic/gin@v1.9.1");
        check(
            Ecosystem::Go,
            "github.com/a/b",
            "v2.0.0+incompatible",
            "pkg:golang/github.com/a/b@v2.0.0%2Bincompatible",
        );
    }
}
