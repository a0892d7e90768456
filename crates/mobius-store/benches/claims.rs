//! The agent job queue alone, without HTTP or jobs: how many jobs per second `claimers`
//! threads claim and finish from a queue of `JOBS`, on SQLite and on PostgreSQL — the figure
//! the published PostgreSQL job queues report (River, graphile-worker; see
//! `shared/reference/gitops-and-scale.md` §3.5), beside the end-to-end one of
//! `bench/agents/run.sh`.
//!
//!   cargo bench -p mobius-store --bench claims                  # SQLite only
//!   MOBIUS_BENCH_DATABASE_URL=postgres://… cargo bench -p mobius-store --bench claims
//!
//! `bench/agents/claims.sh` starts a throwaway PostgreSQL and runs both. Each claim and each
//! finish is its own transaction, durable as the store makes it (SQLite: `synchronous=NORMAL`
//! for the queue; PostgreSQL: a commit each). With a batch of 1 a claim takes one job and the
//! finish is the report alone; with a batch of 8 a claim takes up to 8 jobs in one transaction
//! (`claim_agent_jobs`, an agent with 8 free slots) and each finish carries a log line
//! (`finish_agent_job_with_log`), as `mobius agent` does now.

use std::sync::Arc;
use std::time::Instant;

use mobius_store::{NewAgentJob, PgStore, SqliteStore, Store};

const JOBS: usize = 4_000;

fn main() {
    let url = std::env::var("MOBIUS_BENCH_DATABASE_URL").ok();
    println!("| store | claimers | batch | enqueue/s | claim + finish /s |");
    println!("|---|---|---|---|---|");
    for (claimers, batch) in [(3, 1), (24, 1), (3, 8), (24, 8)] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("SQLite opens"));
        measure("SQLite", &sqlite, claimers, batch);
        if let Some(url) = &url {
            let pg: Arc<dyn Store> = Arc::new(PgStore::connect(url).expect("PostgreSQL connects"));
            // A fresh queue each time: what the last measurement left is ended, not queued.
            measure("PostgreSQL", &pg, claimers, batch);
        }
    }
}

fn measure(name: &str, store: &Arc<dyn Store>, claimers: usize, batch: usize) {
    let at = jiff::Timestamp::now();
    let labels = vec!["self-hosted".to_owned()];
    let started = Instant::now();
    for n in 0..JOBS {
        let job = NewAgentJob {
            run: 1,
            job: format!("many ({n})"),
            labels: labels.clone(),
            payload: "{}".into(),
            queued: at,
        };
        store.enqueue_agent_job(&job).expect("enqueue");
    }
    let enqueue = JOBS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..claimers)
            .map(|c| {
                let (store, labels) = (store.clone(), labels.clone());
                scope.spawn(move || {
                    let agent = format!("bench/agent-{c}");
                    let mut done = 0;
                    let until = at + jiff::SignedDuration::from_secs(600);
                    let line = br#"{"t":"step_started","step":"Run true"}"#;
                    loop {
                        let jobs = store.claim_agent_jobs(&agent, "bench", &labels, at, until, batch).expect("claim");
                        if jobs.is_empty() {
                            return done;
                        }
                        for job in jobs {
                            if batch == 1 {
                                assert!(store.finish_agent_job(job.id, &agent, "{}", at).expect("finish"), "held");
                            } else {
                                let finished =
                                    store.finish_agent_job_with_log(job.id, &agent, 0, line, "{}", at).expect("finish");
                                assert_eq!(finished, mobius_store::LogAppend::Appended(line.len() as u64));
                            }
                            done += 1;
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a claimer")).sum()
    });
    assert_eq!(done, JOBS, "every job claimed once");
    let rate = JOBS as f64 / started.elapsed().as_secs_f64();
    println!("| {name} | {claimers} | {batch} | {enqueue:.0} | {rate:.0} |");
}
