//! The in-process provider (`mobius-openfeature`) against the real server: it answers as OFREP
//! answers for the same context, follows a change through the stream (the poll is set to an
//! hour, so only the stream can explain it), keeps answering from the last good set while the
//! server is killed — ten thousand evaluations with no server at all, so none of them used the
//! network — and follows again once a server is back on the same data directory. Before any set
//! was loaded it is not ready and the caller's default applies; polling alone catches up.

use std::time::{Duration, Instant};

use mobius_openfeature::{MobiusProvider, Served};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{EvaluationContext, EvaluationErrorCode, OpenFeature};
use serde_json::{Value, json};

use crate::util::{ADMIN, Dir};

const SET: &str = r#"{
  "flags": {
    "banner": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]}
    },
    "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"},
    "split": {
      "state": "ENABLED",
      "variants": {"a": "a", "b": "b", "c": "c"},
      "defaultVariant": "a",
      "targeting": {"fractional": [["a", 34], ["b", 33], ["c", 33]]}
    },
    "limit": {
      "state": "ENABLED",
      "variants": {"low": 10, "high": 1000},
      "defaultVariant": "low",
      "targeting": {"if": [{"in": [{"var": "org.plan"}, ["pro", "enterprise"]]}, "high"]}
    },
    "dark": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}
  },
  "metadata": {"team": "web"}
}
"#;

