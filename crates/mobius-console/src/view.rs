//! What every page shares: who is looking (a session, or anyone under `--public-read`), the
//! gate every action passes (session, scope, CSRF — in that order, before anything changes),
//! the error pages, and how times are shown (UTC with a relative age).

use askama::Template;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::Timestamp;
use mobius_app::sessions::{self, Session};
use mobius_store::TokenScope;

use crate::{Console, SESSION_COOKIE};

/// Who the page is for, as the header shows them (and the sign-out form's CSRF token).
pub(crate) struct Who {
    pub(crate) name: String,
    pub(crate) scope: &'static str,
    pub(crate) csrf: String,
}

impl Who {
    pub(crate) fn of(session: &Session) -> Who {
        Who { name: session.token.name.clone(), scope: session.token.scope.as_str(), csrf: session.csrf.clone() }
    }
}

/// Who is reading a page: a signed-in session, or anyone when the server serves reads
/// publicly (`--public-read`), who may read and do nothing else.
pub(crate) enum Viewer {
    Signed(Box<Session>),
    Public,
}

impl Viewer {
    /// The header's "signed in as", if anyone is.
    pub(crate) fn who(&self) -> Option<Who> {
        match self {
            Viewer::Signed(session) => Some(Who::of(session)),
            Viewer::Public => None,
        }
    }

    /// Whether the page should offer actions that need `scope` (the action checks again).
    pub(crate) fn allows(&self, scope: TokenScope) -> bool {
        match self {
            Viewer::Signed(session) => session.token.scope.allows(scope),
            Viewer::Public => false,
        }
    }

    /// The CSRF token the page's forms carry (none for a public reader, who has no forms).
    pub(crate) fn csrf(&self) -> &str {
        match self {
            Viewer::Signed(session) => &session.csrf,
            Viewer::Public => "",
        }
    }
}

/// The session cookie's value, if the request has one.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    named_cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `wanted`, if the request has it.
pub(crate) fn named_cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == wanted).then(|| value.to_owned())
        })
}

/// The request's live session, if it has one.
pub(crate) async fn session(console: &Console, headers: &HeaderMap) -> Option<Session> {
    let cookie = cookie(headers)?;
    let store = console.app.store.clone();
    let checked = mobius_log::blocking::spawn(move || sessions::check(store.as_ref(), &cookie, Timestamp::now())).await;
    match checked {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(error = %error, "cannot check a console session");
            None
        }
    }
}

/// Who may read the page: the session, else anyone under `--public-read`; `Err` is the way
/// to sign-in (remembering the page) for everyone else.
pub(crate) async fn viewer(console: &Console, headers: &HeaderMap, uri: &Uri) -> Result<Viewer, Response> {
    match session(console, headers).await {
        Some(session) => Ok(Viewer::Signed(Box::new(session))),
        None if console.public_read => Ok(Viewer::Public),
        None => Err(to_login(uri)),
    }
}

/// An action's form, read without refusing it: a body that is not the form (wrong type, too
/// big, malformed) is the empty form, which carries no CSRF token — so [`authorize`] refuses
/// it, but only after it has checked who is asking. No one learns anything from a 415 or 422
/// before being sent to sign-in.
pub(crate) struct ActionForm<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> axum::extract::FromRequest<S> for ActionForm<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = axum::extract::Form::<T>::from_request(request, state).await;
        Ok(ActionForm(form.map(|axum::extract::Form(form)| form).unwrap_or_default()))
    }
}

/// The gate of every action (a form's POST): a session (else to sign-in), whose token's
/// scope allows `scope` (else 403), whose CSRF token the form carries (else 403). Nothing has
/// been read beyond the form, and nothing changes, before this passes.
pub(crate) async fn authorize(
    console: &Console,
    headers: &HeaderMap,
    uri: &Uri,
    csrf: &str,
    scope: TokenScope,
    what: &str,
) -> Result<Session, Response> {
    let Some(session) = session(console, headers).await else { return Err(to_login(uri)) };
    if !session.token.scope.allows(scope) {
        let said = format!(
            "Your token's scope is `{}`: {what} needs `{}`. Nothing was changed.",
            session.token.scope.as_str(),
            scope.as_str()
        );
        return Err((StatusCode::FORBIDDEN, said).into_response());
    }
    if !session.csrf_matches(csrf) {
        return Err(
            (StatusCode::FORBIDDEN, "The form's CSRF token is missing or wrong: nothing was changed.").into_response()
        );
    }
    Ok(session)
}

