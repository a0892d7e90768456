//! SLSA provenance v1 in an in-toto Statement v1: what was built (the subject, by digest),
//! from what (repository and commit, the workflow file) and by whom (the builder, the run).

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The build type Mobius pipelines record: what `externalParameters` and
/// `internalParameters` mean is defined by this URI.
pub const BUILD_TYPE: &str = "https://mobius.dev/pipeline-run/v1";

/// How an artifact was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The source repository's URL (`https://…` or `git+ssh://…`).
    pub repository: String,
    /// The commit built, as a full hex SHA.
    pub commit: String,
    /// The pipeline definition's path in the repository.
    pub workflow_file: String,
    /// The pipeline run's id.
    pub run_id: String,
    /// Which attempt of the run this was (1 for the first).
    pub run_attempt: u32,
    /// When the build started.
    pub started: Timestamp,
    /// When the build finished.
    pub finished: Timestamp,
    /// The builder's identity, a URI (the Mobius instance and its runner).
    pub builder_id: String,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: [Subject<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Value,
}

#[derive(Serialize)]
struct Subject<'a> {
    name: &'a str,
    digest: Digest<'a>,
}

#[derive(Serialize)]
struct Digest<'a> {
    sha256: &'a str,
}

/// An in-toto Statement v1 with an SLSA provenance v1 predicate for one artifact.
/// `sha256_digest` is the artifact's SHA-256 in lowercase hex.
pub fn provenance(subject_name: &str, sha256_digest: &str, build: &BuildInfo) -> Value {
    let rfc3339 = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let source = if build.repository.starts_with("git+") {
        format!("{}@{}", build.repository, build.commit)
    } else {
        format!("git+{}@{}", build.repository, build.commit)
    };
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "workflow": {
                    "repository": build.repository,
                    "ref": build.commit,
                    "path": build.workflow_file,
                },
            },
            "internalParameters": {
                "runId": build.run_id,
                "runAttempt": build.run_attempt,
            },
            "resolvedDependencies": [{
                "uri": source,
                "digest": {"gitCommit": build.commit},
            }],
        },
        "runDetails": {
            "builder": {"id": build.builder_id},
            "metadata": {
                "invocationId": format!("{}/attempts/{}", build.run_id, build.run_attempt),
                "startedOn": rfc3339(build.started),
                "finishedOn": rfc3339(build.finished),
            },
        },
    });
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: [Subject { name: subject_name, digest: Digest { sha256: sha256_digest } }],
        predicate_type: PREDICATE_TYPE,
        predicate,
    };
    serde_json::to_value(statement).expect("a statement always serialises")
}
