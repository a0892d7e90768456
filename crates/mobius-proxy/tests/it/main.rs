//! The proxy on loopback with real sockets: upstreams are small hyper servers started here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mobius_proxy::{Backend, Proxy, RoutingTable, files};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An upstream answering `status` with its version as the body; `/slow` waits 200 ms, `/echo`
/// returns the request body, `/fail` answers 503, `x-seen-forwarded-for` / `x-seen-connection`
/// report headers, and `x-echo-flag` comes back as `x-mobius-flag` (what a flagged app says).
async fn upstream(version: &'static str, status: u16, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    if req.uri().path() == "/slow" {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let seen_xff = req.headers().get("x-forwarded-for").cloned();
                    let seen_private = req.headers().contains_key("x-private");
                    let flag = req.headers().get("x-echo-flag").cloned();
                    let fail = req.uri().path() == "/fail";
                    let body = if req.uri().path() == "/echo" {
                        req.into_body().collect().await.unwrap().to_bytes()
                    } else {
                        Bytes::from_static(version.as_bytes())
                    };
                    let mut response = Response::new(Full::new(body));
                    *response.status_mut() = StatusCode::from_u16(if fail { 503 } else { status }).unwrap();
                    if let Some(v) = flag {
                        response.headers_mut().insert("x-mobius-flag", v);
                    }
                    if let Some(v) = seen_xff {
                        response.headers_mut().insert("x-seen-forwarded-for", v);
                    }
                    if seen_private {
                        response.headers_mut().insert("x-seen-private", "1".parse().unwrap());
                    }
                    Ok::<_, Infallible>(response)
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

/// An address nothing listens on.
async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn table(
    generation: u64,
    stable: Option<(&str, Vec<SocketAddr>)>,
    canary: Option<(&str, Vec<SocketAddr>)>,
    weight: u8,
) -> RoutingTable {
    let backend = |b: Option<(&str, Vec<SocketAddr>)>| b.map(|(v, addrs)| Backend { version: v.into(), addrs });
    RoutingTable {
        service: "web".into(),
        environment: "production".into(),
        generation,
        stable: backend(stable),
        canary: backend(canary),
        canary_weight: weight,
        faults: Vec::new(),
    }
}

struct Running {
    proxy: Arc<Proxy>,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.served).await.unwrap().unwrap().unwrap();
    }
}

async fn start(table: RoutingTable) -> Running {
    let proxy = Proxy::new(table);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(proxy.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    Running { proxy, url, stop: Some(stop), served }
}

type TestClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Answer {
    status: u16,
    body: String,
    cookie: Option<String>,
    headers: hyper::HeaderMap,
}

async fn get(client: &TestClient, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(client, req.body(Full::default()).unwrap()).await
}

async fn send(client: &TestClient, req: Request<Full<Bytes>>) -> Answer {
    let response = client.request(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let cookie = headers.get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Answer { status, body, cookie, headers }
}

#[tokio::test]
async fn weighted_split_sets_the_cookie() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let v2 = upstream("v2", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 10)).await;
    let client = client();
    let mut canary = 0;
    for _ in 0..1000 {
        let answer = get(&client, &running.url, &[]).await;
        assert_eq!(answer.status, 200);
        let cookie = answer.cookie.expect("a drawn request is pinned");
        assert_eq!(cookie, format!("mobius-version={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400", answer.body));
        canary += usize::from(answer.body == "v2");
    }
    assert!((60..=140).contains(&canary), "{canary} of 1000 went to the canary at 10%");
    let slis = running.proxy.slis();
    assert_eq!(slis.versions["v2"].requests, canary as u64);
    assert_eq!(slis.versions["v1"].requests, 1000 - canary as u64);
    running.stop().await;
}

#[tokio::test]
async fn cookie_keeps_a_user_on_their_version() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let v2 = upstream("v2", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 10)).await;
    let client = client();
    for _ in 0..50 {
        let answer = get(&client, &running.url, &[("cookie", "theme=dark; mobius-version=v2")]).await;
        assert_eq!((answer.body.as_str(), answer.cookie), ("v2", None));
    }
    for _ in 0..50 {
        let answer = get(&client, &running.url, &[("cookie", "mobius-version=v1")]).await;
        assert_eq!(answer.body, "v1");
    }
    // A version no longer in the table is drawn again and re-pinned.
    let answer = get(&client, &running.url, &[("cookie", "mobius-version=v0")]).await;
    assert!(answer.cookie.is_some());
    running.stop().await;
}

