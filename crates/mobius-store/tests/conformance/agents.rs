//! The agent job queue: claiming by labels, oldest first; leases only the holder renews; logs
//! appended at byte offsets; finishing, cancelling, losing a job; agents as last seen.

use mobius_store::{AgentJob, AgentJobState, AgentRecord, LogAppend, NewAgentJob, Renewal, Store};

use crate::at;

crate::conformance!(
    a_claim_takes_the_oldest_job_whose_labels_are_all_the_agents,
    two_claims_never_take_the_same_job,
    only_the_holder_renews_appends_and_finishes,
    log_chunks_land_at_their_offsets_once_and_read_back_in_windows,
    a_finished_job_keeps_its_report_and_changes_no_more,
    a_queued_job_is_cancelled_at_once_and_a_running_one_is_told_at_its_renewal,
    a_lapsed_lease_loses_the_job_for_good,
    revoking_a_token_loses_the_running_jobs_claimed_with_it,
    agents_are_recorded_at_each_contact_keeping_their_first,
);

fn labels(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|l| (*l).to_owned()).collect()
}

fn new_job(name: &str, wanted: &[&str], queued: i64) -> NewAgentJob {
    NewAgentJob {
        run: 7,
        job: name.into(),
        labels: labels(wanted),
        payload: format!("sealed {name}"),
        queued: at(queued),
    }
}

/// Claims for agent `agent` (token `t-<agent>`) at 10 s, with a lease until 40 s.
fn claim(store: &dyn Store, agent: &str, agent_labels: &[&str]) -> Option<AgentJob> {
    store.claim_agent_job(agent, &format!("t-{agent}"), &labels(agent_labels), at(10), at(40)).unwrap()
}

fn claimed_id(store: &dyn Store, agent: &str, agent_labels: &[&str]) -> Option<i64> {
    claim(store, agent, agent_labels).map(|job| job.id)
}

fn state(store: &dyn Store, id: i64) -> AgentJobState {
    store.agent_job(id).unwrap().expect("the job").state
}

fn a_claim_takes_the_oldest_job_whose_labels_are_all_the_agents(store: &dyn Store) {
    let gpu = store.enqueue_agent_job(&new_job("gpu", &["gpu", "linux"], 0)).unwrap();
    let linux = store.enqueue_agent_job(&new_job("linux", &["linux"], 1)).unwrap();
    let anywhere = store.enqueue_agent_job(&new_job("anywhere", &[], 2)).unwrap();
    let linux_again = store.enqueue_agent_job(&new_job("linux again", &["linux"], 3)).unwrap();
    assert!(gpu < linux && linux < anywhere && anywhere < linux_again, "ids grow: {gpu} {linux} {anywhere}");
    let queued = store.agent_job(gpu).unwrap().expect("queued");
    assert_eq!(
        queued,
        AgentJob {
            id: gpu,
            run: 7,
            job: "gpu".into(),
            labels: labels(&["gpu", "linux"]),
            payload: "sealed gpu".into(),
            state: AgentJobState::Queued,
            agent: None,
            token: None,
            lease_expires: None,
            cancel: false,
            log_len: 0,
            result: None,
            reason: None,
            queued: at(0),
            claimed: None,
            ended: None,
        }
    );

    // `gpu` is older, but needs a label the agent lacks.
    let first = claim(store, "a", &["linux"]).expect("a job for linux");
    assert_eq!(
        first,
        AgentJob {
            id: linux,
            run: 7,
            job: "linux".into(),
            labels: labels(&["linux"]),
            payload: "sealed linux".into(),
            state: AgentJobState::Running,
            agent: Some("a".into()),
            token: Some("t-a".into()),
            lease_expires: Some(at(40)),
            cancel: false,
            log_len: 0,
            result: None,
            reason: None,
            queued: at(1),
            claimed: Some(at(10)),
            ended: None,
        }
    );
    assert_eq!(store.agent_job(linux).unwrap(), Some(first), "the claim is what is stored");
    assert_eq!(claimed_id(store, "a", &["linux"]), Some(anywhere), "a job without labels suits any agent");
    assert_eq!(claimed_id(store, "bare", &[]), None, "an agent without labels runs only jobs without");
    assert_eq!(claimed_id(store, "x", &["gpu", "x64"]), None, "every label of the job, not one of them");
    assert_eq!(claimed_id(store, "big", &["arm64", "gpu", "linux", "x64"]), Some(gpu), "a superset suits");
    assert_eq!(claimed_id(store, "a", &["linux"]), Some(linux_again));
    assert_eq!(claimed_id(store, "a", &["linux"]), None, "the queue is empty");

    let active: Vec<(i64, AgentJobState, Option<String>)> =
        store.active_agent_jobs().unwrap().into_iter().map(|j| (j.id, j.state, j.agent)).collect();
    let running = |id, agent: &str| (id, AgentJobState::Running, Some(agent.to_owned()));
    assert_eq!(
        active,
        [running(gpu, "big"), running(linux, "a"), running(anywhere, "a"), running(linux_again, "a")],
        "by id"
    );
    assert_eq!(store.agent_job(linux_again + 100).unwrap(), None);
}

