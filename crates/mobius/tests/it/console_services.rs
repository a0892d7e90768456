//! The console's service pages (issue 13): the catalog at `/services`, a service's page with
//! DORA's four keys, their items and weekly trends, and its value stream — over the golden
//! DORA histories (`tests/golden`), so every figure is checked against what `GET
//! /api/v1/dora` and `GET /api/v1/flow` answer for the same window.

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::console::{page, sign_in};
use crate::deploy::{Cleanup, deployed, finished, free_port, release};
use crate::runs::get;
use crate::util::{ADMIN, Dir, Server, http};

/// A service name that is an XSS attempt: every page must show it as text.
const XSS_SERVICE: &str = "<script>alert(1)</script>";

/// A data directory holding every golden history, and a server on it.
fn golden_server(dir: &Dir) -> Server {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for history in
        ["github-incident-with-root-cause", "rollback-and-incident-attribution", "squash-and-multi-commit-pushes"]
    {
        let events = root.join(history).join("events.ndjson");
        dir.ok(&["events", "import", events.to_str().unwrap()]);
    }
    dir.serve(&[])
}

/// A `read` token named `name`.
fn read_token(dir: &Dir, server: &Server, name: &str) -> String {
    let token =
        dir.json(&["token", "create", "--name", name, "--scope", "read", "--server", &server.base, "--token", ADMIN]);
    token["token"].as_str().unwrap().to_owned()
}

/// A session cookie for `token`.
fn session(server: &Server, token: &str) -> String {
    let signed = sign_in(server, token, "/services");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().strip_prefix("mobius_session=").unwrap().to_owned()
}

/// The catalog's row of `service` (the HTML between its `<tr>` and `</tr>`), if listed.
fn row<'a>(html: &'a str, service: &str) -> Option<&'a str> {
    let link = format!(">{service}</a>");
    html.split("<tr>").skip(1).map(|r| r.split("</tr>").next().unwrap()).find(|r| r.contains(&link))
}

/// The band badges of a row, in order.
fn bands(row: &str) -> Vec<String> {
    row.split("<span class=\"band band-")
        .skip(1)
        .map(|b| b.split('>').nth(1).unwrap().split('<').next().unwrap().to_owned())
        .collect()
}

/// The four bands of an API report, as the pages write them.
fn api_bands(report: &Value) -> Vec<String> {
    ["deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"]
        .iter()
        .map(|metric| report[metric]["band"].as_str().unwrap_or("—").to_owned())
        .collect()
}

