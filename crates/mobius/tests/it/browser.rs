//! The console in a real browser: Debian's `chromium`, driven over WebDriver by
//! `chromedriver` (both installed by `scripts/test`), against the real server on loopback.
//! A small WebDriver client is enough: the protocol is JSON over HTTP.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::console::server_with_an_ended_run;
use crate::runs::{commit, finished, get, repository, start, wait_for};
use crate::stored_secrets::secret;
use crate::util::{ADMIN, Dir, http};

/// `chromedriver` on a loopback port, and one headless Chromium session of it.
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    pub(crate) fn start() -> Browser {
        let port = crate::deploy::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; ./scripts/test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http().get(format!("{base}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // As root Chromium needs --no-sandbox; the test's pages are its own.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
        } } });
        let mut browser = Browser { driver, base, session: String::new() };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().expect("a WebDriver session").to_owned();
        browser
    }

    /// One WebDriver command; its `value`.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => http().post(url).json(&body.unwrap_or_else(|| json!({}))),
            "DELETE" => http().delete(url),
            _ => http().get(url),
        };
        let answer: Value = request.send().expect("chromedriver").json().expect("WebDriver JSON");
        answer["value"].clone()
    }

    pub(crate) fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub(crate) fn go(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    pub(crate) fn url(&self) -> String {
        self.session_call("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    pub(crate) fn elements(&self, css: &str) -> Vec<String> {
        let found = self.session_call("POST", "/elements", Some(json!({ "using": "css selector", "value": css })));
        found
            .as_array()
            .map(|all| all.iter().filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn element(&self, css: &str) -> String {
        wait_for(&format!("`{css}` on the page"), || self.elements(css).into_iter().next())
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.session_call("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    pub(crate) fn click(&self, css: &str) {
        let id = self.element(css);
        self.session_call("POST", &format!("/element/{id}/click"), None);
    }

    /// The text of `css`, waiting (bounded) for the page to have it: a click that navigates
    /// returns before the next page is there.
    pub(crate) fn text(&self, css: &str) -> String {
        wait_for(&format!("`{css}` on the page"), || self.try_text(css))
    }

    /// The text of `css`, or `None` while the page has none (e.g. while it reloads).
    pub(crate) fn try_text(&self, css: &str) -> Option<String> {
        let id = self.elements(css).into_iter().next()?;
        self.session_call("GET", &format!("/element/{id}/text"), None).as_str().map(str::to_owned)
    }

    /// Waits until the page's URL ends with `suffix`.
    pub(crate) fn wait_for_url(&self, suffix: &str) {
        wait_for(&format!("the browser at …{suffix}"), || self.url().ends_with(suffix).then_some(()));
    }

    /// The browser console's messages of level `SEVERE` (errors, blocked requests, CSP reports).
    pub(crate) fn console_errors(&self) -> Vec<String> {
        let logged = self.session_call("POST", "/se/log", Some(json!({ "type": "browser" })));
        logged
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a PNG of the page as `name` under the tests' output directory.
    pub(crate) fn screenshot(&self, name: &str) {
        let encoded = self.session_call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap_or_default()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

impl Browser {
    /// Signs in with `token` from the sign-in page, asked for on the way to `path`, and waits
    /// until the browser is there.
    pub(crate) fn sign_in(&self, server: &crate::util::Server, token: &str, path: &str) {
        self.go(&server.url(path));
        wait_for("the sign-in page", || self.url().contains("/login?next=").then_some(()));
        self.type_into("#token", token);
        self.click("form.login button[type=submit]");
        self.wait_for_url(path);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http().delete(format!("{}/session/{}", self.base, self.session)).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn in_chromium_a_person_signs_in_sees_runs_as_text_and_signs_out() {
    let dir = Dir::new();
    let (server, run) = server_with_an_ended_run(&dir);
    let token =
        dir.json(&["token", "create", "--name", "bob", "--scope", "read", "--server", &server.base, "--token", ADMIN]);
    let token = token["token"].as_str().unwrap().to_owned();

    let browser = Browser::start();
    browser.go(&server.url("/runs"));
    browser.wait_for_url("/login?next=%2Fruns");
    browser.screenshot("login.png");
    browser.type_into("#token", &token);
    browser.click("form.login button[type=submit]");
    browser.wait_for_url("/runs");

    // The workflow's name is text in a cell: no alert opened, no script element exists.
    let cell = browser.text("tbody tr td:nth-child(3)");
    assert_eq!(cell, "<script>alert(1)</script>");
    assert!(browser.elements("script").is_empty(), "no script element on the page");
    let alert = browser.session_call("GET", "/alert/text", None);
    assert_eq!(alert["error"], "no such alert", "{alert}");
    assert!(browser.text("header .who").starts_with("bob"));
    assert_eq!(browser.console_errors(), Vec::<String>::new(), "the page loaded without errors");
    browser.screenshot("runs.png");

    // The run's page: its log line is text, not an image that runs a script.
    browser.click("tbody tr td:first-child a");
    browser.wait_for_url(&format!("/runs/{}", run["id"]));
    assert!(browser.text("pre.log").contains("<img src=x onerror=alert(2)>"), "{}", browser.text("pre.log"));
    assert!(browser.elements("main img").is_empty(), "no element injected");
    assert!(browser.elements("form[action$=rerun]").is_empty(), "a read token gets no actions");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
    browser.screenshot("run.png");

    // The log's page: the run's events, newest first, each one's JSON behind a click.
    browser.go(&server.url("/events"));
    browser.element("ol.events details summary");
    assert!(browser.text("ol.events").contains("dev.cdevents.pipelinerun"), "{}", browser.text("ol.events"));
    browser.click("ol.events li:first-child details summary");
    assert!(browser.text("ol.events li:first-child pre.json").contains("\"specversion\""));
    assert_eq!(browser.console_errors(), Vec::<String>::new());
    browser.screenshot("events.png");

    // Signing out ends the session: the runs page asks for a token again.
    browser.click("form.signout button[type=submit]");
    browser.wait_for_url("/login");
    browser.go(&server.url("/runs"));
    browser.wait_for_url("/login?next=%2Fruns");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}

/// A step that prints a secret, waits until the test says go, and prints again.
const LIVE_WORKFLOW: &str = "name: live\non: push\njobs:\n  follow:\n    runs-on: x\n    steps:\n      - run: |\n          \
    echo \"first line $KEY\"\n          for i in $(seq 600); do [ -f @OUT@/go ] && break; sleep 0.1; done\n          \
    echo \"second line\"\n        env:\n          KEY: ${{ secrets.LIVE_KEY }}\n";

#[test]
fn in_chromium_a_running_runs_log_streams_in_masked_and_the_page_ends_with_the_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    let repo = repository(&dir, &[("README.md", "app\n")]);
    let server = start(&dir, &repo);
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let out =
        secret(&dir, &[&["set", "LIVE_KEY", "--repo", "acme/app"][..], &remote[..]].concat(), "live-secret-4242\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A directory the step's user (`nobody` when the tests run as root) may read.
    let gate = dir.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o777)).unwrap();
    let workflow = LIVE_WORKFLOW.replace("@OUT@", gate.to_str().unwrap());
    commit(&repo, &[(".github/workflows/live.yml", &workflow)], "live");
    let run = wait_for("the live run", || get(&server, "/api/v1/runs").as_array().and_then(|r| r.first().cloned()));
    let id = run["id"].as_i64().unwrap();
    let token = dir.json(&[&["token", "create", "--name", "dora", "--scope", "read"][..], &remote[..]].concat());

    let browser = Browser::start();
    browser.sign_in(&server, token["token"].as_str().unwrap(), &format!("/runs/{id}"));
    // The first line arrives while the run waits, masked; the page does not reload for it.
    wait_for("the first line in the page", || {
        browser.try_text("pre.log").filter(|log| log.contains("first line ***")).map(|_| ())
    });
    assert!(!browser.text("pre.log").contains("live-secret-4242"));
    assert_eq!(browser.text("h1 .state"), "running");
    browser.screenshot("run-live.png");
    std::fs::write(gate.join("go"), "").unwrap();
    // The second line streams in, then the run ends and the page shows its final state.
    // The page reloads when the run ends: it may have no heading for a moment.
    wait_for("the run's end in the page", || browser.try_text("h1 .state").filter(|s| s == "success").map(|_| ()));
    let log = browser.text("pre.log");
    assert!(log.contains("first line ***") && log.contains("second line"), "{log}");
    assert_eq!(finished(&server, id)["state"], "success");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}
