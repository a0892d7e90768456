//! Chaos: faults carried by the routing table, injected by the proxy on real sockets.

use super::*;

use mobius_proxy::{Fault, FaultKind};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn fault(id: &str, kind: FaultKind, percent: f64) -> Fault {
    Fault { id: id.into(), kind, percent, version: None, header: None, expires_at_ms: now_ms() + 600_000 }
}

/// An upstream answering 200 with its version, counting the requests it got.
async fn counting_upstream(version: &'static str) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let hits = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    hits.fetch_add(1, Ordering::Relaxed);
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(version.as_bytes())))) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn abort_fault_hits_only_its_version_and_never_the_upstream() {
    let (v1, v1_hits) = counting_upstream("v1").await;
    let (v2, v2_hits) = counting_upstream("v2").await;
    let mut t = table(1, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 50);
    let mut boom = fault("boom", FaultKind::Abort { status: 503 }, 100.0);
    boom.version = Some("v2".into());
    t.faults = vec![boom];
    let running = start(t).await;
    let client = client();
    for _ in 0..10 {
        let canary = get(&client, &running.url, &[("x-mobius-canary", "always")]).await;
        assert_eq!((canary.status, canary.body.as_str()), (503, "injected fault boom"));
        assert_eq!(canary.headers["x-mobius-fault"], "boom");
        let stable = get(&client, &running.url, &[("x-mobius-canary", "never")]).await;
        assert_eq!((stable.status, stable.body.as_str()), (200, "v1"));
        assert!(!stable.headers.contains_key("x-mobius-fault"));
    }
    // A drawn user aborted by a fault still gets pinned to their version.
    let mut pinned = 0;
    for _ in 0..20 {
        let a = get(&client, &running.url, &[]).await;
        if a.status == 503 {
            assert!(a.cookie.unwrap().starts_with("mobius-version=v2"));
            pinned += 1;
        }
    }
    assert!(pinned > 0);
    assert_eq!(v2_hits.load(Ordering::Relaxed), 0, "an abort never reaches the upstream");
    assert!(v1_hits.load(Ordering::Relaxed) >= 10);

    let slis = running.proxy.slis();
    let (s1, s2) = (&slis.versions["v1"], &slis.versions["v2"]);
    assert_eq!((s1.injected, s1.injected_errors, s1.errors), (0, 0, 0));
    assert_eq!(s2.requests, 10 + pinned);
    assert_eq!((s2.injected, s2.injected_errors, s2.errors), (s2.requests, s2.requests, s2.requests));
    assert_eq!(s2.responses(), s2.requests);
    running.stop().await;
}

#[tokio::test]
async fn half_the_requests_abort_under_a_50_percent_fault() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let mut t = table(1, Some(("v1", vec![v1])), None, 0);
    // A 4xx abort: injected, but not an injected error.
    t.faults = vec![fault("half", FaultKind::Abort { status: 429 }, 50.0)];
    let running = start(t).await;
    let client = client();
    let n = 2000;
    let mut aborted = 0u64;
    for _ in 0..n {
        let a = get(&client, &running.url, &[]).await;
        match a.status {
            429 => aborted += 1,
            200 => assert_eq!(a.body, "v1"),
            other => panic!("unexpected status {other}"),
        }
    }
    // σ = √(2000 · ¼) ≈ 22: ±150 is more than 6σ.
    assert!((850..=1150).contains(&aborted), "{aborted} of {n} aborted");
    let s = &running.proxy.slis().versions["v1"];
    assert_eq!((s.requests, s.injected, s.injected_errors, s.responses_4xx), (n, aborted, 0, aborted));
    running.stop().await;
}

#[tokio::test]
async fn delay_fault_adds_latency_then_forwards() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let mut t = table(1, Some(("v1", vec![v1])), None, 0);
    t.faults = vec![fault("slow", FaultKind::Delay { ms: 150, jitter_ms: 50 }, 100.0)];
    let running = start(t).await;
    let client = client();
    for _ in 0..3 {
        let a = get(&client, &running.url, &[]).await;
        assert_eq!((a.status, a.body.as_str()), (200, "v1"));
        assert_eq!(a.headers["x-mobius-fault"], "slow");
    }
    let s = &running.proxy.slis().versions["v1"];
    assert_eq!((s.requests, s.injected, s.injected_errors, s.errors), (3, 3, 0, 0));
    // The delay counts in the latency the proxy records for the version. A lower bound on the
    // proxy's own record, which a sleep guarantees: no race with the test's clock.
    assert!(s.recent_latencies_ms.iter().all(|&ms| ms >= 150.0), "{:?}", s.recent_latencies_ms);

    // The same table without the fault: forwarded without a fault.
    let mut calm = running.proxy.table();
    calm.generation += 1;
    calm.faults.clear();
    running.proxy.set_table(calm);
    let a = get(&client, &running.url, &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "v1"));
    assert!(!a.headers.contains_key("x-mobius-fault"));
    assert_eq!(running.proxy.slis().versions["v1"].injected, 3);
    running.stop().await;
}

