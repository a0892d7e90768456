//! What only the PostgreSQL backend has: its migrations on reconnecting, and refusing a schema
//! newer than it knows.

use mobius_store::{PgStore, Store, StoreError};

use crate::cluster::Database;

#[test]
fn reconnecting_migrates_nothing_and_keeps_what_was_stored() {
    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    store.put_state("alerter", "{\"a\":1}").unwrap();
    drop(store);
    let store = PgStore::connect(&database.url).unwrap();
    assert_eq!(store.state("alerter").unwrap().as_deref(), Some("{\"a\":1}"));
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9], "each migration once");
    drop((client, store));
}

#[test]
fn a_schema_newer_than_this_build_is_refused() {
    let database = Database::create();
    drop(PgStore::connect(&database.url).unwrap());
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    client.execute("INSERT INTO schema_migrations (version, applied) VALUES (99, 0)", &[]).unwrap();
    drop(client);
    match PgStore::connect(&database.url) {
        Err(StoreError::SchemaTooNew { found: 99, known: 9 }) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

/// Connections are pooled: many threads at once share at most eight, and every write is
/// counted once.
#[test]
fn the_pool_serves_threads_at_once() {
    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..16 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..5 {
                    store.put_state(&format!("k{thread}-{i}"), "v").unwrap();
                    assert_eq!(store.state(&format!("k{thread}-{i}")).unwrap().as_deref(), Some("v"));
                }
            });
        }
    });
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let (states, connections): (i64, i64) = {
        let states = client.query_one("SELECT count(*) FROM server_state", &[]).unwrap().get(0);
        let connections = client
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()", &[])
            .unwrap()
            .get(0);
        (states, connections)
    };
    assert_eq!(states, 80);
    assert!(connections <= 9, "the pool's eight and this one: {connections}");
    drop((client, store));
}

/// A wrong database name fails at connect, naming the server without its password.
#[test]
fn a_database_that_is_not_there_fails_at_connect() {
    let database = Database::create();
    let url = database.url.replace("/t_", "/missing_");
    let Err(error) = PgStore::connect(&url) else { panic!("connected to a missing database") };
    assert!(matches!(error, StoreError::PgConnect { .. }), "{error}");
    let _ = &database;
}

/// Writers from many threads (or servers) go one at a time: every event is stored once, and
/// the log's `seq`s are gapless and in commit order, as SQLite's are, duplicates and all.
#[test]
fn concurrent_appends_store_each_event_once_with_gapless_seqs() {
    use mobius_events::materialise::{NoAncestry, Rules};
    use mobius_events::{AppendStatus, NewEvent, Origin};
    use mobius_store::{EventQuery, IngestContext};

    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    let event = |n: u32| NewEvent {
        id: format!("e{n}"),
        source: "/test".into(),
        ty: "dev.cdeventsx.test-thing.happened.0.1.0".into(),
        subject: "thing".into(),
        timestamp: crate::at(i64::from(n)),
        origin: Origin::Api,
        raw: "{}".into(),
        observations: Vec::new(),
    };
    let stored: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8u32)
            .map(|thread| {
                let store = &store;
                scope.spawn(move || {
                    let ctx = IngestContext { rules: Rules::default(), ancestry: &NoAncestry };
                    // Each thread's events overlap the next thread's by half.
                    let batch: Vec<NewEvent> = (thread * 10..thread * 10 + 20).map(event).collect();
                    let statuses = store.append(&batch, &ctx).unwrap();
                    statuses.iter().filter(|s| **s == AppendStatus::Stored).count()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(stored, 90, "e0..e89, each once");
    let log = store.events(&EventQuery { limit: 1_000, ..EventQuery::default() }).unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=90).collect::<Vec<i64>>());
    drop(store);
}

/// A connection the server closed while it was idle is dropped, not given back, and the call
/// that met it is made again on a new one: a read, or a write whose `BEGIN` failed (nothing
/// was written yet).
#[test]
fn a_connection_closed_while_idle_is_replaced_without_failing_the_call() {
    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    store.put_state("k", "v").unwrap();
    let mut admin = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()";
    admin.execute(terminate, &[]).unwrap();
    assert_eq!(store.state("k").unwrap().as_deref(), Some("v"), "a new connection");
    admin.execute(terminate, &[]).unwrap();
    store.put_state("k", "w").unwrap();
    assert_eq!(store.state("k").unwrap().as_deref(), Some("w"));
    drop((admin, store));
}

/// A write whose connection dies after it began is never made twice: it fails, as the store
/// unavailable, and wrote nothing; the next call gets a new connection.
#[test]
fn a_write_cut_off_midway_fails_unavailable_and_is_not_retried() {
    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    store.put_state("k", "v").unwrap();
    // Hold every writer's lock, so the store's write waits inside its transaction.
    let mut holder = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x6d6f_6269_7573_0002_i64]).unwrap();
    let write = std::thread::scope(|scope| {
        let writing = scope.spawn(|| store.put_state("k", "cut"));
        let mut admin = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let waiting =
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let pid: i32 = loop {
            if let Some(row) = admin.query_opt(waiting, &[]).unwrap() {
                break row.get(0);
            }
            assert!(std::time::Instant::now() < deadline, "the write never waited for the lock");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).unwrap();
        writing.join().unwrap()
    });
    tx.rollback().unwrap();
    let error = write.expect_err("the write's connection was cut");
    assert!(error.is_unavailable(), "{error}: {:?}", std::error::Error::source(&error));
    assert_eq!(store.state("k").unwrap().as_deref(), Some("v"), "nothing written, nothing retried");
    store.put_state("k", "w").unwrap();
    drop((holder, store));
}