/// `text` for a query string: everything but unreserved characters percent-encoded.
pub(crate) fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment's `%XX` escapes decoded; `None` for a `%` not followed by two hex digits or
/// bytes that are not UTF-8. Pages read names from their own path this way: service,
/// environment, SLO and incident names may hold any character.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// To sign-in, remembering the page asked for.
pub(crate) fn to_login(uri: &Uri) -> Response {
    let asked = uri.path_and_query().map_or("/", |p| p.as_str());
    Redirect::to(&format!("/login?next={}", query_escape(asked))).into_response()
}

/// A rendered template, or the error page when rendering failed (a bug, logged).
pub(crate) fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    match rendered {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "a console template did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
pub(crate) struct NotFound<'a> {
    pub(crate) css: &'a str,
    pub(crate) icon: &'a str,
    pub(crate) signed_in: Option<Who>,
    pub(crate) what: &'a str,
}

/// A page that says what was not there, with `status` (404, or 400 for a bad filter).
pub(crate) fn not_found_with(console: &Console, status: StatusCode, who: Option<Who>, what: &str) -> Response {
    let page = NotFound { css: console.asset("console"), icon: console.asset("favicon"), signed_in: who, what };
    html(status, page.render())
}

/// The 404 page: `what` says what was not found.
pub(crate) fn not_found(console: &Console, who: Option<Who>, what: &str) -> Response {
    not_found_with(console, StatusCode::NOT_FOUND, who, what)
}

/// A failure of the server's own (the store, a bug): logged with `error`, and a 500 that
/// names what could not be read and nothing more.
pub(crate) fn failed(what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %error, "console: cannot {what}");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot {what} now; see the server's log")).into_response()
}

/// An instant as pages show it: `2026-12-06 17:12 UTC`.
pub(crate) fn utc(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long ago `at` was, in the largest whole unit: `just now`, `5 min ago`, `3 h ago`,
/// `12 d ago` (`in 2 h` for the future).
pub(crate) fn age(at: Timestamp, now: Timestamp) -> String {
    let seconds = now.duration_since(at).as_secs();
    let (ahead, seconds) = if seconds < 0 { (true, -seconds) } else { (false, seconds) };
    let span = match seconds {
        0..60 => return "just now".to_owned(),
        60..3_600 => format!("{} min", seconds / 60),
        3_600..86_400 => format!("{} h", seconds / 3_600),
        _ => format!("{} d", seconds / 86_400),
    };
    if ahead { format!("in {span}") } else { format!("{span} ago") }
}

/// A span of seconds in the largest units that keep it readable: `42s`, `3m 20s`, `5h 12m`,
/// `2d 4h`.
pub(crate) fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_ages_and_spans_are_readable() {
        let now: Timestamp = "2026-12-06T17:12:09Z".parse().unwrap();
        assert_eq!(utc(now), "2026-12-06 17:12 UTC");
        assert_eq!(age(now, now), "just now");
        assert_eq!(age("2026-12-06T17:00:00Z".parse().unwrap(), now), "12 min ago");
        assert_eq!(age("2026-12-06T12:00:00Z".parse().unwrap(), now), "5 h ago");
        assert_eq!(age("2026-11-06T12:00:00Z".parse().unwrap(), now), "30 d ago");
        assert_eq!(age("2026-12-06T19:30:00Z".parse().unwrap(), now), "in 2 h");
        assert_eq!(span(42.4), "42s");
        assert_eq!(span(200.0), "3m 20s");
        assert_eq!(span(18_720.0), "5h 12m");
        assert_eq!(span(187_200.0), "2d 4h");
        assert_eq!(span(-3.0), "0s");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("theme=dark; mobius_session=mbs_abc; x=y"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("mbs_abc"));
        assert_eq!(cookie(&HeaderMap::new()), None);
        assert_eq!(query_escape("/runs?state=a b&x=<"), "%2Fruns%3Fstate%3Da%20b%26x%3D%3C");
        assert_eq!(percent_decode("%3Cscript%3E"), Some("<script>".to_owned()));
        assert_eq!(percent_decode("100%"), None, "a stray %");
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode(&query_escape("a/b#c d")), Some("a/b#c d".to_owned()));
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
    }
}
