//! Tests of `load`.

use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;

use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use tokio::net::TcpListener;

use super::*;

/// A tiny server: `/fail` answers 500; a request carrying `user=<v>` is served by version
/// `v`; one without is assigned v1 and v2 alternately and told so with `Set-Cookie`.
/// Returns its address and a count of accepted connections.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let assigned = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let assigned = assigned.clone();
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let assigned = assigned.clone();
                async move {
                    let held = request
                        .headers()
                        .get(COOKIE)
                        .and_then(|c| c.to_str().ok())
                        .and_then(|c| c.strip_prefix("user="))
                        .map(str::to_owned);
                    let mut response = Response::builder();
                    let version = match held {
                        Some(version) => version,
                        None => {
                            let n = assigned.fetch_add(1, Ordering::SeqCst);
                            let version = if n.is_multiple_of(2) { "v1" } else { "v2" };
                            response = response.header(SET_COOKIE, format!("user={version}; Path=/"));
                            version.to_owned()
                        }
                    };
                    let status = if request.uri().path() == "/fail" {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let response = response
                        .status(status)
                        .header(VERSION_HEADER, version)
                        .body(Full::new(Bytes::from_static(b"hello")))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(tcp), service));
        }
    });
    (addr, accepted)
}

fn spec(url: String) -> LoadSpec {
    LoadSpec {
        url,
        connections: 2,
        rate_per_sec: None,
        duration: Duration::from_millis(300),
        headers: vec![("x-test".into(), "1".into())],
        sticky: false,
    }
}

#[tokio::test]
async fn keeps_connections_alive_and_counts_versions() {
    let (addr, accepted) = server().await;
    let report = run(spec(format!("http://{addr}/")), std::future::pending::<()>()).await;
    assert!(report.requests > 50, "{report:?}");
    assert_eq!(report.requests, report.ok);
    assert_eq!((report.errors_5xx, report.failed), (0, 0));
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "one connection each, kept alive");
    let (v1, v2) = (report.by_version["v1"], report.by_version["v2"]);
    assert_eq!(v1.0 + v2.0, report.requests);
    assert!(v1.0.abs_diff(v2.0) <= 1, "without cookies, alternating: {report:?}");
    assert!(report.p50_ms.unwrap() <= report.p99_ms.unwrap());
    assert!(report.rps > 0.0 && report.elapsed_secs >= 0.3);
}

#[tokio::test]
async fn sticky_connections_keep_their_version() {
    let (addr, _) = server().await;
    let sticky = LoadSpec { connections: 1, sticky: true, ..spec(format!("http://{addr}/")) };
    let report = run(sticky, std::future::pending::<()>()).await;
    assert_eq!(report.by_version.len(), 1, "{report:?}");
    assert_eq!(report.by_version["v1"].0, report.requests);
}

#[tokio::test]
async fn counts_server_errors_per_version() {
    let (addr, _) = server().await;
    let report = run(spec(format!("http://{addr}/fail")), std::future::pending::<()>()).await;
    assert!(report.errors_5xx > 0);
    assert_eq!(report.errors_5xx, report.requests);
    let errors: u64 = report.by_version.values().map(|(_, e)| e).sum();
    assert_eq!(errors, report.errors_5xx);
}

#[tokio::test]
async fn paces_to_the_rate() {
    let (addr, _) = server().await;
    let paced =
        LoadSpec { rate_per_sec: Some(100.0), duration: Duration::from_millis(500), ..spec(format!("http://{addr}/")) };
    let report = run(paced, std::future::pending::<()>()).await;
    // Slots at 0, 10, …, 490 ms: 50 due within the run; allow for scheduling jitter.
    assert!((45..=51).contains(&report.requests), "{report:?}");
}

#[tokio::test]
async fn connection_errors_are_failures() {
    // Bind then drop to get a port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let report = run(spec(format!("http://{addr}/")), std::future::pending::<()>()).await;
    assert!(report.failed > 0);
    assert_eq!(report.requests, report.failed);
    assert!(report.by_version.is_empty() && report.p50_ms.is_none());
}

#[tokio::test]
async fn spawn_snapshot_stop() {
    let (addr, _) = server().await;
    let long = LoadSpec { duration: Duration::from_secs(3600), ..spec(format!("http://{addr}/")) };
    let handle = spawn(long);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let snapshot = handle.snapshot();
    assert!(snapshot.requests > 0 && !handle.is_finished());
    let report = handle.stop().await;
    assert!(report.requests >= snapshot.requests);
    assert!(report.elapsed_secs < 10.0);
}

#[tokio::test]
async fn stop_future_ends_the_run() {
    let (addr, _) = server().await;
    let long = LoadSpec { duration: Duration::from_secs(3600), ..spec(format!("http://{addr}/")) };
    let report = run(long, tokio::time::sleep(Duration::from_millis(100))).await;
    assert!(report.elapsed_secs < 5.0 && report.requests > 0);
}

#[test]
fn invalid_specs() {
    let bad = |url: &str| spec(url.into()).validate().is_err();
    assert!(bad("https://127.0.0.1:1/"));
    assert!(bad("127.0.0.1:80"));
    let header = LoadSpec { headers: vec![("bad header".into(), "x".into())], ..spec("http://127.0.0.1:1/".into()) };
    assert!(header.validate().is_err());
    assert!(spec("http://127.0.0.1:1/a?b=c".into()).validate().is_ok());
}

#[test]
fn cookie_jar() {
    let mut jar = CookieJar::default();
    let set = |v: &'static str| HeaderValue::from_static(v);
    jar.update(&[set("a=1; Path=/"), set("b=2; Max-Age=60")]);
    assert_eq!(jar.header().unwrap(), "a=1; b=2");
    jar.update(&[set("a=3")]);
    assert_eq!(jar.header().unwrap(), "b=2; a=3");
    jar.update(&[set("b=; Max-Age=-1"), set("a=x; max-age=0")]);
    assert_eq!(jar.header(), None);
}