fn two_claims_never_take_the_same_job(store: &dyn Store) {
    let ids: Vec<i64> = (0..3).map(|n| store.enqueue_agent_job(&new_job(&format!("j{n}"), &[], n)).unwrap()).collect();
    let claimed: Vec<Option<i64>> = ["a", "b", "a", "c"].iter().map(|agent| claimed_id(store, agent, &[])).collect();
    assert_eq!(claimed, [Some(ids[0]), Some(ids[1]), Some(ids[2]), None]);
    let holders: Vec<Option<String>> = ids.iter().map(|id| store.agent_job(*id).unwrap().unwrap().agent).collect();
    assert_eq!(holders, [Some("a".into()), Some("b".into()), Some("a".into())], "each kept its first holder");
}

fn only_the_holder_renews_appends_and_finishes(store: &dyn Store) {
    let held = store.enqueue_agent_job(&new_job("held", &[], 0)).unwrap();
    let queued = store.enqueue_agent_job(&new_job("queued", &["gpu"], 1)).unwrap();
    assert_eq!(claimed_id(store, "a", &[]), Some(held));
    let before = store.agent_job(held).unwrap();

    assert_eq!(store.renew_agent_job(held, "b", at(100)).unwrap(), Renewal::NotHeld);
    assert_eq!(store.append_agent_log(held, "b", 0, b"forged").unwrap(), LogAppend::NotHeld);
    assert!(!store.finish_agent_job(held, "b", "{}", at(20)).unwrap());
    assert_eq!(store.agent_job(held).unwrap(), before, "the others' calls changed nothing");
    assert_eq!(store.agent_log(held, 0, 100).unwrap(), b"");

    assert_eq!(store.renew_agent_job(queued, "a", at(100)).unwrap(), Renewal::NotHeld, "nobody holds a queued job");
    assert_eq!(store.append_agent_log(queued, "a", 0, b"x").unwrap(), LogAppend::NotHeld);
    assert!(!store.finish_agent_job(queued, "a", "{}", at(20)).unwrap());
    assert_eq!(state(store, queued), AgentJobState::Queued);
    assert_eq!(store.renew_agent_job(queued + 100, "a", at(100)).unwrap(), Renewal::NotHeld, "no such job");
    assert_eq!(store.append_agent_log(queued + 100, "a", 0, b"x").unwrap(), LogAppend::NotHeld);

    assert_eq!(store.renew_agent_job(held, "a", at(70)).unwrap(), Renewal::Held { cancel: false });
    let renewed = store.agent_job(held).unwrap().unwrap();
    assert_eq!((renewed.lease_expires, renewed.claimed), (Some(at(70)), Some(at(10))), "extended; claimed kept");
}

