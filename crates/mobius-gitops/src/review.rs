//! Review before a promotion lands (Kargo's `git-open-pr`): the promotion's commit is pushed to
//! a branch of its own and a pull request (GitHub) or merge request (GitLab) asks to merge it
//! into the followed branch, through the forge the repository is configured with
//! (`mobius repo forge`: kind, API URL, a token held as a repository secret). Nothing syncs
//! until it is merged: the reconciler then sees the merge like any push.
//!
//! - GitHub: `POST {api}/repos/{owner}/{repo}/pulls` `{title, head, base, body}` with
//!   `Authorization: Bearer TOKEN`; the answer's `number` and `html_url`.
//! - GitLab: `POST {api}/projects/{id}/merge_requests` `{source_branch, target_branch, title,
//!   description}` with `PRIVATE-TOKEN`; the answer's `iid` and `web_url`.

use std::time::Duration;

use mobius_store::{ForgeKind, ForgeSettings};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How long the forge may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The pull request a promotion opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// `github` or `gitlab`.
    pub forge: String,
    /// GitHub's pull request number, GitLab's merge request `iid`.
    pub number: u64,
    /// Its page.
    pub url: String,
    /// The branch it merges into (`main`).
    pub base: String,
}

/// What to ask the forge for.
#[derive(Debug, Clone)]
pub struct Opening {
    pub title: String,
    pub body: String,
    /// The branch with the promotion's commit (`mobius/promote/…`, without `refs/heads/`).
    pub head: String,
    /// The followed branch (`main`).
    pub base: String,
}

/// Why no pull request was opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForgeError {
    #[error("the repository name `{0}` is not owner/name, as GitHub needs it")]
    NotOwnerName(String),
    #[error("{forge} at {api} answered {status} to the pull request{message}")]
    Answered { forge: ForgeKind, api: String, status: u16, message: String },
    #[error("cannot reach {forge} at {api}: {message}")]
    Unreachable { forge: ForgeKind, api: String, message: String },
    #[error("{forge} at {api} answered the pull request with something that is not one: {message}")]
    Unreadable { forge: ForgeKind, api: String, message: String },
}

/// One request to the forge. Not `Debug`: its headers carry the token.
pub(crate) struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// The request that opens `opening` on `repository`'s forge.
pub(crate) fn request(
    forge: &ForgeSettings,
    repository: &str,
    token: Option<&str>,
    opening: &Opening,
) -> Result<Request, ForgeError> {
    let api = forge.api_url.trim_end_matches('/');
    let mut headers = vec![("User-Agent", format!("mobius/{}", env!("CARGO_PKG_VERSION")))];
    let (url, body) = match forge.kind {
        ForgeKind::Github => {
            let (owner, name) = repository
                .split_once('/')
                .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
                .ok_or_else(|| ForgeError::NotOwnerName(repository.to_owned()))?;
            headers.push(("Accept", "application/vnd.github+json".to_owned()));
            headers.push(("X-GitHub-Api-Version", "2022-11-28".to_owned()));
            if let Some(token) = token {
                headers.push(("Authorization", format!("Bearer {token}")));
            }
            let body =
                json!({ "title": opening.title, "head": opening.head, "base": opening.base, "body": opening.body });
            (format!("{api}/repos/{}/{}/pulls", encode(owner), encode(name)), body)
        }
        ForgeKind::Gitlab => {
            let project = forge.project.as_deref().unwrap_or(repository);
            if let Some(token) = token {
                headers.push(("PRIVATE-TOKEN", token.to_owned()));
            }
            let body = json!({
                "source_branch": opening.head, "target_branch": opening.base,
                "title": opening.title, "description": opening.body,
            });
            (format!("{api}/projects/{}/merge_requests", encode(project)), body)
        }
    };
    Ok(Request { url, headers, body })
}

