//! Scoped API tokens. Only the SHA-256 of a token is stored; the token itself is shown once,
//! when created.

use jiff::Timestamp;
use mobius_store::{Store, StoreError, TokenRecord, TokenScope};
use sha2::{Digest, Sha256};

/// A new token: the secret to hand out once, and the record to store.
pub struct IssuedToken {
    pub secret: String,
    pub record: TokenRecord,
}

/// Generates a token (`mbx_` + 64 random hex digits) of a scope.
pub fn issue(name: &str, scope: TokenScope) -> IssuedToken {
    let secret = format!("mbx_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    IssuedToken { record: record_for(&secret, name, scope), secret }
}

/// The stored record of a known secret (used for `MOBIUS_ADMIN_TOKEN`).
pub fn record_for(secret: &str, name: &str, scope: TokenScope) -> TokenRecord {
    let secret_sha256 = hash(secret);
    TokenRecord {
        id: secret_sha256[..12].to_owned(),
        name: name.to_owned(),
        scope,
        created: Timestamp::now(),
        secret_sha256,
    }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What start-up did about the admin token.
pub enum Bootstrap {
    /// `MOBIUS_ADMIN_TOKEN` was given and is now valid.
    FromEnvironment,
    /// No token existed: this one was generated and must be shown once.
    Generated(String),
    /// Tokens exist already.
    Existing,
}

/// Ensures an admin token exists: the one given, or a generated one on first start.
pub fn bootstrap(store: &dyn Store, given: Option<&str>) -> Result<Bootstrap, StoreError> {
    if let Some(secret) = given {
        if store.token_by_secret_hash(&hash(secret))?.is_none() {
            store.insert_token(&record_for(secret, "bootstrap (MOBIUS_ADMIN_TOKEN)", TokenScope::Admin))?;
        }
        return Ok(Bootstrap::FromEnvironment);
    }
    if store.token_count()? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let token = issue("bootstrap", TokenScope::Admin);
    store.insert_token(&token.record)?;
    Ok(Bootstrap::Generated(token.secret))
}