fn log_chunks_land_at_their_offsets_once_and_read_back_in_windows(store: &dyn Store) {
    let id = store.enqueue_agent_job(&new_job("build", &[], 0)).unwrap();
    let other = store.enqueue_agent_job(&new_job("test", &[], 1)).unwrap();
    assert_eq!(claimed_id(store, "a", &[]), Some(id));
    assert_eq!(claimed_id(store, "b", &[]), Some(other));
    let append = |offset, data: &[u8]| store.append_agent_log(id, "a", offset, data).unwrap();
    let log = |from, limit| String::from_utf8(store.agent_log(id, from, limit).unwrap()).unwrap();

    assert_eq!(append(0, b"hello "), LogAppend::Appended(6));
    assert_eq!(append(0, b"hello "), LogAppend::Appended(6), "a chunk sent again is accepted once");
    assert_eq!(append(2, b"ll"), LogAppend::Appended(6), "so is any part of what is held");
    assert_eq!(log(0, 100), "hello ");
    assert_eq!(append(10, b"lost"), LogAppend::Gap { expected: 6 }, "past the end: resend from 6");
    assert_eq!(append(7, b"x"), LogAppend::Gap { expected: 6 });
    assert_eq!(log(0, 100), "hello ", "a gap stores nothing");
    assert_eq!(append(3, b"lo world"), LogAppend::Appended(11), "only the unseen tail of an overlapping chunk");
    assert_eq!(append(11, b""), LogAppend::Appended(11), "an empty chunk at the end changes nothing");
    assert_eq!(append(11, b"!\n"), LogAppend::Appended(13));
    assert_eq!(store.append_agent_log(other, "b", 0, b"other job").unwrap(), LogAppend::Appended(9));

    assert_eq!(log(0, 100), "hello world!\n");
    assert_eq!(log(0, 13), "hello world!\n");
    assert_eq!(log(4, 5), "o wor", "across the chunks' boundary");
    assert_eq!(log(6, 5), "world", "one chunk exactly");
    assert_eq!(log(7, 1_000), "orld!\n", "from inside a chunk to the end");
    assert_eq!(log(12, u64::MAX), "\n", "a limit past any length");
    assert_eq!(log(0, 0), "");
    assert_eq!(log(13, 10), "", "from the end");
    assert_eq!(log(u64::MAX, 10), "", "from far past it");
    assert_eq!(store.agent_job(id).unwrap().unwrap().log_len, 13);
    assert_eq!(store.agent_log(other, 0, 100).unwrap(), b"other job", "each job has its own log");
    assert_eq!(store.agent_log(other + 100, 0, 100).unwrap(), b"", "no such job: no log");

    assert!(store.finish_agent_job(id, "a", "{}", at(20)).unwrap());
    assert_eq!(append(13, b"late"), LogAppend::NotHeld, "an ended job's log is closed");
    assert_eq!(log(0, 100), "hello world!\n", "and still read");
}