/// A server that does not answer: refused at connect, as the store unavailable, and the
/// message shows the URL without its password.
#[test]
fn a_server_that_does_not_answer_is_unavailable_and_its_password_is_never_shown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://mobius:hunter2-secret@127.0.0.1:{port}/mobius?connect_timeout=2");
    let Err(error) = PgStore::connect(&url) else { panic!("connected to nothing") };
    assert!(error.is_unavailable(), "{error}");
    let said = format!("{error}");
    assert!(said.contains("127.0.0.1") && said.contains("***") && !said.contains("hunter2"), "{said}");
}

/// Agents polling through every replica claim at once: each queued job goes to exactly one of
/// them, and none waits for another's claim (`FOR UPDATE SKIP LOCKED`).
#[test]
fn concurrent_claims_take_every_agent_job_exactly_once() {
    use mobius_store::{AgentJobState, NewAgentJob};

    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    let queued: Vec<i64> = (0..200)
        .map(|n| {
            let job = NewAgentJob {
                run: 1,
                job: format!("j{n}"),
                labels: Vec::new(),
                payload: String::new(),
                queued: crate::at(n),
            };
            store.enqueue_agent_job(&job).unwrap()
        })
        .collect();
    let start = std::sync::Barrier::new(8);
    let claims: Vec<(String, i64)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let (store, start) = (&store, &start);
                scope.spawn(move || {
                    let agent = format!("agent-{thread}");
                    start.wait();
                    let mut claimed = Vec::new();
                    while let Some(job) =
                        store.claim_agent_job(&agent, "t", &[], crate::at(1_000), crate::at(1_060)).unwrap()
                    {
                        assert_eq!(job.agent.as_deref(), Some(agent.as_str()));
                        claimed.push((agent.clone(), job.id));
                    }
                    claimed
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let mut ids: Vec<i64> = claims.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, queued, "every job once");
    let agents: std::collections::BTreeSet<&str> = claims.iter().map(|(agent, _)| agent.as_str()).collect();
    assert!(agents.len() > 1, "the claims were spread over several agents: {agents:?}");
    for (agent, id) in &claims {
        let job = store.agent_job(*id).unwrap().unwrap();
        assert_eq!((job.state, job.agent.as_deref()), (AgentJobState::Running, Some(agent.as_str())), "job {id}");
    }
    drop(store);
}

/// A claimer passes by a job another transaction holds, without waiting for it, and takes it
/// once it is free again.
#[test]
fn a_claim_passes_by_a_job_another_claimer_holds() {
    use mobius_store::NewAgentJob;

    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    let job = |n: i64| NewAgentJob {
        run: 1,
        job: format!("j{n}"),
        labels: Vec::new(),
        payload: String::new(),
        queued: crate::at(n),
    };
    let first = store.enqueue_agent_job(&job(0)).unwrap();
    let second = store.enqueue_agent_job(&job(1)).unwrap();

    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let mut holder = client.transaction().unwrap();
    holder.execute("SELECT id FROM agent_jobs WHERE id = $1 FOR UPDATE", &[&first]).unwrap();
    let claimed = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::channel();
        let store = &store;
        scope.spawn(move || {
            let _ = sender.send(store.claim_agent_job("a", "t", &[], crate::at(10), crate::at(40)).unwrap());
        });
        let claimed = receiver.recv_timeout(std::time::Duration::from_secs(20));
        // Whatever happened, the claimer must not stay blocked behind the lock.
        holder.rollback().unwrap();
        claimed.expect("the claim waited for the held row")
    });
    assert_eq!(claimed.map(|j| j.id), Some(second), "the held job is passed by");
    let claimed = store.claim_agent_job("b", "t", &[], crate::at(11), crate::at(41)).unwrap();
    assert_eq!(claimed.map(|j| j.id), Some(first), "and taken once free");
    drop((client, store));
}

