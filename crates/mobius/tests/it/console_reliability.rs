//! The console's SLO and incident pages against a real server: the sample app deployed with an
//! SLO over a week of recorded traffic, an incident opened by hand whose title is an XSS
//! attempt. The pages show what the API says, as text; acknowledging and resolving need an
//! `ingest` session and its CSRF token, and append exactly the events the CLI would.

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::browser::Browser;
use crate::console::{page, post_form, sign_in};
use crate::deploy::{Cleanup, deployed, finished, free_port, release};
use crate::runs::wait_for;
use crate::util::{ADMIN, Dir, Server, http};

/// An incident title that would run scripts if it were markup.
const XSS_TITLE: &str = "<script>alert(1)</script> checkout down <img src=x onerror=alert(2)>";

/// A service name that would run a script if it were markup.
const XSS_SERVICE: &str = "<img src=x onerror=alert(3)>";

const SLO: &str = "slos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n";

/// A server with `shop` deployed (v1, an availability SLO of 99.9% over 30 days) over six
/// days of recorded traffic — 300 bad requests of 864,000, none in the last 6 hours, so no
/// alert fires — and an incident of `shop` opened by hand with [`XSS_TITLE`]; the incident's
/// key.
fn server_with_an_slo_and_an_incident(dir: &Dir) -> (Server, String) {
    record_a_week_of_traffic(dir);
    let server = dir.serve_with_env(&[("MOBIUS_ALERT_EVERY", "1s")]);
    let path = release(dir, "v1", 0.0, free_port(), "rolling", "");
    let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
    std::fs::write(path.join("mobius.yaml"), format!("{spec}{SLO}")).unwrap();
    deployed(dir, &server, &path, "v1");
    finished(&server);
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let opened = dir.json(&[&["incident", "open", "shop", "--title", XSS_TITLE][..], &remote[..]].concat());
    let key = opened["key"].as_str().unwrap().to_owned();
    // The alerter has evaluated the SLO once: the pages have an alert state to show.
    wait_for("the SLO's alert state", || {
        api(&server, "/api/v1/alerts").as_array().filter(|a| !a.is_empty()).map(|_| ())
    });
    (server, key)
}

