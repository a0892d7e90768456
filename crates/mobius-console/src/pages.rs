//! The console's handlers: sign-in, sign-out, the pages, the stylesheet.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use mobius_app::sessions;
use mobius_store::{RunQuery, RunRecord, RunState};
use serde::Deserialize;

use crate::view::ActionForm;
use crate::view::{NotFound, Who, cookie, failed, html, named_cookie, session, viewer};
use crate::{Console, SESSION_COOKIE};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    next: &'a str,
    error: Option<&'a str>,
    /// The sign-in form's own CSRF token, also in the [`LOGIN_COOKIE`] cookie.
    login_csrf: &'a str,
}

/// The cookie that carries the sign-in form's CSRF token (double submit): SameSite=Strict, so
/// a form posted from another site arrives without it and signs nobody in.
const LOGIN_COOKIE: &str = "mobius_login";

/// A fresh sign-in form with its CSRF cookie.
fn login_page(console: &Console, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let login_csrf = format!("{}", uuid::Uuid::new_v4().simple());
    let page = LoginPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: None,
        next,
        error,
        login_csrf: &login_csrf,
    };
    let mut response = html(status, page.render());
    let cookie = format!("{LOGIN_COOKIE}={login_csrf}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=3600");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    repository: &'a str,
    state: &'a str,
    branch: &'a str,
    runs: Vec<RunRow>,
    /// The next (older) page, when there is one.
    older: Option<String>,
    /// Whether this is a later page.
    paged: bool,
}

/// One run, as the runs table shows it.
struct RunRow {
    id: i64,
    state: &'static str,
    workflow: String,
    repository: String,
    event: String,
    branch: String,
    commit: String,
    queued: String,
    queued_age: String,
    queued_iso: String,
}

impl RunRow {
    fn of(record: &RunRecord) -> RunRow {
        RunRow {
            id: record.id,
            state: record.state.as_str(),
            workflow: record.run.workflow_name.clone(),
            repository: record.run.repository.clone(),
            event: record.run.event.clone(),
            branch: record.run.branch.clone().unwrap_or_else(|| "—".to_owned()),
            commit: record.run.sha.chars().take(10).collect(),
            queued: crate::view::utc(record.run.queued_at),
            queued_age: crate::view::age(record.run.queued_at, Timestamp::now()),
            queued_iso: record.run.queued_at.to_string(),
        }
    }
}

/// Where to go after signing in: a path on this console, never another site.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if local { next } else { "/" }
}

