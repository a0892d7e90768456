//! Syncing stores between a server and an agent: records by path, blobs by digest, on real
//! directories.

use std::path::Path;

use mobius_pipelines::artifacts::{self, IfNoFilesFound, JobFiles};
use mobius_pipelines::cache::{self, Scope};
use mobius_pipelines::store_sync::{self, Received, Record, RecordScope, SyncError};
use sha2::{Digest, Sha256};

fn scope(branch: &str) -> RecordScope {
    RecordScope {
        run_id: 42,
        cache: Scope { repository: "acme/app".into(), branch: branch.into(), default_branch: "main".into() },
    }
}

/// A job's directories with `dist/app.bin`, `dist/sub/readme` and `deps/lib.txt`.
fn job_files(root: &Path) -> JobFiles {
    let (workspace, home) = (root.join("workspace"), root.join("home"));
    for (path, text) in [("dist/app.bin", "binary"), ("dist/sub/readme", "read me"), ("deps/lib.txt", "a lib")] {
        let path = workspace.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    std::fs::create_dir_all(&home).expect("home");
    JobFiles::open(workspace, home)
}

/// Copies the blobs `records` name that `to` lacks, then the records: what both sides do.
fn sync(from: &Path, to: &Path, scope: &RecordScope, how: Received, records: &[Record]) -> Result<(), SyncError> {
    let wanted = store_sync::referenced_blobs(records)?;
    for digest in store_sync::missing_blobs(to, &wanted)? {
        store_sync::write_blob(to, &digest, &store_sync::read_blob(from, &digest)?)?;
    }
    store_sync::write_records(to, scope, how, records)
}

#[test]
fn an_artifact_and_a_cache_made_in_one_store_are_restored_from_another_after_syncing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (server, agent) = (temp.path().join("server"), temp.path().join("agent"));
    let job = job_files(&temp.path().join("job"));
    let uploaded = artifacts::upload(&server, "app", "dist", &job, 42, IfNoFilesFound::Error).expect("upload");
    let uploaded = uploaded.expect("files matched");
    assert!(cache::save(&server, &scope("main").cache, "deps-1", "deps", &job).expect("save"));
    // Another run's artifact is not the job's to see.
    artifacts::upload(&server, "other", "deps", &job, 7, IfNoFilesFound::Error).expect("upload");
    let records = store_sync::list_records(&server, &scope("main")).expect("list");
    let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    let key = hex::encode(Sha256::digest(b"deps-1"));
    assert_eq!(paths, ["artifacts/runs/42/app.json".to_owned(), format!("cache/acme_2fapp/main/{key}.json")]);
    // Records before their blobs are refused, and nothing is written.
    let refused = store_sync::write_records(&agent, &scope("main"), Received::FromServer, &records);
    assert!(matches!(refused, Err(SyncError::MissingBlob { .. })), "{refused:?}");
    assert!(store_sync::list_records(&agent, &scope("main")).expect("list").is_empty());
    let wanted = store_sync::referenced_blobs(&records).expect("blobs");
    assert_eq!(wanted.len(), 3);
    sync(&server, &agent, &scope("main"), Received::FromServer, &records).expect("sync");
    assert!(store_sync::missing_blobs(&agent, &wanted).expect("missing").is_empty());
    // The agent's job restores both from its own store.
    let elsewhere = JobFiles::open(temp.path().join("w2"), temp.path().join("h2"));
    let dest = temp.path().join("w2/got");
    let restored = artifacts::download(&agent, Some("app"), &dest, 42, &elsewhere).expect("download");
    assert_eq!(restored, std::slice::from_ref(&uploaded));
    assert_eq!(std::fs::read_to_string(dest.join("sub/readme")).expect("read"), "read me");
    let hit = cache::restore(&agent, &scope("main").cache, "deps-1", &[], &elsewhere).expect("restore");
    assert_eq!(hit.map(|h| h.exact), Some(true));
    assert_eq!(std::fs::read_to_string(temp.path().join("w2/deps/lib.txt")).expect("read"), "a lib");
    assert_eq!(artifacts::find_by_digest(&agent, &uploaded.digest).expect("find"), Some(uploaded));
    // What the agent's job makes goes back: only the new records, blobs first.
    let job_there = job_files(&temp.path().join("agent-job"));
    std::fs::write(job_there.workspace.join("dist/app.bin"), "rebuilt").expect("write");
    artifacts::upload(&agent, "app", "dist", &job_there, 42, IfNoFilesFound::Error).expect("upload again");
    artifacts::upload(&agent, "logs", "deps", &job_there, 42, IfNoFilesFound::Error).expect("upload");
    let now = store_sync::list_records(&agent, &scope("main")).expect("list");
    let made = store_sync::new_records(&records, &now);
    let made_paths: Vec<&str> = made.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(made_paths, ["artifacts/runs/42/app.json", "artifacts/runs/42/logs.json"]);
    sync(&agent, &server, &scope("main"), Received::FromAgent, &made).expect("sync back");
    let back = temp.path().join("back");
    let back_files = JobFiles::open(&back, &back);
    artifacts::download(&server, Some("app"), &back, 42, &back_files).expect("download on the server");
    assert_eq!(std::fs::read_to_string(back.join("app.bin")).expect("read"), "rebuilt");
}

