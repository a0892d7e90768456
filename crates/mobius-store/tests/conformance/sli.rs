//! SLI minutes: readings add up, windows are half-open, old minutes fold into hours.

use mobius_store::{SliCompaction, SliCounts, SliMinute, Store};

crate::conformance!(
    sli_minutes_add_up_and_read_back_in_order,
    old_minutes_fold_into_hours_and_expired_hours_are_dropped,
);

fn minute(version: &str, minute: i64, requests: u64, errors: u64, latency: Vec<u64>) -> SliMinute {
    SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: version.into(),
        minute,
        requests,
        errors,
        latency,
    }
}

fn sli_minutes_add_up_and_read_back_in_order(store: &dyn Store) {
    store.add_sli(&[minute("v1", 60, 10, 1, vec![5, 5]), minute("v2", 60, 4, 0, vec![4])]).unwrap();
    store.add_sli(&[minute("v1", 60, 5, 2, vec![1, 0, 4]), minute("v1", 120, 1, 0, vec![1])]).unwrap();
    let rows = store.sli("shop", "production", 0, 120).unwrap();
    assert_eq!(rows, vec![minute("v1", 60, 15, 3, vec![6, 5, 4]), minute("v2", 60, 4, 0, vec![4])]);
    assert_eq!(store.sli("shop", "production", 120, 180).unwrap().len(), 1, "half-open window");
    assert!(store.sli("shop", "staging", 0, 999).unwrap().is_empty());
    let counts = store.sli_counts("shop", "production", 0, 180).unwrap();
    assert_eq!(
        counts,
        vec![SliCounts { minute: 60, requests: 19, errors: 3 }, SliCounts { minute: 120, requests: 1, errors: 0 }],
        "versions summed per minute"
    );
}

fn old_minutes_fold_into_hours_and_expired_hours_are_dropped(store: &dyn Store) {
    let hour = 3_600;
    store
        .add_sli(&[
            // Expired: the hour before `drop_before`.
            minute("v1", 0, 7, 7, vec![7]),
            // Hour 1: three minutes of v1 (one at the hour's start), one of v2.
            minute("v1", hour, 10, 1, vec![5, 5]),
            minute("v1", hour + 60, 20, 2, vec![0, 10, 10]),
            minute("v1", hour + 3_540, 5, 0, vec![5]),
            minute("v2", hour + 120, 4, 4, vec![0, 0, 0, 4]),
            // Hour 2 is young enough to stay in minutes.
            minute("v1", 2 * hour + 60, 3, 0, vec![3]),
        ])
        .unwrap();
    let before = store.sli("shop", "production", hour, 3 * hour).unwrap();
    let report = store.compact_sli(2 * hour, hour).unwrap();
    assert_eq!(report, SliCompaction { folded: 3, hours: 2, dropped: 1 });
    let after = store.sli("shop", "production", 0, 3 * hour).unwrap();
    assert_eq!(
        after,
        vec![
            minute("v1", hour, 35, 3, vec![10, 15, 10]),
            minute("v2", hour, 4, 4, vec![0, 0, 0, 4]),
            minute("v1", 2 * hour + 60, 3, 0, vec![3]),
        ]
    );
    let total =
        |rows: &[SliMinute]| rows.iter().map(|m| (m.requests, m.errors)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(total(&before), total(&after), "folding keeps every request");
    assert_eq!(store.compact_sli(2 * hour, hour).unwrap(), SliCompaction::default(), "compaction is idempotent");
}
