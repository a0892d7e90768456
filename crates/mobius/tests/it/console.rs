//! The console over HTTP (issue 13's first pages): sign-in exchanges a token for an HttpOnly,
//! SameSite=Strict session cookie; pages send a person without one to sign-in and back;
//! sign-out needs the session's CSRF token; a revoked token ends its sessions; every value is
//! escaped and no page carries an inline script.

use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};

use crate::runs::{commit, finished, get, repository, start, wait_for};
use crate::util::{ADMIN, Dir, Server};

/// A workflow whose name is an XSS attempt: the console must show it as text.
pub(crate) const XSS_WORKFLOW: &str = "name: \"<script>alert(1)</script>\"\non: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo '<img src=x onerror=alert(2)>'\n";

pub(crate) fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `POST path` with an HTML form's body and the session cookie `cookie`.
pub(crate) fn post_form(
    server: &Server,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::blocking::Response {
    post_form_with(server, path, cookie.map(|c| format!("mobius_session={c}")), fields)
}

/// `POST path` with an HTML form's body and the `Cookie` header `cookies`.
pub(crate) fn post_form_with(
    server: &Server,
    path: &str,
    cookies: Option<String>,
    fields: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let escape = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
    let request = client()
        .post(server.url(path))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.join("&"));
    let request = match cookies {
        Some(cookies) => request.header(COOKIE, cookies),
        None => request,
    };
    request.send().unwrap()
}

/// The sign-in form's CSRF token and the cookie that carries it, from `GET /login`.
pub(crate) fn login_form(server: &Server) -> (String, String) {
    let form = page(server, "/login", None);
    let cookie = form.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = form.text().unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    (csrf, cookie)
}

/// `POST /login` with `token`, going to `next`, as the sign-in form does.
pub(crate) fn sign_in(server: &Server, token: &str, next: &str) -> reqwest::blocking::Response {
    let (csrf, cookie) = login_form(server);
    post_form_with(server, "/login", Some(cookie), &[("token", token), ("next", next), ("csrf", &csrf)])
}

pub(crate) fn page(server: &Server, path: &str, cookie: Option<&str>) -> reqwest::blocking::Response {
    let request = client().get(server.url(path));
    let request = match cookie {
        Some(cookie) => request.header(COOKIE, format!("mobius_session={cookie}")),
        None => request,
    };
    request.send().unwrap()
}

/// A server whose one run (of [`XSS_WORKFLOW`]) has ended, and that run.
pub(crate) fn server_with_an_ended_run(dir: &Dir) -> (Server, serde_json::Value) {
    let repo = repository(dir, &[("README.md", "app\n")]);
    let server = start(dir, &repo);
    commit(&repo, &[(".github/workflows/ci.yml", XSS_WORKFLOW)], "ci");
    let run = wait_for("a run", || get(&server, "/api/v1/runs").as_array().and_then(|r| r.first().cloned()));
    finished(&server, run["id"].as_i64().unwrap());
    (server, run)
}