/// Six days of hourly traffic for `shop` in production, written before the server starts (so
/// no evaluation has cached the window yet): 6,000 requests an hour; 200 bad requests five
/// days ago under v0, 100 ten hours ago under v1.
fn record_a_week_of_traffic(dir: &Dir) {
    std::fs::create_dir_all(dir.data()).unwrap();
    let store = mobius_store::SqliteStore::open(&dir.data()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let hour = now - now.rem_euclid(3_600);
    let rows: Vec<mobius_store::SliMinute> = (1..=144)
        .map(|h| {
            let minute = hour - h * 3_600;
            let errors = match h {
                10 => 100,
                120 => 200,
                _ => 0,
            };
            mobius_store::SliMinute {
                service: "shop".into(),
                environment: "production".into(),
                version: if h > 72 { "v0" } else { "v1" }.into(),
                minute,
                requests: 6_000,
                errors,
                latency: vec![6_000],
            }
        })
        .collect();
    mobius_store::Store::add_sli(&store, &rows).unwrap();
}

fn api(server: &Server, path: &str) -> Value {
    http().get(server.url(path)).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

/// The incident `key` as `GET /api/v1/incidents` reports it.
fn incident(server: &Server, key: &str) -> Value {
    let all = api(server, "/api/v1/incidents");
    all.as_array().unwrap().iter().find(|i| i["key"] == key).cloned().unwrap_or_else(|| panic!("{key} in {all:#}"))
}

/// How many acknowledgements and resolutions the log holds.
fn changes_by_hand(server: &Server) -> usize {
    let events = api(server, "/api/v1/events?limit=1000");
    let types = ["dev.cdeventsx.mobius-incident.acknowledged.0.1.0", "dev.cdevents.incident.resolved.0.3.0"];
    events.as_array().unwrap().iter().filter(|e| types.iter().any(|t| e["type"] == *t)).count()
}

/// A token of `scope` named `name`, and a console session signed in with it (its cookie).
fn session(dir: &Dir, server: &Server, name: &str, scope: &str) -> (String, String) {
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let token = dir.json(&[&["token", "create", "--name", name, "--scope", scope][..], &remote[..]].concat());
    let token = token["token"].as_str().unwrap().to_owned();
    let signed = sign_in(server, &token, "/");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().strip_prefix("mobius_session=").unwrap().to_owned();
    (token, cookie)
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned()
}

/// `key` for a URL path segment, as the console escapes it.
fn escaped(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn slo_and_incident_pages_show_the_apis_figures_and_guard_every_change() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let (server, key) = server_with_an_slo_and_an_incident(&dir);
    let incident_path = format!("/incidents/{}", escaped(&key));

    // Signed out: to sign-in, remembering the page.
    for path in ["/slos?service=shop", incident_path.as_str()] {
        let response = page(&server, path, None);
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], format!("/login?next={}", escaped(path)));
    }

    let (_, reader) = session(&dir, &server, "rita", "read");
    // The list: the SLO with the API's budget (fraction and time) and alert state.
    let slos = api(&server, "/api/v1/slos");
    let status = &slos[0];
    let remaining = status["budget"]["remaining"].as_f64().unwrap();
    assert!((remaining - (1.0 - 300.0 / 864_000.0 / 0.001)).abs() < 1e-9, "{status:#}");
    let alerts = api(&server, "/api/v1/alerts");
    assert!(alerts[0]["firing"].is_null() && alerts[0]["pending"].is_null(), "{alerts:#}");
    let list = page(&server, "/slos?service=shop", Some(&reader)).text().unwrap();
    assert!(list.contains("href=\"/slos/shop/availability\""), "{list}");
    assert!(list.contains(&format!("{:.1}% · ", remaining * 100.0)), "{list}");
    assert!(list.contains("left of 43m 12s (30d)"), "{list}");
    assert!(list.contains("<span class=\"state state-ok\">ok</span>"), "{list}");
    let none = page(&server, "/slos?service=cart", Some(&reader)).text().unwrap();
    assert!(none.contains("No SLOs for this service"), "{none}");

    // One SLO: the burn-down drawn, the breakdown exactly as the API's explanation.
    let slo = page(&server, "/slos/shop/availability", Some(&reader));
    assert_eq!(slo.status(), StatusCode::OK);
    let slo = slo.text().unwrap();
    let explained = api(&server, "/api/v1/slos/explain?service=shop&slo=availability");
    assert_eq!(slo.matches("<svg class=\"chart\"").count(), 2, "the burn-down and the last day: {slo}");
    let last_day =
        status["error_ratios"].as_array().unwrap().iter().find(|w| w[0] == "1d").unwrap()[1].as_f64().unwrap();
    assert!(last_day > 0.0 && slo.contains(&format!("over the whole day {:.3}%", last_day * 100.0)), "{slo}");
    assert!(slo.contains(&format!("{:.0} bad requests", explained["allowed_bad"].as_f64().unwrap())), "{slo}");
    for day in explained["days"].as_array().unwrap() {
        let row = format!(
            "<th scope=\"row\">{}</th><td>{}</td><td>{}</td>",
            day["name"].as_str().unwrap(),
            day["requests"],
            day["bad"]
        );
        assert!(slo.contains(&row), "{row} in {slo}");
    }
    assert_eq!(explained["versions"][0]["name"], "v0", "{explained:#}");
    assert!(slo.contains("<th scope=\"row\">v0</th><td>432000</td><td>200</td>"), "{slo}");
    assert!(slo.contains(&format!("href=\"{incident_path}\"")), "the incident links to its page: {slo}");
    assert!(slo.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "the title as text: {slo}");
    assert!(!slo.contains("<script>alert(1)") && !slo.contains("<img src=x"), "{slo}");
    let missing = page(&server, "/slos/shop/latency", Some(&reader));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().unwrap().contains("shop has no SLO `latency`."));

    // The incidents: open first, with the deployment it is attributed to; unknown ones 404.
    let incidents = page(&server, "/incidents?open=true&service=shop", Some(&reader)).text().unwrap();
    assert!(incidents.contains(&format!("href=\"{incident_path}\"")), "{incidents}");
    assert!(incidents.contains("<code>upload@sha256:"), "the attributed deployment's artifact: {incidents}");
    assert!(incidents.contains("state-triggered"), "{incidents}");
    let bad_filter = page(&server, "/incidents?open=maybe", Some(&reader));
    assert_eq!(bad_filter.status(), StatusCode::BAD_REQUEST);
    let unknown = page(&server, "/incidents/inc-0", Some(&reader));
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().unwrap().contains("No incident `inc-0`."));

    // A read session sees no buttons, and its POST is refused.
    let shown = page(&server, &incident_path, Some(&reader)).text().unwrap();
    assert!(!shown.contains("/acknowledge\"") && !shown.contains("/resolve\""), "{shown}");
    let refused =
        post_form(&server, &format!("{incident_path}/acknowledge"), Some(&reader), &[("csrf", &csrf_of(&shown))]);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().unwrap().contains("needs `ingest`"));

    // An ingest session without the form's CSRF token changes nothing.
    let before = changes_by_hand(&server);
    let (_, ingest) = session(&dir, &server, "ivan", "ingest");
    let shown = page(&server, &incident_path, Some(&ingest)).text().unwrap();
    assert!(shown.contains(&format!("action=\"{incident_path}/acknowledge\"")), "{shown}");
    for csrf in [&[][..], &[("csrf", "forged")][..]] {
        let forged = post_form(&server, &format!("{incident_path}/resolve"), Some(&ingest), csrf);
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(changes_by_hand(&server), before, "nothing appended");
    assert!(incident(&server, &key)["resolved"].is_null());

    // With it: resolved, and once resolved a second resolve is a conflict that appends nothing.
    let csrf = csrf_of(&shown);
    let done = post_form(&server, &format!("{incident_path}/resolve"), Some(&ingest), &[("csrf", &csrf)]);
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[LOCATION], incident_path.as_str());
    assert!(!incident(&server, &key)["resolved"].is_null());
    let after = changes_by_hand(&server);
    assert_eq!(after, before + 1);
    let again = post_form(&server, &format!("{incident_path}/resolve"), Some(&ingest), &[("csrf", &csrf)]);
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let again = post_form(&server, &format!("{incident_path}/acknowledge"), Some(&ingest), &[("csrf", &csrf)]);
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(changes_by_hand(&server), after, "nothing appended");
    let unknown = post_form(&server, "/incidents/inc-0/resolve", Some(&ingest), &[("csrf", &csrf)]);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[test]