/// The same for rollout commands: a replica claiming passes by a command another replica's
/// claim holds at that instant, without waiting for it.
#[test]
fn a_command_claim_passes_by_a_command_another_claimer_holds() {
    use mobius_store::{NewRolloutCommand, Scope};

    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    let command = |n: i64| NewRolloutCommand {
        service: "shop".into(),
        environment: "production".into(),
        body: format!("c{n}"),
        queued: crate::at(n),
    };
    let first = store.enqueue_rollout_command(&command(0)).unwrap();
    let second = store.enqueue_rollout_command(&command(1)).unwrap();
    let mine = [Scope { service: "shop".into(), environment: "production".into() }];

    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let mut holder = client.transaction().unwrap();
    holder.execute("SELECT id FROM rollout_commands WHERE id = $1 FOR UPDATE", &[&first]).unwrap();
    let claimed = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::channel();
        let (store, mine) = (&store, &mine);
        scope.spawn(move || {
            let _ = sender.send(store.claim_rollout_command(mine, "a", crate::at(10)).unwrap());
        });
        let claimed = receiver.recv_timeout(std::time::Duration::from_secs(20));
        // Whatever happened, the claimer must not stay blocked behind the lock.
        holder.rollback().unwrap();
        claimed.expect("the claim waited for the held row")
    });
    assert_eq!(claimed.map(|c| c.id), Some(second), "the held command is passed by");
    let claimed = store.claim_rollout_command(&mine, "b", crate::at(11)).unwrap();
    assert_eq!(claimed.map(|c| c.id), Some(first), "and taken once free");
    drop((client, store));
}

/// The server stopped under the pool and started again: every call meanwhile is the store
/// unavailable (never another error), and once it is back every call is served — connections
/// from before the restart, idle in the pool, are not handed out again.
#[test]
fn a_server_restarted_under_the_pool_is_unavailable_then_served_again() {
    let mut cluster = crate::cluster::Cluster::init().unwrap();
    cluster.start().unwrap();
    cluster.create_database("restart");
    let store = PgStore::connect(&cluster.url("restart")).unwrap();
    // Several connections in the pool, all idle once the threads are done.
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let store = &store;
            scope.spawn(move || store.put_state(&format!("before-{thread}"), "v").unwrap());
        }
    });

    cluster.stop().unwrap();
    for _ in 0..3 {
        let error = store.put_state("during", "v").unwrap_err();
        assert!(error.is_unavailable(), "{error}: {:?}", std::error::Error::source(&error));
        let error = store.state("before-0").unwrap_err();
        assert!(error.is_unavailable(), "{error}: {:?}", std::error::Error::source(&error));
    }

    cluster.start().unwrap();
    for thread in 0..4 {
        assert_eq!(store.state(&format!("before-{thread}")).unwrap().as_deref(), Some("v"), "what committed is kept");
    }
    store.put_state("after", "v").unwrap();
    assert_eq!(store.state("during").unwrap(), None, "a refused write left nothing");
    drop(store);
}

