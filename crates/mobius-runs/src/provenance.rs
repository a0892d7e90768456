//! Provenance beside every artifact a server run uploads: an in-toto Statement v1 with an
//! SLSA provenance v1 predicate (`mobius_audit::provenance`) naming the artifact by digest, the
//! repository and commit, the workflow file, the run and its attempt, when it ran, and Mobius
//! as the builder.
//!
//! The statement is a document of the store under `provenance:<digest>`, written as the run
//! ends and before it reads as finished, so every replica serves it and a deploy reading the
//! artifact right then finds it; jobs on agents are covered alike, since their upload steps
//! report to the run on the server. An artifact built again with the same content is the same
//! digest: the newest run's statement replaces the older one. A fork's run records none.

use mobius_audit::BuildInfo;
use mobius_store::{Store, StoreError};

/// The builder Mobius's statements name (`runDetails.builder.id`).
pub const BUILDER_ID: &str = "https://mobius.dev/builder/v1";

/// The store key of an artifact's statement.
fn key(digest: &str) -> String {
    format!("provenance:{digest}")
}

/// Records the statement of each `(name, digest)` a run uploaded. A failure is logged: the
/// artifact stays, without provenance (which a gate policy may then refuse).
pub fn record(store: &dyn Store, build: &BuildInfo, uploaded: &[(String, String)]) {
    for (name, digest) in uploaded {
        let Some(hex) = digest.strip_prefix("sha256:") else {
            tracing::warn!(artifact = %name, %digest, "an artifact without a SHA-256 digest gets no provenance");
            continue;
        };
        let statement = mobius_audit::provenance(name, hex, build).to_string();
        if let Err(error) = store.put_state(&key(digest), &statement) {
            tracing::error!(%error, artifact = %name, %digest, run = %build.run_id, "cannot record an artifact's provenance");
        }
    }
}

/// The statement recorded for the artifact `digest` (`sha256:…`), if any.
pub fn of(store: &dyn Store, digest: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let Some(text) = store.state(&key(digest))? else { return Ok(None) };
    match serde_json::from_str(&text) {
        Ok(statement) => Ok(Some(statement)),
        Err(error) => {
            // Only this module writes the key: an unreadable document is damage, reported as none.
            tracing::error!(%error, %digest, "the recorded provenance is not JSON");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_kept_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = mobius_store::SqliteStore::open(dir.path()).unwrap();
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let build = BuildInfo {
            repository: "file:///src/app".into(),
            commit: "a".repeat(40),
            workflow_file: ".github/workflows/ci.yml".into(),
            run_id: "7".into(),
            run_attempt: 1,
            started: at,
            finished: at,
            builder_id: BUILDER_ID.into(),
        };
        let digest = format!("sha256:{}", "b".repeat(64));
        record(&store, &build, &[("dist".into(), digest.clone()), ("odd".into(), "md5:1".into())]);
        let statement = of(&store, &digest).unwrap().expect("recorded");
        assert_eq!(statement["subject"][0]["name"], "dist");
        assert_eq!(statement["subject"][0]["digest"]["sha256"], "b".repeat(64));
        assert_eq!(statement["predicate"]["buildDefinition"]["internalParameters"]["runId"], "7");
        assert_eq!(of(&store, "md5:1").unwrap(), None, "no statement for a digest that is not SHA-256");
        assert_eq!(of(&store, &format!("sha256:{}", "c".repeat(64))).unwrap(), None);
    }
}
