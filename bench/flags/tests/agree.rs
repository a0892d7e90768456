//! The engines agree on the equivalent flags: pairs 1–2 answer identically, pair 3's shares are
//! within 2 points of the weights on both sides (assignments differ by design). Also pins the
//! semantic differences found between flagd's operators and Unleash's constraints, so a new
//! version of either engine that changes them is noticed.

use mobius_flags::Reason;
use mobius_flags_bench::{
    Subject, check_agreement, mobius_boolean, mobius_set, mobius_split, yggdrasil_boolean, yggdrasil_engine,
    yggdrasil_split,
};

#[test]
fn the_engines_agree_on_equivalent_flags() {
    let agreement = check_agreement(&mobius_set(), &yggdrasil_engine(), 5_000);
    println!("{agreement}");
    let matched = agreement.targeting_on[0] as f64 / 5_000.0;
    assert!((0.4..0.65).contains(&matched), "about half the subjects match the rule, not {matched}");
}

fn subject(email: Option<&str>, country: Option<&str>, version: Option<&str>) -> Subject {
    Subject {
        key: "user-42".to_owned(),
        email: email.map(str::to_owned),
        country: country.map(str::to_owned),
        app_version: version.map(str::to_owned),
    }
}

/// (mobius on, yggdrasil on) for the targeting pair.
fn targeting(subject: &Subject) -> (bool, bool) {
    let (set, engine) = (mobius_set(), yggdrasil_engine());
    (
        mobius_boolean(&set, "targeting-0", &subject.mobius()).on,
        yggdrasil_boolean(&engine, "targeting-0", &subject.unleash()).on,
    )
}

#[test]
fn where_the_targeting_pair_agrees_at_the_edges() {
    let ok = |version| subject(Some("a@example.com"), Some("NL"), Some(version));
    // Build metadata is ignored by both; a pre-release sorts below its release in both.
    assert_eq!(targeting(&ok("2.0.0+build.7")), (true, true));
    assert_eq!(targeting(&ok("2.0.0-rc.1")), (false, false));
    // A missing attribute fails the condition on both sides.
    assert_eq!(targeting(&subject(None, Some("NL"), Some("2.1.0"))), (false, false));
    assert_eq!(targeting(&subject(Some("a@example.com"), None, Some("2.1.0"))), (false, false));
    assert_eq!(targeting(&subject(Some("a@example.com"), Some("NL"), None)), (false, false));
    // Mobius answers `off` either way, but when `ends_with` or `sem_ver` has no value to work on
    // the whole rule gives up (flagd's custom operators return null) and the reason is
    // DEFAULT; a missing `country` only makes `in` false (TARGETING_MATCH).
    let set = mobius_set();
    let reason = |s: &Subject| set.evaluate("targeting-0", &s.mobius()).reason;
    assert_eq!(reason(&subject(None, Some("NL"), Some("2.1.0"))), Reason::Default);
    assert_eq!(reason(&subject(Some("a@example.com"), Some("NL"), None)), Reason::Default);
    assert_eq!(reason(&subject(Some("a@example.com"), None, Some("2.1.0"))), Reason::TargetingMatch);
    // Both compare strings case-sensitively (no `caseInsensitive` on the Unleash side).
    assert_eq!(targeting(&subject(Some("a@Example.com"), Some("NL"), Some("2.1.0"))), (false, false));
    assert_eq!(targeting(&subject(Some("a@example.com"), Some("nl"), Some("2.1.0"))), (false, false));
}

#[test]
fn where_the_targeting_pair_differs() {
    let ok = |version| subject(Some("a@example.com"), Some("NL"), Some(version));
    // flagd's sem_ver accepts a `v` prefix and partial versions; yggdrasil's SEMVER_* want a
    // full semver and fail the constraint otherwise.
    assert_eq!(targeting(&ok("v2.1.0")), (true, false));
    assert_eq!(targeting(&ok("2.1")), (true, false));
}

#[test]
fn without_a_subject_the_split_pairs_differ() {
    // No targeting key / userId: flagd's `fractional` has nothing to bucket by and returns
    // null, so the flag falls to its default variant (`a`, reason DEFAULT); Unleash's
    // flexibleRollout sticky on `userId` has nothing to hash, so the toggle is off (`disabled`).
    let (set, engine) = (mobius_set(), yggdrasil_engine());
    let with_key = subject(Some("a@example.com"), Some("NL"), Some("2.1.0"));
    assert!(["a", "b", "c"].contains(&mobius_split(&set, "split-0", &with_key.mobius())));
    assert!(["a", "b", "c"].contains(&yggdrasil_split(&engine, "split-0", &with_key.unleash()).as_str()));

    let mut ours = mobius_flags::Context::new();
    for (k, v) in [("email", "a@example.com"), ("country", "NL"), ("appVersion", "2.1.0")] {
        ours = ours.set(k, v);
    }
    let ours = set.evaluate("split-0", &ours);
    assert_eq!((ours.reason, ours.variant, ours.error_code), (mobius_flags::Reason::Default, Some("a"), None));
    let mut theirs = with_key.unleash();
    theirs.user_id = None;
    let theirs = engine.get_variant("split-0", &theirs, &None);
    assert_eq!((theirs.name.as_str(), theirs.feature_enabled), ("disabled", false));
}