fn in_chromium_incidents_are_text_and_an_ingest_session_acknowledges_then_resolves() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let (server, key) = server_with_an_slo_and_an_incident(&dir);
    // An incident of a service whose very name is markup.
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let out = dir.run(&[&["incident", "open", XSS_SERVICE, "--title", "<b>bold</b> claims"][..], &remote[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (reader, _) = session(&dir, &server, "rita", "read");
    let (ingest, _) = session(&dir, &server, "ivan", "ingest");
    let no_alert = |browser: &Browser| {
        let alert = browser.session_call("GET", "/alert/text", None);
        assert_eq!(alert["error"], "no such alert", "{alert}");
        assert!(browser.elements("script").is_empty(), "no script element");
        assert!(browser.elements("main img").is_empty(), "no injected image");
        assert_eq!(browser.console_errors(), Vec::<String>::new(), "the page loaded without errors");
    };

    let browser = Browser::start();
    // A read session: the SLOs, one SLO with its charts, the incident without buttons.
    browser.sign_in(&server, &reader, "/slos");
    assert_eq!(browser.text("tbody tr th a"), "availability");
    assert_eq!(browser.text("tbody tr .state"), "ok");
    no_alert(&browser);
    browser.screenshot("slos.png");
    browser.click("tbody tr th a");
    browser.wait_for_url("/slos/shop/availability");
    assert_eq!(browser.elements("svg.chart").len(), 2, "the last day's error ratio and the burn-down");
    no_alert(&browser);
    browser.screenshot("slo.png");
    browser.go(&server.url("/incidents"));
    let titles: Vec<String> = browser
        .elements("tbody tr th a")
        .iter()
        .map(|id| browser.session_call("GET", &format!("/element/{id}/text"), None).as_str().unwrap().to_owned())
        .collect();
    assert!(titles.contains(&XSS_TITLE.to_owned()) && titles.contains(&"<b>bold</b> claims".to_owned()), "{titles:?}");
    assert!(browser.text("tbody").contains(XSS_SERVICE), "the service's name is text");
    assert!(browser.elements("tbody b").is_empty(), "no element injected");
    no_alert(&browser);
    browser.screenshot("incidents.png");
    let path = format!("/incidents/{}", escaped(&key));
    browser.go(&server.url(&path));
    assert_eq!(browser.text("h1 .title"), XSS_TITLE);
    assert!(browser.text("article.draft h1").contains(XSS_TITLE), "the draft's title is text");
    assert!(browser.elements("form[action$=acknowledge], form[action$=resolve]").is_empty(), "no buttons");
    no_alert(&browser);
    browser.click("form.signout button[type=submit]");
    browser.wait_for_url("/login");

    // An ingest session acknowledges, then resolves, with the buttons.
    browser.sign_in(&server, &ingest, &path);
    assert_eq!(browser.text("h1 .state"), "triggered");
    no_alert(&browser);
    browser.screenshot("incident.png");
    browser.click("form[action$=acknowledge] button");
    wait_for("the incident acknowledged", || browser.try_text("h1 .state").filter(|s| s == "acknowledged"));
    let acknowledged = incident(&server, &key);
    assert!(!acknowledged["acknowledged"].is_null() && acknowledged["resolved"].is_null(), "{acknowledged:#}");
    assert!(browser.elements("form[action$=acknowledge]").is_empty(), "acknowledged once");
    browser.click("form[action$=resolve] button");
    wait_for("the incident resolved", || browser.try_text("h1 .state").filter(|s| s == "resolved"));
    assert!(!incident(&server, &key)["resolved"].is_null());
    assert!(browser.elements("form[action$=resolve]").is_empty(), "nothing left to do");
    assert!(browser.text("table.timeline").contains("incident resolved"), "{}", browser.text("table.timeline"));
    no_alert(&browser);
}

/// Answers every request as a Prometheus whose every query finds nothing: enough for a
/// release's Prometheus SLI to be accepted and evaluated.
fn empty_prometheus() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(format!("{head}{body}").as_bytes());
        }
    });
    port
}

#[test]
fn an_slo_read_from_prometheus_says_its_requests_are_not_in_the_store() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let url = format!("http://127.0.0.1:{}", empty_prometheus());
    let path = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
    let slo = format!(
        "slos:\n  - name: api\n    objective: 99.5\n    window: 7d\n    sli:\n      prometheus:\n        url: {url}\n        error_query: 'sum(increase(errors[{{{{window}}}}]))'\n        total_query: 'sum(increase(requests[{{{{window}}}}]))'\n"
    );
    std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
    deployed(&dir, &server, &path, "v1");
    finished(&server);
    let (_, reader) = session(&dir, &server, "rita", "read");
    let explained =
        http().get(server.url("/api/v1/slos/explain?service=shop&slo=api")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(explained.status(), StatusCode::UNPROCESSABLE_ENTITY, "the API cannot explain it either");
    let shown = page(&server, "/slos/shop/api", Some(&reader));
    assert_eq!(shown.status(), StatusCode::OK);
    let html = shown.text().unwrap();
    assert!(html.contains("This SLO reads Prometheus"), "{html}");
    assert!(!html.contains("Budget burn-down") && !html.contains("By version"), "{html}");
    assert!(html.contains("99.5% over 7d"), "{html}");
}
