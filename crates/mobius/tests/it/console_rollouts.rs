//! The console's rollouts (issue 13): each environment's latest rollout, a rollout's page
//! with its plan, weights, per-version traffic and analysis as the API and the proxy report
//! them, followed live while in flight; promote, abort and undo for a `deploy` session only,
//! each carrying the session's CSRF token, through the same calls as the API's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::browser::Browser;
use crate::console::{page, post_form, sign_in};
use crate::deploy::{Cleanup, against, free_port, release};
use crate::runs::wait_for;
use crate::util::{ADMIN, Dir, Server, http};

/// A canary that stops at 50% until someone promotes it.
const PAUSED: &str = "{canary: {steps: [{set_weight: 50}, {pause: {}}]}}";
/// A canary judged by analysis (1 s intervals, 2 passing measurements) before that pause.
const ANALYSED: &str = "{canary: {steps: [{set_weight: 50}, {analysis: {}}, {pause: {}}]}}";

/// A release of `mobius sample-app` as `service` at `version`, listening on `port`.
fn release_of(dir: &Dir, service: &str, version: &str, port: u16, strategy: &str) -> PathBuf {
    let made = release(dir, version, 0.0, port, strategy, "");
    let spec = std::fs::read_to_string(made.join("mobius.yaml")).unwrap();
    let path = dir.path().join(format!("{service}-{version}"));
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("mobius.yaml"), spec.replace("service: shop", &format!("service: {service}"))).unwrap();
    path
}

