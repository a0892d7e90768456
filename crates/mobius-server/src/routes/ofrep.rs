//! OFREP over HTTP (the OpenFeature Remote Evaluation Protocol; [`answer`] makes the
//! answers):
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag, for server-side providers.
//! - `POST /ofrep/v1/evaluate/flags`: every flag, for client-side providers, with an `ETag`
//!   hashed from the answer and 304 for an `If-None-Match` naming it.
//! - `GET /ofrep/v1/events`: Server-Sent Events, `{"type":"refetchEvaluation","etag":…}` each
//!   time the set changes (OFREP's change notification; the bulk answer points to it).
//!
//! **Who may ask, and for which set.** The token comes as `Authorization: Bearer` or
//! `X-API-Key`. A `flags` token is a client key bound to one set: it evaluates that set and
//! nothing else, and cannot read anything from the rest of the API. Any other token that may
//! read picks the set with `X-Mobius-Flag-Set`; with `--public-read`, so may a caller without
//! a token. A job's run token, an `agent` or a `metrics` token is refused.
//!
//! **Limits.** Each key (the token, or the address without one) has its own rate (429 with
//! `Retry-After` past it); request bodies past [`MAX_BODY`] are 413. Browsers reach these
//! endpoints from the origins `ofrep_cors_origins` allows (CORS, preflight included).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use mobius_store::{TokenRecord, TokenScope};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::{etag, rate};

pub mod answer;
pub mod keys;

use answer as ofrep;

/// The largest request body read (a context); larger ones are 413.
pub const MAX_BODY: usize = 64 * 1024;

/// The header a token that is not bound to a set names its set with.
pub const SET_HEADER: &str = "x-mobius-flag-set";

/// Why a caller gets no evaluation, as OFREP answers it.
struct Refusal {
    status: StatusCode,
    details: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, details: impl Into<String>) -> Refusal {
        Refusal { status, details: details.into(), retry_after: None }
    }

    fn into_response(self, cors: &Cors) -> Response {
        let mut response = (self.status, axum::Json(json!({ "errorDetails": self.details }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        cors.apply(response.headers_mut());
        response
    }
}

/// The CORS headers an answer carries for the request's `Origin`, when it is allowed.
struct Cors(Option<HeaderValue>);

impl Cors {
    fn of(state: &AppState, headers: &HeaderMap) -> Cors {
        let Some(origin) = headers.get(header::ORIGIN) else { return Cors(None) };
        let allowed = &state.config.ofrep_cors_origins;
        let ok = allowed.iter().any(|a| a == "*" || origin.to_str().is_ok_and(|o| o == a));
        Cors(ok.then(|| origin.clone()))
    }

    fn apply(&self, headers: &mut HeaderMap) {
        if let Some(origin) = &self.0 {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag, Retry-After"));
        }
    }
}

/// Who asks, for which set: the set's name and the key its rate is counted under.
struct Asker {
    set: String,
    key: String,
}

/// The token of a request: `Authorization: Bearer` or `X-API-Key`.
fn secret_of(headers: &HeaderMap) -> Result<Option<String>, Refusal> {
    let unauthorized = |why: &str| Refusal::new(StatusCode::UNAUTHORIZED, why);
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?;
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        return Ok(Some(secret.to_owned()));
    }
    match headers.get("x-api-key") {
        None => Ok(None),
        Some(value) => {
            let value = value.to_str().map_err(|_| unauthorized("the X-API-Key header is not text"))?.trim();
            if value.is_empty() {
                Err(unauthorized("the X-API-Key header is empty"))
            } else {
                Ok(Some(value.to_owned()))
            }
        }
    }
}

/// Authenticates the caller, decides its set and takes one request from its rate.
async fn asker(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Asker, Refusal> {
    let named = headers.get(SET_HEADER).map(|v| v.to_str().map(str::to_owned));
    let named =
        named.transpose().map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "X-Mobius-Flag-Set is not text"))?;
    let (set, key) = match secret_of(headers)? {
        None if state.config.public_read => {
            let address = peer.map_or_else(|| "unknown".to_owned(), |Extension(ConnectInfo(a))| a.ip().to_string());
            (named, format!("addr:{address}"))
        }
        None => {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "OFREP needs a token: `Authorization: Bearer <token>` or `X-API-Key: <token>`",
            ));
        }
        Some(secret) => {
            let token = authenticated(state, secret).await?;
            (set_of(&token, named)?, format!("token:{}", token.id))
        }
    };
    let set = set
        .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "name the flag set with the X-Mobius-Flag-Set header"))?;
    if let Err(wait) = state.ofrep_rate.take(&key, Instant::now()) {
        let mut refusal = Refusal::new(StatusCode::TOO_MANY_REQUESTS, "too many evaluations for this key; slow down");
        refusal.retry_after = Some(rate::retry_after(wait));
        return Err(refusal);
    }
    Ok(Asker { set, key })
}

/// The token `secret` is, from the recently seen ones or the store.
async fn authenticated(state: &AppState, secret: String) -> Result<TokenRecord, Refusal> {
    if let Some(token) = state.ofrep_keys.get(&secret, Instant::now()) {
        return Ok(token);
    }
    let store = state.app.store.clone();
    let asked = secret.clone();
    let token = mobius_log::blocking::spawn(move || mobius_app::tokens::authenticate(store.as_ref(), &asked))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot look an OFREP caller's token up");
            Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable; try again")
        })?
        .ok_or_else(|| Refusal::new(StatusCode::UNAUTHORIZED, "unknown token"))?;
    state.ofrep_keys.put(&secret, token.clone(), Instant::now());
    Ok(token)
}

