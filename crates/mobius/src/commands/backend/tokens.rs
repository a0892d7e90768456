//! Scoped API tokens: created (the secret shown once), listed, revoked.

use anyhow::{Context, bail};
use mobius_app::tokens;
use mobius_store::{TokenRecord, TokenScope};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Answer, Local, Remote};

/// API tokens.
pub trait Tokens: Send + Sync {
    /// Creates a token of `scope` (`read`, `ingest`, …) labelled `name`.
    fn create<'a>(&'a self, scope: &'a str, name: &'a str) -> Answer<'a, Created>;

    /// Every token (never a secret).
    fn list(&self) -> Answer<'_, Vec<TokenRecord>>;

    /// Revokes the token with this id; an unknown id is an error.
    fn revoke<'a>(&'a self, id: &'a str) -> Answer<'a, ()>;
}

/// A token just created, with the only copy of its secret (fields in the order `--json` has
/// always printed them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    /// The secret.
    pub token: String,
}

impl Tokens for Local {
    fn create<'a>(&'a self, scope: &'a str, name: &'a str) -> Answer<'a, Created> {
        Box::pin(async move {
            let scope = TokenScope::parse(scope).context("unknown scope")?;
            let token = tokens::issue(name, scope);
            let record = token.record.clone();
            self.with_store(move |store| Ok(store.insert_token(&record)?)).await?;
            Ok(Created { id: token.record.id, name: name.to_owned(), scope, token: token.secret })
        })
    }

    fn list(&self) -> Answer<'_, Vec<TokenRecord>> {
        Box::pin(self.with_store(|store| Ok(store.tokens()?)))
    }

    fn revoke<'a>(&'a self, id: &'a str) -> Answer<'a, ()> {
        Box::pin(async move {
            let owned = id.to_owned();
            if !self.with_store(move |store| Ok(store.revoke_token(&owned)?)).await? {
                bail!("no token has id `{id}` (`mobius token list` shows them)");
            }
            Ok(())
        })
    }
}

impl Tokens for Remote {
    fn create<'a>(&'a self, scope: &'a str, name: &'a str) -> Answer<'a, Created> {
        let body = serde_json::json!({ "scope": scope, "name": name });
        Box::pin(self.client.json(self.client.request(Method::POST, "/api/v1/tokens").json(&body)))
    }

    fn list(&self) -> Answer<'_, Vec<TokenRecord>> {
        Box::pin(self.client.all(self.client.request(Method::GET, "/api/v1/tokens"), None))
    }

    fn revoke<'a>(&'a self, id: &'a str) -> Answer<'a, ()> {
        Box::pin(self.client.send(self.client.request(Method::DELETE, &format!("/api/v1/tokens/{id}"))))
    }
}
