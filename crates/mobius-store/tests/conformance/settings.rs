//! What the server keeps beside the log: tokens, console sessions, repositories, state
//! documents, sealed secrets and environments' protection rules.

use mobius_store::{
    EnvironmentRecord, Repository, SecretRecord, SessionRecord, Store, TokenRecord, TokenRestriction, TokenScope,
};

use crate::at;

crate::conformance!(
    a_revoked_token_is_gone,
    a_token_keeps_its_expiry_restriction_and_flag_set,
    sessions_are_found_by_hash_ended_and_expired,
    a_repository_keeps_the_name_of_its_credentials_secret,
    state_documents_are_replaced_whole,
    a_state_document_put_once_is_the_first_callers_whoever_else_tries,
    a_state_document_is_swapped_only_from_what_the_caller_read,
    secrets_are_replaced_listed_resealed_and_removed,
    environment_rules_are_replaced_whole_listed_by_repository_and_removed,
    a_lease_is_one_holders_until_it_lapses_and_renewals_keep_when_it_was_taken,
);

fn token(id: &str, hash: &str, salt: &str) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        name: format!("{id} label"),
        scope: TokenScope::Read,
        created: at(0),
        secret_hash: hash.into(),
        salt: salt.into(),
        expires: None,
        restriction: None,
        flag_set: None,
    }
}

fn a_revoked_token_is_gone(store: &dyn Store) {
    store.insert_token(&token("b", "hb", "")).unwrap();
    store.insert_token(&token("a", "ha", "")).unwrap();
    store.insert_token(&token("c", "hc", "5a17")).unwrap();
    assert!(store.insert_token(&token("d", "hc", "")).is_err(), "a hash is one token's");
    assert_eq!(store.token_count().unwrap(), 3);
    assert_eq!(store.tokens().unwrap(), vec![token("a", "ha", ""), token("b", "hb", ""), token("c", "hc", "5a17")]);
    assert_eq!(store.token("c").unwrap(), Some(token("c", "hc", "5a17")));
    assert_eq!(store.token_by_secret_hash("hc").unwrap(), None, "a salted hash is no legacy hash");
    assert_eq!(store.token_by_secret_hash("hb").unwrap(), Some(token("b", "hb", "")));
    assert!(store.revoke_token("a").unwrap());
    assert!(!store.revoke_token("a").unwrap(), "revoking twice finds nothing");
    assert_eq!(store.token_by_secret_hash("ha").unwrap(), None);
    assert_eq!(store.token("a").unwrap(), None);
    assert_eq!(store.tokens().unwrap(), vec![token("b", "hb", ""), token("c", "hc", "5a17")]);
    assert_eq!(store.token_count().unwrap(), 2);
}

fn a_token_keeps_its_expiry_restriction_and_flag_set(store: &dyn Store) {
    let run_token = TokenRecord {
        scope: TokenScope::Run,
        expires: Some(at(3_600)),
        restriction: Some(TokenRestriction { repository: "acme/app".into(), run: 42 }),
        ..token("r", "hr", "ab")
    };
    store.insert_token(&run_token).unwrap();
    let admin = TokenRecord { scope: TokenScope::Admin, created: at(-1), ..token("z", "hz", "cd") };
    store.insert_token(&admin).unwrap();
    assert_eq!(store.token("r").unwrap(), Some(run_token.clone()));
    let client_key = TokenRecord {
        scope: TokenScope::Flags,
        created: at(1),
        flag_set: Some("shop.production".into()),
        ..token("f", "hf", "ef")
    };
    store.insert_token(&client_key).unwrap();
    assert_eq!(store.token("f").unwrap(), Some(client_key.clone()), "the set a flags key evaluates");
    assert_eq!(store.tokens().unwrap(), vec![admin, run_token, client_key], "oldest first");
}

fn sessions_are_found_by_hash_ended_and_expired(store: &dyn Store) {
    let session = |hash: &str, expires| SessionRecord {
        id_hash: hash.into(),
        token_id: "t1".into(),
        csrf: format!("csrf-{hash}"),
        created: at(0),
        expires: at(expires),
    };
    store.insert_session(&session("s1", 100)).unwrap();
    store.insert_session(&session("s2", 200)).unwrap();
    store.insert_session(&session("s3", 300)).unwrap();
    assert_eq!(store.session("s2").unwrap(), Some(session("s2", 200)));
    assert_eq!(store.session("nope").unwrap(), None);
    assert!(store.delete_session("s2").unwrap());
    assert!(!store.delete_session("s2").unwrap());
    assert_eq!(store.delete_expired_sessions(at(300)).unwrap(), 1, "s1 only: s3 expires at 300, not before");
    assert_eq!(store.session("s1").unwrap(), None);
    assert_eq!(store.session("s3").unwrap(), Some(session("s3", 300)), "an expired session is still found");
}

