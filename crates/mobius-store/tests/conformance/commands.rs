//! The rollout command queue: claimed oldest first among the claimer's environments, by one
//! claimer only; answered by its claimer only; withdrawn while nobody holds it; lost when
//! another replica takes the environment over; pruned once ended.

use mobius_store::{CommandState, NewRolloutCommand, RolloutCommand, Scope, Store};

use crate::at;

crate::conformance!(
    a_claim_takes_the_oldest_queued_command_of_the_claimers_environments,
    two_claims_never_take_the_same_command,
    only_the_claimer_answers_and_an_answer_is_final,
    a_command_is_withdrawn_only_while_nobody_holds_it,
    taking_an_environment_over_loses_what_others_claimed_there,
    ended_commands_are_pruned,
);

fn scope(service: &str, environment: &str) -> Scope {
    Scope { service: service.into(), environment: environment.into() }
}

fn enqueue(store: &dyn Store, service: &str, environment: &str, body: &str, queued: i64) -> i64 {
    store
        .enqueue_rollout_command(&NewRolloutCommand {
            service: service.into(),
            environment: environment.into(),
            body: body.into(),
            queued: at(queued),
        })
        .unwrap()
}

fn state(store: &dyn Store, id: i64) -> CommandState {
    store.rollout_command(id).unwrap().expect("the command").state
}

fn a_claim_takes_the_oldest_queued_command_of_the_claimers_environments(store: &dyn Store) {
    let other = enqueue(store, "shop", "staging", "{\"promote\":{}}", 0);
    let first = enqueue(store, "shop", "production", "{\"abort\":{}}", 1);
    let second = enqueue(store, "shop", "production", "{\"promote\":{}}", 2);
    let elsewhere = enqueue(store, "cart", "production", "{\"undo\":{}}", 3);
    assert!(other < first && first < second && second < elsewhere, "ids grow");
    assert_eq!(
        store.rollout_command(first).unwrap(),
        Some(RolloutCommand {
            id: first,
            service: "shop".into(),
            environment: "production".into(),
            body: "{\"abort\":{}}".into(),
            state: CommandState::Queued,
            holder: None,
            result: None,
            queued: at(1),
            claimed: None,
            ended: None,
        })
    );
    assert_eq!(store.rollout_command(elsewhere + 100).unwrap(), None);

    // `other` is older, but in an environment this replica does not drive.
    let mine = [scope("shop", "production"), scope("cart", "production")];
    let claimed = store.claim_rollout_command(&mine, "replica-a", at(10)).unwrap().expect("a command");
    assert_eq!(
        claimed,
        RolloutCommand {
            id: first,
            service: "shop".into(),
            environment: "production".into(),
            body: "{\"abort\":{}}".into(),
            state: CommandState::Claimed,
            holder: Some("replica-a".into()),
            result: None,
            queued: at(1),
            claimed: Some(at(10)),
            ended: None,
        }
    );
    let next = |holder: &str| store.claim_rollout_command(&mine, holder, at(11)).unwrap().map(|c| c.id);
    assert_eq!(next("replica-a"), Some(second), "claimed ones are passed by");
    assert_eq!(next("replica-a"), Some(elsewhere));
    assert_eq!(next("replica-a"), None, "none left in these environments");
    assert_eq!(store.claim_rollout_command(&[], "replica-a", at(11)).unwrap(), None, "no environments, nothing");
    assert_eq!(state(store, other), CommandState::Queued);
    let theirs = store.claim_rollout_command(&[scope("shop", "staging")], "replica-b", at(12)).unwrap();
    assert_eq!(theirs.map(|c| (c.id, c.holder)), Some((other, Some("replica-b".into()))));
}

