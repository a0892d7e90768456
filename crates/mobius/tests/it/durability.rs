//! An acknowledged write survives kill -9: writers keep sending while the server is killed,
//! and every event the server acknowledged is in the log after a restart.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;

use crate::util::{ADMIN, Dir, deployed, http};

#[test]
fn every_acknowledged_event_survives_sigkill() {
    let dir = Dir::new();
    let mut server = dir.serve(&[]);
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url("/api/v1/events");

    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (acknowledged, stop, url) = (acknowledged.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let client = http();
                for n in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("w{writer}-{n}");
                    let body = deployed(&id, "shop", "production", "2024-05-01T10:00:00Z").to_string();
                    let sent = client
                        .post(&url)
                        .bearer_auth(ADMIN)
                        .header("content-type", "application/json")
                        .body(body)
                        .send();
                    match sent {
                        Ok(response) if response.status() == StatusCode::CREATED => {
                            acknowledged.lock().unwrap().insert(id);
                        }
                        Ok(response) => panic!("unexpected {}", response.status()),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();

    // Kill while writes are in flight, once enough have been acknowledged.
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer");
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    let listed = dir.json(&["events", "list", "--limit", "1000000"]);
    let stored: HashSet<String> =
        listed.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    assert!(stored.len() >= acknowledged.len());

    // The restarted server serves them too.
    let server = dir.serve(&[]);
    let events: serde_json::Value =
        http().get(server.url("/api/v1/events?limit=1")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1);
}
