//! Scoped API tokens: created (the secret shown once), listed, revoked.

use anyhow::{Context, bail};
use mobius_app::tokens;
use mobius_store::{TokenRecord, TokenScope};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Answer, Local, Remote};

/// API tokens.
pub trait Tokens: Send + Sync {
    /// Creates a token of `scope` (`read`, `ingest`, …) labelled `name`; a `flags` token
    /// names the flag `set` it evaluates.
    fn create<'a>(&'a self, scope: &'a str, name: &'a str, set: Option<&'a str>) -> Answer<'a, Created>;

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
    /// The flag set a `flags` token evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
}

impl Tokens for Local {
    fn create<'a>(&'a self, scope: &'a str, name: &'a str, set: Option<&'a str>) -> Answer<'a, Created> {
        Box::pin(async move {
            let scope = TokenScope::parse(scope).context("unknown scope")?;
            let token = tokens::issue_scoped(name, scope, set).map_err(anyhow::Error::msg)?;
            let record = token.record.clone();
            self.with_store(move |store| Ok(store.insert_token(&record)?)).await?;
            let set = token.record.flag_set;
            Ok(Created { id: token.record.id, name: name.to_owned(), scope, token: token.secret, set })
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
    fn create<'a>(&'a self, scope: &'a str, name: &'a str, set: Option<&'a str>) -> Answer<'a, Created> {
        let mut body = serde_json::json!({ "scope": scope, "name": name });
        if let Some(set) = set {
            body["set"] = serde_json::json!(set);
        }
        Box::pin(self.client.json(self.client.request(Method::POST, "/api/v1/tokens").json(&body)))
    }

    fn list(&self) -> Answer<'_, Vec<TokenRecord>> {
        Box::pin(self.client.all(self.client.request(Method::GET, "/api/v1/tokens"), None))
    }

    fn revoke<'a>(&'a self, id: &'a str) -> Answer<'a, ()> {
        Box::pin(self.client.send(self.client.request(Method::DELETE, &format!("/api/v1/tokens/{id}"))))
    }
}