/// The server restarted while the pool was idle (no call saw it go): the first calls after
/// are served all the same, on new connections.
#[test]
fn a_server_restarted_while_the_pool_was_idle_is_served_at_once() {
    let mut cluster = crate::cluster::Cluster::init().unwrap();
    cluster.start().unwrap();
    cluster.create_database("idle");
    let store = PgStore::connect(&cluster.url("idle")).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let store = &store;
            scope.spawn(move || store.put_state(&format!("k{thread}"), "v").unwrap());
        }
    });
    cluster.stop().unwrap();
    cluster.start().unwrap();
    for thread in 0..4 {
        let read = store.state(&format!("k{thread}"));
        assert_eq!(read.unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e))).as_deref(), Some("v"));
    }
    store.put_state("after", "v").unwrap();
    drop(store);
}

/// A replica listening hears what another replica's store did to the agent queue: a job
/// queued, then claimed, its log grown, finished — each announced at commit.
#[test]
fn the_agent_queue_announces_its_changes_to_listeners() {
    let database = Database::create();
    let (here, there) = (PgStore::connect(&database.url).unwrap(), PgStore::connect(&database.url).unwrap());
    let (sender, heard) = std::sync::mpsc::channel::<String>();
    let sender = std::sync::Mutex::new(sender);
    let wake: mobius_store::Listener =
        Box::new(move |payload: &str| sender.lock().unwrap().send(payload.to_owned()).is_ok());
    assert!(here.listen("mobius_agent_jobs", wake).unwrap(), "PostgreSQL listens");
    let next = || heard.recv_timeout(std::time::Duration::from_secs(10)).expect("a notification");
    // The listener connects on its own thread: queue until it hears one.
    let job = mobius_store::NewAgentJob {
        run: 1,
        job: "build".into(),
        labels: vec!["linux".into()],
        payload: "sealed".into(),
        queued: crate::at(0),
    };
    let mut first = None;
    for _ in 0..50 {
        let id = there.enqueue_agent_job(&job).unwrap();
        first.get_or_insert(id);
        if let Ok(payload) = heard.recv_timeout(std::time::Duration::from_millis(200)) {
            assert_eq!(payload, "queued");
            break;
        }
    }
    while heard.try_recv().is_ok() {}
    let claimed = there.claim_agent_job("a", "t", &["linux".into()], crate::at(1), crate::at(61)).unwrap().unwrap();
    assert_eq!(claimed.id, first.unwrap());
    assert_eq!(next(), format!("job:{}", claimed.id));
    there.append_agent_log(claimed.id, "a", 0, b"line\n").unwrap();
    assert_eq!(next(), format!("job:{}", claimed.id));
    assert!(there.finish_agent_job(claimed.id, "a", "{}", crate::at(2)).unwrap());
    assert_eq!(next(), format!("job:{}", claimed.id));
    // A store without notifications says so.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = mobius_store::SqliteStore::open(dir.path()).unwrap();
    assert!(!sqlite.listen("mobius_agent_jobs", Box::new(|_: &str| true)).unwrap());
}

/// Transfers taking up and releasing one blob from many threads at once: a transfer that
/// named the blob always reads it back (a release beside it never deletes it from under it).
#[test]
fn transfers_racing_over_one_blob_never_lose_it_under_a_holder() {
    let database = Database::create();
    let store = PgStore::connect(&database.url).unwrap();
    let digest = "ab".repeat(32);
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (store, digest) = (&store, &digest);
            scope.spawn(move || {
                for round in 0..25 {
                    let transfer = format!("t{thread}-{round}");
                    let wanted = [digest.clone()];
                    if !store.hold_transfer_blobs(&transfer, &wanted).unwrap().is_empty() {
                        store.put_transfer_file(&transfer, digest, digest, b"content").unwrap();
                    }
                    let read = store.transfer_file(&transfer, digest).unwrap();
                    assert_eq!(read.as_deref(), Some(&b"content"[..]), "{transfer} names the blob");
                    store.release_transfer(&transfer).unwrap();
                }
            });
        }
    });
    assert_eq!(store.hold_transfer_blobs("after", std::slice::from_ref(&digest)).unwrap(), [digest], "released by all");
    drop(store);
}

