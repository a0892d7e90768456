//! Scoped API tokens. A token is `mbx_<id>_<secret>`: the id (random, 12 hex digits) finds its
//! record, and the record keeps only SHA-256 of a random salt of its own followed by the
//! token, compared in constant time. The token itself is shown once, when created.
//!
//! `MOBIUS_ADMIN_TOKEN` is the operator's own string (at least [`MIN_ADMIN_TOKEN_LEN`]
//! characters): it is kept the same way under a random id, found among the few bootstrap
//! records, and changing it revokes the previous one. Tokens made before salts
//! (`mbx_<64 hex>`, found by their unsalted hash) keep working until revoked.

use jiff::Timestamp;
use mobius_store::{Store, StoreError, TokenRecord, TokenRestriction, TokenScope};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest `MOBIUS_ADMIN_TOKEN` accepted: a guessable admin token is an open door.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// The name of the record `MOBIUS_ADMIN_TOKEN` is kept under.
pub const BOOTSTRAP_FROM_ENVIRONMENT: &str = "bootstrap (MOBIUS_ADMIN_TOKEN)";

/// Why a token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "MOBIUS_ADMIN_TOKEN is {len} characters; it must be at least {MIN_ADMIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)"
    )]
    AdminTokenTooShort { len: usize },
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// A new token: the secret to hand out once, and the record to store.
pub struct IssuedToken {
    pub secret: String,
    pub record: TokenRecord,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("record", &self.record).finish_non_exhaustive()
    }
}

/// Random hex: `bytes` random bytes (from UUID v4s, which come from the OS's generator).
fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&hex::encode(uuid::Uuid::new_v4().into_bytes()));
    }
    out.truncate(bytes * 2);
    out
}

fn salted(salt: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// The stored record for `secret`, under `id`.
fn record(id: String, secret: &str, name: &str, scope: TokenScope) -> TokenRecord {
    let salt = random_hex(16);
    TokenRecord {
        id,
        name: name.to_owned(),
        scope,
        created: Timestamp::now(),
        secret_hash: salted(&salt, secret),
        salt,
        expires: None,
        restriction: None,
        flag_set: None,
    }
}

/// Generates a token of a scope: `mbx_<id>_<64 hex digits>`.
pub fn issue(name: &str, scope: TokenScope) -> IssuedToken {
    // UUID v4s carry 122 random bits each: the secret part has 244.
    let id = random_hex(6);
    let secret = format!("mbx_{id}_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    IssuedToken { record: record(id, &secret, name, scope), secret }
}

/// A new token of `scope`, checked: a `flags` token (a client key) must name the flag set it
/// evaluates, and no other scope may name one.
pub fn issue_scoped(name: &str, scope: TokenScope, set: Option<&str>) -> Result<IssuedToken, String> {
    match (scope, set) {
        (TokenScope::Flags, Some(set)) => {
            mobius_features::names::check_set(set).map_err(|e| format!("`set`: {e}"))?;
            let mut issued = issue(name, scope);
            issued.record.flag_set = Some(set.to_owned());
            Ok(issued)
        }
        (TokenScope::Flags, None) => {
            Err("a `flags` token evaluates one flag set: name it (`--set NAME`, or `set` in the request)".into())
        }
        (_, Some(_)) => Err(format!("only a `flags` token names a flag set, not a `{}` one", scope.as_str())),
        (_, None) => Ok(issue(name, scope)),
    }
}

/// Whether `secret` is the token `record` keeps.
fn matches(record: &TokenRecord, secret: &str) -> bool {
    let expected = if record.salt.is_empty() { legacy_hash(secret) } else { salted(&record.salt, secret) };
    bool::from(expected.as_bytes().ct_eq(record.secret_hash.as_bytes()))
}

/// The unsalted SHA-256 that tokens made before salts are found by.
pub fn legacy_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The token `secret` is, if it is one: by its id for `mbx_<id>_…`, among the bootstrap
/// records for an operator's `MOBIUS_ADMIN_TOKEN`, by its unsalted hash for an old token. An
/// expired token is none.
pub fn authenticate(store: &dyn Store, secret: &str) -> Result<Option<TokenRecord>, StoreError> {
    if let Some((id, _)) = secret.strip_prefix("mbx_").and_then(|rest| rest.split_once('_')) {
        let now = Timestamp::now();
        return Ok(store.token(id)?.filter(|record| matches(record, secret) && record.expires.is_none_or(|e| e > now)));
    }
    if let Some(record) = store.token_by_secret_hash(&legacy_hash(secret))? {
        return Ok(Some(record));
    }
    Ok(store.tokens()?.into_iter().find(|r| r.name == BOOTSTRAP_FROM_ENVIRONMENT && matches(r, secret)))
}

/// Issues a job's run token: `run` scope (`read` when `read_only`, for a pull request from a
/// fork), limited to `repository`'s runs, expiring at `expires` whatever becomes of the job.
/// Stored before it is returned.
pub fn issue_run_token(
    store: &dyn Store,
    repository: &str,
    run: i64,
    job: &str,
    expires: Timestamp,
    read_only: bool,
) -> Result<IssuedToken, StoreError> {
    let scope = if read_only { TokenScope::Read } else { TokenScope::Run };
    let mut token = issue(&format!("run {run}: {job}"), scope);
    token.record.expires = Some(expires);
    token.record.restriction = Some(TokenRestriction { repository: repository.to_owned(), run });
    store.insert_token(&token.record)?;
    Ok(token)
}

/// What a request asks of a restricted token: the route (its pattern, e.g.
/// `/api/v1/runs/{id}`), its method, and, for a route about one run, that run's repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub method: &'a str,
    pub route: &'a str,
    /// The repository of the run the route is about; `None` when it is about no run, or no
    /// such run exists.
    pub run_repository: Option<&'a str>,
}

/// The routes a restricted token may call, each about one run (`true`) of its repository, or
/// not (`false`: the handler checks the repository it names, as starting a run does).
const RESTRICTED_ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/api/v1/runs/{id}", true),
    ("GET", "/api/v1/runs/{id}/logs", true),
    ("POST", "/api/v1/runs/{id}/cancel", true),
    ("POST", "/api/v1/runs/{id}/rerun", true),
    ("POST", "/api/v1/runs", false),
];