/// The set a token evaluates: its own for a `flags` token (a header naming another is
/// refused), the header's for a token that may read.
fn set_of(token: &TokenRecord, named: Option<String>) -> Result<Option<String>, Refusal> {
    let forbidden = |why: String| Refusal::new(StatusCode::FORBIDDEN, why);
    if token.restriction.is_some() {
        return Err(forbidden("a job's run token cannot evaluate flags".into()));
    }
    match token.scope {
        TokenScope::Flags => {
            let own = token.flag_set.clone().ok_or_else(|| forbidden("this flags token names no set".into()))?;
            match named {
                Some(other) if other != own => Err(forbidden(format!("this key evaluates flag set `{own}` only"))),
                _ => Ok(Some(own)),
            }
        }
        scope if scope.allows(TokenScope::Read) => Ok(named),
        scope => Err(forbidden(format!("a `{}` token cannot evaluate flags", scope.as_str()))),
    }
}

fn json_response(status: u16, body: &Value, cors: &Cors) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    cors.apply(response.headers_mut());
    response
}

fn unix_now(state: &AppState) -> i64 {
    state.app.config().clock.now().as_second()
}

/// The caller admitted (its token, set and rate), then its body read — only then, and at most
/// [`MAX_BODY`] of it; the refusal's answer otherwise.
async fn admitted(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
    cors: &Cors,
) -> Result<(Asker, Bytes), Response> {
    let asker = asker(state, headers, peer).await.map_err(|refusal| refusal.into_response(cors))?;
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        let why = format!("the request body is over {MAX_BODY} bytes, or was not received whole");
        Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, why).into_response(cors)
    })?;
    Ok((asker, body))
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn evaluate_one(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cors = Cors::of(&state, &headers);
    let (asker, body) = match admitted(&state, &headers, peer, body, &cors).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let Some(loaded) = state.app.flags.current(&asker.set) else {
        let details = format!("flag `{key}` is not found: there is no flag set `{}`", asker.set);
        return json_response(
            404,
            &json!({ "key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details }),
            &cors,
        );
    };
    let (status, answer) = match ofrep::context_of(&body) {
        Ok(context) => ofrep::one(&loaded.set, &key, &context, unix_now(&state)),
        Err(why) => ofrep::unusable(Some(&key), &why),
    };
    tracing::trace!(key = %asker.key, set = %asker.set, flag = %key, status, "OFREP evaluation");
    json_response(status, &answer, &cors)
}

/// `POST /ofrep/v1/evaluate/flags`.
pub async fn evaluate_all(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cors = Cors::of(&state, &headers);
    let (asker, body) = match admitted(&state, &headers, peer, body, &cors).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let Some(loaded) = state.app.flags.current(&asker.set) else {
        return Refusal::new(StatusCode::NOT_FOUND, format!("there is no flag set `{}`", asker.set))
            .into_response(&cors);
    };
    let context = match ofrep::context_of(&body) {
        Ok(context) => context,
        Err(why) => {
            let (status, answer) = ofrep::unusable(None, &why);
            return json_response(status, &answer, &cors);
        }
    };
    let events = format!("/ofrep/v1/events?set={}", encode(&asker.set));
    let answer = ofrep::bulk(&loaded.set, &context, unix_now(&state), Some(&events));
    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
    let tag = etag::of_body(&bytes);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|asked| etag::none_match(asked, &tag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    cors.apply(response.headers_mut());
    response
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    set: Option<String>,
}

/// `GET /ofrep/v1/events[?set=NAME]`: a `refetchEvaluation` each time the set changes (its
/// version as the `etag`), and a comment every 15 s so proxies keep the stream open.
pub async fn events(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(query): Query<EventsQuery>,
    mut headers: HeaderMap,
) -> Response {
    if let Some(set) = query.set.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.entry(SET_HEADER).or_insert(set);
    }
    let cors = Cors::of(&state, &headers);
    let asker = match asker(&state, &headers, peer).await {
        Ok(asker) => asker,
        Err(refusal) => return refusal.into_response(&cors),
    };
    let changes = state.app.flags.subscribe();
    let set = asker.set;
    let stream = stream::unfold(changes, move |mut changes| {
        let set = set.clone();
        async move {
            loop {
                match changes.recv().await {
                    Ok(changed) if changed.set == set => {
                        let data = json!({ "type": "refetchEvaluation", "etag": changed.version.to_string() });
                        return Some((
                            Ok::<_, std::convert::Infallible>(Event::default().data(data.to_string())),
                            changes,
                        ));
                    }
                    Ok(_) => {}
                    // Changes were missed: a refetch covers them all.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let data = json!({ "type": "refetchEvaluation" });
                        return Some((Ok(Event::default().data(data.to_string())), changes));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(15));
    let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
    cors.apply(response.headers_mut());
    response
}

/// `OPTIONS /ofrep/v1/…`: the CORS preflight, answered for allowed origins only.
pub async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let cors = Cors::of(&state, &headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if cors.0.is_some() {
        let h = response.headers_mut();
        cors.apply(h);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, OPTIONS"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, X-API-Key, Content-Type, If-None-Match, X-Mobius-Flag-Set"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

/// A set's name in a query string (names are letters, digits, `.`, `-`, `_`: nothing to
/// escape, but a name is never trusted to be one).
fn encode(name: &str) -> String {
    form_urlencoded::byte_serialize(name.as_bytes()).collect()
}
