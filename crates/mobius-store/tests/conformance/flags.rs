//! Feature flag sets: versions that only grow, a compare-and-set that one of two writers wins,
//! and an event for each version written and none for a refused write.

use mobius_events::materialise::{NoAncestry, Rules};
use mobius_events::{NewEvent, Origin};
use mobius_store::{EventQuery, FlagSetPut, FlagSetWrite, IngestContext, Store};

use crate::at;

crate::conformance!(
    a_set_is_written_as_version_one_then_each_change_adds_one,
    a_write_from_a_stale_version_writes_neither_the_set_nor_its_event,
    a_deleted_set_stays_a_tombstone_whose_version_keeps_counting,
    of_writers_racing_from_one_version_exactly_one_wins,
);

fn change(name: &str, version: i64) -> NewEvent {
    NewEvent {
        id: format!("{name}@{version}"),
        source: "/mobius/flags".into(),
        ty: "dev.cdeventsx.mobius-flag.changed.0.1.0".into(),
        subject: name.into(),
        timestamp: at(version),
        origin: Origin::Internal,
        raw: format!("{{\"set\":\"{name}\",\"version\":{version}}}"),
        observations: Vec::new(),
    }
}

fn put(store: &dyn Store, name: &str, base: i64, document: Option<&str>) -> FlagSetPut {
    let write =
        FlagSetWrite { name, environment: "production", base, document, updated: at(base + 1), updated_by: "alice" };
    let ctx = IngestContext { rules: Rules::default(), ancestry: &NoAncestry };
    store.put_flag_set(&write, &change(name, base + 1), &ctx).unwrap()
}

fn event_ids(store: &dyn Store) -> Vec<String> {
    let query = EventQuery { limit: 100, ..EventQuery::default() };
    store.events(&query).unwrap().into_iter().map(|e| e.id).collect()
}

fn a_set_is_written_as_version_one_then_each_change_adds_one(store: &dyn Store) {
    assert_eq!(store.flag_set("shop").unwrap(), None);
    assert_eq!(put(store, "shop", 0, Some("{\"flags\":{}}")), FlagSetPut::Written { version: 1 });
    assert_eq!(put(store, "shop", 1, Some("{\"flags\":{\"a\":1}}")), FlagSetPut::Written { version: 2 });
    assert_eq!(put(store, "other", 0, Some("{}")), FlagSetPut::Written { version: 1 });
    let shop = store.flag_set("shop").unwrap().unwrap();
    assert_eq!((shop.version, shop.document.as_deref()), (2, Some("{\"flags\":{\"a\":1}}")));
    assert_eq!((shop.environment.as_str(), shop.updated_by.as_str(), shop.updated), ("production", "alice", at(2)));
    let names: Vec<_> = store.flag_sets().unwrap().into_iter().map(|s| (s.name, s.version)).collect();
    assert_eq!(names, [("other".to_owned(), 1), ("shop".to_owned(), 2)]);
    assert_eq!(store.flag_set_versions().unwrap(), names);
    assert_eq!(event_ids(store), ["shop@1", "shop@2", "other@1"], "one event per version, in order");
}

fn a_write_from_a_stale_version_writes_neither_the_set_nor_its_event(store: &dyn Store) {
    put(store, "shop", 0, Some("first"));
    put(store, "shop", 1, Some("second"));
    assert_eq!(put(store, "shop", 1, Some("stale")), FlagSetPut::Conflict { current: 2 });
    assert_eq!(put(store, "shop", 0, Some("stale")), FlagSetPut::Conflict { current: 2 });
    assert_eq!(put(store, "new", 3, Some("stale")), FlagSetPut::Conflict { current: 0 });
    assert_eq!(store.flag_set("shop").unwrap().unwrap().document.as_deref(), Some("second"));
    assert_eq!(store.flag_set("new").unwrap(), None);
    assert_eq!(event_ids(store), ["shop@1", "shop@2"]);
}

fn a_deleted_set_stays_a_tombstone_whose_version_keeps_counting(store: &dyn Store) {
    put(store, "shop", 0, Some("first"));
    assert_eq!(put(store, "shop", 1, None), FlagSetPut::Written { version: 2 });
    let tombstone = store.flag_set("shop").unwrap().unwrap();
    assert_eq!((tombstone.version, tombstone.document), (2, None));
    assert_eq!(put(store, "shop", 0, Some("again")), FlagSetPut::Conflict { current: 2 }, "not a new set");
    assert_eq!(put(store, "shop", 2, Some("again")), FlagSetPut::Written { version: 3 });
    assert_eq!(store.flag_set_versions().unwrap(), [("shop".to_owned(), 3)]);
}

fn of_writers_racing_from_one_version_exactly_one_wins(store: &dyn Store) {
    put(store, "shop", 0, Some("first"));
    let outcomes: Vec<FlagSetPut> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..8).map(|_| scope.spawn(move || put(store, "shop", 1, Some("racing")))).collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| **o == FlagSetPut::Written { version: 2 }).count();
    let lost = outcomes.iter().filter(|o| **o == FlagSetPut::Conflict { current: 2 }).count();
    assert_eq!((won, lost), (1, 7), "{outcomes:?}");
    assert_eq!(event_ids(store), ["shop@1", "shop@2"]);
}
