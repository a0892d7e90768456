//! Flag rollouts against the real binary: the sample app behind Mobius's proxy fails every
//! request served with `checkout=on`, the proxy counts it per variant from the app's
//! `x-mobius-flag`, and the server's controller stops the rollout and sends the flag back to
//! 0%; then an exhausted error budget refuses the next rollout with a deploy's message. And a
//! rollout whose variant looks healthy still stops when the service's SLO pages.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::{Cleanup, Load, against, deployed, finished, free_port, release};
use crate::util::{ADMIN, Dir, http};

const FLAGS: &str = r#"{
  "flags": {
    "checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off"
    }
  }
}"#;

fn rollout(server: &crate::util::Server) -> Value {
    let url = server.url("/api/v1/flags/shop.production/flags/checkout/rollout");
    http().get(url).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

#[test]
fn a_failing_variant_stops_its_rollout_and_a_frozen_budget_refuses_the_next() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    // Alerts rarely: the variant's own SLIs must be what stops it, not the service's page.
    let server = dir.serve_with_env(&[("MOBIUS_ALERT_EVERY", "1h")]);
    let port = free_port();
    let path = release(&dir, "v1", 0.0, port, "rolling", "");
    let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
    let spec =
        spec.replace("    SAMPLE_VERSION: v1\n", "    SAMPLE_VERSION: v1\n    SAMPLE_FAIL_VARIANT: checkout=on\n");
    let slo = "slos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n";
    std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
    deployed(&dir, &server, &path, "v1");
    finished(&server);
    let file = dir.path().join("shop.flagd.json");
    std::fs::write(&file, FLAGS).unwrap();
    let cli = |args: &[&str]| {
        let out = against(&dir, &server, ADMIN, args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, said) =
        cli(&["flags", "load", file.to_str().unwrap(), "--set", "shop.production", "--environment", "production"]);
    assert!(ok, "{said}");

    // Bad input is refused before anything moves.
    let (ok, said) = cli(&["flags", "rollout", "shop.production", "checkout", "--variant", "on", "--every", "soon"]);
    assert!(!ok && said.contains("--every must be a duration such as 30s, 10m or 1h, not `soon`"), "{said}");
    let (ok, said) = cli(&["flags", "rollout", "shop.production", "checkout", "--variant", "maybe"]);
    assert!(!ok && said.contains("has no variant `maybe`"), "{said}");

    let (ok, said) = cli(&[
        "flags",
        "rollout",
        "shop.production",
        "checkout",
        "--variant",
        "on",
        "--to",
        "50",
        "--step",
        "10",
        "--every",
        "3s",
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("shop.production/checkout") && said.contains("10% → 50%"), "{said}");
    // The app's users: half evaluated to `on` (each of those requests fails), half to `off`.
    let on = Load::start(port, vec![("x-mobius-flag".into(), "checkout=on".into())]);
    let off = Load::start(port, vec![("x-mobius-flag".into(), "checkout=off".into())]);
    let deadline = Instant::now() + Duration::from_secs(40);
    let stopped = loop {
        let now = rollout(&server);
        if now["phase"] != "running" {
            break now;
        }
        assert!(Instant::now() < deadline, "the rollout did not stop: {now:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    on.stop();
    off.stop();
    assert_eq!((stopped["phase"].as_str(), stopped["weight"].as_u64()), (Some("stopped"), Some(0)), "{stopped:#}");
    let why = stopped["why"].as_str().unwrap_or_default();
    assert!(why.starts_with("variant checkout=on: error_rate 1.0000 against 0.05"), "{stopped:#}");
    let document = http()
        .get(server.url("/api/v1/flags/shop.production"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(document["flags"]["checkout"]["targeting"]["fractional"], serde_json::json!([["on", 0], ["off", 100]]));
    let (ok, said) = cli(&["flags", "rollout", "status"]);
    assert!(ok && said.contains("stopped") && said.contains("variant checkout=on"), "{said}");

    // The variant burned the service's budget (once the proxy's counts are recorded): the next
    // rollout is refused as a deploy would be.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cli(&["slo", "check", "shop"]).0 {
        assert!(Instant::now() < deadline, "the budget never ran out");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ok, said) = cli(&["flags", "rollout", "shop.production", "checkout", "--variant", "on", "--every", "3s"]);
    assert!(!ok && said.contains("error budget exhausted") && said.contains("--reason hotfix"), "{said}");
    let (ok, said) = cli(&[
        "flags",
        "rollout",
        "shop.production",
        "checkout",
        "--variant",
        "on",
        "--every",
        "3s",
        "--reason",
        "hotfix",
    ]);
    assert!(ok, "a hotfix goes through: {said}");
    // Audited as a deploy's exception is, naming the step.
    let events = dir.json(&["events", "list", "--limit", "200"]);
    let exception = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "dev.cdeventsx.mobius-policy.exception.0.1.0")
        .expect("the hotfix step is a policy exception");
    let raw: Value = serde_json::from_str(exception["raw"].as_str().unwrap()).unwrap();
    let content = &raw["subject"]["content"];
    assert_eq!(content["reason"], "hotfix", "{content:#}");
    let message = content["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("flag rollout of checkout=on in set shop.production to 10%"), "{content:#}");
    let (ok, said) = cli(&["flags", "rollout", "abort", "shop.production", "checkout", "--reason", "done"]);
    assert!(ok && said.contains("aborted"), "{said}");
}

#[test]
fn a_paging_slo_stops_a_rollout_whose_variant_looks_healthy() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve_with_env(&[("MOBIUS_ALERT_EVERY", "1s")]);
    let port = free_port();
    let path = release(&dir, "v1", 0.0, port, "rolling", "");
    let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
    let slo = "slos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n    policy: warn\n";
    std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
    deployed(&dir, &server, &path, "v1");
    finished(&server);
    let file = dir.write("shop.flagd.json", FLAGS);
    let load = ["flags", "load", file.to_str().unwrap(), "--set", "shop.production", "--environment", "production"];
    assert!(against(&dir, &server, ADMIN, &load).status.success());
    let start = ["flags", "rollout", "shop.production", "checkout", "--variant", "on", "--step", "10", "--every", "1h"];
    let out = against(&dir, &server, ADMIN, &start);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The service fails a third of its requests — none of them tagged with a variant, so the
    // variant's own SLIs say nothing — and its availability SLO pages.
    let store = mobius_store::SqliteStore::open(&dir.data()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let minute = mobius_store::SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: "v1".into(),
        minute: now - now.rem_euclid(60),
        requests: 3000,
        errors: 1000,
        latency: vec![3000],
    };
    mobius_store::Store::add_sli(&store, &[minute]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let stopped = loop {
        let now = rollout(&server);
        if now["phase"] != "running" {
            break now;
        }
        assert!(Instant::now() < deadline, "the page did not stop the rollout: {now:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!((stopped["phase"].as_str(), stopped["weight"].as_u64()), (Some("stopped"), Some(0)), "{stopped:#}");
    assert_eq!(stopped["why"], "SLO availability of shop pages", "{stopped:#}");
}

#[test]
fn a_release_flag_files_rollout_block_starts_with_its_deploy_and_outlives_the_next_deploy() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let flags = FLAGS.replace(
        "\"defaultVariant\": \"off\"",
        "\"defaultVariant\": \"off\",\n      \"rollout\": {\"variant\": \"on\", \"to\": 50, \"step\": 10, \"every\": \"1h\"}",
    );
    let split = |server: &crate::util::Server| {
        let url = server.url("/api/v1/flags/shop.production");
        let document: Value = http().get(url).bearer_auth(ADMIN).send().unwrap().json().unwrap();
        document["flags"]["checkout"]["targeting"]["fractional"].clone()
    };
    for version in ["v1", "v2"] {
        let path = release(&dir, version, 0.0, port, "rolling", "");
        std::fs::create_dir_all(path.join("flags")).unwrap();
        std::fs::write(path.join("flags/shop.flagd.json"), &flags).unwrap();
        deployed(&dir, &server, &path, version);
        assert_eq!(finished(&server)["phase"], "succeeded");
        let now = rollout(&server);
        assert_eq!(
            (now["phase"].as_str(), now["weight"].as_u64(), now["to"].as_u64(), now["service"].as_str()),
            (Some("running"), Some(10), Some(50), Some("shop")),
            "after {version}: {now:#}"
        );
        // The second deploy loads the same file: the split the rollout owns stays.
        assert_eq!(split(&server), serde_json::json!([["on", 10], ["off", 90]]), "after {version}");
    }
    // A bad block refuses the file through the server, at its position.
    let bad = dir.write("bad.flagd.json", &flags.replace("\"to\": 50", "\"to\": 500"));
    let load = ["flags", "load", bad.to_str().unwrap(), "--set", "shop.production"];
    let out = against(&dir, &server, ADMIN, &load);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && said.contains("bad.flagd.json:7:42: flag `checkout`'s rollout: `to` must be 1–100, not 500"),
        "{said}"
    );
}