#[test]
fn sign_in_pages_and_sign_out_with_a_session_as_strong_as_its_token() {
    let dir = Dir::new();
    let (server, run) = server_with_an_ended_run(&dir);
    let token = dir.json(&[
        "token",
        "create",
        "--name",
        "alice",
        "--scope",
        "read",
        "--server",
        &server.base,
        "--token",
        ADMIN,
    ]);
    let token = token["token"].as_str().unwrap().to_owned();

    // Without a session: to sign-in, remembering the page; the form says nothing of tokens.
    let response = page(&server, "/runs?state=success", None);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=%2Fruns%3Fstate%3Dsuccess");
    let form = page(&server, "/login?next=/runs", None);
    assert_eq!(form.status(), StatusCode::OK);
    let csp = form.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = form.text().unwrap();
    assert!(html.contains("name=\"token\"") && html.contains("value=\"/runs\""), "{html}");
    assert!(!html.contains("<script"), "no inline script: {html}");

    // A sign-in posted from elsewhere (no form cookie, or another form's token) signs nobody in.
    let forged = post_form(&server, "/login", None, &[("token", token.as_str()), ("next", "/runs"), ("csrf", "x")]);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(!forged.headers().get_all(SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("mobius_session=")));
    let (_, cookie) = login_form(&server);
    let forged =
        post_form_with(&server, "/login", Some(cookie), &[("token", token.as_str()), ("csrf", "not-this-form")]);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // A wrong token: 401, the form again, no session cookie.
    let refused = sign_in(&server, "mbx_000000000000_nope", "/runs");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(!refused.headers().get_all(SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("mobius_session=")));
    assert!(refused.text().unwrap().contains("That token is not valid"));
    // Sign-in never sends a person to another site.
    let elsewhere = sign_in(&server, &token, "https://evil.example/");
    assert_eq!(elsewhere.headers()[LOCATION], "/");

    let signed = sign_in(&server, &token, "/runs");
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed.headers()[LOCATION], "/runs");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    let cookie = set.split(';').next().unwrap().strip_prefix("mobius_session=").unwrap().to_owned();
    assert!(!set.contains(&token), "the cookie is not the token");

    // The runs page: the run, its workflow's name as text, the signed-in name and scope.
    let runs = page(&server, "/runs", Some(&cookie));
    assert_eq!(runs.status(), StatusCode::OK);
    let html = runs.text().unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || html.contains("&#60;script&#62;"), "{html}");
    assert!(!html.contains("<script>alert(1)</script>"), "escaped: {html}");
    assert!(html.contains("alice") && html.contains("(read)") && html.contains("acme/app"), "{html}");
    let filtered = page(&server, "/runs?state=failure", Some(&cookie)).text().unwrap();
    assert!(filtered.contains("No runs match these filters"), "{filtered}");
    let unknown = page(&server, "/runs?state=bogus", Some(&cookie));
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(unknown.text().unwrap().contains("No run state `bogus`"));

    // A run's page: its jobs and steps, its log as text; a read token gets no buttons.
    let id = run["id"].as_i64().unwrap();
    let shown = page(&server, &format!("/runs/{id}"), Some(&cookie));
    assert_eq!(shown.status(), StatusCode::OK);
    let run_html = shown.text().unwrap();
    assert!(run_html.contains("&lt;img src=x onerror=alert(2)&gt;") || run_html.contains("&#60;img"), "{run_html}");
    assert!(!run_html.contains("<img src=x"), "the log line is escaped: {run_html}");
    assert!(run_html.contains("state-success") && !run_html.contains("Re-run"), "{run_html}");
    let missing = page(&server, "/runs/999", Some(&cookie));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().unwrap().contains("No run 999."));
    let csrf_of =
        |html: &str| html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let refused = post_form(&server, &format!("/runs/{id}/rerun"), Some(&cookie), &[("csrf", &csrf_of(&run_html))]);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "a read token cannot re-run");
    assert!(refused.text().unwrap().contains("needs `run`"));

    // A run token gets Re-run, which needs the session's CSRF token.
    let runner =
        dir.json(&["token", "create", "--name", "carol", "--scope", "run", "--server", &server.base, "--token", ADMIN]);
    let signed = sign_in(&server, runner["token"].as_str().unwrap(), "/");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let carol = set.split(';').next().unwrap().strip_prefix("mobius_session=").unwrap().to_owned();
    let run_html = page(&server, &format!("/runs/{id}"), Some(&carol)).text().unwrap();
    assert!(run_html.contains("Re-run"), "{run_html}");
    let forged = post_form(&server, &format!("/runs/{id}/rerun"), Some(&carol), &[("csrf", "forged")]);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(get(&server, "/api/v1/runs").as_array().unwrap().len(), 1, "nothing was re-run");
    let rerun = post_form(&server, &format!("/runs/{id}/rerun"), Some(&carol), &[("csrf", &csrf_of(&run_html))]);
    assert_eq!(rerun.status(), StatusCode::SEE_OTHER);
    let again = rerun.headers()[LOCATION].to_str().unwrap().to_owned();
    let runs_now = get(&server, "/api/v1/runs");
    let newest = runs_now.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).max().unwrap();
    assert_eq!(again, format!("/runs/{newest}"));
    assert_eq!(finished(&server, newest)["rerun_of"], id);

    // The stylesheet is under its content hash, cacheable for good; other assets do not exist.
    let css = html.split("href=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    assert!(css.starts_with("/assets/console.") && css.ends_with(".css"), "{css}");
    let sheet = page(&server, &css, None);
    assert_eq!(sheet.status(), StatusCode::OK);
    assert_eq!(sheet.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(page(&server, "/assets/console.css", None).status(), StatusCode::NOT_FOUND);

    // Sign-out needs the session's CSRF token: without it, 403 and the session lives on.
    let forged = post_form(&server, "/logout", Some(&cookie), &[("csrf", "forged")]);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(page(&server, "/runs", Some(&cookie)).status(), StatusCode::OK);
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let out = post_form(&server, "/logout", Some(&cookie), &[("csrf", csrf.as_str())]);
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(page(&server, "/runs", Some(&cookie)).status(), StatusCode::SEE_OTHER, "signed out");

    // Revoking the token ends the sessions opened with it.
    let signed = sign_in(&server, &token, "/runs");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().strip_prefix("mobius_session=").unwrap().to_owned();
    assert_eq!(page(&server, "/runs", Some(&cookie)).status(), StatusCode::OK);
    let listed = dir.json(&["token", "list", "--server", &server.base, "--token", ADMIN]);
    let id =
        listed.as_array().unwrap().iter().find(|t| t["name"] == "alice").unwrap()["id"].as_str().unwrap().to_owned();
    let out = dir.run(&["token", "revoke", &id, "--server", &server.base, "--token", ADMIN]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(page(&server, "/runs", Some(&cookie)).status(), StatusCode::SEE_OTHER, "the token was revoked");
}

/// Posts `events` (CDEvents) to the log with the admin token.
fn post_events(server: &Server, events: &[serde_json::Value]) {
    for event in events {
        let response = client()
            .post(server.url("/api/v1/events"))
            .bearer_auth(ADMIN)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event.to_string())
            .send()
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().unwrap());
    }
}

