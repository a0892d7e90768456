//! The agent job queue's batch calls: a claim of several jobs in one transaction (an agent with
//! free slots asks once), and a finish that carries the log's last chunk.

use std::collections::BTreeMap;

use mobius_store::{AgentJobState, LogAppend, NewAgentJob, Store};

use crate::at;

crate::conformance!(
    a_batch_claim_takes_up_to_its_limit_oldest_first_by_labels,
    batch_claims_racing_on_threads_never_share_a_job,
    a_finish_with_the_last_chunk_keeps_offsets_and_is_all_or_nothing,
);

fn new_job(name: &str, wanted: &[&str], queued: i64) -> NewAgentJob {
    NewAgentJob {
        run: 7,
        job: name.into(),
        labels: wanted.iter().map(|l| (*l).to_owned()).collect(),
        payload: format!("sealed {name}"),
        queued: at(queued),
    }
}

fn a_batch_claim_takes_up_to_its_limit_oldest_first_by_labels(store: &dyn Store) {
    let gpu = store.enqueue_agent_job(&new_job("gpu", &["gpu"], 0)).unwrap();
    let ids: Vec<i64> = (1..=4).map(|n| store.enqueue_agent_job(&new_job(&format!("j{n}"), &[], n)).unwrap()).collect();
    let linux = vec!["linux".to_owned()];
    assert!(store.claim_agent_jobs("a", "t-a", &linux, at(10), at(40), 0).unwrap().is_empty(), "a limit of 0");
    let first = store.claim_agent_jobs("a", "t-a", &linux, at(10), at(40), 3).unwrap();
    let taken: Vec<i64> = first.iter().map(|j| j.id).collect();
    assert_eq!(taken, ids[..3], "the three oldest the agent has the labels for, in order");
    for job in &first {
        assert_eq!(job.state, AgentJobState::Running);
        assert_eq!((job.agent.as_deref(), job.token.as_deref()), (Some("a"), Some("t-a")));
        assert_eq!((job.claimed, job.lease_expires), (Some(at(10)), Some(at(40))));
        assert_eq!(store.agent_job(job.id).unwrap().as_ref(), Some(job), "as stored");
    }
    let rest = store.claim_agent_jobs("b", "t-b", &linux, at(11), at(41), 8).unwrap();
    assert_eq!(rest.iter().map(|j| j.id).collect::<Vec<_>>(), [ids[3]], "only what is left, fewer than asked");
    assert!(store.claim_agent_jobs("b", "t-b", &linux, at(11), at(41), 8).unwrap().is_empty());
    assert_eq!(store.agent_job(gpu).unwrap().unwrap().state, AgentJobState::Queued, "not an agent without gpu");
    let gpus = store.claim_agent_jobs("c", "t-c", &["gpu".to_owned()], at(12), at(42), 8).unwrap();
    assert_eq!(gpus.iter().map(|j| j.id).collect::<Vec<_>>(), [gpu]);
}

fn batch_claims_racing_on_threads_never_share_a_job(store: &dyn Store) {
    const JOBS: usize = 60;
    for n in 0..JOBS {
        store.enqueue_agent_job(&new_job(&format!("j{n}"), &[], n as i64)).unwrap();
    }
    // Six claimers, each asking for up to 4 at a time until the queue is empty.
    let claimed: Vec<(String, i64)> = std::thread::scope(|scope| {
        let claimers: Vec<_> = (0..6)
            .map(|c| {
                scope.spawn(move || {
                    let agent = format!("agent-{c}");
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_agent_jobs(&agent, "t", &[], at(10), at(40), 4).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        assert!(got.len() <= 4, "at most the limit: {}", got.len());
                        mine.extend(got.into_iter().map(|j| (agent.clone(), j.id)));
                    }
                })
            })
            .collect();
        claimers.into_iter().flat_map(|c| c.join().expect("a claimer")).collect()
    });
    let mut holders: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (agent, id) in &claimed {
        holders.entry(*id).or_default().push(agent.clone());
    }
    assert_eq!(holders.len(), JOBS, "every job claimed");
    for (id, agents) in &holders {
        assert_eq!(agents.len(), 1, "job {id} went to {agents:?}");
        let stored = store.agent_job(*id).unwrap().unwrap();
        assert_eq!(stored.agent.as_ref(), Some(&agents[0]), "the store names the one claimer");
    }
    assert!(store.active_agent_jobs().unwrap().iter().all(|j| j.state == AgentJobState::Running));
}

fn a_finish_with_the_last_chunk_keeps_offsets_and_is_all_or_nothing(store: &dyn Store) {
    let id = store.enqueue_agent_job(&new_job("build", &[], 0)).unwrap();
    let short = store.enqueue_agent_job(&new_job("short", &[], 1)).unwrap();
    let got = store.claim_agent_jobs("a", "t", &[], at(10), at(40), 2).unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [id, short]);
    assert_eq!(store.append_agent_log(id, "a", 0, b"hello ").unwrap(), LogAppend::Appended(6));
    let before = store.agent_job(id).unwrap();

    // Refused, and nothing changes: another agent, a gap.
    assert_eq!(store.finish_agent_job_with_log(id, "b", 6, b"x\n", "{}", at(20)).unwrap(), LogAppend::NotHeld);
    assert_eq!(
        store.finish_agent_job_with_log(id, "a", 9, b"world\n", r#"{"r":1}"#, at(20)).unwrap(),
        LogAppend::Gap { expected: 6 }
    );
    assert_eq!(store.agent_job(id).unwrap(), before, "a refused finish changed nothing");

    // A chunk overlapping what is held: only its unseen tail is added, and the job ends.
    assert_eq!(
        store.finish_agent_job_with_log(id, "a", 3, b"lo world\n", r#"{"r":1}"#, at(20)).unwrap(),
        LogAppend::Appended(12)
    );
    let ended = store.agent_job(id).unwrap().unwrap();
    assert_eq!(ended.state, AgentJobState::Finished);
    assert_eq!((ended.result.as_deref(), ended.ended, ended.log_len), (Some(r#"{"r":1}"#), Some(at(20)), 12));
    assert_eq!(store.agent_log(id, 0, 100).unwrap(), b"hello world\n");
    assert_eq!(
        store.finish_agent_job_with_log(id, "a", 12, b"again\n", "{}", at(30)).unwrap(),
        LogAppend::NotHeld,
        "an ended job is not held"
    );
    assert_eq!(store.agent_job(id).unwrap().unwrap(), ended, "and does not change");

    // A short job's whole log with its report: one call.
    assert_eq!(
        store.finish_agent_job_with_log(short, "a", 0, b"all of it\n", "{}", at(21)).unwrap(),
        LogAppend::Appended(10)
    );
    assert_eq!(store.agent_log(short, 0, 100).unwrap(), b"all of it\n");
    assert_eq!(store.agent_job(short).unwrap().unwrap().state, AgentJobState::Finished);
}