/// Every flag set change is announced to the other replicas from its transaction, with the set
/// and its version; a refused write announces nothing.
#[test]
fn flag_set_changes_are_announced_to_listeners() {
    use mobius_events::materialise::{NoAncestry, Rules};
    use mobius_store::{FlagSetPut, FlagSetWrite, IngestContext};

    let database = Database::create();
    let (here, there) = (PgStore::connect(&database.url).unwrap(), PgStore::connect(&database.url).unwrap());
    let (sender, heard) = std::sync::mpsc::channel::<String>();
    let sender = std::sync::Mutex::new(sender);
    let wake: mobius_store::Listener =
        Box::new(move |payload: &str| sender.lock().unwrap().send(payload.to_owned()).is_ok());
    assert!(here.listen(mobius_store::flags::CHANNEL, wake).unwrap());
    let ctx = IngestContext { rules: Rules::default(), ancestry: &NoAncestry };
    let put = |name: &str, base: i64| {
        let write = FlagSetWrite {
            name,
            environment: "",
            base,
            document: Some("{}"),
            updated: crate::at(base),
            updated_by: "alice",
        };
        let event = mobius_events::NewEvent {
            id: format!("{name}@{}", base + 1),
            source: "/mobius/flags".into(),
            ty: "dev.cdeventsx.mobius-flag.changed.0.1.0".into(),
            subject: name.into(),
            timestamp: crate::at(base),
            origin: mobius_events::Origin::Internal,
            raw: "{}".into(),
            observations: Vec::new(),
        };
        there.put_flag_set(&write, &event, &ctx).unwrap()
    };
    // The listener connects on its own thread: change sets until it hears one.
    let mut heard_first = None;
    for i in 0..50 {
        assert!(matches!(put(&format!("warmup{i}"), 0), FlagSetPut::Written { version: 1 }));
        if let Ok(payload) = heard.recv_timeout(std::time::Duration::from_millis(200)) {
            heard_first = Some(payload);
            break;
        }
    }
    assert!(heard_first.is_some_and(|p| p.starts_with("warmup") && p.ends_with(":1")));
    while heard.recv_timeout(std::time::Duration::from_millis(300)).is_ok() {}
    assert_eq!(put("shop", 0), FlagSetPut::Written { version: 1 });
    assert_eq!(heard.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), "shop:1");
    assert_eq!(put("shop", 0), FlagSetPut::Conflict { current: 1 });
    assert!(heard.recv_timeout(std::time::Duration::from_millis(500)).is_err(), "a refused write is not announced");
}

/// A run left unclaimed is announced to every replica at commit; one claimed by its planner
/// as it is stored is not (nobody else may take it).
#[test]
fn a_queued_run_nobody_claimed_is_announced_to_listeners() {
    let database = Database::create();
    let (here, there) = (PgStore::connect(&database.url).unwrap(), PgStore::connect(&database.url).unwrap());
    let (sender, heard) = std::sync::mpsc::channel::<String>();
    let sender = std::sync::Mutex::new(sender);
    let wake: mobius_store::Listener =
        Box::new(move |payload: &str| sender.lock().unwrap().send(payload.to_owned()).is_ok());
    assert!(here.listen(mobius_store::RUNS_CHANNEL, wake).unwrap(), "PostgreSQL listens");
    let run = |sha: &str| mobius_store::NewRun {
        repository: "acme/app".into(),
        workflow_file: ".github/workflows/ci.yml".into(),
        workflow_name: "CI".into(),
        event: "push".into(),
        branch: Some("main".into()),
        sha: sha.into(),
        before_sha: None,
        concurrency_group: None,
        cancel_in_progress: false,
        only_jobs: Vec::new(),
        attempt: 1,
        rerun_of: None,
        requeue_of: None,
        queued_at: crate::at(0),
        fork: false,
        trigger: None,
    };
    // The listener connects on its own thread: queue until it hears one.
    let mut heard_one = false;
    for n in 0..50 {
        there.create_run(&run(&format!("c{n}"))).unwrap();
        if let Ok(payload) = heard.recv_timeout(std::time::Duration::from_millis(200)) {
            assert_eq!(payload, "queued");
            heard_one = true;
            break;
        }
    }
    assert!(heard_one, "a queued run is announced");
    while heard.recv_timeout(std::time::Duration::from_millis(300)).is_ok() {}
    let (_, claimed) = there.queue_run(&run("planned"), "node-a replica-a").unwrap();
    assert!(claimed, "the planner had room");
    assert!(
        heard.recv_timeout(std::time::Duration::from_secs(1)).is_err(),
        "a run its planner claimed is not announced"
    );
}