#[test]
fn the_events_page_reads_the_log_newest_first_filtered_and_escaped_and_public_read_opens_only_reading() {
    let dir = Dir::new();
    let server = dir.serve(&["--public-read"]);
    let xss = "<script>alert(1)</script>";
    post_events(
        &server,
        &[
            crate::util::deployed("e1", "shop", "production", "2026-11-01T10:00:00Z"),
            crate::util::deployed("e2", "cart", "production", "2026-11-02T10:00:00Z"),
            crate::util::deployed("e3", xss, "production", "2026-11-03T10:00:00Z"),
        ],
    );

    // Under --public-read a page needs no session; its header offers sign-in, not sign-out.
    let response = page(&server, "/events", None);
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().unwrap();
    assert!(!html.contains("Sign out"), "{html}");
    let order: Vec<usize> =
        ["e3", "e2", "e1"].iter().map(|id| html.find(&format!("<code>{id}</code>")).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first: {order:?}");
    // The subject is text; the JSON behind each event is there, escaped too.
    assert!(
        html.contains("<strong>&#60;script&#62;alert(1)&#60;/script&#62;</strong>") && !html.contains(xss),
        "{html}"
    );
    assert!(html.contains("&#34;specversion&#34;: &#34;0.5.1&#34;"), "pretty JSON: {html}");

    // The same filters as the API's, answering the same events.
    let html = page(&server, "/events?subject=sho", None).text().unwrap();
    assert!(html.contains("<code>e1</code>") && !html.contains("<code>e2</code>"), "{html}");
    let api: serde_json::Value =
        client().get(server.url("/api/v1/events?order=newest&subject=sho")).send().unwrap().json().unwrap();
    assert_eq!(api.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(), ["e1"]);
    let html = page(&server, "/events?from=2026-11-02&to=2026-11-03", None).text().unwrap();
    assert!(html.contains("<code>e2</code>") && !html.contains("<code>e1</code>"), "{html}");
    let html = page(&server, "/events?type=dev.cdevents.service.deployed.0.2.0", None).text().unwrap();
    assert!(html.contains("No events match these filters"), "{html}");
    let bad = page(&server, "/events?from=yesterday", None);
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().unwrap().contains("`from`: `yesterday` is not a timestamp"));

    // Reading is public; acting is not: a run action without a session goes to sign-in.
    let action = post_form(&server, "/runs/1/cancel", None, &[("csrf", "")]);
    assert_eq!(action.status(), StatusCode::SEE_OTHER);
    assert!(action.headers()[LOCATION].to_str().unwrap().starts_with("/login?next="));
}

#[test]
fn without_public_read_the_events_page_needs_a_session() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let response = page(&server, "/events?type=x", None);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=%2Fevents%3Ftype%3Dx");
}