#[test]
fn the_catalog_and_service_pages_show_what_the_api_says_as_text() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = golden_server(&dir);
    // `shop` is also deployed for real, with an owner, a runbook and an SLO in its mobius.yaml.
    let shop = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    let spec = std::fs::read_to_string(shop.join("mobius.yaml")).unwrap();
    let about = "owner: team-shop\nrunbook: https://wiki.example/shop\nslos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n";
    std::fs::write(shop.join("mobius.yaml"), format!("{spec}{about}")).unwrap();
    deployed(&dir, &server, &shop, "v1");
    assert_eq!(finished(&server)["phase"], "succeeded");
    // A service whose name is a script, from an event.
    let mut event = crate::util::deployed("xss-1", XSS_SERVICE, "production", &jiff::Timestamp::now().to_string());
    event["subject"]["content"]["artifactId"] = json!("pkg:generic/xss@xss-1");
    let sent = http().post(server.url("/api/v1/events")).bearer_auth(ADMIN).json(&event).send().unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());

    // An incident still open on web.
    let open = json!({
        "context": {"specversion": "0.5.1", "id": "open-1", "source": "/test/pager",
                    "type": "dev.cdevents.incident.detected.0.3.0", "timestamp": "2026-01-05T12:00:00Z"},
        "subject": {"id": "inc-open", "content": {"description": "login is slow",
                    "environment": {"id": "production"}, "service": {"id": "web"}}}
    });
    let sent = http().post(server.url("/api/v1/events")).bearer_auth(ADMIN).json(&open).send().unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());

    // Signed out: to sign-in, remembering the page; `/` is the catalog.
    let response = page(&server, "/services?environment=staging", None);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=%2Fservices%3Fenvironment%3Dstaging");
    let token = read_token(&dir, &server, "carol");
    let cookie = session(&server, &token);
    assert_eq!(page(&server, "/", Some(&cookie)).headers()[LOCATION], "/services");

    // Every service, each with the bands the API gives for the same environment and window.
    let html = page(&server, "/services?since=1000d", Some(&cookie)).text().unwrap();
    let reports = get(&server, "/api/v1/dora?since=1000d");
    let reports = reports.as_array().unwrap();
    assert!(reports.len() >= 3, "{reports:?}");
    for report in reports {
        let service = report["service"].as_str().unwrap();
        if service == XSS_SERVICE {
            continue;
        }
        let listed = row(&html, service).unwrap_or_else(|| panic!("{service} is listed: {html}"));
        assert_eq!(bands(listed), api_bands(report), "{service}");
    }
    assert!(html.contains("band table <code>"), "the band table is named: {html}");
    // Open incidents per service, as `GET /api/v1/incidents?open=true` lists them.
    let open = get(&server, "/api/v1/incidents?open=true");
    for service in ["api", "shop", "web"] {
        let expected = open.as_array().unwrap().iter().filter(|i| i["service"] == service).count();
        let cell = row(&html, service).unwrap().split("class=\"open-incidents\">").nth(1);
        let shown = cell.map_or(0, |c| c.split('<').next().unwrap().parse().unwrap());
        assert_eq!(shown, expected, "{service}'s open incidents");
    }
    assert_eq!(open.as_array().unwrap().iter().filter(|i| i["service"] == "web").count(), 1);
    // shop: who owns it, what is live, its SLO budget (as `GET /api/v1/slos` has it).
    let shop_row = row(&html, "shop").unwrap();
    assert!(shop_row.contains("team-shop") && shop_row.contains("href=\"https://wiki.example/shop\""), "{shop_row}");
    assert!(shop_row.contains("production</span> <code>v1</code>"), "{shop_row}");
    let slos = get(&server, "/api/v1/slos");
    let remaining = slos[0]["budget"]["remaining"].as_f64().unwrap();
    assert!(shop_row.contains(&format!("<td>{:.1}%</td>", remaining * 100.0)), "{shop_row}");
    // The script is text: escaped in the cell and in the link.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || html.contains("&#60;script&#62;"), "{html}");
    assert!(!html.contains(XSS_SERVICE), "escaped: {html}");
    assert!(html.contains("/services/%3Cscript%3Ealert%281%29%3C%2Fscript%3E?"), "{html}");

    // Filters: a name's part, an owner, a band of any metric, another environment.
    let named = page(&server, "/services?since=1000d&name=AP", Some(&cookie)).text().unwrap();
    assert!(row(&named, "api").is_some() && row(&named, "web").is_none() && row(&named, "shop").is_none());
    let owned = page(&server, "/services?since=1000d&owner=team-shop", Some(&cookie)).text().unwrap();
    assert!(row(&owned, "shop").is_some() && row(&owned, "api").is_none(), "{owned}");
    let low = page(&server, "/services?since=1000d&band=low", Some(&cookie)).text().unwrap();
    for report in reports.iter().filter(|r| r["service"] != XSS_SERVICE) {
        let service = report["service"].as_str().unwrap();
        let in_band = api_bands(report).iter().any(|b| b == "low");
        assert_eq!(row(&low, service).is_some(), in_band, "{service} in band low");
    }
    let staging = page(&server, "/services?since=1000d&environment=staging", Some(&cookie)).text().unwrap();
    let api_staging = get(&server, "/api/v1/dora?since=1000d&environment=staging&service=api");
    assert_eq!(bands(row(&staging, "api").unwrap()), api_bands(&api_staging));
    assert_eq!(bands(row(&staging, "web").unwrap()), ["—", "—", "—", "—"], "no facts in staging");
    let none = page(&server, "/services?name=nothing-like-this", Some(&cookie)).text().unwrap();
    assert!(none.contains("No services match these filters"), "{none}");
    let bad = page(&server, "/services?band=great", Some(&cookie));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().unwrap().contains("No band `great`"));

    // A service's page: the API's numbers for the window, its items, its rollouts.
    let window = "environment=production&from=2024-05-01&to=2024-05-11";
    let api = page(&server, &format!("/services/api?{window}"), Some(&cookie));
    assert_eq!(api.status(), StatusCode::OK);
    let api_html = api.text().unwrap();
    let report = get(&server, &format!("/api/v1/dora?service=api&{window}&explain=true"));
    let raw = |v: &Value| v.as_f64().map(|f| f.to_string()).unwrap_or_default();
    for (id, value) in [
        ("deployments", raw(&report["deployment_frequency"]["per_day"])),
        ("lead-time", raw(&report["lead_time"]["median_seconds"])),
        ("change-failure-rate", raw(&report["change_failure_rate"]["rate"])),
        ("recovery-time", raw(&report["recovery_time"]["median_seconds"])),
    ] {
        let figure = api_html.split(&format!("id=\"figure-{id}\"")).nth(1).unwrap();
        assert!(figure.contains(&format!("<data value=\"{value}\">")), "{id} = {value}: {figure}");
    }
    for deployment in report["explain"]["deployments"].as_array().unwrap() {
        assert!(api_html.contains(&format!("<td>{}</td>", deployment["key"].as_str().unwrap())), "{deployment}");
    }
    for incident in report["explain"]["incidents"].as_array().unwrap() {
        let key = incident["key"].as_str().unwrap();
        assert!(api_html.contains(&format!(">{key}</a>")), "{key}");
    }
    assert_eq!(api_html.matches("<svg class=\"chart\"").count(), 5, "the weekly trends");
    // Each week's bar is that week's own report, and leads to that week's items.
    let week = get(&server, "/api/v1/dora?service=api&environment=production&from=2024-04-29&to=2024-05-06");
    let count = &week["deployment_frequency"]["deployments"];
    assert!(api_html.contains(&format!("<title>2024-W18: {count}</title>")), "{api_html}");
    assert!(api_html.contains("from=2024-04-29T00%3A00%3A00Z&amp;to=2024-05-06T00%3A00%3A00Z#explain-deployments"));
    let shop_html = page(&server, "/services/shop", Some(&cookie)).text().unwrap();
    assert!(shop_html.contains("href=\"/rollouts/shop/production\"") && shop_html.contains("rolling"), "{shop_html}");
    assert!(shop_html.contains("team-shop") && shop_html.contains("Serving <code>v1</code>"), "{shop_html}");
    let digest = shop_html.split("<td><code>v1</code></td><td><code>").nth(1).unwrap().split('<').next().unwrap();
    assert!(digest.len() == 12 && digest.chars().all(|c| c.is_ascii_hexdigit()), "a short digest: {digest}");
    let xss = page(&server, "/services/%3Cscript%3Ealert%281%29%3C%2Fscript%3E", Some(&cookie));
    assert_eq!(xss.status(), StatusCode::OK);
    let xss_html = xss.text().unwrap();
    assert!(xss_html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || xss_html.contains("&#60;script&#62;"));
    assert!(!xss_html.contains(XSS_SERVICE), "escaped: {xss_html}");

    // The value stream: the API's flow for the same window.
    let flow_window = "environment=production&from=2024-04-27&to=2024-05-07";
    let flow = page(&server, &format!("/services/shop/flow?{flow_window}"), Some(&cookie)).text().unwrap();
    let api_flow = get(&server, &format!("/api/v1/flow?service=shop&{flow_window}"));
    assert!(flow.contains(&format!("<strong class=\"flow-changes\">{}</strong>", api_flow["changes"])), "{flow}");
    let efficiency = api_flow["flow_efficiency"].as_f64().map_or("—".to_owned(), |e| format!("{:.1}%", e * 100.0));
    assert!(flow.contains(&format!("<dd class=\"flow-efficiency\">{efficiency}</dd>")), "{flow}");
    assert_eq!(flow.matches("<li class=\"stage ").count(), api_flow["stages"].as_array().unwrap().len());

    // Unknown services and bad windows say what is wrong.
    let missing = page(&server, "/services/nope", Some(&cookie));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().unwrap().contains("No service `nope`"));
    assert_eq!(page(&server, "/services/nope/flow", Some(&cookie)).status(), StatusCode::NOT_FOUND);
    let bad = page(&server, "/services/api?since=forever", Some(&cookie));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().unwrap().contains("since"));
}