/// Why a restricted token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this token is limited to the runs of {repository}: `{method} {route}` is out of its reach")]
    Route { repository: String, method: String, route: String },
    #[error("this token is limited to the runs of {repository}; that run is not one of them")]
    Repository { repository: String },
}

/// Whether a token limited by `restriction` may do what `asked` says: only the run endpoints
/// of [`RESTRICTED_ROUTES`], and of those about a run, only for a run of its repository.
pub fn restriction_permits(restriction: &TokenRestriction, asked: Asked<'_>) -> Result<(), Refused> {
    let route = RESTRICTED_ROUTES.iter().find(|(method, route, _)| *method == asked.method && *route == asked.route);
    match route {
        None => Err(Refused::Route {
            repository: restriction.repository.clone(),
            method: asked.method.to_owned(),
            route: asked.route.to_owned(),
        }),
        Some((_, _, true)) if asked.run_repository != Some(restriction.repository.as_str()) => {
            Err(Refused::Repository { repository: restriction.repository.clone() })
        }
        Some(_) => Ok(()),
    }
}

/// Whether a token (restricted or not) may act on `repository`'s runs.
pub fn permits_repository(token: &TokenRecord, repository: &str) -> Result<(), Refused> {
    match &token.restriction {
        Some(restriction) if restriction.repository != repository => {
            Err(Refused::Repository { repository: restriction.repository.clone() })
        }
        _ => Ok(()),
    }
}

/// The run tokens of the server's jobs, kept in the token store.
#[derive(Clone)]
pub struct StoredRunTokens(pub std::sync::Arc<dyn Store>);

impl std::fmt::Debug for StoredRunTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredRunTokens")
    }
}