#[test]
fn a_blob_is_stored_only_under_its_own_digest() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = temp.path();
    let digest = hex::encode(Sha256::digest(b"the content"));
    let wrong = store_sync::write_blob(store, &digest, b"other content");
    assert!(matches!(wrong, Err(SyncError::DigestMismatch { .. })), "{wrong:?}");
    assert_eq!(store_sync::missing_blobs(store, [&digest]).expect("missing"), std::slice::from_ref(&digest));
    for bad in ["../../etc/passwd", "ABC", &digest.to_uppercase(), ""] {
        let refused = store_sync::write_blob(store, bad, b"x");
        assert!(matches!(refused, Err(SyncError::BadDigest { .. })), "{bad}: {refused:?}");
        assert!(matches!(store_sync::read_blob(store, bad), Err(SyncError::BadDigest { .. })), "{bad}");
    }
    store_sync::write_blob(store, &digest, b"the content").expect("stored");
    assert!(store_sync::missing_blobs(store, [&digest]).expect("missing").is_empty());
    assert_eq!(store_sync::read_blob(store, &digest).expect("read"), b"the content");
    // A blob corrupted on disk is not passed on.
    std::fs::write(store.join("blobs/sha256").join(&digest), "rotten").expect("corrupt");
    assert!(matches!(store_sync::read_blob(store, &digest), Err(SyncError::DigestMismatch { .. })));
}

#[test]
fn records_are_checked_against_the_jobs_scope_and_themselves() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (server, agent) = (temp.path().join("server"), temp.path().join("agent"));
    let job = job_files(&temp.path().join("job"));
    artifacts::upload(&agent, "app", "dist", &job, 42, IfNoFilesFound::Error).expect("upload");
    // A cache of the default branch, which a job of `feature` reads but may not write.
    assert!(cache::save(&agent, &scope("main").cache, "deps-1", "deps", &job).expect("save"));
    let records = store_sync::list_records(&agent, &scope("feature")).expect("list");
    assert_eq!(records.len(), 2);
    let refused = sync(&agent, &server, &scope("feature"), Received::FromAgent, &records);
    assert!(matches!(&refused, Err(SyncError::OutOfScope { path, .. }) if path.starts_with("cache/")), "{refused:?}");
    sync(&agent, &server, &scope("feature"), Received::FromServer, &records).expect("readable from the server");
    let artifact = records[0].clone();
    let check = |record: Record| store_sync::write_records(&server, &scope("main"), Received::FromAgent, &[record]);
    for path in [
        "artifacts/runs/7/app.json",
        "artifacts/runs/42/../7/app.json",
        "artifacts/runs/42/.app.json",
        "artifacts/runs/42/app.txt",
        "blobs/sha256/app.json",
        "/artifacts/runs/42/app.json",
        "app.json",
    ] {
        let moved = Record { path: path.into(), ..artifact.clone() };
        assert!(matches!(check(moved), Err(SyncError::OutOfScope { .. })), "{path}");
    }
    let renamed = Record { path: "artifacts/runs/42/other.json".into(), ..artifact.clone() };
    assert!(matches!(check(renamed), Err(SyncError::Invalid { .. })));
    let text = String::from_utf8(artifact.bytes.clone()).expect("utf-8");
    let tampered = Record { bytes: text.replacen("\"size\": 6", "\"size\": 7", 1).into_bytes(), ..artifact.clone() };
    assert_ne!(tampered.bytes, artifact.bytes);
    assert!(matches!(check(tampered), Err(SyncError::Invalid { .. })), "the manifest digest no longer matches");
    let escaping = Record { bytes: text.replacen("\"app.bin\"", "\"../app.bin\"", 1).into_bytes(), ..artifact.clone() };
    assert!(matches!(check(escaping), Err(SyncError::Invalid { .. })));
    let garbage = Record { bytes: b"{".to_vec(), ..artifact.clone() };
    assert!(matches!(check(garbage), Err(SyncError::Malformed { .. })));
    let cache_entry = records[1].clone();
    let wrong_key = Record { path: format!("cache/acme_2fapp/main/{}.json", "0".repeat(64)), ..cache_entry.clone() };
    let refused = store_sync::write_records(&server, &scope("main"), Received::FromAgent, &[wrong_key]);
    assert!(matches!(refused, Err(SyncError::Invalid { .. })), "{refused:?}");
    // A cache entry that exists is kept: entries are immutable.
    let changed = Record {
        bytes: String::from_utf8_lossy(&cache_entry.bytes).replace("\"created\"", "\"created\" ").into_bytes(),
        ..cache_entry.clone()
    };
    store_sync::write_records(&server, &scope("main"), Received::FromAgent, &[changed]).expect("accepted, not written");
    let kept = std::fs::read(server.join(&cache_entry.path)).expect("entry");
    assert_eq!(kept, cache_entry.bytes);
    // A record crosses as JSON with its bytes in base64.
    let json = serde_json::to_value(&artifact).expect("json");
    assert!(json["bytes"].is_string());
    assert_eq!(serde_json::from_value::<Record>(json).expect("back"), artifact);
}