impl Browser {
    /// The attribute `name` of the first element `css` matches.
    fn attribute(&self, css: &str, name: &str) -> String {
        let id = self.element(css);
        let value = self.session_call("GET", &format!("/element/{id}/attribute/{name}"), None);
        value.as_str().unwrap_or_default().to_owned()
    }

    /// The text of every element `css` matches.
    fn texts(&self, css: &str) -> Vec<String> {
        self.elements(css)
            .iter()
            .map(|id| self.session_call("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or("").to_owned())
            .collect()
    }
}

#[test]
fn in_chromium_a_services_dora_equals_the_api_and_its_explain_link_lists_the_apis_deployments() {
    let dir = Dir::new();
    let server = golden_server(&dir);
    let token = read_token(&dir, &server, "dora");
    let browser = Browser::start();

    browser.sign_in(&server, &token, "/services?since=1000d");
    let listed = browser.texts("tbody th[scope=row] a");
    assert_eq!(listed, ["api", "shop", "web"], "every service of the golden histories");
    assert!(browser.elements("script").is_empty(), "no script element on the page");
    assert_eq!(browser.console_errors(), Vec::<String>::new(), "the catalog loaded without errors");
    browser.screenshot("services.png");

    // The service page over the golden window: the four numbers and bands are the API's.
    let window = "environment=production&from=2024-05-01&to=2024-05-11";
    browser.go(&server.url(&format!("/services/api?{window}")));
    browser.text("h1");
    let report = get(&server, &format!("/api/v1/dora?service=api&{window}"));
    for (id, metric, value) in [
        ("deployments", "deployment_frequency", "per_day"),
        ("lead-time", "lead_time", "median_seconds"),
        ("change-failure-rate", "change_failure_rate", "rate"),
        ("recovery-time", "recovery_time", "median_seconds"),
    ] {
        let shown = browser.attribute(&format!("#figure-{id} data"), "value");
        let expected = report[metric][value].as_f64();
        assert_eq!(shown.parse::<f64>().ok(), expected, "{metric}");
        let band = browser.text(&format!("#figure-{id} .band"));
        assert_eq!(band, report[metric]["band"].as_str().unwrap_or("—"), "{metric}'s band");
    }
    assert!(browser.elements("script").is_empty());
    assert_eq!(browser.console_errors(), Vec::<String>::new(), "the service page loaded without errors");
    browser.screenshot("service.png");
    browser.go(&server.url(&format!("/services/api?{window}#trends")));
    assert_eq!(browser.elements("#trends ~ .trends svg.chart").len(), 5, "five trend charts");
    browser.screenshot("service-trends.png");
    browser.go(&server.url(&format!("/services/api?{window}")));

    // Following the deployments' explain link: the API's deployments, with the same window.
    let href = browser.attribute("#figure-deployments a.explain", "href");
    browser.click("#figure-deployments a.explain");
    browser.wait_for_url("#explain-deployments");
    let url = browser.url();
    let query = url.split('?').nth(1).unwrap().split('#').next().unwrap().to_owned();
    assert!(href.ends_with("#explain-deployments"), "{href}");
    let explained = get(&server, &format!("/api/v1/dora?service=api&{query}&explain=true"));
    let expected: Vec<String> = explained["explain"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d["id"], d["key"].as_str().unwrap()))
        .collect();
    assert!(!expected.is_empty(), "{explained}");
    let ids = browser.texts("table.explain-deployments tbody td:nth-child(1)");
    let keys = browser.texts("table.explain-deployments tbody td:nth-child(2)");
    let shown: Vec<String> = ids.iter().zip(&keys).map(|(id, key)| format!("{id} {key}")).collect();
    assert_eq!(shown, expected);
    let failed = browser.texts("table.explain-deployments tbody td:nth-child(5)");
    let expected_failed: Vec<&str> = explained["explain"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| if d["failed"] == json!(true) { "failed" } else { "no" })
        .collect();
    assert_eq!(failed, expected_failed);

    // The value stream, linked from the service page.
    browser.go(&server.url("/services/shop?environment=production&from=2024-04-27&to=2024-05-07"));
    browser.click("a.flow-link");
    browser.wait_for_url(
        "/services/shop/flow?environment=production&from=2024-04-27T00%3A00%3A00Z&to=2024-05-07T00%3A00%3A00Z",
    );
    let api_flow = get(&server, "/api/v1/flow?service=shop&environment=production&from=2024-04-27&to=2024-05-07");
    assert_eq!(browser.text(".flow-changes"), api_flow["changes"].to_string());
    assert_eq!(browser.elements("ol.flow li").len(), api_flow["stages"].as_array().unwrap().len());
    assert!(browser.elements("script").is_empty());
    assert_eq!(browser.console_errors(), Vec::<String>::new(), "the flow page loaded without errors");
    browser.screenshot("flow.png");

    // On a phone the pages fit the screen's width: wide tables scroll inside themselves.
    browser.session_call("POST", "/window/rect", Some(json!({ "width": 390, "height": 844 })));
    for path in ["/services", "/services/shop?environment=production&from=2024-04-27&to=2024-05-07"] {
        browser.go(&server.url(path));
        browser.element("main h1");
        let fits = browser.session_call(
            "POST",
            "/execute/sync",
            Some(
                json!({ "script": "return document.documentElement.scrollWidth <= window.innerWidth + 1", "args": [] }),
            ),
        );
        assert_eq!(fits, json!(true), "{path} is no wider than a phone");
    }
    browser.screenshot("service-phone.png");
}