fn a_repository_keeps_the_name_of_its_credentials_secret(store: &dyn Store) {
    let remote = Repository { name: "acme/app".into(), path: "/m/app.git".into(), credentials: Some("TOKEN".into()) };
    let clone = Repository { name: "acme/web".into(), path: "/src/web".into(), credentials: None };
    store.add_repository(&clone).unwrap();
    store.add_repository(&remote).unwrap();
    assert_eq!(store.repositories().unwrap(), [remote.clone(), clone], "by name");
    let anonymous = Repository { credentials: None, ..remote };
    store.add_repository(&anonymous).unwrap();
    assert_eq!(store.repositories().unwrap()[0], anonymous, "a re-registration replaces it");
}

fn state_documents_are_replaced_whole(store: &dyn Store) {
    assert_eq!(store.state("alerter").unwrap(), None);
    store.put_state("alerter", "{\"a\":1}").unwrap();
    store.put_state("alerter", "{\"a\":2}").unwrap();
    store.put_state("other", "[]").unwrap();
    assert_eq!(store.state("alerter").unwrap().as_deref(), Some("{\"a\":2}"));
    assert_eq!(store.state("other").unwrap().as_deref(), Some("[]"));
}

/// What replicas deduplicate with: the first document put under a key stands, and every
/// caller, at once or later, is told which it is.
fn a_state_document_put_once_is_the_first_callers_whoever_else_tries(store: &dyn Store) {
    assert_eq!(store.put_state_once("sent:a", "first").unwrap(), "first", "put");
    assert_eq!(store.put_state_once("sent:a", "second").unwrap(), "first", "the first stands");
    assert_eq!(store.state("sent:a").unwrap().as_deref(), Some("first"));
    store.put_state("replaced", "1").unwrap();
    assert_eq!(store.put_state_once("replaced", "2").unwrap(), "1", "whoever put it");

    let standing: Vec<String> = std::thread::scope(|scope| {
        let callers: Vec<_> =
            (0..8).map(|n| scope.spawn(move || store.put_state_once("sent:b", &format!("caller {n}")))).collect();
        callers.into_iter().map(|c| c.join().unwrap().unwrap()).collect()
    });
    assert!(standing.iter().all(|s| *s == standing[0]), "one caller put it, all see it: {standing:?}");
    assert_eq!(store.state("sent:b").unwrap().as_ref(), Some(&standing[0]));
}