impl mobius_runs::environments::RunTokens for StoredRunTokens {
    fn mint(
        &self,
        repository: &str,
        run: i64,
        job: &str,
        expires: Timestamp,
        read_only: bool,
    ) -> Result<(String, String), StoreError> {
        let token = issue_run_token(self.0.as_ref(), repository, run, job, expires, read_only)?;
        Ok((token.record.id.clone(), token.secret))
    }

    fn revoke(&self, id: &str) -> Result<(), StoreError> {
        self.0.revoke_token(id).map(drop)
    }
}

/// What start-up did about the admin token.
pub enum Bootstrap {
    /// `MOBIUS_ADMIN_TOKEN` was given and is now valid (`replaced`: a previous one was revoked).
    FromEnvironment { replaced: usize },
    /// No token existed: this one was generated and must be shown once.
    Generated(String),
    /// Tokens exist already.
    Existing,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bootstrap::FromEnvironment { replaced } => write!(f, "FromEnvironment {{ replaced: {replaced} }}"),
            Bootstrap::Generated(_) => f.write_str("Generated(***)"),
            Bootstrap::Existing => f.write_str("Existing"),
        }
    }
}

/// Ensures an admin token exists: the one given (revoking the one given before, if it
/// changed), or a generated one on first start.
pub fn bootstrap(store: &dyn Store, given: Option<&str>) -> Result<Bootstrap, TokenError> {
    if let Some(secret) = given {
        if secret.chars().count() < MIN_ADMIN_TOKEN_LEN {
            return Err(TokenError::AdminTokenTooShort { len: secret.chars().count() });
        }
        let previous: Vec<TokenRecord> =
            store.tokens()?.into_iter().filter(|r| r.name == BOOTSTRAP_FROM_ENVIRONMENT).collect();
        if previous.iter().any(|r| matches(r, secret)) {
            return Ok(Bootstrap::FromEnvironment { replaced: 0 });
        }
        store.insert_token(&record(random_hex(6), secret, BOOTSTRAP_FROM_ENVIRONMENT, TokenScope::Admin))?;
        for old in &previous {
            store.revoke_token(&old.id)?;
        }
        return Ok(Bootstrap::FromEnvironment { replaced: previous.len() });
    }
    if store.token_count()? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let token = issue("bootstrap", TokenScope::Admin);
    store.insert_token(&token.record)?;
    Ok(Bootstrap::Generated(token.secret))
}

#[cfg(test)]
mod tests {
    use mobius_store::SqliteStore;

    use super::*;

