//! `mobius repo forge`: where a repository's commit statuses go. Checked whole before anything
//! is written, so bad input changes nothing.

use anyhow::{Result, bail};
use mobius_store::{ForgeKind, ForgeSettings, Store};

use crate::output::print_json;

/// What `mobius repo forge` was asked.
pub struct ForgeRequest {
    pub name: String,
    pub kind: Option<String>,
    pub api_url: Option<String>,
    pub token_secret: Option<String>,
    pub project: Option<String>,
    pub off: bool,
}

/// Sets (or, with `--off`, removes) the forge settings of a registered repository.
pub fn run(store: &dyn Store, secrets: &mobius_secrets::Secrets, json: bool, request: ForgeRequest) -> Result<()> {
    mobius_app::repositories::find(store, &request.name)?;
    if request.off {
        let removed = store.remove_forge(&request.name)?;
        if json {
            print_json(&serde_json::json!({ "repository": request.name, "removed": removed }))?;
        } else if removed {
            println!("{} no longer reports commit statuses.", request.name);
        } else {
            println!("{} did not report commit statuses.", request.name);
        }
        return Ok(());
    }
    let settings = settings(&request)?;
    store.set_forge(&settings)?;
    let stored = match &settings.token_secret {
        Some(secret) => {
            secrets.list(Some(&settings.repository))?.iter().any(|s| s.environment.is_empty() && &s.name == secret)
        }
        None => true,
    };
    if json {
        print_json(&settings)?;
        return Ok(());
    }
    println!("{} reports commit statuses to {} at {}", settings.repository, settings.kind, settings.api_url);
    if let Some(secret) = &settings.token_secret
        && !stored
    {
        println!(
            "  the token secret {secret} is not stored yet: `mobius secret set {secret} --repo {}` (statuses wait for it)",
            settings.repository
        );
    }
    Ok(())
}

/// The settings asked for, or why they are not valid.
fn settings(request: &ForgeRequest) -> Result<ForgeSettings> {
    let text = request.kind.as_deref().unwrap_or_default();
    let Some(kind) = ForgeKind::parse(text) else {
        bail!("unknown forge kind `{text}`: use github or gitlab");
    };
    let api_url = request.api_url.clone().unwrap_or_else(|| kind.default_api_url().to_owned());
    let parsed = reqwest::Url::parse(&api_url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
    match parsed {
        Some(url) if url.username().is_empty() && url.password().is_none() => {}
        Some(_) => bail!("the API URL must not carry credentials: store the token with --token-secret"),
        None => bail!("the API URL `{api_url}` is not an http:// or https:// URL"),
    }
    if let Some(secret) = &request.token_secret {
        mobius_secrets::check_name(secret)?;
    }
    if request.project.is_some() && kind != ForgeKind::Gitlab {
        bail!("--project is GitLab's project id or path; a {kind} repository has none");
    }
    if kind == ForgeKind::Github && request.name.split('/').count() != 2 {
        bail!("GitHub needs the repository's name as owner/name, not `{}`", request.name);
    }
    Ok(ForgeSettings {
        repository: request.name.clone(),
        kind,
        api_url: api_url.trim_end_matches('/').to_owned(),
        token_secret: request.token_secret.clone(),
        project: request.project.clone(),
    })
}

/// The `forge:` line of `mobius repo show`, never with the token.
pub fn shown(forge: Option<&ForgeSettings>) -> String {
    let Some(forge) = forge else { return "none (statuses are not reported)".to_owned() };
    let token =
        forge.token_secret.as_deref().map_or_else(|| "no token".to_owned(), |s| format!("token from secret {s}"));
    let project = forge.project.as_deref().map(|p| format!(", project {p}")).unwrap_or_default();
    format!("{} at {} ({token}{project})", forge.kind, forge.api_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str) -> ForgeRequest {
        ForgeRequest {
            name: "acme/app".into(),
            kind: Some(kind.into()),
            api_url: None,
            token_secret: Some("FORGE_TOKEN".into()),
            project: None,
            off: false,
        }
    }

    #[test]
    fn settings_default_the_api_and_refuse_bad_input() {
        let github = settings(&request("github")).unwrap();
        assert_eq!((github.kind, github.api_url.as_str()), (ForgeKind::Github, "https://api.github.com"));
        let gitlab = settings(&ForgeRequest { project: Some("42".into()), ..request("gitlab") }).unwrap();
        assert_eq!((gitlab.api_url.as_str(), gitlab.project.as_deref()), ("https://gitlab.com/api/v4", Some("42")));
        let error = |r: ForgeRequest| settings(&r).unwrap_err().to_string();
        assert_eq!(error(request("bitbucket")), "unknown forge kind `bitbucket`: use github or gitlab");
        assert!(error(ForgeRequest { api_url: Some("ftp://x".into()), ..request("github") }).contains("not an http"));
        let with_credentials =
            ForgeRequest { api_url: Some("https://u:p@ghe.example/api/v3".into()), ..request("github") };
        assert!(error(with_credentials).contains("must not carry credentials"));
        assert!(error(ForgeRequest { token_secret: Some("lower".into()), ..request("github") }).contains("lower"));
        assert!(error(ForgeRequest { project: Some("1".into()), ..request("github") }).contains("--project"));
        assert!(shown(Some(&github)).contains("token from secret FORGE_TOKEN"));
    }
}