/// `/`: the service catalog.
pub(crate) async fn home(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Response {
    match viewer(&console, &headers, &uri).await {
        Ok(_) => Redirect::to("/services").into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextParams {
    next: Option<String>,
}

/// `GET /login`: the sign-in form.
pub(crate) async fn login_form(State(console): State<Console>, Query(params): Query<NextParams>) -> Response {
    let next = safe_next(params.next.as_deref().unwrap_or("/"));
    login_page(&console, StatusCode::OK, next, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /login`: a token for a session cookie; back to the form, saying why, when the token
/// does not authenticate.
pub(crate) async fn login(State(console): State<Console>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    // The form's token must be the one its page set in the cookie: a form from another site
    // carries neither, and signs nobody in (login CSRF).
    let expected = named_cookie(&headers, LOGIN_COOKIE);
    let same_form = expected.as_deref().is_some_and(|e| {
        !form.csrf.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(e.as_bytes(), form.csrf.as_bytes()))
    });
    if !same_form {
        let error = Some("The sign-in form expired or came from elsewhere: sign in from this page.");
        return login_page(&console, StatusCode::FORBIDDEN, safe_next(&form.next), error);
    }
    let store = console.app.store.clone();
    let token = form.token;
    let now = Timestamp::now();
    let opened =
        mobius_log::blocking::spawn(move || sessions::open(store.as_ref(), &token, now, sessions::DEFAULT_TTL)).await;
    let next = safe_next(&form.next);
    let opened = match opened {
        Ok(Some(opened)) => opened,
        Ok(None) => {
            let error = Some("That token is not valid: mistyped, expired or revoked.");
            return login_page(&console, StatusCode::UNAUTHORIZED, next, error);
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot open a console session");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot sign in now").into_response();
        }
    };
    let max_age = opened.session.expires.duration_since(now).as_secs().max(0);
    let secure = if console.secure_cookie { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}", opened.cookie);
    let mut response = Redirect::to(next).into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "cannot sign in now").into_response(),
    }
    response
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `POST /logout`: ends the session (its form's CSRF token must match) and clears the cookie.
pub(crate) async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    let Some(session) = session(&console, &headers).await else { return Redirect::to("/login").into_response() };
    if !session.csrf_matches(&form.csrf) {
        return (StatusCode::FORBIDDEN, "The form's CSRF token is missing or wrong: nothing was changed.")
            .into_response();
    }
    if let Some(cookie) = cookie(&headers) {
        let store = console.app.store.clone();
        let closed = mobius_log::blocking::spawn(move || sessions::close(store.as_ref(), &cookie)).await;
        if let Err(error) = closed {
            tracing::error!(error = %error, "cannot close a console session");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot sign out now").into_response();
        }
    }
    let mut response = Redirect::to("/login").into_response();
    let gone = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&gone) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct RunsParams {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    branch: String,
    before: Option<i64>,
}

/// Runs a page shows.
const RUNS_PAGE: u32 = 50;

/// `GET /runs`: the latest runs, filtered by repository and state (the API's list).
pub(crate) async fn runs(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<RunsParams>,
) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let (css, icon) = (console.asset("console"), console.asset("favicon"));
    let state = match params.state.trim() {
        "" => None,
        text => match RunState::parse(text) {
            Some(state) => Some(state),
            None => {
                let what = format!("No run state `{text}` (queued, waiting, running, success, failure, cancelled…).");
                let page = NotFound { css, icon, signed_in: viewer.who(), what: &what };
                return html(StatusCode::BAD_REQUEST, page.render());
            }
        },
    };
    let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let query = RunQuery {
        repository: given(&params.repository),
        state,
        branch: given(&params.branch),
        before: params.before,
        limit: RUNS_PAGE + 1,
    };
    let store = console.app.store.clone();
    let mut listed = match mobius_log::blocking::spawn(move || store.runs(&query)).await {
        Ok(listed) => listed,
        Err(error) => {
            return failed("list runs", &error);
        }
    };
    let more = listed.len() > RUNS_PAGE as usize;
    listed.truncate(RUNS_PAGE as usize);
    let older = listed.last().filter(|_| more).map(|last| {
        let mut link = format!("/runs?before={}", last.id);
        for (name, value) in [("repository", &params.repository), ("state", &params.state), ("branch", &params.branch)]
        {
            if !value.trim().is_empty() {
                link.push_str(&format!("&{name}={}", crate::view::query_escape(value.trim())));
            }
        }
        link
    });
    let page = RunsPage {
        css,
        icon,
        signed_in: viewer.who(),
        repository: params.repository.trim(),
        state: params.state.trim(),
        branch: params.branch.trim(),
        older,
        paged: params.before.is_some(),
        runs: listed.iter().map(RunRow::of).collect(),
    };
    html(StatusCode::OK, page.render())
}

/// `GET /assets/{file}`: an embedded file under its content hash, cacheable for a year.
pub(crate) async fn asset(State(console): State<Console>, uri: Uri) -> Response {
    // The path itself, not a `Path` extractor: the server's router matched it once already.
    let Some(asset) = console.assets.iter().find(|a| a.path == uri.path()) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let headers =
        [(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")];
    (headers, asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_console() {
        assert_eq!(safe_next("/runs?state=failure"), "/runs?state=failure");
        for outside in ["https://evil.example/", "//evil.example/", "/\\evil.example", "runs", ""] {
            assert_eq!(safe_next(outside), "/", "{outside}");
        }
    }
}