    #[test]
    fn a_token_is_found_by_its_id_and_checked_against_its_salted_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let a = issue("a", TokenScope::Read);
        let b = issue("b", TokenScope::Read);
        store.insert_token(&a.record).unwrap();
        store.insert_token(&b.record).unwrap();
        assert_eq!(authenticate(&store, &a.secret).unwrap().map(|r| r.id), Some(a.record.id.clone()));
        assert_ne!(a.record.salt, b.record.salt, "a salt of its own");
        assert!(!a.record.secret_hash.contains(&a.record.id), "the id says nothing of the hash");
        assert!(!a.secret.contains(&a.record.secret_hash));
        // The right id with a wrong secret, and a secret under another token's id.
        let forged = format!("mbx_{}_{}", a.record.id, "0".repeat(64));
        assert_eq!(authenticate(&store, &forged).unwrap(), None);
        let swapped = b.secret.replace(&b.record.id, &a.record.id);
        assert_eq!(authenticate(&store, &swapped).unwrap(), None);
        assert_eq!(authenticate(&store, "").unwrap(), None);
    }

    #[test]
    fn a_token_made_before_salts_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let secret = format!("mbx_{}", "ab".repeat(32));
        let hash = legacy_hash(&secret);
        let old = TokenRecord {
            id: hash[..12].to_owned(),
            name: "hooks".into(),
            scope: TokenScope::Run,
            created: Timestamp::now(),
            secret_hash: hash,
            salt: String::new(),
            expires: None,
            restriction: None,
            flag_set: None,
        };
        store.insert_token(&old).unwrap();
        assert_eq!(authenticate(&store, &secret).unwrap().map(|r| r.scope), Some(TokenScope::Run));
    }

    #[test]
    fn a_run_token_is_restricted_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let later = Timestamp::now().checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
        let token = issue_run_token(&store, "o/r", 7, "build", later, false).unwrap();
        let found = authenticate(&store, &token.secret).unwrap().expect("valid until it expires");
        assert_eq!(found.scope, TokenScope::Run);
        assert_eq!(found.restriction, Some(TokenRestriction { repository: "o/r".into(), run: 7 }));
        let fork = issue_run_token(&store, "o/r", 7, "build", later, true).unwrap();
        assert_eq!(fork.record.scope, TokenScope::Read, "a fork's token only reads");
        let earlier = Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(1)).unwrap();
        let expired = issue_run_token(&store, "o/r", 7, "build", earlier, false).unwrap();
        assert_eq!(authenticate(&store, &expired.secret).unwrap(), None, "an expired token is none");
    }

    fn check(route: (&str, &str), run_repository: Option<&str>, expected: Result<(), &str>) {
        let restriction = TokenRestriction { repository: "o/r".into(), run: 7 };
        let asked = Asked { method: route.0, route: route.1, run_repository };
        let got = restriction_permits(&restriction, asked).map_err(|e| match e {
            Refused::Route { .. } => "route",
            Refused::Repository { .. } => "repository",
        });
        assert_eq!(got, expected, "{route:?} on a run of {run_repository:?}");
    }

    #[test]
    fn a_restricted_token_reaches_only_its_repositorys_runs() {
        check(("GET", "/api/v1/runs/{id}"), Some("o/r"), Ok(()));
        check(("GET", "/api/v1/runs/{id}/logs"), Some("o/r"), Ok(()));
        check(("POST", "/api/v1/runs/{id}/cancel"), Some("o/r"), Ok(()));
        check(("POST", "/api/v1/runs"), None, Ok(()));
        check(("GET", "/api/v1/runs/{id}"), Some("o/other"), Err("repository"));
        check(("GET", "/api/v1/runs/{id}"), None, Err("repository"));
        check(("GET", "/api/v1/secrets"), None, Err("route"));
        check(("POST", "/api/v1/tokens"), None, Err("route"));
        check(("POST", "/api/v1/deployments"), None, Err("route"));
        check(("POST", "/api/v1/runs/{id}/jobs/{job}/approve"), Some("o/r"), Err("route"));
        check(("DELETE", "/api/v1/runs/{id}"), Some("o/r"), Err("route"));
        let mut token = issue("t", TokenScope::Run).record;
        assert!(permits_repository(&token, "o/other").is_ok(), "an unrestricted token");
        token.restriction = Some(TokenRestriction { repository: "o/r".into(), run: 7 });
        assert!(permits_repository(&token, "o/r").is_ok());
        assert!(permits_repository(&token, "o/other").is_err());
    }

    #[test]
    fn the_admin_token_must_be_long_and_changing_it_revokes_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(matches!(bootstrap(&store, Some("a")), Err(TokenError::AdminTokenTooShort { len: 1 })));
        assert_eq!(store.token_count().unwrap(), 0, "a refused token writes nothing");
        let first = "first-admin-token-of-at-least-32-chars";
        let second = "second-admin-token-of-at-least-32-chars";
        assert!(matches!(bootstrap(&store, Some(first)).unwrap(), Bootstrap::FromEnvironment { replaced: 0 }));
        assert!(matches!(bootstrap(&store, Some(first)).unwrap(), Bootstrap::FromEnvironment { replaced: 0 }));
        assert_eq!(authenticate(&store, first).unwrap().map(|r| r.scope), Some(TokenScope::Admin));
        assert!(matches!(bootstrap(&store, Some(second)).unwrap(), Bootstrap::FromEnvironment { replaced: 1 }));
        assert_eq!(authenticate(&store, first).unwrap(), None, "the previous admin token is revoked");
        assert_eq!(authenticate(&store, second).unwrap().map(|r| r.scope), Some(TokenScope::Admin));
        assert_eq!(store.tokens().unwrap().len(), 1);
    }
}
