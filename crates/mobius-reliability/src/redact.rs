//! URLs as logs and error messages may show them. Users put secrets in URLs: credentials in
//! a Prometheus URL (`https://user:password@…`, which the HTTP client sends as basic auth), and
//! the whole path of a webhook (a Slack incoming-webhook URL *is* its secret). Nothing that
//! leaves the process — a log line, an API answer, an error — carries more than these give.

/// A server URL without its credentials: `https://***@prometheus:9090/prefix`. The path
/// stays (it says which server, and is not a secret by convention); the query goes.
pub fn server_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let had_credentials = !parsed.username().is_empty() || parsed.password().is_some();
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            let shown = parsed.to_string();
            match (had_credentials, shown.split_once("://")) {
                (true, Some((scheme, rest))) => format!("{scheme}://***@{rest}"),
                _ => shown,
            }
        }
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

/// A webhook URL as far as its host: `https://hooks.slack.com/…`.
pub fn webhook_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}/…", parsed.scheme())
        }
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

/// An HTTP client error and its sources, `: `-separated, without the URL it was for (which
/// reqwest puts in its message).
pub fn http_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut out = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_webhook_paths_never_show() {
        assert_eq!(server_url("https://alice:s3cret@prom.example:9090/p?token=x"), "https://***@prom.example:9090/p");
        assert_eq!(server_url("http://127.0.0.1:9090"), "http://127.0.0.1:9090/");
        assert_eq!(server_url("not a url"), "(a URL that does not parse)");
        assert_eq!(
            webhook_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET?x=1"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(webhook_url("http://127.0.0.1:8080/hook"), "http://127.0.0.1:8080/…");
    }

    #[tokio::test]
    async fn client_errors_lose_their_url() {
        crate::install_tls_provider();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://user:s3cret@127.0.0.1:{closed}/services/T0/B0/SECRETPATH");
        let error = reqwest::Client::new().get(&url).send().await.unwrap_err();
        assert!(error.to_string().contains("SECRETPATH"), "reqwest's own message has the URL");
        let shown = http_error(error);
        assert!(!shown.contains("SECRETPATH") && !shown.contains("s3cret"), "{shown}");
    }
}