#[tokio::test]
async fn header_forces_a_version() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let v2 = upstream("v2", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 0)).await;
    let client = client();
    for _ in 0..20 {
        let answer =
            get(&client, &running.url, &[("x-mobius-canary", "always"), ("cookie", "mobius-version=v1")]).await;
        assert_eq!((answer.body.as_str(), answer.cookie), ("v2", None));
    }
    running.proxy.set_table(table(2, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 100));
    for _ in 0..20 {
        let answer = get(&client, &running.url, &[("x-mobius-canary", "never")]).await;
        assert_eq!(answer.body, "v1");
    }
    running.stop().await;
}

#[tokio::test]
async fn no_backend_is_503() {
    let running = start(RoutingTable::empty("web", "production")).await;
    let answer = get(&client(), &running.url, &[]).await;
    assert_eq!(answer.status, 503);
    assert!(!answer.body.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn dead_upstream_is_502_and_a_5xx_of_its_version() {
    let dead = dead_addr().await;
    let running = start(table(1, Some(("v1", vec![dead])), None, 0)).await;
    let client = client();
    for _ in 0..3 {
        assert_eq!(get(&client, &running.url, &[]).await.status, 502);
    }
    let v1 = &running.proxy.slis().versions["v1"];
    assert_eq!((v1.requests, v1.errors), (3, 3));
    running.stop().await;
}

#[tokio::test]
async fn responses_naming_a_flag_variant_are_counted_for_it_beside_their_version() {
    let up = upstream("v1", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![up])), None, 0)).await;
    let client = client();
    for _ in 0..4 {
        get(&client, &format!("{}/fail", running.url), &[("x-echo-flag", "checkout=on")]).await;
    }
    for _ in 0..6 {
        get(&client, &running.url, &[("x-echo-flag", "checkout=off, banner=b")]).await;
    }
    get(&client, &running.url, &[]).await;
    get(&client, &running.url, &[("x-echo-flag", "no-equals-sign")]).await;
    let slis = running.proxy.slis();
    let counts = |key: &str| slis.variants.get(key).map(|s| (s.requests, s.errors));
    assert_eq!(counts("checkout=on"), Some((4, 4)));
    assert_eq!(counts("checkout=off"), Some((6, 0)));
    assert_eq!(counts("banner=b"), Some((6, 0)));
    assert_eq!(slis.variants.len(), 3, "{:?}", slis.variants.keys());
    assert_eq!((slis.versions["v1"].requests, slis.versions["v1"].errors), (12, 4));
    running.stop().await;
}

#[tokio::test]
async fn idempotent_requests_retry_on_another_address() {
    let dead = dead_addr().await;
    let live = upstream("v1", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![dead, live])), None, 0)).await;
    let client = client();
    for _ in 0..10 {
        assert_eq!(get(&client, &running.url, &[]).await.status, 200);
    }
    // A POST is not retried: round-robin sends one of two to the dead address.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let req = Request::post(&running.url).body(Full::new(Bytes::from_static(b"x"))).unwrap();
        statuses.push(send(&client, req).await.status);
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 502]);
    running.stop().await;
}