fn a_finished_job_keeps_its_report_and_changes_no_more(store: &dyn Store) {
    let id = store.enqueue_agent_job(&new_job("build", &[], 0)).unwrap();
    assert_eq!(claimed_id(store, "a", &[]), Some(id));
    assert!(store.finish_agent_job(id, "a", r#"{"outcome":"success"}"#, at(25)).unwrap());
    let job = store.agent_job(id).unwrap().unwrap();
    assert_eq!(job.state, AgentJobState::Finished);
    assert_eq!(job.result.as_deref(), Some(r#"{"outcome":"success"}"#));
    assert_eq!((job.ended, job.agent.as_deref(), job.reason.as_deref()), (Some(at(25)), Some("a"), None));

    assert!(!store.finish_agent_job(id, "a", "again", at(26)).unwrap(), "a job finishes once");
    assert_eq!(store.renew_agent_job(id, "a", at(100)).unwrap(), Renewal::NotHeld);
    assert!(!store.cancel_agent_job(id, "too late", at(27)).unwrap());
    assert_eq!(store.expire_agent_jobs(at(1_000), "lapsed").unwrap(), Vec::<i64>::new());
    assert_eq!(store.lose_agent_jobs_of_token("t-a", "revoked", at(28)).unwrap(), Vec::<i64>::new());
    assert_eq!(store.agent_job(id).unwrap().unwrap(), job, "nothing after the finish changed it");
    assert_eq!(store.active_agent_jobs().unwrap(), vec![]);
}

fn a_queued_job_is_cancelled_at_once_and_a_running_one_is_told_at_its_renewal(store: &dyn Store) {
    let running = store.enqueue_agent_job(&new_job("running", &[], 0)).unwrap();
    let queued = store.enqueue_agent_job(&new_job("queued", &[], 1)).unwrap();
    assert_eq!(claimed_id(store, "a", &[]), Some(running));

    assert!(store.cancel_agent_job(queued, "superseded by run 8", at(15)).unwrap());
    let cancelled = store.agent_job(queued).unwrap().unwrap();
    assert_eq!(cancelled.state, AgentJobState::Cancelled);
    assert_eq!((cancelled.reason.as_deref(), cancelled.ended), (Some("superseded by run 8"), Some(at(15))));
    assert_eq!((cancelled.agent, cancelled.claimed), (None, None), "never claimed");
    assert_eq!(claimed_id(store, "b", &[]), None, "a cancelled job is not claimed");
    assert!(!store.cancel_agent_job(queued, "again", at(16)).unwrap(), "it has ended");

    assert_eq!(store.renew_agent_job(running, "a", at(45)).unwrap(), Renewal::Held { cancel: false });
    assert!(store.cancel_agent_job(running, "the run was cancelled", at(16)).unwrap());
    let asked = store.agent_job(running).unwrap().unwrap();
    assert_eq!((asked.state, asked.cancel, asked.ended), (AgentJobState::Running, true, None), "still running");
    assert_eq!(store.renew_agent_job(running, "a", at(50)).unwrap(), Renewal::Held { cancel: true });
    assert_eq!(store.renew_agent_job(running, "b", at(50)).unwrap(), Renewal::NotHeld, "only its holder is told");
    assert!(store.cancel_agent_job(running, "the run was cancelled", at(17)).unwrap(), "asking twice is fine");
    assert!(store.finish_agent_job(running, "a", r#"{"outcome":"cancelled"}"#, at(18)).unwrap());
    assert_eq!(state(store, running), AgentJobState::Finished, "the agent ends it with its report");
    assert!(!store.cancel_agent_job(running, "late", at(19)).unwrap());
    assert!(!store.cancel_agent_job(queued + 100, "missing", at(19)).unwrap(), "no such job");
}

fn a_lapsed_lease_loses_the_job_for_good(store: &dyn Store) {
    let ids: Vec<i64> = (0..4).map(|n| store.enqueue_agent_job(&new_job(&format!("j{n}"), &[], n)).unwrap()).collect();
    let claim_until =
        |agent: &str, expires| store.claim_agent_job(agent, "t", &[], at(10), at(expires)).unwrap().expect("a job").id;
    assert_eq!(claim_until("a", 30), ids[0]);
    assert_eq!(claim_until("b", 60), ids[1]);
    assert_eq!(claim_until("c", 30), ids[2]);
    // ids[3] stays queued: a queued job has no lease to lapse.

    assert_eq!(store.expire_agent_jobs(at(30), "agent lost").unwrap(), Vec::<i64>::new(), "lapses after 30 s");
    // `c` renews after its lease ran out but before any sweep saw it: still its job.
    assert_eq!(store.renew_agent_job(ids[2], "c", at(90)).unwrap(), Renewal::Held { cancel: false });
    assert_eq!(store.append_agent_log(ids[0], "a", 0, b"last words").unwrap(), LogAppend::Appended(10));

    assert_eq!(store.expire_agent_jobs(at(31), "agent lost").unwrap(), vec![ids[0]]);
    let lost = store.agent_job(ids[0]).unwrap().unwrap();
    assert_eq!(lost.state, AgentJobState::Lost);
    assert_eq!((lost.reason.as_deref(), lost.ended, lost.log_len), (Some("agent lost"), Some(at(31)), 10));
    assert_eq!(store.renew_agent_job(ids[0], "a", at(100)).unwrap(), Renewal::NotHeld, "too late");
    assert!(!store.finish_agent_job(ids[0], "a", "{}", at(32)).unwrap());
    assert_eq!(store.append_agent_log(ids[0], "a", 10, b"x").unwrap(), LogAppend::NotHeld);
    assert_eq!(store.agent_log(ids[0], 0, 100).unwrap(), b"last words", "its log is kept");
    assert_eq!(state(store, ids[0]), AgentJobState::Lost, "never queued again");

    assert_eq!(store.expire_agent_jobs(at(31), "agent lost").unwrap(), Vec::<i64>::new(), "once");
    assert_eq!(store.expire_agent_jobs(at(1_000), "gone").unwrap(), vec![ids[1], ids[2]], "ascending");
    assert_eq!(state(store, ids[3]), AgentJobState::Queued);
    let active: Vec<i64> = store.active_agent_jobs().unwrap().iter().map(|j| j.id).collect();
    assert_eq!(active, [ids[3]]);
}

fn revoking_a_token_loses_the_running_jobs_claimed_with_it(store: &dyn Store) {
    let ids: Vec<i64> = (0..5).map(|n| store.enqueue_agent_job(&new_job(&format!("j{n}"), &[], n)).unwrap()).collect();
    let claim_with =
        |agent: &str, token: &str| store.claim_agent_job(agent, token, &[], at(10), at(40)).unwrap().expect("a job").id;
    assert_eq!(claim_with("a", "shared"), ids[0]);
    assert_eq!(claim_with("c", "own"), ids[1]);
    assert_eq!(claim_with("b", "shared"), ids[2]);
    assert_eq!(claim_with("d", "shared"), ids[3]);
    assert!(store.finish_agent_job(ids[3], "d", "{}", at(12)).unwrap());
    // ids[4] stays queued: no token claimed it.

    assert_eq!(store.lose_agent_jobs_of_token("shared", "token revoked", at(20)).unwrap(), vec![ids[0], ids[2]]);
    for id in [ids[0], ids[2]] {
        let job = store.agent_job(id).unwrap().unwrap();
        assert_eq!(
            (job.state, job.reason.as_deref(), job.ended),
            (AgentJobState::Lost, Some("token revoked"), Some(at(20)))
        );
    }
    let states: Vec<AgentJobState> = [ids[1], ids[3], ids[4]].iter().map(|id| state(store, *id)).collect();
    assert_eq!(states, [AgentJobState::Running, AgentJobState::Finished, AgentJobState::Queued]);
    assert_eq!(store.lose_agent_jobs_of_token("shared", "again", at(21)).unwrap(), Vec::<i64>::new());
    assert_eq!(store.lose_agent_jobs_of_token("unknown", "none", at(21)).unwrap(), Vec::<i64>::new());
}

fn agents_are_recorded_at_each_contact_keeping_their_first(store: &dyn Store) {
    let agent = |id: &str, name: &str, first, last| AgentRecord {
        id: id.into(),
        name: name.into(),
        labels: labels(&["linux", "x64"]),
        token: "t1".into(),
        first_contact: at(first),
        last_contact: at(last),
    };
    assert_eq!(store.agents().unwrap(), vec![]);
    store.record_agent(&agent("a-zeta", "zeta", 0, 0)).unwrap();
    store.record_agent(&agent("c-alpha", "alpha", 5, 5)).unwrap();
    store.record_agent(&agent("b-alpha", "alpha", 7, 7)).unwrap();
    // A later contact: what it says now, with a `first_contact` of its own the store ignores.
    let later = AgentRecord { labels: labels(&["arm64"]), token: "t2".into(), ..agent("a-zeta", "zeta", 50, 60) };
    store.record_agent(&later).unwrap();

    let expected = vec![
        agent("b-alpha", "alpha", 7, 7),
        agent("c-alpha", "alpha", 5, 5),
        AgentRecord { first_contact: at(0), ..later },
    ];
    assert_eq!(store.agents().unwrap(), expected, "by name then id; the first contact kept");
}