/// Opens `opening` on the forge; no error carries `token`.
pub(crate) async fn open(
    forge: &ForgeSettings,
    repository: &str,
    token: Option<&str>,
    opening: &Opening,
) -> Result<PullRequest, ForgeError> {
    let request = request(forge, repository, token, opening)?;
    let api = forge.api_url.trim_end_matches('/').to_owned();
    let hide = |text: String| match token {
        Some(token) if !token.is_empty() => text.replace(token, "***"),
        _ => text,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let unreachable =
        |message: String| ForgeError::Unreachable { forge: forge.kind, api: api.clone(), message: hide(message) };
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| unreachable(e.to_string()))?;
    let mut builder = http.post(&request.url).json(&request.body);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let response =
        builder.send().await.map_err(|e| unreachable(mobius_pipelines::chain::Chain(&e.without_url()).to_string()))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let message = hide(forge_message(&text));
        return Err(ForgeError::Answered { forge: forge.kind, api, status: status.as_u16(), message });
    }
    let unreadable = |message: String| ForgeError::Unreadable { forge: forge.kind, api: api.clone(), message };
    let answer: serde_json::Value = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let (number, url) = match forge.kind {
        ForgeKind::Github => (answer["number"].as_u64(), answer["html_url"].as_str()),
        ForgeKind::Gitlab => (answer["iid"].as_u64(), answer["web_url"].as_str()),
    };
    match (number, url) {
        (Some(number), Some(url)) => {
            Ok(PullRequest { forge: forge.kind.to_string(), number, url: url.to_owned(), base: opening.base.clone() })
        }
        _ => Err(unreadable("no number or URL in the answer".to_owned())),
    }
}

/// `: <message>` from a forge's error body (GitHub and GitLab both say `message`; GitHub's
/// `errors` say why a pull request cannot be opened), short.
fn forge_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let Some(parsed) = parsed else { return String::new() };
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut message = parsed.get("message").or_else(|| parsed.get("error")).map(text).unwrap_or_default();
    let details: Vec<String> = parsed["errors"]
        .as_array()
        .map(|all| {
            all.iter().filter_map(|e| e.get("message").map(text).or_else(|| e.as_str().map(str::to_owned))).collect()
        })
        .unwrap_or_default();
    if !details.is_empty() {
        message = format!("{message} ({})", details.join("; "));
    }
    if message.is_empty() { String::new() } else { format!(": {}", message.chars().take(300).collect::<String>()) }
}

/// A path segment percent-encoded (GitLab's `group/project` becomes `group%2Fproject`).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The review branch of a promotion: `mobius/promote/<service>-<environment>-<12 hex>`.
pub fn branch_name(service: &str, environment: &str, digest: &str) -> String {
    let safe = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '-' }).collect()
    };
    let hex = digest.trim_start_matches("sha256:");
    format!("mobius/promote/{}-{}-{}", safe(service), safe(environment), &hex[..hex.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening() -> Opening {
        Opening {
            title: "Promote shop to production".into(),
            body: "why".into(),
            head: "mobius/promote/shop-production-aaaaaaaaaaaa".into(),
            base: "main".into(),
        }
    }

    #[test]
    fn requests_follow_each_forges_rest_description() {
        let github = ForgeSettings {
            repository: "acme/deploy".into(),
            kind: ForgeKind::Github,
            api_url: "https://ghe.example/api/v3/".into(),
            token_secret: Some("GH".into()),
            project: None,
        };
        let r = request(&github, "acme/deploy", Some("tok"), &opening()).unwrap();
        assert_eq!(r.url, "https://ghe.example/api/v3/repos/acme/deploy/pulls");
        let header = |r: &Request, name: &str| r.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(header(&r, "Authorization").as_deref(), Some("Bearer tok"));
        assert_eq!(header(&r, "X-GitHub-Api-Version").as_deref(), Some("2022-11-28"));
        assert_eq!(
            r.body,
            json!({ "title": "Promote shop to production", "head": "mobius/promote/shop-production-aaaaaaaaaaaa",
                    "base": "main", "body": "why" })
        );
        assert!(matches!(request(&github, "deploy", None, &opening()), Err(ForgeError::NotOwnerName(_))));

        let gitlab = ForgeSettings { kind: ForgeKind::Gitlab, api_url: "https://gl.example/api/v4".into(), ..github };
        let r = request(&gitlab, "acme/deploy", Some("tok"), &opening()).unwrap();
        assert_eq!(r.url, "https://gl.example/api/v4/projects/acme%2Fdeploy/merge_requests");
        assert_eq!((header(&r, "PRIVATE-TOKEN").as_deref(), header(&r, "Authorization")), (Some("tok"), None));
        assert_eq!(
            r.body,
            json!({ "source_branch": "mobius/promote/shop-production-aaaaaaaaaaaa", "target_branch": "main",
                    "title": "Promote shop to production", "description": "why" })
        );
    }

    #[test]
    fn forge_answers_and_branch_names() {
        let github = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:x."}]}"#;
        assert_eq!(forge_message(github), ": Validation Failed (A pull request already exists for acme:x.)");
        let gitlab = forge_message(r#"{"message":["Another open merge request already exists"]}"#);
        assert_eq!(gitlab, r#": ["Another open merge request already exists"]"#);
        assert_eq!(forge_message("<html>"), "");
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(branch_name("shop", "prod eu", &digest), "mobius/promote/shop-prod-eu-abababababab");
    }
}