/// A read-modify-write of a shared document: a swap from a stale read changes nothing, and of
/// callers racing from one read exactly one wins.
fn a_state_document_is_swapped_only_from_what_the_caller_read(store: &dyn Store) {
    assert!(!store.swap_state("doc", Some("v0"), "v1").unwrap(), "nothing to swap from");
    assert_eq!(store.state("doc").unwrap(), None, "and nothing put");
    assert!(store.swap_state("doc", None, "v1").unwrap(), "put where there was none");
    assert!(!store.swap_state("doc", None, "v1'").unwrap(), "there is one now");
    assert!(!store.swap_state("doc", Some("v0"), "v2").unwrap(), "a stale read");
    assert_eq!(store.state("doc").unwrap().as_deref(), Some("v1"));
    assert!(store.swap_state("doc", Some("v1"), "v2").unwrap());
    assert_eq!(store.state("doc").unwrap().as_deref(), Some("v2"));

    let won: Vec<bool> = std::thread::scope(|scope| {
        let callers: Vec<_> =
            (0..8).map(|n| scope.spawn(move || store.swap_state("doc", Some("v2"), &format!("caller {n}")))).collect();
        callers.into_iter().map(|c| c.join().unwrap().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "exactly one of the racers: {won:?}");
    let winner = won.iter().position(|w| *w).unwrap();
    assert_eq!(store.state("doc").unwrap(), Some(format!("caller {winner}")));
}

fn secrets_are_replaced_listed_resealed_and_removed(store: &dyn Store) {
    let secret = |repository: &str, environment: &str, name: &str, sealed: &[u8]| SecretRecord {
        repository: repository.into(),
        environment: environment.into(),
        name: name.into(),
        nonce: vec![0, 1, 2, 255],
        ciphertext: sealed.to_vec(),
        updated: at(0),
        updated_by: "cli".into(),
    };
    store.put_secret(&secret("o/b", "", "TOKEN", b"\x00sealed\xff")).unwrap();
    store.put_secret(&secret("o/a", "production", "KEY", b"k")).unwrap();
    store.put_secret(&secret("o/a", "", "KEY", b"k0")).unwrap();
    store.put_secret(&secret("o/b", "", "TOKEN", b"again")).unwrap();
    assert_eq!(
        store.secrets(None).unwrap(),
        vec![
            secret("o/a", "", "KEY", b"k0"),
            secret("o/a", "production", "KEY", b"k"),
            secret("o/b", "", "TOKEN", b"again")
        ]
    );
    assert_eq!(store.secrets(Some("o/b")).unwrap(), vec![secret("o/b", "", "TOKEN", b"again")]);
    let resealed = vec![secret("o/a", "", "KEY", b"new0"), secret("o/b", "", "TOKEN", b"new1")];
    store.reseal_secrets(&resealed, "secret-key-check", "sealed-check").unwrap();
    assert_eq!(store.secrets(Some("o/b")).unwrap(), vec![secret("o/b", "", "TOKEN", b"new1")]);
    assert_eq!(store.state("secret-key-check").unwrap().as_deref(), Some("sealed-check"), "in the same transaction");
    assert!(store.delete_secret("o/a", "production", "KEY").unwrap());
    assert!(!store.delete_secret("o/a", "production", "KEY").unwrap());
    assert_eq!(store.secrets(Some("o/a")).unwrap(), vec![secret("o/a", "", "KEY", b"new0")]);
}

fn environment_rules_are_replaced_whole_listed_by_repository_and_removed(store: &dyn Store) {
    let rules = |repository: &str, name: &str, reviewers: &[&str]| EnvironmentRecord {
        repository: repository.into(),
        name: name.into(),
        require_review: !reviewers.is_empty(),
        reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
        branches: vec!["main".into(), "release/*".into()],
        updated: at(0),
        updated_by: "cli".into(),
    };
    store.put_environment(&rules("o/b", "production", &["alice"])).unwrap();
    store.put_environment(&rules("o/a", "staging", &[])).unwrap();
    store.put_environment(&rules("o/b", "production", &["bob", "carol"])).unwrap();
    assert_eq!(
        store.environments(None).unwrap(),
        vec![rules("o/a", "staging", &[]), rules("o/b", "production", &["bob", "carol"])]
    );
    assert_eq!(store.environments(Some("o/b")).unwrap().len(), 1);
    assert!(store.delete_environment("o/b", "production").unwrap());
    assert!(!store.delete_environment("o/b", "production").unwrap(), "removing twice finds nothing");
    assert_eq!(store.environments(Some("o/b")).unwrap(), vec![]);
}

fn a_lease_is_one_holders_until_it_lapses_and_renewals_keep_when_it_was_taken(store: &dyn Store) {
    assert!(store.claim_lease("alerts", "a", at(0), at(15)).unwrap(), "free: a takes it");
    assert!(!store.claim_lease("alerts", "b", at(5), at(20)).unwrap(), "a's until 15 s");
    assert!(store.claim_lease("alerts", "a", at(5), at(20)).unwrap(), "a renews");
    assert!(!store.claim_lease("alerts", "b", at(19), at(34)).unwrap(), "renewed to 20 s");
    assert!(store.claim_lease("polling", "b", at(19), at(34)).unwrap(), "another lease is another row");
    let leases = store.leases().unwrap();
    assert_eq!(leases.len(), 2);
    assert_eq!((leases[0].holder.as_str(), leases[0].acquired, leases[0].expires), ("a", at(0), at(20)));

    // a stops renewing: at its expiry b takes it, and a's late renewal fails.
    assert!(store.claim_lease("alerts", "b", at(20), at(35)).unwrap(), "lapsed at 20 s");
    assert!(!store.claim_lease("alerts", "a", at(21), at(36)).unwrap());
    assert_eq!(store.leases().unwrap()[0].acquired, at(20), "b's term began when it took it");

    // Releasing is only the holder's.
    assert!(!store.release_lease("alerts", "a").unwrap());
    assert!(store.release_lease("alerts", "b").unwrap());
    assert!(store.claim_lease("alerts", "a", at(22), at(37)).unwrap(), "free again at once");
}