/// While a delay fault holds a request, the upstream has not seen it, and requests the fault
/// does not apply to go through meanwhile: what "delayed" means, without timing it.
#[tokio::test]
async fn a_delayed_request_is_held_back_from_the_upstream() {
    let (v1, hits) = counting_upstream("v1").await;
    let mut t = table(1, Some(("v1", vec![v1])), None, 0);
    let mut held = fault("held", FaultKind::Delay { ms: 60_000, jitter_ms: 0 }, 100.0);
    held.header = Some(("X-Game-Day".into(), "on".into()));
    t.faults = vec![held];
    let running = start(t).await;
    let client = client();
    let delayed = tokio::spawn({
        let (client, url) = (client.clone(), running.url.clone());
        async move { get(&client, &url, &[("x-game-day", "on")]).await }
    });
    // The proxy counts the injection just before it waits: from then on the request is held.
    while running.proxy.slis().versions.get("v1").is_none_or(|s| s.injected == 0) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let other = get(&client, &running.url, &[]).await;
    assert_eq!((other.status, other.body.as_str()), (200, "v1"));
    assert!(!other.headers.contains_key("x-mobius-fault"));
    assert_eq!(hits.load(Ordering::Relaxed), 1, "only the request without the fault reached the upstream");
    assert!(!delayed.is_finished(), "the delayed request was answered");
    // Not stopped gracefully: that would wait for the held request. The runtime drops both.
    delayed.abort();
}

#[tokio::test]
async fn header_scoped_fault_hits_only_requests_with_the_header() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let mut t = table(1, Some(("v1", vec![v1])), None, 0);
    let mut scoped = fault("scoped", FaultKind::Abort { status: 500 }, 100.0);
    scoped.header = Some(("X-Game-Day".into(), "on".into()));
    t.faults = vec![scoped];
    let running = start(t).await;
    let client = client();
    for _ in 0..5 {
        assert_eq!(get(&client, &running.url, &[("x-game-day", "on")]).await.status, 500);
        assert_eq!(get(&client, &running.url, &[("x-game-day", "off")]).await.status, 200);
        assert_eq!(get(&client, &running.url, &[]).await.status, 200);
    }
    let s = &running.proxy.slis().versions["v1"];
    assert_eq!((s.requests, s.injected, s.injected_errors, s.errors), (15, 5, 5, 5));
    running.stop().await;
}

#[tokio::test]
async fn expired_fault_does_nothing() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let mut t = table(1, Some(("v1", vec![v1])), None, 0);
    let mut old = fault("old", FaultKind::Abort { status: 503 }, 100.0);
    old.expires_at_ms = now_ms() - 1;
    let mut soon = fault("soon", FaultKind::Abort { status: 502 }, 100.0);
    soon.expires_at_ms = now_ms() + 300;
    t.faults = vec![old, soon];
    let running = start(t).await;
    let client = client();
    // The first fault has expired: the second, still live, applies.
    assert_eq!(get(&client, &running.url, &[]).await.body, "injected fault soon");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Both expired: no fault, with the same table.
    let a = get(&client, &running.url, &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "v1"));
    let s = &running.proxy.slis().versions["v1"];
    assert_eq!((s.requests, s.injected, s.injected_errors), (2, 1, 1));
    running.stop().await;
}

#[tokio::test]
async fn faults_travel_in_the_table_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = files::table_path(dir.path(), "web", "production");
    let mut t = table(1, Some(("v1", vec!["127.0.0.1:1".parse().unwrap()])), None, 0);
    files::write_atomic(&path, &t).unwrap();
    assert!(
        !std::fs::read_to_string(&path).unwrap().contains("faults"),
        "no faults, no key: old readers are unaffected"
    );
    t.faults = vec![fault("f", FaultKind::Delay { ms: 5, jitter_ms: 0 }, 12.5)];
    files::write_atomic(&path, &t).unwrap();
    assert_eq!(files::read_table(&path).unwrap(), t);
    let old: RoutingTable = serde_json::from_str(
        r#"{"service":"web","environment":"production","generation":1,"stable":null,"canary":null,"canary_weight":0}"#,
    )
    .unwrap();
    assert!(old.faults.is_empty());
}