#[test]
fn a_run_page_draws_the_workflows_job_graph_in_stages_with_each_instance() {
    let dir = Dir::new();
    let repo = repository(&dir, &[("README.md", "app\n")]);
    let server = start(&dir, &repo);
    let workflow = "name: dag\non: push\njobs:\n  build:\n    runs-on: x\n    strategy: {matrix: {os: [linux, mac]}}\n    steps: [{run: 'true'}]\n  lint:\n    runs-on: x\n    steps: [{run: 'true'}]\n  test:\n    needs: [build, lint]\n    runs-on: x\n    steps: [{run: 'true'}]\n";
    commit(&repo, &[(".github/workflows/dag.yml", workflow)], "dag");
    let run = wait_for("a run", || get(&server, "/api/v1/runs").as_array().and_then(|r| r.first().cloned()));
    let id = run["id"].as_i64().unwrap();
    finished(&server, id);
    let token = dir.json(&["token", "create", "--scope", "read", "--server", &server.base, "--token", ADMIN]);
    let signed = sign_in(&server, token["token"].as_str().unwrap(), "/runs");
    let cookie = signed.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap();
    let cookie = cookie.strip_prefix("mobius_session=").unwrap().to_owned();

    let html = page(&server, &format!("/runs/{id}"), Some(&cookie)).text().unwrap();
    let dag = html.split("<ol class=\"dag\"").nth(1).and_then(|s| s.split("<h2>Steps</h2>").next()).unwrap();
    let stages: Vec<&str> = dag.split("<li class=\"stage\">").skip(1).collect();
    assert_eq!(stages.len(), 2, "build and lint, then test: {dag}");
    assert!(stages[0].contains("<strong>build</strong>") && stages[0].contains("<strong>lint</strong>"), "{dag}");
    assert!(stages[0].contains("build (linux)") && stages[0].contains("build (mac)"), "each instance: {dag}");
    assert!(stages[1].contains("<strong>test</strong>") && stages[1].contains("needs build, lint"), "{dag}");
    assert_eq!(dag.matches("state-success").count(), 4, "every instance with its state: {dag}");

    // The runs list filters by branch, as the API does.
    let branch = run["branch"].as_str().unwrap();
    let html = page(&server, &format!("/runs?branch={branch}"), Some(&cookie)).text().unwrap();
    assert!(html.contains(&format!("<a href=\"/runs/{id}\">{id}</a>")), "{html}");
    let html = page(&server, "/runs?branch=no-such-branch", Some(&cookie)).text().unwrap();
    assert!(html.contains("No runs match these filters"), "{html}");
    let api = get(&server, &format!("/api/v1/runs?branch={branch}"));
    assert_eq!(api.as_array().unwrap().len(), 1, "{api}");
    assert_eq!(get(&server, "/api/v1/runs?branch=no-such-branch"), serde_json::json!([]));

    // A failed run offers its failed jobs alone again, to a `run` session.
    commit(
        &repo,
        &[(
            ".github/workflows/dag.yml",
            &workflow.replace(
                "lint:\n    runs-on: x\n    steps: [{run: 'true'}]",
                "lint:\n    runs-on: x\n    steps: [{run: 'false'}]",
            ),
        )],
        "lint fails",
    );
    let failed = wait_for("the failing run", || {
        get(&server, "/api/v1/runs").as_array().and_then(|r| r.iter().find(|r| r["id"] != id).cloned())
    });
    let failed_id = failed["id"].as_i64().unwrap();
    assert_eq!(finished(&server, failed_id)["state"], "failure");
    let runner = dir.json(&["token", "create", "--scope", "run", "--server", &server.base, "--token", ADMIN]);
    let signed = sign_in(&server, runner["token"].as_str().unwrap(), "/runs");
    let run_cookie = signed.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap();
    let run_cookie = run_cookie.strip_prefix("mobius_session=").unwrap().to_owned();
    let html = page(&server, &format!("/runs/{failed_id}"), Some(&run_cookie)).text().unwrap();
    assert!(html.contains("Re-run failed jobs") && html.contains("Re-run all jobs"), "{html}");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let again = post_form(
        &server,
        &format!("/runs/{failed_id}/rerun"),
        Some(&run_cookie),
        &[("csrf", &csrf), ("failed", "true")],
    );
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let new_id: i64 = again.headers()[LOCATION].to_str().unwrap().strip_prefix("/runs/").unwrap().parse().unwrap();
    let rerun = finished(&server, new_id);
    let jobs: Vec<&str> = rerun["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert!(jobs.contains(&"lint") && !jobs.iter().any(|j| j.starts_with("build")), "only the failed job: {jobs:?}");
}

/// A CDEvents `incident.detected` of `service` in production, `n` minutes into 2026-11-01.
fn incident_detected(n: usize, service: &str) -> serde_json::Value {
    serde_json::json!({
        "context": {
            "specversion": "0.5.1",
            "id": format!("inc-{n}"),
            "source": "/monitoring",
            "type": "dev.cdevents.incident.detected.0.3.0",
            "timestamp": format!("2026-11-01T{:02}:{:02}:00Z", n / 60, n % 60),
        },
        "subject": {
            "id": format!("incident-{n}"),
            "source": "/monitoring",
            "content": { "description": format!("incident number {n}"), "environment": { "id": "production" }, "service": { "id": service } },
        },
    })
}

#[test]
fn the_incident_list_is_paged_open_first_and_its_pages_keep_their_filters() {
    let dir = Dir::new();
    let server = dir.serve(&["--public-read"]);
    let events: Vec<serde_json::Value> = (0..105).map(|n| incident_detected(n, "shop")).collect();
    let batch: String = events.iter().map(|e| format!("{e}\n")).collect();
    let response = client()
        .post(server.url("/api/v1/events"))
        .bearer_auth(ADMIN)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(batch)
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().unwrap());

    let first = page(&server, "/incidents?service=shop", None).text().unwrap();
    assert!(first.contains("1–100 of 105"), "{first}");
    assert_eq!(first.matches("incident number").count(), 100);
    assert!(first.contains("incident number 104") && !first.contains("incident number 4<"), "newest first: {first}");
    assert!(
        first.contains("href=\"/incidents?offset=100&#38;service=shop\""),
        "the next page keeps the filter: {first}"
    );
    let second = page(&server, "/incidents?offset=100&service=shop", None).text().unwrap();
    assert!(second.contains("101–105 of 105") && second.contains("incident number 0<"), "{second}");
    assert!(second.contains("href=\"/incidents?offset=0&#38;service=shop\"") && !second.contains("Older incidents"));
}

