//! The sources and the guard over a real SQLite store; reconciling against running services is
//! tested end to end through the binary (`crates/mobius/tests/it/gitops.rs`).

use std::sync::Arc;

use mobius_delivery::{DeployConfig, DeployGuard};
use mobius_events::materialise::Rules;
use mobius_log::blocking::Guarded;
use mobius_store::{Repository, SqliteStore};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    gitops: GitOps,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(Guarded(Arc::new(SqliteStore::open(dir.path()).unwrap())));
    let log = Ingestor::new(store.clone(), Rules::default());
    let config = DeployConfig {
        clock: Clock::System,
        sandbox: mobius_sandbox::Sandbox::default(),
        data_dir: dir.path().join("deploy"),
        external_proxy: false,
        secrets: None,
        leases: None,
        flags: None,
        guard: None,
        policy: None,
    };
    let deployer = Deployer::new(store.clone(), log.clone(), config);
    let gitops = GitOps::new(store.clone(), log, deployer, Clock::System);
    Fixture { _dir: dir, store, gitops }
}

fn source(repository: &str) -> Source {
    Source {
        repository: repository.into(),
        path: "deploy".into(),
        revision: "HEAD".into(),
        self_heal: false,
        prune: false,
        allow_empty: false,
        interval_s: 180,
        review: Vec::new(),
    }
}

#[tokio::test]
async fn a_source_must_be_a_registered_repository_and_a_bad_one_changes_nothing() {
    let f = fixture();
    let unknown = f.gitops.add(source("acme/deploy")).await.unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "there is no registered repository `acme/deploy`: add it with `mobius repo add` first"
    );
    let store = f.store.clone();
    let repository = Repository { name: "acme/deploy".into(), path: "/nowhere".into(), credentials: None };
    mobius_log::blocking::spawn(move || store.add_repository(&repository)).await.unwrap();
    let fast = Source { interval_s: 1, ..source("acme/deploy") };
    assert_eq!(f.gitops.add(fast).await.unwrap_err().to_string(), "`interval`: between 10s and 7d");
    let forever = Source { interval_s: u64::MAX, ..source("acme/deploy") };
    assert_eq!(f.gitops.add(forever).await.unwrap_err().to_string(), "`interval`: between 10s and 7d");
    for revision in ["--output=/tmp/x", "main..evil", "", "a b"] {
        let bad = Source { revision: revision.into(), ..source("acme/deploy") };
        let error = f.gitops.add(bad).await.unwrap_err().to_string();
        assert_eq!(error, "`revision`: a branch, a tag, a sha or HEAD", "{revision:?}");
    }
    let outside = Source { path: "../etc".into(), ..source("acme/deploy") };
    assert_eq!(f.gitops.add(outside).await.unwrap_err().to_string(), "`path`: must stay inside the repository");
    let review = Source { review: vec!["production".into(), "--all".into()], ..source("acme/deploy") };
    assert_eq!(f.gitops.add(review).await.unwrap_err().to_string(), "`review`: environment names, comma-separated");
    assert!(f.gitops.sources().await.unwrap().is_empty());
    f.gitops.add(source("acme/deploy")).await.unwrap();
    f.gitops.add(Source { self_heal: true, ..source("acme/deploy") }).await.unwrap();
    let sources = f.gitops.sources().await.unwrap();
    assert_eq!((sources.len(), sources[0].self_heal), (1, true), "added again, it is replaced");
    f.gitops.remove("acme/deploy").await.unwrap();
    let again = f.gitops.remove("acme/deploy").await.unwrap_err();
    assert_eq!(again.to_string(), "repository `acme/deploy` is not followed by GitOps");
}

#[tokio::test]
async fn the_guard_refuses_a_declared_environment_unless_the_source_self_heals() {
    let f = fixture();
    let store = f.store.clone();
    let repository = Repository { name: "acme/deploy".into(), path: "/nowhere".into(), credentials: None };
    mobius_log::blocking::spawn(move || store.add_repository(&repository)).await.unwrap();
    f.gitops.add(source("acme/deploy")).await.unwrap();
    let status = SourceStatus {
        repository: "acme/deploy".into(),
        revision: Some("0123456789abcdef0123".into()),
        environments: [("production".to_owned(), "deploy/environments/production.yaml".to_owned())].into(),
        ..SourceStatus::default()
    };
    let (store, text) = (f.store.clone(), serde_json::to_string(&status).unwrap());
    mobius_log::blocking::spawn(move || store.put_state(&status_key("acme/deploy"), &text)).await.unwrap();
    let guard = GitOps::guard(f.store.clone());
    let check = move |service: &'static str, environment: &'static str| {
        let guard = Guard::new(guard.store_for_tests());
        async move { mobius_log::blocking::spawn(move || guard.check(service, environment)).await }
    };
    assert_eq!(
        check("shop", "production").await.unwrap_err(),
        "production is managed by GitOps from repository `acme/deploy` (deploy/environments/production.yaml at \
         0123456789ab): change the file there, or `mobius promote shop --from <environment> --to production`"
    );
    assert_eq!(check("shop", "staging").await, Ok(()), "an environment git does not declare is free");
    f.gitops.add(Source { self_heal: true, ..source("acme/deploy") }).await.unwrap();
    assert_eq!(check("shop", "production").await, Ok(()), "self-heal lets it through, to put it back");
}
