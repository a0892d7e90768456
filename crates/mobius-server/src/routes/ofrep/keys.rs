//! The tokens OFREP callers present, remembered for a few seconds: an evaluation is a
//! hash-map read, and looking a token up in the store (a thread hop and a query) for each one
//! would cost more than the evaluation itself many times over.
//!
//! An entry is found by the SHA-256 of the secret (the secret itself is not kept), answers for
//! [`FRESH_FOR`], and is then looked up again; a revocation through this replica forgets every
//! entry at once, one through another replica takes effect here within [`FRESH_FOR`]. Unknown
//! tokens are not remembered, so guessing costs a store read each time, as elsewhere.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mobius_store::TokenRecord;
use sha2::{Digest, Sha256};

/// How long a looked-up token answers without a new look-up.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// At most this many tokens are remembered; past it, all are forgotten (a flood of distinct
/// valid tokens is not a workload anyone has).
const MAX: usize = 10_000;

/// Recently authenticated tokens.
#[derive(Debug, Default)]
pub struct Keys {
    known: Mutex<HashMap<[u8; 32], (TokenRecord, Instant)>>,
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Keys {
    /// The token `secret` authenticated as within [`FRESH_FOR`] of `now`.
    pub fn get(&self, secret: &str, now: Instant) -> Option<TokenRecord> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let (token, at) = known.get(&key(secret))?;
        (now.saturating_duration_since(*at) < FRESH_FOR).then(|| token.clone())
    }

    /// Remembers what `secret` authenticated as at `now`.
    pub fn put(&self, secret: &str, token: TokenRecord, now: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX {
            known.clear();
        }
        known.insert(key(secret), (token, now));
    }

    /// Forgets every token (one was revoked).
    pub fn forget_all(&self) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use mobius_store::TokenScope;

    use super::*;

    fn token(id: &str) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            name: String::new(),
            scope: TokenScope::Flags,
            created: jiff::Timestamp::UNIX_EPOCH,
            secret_hash: String::new(),
            salt: String::new(),
            expires: None,
            restriction: None,
            flag_set: Some("web".into()),
        }
    }

    #[test]
    fn a_token_answers_while_fresh_and_is_forgotten_on_revocation() {
        let keys = Keys::default();
        let t0 = Instant::now();
        assert_eq!(keys.get("mbx_a", t0), None);
        keys.put("mbx_a", token("a"), t0);
        assert_eq!(keys.get("mbx_a", t0 + Duration::from_secs(4)).map(|t| t.id), Some("a".into()));
        assert_eq!(keys.get("mbx_a", t0 + FRESH_FOR), None, "stale: looked up again");
        assert_eq!(keys.get("mbx_b", t0), None, "another secret");
        keys.forget_all();
        assert_eq!(keys.get("mbx_a", t0), None);
    }
}
