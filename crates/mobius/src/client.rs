//! The HTTP client for `--server`: the same endpoints a script would call.

use anyhow::{Context, Result, bail};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::cli::Remote;

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `None` when no `--server` was given: work on the local data directory instead.
    pub fn from(remote: &Remote) -> Result<Option<Client>> {
        let Some(server) = &remote.server else { return Ok(None) };
        let http = reqwest::Client::builder().user_agent(concat!("mobius/", env!("CARGO_PKG_VERSION"))).build()?;
        Ok(Some(Client { base: server.trim_end_matches('/').to_owned(), token: remote.token.clone(), http }))
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends and decodes JSON; a non-2xx answer becomes an error with the server's message.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let response = check(response).await?;
        response.json().await.context("the server's answer is not the expected JSON")
    }

    /// Sends and returns the answer's text; a non-2xx answer becomes an error with the
    /// server's message.
    pub async fn text(&self, request: RequestBuilder) -> Result<String> {
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        check(response).await?.text().await.context("cannot read the server's answer")
    }

    /// Sends a request whose answer has no body worth reading (a 204); a non-2xx answer becomes
    /// an error with the server's message.
    pub async fn send(&self, request: RequestBuilder) -> Result<()> {
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        check(response).await.map(drop)
    }

    /// Like [`Client::json`] but also accepts the 400 of an all-rejected batch.
    pub async fn json_any_status<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            let text = response.text().await?;
            if let Ok(value) = serde_json::from_str(&text) {
                return Ok(value);
            }
            bail!("server refused the request: {}", error_message(&text));
        }
        check(response).await?.json().await.context("the server's answer is not the expected JSON")
    }
}

async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    bail!("server answered {status}: {}", error_message(&text))
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}