#[tokio::test]
async fn slis_count_errors_and_latency_per_version() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let v2 = upstream("v2", 500, Duration::from_millis(30)).await;
    let running = start(table(1, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 50)).await;
    let client = client();
    for _ in 0..10 {
        assert_eq!(get(&client, &running.url, &[("x-mobius-canary", "always")]).await.status, 500);
        assert_eq!(get(&client, &running.url, &[("x-mobius-canary", "never")]).await.status, 200);
    }
    let before = running.proxy.slis();
    let (s1, s2) = (&before.versions["v1"], &before.versions["v2"]);
    assert_eq!((s1.requests, s1.errors, s1.responses_2xx), (10, 0, 10));
    assert_eq!((s2.requests, s2.errors, s2.responses_2xx), (10, 10, 0));
    assert_eq!(s2.recent_latencies_ms.len(), 10);
    assert!(s2.recent_latencies_ms.iter().all(|&ms| ms >= 30.0), "{:?}", s2.recent_latencies_ms);
    assert!(s2.quantile_ms(0.5).unwrap() >= 25.0);
    assert!(s1.quantile_ms(0.5).unwrap() < 25.0);

    get(&client, &running.url, &[("x-mobius-canary", "always")]).await;
    let after = running.proxy.slis();
    let delta = after.versions["v2"].since(&before.versions["v2"]);
    assert_eq!((delta.requests, delta.errors, delta.responses()), (1, 1, 1));
    let json = serde_json::to_string(&after).unwrap();
    let back = serde_json::from_str::<mobius_proxy::SliSnapshot>(&json).unwrap();
    for (version, sli) in &after.versions {
        let read = &back.versions[version];
        assert_eq!((read.requests, read.errors, &read.bucket_counts), (sli.requests, sli.errors, &sli.bucket_counts));
        let drift = read.recent_latencies_ms.iter().zip(&sli.recent_latencies_ms).map(|(a, b)| (a - b).abs());
        assert!(drift.fold(0.0, f64::max) < 1e-9);
    }
    running.stop().await;
}

