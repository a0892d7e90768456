//! The HTTP client for `--server`: the same endpoints a script would call.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use reqwest::header::LINK;
use reqwest::{Method, RequestBuilder, Response, Url};
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
        self.authorized(self.http.request(method, format!("{}{path}", self.base)))
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
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

    /// Every item of a list, following the `Link: <…>; rel="next"` of each page until the last
    /// one, or until `max` items when given. Pages must advance, and stay on the server this
    /// client talks to: the token is sent to no one else.
    pub async fn all<T: DeserializeOwned>(&self, first: RequestBuilder, max: Option<usize>) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut request = first;
        let mut seen = HashSet::new();
        loop {
            let response = request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
            let response = check(response).await?;
            let url = response.url().clone();
            let next = response.headers().get_all(LINK).iter().filter_map(|v| v.to_str().ok()).find_map(next_link);
            let next = next.map(|link| url.join(link)).transpose().context("the server's next page is not a URL")?;
            seen.insert(url);
            let page: Vec<T> = response.json().await.context("the server's answer is not the expected JSON")?;
            items.extend(page);
            if let Some(max) = max
                && items.len() >= max
            {
                items.truncate(max);
                return Ok(items);
            }
            let Some(next) = next else { return Ok(items) };
            if next.origin() != Url::parse(&self.base).context("the server's URL")?.origin() {
                bail!("the server's next page is on another server ({next}): not following it");
            }
            if !seen.insert(next.clone()) {
                bail!("the server gives {next} as the next page again: its pages do not advance");
            }
            request = self.authorized(self.http.get(next));
        }
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

/// The target of the `rel="next"` link in a `Link` header's value (RFC 8288):
/// `<…>; rel="next"`, among other links and parameters.
fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        rest = &rest[end + 1..];
        // This link's parameters run to the next link; a quoted value holds no `<`.
        let params = &rest[..rest.find('<').unwrap_or(rest.len())];
        let is_next = params.split(';').filter_map(|p| p.split_once('=')).any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("rel")
                && value.trim().trim_end_matches(',').trim().trim_matches('"').split_whitespace().any(|r| r == "next")
        });
        if is_next {
            return Some(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let check = |header: &str, expected: Option<&str>| assert_eq!(next_link(header), expected, "{header}");
        check(r#"</api/v1/events?limit=2&after=5>; rel="next""#, Some("/api/v1/events?limit=2&after=5"));
        check(r#"</a?page=1>; rel="prev", </a?page=3>; rel="next""#, Some("/a?page=3"));
        check(r#"</a?page=3>; rel=next; title="more""#, Some("/a?page=3"));
        check(r#"</a?page=9>; rel="last next""#, Some("/a?page=9"));
        check(r#"</a?page=1>; rel="prev""#, None);
        check(r#"</a?page=1>; rel="nextish""#, None);
        check("", None);
        check("<unclosed; rel=\"next\"", None);
    }

    /// A server answering each path from `pages` (path and query → body, `Link` target), and
    /// recording the requests it was sent.
    async fn serve(pages: Vec<(&'static str, &'static str, Option<String>)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let authorized = head.to_lowercase().contains("authorization: bearer secret");
                log.lock().unwrap().push(format!("{target}{}", if authorized { "" } else { " (no token)" }));
                let found = pages.iter().find(|(path, _, _)| *path == target);
                let response = match found {
                    Some((_, body, link)) => {
                        let link = link.as_ref().map(|l| format!("link: <{l}>; rel=\"next\"\r\n")).unwrap_or_default();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{link}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                };
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (base, asked)
    }

    fn client(base: &str) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let remote = Remote { server: Some(base.to_owned()), token: Some("secret".to_owned()) };
        Client::from(&remote).unwrap().unwrap()
    }

    #[tokio::test]
    async fn every_page_is_read_until_there_is_no_next_one() {
        let (base, asked) = serve(vec![
            ("/items?limit=2", "[1,2]", Some("/items?limit=2&after=2".to_owned())),
            ("/items?limit=2&after=2", "[3,4]", Some("/items?limit=2&after=4".to_owned())),
            ("/items?limit=2&after=4", "[5]", None),
        ])
        .await;
        let client = client(&base);
        let all: Vec<u32> = client.all(client.request(Method::GET, "/items?limit=2"), None).await.unwrap();
        assert_eq!(all, [1, 2, 3, 4, 5]);
        assert_eq!(
            *asked.lock().unwrap(),
            ["/items?limit=2", "/items?limit=2&after=2", "/items?limit=2&after=4"],
            "every page, with the token"
        );

        asked.lock().unwrap().clear();
        let three: Vec<u32> = client.all(client.request(Method::GET, "/items?limit=2"), Some(3)).await.unwrap();
        assert_eq!(three, [1, 2, 3]);
        assert_eq!(asked.lock().unwrap().len(), 2, "no page past the items wanted");
    }

    #[tokio::test]
    async fn pages_that_do_not_advance_or_lead_elsewhere_are_refused() {
        // A server that ignores the cursor it gives.
        let (base, _) = serve(vec![
            ("/tokens", "[1]", Some("/tokens?offset=1".to_owned())),
            ("/tokens?offset=1", "[1]", Some("/tokens?offset=1".to_owned())),
        ])
        .await;
        let client = client(&base);
        let error = client.all::<u32>(client.request(Method::GET, "/tokens"), None).await.unwrap_err();
        assert!(format!("{error:#}").contains("pages do not advance"), "{error:#}");

        let (elsewhere, asked_elsewhere) = serve(vec![("/steal", "[2]", None)]).await;
        let (base, _) = serve(vec![("/list", "[1]", Some(format!("{elsewhere}/steal")))]).await;
        let client = self::client(&base);
        let error = client.all::<u32>(client.request(Method::GET, "/list"), None).await.unwrap_err();
        assert!(format!("{error:#}").contains("another server"), "{error:#}");
        assert!(asked_elsewhere.lock().unwrap().is_empty(), "the token went nowhere else");
    }
}
