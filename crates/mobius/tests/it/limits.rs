//! The limits on the server's doors under a small flood, over loopback with the default
//! limits (`mobius serve` has no setting for them): connections that send nothing and slow
//! unsigned uploads held open do not keep `/healthz` from answering nor grow the server's
//! memory; the server closes the silent connections after the header-read timeout, turns away
//! unsigned bodies beyond the few it reads at once, and lets go of every connection once its
//! client does. The full-size flood is `bench/server/limits.sh`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::hardening::{RSS_BOUND_KIB, status_kib};
use crate::util::{Dir, http};

const IDLE: usize = 200;
const UPLOADS: usize = 20;
/// `Limits::default().unauthenticated_reads`: unsigned bodies read at once.
const UNVERIFIED_READS: usize = 8;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The sockets the server holds: its listener and its connections (not the files it opens as
/// it goes, which would blur the count).
fn sockets(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.filter_map(Result::ok)
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to.to_string_lossy().starts_with("socket:")))
        .count()
}

/// Waits until `done` holds, at most `limit`; whether it did.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// Whether the server closed `stream`: it reads the end of the stream (after an answer, if one
/// came) or a reset, not a timeout.
fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A `POST /api/v1/webhooks/github` declaring a 10 MiB body with a signature that cannot be
/// right, sending it 4 KiB every 50 ms until told to stop or answered (counted in `answered`).
/// Returns the answer's status, if one came.
fn slow_upload(
    address: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Option<u16>> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address).expect("connect");
        stream.set_write_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let head = format!(
            "POST /api/v1/webhooks/github HTTP/1.1\r\nhost: {address}\r\nx-github-event: push\r\n\
             x-hub-signature-256: sha256:{}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            "0".repeat(64),
            10 << 20
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let chunk = [b' '; 4096];
        let mut answer = Vec::new();
        let mut writing = true;
        while !stop.load(Ordering::Relaxed) {
            if writing {
                match stream.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // The server answered and closed: read what it said.
                    Err(_) => writing = false,
                }
            }
            stream.set_nonblocking(true).expect("non-blocking");
            let mut buf = [0u8; 4096];
            let read = stream.read(&mut buf);
            stream.set_nonblocking(false).expect("blocking");
            match read {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        answered.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
    })
}

/// 200 connections that send nothing, one kept alive after a request, and 20 slow unsigned
/// uploads: `/healthz` answers all along, memory stays small, the silent connections are
/// closed after the header-read timeout, unsigned bodies past the 8 being read are turned
/// away (503), and once the clients are gone so are their connections.
#[test]
fn healthz_answers_through_idle_connections_and_slow_uploads_which_are_then_let_go() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let pid = server.child.id();
    let address = server.base.trim_start_matches("http://").to_owned();
    let client = http();
    assert_eq!(client.get(server.url("/healthz")).send().unwrap().status(), StatusCode::OK);
    let baseline = sockets(pid);
    let started = Instant::now();

    let idle: Vec<TcpStream> = (0..IDLE).map(|_| TcpStream::connect(&address).expect("connect")).collect();
    // A kept-alive connection after one request: waiting for its next one is waiting for a head.
    let mut kept = TcpStream::connect(&address).expect("connect");
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes()).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 1024];
    while !first.ends_with(b"ok\n") {
        let n = kept.read(&mut buf).expect("the first answer");
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&first));
        first.extend_from_slice(&buf[..n]);
    }
    assert!(first.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&first));

    let (stop, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let uploads: Vec<_> = (0..UPLOADS).map(|_| slow_upload(address.clone(), stop.clone(), answered.clone())).collect();
    let held = IDLE + 1 + UPLOADS;
    assert!(
        within(Duration::from_secs(10), || sockets(pid) >= baseline + held),
        "the server holds {} sockets, {baseline} before the {held} connections",
        sockets(pid)
    );

    // Until the header-read timeout has passed for all of them, with a margin.
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    while started.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(2) {
        let t = Instant::now();
        let response = client.get(server.url("/healthz")).timeout(Duration::from_secs(5)).send();
        slowest = slowest.max(t.elapsed());
        let status = response.map(|r| r.status());
        assert_eq!(status.as_ref().ok(), Some(&StatusCode::OK), "/healthz under the flood: {status:?}");
        asked += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rss, peak) = (status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    eprintln!(
        "/healthz answered {asked} times, the slowest in {slowest:?}; server RSS {} MiB, peak {} MiB",
        rss / 1024,
        peak / 1024
    );
    assert!(peak < RSS_BOUND_KIB, "the server's peak RSS was {peak} KiB");

    // The silent connections, the kept-alive one included, were closed by the server (the idle
    // timeout, 60 s, is far off).
    let mut open = 0;
    assert!(
        within(Duration::from_secs(15), || {
            open = idle.iter().chain([&kept]).filter(|s| !closed_by_server(s)).count();
            open == 0
        }),
        "{open} silent connections still open {:?} after they were made",
        started.elapsed()
    );

    // Unsigned bodies: 8 are being read; the others were turned away once they had waited the
    // header-read timeout for a turn.
    let busy = UPLOADS - UNVERIFIED_READS;
    // Answered once their wait for a turn is over (a loaded machine may be late with it).
    within(Duration::from_secs(20), || answered.load(Ordering::Relaxed) >= busy);
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Option<u16>> = uploads.into_iter().map(|u| u.join().expect("upload thread")).collect();
    let refused = answers.iter().filter(|a| **a == Some(503)).count();
    assert_eq!(refused, busy, "answers to the {UPLOADS} slow uploads: {answers:?}");
    assert_eq!(answers.iter().filter(|a| a.is_none()).count(), UNVERIFIED_READS, "{answers:?}");

    // The clients go: so do their connections.
    drop(idle);
    drop(kept);
    let mut now = 0;
    assert!(
        within(Duration::from_secs(30), || {
            now = sockets(pid);
            now <= baseline + 1
        }),
        "{now} sockets open, {baseline} before the flood"
    );
    assert_eq!(client.get(server.url("/healthz")).send().unwrap().status(), StatusCode::OK);
}