#[test]
fn a_commit_message_that_is_markup_is_text_on_the_service_page() {
    let dir = Dir::new();
    let server = dir.serve(&["--public-read"]);
    let message = "<script>alert(1)</script> <img src=x onerror=alert(2)>\n\nbody";
    let repository =
        serde_json::json!({"id": 9, "name": "xss", "full_name": "acme/xss", "html_url": "https://github.com/acme/xss"});
    let sha = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
    let commit = serde_json::json!({"id": sha, "timestamp": "2026-11-01T10:00:00Z", "message": message, "author": {"name": "a", "email": "a@example.com"}});
    let push = serde_json::json!({"webhook": "github", "event": "push", "payload": {
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": sha,
        "created": false, "deleted": false, "forced": false, "repository": repository,
        "commits": [commit], "head_commit": commit}});
    let deployed = serde_json::json!({"webhook": "github", "event": "deployment_status", "payload": {
        "action": "created",
        "deployment_status": {"id": 1, "state": "success", "environment": "production", "created_at": "2026-11-01T11:00:00Z", "updated_at": "2026-11-01T11:00:00Z"},
        "deployment": {"id": 2, "sha": sha, "ref": "main", "environment": "production", "created_at": "2026-11-01T10:50:00Z", "updated_at": "2026-11-01T11:00:00Z"},
        "repository": repository}});
    let records = format!("{push}\n{deployed}\n");
    let response = client()
        .post(server.url("/api/v1/events"))
        .bearer_auth(ADMIN)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(records)
        .send()
        .unwrap();
    let report: serde_json::Value = response.json().unwrap();
    assert_eq!(report["stored"], 2, "{report}");

    let html =
        page(&server, "/services/xss?environment=production&from=2026-10-01&to=2026-12-01", None).text().unwrap();
    assert!(
        html.contains("<td>&#60;script&#62;alert(1)&#60;/script&#62; &#60;img src=x onerror=alert(2)&#62;</td>"),
        "{html}"
    );
    assert!(!html.contains("<script>") && !html.contains("<img src=x"), "{html}");
    // The summary is the API's: the explain list carries the message's first line.
    let api = get_public(
        &server,
        "/api/v1/dora?service=xss&environment=production&from=2026-10-01&to=2026-12-01&explain=true",
    );
    assert_eq!(api["explain"]["changes"][0]["summary"], "<script>alert(1)</script> <img src=x onerror=alert(2)>");
}

fn get_public(server: &Server, path: &str) -> serde_json::Value {
    client().get(server.url(path)).send().unwrap().json().unwrap()
}

#[test]
fn an_action_is_refused_for_who_is_asking_before_anything_is_said_of_its_body() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    for path in ["/runs/1/cancel", "/rollouts/shop/production/promote", "/incidents/x/resolve"] {
        for (content_type, body) in
            [("application/json", "{\"not\": \"a form\"}"), ("text/plain", "x".repeat(20_000).as_str())]
        {
            let response = client()
                .post(server.url(path))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_owned())
                .send()
                .unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path} {content_type}: to sign-in, not 415 or 413");
            assert!(response.headers()[LOCATION].to_str().unwrap().starts_with("/login?next="));
        }
    }
}