#[tokio::test]
async fn forwards_headers_and_streams_bodies() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![v1])), None, 0)).await;
    let client = client();
    let answer = get(
        &client,
        &format!("{}/x?y=1", running.url),
        &[("x-forwarded-for", "10.1.2.3"), ("connection", "x-private"), ("x-private", "1")],
    )
    .await;
    assert_eq!(answer.headers["x-seen-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert!(!answer.headers.contains_key("x-seen-private"), "headers named by Connection stay on this hop");
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let req = Request::post(format!("{}/echo", running.url)).body(Full::new(Bytes::from(big.clone()))).unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes().as_ref(), big.as_slice());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_swaps_under_load_fail_nothing() {
    let a = upstream("a", 200, Duration::ZERO).await;
    let b = upstream("b", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("a", vec![a])), None, 0)).await;
    let ok = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (url, ok, stop) = (running.url.clone(), ok.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let client = client();
            let mut failed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let answer = get(&client, &url, &[]).await;
                if answer.status == 200 && (answer.body == "a" || answer.body == "b") {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let layouts = [
        table(0, Some(("a", vec![a])), Some(("b", vec![b])), 10),
        table(0, Some(("a", vec![a])), Some(("b", vec![b])), 50),
        table(0, Some(("b", vec![b])), None, 0),
        table(0, Some(("a", vec![a, b])), Some(("b", vec![b])), 100),
        table(0, Some(("a", vec![a])), None, 0),
    ];
    for generation in 2..102u64 {
        let mut next = layouts[generation as usize % layouts.len()].clone();
        next.generation = generation;
        running.proxy.set_table(next);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for task in load {
        failed += task.await.unwrap();
    }
    assert_eq!(failed, 0);
    assert!(ok.load(Ordering::Relaxed) > 500, "only {} requests", ok.load(Ordering::Relaxed));
    assert_eq!(running.proxy.table().generation, 101);
    running.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![v1])), None, 0)).await;
    let url = format!("{}/slow", running.url);
    let in_flight = tokio::spawn(async move { get(&client(), &url, &[]).await.status });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = running.url.trim_start_matches("http://").to_owned();
    running.stop().await;
    assert_eq!(in_flight.await.unwrap(), 200);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn follow_table_swaps_generations_and_survives_bad_files() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let v2 = upstream("v2", 200, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = files::table_path(dir.path(), "web", "production");
    let running = start(RoutingTable::empty("web", "production")).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let follower =
        tokio::spawn(files::follow_table(running.proxy.clone(), path.clone(), Duration::from_millis(20), async move {
            let _ = stopped.await;
        }));
    let client = client();
    let wait_for = |generation: u64| {
        let proxy = running.proxy.clone();
        async move {
            for _ in 0..200 {
                if proxy.table().generation == generation {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("generation {generation} never arrived; have {}", proxy.table().generation);
        }
    };

    assert_eq!(get(&client, &running.url, &[]).await.status, 503, "no file yet");
    files::write_atomic(&path, &table(1, Some(("v1", vec![v1])), None, 0)).unwrap();
    wait_for(1).await;
    assert_eq!(get(&client, &running.url, &[]).await.body, "v1");

    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(&client, &running.url, &[]).await.body, "v1", "a deleted file keeps the last table");

    std::fs::write(&path, b"{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.proxy.table().generation, 1);
    assert_eq!(get(&client, &running.url, &[]).await.body, "v1", "an invalid file keeps the last table");

    // An older generation is ignored; a newer one is taken.
    files::write_atomic(&path, &table(0, Some(("v2", vec![v2])), None, 0)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.proxy.table().generation, 1);
    files::write_atomic(&path, &table(2, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 100)).unwrap();
    wait_for(2).await;
    assert_eq!(get(&client, &running.url, &[]).await.body, "v2");

    let _ = stop.send(());
    follower.await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn publish_slis_writes_snapshots() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = files::sli_path(dir.path(), "web", "production");
    let running = start(table(1, Some(("v1", vec![v1])), None, 0)).await;
    get(&client(), &running.url, &[]).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let publisher =
        tokio::spawn(files::publish_slis(running.proxy.clone(), path.clone(), Duration::from_millis(20), async move {
            let _ = stopped.await;
        }));
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _ = stop.send(());
    publisher.await.unwrap();
    let snapshot: mobius_proxy::SliSnapshot = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(snapshot.versions["v1"].requests, 1);
    assert!(snapshot.taken_at_ms > 1_700_000_000_000);
    running.stop().await;
}

/// An upstream that closes every connection after one response (no keep-alive).
async fn closing_upstream(version: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(version.as_bytes()))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn upstream_closing_its_connections_is_reconnected() {
    let v1 = closing_upstream("v1").await;
    let running = start(table(1, Some(("v1", vec![v1])), None, 0)).await;
    // One client connection, so every request reuses the same downstream connection.
    let client: TestClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build_http();
    for _ in 0..20 {
        let answer = get(&client, &running.url, &[]).await;
        assert_eq!((answer.status, answer.body.as_str()), (200, "v1"));
    }
    assert_eq!(running.proxy.slis().versions["v1"].errors, 0);
    running.stop().await;
}

#[test]
fn serve_std_serves_on_several_threads_and_shuts_down_gracefully() {
    let upstreams = tokio::runtime::Runtime::new().unwrap();
    let (v1, v2) = upstreams
        .block_on(async { (upstream("v1", 200, Duration::ZERO).await, upstream("v2", 200, Duration::ZERO).await) });
    let proxy = Proxy::new(table(1, Some(("v1", vec![v1])), Some(("v2", vec![v2])), 50));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = {
        let proxy = proxy.clone();
        std::thread::spawn(move || {
            proxy.serve_std(listener, 3, async move {
                let _ = stopped.await;
            })
        })
    };
    upstreams.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..8 {
            let url = url.clone();
            clients.push(tokio::spawn(async move {
                let client = client();
                for _ in 0..25 {
                    assert_eq!(get(&client, &url, &[]).await.status, 200);
                }
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        let slow = format!("{url}/slow");
        let in_flight = tokio::spawn(async move { get(&client(), &slow, &[]).await.status });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        assert_eq!(in_flight.await.unwrap(), 200, "the in-flight request finishes");
    });
    serving.join().unwrap().unwrap();
    let slis = proxy.slis();
    assert_eq!(slis.versions["v1"].requests + slis.versions["v2"].requests, 201);
    assert!(slis.versions["v2"].requests > 0 && slis.versions["v1"].requests > 0);
    let addr = url.trim_start_matches("http://").to_owned();
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}

#[tokio::test]
async fn recording_can_be_turned_off_for_benchmarks() {
    let v1 = upstream("v1", 200, Duration::ZERO).await;
    let running = start(table(1, Some(("v1", vec![v1])), None, 0)).await;
    let client = client();
    running.proxy.set_recording(false);
    assert_eq!(get(&client, &running.url, &[]).await.status, 200, "traffic still flows");
    let counted = |slis: &mobius_proxy::SliSnapshot| slis.versions.get("v1").map_or(0, |s| s.requests);
    assert_eq!(counted(&running.proxy.slis()), 0);
    running.proxy.set_recording(true);
    get(&client, &running.url, &[]).await;
    assert_eq!(counted(&running.proxy.slis()), 1);
}

mod chaos;
