//! Provenance statements, checked field by field against the in-toto Statement v1
//! (`in-toto/attestation: spec/v1/statement.md`, `resource_descriptor.md`) and SLSA
//! provenance v1 (`slsa.dev/spec/v1.0/provenance`) shapes: no package ships those as JSON
//! schemas (the in-toto attestation bindings ship protobuf descriptors), so the shape is
//! written down here.

use jiff::Timestamp;
use mobius_audit::{BuildInfo, provenance};
use serde_json::{Map, Value, json};

fn build() -> BuildInfo {
    BuildInfo {
        repository: "https://git.example.com/team/app".to_owned(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        workflow_file: ".mobius/pipeline.yml".to_owned(),
        run_id: "run-42".to_owned(),
        run_attempt: 2,
        started: "2024-06-01T10:00:00Z".parse::<Timestamp>().unwrap(),
        finished: "2024-06-01T10:04:30Z".parse::<Timestamp>().unwrap(),
        builder_id: "https://mobius.example.com/runners/linux-1".to_owned(),
    }
}

const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn object<'a>(value: &'a Value, at: &str) -> &'a Map<String, Value> {
    value.as_object().unwrap_or_else(|| panic!("{at} must be an object, is {value}"))
}

/// Fails unless `object` has exactly the keys `required` plus any of `optional`.
fn keys(object: &Map<String, Value>, at: &str, required: &[&str], optional: &[&str]) {
    for key in required {
        assert!(object.contains_key(*key), "{at}.{key} is required");
    }
    for key in object.keys() {
        assert!(required.contains(&key.as_str()) || optional.contains(&key.as_str()), "{at}.{key} is not in the spec");
    }
}

fn rfc3339_utc(value: &Value, at: &str) {
    let text = value.as_str().unwrap_or_else(|| panic!("{at} must be a string"));
    assert!(text.ends_with('Z') && text.parse::<Timestamp>().is_ok(), "{at} = {text} is not an RFC 3339 UTC time");
}

fn resource_descriptor(value: &Value, at: &str) {
    let descriptor = object(value, at);
    keys(descriptor, at, &[], &["uri", "digest", "name", "downloadLocation", "mediaType", "content", "annotations"]);
    assert!(
        ["uri", "digest", "content"].iter().any(|k| descriptor.contains_key(*k)),
        "{at} needs one of uri, digest, content"
    );
    if let Some(digest) = descriptor.get("digest") {
        for (algorithm, hex) in object(digest, &format!("{at}.digest")) {
            let hex = hex.as_str().unwrap();
            assert!(!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{at}.digest.{algorithm}");
        }
    }
}

/// The in-toto Statement v1 and SLSA provenance v1 shapes.
fn check_statement(statement: &Value) {
    let top = object(statement, "$");
    keys(top, "$", &["_type", "subject", "predicateType", "predicate"], &[]);
    assert_eq!(top["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(top["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects = top["subject"].as_array().expect("subject is an array");
    assert!(!subjects.is_empty(), "subject must not be empty");
    for (i, subject) in subjects.iter().enumerate() {
        resource_descriptor(subject, &format!("$.subject[{i}]"));
        assert!(subject.get("digest").is_some(), "subjects are matched by digest: $.subject[{i}].digest is required");
    }

    let predicate = object(&top["predicate"], "$.predicate");
    keys(predicate, "$.predicate", &["buildDefinition", "runDetails"], &[]);
    let definition = object(&predicate["buildDefinition"], "buildDefinition");
    keys(
        definition,
        "buildDefinition",
        &["buildType", "externalParameters"],
        &["internalParameters", "resolvedDependencies"],
    );
    assert!(definition["buildType"].as_str().is_some_and(|t| t.starts_with("https://")), "buildType is a URI");
    object(&definition["externalParameters"], "buildDefinition.externalParameters");
    if let Some(internal) = definition.get("internalParameters") {
        object(internal, "buildDefinition.internalParameters");
    }
    for (i, dependency) in definition["resolvedDependencies"].as_array().into_iter().flatten().enumerate() {
        resource_descriptor(dependency, &format!("buildDefinition.resolvedDependencies[{i}]"));
    }

    let run = object(&predicate["runDetails"], "runDetails");
    keys(run, "runDetails", &["builder"], &["metadata", "byproducts"]);
    let builder = object(&run["builder"], "runDetails.builder");
    keys(builder, "runDetails.builder", &["id"], &["version", "builderDependencies"]);
    assert!(builder["id"].as_str().is_some_and(|id| id.contains("://")), "builder.id is a URI");
    let metadata = object(&run["metadata"], "runDetails.metadata");
    keys(metadata, "runDetails.metadata", &[], &["invocationId", "startedOn", "finishedOn"]);
    assert!(metadata["invocationId"].is_string());
    rfc3339_utc(&metadata["startedOn"], "runDetails.metadata.startedOn");
    rfc3339_utc(&metadata["finishedOn"], "runDetails.metadata.finishedOn");
}

#[test]
fn provenance_is_an_in_toto_statement_with_slsa_provenance() {
    let statement = provenance("mobius-linux-amd64.tar.gz", DIGEST, &build());
    check_statement(&statement);
    assert_eq!(statement["subject"], json!([{"name": "mobius-linux-amd64.tar.gz", "digest": {"sha256": DIGEST}}]));
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["externalParameters"]["workflow"]["path"], ".mobius/pipeline.yml");
    assert_eq!(definition["externalParameters"]["workflow"]["ref"], build().commit);
    assert_eq!(definition["internalParameters"], json!({"runId": "run-42", "runAttempt": 2}));
    assert_eq!(
        definition["resolvedDependencies"],
        json!([{
            "uri": "git+https://git.example.com/team/app@0123456789abcdef0123456789abcdef01234567",
            "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"},
        }])
    );
    assert_eq!(
        statement["predicate"]["runDetails"],
        json!({
            "builder": {"id": "https://mobius.example.com/runners/linux-1"},
            "metadata": {
                "invocationId": "run-42/attempts/2",
                "startedOn": "2024-06-01T10:00:00Z",
                "finishedOn": "2024-06-01T10:04:30Z",
            },
        })
    );
}

/// A change that makes a statement break its spec.
type Breakage = fn(&mut Value);

#[test]
fn the_shape_check_rejects_what_the_specs_forbid() {
    let good = provenance("a", DIGEST, &build());
    let breakages: [(&str, Breakage); 5] = [
        ("_type", |s| s["_type"] = json!("https://in-toto.io/Statement/v0.1")),
        ("subject digest", |s| s["subject"][0]["digest"]["sha256"] = json!("not hex")),
        ("empty subject", |s| s["subject"] = json!([])),
        ("builder id", |s| s["predicate"]["runDetails"]["builder"] = json!({})),
        ("extra field", |s| s["predicate"]["buildDefinition"]["systemParameters"] = json!({})),
    ];
    for (what, break_it) in breakages {
        let mut statement = good.clone();
        break_it(&mut statement);
        let caught = std::panic::catch_unwind(|| check_statement(&statement)).is_err();
        assert!(caught, "the shape check accepted a broken {what}");
    }
}