fn two_claims_never_take_the_same_command(store: &dyn Store) {
    let ids: Vec<i64> = (0..20).map(|i| enqueue(store, "shop", "production", &format!("{i}"), i)).collect();
    let mine = [scope("shop", "production")];
    let claimed: Vec<i64> = std::thread::scope(|threads| {
        let claimers: Vec<_> = (0..4)
            .map(|n| {
                let mine = &mine;
                threads.spawn(move || {
                    let mut got = Vec::new();
                    while let Some(command) = store.claim_rollout_command(mine, &format!("r{n}"), at(30)).unwrap() {
                        got.push(command.id);
                    }
                    got
                })
            })
            .collect();
        claimers.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let mut sorted = claimed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ids, "every command once: {claimed:?}");
}

fn only_the_claimer_answers_and_an_answer_is_final(store: &dyn Store) {
    let id = enqueue(store, "shop", "production", "{\"promote\":{}}", 0);
    assert!(!store.finish_rollout_command(id, "replica-a", "{}", at(5)).unwrap(), "queued: nobody holds it");
    store.claim_rollout_command(&[scope("shop", "production")], "replica-a", at(10)).unwrap().unwrap();
    assert!(!store.finish_rollout_command(id, "replica-b", "{\"ok\":1}", at(11)).unwrap(), "not b's");
    assert!(store.finish_rollout_command(id, "replica-a", "{\"ok\":2}", at(12)).unwrap());
    let done = store.rollout_command(id).unwrap().unwrap();
    assert_eq!(
        (done.state, done.result.as_deref(), done.ended),
        (CommandState::Done, Some("{\"ok\":2}"), Some(at(12)))
    );
    assert!(!store.finish_rollout_command(id, "replica-a", "{\"ok\":3}", at(13)).unwrap(), "answered once");
    assert!(!store.withdraw_rollout_command(id, at(14)).unwrap());
    assert_eq!(store.rollout_command(id).unwrap().unwrap().result.as_deref(), Some("{\"ok\":2}"));
}

fn a_command_is_withdrawn_only_while_nobody_holds_it(store: &dyn Store) {
    let mine = [scope("shop", "production")];
    let waiting = enqueue(store, "shop", "production", "a", 0);
    let taken = enqueue(store, "shop", "production", "b", 1);
    assert!(store.withdraw_rollout_command(waiting, at(5)).unwrap());
    assert_eq!(store.rollout_command(waiting).unwrap().unwrap().ended, Some(at(5)));
    assert!(!store.withdraw_rollout_command(waiting, at(6)).unwrap(), "once");
    let claimed = store.claim_rollout_command(&mine, "replica-a", at(10)).unwrap().map(|c| c.id);
    assert_eq!(claimed, Some(taken), "a withdrawn command is never claimed");
    assert!(!store.withdraw_rollout_command(taken, at(11)).unwrap(), "claimed: too late");
    assert_eq!((state(store, waiting), state(store, taken)), (CommandState::Withdrawn, CommandState::Claimed));
    assert!(!store.withdraw_rollout_command(taken + 100, at(11)).unwrap(), "no such command");
}

fn taking_an_environment_over_loses_what_others_claimed_there(store: &dyn Store) {
    let production = scope("shop", "production");
    let by_a = enqueue(store, "shop", "production", "a", 0);
    let by_b = enqueue(store, "shop", "production", "b", 1);
    let queued = enqueue(store, "shop", "production", "c", 2);
    let staging = enqueue(store, "shop", "staging", "d", 3);
    let take = |holder: &str, environment: &Scope| {
        store.claim_rollout_command(std::slice::from_ref(environment), holder, at(10)).unwrap().unwrap().id
    };
    assert_eq!(take("replica-a", &production), by_a);
    assert_eq!(take("replica-b", &production), by_b);
    assert_eq!(take("replica-a", &scope("shop", "staging")), staging);

    // b takes production over: a's claim there is lost; b's own, the queued one and a's
    // claim in another environment stay as they are.
    assert_eq!(store.lose_rollout_commands(&production, "replica-b", at(20)).unwrap(), [by_a]);
    let lost = store.rollout_command(by_a).unwrap().unwrap();
    assert_eq!((lost.state, lost.ended, lost.result), (CommandState::Lost, Some(at(20)), None));
    assert_eq!(
        [state(store, by_b), state(store, queued), state(store, staging)],
        [CommandState::Claimed, CommandState::Queued, CommandState::Claimed]
    );
    assert!(!store.finish_rollout_command(by_a, "replica-a", "late", at(21)).unwrap(), "a lost it");
    assert_eq!(state(store, by_a), CommandState::Lost);
    assert!(store.lose_rollout_commands(&production, "replica-b", at(22)).unwrap().is_empty(), "once");
}

fn ended_commands_are_pruned(store: &dyn Store) {
    let mine = [scope("shop", "production")];
    let done = enqueue(store, "shop", "production", "a", 0);
    let withdrawn = enqueue(store, "shop", "production", "b", 1);
    let late = enqueue(store, "shop", "production", "c", 2);
    let queued = enqueue(store, "shop", "production", "d", 3);
    store.claim_rollout_command(&mine, "replica-a", at(10)).unwrap().unwrap();
    store.finish_rollout_command(done, "replica-a", "{}", at(10)).unwrap();
    store.withdraw_rollout_command(withdrawn, at(20)).unwrap();
    store.withdraw_rollout_command(late, at(40)).unwrap();
    assert_eq!(store.prune_rollout_commands(at(30)).unwrap(), 2, "those that ended before");
    assert_eq!(store.rollout_command(done).unwrap(), None);
    assert_eq!(store.rollout_command(withdrawn).unwrap(), None);
    assert_eq!((state(store, late), state(store, queued)), (CommandState::Withdrawn, CommandState::Queued));
}