/// Puts the set `web` (async: the tests call it from inside their runtime).
async fn put_set(base: &str, document: &str) {
    let put = api()
        .put(format!("{base}/api/v1/flags/web"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(document.to_owned())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap_or_default());
}

async fn set_default(base: &str, flag: &str, variant: &str) {
    let flipped = api()
        .put(format!("{base}/api/v1/flags/web/flags/{flag}/default"))
        .bearer_auth(ADMIN)
        .json(&json!({ "variant": variant }))
        .send()
        .await
        .unwrap();
    assert!(flipped.status().is_success(), "{}", flipped.text().await.unwrap_or_default());
}

fn api() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Waits (on tokio's clock, polling every 50 ms) until `done`, or fails after `within`.
async fn eventually(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A context as OpenFeature holds it, and the same as the JSON OFREP is sent.
fn contexts() -> Vec<(EvaluationContext, Value)> {
    let mut all = vec![
        (
            EvaluationContext::default().with_targeting_key("u1").with_custom_field("email", "ana@example.com"),
            json!({"targetingKey": "u1", "email": "ana@example.com"}),
        ),
        (
            EvaluationContext::default().with_targeting_key("u2").with_custom_field("email", "bo@elsewhere.org"),
            json!({"targetingKey": "u2", "email": "bo@elsewhere.org"}),
        ),
    ];
    let org = open_feature::StructValue::default().with_field("plan", "pro").with_field("seats", 12);
    all.push((
        EvaluationContext::default()
            .with_targeting_key("u3")
            .with_custom_field("org", open_feature::EvaluationContextFieldValue::new_struct(org)),
        json!({"targetingKey": "u3", "org": {"plan": "pro", "seats": 12}}),
    ));
    for i in 0..24 {
        let key = format!("user-{i}");
        all.push((EvaluationContext::default().with_targeting_key(key.clone()), json!({ "targetingKey": key })));
    }
    all
}

/// The provider's answer in OFREP's words: value, variant, reason.
async fn in_process(provider: &MobiusProvider, flag: &str, context: &EvaluationContext) -> Value {
    let (value, variant, reason) = match flag {
        "banner" => {
            let r = provider.resolve_bool_value(flag, context).await.expect(flag);
            (json!(r.value), r.variant, r.reason)
        }
        "limit" => {
            let r = provider.resolve_int_value(flag, context).await.expect(flag);
            (json!(r.value), r.variant, r.reason)
        }
        _ => {
            let r = provider.resolve_string_value(flag, context).await.expect(flag);
            (json!(r.value), r.variant, r.reason)
        }
    };
    json!({ "value": value, "variant": variant, "reason": reason.map(|r| r.to_string()) })
}

#[test]
fn the_provider_answers_as_ofrep_follows_the_stream_and_outlives_the_server() {
    let dir = Dir::new();
    let mut server = dir.serve_with_env(&[("MOBIUS_OFREP_RATE", "0")]);
    let made = dir.json(&["token", "create", "--scope", "read", "--server", &server.base, "--token", ADMIN]);
    let reader = made["token"].as_str().unwrap().to_owned();
    let address = server.base.trim_start_matches("http://").to_owned();

    runtime().block_on(async {
        put_set(&server.base, SET).await;
        let provider = MobiusProvider::builder(&server.base, &reader, "web")
            .poll_every(Duration::from_secs(3600))
            .max_backoff(Duration::from_millis(500))
            .build()
            .unwrap();
        assert_eq!(provider.status(), ProviderStatus::NotReady);
        provider.start().await.expect("the set loads");
        assert_eq!(provider.status(), ProviderStatus::Ready);
        assert_eq!(provider.version().as_deref(), Some("1"));

        // The same answers as OFREP, flag by flag and context by context.
        let ofrep = api();
        let mut seen_variants = std::collections::BTreeSet::new();
        for (context, json_context) in contexts() {
            for flag in ["banner", "color", "split", "limit"] {
                let answer: Value = ofrep
                    .post(format!("{}/ofrep/v1/evaluate/flags/{flag}", server.base))
                    .header("x-api-key", &reader)
                    .header("x-mobius-flag-set", "web")
                    .json(&json!({ "context": json_context }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let expected =
                    json!({ "value": answer["value"], "variant": answer["variant"], "reason": answer["reason"] });
                assert_eq!(in_process(&provider, flag, &context).await, expected, "{flag} for {json_context}");
                if flag == "split" {
                    seen_variants.insert(answer["variant"].as_str().unwrap().to_owned());
                }
            }
        }
        assert_eq!(seen_variants.len(), 3, "the contexts reach every share of the split: {seen_variants:?}");

        // Through OpenFeature's client: a disabled flag and a missing one give the caller's
        // default, and the variants served make the proxy's header.
        let mut api = OpenFeature::default();
        api.set_provider(provider.clone()).await;
        let client = api.create_client();
        let ana = contexts().remove(0).0;
        let served = Served::new();
        let (banner, dark, missing) = served
            .scope(async {
                let banner = client.get_bool_value("banner", Some(&ana), None).await.unwrap_or(false);
                let dark = client.get_bool_value("dark", Some(&ana), None).await.unwrap_or(false);
                let missing = client.get_string_value("nope", Some(&ana), None).await.unwrap_err().code;
                let _ = client.get_string_value("color", Some(&ana), None).await;
                (banner, dark, missing)
            })
            .await;
        assert!(banner);
        assert!(!dark, "a disabled flag is the caller's default");
        assert_eq!(missing, EvaluationErrorCode::FlagNotFound);
        assert_eq!(served.header_value().as_deref(), Some("banner=on, color=red"));

        // A change reaches the provider through the stream within seconds (the poll is an hour).
        set_default(&server.base, "color", "blue").await;
        let no_one = EvaluationContext::default();
        eventually(Duration::from_secs(10), "the provider follows the change", async || {
            provider.resolve_string_value("color", &no_one).await.unwrap().value == "blue"
        })
        .await;
        assert_eq!(provider.version().as_deref(), Some("2"));

        // The server dies: the provider says it is stale and answers from the set it holds.
        server.kill9();
        eventually(Duration::from_secs(10), "the provider turns stale", async || {
            provider.status() == ProviderStatus::STALE
        })
        .await;
        let cases = contexts();
        let expected: Vec<bool> = cases.iter().map(|(_, json)| json["email"] == "ana@example.com").collect();
        for i in 0..10_000 {
            let (context, _) = &cases[i % cases.len()];
            let banner = provider.resolve_bool_value("banner", context).await.expect("answers with no server");
            assert_eq!(banner.value, expected[i % cases.len()]);
            let color = provider.resolve_string_value("color", context).await.expect("answers with no server");
            assert_eq!(color.value, "blue");
        }

        // A server back on the same data directory and address: the provider follows again.
        let server = dir.serve_at(&address);
        eventually(Duration::from_secs(10), "the provider is current again", async || {
            provider.status() == ProviderStatus::Ready
        })
        .await;
        set_default(&server.base, "color", "red").await;
        eventually(Duration::from_secs(10), "the provider follows the restarted server", async || {
            provider.resolve_string_value("color", &no_one).await.unwrap().value == "red"
        })
        .await;
        assert_eq!(provider.version().as_deref(), Some("3"));
        provider.shutdown();
        assert_eq!(provider.status(), ProviderStatus::STALE, "shut down, it answers from the set held");
        drop(server);
    });
}

#[test]
fn before_any_set_it_is_not_ready_and_polling_alone_catches_up() {
    let dir = Dir::new();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap().to_string();
    drop(free);
    let base = format!("http://{address}");

    runtime().block_on(async {
        let provider = MobiusProvider::builder(&base, ADMIN, "web")
            .follow_stream(false)
            .poll_every(Duration::from_millis(300))
            .build()
            .unwrap();
        let mut api = OpenFeature::default();
        api.set_provider(provider.clone()).await;
        let client = api.create_client();
        assert_eq!(provider.status(), ProviderStatus::Error, "no server, no set");
        let error = client.get_bool_value("banner", None, None).await.unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::ProviderNotReady);

        let server = dir.serve_at(&address);
        put_set(&server.base, SET).await;
        eventually(Duration::from_secs(10), "the poll loads the set", async || {
            provider.status() == ProviderStatus::Ready
        })
        .await;
        let color = client.get_string_value("color", None, None).await.unwrap();
        assert_eq!(color, "red");
        set_default(&server.base, "color", "blue").await;
        eventually(Duration::from_secs(10), "the poll follows the change", async || {
            client.get_string_value("color", None, None).await.unwrap() == "blue"
        })
        .await;

        // A token the server does not know: refused, and the error does not show it.
        let stranger = MobiusProvider::builder(&base, "mbx_not-a-real-token-0123456789", "web").build().unwrap();
        let refused = stranger.start().await.unwrap_err();
        let said = format!("{refused} {refused:?}");
        assert!(said.contains("401") && !said.contains("mbx_not-a-real"), "{said}");
        stranger.shutdown();
        provider.shutdown();
    });
}