fn rollout(server: &Server, service: &str) -> Value {
    let url = server.url(&format!("/api/v1/rollouts/{service}/production"));
    http().get(url).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

fn wait_for_phase(server: &Server, service: &str, phase: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = rollout(server, service);
        if now["phase"] == phase {
            return now;
        }
        assert!(std::time::Instant::now() < deadline, "{service}'s rollout never {phase}: {now:#}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn deploy(dir: &Dir, server: &Server, service: &str, version: &str, port: u16, strategy: &str) {
    let release = release_of(dir, service, version, port, strategy);
    let out = against(
        dir,
        server,
        ADMIN,
        &["deploy", service, "production", "--dir", release.to_str().unwrap(), "--as", version],
    );
    assert!(out.status.success(), "deploy {service} {version}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `service` v1 serving on `port`, then v2 rolled out as `strategy` up to its pause.
fn paused_canary(dir: &Dir, server: &Server, service: &str, port: u16, strategy: &str) -> Value {
    deploy(dir, server, service, "v1", port, strategy);
    wait_for_phase(server, service, "succeeded");
    deploy(dir, server, service, "v2", port, strategy);
    wait_for_phase(server, service, "paused")
}

/// Requests to an environment on a thread, until stopped; how many got an answer.
struct Traffic {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let (stop, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (until, count) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            let client = http();
            while !until.load(Ordering::Relaxed) {
                if client.get(format!("http://127.0.0.1:{port}/")).send().is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        Traffic { stop, answered, thread: Some(thread) }
    }

    /// Stops; how many requests were answered.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.answered.load(Ordering::Relaxed)
    }
}

/// `n` requests to an environment, one after the other.
fn requests(port: u16, n: u64) {
    for _ in 0..n {
        let status = http().get(format!("http://127.0.0.1:{port}/")).send().unwrap().status();
        assert_eq!(status, StatusCode::OK);
    }
}

fn token(dir: &Dir, server: &Server, name: &str, scope: &str) -> String {
    let created =
        dir.json(&["token", "create", "--name", name, "--scope", scope, "--server", &server.base, "--token", ADMIN]);
    created["token"].as_str().unwrap().to_owned()
}

/// A session cookie's value for `token`.
fn session(server: &Server, token: &str) -> String {
    let signed = sign_in(server, token, "/rollouts");
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().strip_prefix("mobius_session=").unwrap().to_owned()
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned()
}

/// The numbers in the cells of class `class` on a page (e.g. each version's requests).
fn cells(html: &str, class: &str) -> Vec<u64> {
    html.split(&format!("class=\"{class}\">")).skip(1).filter_map(|s| s.split('<').next()?.parse().ok()).collect()
}

#[test]
fn in_chromium_a_deploy_session_promotes_one_paused_canary_and_aborts_another() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let (shop_port, cart_port) = (free_port(), free_port());
    // shop's canary is analysed under traffic before it pauses; cart's just pauses.
    deploy(&dir, &server, "shop", "v1", shop_port, ANALYSED);
    wait_for_phase(&server, "shop", "succeeded");
    // Traffic only from the rollout's start: the page counts what the proxy counted since.
    deploy(&dir, &server, "shop", "v2", shop_port, ANALYSED);
    let traffic = Traffic::start(shop_port);
    let shop = wait_for_phase(&server, "shop", "paused");
    let sent = traffic.stop();
    let cart = paused_canary(&dir, &server, "cart", cart_port, PAUSED);
    let measurements = shop["measurements"].as_array().unwrap();
    assert!(measurements.len() >= 2, "{shop:#}");

    let browser = Browser::start();
    browser.sign_in(&server, &token(&dir, &server, "erin", "deploy"), "/rollouts");
    // Every environment's latest rollout, as the API reports it.
    let table = browser.text("table.rollouts");
    for (service, r) in [("shop", &shop), ("cart", &cart)] {
        let line = table.lines().find(|l| l.starts_with(service)).unwrap_or_else(|| panic!("{service}: {table}"));
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(line.contains("production v2 canary paused"), "{line}");
        assert!(line.contains(&format!("{}% / {}%", 100 - r["weight"].as_u64().unwrap(), r["weight"])), "{line}");
    }
    assert_eq!(browser.console_errors(), Vec::<String>::new());
    browser.screenshot("rollouts.png");

    // shop's page: its step, weights, the policy's answer, its analysis, what the proxy counted.
    browser.click("table.rollouts a[href='/rollouts/shop/production']");
    browser.wait_for_url("/rollouts/shop/production");
    assert_eq!(browser.text("h1 .state"), "paused");
    // Paused for a person: at the last step, or at the analysis when it was inconclusive.
    let step = shop["step"].as_u64().unwrap();
    assert_eq!(browser.text(".step"), format!("{} of 3", step + 1));
    let current = ["weight 50%", "analysis (2 passing)", "pause until promoted"][step as usize];
    assert!(browser.text("[aria-current=step]").ends_with(current), "{}", browser.text("[aria-current=step]"));
    assert_eq!(browser.text(".weight-new"), format!("{}%", shop["weight"]));
    assert_eq!(browser.text(".weight-stable"), format!("{}%", 100 - shop["weight"].as_u64().unwrap()));
    let policy = http()
        .get(server.url("/api/v1/policy/shop/production"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(policy["allowed"], true, "{policy:#}");
    let said = browser.text(".policy");
    assert!(said.contains("allowed") && said.contains(policy["message"].as_str().unwrap()), "{said}");
    let analysis = browser.text("table.measurements");
    for verdict in ["pass", "fail", "inconclusive"] {
        let shown = analysis.matches(verdict).count();
        assert_eq!(shown, measurements.iter().filter(|m| m["verdict"] == verdict).count(), "{verdict}: {analysis}");
    }
    // Every request the traffic sent, split by version, once the proxy's counts are recorded
    // (every few seconds; the page follows).
    wait_for("the page to count every request", || (counted_requests(&browser) == sent).then_some(()));
    assert_eq!(browser.elements("script").len(), 1, "only the page's own script");
    assert_eq!(browser.elements("script[src^='/assets/rollout.']").len(), 1);
    assert_eq!(browser.console_errors(), Vec::<String>::new());
    browser.screenshot("rollout.png");

    browser.click("button.promote");
    let promoted = wait_for_phase(&server, "shop", "succeeded");
    assert_eq!(promoted["weight"], 100);
    assert!(promoted["history"].as_array().unwrap().iter().any(|e| e["message"] == "promoted: resuming"));
    wait_for("the page to show it succeeded", || browser.try_text("h1 .state").filter(|s| s == "succeeded"));
    assert!(browser.elements("button.promote").is_empty() && browser.elements("button.abort").is_empty());
    // Finished with a previous version: Undo rolls back to it, as a new rollout.
    browser.click("button.undo");
    let undone = wait_for("the undo's rollout", || {
        Some(rollout(&server, "shop")).filter(|r| r["id"] != promoted["id"] && r["phase"] == "succeeded")
    });
    assert_eq!((&undone["new"]["version"], &undone["stable"]["version"]), (&Value::from("v1"), &Value::from("v2")));
    browser.go(&server.url("/rollouts/shop/production"));
    let older = browser.text("table.older");
    assert!(older.contains(&promoted["id"].to_string()) && older.contains("succeeded"), "{older}");
    assert!(browser.text("h1").contains("succeeded"));

    // cart's page follows it live: traffic sent after it loaded is swapped in without a reload
    // (an element outside the live parts stays the same element).
    browser.go(&server.url("/rollouts/cart/production"));
    assert_eq!(browser.text("h1 .state"), "paused");
    let versions = browser.element("table.versions");
    requests(cart_port, 20);
    wait_for("cart's traffic in the page", || (counted_requests(&browser) == 20).then_some(()));
    let same = browser.session_call("GET", &format!("/element/{versions}/text"), None);
    assert!(same.as_str().is_some_and(|t| t.contains("v2")), "not reloaded: {same}");
    browser.click("button.abort");
    let aborted = wait_for_phase(&server, "cart", "aborted");
    assert_eq!(aborted["weight"], 0);
    wait_for("the page to show it aborted", || browser.try_text("h1 .state").filter(|s| s == "aborted"));
    assert_eq!(rollout(&server, "shop")["phase"], "succeeded", "the other rollout untouched");
    assert!(browser.elements("script:not([src])").is_empty());
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}

#[test]
fn rollout_actions_need_a_deploy_session_and_its_csrf_token_and_change_nothing_otherwise() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let paused = paused_canary(&dir, &server, "shop", port, PAUSED);
    let unchanged = |why: &str| {
        let now = rollout(&server, "shop");
        assert_eq!(
            (&now["phase"], &now["step"], &now["history"]),
            (&paused["phase"], &paused["step"], &paused["history"]),
            "{why}"
        );
    };

    // Signed out: to sign-in, remembering the page; an action signs nobody in and does nothing.
    let response = page(&server, "/rollouts/shop/production", None);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=%2Frollouts%2Fshop%2Fproduction");
    let response = post_form(&server, "/rollouts/shop/production/promote", None, &[("csrf", "x")]);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    unchanged("signed out");

    // A read session sees the rollout and no actions; its POST is refused.
    let reader = session(&server, &token(&dir, &server, "rita", "read"));
    let html = page(&server, "/rollouts/shop/production", Some(&reader)).text().unwrap();
    assert!(html.contains("state-paused") && html.contains("pause until promoted"), "{html}");
    assert!(!html.contains("/promote\"") && !html.contains("/abort\""), "no buttons for read: {html}");
    requests(port, 30);
    let refused = post_form(&server, "/rollouts/shop/production/promote", Some(&reader), &[("csrf", &csrf_of(&html))]);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().unwrap().contains("needs `deploy`"));
    unchanged("a read session");

    // A deploy session gets Promote and Abort (not Undo: it is in flight) with the policy's answer.
    let deployer = session(&server, &token(&dir, &server, "dave", "deploy"));
    let html = page(&server, "/rollouts/shop/production", Some(&deployer)).text().unwrap();
    assert!(html.contains("/rollouts/shop/production/promote\"") && html.contains("/rollouts/shop/production/abort\""));
    assert!(!html.contains("/undo\""), "{html}");
    assert!(html.contains("shop has no SLOs in production"), "the policy's answer: {html}");
    let csrf = csrf_of(&html);
    // A forged form: no CSRF token, or another one.
    for fields in [&[][..], &[("csrf", "forged")][..]] {
        let forged = post_form(&server, "/rollouts/shop/production/promote", Some(&deployer), fields);
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert!(forged.text().unwrap().contains("CSRF"));
        let forged = post_form(&server, "/rollouts/shop/production/abort", Some(&deployer), fields);
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }
    unchanged("forged forms");

    // The figures are the API's and the proxy's: weights, and each version's requests.
    wait_for("the 30 requests counted", || {
        let html = page(&server, "/rollouts/shop/production", Some(&deployer)).text().unwrap();
        (cells(&html, "requests").iter().sum::<u64>() == 30).then_some(())
    });
    let html = page(&server, "/rollouts/shop/production", Some(&deployer)).text().unwrap();
    assert!(html.contains(&format!("class=\"weight-new\">{}%", paused["weight"])), "{html}");
    assert_eq!(cells(&html, "errors"), vec![0, 0], "{html}");

    // Unknown rollouts: a 404 page naming them, for the page and for an action.
    let missing = page(&server, "/rollouts/nope/production", Some(&deployer));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().unwrap().contains("No rollout of `nope` in `production`"));
    let missing = post_form(&server, "/rollouts/shop/staging/abort", Some(&deployer), &[("csrf", &csrf)]);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().unwrap().contains("No rollout of `shop` in `staging`"));

    // The list, filtered in its shareable URL.
    let listed = page(&server, "/rollouts?service=shop&environment=production", Some(&deployer)).text().unwrap();
    assert!(listed.contains("href=\"/rollouts/shop/production\"") && listed.contains("state-paused"), "{listed}");
    let none = page(&server, "/rollouts?service=nope", Some(&deployer)).text().unwrap();
    assert!(none.contains("No rollouts match these filters"), "{none}");

    // Abort with the session's token: back to the page, and the API reports it aborted.
    let done = post_form(&server, "/rollouts/shop/production/abort", Some(&deployer), &[("csrf", &csrf)]);
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[LOCATION], "/rollouts/shop/production");
    let aborted = wait_for_phase(&server, "shop", "aborted");
    assert_eq!(aborted["message"], "aborted by hand");
    // What the state no longer allows: 409, saying why, nothing changed.
    for action in ["promote", "undo"] {
        let late =
            post_form(&server, &format!("/rollouts/shop/production/{action}"), Some(&deployer), &[("csrf", &csrf)]);
        assert_eq!(late.status(), StatusCode::CONFLICT, "{action}");
        assert!(late.text().unwrap().contains("Nothing was changed"), "{action}");
    }
    assert_eq!(rollout(&server, "shop")["history"], aborted["history"]);
    let html = page(&server, "/rollouts/shop/production", Some(&deployer)).text().unwrap();
    assert!(html.contains("state-aborted") && !html.contains("class=\"promote\"") && !html.contains("class=\"abort\""));
    assert!(!html.contains("<script"), "a finished rollout's page needs no script: {html}");

    // What an instance printed reaches the page (a failed rollout's reason) as text only.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let spec = format!(
        "service: bad\nrun:\n  command: sh\n  args: [\"-c\", \"echo '<img src=x onerror=alert(1)>'; sleep 30\"]\n  instances: 1\n  readiness_timeout: 2s\nenvironments:\n  - name: production\n    listen: 127.0.0.1:{}\n    strategy: rolling\n",
        free_port()
    );
    std::fs::write(bad.join("mobius.yaml"), spec).unwrap();
    let out = against(&dir, &server, ADMIN, &["deploy", "bad", "production", "--dir", bad.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let failed = wait_for_phase(&server, "bad", "failed");
    assert!(failed["message"].as_str().unwrap().contains("<img src=x onerror=alert(1)>"), "{failed:#}");
    let html = page(&server, "/rollouts/bad/production", Some(&deployer)).text().unwrap();
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;") || html.contains("&#60;img"), "{html}");
    assert!(!html.contains("<img src=x"), "escaped: {html}");
}

/// The requests the rollout page's traffic table counts, every version together.
fn counted_requests(browser: &Browser) -> u64 {
    browser
        .elements("table.traffic td.requests")
        .iter()
        .map(|id| browser.session_call("GET", &format!("/element/{id}/text"), None))
        .filter_map(|t| t.as_str().and_then(|t| t.parse::<u64>().ok()))
        .sum()
}
