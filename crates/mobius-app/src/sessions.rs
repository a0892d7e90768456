//! Console sessions: a person signs in with a token (any scope that may read) and gets a
//! cookie instead of pasting the token on every page. The cookie is `mbs_` and 64 random hex digits; the store
//! keeps only its SHA-256 (the value has 256 random bits: no salt is needed to make a hash of
//! it unguessable), the token it was opened with, and a CSRF token for its forms.
//!
//! A session is as strong as its token and never stronger: it ends when it expires (12 hours
//! by default), when it is closed (sign-out), and when its token is revoked or expires — the
//! token is looked up again on every check, so its scope is always the current one.

use jiff::{SignedDuration, Timestamp};
use mobius_store::{SessionRecord, Store, StoreError, TokenRecord, TokenScope};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::tokens;

/// How long a session lasts unless told otherwise.
pub const DEFAULT_TTL: SignedDuration = SignedDuration::from_hours(12);

/// A session just opened: the cookie to set (shown once; only its hash is stored).
pub struct Opened {
    pub cookie: String,
    pub session: Session,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("session", &self.session).finish_non_exhaustive()
    }
}

/// A live session: who it acts as, and the CSRF token its forms must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: TokenRecord,
    pub csrf: String,
    pub expires: Timestamp,
}

impl Session {
    /// Whether `given` (a form's CSRF field) is this session's, compared in constant time.
    pub fn csrf_matches(&self, given: &str) -> bool {
        !given.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(given.as_bytes()))
    }
}

fn random_hex() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// Opens a session for the holder of `token` (the secret a person pasted at sign-in), lasting
/// `ttl` from `now` but never past the token's own expiry; `None` when the token does not
/// authenticate, is a job's run token (limited to one run's routes, it is for no person: a
/// session would take it past its restriction), or may not read (a `metrics` token scrapes
/// `/metrics` and reads nothing else, so it may see no page either).
pub fn open(store: &dyn Store, token: &str, now: Timestamp, ttl: SignedDuration) -> Result<Option<Opened>, StoreError> {
    let Some(record) = tokens::authenticate(store, token.trim())? else { return Ok(None) };
    if record.restriction.is_some() || !record.scope.allows(TokenScope::Read) {
        return Ok(None);
    }
    let expires = now.saturating_add(ttl).unwrap_or(now);
    let expires = record.expires.map_or(expires, |until| until.min(expires));
    let cookie = format!("mbs_{}", random_hex());
    let session = SessionRecord {
        id_hash: hash(&cookie),
        token_id: record.id.clone(),
        csrf: random_hex(),
        created: now,
        expires,
    };
    store.insert_session(&session)?;
    Ok(Some(Opened { cookie, session: Session { token: record, csrf: session.csrf, expires } }))
}

/// The live session of `cookie` at `now`: `None` when there is none, it expired, or its token
/// was revoked or expired since.
pub fn check(store: &dyn Store, cookie: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
    if !cookie.starts_with("mbs_") {
        return Ok(None);
    }
    let Some(record) = store.session(&hash(cookie))? else { return Ok(None) };
    if record.expires <= now {
        return Ok(None);
    }
    let token = store.token(&record.token_id)?.filter(|t| t.expires.is_none_or(|e| e > now));
    Ok(token.map(|token| Session { token, csrf: record.csrf, expires: record.expires }))
}

/// Ends the session of `cookie` (sign-out); `false` if there was none.
pub fn close(store: &dyn Store, cookie: &str) -> Result<bool, StoreError> {
    store.delete_session(&hash(cookie))
}

#[cfg(test)]
mod tests {
    use mobius_store::SqliteStore;

    use super::*;

    #[test]
    fn a_session_lives_until_it_expires_is_closed_or_its_token_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let issued = tokens::issue("alice", TokenScope::Read);
        store.insert_token(&issued.record).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();

        assert!(open(&store, "mbx_nope_0000", now, DEFAULT_TTL).unwrap().is_none(), "a bad token opens nothing");
        let opened = open(&store, &issued.secret, now, DEFAULT_TTL).unwrap().unwrap();
        assert!(opened.cookie.starts_with("mbs_") && opened.cookie.len() == 68);
        assert_eq!(opened.session.expires, now + DEFAULT_TTL);
        let live = check(&store, &opened.cookie, now + SignedDuration::from_hours(11)).unwrap().unwrap();
        assert_eq!((live.token.name.as_str(), live.token.scope), ("alice", TokenScope::Read));
        assert!(live.csrf_matches(&opened.session.csrf) && !live.csrf_matches("") && !live.csrf_matches("x"));
        assert!(check(&store, &opened.cookie, now + DEFAULT_TTL).unwrap().is_none(), "expired at 12 h");
        assert!(check(&store, "mbs_0000", now).unwrap().is_none());
        assert!(check(&store, &issued.secret, now).unwrap().is_none(), "a token is not a cookie");

        // The cookie itself is stored nowhere: only its hash.
        let found = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).any(|entry| {
            std::fs::read(entry.path())
                .is_ok_and(|b| b.windows(opened.cookie.len()).any(|w| w == opened.cookie.as_bytes()))
        });
        assert!(!found, "the cookie in clear in the store");

        assert!(close(&store, &opened.cookie).unwrap());
        assert!(check(&store, &opened.cookie, now).unwrap().is_none(), "signed out");
        assert!(!close(&store, &opened.cookie).unwrap());

        let again = open(&store, &issued.secret, now, DEFAULT_TTL).unwrap().unwrap();
        assert!(check(&store, &again.cookie, now).unwrap().is_some());
        store.revoke_token(&issued.record.id).unwrap();
        assert!(check(&store, &again.cookie, now).unwrap().is_none(), "revoking the token ends its sessions");
        assert_eq!(store.delete_expired_sessions(now + DEFAULT_TTL + SignedDuration::from_secs(1)).unwrap(), 1);
    }

    #[test]
    fn a_session_never_outlives_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut issued = tokens::issue("job", TokenScope::Run);
        issued.record.expires = Some(now + SignedDuration::from_mins(30));
        store.insert_token(&issued.record).unwrap();
        let opened = open(&store, &issued.secret, now, DEFAULT_TTL).unwrap().unwrap();
        assert_eq!(opened.session.expires, now + SignedDuration::from_mins(30));
        assert!(check(&store, &opened.cookie, now + SignedDuration::from_mins(31)).unwrap().is_none());
        let job = tokens::issue_run_token(&store, "acme/app", 7, "build", now + SignedDuration::from_hours(1), false)
            .unwrap();
        assert!(open(&store, &job.secret, now, DEFAULT_TTL).unwrap().is_none(), "a job's token opens no session");
        let scraper = tokens::issue("prometheus", TokenScope::Metrics);
        store.insert_token(&scraper.record).unwrap();
        assert!(open(&store, &scraper.secret, now, DEFAULT_TTL).unwrap().is_none(), "a metrics token reads no page");
    }
}
