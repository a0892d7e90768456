//! The console: pages for people in a browser, beside the HTTP API and over the same
//! application layer ([`mobius_app::App`]). Server-rendered HTML from askama templates compiled
//! into the binary (every value escaped), a stylesheet and two small scripts embedded and
//! served under their content hashes, charts drawn on the server as SVG, and no inline script
//! (the Content-Security-Policy forbids it). Reading works without JavaScript.
//!
//! Sign-in exchanges a token for a session ([`mobius_app::sessions`]): an HttpOnly,
//! SameSite=Strict cookie; every form carries the session's CSRF token, and every page and
//! action checks the session (and so its token) again. Pages call the same
//! application functions as the API's handlers: the service catalog and a service's DORA,
//! trends and value stream, runs with their job graph and live log, rollouts with promote /
//! abort / undo, SLOs with their burn-down, incidents with their post-mortem draft, and the
//! event log. ARCHITECTURE.md has the map.

mod chart;
mod events;
mod flow;
mod incidents;
mod markdown;
mod pages;
mod rollout;
mod rollouts;
mod run;
mod service;
mod services;
mod slos;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use mobius_app::App;
use sha2::{Digest, Sha256};

/// The paths the console answers; the server routes exactly these to it.
pub const PATHS: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/runs",
    "/runs/{id}",
    "/runs/{id}/log",
    "/runs/{id}/cancel",
    "/runs/{id}/rerun",
    "/assets/{file}",
    "/events",
    "/slos",
    "/slos/{service}/{slo}",
    "/incidents",
    "/incidents/{key}",
    "/incidents/{key}/acknowledge",
    "/incidents/{key}/resolve",
    "/rollouts",
    "/rollouts/{service}/{environment}",
    "/rollouts/{service}/{environment}/promote",
    "/rollouts/{service}/{environment}/abort",
    "/rollouts/{service}/{environment}/undo",
    "/services",
    "/services/{name}",
    "/services/{name}/flow",
];

/// The cookie a session travels in.
const SESSION_COOKIE: &str = "mobius_session";

/// The files pages link to, embedded: (name, extension, content type, bytes).
const ASSETS: &[(&str, &str, &str, &[u8])] = &[
    ("console", "css", "text/css; charset=utf-8", include_bytes!("../assets/console.css")),
    ("favicon", "svg", "image/svg+xml", include_bytes!("../assets/favicon.svg")),
    ("run", "js", "text/javascript; charset=utf-8", include_bytes!("../assets/run.js")),
    ("rollout", "js", "text/javascript; charset=utf-8", include_bytes!("../assets/rollout.js")),
];

/// An embedded file under its URL: `/assets/<name>.<hash>.<ext>`, so a changed file is a new
/// URL and every URL can be cached forever.
struct Asset {
    path: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// What the console's handlers share.
#[derive(Clone)]
struct Console {
    app: App,
    assets: Arc<[Asset]>,
    /// Mark the cookie `Secure` (the console is served over TLS).
    secure_cookie: bool,
    /// Pages are readable without signing in (`--public-read`); actions still need a session.
    public_read: bool,
}

/// What the console needs besides the application.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleConfig {
    /// The console is reached over HTTPS (a TLS proxy in front): the session cookie is
    /// `Secure`.
    pub secure_cookie: bool,
    /// Serve the pages to anyone without signing in (`--public-read`, as the API's reads);
    /// every action still needs a session of the right scope.
    pub public_read: bool,
}

/// The console's routes ([`PATHS`]), with their own state and security headers.
pub fn router(app: App, config: ConsoleConfig) -> Router {
    let assets = ASSETS
        .iter()
        .map(|(name, ext, content_type, bytes)| {
            let digest = hex::encode(Sha256::digest(bytes));
            Asset { path: format!("/assets/{name}.{}.{ext}", &digest[..12]), content_type, bytes }
        })
        .collect();
    let console = Console { app, assets, secure_cookie: config.secure_cookie, public_read: config.public_read };
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(run::page))
        .route("/runs/{id}/log", get(run::follow))
        .route("/runs/{id}/cancel", post(run::cancel))
        .route("/runs/{id}/rerun", post(run::rerun))
        .route("/assets/{file}", get(pages::asset))
        .route("/events", get(events::page))
        .route("/slos", get(slos::list))
        .route("/slos/{service}/{slo}", get(slos::page))
        .route("/incidents", get(incidents::list))
        .route("/incidents/{key}", get(incidents::page))
        .route("/incidents/{key}/acknowledge", post(incidents::acknowledge))
        .route("/incidents/{key}/resolve", post(incidents::resolve))
        .route("/rollouts", get(rollouts::list))
        .route("/rollouts/{service}/{environment}", get(rollout::page))
        .route("/rollouts/{service}/{environment}/promote", post(rollouts::promote))
        .route("/rollouts/{service}/{environment}/abort", post(rollouts::abort))
        .route("/rollouts/{service}/{environment}/undo", post(rollouts::undo))
        .route("/services", get(services::catalog))
        .route("/services/{name}", get(service::page))
        .route("/services/{name}/flow", get(flow::page))
        // Forms are a token or a CSRF field: nothing needs more.
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

impl Console {
    /// The URL of the embedded file `name`.
    fn asset(&self, name: &str) -> &str {
        let prefix = format!("/assets/{name}.");
        self.assets.iter().find(|a| a.path.starts_with(&prefix)).map_or("", |a| a.path.as_str())
    }
}

/// Every console response: no script but our own files, no framing, no sniffing, and no
/// referrer beyond this origin.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
