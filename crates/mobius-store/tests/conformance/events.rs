//! The raw log: appends, duplicates, a signed delivery over an imported record, and every
//! filter of `EventQuery`.

use mobius_events::materialise::{NoAncestry, Rules};
use mobius_events::{AppendStatus, NewEvent, Origin};
use mobius_store::{EventQuery, IngestContext, Store};

use crate::at;

crate::conformance!(
    duplicates_change_nothing,
    every_origin_is_stored_and_filtered_by_its_name,
    the_log_reads_newest_first_paged_by_before_and_filtered_by_subject_prefix,
    the_log_pages_by_after_seq_and_filters_by_type,
    a_signed_delivery_is_never_shadowed_by_an_imported_record_of_it,
);

fn event(id: &str, subject: &str, seconds: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        source: "/test".into(),
        ty: "dev.cdeventsx.test-thing.happened.0.1.0".into(),
        subject: subject.into(),
        timestamp: at(seconds),
        origin: Origin::Api,
        raw: format!("{{\"id\":\"{id}\"}}"),
        observations: Vec::new(),
    }
}

fn append(store: &dyn Store, events: &[NewEvent]) -> Vec<AppendStatus> {
    let ctx = IngestContext { rules: Rules::default(), ancestry: &NoAncestry };
    store.append(events, &ctx).unwrap()
}

fn ids(store: &dyn Store, query: EventQuery) -> Vec<String> {
    store.events(&query).unwrap().into_iter().map(|e| e.id).collect()
}

fn duplicates_change_nothing(store: &dyn Store) {
    assert_eq!(store.event_count().unwrap(), 0);
    let first = event("a", "thing", 0);
    assert_eq!(append(store, &[first.clone(), event("b", "thing", 1)]), [AppendStatus::Stored, AppendStatus::Stored]);
    let mut again = first.clone();
    again.raw = "{\"changed\":true}".into();
    let mut elsewhere = first.clone();
    elsewhere.source = "/other".into();
    assert_eq!(
        append(store, &[again, elsewhere, first.clone()]),
        [AppendStatus::Duplicate, AppendStatus::Stored, AppendStatus::Duplicate],
        "(source, id) is the identity, within one batch too"
    );
    assert_eq!(store.event_count().unwrap(), 3);
    let stored = store.events(&EventQuery::default()).unwrap();
    assert_eq!(stored[0].raw, first.raw, "the first body stays");
    assert_eq!((stored[0].timestamp, stored[0].subject.as_str(), stored[0].origin), (at(0), "thing", Origin::Api));
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq), "log order");
    assert!(stored.iter().all(|e| e.received >= e.timestamp), "received now, after 2023");
}

fn every_origin_is_stored_and_filtered_by_its_name(store: &dyn Store) {
    let origins = [Origin::Api, Origin::Github, Origin::Gitlab, Origin::Internal, Origin::Import];
    let events: Vec<NewEvent> =
        origins.iter().map(|origin| NewEvent { origin: *origin, ..event(origin.as_str(), "thing", 0) }).collect();
    append(store, &events);
    let all = store.events(&EventQuery::default()).unwrap();
    assert_eq!(all.iter().map(|e| e.origin).collect::<Vec<_>>(), origins);
    for origin in origins {
        assert_eq!(ids(store, EventQuery { origin: Some(origin), ..EventQuery::default() }), [origin.as_str()]);
    }
}

fn the_log_reads_newest_first_paged_by_before_and_filtered_by_subject_prefix(store: &dyn Store) {
    let subjects = ["shop/1", "shop/2", "cart/1", "shop/3", "shopping/1"];
    let events: Vec<NewEvent> =
        subjects.iter().enumerate().map(|(i, subject)| event(&format!("e{i}"), subject, i as i64)).collect();
    append(store, &events);
    let seqs: Vec<i64> = store.events(&EventQuery::default()).unwrap().iter().map(|e| e.seq).collect();
    let newest = EventQuery { newest_first: true, limit: 2, ..EventQuery::default() };
    assert_eq!(ids(store, newest.clone()), ["e4", "e3"]);
    assert_eq!(ids(store, EventQuery { before_seq: Some(seqs[3]), ..newest.clone() }), ["e2", "e1"]);
    let shop = EventQuery { subject: Some("shop/".into()), newest_first: true, ..EventQuery::default() };
    assert_eq!(ids(store, shop.clone()), ["e3", "e1", "e0"], "a prefix, not a pattern: `shopping/1` is not `shop/`");
    assert_eq!(ids(store, EventQuery { subject: Some("%".into()), ..EventQuery::default() }), Vec::<String>::new());
    assert_eq!(
        ids(store, EventQuery { subject: Some("_hop/1".into()), ..EventQuery::default() }),
        Vec::<String>::new()
    );
    assert_eq!(ids(store, EventQuery { subject: Some(String::new()), ..EventQuery::default() }).len(), 5, "empty: all");
    let window = (at(1), at(4));
    assert_eq!(ids(store, EventQuery { happened: Some(window), ..shop }), ["e3", "e1"], "by when they happened too");
}

fn the_log_pages_by_after_seq_and_filters_by_type(store: &dyn Store) {
    let mut events: Vec<NewEvent> = (0..7).map(|i| event(&format!("e{i}"), "thing", i)).collect();
    events[2].ty = "dev.cdeventsx.other.happened.0.1.0".into();
    append(store, &events);
    let page = |after: Option<i64>| store.events(&EventQuery { after_seq: after, limit: 3, ..EventQuery::default() });
    let first = page(None).unwrap();
    assert_eq!(first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e0", "e1", "e2"]);
    let second = page(Some(first[2].seq)).unwrap();
    assert_eq!(second.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e3", "e4", "e5"]);
    let last = page(Some(second[2].seq)).unwrap();
    assert_eq!(last.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e6"]);
    assert!(page(Some(last[0].seq)).unwrap().is_empty());
    let other = EventQuery { ty: Some("dev.cdeventsx.other.happened.0.1.0".into()), ..EventQuery::default() };
    assert_eq!(ids(store, other), ["e2"]);
    assert_eq!(ids(store, EventQuery::default()).len(), 7, "the default limit is 100");
}

/// An unverified record of a webhook delivery (an import) does not make the signed delivery a
/// duplicate: the signed one takes its place, once.
fn a_signed_delivery_is_never_shadowed_by_an_imported_record_of_it(store: &dyn Store) {
    let delivery = |origin: Origin, raw: &str| NewEvent {
        id: "push:refs/heads/main:abc".into(),
        source: "github:acme/app".into(),
        ty: "dev.cdeventsx.github-push.received.0.1.0".into(),
        subject: "acme/app".into(),
        timestamp: at(0),
        origin,
        raw: raw.into(),
        observations: Vec::new(),
    };
    let one = |e: NewEvent| append(store, &[e])[0];
    assert_eq!(one(delivery(Origin::Import, "{\"forged\":true}")), AppendStatus::Stored);
    assert_eq!(one(delivery(Origin::Import, "{}")), AppendStatus::Duplicate, "imports dedupe as before");
    assert_eq!(one(delivery(Origin::Github, "{\"signed\":true}")), AppendStatus::Stored, "not shadowed");
    assert_eq!(one(delivery(Origin::Github, "{\"signed\":true}")), AppendStatus::Duplicate, "once");
    assert_eq!(one(delivery(Origin::Import, "{}")), AppendStatus::Duplicate, "a record never replaces it back");
    let all = store.events(&EventQuery::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].origin, all[0].raw.as_str()), (Origin::Github, "{\"signed\":true}"));
}
